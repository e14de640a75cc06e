/* The watchdog process; see watchdog.h. */
#include "watchdog.h"
#include "cgroup.h"
#include "proctree.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "covflush.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int domain_kill_orphaned(const char *cgroup_path, const char *marker, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct cgroup_run cg;
	int seen = 0, n;

	if (cgroup_path && cgroup_path[0]) {
		memset(&cg, 0, sizeof(cg));
		cgroup_attach(cgroup_path, &cg);
		if (cgroup_kill(&cg) == 0)
			cgroup_wait_empty(&cg, timeout_ms);
		cgroup_remove(&cg);
	}
	if (marker == NULL)
		return 0;
	/* Repeat the sweep: a process may fork between two looks. */
	for (;;) {
		n = proc_signal_tree(0, NULL, 0, marker, SIGKILL);
		if (n <= 0)
			return seen;
		seen += n;
		if (mono_ms() > deadline)
			return -ETIMEDOUT;
		{
			struct timespec ts = { 0, 2000000 };

			nanosleep(&ts, NULL);
		}
	}
}

static void __attribute__((noreturn)) watchdog_main(int fd, const char *cgroup_path,
						    const char *marker)
{
	char c;
	ssize_t n;

	/* Own session: Ctrl-C or a group signal meant for the runner's
	 * terminal job must not take the watchdog down with it. */
	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	prctl(PR_SET_NAME, "runner-watchdog", 0, 0, 0);
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && c == 'D') {
		cov_flush();
		_exit(0);
	}
	domain_kill_orphaned(cgroup_path, marker, 10000);
	cov_flush();
	_exit(0);
}

static void __attribute__((noreturn)) watchdog_multi_main(int fd);

int watchdog_exec_main(int argc, char **argv)
{
	char *end;
	long fd;

	sigset_t none;

	if (argc == 3 && strcmp(argv[1], WATCHDOG_MULTI_ARGV1) == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		fd = strtol(argv[2], &end, 10);
		if (*end || fd < 0 || fd > 1 << 20)
			return 2;
		watchdog_multi_main((int)fd);
	}
	if (argc != 5 || strcmp(argv[1], WATCHDOG_ARGV1) != 0)
		return 2;
	/* Started with every signal blocked (see spawn_helper). */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	fd = strtol(argv[2], &end, 10);
	if (*end || fd < 0 || fd > 1 << 20)
		return 2;
	watchdog_main((int)fd, argv[3][0] ? argv[3] : NULL, argv[4][0] ? argv[4] : NULL);
}

/* Starts the helper with vfork: unlike fork it copies none of the
 * supervisor's page tables (nor leaves it copy-on-write faults to take
 * afterwards), and the exec has happened when it returns.  The child runs
 * on the supervisor's memory until then, so it only makes system calls,
 * with every signal blocked (no handler may run on the shared stack; the
 * helper unblocks them).  It gets the read end as descriptor 3, /dev/null
 * on 0, 1 and 2, nothing else.  0, or -errno when the helper could not be
 * started (the caller then forks a copy of itself). */
static int spawn_helper(struct watchdog *w, const char *helper, int rd, const char *cgroup_path,
			const char *marker)
{
	char *argv[] = { (char *)WATCHDOG_HELPER, (char *)WATCHDOG_ARGV1, (char *)"3",
			 (char *)(cgroup_path ? cgroup_path : ""),
			 (char *)(marker ? marker : ""), NULL };
	char *envp[] = { NULL };
	volatile int child_err = 0;
	sigset_t all, old;
	pid_t pid;
	int e;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0) {
		int fd;

		if ((rd == 3 ? fcntl(3, F_SETFD, 0) : dup2(rd, 3)) < 0)
			goto fail;
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			goto fail;
		if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0) {
			/* No close_range (old kernel, valgrind). */
			for (fd = 4; fd < 1024; fd++)
				close(fd);
		}
		/* The system call itself: a coverage build wraps execve()
		 * to write its counters first, which in a vfork child would
		 * mark the supervisor's own counters written (shared memory)
		 * and lose everything it runs afterwards. */
		syscall(SYS_execve, helper, argv, envp);
fail:
		child_err = errno ? errno : EIO;
		_exit(127);
	}
	e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -e;
	if (child_err) {
		e = child_err;
		waitpid(pid, NULL, 0);
		return -e;
	}
	w->pid = pid;
	return 0;
}

/* In a forked watchdog: /dev/null on 0, 1 and 2, every signal unblocked. */
static void quiet_child(void)
{
	sigset_t none;
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* WATCHDOG_HELPER next to our own binary, in self (PATH_MAX), or "" when
 * it is not there or not executable. */
static void helper_path(char *self, size_t size)
{
	ssize_t sl = readlink("/proc/self/exe", self, size - sizeof(WATCHDOG_HELPER) - 2);

	self[sl > 0 ? sl : 0] = '\0';
	if (strrchr(self, '/') != NULL) {
		strcpy(strrchr(self, '/') + 1, WATCHDOG_HELPER);
		if (access(self, X_OK) < 0)
			self[0] = '\0';
	} else {
		self[0] = '\0';
	}
}

int watchdog_start(struct watchdog *w, const char *cgroup_path, const char *marker)
{
	char self[PATH_MAX], fdarg[16];
	int p[2];

	w->pid = -1;
	w->fd = -1;
	/* The watchdog execs WATCHDOG_HELPER from our own directory (see
	 * below); found before the fork, as the child should do as little
	 * as it can. */
	helper_path(self, sizeof(self));
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (self[0] && spawn_helper(w, self, p[0], cgroup_path, marker) == 0) {
		close(p[0]);
		w->fd = p[1];
		return 0;
	}
	w->pid = fork();
	if (w->pid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (w->pid == 0) {
		int fd;

		/* Keep only the read end: anything else open here (the store,
		 * the run's pipes) would outlive the supervisor through us.
		 * The strings need no copy: the child has its own copy of the
		 * whole address space. */
		unsigned keep = (unsigned)p[0];

		if (keep < 3 ? syscall(SYS_close_range, 3U, ~0U, 0U) < 0 :
		    (keep > 3 && syscall(SYS_close_range, 3U, keep - 1, 0U) < 0) ||
		    syscall(SYS_close_range, keep + 1, ~0U, 0U) < 0) {
			/* No close_range (old kernel, valgrind): one by one. */
			for (fd = 3; fd < 1024; fd++)
				if (fd != p[0])
					close(fd);
		}
		quiet_child();
		/* A fork shares the supervisor's pages copy-on-write, and
		 * keeps the originals of every page the supervisor writes
		 * later: a few hundred KiB of heap and stack per run, for a
		 * process that only waits on a pipe.  The helper, a small
		 * static program, costs a few dozen.  Without it (or if the
		 * exec fails) the forked copy does the job. */
		if (self[0]) {
			char *argv[] = { (char *)WATCHDOG_HELPER, (char *)WATCHDOG_ARGV1, fdarg,
					 (char *)(cgroup_path ? cgroup_path : ""),
					 (char *)(marker ? marker : ""), NULL };
			char *envp[] = { NULL };

			snprintf(fdarg, sizeof(fdarg), "%d", p[0]);
			fcntl(p[0], F_SETFD, 0);
			execve(self, argv, envp);
			fcntl(p[0], F_SETFD, FD_CLOEXEC);
		}
		watchdog_main(p[0], cgroup_path, marker);
	}
	close(p[0]);
	w->fd = p[1];
	return 0;
}

void watchdog_done(struct watchdog *w)
{
	if (w->fd < 0)
		return;
	if (write(w->fd, "D", 1) != 1) {
		/* Already gone: nothing to tell. */
	}
	close(w->fd);
	w->fd = -1;
}

/* ---- one watchdog for many runs ---- */

struct wd_ent {
	char *marker;
	char *cgroup;		/* NULL: none */
};

static void multi_line(struct wd_ent **v, size_t *n, size_t *cap, char *line)
{
	char *tab;
	size_t i;

	if (line[0] == '+') {
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			struct wd_ent *nv = realloc(*v, nc * sizeof(**v));

			if (nv == NULL)
				return;
			*v = nv;
			*cap = nc;
		}
		tab = strchr(line + 1, '\t');
		if (tab)
			*tab++ = '\0';
		(*v)[*n].marker = strdup(line + 1);
		(*v)[*n].cgroup = tab && *tab ? strdup(tab) : NULL;
		if ((*v)[*n].marker)
			(*n)++;
	} else if (line[0] == '-') {
		for (i = 0; i < *n; i++) {
			if (strcmp((*v)[i].marker, line + 1) == 0) {
				free((*v)[i].marker);
				free((*v)[i].cgroup);
				(*v)[i] = (*v)[--*n];
				break;
			}
		}
	}
}

static void __attribute__((noreturn)) watchdog_multi_main(int fd)
{
	struct wd_ent *v = NULL;
	size_t n = 0, cap = 0, len = 0, i;
	char buf[8192];
	ssize_t r;

	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	prctl(PR_SET_NAME, "runner-watchdog", 0, 0, 0);
	for (;;) {
		char *nl;

		do
			r = read(fd, buf + len, sizeof(buf) - 1 - len);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			break;
		len += (size_t)r;
		buf[len] = '\0';
		if (buf[0] == 'D') {
			cov_flush();
			_exit(0);
		}
		while ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			multi_line(&v, &n, &cap, buf);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
			if (len && buf[0] == 'D') {
				cov_flush();
				_exit(0);
			}
		}
		if (len == sizeof(buf) - 1)
			len = 0;	/* no line is that long: drop garbage */
	}
	/* serve died: every cgroup killed at once (each cgroup.kill waits
	 * for an RCU grace period; one after another would add them up),
	 * then waited for and removed, then the marker sweeps. */
	for (i = 0; i < n; i++) {
		struct cgroup_run cg;

		if (v[i].cgroup == NULL)
			continue;
		memset(&cg, 0, sizeof(cg));
		cgroup_attach(v[i].cgroup, &cg);
		cgroup_kill(&cg);
	}
	for (i = 0; i < n; i++)
		domain_kill_orphaned(v[i].cgroup, v[i].marker, 10000);
	cov_flush();
	_exit(0);
}

static int multi_write(struct watchdog *w, const char *a, const char *b, const char *c)
{
	char line[PATH_MAX + 256];
	size_t off = 0;
	int l = snprintf(line, sizeof(line), "%s%s%s%s\n", a, b, c ? "\t" : "", c ? c : "");

	if (w->fd < 0)
		return -EPIPE;
	if (l <= 0 || (size_t)l >= sizeof(line))
		return -ENAMETOOLONG;
	/* Blocking, and under PIPE_BUF: one atomic write, or none. */
	while (off < (size_t)l) {
		ssize_t r = write(w->fd, line + off, (size_t)l - off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)r;
	}
	return 0;
}

int watchdog_multi_add(struct watchdog *w, const char *cgroup_path, const char *marker)
{
	return multi_write(w, "+", marker, cgroup_path ? cgroup_path : "");
}

int watchdog_multi_del(struct watchdog *w, const char *marker)
{
	return multi_write(w, "-", marker, NULL);
}

int watchdog_multi_start(struct watchdog *w)
{
	char self[PATH_MAX];
	int p[2], fd;

	w->pid = -1;
	w->fd = -1;
	helper_path(self, sizeof(self));
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	/* Started once per serve, so a plain fork is cheap enough; the
	 * helper is exec'd so that no copy of serve's memory stays. */
	w->pid = fork();
	if (w->pid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (w->pid == 0) {
		if (p[0] != 3) {
			if (dup2(p[0], 3) < 0)
				_exit(127);
			close(p[0]);
		} else {
			fcntl(3, F_SETFD, 0);
		}
		if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
			for (fd = 4; fd < 1024; fd++)
				close(fd);
		quiet_child();
		signal(SIGPIPE, SIG_DFL);
		if (self[0]) {
			char *argv[] = { (char *)WATCHDOG_HELPER, (char *)WATCHDOG_MULTI_ARGV1,
					 (char *)"3", NULL };
			char *envp[] = { NULL };

			execve(self, argv, envp);
		}
		watchdog_multi_main(3);
	}
	close(p[0]);
	w->fd = p[1];
	return 0;
}
