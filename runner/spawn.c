/* fork + setup + exec with the exec errno passed back; see spawn.h. */
#include "spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sched.h>
#include "clone3vfork.h"
#include "covflush.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

const char *spawn_step_name(enum spawn_step step)
{
	switch (step) {
	case SPAWN_STEP_SETUP: return "setup";
	case SPAWN_STEP_CHDIR: return "chdir";
	case SPAWN_STEP_OPEN_SCRIPT: return "open script";
	case SPAWN_STEP_RLIMIT: return "setrlimit";
	case SPAWN_STEP_NETNS: return "unshare(CLONE_NEWNET)";
	case SPAWN_STEP_SETGROUPS: return "setgroups";
	case SPAWN_STEP_SETGID: return "setgid";
	case SPAWN_STEP_SETUID: return "setuid";
	case SPAWN_STEP_NO_NEW_PRIVS: return "prctl(PR_SET_NO_NEW_PRIVS)";
	case SPAWN_STEP_EXEC: return "exec";
	}
	return "?";
}

/* In the child only: report the failed step and leave.  Nothing here may
 * allocate or take a lock: the parent may have been in the middle of
 * anything when it forked.  A child that shares the parent's memory
 * (shared) writes no coverage: gcov would mark the parent's counters as
 * written, and the parent's own would be lost at its exit. */
static void __attribute__((noreturn)) child_fail(int fd, enum spawn_step step, bool shared)
{
	int msg[2] = { (int)step, errno };
	ssize_t n;

	do
		n = write(fd, msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	if (!shared)
		cov_flush();
	_exit(127);
}

/* In a fresh network namespace only lo exists, and it is down: brings it
 * up so a script can still talk to itself over 127.0.0.1. */
static int netns_lo_up(void)
{
	struct ifreq ifr;
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (sk < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
		ret = -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ret == 0 && ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
		ret = -1;
	close(sk);
	return ret;
}

static int set_limit(int res, uint64_t v)
{
	/* CPU: SIGXCPU at the limit, SIGKILL a second later, so a script
	 * can notice and clean up (soft == hard would send both at once). */
	struct rlimit rl = { .rlim_cur = (rlim_t)v,
			     .rlim_max = (rlim_t)(res == RLIMIT_CPU ? v + 1 : v) };

	if (setrlimit(res, &rl) == 0)
		return 0;
	/* Lowering the hard limit can be refused where the soft one is not
	 * (valgrind guards its own descriptors' hard NOFILE limit); a soft
	 * limit still stops a runaway script, if not a determined one. */
	if (errno != EPERM || getrlimit(res, &rl) < 0)
		return -1;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)v)
		return 0;
	rl.rlim_cur = (rlim_t)v;
	return setrlimit(res, &rl);
}

/* Marks every descriptor from 3 up close-on-exec.  close_range does it in
 * one call; where it is missing (old kernels, valgrind) walk the open
 * descriptors instead - /proc/self/fd lists exactly those. */
static void cloexec_from(int lowfd)
{
	DIR *d;
	struct dirent *de;

	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);

		if (fd >= lowfd && fd != dirfd(d))
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	closedir(d);
}

/* The child, up to its exec.  shared: started by vfork or its clone3 twin
 * (spawn_start), it runs on the parent's memory and stack while the parent
 * waits: it writes nothing the parent keeps (no globals, no coverage
 * dump), and changes credentials by plain system calls (glibc's wrappers
 * would look for other threads in a list that is the parent's). */
static void __attribute__((noreturn, noinline)) child(const struct spawn_req *r, int go_rd,
						      int err_wr, pid_t parent, bool shared)
{
	struct sigaction sa;
	sigset_t all;
	char go;
	ssize_t n;
	int devnull, out_fd, err_fd, sig;

	/* The error pipe must not sit on 3, which may carry the script. */
	if (err_wr < 10) {
		int high = fcntl(err_wr, F_DUPFD_CLOEXEC, 10);

		if (high >= 0) {
			close(err_wr);
			err_wr = high;
		}
	}
	/* Signals: the supervisor blocks some for its signalfd, and ignored
	 * dispositions survive exec; the script must start with defaults. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	if (setsid() < 0)
		child_fail(err_wr, SPAWN_STEP_SETUP, shared);
	/* Held here until the parent has put us into the run's cgroup, so
	 * not a single instruction of the script runs outside it (born in
	 * it, there is nothing to wait for). */
	if (go_rd >= 0) {
		do
			n = read(go_rd, &go, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			if (!shared)
				cov_flush();
			_exit(127);
		}
		close(go_rd);
	}

	/* A parent started with 0, 1 or 2 closed may hand us pipes on those
	 * numbers: lift the sources above 2 first, so one dup2 cannot
	 * clobber another's source (and dup2(fd, fd), which would keep
	 * close-on-exec, never happens). */
	out_fd = r->out_fd < 3 ? fcntl(r->out_fd, F_DUPFD_CLOEXEC, 3) : r->out_fd;
	err_fd = r->err_fd < 3 ? fcntl(r->err_fd, F_DUPFD_CLOEXEC, 3) : r->err_fd;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull >= 0 && devnull < 3)
		devnull = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
	if (out_fd < 0 || err_fd < 0 || devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
	    dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
		child_fail(err_wr, SPAWN_STEP_SETUP, shared);
	cloexec_from(3);

	if (r->cwd && chdir(r->cwd) < 0)
		child_fail(err_wr, SPAWN_STEP_CHDIR, shared);
	if (r->pass_file) {
		int fd = open(r->pass_file, O_RDONLY | O_NOFOLLOW);

		/* dup2 onto 3 clears close-on-exec (err_wr was moved above
		 * 10 at the start, so 3 is free to take). */
		if (fd < 0)
			child_fail(err_wr, SPAWN_STEP_OPEN_SCRIPT, shared);
		if (fd != 3) {
			if (dup2(fd, 3) < 0)
				child_fail(err_wr, SPAWN_STEP_OPEN_SCRIPT, shared);
			close(fd);
		}
	}
	if (!r->lim.nofile && r->lim.nofile_soft) {
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > (rlim_t)r->lim.nofile_soft) {
			rl.rlim_cur = (rlim_t)r->lim.nofile_soft;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				child_fail(err_wr, SPAWN_STEP_RLIMIT, shared);
		}
	}
	if (set_limit(RLIMIT_CORE, 0) < 0 ||
	    (r->lim.cpu_s && set_limit(RLIMIT_CPU, r->lim.cpu_s) < 0) ||
	    (r->lim.data && set_limit(RLIMIT_DATA, r->lim.data) < 0) ||
	    (r->lim.nofile && set_limit(RLIMIT_NOFILE, r->lim.nofile) < 0) ||
	    (r->lim.nproc && set_limit(RLIMIT_NPROC, r->lim.nproc) < 0) ||
	    (r->lim.fsize && set_limit(RLIMIT_FSIZE, r->lim.fsize) < 0))
		child_fail(err_wr, SPAWN_STEP_RLIMIT, shared);
	if (r->new_netns && (unshare(CLONE_NEWNET) < 0 || netns_lo_up() < 0))
		child_fail(err_wr, SPAWN_STEP_NETNS, shared);
	if (r->drop) {
		if (syscall(SYS_setgroups, 0, NULL) < 0)
			child_fail(err_wr, SPAWN_STEP_SETGROUPS, shared);
		if (syscall(SYS_setresgid, r->gid, r->gid, r->gid) < 0)
			child_fail(err_wr, SPAWN_STEP_SETGID, shared);
		if (syscall(SYS_setresuid, r->uid, r->uid, r->uid) < 0)
			child_fail(err_wr, SPAWN_STEP_SETUID, shared);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(err_wr, SPAWN_STEP_NO_NEW_PRIVS, shared);
	/* After the credential change, which clears it: if the supervisor
	 * dies, the direct child goes with it (the watchdog takes care of
	 * the rest of the tree). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(127);
	execve(r->file, r->argv, r->envp);
	child_fail(err_wr, SPAWN_STEP_EXEC, shared);
}

#ifdef __SANITIZE_ADDRESS__
/* libasan: makes the stack below sp addressable again after a child ran on
 * it (what its vfork interceptor does). */
void __asan_handle_vfork(void *sp);
#define AFTER_VFORK() __asan_handle_vfork(__builtin_frame_address(0))
#else
#define AFTER_VFORK() ((void)0)
#endif

int spawn_start(const struct spawn_req *r, struct spawn_child *c)
{
	int go[2] = { -1, -1 }, errp[2], ret;
	pid_t parent = getpid(), pid = -ENOSYS;
	sigset_t all, old;
	volatile bool in_cgroup = false;	/* set after the clone, which returns twice */

	c->pid = -1;
	c->go_fd = c->err_fd = -1;
	c->in_cgroup = false;
	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	/* Until the child has reset its handlers, none of ours may run in
	 * it: with our memory shared, they would act on our state. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
#ifdef FR_HAVE_CLONE3_VFORK
	if (r->cgroup_dir) {
		/* Born in the cgroup (CLONE_INTO_CGROUP): nothing to hold,
		 * nobody to move.  Sharing our memory until its exec
		 * (CLONE_VM | CLONE_VFORK): no copy of our page tables, no
		 * copy-on-write faults after it.  Called from here, not from a
		 * helper: the child must not return from the function that
		 * started it (its calls overwrite that frame).  Where clone3
		 * cannot (before Linux 5.7, valgrind, a refusal), the fork
		 * below. */
		int cgfd = open(r->cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (cgfd >= 0) {
			struct clone_args ca;

			memset(&ca, 0, sizeof(ca));
			ca.flags = CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK;
			ca.exit_signal = SIGCHLD;
			ca.cgroup = (uint64_t)cgfd;
			pid = (pid_t)fr_clone3_vfork(&ca, sizeof(ca));
			if (pid == 0)
				child(r, -1, errp[1], parent, true);
			close(cgfd);
			in_cgroup = pid > 0;
		}
	}
#endif
	if (!in_cgroup && !r->cgroup_dir) {
		/* No kill domain to enter first: nothing to hold. */
		pid = vfork();
		if (pid == 0)
			child(r, -1, errp[1], parent, true);
		if (pid < 0)
			pid = -errno;
	} else if (!in_cgroup) {
		/* clone3 could not: a copy, held until the caller has moved
		 * it into the cgroup (spawn_release). */
		if (pipe2(go, O_CLOEXEC) < 0) {
			ret = -errno;
			sigprocmask(SIG_SETMASK, &old, NULL);
			goto out_err;
		}
		pid = fork();
		if (pid == 0) {
			close(go[1]);
			close(errp[0]);
			child(r, go[0], errp[1], parent, false);
		}
		if (pid < 0)
			pid = -errno;
	}
	AFTER_VFORK();
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		ret = pid;
		goto out_err;
	}
	if (go[0] >= 0)
		close(go[0]);
	close(errp[1]);
	c->pid = pid;
	c->in_cgroup = in_cgroup;
	c->go_fd = go[1];
	c->err_fd = errp[0];
	return 0;

out_err:
	close(errp[0]);
	close(errp[1]);
	if (go[0] >= 0) {
		close(go[0]);
		close(go[1]);
	}
	return ret;
}

int spawn_release(struct spawn_child *c, enum spawn_step *step)
{
	int msg[2];
	ssize_t n;
	int ret = 0;
	bool released;

	if (c->go_fd >= 0) {
		released = write(c->go_fd, "g", 1) == 1;
		close(c->go_fd);
		c->go_fd = -1;
	} else {
		released = true;	/* never held */
	}
	/* EOF: the close-on-exec descriptor went away in a successful
	 * exec.  A message: the step and errno that failed - also when the
	 * child is gone before the release (EPIPE above: a step before the
	 * hold, setsid, failed and said so). */
	do
		n = read(c->err_fd, msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(msg)) {
		*step = (enum spawn_step)msg[0];
		ret = msg[1] > 0 ? -msg[1] : -EIO;
	} else if (!released) {
		/* Gone without a word. */
		*step = SPAWN_STEP_SETUP;
		ret = -ECHILD;
	} else if (n != 0) {
		*step = SPAWN_STEP_SETUP;
		ret = n < 0 ? -errno : -EIO;
	}
	close(c->err_fd);
	c->err_fd = -1;
	return ret;
}

void spawn_abort(struct spawn_child *c)
{
	if (c->go_fd >= 0)
		close(c->go_fd);
	if (c->err_fd >= 0)
		close(c->err_fd);
	c->go_fd = c->err_fd = -1;
}
