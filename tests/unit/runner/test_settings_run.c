/* Unit tests of the supervision settings (runner II) in runner/settings.c:
 * defaults, units, strict refusal naming the variable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "settings.h"

static int load(struct settings *s, char *env0, char *err, size_t errlen)
{
	char *env[] = { "RUNNER_STATE_DIR=/nonexistent/state", env0, NULL };

	settings_init(s);
	assert_int_equal(settings_load_env(s, env), 0);
	return settings_finalize(s, err, errlen);
}

static void test_defaults(void **state)
{
	struct settings s;
	char err[512], buf[64];

	(void)state;
	assert_int_equal(load(&s, NULL, err, sizeof(err)), 0);
	assert_int_equal(s.kill_grace_ns, 2000000000ULL);
	assert_int_equal(s.max_log, 64ULL << 20);
	assert_int_equal(s.cpu_limit_s, 0);
	assert_int_equal(s.memory_limit, 0);
	assert_int_equal(s.max_procs, 1024);
	assert_int_equal(s.max_files, 1024);
	assert_true(s.use_cgroup);
	assert_int_equal(s.cleanup_interval_ns, 300000000000ULL);
	assert_false(s.serve_stop_wait);
	assert_string_equal(settings_display(&s, SET_KILL_GRACE, buf, sizeof(buf)), "2s");
	assert_string_equal(settings_display(&s, SET_MAX_LOG, buf, sizeof(buf)), "64MiB");
	assert_string_equal(settings_display(&s, SET_CLEANUP_INTERVAL, buf, sizeof(buf)), "300s");
	settings_free(&s);
}

static void test_units(void **state)
{
	struct settings s;
	char err[512];

	(void)state;
	assert_int_equal(load(&s, "RUNNER_KILL_GRACE=250ms", err, sizeof(err)), 0);
	assert_int_equal(s.kill_grace_ns, 250000000ULL);
	settings_free(&s);
	assert_int_equal(load(&s, "RUNNER_KILL_GRACE=0", err, sizeof(err)), 0);
	assert_int_equal(s.kill_grace_ns, 0);
	settings_free(&s);
	/* CPU seconds round up: a limit never comes out shorter. */
	assert_int_equal(load(&s, "RUNNER_CPU_LIMIT=1500ms", err, sizeof(err)), 0);
	assert_int_equal(s.cpu_limit_s, 2);
	settings_free(&s);
	assert_int_equal(load(&s, "RUNNER_MEMORY_LIMIT=512MiB", err, sizeof(err)), 0);
	assert_int_equal(s.memory_limit, 512ULL << 20);
	settings_free(&s);
	assert_int_equal(load(&s, "RUNNER_CGROUP=off", err, sizeof(err)), 0);
	assert_false(s.use_cgroup);
	settings_free(&s);
	assert_int_equal(load(&s, "RUNNER_SERVE_STOP=wait", err, sizeof(err)), 0);
	assert_true(s.serve_stop_wait);
	settings_free(&s);
}

static void expect_bad(char *env0, const char *want)
{
	struct settings s;
	char err[512];

	assert_int_equal(load(&s, env0, err, sizeof(err)), -22);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
	settings_free(&s);
}

static void test_strict(void **state)
{
	(void)state;
	expect_bad("RUNNER_KILL_GRACE=2x", "RUNNER_KILL_GRACE: invalid value '2x' (env RUNNER_KILL_GRACE)");
	expect_bad("RUNNER_MAX_LOG=0", "RUNNER_MAX_LOG");
	expect_bad("RUNNER_MAX_LOG=-1", "RUNNER_MAX_LOG");
	expect_bad("RUNNER_CPU_LIMIT=1 s", "RUNNER_CPU_LIMIT");
	expect_bad("RUNNER_MEMORY_LIMIT=lots", "RUNNER_MEMORY_LIMIT");
	expect_bad("RUNNER_MAX_PROCS=1e3", "RUNNER_MAX_PROCS");
	expect_bad("RUNNER_MAX_FILES=2000000", "RUNNER_MAX_FILES");
	expect_bad("RUNNER_MAX_FILE_SIZE=12abc", "RUNNER_MAX_FILE_SIZE");
	expect_bad("RUNNER_CGROUP=on", "expected auto or off");
	expect_bad("RUNNER_CLEANUP_INTERVAL=0", "RUNNER_CLEANUP_INTERVAL");
	expect_bad("RUNNER_SERVE_STOP=kill", "expected cancel or wait");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
