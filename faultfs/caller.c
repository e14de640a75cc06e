/* Who is calling: identity for rule conditions and traces, and acting as
 * the caller so the backing filesystem makes its permission checks.
 *
 * faultfs does not mount with default_permissions: the kernel would then
 * answer access(2) itself, and an exec rule could not make access(X_OK) fail
 * the way a noexec mount does.  Instead a root daemon switches each worker
 * thread's filesystem identity (fsuid, fsgid, supplementary groups) to the
 * caller's for the duration of a request.  These are per-thread in the
 * kernel; glibc's setgroups() would change every thread, so the raw system
 * call is used. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "faultfs_i.h"

static const char *comm_cb(void *arg)
{
	return ff_caller_comm(arg);
}

void ff_caller_init(struct ff_req_caller *rc, fuse_req_t req, bool exec_open)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	rc->c.uid = ctx->uid;
	rc->c.gid = ctx->gid;
	rc->c.pid = (uint32_t)ctx->pid;
	rc->c.get_comm = comm_cb;
	rc->c.arg = rc;
	rc->req = req;
	rc->exec_open = exec_open;
	rc->comm_done = false;
	rc->comm[0] = '\0';
}

const char *ff_caller_comm(struct ff_req_caller *rc)
{
	char path[64];
	ssize_t n;
	int fd;

	if (rc->comm_done)
		return rc->comm[0] != '\0' ? rc->comm : NULL;
	rc->comm_done = true;
	if (rc->c.pid == 0)
		return NULL;
	/* /proc/PID/comm takes only the task lock, unlike files that need
	 * the caller's mm or its exec lock, so it is safe even while the
	 * caller sits inside execve() waiting for our open reply. */
	snprintf(path, sizeof(path), "/proc/%u/comm", rc->c.pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, rc->comm, sizeof(rc->comm) - 1);
	close(fd);
	if (n <= 0) {
		rc->comm[0] = '\0';
		return NULL;
	}
	if (rc->comm[n - 1] == '\n')
		n--;
	rc->comm[n] = '\0';
	return rc->comm;
}

/* Reads the supplementary groups of thread `tid` from /proc (the
 * "Groups:" line of its status file).  libfuse's fuse_req_getgroups()
 * does the same, but reads into a fixed 4 KiB buffer that it then searches
 * without a terminating NUL; status files are longer than that on machines
 * with many CPUs, so we read the whole file.  Returns the count or -1. */
static int read_groups(uint32_t tid, gid_t *groups, int max)
{
	char path[64], buf[16384];
	size_t len = 0;
	ssize_t n;
	char *p;
	int fd, count = 0;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/status", tid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	p = strstr(buf, "\nGroups:");
	if (p == NULL)
		return -1;
	p += strlen("\nGroups:");
	while (count < max) {
		char *end;
		unsigned long g;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		g = strtoul(p, &end, 10);
		groups[count++] = (gid_t)g;
		p = end;
	}
	return count;
}

/* Per worker thread: the identity the thread currently has, so that a
 * request from the same user as the last one costs no system call, and a
 * few callers' supplementary groups, so that not every request reads
 * /proc.
 *
 * The identity is left in place after a request (ff_caller_restore() is
 * free); every request starts with ff_caller_assume(), which switches only
 * when the caller differs, root callers included.  What runs between two
 * requests with a caller's identity needs none: descriptors already open,
 * fstat of O_PATH descriptors, /proc files everyone may read.  The one
 * place that needs the daemon's own rights inside a request calls
 * ff_caller_daemon().  A thread starts with `known` false, so its first
 * switch is done in full whatever it inherited from the thread that
 * created it.
 *
 * Group cache: keyed by thread id, uid and gid, kept GROUPS_TTL_NS.  A
 * process can change its supplementary groups without changing uid or gid
 * only with CAP_SETGID, which non-root callers almost never hold, and a
 * thread id comes back only after the kernel's pid space wraps; within the
 * TTL either is seen late, as the kernel's own caches may. */
#define GROUPS_TTL_NS 1000000000ULL
#define GROUPS_CACHE 8
#define MAX_GROUPS 64

struct cur_identity {
	bool known;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[MAX_GROUPS];
};

struct groups_entry {
	uint32_t tid;
	uid_t uid;
	gid_t gid;
	int ngroups;
	uint64_t expires;
	gid_t groups[MAX_GROUPS];
};

static __thread struct cur_identity cur;
static __thread struct groups_entry gcache[GROUPS_CACHE];
static __thread unsigned gcache_next;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cached_groups(const struct ff_caller *c, gid_t *groups)
{
	uint64_t now = now_ns();
	struct groups_entry *e;
	int n;

	for (unsigned i = 0; i < GROUPS_CACHE; i++) {
		e = &gcache[i];
		if (e->tid == c->pid && e->uid == c->uid && e->gid == c->gid && e->expires > now) {
			memcpy(groups, e->groups, (size_t)e->ngroups * sizeof(gid_t));
			return e->ngroups;
		}
	}
	n = read_groups(c->pid, groups, MAX_GROUPS);
	if (n < 0)
		return n;
	e = &gcache[gcache_next++ % GROUPS_CACHE];
	e->tid = c->pid;
	e->uid = c->uid;
	e->gid = c->gid;
	e->ngroups = n;
	e->expires = now + GROUPS_TTL_NS;
	memcpy(e->groups, groups, (size_t)n * sizeof(gid_t));
	return n;
}

/* Gives the thread this filesystem identity, unless it already has it. */
static int switch_to(uid_t uid, gid_t gid, const gid_t *groups, int n)
{
	if (cur.known && cur.uid == uid && cur.gid == gid && cur.ngroups == n &&
	    memcmp(cur.groups, groups, (size_t)n * sizeof(gid_t)) == 0)
		return 0;
	cur.known = false;
	if (uid == 0) {
		/* Back to the daemon: uid first, which brings back the
		 * filesystem capabilities a non-zero fsuid took away. */
		setfsuid(uid);
		setfsgid(gid);
		if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
			return -errno;
	} else {
		if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
			return -errno;
		setfsgid(gid);
		setfsuid(uid);
	}
	cur.known = true;
	cur.uid = uid;
	cur.gid = gid;
	cur.ngroups = n;
	memcpy(cur.groups, groups, (size_t)n * sizeof(gid_t));
	return 0;
}

int ff_caller_daemon(struct ff_fs *fs)
{
	if (!fs->impersonate)
		return 0;
	return switch_to(0, 0, fs->groups, fs->ngroups);
}

int ff_caller_assume(struct ff_req_caller *rc, struct ff_identity *id)
{
	struct ff_fs *fs = fuse_req_userdata(rc->req);
	gid_t groups[MAX_GROUPS];
	int n = 0, err;

	id->switched = false;
	if (!fs->impersonate)
		return 0;
	if (rc->c.uid == 0)
		return ff_caller_daemon(fs);
	/* Supplementary groups come from /proc/PID/task/TID/status.  While
	 * the caller is in execve() that file can block on locks the exec
	 * holds, so an exec open is checked with the primary group only. */
	if (!rc->exec_open) {
		n = cached_groups(&rc->c, groups);
		if (n < 0)
			n = 0;
	}
	err = switch_to(rc->c.uid, rc->c.gid, groups, n);
	if (err < 0)
		return err;
	id->switched = true;
	id->fs = fs;
	return 0;
}

void ff_caller_restore(struct ff_identity *id)
{
	/* Lazy: the next request switches if it must (see above). */
	id->switched = false;
}
