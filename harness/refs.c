/* Step references (see refs.h). */
#include "refs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void refs_init(struct refs *r)
{
	memset(r, 0, sizeof(*r));
}

void refs_free(struct refs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->keys[i]);
		free(r->values[i]);
	}
	free(r->keys);
	free(r->values);
	memset(r, 0, sizeof(*r));
}

int refs_set(struct refs *r, const char *key, const char *value)
{
	char *v = strdup(value);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->keys[i], key) == 0) {
			free(r->values[i]);
			r->values[i] = v;
			return 0;
		}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		char **k = realloc(r->keys, cap * sizeof(*k));

		if (!k)
			goto out_nomem;
		r->keys = k;
		k = realloc(r->values, cap * sizeof(*k));
		if (!k)
			goto out_nomem;
		r->values = k;
		r->cap = cap;
	}
	r->keys[r->n] = strdup(key);
	if (!r->keys[r->n])
		goto out_nomem;
	r->values[r->n++] = v;
	return 0;
out_nomem:
	free(v);
	return -ENOMEM;
}

const char *refs_get(const struct refs *r, const char *key)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->keys[i], key) == 0)
			return r->values[i];
	return NULL;
}

/* Finds the next reference at or after S: *start at "{{", *end after "}}",
 * NAME (trimmed) copied out.  1 found, 0 none, -EINVAL unterminated or too long. */
static int next_ref(const char *s, const char **start, const char **end, char *name, size_t namelen)
{
	const char *a = strstr(s, "{{"), *b, *p, *q;

	if (!a)
		return 0;
	b = strstr(a + 2, "}}");
	if (!b)
		return -EINVAL;
	p = a + 2;
	q = b;
	while (p < q && (*p == ' ' || *p == '\t'))
		p++;
	while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	if ((size_t)(q - p) >= namelen || q == p)
		return -EINVAL;
	memcpy(name, p, (size_t)(q - p));
	name[q - p] = '\0';
	*start = a;
	*end = b + 2;
	return 1;
}

int refs_scan(const char *in, int (*fn)(void *ctx, const char *name), void *ctx)
{
	const char *s = in, *a, *b;
	char name[256];
	int rc;

	while ((rc = next_ref(s, &a, &b, name, sizeof(name))) == 1) {
		rc = fn(ctx, name);
		if (rc)
			return rc;
		s = b;
	}
	return rc;
}

int refs_expand(const struct refs *r, const char *in, char **out, char *err, size_t errlen)
{
	const char *s = in, *a, *b;
	char name[256], *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	while ((rc = next_ref(s, &a, &b, name, sizeof(name))) == 1) {
		const char *v = refs_get(r, name);

		if (!v) {
			if (err && errlen)
				snprintf(err, errlen, "unknown reference '{{%s}}'", name);
			rc = -ENOENT;
			break;
		}
		fwrite(s, 1, (size_t)(a - s), f);
		fputs(v, f);
		s = b;
	}
	if (rc == -EINVAL && err && errlen)
		snprintf(err, errlen, "'{{' without a matching '}}' (or an empty or over-long name)");
	fputs(s, f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}
