/* The YAML mark index (see ymarks.h): one libyaml event pass. */
#include "ymarks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct frame {
	char *path;
	enum ynode_type type;
	size_t next_index;	/* sequences: the next entry's index */
	char *pending_key;	/* maps: the key read, its value not yet */
	yaml_mark_t key_mark;
};

static void set_err(char *err, size_t errlen, const char *name, yaml_mark_t m, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s:%zu:%zu: %s", name, m.line + 1, m.column + 1, msg);
}

static int add_node(struct yindex *ix, const char *path, const char *key, enum ynode_type t,
		    const yaml_event_t *ev, yaml_mark_t key_mark)
{
	struct ynode *n;

	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		struct ynode *v = realloc(ix->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ix->v = v;
		ix->cap = cap;
	}
	n = &ix->v[ix->n];
	memset(n, 0, sizeof(*n));
	n->path = strdup(path);
	n->key = strdup(key);
	if (!n->path || !n->key) {
		free(n->path);
		free(n->key);
		return -ENOMEM;
	}
	n->type = t;
	n->key_mark = key_mark;
	n->val_mark = ev->start_mark;
	if (t == YN_SCALAR) {
		n->value = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		if (!n->value) {
			free(n->path);
			free(n->key);
			return -ENOMEM;
		}
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	}
	ix->n++;
	return 0;
}

int yindex_build(struct yindex *ix, const char *name, const char *buf, size_t len,
		 char *err, size_t errlen)
{
	struct frame st[64];
	int depth = 0, rc = 0, done = 0, docs = 0;
	yaml_parser_t p;
	yaml_event_t ev;

	memset(ix, 0, sizeof(*ix));
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		char childpath[4096], idx[32];
		const char *key = NULL;
		yaml_mark_t key_mark;
		struct frame *top = depth ? &st[depth - 1] : NULL;

		if (!yaml_parser_parse(&p, &ev)) {
			char msg[512];

			snprintf(msg, sizeof(msg), "YAML syntax error: %s%s%s",
				 p.problem ? p.problem : "unknown problem",
				 p.context ? " " : "", p.context ? p.context : "");
			set_err(err, errlen, name, p.problem_mark, msg);
			rc = -EINVAL;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				set_err(err, errlen, name, ev.start_mark,
					"a scenario file holds one YAML document");
				rc = -EINVAL;
			}
			break;
		case YAML_ALIAS_EVENT:
			set_err(err, errlen, name, ev.start_mark, "aliases are not supported");
			rc = -EINVAL;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			key_mark = ev.start_mark;
			if (top && top->type == YN_MAP && !top->pending_key) {
				/* A key. */
				if (ev.type != YAML_SCALAR_EVENT) {
					set_err(err, errlen, name, ev.start_mark,
						"mapping keys must be plain names");
					rc = -EINVAL;
					break;
				}
				top->pending_key = strndup((const char *)ev.data.scalar.value,
							   ev.data.scalar.length);
				top->key_mark = ev.start_mark;
				if (!top->pending_key) {
					rc = -ENOMEM;
					break;
				}
				snprintf(childpath, sizeof(childpath), "%s%s%s", top->path,
					 *top->path ? "." : "", top->pending_key);
				if (yindex_get(ix, childpath)) {
					char msg[600];

					snprintf(msg, sizeof(msg), "field '%s': duplicate key",
						 top->pending_key);
					set_err(err, errlen, name, ev.start_mark, msg);
					rc = -EINVAL;
				}
				break;
			}
			if (!top) {
				key = "";
				childpath[0] = '\0';
			} else if (top->type == YN_MAP) {
				key = top->pending_key;
				key_mark = top->key_mark;
				snprintf(childpath, sizeof(childpath), "%s%s%s", top->path,
					 *top->path ? "." : "", key);
			} else {
				snprintf(idx, sizeof(idx), "%zu", top->next_index++);
				key = idx;
				snprintf(childpath, sizeof(childpath), "%s%s%s", top->path,
					 *top->path ? "." : "", idx);
			}
			rc = add_node(ix, childpath, key,
				      ev.type == YAML_SCALAR_EVENT ? YN_SCALAR :
				      ev.type == YAML_MAPPING_START_EVENT ? YN_MAP : YN_SEQ,
				      &ev, key_mark);
			if (rc < 0)
				break;
			if (top && top->type == YN_MAP) {
				free(top->pending_key);
				top->pending_key = NULL;
			}
			if (ev.type != YAML_SCALAR_EVENT) {
				if (depth == (int)(sizeof(st) / sizeof(st[0]))) {
					set_err(err, errlen, name, ev.start_mark, "nested too deeply");
					rc = -EINVAL;
					break;
				}
				st[depth].path = strdup(childpath);
				if (!st[depth].path) {
					rc = -ENOMEM;
					break;
				}
				st[depth].type = ev.type == YAML_MAPPING_START_EVENT ? YN_MAP : YN_SEQ;
				st[depth].next_index = 0;
				st[depth].pending_key = NULL;
				depth++;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0) {
				depth--;
				free(st[depth].path);
				free(st[depth].pending_key);
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc < 0)
			break;
	}
	while (depth > 0) {
		depth--;
		free(st[depth].path);
		free(st[depth].pending_key);
	}
	yaml_parser_delete(&p);
	if (rc < 0) {
		if (rc == -ENOMEM && err && errlen)
			snprintf(err, errlen, "%s: out of memory", name);
		yindex_free(ix);
	}
	return rc;
}

void yindex_free(struct yindex *ix)
{
	for (size_t i = 0; i < ix->n; i++) {
		free(ix->v[i].path);
		free(ix->v[i].key);
		free(ix->v[i].value);
	}
	free(ix->v);
	memset(ix, 0, sizeof(*ix));
}

const struct ynode *yindex_get(const struct yindex *ix, const char *path)
{
	for (size_t i = 0; i < ix->n; i++)
		if (strcmp(ix->v[i].path, path) == 0)
			return &ix->v[i];
	return NULL;
}

const struct ynode *yindex_child(const struct yindex *ix, const char *path, size_t *pos)
{
	size_t plen = strlen(path);

	for (; *pos < ix->n; (*pos)++) {
		const struct ynode *n = &ix->v[*pos];
		const char *rest;

		if (plen) {
			if (strncmp(n->path, path, plen) != 0 || n->path[plen] != '.')
				continue;
			rest = n->path + plen + 1;
		} else {
			rest = n->path;
			if (!*rest)
				continue;
		}
		/* A direct child: its own key is the rest (keys may hold dots,
		 * so compare against the key instead of searching for one). */
		if (strcmp(rest, n->key) == 0) {
			(*pos)++;
			return n;
		}
	}
	return NULL;
}
