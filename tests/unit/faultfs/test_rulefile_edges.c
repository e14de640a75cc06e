/* Rule files at the edges of the loader: op lists longer than its first
 * buffer, empty operation names, keys that are not text or hold control
 * characters (the message stays one line), the other spellings of null,
 * files larger than the first read, and a directory given as the file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "rules.h"

/* Loads text as file "T"; returns 0 or -1 and the message in err. */
static int load(struct ff_rules *rs, const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return ff_rules_load_buffer(rs, "T", text, strlen(text), err, errlen);
}

/* The rules of rs as "EXPR;EXPR…". */
static void exprs(struct ff_rules *rs, char *out, size_t outlen)
{
	struct ff_rule_info *info;
	int n = ff_rules_snapshot(rs, &info);

	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i > 0)
			strncat(out, ";", outlen - strlen(out) - 1);
		strncat(out, info[i].expr, outlen - strlen(out) - 1);
	}
	if (n > 0)
		ff_rules_info_free(info, n);
}

static void expect_err(const char *text, const char *want)
{
	struct ff_rules *rs = ff_rules_new();
	char err[512];

	assert_int_equal(load(rs, text, err, sizeof(err)), -1);
	if (strcmp(err, want) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"", err, want);
	assert_int_equal(ff_rules_generation(rs), 0);
	ff_rules_free(rs);
}

static void test_long_op_list(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	char err[512], got[1024];

	(void)state;
	assert_int_equal(load(rs, "- op: [lookup, getattr, readdir, open, open_write, create, read, write,\n"
	                          "        flush, fsync, release, mkdir, rmdir, unlink, rename]\n"
	                          "  error: EIO\n", err, sizeof(err)), 0);
	exprs(rs, got, sizeof(got));
	assert_string_equal(got, "op=lookup|getattr|readdir|open|open_write|create|read|write|flush|fsync|"
	                         "release|mkdir|rmdir|unlink|rename,path=**,error=EIO");
	assert_true(ff_rules_may_touch(rs, FF_OP_RENAME));
	assert_true(ff_rules_may_touch(rs, FF_OP_LOOKUP));
	assert_false(ff_rules_may_touch(rs, FF_OP_STATFS));
	ff_rules_free(rs);
}

static void test_empty_op_name(void **state)
{
	(void)state;
	expect_err("- op: [read, \"\"]\n  error: EIO\n", "T:1:14: rule 1: field 'op': empty operation name");
	expect_err("- op: [\"\"]\n  error: EIO\n", "T:1:8: rule 1: field 'op': empty operation name");
}

static void test_keys(void **state)
{
	(void)state;
	/* A newline in a key: the message names it with '?', on one line. */
	expect_err("\"ru\\nles\": []\n", "T:1:1: unknown top-level key 'ru?les' (expected 'rules')");
	expect_err("\"a\\tb\\x7f\": []\n", "T:1:1: unknown top-level key 'a?b?' (expected 'rules')");
	/* A complex key (a list) at the top. */
	expect_err("? [a, b]\n: 1\n", "T:1:3: expected the key 'rules', not a list");
	expect_err("? {a: b}\n: 1\n", "T:1:3: expected the key 'rules', not a mapping");
	/* and as a rule's field name */
	expect_err("- ? [op]\n  : read\n", "T:1:5: rule 1: expected a field name, not a list");
}

static void test_null_spellings(void **state)
{
	static const char *const texts[] = {
		"rules: Null\n", "rules: NULL\n", "rules: null\n", "rules: ~\n", "rules:\n", "Null\n", "~\n",
	};
	char err[512], got[64];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ff_rules *rs = ff_rules_new();

		if (load(rs, texts[i], err, sizeof(err)) != 0)
			fail_msg("refused %s: %s", texts[i], err);
		exprs(rs, got, sizeof(got));
		assert_string_equal(got, "");
		ff_rules_free(rs);
	}
	/* Quoted, they are text, not null. */
	expect_err("rules: \"NULL\"\n", "T:1:8: 'rules' must be a list of rules, not a single value");
}

static void test_big_file(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	char path[] = "/tmp/test_rulefile_edges.XXXXXX";
	char err[512], line[128];
	struct ff_rule_info *info;
	int fd = mkstemp(path), n;
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("rules:\n", f);
	/* ~60 bytes a rule: 500 rules are ~30 KB, several read buffers. */
	for (int i = 0; i < 500; i++)
		fprintf(f, "  - {op: write, path: \"never/%04d/**\", error: ENOSPC}\n", i);
	fclose(f);
	assert_int_equal(ff_rules_load_file(rs, path, err, sizeof(err)), 0);
	unlink(path);
	n = ff_rules_snapshot(rs, &info);
	assert_int_equal(n, 500);
	snprintf(line, sizeof(line), "op=write,path=never/0499/**,error=ENOSPC");
	assert_string_equal(info[499].expr, line);
	ff_rules_info_free(info, n);
	ff_rules_free(rs);
}

static void test_directory(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	char err[512];

	(void)state;
	assert_int_equal(ff_rules_load_file(rs, "/tmp", err, sizeof(err)), -1);
	assert_string_equal(err, "/tmp: cannot read: Is a directory");
	assert_int_equal(ff_rules_generation(rs), 0);
	ff_rules_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_op_list),
		cmocka_unit_test(test_empty_op_name),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_null_spellings),
		cmocka_unit_test(test_big_file),
		cmocka_unit_test(test_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
