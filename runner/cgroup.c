/* Per-run cgroup v2; see cgroup.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "cgroup.h"
#include "mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX + 64];
	size_t len = strlen(val);
	ssize_t n;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	close(fd);
	return ret;
}

/* Reads a small cgroup file into buf (NUL-terminated). */
static int read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

static bool word_in(const char *list, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list;

	while ((p = strstr(p, word)) != NULL) {
		if ((p == list || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\n' || p[wl] == '\0'))
			return true;
		p += wl;
	}
	return false;
}

/* Our own cgroup from /proc/self/cgroup's "0::PATH", under the mount. */
static int own_cgroup(const struct mount_entry *m, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char *line = NULL;
	size_t cap = 0;
	int ret = -ENOENT;

	if (f == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char *p = line + 3;
		size_t rl = strlen(m->root);

		if (strncmp(line, "0::", 3) != 0)
			continue;
		p[strcspn(p, "\n")] = '\0';
		/* The mount may show a subtree (a cgroup namespace or a
		 * container's view): strip its root. */
		if (strcmp(m->root, "/") != 0 && strncmp(p, m->root, rl) == 0 &&
		    (p[rl] == '/' || p[rl] == '\0'))
			p += rl;
		snprintf(out, outlen, "%s%s", m->mount_point, strcmp(p, "/") == 0 ? "" : p);
		ret = 0;
		break;
	}
	free(line);
	fclose(f);
	return ret;
}

/* Makes <base>/fieldrig and turns on the memory and pids controllers for
 * its children where the base offers them.  fieldrig itself never holds
 * processes, so enabling controllers there cannot break the "no internal
 * processes" rule. */
static int make_parent(const char *base, char *parent, size_t len)
{
	char ctl[256];

	/* fieldrig can only offer what base hands down: turn memory and pids
	 * on in base's subtree_control where base has them (refused, EBUSY,
	 * when base itself holds processes and is not the root; then the
	 * rlimit fallbacks apply). */
	if (read_file(base, "cgroup.controllers", ctl, sizeof(ctl)) > 0) {
		if (word_in(ctl, "memory"))
			write_file(base, "cgroup.subtree_control", "+memory");
		if (word_in(ctl, "pids"))
			write_file(base, "cgroup.subtree_control", "+pids");
	}
	snprintf(parent, len, "%s/fieldrig", base);
	if (mkdir(parent, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (read_file(parent, "cgroup.controllers", ctl, sizeof(ctl)) > 0) {
		if (word_in(ctl, "memory"))
			write_file(parent, "cgroup.subtree_control", "+memory");
		if (word_in(ctl, "pids"))
			write_file(parent, "cgroup.subtree_control", "+pids");
	}
	return 0;
}

int cgroup_create(const char *name, const struct cgroup_limits *lim,
		  struct cgroup_run *cg, char *err, size_t errlen)
{
	struct mount_table t;
	const struct mount_entry *m;
	char own[PATH_MAX], parent[PATH_MAX + 16], val[32], merr[256];
	const char *bases[2];
	size_t nb = 0, i, off = 0;
	int ret;

	memset(cg, 0, sizeof(*cg));
	err[0] = '\0';
	ret = mount_table_load(NULL, &t, merr, sizeof(merr));
	if (ret < 0) {
		snprintf(err, errlen, "%s", merr);
		return ret;
	}
	m = mount_table_find_fstype(&t, "cgroup2");
	if (m == NULL) {
		snprintf(err, errlen, "no cgroup2 mount in /proc/self/mountinfo");
		ret = -ENOENT;
		goto out;
	}
	if (own_cgroup(m, own, sizeof(own)) == 0)
		bases[nb++] = own;
	if (nb == 0 || strcmp(own, m->mount_point) != 0)
		bases[nb++] = m->mount_point;
	ret = -ENOENT;
	for (i = 0; i < nb; i++) {
		ret = make_parent(bases[i], parent, sizeof(parent));
		if (ret == 0) {
			snprintf(cg->path, sizeof(cg->path), "%s/%s", parent, name);
			if (mkdir(cg->path, 0755) == 0)
				break;
			ret = -errno;
		}
		off += (size_t)snprintf(err + off, off < errlen ? errlen - off : 0, "%s%s/fieldrig: %s",
					off ? "; " : "", bases[i], strerror(-ret));
		if (off >= errlen)
			off = errlen;
	}
	if (ret < 0) {
		cg->path[0] = '\0';
		goto out;
	}
	err[0] = '\0';
	cgroup_attach(cg->path, cg);
	if (lim && lim->memory_max) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->memory_max);
		cg->memory_limited = write_file(cg->path, "memory.max", val) == 0;
		/* Without swap accounting a limit is only half a limit. */
		if (cg->memory_limited)
			write_file(cg->path, "memory.swap.max", "0");
	}
	if (lim && lim->pids_max) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->pids_max);
		cg->pids_limited = write_file(cg->path, "pids.max", val) == 0;
	}
	ret = 0;
out:
	mount_table_free(&t);
	return ret;
}

int cgroup_probe(char *err, size_t errlen)
{
	struct cgroup_run cg;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "probe-%d", (int)getpid());
	ret = cgroup_create(name, NULL, &cg, err, errlen);
	if (ret == 0 && rmdir(cg.path) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", cg.path, strerror(errno));
	}
	return ret;
}

void cgroup_attach(const char *path, struct cgroup_run *cg)
{
	char p[PATH_MAX + 16];

	if (cg->path != path)
		snprintf(cg->path, sizeof(cg->path), "%s", path);
	snprintf(p, sizeof(p), "%s/cgroup.kill", path);
	cg->has_kill = access(p, F_OK) == 0;
}

int cgroup_add_pid(const struct cgroup_run *cg, pid_t pid)
{
	char val[32];

	snprintf(val, sizeof(val), "%d", (int)pid);
	return write_file(cg->path, "cgroup.procs", val);
}

int cgroup_signal(const struct cgroup_run *cg, int sig)
{
	char path[PATH_MAX + 32];
	FILE *f;
	int pid, n = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg->path);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	while (fscanf(f, "%d", &pid) == 1) {
		if (kill(pid, sig) == 0) {
			n++;
			/* A stopped process only acts on TERM once continued. */
			if (sig == SIGTERM)
				kill(pid, SIGCONT);
		}
	}
	fclose(f);
	return n;
}

int cgroup_kill(const struct cgroup_run *cg)
{
	int ret, round;

	/* Empty stays empty (only a member can fork into it, and nobody
	 * moves processes in): nothing to kill.  Worth the read: a write
	 * to cgroup.kill takes the kernel's threadgroup lock for writing,
	 * which waits for an RCU grace period - milliseconds on a loaded
	 * machine, for every run that ended on its own. */
	if (cgroup_populated(cg) == 0)
		return 0;
	if (cg->has_kill) {
		ret = write_file(cg->path, "cgroup.kill", "1");
		if (ret != -EINVAL && ret != -ENOENT)
			return ret;
	}
	/* Without cgroup.kill: freeze so a fork storm cannot outrun the
	 * walk of cgroup.procs, kill every pid (SIGKILL reaches frozen
	 * tasks in v2), thaw, repeat while anything remains. */
	for (round = 0; round < 100; round++) {
		write_file(cg->path, "cgroup.freeze", "1");
		ret = cgroup_signal(cg, SIGKILL);
		write_file(cg->path, "cgroup.freeze", "0");
		if (ret <= 0)
			return ret < 0 ? ret : 0;
		/* A killed task stays listed until it has exited: give it
		 * that moment, or every round signals the same dying tasks
		 * and the kill ends in -EAGAIN. */
		if (cgroup_wait_empty(cg, 10) == 0)
			return 0;
	}
	return -EAGAIN;
}

int cgroup_populated(const struct cgroup_run *cg)
{
	char buf[256], *p;
	int ret = read_file(cg->path, "cgroup.events", buf, sizeof(buf));

	if (ret < 0)
		return ret;
	p = strstr(buf, "populated ");
	if (p == NULL)
		return -EIO;
	return p[10] == '1';
}

int cgroup_events_fd(const struct cgroup_run *cg)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.events", cg->path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cgroup_wait_empty(const struct cgroup_run *cg, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;
	int fd = cgroup_events_fd(cg), ret;

	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLPRI };
		int64_t left;
		char buf[256];

		/* Reading re-arms the notification; check after arming so a
		 * change between the check and the poll is not missed. */
		lseek(fd, 0, SEEK_SET);
		ret = (int)read(fd, buf, sizeof(buf) - 1);
		if (ret < 0) {
			ret = -errno;
			break;
		}
		buf[ret] = '\0';
		if (strstr(buf, "populated 0")) {
			ret = 0;
			break;
		}
		left = deadline - mono_ms();
		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		poll(&pf, 1, (int)left);
	}
	close(fd);
	return ret;
}

void cgroup_stats(const struct cgroup_run *cg, int64_t *cpu_us, int64_t *peak_bytes)
{
	char buf[1024], *p;

	*cpu_us = -1;
	*peak_bytes = -1;
	if (read_file(cg->path, "cpu.stat", buf, sizeof(buf)) > 0 &&
	    (p = strstr(buf, "usage_usec ")) != NULL)
		*cpu_us = strtoll(p + 11, NULL, 10);
	if (read_file(cg->path, "memory.peak", buf, sizeof(buf)) > 0)
		*peak_bytes = strtoll(buf, NULL, 10);
}

int cgroup_remove(const struct cgroup_run *cg)
{
	int tries;

	/* A cgroup whose last process just died may still be busy for an
	 * instant while the kernel finishes tearing the tasks down. */
	for (tries = 0; tries < 200; tries++) {
		if (rmdir(cg->path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		cgroup_wait_empty(cg, 10);
		if (tries > 0) {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
	return -EBUSY;
}
