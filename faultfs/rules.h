/* faultfs rules: what to inject, where, and when.
 *
 * A rule names operations (op=), paths (path=), conditions (nth=, after=,
 * count=, prob=/seed=, uid=, gid=, comm=) and effects (error=, delay=,
 * mode_clear=, short=).  Rules live in an ordered table that can change
 * while the filesystem is mounted; for every operation the first rule whose
 * op, path and conditions all hold decides the outcome, and later rules are
 * not consulted.
 *
 * "First match wins", precisely: rules are tried in table order (the order
 * they were added).  A rule *matches* a request when its op set meets the
 * request's ops, its glob matches path or path2, and its uid=, gid= and comm=
 * conditions hold.  A matching rule then consults its counting conditions
 * (nth=, after=, count=, prob=); if they say yes the rule *fires*, fills the
 * verdict and evaluation stops.  If they say no, the rule has still seen the
 * request (its counters advanced) and evaluation goes on to the next rule.
 * A rule that fires applies all its effects; an effect that means nothing for
 * the request at hand (short= on a getattr) is reported in the verdict and
 * left to the caller to ignore, so give such rules a narrow op= set.
 *
 * Conditions:
 *   nth=N     fires only on the Nth matching request (1-based);
 *   after=N   fires only on matching requests after the first N;
 *   count=N   fires at most N times;
 *   prob=P    fires with probability P (0..1); with seed=S the k-th matching
 *             request always gets the same draw (splitmix64 of S and k), so
 *             the same sequence of requests gives the same decisions;
 *   uid=, gid= the caller's ids; comm= the caller's command name, exactly
 *             (at most 15 characters, as in /proc/PID/comm).
 * nth= cannot be combined with after= or count=; seed= needs prob=; a rule
 * needs at least one effect; short= needs read or write in its op set and
 * mode_clear= an op whose reply carries a mode (lookup, getattr, readdir,
 * create, mkdir, ...).  Without seed=, a prob= rule draws from a seed of its
 * own, different on every run.
 *
 * Values are strict: "12abc", empty values, a field given twice, unknown
 * fields and out-of-range numbers are errors naming the field and the value.
 * delay= needs a unit ("250ms", "2s"); a bare number is refused.  Rule
 * expressions are comma-separated key=value lists, so no value can contain a
 * comma, and brace alternatives ("{a,b}") in globs are refused with a
 * message saying so; a value cannot start or end with a blank either.  The
 * same holds for rule files, so every rule has an expression that
 * ff_rule_format() writes and ff_rule_parse() reads back unchanged.
 *
 * Thread safety: every function taking a struct ff_rules may be called from
 * any number of threads at once.  ff_rules_eval() is the hot path: it is
 * lock-free when the operation is in no rule's op set, and otherwise costs two
 * hash look-ups plus the glob matches of the few rules indexed under the
 * path's first or last component (plus rules whose first and last components
 * are both wildcards).  It holds a writer-preferring read lock only while it
 * walks an immutable index; add, remove and clear build the new index
 * outside the lock and take the write lock just to swap it in.  Counters
 * (matched, fired, nth, count, prob) are atomics in the rules themselves and
 * survive changes to other rules.
 */
#ifndef FAULTFS_RULES_H
#define FAULTFS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Operation bits.  One filesystem request may carry several: an open for
 * exec is FF_OP_OPEN|FF_OP_EXEC, an access(X_OK) is FF_OP_ACCESS|FF_OP_EXEC,
 * a setattr that changes mode and size is FF_OP_CHMOD|FF_OP_TRUNCATE.  A rule
 * matches a request when their bit sets intersect. */
enum ff_op {
	FF_OP_LOOKUP      = 1ULL << 0,
	FF_OP_GETATTR     = 1ULL << 1,   /* name "getattr", alias "stat" */
	FF_OP_READDIR     = 1ULL << 2,   /* opendir, readdir, releasedir */
	FF_OP_OPEN        = 1ULL << 3,   /* every open of a file */
	FF_OP_OPEN_WRITE  = 1ULL << 4,   /* "open_write": open with O_WRONLY, O_RDWR or O_TRUNC */
	FF_OP_CREATE      = 1ULL << 5,
	FF_OP_READ        = 1ULL << 6,
	FF_OP_WRITE       = 1ULL << 7,
	FF_OP_FLUSH       = 1ULL << 8,
	FF_OP_FSYNC       = 1ULL << 9,   /* fsync and fsyncdir */
	FF_OP_RELEASE     = 1ULL << 10,
	FF_OP_MKDIR       = 1ULL << 11,
	FF_OP_RMDIR       = 1ULL << 12,
	FF_OP_UNLINK      = 1ULL << 13,
	FF_OP_RENAME      = 1ULL << 14,
	FF_OP_LINK        = 1ULL << 15,
	FF_OP_SYMLINK     = 1ULL << 16,
	FF_OP_READLINK    = 1ULL << 17,
	FF_OP_CHMOD       = 1ULL << 18,
	FF_OP_CHOWN       = 1ULL << 19,
	FF_OP_TRUNCATE    = 1ULL << 20,
	FF_OP_UTIMENS     = 1ULL << 21,
	FF_OP_ACCESS      = 1ULL << 22,
	FF_OP_STATFS      = 1ULL << 23,
	FF_OP_GETXATTR    = 1ULL << 24,
	FF_OP_SETXATTR    = 1ULL << 25,
	FF_OP_LISTXATTR   = 1ULL << 26,
	FF_OP_REMOVEXATTR = 1ULL << 27,
	FF_OP_FALLOCATE   = 1ULL << 28,
	FF_OP_MKNOD       = 1ULL << 29,
	FF_OP_EXEC        = 1ULL << 30,  /* open with __FMODE_EXEC, access(X_OK) */
	FF_OP_ALL         = (1ULL << 31) - 1,
};

/* Returns the bit for one op name ("rmdir", "stat", "all"), or 0 if unknown. */
uint64_t ff_op_from_name(const char *name);
/* Returns the canonical name of a single op bit ("rmdir"), or "?" */
const char *ff_op_name(uint64_t bit);

/* Who is asking.  comm is fetched only when a rule with a comm= condition
 * has matched everything else (op, path, uid, gid), and at most once per
 * ff_rules_eval(): get_comm(arg) returns the caller's command name (or NULL
 * if unknown, and then no comm= rule matches).  It runs while the table's
 * read lock is held, so it must not call back into the same table. */
struct ff_caller {
	uint32_t uid;
	uint32_t gid;
	uint32_t pid;
	const char *(*get_comm)(void *arg);
	void *arg;
};

/* What the first firing rule asks for.  A rule may combine effects, for
 * example a delay followed by an error. */
struct ff_verdict {
	uint32_t rule_id;     /* id of the rule that fired */
	int error;            /* positive errno to fail with, or 0 */
	uint64_t delay_ns;    /* sleep this long before answering, or 0 */
	uint32_t mode_clear;  /* bits to clear from reported modes, or 0 */
	uint64_t short_len;   /* cap on bytes per read/write, or 0 for none */
};

/* One parsed rule, not yet in a table. */
struct ff_rule;

/* True if key is one of the field names ff_rule_set() knows. */
bool ff_rule_key_valid(const char *key);

/* Creates an empty rule (op=all, path=**, no effect). */
struct ff_rule *ff_rule_new(void);
void ff_rule_free(struct ff_rule *r);

/* Sets one field from its text, exactly as written on the command line or
 * in a rules file ("op" "rmdir|rename", "delay" "250ms").  Returns 0, or -1
 * with a one-line reason in err naming the field and what is wrong
 * ("field 'error': unknown errno name 'EBUZY'").  Setting a field twice is
 * an error. */
int ff_rule_set(struct ff_rule *r, const char *key, const char *value, char *err, size_t errlen);

/* Checks that a finished rule makes sense: at least one effect, seed only
 * with prob, nth not combined with after/count, and so on.  Returns 0 or -1
 * with the reason in err. */
int ff_rule_validate(const struct ff_rule *r, char *err, size_t errlen);

/* Parses a whole expression "op=rmdir|rename,path=/venv,error=EBUSY" into a
 * new validated rule.  Returns NULL with the reason in err. */
struct ff_rule *ff_rule_parse(const char *expr, char *err, size_t errlen);

/* Canonical expression for a rule; the caller frees the string. */
char *ff_rule_format(const struct ff_rule *r);

/* The live, ordered table of rules. */
struct ff_rules;

struct ff_rules *ff_rules_new(void);
void ff_rules_free(struct ff_rules *rs);

/* Appends a rule (taking ownership) and returns its id (ids start at 1 and
 * are never reused within one table), or 0 when r is NULL or memory ran out
 * (the rule is freed then). */
uint32_t ff_rules_add(struct ff_rules *rs, struct ff_rule *r);
/* Appends n rules at once: evaluations see all of them or none.  On success
 * takes ownership, stores their ids in ids[] (if not NULL), bumps the
 * generation once and returns 0; on failure returns -1 and the caller still
 * owns the rules. */
int ff_rules_add_many(struct ff_rules *rs, struct ff_rule **rules, size_t n, uint32_t *ids);
/* Removes the rule with this id; returns 0 or -1 if there is none. */
int ff_rules_remove(struct ff_rules *rs, uint32_t id);
void ff_rules_clear(struct ff_rules *rs);
/* Incremented by every add, add_many, successful remove and clear. */
uint64_t ff_rules_generation(const struct ff_rules *rs);

/* Decides what happens to one request.  path is relative to the mount root,
 * without a leading slash ("" is the root itself); path2 is the second path
 * of a rename or link, or NULL.  Returns true and fills *v when a rule fires;
 * a rule fires when its op set meets `ops`, its glob matches path (or
 * path2), and all its conditions hold.  Counting conditions (nth, after,
 * count, prob) advance only for requests that match op, path, uid, gid and
 * comm. */
bool ff_rules_eval(struct ff_rules *rs, uint64_t ops, const char *path, const char *path2,
                   const struct ff_caller *caller, struct ff_verdict *v);

/* Fast pre-check: true if some rule's op set meets `ops`.  Lets callers skip
 * building a path for requests no rule could touch. */
bool ff_rules_may_touch(const struct ff_rules *rs, uint64_t ops);

/* True if some rule's glob matches path, whatever its ops and conditions.
 * The filesystem gives such paths zero cache timeouts, so faults that change
 * from one call to the next are not hidden by the kernel's caches. */
bool ff_rules_path_matched(struct ff_rules *rs, const char *path);

/* A snapshot of one rule for `ctl list` and `ctl stats`. */
struct ff_rule_info {
	uint32_t id;
	char *expr;          /* canonical expression; freed by ff_rules_info_free */
	uint64_t matched;    /* requests that matched op, path, uid, gid and comm */
	uint64_t fired;      /* requests the rule acted on */
};

/* Fills a newly allocated array with one entry per rule, in table order.
 * Returns the count, or -1 on allocation failure.  With no rules it returns
 * 0 and sets *out to NULL, allocating nothing. */
int ff_rules_snapshot(struct ff_rules *rs, struct ff_rule_info **out);
void ff_rules_info_free(struct ff_rule_info *info, int n);

/* Matches a glob pattern against a mount-relative path.  `*`, `?` and `[..]`
 * stay within one path component; `**` as a whole component matches zero or
 * more components.  A leading or trailing '/' in the pattern is ignored, so
 * "/venv" and "venv" are the same pattern.  Details:
 *  - "tmp" then a "**" component matches "tmp" itself and everything below it (the
 *    "**" matches zero or more components), "**" + "/venv" matches "venv" and "a/b/venv", and "**"
 *    matches every path including the root "";
 *  - the empty pattern (and "/") matches only the root "";
 *  - `*` matches dot files too ("*.py" matches ".hidden.py");
 *  - `[abc]`, `[a-z]`, `[!a-z]` and `[^a-z]` are character classes; a `]`
 *    right after `[` (or after the negation) is a member;
 *  - a backslash makes the next character literal ("\*" is a star);
 *  - empty components (doubled slashes) are ignored on both sides. */
bool ff_glob_match(const char *pattern, const char *path);

/* Loads rules from a YAML file into rs, in file order (format: see the
 * comment at the top of rulefile.c).  On error returns -1 and writes one
 * line into err naming the file, line, column and field
 * ("rules.yaml:4:12: rule 2: field 'error': unknown errno name 'EBUZY'");
 * no rule from the file is added then.  A file with no rules (empty, only
 * comments, or "rules: []") loads fine and adds nothing. */
int ff_rules_load_file(struct ff_rules *rs, const char *path, char *err, size_t errlen);

/* Same, from a buffer (for tests and fuzzing); name is used in messages. */
int ff_rules_load_buffer(struct ff_rules *rs, const char *name, const char *buf, size_t len,
                         char *err, size_t errlen);

#endif
