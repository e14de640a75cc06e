/* Command running for scenarios (see spawn.h). */
#include "spawn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAPTURE_CAP (4u << 20)

volatile sig_atomic_t fr_stop;

uint64_t fr_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* In the child, after fork: never returns.  Reports an exec failure's
 * errno over ERRFD (close-on-exec, so a successful exec closes it). */
static void child_exec(char *const argv[], char *const envp[], const char *cwd, int in_fd,
		       int out_fd, int err_fd, int errfd)
{
	int e;

	setpgid(0, 0);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	if (in_fd >= 0 && dup2(in_fd, 0) < 0)
		goto fail;
	if (out_fd >= 0 && dup2(out_fd, 1) < 0)
		goto fail;
	if (err_fd >= 0 && dup2(err_fd, 2) < 0)
		goto fail;
	if (cwd && chdir(cwd) < 0)
		goto fail;
	if (strchr(argv[0], '/'))
		execve(argv[0], argv, envp);
	else
		execvpe(argv[0], argv, envp);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0) {
		/* nothing more to say */
	}
	_exit(127);
}

/* Reads what the exec-error pipe says: 0 (exec happened) or the errno. */
static int read_exec_errno(int fd)
{
	int e = 0;
	ssize_t n;

	do
		n = read(fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(e) ? e : 0;
}

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_read(int *fd, struct buf *b)
{
	char tmp[65536];
	ssize_t n = read(*fd, tmp, sizeof(tmp));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	if (b->len + (size_t)n > CAPTURE_CAP)
		n = (ssize_t)(CAPTURE_CAP > b->len ? CAPTURE_CAP - b->len : 0);
	if (n == 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->len + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p)
			return;	/* keep what we have */
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, tmp, (size_t)n);
	b->len += (size_t)n;
}

int spawn_run(char *const argv[], char *const envp[], const char *cwd, uint64_t deadline,
	      struct proc_result *res)
{
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, ep[2] = { -1, -1 };
	int pfd = -1, devnull = -1, status = 0, rc = 0;
	struct buf ob = { 0 }, eb = { 0 };
	uint64_t start = fr_now_ns(), exit_ns = 0;
	bool exited = false, killed = false;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out_close;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0) {
		rc = -errno;
		goto out_close;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out_close;
	}
	if (pid == 0)
		child_exec(argv, envp, cwd, devnull, outp[1], errp[1], ep[1]);
	/* Also here: no window in which the child runs outside its group. */
	setpgid(pid, pid);
	close(outp[1]);
	close(errp[1]);
	close(ep[1]);
	outp[1] = errp[1] = ep[1] = -1;
	res->spawn_errno = read_exec_errno(ep[0]);
	pfd = pidfd_open_(pid);
	while (!exited || outp[0] >= 0 || errp[0] >= 0) {
		struct pollfd fds[3];
		int nf = 0, timeout = 200;
		uint64_t now = fr_now_ns();

		if (!killed && ((deadline && now >= deadline) || fr_stop)) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			killed = true;
			res->timed_out = true;
		}
		if (deadline && !killed) {
			uint64_t left = (deadline - now) / 1000000 + 1;

			if (left < (uint64_t)timeout)
				timeout = (int)left;
		}
		if (outp[0] >= 0)
			fds[nf++] = (struct pollfd){ .fd = outp[0], .events = POLLIN };
		if (errp[0] >= 0)
			fds[nf++] = (struct pollfd){ .fd = errp[0], .events = POLLIN };
		if (!exited && pfd >= 0)
			fds[nf++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
		if (exited)
			timeout = 50;
		else if (pfd < 0 && timeout > 10)
			timeout = 10;	/* no pidfd to wake us when it exits */
		if (poll(fds, (nfds_t)nf, timeout) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < nf; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (fds[i].fd == outp[0])
				buf_read(&outp[0], &ob);
			else if (fds[i].fd == errp[0])
				buf_read(&errp[0], &eb);
		}
		if (!exited) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid)
				exited = true;
		}
		if (exited && !exit_ns)
			exit_ns = fr_now_ns();
		if (exited && fr_now_ns() - exit_ns > (killed ? 100000000ull : 1000000000ull)) {
			/* It has ended, but something it started (in the
			 * background, or in a session of its own) still holds
			 * the pipes: stop reading rather than wait for it. */
			break;
		}
	}
	if (!exited)
		waitpid(pid, &status, 0);
	/* Whatever is left of its group goes with it. */
	kill(-pid, SIGKILL);
	res->ns = fr_now_ns() - start;
	if (WIFEXITED(status)) {
		res->exit_code = WEXITSTATUS(status);
	} else {
		res->exit_code = -1;
		res->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
out_close:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (pfd >= 0)
		close(pfd);
	if (devnull >= 0)
		close(devnull);
	res->out = ob.p ? ob.p : strdup("");
	res->err = eb.p ? eb.p : strdup("");
	if (res->out && ob.p)
		res->out[ob.len] = '\0';
	if (res->err && eb.p)
		res->err[eb.len] = '\0';
	res->out_len = ob.len;
	res->err_len = eb.len;
	if (!res->out || !res->err)
		rc = rc ? rc : -ENOMEM;
	return rc;
}

void proc_result_free(struct proc_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

int spawn_bg(char *const argv[], char *const envp[], const char *cwd, pid_t *pidp, int *out_fd,
	     bool merge, const char *log_path)
{
	int outp[2] = { -1, -1 }, ep[2] = { -1, -1 }, devnull = -1, logfd = -1, rc = 0, e;
	pid_t pid;

	if (pipe2(ep, O_CLOEXEC) < 0)
		return -errno;
	if (out_fd && pipe2(outp, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out_close;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (log_path)
		logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (devnull < 0) {
		rc = -errno;
		goto out_close;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out_close;
	}
	if (pid == 0) {
		int o = out_fd ? outp[1] : (logfd >= 0 ? logfd : devnull);
		int er = merge && out_fd ? outp[1] : (logfd >= 0 ? logfd : devnull);

		child_exec(argv, envp, cwd, devnull, o, er, ep[1]);
	}
	setpgid(pid, pid);
	close(ep[1]);
	ep[1] = -1;
	e = read_exec_errno(ep[0]);
	if (e) {
		waitpid(pid, NULL, 0);
		rc = -e;
		goto out_close;
	}
	*pidp = pid;
	if (out_fd) {
		*out_fd = outp[0];
		outp[0] = -1;
	}
out_close:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	if (devnull >= 0)
		close(devnull);
	if (logfd >= 0)
		close(logfd);
	return rc;
}

int wait_child(pid_t pid, uint64_t deadline, int *status)
{
	int pfd = pidfd_open_(pid), st = 0;

	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		uint64_t now;

		if (w == pid) {
			if (status)
				*status = st;
			if (pfd >= 0)
				close(pfd);
			return 0;
		}
		if (w < 0) {
			int e = -errno;

			if (pfd >= 0)
				close(pfd);
			return e;
		}
		now = fr_now_ns();
		if (now >= deadline) {
			if (pfd >= 0)
				close(pfd);
			return -ETIMEDOUT;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };
			uint64_t left = (deadline - now) / 1000000 + 1;

			poll(&p, 1, left > 200 ? 200 : (int)left);
		} else {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
}

/* Whether /proc/PID/environ holds the exact entry NEEDLE ("NAME=VALUE"). */
static bool environ_has(const char *pid, const char *needle, size_t nlen)
{
	char path[64], buf[65536];
	ssize_t n;
	size_t got = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/environ", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	for (size_t i = 0; i < got;) {
		size_t l = strnlen(buf + i, got - i);

		if (l == nlen && memcmp(buf + i, needle, nlen) == 0)
			return true;
		i += l + 1;
	}
	return false;
}

/* Signals the matching processes; reaps those that are our own children
 * (and only those: another child's status belongs to whoever waits for it). */
static int sweep(const char *name, const char *value, int sig, bool reap)
{
	char needle[4200];
	size_t nlen;
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t self = getpid();
	int count = 0;

	if (!d)
		return -errno;
	nlen = (size_t)snprintf(needle, sizeof(needle), "%s=%s", name, value);
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		if (environ_has(de->d_name, needle, nlen) && kill((pid_t)pid, sig) == 0) {
			count++;
			if (reap && sig == SIGKILL)
				waitpid((pid_t)pid, NULL, WNOHANG);
		}
	}
	closedir(d);
	return count;
}

int sweep_env(const char *name, const char *value, int sig)
{
	return sweep(name, value, sig, false);
}

int sweep_env_kill(const char *name, const char *value, uint64_t deadline)
{
	for (;;) {
		struct timespec ts = { 0, 2000000 };
		int n = sweep(name, value, SIGKILL, true);

		if (n <= 0)
			return 0;
		if (fr_now_ns() >= deadline)
			return -ETIMEDOUT;
		/* A killed process that is not our child stays in /proc until
		 * its parent reaps it; its environment reads empty by then. */
		nanosleep(&ts, NULL);
	}
}
