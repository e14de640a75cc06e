/* References between steps: "{{upload.id}}", "{{mount.tmp}}", "{{world.root}}".
 * A table of names to values, filled as the world is built and each step
 * ends, and the expansion of the references in a step's strings. */
#ifndef FIELDRIG_REFS_H
#define FIELDRIG_REFS_H

#include <stddef.h>

struct refs {
	char **keys, **values;
	size_t n, cap;
};

void refs_init(struct refs *r);
void refs_free(struct refs *r);

/* Sets KEY to VALUE (a later value replaces an earlier one). 0 or -ENOMEM. */
int refs_set(struct refs *r, const char *key, const char *value);
const char *refs_get(const struct refs *r, const char *key);

/* Replaces every "{{ name }}" of IN by its value into a malloc'd *OUT.
 * Returns 0, -ENOENT for an unknown name or -EINVAL for a "{{" without
 * "}}" (with the reason in ERR), or -ENOMEM. */
int refs_expand(const struct refs *r, const char *in, char **out, char *err, size_t errlen);

/* Calls FN with each reference name of IN, in order; stops at the first
 * non-zero return and returns it.  -EINVAL for an unterminated "{{". */
int refs_scan(const char *in, int (*fn)(void *ctx, const char *name), void *ctx);

#endif
