/* Fuzz target: rule expressions, as given to --rule and `faultfs ctl add`.
 *
 * Beyond "no crash", it checks the parser's promises: a refused expression
 * comes with a reason; an accepted rule formats to a canonical expression
 * that parses back to the same canonical expression; and the rule can be
 * put in a table and evaluated against paths, including the input itself
 * read as a path and as a glob.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "", "venv", "a/b/venv", "data/x/y.py", ".hidden", "tmp" };
	struct ff_caller caller = { .uid = 1000, .gid = 1000, .pid = 1 };
	struct ff_verdict v;
	struct ff_rules *rs;
	struct ff_rule *r, *r2;
	char err[512], *s, *f, *f2;

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	/* The input as a glob and as a path, whatever else it is. */
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		ff_glob_match(s, paths[i]);
		ff_glob_match(paths[i], s);
	}
	ff_glob_match(s, s);

	err[0] = '\0';
	r = ff_rule_parse(s, err, sizeof(err));
	if (r == NULL) {
		if (err[0] == '\0' || strchr(err, '\n') != NULL)
			abort();        /* refused without a one-line reason */
		free(s);
		return 0;
	}
	f = ff_rule_format(r);
	if (f == NULL)
		abort();
	r2 = ff_rule_parse(f, err, sizeof(err));
	if (r2 == NULL)
		abort();                /* canonical form does not parse */
	f2 = ff_rule_format(r2);
	if (f2 == NULL || strcmp(f, f2) != 0)
		abort();                /* canonical form is not stable */
	ff_rule_free(r2);

	rs = ff_rules_new();
	if (rs == NULL)
		abort();
	if (ff_rules_add(rs, r) == 0)
		abort();
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			ff_rules_eval(rs, FF_OP_ALL, paths[i], NULL, &caller, &v);
			ff_rules_eval(rs, FF_OP_RENAME, paths[i], s, &caller, &v);
			ff_rules_path_matched(rs, paths[i]);
		}
	ff_rules_eval(rs, FF_OP_ALL, s, NULL, NULL, &v);
	ff_rules_free(rs);
	free(f2);
	free(f);
	free(s);
	return 0;
}
