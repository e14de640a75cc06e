/* Unit tests of runner/runnerdir.c that need no mounts or other users:
 * user name sanitising, creation with 0770, the default location, runner
 * script writing.  The noexec and unwritable fallbacks are integration
 * tests (tests/integration/runner/runnerdir.sh), on real mounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runnerdir.h"
#include "settings.h"
#include "testutil.h"

static void user(const char *in, const char *want)
{
	char out[80];

	runnerdir_user_name(in, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_user_names(void **state)
{
	char longu[200], want[70];

	(void)state;
	user("2", "2");
	user("alice-01_x", "alice-01_x");
	user("../../etc/x", "______etc_x");
	user("a b;rm -rf", "a_b_rm_-rf");
	user("", "_");
	user("caf\xc3\xa9", "caf__");
	memset(longu, 'u', 199);
	longu[199] = '\0';
	memset(want, 'u', 64);
	want[64] = '\0';
	user(longu, want);
}

static void settings_for(struct settings *s, const char *state, const char *rd)
{
	char err[256];

	settings_init(s);
	settings_set(s, "RUNNER_STATE_DIR", state, SRC_FLAG, "flag --state");
	if (rd)
		settings_set(s, "BOT_RUNNER_DIR", rd, SRC_ENV, "env BOT_RUNNER_DIR");
	assert_int_equal(settings_finalize(s, err, sizeof(err)), 0);
}

static void test_default_created_0770(void **state)
{
	struct runnerdir_choice c;
	struct settings s;
	struct stat st;
	char sd[128], want[192];
	mode_t old = umask(022);

	(void)state;
	snprintf(sd, sizeof(sd), "%s/state1", tu_dir);
	settings_for(&s, sd, NULL);
	assert_int_equal(runnerdir_resolve(&s, &c), 0);
	umask(old);
	snprintf(want, sizeof(want), "%s/runtime/bot_runners", sd);
	assert_string_equal(c.path, want);
	assert_false(c.fallback);
	assert_int_equal(c.n, 1);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0770);
	assert_non_null(strstr(c.reason, "(default)"));
	settings_free(&s);
}

static void test_configured_not_a_directory(void **state)
{
	struct runnerdir_choice c;
	struct settings s;
	char sd[128], rd[192];
	FILE *f;

	(void)state;
	snprintf(sd, sizeof(sd), "%s/state2", tu_dir);
	snprintf(rd, sizeof(rd), "%s/file", tu_dir);
	f = fopen(rd, "w");
	assert_non_null(f);
	fclose(f);
	settings_for(&s, sd, rd);
	assert_int_equal(runnerdir_resolve(&s, &c), 0);
	assert_true(c.fallback);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.probes[0].err, ENOTDIR);
	assert_non_null(strstr(c.reason, "configured"));
	assert_non_null(strstr(c.reason, rd));
	assert_non_null(strstr(c.reason, "unusable"));
	settings_free(&s);
}

static void test_configured_ok(void **state)
{
	struct runnerdir_choice c;
	struct settings s;
	char sd[128], rd[192];

	(void)state;
	snprintf(sd, sizeof(sd), "%s/state3", tu_dir);
	snprintf(rd, sizeof(rd), "%s/srv/runtime/bot_runners", tu_dir);
	settings_for(&s, sd, rd);
	assert_int_equal(runnerdir_resolve(&s, &c), 0);
	assert_string_equal(c.path, rd);
	assert_false(c.fallback);
	assert_non_null(strstr(c.reason, "(configured)"));
	settings_free(&s);
}

static void test_write_script(void **state)
{
	char rd[128], path[256], err[512], buf[64];
	struct stat st;
	FILE *f;
	size_t n;

	(void)state;
	snprintf(rd, sizeof(rd), "%s/rs", tu_dir);
	assert_int_equal(mkdir(rd, 0770), 0);
	assert_int_equal(runnerdir_write_script(rd, "user 2", "print(1)\n", 9, path, sizeof(path),
						err, sizeof(err)), 0);
	assert_non_null(strstr(path, "/rs/bot_runner_user_2.py"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* Rewriting replaces the whole file. */
	assert_int_equal(runnerdir_write_script(rd, "user 2", "x\n", 2, path, sizeof(path),
						err, sizeof(err)), 0);
	f = fopen(path, "r");
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_int_equal(n, 2);

	snprintf(rd, sizeof(rd), "%s/missing", tu_dir);
	assert_int_equal(runnerdir_write_script(rd, "u", "x", 1, path, sizeof(path), err,
						sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "bot_runner_u.py"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_names),
		cmocka_unit_test(test_default_created_0770),
		cmocka_unit_test(test_configured_not_a_directory),
		cmocka_unit_test(test_configured_ok),
		cmocka_unit_test(test_write_script),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
