/* faultfs rules: parsing one rule from key=value text, and the live table
 * that decides, for every filesystem request, which fault (if any) to inject.
 *
 * The table keeps an immutable index (struct ff_snap) that writers rebuild on
 * every change and swap in under a short write lock; readers hold the read
 * lock only while they walk the index.  Per-rule counters live in the rules
 * themselves, which outlive any index that points at them, so a rule's
 * nth/after/count state is not reset when another rule is added or removed.
 *
 * The index exists because a mount may carry many rules while nearly every
 * request matches none of them.  A pattern whose first component is a literal
 * ("venv/x", "tmp/x.py") can only match paths with that first component; one
 * whose last component is a literal ("**" + "/venv", "*" + "/setup.py") can
 * only match paths ending in it.  So each rule is filed under its literal
 * first component, else its literal last component, else in the short list
 * of rules that could match anything, and a request looks at just three
 * lists (five for a rename or link), merged back into table order.
 */
#include "rules.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errnames.h"
#include "strparse.h"

/* Which fields a rule was given, to reject a key given twice and to know
 * which optional conditions apply. */
enum ff_field {
	F_OP         = 1u << 0,
	F_PATH       = 1u << 1,
	F_ERROR      = 1u << 2,
	F_DELAY      = 1u << 3,
	F_MODE_CLEAR = 1u << 4,
	F_SHORT      = 1u << 5,
	F_NTH        = 1u << 6,
	F_AFTER      = 1u << 7,
	F_COUNT      = 1u << 8,
	F_PROB       = 1u << 9,
	F_SEED       = 1u << 10,
	F_UID        = 1u << 11,
	F_GID        = 1u << 12,
	F_COMM       = 1u << 13,
};

#define F_EFFECTS (F_ERROR | F_DELAY | F_MODE_CLEAR | F_SHORT)

/* Requests whose replies carry a mode, where mode_clear can act. */
#define FF_OPS_WITH_MODE (FF_OP_LOOKUP | FF_OP_GETATTR | FF_OP_READDIR | FF_OP_CREATE | \
			  FF_OP_MKDIR | FF_OP_SYMLINK | FF_OP_LINK | FF_OP_MKNOD |     \
			  FF_OP_CHMOD | FF_OP_CHOWN | FF_OP_TRUNCATE | FF_OP_UTIMENS)

/* The longest command name the kernel keeps (TASK_COMM_LEN - 1). */
#define FF_COMM_MAX 15

struct ff_rule {
	unsigned set;           /* enum ff_field bits given so far */
	uint64_t ops;
	char *path;             /* pattern without leading/trailing slashes */
	/* A literal suffix every matching path's last component must end with
	 * ("*.py" gives ".py"): a cheap test that spares most glob matches of
	 * rules the index cannot narrow down.  Empty when there is none. */
	size_t tail_off, tail_len;
	int error;
	uint64_t delay_ns;
	uint32_t mode_clear;
	uint64_t short_len;
	uint64_t nth, after, count;
	double prob;
	uint64_t seed;
	uint32_t uid, gid;
	char comm[FF_COMM_MAX + 1];

	/* Set when the rule enters a table. */
	uint32_t id;
	uint64_t prng_seed;     /* seed, or a random one when none was given */
	_Atomic uint64_t matched;
	_Atomic uint64_t fired;
};

struct field_desc {
	const char *name;
	unsigned bit;
};

static const struct field_desc fields[] = {
	{ "op", F_OP }, { "path", F_PATH }, { "error", F_ERROR }, { "delay", F_DELAY },
	{ "mode_clear", F_MODE_CLEAR }, { "short", F_SHORT }, { "nth", F_NTH },
	{ "after", F_AFTER }, { "count", F_COUNT }, { "prob", F_PROB }, { "seed", F_SEED },
	{ "uid", F_UID }, { "gid", F_GID }, { "comm", F_COMM },
};

#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

static const struct {
	const char *name;
	uint64_t bit;
} op_names[] = {
	{ "lookup", FF_OP_LOOKUP }, { "getattr", FF_OP_GETATTR }, { "readdir", FF_OP_READDIR },
	{ "open", FF_OP_OPEN }, { "open_write", FF_OP_OPEN_WRITE }, { "create", FF_OP_CREATE },
	{ "read", FF_OP_READ }, { "write", FF_OP_WRITE }, { "flush", FF_OP_FLUSH },
	{ "fsync", FF_OP_FSYNC }, { "release", FF_OP_RELEASE }, { "mkdir", FF_OP_MKDIR },
	{ "rmdir", FF_OP_RMDIR }, { "unlink", FF_OP_UNLINK }, { "rename", FF_OP_RENAME },
	{ "link", FF_OP_LINK }, { "symlink", FF_OP_SYMLINK }, { "readlink", FF_OP_READLINK },
	{ "chmod", FF_OP_CHMOD }, { "chown", FF_OP_CHOWN }, { "truncate", FF_OP_TRUNCATE },
	{ "utimens", FF_OP_UTIMENS }, { "access", FF_OP_ACCESS }, { "statfs", FF_OP_STATFS },
	{ "getxattr", FF_OP_GETXATTR }, { "setxattr", FF_OP_SETXATTR },
	{ "listxattr", FF_OP_LISTXATTR }, { "removexattr", FF_OP_REMOVEXATTR },
	{ "fallocate", FF_OP_FALLOCATE }, { "mknod", FF_OP_MKNOD }, { "exec", FF_OP_EXEC },
};

#define N_OPS (sizeof(op_names) / sizeof(op_names[0]))

uint64_t ff_op_from_name(const char *name)
{
	if (name == NULL)
		return 0;
	if (strcmp(name, "all") == 0)
		return FF_OP_ALL;
	if (strcmp(name, "stat") == 0)
		return FF_OP_GETATTR;
	for (size_t i = 0; i < N_OPS; i++)
		if (strcmp(name, op_names[i].name) == 0)
			return op_names[i].bit;
	return 0;
}

const char *ff_op_name(uint64_t bit)
{
	for (size_t i = 0; i < N_OPS; i++)
		if (op_names[i].bit == bit)
			return op_names[i].name;
	return "?";
}

bool ff_rule_key_valid(const char *key)
{
	if (key == NULL)
		return false;
	for (size_t i = 0; i < N_FIELDS; i++)
		if (strcmp(key, fields[i].name) == 0)
			return true;
	return false;
}

static unsigned field_bit(const char *key)
{
	for (size_t i = 0; i < N_FIELDS; i++)
		if (strcmp(key, fields[i].name) == 0)
			return fields[i].bit;
	return 0;
}

struct ff_rule *ff_rule_new(void)
{
	struct ff_rule *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->path = strdup("**");
	if (r->path == NULL) {
		free(r);
		return NULL;
	}
	r->ops = FF_OP_ALL;
	return r;
}

void ff_rule_free(struct ff_rule *r)
{
	if (r == NULL)
		return;
	free(r->path);
	free(r);
}

/* Errors are one line even when they quote a value holding a newline or
 * another control character: those show as '?'. */
static void one_line(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		one_line(err);
	}
	return -1;
}

static int set_ops(struct ff_rule *r, const char *value, char *err, size_t errlen)
{
	uint64_t ops = 0;
	const char *p = value;

	for (;;) {
		const char *end = strchr(p, '|');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		char name[32];
		uint64_t bit;

		/* Spaces around names are forgiven: "read | write" reads well in
		 * a YAML file. */
		while (n > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			return fail(err, errlen, "field 'op': empty operation name in '%s'", value);
		if (n >= sizeof(name))
			return fail(err, errlen, "field 'op': unknown operation '%.*s'", (int)n, p);
		memcpy(name, p, n);
		name[n] = '\0';
		bit = ff_op_from_name(name);
		if (bit == 0)
			return fail(err, errlen, "field 'op': unknown operation '%s'", name);
		ops |= bit;
		if (end == NULL)
			break;
		p = end + 1;
	}
	r->ops = ops;
	return 0;
}

/* Checks a glob for the mistakes that would otherwise silently match
 * nothing: brace alternatives, unclosed brackets and a dangling backslash. */
static int check_glob(const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; value[i] != '\0'; i++) {
		if (value[i] == '\\') {
			if (value[i + 1] == '\0' || value[i + 1] == '/')
				return fail(err, errlen,
					    "field 'path': '%s' ends a component with a lone '\\'", value);
			i++;
		} else if (value[i] == '{') {
			return fail(err, errlen,
				    "field 'path': brace alternatives like '{a,b}' are not supported in '%s' (rule values cannot contain commas); write one rule per alternative, or '\\{' for a literal brace",
				    value);
		} else if (value[i] == '[') {
			size_t j = i + 1;

			if (value[j] == '!' || value[j] == '^')
				j++;
			if (value[j] == ']')
				j++;
			while (value[j] != '\0' && value[j] != '/' && value[j] != ']')
				j++;
			if (value[j] != ']')
				return fail(err, errlen, "field 'path': unclosed '[' in '%s'", value);
			i = j;
		}
	}
	return 0;
}

/* Finds the literal suffix of the pattern's last component.  When that
 * component is not "**" it must match the path's last component, so that
 * component must end with the characters after the last wildcard.  A
 * backslash anywhere gives up (no suffix), which is always safe. */
static void set_tail(struct ff_rule *r)
{
	const char *p = r->path;
	size_t n = strlen(p), start = n, len;

	while (start > 0 && p[start - 1] != '/')
		start--;
	len = n - start;
	r->tail_off = 0;
	r->tail_len = 0;
	if (len == 0 || (len == 2 && p[start] == '*' && p[start + 1] == '*') ||
	    memchr(p + start, '\\', len) != NULL)
		return;
	while (n > start && p[n - 1] != '*' && p[n - 1] != '?' && p[n - 1] != ']')
		n--;
	r->tail_off = n;
	r->tail_len = strlen(p) - n;
}

/* Stores the pattern in canonical form: no leading, trailing or doubled
 * slashes (the matcher ignores them anyway), so that ff_rule_format() shows
 * one spelling for each pattern. */
static int set_path(struct ff_rule *r, const char *value, char *err, size_t errlen)
{
	const char *v = value;
	size_t n = 0;
	char *p;

	if (check_glob(value, err, errlen) < 0)
		return -1;
	p = malloc(strlen(value) + 1);
	if (p == NULL)
		return fail(err, errlen, "field 'path': out of memory");
	while (*v == '/')
		v++;
	for (; *v != '\0'; v++) {
		if (*v == '/' && (v[1] == '/' || v[1] == '\0'))
			continue;
		p[n++] = *v;
	}
	p[n] = '\0';
	/* An expression trims blanks around values, so a pattern that would
	 * start or end with one after the slashes go could not be written
	 * back; "\ " spells a literal leading blank. */
	if (n > 0 && (p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t')) {
		free(p);
		return fail(err, errlen,
			    "field 'path': '%s' starts or ends with a blank (write '\\ ' for a leading one)",
			    value);
	}
	free(r->path);
	r->path = p;
	set_tail(r);
	return 0;
}

/* A whole number for a field; `min` is the smallest value that makes sense
 * and `max` the largest the field can hold. */
static int set_number(const char *key, const char *value, uint64_t min, uint64_t max,
		      uint64_t *out, char *err, size_t errlen)
{
	uint64_t v;

	if (parse_u64(value, &v) < 0) {
		if (errno == ERANGE)
			return fail(err, errlen, "field '%s': '%s' is too large", key, value);
		return fail(err, errlen, "field '%s': '%s' is not a whole number", key, value);
	}
	if (v < min)
		return fail(err, errlen, "field '%s': must be at least %" PRIu64 ", not '%s'",
			    key, min, value);
	if (v > max)
		return fail(err, errlen, "field '%s': '%s' is too large (at most %" PRIu64 ")",
			    key, value, max);
	*out = v;
	return 0;
}

static bool all_digits(const char *s)
{
	return s[0] != '\0' && strspn(s, "0123456789.") == strlen(s);
}

static int set_delay(struct ff_rule *r, const char *value, char *err, size_t errlen)
{
	uint64_t ns;

	/* A bare number is ambiguous (seconds? milliseconds?), so it is
	 * refused rather than guessed. */
	if (all_digits(value))
		return fail(err, errlen,
			    "field 'delay': '%s' needs a unit (ns, us, ms, s, m, h), as in '250ms'", value);
	if (parse_duration_ns(value, 0, &ns) < 0) {
		if (errno == ERANGE)
			return fail(err, errlen, "field 'delay': '%s' is too long", value);
		return fail(err, errlen,
			    "field 'delay': '%s' is not a duration like '250ms' or '2s'", value);
	}
	if (ns == 0)
		return fail(err, errlen, "field 'delay': must be more than zero, not '%s'", value);
	r->delay_ns = ns;
	return 0;
}

int ff_rule_set(struct ff_rule *r, const char *key, const char *value, char *err, size_t errlen)
{
	unsigned bit;
	uint64_t v;

	if (key == NULL || key[0] == '\0')
		return fail(err, errlen, "empty field name");
	bit = field_bit(key);
	if (bit == 0)
		return fail(err, errlen,
			    "unknown field '%s' (known: op, path, error, delay, mode_clear, short, nth, after, count, prob, seed, uid, gid, comm)",
			    key);
	if (r->set & bit)
		return fail(err, errlen, "field '%s': given twice", key);
	if (value == NULL || value[0] == '\0')
		return fail(err, errlen, "field '%s': empty value", key);
	/* Every rule must survive ff_rule_format() and ff_rule_parse(), and an
	 * expression splits on commas and trims blanks, so a value from a rule
	 * file may hold neither. */
	if (strchr(value, ',') != NULL) {
		if (bit == F_PATH && strchr(value, '{') != NULL)
			return fail(err, errlen,
				    "field 'path': brace alternatives like '{a,b}' are not supported in '%s' (rule values cannot contain commas); write one rule per alternative",
				    value);
		return fail(err, errlen, "field '%s': '%s' contains a comma, which rule values cannot hold",
			    key, value);
	}
	if (value[0] == ' ' || value[0] == '\t' || value[strlen(value) - 1] == ' ' ||
	    value[strlen(value) - 1] == '\t')
		return fail(err, errlen, "field '%s': '%s' starts or ends with a blank", key, value);

	switch (bit) {
	case F_OP:
		if (set_ops(r, value, err, errlen) < 0)
			return -1;
		break;
	case F_PATH:
		if (set_path(r, value, err, errlen) < 0)
			return -1;
		break;
	case F_ERROR: {
		int e = errno_from_name(value);

		if (e < 0) {
			if (parse_u64(value, &v) == 0 || errno == ERANGE)
				return fail(err, errlen,
					    "field 'error': errno number '%s' is out of range (1..4095)", value);
			return fail(err, errlen, "field 'error': unknown errno name '%s'", value);
		}
		r->error = e;
		break;
	}
	case F_DELAY:
		if (set_delay(r, value, err, errlen) < 0)
			return -1;
		break;
	case F_MODE_CLEAR:
		if (parse_mode(value, &r->mode_clear) < 0)
			return fail(err, errlen,
				    "field 'mode_clear': '%s' is not an octal mode like '0111'", value);
		if (r->mode_clear == 0)
			return fail(err, errlen, "field 'mode_clear': clears nothing ('%s')", value);
		break;
	case F_SHORT:
		if (parse_size(value, &v) < 0)
			return fail(err, errlen,
				    "field 'short': '%s' is not a byte count like '100' or '4K'", value);
		if (v == 0)
			return fail(err, errlen, "field 'short': must be at least 1 byte, not '%s'", value);
		r->short_len = v;
		break;
	case F_NTH:
		if (set_number(key, value, 1, UINT64_MAX, &r->nth, err, errlen) < 0)
			return -1;
		break;
	case F_AFTER:
		if (set_number(key, value, 0, UINT64_MAX, &r->after, err, errlen) < 0)
			return -1;
		break;
	case F_COUNT:
		if (set_number(key, value, 1, UINT64_MAX, &r->count, err, errlen) < 0)
			return -1;
		break;
	case F_PROB:
		if (parse_probability(value, &r->prob) < 0) {
			if (errno == ERANGE)
				return fail(err, errlen, "field 'prob': '%s' is not between 0 and 1", value);
			return fail(err, errlen,
				    "field 'prob': '%s' is not a probability like '0.25'", value);
		}
		break;
	case F_SEED:
		if (set_number(key, value, 0, UINT64_MAX, &r->seed, err, errlen) < 0)
			return -1;
		break;
	case F_UID:
	case F_GID:
		if (set_number(key, value, 0, UINT32_MAX, &v, err, errlen) < 0)
			return -1;
		if (bit == F_UID)
			r->uid = (uint32_t)v;
		else
			r->gid = (uint32_t)v;
		break;
	case F_COMM:
		if (strlen(value) > FF_COMM_MAX)
			return fail(err, errlen,
				    "field 'comm': '%s' is longer than %d characters, so no process can have it (the kernel truncates command names)",
				    value, FF_COMM_MAX);
		strcpy(r->comm, value);
		break;
	}
	r->set |= bit;
	return 0;
}

int ff_rule_validate(const struct ff_rule *r, char *err, size_t errlen)
{
	if ((r->set & F_EFFECTS) == 0)
		return fail(err, errlen,
			    "rule has no effect: give at least one of error=, delay=, mode_clear=, short=");
	if ((r->set & F_SEED) && !(r->set & F_PROB))
		return fail(err, errlen, "field 'seed': only makes sense together with prob=");
	if ((r->set & F_NTH) && (r->set & F_AFTER))
		return fail(err, errlen, "field 'nth': cannot be combined with after= (nth already picks one call)");
	if ((r->set & F_NTH) && (r->set & F_COUNT))
		return fail(err, errlen, "field 'nth': cannot be combined with count= (nth fires at most once)");
	if ((r->set & F_SHORT) && !(r->ops & (FF_OP_READ | FF_OP_WRITE)))
		return fail(err, errlen, "field 'short': applies only to op=read or op=write");
	if ((r->set & F_MODE_CLEAR) && !(r->ops & FF_OPS_WITH_MODE))
		return fail(err, errlen,
			    "field 'mode_clear': applies only to ops that report modes (lookup, getattr, readdir, create, mkdir, ...)");
	return 0;
}

static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

struct ff_rule *ff_rule_parse(const char *expr, char *err, size_t errlen)
{
	struct ff_rule *r;
	char *copy, *item, *next;

	if (expr == NULL) {
		fail(err, errlen, "empty rule expression");
		return NULL;
	}
	copy = strdup(expr);
	r = ff_rule_new();
	if (copy == NULL || r == NULL) {
		fail(err, errlen, "out of memory");
		goto out_free;
	}
	if (trim(copy)[0] == '\0') {
		fail(err, errlen, "empty rule expression");
		goto out_free;
	}
	for (item = copy; item != NULL; item = next) {
		char *eq, *key, *value;

		next = strchr(item, ',');
		if (next != NULL)
			*next++ = '\0';
		eq = strchr(item, '=');
		if (eq == NULL) {
			/* "path={a,b}" fails earlier, on "path={a": ff_rule_set
			 * refuses every unescaped brace and says why. */
			if (trim(item)[0] == '\0')
				fail(err, errlen, "empty item in rule expression '%s'", expr);
			else
				fail(err, errlen, "'%s' is not key=value", trim(item));
			goto out_free;
		}
		*eq = '\0';
		key = trim(item);
		value = trim(eq + 1);
		if (ff_rule_set(r, key, value, err, errlen) < 0)
			goto out_free;
	}
	if (ff_rule_validate(r, err, errlen) < 0)
		goto out_free;
	free(copy);
	return r;

out_free:
	ff_rule_free(r);
	free(copy);
	return NULL;
}

/* A small growable string for ff_rule_format. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		size_t cap = b->cap * 2 + (size_t)n + 1;
		char *s = realloc(b->s, cap);

		if (s == NULL) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
		va_start(ap, fmt);
		vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

static void format_duration(struct sbuf *b, uint64_t ns)
{
	static const struct { const char *unit; uint64_t mult; } units[] = {
		{ "h", 3600000000000ULL }, { "m", 60000000000ULL }, { "s", 1000000000ULL },
		{ "ms", 1000000ULL }, { "us", 1000ULL },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ns % units[i].mult == 0) {
			sb_printf(b, "%" PRIu64 "%s", ns / units[i].mult, units[i].unit);
			return;
		}
	sb_printf(b, "%" PRIu64 "ns", ns);
}

char *ff_rule_format(const struct ff_rule *r)
{
	struct sbuf b = { .s = malloc(128), .cap = 128 };

	if (b.s == NULL)
		return NULL;
	b.s[0] = '\0';
	if (r->ops == FF_OP_ALL) {
		sb_printf(&b, "op=all");
	} else {
		const char *sep = "op=";

		for (size_t i = 0; i < N_OPS; i++)
			if (r->ops & op_names[i].bit) {
				sb_printf(&b, "%s%s", sep, op_names[i].name);
				sep = "|";
			}
	}
	/* The root pattern is empty, which a value may not be; "/" says it. */
	sb_printf(&b, ",path=%s", r->path[0] != '\0' ? r->path : "/");
	if (r->set & F_UID)
		sb_printf(&b, ",uid=%" PRIu32, r->uid);
	if (r->set & F_GID)
		sb_printf(&b, ",gid=%" PRIu32, r->gid);
	if (r->set & F_COMM)
		sb_printf(&b, ",comm=%s", r->comm);
	if (r->set & F_NTH)
		sb_printf(&b, ",nth=%" PRIu64, r->nth);
	if (r->set & F_AFTER)
		sb_printf(&b, ",after=%" PRIu64, r->after);
	if (r->set & F_COUNT)
		sb_printf(&b, ",count=%" PRIu64, r->count);
	if (r->set & F_PROB) {
		char p[32];
		size_t n;

		/* parse_probability keeps twelve decimals, so twelve printed
		 * decimals read back as the same double. */
		snprintf(p, sizeof(p), "%.12f", r->prob);
		n = strlen(p);
		while (n > 0 && p[n - 1] == '0')
			p[--n] = '\0';
		if (n > 0 && p[n - 1] == '.')
			p[--n] = '\0';
		sb_printf(&b, ",prob=%s", p);
	}
	if (r->set & F_SEED)
		sb_printf(&b, ",seed=%" PRIu64, r->seed);
	if (r->set & F_ERROR) {
		const char *name = errno_name(r->error);

		if (name != NULL)
			sb_printf(&b, ",error=%s", name);
		else
			sb_printf(&b, ",error=%d", r->error);
	}
	if (r->set & F_DELAY) {
		sb_printf(&b, ",delay=");
		format_duration(&b, r->delay_ns);
	}
	if (r->set & F_MODE_CLEAR)
		sb_printf(&b, ",mode_clear=%04" PRIo32, r->mode_clear);
	if (r->set & F_SHORT)
		sb_printf(&b, ",short=%" PRIu64, r->short_len);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* ---- The index ---------------------------------------------------------- */

/* The rules filed under one literal component, in table order. */
struct ff_bucket {
	const char *key;        /* points into a rule's path; NULL for a free slot */
	size_t len;
	uint32_t *idx;
	uint32_t n, cap;
};

struct ff_hash {
	struct ff_bucket *slots;
	size_t mask;            /* slot count - 1; the count is a power of two */
	size_t used;            /* keys present; 0 lets a look-up skip hashing */
};

/* An immutable view of the table; replaced, never changed, once published. */
struct ff_snap {
	struct ff_rule **rules;
	uint32_t n;
	struct ff_hash first, last;
	uint32_t *wild;         /* rules with no literal first or last component */
	uint32_t nwild;
};

struct ff_rules {
	pthread_rwlock_t lock;          /* readers hold it while using cur */
	pthread_mutex_t write_lock;     /* serializes add, remove and clear */
	struct ff_snap *cur;
	_Atomic uint64_t ops_mask;      /* union of every rule's op set */
	_Atomic uint64_t generation;
	uint32_t next_id;               /* guarded by write_lock */
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct ff_bucket *hash_find(const struct ff_hash *h, const char *key, size_t len)
{
	size_t i;

	if (h->used == 0)
		return NULL;
	for (i = hash_bytes(key, len) & h->mask;; i = (i + 1) & h->mask) {
		struct ff_bucket *b = &h->slots[i];

		if (b->key == NULL)
			return NULL;
		if (b->len == len && memcmp(b->key, key, len) == 0)
			return b;
	}
}

static int push_idx(uint32_t **a, uint32_t *n, uint32_t *cap, uint32_t v)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 4;
		uint32_t *p = realloc(*a, c * sizeof(**a));

		if (p == NULL)
			return -1;
		*a = p;
		*cap = c;
	}
	(*a)[(*n)++] = v;
	return 0;
}

/* The table is sized for every rule up front (at most one key per rule), so
 * it never fills and never needs to grow. */
static int hash_init(struct ff_hash *h, uint32_t nrules)
{
	size_t cap = 8;

	while (cap < (size_t)nrules * 2)
		cap *= 2;
	h->slots = calloc(cap, sizeof(*h->slots));
	h->mask = cap - 1;
	return h->slots != NULL ? 0 : -1;
}

static int hash_add(struct ff_hash *h, const char *key, size_t len, uint32_t idx)
{
	size_t i;

	for (i = hash_bytes(key, len) & h->mask;; i = (i + 1) & h->mask) {
		struct ff_bucket *b = &h->slots[i];

		if (b->key == NULL) {
			b->key = key;
			b->len = len;
			h->used++;
			break;
		}
		if (b->len == len && memcmp(b->key, key, len) == 0)
			break;
	}
	return push_idx(&h->slots[i].idx, &h->slots[i].n, &h->slots[i].cap, idx);
}

static void hash_free(struct ff_hash *h)
{
	if (h->slots == NULL)
		return;
	for (size_t i = 0; i <= h->mask; i++)
		free(h->slots[i].idx);
	free(h->slots);
}

/* First and last components of a path or pattern, slashes skipped. */
static void first_component(const char *s, const char **start, size_t *len)
{
	while (*s == '/')
		s++;
	*start = s;
	*len = strcspn(s, "/");
}

static void last_component(const char *s, const char **start, size_t *len)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	*len = 0;
	while (n > 0 && s[n - 1] != '/') {
		n--;
		(*len)++;
	}
	*start = s + n;
}

static bool is_literal(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == '\\')
			return false;
	return true;
}

static void snap_free(struct ff_snap *s)
{
	if (s == NULL)
		return;
	hash_free(&s->first);
	hash_free(&s->last);
	free(s->wild);
	free(s->rules);
	free(s);
}

/* Builds an index over rules[0..n); takes a copy of the array, not the
 * rules. */
static struct ff_snap *snap_build(struct ff_rule *const *rules, uint32_t n)
{
	struct ff_snap *s = calloc(1, sizeof(*s));
	uint32_t wild_cap = 0;

	if (s == NULL)
		return NULL;
	s->rules = malloc((n ? n : 1) * sizeof(*s->rules));
	if (s->rules == NULL || hash_init(&s->first, n) < 0 || hash_init(&s->last, n) < 0)
		goto out_free;
	if (n > 0)
		memcpy(s->rules, rules, n * sizeof(*rules));
	s->n = n;
	for (uint32_t i = 0; i < n; i++) {
		const char *key;
		size_t len;
		int rc;

		first_component(rules[i]->path, &key, &len);
		if (is_literal(key, len)) {
			rc = hash_add(&s->first, key, len, i);
		} else {
			last_component(rules[i]->path, &key, &len);
			if (is_literal(key, len))
				rc = hash_add(&s->last, key, len, i);
			else
				rc = push_idx(&s->wild, &s->nwild, &wild_cap, i);
		}
		if (rc < 0)
			goto out_free;
	}
	return s;

out_free:
	snap_free(s);
	return NULL;
}

static uint64_t ops_union(const struct ff_snap *s)
{
	uint64_t m = 0;

	for (uint32_t i = 0; i < s->n; i++)
		m |= s->rules[i]->ops;
	return m;
}

struct ff_rules *ff_rules_new(void)
{
	struct ff_rules *rs = calloc(1, sizeof(*rs));
	pthread_rwlockattr_t attr;

	if (rs == NULL)
		return NULL;
	rs->cur = snap_build(NULL, 0);
	if (rs->cur == NULL)
		goto out_free;
	/* Evaluations never stop; a writer waiting for a gap between readers
	 * would wait forever under glibc's default reader preference. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (pthread_rwlock_init(&rs->lock, &attr) != 0) {
		pthread_rwlockattr_destroy(&attr);
		goto out_snap;
	}
	pthread_rwlockattr_destroy(&attr);
	if (pthread_mutex_init(&rs->write_lock, NULL) != 0)
		goto out_rwlock;
	rs->next_id = 1;
	return rs;

out_rwlock:
	pthread_rwlock_destroy(&rs->lock);
out_snap:
	snap_free(rs->cur);
out_free:
	free(rs);
	return NULL;
}

void ff_rules_free(struct ff_rules *rs)
{
	if (rs == NULL)
		return;
	for (uint32_t i = 0; i < rs->cur->n; i++)
		ff_rule_free(rs->cur->rules[i]);
	snap_free(rs->cur);
	pthread_mutex_destroy(&rs->write_lock);
	pthread_rwlock_destroy(&rs->lock);
	free(rs);
}

/* Publishes a new index; the caller holds write_lock and frees the returned
 * old index (and any rules only it referenced) afterwards.  Once the write
 * lock is released no reader can still see the old index. */
static struct ff_snap *publish(struct ff_rules *rs, struct ff_snap *s)
{
	struct ff_snap *old;

	pthread_rwlock_wrlock(&rs->lock);
	old = rs->cur;
	rs->cur = s;
	pthread_rwlock_unlock(&rs->lock);
	atomic_store(&rs->ops_mask, ops_union(s));
	atomic_fetch_add(&rs->generation, 1);
	return old;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int ff_rules_add_many(struct ff_rules *rs, struct ff_rule **rules, size_t n, uint32_t *ids)
{
	struct ff_rule **all;
	struct ff_snap *s, *old;
	uint32_t have;

	/* A rule that only clears mode bits and names no op acts where modes
	 * are reported.  With op=all it would also fire on reads, writes and
	 * removals, where it does nothing, and by first-match-wins hide every
	 * later rule for the same paths. */
	for (size_t i = 0; i < n; i++)
		if (rules[i] != NULL && !(rules[i]->set & F_OP) && (rules[i]->set & F_EFFECTS) == F_MODE_CLEAR)
			rules[i]->ops = FF_OPS_WITH_MODE;
	pthread_mutex_lock(&rs->write_lock);
	have = rs->cur->n;
	if (n > UINT32_MAX - have || n > (size_t)(UINT32_MAX - rs->next_id))
		goto out_fail;
	all = malloc((have + n ? have + n : 1) * sizeof(*all));
	if (all == NULL)
		goto out_fail;
	if (have > 0)
		memcpy(all, rs->cur->rules, have * sizeof(*all));
	if (n > 0)
		memcpy(all + have, rules, n * sizeof(*all));
	s = snap_build(all, (uint32_t)(have + n));
	free(all);
	if (s == NULL)
		goto out_fail;
	for (size_t i = 0; i < n; i++) {
		struct ff_rule *r = rules[i];
		struct timespec ts;

		r->id = rs->next_id++;
		atomic_store(&r->matched, 0);
		atomic_store(&r->fired, 0);
		if (r->set & F_SEED) {
			r->prng_seed = r->seed;
		} else {
			/* No seed asked for: any sequence will do, but two rules
			 * should not share one. */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			r->prng_seed = splitmix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
						  ((uint64_t)(uintptr_t)r << 7) ^ r->id);
		}
		if (ids != NULL)
			ids[i] = r->id;
	}
	old = publish(rs, s);
	pthread_mutex_unlock(&rs->write_lock);
	snap_free(old);
	return 0;

out_fail:
	pthread_mutex_unlock(&rs->write_lock);
	return -1;
}

uint32_t ff_rules_add(struct ff_rules *rs, struct ff_rule *r)
{
	uint32_t id;

	if (r == NULL)
		return 0;
	if (ff_rules_add_many(rs, &r, 1, &id) < 0) {
		ff_rule_free(r);
		return 0;
	}
	return id;
}

int ff_rules_remove(struct ff_rules *rs, uint32_t id)
{
	struct ff_snap *cur, *s, *old;
	struct ff_rule **rest, *gone = NULL;
	uint32_t n = 0;

	pthread_mutex_lock(&rs->write_lock);
	cur = rs->cur;
	rest = malloc((cur->n ? cur->n : 1) * sizeof(*rest));
	if (rest == NULL)
		goto out_fail;
	for (uint32_t i = 0; i < cur->n; i++) {
		if (cur->rules[i]->id == id)
			gone = cur->rules[i];
		else
			rest[n++] = cur->rules[i];
	}
	if (gone == NULL) {
		free(rest);
		goto out_fail;
	}
	s = snap_build(rest, n);
	free(rest);
	if (s == NULL)
		goto out_fail;
	old = publish(rs, s);
	pthread_mutex_unlock(&rs->write_lock);
	snap_free(old);
	ff_rule_free(gone);
	return 0;

out_fail:
	pthread_mutex_unlock(&rs->write_lock);
	return -1;
}

void ff_rules_clear(struct ff_rules *rs)
{
	struct ff_snap *s, *old;

	/* An empty index needs only a few small allocations; should even that
	 * fail, the rules stay, which is the safe way to fail. */
	s = snap_build(NULL, 0);
	if (s == NULL)
		return;
	pthread_mutex_lock(&rs->write_lock);
	old = publish(rs, s);
	pthread_mutex_unlock(&rs->write_lock);
	for (uint32_t i = 0; i < old->n; i++)
		ff_rule_free(old->rules[i]);
	snap_free(old);
}

uint64_t ff_rules_generation(const struct ff_rules *rs)
{
	return atomic_load(&((struct ff_rules *)rs)->generation);
}

bool ff_rules_may_touch(const struct ff_rules *rs, uint64_t ops)
{
	return (atomic_load_explicit(&((struct ff_rules *)rs)->ops_mask, memory_order_acquire) & ops) != 0;
}

/* ---- Evaluation --------------------------------------------------------- */

/* One sorted list of rule positions, consumed front to back. */
struct cand_list {
	const uint32_t *idx;
	uint32_t n, pos;
};

/* Up to five candidate lists: first and last components of path and path2,
 * and the wildcard list. */
struct cands {
	struct cand_list l[5];
	int nl;
};

static void cands_add(struct cands *c, const uint32_t *idx, uint32_t n)
{
	if (n == 0)
		return;
	c->l[c->nl].idx = idx;
	c->l[c->nl].n = n;
	c->l[c->nl].pos = 0;
	c->nl++;
}

static void cands_add_path(struct cands *c, const struct ff_snap *s, const char *path)
{
	const struct ff_bucket *b;
	const char *key;
	size_t len;

	first_component(path, &key, &len);
	b = hash_find(&s->first, key, len);
	if (b != NULL)
		cands_add(c, b->idx, b->n);
	last_component(path, &key, &len);
	b = hash_find(&s->last, key, len);
	if (b != NULL)
		cands_add(c, b->idx, b->n);
}

/* Merges the lists back into table order; a rule listed twice (under path
 * and path2) comes out once.  Returns false when all are used up. */
static bool cands_next(struct cands *c, uint32_t *out)
{
	uint32_t best = UINT32_MAX;
	bool any = false;

	for (int i = 0; i < c->nl; i++)
		if (c->l[i].pos < c->l[i].n && c->l[i].idx[c->l[i].pos] <= best) {
			best = c->l[i].idx[c->l[i].pos];
			any = true;
		}
	if (!any)
		return false;
	for (int i = 0; i < c->nl; i++)
		if (c->l[i].pos < c->l[i].n && c->l[i].idx[c->l[i].pos] == best)
			c->l[i].pos++;
	*out = best;
	return true;
}

static void cands_init(struct cands *c, const struct ff_snap *s, const char *path, const char *path2)
{
	c->nl = 0;
	cands_add_path(c, s, path);
	if (path2 != NULL)
		cands_add_path(c, s, path2);
	cands_add(c, s->wild, s->nwild);
}

/* Decides whether a rule whose op, path and caller match acts on this
 * request, advancing its counters.  The k-th matching request draws the k-th
 * number of the rule's splitmix64 sequence, so a seeded rule makes the same
 * decisions for the same sequence of requests, whatever other rules do. */
/* The last component of a path, for the suffix test. */
struct last_comp {
	const char *s;
	size_t len;
};

static bool tail_ok(const struct ff_rule *r, const struct last_comp *lc)
{
	return r->tail_len == 0 ||
	       (lc->len >= r->tail_len &&
		memcmp(lc->s + lc->len - r->tail_len, r->path + r->tail_off, r->tail_len) == 0);
}

/* Whether the rule's glob matches path (or path2), suffix test first. */
static bool rule_path_matches(const struct ff_rule *r, const char *path, const struct last_comp *lc,
			      const char *path2, const struct last_comp *lc2)
{
	if (tail_ok(r, lc) && ff_glob_match(r->path, path))
		return true;
	return path2 != NULL && tail_ok(r, lc2) && ff_glob_match(r->path, path2);
}

static bool rule_fires(struct ff_rule *r)
{
	uint64_t k = atomic_fetch_add(&r->matched, 1) + 1;

	if ((r->set & F_NTH) && k != r->nth)
		return false;
	if ((r->set & F_AFTER) && k <= r->after)
		return false;
	if (r->set & F_PROB) {
		uint64_t x = splitmix64(r->prng_seed + k * 0x9e3779b97f4a7c15ULL);

		if ((double)(x >> 11) * 0x1p-53 >= r->prob)
			return false;
	}
	if (r->set & F_COUNT) {
		uint64_t f = atomic_load(&r->fired);

		do {
			if (f >= r->count)
				return false;
		} while (!atomic_compare_exchange_weak(&r->fired, &f, f + 1));
		return true;
	}
	atomic_fetch_add(&r->fired, 1);
	return true;
}

bool ff_rules_eval(struct ff_rules *rs, uint64_t ops, const char *path, const char *path2,
		   const struct ff_caller *caller, struct ff_verdict *v)
{
	const char *comm = NULL;
	bool comm_fetched = false, fired = false;
	struct last_comp lc, lc2 = { NULL, 0 };
	struct ff_snap *s;
	struct cands c;
	uint32_t i;

	if (!ff_rules_may_touch(rs, ops))
		return false;
	if (path == NULL)
		path = "";
	last_component(path, &lc.s, &lc.len);
	if (path2 != NULL)
		last_component(path2, &lc2.s, &lc2.len);
	pthread_rwlock_rdlock(&rs->lock);
	s = rs->cur;
	cands_init(&c, s, path, path2);
	while (!fired && cands_next(&c, &i)) {
		struct ff_rule *r = s->rules[i];

		if (!(r->ops & ops))
			continue;
		if ((r->set & (F_UID | F_GID | F_COMM)) && caller == NULL)
			continue;
		if ((r->set & F_UID) && caller->uid != r->uid)
			continue;
		if ((r->set & F_GID) && caller->gid != r->gid)
			continue;
		if (!rule_path_matches(r, path, &lc, path2, &lc2))
			continue;
		if (r->set & F_COMM) {
			/* Fetched at most once per request, and only now that
			 * everything cheaper has matched. */
			if (!comm_fetched) {
				comm = caller->get_comm != NULL ? caller->get_comm(caller->arg) : NULL;
				comm_fetched = true;
			}
			if (comm == NULL || strcmp(comm, r->comm) != 0)
				continue;
		}
		if (!rule_fires(r))
			continue;
		v->rule_id = r->id;
		v->error = r->error;
		v->delay_ns = r->delay_ns;
		v->mode_clear = r->mode_clear;
		v->short_len = r->short_len;
		fired = true;
	}
	pthread_rwlock_unlock(&rs->lock);
	return fired;
}

bool ff_rules_path_matched(struct ff_rules *rs, const char *path)
{
	bool hit = false;
	struct last_comp lc;
	struct ff_snap *s;
	struct cands c;
	uint32_t i;

	if (path == NULL)
		path = "";
	last_component(path, &lc.s, &lc.len);
	pthread_rwlock_rdlock(&rs->lock);
	s = rs->cur;
	cands_init(&c, s, path, NULL);
	while (!hit && cands_next(&c, &i))
		hit = rule_path_matches(s->rules[i], path, &lc, NULL, NULL);
	pthread_rwlock_unlock(&rs->lock);
	return hit;
}

int ff_rules_snapshot(struct ff_rules *rs, struct ff_rule_info **out)
{
	struct ff_rule_info *info;
	struct ff_snap *s;
	int n;

	pthread_rwlock_rdlock(&rs->lock);
	s = rs->cur;
	n = (int)s->n;
	/* No rules, no array: callers that free only what they were given
	 * a count for must not leak. */
	if (n == 0) {
		pthread_rwlock_unlock(&rs->lock);
		*out = NULL;
		return 0;
	}
	info = calloc((size_t)n, sizeof(*info));
	if (info == NULL)
		goto out_fail;
	for (int i = 0; i < n; i++) {
		struct ff_rule *r = s->rules[i];

		info[i].id = r->id;
		info[i].expr = ff_rule_format(r);
		if (info[i].expr == NULL) {
			ff_rules_info_free(info, i);
			goto out_fail;
		}
		info[i].matched = atomic_load(&r->matched);
		info[i].fired = atomic_load(&r->fired);
	}
	pthread_rwlock_unlock(&rs->lock);
	*out = info;
	return n;

out_fail:
	pthread_rwlock_unlock(&rs->lock);
	return -1;
}

void ff_rules_info_free(struct ff_rule_info *info, int n)
{
	if (info == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(info[i].expr);
	free(info);
}
