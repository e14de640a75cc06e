/* Unit tests of runner/spawn.c's failure paths with real processes and real
 * kernel errors: every step of the child's setup that can fail comes back
 * to the parent as that step and its errno.
 *
 * Each case runs in a forked helper so nothing it changes (user, resource
 * limits, closed descriptors, a seccomp filter) leaks into the test
 * process.  Errors a root process never meets are made real in the helper
 * by dropping to nobody (EPERM from setgroups, unshare, setrlimit) or, for
 * calls no unprivileged setup makes fail (setsid, setresgid, setresuid,
 * prctl, close_range, clone), by a seccomp filter that makes exactly that
 * system call return the errno.  The helper reports its findings over a
 * pipe; the assertions run in the test process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "covflush.h"
#include "spawn.h"
#include "testutil.h"

/* Helpers leave with _exit (after writing coverage counters): exit() would
 * run LeakSanitizer's check, whose tracer cannot work under some of the
 * filters below. */
static void __attribute__((noreturn)) leave(int code)
{
	cov_flush();
	_exit(code);
}

#define NOBODY 65534

struct report {
	int start;		/* spawn_start's result */
	int rel;		/* spawn_release's result */
	int step;
	int status;		/* the child's wait status */
	char out[512];		/* what it wrote to stdout and stderr */
};

/* Makes the listed system calls fail with the paired errno (a seccomp
 * filter, so only this process and its children see it). */
static int fail_syscalls(const int *nrs, const int *errs, int n)
{
#if defined(__x86_64__)
	struct sock_filter f[64];
	struct sock_fprog prog;
	int i, k = 0;

	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (i = 0; i < n; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[i], 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						      SECCOMP_RET_ERRNO | ((unsigned)errs[i] & SECCOMP_RET_DATA));
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)k;
	prog.filter = f;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0 ? 0 : -1;
#else
	(void)nrs;
	(void)errs;
	(void)n;
	errno = ENOSYS;
	return -1;
#endif
}

/* In the helper: spawns r with stdout and stderr to one pipe, releases
 * it, collects the output and the wait status. */
static void spawn_collect(struct spawn_req *r, struct report *rep)
{
	struct spawn_child c;
	enum spawn_step step = 0;
	int p[2];
	size_t got = 0;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0) {
		rep->start = -errno;
		return;
	}
	if (r->out_fd < 0)
		r->out_fd = p[1];
	if (r->err_fd < 0)
		r->err_fd = p[1];
	rep->start = spawn_start(r, &c);
	close(p[1]);
	if (rep->start < 0) {
		close(p[0]);
		return;
	}
	rep->rel = spawn_release(&c, &step);
	rep->step = (int)step;
	while (got + 1 < sizeof(rep->out) &&
	       (n = read(p[0], rep->out + got, sizeof(rep->out) - 1 - got)) > 0)
		got += (size_t)n;
	rep->out[got] = '\0';
	close(p[0]);
	waitpid(c.pid, &rep->status, 0);
}

typedef void (*helper_fn)(int wr, void *arg);

/* Runs fn in a forked helper and returns its report. */
static struct report in_helper(helper_fn fn, void *arg)
{
	struct report rep;
	int p[2];
	pid_t pid;

	memset(&rep, 0, sizeof(rep));
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* As the supervisor does: a child gone before the release
		 * must not kill us through the go pipe. */
		signal(SIGPIPE, SIG_IGN);
		close(p[0]);
		fn(p[1], arg);
		leave(0);
	}
	tu_collect_child(pid, p, &rep, sizeof(rep));
	return rep;
}

static void send_report(int wr, const struct report *rep)
{
	if (write(wr, rep, sizeof(*rep)) != (ssize_t)sizeof(*rep))
		leave(3);
}

/* ---- the cases ---- */

static char *const sh_env[] = { "PATH=/usr/bin:/bin", NULL };

static void base_req(struct spawn_req *r, char **argv)
{
	memset(r, 0, sizeof(*r));
	r->file = argv[0];
	r->argv = argv;
	r->envp = sh_env;
	r->cwd = "/";
	r->out_fd = r->err_fd = -1;
}

struct sc_case {
	int nrs[4], errs[4], n;
	struct spawn_req req;
};

static void h_seccomp(int wr, void *arg)
{
	struct sc_case *sc = arg;
	struct report rep = { 0 };

	if (sc->n > 0 && fail_syscalls(sc->nrs, sc->errs, sc->n) < 0)
		leave(2);
	spawn_collect(&sc->req, &rep);
	send_report(wr, &rep);
}

/* Seccomp filters work here (not under valgrind, which refuses them). */
static bool have_seccomp(void)
{
	int nrs[] = { SYS_getppid }, errs[] = { EPERM }, ws;
	pid_t pid;

	if (getenv("FIELDRIG_UNDER_VALGRIND"))
		return false;
	pid = fork();
	if (pid == 0)
		leave(fail_syscalls(nrs, errs, 1) == 0 && syscall(SYS_getppid) < 0 ? 0 : 1);
	return pid > 0 && waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
}

static void test_step_names(void **state)
{
	(void)state;
	assert_string_equal(spawn_step_name(SPAWN_STEP_SETUP), "setup");
	assert_string_equal(spawn_step_name(SPAWN_STEP_CHDIR), "chdir");
	assert_string_equal(spawn_step_name(SPAWN_STEP_OPEN_SCRIPT), "open script");
	assert_string_equal(spawn_step_name(SPAWN_STEP_RLIMIT), "setrlimit");
	assert_string_equal(spawn_step_name(SPAWN_STEP_NETNS), "unshare(CLONE_NEWNET)");
	assert_string_equal(spawn_step_name(SPAWN_STEP_SETGROUPS), "setgroups");
	assert_string_equal(spawn_step_name(SPAWN_STEP_SETGID), "setgid");
	assert_string_equal(spawn_step_name(SPAWN_STEP_SETUID), "setuid");
	assert_string_equal(spawn_step_name(SPAWN_STEP_NO_NEW_PRIVS), "prctl(PR_SET_NO_NEW_PRIVS)");
	assert_string_equal(spawn_step_name(SPAWN_STEP_EXEC), "exec");
	assert_string_equal(spawn_step_name((enum spawn_step)0), "?");
	assert_string_equal(spawn_step_name((enum spawn_step)99), "?");
}

/* A call failing in the child comes back as its step and errno; the
 * program never runs (its output would show). */
static void expect_step(int nr, int err, bool drop, enum spawn_step want)
{
	char *argv[] = { "/bin/sh", "-c", "echo ran", NULL };
	struct sc_case sc = { .nrs = { nr }, .errs = { err }, .n = 1 };
	struct report rep;

	base_req(&sc.req, argv);
	sc.req.drop = drop;
	sc.req.uid = NOBODY;
	sc.req.gid = NOBODY;
	rep = in_helper(h_seccomp, &sc);
	assert_int_equal(rep.start, 0);
	assert_int_equal(rep.rel, -err);
	assert_int_equal(rep.step, want);
	assert_string_equal(rep.out, "");
	assert_true(WIFEXITED(rep.status));
	assert_int_equal(WEXITSTATUS(rep.status), 127);
}

static void test_setup_calls_fail(void **state)
{
	(void)state;
	if (!have_seccomp() || geteuid() != 0)
		skip();
	expect_step(SYS_setsid, EPERM, false, SPAWN_STEP_SETUP);
	expect_step(SYS_setresgid, EPERM, true, SPAWN_STEP_SETGID);
	expect_step(SYS_setresuid, EAGAIN, true, SPAWN_STEP_SETUID);
	expect_step(SYS_prctl, EINVAL, false, SPAWN_STEP_NO_NEW_PRIVS);
	/* glibc's setrlimit is prlimit64: refused with something other
	 * than EPERM, the limit step fails at once (RLIMIT_CORE). */
	expect_step(SYS_prlimit64, EINVAL, false, SPAWN_STEP_RLIMIT);
	/* Refused with EPERM, the fallback asks getrlimit, which is the
	 * same call and fails too. */
	expect_step(SYS_prlimit64, EPERM, false, SPAWN_STEP_RLIMIT);
}

/* fork itself failing (clone, clone3 and vfork refused): spawn_start says
 * so, and leaves no descriptors behind. */
static void h_fork_fails(int wr, void *arg)
{
	char *argv[] = { "/bin/true", NULL };
	struct spawn_req r;
	struct spawn_child c;
	struct report rep = { 0 };
	int nrs[] = { SYS_clone, SYS_clone3, SYS_vfork }, errs[] = { EAGAIN, ENOSYS, EAGAIN };
	int probe;

	(void)arg;
	base_req(&r, argv);
	r.out_fd = 1;
	r.err_fd = 2;
	if (fail_syscalls(nrs, errs, 3) < 0)
		leave(2);
	probe = dup(0);		/* the lowest free descriptor */
	close(probe);
	rep.start = spawn_start(&r, &c);
	rep.step = c.pid;
	/* Every pipe end closed again: the next descriptor is the same. */
	rep.status = dup(0);
	rep.rel = rep.status == probe;
	send_report(wr, &rep);
}

static void test_fork_fails(void **state)
{
	struct report rep;

	(void)state;
	if (!have_seccomp() || getenv("FIELDRIG_UNDER_VALGRIND"))
		skip();		/* valgrind makes its own clone calls */
	rep = in_helper(h_fork_fails, NULL);
	assert_int_equal(rep.start, -EAGAIN);
	assert_int_equal(rep.step, -1);
	assert_int_equal(rep.rel, 1);
}

/* Out of descriptors for the first or the second pipe. */
static void h_emfile(int wr, void *arg)
{
	char *argv[] = { "/bin/true", NULL };
	struct spawn_req r;
	struct spawn_child c;
	struct report rep = { 0 };
	struct rlimit rl;
	int lowest = dup(0), extra = *(int *)arg;

	close(lowest);
	base_req(&r, argv);
	r.out_fd = 1;
	r.err_fd = 2;
	/* With 3, room for the error pipe and one more: a child that must be
	 * held (its "cgroup" is a plain directory, so clone3 cannot start it
	 * there) needs a second pipe to be released by. */
	if (extra == 3)
		r.cgroup_dir = "/";
	/* Room for exactly `extra` more descriptors (the pipe to the test
	 * process sits below `lowest`, every other one is close-on-exec
	 * in the test process and not open here above it... but be sure). */
	for (int fd = lowest; fd < 1024; fd++)
		if (fd != wr)
			close(fd);
	if (wr >= lowest) {
		int w = dup2(wr, lowest);

		close(wr);
		wr = w;
		lowest++;
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = (rlim_t)(lowest + extra);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		leave(2);
	rep.start = spawn_start(&r, &c);
	rep.step = c.pid;
	/* Nothing left open: the lowest free descriptor is unchanged. */
	rep.status = dup(0);
	rep.rel = rep.status == lowest;
	if (rep.status >= 0)
		close(rep.status);
	send_report(wr, &rep);
}

static void test_out_of_descriptors(void **state)
{
	struct report rep;
	int extra;

	(void)state;
	if (getenv("FIELDRIG_UNDER_VALGRIND"))
		skip();		/* valgrind keeps a virtual descriptor limit */
	/* No room for the first pipe, then room for it but not the second. */
	for (extra = 1; extra <= 3; extra += 2) {
		rep = in_helper(h_emfile, &extra);
		assert_int_equal(rep.start, -EMFILE);
		assert_int_equal(rep.step, -1);
		assert_int_equal(rep.rel, 1);
	}
}

/* As nobody: no new network namespace, no setgroups, and hard limits
 * below the request are kept as they are rather than failing the run. */
struct nobody_case {
	struct spawn_req req;
	rlim_t hard_nofile, hard_cpu;
};

static void h_nobody(int wr, void *arg)
{
	struct nobody_case *nc = arg;
	struct report rep = { 0 };
	struct rlimit rl;

	if (nc->hard_nofile) {
		rl.rlim_cur = rl.rlim_max = nc->hard_nofile;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			leave(2);
	}
	if (nc->hard_cpu) {
		rl.rlim_cur = rl.rlim_max = nc->hard_cpu;
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			leave(2);
	}
	if (tu_drop_to_nobody() < 0)
		leave(2);
	spawn_collect(&nc->req, &rep);
	send_report(wr, &rep);
}

static void test_unprivileged(void **state)
{
	char *argv[] = { "/bin/sh", "-c", "echo ran", NULL };
	char *lim_argv[] = { "/bin/sh", "-c", "ulimit -n; ulimit -t; ulimit -Ht", NULL };
	struct nobody_case nc;
	struct report rep;

	(void)state;
	if (geteuid() != 0)
		skip();

	memset(&nc, 0, sizeof(nc));
	base_req(&nc.req, argv);
	nc.req.new_netns = true;
	rep = in_helper(h_nobody, &nc);
	assert_int_equal(rep.rel, -EPERM);
	assert_int_equal(rep.step, SPAWN_STEP_NETNS);
	assert_string_equal(rep.out, "");

	memset(&nc, 0, sizeof(nc));
	base_req(&nc.req, argv);
	nc.req.drop = true;
	nc.req.uid = NOBODY;
	nc.req.gid = NOBODY;
	rep = in_helper(h_nobody, &nc);
	assert_int_equal(rep.rel, -EPERM);
	assert_int_equal(rep.step, SPAWN_STEP_SETGROUPS);
	assert_string_equal(rep.out, "");

	/* Hard NOFILE 32 < 64 asked: kept at 32.  Hard CPU 100 == 100
	 * asked: the hard limit cannot become 101, so the soft one is set
	 * under the unchanged hard one. */
	if (getenv("FIELDRIG_UNDER_VALGRIND"))
		return;		/* valgrind's virtual NOFILE limit */
	memset(&nc, 0, sizeof(nc));
	base_req(&nc.req, lim_argv);
	nc.req.lim.nofile = 64;
	nc.req.lim.cpu_s = 100;
	nc.hard_nofile = 32;
	nc.hard_cpu = 100;
	rep = in_helper(h_nobody, &nc);
	assert_int_equal(rep.rel, 0);
	assert_string_equal(rep.out, "32\n100\n100\n");
	assert_int_equal(WEXITSTATUS(rep.status), 0);
}

/* Where close_range is missing, the child walks /proc/self/fd instead:
 * a descriptor the helper left open without close-on-exec still does not
 * reach the program. */
static void h_no_close_range(int wr, void *arg)
{
	char *argv[] = { "/bin/sh", "-c", "ls /proc/self/fd | tr '\\n' ' '", NULL };
	int nrs[] = { SYS_close_range }, errs[] = { ENOSYS };
	struct spawn_req r;
	struct report rep = { 0 };
	int leak;

	(void)arg;
	leak = open("/dev/null", O_RDONLY);	/* no O_CLOEXEC */
	if (leak < 0 || dup2(leak, 40) < 0 || fail_syscalls(nrs, errs, 1) < 0)
		leave(2);
	base_req(&r, argv);
	spawn_collect(&r, &rep);
	send_report(wr, &rep);
}

static void test_no_close_range(void **state)
{
	struct report rep;

	(void)state;
	if (!have_seccomp())
		skip();
	rep = in_helper(h_no_close_range, NULL);
	assert_int_equal(rep.rel, 0);
	assert_string_equal(rep.out, "0 1 2 3 ");
}

/* A parent with 0, 1 and 2 closed hands pipes on those numbers; the child
 * still gets stdin from /dev/null and its output on the right pipes. */
static void h_low_fds(int wr, void *arg)
{
	char *argv[] = { "/bin/sh", "-c",
			 "echo out; echo err >&2; read x; echo stdin=$?; ls /proc/self/fd | tr '\\n' ' '",
			 NULL };
	struct spawn_req r;
	struct report rep = { 0 };
	int p[2];

	(void)arg;
	close(0);
	close(1);
	close(2);
	if (pipe2(p, O_CLOEXEC) < 0 || p[0] != 0 || p[1] != 1)
		leave(2);
	/* The pipe's read end sits on stdin: the child must not read it. */
	base_req(&r, argv);
	r.out_fd = 1;
	r.err_fd = 1;
	{
		struct spawn_child c;
		enum spawn_step step = 0;
		size_t got = 0;
		ssize_t n;

		rep.start = spawn_start(&r, &c);
		close(1);
		if (rep.start == 0) {
			rep.rel = spawn_release(&c, &step);
			rep.step = (int)step;
			while (got + 1 < sizeof(rep.out) &&
			       (n = read(0, rep.out + got, sizeof(rep.out) - 1 - got)) > 0)
				got += (size_t)n;
			waitpid(c.pid, &rep.status, 0);
		}
	}
	send_report(wr, &rep);
}

static void test_low_descriptors(void **state)
{
	struct report rep;

	(void)state;
	rep = in_helper(h_low_fds, NULL);
	assert_int_equal(rep.start, 0);
	assert_int_equal(rep.rel, 0);
	assert_string_equal(rep.out, "out\nerr\nstdin=1\n0 1 2 3 ");
}

/* The script passed on fd 3: missing, or a symlink (O_NOFOLLOW), fails the
 * open step; present, the program reads it from /dev/fd/3. */
static void test_pass_file(void **state)
{
	char dir[] = "/tmp/test_spawn_faults.XXXXXX", path[128], link[128];
	char *argv[] = { "/bin/sh", "-c", "cat /dev/fd/3", NULL };
	struct sc_case sc = { .n = 0 };
	struct report rep;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/script", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello from fd 3\n", f);
	fclose(f);
	assert_int_equal(symlink("script", link), 0);

	base_req(&sc.req, argv);
	sc.req.cwd = dir;
	sc.req.pass_file = "missing";
	rep = in_helper(h_seccomp, &sc);
	assert_int_equal(rep.rel, -ENOENT);
	assert_int_equal(rep.step, SPAWN_STEP_OPEN_SCRIPT);

	sc.req.pass_file = "link";
	rep = in_helper(h_seccomp, &sc);
	assert_int_equal(rep.rel, -ELOOP);
	assert_int_equal(rep.step, SPAWN_STEP_OPEN_SCRIPT);

	sc.req.pass_file = "script";
	rep = in_helper(h_seccomp, &sc);
	assert_int_equal(rep.rel, 0);
	assert_string_equal(rep.out, "hello from fd 3\n");

	unlink(link);
	unlink(path);
	rmdir(dir);
}

/* stdout on a descriptor that is not open: the child's dup2 fails. */
static void test_bad_output_fd(void **state)
{
	char *argv[] = { "/bin/true", NULL };
	struct sc_case sc = { .n = 0 };
	struct report rep;

	(void)state;
	base_req(&sc.req, argv);
	sc.req.out_fd = 900;
	rep = in_helper(h_seccomp, &sc);
	assert_int_equal(rep.rel, -EBADF);
	assert_int_equal(rep.step, SPAWN_STEP_SETUP);
	assert_int_equal(WEXITSTATUS(rep.status), 127);
}

/* A held child (its "cgroup" a plain directory, which clone3 refuses)
 * that died before release: releasing reports it instead of waiting or
 * raising SIGPIPE. */
static void test_release_dead_child(void **state)
{
	char *argv[] = { "/bin/true", NULL };
	static char *const envp[] = { NULL };
	struct spawn_req r = { .file = "/bin/true", .argv = argv, .envp = envp,
			       .out_fd = 1, .err_fd = 2, .cgroup_dir = "/" };
	struct spawn_child c;
	enum spawn_step step = 0;
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	int ws;

	(void)state;
	assert_int_equal(spawn_start(&r, &c), 0);
	assert_false(c.in_cgroup);
	assert_int_equal(kill(c.pid, SIGKILL), 0);
	assert_int_equal(waitpid(c.pid, &ws, 0), c.pid);
	assert_true(WIFSIGNALED(ws));
	assert_int_equal(spawn_release(&c, &step), -ECHILD);
	assert_int_equal(step, SPAWN_STEP_SETUP);
	assert_int_equal(c.go_fd, -1);
	assert_int_equal(c.err_fd, -1);
	spawn_abort(&c);	/* nothing left to close: harmless */
	signal(SIGPIPE, old);
}

/* As root, every limit is set (hard CPU one second above the soft one),
 * the program runs in its own network namespace (only a loopback device)
 * and as the user it was dropped to, without supplementary groups. */
static void test_limits_netns_drop(void **state)
{
	char *argv[] = { "/bin/sh", "-c",
			 "ulimit -t; ulimit -Ht; ulimit -d; ulimit -n; ulimit -p; ulimit -f;"
			 "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ';"
			 "id -u; id -g; id -G", NULL };
	struct sc_case sc = { .n = 0 };
	struct report rep;
	char want[256];

	(void)state;
	if (geteuid() != 0)
		skip();
	base_req(&sc.req, argv);
	sc.req.lim.cpu_s = 7;
	sc.req.lim.data = 512ULL << 20;
	sc.req.lim.nofile = 50;
	sc.req.lim.nproc = 300;
	sc.req.lim.fsize = 1 << 20;
	sc.req.new_netns = true;
	sc.req.drop = true;
	sc.req.uid = NOBODY;
	sc.req.gid = NOBODY;
	rep = in_helper(h_seccomp, &sc);
	assert_int_equal(rep.rel, 0);
	/* ulimit -d and -f count KiB and 512-byte blocks in dash.  valgrind
	 * keeps DATA and NOFILE changes to itself (virtual limits for its
	 * guest), so there the shell sees the real ones: not compared. */
	snprintf(want, sizeof(want), "7\n8\n%s\n300\n2048\nlo\n65534\n65534\n65534\n",
		 getenv("FIELDRIG_UNDER_VALGRIND") ? "VG" : "524288\n50");
	if (getenv("FIELDRIG_UNDER_VALGRIND")) {
		char *p = strchr(rep.out, '\n'), *q;

		assert_non_null(p);
		p = strchr(p + 1, '\n');
		assert_non_null(p);
		q = strchr(p + 1, '\n');
		assert_non_null(q);
		q = strchr(q + 1, '\n');
		assert_non_null(q);
		memmove(p + 3, q, strlen(q) + 1);
		memcpy(p + 1, "VG", 2);
	}
	assert_string_equal(rep.out, want);
	assert_int_equal(WEXITSTATUS(rep.status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_names),
		cmocka_unit_test(test_setup_calls_fail),
		cmocka_unit_test(test_fork_fails),
		cmocka_unit_test(test_out_of_descriptors),
		cmocka_unit_test(test_unprivileged),
		cmocka_unit_test(test_no_close_range),
		cmocka_unit_test(test_low_descriptors),
		cmocka_unit_test(test_pass_file),
		cmocka_unit_test(test_bad_output_fd),
		cmocka_unit_test(test_release_dead_child),
		cmocka_unit_test(test_limits_netns_drop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
