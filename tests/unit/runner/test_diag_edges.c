/* Path diagnostics' remaining hints and report fields: EDQUOT, ELOOP,
 * EXDEV, EIO with and without a mount, the sticky-directory and group
 * permission hints, owners without a passwd entry shown as numbers, file
 * types other than files and directories, relative paths whose nearest
 * existing parent is ".", and the mountinfo a missing table falls back to. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "diag.h"
#include "testutil.h"

struct fixture {
	char dir[64];
	char *canon;
	struct mount_table mt;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *text;

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/fieldrig-diage-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	chmod(f->dir, 0755);
	f->canon = realpath(f->dir, NULL);
	if (asprintf(&text, "1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
		     "2 1 0:50 / %s rw,nosuid - fuse.faultfs faultfs rw\n", f->canon) < 0)
		return -1;
	if (mount_table_parse(text, strlen(text), &f->mt, NULL, 0) < 0)
		return -1;
	free(text);
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
		 uid_t uid, gid_t gid, struct diag_report *r)
{
	struct diag_options o;

	diag_options_init(&o);
	o.mounts = f ? &f->mt : NULL;
	o.uid = uid;
	o.gid = gid;
	assert_int_equal(diag_path(op, path, err, &o, r), 0);
}

static void test_errno_hints(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char *line;

	diag(f, "write", f->dir, EDQUOT, 1234, 1234, &r);
	tu_assert_contains(r.hint, "disk quota of uid 1234 exceeded");
	diag_report_free(&r);

	diag(f, "open", f->dir, ELOOP, 0, 0, &r);
	tu_assert_contains(r.hint, "symlink loop");
	diag_report_free(&r);

	diag(f, "rename", f->dir, -EXDEV, 0, 0, &r);
	assert_int_equal(r.err, EXDEV);
	tu_assert_contains(r.hint, "different mounts");
	diag_report_free(&r);

	diag(f, "read", f->dir, EIO, 0, 0, &r);
	tu_assert_contains(r.hint, "I/O error from the filesystem (fuse.faultfs at ");
	tu_assert_contains(r.hint, "check the device or the FUSE daemon");
	assert_true(r.is_mountpoint);
	line = diag_format_line(&r);
	tu_assert_contains(line, "EIO");
	free(line);
	diag_report_free(&r);

	/* No mount table entry covers a relative path's "." here: bare hints. */
	{
		struct mount_table empty = { NULL, 0 };
		struct diag_options o;

		diag_options_init(&o);
		o.mounts = &empty;
		assert_int_equal(diag_path("read", f->dir, EIO, &o, &r), 0);
		assert_string_equal(r.hint, "I/O error from the filesystem");
		assert_false(r.have_mount);
		diag_report_free(&r);
		assert_int_equal(diag_path("write", f->dir, ENOSPC, &o, &r), 0);
		assert_string_equal(r.hint, "filesystem is full");
		diag_report_free(&r);
		assert_int_equal(diag_path("write", f->dir, EROFS, &o, &r), 0);
		assert_string_equal(r.hint, "read-only filesystem");
		diag_report_free(&r);
	}

	/* An errno without a hint. */
	diag(f, "open", f->dir, EMFILE, 0, 0, &r);
	assert_null(r.hint);
	diag_report_free(&r);
}

static void test_permission_hints(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char d[128];

	/* Sticky and writable: only the owner may remove entries. */
	snprintf(d, sizeof(d), "%s/sticky", f->dir);
	assert_int_equal(mkdir(d, 0755), 0);
	assert_int_equal(chmod(d, 01777), 0);
	diag(f, "unlink", d, EPERM, 1234, 1234, &r);
	tu_assert_contains(r.hint, "sticky directory");
	diag_report_free(&r);

	/* Group members judged by the group bits. */
	snprintf(d, sizeof(d), "%s/grp", f->dir);
	assert_int_equal(mkdir(d, 0750), 0);
	assert_int_equal(chmod(d, 0770), 0);
	if (chown(d, 4321, 4321) == 0) {
		diag(f, "mkdir", d, EACCES, 1234, 4321, &r);
		assert_null(strstr(r.hint ? r.hint : "", "not writable"));
		diag_report_free(&r);
		assert_int_equal(chmod(d, 0750), 0);
		diag(f, "mkdir", d, EACCES, 1234, 4321, &r);
		tu_assert_contains(r.hint, "directory not writable by uid 1234 (mode 0750");
		/* Nobody is called 4321 here: the number stands in. */
		assert_string_equal(r.owner, "4321");
		assert_string_equal(r.group, "4321");
		diag_report_free(&r);
		/* The owner by the owner bits. */
		assert_int_equal(chmod(d, 0570), 0);
		diag(f, "mkdir", d, EACCES, 4321, 1, &r);
		tu_assert_contains(r.hint, "directory not writable by uid 4321 (mode 0570");
		diag_report_free(&r);
	}
}

/* A directory on the way that the user cannot search is named, not the
 * mode of the file behind it (an interpreter under /root run as nobody). */
static void test_unsearchable_parent(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char d[128], p[160], want[256];
	struct stat st;
	int fd;

	snprintf(d, sizeof(d), "%s/locked", f->dir);
	assert_int_equal(mkdir(d, 0700), 0);
	assert_int_equal(chmod(d, 0700), 0);
	snprintf(p, sizeof(p), "%s/python3", d);
	fd = open(p, O_WRONLY | O_CREAT, 0755);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(d, &st), 0);
	snprintf(want, sizeof(want), "%s cannot be searched by uid 1234 (mode 0700 owner %u:%u)",
		 d, (unsigned int)st.st_uid, (unsigned int)st.st_gid);
	diag(f, "exec", p, EACCES, 1234, 1234, &r);
	tu_assert_contains(r.hint, want);
	assert_null(strstr(r.hint, "execute bit"));
	diag_report_free(&r);
	/* Searchable by others: the walk finds nothing, the file's own
	 * state is judged again. */
	assert_int_equal(chmod(d, 0711), 0);
	assert_int_equal(chmod(p, 0644), 0);
	diag(f, "exec", p, EACCES, 1234, 1234, &r);
	tu_assert_contains(r.hint, "has no execute bit");
	assert_null(strstr(r.hint, "cannot be searched"));
	diag_report_free(&r);
	/* Root searches anything; the same locked path says nothing of it. */
	assert_int_equal(chmod(d, 0700), 0);
	diag(f, "exec", p, EACCES, 0, 0, &r);
	assert_null(strstr(r.hint ? r.hint : "", "cannot be searched"));
	diag_report_free(&r);
}

static void test_file_types(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char p[128];
	json_t *j;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	snprintf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0644), 0);
	diag(f, "open", p, 0, 0, 0, &r);
	j = diag_report_to_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "fifo");
	json_decref(j);
	diag_report_free(&r);

	snprintf(p, sizeof(p), "%s/link", f->dir);
	assert_int_equal(symlink("nowhere", p), 0);
	diag(f, "open", p, ENOENT, 0, 0, &r);
	j = diag_report_to_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "symlink");
	assert_string_equal(json_string_value(json_object_get(j, "errno_name")), "ENOENT");
	json_decref(j);
	diag_report_free(&r);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", f->dir);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	diag(f, "open", sa.sun_path, 0, 0, 0, &r);
	j = diag_report_to_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "socket");
	json_decref(j);
	diag_report_free(&r);
	close(s);

	diag(f, "open", "/dev/null", 0, 0, 0, &r);
	j = diag_report_to_json(&r);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "device");
	json_decref(j);
	diag_report_free(&r);
}

static void test_relative_and_defaults(void **state)
{
	struct fixture *f = *state;
	struct diag_report r;
	char cwd[4096], *line;
	struct diag_options o;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	/* A relative path none of whose parts exist: "." is examined. */
	diag(NULL, "mkdir", "no/such//dir//", ENOENT, 0, 0, &r);
	assert_string_equal(r.examined, ".");
	tu_assert_contains(r.hint, "nearest existing parent is .");
	diag_report_free(&r);
	/* An empty path and no op: "access" on ".". */
	diag(NULL, NULL, NULL, 0, 0, 0, &r);
	assert_string_equal(r.op, "access");
	assert_string_equal(r.examined, ".");
	diag_report_free(&r);
	assert_int_equal(chdir(cwd), 0);

	/* A mountinfo that cannot be read makes a thinner report. */
	diag_options_init(&o);
	o.mountinfo_path = "/nonexistent/mountinfo";
	assert_int_equal(diag_path("open", f->dir, EIO, &o, &r), 0);
	assert_false(r.have_mount);
	assert_true(r.have_stat);
	diag_report_free(&r);

	/* diag_line: the default options and the real mount table. */
	line = diag_line("open", f->dir, ENOTDIR);
	tu_assert_contains(line, f->dir);
	tu_assert_contains(line, "not a directory");
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_errno_hints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permission_hints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsearchable_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_and_defaults, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
