/* venv ensure/status/recreate on real directories with Debian's
 * /usr/bin/python3 (field report 001), including recreation when the venv
 * directory is a real mountpoint, where rmdir and rename give EBUSY.  Each
 * build takes several seconds, so the runs are few. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "mounts_b.h"
#include "venv.h"
#include "testutil.h"

#define PYTHON "/usr/bin/python3"

struct fixture {
	char base[64];
	char venv[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/fieldrig-venv-XXXXXX");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->venv, sizeof(f->venv), "%s/state/venv", f->base);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	remove_tree_b(f->base);
	free(f);
	return 0;
}

/* Nothing but the venv is left in its parent (no ".old-" dirs). */
static void assert_parent_clean(const char *base)
{
	char state[256];
	DIR *d;
	struct dirent *de;

	snprintf(state, sizeof(state), "%s/state", base);
	d = opendir(state);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "venv"))
			fail_msg("left behind: %s/%s", state, de->d_name);
	closedir(d);
}

static void test_create_break_recreate(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = { .dir = f->venv, .python = PYTHON };
	struct venv_status st;
	char py[256];

	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_string_equal(st.action, "created");
	assert_true(st.healthy);
	assert_true(st.pip_present);
	snprintf(py, sizeof(py), "%s/bin/python", f->venv);
	assert_string_equal(st.python, py);
	venv_status_free(&st);

	assert_int_equal(venv_status(&o, &st), 0);
	assert_true(st.healthy);
	assert_null(st.action);
	venv_status_free(&st);

	/* ensure on a healthy venv does nothing. */
	assert_int_equal(venv_ensure(&o, &st), 0);
	tu_assert_contains(st.action, "none");
	venv_status_free(&st);

	/* Break it: the interpreter link is gone. */
	assert_int_equal(unlink(py), 0);
	assert_int_equal(venv_status(&o, &st), 0);
	assert_true(st.exists);
	assert_false(st.healthy);
	tu_assert_contains(st.reason, "broken");
	venv_status_free(&st);

	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_string_equal(st.action, "recreated");
	assert_true(st.healthy);
	venv_status_free(&st);
	assert_parent_clean(f->base);
}

/* The field report's failure: the venv directory is a volume mountpoint.
 * Here a tmpfs is mounted on it, so EBUSY is the kernel's own. */
static void test_recreate_on_busy_mountpoint(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = { .dir = f->venv, .python = PYTHON };
	struct venv_status st;
	char state_dir[128], aside[160];
	struct stat sv, sp;

	snprintf(state_dir, sizeof(state_dir), "%s/state", f->base);
	assert_int_equal(mkdir(state_dir, 0755), 0);
	assert_int_equal(tmpfs_at(f->venv, 0, "mode=0755"), 0);
	/* The premise: the directory itself cannot be removed or moved. */
	assert_int_equal(rmdir(f->venv), -1);
	assert_int_equal(errno, EBUSY);
	snprintf(aside, sizeof(aside), "%s.moved", f->venv);
	assert_int_equal(rename(f->venv, aside), -1);
	assert_int_equal(errno, EBUSY);

	/* An empty mountpoint is not a venv: ensure builds in place. */
	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_true(st.healthy);
	tu_assert_contains(st.action, "recreated in place");
	tu_assert_contains(st.action, "Device or resource busy");
	venv_status_free(&st);

	/* A full recreate of a healthy venv on the busy dir. */
	assert_int_equal(venv_recreate(&o, &st), 0);
	assert_true(st.healthy);
	assert_true(st.pip_present);
	tu_assert_contains(st.action, "recreated in place");
	assert_null(strstr(st.reason, "busy"));
	venv_status_free(&st);

	/* Still the same mountpoint, nothing left beside it. */
	assert_int_equal(stat(f->venv, &sv), 0);
	assert_int_equal(stat(state_dir, &sp), 0);
	assert_true(sv.st_dev != sp.st_dev);
	assert_parent_clean(f->base);
}

/* A venv dir given with a trailing slash that is a symlink to the real
 * directory: rebuilt where the link points, the link kept.  A regular file
 * where the venv belongs is replaced. */
static void test_symlink_trailing_slash_and_file(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = { .python = PYTHON };
	struct venv_status st;
	char state_dir[128], real[128], slash[160], file[160];
	struct stat sb;

	snprintf(state_dir, sizeof(state_dir), "%s/state", f->base);
	snprintf(real, sizeof(real), "%s/real-venv", f->base);
	assert_int_equal(mkdir(state_dir, 0755), 0);
	assert_int_equal(mkdir(real, 0755), 0);
	assert_int_equal(symlink(real, f->venv), 0);
	snprintf(slash, sizeof(slash), "%s/", f->venv);
	o.dir = slash;
	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_true(st.healthy);
	tu_assert_contains(st.python, "/real-venv/bin/python");
	venv_status_free(&st);
	assert_int_equal(lstat(f->venv, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	assert_parent_clean(f->base);

	snprintf(file, sizeof(file), "%s/state/venv2", f->base);
	fclose(fopen(file, "w"));
	o.dir = file;
	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_true(st.healthy);
	assert_string_equal(st.action, "created (replaced a non-directory)");
	venv_status_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_break_recreate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recreate_on_busy_mountpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_trailing_slash_and_file, setup, teardown),
	};
	int rc;

	if (access(PYTHON, X_OK) < 0) {
		fprintf(stderr, "skipped: %s not found\n", PYTHON);
		return 77;
	}
	rc = private_mount_ns();
	if (rc)
		return rc;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
