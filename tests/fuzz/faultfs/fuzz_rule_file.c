/* Fuzz target: YAML rule files, as given to --rules.
 *
 * Beyond "no crash", it checks the loader's promises: a refused file comes
 * with a one-line reason that starts with the file name and adds nothing to
 * the table; an accepted file's rules list as canonical expressions that
 * parse again, and can be evaluated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = { "", "venv", "a/b/venv", "data/x/y.py", "tmp/run.sh" };
	struct ff_caller caller = { .uid = 0, .gid = 0, .pid = 1 };
	struct ff_rule_info *info;
	struct ff_verdict v;
	struct ff_rules *rs = ff_rules_new();
	char err[512];
	int n;

	if (rs == NULL)
		abort();
	err[0] = '\0';
	if (ff_rules_load_buffer(rs, "fuzz.yaml", (const char *)data, size, err, sizeof(err)) < 0) {
		if (strncmp(err, "fuzz.yaml:", 10) != 0 || strchr(err, '\n') != NULL)
			abort();        /* one line, naming the file */
		if (ff_rules_generation(rs) != 0)
			abort();        /* a refused file must add nothing */
		ff_rules_free(rs);
		return 0;
	}
	n = ff_rules_snapshot(rs, &info);
	if (n < 0)
		abort();
	for (int i = 0; i < n; i++) {
		struct ff_rule *r = ff_rule_parse(info[i].expr, err, sizeof(err));

		if (r == NULL)
			abort();        /* a loaded rule must have a parsable form */
		ff_rule_free(r);
	}
	ff_rules_info_free(info, n);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		ff_rules_eval(rs, FF_OP_ALL, paths[i], NULL, &caller, &v);
		ff_rules_eval(rs, FF_OP_RENAME, paths[i], "venv", &caller, &v);
		ff_rules_path_matched(rs, paths[i]);
	}
	ff_rules_free(rs);
	return 0;
}
