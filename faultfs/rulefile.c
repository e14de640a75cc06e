/* faultfs rule files: YAML in, rules out.
 *
 * The format:
 *
 *     # comments allowed
 *     rules:
 *       - op: rmdir|rename
 *         path: /venv
 *         error: EBUSY
 *       - op: [read, write]     # a sequence is also accepted for op
 *         path: data/big.bin
 *         delay: 250ms
 *
 * The document is either a mapping with the single key `rules` whose value
 * is a sequence of rules, or that sequence on its own.  Each rule is a
 * mapping from the field names of a rule expression (op, path, error, delay,
 * mode_clear, short, nth, after, count, prob, seed, uid, gid, comm) to plain
 * scalars; only `op` may also be a sequence of names.  A file with no rules
 * (empty, only comments, `rules:` with nothing after it, or `rules: []`) is
 * valid and adds nothing.  Anchors are ignored, aliases are refused, and one
 * file holds one YAML document.
 *
 * Every scalar reaches ff_rule_set() as the text that was written, whatever
 * YAML would make of it ("nth: 3" arrives as "3", "mode_clear: 0111" as
 * "0111", not as 73), so a rule means the same in a file as on the command
 * line.  libyaml's event parser is used directly rather than libcyaml for
 * that reason, and because its marks give the exact line and column of every
 * key and value for error messages of the form
 *
 *     FILE:LINE:COLUMN: rule N: field 'KEY': reason
 *
 * pointing at the value (or at the key, when the key itself is wrong, and at
 * the start of the rule when the rule as a whole does not validate).
 * Loading is all or nothing: rules are collected in a private list and
 * added to the table in one step only when the whole file is good.
 */
#include "rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct loader {
	yaml_parser_t parser;
	const char *name;
	char *err;
	size_t errlen;
	struct ff_rule **rules;
	size_t n, cap;
};

/* Writes "NAME:LINE:COL: message" into the loader's error buffer. */
__attribute__((format(printf, 3, 4)))
static int fail_at(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ld->err != NULL && ld->errlen > 0) {
		snprintf(ld->err, ld->errlen, "%s:%zu:%zu: %s", ld->name, mark.line + 1,
			 mark.column + 1, msg);
		/* One line, even when a quoted value holds a newline. */
		for (char *p = ld->err; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	}
	return -1;
}

static int next_event(struct loader *ld, yaml_event_t *ev)
{
	if (yaml_parser_parse(&ld->parser, ev))
		return 0;
	if (ld->parser.context != NULL)
		return fail_at(ld, ld->parser.problem_mark, "YAML syntax error: %s %s",
			       ld->parser.problem ? ld->parser.problem : "unknown problem",
			       ld->parser.context);
	return fail_at(ld, ld->parser.problem_mark, "YAML syntax error: %s",
		       ld->parser.problem ? ld->parser.problem : "unknown problem");
}

static const char *event_text(const yaml_event_t *ev)
{
	return (const char *)ev->data.scalar.value;
}

static bool scalar_has_nul(const yaml_event_t *ev)
{
	return strlen(event_text(ev)) != ev->data.scalar.length;
}

/* What a node that is not the expected one is, for error messages. */
static const char *event_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return "a single value";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_ALIAS_EVENT:
		return "an alias (aliases are not supported)";
	default:
		return "something else";
	}
}

/* An empty or null scalar stands for "no rules" where a list is expected. */
static bool is_null_scalar(const yaml_event_t *ev)
{
	const char *s = event_text(ev);

	if (ev->type != YAML_SCALAR_EVENT || !ev->data.scalar.plain_implicit)
		return false;
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* Reads the items of an `op:` sequence and joins them with '|'. */
static int read_op_list(struct loader *ld, size_t nrule, yaml_mark_t start, char **out)
{
	size_t len = 0, cap = 64;
	char *s = malloc(cap);
	yaml_event_t ev;

	if (s == NULL)
		return fail_at(ld, start, "rule %zu: out of memory", nrule);
	s[0] = '\0';
	for (;;) {
		const char *name;
		size_t n;

		if (next_event(ld, &ev) < 0)
			goto out_free;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type != YAML_SCALAR_EVENT || scalar_has_nul(&ev)) {
			fail_at(ld, ev.start_mark, "rule %zu: field 'op': expected an operation name, not %s",
				nrule, ev.type == YAML_SCALAR_EVENT ? "a value with a NUL byte" : event_kind(&ev));
			yaml_event_delete(&ev);
			goto out_free;
		}
		name = event_text(&ev);
		n = strlen(name);
		if (n == 0) {
			fail_at(ld, ev.start_mark, "rule %zu: field 'op': empty operation name", nrule);
			yaml_event_delete(&ev);
			goto out_free;
		}
		if (len + n + 2 > cap) {
			char *p;

			cap = (len + n + 2) * 2;
			p = realloc(s, cap);
			if (p == NULL) {
				fail_at(ld, ev.start_mark, "rule %zu: out of memory", nrule);
				yaml_event_delete(&ev);
				goto out_free;
			}
			s = p;
		}
		if (len > 0)
			s[len++] = '|';
		memcpy(s + len, name, n + 1);
		len += n;
		yaml_event_delete(&ev);
	}
	if (len == 0) {
		fail_at(ld, start, "rule %zu: field 'op': empty list", nrule);
		goto out_free;
	}
	*out = s;
	return 0;

out_free:
	free(s);
	return -1;
}

/* Reads one rule's mapping, whose MAPPING-START event is `start`. */
static int read_rule(struct loader *ld, size_t nrule, yaml_mark_t start)
{
	struct ff_rule *r = ff_rule_new();
	char reason[384];
	yaml_event_t key, val;

	if (r == NULL)
		return fail_at(ld, start, "rule %zu: out of memory", nrule);
	for (;;) {
		const char *k;
		char *joined = NULL;
		int rc;

		if (next_event(ld, &key) < 0)
			goto out_free;
		if (key.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&key);
			break;
		}
		if (key.type != YAML_SCALAR_EVENT) {
			fail_at(ld, key.start_mark, "rule %zu: expected a field name, not %s",
				nrule, event_kind(&key));
			goto out_key;
		}
		k = event_text(&key);
		if (!ff_rule_key_valid(k) || scalar_has_nul(&key)) {
			fail_at(ld, key.start_mark,
				"rule %zu: field '%s': unknown field (known: op, path, error, delay, mode_clear, short, nth, after, count, prob, seed, uid, gid, comm)",
				nrule, k);
			goto out_key;
		}
		if (next_event(ld, &val) < 0)
			goto out_key;
		if (val.type == YAML_SEQUENCE_START_EVENT && strcmp(k, "op") == 0) {
			if (read_op_list(ld, nrule, val.start_mark, &joined) < 0)
				goto out_val;
			rc = ff_rule_set(r, k, joined, reason, sizeof(reason));
			free(joined);
		} else if (val.type == YAML_SCALAR_EVENT) {
			if (scalar_has_nul(&val)) {
				fail_at(ld, val.start_mark, "rule %zu: field '%s': value contains a NUL byte",
					nrule, k);
				goto out_val;
			}
			/* "path:" or "path: ~" is a null, not the text "~". */
			rc = ff_rule_set(r, k, is_null_scalar(&val) ? "" : event_text(&val),
					 reason, sizeof(reason));
		} else {
			fail_at(ld, val.start_mark, "rule %zu: field '%s': expected a single value, not %s",
				nrule, k, event_kind(&val));
			goto out_val;
		}
		if (rc < 0) {
			/* A field given twice is the key's fault; anything else
			 * is the value's. */
			bool dup = strstr(reason, "given twice") != NULL;

			fail_at(ld, dup ? key.start_mark : val.start_mark, "rule %zu: %s", nrule, reason);
			goto out_val;
		}
		yaml_event_delete(&val);
		yaml_event_delete(&key);
	}
	if (ff_rule_validate(r, reason, sizeof(reason)) < 0) {
		fail_at(ld, start, "rule %zu: %s", nrule, reason);
		goto out_free;
	}
	if (ld->n == ld->cap) {
		size_t cap = ld->cap ? ld->cap * 2 : 8;
		struct ff_rule **p = realloc(ld->rules, cap * sizeof(*p));

		if (p == NULL) {
			fail_at(ld, start, "rule %zu: out of memory", nrule);
			goto out_free;
		}
		ld->rules = p;
		ld->cap = cap;
	}
	ld->rules[ld->n++] = r;
	return 0;

out_val:
	yaml_event_delete(&val);
out_key:
	yaml_event_delete(&key);
out_free:
	ff_rule_free(r);
	return -1;
}

/* Reads the items of the rule sequence, after its SEQUENCE-START. */
static int read_rule_list(struct loader *ld)
{
	yaml_event_t ev;

	for (;;) {
		size_t nrule = ld->n + 1;

		if (next_event(ld, &ev) < 0)
			return -1;
		if (ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (ev.type != YAML_MAPPING_START_EVENT) {
			fail_at(ld, ev.start_mark, "rule %zu: expected a mapping of field: value, not %s",
				nrule, event_kind(&ev));
			yaml_event_delete(&ev);
			return -1;
		}
		if (read_rule(ld, nrule, ev.start_mark) < 0) {
			yaml_event_delete(&ev);
			return -1;
		}
		yaml_event_delete(&ev);
	}
	yaml_event_delete(&ev);
	return 0;
}

/* Reads a top-level mapping, after its MAPPING-START: only `rules` may be in
 * it, once. */
static int read_top_mapping(struct loader *ld)
{
	bool seen = false;
	yaml_event_t key, val;

	for (;;) {
		if (next_event(ld, &key) < 0)
			return -1;
		if (key.type == YAML_MAPPING_END_EVENT)
			break;
		if (key.type != YAML_SCALAR_EVENT || strcmp(event_text(&key), "rules") != 0 ||
		    scalar_has_nul(&key)) {
			if (key.type == YAML_SCALAR_EVENT)
				fail_at(ld, key.start_mark, "unknown top-level key '%s' (expected 'rules')",
					event_text(&key));
			else
				fail_at(ld, key.start_mark, "expected the key 'rules', not %s",
					event_kind(&key));
			goto out_key;
		}
		if (seen) {
			fail_at(ld, key.start_mark, "key 'rules' given twice");
			goto out_key;
		}
		seen = true;
		if (next_event(ld, &val) < 0)
			goto out_key;
		if (val.type == YAML_SEQUENCE_START_EVENT) {
			if (read_rule_list(ld) < 0)
				goto out_val;
		} else if (!is_null_scalar(&val)) {
			fail_at(ld, val.start_mark, "'rules' must be a list of rules, not %s",
				event_kind(&val));
			goto out_val;
		}
		yaml_event_delete(&val);
		yaml_event_delete(&key);
	}
	yaml_event_delete(&key);
	return 0;

out_val:
	yaml_event_delete(&val);
out_key:
	yaml_event_delete(&key);
	return -1;
}

static int read_stream(struct loader *ld)
{
	yaml_event_t ev;
	int rc = 0;

	if (next_event(ld, &ev) < 0)
		return -1;
	/* STREAM-START. */
	yaml_event_delete(&ev);
	if (next_event(ld, &ev) < 0)
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		/* An empty file, or one with only comments: no rules. */
		yaml_event_delete(&ev);
		return 0;
	}
	/* DOCUMENT-START. */
	yaml_event_delete(&ev);
	if (next_event(ld, &ev) < 0)
		return -1;
	if (ev.type == YAML_SEQUENCE_START_EVENT)
		rc = read_rule_list(ld);
	else if (ev.type == YAML_MAPPING_START_EVENT)
		rc = read_top_mapping(ld);
	else if (!is_null_scalar(&ev))
		rc = fail_at(ld, ev.start_mark,
			     "expected a mapping with 'rules:' or a list of rules, not %s", event_kind(&ev));
	yaml_event_delete(&ev);
	if (rc < 0)
		return -1;
	/* DOCUMENT-END, then the end of the stream or a second document. */
	if (next_event(ld, &ev) < 0)
		return -1;
	yaml_event_delete(&ev);
	if (next_event(ld, &ev) < 0)
		return -1;
	if (ev.type != YAML_STREAM_END_EVENT)
		rc = fail_at(ld, ev.start_mark, "only one YAML document is allowed in a rules file");
	yaml_event_delete(&ev);
	return rc;
}

int ff_rules_load_buffer(struct ff_rules *rs, const char *name, const char *buf, size_t len,
			 char *err, size_t errlen)
{
	struct loader ld = { .name = name, .err = err, .errlen = errlen };
	int rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (!yaml_parser_initialize(&ld.parser)) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	yaml_parser_set_input_string(&ld.parser, (const unsigned char *)buf, len);
	if (read_stream(&ld) < 0)
		goto out;
	if (ld.n > 0 && ff_rules_add_many(rs, ld.rules, ld.n, NULL) < 0) {
		snprintf(err, errlen, "%s: out of memory adding %zu rules", name, ld.n);
		goto out;
	}
	ld.n = 0;
	rc = 0;
out:
	for (size_t i = 0; i < ld.n; i++)
		ff_rule_free(ld.rules[i]);
	free(ld.rules);
	yaml_parser_delete(&ld.parser);
	return rc;
}

int ff_rules_load_file(struct ff_rules *rs, const char *path, char *err, size_t errlen)
{
	size_t len = 0, cap = 4096;
	char *buf;
	FILE *f;
	int rc;

	f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(cap);
	if (buf == NULL)
		goto out_nomem;
	for (;;) {
		size_t got = fread(buf + len, 1, cap - len, f);

		len += got;
		if (got == 0)
			break;
		if (len == cap) {
			char *p = realloc(buf, cap * 2);

			if (p == NULL)
				goto out_nomem;
			buf = p;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	rc = ff_rules_load_buffer(rs, path, buf, len, err, errlen);
	free(buf);
	return rc;

out_nomem:
	snprintf(err, errlen, "%s: out of memory", path);
	free(buf);
	fclose(f);
	return -1;
}
