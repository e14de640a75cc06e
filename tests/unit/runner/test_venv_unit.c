/* The quick parts of runner/venv.c: running a command, emptying a directory
 * in place without following symlinks, the package cache, and status of a
 * missing or fake venv.  Building real venvs takes seconds each and lives in
 * the integration suite (tests/integration/runner/test_venv.c). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "venv.h"
#include "testutil.h"

static void test_run_captures_output_and_status(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	char out[64];
	int status = 0;

	(void)state;
	assert_int_equal(venv_run(argv, 5000, &status, out, sizeof(out)), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 3);
	assert_non_null(strstr(out, "out\n"));
	assert_non_null(strstr(out, "err\n"));
}

static void test_run_truncates_output(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "yes | head -c 100000", NULL };
	char out[16];
	int status = 0;

	(void)state;
	assert_int_equal(venv_run(argv, 5000, &status, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 15);
}

/* The exec errno comes back as such, not as exit status 127. */
static void test_run_exec_errors(void **state)
{
	struct tu_tmpdir *f = *state;
	char path[128];
	char *missing[] = { "/nonexistent/python", NULL };
	char *noexec[] = { path, NULL };

	assert_int_equal(venv_run(missing, 1000, NULL, NULL, 0), -ENOENT);
	snprintf(path, sizeof(path), "%s/script", f->path);
	tu_write_file(path, "#!/bin/sh\nexit 0\n", 0640);
	assert_int_equal(venv_run(noexec, 1000, NULL, NULL, 0), -EACCES);
}

static void test_run_timeout_kills(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "sleep 30", NULL };

	(void)state;
	assert_int_equal(venv_run(argv, 200, NULL, NULL, 0), -ETIMEDOUT);
}

/* A grandchild that keeps the output pipe open must not hold us up once
 * the child itself has exited. */
static void test_run_does_not_wait_for_grandchild(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "sleep 5 & exit 0", NULL };
	int status = -1;

	(void)state;
	assert_int_equal(venv_run(argv, 2000, &status, NULL, 0), 0);
	assert_int_equal(status, 0);
}

static void test_empty_dir_in_place_no_follow(void **state)
{
	struct tu_tmpdir *f = *state;
	char venv[128], outside[128], p[256], err[256] = "";
	struct stat st;

	snprintf(venv, sizeof(venv), "%s/venv", f->path);
	snprintf(outside, sizeof(outside), "%s/outside", f->path);
	mkdir(venv, 0755);
	mkdir(outside, 0755);
	snprintf(p, sizeof(p), "%s/keep", outside);
	tu_write_file(p, "precious", 0644);
	snprintf(p, sizeof(p), "%s/lib", venv);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/lib/python3.11", venv);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/lib/python3.11/site.py", venv);
	tu_write_file(p, "x", 0644);
	snprintf(p, sizeof(p), "%s/pyvenv.cfg", venv);
	tu_write_file(p, "home = /usr/bin\n", 0644);
	/* Symlinks to a directory and a file outside: removed, not followed. */
	snprintf(p, sizeof(p), "%s/lib64", venv);
	assert_int_equal(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/link", venv);
	assert_int_equal(symlink("../outside/keep", p), 0);

	assert_int_equal(venv_empty_dir(venv, err, sizeof(err)), 0);
	assert_int_equal(stat(venv, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(rmdir(venv), 0);  /* really empty */
	snprintf(p, sizeof(p), "%s/keep", outside);
	assert_int_equal(access(p, F_OK), 0);
}

static void test_empty_dir_refuses_symlink_dir(void **state)
{
	struct tu_tmpdir *f = *state;
	char link[128], err[256] = "";

	snprintf(link, sizeof(link), "%s/venvlink", f->path);
	assert_int_equal(symlink(f->path, link), 0);
	assert_int_equal(venv_empty_dir(link, err, sizeof(err)), -ENOTDIR);
	assert_non_null(strstr(err, "venvlink: is a symlink, not followed"));
	assert_int_equal(access(link, F_OK), 0);
}

static void test_package_cache(void **state)
{
	struct tu_tmpdir *f = *state;
	char path[128], err[256] = "";
	json_t *j;
	struct stat st1, st2;

	snprintf(path, sizeof(path), "%s/state/package_cache.json", f->path);
	assert_int_equal(venv_package_cache_ensure(path, err, sizeof(err)), 0);
	j = json_load_file(path, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_object(json_object_get(j, "packages")));
	assert_int_equal(json_object_size(json_object_get(j, "packages")), 0);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "last_cleanup"))), 25);
	json_decref(j);

	/* An existing valid cache is kept as it is. */
	tu_write_file(path, "{\"packages\": {\"numpy\": \"1.26\"}, \"last_cleanup\": \"x\"}", 0640);
	stat(path, &st1);
	assert_int_equal(venv_package_cache_ensure(path, err, sizeof(err)), 0);
	stat(path, &st2);
	assert_int_equal(st1.st_ino, st2.st_ino);

	tu_write_file(path, "{\"packages\": []}", 0640);
	assert_int_equal(venv_package_cache_ensure(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a package cache"));
	tu_write_file(path, "{broken", 0640);
	assert_int_equal(venv_package_cache_ensure(path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 1"));
}

static void test_status_missing_and_fake(void **state)
{
	struct tu_tmpdir *f = *state;
	struct venv_options o = { 0 };
	struct venv_status st;
	char venv[128], p[256];
	json_t *j;

	snprintf(venv, sizeof(venv), "%s/venv", f->path);
	o.dir = venv;
	assert_int_equal(venv_status(&o, &st), 0);
	assert_false(st.exists);
	assert_false(st.healthy);
	assert_non_null(strstr(st.reason, "missing"));
	j = venv_status_to_json(&st);
	assert_true(json_is_false(json_object_get(j, "exists")));
	json_decref(j);
	venv_status_free(&st);

	/* A directory with pyvenv.cfg but no interpreter is broken. */
	mkdir(venv, 0755);
	snprintf(p, sizeof(p), "%s/pyvenv.cfg", venv);
	tu_write_file(p, "home = /usr/bin\n", 0644);
	assert_int_equal(venv_status(&o, &st), 0);
	assert_true(st.exists);
	assert_false(st.healthy);
	assert_non_null(strstr(st.reason, "cannot run"));
	assert_non_null(strstr(st.reason, "bin/python"));
	venv_status_free(&st);
}

/* In a container the system interpreter is used and nothing is created. */
static void test_container_mode_makes_no_venv(void **state)
{
	struct tu_tmpdir *f = *state;
	struct venv_options o = { 0 };
	struct venv_status st;
	char venv[128], cache[128];

	snprintf(venv, sizeof(venv), "%s/venv", f->path);
	snprintf(cache, sizeof(cache), "%s/package_cache.json", f->path);
	o.dir = venv;
	o.python = "/bin/sh";   /* runs "-c pass" fast enough */
	o.package_cache = cache;
	o.in_container = true;
	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_true(st.in_container);
	assert_string_equal(st.python, "/bin/sh");
	assert_non_null(strstr(st.action, "in a container"));
	venv_status_free(&st);
	assert_int_equal(venv_recreate(&o, &st), 0);
	venv_status_free(&st);
	assert_int_equal(access(venv, F_OK), -1);
	assert_int_equal(access(cache, F_OK), 0);
}

static void test_default_paths(void **state)
{
	char *d = venv_default_dir("/var/lib/runner"), *c = venv_default_package_cache("/s");

	(void)state;
	assert_string_equal(d, "/var/lib/runner/venv");
	assert_string_equal(c, "/s/package_cache.json");
	free(d);
	free(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_tmpdir_setup, tu_tmpdir_teardown)
	const struct CMUnitTest tests[] = {
		T(test_run_captures_output_and_status),
		T(test_run_truncates_output),
		T(test_run_exec_errors),
		T(test_run_timeout_kills),
		T(test_run_does_not_wait_for_grandchild),
		T(test_empty_dir_in_place_no_follow),
		T(test_empty_dir_refuses_symlink_dir),
		T(test_package_cache),
		T(test_status_missing_and_fake),
		T(test_container_mode_makes_no_venv),
		T(test_default_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
