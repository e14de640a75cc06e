/* Scenario worlds (see world.h). */
#include "world.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"

extern char **environ;

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int mkdir_parent(const char *path)
{
	char tmp[PATH_MAX], *slash;

	snprintf(tmp, sizeof(tmp), "%s", path);
	slash = strrchr(tmp, '/');
	if (!slash || slash == tmp)
		return 0;
	*slash = '\0';
	return mkdir_p(tmp, 0755);
}

static int write_file(const char *path, const char *content, mode_t mode)
{
	size_t len = strlen(content), done = 0;
	int fd, rc;

	if ((rc = mkdir_parent(path)) < 0)
		return rc;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, content + done, len - done);

		if (n < 0) {
			rc = -errno;
			close(fd);
			return rc;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0)
		return -errno;
	return 0;
}

/* The marker files each container kind leaves, as runner's detection reads
 * them (runner/detect.c); paths relative to the emulated root. */
static int build_container_root(const char *root, enum sc_container ct)
{
	static const struct {
		const char *path, *content;
	} markers[] = {
		[SC_CT_NONE] = { NULL, NULL },
		[SC_CT_DOCKER] = { ".dockerenv", "" },
		[SC_CT_PODMAN] = { "run/.containerenv", "engine=\"podman-4.3.1\"\n" },
		[SC_CT_LXC] = { "run/systemd/container", "lxc\n" },
		[SC_CT_NSPAWN] = { "run/systemd/container", "systemd-nspawn\n" },
		[SC_CT_KUBERNETES] = { "proc/1/cgroup",
			"0::/kubepods/besteffort/pod3c5e0f1a-8d1b-4f0e-9a55-1b2c3d4e5f60/0123456789abcdef\n" },
		[SC_CT_WSL] = { "proc/sys/kernel/osrelease", "5.15.133.1-microsoft-standard-WSL2\n" },
		[SC_CT_OPENVZ] = { NULL, NULL },
		[SC_CT_OTHER] = { "run/systemd/container", "rkt\n" },
	};
	char path[PATH_MAX];

	if (ct == SC_CT_OPENVZ) {
		if (snprintf(path, sizeof(path), "%s/proc/vz", root) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		return mkdir_p(path, 0555);
	}
	if (!markers[ct].path)
		return 0;
	if (snprintf(path, sizeof(path), "%s/%s", root, markers[ct].path) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	return write_file(path, markers[ct].content, 0644);
}

static int env_add(char ***envp, size_t *n, const char *k, const char *v)
{
	char **e = realloc(*envp, (*n + 2) * sizeof(*e));

	if (!e)
		return -ENOMEM;
	*envp = e;
	/* A later value replaces an earlier one with the same name. */
	for (size_t i = 0; i < *n; i++) {
		size_t kl = strlen(k);

		if (strncmp(e[i], k, kl) == 0 && e[i][kl] == '=') {
			free(e[i]);
			if (asprintf(&e[i], "%s=%s", k, v) < 0)
				return -ENOMEM;
			return 0;
		}
	}
	if (asprintf(&e[*n], "%s=%s", k, v) < 0)
		return -ENOMEM;
	e[++*n] = NULL;
	return 0;
}

static char **env_copy(char **src, size_t *n)
{
	size_t c = 0;
	char **e;

	while (src && src[c])
		c++;
	e = calloc(c + 1, sizeof(*e));
	if (!e)
		return NULL;
	for (size_t i = 0; i < c; i++)
		if (!(e[i] = strdup(src[i]))) {
			while (i--)
				free(e[i]);
			free(e);
			return NULL;
		}
	*n = c;
	return e;
}

static void env_free(char **e)
{
	for (size_t i = 0; e && e[i]; i++)
		free(e[i]);
	free(e);
}

/* Whether MNT is a mountpoint now, by /proc/self/mounts (paths here never
 * hold the characters that file escapes). */
static int is_mounted(const char *mnt)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char line[8192];
	size_t ml = strlen(mnt);
	int found = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *sp = strchr(line, ' ');

		if (sp && strncmp(sp + 1, mnt, ml) == 0 && sp[1 + ml] == ' ') {
			found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Waits until MNT shows in the mount table: /proc/self/mounts polls
 * readable with POLLPRI on every mount change, so this wakes when it
 * happens; DAEMON dying first ends the wait. */
static int wait_mounted(const char *mnt, pid_t daemon, uint64_t deadline)
{
	int fd = open("/proc/self/mounts", O_RDONLY | O_CLOEXEC), rc;

	for (;;) {
		int st;

		rc = is_mounted(mnt);
		if (rc != 0)
			break;
		if (waitpid(daemon, &st, WNOHANG) == daemon) {
			rc = -ECHILD;
			break;
		}
		uint64_t now = fr_now_ns();

		if (now >= deadline || fr_stop) {
			rc = -ETIMEDOUT;
			break;
		}
		if (fd >= 0) {
			struct pollfd p = { .fd = fd, .events = POLLPRI };
			char buf[4096];

			/* Re-arm: poll reports a change since the last read. */
			lseek(fd, 0, SEEK_SET);
			while (read(fd, buf, sizeof(buf)) > 0)
				;
			if (is_mounted(mnt) > 0) {
				rc = 1;
				break;
			}
			poll(&p, 1, 20);
		}
	}
	if (fd >= 0)
		close(fd);
	return rc < 0 ? rc : 0;
}

static int start_mount(struct world *w, struct wmount *m, const struct sc_mount *sm, char *err,
		       size_t errlen)
{
	char *argv[64 + 16], *expanded[64];
	unsigned na = 0, ne = 0;
	char experr[256];
	int rc;

	if (sm->rules_count > 64)
		return fail(err, errlen, "mount %s: at most 64 rules", sm->name);
	argv[na++] = (char *)w->tools->faultfs;
	argv[na++] = m->backing;
	argv[na++] = m->mnt;
	argv[na++] = "-f";
	argv[na++] = "--trace";
	argv[na++] = m->trace;
	if (sm->profile) {
		argv[na++] = "--profile";
		argv[na++] = sm->profile;
	}
	if (sm->options) {
		argv[na++] = "-o";
		argv[na++] = sm->options;
	}
	for (unsigned i = 0; i < sm->rules_count; i++) {
		rc = refs_expand(&w->refs, sm->rules[i], &expanded[ne], experr, sizeof(experr));
		if (rc < 0) {
			fail(err, errlen, "mount %s: rule %u: %s", sm->name, i + 1, experr);
			goto out;
		}
		argv[na++] = "--rule";
		argv[na++] = expanded[ne++];
	}
	argv[na] = NULL;
	rc = spawn_bg(argv, w->daemon_env, w->dir, &m->pid, NULL, false, m->log);
	if (rc < 0) {
		fail(err, errlen, "mount %s: cannot start %s: %s", sm->name, w->tools->faultfs, strerror(-rc));
		goto out;
	}
	rc = wait_mounted(m->mnt, m->pid, fr_now_ns() + 10000000000ull);
	if (rc < 0) {
		char log[600] = "";
		FILE *f = fopen(m->log, "re");

		if (f) {
			if (!fgets(log, sizeof(log), f))
				log[0] = '\0';
			fclose(f);
			log[strcspn(log, "\n")] = '\0';
		}
		if (rc == -ECHILD)
			m->pid = 0;
		fail(err, errlen, "mount %s: faultfs did not mount %s%s%s", sm->name, m->mnt,
		     log[0] ? ": " : (rc == -ETIMEDOUT ? " within 10 s" : ""), log);
		goto out;
	}
	m->mounted = true;
out:
	while (ne--)
		free(expanded[ne]);
	return rc;
}

struct wmount *world_mount(struct world *w, const char *name)
{
	for (unsigned i = 0; i < w->nmounts; i++)
		if (strcmp(w->mounts[i].name, name) == 0)
			return &w->mounts[i];
	return NULL;
}

const char *world_path(void)
{
	const char *p = getenv("FIELDRIG_PATH");

	return p && *p ? p : WORLD_DEFAULT_PATH;
}

int world_build(struct world *w, const char *dir, const struct scenario *sc, const struct tools *t,
		char *err, size_t errlen)
{
	const struct sc_world *sw = sc->world;
	char path[PATH_MAX], experr[256], *v;
	size_t ne = 0, nd = 0;
	const char *host_path = world_path();
	int rc;

	memset(w, 0, sizeof(*w));
	refs_init(&w->refs);
	w->tools = t;
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	snprintf(w->root, sizeof(w->root), "%s/root", dir);
	snprintf(w->state, sizeof(w->state), "%s/state", dir);
	if ((rc = mkdir_p(w->root, 0755)) < 0 || (rc = mkdir_p(w->state, 0700)) < 0 ||
	    (snprintf(path, sizeof(path), "%s/traces", dir), rc = mkdir_p(path, 0755)) < 0)
		return fail(err, errlen, "%s: cannot make the world's directories: %s", dir, strerror(-rc));
	if ((rc = build_container_root(w->root, sw->container)) < 0)
		return fail(err, errlen, "%s: cannot build the %s root: %s", w->root,
			    sc_container_names[sw->container], strerror(-rc));
	if (refs_set(&w->refs, "world.dir", w->dir) < 0 || refs_set(&w->refs, "world.files", w->dir) < 0 ||
	    refs_set(&w->refs, "world.root", w->root) < 0 || refs_set(&w->refs, "world.state", w->state) < 0 ||
	    refs_set(&w->refs, "world.runner", t->runner) < 0)
		return -ENOMEM;

	/* The environment: nothing of the caller's, so a host's RUNNER_*,
	 * container= or PATH (a pyenv shim under /root that --user cannot
	 * reach) cannot change what a scenario means. */
	w->daemon_env = calloc(1, sizeof(char *));
	w->env = calloc(1, sizeof(char *));
	if (!w->daemon_env || !w->env)
		return -ENOMEM;
	if (env_add(&w->daemon_env, &nd, "PATH", host_path) < 0 ||
	    env_add(&w->daemon_env, &nd, "LANG", "C.UTF-8") < 0 ||
	    env_add(&w->daemon_env, &nd, DAEMON_MARK, w->dir) < 0)
		return -ENOMEM;
	if (env_add(&w->env, &ne, "PATH", host_path) < 0 ||
	    env_add(&w->env, &ne, "LANG", "C.UTF-8") < 0 || env_add(&w->env, &ne, "HOME", w->dir) < 0 ||
	    env_add(&w->env, &ne, "PYTHONDONTWRITEBYTECODE", "1") < 0 ||
	    env_add(&w->env, &ne, WORLD_MARK, w->dir) < 0 || env_add(&w->env, &ne, "WORLD", w->dir) < 0 ||
	    env_add(&w->env, &ne, "ROOT", w->root) < 0 || env_add(&w->env, &ne, "STATE", w->state) < 0 ||
	    env_add(&w->env, &ne, "RUNNER", t->runner) < 0 || env_add(&w->env, &ne, "FAULTFS", t->faultfs) < 0 ||
	    env_add(&w->env, &ne, "RUNNER_STATE_DIR", w->state) < 0 ||
	    env_add(&w->env, &ne, "RUNNER_ROOT", w->root) < 0)
		return -ENOMEM;

	/* Mounts before files, so files may be placed inside them. */
	w->mounts = calloc(sw->mounts_count ? sw->mounts_count : 1, sizeof(*w->mounts));
	if (!w->mounts)
		return -ENOMEM;
	for (unsigned i = 0; i < sw->mounts_count; i++) {
		const struct sc_mount *sm = &sw->mounts[i];
		struct wmount *m = &w->mounts[w->nmounts++];
		char envname[96];

		snprintf(m->name, sizeof(m->name), "%s", sm->name);
		snprintf(m->backing, sizeof(m->backing), "%s/backing/%s", dir, sm->name);
		if (sm->at)
			snprintf(m->mnt, sizeof(m->mnt), "%s/%s", dir, sm->at);
		else
			snprintf(m->mnt, sizeof(m->mnt), "%s/mnt/%s", dir, sm->name);
		snprintf(m->trace, sizeof(m->trace), "%s/traces/%s.jsonl", dir, sm->name);
		snprintf(m->log, sizeof(m->log), "%s/traces/%s.log", dir, sm->name);
		if ((rc = mkdir_p(m->backing, 0755)) < 0 || (rc = mkdir_p(m->mnt, 0755)) < 0)
			return fail(err, errlen, "mount %s: cannot make %s: %s", sm->name, m->mnt, strerror(-rc));
		snprintf(envname, sizeof(envname), "mount.%s", sm->name);
		if (refs_set(&w->refs, envname, m->mnt) < 0)
			return -ENOMEM;
		snprintf(envname, sizeof(envname), "backing.%s", sm->name);
		if (refs_set(&w->refs, envname, m->backing) < 0)
			return -ENOMEM;
		snprintf(envname, sizeof(envname), "MOUNT_%s", sm->name);
		for (char *p = envname; *p; p++)
			if (*p == '-')
				*p = '_';
		if (env_add(&w->env, &ne, envname, m->mnt) < 0)
			return -ENOMEM;
		if ((rc = start_mount(w, m, sm, err, errlen)) < 0)
			return rc;
	}

	for (unsigned i = 0; i < sw->env_count; i++) {
		if ((rc = refs_expand(&w->refs, sw->env[i].value, &v, experr, sizeof(experr))) < 0)
			return fail(err, errlen, "world.env.%s: %s", sw->env[i].key, experr);
		rc = env_add(&w->env, &ne, sw->env[i].key, v);
		free(v);
		if (rc < 0)
			return rc;
	}
	w->runner_env = env_copy(w->env, &ne);
	if (!w->runner_env)
		return -ENOMEM;
	for (unsigned i = 0; i < sw->settings_count; i++) {
		if ((rc = refs_expand(&w->refs, sw->settings[i].value, &v, experr, sizeof(experr))) < 0)
			return fail(err, errlen, "world.settings.%s: %s", sw->settings[i].key, experr);
		rc = env_add(&w->runner_env, &ne, sw->settings[i].key, v);
		free(v);
		if (rc < 0)
			return rc;
	}

	for (unsigned i = 0; i < sw->files_count; i++) {
		const struct sc_file *f = &sw->files[i];

		snprintf(path, sizeof(path), "%s/%s", dir, f->path);
		if (f->symlink) {
			if ((rc = refs_expand(&w->refs, f->symlink, &v, experr, sizeof(experr))) < 0)
				return fail(err, errlen, "world.files %s: %s", f->path, experr);
			rc = mkdir_parent(path);
			if (rc == 0 && symlink(v, path) < 0)
				rc = -errno;
			free(v);
		} else if (f->path[strlen(f->path) - 1] == '/') {
			rc = mkdir_p(path, f->has_mode ? f->mode_v : 0755);
		} else {
			rc = write_file(path, f->content ? f->content : "", f->has_mode ? f->mode_v : 0644);
		}
		if (rc == 0 && f->has_mode && !f->symlink && chmod(path, f->mode_v) < 0)
			rc = -errno;
		if (rc < 0)
			return fail(err, errlen, "world.files %s: %s", f->path, strerror(-rc));
	}
	return 0;
}

/* Cancels the runs the scenario left going, through the runner, so their
 * trees are stopped the way the runner stops them. */
static int cancel_active_runs(struct world *w, uint64_t deadline)
{
	int active = 0;

	char *argv[] = { (char *)w->tools->runner, "list", "--json", NULL };
	struct proc_result pr;
	json_t *j = NULL, *runs;
	size_t i;

	if (spawn_run(argv, w->runner_env, w->dir, deadline, &pr) < 0)
		return 0;
	j = json_loads(pr.out, 0, NULL);
	runs = json_object_get(j, "runs");
	for (i = 0; runs && i < json_array_size(runs); i++) {
		json_t *r = json_array_get(runs, i);
		const char *st = json_string_value(json_object_get(r, "status"));
		char id[32];

		if (!st || (strcmp(st, "RUNNING") != 0 && strcmp(st, "QUEUED") != 0))
			continue;
		active++;
		snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(r, "id")));
		{
			char *cargv[] = { (char *)w->tools->runner, "cancel", id, NULL };
			struct proc_result cr;

			if (spawn_run(cargv, w->runner_env, w->dir, deadline, &cr) == 0)
				proc_result_free(&cr);
		}
	}
	json_decref(j);
	proc_result_free(&pr);
	return active;
}

static int unmount_one(struct world *w, struct wmount *m)
{
	uint64_t deadline;
	int st, rc = 0;

	if (m->mounted) {
		char *argv[] = { (char *)w->tools->fusermount, "-u", m->mnt, NULL };
		char *lazy[] = { (char *)w->tools->fusermount, "-uz", m->mnt, NULL };
		struct proc_result pr;

		if (spawn_run(argv, w->daemon_env, "/", fr_now_ns() + 5000000000ull, &pr) == 0) {
			if (pr.exit_code != 0) {
				proc_result_free(&pr);
				if (spawn_run(lazy, w->daemon_env, "/", fr_now_ns() + 5000000000ull, &pr) == 0 &&
				    pr.exit_code != 0)
					fprintf(stderr, "fieldrig: cannot unmount %s: %s", m->mnt,
						pr.err && *pr.err ? pr.err : "fusermount3 -uz failed\n");
			}
			proc_result_free(&pr);
		}
		if (is_mounted(m->mnt) > 0 && umount2(m->mnt, MNT_DETACH) < 0) {
			rc = -errno;
			fprintf(stderr, "fieldrig: cannot unmount %s: %s\n", m->mnt, strerror(errno));
		}
		m->mounted = false;
	}
	if (m->pid > 0) {
		/* Unmounting ends the daemon; if it lingers (a copy of the mount
		 * in another namespace keeps it serving), stop it. */
		deadline = fr_now_ns() + 3000000000ull;
		if (wait_child(m->pid, deadline, &st) == -ETIMEDOUT) {
			kill(m->pid, SIGTERM);
			if (wait_child(m->pid, fr_now_ns() + 2000000000ull, &st) == -ETIMEDOUT) {
				kill(m->pid, SIGKILL);
				wait_child(m->pid, fr_now_ns() + 2000000000ull, &st);
			}
		}
		m->pid = 0;
	}
	return rc;
}

int world_teardown(struct world *w, bool keep)
{
	/* An interrupt must not cut the teardown's own commands short (they
	 * check fr_stop): clear it for the duration, and keep what arrives. */
	sig_atomic_t stopped = fr_stop;
	int rc = 0, r;

	if (!w->dir[0])
		return 0;
	fr_stop = 0;
	{
		/* Runs may also have been started by sh steps ("$RUNNER" exec):
		 * whenever the world has a job store, ask the runner. */
		char db[PATH_MAX + 16];

		snprintf(db, sizeof(db), "%s/runner.db", w->state);
		if (access(db, F_OK) == 0 && w->runner_env &&
		    cancel_active_runs(w, fr_now_ns() + 15000000000ull) > 0)
			w->used_runs = true;
	}
	if (sweep_env_kill(WORLD_MARK, w->dir, fr_now_ns() + 5000000000ull) < 0) {
		fprintf(stderr, "fieldrig: %s: processes of the world survive SIGKILL\n", w->dir);
		rc = -EBUSY;
	}
	if (w->used_runs && w->runner_env) {
		/* What a killed supervisor left: the runner kills it and
		 * marks the run LOST. */
		char *argv[] = { (char *)w->tools->runner, "recover", NULL };
		struct proc_result pr;

		if (spawn_run(argv, w->runner_env, w->dir, fr_now_ns() + 10000000000ull, &pr) == 0)
			proc_result_free(&pr);
		sweep_env_kill(WORLD_MARK, w->dir, fr_now_ns() + 2000000000ull);
	}
	if (!keep)
		for (unsigned i = 0; i < w->nmounts; i++)
			if ((r = unmount_one(w, &w->mounts[i])) < 0)
				rc = r;
	if (!keep && (r = rm_tree(w->dir)) < 0) {
		fprintf(stderr, "fieldrig: cannot remove %s: %s\n", w->dir, strerror(-r));
		rc = r;
	}
	env_free(w->env);
	env_free(w->runner_env);
	env_free(w->daemon_env);
	free(w->mounts);
	refs_free(&w->refs);
	w->env = w->runner_env = w->daemon_env = NULL;
	w->mounts = NULL;
	w->nmounts = 0;
	fr_stop = fr_stop || stopped;
	return rc;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D || flag == FTW_DNR) {
		if (rmdir(path) < 0 && errno != ENOENT)
			return 0;	/* keep going; the caller checks the top */
		return 0;
	}
	unlink(path);
	return 0;
}

int rm_tree(const char *dir)
{
	struct stat st;

	/* FTW_MOUNT: never walk into a filesystem that is still mounted
	 * inside the world (a failed unmount must not cost the backing). */
	nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (lstat(dir, &st) == 0)
		return -ENOTEMPTY;
	return 0;
}

void world_reap(const char *dir, const struct tools *t, bool keep)
{
	char line[8192];
	size_t dl = strlen(dir);
	FILE *f;

	sweep_env_kill(WORLD_MARK, dir, fr_now_ns() + 5000000000ull);
	if (keep)
		return;
	sweep_env_kill(DAEMON_MARK, dir, fr_now_ns() + 5000000000ull);
	f = fopen("/proc/self/mounts", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *mp = strchr(line, ' '), *end;

		if (!mp)
			continue;
		mp++;
		end = strchr(mp, ' ');
		if (!end)
			continue;
		*end = '\0';
		if (strncmp(mp, dir, dl) == 0 && mp[dl] == '/') {
			char *argv[] = { (char *)t->fusermount, "-uz", mp, NULL };
			struct proc_result pr;

			if (spawn_run(argv, environ, "/", fr_now_ns() + 5000000000ull, &pr) == 0)
				proc_result_free(&pr);
			if (is_mounted(mp) > 0)
				umount2(mp, MNT_DETACH);
		}
	}
	if (f)
		fclose(f);
	rm_tree(dir);
}
