/* Unit tests of runner/settings.c: precedence, aliases, strict values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"

static char tmpdir[] = "/tmp/test_settings.XXXXXX";
static char envpath[64];

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(envpath, sizeof(envpath), "%s/.env", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(envpath);
	rmdir(tmpdir);
	return 0;
}

static void write_env(const char *text)
{
	FILE *f = fopen(envpath, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Runs the main program's order: flags, environment, env-file, finalize. */
static int load(struct settings *s, char *const *env, const char *envfile_text,
		char *err, size_t errlen)
{
	int ret;

	settings_set(s, "RUNNER_STATE_DIR", "/state", SRC_FLAG, "flag --state");
	ret = settings_load_env(s, env);
	if (ret < 0)
		return ret;
	if (envfile_text) {
		write_env(envfile_text);
		ret = settings_load_envfile(s, envpath, err, errlen);
		if (ret < 0)
			return ret;
	}
	return settings_finalize(s, err, errlen);
}

static void test_defaults(void **state)
{
	char *env[] = { NULL };
	struct settings s;
	char err[256], buf[256];

	(void)state;
	settings_init(&s);
	assert_int_equal(load(&s, env, NULL, err, sizeof(err)), 0);
	assert_string_equal(s.state_dir, "/state");
	assert_string_equal(s.runner_dir, "/state/runtime/bot_runners");
	assert_false(s.runner_dir_configured);
	assert_string_equal(s.scripts_dir, "/state/scripts");
	assert_string_equal(s.venv_dir, "/state/venv");
	assert_int_equal(s.max_script_size, 10 * 1024 * 1024);
	assert_int_equal(s.max_execution_ns, 3600ULL * 1000000000ULL);
	assert_int_equal(s.max_concurrent, 5);
	assert_int_equal(s.exec_mode, EXEC_INTERPRETER);
	assert_null(s.python);
	assert_null(s.container);
	assert_string_equal(s.root, "/");
	assert_int_equal(s.n_types, 3);
	assert_string_equal(settings_display(&s, SET_ALLOWED_TYPES, buf, sizeof(buf)), ".py,.js,.ts");
	assert_string_equal(settings_display(&s, SET_MAX_SCRIPT_SIZE, buf, sizeof(buf)), "10MiB");
	assert_string_equal(settings_display(&s, SET_MAX_EXECUTION_TIME, buf, sizeof(buf)), "3600s");
	assert_string_equal(settings_origin(&s, SET_MAX_SCRIPT_SIZE), "default");
	assert_string_equal(settings_origin(&s, SET_STATE_DIR), "flag --state");
	settings_free(&s);
}

static void test_precedence(void **state)
{
	char *env[] = { "MAX_EXECUTION_TIME=90s", "MAX_CONCURRENT_SCRIPTS=7", NULL };
	struct settings s;
	char err[256], buf[64];

	(void)state;
	settings_init(&s);
	settings_set(&s, "MAX_CONCURRENT_SCRIPTS", "9", SRC_FLAG, "flag --test");
	assert_int_equal(load(&s, env,
			      "MAX_EXECUTION_TIME=3600\n"
			      "MAX_CONCURRENT_SCRIPTS=2\n"
			      "MAX_SCRIPT_SIZE=512KiB\n"
			      "REDIS_URL=redis://ignored\n", err, sizeof(err)), 0);
	/* flag > env > env-file > default */
	assert_int_equal(s.max_concurrent, 9);
	assert_string_equal(settings_origin(&s, SET_MAX_CONCURRENT), "flag --test");
	assert_int_equal(s.max_execution_ns, 90ULL * 1000000000ULL);
	assert_string_equal(settings_origin(&s, SET_MAX_EXECUTION_TIME), "env MAX_EXECUTION_TIME");
	assert_int_equal(s.max_script_size, 512 * 1024);
	assert_non_null(strstr(settings_origin(&s, SET_MAX_SCRIPT_SIZE), "/.env:3"));
	assert_string_equal(settings_display(&s, SET_MAX_SCRIPT_SIZE, buf, sizeof(buf)), "512KiB");
	settings_free(&s);
}

static void test_envfile_bare_seconds(void **state)
{
	char *env[] = { NULL };
	struct settings s;
	char err[256], buf[64], want[128];

	(void)state;
	settings_init(&s);
	assert_int_equal(load(&s, env, "\n\n\nMAX_EXECUTION_TIME=3600\n", err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "env-file %s:4", envpath);
	assert_string_equal(settings_origin(&s, SET_MAX_EXECUTION_TIME), want);
	assert_string_equal(settings_display(&s, SET_MAX_EXECUTION_TIME, buf, sizeof(buf)), "3600s");
	settings_free(&s);
}

static void test_aliases(void **state)
{
	char *env_alias[] = { "BOT_RUNNER_DIR=/srv/bot_runners", "BLITZ_PYTHON=/usr/bin/python3", NULL };
	char *env_both[] = { "RUNNER_DIR=/canonical", "BOT_RUNNER_DIR=/alias", NULL };
	struct settings s;
	char err[256];

	(void)state;
	settings_init(&s);
	assert_int_equal(load(&s, env_alias, NULL, err, sizeof(err)), 0);
	assert_string_equal(s.runner_dir, "/srv/bot_runners");
	assert_true(s.runner_dir_configured);
	assert_string_equal(s.python, "/usr/bin/python3");
	assert_string_equal(settings_origin(&s, SET_PYTHON), "env BLITZ_PYTHON");
	settings_free(&s);

	/* The canonical name wins over its alias at the same level, in
	 * whichever order they appear. */
	settings_init(&s);
	assert_int_equal(load(&s, env_both, NULL, err, sizeof(err)), 0);
	assert_string_equal(s.runner_dir, "/canonical");
	settings_free(&s);

	settings_init(&s);
	assert_int_equal(load(&s, (char *[]){ NULL },
			      "RUNNER_DIR=/canonical\nBOT_RUNNER_DIR=/alias\n", err, sizeof(err)), 0);
	assert_string_equal(s.runner_dir, "/canonical");
	settings_free(&s);

	/* An alias in the environment beats the canonical name in a file. */
	settings_init(&s);
	assert_int_equal(load(&s, (char *[]){ "BOT_RUNNER_DIR=/env", NULL },
			      "RUNNER_DIR=/file\n", err, sizeof(err)), 0);
	assert_string_equal(s.runner_dir, "/env");
	settings_free(&s);
}

static void expect_bad(const char *var_eq_value, const char *want)
{
	char *env[] = { (char *)var_eq_value, NULL };
	struct settings s;
	char err[512];

	settings_init(&s);
	assert_int_equal(load(&s, env, NULL, err, sizeof(err)), -EINVAL);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
	settings_free(&s);
}

static void test_strict_values(void **state)
{
	(void)state;
	expect_bad("MAX_SCRIPT_SIZE=12abc", "MAX_SCRIPT_SIZE: invalid value '12abc' (env MAX_SCRIPT_SIZE)");
	expect_bad("MAX_SCRIPT_SIZE=-1", "MAX_SCRIPT_SIZE");
	expect_bad("MAX_SCRIPT_SIZE=0", "must be more than 0");
	expect_bad("MAX_SCRIPT_SIZE= 10", "MAX_SCRIPT_SIZE");
	expect_bad("MAX_EXECUTION_TIME=1 h", "MAX_EXECUTION_TIME");
	expect_bad("MAX_EXECUTION_TIME=99999999999999999999", "MAX_EXECUTION_TIME");
	expect_bad("MAX_EXECUTION_TIME=0", "must be more than 0");
	expect_bad("MAX_CONCURRENT_SCRIPTS=0", "MAX_CONCURRENT_SCRIPTS");
	expect_bad("MAX_CONCURRENT_SCRIPTS=5.5", "MAX_CONCURRENT_SCRIPTS");
	expect_bad("RUNNER_EXEC_MODE=exec", "expected interpreter or direct");
	expect_bad("RUNNER_ALLOWED_TYPES=.p/y", "RUNNER_ALLOWED_TYPES");
	expect_bad("RUNNER_ALLOWED_TYPES=,", "no type allowed");
	expect_bad("RUNNER_CONTAINER=dockr", "RUNNER_CONTAINER");
}

static void test_good_values(void **state)
{
	char *env[] = { "MAX_SCRIPT_SIZE=10MB", "MAX_EXECUTION_TIME=1.5m",
			"RUNNER_ALLOWED_TYPES=py, .JS", "RUNNER_EXEC_MODE=direct",
			"RUNNER_CONTAINER=none", "SCRIPTS_DIR=/abs/scripts",
			"RUNNER_VENV_DIR=v2", NULL };
	struct settings s;
	char err[256], buf[64];

	(void)state;
	settings_init(&s);
	assert_int_equal(load(&s, env, NULL, err, sizeof(err)), 0);
	assert_int_equal(s.max_script_size, 10000000);
	assert_int_equal(s.max_execution_ns, 90ULL * 1000000000ULL);
	assert_int_equal(s.n_types, 2);
	assert_string_equal(s.types[0], ".py");
	assert_string_equal(s.types[1], ".js");
	assert_int_equal(s.exec_mode, EXEC_DIRECT);
	assert_string_equal(s.container, "none");
	assert_string_equal(s.scripts_dir, "/abs/scripts");
	assert_string_equal(s.venv_dir, "/state/v2");
	assert_string_equal(settings_display(&s, SET_MAX_EXECUTION_TIME, buf, sizeof(buf)), "90s");
	settings_free(&s);
}

static void test_envfile_syntax_error(void **state)
{
	struct settings s;
	char err[256];

	(void)state;
	settings_init(&s);
	write_env("A=1\nMAX_SCRIPT_SIZE='10\n");
	assert_int_equal(settings_load_envfile(&s, envpath, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ".env:2: unterminated single quote in value of MAX_SCRIPT_SIZE"));
	settings_free(&s);
}

static void test_lookup_and_unknown(void **state)
{
	struct settings s;

	(void)state;
	settings_init(&s);
	assert_int_equal(settings_lookup("BOT_RUNNER_DIR"), SET_RUNNER_DIR);
	assert_int_equal(settings_lookup("BLITZ_PYTHON"), SET_PYTHON);
	assert_int_equal(settings_lookup("MAX_CONCURRENT_SCRIPTS"), SET_MAX_CONCURRENT);
	assert_int_equal(settings_lookup("REDIS_URL"), -1);
	assert_int_equal(settings_set(&s, "NOPE", "x", SRC_FLAG, "flag"), -ENOENT);
	/* A weaker source does not replace a stronger one. */
	assert_int_equal(settings_set(&s, "RUNNER_NODE", "/a", SRC_ENV, "env"), 0);
	assert_int_equal(settings_set(&s, "RUNNER_NODE", "/b", SRC_ENVFILE, "file"), 1);
	assert_string_equal(s.v[SET_RUNNER_DIR].raw ? "x" : "unset", "unset");
	assert_string_equal(s.v[SET_NODE].raw, "/a");
	settings_free(&s);
}

static void test_state_dir_default(void **state)
{
	struct settings s;
	char err[256];
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	char *xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;

	(void)state;
	setenv("XDG_STATE_HOME", "/xdg", 1);
	settings_init(&s);
	assert_int_equal(settings_finalize(&s, err, sizeof(err)), 0);
	assert_string_equal(s.state_dir, "/xdg/fieldrig-runner");
	settings_free(&s);

	unsetenv("XDG_STATE_HOME");
	unsetenv("HOME");
	settings_init(&s);
	assert_int_equal(settings_finalize(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "RUNNER_STATE_DIR"));
	settings_free(&s);
	if (home)
		setenv("HOME", home, 1);
	if (xdg)
		setenv("XDG_STATE_HOME", xdg, 1);
	free(home);
	free(xdg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_envfile_bare_seconds),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_strict_values),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_envfile_syntax_error),
		cmocka_unit_test(test_lookup_and_unknown),
		cmocka_unit_test(test_state_dir_default),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
