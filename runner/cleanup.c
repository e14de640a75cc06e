/* runner cleanup; see cleanup.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "cleanup.h"
#include "botscript.h"
#include "runnerdir.h"
#include "lifecycle.h"
#include "logs.h"
#include "runrec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct walk {
	cleanup_cb cb;
	void *ctx;
	struct cleanup_stats *stats;
};

static void report(struct walk *w, const char *path, int err)
{
	if (err)
		w->stats->failed++;
	else
		w->stats->removed++;
	if (w->cb)
		w->cb(w->ctx, path, err);
}

/* The directory dir, not followed if a symlink, with its descriptor in
 * *fd; NULL when it cannot be opened. */
static DIR *open_dir(const char *dir, int *fd)
{
	DIR *d;

	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return NULL;
	d = fdopendir(*fd);
	if (d == NULL)
		close(*fd);
	return d;
}

/* Removes the regular file name (in dirfd, which is dir) when it was last
 * modified before cutoff (ms since the epoch), reporting it either way. */
static void remove_if_old(struct walk *w, int dirfd, const char *dir, const char *name,
			  int64_t cutoff)
{
	char path[PATH_MAX];
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return;
	if ((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 > cutoff)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	report(w, path, unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? errno : 0);
}

/* Empties and removes the directory name in dfd without following
 * symlinks (a script may plant one pointing anywhere).  Carries on past
 * failures; returns the number of them. */
static int remove_tree_at(struct walk *w, int dfd, const char *name, const char *path)
{
	int fd, fails = 0;
	DIR *d;
	struct dirent *de;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		report(w, path, errno);
		return 1;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		report(w, path, errno);
		close(fd);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				report(w, sub, errno);
				fails++;
			}
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			fails += remove_tree_at(w, fd, de->d_name, sub);
		} else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT) {
			report(w, sub, errno);
			fails++;
		}
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		/* ENOTEMPTY only repeats a failure already reported inside. */
		if (errno != ENOTEMPTY || fails == 0) {
			report(w, path, errno);
			fails++;
		}
	}
	return fails;
}

struct old_run {
	int64_t id;
	char *workdir;
};

struct collect {
	int64_t cutoff;
	struct old_run *v;
	size_t n, cap;
};

static int collect_cb(void *ctx, const struct run_rec *r)
{
	struct collect *c = ctx;

	if (!run_state_final(r->state) || r->workdir == NULL || r->ended_at > c->cutoff)
		return 0;
	if (c->n == c->cap) {
		size_t nc = c->cap ? c->cap * 2 : 64;
		struct old_run *nv = realloc(c->v, nc * sizeof(*nv));

		if (nv == NULL)
			return -ENOMEM;
		c->v = nv;
		c->cap = nc;
	}
	c->v[c->n].id = r->id;
	c->v[c->n].workdir = strdup(r->workdir);
	if (c->v[c->n].workdir == NULL)
		return -ENOMEM;
	c->n++;
	return 0;
}

/* Files matching pattern in dir, older than cutoff (unix ms). */
static void remove_stale(struct walk *w, const char *dir, const char *pattern, int64_t cutoff,
			 const struct botscript_live *keep)
{
	struct dirent *de;
	int fd;
	DIR *d;

	d = open_dir(dir, &fd);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (fnmatch(pattern, de->d_name, 0) != 0)
			continue;
		/* The runner script of a live bot stays, however old. */
		if (keep && botscript_live_has(keep, de->d_name))
			continue;
		remove_if_old(w, fd, dir, de->d_name, cutoff);
	}
	closedir(d);
}

/* A run's log files live as long as its rows (nothing removes either):
 * only files of runs the store does not have go, which a store made anew
 * in an old state directory leaves.  Names other than the runner's own
 * (run-<id>.stdout, run-<id>.stderr) are left alone. */
static void remove_orphan_logs(struct walk *w, struct store *st, int64_t cutoff)
{
	char dir[PATH_MAX], *slash;
	struct dirent *de;
	int fd;
	DIR *d;

	if (log_file_path(st, 0, LOG_STDOUT, dir, sizeof(dir)) < 0 ||
	    (slash = strrchr(dir, '/')) == NULL)
		return;
	*slash = '\0';
	d = open_dir(dir, &fd);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char name[64];
		long long id;
		struct run_rec r;
		int n = 0, ret;

		if (sscanf(de->d_name, "run-%lld.%n", &id, &n) != 1 || n == 0 || id <= 0 ||
		    (strcmp(de->d_name + n, "stdout") != 0 && strcmp(de->d_name + n, "stderr") != 0))
			continue;
		/* The name must be exactly what the runner makes. */
		snprintf(name, sizeof(name), "run-%lld.%s", id, de->d_name + n);
		if (strcmp(name, de->d_name) != 0)
			continue;
		/* Kept when the run is there, or when the store cannot say. */
		ret = runrec_get(st, id, &r, NULL, 0);
		if (ret == 0)
			run_rec_free(&r);
		if (ret != -ENOENT)
			continue;
		remove_if_old(w, fd, dir, de->d_name, cutoff);
	}
	closedir(d);
}

/* RUNNER_KEEP_RUNS: the records first (one transaction per batch), then
 * their files; a file left by a failed unlink is reported, and the orphan
 * sweep takes it next time. */
static int forget_old_runs(struct walk *w, const struct settings *s, struct store *st,
			   unsigned *forgotten, char *err, size_t errlen)
{
	int64_t ids[64];
	int n, k, batches = 0;

	if (s->keep_runs_ns == 0)
		return 0;
	/* At most CLEANUP_FORGET_MAX runs a call, in small transactions:
	 * a backlog (the first cleanup after an upgrade) goes over several
	 * calls (serve's intervals) instead of holding the store's write
	 * lock, and serve's loop, for long. */
	do {
		n = runrec_prune(st, runrec_now_ms() - (int64_t)(s->keep_runs_ns / 1000000), ids,
				 sizeof(ids) / sizeof(ids[0]));
		if (n < 0) {
			snprintf(err, errlen, "%s: forget runs older than RUNNER_KEEP_RUNS: %s",
				 store_path(st), strerror(-n));
			return n;
		}
		*forgotten += (unsigned)n;
		for (k = 0; k < n; k++) {
			enum log_stream ls;

			for (ls = LOG_STDOUT; ls <= LOG_STDERR; ls++) {
				char path[PATH_MAX];

				if (log_file_path(st, ids[k], ls, path, sizeof(path)) < 0)
					continue;
				if (unlink(path) == 0)
					report(w, path, 0);
				else if (errno != ENOENT)
					report(w, path, errno);
			}
		}
	} while (n == (int)(sizeof(ids) / sizeof(ids[0])) &&
		 ++batches < CLEANUP_FORGET_MAX / (int)(sizeof(ids) / sizeof(ids[0])));
	return 0;
}

int cleanup_run(const struct settings *s, struct store *st, int64_t older_than_ms,
		cleanup_cb cb, void *ctx, struct cleanup_stats *stats, char *err, size_t errlen)
{
	struct walk w = { .cb = cb, .ctx = ctx, .stats = stats };
	struct collect c = { .cutoff = runrec_now_ms() - older_than_ms };
	int ret;
	size_t i;

	stats->removed = stats->failed = stats->forgotten = 0;
	ret = runrec_list(st, NULL, collect_cb, &c, err, errlen);
	if (ret == -ENOMEM)
		snprintf(err, errlen, "%s", strerror(ENOMEM));
	for (i = 0; ret == 0 && i < c.n; i++) {
		/* Only a directory the runner named: run-<id>-... */
		const char *base = strrchr(c.v[i].workdir, '/');
		char want[64];

		snprintf(want, sizeof(want), "run-%lld-", (long long)c.v[i].id);
		if (base == NULL || strncmp(base + 1, want, strlen(want)) != 0)
			continue;
		if (remove_tree_at(&w, AT_FDCWD, c.v[i].workdir, c.v[i].workdir) == 0) {
			report(&w, c.v[i].workdir, 0);
			runrec_set_workdir(st, c.v[i].id, NULL);
		}
	}
	for (i = 0; i < c.n; i++)
		free(c.v[i].workdir);
	free(c.v);
	if (ret < 0)
		return ret;
	{
		struct botscript_live live;
		struct runnerdir_choice rc;

		if (botscript_live_names(st, &live) < 0) {
			/* Cannot tell which are live: remove none. */
			botscript_live_free(&live);
			snprintf(err, errlen, "list live runs: %s", strerror(ENOMEM));
			return -ENOMEM;
		}
		remove_stale(&w, s->runner_dir, "bot_runner_*.py", c.cutoff, &live);
		/* serve writes into the chosen directory, which is the
		 * fallback when the configured one is unusable. */
		if (runnerdir_resolve(s, &rc) == 0 && strcmp(rc.path, s->runner_dir) != 0)
			remove_stale(&w, rc.path, "bot_runner_*.py", c.cutoff, &live);
		botscript_live_free(&live);
	}
	remove_stale(&w, s->scripts_dir, ".upload-*.tmp", c.cutoff, NULL);
	remove_orphan_logs(&w, st, c.cutoff);
	return forget_old_runs(&w, s, st, &stats->forgotten, err, errlen);
}
