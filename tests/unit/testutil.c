/* Shared unit-test fixture code; contracts in testutil.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "testutil.h"

int tu_mkdtemp(char *tmpl, mode_t mode)
{
	if (!mkdtemp(tmpl))
		return -1;
	return mode ? chmod(tmpl, mode) : 0;
}

char tu_dir[64];

static int dir_setup(mode_t mode)
{
	snprintf(tu_dir, sizeof(tu_dir), "/tmp/%s.XXXXXX", program_invocation_short_name);
	return tu_mkdtemp(tu_dir, mode);
}

int tu_dir_setup(void **state)
{
	(void)state;
	return dir_setup(0);
}

int tu_dir_setup_0755(void **state)
{
	(void)state;
	return dir_setup(0755);
}

int tu_dir_teardown(void **state)
{
	(void)state;
	return tu_rm_tree(tu_dir);
}

static int tmpdir_setup(void **state, mode_t mode)
{
	struct tu_tmpdir *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	snprintf(t->path, sizeof(t->path), "/tmp/%s-XXXXXX", program_invocation_short_name);
	if (tu_mkdtemp(t->path, mode) < 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

int tu_tmpdir_setup(void **state)
{
	return tmpdir_setup(state, 0);
}

int tu_tmpdir_setup_0755(void **state)
{
	return tmpdir_setup(state, 0755);
}

int tu_tmpdir_teardown(void **state)
{
	struct tu_tmpdir *t = *state;
	int rc = tu_rm_tree(t->path);

	free(t);
	return rc;
}

int tu_set_immutable(const char *path, int on)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC), flags = 0, rc;

	if (fd < 0)
		return -1;
	rc = ioctl(fd, FS_IOC_GETFLAGS, &flags);
	if (rc == 0) {
		flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
		rc = ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	close(fd);
	return rc;
}

bool tu_can_immutable(const char *dir)
{
	char p[160];
	bool ok;

	snprintf(p, sizeof(p), "%s/probe", dir);
	tu_write_file(p, "", 0644);
	ok = tu_set_immutable(p, 1) == 0;
	tu_set_immutable(p, 0);
	unlink(p);
	return ok;
}

/* Pre-order: unlock each directory and file before anything below it
 * is removed. */
static int unlock_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_SL || flag == FTW_SLN || flag == FTW_NS)
		return 0;
	if (S_ISDIR(sb->st_mode) || S_ISREG(sb->st_mode))
		tu_set_immutable(p, 0);
	if (S_ISDIR(sb->st_mode))
		chmod(p, sb->st_mode | S_IRWXU);
	return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

int tu_rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	nftw(path, unlock_entry, 16, FTW_PHYS);
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

void tu_write_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

/* Creates each directory of path from its byte from on, up to (not
 * including) the last '/'. */
static void mk_prefixes(char *path, size_t from)
{
	for (char *s = path + from; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	}
}

void tu_mkparents(const char *root, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	mk_prefixes(path, strlen(root) + 1);
}

void tu_mkdirs(const char *root, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/", root, rel);
	mk_prefixes(path, strlen(root) + 1);
}

void tu_mkdir_in(const char *root, const char *rel)
{
	char path[512];

	tu_mkparents(root, rel);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

void tu_put(const char *root, const char *rel, const void *content, size_t len)
{
	char path[512];
	int fd;

	tu_mkparents(root, rel);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
}

void tu_put_str(const char *root, const char *rel, const char *content)
{
	tu_put(root, rel, content, strlen(content));
}

void tu_symlink_in(const char *root, const char *rel, const char *target)
{
	char path[512];

	tu_mkparents(root, rel);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(symlink(target, path), 0);
}

void tu_assert_contains_at(const char *s, const char *needle, const char *file, int line)
{
	if (s && strstr(s, needle))
		return;
	print_error("ERROR: '%s' lacks '%s'\n", s ? s : "(null)", needle);
	_fail(file, line);
}

void tu_collect_child_at(pid_t pid, int p[2], void *out, size_t len, const char *file, int line)
{
	size_t got = 0;
	ssize_t n;
	int ws;

	close(p[1]);
	while (got < len && (n = read(p[0], (char *)out + got, len - got)) > 0)
		got += (size_t)n;
	close(p[0]);
	_assert_int_equal(waitpid(pid, &ws, 0), pid, file, line);
	_assert_true(WIFEXITED(ws), "WIFEXITED(ws)", file, line);
	_assert_int_equal(WEXITSTATUS(ws), 0, file, line);
	_assert_int_equal(got, len, file, line);
}

int tu_drop_to_nobody(void)
{
	if (setgroups(0, NULL) < 0)
		return -1;
	if (setresgid(TU_NOBODY, TU_NOBODY, TU_NOBODY) < 0)
		return -1;
	return setresuid(TU_NOBODY, TU_NOBODY, TU_NOBODY);
}
