/* Fixture code shared by the unit tests (and the runner's integration
 * tests): temporary directories, files, immutable flags, dropping to
 * nobody.  One line per function says what it promises. */
#ifndef FIELDRIG_TESTUTIL_H
#define FIELDRIG_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* uid and gid of nobody, which the unprivileged cases drop to. */
#define TU_NOBODY 65534

/* The group fixture's directory: "/tmp/PROGRAM.XXXXXX" once made. */
extern char tu_dir[64];

/* cmocka group setups: make tu_dir with mkdtemp's mode 0700, or with 0755
 * (for tests whose children run as nobody); 0 or -1. */
int tu_dir_setup(void **state);
int tu_dir_setup_0755(void **state);

/* cmocka group teardown: tu_rm_tree(tu_dir); 0 or -1. */
int tu_dir_teardown(void **state);

/* A test's own directory, "/tmp/PROGRAM-XXXXXX" once made. */
struct tu_tmpdir {
	char path[64];
};

/* cmocka per-test setups: *state = a new struct tu_tmpdir whose directory
 * exists with mkdtemp's mode 0700, or with 0755; 0 or -1. */
int tu_tmpdir_setup(void **state);
int tu_tmpdir_setup_0755(void **state);

/* cmocka per-test teardown: removes the directory's tree, frees *state;
 * 0, or -1 if the tree could not be removed. */
int tu_tmpdir_teardown(void **state);

/* mkdtemp(tmpl) ("...XXXXXX", rewritten in place), then chmod to mode
 * unless mode is 0; 0, or -1 with errno set. */
int tu_mkdtemp(char *tmpl, mode_t mode);

/* Removes path and everything below it (no symlinks followed), first
 * clearing immutable flags and giving directories u+rwx so nothing a test
 * left locked stays; 0 if all is gone (or was never there), else -1. */
int tu_rm_tree(const char *path);

/* Sets (on) or clears FS_IMMUTABLE_FL on path (not following a symlink);
 * 0, or -1 where the file or its filesystem does not allow it. */
int tu_set_immutable(const char *path, int on);

/* Whether FS_IMMUTABLE_FL can be set in dir (root on ext4/xfs/btrfs):
 * probes with dir/probe, which it leaves unflagged and removed. */
bool tu_can_immutable(const char *dir);

/* Creates or truncates path with content and gives it mode (chmod, so the
 * umask does not matter); fails the running cmocka test on any error. */
void tu_write_file(const char *path, const char *content, mode_t mode);

/* Crafted trees (a --root for detection): rel is relative to root, and
 * every function fails the running cmocka test on an error it checks.
 * tu_mkparents: makes the directories leading to root/rel (0755; existing
 * ones and failures are left for the next step to notice). */
void tu_mkparents(const char *root, const char *rel);
/* tu_mkdirs: root/rel and its parents, like mkdir -p (nothing checked). */
void tu_mkdirs(const char *root, const char *rel);
/* tu_mkdir_in: the parents, then root/rel itself, which must be new. */
void tu_mkdir_in(const char *root, const char *rel);
/* tu_put: root/rel (parents made) created or truncated, holding the len
 * bytes at content, mode 0644 less the umask. */
void tu_put(const char *root, const char *rel, const void *content, size_t len);
/* tu_put_str: tu_put of a string without its NUL. */
void tu_put_str(const char *root, const char *rel, const char *content);
/* tu_symlink_in: the parents, then root/rel as a new symlink to target. */
void tu_symlink_in(const char *root, const char *rel, const char *target);

/* Fails the running cmocka test, naming the caller's file and line,
 * unless s is not NULL and contains needle. */
#define tu_assert_contains(s, needle) tu_assert_contains_at((s), (needle), __FILE__, __LINE__)
void tu_assert_contains_at(const char *s, const char *needle, const char *file, int line);

/* In the parent of a forked child that writes len bytes to p[1]: closes
 * p[1], reads up to len bytes from p[0] into out, closes p[0], reaps the
 * child; fails the test (at the caller's line) unless the child exited 0
 * and all len bytes came. */
#define tu_collect_child(pid, p, out, len) \
	tu_collect_child_at((pid), (p), (out), (len), __FILE__, __LINE__)
void tu_collect_child_at(pid_t pid, int p[2], void *out, size_t len, const char *file, int line);

/* In a child: drops supplementary groups, then gid and uid to nobody;
 * 0, or -1 with errno set (the caller exits with its own code). */
int tu_drop_to_nobody(void);

#endif
