/* mountinfo parsing (runner/mountinfo.c): escapes, optional fields, the
 * " - " separator, malformed lines, mount lookup, and a real read of
 * /proc/self/mountinfo. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mountinfo.h"

static const char sample[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
	"23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
	"40 22 0:35 / /mnt/with\\040space rw,noexec shared:5 master:2 - tmpfs my\\040tmp rw,size=1024k\n"
	"41 22 0:36 / /mnt/tab\\011and\\012newline ro,nosuid - tmpfs tmpfs ro\n"
	"42 22 0:37 /sub /mnt/back\\134slash rw,nodev - fuse.faultfs faultfs rw,user_id=0\n"
	"43 22 0:38 / /mnt/a rw - tmpfs first rw\n"
	"44 43 0:39 / /mnt/a rw,noexec - tmpfs second rw\n"
	"45 22 0:40 / /mnt/ab rw - tmpfs ab rw\n";

static void parse_ok(struct mount_table *t)
{
	char err[256] = "";

	assert_int_equal(mount_table_parse(sample, sizeof(sample) - 1, t, err, sizeof(err)), 0);
	assert_int_equal(t->n, 8);
}

static void test_fields(void **state)
{
	struct mount_table t;
	const struct mount_entry *e;

	(void)state;
	parse_ok(&t);
	e = &t.entries[0];
	assert_int_equal(e->mount_id, 22);
	assert_int_equal(e->parent_id, 1);
	assert_int_equal(e->dev_major, 8);
	assert_int_equal(e->dev_minor, 1);
	assert_string_equal(e->root, "/");
	assert_string_equal(e->mount_point, "/");
	assert_string_equal(e->mount_options, "rw,relatime");
	assert_string_equal(e->optional, "shared:1");
	assert_string_equal(e->fs_type, "ext4");
	assert_string_equal(e->source, "/dev/sda1");
	assert_string_equal(e->super_options, "rw,errors=remount-ro");
	assert_int_equal(e->flags, 0);

	e = &t.entries[1];
	assert_int_equal(e->flags, MOUNT_F_NOSUID | MOUNT_F_NODEV | MOUNT_F_NOEXEC);
	mount_table_free(&t);
}

static void test_escapes_and_optional_fields(void **state)
{
	struct mount_table t;

	(void)state;
	parse_ok(&t);
	assert_string_equal(t.entries[2].mount_point, "/mnt/with space");
	assert_string_equal(t.entries[2].source, "my tmp");
	assert_string_equal(t.entries[2].optional, "shared:5 master:2");
	assert_true(t.entries[2].flags & MOUNT_F_NOEXEC);
	assert_string_equal(t.entries[3].mount_point, "/mnt/tab\tand\nnewline");
	assert_string_equal(t.entries[3].optional, "");
	assert_int_equal(t.entries[3].flags, MOUNT_F_RO | MOUNT_F_NOSUID);
	assert_string_equal(t.entries[4].mount_point, "/mnt/back\\slash");
	assert_string_equal(t.entries[4].root, "/sub");
	assert_string_equal(t.entries[4].fs_type, "fuse.faultfs");
	assert_int_equal(t.entries[4].flags, MOUNT_F_NODEV);
	mount_table_free(&t);
}

static void test_find_longest_prefix_and_stacked(void **state)
{
	struct mount_table t;
	const struct mount_entry *e;

	(void)state;
	parse_ok(&t);
	e = mount_table_find_canonical(&t, "/mnt/a/x/y");
	assert_non_null(e);
	/* Two mounts on /mnt/a: the one mounted last is what paths see. */
	assert_string_equal(e->source, "second");
	e = mount_table_find_canonical(&t, "/mnt/ab/x");
	assert_string_equal(e->source, "ab");
	/* "/mnt/a" is not a prefix of "/mnt/abc" at a separator. */
	e = mount_table_find_canonical(&t, "/mnt/abc");
	assert_string_equal(e->mount_point, "/");
	e = mount_table_find_canonical(&t, "/mnt/with space/f");
	assert_string_equal(e->source, "my tmp");
	e = mount_table_find_canonical(&t, "/proc");
	assert_string_equal(e->fs_type, "proc");
	assert_null(mount_table_find_canonical(&t, "relative"));
	assert_string_equal(mount_table_find_fstype(&t, "tmpfs")->source, "ab");
	assert_null(mount_table_find_fstype(&t, "cgroup2"));
	mount_table_free(&t);
}

static void expect_error(const char *text, const char *needle)
{
	struct mount_table t;
	char err[256] = "";

	assert_int_equal(mount_table_parse(text, strlen(text), &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(t.n, 0);
	assert_null(t.entries);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_error("22 1 8:1 / / rw shared:1 ext4 /dev/sda1 rw\n", "line 1: missing ' - '");
	expect_error("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
		     "x 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "line 2: bad mount id");
	expect_error("22 1 81 / / rw - ext4 /dev/sda1 rw\n", "bad major:minor");
	expect_error("22 1 8:1 / /mnt/\\04x rw - ext4 /dev/sda1 rw\n", "bad mount point");
	expect_error("22 1 8:1 / /mnt/\\000 rw - ext4 /dev/sda1 rw\n", "bad mount point");
	expect_error("22 1 8:1 / relative rw - ext4 /dev/sda1 rw\n", "bad mount point");
	expect_error("22 1 8:1 / / rw - ext4 /dev/sda1\n", "need 3");
	expect_error("22 1 8:1 / / rw - ext4 /dev/sda1 rw extra\n", "need 3");
	expect_error("22 1 8:1 /  / rw - ext4 /dev/sda1 rw\n", "empty field");
	expect_error("22 1 8:1\n", "need at least");
	expect_error("\n22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "line 1: empty line");
	expect_error("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\n\n", "empty line");
	expect_error("22 1 99999999999:1 / / rw - ext4 /dev/sda1 rw\n", "major:minor");
}

static void test_no_trailing_newline_and_empty(void **state)
{
	struct mount_table t;
	const char *one = "22 1 8:1 / / rw - ext4 /dev/sda1 rw";

	(void)state;
	assert_int_equal(mount_table_parse(one, strlen(one), &t, NULL, 0), 0);
	assert_int_equal(t.n, 1);
	mount_table_free(&t);
	assert_int_equal(mount_table_parse("", 0, &t, NULL, 0), 0);
	assert_int_equal(t.n, 0);
	mount_table_free(&t);
}

static void test_option_present(void **state)
{
	(void)state;
	assert_true(mount_option_present("rw,noexec,relatime", "noexec"));
	assert_true(mount_option_present("noexec", "noexec"));
	assert_false(mount_option_present("rw,noexecx", "noexec"));
	assert_false(mount_option_present("rw,xnoexec", "noexec"));
	assert_true(mount_option_present("rw,size=10k", "size"));
	assert_false(mount_option_present("rw,size=10k", "size=1"));
	assert_true(mount_option_present("rw,size=10k", "size=10k"));
	assert_false(mount_option_present("", "ro"));
	assert_false(mount_option_present(NULL, "ro"));
}

static void test_unescape(void **state)
{
	char a[] = "a\\040b\\134c", b[] = "bad\\9", c[] = "bad\\400";

	(void)state;
	assert_int_equal(mountinfo_unescape(a), 0);
	assert_string_equal(a, "a b\\c");
	assert_int_equal(mountinfo_unescape(b), -EINVAL);
	assert_int_equal(mountinfo_unescape(c), -EINVAL);
}

static void test_real_proc_self_mountinfo(void **state)
{
	struct mount_table t;
	const struct mount_entry *e;
	char err[256] = "";

	(void)state;
	assert_int_equal(mount_table_load(NULL, &t, err, sizeof(err)), 0);
	assert_true(t.n > 0);
	e = mount_table_find(&t, "/proc/self/status");
	assert_non_null(e);
	assert_string_equal(e->fs_type, "proc");
	assert_string_equal(e->mount_point, "/proc");
	/* A path that does not exist yet belongs to its parent's mount. */
	e = mount_table_find(&t, "/proc/no/such/dir");
	assert_non_null(e);
	assert_string_equal(e->mount_point, "/proc");
	e = mount_table_find(&t, "/");
	assert_non_null(e);
	assert_string_equal(e->mount_point, "/");
	e = mount_table_find(&t, "no-such-relative-path");
	assert_non_null(e);
	mount_table_free(&t);
}

static void test_load_missing_file(void **state)
{
	struct mount_table t;
	char err[256] = "";

	(void)state;
	assert_int_equal(mount_table_load("/nonexistent/mountinfo", &t, err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "cannot read /nonexistent/mountinfo: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_escapes_and_optional_fields),
		cmocka_unit_test(test_find_longest_prefix_and_stacked),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_no_trailing_newline_and_empty),
		cmocka_unit_test(test_option_present),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_real_proc_self_mountinfo),
		cmocka_unit_test(test_load_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
