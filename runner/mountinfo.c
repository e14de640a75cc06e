/* Parsing of /proc/self/mountinfo; see mountinfo.h for the format. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "mountinfo.h"

static void __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int mountinfo_unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (*r != '\\') {
			*w++ = *r++;
			continue;
		}
		if (r[1] < '0' || r[1] > '3' || r[2] < '0' || r[2] > '7' ||
		    r[3] < '0' || r[3] > '7')
			return -EINVAL;
		/* The first digit is at most 3, so the value fits a byte; a
		 * NUL byte cannot be part of a path, so it is refused. */
		int v = (r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0');
		if (v == 0)
			return -EINVAL;
		*w++ = (char)v;
		r += 4;
	}
	*w = '\0';
	return 0;
}

bool mount_option_present(const char *options, const char *name)
{
	size_t nl = strlen(name);
	const char *p = options;

	if (!options || nl == 0)
		return false;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == nl && memcmp(p, name, nl) == 0)
			return true;
		if (!strchr(name, '=') && len > nl && memcmp(p, name, nl) == 0 &&
		    p[nl] == '=')
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

static unsigned int flags_from_options(const char *opts)
{
	unsigned int f = 0;

	if (mount_option_present(opts, "ro"))
		f |= MOUNT_F_RO;
	if (mount_option_present(opts, "noexec"))
		f |= MOUNT_F_NOEXEC;
	if (mount_option_present(opts, "nosuid"))
		f |= MOUNT_F_NOSUID;
	if (mount_option_present(opts, "nodev"))
		f |= MOUNT_F_NODEV;
	return f;
}

static void entry_free(struct mount_entry *e)
{
	free(e->root);
	free(e->mount_point);
	free(e->mount_options);
	free(e->optional);
	free(e->fs_type);
	free(e->source);
	free(e->super_options);
	memset(e, 0, sizeof(*e));
}

void mount_table_free(struct mount_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		entry_free(&t->entries[i]);
	free(t->entries);
	t->entries = NULL;
	t->n = 0;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static int parse_uint(const char *s, unsigned int *out)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > UINT_MAX)
			return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

/* Splits line (modified in place) at single spaces into at most max fields.
 * Empty fields (two spaces in a row, or leading or trailing spaces) are an
 * error: the kernel never writes them. */
static int split_fields(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *sp = strchr(p, ' ');

		if (n == max)
			return -E2BIG;
		if (sp)
			*sp = '\0';
		if (*p == '\0')
			return -EINVAL;
		f[n++] = p;
		if (!sp)
			break;
		p = sp + 1;
	}
	return n;
}

static char *dup_unescaped(const char *s, int *rc)
{
	char *d = strdup(s);

	if (!d) {
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = mountinfo_unescape(d);
	if (*rc < 0) {
		free(d);
		return NULL;
	}
	return d;
}

#define MAX_FIELDS 64

static int parse_line(char *line, size_t lineno, struct mount_entry *e,
		      char *err, size_t errlen)
{
	char *f[MAX_FIELDS];
	int n, sep = -1, rc;
	const char *what;

	n = split_fields(line, f, MAX_FIELDS);
	if (n == -E2BIG) {
		set_err(err, errlen, "line %zu: too many fields", lineno);
		return -EINVAL;
	}
	if (n < 0) {
		set_err(err, errlen, "line %zu: empty field", lineno);
		return -EINVAL;
	}
	/* The separator is the first "-" after the six fixed fields; optional
	 * fields look like "shared:5" and never are a lone dash. */
	for (int i = 6; i < n; i++) {
		if (strcmp(f[i], "-") == 0) {
			sep = i;
			break;
		}
	}
	if (n < 6) {
		set_err(err, errlen, "line %zu: %d fields, need at least 10", lineno, n);
		return -EINVAL;
	}
	if (sep < 0) {
		set_err(err, errlen, "line %zu: missing ' - ' separator", lineno);
		return -EINVAL;
	}
	if (n - sep - 1 != 3) {
		set_err(err, errlen, "line %zu: %d fields after ' - ', need 3 "
			"(fstype, source, super options)", lineno, n - sep - 1);
		return -EINVAL;
	}

	what = "mount id";
	if (parse_uint(f[0], &e->mount_id) < 0)
		goto bad;
	what = "parent id";
	if (parse_uint(f[1], &e->parent_id) < 0)
		goto bad;
	what = "major:minor";
	{
		char *colon = strchr(f[2], ':');

		if (!colon)
			goto bad;
		*colon = '\0';
		if (parse_uint(f[2], &e->dev_major) < 0 ||
		    parse_uint(colon + 1, &e->dev_minor) < 0)
			goto bad;
	}

	what = "root";
	if (!(e->root = dup_unescaped(f[3], &rc)))
		goto field_rc;
	what = "mount point";
	if (!(e->mount_point = dup_unescaped(f[4], &rc)))
		goto field_rc;
	if (e->mount_point[0] != '/') {
		rc = -EINVAL;
		goto field_rc;
	}
	what = "mount options";
	if (!(e->mount_options = dup_unescaped(f[5], &rc)))
		goto field_rc;
	what = "optional fields";
	{
		size_t len = 0, off = 0;

		for (int i = 6; i < sep; i++)
			len += strlen(f[i]) + 1;
		e->optional = malloc(len + 1);
		if (!e->optional) {
			rc = -ENOMEM;
			goto field_rc;
		}
		e->optional[0] = '\0';
		for (int i = 6; i < sep; i++) {
			off += (size_t)sprintf(e->optional + off, "%s%s",
					       off ? " " : "", f[i]);
		}
	}
	what = "filesystem type";
	if (!(e->fs_type = dup_unescaped(f[sep + 1], &rc)))
		goto field_rc;
	what = "source";
	if (!(e->source = dup_unescaped(f[sep + 2], &rc)))
		goto field_rc;
	what = "super options";
	if (!(e->super_options = dup_unescaped(f[sep + 3], &rc)))
		goto field_rc;
	e->flags = flags_from_options(e->mount_options);
	return 0;

field_rc:
	if (rc == -ENOMEM) {
		entry_free(e);
		return -ENOMEM;
	}
bad:
	set_err(err, errlen, "line %zu: bad %s", lineno, what);
	entry_free(e);
	return -EINVAL;
}

int mount_table_parse(const char *buf, size_t len, struct mount_table *t,
		      char *err, size_t errlen)
{
	struct mount_table nt = { NULL, 0 };
	size_t cap = 0, lineno = 0, pos = 0;
	char *line = NULL;
	int rc = 0;

	t->entries = NULL;
	t->n = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (buf + pos)) : len - pos;

		lineno++;
		if (memchr(buf + pos, '\0', ll)) {
			set_err(err, errlen, "line %zu: NUL byte", lineno);
			rc = -EINVAL;
			goto out_free;
		}
		if (ll == 0) {
			/* An empty line can only be a trailing one. */
			if (nl && (size_t)(nl - buf) + 1 < len) {
				set_err(err, errlen, "line %zu: empty line", lineno);
				rc = -EINVAL;
				goto out_free;
			}
			pos += 1;
			continue;
		}
		line = strndup(buf + pos, ll);
		if (!line) {
			rc = -ENOMEM;
			goto out_free;
		}
		if (nt.n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			struct mount_entry *ne = realloc(nt.entries, ncap * sizeof(*ne));

			if (!ne) {
				rc = -ENOMEM;
				goto out_free;
			}
			nt.entries = ne;
			cap = ncap;
		}
		memset(&nt.entries[nt.n], 0, sizeof(nt.entries[nt.n]));
		rc = parse_line(line, lineno, &nt.entries[nt.n], err, errlen);
		if (rc < 0)
			goto out_free;
		nt.n++;
		free(line);
		line = NULL;
		pos += ll + (nl ? 1 : 0);
	}
	*t = nt;
	return 0;

out_free:
	free(line);
	mount_table_free(&nt);
	return rc;
}

int mount_table_load(const char *path, struct mount_table *t,
		     char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, rc;

	if (!path)
		path = "/proc/self/mountinfo";
	t->entries = NULL;
	t->n = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot read %s: %s", path, strerror(-rc));
		return rc;
	}
	/* proc files have no useful size: read until EOF. */
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb = realloc(buf, ncap);

			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			set_err(err, errlen, "cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	rc = mount_table_parse(buf, len, t, err, errlen);
	if (rc == -EINVAL && err && errlen) {
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s: %s", path, err);
		snprintf(err, errlen, "%s", tmp);
	}
out:
	free(buf);
	close(fd);
	return rc;
}

/* Whether mount point mp covers canonical path p: equal, or a prefix that
 * ends at a path separator. */
static size_t covers(const char *mp, const char *p)
{
	size_t ml = strlen(mp);

	if (strcmp(mp, "/") == 0)
		return 1;
	if (strncmp(mp, p, ml) != 0)
		return 0;
	if (p[ml] != '\0' && p[ml] != '/')
		return 0;
	return ml;
}

const struct mount_entry *mount_table_find_canonical(const struct mount_table *t,
						     const char *canon)
{
	const struct mount_entry *best = NULL;
	size_t best_len = 0;

	if (!t || !canon || canon[0] != '/')
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		size_t l = covers(t->entries[i].mount_point, canon);

		/* ">=" so that of stacked mounts the later one wins. */
		if (l > 0 && l >= best_len) {
			best = &t->entries[i];
			best_len = l;
		}
	}
	return best;
}

const struct mount_entry *mount_table_find(const struct mount_table *t,
					   const char *path)
{
	const struct mount_entry *e = NULL;
	char *head = NULL, *resolved = NULL, *canon = NULL;
	size_t cut;

	if (!path || !*path) {
		errno = EINVAL;
		return NULL;
	}
	/* Resolve the longest existing prefix path[0..cut) and append the
	 * rest unchanged: a path about to be created lives on the mount of
	 * its nearest existing parent. */
	cut = strlen(path);
	for (;;) {
		free(head);
		head = cut ? strndup(path, cut) : strdup(path[0] == '/' ? "/" : ".");
		if (!head)
			goto out;
		resolved = realpath(head, NULL);
		if (resolved)
			break;
		if (cut == 0 || (cut == 1 && path[0] == '/'))
			goto out;
		while (cut > 0 && path[cut - 1] == '/')
			cut--;
		while (cut > 0 && path[cut - 1] != '/')
			cut--;
		/* Keep the separator in the rest; "/x" keeps cut at 1. */
		if (cut > 1)
			cut--;
		else if (cut == 1 && path[0] == '/')
			cut = 1;
	}
	{
		const char *rest = path + cut;

		if (cut == 1 && path[0] == '/' && strcmp(resolved, "/") == 0) {
			rest = path + 1;
			if (asprintf(&canon, "/%s", rest) < 0)
				canon = NULL;
		} else if (cut == 0) {
			if (asprintf(&canon, "%s%s%s", resolved,
				     strcmp(resolved, "/") == 0 ? "" : "/", rest) < 0)
				canon = NULL;
		} else if (asprintf(&canon, "%s%s", strcmp(resolved, "/") == 0 &&
				    *rest ? "" : resolved, rest) < 0) {
			canon = NULL;
		}
		if (!canon)
			goto out;
	}
	e = mount_table_find_canonical(t, canon);
out:
	free(head);
	free(resolved);
	free(canon);
	return e;
}

const struct mount_entry *mount_table_find_fstype(const struct mount_table *t,
						  const char *fs_type)
{
	const struct mount_entry *e = NULL;

	for (size_t i = 0; t && i < t->n; i++)
		if (strcmp(t->entries[i].fs_type, fs_type) == 0)
			e = &t->entries[i];
	return e;
}
