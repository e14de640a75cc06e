/* Runner directory checks, fallback chain and runner script writing. */
/* Messages are cut to their buffers on purpose: a long path must not
 * turn an error report into a second error. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "runnerdir.h"
#include "diag.h"
#include "upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void fill_why(struct runnerdir_probe *p, const char *op, int err)
{
	char *line = diag_line(op, p->path, err);

	if (line != NULL)
		snprintf(p->why, sizeof(p->why), "%s", line);
	else
		snprintf(p->why, sizeof(p->why), "%s %s: %s", op, p->path, strerror(err));
	free(line);
}

/* mkdir -p with mode for the missing components only. */
static int mkdir_p(const char *path, mode_t mode, char *failed, size_t flen)
{
	char buf[PATH_MAX];
	size_t i, len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST) {
			snprintf(failed, flen, "%s", buf);
			return -errno;
		}
		/* mkdir honours the umask; the group needs rwx on the leaf. */
		if (i == len && chmod(buf, mode) < 0 && errno != EPERM) {
			snprintf(failed, flen, "%s", buf);
			return -errno;
		}
		buf[i] = i == len ? '\0' : '/';
	}
	return 0;
}

int runnerdir_check(const char *path, struct runnerdir_probe *p)
{
	char failed[PATH_MAX], probe[64], id[37];
	struct statvfs sv;
	struct stat st;
	int dfd, fd, ret;

	memset(p, 0, sizeof(*p));
	snprintf(p->path, sizeof(p->path), "%s", path);
	if (stat(path, &st) < 0) {
		ret = mkdir_p(path, 0770, failed, sizeof(failed));
		if (ret < 0) {
			p->err = -ret;
			fill_why(p, "mkdir", p->err);
			return 0;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		p->err = ENOTDIR;
		fill_why(p, "open", p->err);
		return 0;
	}
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		p->err = errno;
		fill_why(p, "open", p->err);
		return 0;
	}
	/* access(W_OK) is not enough: a read-only mount, a full disk or an
	 * LSM can all refuse a create that the mode bits allow. */
	uuid_v4(id);
	snprintf(probe, sizeof(probe), ".probe-%s", id);
	fd = openat(dfd, probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		p->err = errno;
		fill_why(p, "create probe file in", p->err);
		close(dfd);
		return 0;
	}
	close(fd);
	unlinkat(dfd, probe, 0);
	if (fstatvfs(dfd, &sv) == 0 && (sv.f_flag & ST_NOEXEC)) {
		p->noexec = true;
		fill_why(p, "check exec on", 0);
	}
	close(dfd);
	return 0;
}

int runnerdir_resolve(const struct settings *s, struct runnerdir_choice *c)
{
	char def[PATH_MAX];
	const char *cands[2];
	size_t i, n = 0;
	int pick = -1, ret;

	memset(c, 0, sizeof(*c));
	snprintf(def, sizeof(def), "%s/runtime/bot_runners", s->state_dir);
	if (s->runner_dir_configured && strcmp(s->runner_dir, def) != 0)
		cands[n++] = s->runner_dir;
	cands[n++] = def;
	c->n = n;
	for (i = 0; i < n; i++) {
		ret = runnerdir_check(cands[i], &c->probes[i]);
		if (ret < 0)
			return ret;
		if (c->probes[i].err == 0 && !c->probes[i].noexec) {
			pick = (int)i;
			break;
		}
	}
	/* Nothing allows exec: the interpreter mode reads scripts, it does
	 * not exec them, so the first writable directory still serves it. */
	if (pick < 0 && s->exec_mode == EXEC_INTERPRETER) {
		for (i = 0; i < n; i++) {
			if (c->probes[i].err == 0) {
				pick = (int)i;
				c->noexec = true;
				break;
			}
		}
	}
	if (pick < 0) {
		const struct runnerdir_probe *last = &c->probes[n - 1];

		snprintf(c->reason, sizeof(c->reason), "no usable runner directory: %s%s%s",
			 c->probes[0].why, n > 1 ? "; then " : "", n > 1 ? last->why : "");
		return last->err ? -last->err : -ENOEXEC;
	}
	snprintf(c->path, sizeof(c->path), "%s", cands[pick]);
	c->fallback = pick > 0;
	if (pick > 0) {
		const struct runnerdir_probe *p0 = &c->probes[0];

		if (p0->err == 0)
			snprintf(c->reason, sizeof(c->reason),
				 "using %s (configured %s is on a noexec mount)", c->path, p0->path);
		else
			snprintf(c->reason, sizeof(c->reason), "using %s (configured %s is unusable: %s)",
				 c->path, p0->path, p0->why);
	} else if (c->noexec) {
		snprintf(c->reason, sizeof(c->reason),
			 "using %s (on a noexec mount: interpreter mode is unaffected, direct mode cannot work here)",
			 c->path);
	} else {
		snprintf(c->reason, sizeof(c->reason), "using %s (%s)", c->path,
			 s->runner_dir_configured ? "configured" : "default");
	}
	return 0;
}

void runnerdir_user_name(const char *user, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; user[i] && o + 1 < outlen && o < 64; i++) {
		char ch = user[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			 (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';

		out[o++] = ok ? ch : '_';
	}
	if (o == 0 && outlen > 1)
		out[o++] = '_';
	out[o] = '\0';
}

int runnerdir_write_script(const char *dir, const char *user, const char *content,
			   size_t len, char *path_out, size_t path_len,
			   char *err, size_t errlen)
{
	char uname[72], final[128], tmp[128], id[37], *line;
	const char *op = "open";
	int dfd, fd = -1, ret = 0;
	ssize_t n;
	size_t off = 0;

	runnerdir_user_name(user, uname, sizeof(uname));
	snprintf(final, sizeof(final), "bot_runner_%s.py", uname);
	snprintf(path_out, path_len, "%s/%s", dir, final);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		goto fail;
	}
	uuid_v4(id);
	snprintf(tmp, sizeof(tmp), ".%s.%s.tmp", final, id);
	op = "create";
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	op = "write";
	if (fchmod(fd, 0640) < 0) {
		ret = -errno;
		goto fail;
	}
	while (off < len) {
		n = write(fd, content + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		ret = -errno;
		goto fail;
	}
	/* A runner script for the same user is replaced whole: a restart
	 * rewrites it, and a reader sees the old or the new version. */
	op = "rename";
	if (renameat(dfd, tmp, dfd, final) < 0) {
		ret = -errno;
		goto fail;
	}
	close(fd);
	fsync(dfd);
	close(dfd);
	return 0;

fail:
	line = diag_line(op, path_out, -ret);
	snprintf(err, errlen, "%s", line ? line : strerror(-ret));
	free(line);
	if (fd >= 0) {
		close(fd);
		unlinkat(dfd, tmp, 0);
	}
	if (dfd >= 0)
		close(dfd);
	return ret;
}
