/* Path diagnostics (runner/diag.c): the hint a user reads for each of the
 * field reports' failures.  Mount facts come from crafted mount tables that
 * put a mount point at the test's own temp dir, so no real mount is needed. */
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
#include <unistd.h>
#include <cmocka.h>

#include "diag.h"
#include "testutil.h"

struct fixture {
	char dir[64];
	char *canon;
	struct mount_table mt;
};

/* A mount table with "/" and, mounted on the temp dir, a tmpfs with the
 * given per-mount options. */
static void mount_here(struct fixture *f, const char *opts)
{
	char *text;
	int n;

	mount_table_free(&f->mt);
	n = asprintf(&text, "1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
		     "2 1 0:50 / %s %s - tmpfs tmpfs rw,size=1024k\n", f->canon, opts);
	assert_true(n > 0);
	assert_int_equal(mount_table_parse(text, strlen(text), &f->mt, NULL, 0), 0);
	free(text);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/fieldrig-diag-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	chmod(f->dir, 0755);
	f->canon = realpath(f->dir, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tu_rm_tree(f->dir);
	mount_table_free(&f->mt);
	free(f->canon);
	free(f);
	return 0;
}

static void diag(struct fixture *f, const char *op, const char *path, int err,
		 uid_t uid, bool runner_dir, struct diag_report *r)
{
	struct diag_options o;

	diag_options_init(&o);
	o.mounts = &f->mt;
	o.uid = uid;
	o.gid = uid;
	o.runner_dir = runner_dir;
	assert_int_equal(diag_path(op, path, err, &o, r), 0);
}

static void test_noexec_runner_dir(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char path[256], *line;
	json_t *j;

	mount_here(f, "rw,nosuid,nodev,noexec,relatime");
	snprintf(path, sizeof(path), "%s/bot_runners", f->dir);
	mkdir(path, 0770);
	chmod(path, 0770);
	diag(f, "exec", path, EACCES, 1000, true, &r);
	assert_true(r.have_mount);
	assert_string_equal(r.mount_point, f->canon);
	assert_true(r.mount_flags & MOUNT_F_NOEXEC);
	tu_assert_contains(r.hint, "/bot_runners is on a noexec mount");
	tu_assert_contains(r.hint, "interpreter mode is unaffected, direct mode cannot work here");
	line = diag_format_line(&r);
	tu_assert_contains(line, "exec ");
	tu_assert_contains(line, "Permission denied (EACCES)");
	tu_assert_contains(line, "owner root:root mode 0770");
	tu_assert_contains(line, "(tmpfs, rw,nosuid,nodev,noexec,relatime)");
	assert_null(strchr(line, '\n'));
	free(line);
	j = diag_report_to_json(&r);
	assert_true(json_is_true(json_object_get(json_object_get(j, "mount"), "noexec")));
	assert_true(json_is_false(json_object_get(json_object_get(j, "mount"), "ro")));
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "0770");
	assert_string_equal(json_string_value(json_object_get(j, "errno_name")), "EACCES");
	assert_string_equal(json_string_value(json_object_get(j, "owner")), "root");
	json_decref(j);
	diag_report_free(&r);
}

/* With no error at all, a runner dir on a noexec mount still gets the
 * hint: that is what doctor shows before anything fails. */
static void test_noexec_without_error(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;

	mount_here(f, "rw,noexec");
	diag(f, "check", f->dir, 0, 0, true, &r);
	tu_assert_contains(r.hint, "noexec mount");
	diag_report_free(&r);
	diag(f, "check", f->dir, 0, 0, false, &r);
	assert_null(r.hint);
	diag_report_free(&r);
}

static void test_not_writable_by_uid(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char path[256];

	mount_here(f, "rw");
	snprintf(path, sizeof(path), "%s/scripts/new.py", f->dir);
	snprintf(path, sizeof(path), "%s/scripts", f->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/scripts/new.py", f->dir);
	diag(f, "open", path, EACCES, 1000, false, &r);
	/* The file does not exist: its directory is examined. */
	tu_assert_contains(r.examined, "/scripts");
	assert_string_equal(r.hint, "directory not writable by uid 1000 (mode 0755 owner root)");
	diag_report_free(&r);
}

static void test_filesystem_full(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;

	mount_here(f, "rw");
	diag(f, "write", f->dir, ENOSPC, 0, false, &r);
	tu_assert_contains(r.hint, "filesystem is full");
	diag_report_free(&r);
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;

	mount_here(f, "ro,relatime");
	diag(f, "mkdir", f->dir, EROFS, 0, false, &r);
	tu_assert_contains(r.hint, "read-only filesystem");
	diag_report_free(&r);
	/* EACCES on a ro mount is explained by the mount, not the mode. */
	diag(f, "open", f->dir, EACCES, 1000, false, &r);
	tu_assert_contains(r.hint, "read-only filesystem");
	diag_report_free(&r);
}

static void test_busy_mountpoint(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char path[256];

	mount_here(f, "rw");
	diag(f, "rmdir", f->dir, EBUSY, 0, false, &r);
	assert_true(r.is_mountpoint);
	assert_string_equal(r.hint, "directory is a mountpoint (EBUSY): "
			    "empty it in place instead of removing it");
	diag_report_free(&r);
	snprintf(path, sizeof(path), "%s/sub", f->dir);
	mkdir(path, 0755);
	diag(f, "rmdir", path, EBUSY, 0, false, &r);
	assert_false(r.is_mountpoint);
	tu_assert_contains(r.hint, "in use");
	diag_report_free(&r);
}

static void test_missing_path_names_parent(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char path[256];

	mount_here(f, "rw");
	snprintf(path, sizeof(path), "%s/a/b/c", f->dir);
	diag(f, "open", path, ENOENT, 0, false, &r);
	assert_string_equal(r.examined, f->dir);
	tu_assert_contains(r.hint, "nearest existing parent is");
	assert_string_equal(r.mount_point, f->canon);
	diag_report_free(&r);
}

static void test_no_execute_bit(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char path[256];
	int fd;

	mount_here(f, "rw");
	snprintf(path, sizeof(path), "%s/script.py", f->dir);
	fd = open(path, O_WRONLY | O_CREAT, 0640);
	assert_true(fd >= 0);
	close(fd);
	diag(f, "exec", path, EACCES, 1000, false, &r);
	tu_assert_contains(r.hint, "has no execute bit (mode 0640)");
	diag_report_free(&r);
}

/* Exec refused though mode and mount allow it: a faultfs rule, an LSM. */
static void test_exec_refused_by_policy(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char path[256];
	int fd;

	mount_here(f, "rw,nosuid");
	snprintf(path, sizeof(path), "%s/probe", f->dir);
	fd = open(path, O_WRONLY | O_CREAT, 0700);
	assert_true(fd >= 0);
	close(fd);
	diag(f, "exec", path, EACCES, 0, true, &r);
	tu_assert_contains(r.hint, "exec refused although");
	tu_assert_contains(r.hint, "direct mode cannot work here");
	diag_report_free(&r);
	diag(f, "exec", path, EACCES, 0, false, &r);
	assert_null(strstr(r.hint, "direct mode"));
	diag_report_free(&r);
}

static void test_real_mountinfo_default(void **state)
{
	char *line;

	(void)state;
	line = diag_line("open", "/proc/self/nonexistent", ENOENT);
	assert_non_null(line);
	tu_assert_contains(line, "open /proc/self/nonexistent: No such file or directory (ENOENT)");
	tu_assert_contains(line, "mount /proc (proc,");
	free(line);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_noexec_runner_dir),
		T(test_noexec_without_error),
		T(test_not_writable_by_uid),
		T(test_filesystem_full),
		T(test_read_only),
		T(test_busy_mountpoint),
		T(test_missing_path_names_parent),
		T(test_no_execute_bit),
		T(test_exec_refused_by_policy),
		T(test_real_mountinfo_default),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
