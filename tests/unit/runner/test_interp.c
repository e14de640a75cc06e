/* Unit tests of runner/interp.c: the interpreter choice order and its
 * verification, with fake interpreters (shell scripts) in a private PATH. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "interp.h"
#include "settings.h"
#include "testutil.h"

static char dir[] = "/tmp/test_interp.XXXXXX";
static char bin[128], bin2[128], project[128];

static void make_exe(const char *path, const char *body, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
	char p[256];

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(bin, sizeof(bin), "%s/bin", dir);
	snprintf(bin2, sizeof(bin2), "%s/bin2", dir);
	snprintf(project, sizeof(project), "%s/project", dir);
	mkdir(bin, 0755);
	mkdir(bin2, 0755);
	mkdir(project, 0755);
	snprintf(p, sizeof(p), "%s/.venv", project);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/.venv/bin", project);
	mkdir(p, 0755);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tu_rm_tree(dir);
}

static void settings_with(struct settings *s, const char *name, const char *value)
{
	char err[256];

	settings_init(s);
	settings_set(s, "RUNNER_STATE_DIR", dir, SRC_FLAG, "flag --state");
	if (name)
		settings_set(s, name, value, SRC_ENV, "env test");
	assert_int_equal(settings_finalize(s, err, sizeof(err)), 0);
}

static void test_run_and_exec_errno(void **state)
{
	char *ok[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	char *missing[] = { "/nonexistent/interp", NULL };
	char *slow[] = { "/bin/sh", "-c", "sleep 5", NULL };
	char out[64];
	int ws = 0;

	(void)state;
	assert_int_equal(interp_run(ok, 5000, &ws, out, sizeof(out)), 0);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 3);
	assert_string_equal(out, "out\nerr\n");
	/* "could not exec" is not "exited 127". */
	assert_int_equal(interp_run(missing, 5000, &ws, out, sizeof(out)), -ENOENT);
	assert_int_equal(interp_run(slow, 200, &ws, NULL, 0), -ETIMEDOUT);
}

static void test_explicit_setting(void **state)
{
	struct interp_env e = { .timeout_ms = 5000 };
	struct interp_choice c;
	struct settings s;
	char good[256], noexec[256];

	(void)state;
	snprintf(good, sizeof(good), "%s/mypython", dir);
	make_exe(good, "exit 0", 0755);
	settings_with(&s, "BLITZ_PYTHON", good);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_string_equal(c.path, good);
	assert_true(c.explicit_setting);
	assert_int_equal(c.n_args, 1);
	assert_string_equal(c.args[0], "-u");
	assert_non_null(strstr(c.reason, "RUNNER_PYTHON"));
	settings_free(&s);

	/* Present but without the execute bit: a configuration error that
	 * names the setting and the path. */
	snprintf(noexec, sizeof(noexec), "%s/noexec-python", dir);
	make_exe(noexec, "exit 0", 0644);
	settings_with(&s, "RUNNER_PYTHON", noexec);
	/* root passes access(X_OK) only when some execute bit is set. */
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -EINVAL);
	assert_non_null(strstr(c.reason, "RUNNER_PYTHON"));
	assert_non_null(strstr(c.reason, noexec));
	assert_non_null(strstr(c.reason, "not executable"));
	settings_free(&s);

	settings_with(&s, "RUNNER_NODE", "/nonexistent/node");
	assert_int_equal(interp_choose(&s, LANG_NODE, &e, &c), -EINVAL);
	assert_non_null(strstr(c.reason, "/nonexistent/node: No such file or directory"));
	settings_free(&s);

	/* A bare program name is looked up on PATH. */
	e.path_var = dir;
	settings_with(&s, "RUNNER_PYTHON", "mypython");
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_string_equal(c.path, good);
	settings_free(&s);
	settings_with(&s, "RUNNER_PYTHON", "nosuchpython");
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -EINVAL);
	assert_non_null(strstr(c.reason, "nosuchpython: not found on PATH"));
	settings_free(&s);
	e.path_var = NULL;

	/* Exists and is executable but does not run. */
	make_exe(good, "echo 'broken interpreter' >&2; exit 1", 0755);
	settings_with(&s, "RUNNER_PYTHON", good);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -EINVAL);
	assert_non_null(strstr(c.reason, "exited with status 1: broken interpreter"));
	settings_free(&s);
}

/* How many lines the fake interpreter has appended to its log. */
static int runs_logged(const char *log)
{
	FILE *f = fopen(log, "r");
	int n = 0, c;

	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* With a cache directory, a passed check is not repeated while the file
 * stays the same; a changed file, or a failing one, is checked again. */
static void test_verification_cache(void **state)
{
	struct interp_env e = { .timeout_ms = 5000 };
	struct interp_choice c;
	struct settings s;
	char py[256], log[256], body[600], cache[256];

	(void)state;
	snprintf(py, sizeof(py), "%s/cachedpython", dir);
	snprintf(log, sizeof(log), "%s/cachedpython.log", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	mkdir(cache, 0755);
	snprintf(body, sizeof(body), "echo run >> '%s'; exit 0", log);
	make_exe(py, body, 0755);
	settings_with(&s, "RUNNER_PYTHON", py);
	/* Without a cache directory every choice runs the check. */
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_int_equal(runs_logged(log), 2);
	e.cache_dir = cache;
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_int_equal(runs_logged(log), 3);
	assert_string_equal(c.path, py);
	/* Another file at the same path (new inode, size, times): checked
	 * again, and a failure is reported, not served from the cache. */
	unlink(py);
	snprintf(body, sizeof(body), "echo run >> '%s'; echo 'now broken' >&2; exit 1", log);
	make_exe(py, body, 0755);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -EINVAL);
	assert_non_null(strstr(c.reason, "now broken"));
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -EINVAL);
	assert_int_equal(runs_logged(log), 5);
	/* Losing the execute bit is seen before the cache is looked at. */
	unlink(py);
	snprintf(body, sizeof(body), "echo run >> '%s'; exit 0", log);
	make_exe(py, body, 0755);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_int_equal(runs_logged(log), 6);
	assert_int_equal(chmod(py, 0644), 0);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), -EINVAL);
	assert_non_null(strstr(c.reason, "not executable"));
	settings_free(&s);
}

static void test_venv_then_path(void **state)
{
	struct interp_env e = { .timeout_ms = 5000 };
	struct interp_choice c;
	struct settings s;
	char venvpy[256], py3[256], pathvar[300];

	(void)state;
	snprintf(venvpy, sizeof(venvpy), "%s/.venv/bin/python", project);
	make_exe(venvpy, "exit 0", 0755);
	snprintf(py3, sizeof(py3), "%s/python3", bin);
	make_exe(py3, "exit 0", 0755);
	snprintf(pathvar, sizeof(pathvar), "relative:%s:%s", bin2, bin);
	e.path_var = pathvar;

	settings_with(&s, "RUNNER_PROJECT_DIR", project);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_string_equal(c.path, venvpy);
	assert_non_null(strstr(c.reason, "project venv"));

	/* In a container the project venv is not used (field report 001). */
	e.in_container = true;
	e.container = "docker";
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_string_equal(c.path, py3);
	assert_non_null(strstr(c.reason, "in a container (docker)"));
	e.in_container = false;

	/* A broken venv falls through to PATH. */
	make_exe(venvpy, "exit 1", 0755);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_string_equal(c.path, py3);
	assert_non_null(strstr(c.reason, "project venv unusable"));
	settings_free(&s);
}

static void test_path_order_and_missing(void **state)
{
	struct interp_env e = { .timeout_ms = 5000 };
	struct interp_choice c;
	struct settings s;
	char p[256], pathvar[300];

	(void)state;
	settings_with(&s, NULL, NULL);
	snprintf(pathvar, sizeof(pathvar), "%s", bin2);
	e.path_var = pathvar;
	assert_int_equal(interp_choose(&s, LANG_NODE, &e, &c), -ENOENT);
	assert_string_equal(c.path, "");
	assert_non_null(strstr(c.reason, "set RUNNER_NODE"));

	/* A python3 that fails its test run is passed over for python. */
	snprintf(p, sizeof(p), "%s/python3", bin2);
	make_exe(p, "exit 9", 0755);
	snprintf(p, sizeof(p), "%s/python", bin2);
	make_exe(p, "exit 0", 0755);
	assert_int_equal(interp_choose(&s, LANG_PYTHON, &e, &c), 0);
	assert_string_equal(c.path, p);
	assert_non_null(strstr(c.reason, "python found on PATH"));
	settings_free(&s);
}

static void test_ts_choices(void **state)
{
	struct interp_env e = { .timeout_ms = 5000 };
	struct interp_choice c;
	struct settings s;
	char d[256], p[300], pathvar[300];

	(void)state;
	settings_with(&s, NULL, NULL);
	snprintf(d, sizeof(d), "%s/ts1", dir);
	mkdir(d, 0755);
	e.path_var = d;

	/* node 20: too old for type stripping. */
	snprintf(p, sizeof(p), "%s/node", d);
	make_exe(p, "[ \"$1\" = --version ] && echo v20.20.2; exit 0", 0755);
	assert_int_equal(interp_choose(&s, LANG_TS, &e, &c), -ENOENT);
	assert_non_null(strstr(c.reason, "older than 22.6"));
	assert_non_null(strstr(c.reason, "RUNNER_TS"));

	/* node 22.6 strips types behind a flag. */
	make_exe(p, "case \"$1\" in --version) echo v22.6.0;; "
		    "--experimental-strip-types) ;; *) exit 5;; esac", 0755);
	assert_int_equal(interp_choose(&s, LANG_TS, &e, &c), 0);
	assert_string_equal(c.path, p);
	assert_int_equal(c.n_args, 1);
	assert_string_equal(c.args[0], "--experimental-strip-types");

	/* tsx comes first when present. */
	snprintf(p, sizeof(p), "%s/tsx", d);
	make_exe(p, "exit 0", 0755);
	snprintf(pathvar, sizeof(pathvar), "%s", d);
	assert_int_equal(interp_choose(&s, LANG_TS, &e, &c), 0);
	assert_string_equal(c.path, p);
	assert_int_equal(c.n_args, 0);
	settings_free(&s);
}

static void test_lang_names(void **state)
{
	(void)state;
	assert_int_equal(interp_lang_from_name("python"), LANG_PYTHON);
	assert_int_equal(interp_lang_from_name("node"), LANG_NODE);
	assert_int_equal(interp_lang_from_name("ts"), LANG_TS);
	assert_int_equal(interp_lang_from_name("typescript"), LANG_TS);
	assert_int_equal(interp_lang_from_name("ruby"), -EINVAL);
	assert_string_equal(interp_lang_name(LANG_NODE), "node");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_and_exec_errno),
		cmocka_unit_test(test_explicit_setting),
		cmocka_unit_test(test_verification_cache),
		cmocka_unit_test(test_venv_then_path),
		cmocka_unit_test(test_path_order_and_missing),
		cmocka_unit_test(test_ts_choices),
		cmocka_unit_test(test_lang_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
