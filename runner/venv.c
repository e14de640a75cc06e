/* The Python virtual environment; see venv.h.  Field report 001: recreating
 * a venv whose directory is a Docker volume mountpoint failed with "[Errno
 * 16] Resource busy", because removing or renaming a mountpoint is EBUSY.
 * Here recreation renames the old venv aside when it can and otherwise
 * empties the directory in place, and in a container no venv is made. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "venv.h"
#include "diag.h"

#define DEFAULT_PYTHON "/usr/bin/python3"
#define DEFAULT_TIMEOUT_MS 300000
#define CHECK_TIMEOUT_MS 30000

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

char *venv_default_dir(const char *state_dir)
{
	char *s;

	return asprintf(&s, "%s/venv", state_dir) < 0 ? NULL : s;
}

char *venv_default_package_cache(const char *state_dir)
{
	char *s;

	return asprintf(&s, "%s/package_cache.json", state_dir) < 0 ? NULL : s;
}

void venv_status_free(struct venv_status *st)
{
	if (!st)
		return;
	free(st->dir);
	free(st->python);
	free(st->reason);
	free(st->action);
	memset(st, 0, sizeof(*st));
}

static int __attribute__((format(printf, 2, 3)))
set_str(char **dst, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* ---- running a command ------------------------------------------------ */

static void drain(int fd, char *out, size_t outlen, size_t *used)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (out && *used + 1 < outlen) {
			size_t take = (size_t)n;

			if (take > outlen - 1 - *used)
				take = outlen - 1 - *used;
			memcpy(out + *used, buf, take);
			*used += take;
			out[*used] = '\0';
		}
	}
}

int venv_run(char *const argv[], int timeout_ms, int *wstatus,
	     char *out, size_t outlen)
{
	int errpipe[2] = { -1, -1 }, outpipe[2] = { -1, -1 };
	int pidfd = -1, rc, child_err = 0;
	size_t used = 0;
	struct timespec start;
	pid_t pid;

	if (out && outlen)
		out[0] = '\0';
	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(outpipe, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out_close;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out_close;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		/* Its own process group, so a timeout kills what it started. */
		setpgid(0, 0);
		if (null < 0 || dup2(null, 0) < 0 || dup2(outpipe[1], 1) < 0 ||
		    dup2(outpipe[1], 2) < 0)
			child_err = errno;
		else {
			execv(argv[0], argv);
			child_err = errno;
		}
		/* The exec errno goes back over the close-on-exec pipe, so the
		 * parent tells "cannot exec" apart from "exited 127". */
		if (write(errpipe[1], &child_err, sizeof(child_err)) < 0)
			_exit(126);
		_exit(127);
	}
	close(errpipe[1]);
	errpipe[1] = -1;
	close(outpipe[1]);
	outpipe[1] = -1;
	setpgid(pid, pid);

	{
		ssize_t n;

		do
			n = read(errpipe[0], &child_err, sizeof(child_err));
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)sizeof(child_err)) {
			waitpid(pid, NULL, 0);
			rc = -child_err;
			goto out_close;
		}
	}

	/* Wait for the exit on a pidfd; the output pipe alone is not enough,
	 * since a grandchild may hold it open long after the child is gone.
	 * Without pidfds (kernels before 5.3, valgrind) the wait polls
	 * waitpid() every 50 ms instead. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	fcntl(outpipe[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = outpipe[0], .events = POLLIN },
			{ .fd = pidfd, .events = POLLIN },
		};
		int wait_ms = -1, np;

		if (timeout_ms > 0) {
			struct timespec now;
			long el;

			clock_gettime(CLOCK_MONOTONIC, &now);
			el = (now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000;
			if (el >= timeout_ms) {
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				rc = -ETIMEDOUT;
				goto out_close;
			}
			wait_ms = timeout_ms - (int)el;
		}
		if (pidfd < 0 && (wait_ms < 0 || wait_ms > 50))
			wait_ms = 50;
		np = poll(pfd, 2, wait_ms);
		if (np < 0 && errno != EINTR) {
			rc = -errno;
			kill(-pid, SIGKILL);
			waitpid(pid, NULL, 0);
			goto out_close;
		}
		if (np > 0 && (pfd[0].revents & (POLLIN | POLLHUP))) {
			char buf[4096];
			ssize_t n = read(outpipe[0], buf, sizeof(buf));

			if (n > 0 && out && used + 1 < outlen) {
				size_t take = (size_t)n;

				if (take > outlen - 1 - used)
					take = outlen - 1 - used;
				memcpy(out + used, buf, take);
				used += take;
				out[used] = '\0';
			} else if (n == 0) {
				/* EOF: from now on only the exit is awaited. */
				close(outpipe[0]);
				outpipe[0] = -1;
			}
		}
		if (pidfd >= 0 && np > 0 && (pfd[1].revents & POLLIN))
			break;
		if (pidfd < 0) {
			int status;
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid) {
				if (outpipe[0] >= 0)
					drain(outpipe[0], out, outlen, &used);
				if (wstatus)
					*wstatus = status;
				rc = 0;
				goto out_close;
			}
		}
	}
	/* What the child wrote just before exiting; a grandchild that keeps
	 * the pipe open must not keep us here, hence non-blocking. */
	if (outpipe[0] >= 0)
		drain(outpipe[0], out, outlen, &used);
	{
		int status;

		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {
				rc = -errno;
				goto out_close;
			}
		}
		if (wstatus)
			*wstatus = status;
	}
	rc = 0;

out_close:
	if (pidfd >= 0)
		close(pidfd);
	for (int i = 0; i < 2; i++) {
		if (errpipe[i] >= 0)
			close(errpipe[i]);
		if (outpipe[i] >= 0)
			close(outpipe[i]);
	}
	return rc;
}

/* The last non-empty line of a command's output, for one-line reasons. */
static const char *last_line(char *out)
{
	size_t l = strlen(out);
	char *p;

	while (l > 0 && (out[l - 1] == '\n' || out[l - 1] == ' ' || out[l - 1] == '\r'))
		out[--l] = '\0';
	p = strrchr(out, '\n');
	return p ? p + 1 : out;
}

/* Runs argv and describes a failure in *why (malloc'd); 0 when it exited
 * 0, 1 when it ran and failed, -ENOMEM. */
static int run_ok(char *const argv[], int timeout_ms, char **why)
{
	char out[8192];
	int status = 0, rc;

	rc = venv_run(argv, timeout_ms, &status, out, sizeof(out));
	if (rc == -ETIMEDOUT)
		return set_str(why, "%s timed out after %d ms", argv[0], timeout_ms) < 0 ? -ENOMEM : 1;
	if (rc < 0)
		return set_str(why, "cannot run %s: %s", argv[0], strerror(-rc)) < 0 ? -ENOMEM : 1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		return set_str(why, "%s killed by signal %d", argv[0], WTERMSIG(status)) < 0 ? -ENOMEM : 1;
	const char *line = last_line(out);
	return set_str(why, "%s exited %d%s%s", argv[0], WEXITSTATUS(status),
		       *line ? ": " : "", line) < 0 ? -ENOMEM : 1;
}

/* ---- inspection ---------------------------------------------------------- */

static int pip_check(const char *dir, const char *python, bool *present)
{
	char *pip = NULL;
	char *why = NULL;
	int rc = 0;

	*present = false;
	if (dir) {
		if (asprintf(&pip, "%s/bin/pip", dir) < 0)
			return -ENOMEM;
		if (access(pip, X_OK) == 0)
			*present = true;
		free(pip);
	}
	if (!*present) {
		char *argv[] = { (char *)python, "-m", "pip", "--version", NULL };

		rc = run_ok(argv, CHECK_TIMEOUT_MS, &why);
		if (rc == 0)
			*present = true;
		free(why);
	}
	return rc < 0 ? rc : 0;
}

static int status_container(const struct venv_options *o, struct venv_status *st)
{
	const char *py = o->python ? o->python : DEFAULT_PYTHON;
	char *argv[] = { (char *)py, "-c", "pass", NULL };
	char *why = NULL;
	int rc;

	st->python = strdup(py);
	if (!st->python)
		return -ENOMEM;
	st->exists = false;
	rc = run_ok(argv, CHECK_TIMEOUT_MS, &why);
	if (rc < 0)
		goto out;
	st->healthy = rc == 0;
	rc = pip_check(NULL, py, &st->pip_present);
	if (rc < 0)
		goto out;
	if (st->healthy)
		rc = set_str(&st->reason, "in a container: no venv, system interpreter %s "
			     "runs%s", py, st->pip_present ? ", pip present" : ", no pip");
	else
		rc = set_str(&st->reason, "in a container: system interpreter broken: %s", why);
out:
	free(why);
	return rc;
}

int venv_status(const struct venv_options *o, struct venv_status *st)
{
	struct stat sb;
	char *why = NULL, *cfg = NULL;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!o->dir && !o->in_container)
		return -EINVAL;
	st->in_container = o->in_container;
	st->dir = strdup(o->dir ? o->dir : "");
	if (!st->dir)
		return -ENOMEM;
	if (o->in_container) {
		rc = status_container(o, st);
		goto out;
	}
	if (asprintf(&st->python, "%s/bin/python", o->dir) < 0) {
		st->python = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (stat(o->dir, &sb) < 0) {
		int e = errno;

		rc = set_str(&st->reason, e == ENOENT ? "missing: %s does not exist" :
			     "cannot inspect %s: %s", o->dir, strerror(e));
		goto out;
	}
	if (!S_ISDIR(sb.st_mode)) {
		st->exists = true;
		rc = set_str(&st->reason, "broken: %s is not a directory", o->dir);
		goto out;
	}
	st->exists = true;
	if (asprintf(&cfg, "%s/pyvenv.cfg", o->dir) < 0) {
		cfg = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (access(cfg, F_OK) < 0) {
		rc = set_str(&st->reason, "broken: %s: %s", cfg, strerror(errno));
		goto out;
	}
	{
		/* It must run, and be a venv rather than the base interpreter
		 * (sys.prefix differs from sys.base_prefix only in a venv). */
		char *argv[] = { st->python, "-c",
			"import sys; raise SystemExit(0 if sys.prefix != sys.base_prefix else 3)",
			NULL };

		rc = run_ok(argv, CHECK_TIMEOUT_MS, &why);
		if (rc < 0)
			goto out;
		if (rc > 0) {
			rc = set_str(&st->reason, "broken: %s", why);
			goto out;
		}
	}
	rc = pip_check(o->dir, st->python, &st->pip_present);
	if (rc < 0)
		goto out;
	if (!st->pip_present) {
		rc = set_str(&st->reason, "broken: no pip in %s (neither bin/pip nor "
			     "python -m pip)", o->dir);
		goto out;
	}
	st->healthy = true;
	rc = set_str(&st->reason, "healthy: %s runs, pip present", st->python);
out:
	free(why);
	free(cfg);
	if (rc < 0)
		venv_status_free(st);
	return rc;
}

/* ---- emptying a directory in place --------------------------------------- */

/* Removes the entries of the open directory dfd; path names it in
 * messages.  Symlinks are removed, never followed. */
static int empty_at(int dfd, const char *path, char *err, size_t errlen, int depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0, fd;

	if (depth > 256) {
		set_err(err, errlen, "empty %s: %s", path, strerror(ELOOP));
		return -ELOOP;
	}
	fd = dup(dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((errno = 0, de = readdir(d))) {
		struct stat sb;
		bool isdir;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_UNKNOWN) {
			isdir = de->d_type == DT_DIR;
		} else if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			isdir = S_ISDIR(sb.st_mode);
		} else {
			rc = -errno;
			set_err(err, errlen, "stat %s/%s: %s", path, de->d_name, strerror(-rc));
			break;
		}
		if (isdir) {
			char *sub;
			int cfd = openat(dfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (cfd < 0) {
				rc = -errno;
				set_err(err, errlen, "open %s/%s: %s", path, de->d_name,
					strerror(-rc));
				break;
			}
			if (asprintf(&sub, "%s/%s", path, de->d_name) < 0) {
				close(cfd);
				rc = -ENOMEM;
				break;
			}
			rc = empty_at(cfd, sub, err, errlen, depth + 1);
			close(cfd);
			if (rc == 0 && unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0) {
				rc = -errno;
				set_err(err, errlen, "rmdir %s: %s", sub, strerror(-rc));
			}
			free(sub);
			if (rc < 0)
				break;
		} else if (unlinkat(dfd, de->d_name, 0) < 0) {
			rc = -errno;
			set_err(err, errlen, "unlink %s/%s: %s", path, de->d_name,
				strerror(-rc));
			break;
		}
	}
	if (rc == 0 && errno != 0) {
		rc = -errno;
		set_err(err, errlen, "readdir %s: %s", path, strerror(-rc));
	}
	closedir(d);
	return rc;
}

int venv_empty_dir(const char *dir, char *err, size_t errlen)
{
	int dfd, rc;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		struct stat sb;

		rc = -errno;
		/* O_NOFOLLOW with O_DIRECTORY says ENOTDIR for a symlink; say
		 * what it is, since emptying through it would hit its target. */
		if (rc == -ENOTDIR && lstat(dir, &sb) == 0 && S_ISLNK(sb.st_mode))
			set_err(err, errlen, "open %s: is a symlink, not followed", dir);
		else
			set_err(err, errlen, "open %s: %s", dir, strerror(-rc));
		return rc;
	}
	rc = empty_at(dfd, dir, err, errlen, 0);
	close(dfd);
	return rc;
}

/* Removes a whole tree (the old venv renamed aside). */
static int remove_tree(const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int rc;

	/* What was renamed aside may be a file or symlink that stood where
	 * the venv directory belongs. */
	if (lstat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
		if (unlink(path) < 0) {
			rc = -errno;
			set_err(err, errlen, "unlink %s: %s", path, strerror(-rc));
			return rc;
		}
		return 0;
	}
	rc = venv_empty_dir(path, err, errlen);

	if (rc == 0 && rmdir(path) < 0) {
		rc = -errno;
		set_err(err, errlen, "rmdir %s: %s", path, strerror(-rc));
	}
	return rc;
}

/* ---- package cache ------------------------------------------------------- */

static bool cache_valid(json_t *j)
{
	return json_is_object(j) && json_is_object(json_object_get(j, "packages")) &&
	       json_is_string(json_object_get(j, "last_cleanup"));
}

static int mkdir_parents(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = '/';
	}
	free(p);
	return rc;
}

int venv_package_cache_ensure(const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;
	char *tmp = NULL, stamp[64];
	struct tm tm;
	time_t now;
	int fd, rc;

	if (access(path, F_OK) == 0) {
		j = json_load_file(path, 0, &jerr);
		/* Memory and an unopenable file are not a malformed cache. */
		if (!j && json_error_code(&jerr) == json_error_out_of_memory)
			return -ENOMEM;
		if (!j && json_error_code(&jerr) == json_error_cannot_open_file) {
			rc = errno ? -errno : -EIO;
			set_err(err, errlen, "%s", jerr.text);
			return rc;
		}
		if (!j) {
			set_err(err, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
			return -EINVAL;
		}
		rc = cache_valid(j) ? 0 : -EINVAL;
		if (rc < 0)
			set_err(err, errlen, "%s: not a package cache (needs a \"packages\" "
				"object and a \"last_cleanup\" string)", path);
		json_decref(j);
		return rc;
	}
	if (errno != ENOENT) {
		rc = -errno;
		set_err(err, errlen, "access %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = mkdir_parents(path, 0750);
	if (rc < 0) {
		set_err(err, errlen, "mkdir parents of %s: %s", path, strerror(-rc));
		return rc;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	/* The report's Python wrote datetime.isoformat(); an explicit UTC
	 * offset keeps it readable by fromisoformat() on every version. */
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	j = json_pack("{s:{}, s:s}", "packages", "last_cleanup", stamp);
	if (!j)
		return -ENOMEM;
	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
		json_decref(j);
		return -ENOMEM;
	}
	/* Through a temporary file and rename, so a crash never leaves a
	 * half-written cache for the next start to choke on. */
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "create %s: %s", tmp, strerror(-rc));
		goto out;
	}
	if (fchmod(fd, 0640) < 0 || json_dumpfd(j, fd, JSON_INDENT(2)) < 0 ||
	    write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		rc = errno ? -errno : -EIO;
		set_err(err, errlen, "write %s: %s", tmp, strerror(-rc));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = -errno;
		set_err(err, errlen, "rename %s to %s: %s", tmp, path, strerror(-rc));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	json_decref(j);
	return rc;
}

/* ---- creation ------------------------------------------------------------ */

static int build(const struct venv_options *o, char **why)
{
	const char *py = o->python ? o->python : DEFAULT_PYTHON;
	char *argv[] = { (char *)py, "-m", "venv", (char *)o->dir, NULL };
	int rc;

	rc = mkdir_parents(o->dir, 0750);
	if (rc < 0)
		return set_str(why, "mkdir parents of %s: %s", o->dir, strerror(-rc)) < 0 ?
			-ENOMEM : rc;
	rc = run_ok(argv, o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS, why);
	if (rc > 0)
		return -EIO;
	return rc;
}

/* Finishes st after a change: a fresh status, keeping the action. */
static int restatus(const struct venv_options *o, struct venv_status *st, char *action)
{
	int rc = venv_status(o, st);

	if (rc < 0) {
		free(action);
		return rc;
	}
	st->action = action;
	/* A venv that was built but does not pass the health check (say, no
	 * pip because ensurepip is missing) is a failure, with its reason. */
	if (!o->in_container && !st->healthy)
		return -EIO;
	return 0;
}

static int in_container_ensure(const struct venv_options *o, struct venv_status *st)
{
	char err[512] = "";
	char *action = NULL;
	int rc;

	if (o->package_cache) {
		rc = venv_package_cache_ensure(o->package_cache, err, sizeof(err));
		if (rc < 0 && rc != -ENOMEM) {
			rc = venv_status(o, st);
			if (rc < 0)
				return rc;
			if (set_str(&st->reason, "package cache: %s", err) < 0)
				return -ENOMEM;
			return -EINVAL;
		}
		if (rc < 0)
			return rc;
	}
	if (asprintf(&action, "none: in a container, the system interpreter is used "
		     "and no venv is created") < 0)
		return -ENOMEM;
	return restatus(o, st, action);
}

/* Renames dir aside, builds anew, removes the old one.  Returns 0, -EIO
 * with *why for a failed build, or -errno of the rename (the caller falls
 * back to emptying in place for EBUSY, EXDEV, EPERM and EACCES). */
static int recreate_aside(const struct venv_options *o, char **why)
{
	char *aside = NULL, cleanup_err[512];
	int rc;

	if (asprintf(&aside, "%s.old-XXXXXX", o->dir) < 0)
		return -ENOMEM;
	/* A fresh empty directory as the target: rename(2) replaces an empty
	 * directory, and the name cannot clash with a crashed run's leftover. */
	if (!mkdtemp(aside)) {
		rc = -errno;
		set_str(why, "mkdtemp %s: %s", aside, strerror(-rc));
		free(aside);
		return rc;
	}
	if (rename(o->dir, aside) < 0) {
		rc = -errno;
		set_str(why, "rename %s to %s: %s", o->dir, aside, strerror(-rc));
		rmdir(aside);
		free(aside);
		return rc;
	}
	rc = build(o, why);
	if (rc < 0) {
		/* Put the old one back: a broken venv beats none. */
		if (access(o->dir, F_OK) == 0)
			remove_tree(o->dir, cleanup_err, sizeof(cleanup_err));
		if (rename(aside, o->dir) < 0)
			remove_tree(aside, cleanup_err, sizeof(cleanup_err));
		free(aside);
		return rc == -ENOMEM ? rc : -EIO;
	}
	/* The new venv works; failing to remove the old one is not fatal,
	 * but it must not go unnoticed. */
	if (remove_tree(aside, cleanup_err, sizeof(cleanup_err)) < 0)
		set_str(why, "old venv left at %s: %s", aside, cleanup_err);
	free(aside);
	return 0;
}

static int recreate(const struct venv_options *o, struct venv_status *st)
{
	char *why = NULL, *action = NULL, err[1024] = "";
	struct stat sb;
	int rc;

	if (lstat(o->dir, &sb) < 0) {
		if (errno != ENOENT) {
			rc = -errno;
			goto fail_path;
		}
		rc = build(o, &why);
		if (rc < 0)
			goto fail_build;
		action = strdup("created");
		goto done;
	}

	if (!S_ISDIR(sb.st_mode)) {
		/* A file or dangling link where the venv belongs is no venv:
		 * nothing in it is worth keeping aside. */
		if (unlink(o->dir) < 0) {
			rc = -errno;
			goto fail_path;
		}
		rc = build(o, &why);
		if (rc < 0)
			goto fail_build;
		action = strdup("created (replaced a non-directory)");
		goto done;
	}

	rc = recreate_aside(o, &why);
	if (rc == 0) {
		if (why ? asprintf(&action, "recreated (%s)", why) < 0 :
			  !(action = strdup("recreated")))
			action = NULL;
		goto done;
	}
	if (rc != -EBUSY && rc != -EXDEV && rc != -EPERM && rc != -EACCES) {
		if (rc == -EIO)
			goto fail_build;
		goto fail_path;
	}

	/* The directory itself cannot move: typically a volume mountpoint.
	 * Empty it and build in the same place.  `python -m venv --clear`
	 * would rmtree the directory itself and hit the same EBUSY, so the
	 * emptying is ours and venv runs on an existing empty directory. */
	{
		int why_errno = -rc;

		rc = venv_empty_dir(o->dir, err, sizeof(err));
		if (rc < 0) {
			set_str(&why, "%s", err);
			goto fail_build_rc;
		}
		rc = build(o, &why);
		if (rc < 0)
			goto fail_build;
		if (asprintf(&action, "recreated in place: %s cannot be moved (%s)%s",
			     o->dir, strerror(why_errno),
			     why_errno == EBUSY ? ", it is a mountpoint or in use" : "") < 0)
			action = NULL;
	}
done:
	free(why);
	if (!action)
		return -ENOMEM;
	return restatus(o, st, action);

fail_path:
	{
		char *line = diag_line("recreate venv", o->dir, -rc);
		int r2 = venv_status(o, st);

		if (r2 == 0)
			set_str(&st->reason, "%s", line ? line : strerror(-rc));
		free(line);
		free(why);
		return r2 < 0 ? r2 : rc;
	}
fail_build:
	rc = rc == -ENOMEM ? rc : -EIO;
fail_build_rc:
	{
		int r2;

		if (rc == -ENOMEM) {
			free(why);
			return rc;
		}
		r2 = venv_status(o, st);
		if (r2 == 0)
			set_str(&st->reason, "cannot build venv in %s: %s", o->dir,
				why ? why : strerror(-rc));
		free(why);
		return r2 < 0 ? r2 : rc;
	}
}

/* A copy of the options whose dir has no trailing slash: "venv/" would
 * otherwise put the renamed-aside directory inside the venv itself. */
static int normalized(const struct venv_options *o, struct venv_options *n,
		      char **dir)
{
	size_t l;

	*n = *o;
	*dir = strdup(o->dir);
	if (!*dir)
		return -ENOMEM;
	l = strlen(*dir);
	while (l > 1 && (*dir)[l - 1] == '/')
		(*dir)[--l] = '\0';
	/* A symlink to a directory (a venv kept elsewhere) is worked on
	 * where it points, so the link itself survives recreation. */
	{
		struct stat lsb, sb;

		if (lstat(*dir, &lsb) == 0 && S_ISLNK(lsb.st_mode) &&
		    stat(*dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			char *real = realpath(*dir, NULL);

			if (!real) {
				int e = errno;

				free(*dir);
				*dir = NULL;
				return -e;
			}
			free(*dir);
			*dir = real;
		}
	}
	n->dir = *dir;
	return 0;
}

int venv_recreate(const struct venv_options *o, struct venv_status *st)
{
	struct venv_options n;
	char *dir;
	int rc;

	memset(st, 0, sizeof(*st));
	if (o->in_container)
		return in_container_ensure(o, st);
	if (!o->dir || !*o->dir)
		return -EINVAL;
	rc = normalized(o, &n, &dir);
	if (rc < 0)
		return rc;
	rc = recreate(&n, st);
	free(dir);
	return rc;
}

int venv_ensure(const struct venv_options *o, struct venv_status *st)
{
	struct venv_status cur;
	struct venv_options n;
	char *dir;
	int rc;

	memset(st, 0, sizeof(*st));
	if (o->in_container)
		return in_container_ensure(o, st);
	if (!o->dir || !*o->dir)
		return -EINVAL;
	rc = normalized(o, &n, &dir);
	if (rc < 0)
		return rc;
	rc = venv_status(&n, &cur);
	if (rc < 0)
		goto out;
	if (cur.healthy) {
		*st = cur;
		st->action = strdup("none: already healthy");
		rc = st->action ? 0 : -ENOMEM;
		goto out;
	}
	venv_status_free(&cur);
	/* recreate() builds a missing venv directly and replaces a broken
	 * one, busy directory or not. */
	rc = recreate(&n, st);
out:
	free(dir);
	return rc;
}

json_t *venv_status_to_json(const struct venv_status *st)
{
	return json_pack("{s:s?, s:b, s:b, s:b, s:b, s:s?, s:s?, s:s?}",
			 "dir", st->dir, "in_container", st->in_container,
			 "exists", st->exists, "healthy", st->healthy,
			 "pip_present", st->pip_present, "python", st->python,
			 "reason", st->reason, "action", st->action);
}
