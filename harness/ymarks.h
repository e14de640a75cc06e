/* A flat index of a YAML document: every node by its dotted path
 * ("steps.2.expect.status", "world.mounts.tmp.rules.0"), with the marks of
 * its key and value.  The scenario loader uses it for what libcyaml cannot
 * say: where a field is (for FILE:LINE:COLUMN errors), whether a key was
 * written at all, and the maps whose keys are names the user chose
 * (world.mounts, world.env, world.settings). */
#ifndef FIELDRIG_YMARKS_H
#define FIELDRIG_YMARKS_H

#include <stddef.h>
#include <yaml.h>

enum ynode_type { YN_SCALAR, YN_MAP, YN_SEQ };

struct ynode {
	char *path;		/* "" for the document root */
	char *key;		/* the mapping key as written, or the sequence index */
	enum ynode_type type;
	char *value;		/* scalars only */
	int plain;		/* scalar written without quotes */
	yaml_mark_t key_mark;	/* the key (the item itself for sequence entries) */
	yaml_mark_t val_mark;
};

struct yindex {
	struct ynode *v;
	size_t n, cap;
};

/* Builds the index of BUF.  On a YAML syntax error, an alias or a
 * duplicate key, returns -EINVAL with "NAME:LINE:COL: reason" in ERR. */
int yindex_build(struct yindex *ix, const char *name, const char *buf, size_t len,
		 char *err, size_t errlen);
void yindex_free(struct yindex *ix);

/* The node at PATH, or NULL. */
const struct ynode *yindex_get(const struct yindex *ix, const char *path);

/* The direct children of PATH in document order: call with *pos = 0 and
 * repeat until it returns NULL. */
const struct ynode *yindex_child(const struct yindex *ix, const char *path, size_t *pos);

#endif
