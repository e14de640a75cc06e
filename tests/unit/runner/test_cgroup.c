/* Unit tests of runner/cgroup.c on the host's real cgroup v2 hierarchy:
 * a run cgroup holding a real process (populated, signals, freeze-and-kill
 * without cgroup.kill, waiting, removal while busy), paths that are gone
 * or are plain directories, and - in a private mount namespace of a helper
 * process - a host without a cgroup2 mount, a read-only one, and one whose
 * mount shows only a subtree (a container's view) with the process in a
 * child cgroup of its own.
 *
 * Needs root and a writable cgroup2 mount; skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "mountinfo.h"
#include "testutil.h"

static char cgroot[PATH_MAX];	/* the cgroup2 mount point */
static char tmpdir[] = "/tmp/test_cgroup.XXXXXX";

static int setup(void **state)
{
	struct mount_table t;
	const struct mount_entry *m;
	char err[256];

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	if (mount_table_load(NULL, &t, err, sizeof(err)) < 0)
		return 0;
	m = mount_table_find_fstype(&t, "cgroup2");
	if (m != NULL && strcmp(m->root, "/") == 0)
		snprintf(cgroot, sizeof(cgroot), "%s", m->mount_point);
	mount_table_free(&t);
	return 0;
}

static int teardown(void **state)
{
	char cmd[3 * PATH_MAX];
	int pid = (int)getpid();

	(void)state;
	/* Whatever a failed test left: cgroups go bottom-up with rmdir. */
	if (cgroot[0]) {
		if (snprintf(cmd, sizeof(cmd),
			 "find '%s/fieldrig/test-cgroup-%d' '%s/test-cgroup-ro-%d' '%s/test-cgroup-sub-%d'"
			 " -depth -type d -exec rmdir {} + 2>/dev/null", cgroot, pid, cgroot, pid,
			 cgroot, pid) < (int)sizeof(cmd) && system(cmd) != 0) {
			/* most of them do not exist: fine */
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void need_cgroup(void)
{
	char p[PATH_MAX + 16];

	if (geteuid() != 0 || cgroot[0] == '\0')
		skip();
	snprintf(p, sizeof(p), "%s/cgroup.procs", cgroot);
	if (access(p, W_OK) != 0)
		skip();
}

/* A child that sleeps until killed; *go releases nothing, it is just so
 * the caller can wait for it to be running. */
static pid_t sleeper(void)
{
	int p[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static void write_str(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(s, f);
	assert_int_equal(fclose(f), 0);
}

/* A run cgroup that is gone (cancel or recover after a reboot): every
 * call answers, nothing blocks. */
static void test_gone(void **state)
{
	struct cgroup_run cg;
	int64_t cpu, peak;

	(void)state;
	memset(&cg, 0xff, sizeof(cg));
	cgroup_attach("/nonexistent/fieldrig/gone", &cg);
	assert_string_equal(cg.path, "/nonexistent/fieldrig/gone");
	assert_false(cg.has_kill);
	assert_int_equal(cgroup_add_pid(&cg, getpid()), -ENOENT);
	assert_int_equal(cgroup_signal(&cg, 0), -ENOENT);
	assert_int_equal(cgroup_populated(&cg), -ENOENT);
	assert_int_equal(cgroup_events_fd(&cg), -ENOENT);
	assert_int_equal(cgroup_wait_empty(&cg, 1000), 0);
	assert_int_equal(cgroup_kill(&cg), -ENOENT);
	cg.has_kill = true;	/* cgroup.kill gone too: same answer */
	assert_int_equal(cgroup_kill(&cg), -ENOENT);
	cgroup_stats(&cg, &cpu, &peak);
	assert_int_equal(cpu, -1);
	assert_int_equal(peak, -1);
	assert_int_equal(cgroup_remove(&cg), 0);
}

/* A stored path that is now an ordinary directory (someone made one in
 * its place): odd contents are reported, not trusted. */
static void test_plain_directory(void **state)
{
	struct cgroup_run cg;
	char d[PATH_MAX], f[PATH_MAX + 32];
	int64_t cpu, peak;

	(void)state;
	snprintf(d, sizeof(d), "%s/plain", tmpdir);
	assert_int_equal(mkdir(d, 0755), 0);
	memset(&cg, 0, sizeof(cg));
	cgroup_attach(d, &cg);
	assert_false(cg.has_kill);

	snprintf(f, sizeof(f), "%s/cgroup.events", d);
	write_str(f, "frozen 0\n");
	assert_int_equal(cgroup_populated(&cg), -EIO);
	write_str(f, "populated 1\nfrozen 0\n");
	assert_int_equal(cgroup_populated(&cg), 1);
	/* Never "populated 0": the wait runs into its limit. */
	assert_int_equal(cgroup_wait_empty(&cg, 30), -ETIMEDOUT);

	/* A pid that does not exist is not counted as signalled. */
	snprintf(f, sizeof(f), "%s/cgroup.procs", d);
	write_str(f, "999999999\n");
	assert_int_equal(cgroup_signal(&cg, SIGTERM), 0);
	assert_int_equal(cgroup_kill(&cg), 0);

	snprintf(f, sizeof(f), "%s/cpu.stat", d);
	write_str(f, "usage_usec 1234\nuser_usec 1000\n");
	snprintf(f, sizeof(f), "%s/memory.peak", d);
	write_str(f, "5678\n");
	cgroup_stats(&cg, &cpu, &peak);
	assert_int_equal(cpu, 1234);
	assert_int_equal(peak, 5678);

	/* Not empty and not a cgroup: the error is passed on at once. */
	assert_int_equal(cgroup_remove(&cg), -ENOTEMPTY);
}

/* A real run cgroup with a real process in it. */
static void test_real_cgroup(void **state)
{
	struct cgroup_limits lim = { .memory_max = 1ULL << 30, .pids_max = 64 };
	struct cgroup_run cg, nokill;
	char name[64], err[512], want[PATH_MAX + 64], f[PATH_MAX + 32];
	int64_t cpu, peak;
	pid_t pid;
	int ws;

	(void)state;
	need_cgroup();
	assert_true(snprintf(name, sizeof(name), "test-cgroup-%d", (int)getpid()) < (int)sizeof(name));
	assert_int_equal(cgroup_create(name, &lim, &cg, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_true(snprintf(want, sizeof(want), "%s/fieldrig/%s", cgroot, name) < (int)sizeof(want));
	assert_string_equal(cg.path, want);
	/* Limits are written where the controllers are available. */
	snprintf(f, sizeof(f), "%s/memory.max", cg.path);
	assert_int_equal(cg.memory_limited, access(f, F_OK) == 0);
	snprintf(f, sizeof(f), "%s/pids.max", cg.path);
	assert_int_equal(cg.pids_limited, access(f, F_OK) == 0);
	/* A second one of the same name is refused. */
	{
		struct cgroup_run dup;

		assert_int_equal(cgroup_create(name, NULL, &dup, err, sizeof(err)), -EEXIST);
		assert_non_null(strstr(err, "fieldrig: File exists"));
	}

	assert_int_equal(cgroup_populated(&cg), 0);
	assert_int_equal(cgroup_add_pid(&cg, 999999999), -ESRCH);
	pid = sleeper();
	assert_int_equal(cgroup_add_pid(&cg, pid), 0);
	assert_int_equal(cgroup_populated(&cg), 1);
	assert_int_equal(cgroup_wait_empty(&cg, 50), -ETIMEDOUT);
	/* Busy while the process is in it: removal gives up. */
	assert_int_equal(cgroup_remove(&cg), -EBUSY);

	/* SIGTERM reaches a stopped process too (SIGCONT follows). */
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &ws, WUNTRACED), pid);
	assert_true(WIFSTOPPED(ws));
	assert_int_equal(cgroup_signal(&cg, SIGTERM), 1);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws));
	assert_int_equal(WTERMSIG(ws), SIGTERM);
	assert_int_equal(cgroup_wait_empty(&cg, 5000), 0);

	/* Without cgroup.kill: freeze, kill every pid, thaw. */
	pid = sleeper();
	assert_int_equal(cgroup_add_pid(&cg, pid), 0);
	nokill = cg;
	nokill.has_kill = false;
	assert_int_equal(cgroup_kill(&nokill), 0);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws));
	assert_int_equal(WTERMSIG(ws), SIGKILL);
	assert_int_equal(cgroup_wait_empty(&cg, 5000), 0);

	/* With cgroup.kill, where the kernel has it. */
	if (cg.has_kill) {
		pid = sleeper();
		assert_int_equal(cgroup_add_pid(&cg, pid), 0);
		assert_int_equal(cgroup_kill(&cg), 0);
		assert_int_equal(waitpid(pid, &ws, 0), pid);
		assert_int_equal(WTERMSIG(ws), SIGKILL);
		assert_int_equal(cgroup_wait_empty(&cg, 5000), 0);
	}

	cgroup_stats(&cg, &cpu, &peak);
	assert_true(cpu >= 0);
	snprintf(f, sizeof(f), "%s/memory.peak", cg.path);
	if (access(f, F_OK) != 0)
		assert_int_equal(peak, -1);
	assert_int_equal(cgroup_remove(&cg), 0);
	assert_int_equal(access(cg.path, F_OK), -1);
}

/* ---- in a private mount namespace ---- */

struct ns_result {
	int ret;
	char err[512];
	char path[PATH_MAX];
};

typedef void (*ns_fn)(struct ns_result *res, void *arg);

/* Runs fn in a forked helper inside its own mount namespace (the host's
 * mounts are untouched; the namespace goes with the helper). */
static struct ns_result in_mount_ns(ns_fn fn, void *arg)
{
	struct ns_result res;
	int p[2];
	pid_t pid;

	memset(&res, 0, sizeof(res));
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
			exit(2);
		fn(&res, arg);
		if (write(p[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
			exit(3);
		exit(0);
	}
	tu_collect_child(pid, p, &res, sizeof(res));
	return res;
}

static void ns_no_cgroup2(struct ns_result *res, void *arg)
{
	struct cgroup_run cg;

	(void)arg;
	if (umount2(cgroot, MNT_DETACH) < 0)
		exit(4);
	res->ret = cgroup_create("x", NULL, &cg, res->err, sizeof(res->err));
	snprintf(res->path, sizeof(res->path), "%s", cg.path);
}

static void test_no_cgroup2_mount(void **state)
{
	struct ns_result r;

	(void)state;
	need_cgroup();
	r = in_mount_ns(ns_no_cgroup2, NULL);
	assert_int_equal(r.ret, -ENOENT);
	assert_string_equal(r.err, "no cgroup2 mount in /proc/self/mountinfo");
	assert_string_equal(r.path, "");
}

/* Moves the calling process into cgroup dir (made if needed). */
static void enter_cgroup(const char *dir)
{
	char p[PATH_MAX + 16], pid[32];
	FILE *f;

	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	f = fopen(p, "w");
	if (f == NULL || fputs(pid, f) < 0 || fclose(f) != 0)
		exit(5);
}

struct sub_arg {
	char top[PATH_MAX];	/* <cgroot>/test-cgroup-sub-PID */
	size_t errlen;
};

/* Read-only cgroup2 mount, the helper in a child cgroup of its own: both
 * places are tried and both failures named. */
static void ns_read_only(struct ns_result *res, void *arg)
{
	struct sub_arg *a = arg;
	struct cgroup_run cg;
	char inner[PATH_MAX + 16];

	snprintf(inner, sizeof(inner), "%s/inner", a->top);
	mkdir(a->top, 0755);
	enter_cgroup(inner);
	if (mount(cgroot, cgroot, "none", MS_BIND, NULL) < 0 ||
	    mount("none", cgroot, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		exit(4);
	res->ret = cgroup_create("ro", NULL, &cg, res->err, a->errlen);
	snprintf(res->path, sizeof(res->path), "%s", cg.path);
	/* Cannot leave through a read-only mount: the cgroup empties when
	 * the helper exits. */
}

/* The mount shows only a subtree (as in a container): our cgroup is found
 * below the mount point with the subtree's root stripped, and the run's
 * cgroup made under it. */
static void ns_subtree(struct ns_result *res, void *arg)
{
	struct sub_arg *a = arg;
	struct cgroup_run cg;
	char inner[PATH_MAX + 16], mnt[PATH_MAX];

	snprintf(inner, sizeof(inner), "%s/inner", a->top);
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);
	mkdir(a->top, 0755);
	enter_cgroup(inner);
	if (mount(a->top, mnt, "none", MS_BIND, NULL) < 0 || umount2(cgroot, MNT_DETACH) < 0)
		exit(4);
	res->ret = cgroup_create("sub", NULL, &cg, res->err, a->errlen);
	snprintf(res->path, sizeof(res->path), "%s", cg.path);
	if (res->ret == 0)
		cgroup_remove(&cg);
	/* The namespace's own view is gone with the helper; leave the
	 * cgroup through the host path instead. */
}

static void rm_cgroup_tree(const char *top)
{
	char cmd[PATH_MAX * 2];

	/* cgroup directories go bottom-up with rmdir (rm -r cannot unlink
	 * their control files). */
	snprintf(cmd, sizeof(cmd), "find '%s' -depth -type d -exec rmdir {} + 2>/dev/null", top);
	if (system(cmd) != 0) {
		/* checked below */
	}
	assert_int_equal(access(top, F_OK), -1);
}

static void test_read_only_mount(void **state)
{
	struct sub_arg a;
	struct ns_result r;
	char want[2 * PATH_MAX];

	(void)state;
	need_cgroup();
	assert_true(snprintf(a.top, sizeof(a.top), "%s/test-cgroup-ro-%d", cgroot, (int)getpid()) <
		    (int)sizeof(a.top));
	a.errlen = sizeof(r.err);
	r = in_mount_ns(ns_read_only, &a);
	assert_int_equal(r.ret, -EROFS);
	assert_string_equal(r.path, "");
	assert_true(snprintf(want, sizeof(want), "%s/inner/fieldrig: Read-only file system; "
			     "%s/fieldrig: Read-only file system", a.top, cgroot) < (int)sizeof(want));
	assert_string_equal(r.err, want);

	/* A short buffer: cut, still terminated, no overrun. */
	a.errlen = 24;
	r = in_mount_ns(ns_read_only, &a);
	assert_int_equal(r.ret, -EROFS);
	assert_int_equal(strlen(r.err), 23);
	assert_memory_equal(r.err, want, 23);
	rm_cgroup_tree(a.top);
}

static void test_subtree_mount(void **state)
{
	struct sub_arg a;
	struct ns_result r;
	char want[2 * PATH_MAX], mnt[PATH_MAX];

	(void)state;
	need_cgroup();
	assert_true(snprintf(a.top, sizeof(a.top), "%s/test-cgroup-sub-%d", cgroot, (int)getpid()) <
		    (int)sizeof(a.top));
	a.errlen = sizeof(r.err);
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);
	assert_int_equal(mkdir(mnt, 0755), 0);
	r = in_mount_ns(ns_subtree, &a);
	assert_int_equal(r.ret, 0);
	snprintf(want, sizeof(want), "%s/inner/fieldrig/sub", mnt);
	assert_string_equal(r.path, want);
	/* Seen from the host: under the helper's own cgroup. */
	snprintf(want, sizeof(want), "%s/inner/fieldrig", a.top);
	assert_int_equal(access(want, F_OK), 0);
	rm_cgroup_tree(a.top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gone),
		cmocka_unit_test(test_plain_directory),
		cmocka_unit_test(test_real_cgroup),
		cmocka_unit_test(test_no_cgroup2_mount),
		cmocka_unit_test(test_read_only_mount),
		cmocka_unit_test(test_subtree_mount),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
