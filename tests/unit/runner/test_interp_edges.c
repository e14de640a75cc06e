/* Interpreter choice on its failure paths: an explicit setting that is a
 * directory, hangs, dies of a signal or cannot be exec'd (bad shebang);
 * PATH candidates that fail one after another, each named in the reason;
 * interp_run with a child that closes its output and keeps running, and
 * with more output than the buffer; the language aliases. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "interp.h"
#include "testutil.h"

static void settings_with(struct settings *s, const char *name, const char *value)
{
	char err[256];

	settings_init(s);
	settings_set(s, "RUNNER_STATE_DIR", tu_dir, SRC_FLAG, "flag --state");
	if (name)
		settings_set(s, name, value, SRC_ENV, "env test");
	assert_int_equal(settings_finalize(s, err, sizeof(err)), 0);
}

static void explicit_fails(const char *name, const char *path, int timeout_ms,
			   const char *needle)
{
	struct interp_env e = { .timeout_ms = timeout_ms, .path_var = "/nonexistent" };
	struct interp_choice c;
	struct settings s;

	settings_with(&s, name, path);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -EINVAL);
	tu_assert_contains(c.reason, "RUNNER_PYTHON (env test) is unusable: ");
	tu_assert_contains(c.reason, needle);
	settings_free(&s);
}

static void test_explicit_failures(void **state)
{
	char p[128];

	(void)state;
	explicit_fails("RUNNER_PYTHON", tu_dir, 20000, ": not a regular file");

	snprintf(p, sizeof(p), "%s/hang", tu_dir);
	tu_write_file(p, "#!/bin/sh\nexec sleep 30\n", 0755);
	explicit_fails("RUNNER_PYTHON", p, 300, "did not finish '-c' within 300 ms");

	snprintf(p, sizeof(p), "%s/dies", tu_dir);
	tu_write_file(p, "#!/bin/sh\necho dying >&2\nkill -9 $$\n", 0755);
	explicit_fails("RUNNER_PYTHON", p, 20000, "killed by signal 9 on a test run: dying");

	/* valgrind's forked child cannot survive a failing execve of a file
	 * that exists, so this case runs without it only. */
	if (!getenv("FIELDRIG_UNDER_VALGRIND")) {
		snprintf(p, sizeof(p), "%s/badshebang", tu_dir);
		tu_write_file(p, "#!/nonexistent/interpreter\n", 0755);
		explicit_fails("RUNNER_PYTHON", p, 20000, "cannot exec: No such file or directory");
	}
}

static void test_path_candidates_all_fail(void **state)
{
	struct interp_env e = { .timeout_ms = 20000 };
	struct interp_choice c;
	struct settings s;
	char bin[128], p[192], pathvar[256];

	(void)state;
	snprintf(bin, sizeof(bin), "%s/bin", tu_dir);
	assert_int_equal(mkdir(bin, 0755), 0);
	snprintf(p, sizeof(p), "%s/python3", bin);
	tu_write_file(p, "#!/bin/sh\necho 'broken python3' >&2\nexit 1\n", 0755);
	snprintf(p, sizeof(p), "%s/python", bin);
	tu_write_file(p, "#!/bin/sh\nexit 2\n", 0755);
	/* Relative and empty PATH entries are skipped. */
	snprintf(pathvar, sizeof(pathvar), "relative::%s", bin);
	e.path_var = pathvar;
	settings_with(&s, NULL, NULL);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -ENOEXEC);
	assert_string_equal(c.path, "");
	tu_assert_contains(c.reason, "python3: test run exited with status 1: broken python3; ");
	tu_assert_contains(c.reason, "python: test run exited with status 2; ");
	tu_assert_contains(c.reason, "set RUNNER_PYTHON to its path");

	/* The second one works: the first one's failure is still told. */
	tu_write_file(p, "#!/bin/sh\nexit 0\n", 0755);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_string_equal(c.path, p);
	tu_assert_contains(c.reason, "broken python3; python found on PATH");
	settings_free(&s);
}

static void test_run_edges(void **state)
{
	char *closes[] = { "/bin/sh", "-c", "exec >/dev/null 2>&1; sleep 30", NULL };
	char *loud[] = { "/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x >&2; exit 5", NULL };
	char out[32];
	int ws = 0;

	(void)state;
	/* Output closed, process still there: the timeout still holds, with
	 * a pidfd and without one (valgrind has none). */
	assert_int_equal(interp_run(closes, 300, &ws, NULL, 0), -ETIMEDOUT);
	/* More output than fits: the rest is read and dropped. */
	assert_int_equal(interp_run(loud, 20000, &ws, out, sizeof(out)), 0);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 5);
	assert_int_equal(strlen(out), sizeof(out) - 1);
}

static void test_lang_aliases(void **state)
{
	(void)state;
	assert_int_equal(interp_lang_from_name("py"), LANG_PYTHON);
	assert_int_equal(interp_lang_from_name("js"), LANG_NODE);
	assert_int_equal(interp_lang_from_name("javascript"), LANG_NODE);
	assert_int_equal(interp_lang_from_name("typescript"), LANG_TS);
	assert_int_equal(interp_lang_from_name("perl"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_explicit_failures),
		cmocka_unit_test(test_path_candidates_all_fail),
		cmocka_unit_test(test_run_edges),
		cmocka_unit_test(test_lang_aliases),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
