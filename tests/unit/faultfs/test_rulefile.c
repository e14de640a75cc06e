/* Tests for faultfs YAML rule files: the accepted shapes, exact error
 * positions, all-or-nothing loading, and the shipped profiles. */
#include <dirent.h>
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

/* Loads text as file "T" into rs and returns the rule expressions, joined
 * by ';', into out (or fails the test). */
static void load_ok(struct ff_rules *rs, const char *text, char *out, size_t outlen)
{
	char err[512] = "";
	struct ff_rule_info *info;
	int n;

	if (ff_rules_load_buffer(rs, "T", text, strlen(text), err, sizeof(err)) < 0)
		fail_msg("refused: %s\n--- text:\n%s", err, text);
	n = ff_rules_snapshot(rs, &info);
	assert_true(n >= 0);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i > 0)
			strncat(out, ";", outlen - strlen(out) - 1);
		strncat(out, info[i].expr, outlen - strlen(out) - 1);
	}
	ff_rules_info_free(info, n);
}

static void check_ok(const char *text, const char *want)
{
	struct ff_rules *rs = ff_rules_new();
	char got[2048];

	load_ok(rs, text, got, sizeof(got));
	assert_string_equal(got, want);
	ff_rules_free(rs);
}

/* Loading text must fail with exactly this message and add nothing. */
static void check_err(const char *text, const char *want)
{
	struct ff_rules *rs = ff_rules_new();
	char err[512] = "";

	if (ff_rules_load_buffer(rs, "T", text, strlen(text), err, sizeof(err)) == 0)
		fail_msg("accepted:\n%s", text);
	if (strcmp(err, want) != 0)
		fail_msg("got  \"%s\"\nwant \"%s\"\n--- text:\n%s", err, want, text);
	assert_int_equal(ff_rules_generation(rs), 0);
	ff_rules_free(rs);
}

/* Same, but only the start of the message is fixed. */
static void check_err_prefix(const char *text, const char *want)
{
	struct ff_rules *rs = ff_rules_new();
	char err[512] = "";

	assert_int_equal(ff_rules_load_buffer(rs, "T", text, strlen(text), err, sizeof(err)), -1);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got  \"%s\"\nwant \"%s...\"", err, want);
	assert_int_equal(ff_rules_generation(rs), 0);
	ff_rules_free(rs);
}

static void test_rules_key(void **state)
{
	check_ok("# comments allowed\n"
		 "rules:\n"
		 "  - op: rmdir|rename\n"
		 "    path: /venv\n"
		 "    error: EBUSY\n"
		 "  - op: [read, write]   # a sequence is also accepted for op\n"
		 "    path: \"data/**\"\n"
		 "    delay: 250ms\n",
		 "op=rmdir|rename,path=venv,error=EBUSY;op=read|write,path=data/**,delay=250ms");
}

static void test_top_level_sequence(void **state)
{
	check_ok("- path: a\n  error: EIO\n- {path: b, error: 5, nth: 3}\n",
		 "op=all,path=a,error=EIO;op=all,path=b,nth=3,error=EIO");
}

static void test_scalars_are_text(void **state)
{
	/* YAML would read 0111 as an integer and yes as a boolean; the rule
	 * parser gets the text as written. */
	check_ok("rules:\n"
		 "  - op: getattr\n"
		 "    mode_clear: 0111\n"
		 "    nth: 3\n"
		 "  - comm: 'yes'\n"
		 "    prob: 0.5\n"
		 "    seed: 7\n"
		 "    error: \"EIO\"\n",
		 "op=getattr,path=**,nth=3,mode_clear=0111;op=all,path=**,comm=yes,prob=0.5,seed=7,error=EIO");
}

static void test_no_rules(void **state)
{
	/* Decided: a rule file with no rules is valid and adds nothing. */
	check_ok("", "");
	check_ok("# only a comment\n\n", "");
	check_ok("---\n", "");
	check_ok("~\n", "");
	check_ok("rules:\n", "");
	check_ok("rules: []\n", "");
	check_ok("[]\n", "");
	check_ok("{}\n", "");
}

static void test_error_positions(void **state)
{
	/* The value's position for a bad value. */
	check_err("rules:\n"
		  "  - op: rmdir\n"
		  "    error: EBUSY\n"
		  "  - op: read\n"
		  "    error: EBUZY\n",
		  "T:5:12: rule 2: field 'error': unknown errno name 'EBUZY'");
	check_err("- nth: 12abc\n  error: EIO\n",
		  "T:1:8: rule 1: field 'nth': '12abc' is not a whole number");
	check_err("- error: EIO\n  prob: 1.5\n",
		  "T:2:9: rule 1: field 'prob': '1.5' is not between 0 and 1");
	check_err("- error: EIO\n  delay:  250\n",
		  "T:2:11: rule 1: field 'delay': '250' needs a unit (ns, us, ms, s, m, h), as in '250ms'");
	check_err("- error: EIO\n  path:\n",
		  "T:2:8: rule 1: field 'path': empty value");
	check_err("- error: EIO\n  path: ~\n",
		  "T:2:9: rule 1: field 'path': empty value");
	check_ok("- error: EIO\n  path: '~'\n", "op=all,path=~,error=EIO");
	check_err("- error: EIO\n  op: [read, bogus]\n",
		  "T:2:7: rule 1: field 'op': unknown operation 'bogus'");
	/* The key's position for an unknown or repeated key. */
	check_err("rules:\n  - error: EIO\n    colour: red\n",
		  "T:3:5: rule 1: field 'colour': unknown field (known: op, path, error, delay, mode_clear, short, nth, after, count, prob, seed, uid, gid, comm)");
	check_err("- error: EIO\n  path: a\n  path: b\n",
		  "T:3:3: rule 1: field 'path': given twice");
	/* The rule's position when the rule as a whole is wrong. */
	check_err("- error: EIO\n- op: read\n  path: x\n",
		  "T:2:3: rule 2: rule has no effect: give at least one of error=, delay=, mode_clear=, short=");
	check_err("- error: EIO\n  seed: 3\n",
		  "T:1:3: rule 1: field 'seed': only makes sense together with prob=");
}

static void test_structure_errors(void **state)
{
	check_err("rulez:\n  - error: EIO\n",
		  "T:1:1: unknown top-level key 'rulez' (expected 'rules')");
	check_err("rules: []\nrules: []\n", "T:2:1: key 'rules' given twice");
	check_err("rules:\n  - rmdir\n",
		  "T:2:5: rule 1: expected a mapping of field: value, not a single value");
	check_err("- error: EIO\n- [a, b]\n",
		  "T:2:3: rule 2: expected a mapping of field: value, not a list");
	check_err("rules: yes\n", "T:1:8: 'rules' must be a list of rules, not a single value");
	check_err("rules: {a: b}\n", "T:1:8: 'rules' must be a list of rules, not a mapping");
	check_err("hello\n", "T:1:1: expected a mapping with 'rules:' or a list of rules, not a single value");
	check_err("- error: EIO\n  path: [a, b]\n",
		  "T:2:9: rule 1: field 'path': expected a single value, not a list");
	check_err("- error: EIO\n  path: {a: b}\n",
		  "T:2:9: rule 1: field 'path': expected a single value, not a mapping");
	check_err("- error: EIO\n  op: []\n", "T:2:7: rule 1: field 'op': empty list");
	check_err("- error: EIO\n  op: [read, [write]]\n",
		  "T:2:14: rule 1: field 'op': expected an operation name, not a list");
	check_err("- error: &e EIO\n- error: *e\n",
		  "T:2:10: rule 2: field 'error': expected a single value, not an alias (aliases are not supported)");
	check_err("- error: \"E\\nIO\"\n",
		  "T:1:10: rule 1: field 'error': unknown errno name 'E?IO'");
	check_err("- error: \"E\\0IO\"\n",
		  "T:1:10: rule 1: field 'error': value contains a NUL byte");
	check_err("- {error: EIO}\n---\n- {error: EIO}\n",
		  "T:2:1: only one YAML document is allowed in a rules file");
	check_err("- [error]: EIO\n", "T:1:3: rule 1: expected a field name, not a list");
	/* What an expression could not say, a file cannot say either. */
	check_err("- error: EIO\n  path: \"a, b\"\n",
		  "T:2:9: rule 1: field 'path': 'a, b' contains a comma, which rule values cannot hold");
	check_err("- error: EIO\n  path: \"{a,b}\"\n",
		  "T:2:9: rule 1: field 'path': brace alternatives like '{a,b}' are not supported in '{a,b}' (rule values cannot contain commas); write one rule per alternative");
	check_err("- error: EIO\n  comm: ' bash'\n",
		  "T:2:9: rule 1: field 'comm': ' bash' starts or ends with a blank");
}

static void test_syntax_errors(void **state)
{
	check_err_prefix("rules:\n  - op: [read\n", "T:3:1: YAML syntax error: ");
	check_err_prefix("rules:\n  - op: read\n    error: EIO: x\n", "T:3:15: YAML syntax error: ");
	check_err_prefix("- error: \"EIO\n", "T:2:1: YAML syntax error: ");
	check_err_prefix("\t- error: EIO\n", "T:1:1: YAML syntax error: ");
}

static void test_atomic_load(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	char err[512];
	const char *text = "rules:\n"
			   "  - path: a\n    error: EIO\n"
			   "  - path: b\n    error: EIO\n"
			   "  - path: c\n    error: EWHAT\n"
			   "  - path: d\n    error: EIO\n";
	struct ff_rule_info *info;

	assert_int_not_equal(ff_rules_add(rs, ff_rule_parse("path=z,error=EIO", NULL, 0)), 0);
	assert_int_equal(ff_rules_load_buffer(rs, "T", text, strlen(text), err, sizeof(err)), -1);
	assert_string_equal(err, "T:7:12: rule 3: field 'error': unknown errno name 'EWHAT'");
	/* Nothing from the file was added, and the rule already there stays. */
	assert_int_equal(ff_rules_generation(rs), 1);
	assert_int_equal(ff_rules_snapshot(rs, &info), 1);
	assert_string_equal(info[0].expr, "op=all,path=z,error=EIO");
	ff_rules_info_free(info, 1);
	/* A good file adds all its rules at once, after the existing one. */
	text = "- {path: a, error: EIO}\n- {path: b, error: EIO}\n";
	assert_int_equal(ff_rules_load_buffer(rs, "T", text, strlen(text), err, sizeof(err)), 0);
	assert_int_equal(ff_rules_generation(rs), 2);
	assert_int_equal(ff_rules_snapshot(rs, &info), 3);
	assert_int_equal(info[2].id, 3);
	ff_rules_info_free(info, 3);
	ff_rules_free(rs);
}

static void test_load_file(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	char path[] = "/tmp/test_rulefile.XXXXXX";
	char err[512], want[600];
	int fd = mkstemp(path);
	const char *text = "rules:\n  - op: rmdir\n    path: venv\n    error: EBUSY\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(ff_rules_load_file(rs, path, err, sizeof(err)), 0);
	assert_true(ff_rules_may_touch(rs, FF_OP_RMDIR));

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	text = "- op: rmdir\n  error: EBUSY\n  nth: x\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(ff_rules_load_file(rs, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3:8: rule 1: field 'nth': 'x' is not a whole number", path);
	assert_string_equal(err, want);
	unlink(path);

	assert_int_equal(ff_rules_load_file(rs, "/nonexistent/rules.yaml", err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/rules.yaml: cannot open: No such file or directory");
	assert_int_equal(ff_rules_generation(rs), 1);
	ff_rules_free(rs);
}

static const char *profiles_dir(void)
{
	const char *d = getenv("FAULTFS_PROFILES_DIR");

	return d != NULL ? d : "faultfs/profiles";
}

static struct ff_rules *load_profile(const char *name)
{
	struct ff_rules *rs = ff_rules_new();
	char path[1024], err[1024];

	snprintf(path, sizeof(path), "%s/%s.yaml", profiles_dir(), name);
	if (ff_rules_load_file(rs, path, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	return rs;
}

static bool verdict(struct ff_rules *rs, uint64_t ops, const char *path, struct ff_verdict *v)
{
	struct ff_caller c = { .uid = 1000, .gid = 1000 };

	memset(v, 0, sizeof(*v));
	return ff_rules_eval(rs, ops, path, NULL, &c, v);
}

static void test_every_profile_loads(void **state)
{
	DIR *d = opendir(profiles_dir());
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		fail_msg("%s: %s", profiles_dir(), strerror(errno));
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		struct ff_rules *rs;
		struct ff_rule_info *info;
		int nr;
		char name[256];

		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 5), e->d_name);
		rs = load_profile(name);
		nr = ff_rules_snapshot(rs, &info);
		assert_true(nr > 0);
		ff_rules_info_free(info, nr);
		ff_rules_free(rs);
		n++;
	}
	closedir(d);
	assert_true(n >= 6);
}

static void test_profile_behaviour(void **state)
{
	struct ff_rules *rs;
	struct ff_verdict v;

	rs = load_profile("noexec-tmp");
	assert_true(verdict(rs, FF_OP_OPEN | FF_OP_EXEC, "runner_1.sh", &v));
	assert_int_equal(v.error, EACCES);
	assert_true(verdict(rs, FF_OP_ACCESS | FF_OP_EXEC, "a/b/script", &v));
	assert_false(verdict(rs, FF_OP_OPEN, "runner_1.sh", &v));
	assert_false(verdict(rs, FF_OP_READ, "runner_1.sh", &v));
	ff_rules_free(rs);

	rs = load_profile("docker-venv-busy");
	assert_true(verdict(rs, FF_OP_RMDIR, "venv", &v));
	assert_int_equal(v.error, EBUSY);
	assert_true(verdict(rs, FF_OP_RENAME, "tmp/bot_code_interpreter/venv", &v));
	assert_false(verdict(rs, FF_OP_RMDIR, "venv/lib", &v));
	assert_false(verdict(rs, FF_OP_UNLINK, "venv/bin/python", &v));
	assert_false(verdict(rs, FF_OP_RMDIR, "venv2", &v));
	ff_rules_free(rs);

	rs = load_profile("no-exec-bits");
	assert_true(verdict(rs, FF_OP_GETATTR, "script.py", &v));
	assert_int_equal(v.mode_clear, 0111);
	assert_int_equal(v.error, 0);
	assert_true(verdict(rs, FF_OP_LOOKUP, "a/b", &v));
	assert_false(verdict(rs, FF_OP_READ, "script.py", &v));
	assert_false(verdict(rs, FF_OP_OPEN, "script.py", &v));
	ff_rules_free(rs);

	rs = load_profile("read-only");
	for (uint64_t op = 1; op & FF_OP_ALL; op <<= 1) {
		bool modifies = op & (FF_OP_OPEN_WRITE | FF_OP_CREATE | FF_OP_WRITE | FF_OP_TRUNCATE |
				      FF_OP_FALLOCATE | FF_OP_MKDIR | FF_OP_RMDIR | FF_OP_UNLINK |
				      FF_OP_RENAME | FF_OP_LINK | FF_OP_SYMLINK | FF_OP_MKNOD |
				      FF_OP_CHMOD | FF_OP_CHOWN | FF_OP_UTIMENS | FF_OP_SETXATTR |
				      FF_OP_REMOVEXATTR);

		assert_int_equal(verdict(rs, op, "f", &v), modifies);
		if (modifies)
			assert_int_equal(v.error, EROFS);
	}
	ff_rules_free(rs);

	rs = load_profile("disk-full");
	assert_true(verdict(rs, FF_OP_WRITE, "log", &v));
	assert_int_equal(v.error, ENOSPC);
	assert_true(verdict(rs, FF_OP_MKDIR, "d", &v));
	assert_true(verdict(rs, FF_OP_FALLOCATE, "d", &v));
	assert_false(verdict(rs, FF_OP_UNLINK, "log", &v));
	assert_false(verdict(rs, FF_OP_READ, "log", &v));
	ff_rules_free(rs);

	rs = load_profile("slow-disk");
	assert_true(verdict(rs, FF_OP_READ, "x", &v));
	assert_true(v.delay_ns > 0);
	assert_int_equal(v.error, 0);
	assert_true(verdict(rs, FF_OP_FSYNC, "x", &v));
	assert_true(verdict(rs, FF_OP_CREATE, "x", &v));
	assert_true(verdict(rs, FF_OP_WRITE, "x", &v));
	assert_false(verdict(rs, FF_OP_GETATTR, "x", &v));
	ff_rules_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_key),
		cmocka_unit_test(test_top_level_sequence),
		cmocka_unit_test(test_scalars_are_text),
		cmocka_unit_test(test_no_rules),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_atomic_load),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_every_profile_loads),
		cmocka_unit_test(test_profile_behaviour),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
