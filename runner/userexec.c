/* Execute permission as another user; see userexec.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "userexec.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "covflush.h"

struct verdict {
	int err;		/* 0 or errno */
	char blocker[PATH_MAX];	/* the path that refused */
};

static void probe(const char *path, uid_t uid, gid_t gid, struct verdict *v)
{
	char p[PATH_MAX], *slash;

	memset(v, 0, sizeof(*v));
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		v->err = errno;
		snprintf(v->blocker, sizeof(v->blocker), "(cannot take uid %u)", (unsigned)uid);
		return;
	}
	if (access(path, X_OK) == 0)
		return;
	v->err = errno;
	snprintf(v->blocker, sizeof(v->blocker), "%s", path);
	/* The first parent, from the root down, that cannot be searched. */
	snprintf(p, sizeof(p), "%s", path);
	for (slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (access(p, X_OK) < 0) {
			v->err = errno;
			snprintf(v->blocker, sizeof(v->blocker), "%s", p);
			return;
		}
		*slash = '/';
	}
}

int userexec_check(const char *path, uid_t uid, gid_t gid, char *why, size_t whylen)
{
	struct verdict v;
	int fds[2], ws;
	struct stat st;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	if (pid == 0) {
		close(fds[0]);
		probe(path, uid, gid, &v);
		n = write(fds[1], &v, sizeof(v));
		cov_flush();
		_exit(n == (ssize_t)sizeof(v) ? 0 : 1);
	}
	close(fds[1]);
	do
		n = read(fds[0], &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	close(fds[0]);
	waitpid(pid, &ws, 0);
	if (n != (ssize_t)sizeof(v)) {
		snprintf(why, whylen, "cannot check %s as uid %u", path, (unsigned)uid);
		return -EIO;
	}
	if (v.err == 0)
		return 0;
	if (stat(v.blocker, &st) == 0)
		snprintf(why, whylen, "%s: %s for uid %u gid %u (owner %u:%u mode %04o)%s", v.blocker,
			 strerror(v.err), (unsigned)uid, (unsigned)gid, (unsigned)st.st_uid,
			 (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777),
			 strcmp(v.blocker, path) ? ": cannot be searched" : "");
	else
		snprintf(why, whylen, "%s: %s for uid %u gid %u", v.blocker, strerror(v.err),
			 (unsigned)uid, (unsigned)gid);
	return -v.err;
}
