/* dotenv parsing: one pass over the buffer, one line at a time. */
#include "dotenv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A .env file is configuration, not data; refusing anything larger keeps a
 * mistaken --env-file pointing at a log or a device from eating memory. */
#define DOTENV_MAX_SIZE (1024 * 1024)

struct line_ctx {
	char *msg;
	size_t msglen;
};

__attribute__((format(printf, 2, 3)))
static int syntax(struct line_ctx *lc, const char *fmt, ...)
{
	va_list ap;

	if (lc->msglen > 0) {
		va_start(ap, fmt);
		vsnprintf(lc->msg, lc->msglen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int key_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int key_char(char c)
{
	return key_start(c) || (c >= '0' && c <= '9') || c == '.';
}

/* After a closing quote only blanks or a comment may follow. */
static int check_tail(struct line_ctx *lc, const char *p, const char *end)
{
	while (p < end && is_blank(*p))
		p++;
	if (p < end && *p != '#')
		return syntax(lc, "unexpected text after closing quote");
	return 0;
}

/* Parses one line [p, end) into key and value (both written into out, which
 * has room for the whole line plus two NULs).  Returns 1 for an assignment,
 * 0 for a blank or comment line, -EINVAL for a syntax error. */
static int parse_line(struct line_ctx *lc, const char *p, const char *end,
		      char *out, char **key, char **value)
{
	char *o = out;
	const char *q;

	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p == '#')
		return 0;
	if ((size_t)(end - p) > 7 && memcmp(p, "export", 6) == 0 && is_blank(p[6])) {
		p += 6;
		while (p < end && is_blank(*p))
			p++;
	}
	if (p == end || !key_start(*p))
		return syntax(lc, "expected KEY=VALUE, found '%.*s'",
			      (int)(end - p > 40 ? 40 : end - p), p);
	*key = o;
	while (p < end && key_char(*p))
		*o++ = *p++;
	*o++ = '\0';
	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p != '=')
		return syntax(lc, "expected '=' after variable name %s", *key);
	p++;
	while (p < end && is_blank(*p))
		p++;

	*value = o;
	if (p < end && *p == '\'') {
		q = memchr(p + 1, '\'', (size_t)(end - p - 1));
		if (q == NULL)
			return syntax(lc, "unterminated single quote in value of %s", *key);
		memcpy(o, p + 1, (size_t)(q - p - 1));
		o += q - p - 1;
		*o = '\0';
		return check_tail(lc, q + 1, end) ? -EINVAL : 1;
	}
	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p != '\\') {
				*o++ = *p;
				continue;
			}
			if (++p == end)
				break;
			switch (*p) {
			case 'n': *o++ = '\n'; break;
			case 't': *o++ = '\t'; break;
			case 'r': *o++ = '\r'; break;
			case '\\': case '"': case '$': case '\'': case '`':
				*o++ = *p;
				break;
			default:
				return syntax(lc, "unknown escape '\\%c' in value of %s", *p, *key);
			}
		}
		if (p == end)
			return syntax(lc, "unterminated double quote in value of %s", *key);
		*o = '\0';
		return check_tail(lc, p + 1, end) ? -EINVAL : 1;
	}

	/* Unquoted: a '#' starts a comment only after a blank, so URLs with
	 * fragments and values such as "a#b" survive. */
	for (q = p; q < end; q++) {
		if (*q == '#' && (q == p || is_blank(q[-1])))
			break;
	}
	while (q > p && is_blank(q[-1]))
		q--;
	memcpy(o, p, (size_t)(q - p));
	o[q - p] = '\0';
	return 1;
}

int dotenv_parse(const char *buf, size_t len, dotenv_cb cb, void *ctx,
		 unsigned *err_line, char *msg, size_t msglen)
{
	struct line_ctx lc = { msg, msglen };
	const char *p = buf, *end = buf + len, *eol;
	unsigned line = 0;
	char *scratch = NULL;
	size_t cap = 0;
	int ret = 0;

	if (msglen > 0)
		msg[0] = '\0';
	while (p < end) {
		const char *lend;
		char *key = NULL, *value = NULL;
		size_t need;

		line++;
		eol = memchr(p, '\n', (size_t)(end - p));
		lend = eol ? eol : end;
		if (memchr(p, '\0', (size_t)(lend - p)) != NULL) {
			ret = syntax(&lc, "NUL byte in line");
			goto out_err;
		}
		/* Files written on Windows end lines in CRLF. */
		if (lend > p && lend[-1] == '\r')
			lend--;
		need = (size_t)(lend - p) + 2;
		if (need > cap) {
			char *n = realloc(scratch, need);

			if (n == NULL) {
				ret = -ENOMEM;
				goto out;
			}
			scratch = n;
			cap = need;
		}
		ret = parse_line(&lc, p, lend, scratch, &key, &value);
		if (ret < 0)
			goto out_err;
		if (ret == 1) {
			ret = cb(ctx, key, value, line);
			if (ret != 0)
				goto out;
		}
		ret = 0;
		p = eol ? eol + 1 : end;
	}
	goto out;

out_err:
	if (err_line)
		*err_line = line;
out:
	free(scratch);
	return ret;
}

int dotenv_load(const char *path, dotenv_cb cb, void *ctx, char *err, size_t errlen)
{
	char msg[256];
	unsigned line = 0;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > DOTENV_MAX_SIZE) {
		ret = -EFBIG;
		snprintf(err, errlen, "%s: larger than %d bytes", path, DOTENV_MAX_SIZE);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		goto out;
	}
	/* Read to EOF rather than trusting st_size: the file may change. */
	while (len < (size_t)st.st_size + 1) {
		n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-ret));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > (size_t)st.st_size) {
		ret = -EFBIG;
		snprintf(err, errlen, "%s: file grew while being read", path);
		goto out;
	}
	ret = dotenv_parse(buf, len, cb, ctx, &line, msg, sizeof(msg));
	if (ret == -EINVAL && msg[0] != '\0')
		snprintf(err, errlen, "%s:%u: %s", path, line, msg);
	else if (ret < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
out:
	free(buf);
	close(fd);
	return ret;
}
