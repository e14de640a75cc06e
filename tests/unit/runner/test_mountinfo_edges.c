/* mountinfo parsing edges: too many fields, NUL bytes, empty lines in the
 * middle, bad numbers in every numeric field, escapes out of range, a
 * file that is a directory, errors prefixed with the file's path, and
 * lookups of empty, relative and missing paths. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "mountinfo.h"
#include "testutil.h"

static void bad(const char *text, size_t len, const char *needle)
{
	struct mount_table t;
	char err[256] = "";

	assert_int_equal(mount_table_parse(text, len, &t, err, sizeof(err)), -EINVAL);
	tu_assert_contains(err, needle);
	assert_int_equal(t.n, 0);
	assert_null(t.entries);
	/* Without an error buffer the verdict is the same. */
	assert_int_equal(mount_table_parse(text, len, &t, NULL, 0), -EINVAL);
}

#define BAD(s, needle) bad(s, sizeof(s) - 1, needle)

static void test_malformed_lines(void **state)
{
	char many[1024] = "1 0 8:1 / / rw";

	(void)state;
	for (int i = 0; i < 60; i++)
		strcat(many, " shared:1");
	strcat(many, " - ext4 /dev/vda rw\n");
	bad(many, strlen(many), "line 1: too many fields");

	BAD("1 0 8:1 / / rw - ext4 /dev/vda rw\n1 0 8\0:1 / / rw - ext4 /dev/vda rw\n",
	    "line 2: NUL byte");
	BAD("1 0 8:1 / / rw - ext4 /dev/vda rw\n\n1 0 8:1 / / rw - ext4 /dev/vda rw\n",
	    "line 2: empty line");
	BAD("1 0 8:1 / / rw - ext4 /dev/vda rw\n1 x 8:1 / / rw - ext4 /dev/vda rw\n",
	    "line 2");
	BAD("1 0 8:x / / rw - ext4 /dev/vda rw\n", "line 1");
	BAD("1 0 81 / / rw - ext4 /dev/vda rw\n", "line 1");
	BAD("1 0 :1 / / rw - ext4 /dev/vda rw\n", "line 1");
	BAD("1 0 8:1 /\\400 / rw - ext4 /dev/vda rw\n", "line 1");
	BAD("1 0 8:1 / /a\\08 rw - ext4 /dev/vda rw\n", "line 1");
	BAD("1 0 8:1 / / rw\\0 - ext4 /dev/vda rw\n", "line 1");
	BAD("1 0 8:1 / / rw - ext\\9 /dev/vda rw\n", "line 1");
	BAD("1 0 8:1 / / rw - ext4 /dev/\\000 rw\n", "line 1");
	BAD("1 0 8:1 / / rw - ext4 /dev/vda rw\\\n", "line 1");
	BAD("1 0 8:1 / relative rw - ext4 /dev/vda rw\n", "line 1");
	BAD("1 0 8:1 / /  rw - ext4 /dev/vda rw\n", "line 1: empty field");
}

static void test_unescape_edges(void **state)
{
	char a[] = "a\\040b\\011c\\134d";
	char b[] = "x\\4";
	char c[] = "x\\377";

	(void)state;
	assert_int_equal(mountinfo_unescape(a), 0);
	assert_string_equal(a, "a b\tc\\d");
	assert_int_equal(mountinfo_unescape(b), -EINVAL);
	assert_int_equal(mountinfo_unescape(c), 0);
	assert_int_equal((unsigned char)c[1], 0377);
	assert_false(mount_option_present(NULL, "ro"));
	assert_false(mount_option_present("ro", ""));
	assert_false(mount_option_present("", "ro"));
	assert_true(mount_option_present("rw,noexec", "noexec"));
	assert_false(mount_option_present("rw,noexecx", "noexec"));
}

static void test_load_errors(void **state)
{
	struct mount_table t;
	char dir[64], file[128], err[512] = "";
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/fieldrig-mie-XXXXXX");
	assert_non_null(mkdtemp(dir));
	/* A directory opens but cannot be read. */
	assert_int_equal(mount_table_load(dir, &t, err, sizeof(err)), -EISDIR);
	tu_assert_contains(err, "cannot read ");
	tu_assert_contains(err, "Is a directory");

	/* Bad content: the message starts with the file. */
	snprintf(file, sizeof(file), "%s/mountinfo", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "1 0 8:1 / / rw ext4\n", 20), 20);
	close(fd);
	assert_int_equal(mount_table_load(file, &t, err, sizeof(err)), -EINVAL);
	tu_assert_contains(err, file);
	tu_assert_contains(err, ": line 1: missing ' - ' separator");
	assert_int_equal(mount_table_load(file, &t, NULL, 0), -EINVAL);

	/* Larger than the first read buffer: many lines, all parsed. */
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	for (int i = 1; i <= 1000; i++) {
		char line[128];
		int n = snprintf(line, sizeof(line), "%d 1 0:%d / /mnt/m%d rw,nosuid - tmpfs tmpfs rw\n",
				 i, i, i);

		assert_int_equal(write(fd, line, (size_t)n), n);
	}
	close(fd);
	assert_int_equal(mount_table_load(file, &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 1000);
	assert_string_equal(t.entries[999].mount_point, "/mnt/m1000");
	mount_table_free(&t);
	mount_table_free(NULL);
	unlink(file);
	rmdir(dir);
}

static void test_find_edges(void **state)
{
	static const char text[] =
		"1 0 8:1 / / rw - ext4 /dev/vda rw\n"
		"2 1 0:50 / /tmp rw - tmpfs tmpfs rw\n";
	struct mount_table t;
	const struct mount_entry *e;
	char cwd[4096];

	(void)state;
	assert_int_equal(mount_table_parse(text, sizeof(text) - 1, &t, NULL, 0), 0);
	errno = 0;
	assert_null(mount_table_find(&t, ""));
	assert_int_equal(errno, EINVAL);
	assert_null(mount_table_find(&t, NULL));
	assert_null(mount_table_find_canonical(&t, "relative"));
	assert_null(mount_table_find_canonical(NULL, "/"));

	/* A path whose first component is missing lives on "/". */
	e = mount_table_find(&t, "/no-such-dir-fieldrig/a/b");
	assert_non_null(e);
	assert_string_equal(e->mount_point, "/");
	e = mount_table_find(&t, "/tmp//no-such-fieldrig//x/");
	assert_non_null(e);
	assert_string_equal(e->mount_point, "/tmp");

	/* Relative paths resolve from the working directory. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/tmp"), 0);
	e = mount_table_find(&t, "no-such-fieldrig/x");
	assert_non_null(e);
	assert_string_equal(e->mount_point, "/tmp");
	e = mount_table_find(&t, ".");
	assert_non_null(e);
	assert_string_equal(e->mount_point, "/tmp");
	assert_int_equal(chdir("/"), 0);
	e = mount_table_find(&t, "no-such-fieldrig");
	assert_non_null(e);
	assert_string_equal(e->mount_point, "/");
	assert_int_equal(chdir(cwd), 0);

	assert_null(mount_table_find_fstype(&t, "cgroup2"));
	assert_null(mount_table_find_fstype(NULL, "tmpfs"));
	assert_non_null(mount_table_find_fstype(&t, "tmpfs"));
	mount_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_unescape_edges),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_find_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
