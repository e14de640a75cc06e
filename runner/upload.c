/* Script upload: validate, copy atomically, record. */
/* Messages are cut to their buffers on purpose: a long path must not
 * turn an error report into a second error. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "upload.h"
#include "diag.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int uuid_v4(char out[37])
{
	unsigned char b[16];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(b)) {
		n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);	/* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);	/* RFC 4122 variant */
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
		 b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is invalid.
 * Overlong forms and surrogates count as invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	if (c == 0xe0 && s[1] < 0xa0)
		return 0;
	if (c == 0xed && s[1] >= 0xa0)
		return 0;
	if (c == 0xf0 && s[1] < 0x90)
		return 0;
	if (c == 0xf4 && s[1] >= 0x90)
		return 0;
	return n;
}

void sanitize_name(const char *in, char *out, size_t maxlen)
{
	const unsigned char *p;
	const char *base, *slash;
	char *tmp, *dot;
	size_t o = 0, n, len, extlen;

	/* Windows clients send "C:\\Users\\me\\bot.py": strip both kinds. */
	base = in;
	for (slash = in; *slash; slash++) {
		if (*slash == '/' || *slash == '\\')
			base = slash + 1;
	}
	tmp = malloc(strlen(base) + 1);
	if (tmp == NULL) {
		snprintf(out, maxlen + 1, "script");
		return;
	}
	for (p = (const unsigned char *)base; *p; p += n) {
		n = utf8_len(p);
		if (n == 0) {
			n = 1;		/* drop the stray byte */
			continue;
		}
		if (n == 1 && (*p < 0x20 || *p == 0x7f))
			continue;
		/* C1 controls, U+0080..U+009F. */
		if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
			continue;
		/* Leading dots and blanks would hide the name or make "..". */
		if (o == 0 && (*p == '.' || *p == ' '))
			continue;
		memcpy(tmp + o, p, n);
		o += n;
	}
	while (o > 0 && tmp[o - 1] == ' ')
		o--;
	tmp[o] = '\0';
	len = o;
	if (len == 0) {
		snprintf(out, maxlen + 1, "script");
		free(tmp);
		return;
	}
	if (len <= maxlen) {
		memcpy(out, tmp, len + 1);
		free(tmp);
		return;
	}
	/* Too long: keep a short extension and cut the stem on a character
	 * boundary so that the type check still sees the real extension. */
	dot = strrchr(tmp, '.');
	extlen = dot ? strlen(dot) : 0;
	if (extlen > 16 || extlen >= maxlen)
		extlen = 0;
	n = maxlen - extlen;
	while (n > 0 && ((unsigned char)tmp[n] & 0xc0) == 0x80)
		n--;
	memcpy(out, tmp, n);
	memcpy(out + n, tmp + len - extlen, extlen);
	out[n + extlen] = '\0';
	free(tmp);
}

const char *upload_lang(const char *ext)
{
	if (strcmp(ext, ".py") == 0)
		return "python";
	if (strcmp(ext, ".js") == 0 || strcmp(ext, ".mjs") == 0 || strcmp(ext, ".cjs") == 0)
		return "node";
	if (strcmp(ext, ".ts") == 0)
		return "ts";
	return ext[0] == '.' ? ext + 1 : ext;
}

/* Formats the failure of op on path with the path diagnostics (owner,
 * mode, mount and its options, a hint). */
static int path_fail(const char *op, const char *path, int err, char *msg, size_t len)
{
	char *line = diag_line(op, path, err);

	if (line != NULL)
		snprintf(msg, len, "%s", line);
	else
		snprintf(msg, len, "%s %s: %s", op, path, strerror(err));
	free(line);
	return -err;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies src to dst, failing with -EFBIG once more than max bytes came:
 * the file may have grown since it was checked. */
static int copy_fd(int src, int dst, uint64_t max, uint64_t *copied, bool *read_side)
{
	char buf[65536];
	ssize_t n;
	int ret;

	*copied = 0;
	for (;;) {
		n = read(src, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*read_side = true;
			return -errno;
		}
		if (n == 0)
			return 0;
		*copied += (uint64_t)n;
		if (*copied > max)
			return -EFBIG;
		ret = write_all(dst, buf, (size_t)n);
		if (ret < 0) {
			*read_side = false;
			return ret;
		}
	}
}

static bool type_allowed(const struct settings *s, const char *ext)
{
	size_t i;

	for (i = 0; i < s->n_types; i++) {
		if (strcmp(s->types[i], ext) == 0)
			return true;
	}
	return false;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int upload_script(const struct settings *s, struct store *st,
		  struct upload_request *req, char id[37],
		  char *err, size_t errlen)
{
	char name[UPLOAD_NAME_MAX + 1], ext[16], final[64], tmpname[80], procpath[64];
	char path[4096], allowed[256];
	const char *dot;
	struct script_rec rec;
	struct stat sst;
	uint64_t copied = 0;
	bool read_side = false, linked = false, tmp_named = false;
	int srcfd = -1, dirfd = -1, fd = -1, ret;
	size_t i;

	/* Until the scripts directory is touched, every failure is about the
	 * request itself. */
	req->input_error = true;
	sanitize_name(req->name ? req->name : req->src, name, UPLOAD_NAME_MAX);
	dot = strrchr(name, '.');
	if (dot == NULL || dot == name || strlen(dot) >= sizeof(ext) - 1) {
		snprintf(err, errlen, "%s: name '%s' has no usable extension (allowed: %s)",
			 req->src, name, settings_display(s, SET_ALLOWED_TYPES, allowed, sizeof(allowed)));
		return -EINVAL;
	}
	for (i = 0; dot[i]; i++)
		ext[i] = (char)(dot[i] >= 'A' && dot[i] <= 'Z' ? dot[i] - 'A' + 'a' : dot[i]);
	ext[i] = '\0';
	if (!type_allowed(s, ext)) {
		snprintf(err, errlen, "%s: type '%s' is not allowed (allowed: %s; set RUNNER_ALLOWED_TYPES)",
			 req->src, ext, settings_display(s, SET_ALLOWED_TYPES, allowed, sizeof(allowed)));
		return -EINVAL;
	}

	/* Following a symlink is fine here: the source is the user's own
	 * file.  O_NONBLOCK keeps a FIFO from hanging the open. */
	srcfd = open(req->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (srcfd < 0)
		return path_fail("open", req->src, errno, err, errlen);
	if (fstat(srcfd, &sst) < 0) {
		ret = path_fail("stat", req->src, errno, err, errlen);
		goto out;
	}
	if (!S_ISREG(sst.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", req->src);
		ret = -EINVAL;
		goto out;
	}
	if ((uint64_t)sst.st_size > s->max_script_size) {
		snprintf(err, errlen, "%s: %lld bytes is over MAX_SCRIPT_SIZE (%s)", req->src,
			 (long long)sst.st_size,
			 settings_display(s, SET_MAX_SCRIPT_SIZE, allowed, sizeof(allowed)));
		ret = -EFBIG;
		goto out;
	}

	req->input_error = false;
	if (mkdir(s->scripts_dir, 0750) < 0 && errno != EEXIST) {
		ret = path_fail("mkdir", s->scripts_dir, errno, err, errlen);
		goto out;
	}
	dirfd = open(s->scripts_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0) {
		int e = errno;

		/* O_DIRECTORY reports a symlink as ENOTDIR; say what it is. */
		if (e == ENOTDIR && lstat(s->scripts_dir, &sst) == 0 && S_ISLNK(sst.st_mode)) {
			snprintf(err, errlen, "open %s: is a symbolic link, refused (%s)",
				 s->scripts_dir, strerror(ELOOP));
			ret = -ELOOP;
			goto out;
		}
		ret = path_fail("open", s->scripts_dir, e, err, errlen);
		goto out;
	}

	ret = uuid_v4(id);
	if (ret < 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(-ret));
		goto out;
	}
	snprintf(final, sizeof(final), "%s%s", id, ext);
	snprintf(path, sizeof(path), "%s/%s", s->scripts_dir, final);

	/* An unnamed O_TMPFILE cannot be seen and vanishes on any failure;
	 * filesystems without it get a hidden name removed on failure. */
	if (req->no_tmpfile) {
		fd = -1;
		errno = EOPNOTSUPP;
	} else {
		fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
	}
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		snprintf(tmpname, sizeof(tmpname), ".upload-%s.tmp", id);
		fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
		tmp_named = fd >= 0;
	}
	if (fd < 0) {
		ret = path_fail("create", path, errno, err, errlen);
		goto out;
	}
	/* The umask must not decide the stored mode. */
	if (fchmod(fd, 0640) < 0) {
		ret = path_fail("chmod", path, errno, err, errlen);
		goto out;
	}
	ret = copy_fd(srcfd, fd, s->max_script_size, &copied, &read_side);
	if (ret == -EFBIG) {
		req->input_error = true;
		snprintf(err, errlen, "%s: grew over MAX_SCRIPT_SIZE while being read", req->src);
		goto out;
	}
	if (ret < 0) {
		req->input_error = read_side;
		ret = read_side ? path_fail("read", req->src, -ret, err, errlen)
				: path_fail("write", path, -ret, err, errlen);
		goto out;
	}
	if (fsync(fd) < 0) {
		ret = path_fail("fsync", path, errno, err, errlen);
		goto out;
	}

	if (!tmp_named) {
		snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", fd);
		ret = linkat(AT_FDCWD, procpath, dirfd, final, AT_SYMLINK_FOLLOW);
		/* Without /proc, AT_EMPTY_PATH does the same (needs
		 * CAP_DAC_READ_SEARCH on older kernels). */
		if (ret < 0 && errno == ENOENT)
			ret = linkat(fd, "", dirfd, final, AT_EMPTY_PATH);
	} else {
		ret = renameat2(dirfd, tmpname, dirfd, final, RENAME_NOREPLACE);
		if (ret < 0 && errno == EINVAL) {
			/* No RENAME_NOREPLACE here: link + unlink is just as
			 * unable to replace an existing file. */
			ret = linkat(dirfd, tmpname, dirfd, final, 0);
			if (ret == 0)
				unlinkat(dirfd, tmpname, 0);
		}
		if (ret == 0)
			tmp_named = false;
	}
	if (ret < 0) {
		ret = path_fail("link", path, errno, err, errlen);
		goto out;
	}
	linked = true;
	if (fsync(dirfd) < 0) {
		ret = path_fail("fsync", s->scripts_dir, errno, err, errlen);
		goto out;
	}

	memset(&rec, 0, sizeof(rec));
	memcpy(rec.id, id, 37);
	rec.name = name;
	rec.file = final;
	rec.lang = upload_lang(ext);
	rec.size = (int64_t)copied;
	rec.created_at = now_ms();
	ret = store_add_script(st, &rec, err, errlen);
	if (ret < 0)
		goto out;
	linked = false;		/* recorded: keep it */

out:
	if (linked) {
		unlinkat(dirfd, final, 0);
		fsync(dirfd);
	}
	if (tmp_named)
		unlinkat(dirfd, tmpname, 0);
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	close(srcfd);
	return ret;
}
