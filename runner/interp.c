/* Interpreter lookup and verification. */
/* Messages are cut to their buffers on purpose: a long path must not
 * turn an error report into a second error. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "interp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const lang_names[LANG__COUNT] = { "python", "node", "ts" };
static const char *const lang_settings[LANG__COUNT] = {
	"RUNNER_PYTHON", "RUNNER_NODE", "RUNNER_TS"
};

int interp_lang_from_name(const char *name)
{
	int i;

	for (i = 0; i < LANG__COUNT; i++) {
		if (strcmp(name, lang_names[i]) == 0)
			return i;
	}
	if (strcmp(name, "typescript") == 0)
		return LANG_TS;
	if (strcmp(name, "javascript") == 0 || strcmp(name, "js") == 0)
		return LANG_NODE;
	if (strcmp(name, "py") == 0)
		return LANG_PYTHON;
	return -EINVAL;
}

const char *interp_lang_name(enum interp_lang lang)
{
	return lang_names[lang];
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int interp_run(char *const argv[], int timeout_ms, int *wstatus, char *out, size_t outlen)
{
	int errpipe[2] = { -1, -1 }, outpipe[2] = { -1, -1 };
	int pidfd = -1, ret = 0, child_errno = 0, devnull;
	size_t got = 0;
	int64_t deadline;
	pid_t pid;
	ssize_t n;
	char sink[512];

	if (out && outlen)
		out[0] = '\0';
	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(outpipe, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out_close;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out_close;
	}
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0)
			dup2(devnull, STDIN_FILENO);
		dup2(outpipe[1], STDOUT_FILENO);
		dup2(outpipe[1], STDERR_FILENO);
		execv(argv[0], argv);
		child_errno = errno;
		if (write(errpipe[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}
	close(errpipe[1]);
	errpipe[1] = -1;
	close(outpipe[1]);
	outpipe[1] = -1;

	/* The exec errno arrives before EOF; EOF alone means exec worked. */
	do
		n = read(errpipe[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		ret = -child_errno;
		goto out_close;
	}

	pidfd = (int)pidfd_open(pid, 0);
	deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
	/* Collect output until EOF: every writer, the child included, gone. */
	while (outpipe[0] >= 0) {
		struct pollfd pf = { .fd = outpipe[0], .events = POLLIN };
		int64_t left = deadline - now_ms();

		if (left <= 0)
			goto timeout;
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		if (out && got + 1 < outlen)
			n = read(outpipe[0], out + got, outlen - 1 - got);
		else
			n = read(outpipe[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0 && out && got + 1 < outlen) {
			got += (size_t)n;
			out[got] = '\0';
		}
		if (n <= 0) {
			close(outpipe[0]);
			outpipe[0] = -1;
		}
	}
	/* The child may have closed its output and still be running. */
	if (pidfd >= 0) {
		struct pollfd pf = { .fd = pidfd, .events = POLLIN };
		int64_t left = deadline - now_ms();

		if (left <= 0 || poll(&pf, 1, (int)left) == 0)
			goto timeout;
	} else {
		/* No pidfd (kernels before 5.3, valgrind): poll for the exit,
		 * so the deadline still holds. */
		for (;;) {
			pid_t w = waitpid(pid, wstatus, WNOHANG);

			if (w == pid)
				goto out_close;
			if (w < 0 && errno != EINTR) {
				ret = -errno;
				goto out_close;
			}
			if (deadline - now_ms() <= 0)
				goto timeout;
			poll(NULL, 0, 20);
		}
	}
	if (waitpid(pid, wstatus, 0) < 0)
		ret = -errno;
	goto out_close;

timeout:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ret = -ETIMEDOUT;

out_close:
	if (pidfd >= 0)
		close(pidfd);
	if (errpipe[0] >= 0)
		close(errpipe[0]);
	if (errpipe[1] >= 0)
		close(errpipe[1]);
	if (outpipe[0] >= 0)
		close(outpipe[0]);
	if (outpipe[1] >= 0)
		close(outpipe[1]);
	return ret;
}

/* Cuts s at its first newline. */
static void first_line(char *s)
{
	s[strcspn(s, "\n")] = '\0';
}

/* The cache line of a verification: the file's identity, the path and
 * the arguments (tab-separated; a path or argument holding a tab or a
 * newline is never cached). */
static bool cache_key(const char *path, const char *const *pre, size_t npre,
		      const char *const *probe, const struct stat *st, char *key, size_t keylen)
{
	size_t i, n;

	n = (size_t)snprintf(key, keylen, "%llu %llu %lld %lld.%09ld %lld.%09ld\t%s",
			     (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
			     (long long)st->st_size, (long long)st->st_mtim.tv_sec,
			     st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
			     st->st_ctim.tv_nsec, path);
	for (i = 0; i < npre && n < keylen; i++)
		n += (size_t)snprintf(key + n, keylen - n, "\t%s", pre[i]);
	for (i = 0; probe[i] && n < keylen; i++)
		n += (size_t)snprintf(key + n, keylen - n, "\t%s", probe[i]);
	return n < keylen && strchr(path, '\n') == NULL && strchr(path, '\t') == NULL;
}

/* Whether <dir>/interp-cache holds key, written less than the TTL ago.
 * Lines are "<unix time> <key>". */
static bool cache_hit(const char *dir, const char *key)
{
	char p[PATH_MAX], line[PATH_MAX + 256];
	long long t;
	int off;
	bool hit = false;
	FILE *f;

	snprintf(p, sizeof(p), "%s/interp-cache", dir);
	f = fopen(p, "re");
	if (f == NULL)
		return false;
	while (!hit && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%lld %n", &t, &off) == 1 && strcmp(line + off, key) == 0 &&
		    time(NULL) - t < INTERP_CACHE_TTL_S && time(NULL) >= t)
			hit = true;
	}
	fclose(f);
	return hit;
}

/* Appends key (one write, O_APPEND: concurrent runners never interleave
 * within a line); past 16 KiB the file starts over. */
static void cache_put(const char *dir, const char *key)
{
	char p[PATH_MAX], line[PATH_MAX + 256];
	struct stat st;
	int fd, n, flags = O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC;

	snprintf(p, sizeof(p), "%s/interp-cache", dir);
	if (stat(p, &st) == 0 && st.st_size > 16384)
		flags |= O_TRUNC;
	n = snprintf(line, sizeof(line), "%lld %s\n", (long long)time(NULL), key);
	if (n <= 0 || (size_t)n >= sizeof(line))
		return;
	fd = open(p, flags, 0640);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) != n) {
		/* a cache: a failed write only costs the next check */
	}
	close(fd);
}

/* Checks that path is an executable regular file and that it runs with
 * probe_args (unless cache_dir remembers it passing).  Returns 0 or -errno
 * with why filled. */
static int verify(const char *path, const char *const *pre, size_t npre,
		  const char *const *probe, int timeout_ms, const char *cache_dir,
		  char *why, size_t whylen)
{
	char *argv[8], out[256], key[PATH_MAX + 128];
	struct stat st;
	int ws = 0, ret;
	size_t i, a = 0;
	bool cacheable = false;

	if (stat(path, &st) < 0) {
		ret = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (access(path, X_OK) < 0) {
		ret = -errno;
		snprintf(why, whylen, "%s: not executable: %s", path, strerror(errno));
		return ret;
	}
	if (cache_dir) {
		cacheable = cache_key(path, pre, npre, probe, &st, key, sizeof(key));
		if (cacheable && cache_hit(cache_dir, key))
			return 0;
	}
	argv[a++] = (char *)path;
	for (i = 0; i < npre; i++)
		argv[a++] = (char *)pre[i];
	for (i = 0; probe[i]; i++)
		argv[a++] = (char *)probe[i];
	argv[a] = NULL;
	ret = interp_run(argv, timeout_ms, &ws, out, sizeof(out));
	if (ret == -ETIMEDOUT) {
		snprintf(why, whylen, "%s: did not finish '%s' within %d ms", path, probe[0],
			 timeout_ms);
		return ret;
	}
	if (ret < 0) {
		snprintf(why, whylen, "%s: cannot exec: %s", path, strerror(-ret));
		return ret;
	}
	first_line(out);
	if (WIFSIGNALED(ws)) {
		snprintf(why, whylen, "%s: killed by signal %d on a test run%s%s", path,
			 WTERMSIG(ws), out[0] ? ": " : "", out);
		return -ENOEXEC;
	}
	if (WEXITSTATUS(ws) != 0) {
		snprintf(why, whylen, "%s: test run exited with status %d%s%s", path,
			 WEXITSTATUS(ws), out[0] ? ": " : "", out);
		return -ENOEXEC;
	}
	if (cacheable)
		cache_put(cache_dir, key);
	return 0;
}

/* Finds name in the PATH directories, skipping empty and relative entries
 * (a relative entry would make the choice depend on the cwd). */
static int path_lookup(const char *pathvar, const char *name, char *out, size_t outlen)
{
	const char *p = pathvar;
	struct stat st;

	while (p && *p) {
		size_t n = strcspn(p, ":");

		if (n > 0 && p[0] == '/') {
			snprintf(out, outlen, "%.*s/%s", (int)n, p, name);
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
				return 0;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	out[0] = '\0';
	return -ENOENT;
}

/* "v22.6.0" -> 22006; -1 when it cannot be read. */
static long node_version(const char *node, int timeout_ms)
{
	char *argv[] = { (char *)node, (char *)"--version", NULL };
	char out[64];
	unsigned maj = 0, min = 0;
	int ws = 0;

	if (interp_run(argv, timeout_ms, &ws, out, sizeof(out)) < 0 ||
	    !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
		return -1;
	if (sscanf(out, "v%u.%u", &maj, &min) != 2)
		return -1;
	return (long)maj * 1000 + min;
}

static const char *const probe_py[] = { "-c", "pass", NULL };
static const char *const probe_js[] = { "-e", "0", NULL };

static void set_args(struct interp_choice *c)
{
	c->n_args = 0;
	if (c->lang == LANG_PYTHON)
		c->args[c->n_args++] = "-u";
}

int interp_choose(const struct settings *s, enum interp_lang lang,
		  const struct interp_env *env, struct interp_choice *c)
{
	static const char *const py_names[] = { "python3", "python", NULL };
	static const char *const node_names[] = { "node", NULL };
	static const char *const ts_names[] = { "tsx", "ts-node", NULL };
	const char *const *names, *const *probe;
	const char *explicit_path, *pathvar;
	char why[768], tried[1024] = "";
	int timeout = env->timeout_ms > 0 ? env->timeout_ms : 10000;
	int ret, last = -ENOENT;
	size_t i;

	memset(c, 0, sizeof(*c));
	c->lang = lang;
	c->setting = lang_settings[lang];
	explicit_path = lang == LANG_PYTHON ? s->python : lang == LANG_NODE ? s->node : s->ts;
	probe = lang == LANG_PYTHON ? probe_py : probe_js;
	pathvar = env->path_var ? env->path_var : getenv("PATH");

	if (explicit_path) {
		const char *origin = settings_origin(s, lang == LANG_PYTHON ? SET_PYTHON :
							lang == LANG_NODE ? SET_NODE : SET_TS);

		c->explicit_setting = true;
		/* BLITZ_PYTHON=python3 names a program, not a file in the cwd. */
		if (strchr(explicit_path, '/') == NULL) {
			if (path_lookup(pathvar, explicit_path, c->path, sizeof(c->path)) < 0) {
				snprintf(c->reason, sizeof(c->reason),
					 "%s (%s) is unusable: %s: not found on PATH", c->setting,
					 origin, explicit_path);
				return -EINVAL;
			}
		} else {
			snprintf(c->path, sizeof(c->path), "%s", explicit_path);
		}
		set_args(c);
		ret = verify(c->path, c->args, c->n_args, probe, timeout, env->cache_dir,
				 why, sizeof(why));
		if (ret < 0) {
			snprintf(c->reason, sizeof(c->reason), "%s (%s) is unusable: %s",
				 c->setting, origin, why);
			return -EINVAL;
		}
		snprintf(c->reason, sizeof(c->reason), "set by %s (%s)", c->setting, origin);
		return 0;
	}

	if (lang == LANG_PYTHON && s->project_dir) {
		snprintf(c->path, sizeof(c->path), "%s/.venv/bin/python", s->project_dir);
		if (env->in_container) {
			snprintf(tried, sizeof(tried), "project venv skipped: in a container (%s); ",
				 env->container ? env->container : "detected");
		} else {
			set_args(c);
			ret = verify(c->path, c->args, c->n_args, probe, timeout, env->cache_dir,
				 why, sizeof(why));
			if (ret == 0) {
				snprintf(c->reason, sizeof(c->reason),
					 "project venv under RUNNER_PROJECT_DIR, not in a container");
				return 0;
			}
			snprintf(tried, sizeof(tried), "project venv unusable: %s; ", why);
		}
	}

	names = lang == LANG_PYTHON ? py_names : lang == LANG_NODE ? node_names : ts_names;
	for (i = 0; names[i]; i++) {
		if (path_lookup(pathvar, names[i], c->path, sizeof(c->path)) < 0)
			continue;
		set_args(c);
		last = verify(c->path, c->args, c->n_args, probe, timeout, env->cache_dir,
				 why, sizeof(why));
		if (last == 0) {
			snprintf(c->reason, sizeof(c->reason), "%s%s found on PATH%s", tried,
				 names[i], env->in_container && lang == LANG_PYTHON ?
				 " (system interpreter: in a container)" : "");
			return 0;
		}
		snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s; ", why);
	}

	if (lang == LANG_TS && path_lookup(pathvar, "node", c->path, sizeof(c->path)) == 0) {
		long v = node_version(c->path, timeout);

		if (tried[0] == '\0')
			snprintf(tried, sizeof(tried), "none of tsx, ts-node on PATH; ");

		/* Type stripping arrived in node 22.6 behind this flag. */
		if (v >= 22006) {
			c->args[0] = "--experimental-strip-types";
			c->n_args = 1;
			last = verify(c->path, c->args, c->n_args, probe, timeout, env->cache_dir,
				 why, sizeof(why));
			if (last == 0) {
				snprintf(c->reason, sizeof(c->reason),
					 "%snode %ld.%ld on PATH with --experimental-strip-types",
					 tried, v / 1000, v % 1000);
				return 0;
			}
			snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s; ", why);
		} else {
			snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried),
				 "%s is older than 22.6 (no --experimental-strip-types); ", c->path);
		}
	}

	c->path[0] = '\0';
	c->n_args = 0;
	if (tried[0] == '\0') {
		for (i = 0; names[i]; i++)
			snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s%s",
				 i ? ", " : "none of ", names[i]);
		snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), " on PATH; ");
	}
	snprintf(c->reason, sizeof(c->reason), "%sset %s to its path", tried, c->setting);
	return last == 0 ? -ENOENT : (last == -ENOENT ? -ENOENT : last);
}
