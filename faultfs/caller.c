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
 * with many CPUs, so we read the whole file: in `buf` when it fits, else in
 * a heap buffer (a caller in thousands of groups; Linux allows 65536).  The
 * groups go to `groups` when at most `max`, else to a heap array returned
 * in *heap.  Returns the count or -1. */
static int read_groups(uint32_t tid, gid_t *groups, int max, gid_t **heap)
{
	char path[64], stackbuf[16384], *buf = stackbuf, *p, *q;
	size_t len = 0, cap = sizeof(stackbuf);
	ssize_t n;
	int fd, count = 0;

	*heap = NULL;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/status", tid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		if (len == cap - 1) {
			char *nb = malloc(cap * 2);

			if (nb == NULL)
				break;
			memcpy(nb, buf, len);
			if (buf != stackbuf)
				free(buf);
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	p = strstr(buf, "\nGroups:");
	if (p == NULL) {
		count = -1;
		goto out;
	}
	p += strlen("\nGroups:");
	for (q = p; *q != '\0' && *q != '\n'; q++)
		count += *q >= '0' && *q <= '9' && (q == p || q[-1] == ' ' || q[-1] == '\t');
	if (count > max) {
		*heap = malloc((size_t)count * sizeof(gid_t));
		if (*heap == NULL) {
			count = -1;
			goto out;
		}
		groups = *heap;
	}
	for (int i = 0; i < count; i++) {
		while (*p == ' ' || *p == '\t')
			p++;
		groups[i] = (gid_t)strtoul(p, &p, 10);
	}
out:
	if (buf != stackbuf)
		free(buf);
	return count;
}

int ff_caller_assume(struct ff_req_caller *rc, struct ff_identity *id)
{
	struct ff_fs *fs = fuse_req_userdata(rc->req);
	gid_t groups[64], *list = groups, *heap = NULL;
	int n = 0;
	long r;

	id->switched = false;
	if (!fs->impersonate || rc->c.uid == 0)
		return 0;
	/* Supplementary groups come from /proc/PID/task/TID/status.  While
	 * the caller is in execve() that file can block on locks the exec
	 * holds, so an exec open is checked with the primary group only. */
	if (!rc->exec_open) {
		n = read_groups(rc->c.pid, groups, 64, &heap);
		if (n < 0)
			n = 0;
		if (heap != NULL)
			list = heap;
	}
	r = syscall(SYS_setgroups, (size_t)n, list);
	free(heap);
	if (r < 0)
		return -errno;
	setfsgid(rc->c.gid);
	setfsuid(rc->c.uid);
	id->switched = true;
	id->fs = fs;
	return 0;
}

void ff_caller_restore(struct ff_identity *id)
{
	if (!id->switched)
		return;
	setfsuid(0);
	setfsgid(0);
	syscall(SYS_setgroups, (size_t)id->fs->ngroups, id->fs->groups);
	id->switched = false;
}
