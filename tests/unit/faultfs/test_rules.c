/* Tests for faultfs rules: parsing, formatting, strictness, and the live
 * table's matching, conditions, ordering and thread safety. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rules.h"

/* Parses expr, failing the test with the parser's reason if it is refused. */
static struct ff_rule *parse_ok(const char *expr)
{
	char err[512] = "";
	struct ff_rule *r = ff_rule_parse(expr, err, sizeof(err));

	if (r == NULL)
		fail_msg("'%s' refused: %s", expr, err);
	return r;
}

static uint32_t add(struct ff_rules *rs, const char *expr)
{
	uint32_t id = ff_rules_add(rs, parse_ok(expr));

	assert_int_not_equal(id, 0);
	return id;
}

/* Returns the id of the rule that fires, or 0. */
static uint32_t eval2(struct ff_rules *rs, uint64_t ops, const char *path, const char *path2,
		      const struct ff_caller *c)
{
	struct ff_verdict v;

	memset(&v, 0, sizeof(v));
	if (!ff_rules_eval(rs, ops, path, path2, c, &v))
		return 0;
	assert_int_not_equal(v.rule_id, 0);
	return v.rule_id;
}

static uint32_t eval(struct ff_rules *rs, uint64_t ops, const char *path)
{
	struct ff_caller c = { .uid = 1000, .gid = 1000, .pid = 1 };

	return eval2(rs, ops, path, NULL, &c);
}

/* A rule that only clears mode bits, with no op=, must not fire on the
 * operations that report no mode, where it would shadow later rules. */
static void test_mode_clear_default_ops(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t bits = add(rs, "path=**,mode_clear=0111");
	uint32_t busy = add(rs, "op=unlink|read,path=**,error=EBUSY");

	assert_int_equal(eval(rs, FF_OP_GETATTR, "a/run.sh"), bits);
	assert_int_equal(eval(rs, FF_OP_LOOKUP, "a/run.sh"), bits);
	assert_int_equal(eval(rs, FF_OP_UNLINK, "a/run.sh"), busy);
	assert_int_equal(eval(rs, FF_OP_READ, "a/run.sh"), busy);
	/* An explicit op=all is kept as written. */
	ff_rules_clear(rs);
	bits = add(rs, "op=all,path=**,mode_clear=0111");
	add(rs, "op=unlink,path=**,error=EBUSY");
	assert_int_equal(eval(rs, FF_OP_UNLINK, "a/run.sh"), bits);
	ff_rules_free(rs);
}

static void test_op_names(void **state)
{
	for (int i = 0; i < 31; i++) {
		uint64_t bit = 1ULL << i;
		const char *name = ff_op_name(bit);

		assert_string_not_equal(name, "?");
		assert_int_equal(ff_op_from_name(name), bit);
	}
	assert_int_equal(ff_op_from_name("stat"), FF_OP_GETATTR);
	assert_int_equal(ff_op_from_name("all"), FF_OP_ALL);
	assert_int_equal(ff_op_from_name("open_write"), FF_OP_OPEN_WRITE);
	assert_int_equal(ff_op_from_name("exec"), FF_OP_EXEC);
	assert_int_equal(ff_op_from_name("rmdirr"), 0);
	assert_int_equal(ff_op_from_name(""), 0);
	assert_int_equal(ff_op_from_name(NULL), 0);
	assert_string_equal(ff_op_name(0), "?");
	assert_string_equal(ff_op_name(FF_OP_READ | FF_OP_WRITE), "?");
}

/* Parses expr and checks its canonical form, and that the canonical form
 * parses back to itself. */
static void check_format(const char *expr, const char *canonical)
{
	struct ff_rule *r = parse_ok(expr), *r2;
	char *s = ff_rule_format(r), *s2;

	assert_non_null(s);
	assert_string_equal(s, canonical);
	r2 = parse_ok(s);
	s2 = ff_rule_format(r2);
	assert_string_equal(s2, s);
	free(s2);
	free(s);
	ff_rule_free(r2);
	ff_rule_free(r);
}

static void test_format_round_trip(void **state)
{
	check_format("op=rmdir|rename,path=/venv,error=EBUSY",
		     "op=rmdir|rename,path=venv,error=EBUSY");
	check_format("error=EIO", "op=all,path=**,error=EIO");
	check_format(" op = read | write , path = data/** , delay = 250ms ",
		     "op=read|write,path=data/**,delay=250ms");
	check_format("op=read|write,path=data/**,uid=1000,gid=100,comm=python3,after=2,count=5,"
		     "prob=0.25,seed=42,error=EIO,delay=1.5s,short=100",
		     "op=read|write,path=data/**,uid=1000,gid=100,comm=python3,after=2,count=5,"
		     "prob=0.25,seed=42,error=EIO,delay=1500ms,short=100");
	check_format("op=stat|lookup,path=/,nth=3,mode_clear=111",
		     "op=lookup|getattr,path=/,nth=3,mode_clear=0111");
	check_format("op=write,short=4K", "op=write,path=**,short=4096");
	check_format("error=200", "op=all,path=**,error=200");
	check_format("error=13", "op=all,path=**,error=EACCES");
	check_format("delay=2s", "op=all,path=**,delay=2s");
	check_format("delay=120s", "op=all,path=**,delay=2m");
	check_format("delay=1h", "op=all,path=**,delay=1h");
	check_format("delay=7us", "op=all,path=**,delay=7us");
	check_format("delay=1001ns", "op=all,path=**,delay=1001ns");
	check_format("prob=1,error=EIO", "op=all,path=**,prob=1,error=EIO");
	check_format("prob=0,error=EIO", "op=all,path=**,prob=0,error=EIO");
	check_format("prob=0.123456789012,error=EIO",
		     "op=all,path=**,prob=0.123456789012,error=EIO");
	check_format("path=\\{x\\},error=EIO", "op=all,path=\\{x\\},error=EIO");
	check_format("path=//a//b///c//,error=EIO", "op=all,path=a/b/c,error=EIO");
	check_format("path=///,error=EIO", "op=all,path=/,error=EIO");
	check_format("path=/\\ x/y,error=EIO", "op=all,path=\\ x/y,error=EIO");
	check_format("op=exec,path=**,error=EACCES", "op=exec,path=**,error=EACCES");
	check_format("op=all,uid=0,error=EPERM", "op=all,path=**,uid=0,error=EPERM");
}

static void test_set_fields(void **state)
{
	struct ff_rule *r = ff_rule_new();
	char err[256];
	char *s;

	assert_int_equal(ff_rule_set(r, "nth", "3", err, sizeof(err)), 0);
	assert_int_equal(ff_rule_set(r, "error", "ENOSPC", err, sizeof(err)), 0);
	assert_int_equal(ff_rule_validate(r, err, sizeof(err)), 0);
	assert_int_equal(ff_rule_set(r, "nth", "4", err, sizeof(err)), -1);
	assert_string_equal(err, "field 'nth': given twice");
	s = ff_rule_format(r);
	assert_string_equal(s, "op=all,path=**,nth=3,error=ENOSPC");
	free(s);
	ff_rule_free(r);
	ff_rule_free(NULL);

	assert_true(ff_rule_key_valid("mode_clear"));
	assert_false(ff_rule_key_valid("mode"));
	assert_false(ff_rule_key_valid(NULL));
}

struct bad_expr {
	const char *expr;
	const char *reason;
};

static void test_strictness(void **state)
{
	static const struct bad_expr bad[] = {
		{ "nth=12abc,error=EIO", "field 'nth': '12abc' is not a whole number" },
		{ "nth=,error=EIO", "field 'nth': empty value" },
		{ "nth= ,error=EIO", "field 'nth': empty value" },
		{ "nth=0,error=EIO", "field 'nth': must be at least 1, not '0'" },
		{ "nth=99999999999999999999999,error=EIO", "field 'nth': '99999999999999999999999' is too large" },
		{ "after=-1,error=EIO", "field 'after': '-1' is not a whole number" },
		{ "count=0,error=EIO", "field 'count': must be at least 1, not '0'" },
		{ "count=1.5,error=EIO", "field 'count': '1.5' is not a whole number" },
		{ "error=EIO,error=EIO", "field 'error': given twice" },
		{ "error=EIO,path=a,path=b", "field 'path': given twice" },
		{ "bogus=1,error=EIO", "unknown field 'bogus'" },
		{ "prob=1.5,error=EIO", "field 'prob': '1.5' is not between 0 and 1" },
		{ "prob=-0.5,error=EIO", "field 'prob': '-0.5' is not a probability" },
		{ "prob=half,error=EIO", "field 'prob': 'half' is not a probability" },
		{ "seed=3,error=EIO", "field 'seed': only makes sense together with prob=" },
		{ "seed=x,prob=0.5,error=EIO", "field 'seed': 'x' is not a whole number" },
		{ "op=rmdirr,error=EIO", "field 'op': unknown operation 'rmdirr'" },
		{ "op=read||write,error=EIO", "field 'op': empty operation name in 'read||write'" },
		{ "op=read|,error=EIO", "field 'op': empty operation name" },
		{ "error=EBUZY", "field 'error': unknown errno name 'EBUZY'" },
		{ "error=0", "field 'error': errno number '0' is out of range" },
		{ "error=99999", "field 'error': errno number '99999' is out of range" },
		{ "error=ebusy", "field 'error': unknown errno name 'ebusy'" },
		{ "delay=250", "field 'delay': '250' needs a unit" },
		{ "delay=1.5", "field 'delay': '1.5' needs a unit" },
		{ "delay=fast", "field 'delay': 'fast' is not a duration" },
		{ "delay=250 ms", "field 'delay': '250 ms' is not a duration" },
		{ "delay=-1s", "field 'delay': '-1s' is not a duration" },
		{ "delay=0ms", "field 'delay': must be more than zero, not '0ms'" },
		{ "delay=99999999999999999999s", "field 'delay': '99999999999999999999s' is too long" },
		{ "mode_clear=0999", "field 'mode_clear': '0999' is not an octal mode" },
		{ "mode_clear=0", "field 'mode_clear': clears nothing ('0')" },
		{ "mode_clear=rwx", "field 'mode_clear': 'rwx' is not an octal mode" },
		{ "op=read,short=0", "field 'short': must be at least 1 byte, not '0'" },
		{ "op=read,short=lots", "field 'short': 'lots' is not a byte count" },
		{ "op=getattr,short=10", "field 'short': applies only to op=read or op=write" },
		{ "op=read,mode_clear=0111", "field 'mode_clear': applies only to ops that report modes" },
		{ "nth=2,after=1,error=EIO", "field 'nth': cannot be combined with after=" },
		{ "nth=2,count=1,error=EIO", "field 'nth': cannot be combined with count=" },
		{ "uid=-1,error=EIO", "field 'uid': '-1' is not a whole number" },
		{ "uid=4294967296,error=EIO", "field 'uid': '4294967296' is too large" },
		{ "gid=root,error=EIO", "field 'gid': 'root' is not a whole number" },
		{ "comm=averyveryverylongname,error=EIO", "field 'comm': 'averyveryverylongname' is longer than 15 characters" },
		{ "path={a,b},error=EIO", "field 'path': brace alternatives like '{a,b}' are not supported" },
		{ "path=a[b,error=EIO", "field 'path': unclosed '[' in 'a[b'" },
		{ "path=a\\,error=EIO", "field 'path': 'a\\' ends a component with a lone '\\'" },
		{ "path=,error=EIO", "field 'path': empty value" },
		{ "path=/ //ab,error=EIO", "field 'path': '/ //ab' starts or ends with a blank" },
		{ "path=a /,error=EIO", "field 'path': 'a /' starts or ends with a blank" },
		{ "op=read", "rule has no effect" },
		{ "op=read,path=x", "rule has no effect" },
		{ "", "empty rule expression" },
		{ "   ", "empty rule expression" },
		{ "error=EIO,,path=a", "empty item in rule expression" },
		{ "error=EIO,", "empty item in rule expression" },
		{ "error=EIO,venv", "'venv' is not key=value" },
		{ "=x,error=EIO", "empty field name" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[512] = "";
		struct ff_rule *r = ff_rule_parse(bad[i].expr, err, sizeof(err));

		if (r != NULL)
			fail_msg("'%s' was accepted", bad[i].expr);
		if (strstr(err, bad[i].reason) != NULL)
			continue;
		fail_msg("'%s': got \"%s\", want \"%s\"", bad[i].expr, err, bad[i].reason);
	}
	assert_null(ff_rule_parse(NULL, NULL, 0));
	{
		/* Errors stay on one line whatever the value holds. */
		char err[256];

		assert_null(ff_rule_parse("error=E\nIO", err, sizeof(err)));
		assert_string_equal(err, "field 'error': unknown errno name 'E?IO'");
	}
}

static void test_first_match_wins(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "path=a/**,error=EACCES");
	uint32_t b = add(rs, "path=a/b,error=EBUSY");
	struct ff_verdict v;

	assert_int_equal(eval(rs, FF_OP_OPEN, "a/b"), a);
	memset(&v, 0, sizeof(v));
	assert_true(ff_rules_eval(rs, FF_OP_OPEN, "a/b", NULL, NULL, &v));
	assert_int_equal(v.error, 13);
	assert_int_equal(ff_rules_remove(rs, a), 0);
	assert_int_equal(eval(rs, FF_OP_OPEN, "a/b"), b);
	assert_int_equal(eval(rs, FF_OP_OPEN, "a/c"), 0);
	ff_rules_free(rs);
}

static void test_nonfiring_rule_passes_on(void **state)
{
	/* A rule that matches but whose condition says no lets the next rule
	 * decide, and still counts the request. */
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "path=x,nth=2,error=EIO");
	uint32_t b = add(rs, "path=x,error=EBUSY");
	struct ff_rule_info *info;

	assert_int_equal(eval(rs, FF_OP_READ, "x"), b);
	assert_int_equal(eval(rs, FF_OP_READ, "x"), a);
	assert_int_equal(eval(rs, FF_OP_READ, "x"), b);
	assert_int_equal(ff_rules_snapshot(rs, &info), 2);
	assert_int_equal(info[0].matched, 3);
	assert_int_equal(info[0].fired, 1);
	/* The second rule saw only the requests the first let through. */
	assert_int_equal(info[1].matched, 2);
	assert_int_equal(info[1].fired, 2);
	ff_rules_info_free(info, 2);
	ff_rules_free(rs);
}

static void test_op_sets(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "op=rmdir|rename,path=venv,error=EBUSY");

	assert_int_equal(eval(rs, FF_OP_RMDIR, "venv"), a);
	assert_int_equal(eval(rs, FF_OP_RENAME, "venv"), a);
	assert_int_equal(eval(rs, FF_OP_UNLINK, "venv"), 0);
	/* A request carrying several bits matches on any of them. */
	assert_int_equal(eval(rs, FF_OP_UNLINK | FF_OP_RMDIR, "venv"), a);
	assert_int_equal(eval(rs, 0, "venv"), 0);
	ff_rules_free(rs);

	rs = ff_rules_new();
	a = add(rs, "op=stat,error=EIO");
	assert_int_equal(eval(rs, FF_OP_GETATTR, "q"), a);
	assert_int_equal(eval(rs, FF_OP_LOOKUP, "q"), 0);
	ff_rules_free(rs);
}

static void test_nth(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "path=f,nth=3,error=EIO");

	for (int i = 1; i <= 6; i++)
		assert_int_equal(eval(rs, FF_OP_READ, "f"), i == 3 ? a : 0);
	ff_rules_free(rs);
}

static void test_after(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "path=f,after=2,error=EIO");

	for (int i = 1; i <= 6; i++)
		assert_int_equal(eval(rs, FF_OP_READ, "f"), i > 2 ? a : 0);
	ff_rules_free(rs);
}

static void test_count(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "path=f,count=2,error=EIO");

	for (int i = 1; i <= 6; i++)
		assert_int_equal(eval(rs, FF_OP_READ, "f"), i <= 2 ? a : 0);
	ff_rules_free(rs);
}

static void test_after_and_count(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "path=f,after=1,count=2,error=EIO");

	for (int i = 1; i <= 6; i++)
		assert_int_equal(eval(rs, FF_OP_READ, "f"), (i == 2 || i == 3) ? a : 0);
	ff_rules_free(rs);
}

static void test_counters_only_on_match(void **state)
{
	/* Requests for other paths, other ops or other users do not count
	 * towards nth. */
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "op=read,path=f,uid=1000,nth=2,error=EIO");
	struct ff_caller root = { .uid = 0 };

	for (int i = 0; i < 5; i++) {
		assert_int_equal(eval(rs, FF_OP_READ, "g"), 0);
		assert_int_equal(eval(rs, FF_OP_WRITE, "f"), 0);
		assert_int_equal(eval2(rs, FF_OP_READ, "f", NULL, &root), 0);
	}
	assert_int_equal(eval(rs, FF_OP_READ, "f"), 0);
	assert_int_equal(eval(rs, FF_OP_READ, "f"), a);
	assert_int_equal(eval(rs, FF_OP_READ, "f"), 0);
	ff_rules_free(rs);
}

/* Records which of n requests a table fires on. */
static void prob_run(const char *expr, char *fired, int n)
{
	struct ff_rules *rs = ff_rules_new();

	add(rs, expr);
	for (int i = 0; i < n; i++)
		fired[i] = eval(rs, FF_OP_READ, "f") != 0 ? '1' : '0';
	fired[n] = '\0';
	ff_rules_free(rs);
}

static void test_prob_seed(void **state)
{
	enum { N = 400 };
	char a[N + 1], b[N + 1], c[N + 1], d[N + 1];
	int ones = 0;

	prob_run("path=f,prob=0.5,seed=7,error=EIO", a, N);
	prob_run("path=f,prob=0.5,seed=7,error=EIO", b, N);
	prob_run("path=f,prob=0.5,seed=8,error=EIO", c, N);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	for (int i = 0; i < N; i++)
		ones += a[i] == '1';
	/* Fixed seed, so a fixed count; the bounds only say "about half". */
	assert_in_range(ones, N * 35 / 100, N * 65 / 100);

	prob_run("path=f,prob=0,error=EIO", d, N);
	assert_null(strchr(d, '1'));
	prob_run("path=f,prob=1,error=EIO", d, N);
	assert_null(strchr(d, '0'));
}

static void test_prob_sequence_unaffected_by_other_rules(void **state)
{
	/* The k-th matching request gets the k-th draw, whatever other rules
	 * exist or whatever non-matching requests come in between. */
	enum { N = 100 };
	char a[N + 1], b[N + 1];
	struct ff_rules *rs = ff_rules_new();

	prob_run("path=f,prob=0.3,seed=99,error=EIO", a, N);
	add(rs, "path=g,error=EBUSY");
	add(rs, "path=f,prob=0.3,seed=99,error=EIO");
	for (int i = 0; i < N; i++) {
		assert_int_equal(eval(rs, FF_OP_READ, "g"), 1);
		b[i] = eval(rs, FF_OP_READ, "f") != 0 ? '1' : '0';
	}
	b[N] = '\0';
	assert_string_equal(a, b);
	ff_rules_free(rs);
}

static void test_uid_gid(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t u = add(rs, "uid=1000,error=EPERM");
	uint32_t g = add(rs, "gid=50,error=EIO");
	struct ff_caller c1000 = { .uid = 1000, .gid = 1000 };
	struct ff_caller c0g50 = { .uid = 0, .gid = 50 };
	struct ff_caller c0 = { .uid = 0, .gid = 0 };

	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c1000), u);
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c0g50), g);
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c0), 0);
	/* Unknown caller: conditions on it cannot hold. */
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, NULL), 0);
	ff_rules_free(rs);
}

struct comm_src {
	const char *comm;
	int calls;
};

static const char *get_comm(void *arg)
{
	struct comm_src *s = arg;

	s->calls++;
	return s->comm;
}

static void test_comm_fetched_lazily(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	struct comm_src src = { .comm = "python3" };
	struct ff_caller c = { .uid = 1, .gid = 1, .get_comm = get_comm, .arg = &src };
	uint32_t a, b;

	/* No comm rule: never fetched. */
	add(rs, "path=q,error=EIO");
	assert_int_equal(eval2(rs, FF_OP_READ, "q", NULL, &c), 1);
	assert_int_equal(src.calls, 0);

	a = add(rs, "op=read,path=x,comm=bash,error=EIO");
	b = add(rs, "op=read,path=x,comm=python3,error=EBUSY");
	/* Op or path do not match: still not fetched. */
	assert_int_equal(eval2(rs, FF_OP_WRITE, "x", NULL, &c), 0);
	assert_int_equal(eval2(rs, FF_OP_READ, "y", NULL, &c), 0);
	assert_int_equal(src.calls, 0);
	/* Two comm rules are consulted; the name is fetched once. */
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c), b);
	assert_int_equal(src.calls, 1);
	src.comm = "bash";
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c), a);
	assert_int_equal(src.calls, 2);
	/* Exact match only. */
	src.comm = "python";
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c), 0);
	/* Unknown name, or no way to ask: no match. */
	src.comm = NULL;
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c), 0);
	c.get_comm = NULL;
	assert_int_equal(eval2(rs, FF_OP_READ, "x", NULL, &c), 0);
	ff_rules_free(rs);
}

static void test_remove_clear_generation_ids(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a, b, c, d;

	assert_int_equal(ff_rules_generation(rs), 0);
	a = add(rs, "path=a,error=EIO");
	b = add(rs, "path=b,error=EIO");
	c = add(rs, "path=c,error=EIO");
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
	assert_int_equal(c, 3);
	assert_int_equal(ff_rules_generation(rs), 3);
	assert_int_equal(ff_rules_remove(rs, c), 0);
	assert_int_equal(ff_rules_generation(rs), 4);
	assert_int_equal(ff_rules_remove(rs, c), -1);
	assert_int_equal(ff_rules_remove(rs, 99), -1);
	assert_int_equal(ff_rules_generation(rs), 4);
	assert_int_equal(eval(rs, FF_OP_READ, "c"), 0);
	/* Ids are never reused, not even after the last rule goes. */
	d = add(rs, "path=d,error=EIO");
	assert_int_equal(d, 4);
	ff_rules_clear(rs);
	assert_int_equal(ff_rules_generation(rs), 6);
	assert_int_equal(eval(rs, FF_OP_READ, "a"), 0);
	assert_int_equal(add(rs, "path=a,error=EIO"), 5);
	assert_int_equal(eval(rs, FF_OP_READ, "a"), 5);
	ff_rules_free(rs);
}

static void test_add_many(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	struct ff_rule *r[3] = {
		parse_ok("path=a,error=EIO"), parse_ok("path=b,error=EIO"), parse_ok("path=c,error=EIO"),
	};
	uint32_t ids[3];

	add(rs, "path=z,error=EIO");
	assert_int_equal(ff_rules_add_many(rs, r, 3, ids), 0);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[2], 4);
	assert_int_equal(ff_rules_generation(rs), 2);
	assert_int_equal(eval(rs, FF_OP_READ, "c"), 4);
	assert_int_equal(ff_rules_add_many(rs, NULL, 0, NULL), 0);
	/* A failed parse handed straight to add is refused, not a crash. */
	assert_int_equal(ff_rules_add(rs, ff_rule_parse("bogus", NULL, 0)), 0);
	ff_rules_free(rs);
}

static void test_may_touch(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a;

	assert_false(ff_rules_may_touch(rs, FF_OP_ALL));
	a = add(rs, "op=rmdir|rename,path=venv,error=EBUSY");
	assert_true(ff_rules_may_touch(rs, FF_OP_RMDIR));
	assert_true(ff_rules_may_touch(rs, FF_OP_READ | FF_OP_RENAME));
	assert_false(ff_rules_may_touch(rs, FF_OP_READ));
	add(rs, "op=read,delay=1ms");
	assert_true(ff_rules_may_touch(rs, FF_OP_READ));
	ff_rules_remove(rs, a);
	assert_false(ff_rules_may_touch(rs, FF_OP_RMDIR));
	ff_rules_clear(rs);
	assert_false(ff_rules_may_touch(rs, FF_OP_ALL));
	ff_rules_free(rs);
}

static void test_path_matched(void **state)
{
	struct ff_rules *rs = ff_rules_new();

	assert_false(ff_rules_path_matched(rs, "x"));
	add(rs, "op=getattr,path=venv/**,nth=5,mode_clear=0111");
	assert_true(ff_rules_path_matched(rs, "venv"));
	assert_true(ff_rules_path_matched(rs, "venv/bin/python"));
	assert_false(ff_rules_path_matched(rs, "src/venv"));
	assert_false(ff_rules_path_matched(rs, ""));
	add(rs, "op=getattr,path=/,error=EIO");
	assert_true(ff_rules_path_matched(rs, ""));
	assert_true(ff_rules_path_matched(rs, NULL));
	add(rs, "path=**/*.py,error=EIO");
	assert_true(ff_rules_path_matched(rs, "a/b/c.py"));
	assert_false(ff_rules_path_matched(rs, "a/b/c.sh"));
	ff_rules_free(rs);
}

static void test_rename_path2(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	uint32_t a = add(rs, "op=rename|link,path=venv,error=EBUSY");
	struct ff_caller c = { 0 };
	struct ff_rule_info *info;

	assert_int_equal(eval2(rs, FF_OP_RENAME, "venv", "old", &c), a);
	assert_int_equal(eval2(rs, FF_OP_RENAME, "tmp", "venv", &c), a);
	assert_int_equal(eval2(rs, FF_OP_LINK, "x", "venv", &c), a);
	assert_int_equal(eval2(rs, FF_OP_RENAME, "tmp", "other", &c), 0);
	/* A rename within one name counts once. */
	assert_int_equal(eval2(rs, FF_OP_RENAME, "venv", "venv", &c), a);
	assert_int_equal(ff_rules_snapshot(rs, &info), 1);
	assert_int_equal(info[0].matched, 4);
	ff_rules_info_free(info, 1);
	ff_rules_free(rs);
}

static void test_snapshot(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	struct ff_rule_info *info;
	int n;

	info = (struct ff_rule_info *)&n;
	assert_int_equal(ff_rules_snapshot(rs, &info), 0);
	assert_null(info);
	add(rs, "op=rmdir,path=/venv,error=EBUSY");
	add(rs, "op=read,path=data/**,count=1,delay=250ms");
	eval(rs, FF_OP_READ, "data/x");
	eval(rs, FF_OP_READ, "data/y");
	eval(rs, FF_OP_RMDIR, "venv");
	n = ff_rules_snapshot(rs, &info);
	assert_int_equal(n, 2);
	assert_int_equal(info[0].id, 1);
	assert_string_equal(info[0].expr, "op=rmdir,path=venv,error=EBUSY");
	assert_int_equal(info[0].matched, 1);
	assert_int_equal(info[0].fired, 1);
	assert_int_equal(info[1].id, 2);
	assert_string_equal(info[1].expr, "op=read,path=data/**,count=1,delay=250ms");
	assert_int_equal(info[1].matched, 2);
	assert_int_equal(info[1].fired, 1);
	ff_rules_info_free(info, n);
	ff_rules_info_free(NULL, 0);
	ff_rules_free(rs);
	ff_rules_free(NULL);
}

static void test_verdict_fields(void **state)
{
	struct ff_rules *rs = ff_rules_new();
	struct ff_verdict v;

	add(rs, "op=read|getattr,path=f,error=EIO,delay=2s,short=10,mode_clear=0111");
	memset(&v, 0xff, sizeof(v));
	assert_true(ff_rules_eval(rs, FF_OP_READ, "f", NULL, NULL, &v));
	assert_int_equal(v.rule_id, 1);
	assert_int_equal(v.error, 5);
	assert_int_equal(v.delay_ns, 2000000000ULL);
	assert_int_equal(v.short_len, 10);
	assert_int_equal(v.mode_clear, 0111);
	ff_rules_clear(rs);
	add(rs, "op=getattr,path=f,mode_clear=0111");
	memset(&v, 0xff, sizeof(v));
	assert_true(ff_rules_eval(rs, FF_OP_GETATTR, "f", NULL, NULL, &v));
	assert_int_equal(v.error, 0);
	assert_int_equal(v.delay_ns, 0);
	assert_int_equal(v.short_len, 0);
	ff_rules_free(rs);
}

/* The index must never change an answer: compare against a plain scan of
 * every rule in order over random patterns and paths. */
static void test_index_matches_linear_scan(void **state)
{
	static const char *const comps[] = { "a", "b", "venv", "*", "**", "?", "x*", "[ab]", "",
					     "*b", "a*b", "*[ab]b", "?b", "\\*b", "*.py" };
	static const char *const pcomps[] = { "a", "b", "venv", "x1", "c", "ab", "xb", "*b", "x.py" };
	enum { NRULES = 80, NPATHS = 2000 };
	char pats[NRULES][64];
	uint64_t rnd = 12345;
	struct ff_rules *rs = ff_rules_new();

	for (int i = 0; i < NRULES; i++) {
		char expr[128];
		int n;

		pats[i][0] = '\0';
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		n = (int)(rnd >> 60) % 4 + 1;
		for (int j = 0; j < n; j++) {
			rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
			if (j > 0)
				strcat(pats[i], "/");
			strcat(pats[i], comps[(rnd >> 33) % (sizeof(comps) / sizeof(comps[0]))]);
		}
		if (strcmp(pats[i], "") == 0 || strspn(pats[i], "/") == strlen(pats[i]))
			snprintf(expr, sizeof(expr), "path=/,error=EIO");
		else
			snprintf(expr, sizeof(expr), "path=%.63s,error=EIO", pats[i]);
		add(rs, expr);
	}
	for (int k = 0; k < NPATHS; k++) {
		char path[64] = "";
		int n, want = 0;

		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		n = (int)((rnd >> 40) % 5);
		for (int j = 0; j < n; j++) {
			rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
			if (j > 0)
				strcat(path, "/");
			strcat(path, pcomps[(rnd >> 33) % (sizeof(pcomps) / sizeof(pcomps[0]))]);
		}
		for (int i = 0; i < NRULES && want == 0; i++)
			if (ff_glob_match(pats[i], path))
				want = i + 1;
		if ((int)eval(rs, FF_OP_READ, path) != want)
			fail_msg("path '%s': index says rule %u, scan says %d", path,
				 eval(rs, FF_OP_READ, path), want);
		assert_int_equal(ff_rules_path_matched(rs, path), want != 0);
	}
	ff_rules_free(rs);
}

struct smoke {
	struct ff_rules *rs;
	_Atomic int stop;
	_Atomic uint64_t fired;
};

static void *smoke_reader(void *arg)
{
	static const char *const paths[] = { "venv", "a/b/venv", "data/x", "src/main.py", "" };
	struct smoke *s = arg;
	struct ff_caller c = { .uid = 1, .gid = 1 };
	uint64_t n = 0;

	while (!s->stop) {
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			struct ff_verdict v;

			if (ff_rules_eval(s->rs, FF_OP_RMDIR | FF_OP_READ, paths[i], NULL, &c, &v))
				n++;
			ff_rules_path_matched(s->rs, paths[i]);
		}
	}
	s->fired += n;
	return NULL;
}

static void test_thread_smoke(void **state)
{
	struct smoke s = { .rs = ff_rules_new() };
	pthread_t t[4];
	uint32_t keep = add(s.rs, "op=rmdir,path=**/venv,error=EBUSY");

	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, smoke_reader, &s), 0);
	for (int i = 0; i < 300; i++) {
		char expr[64];
		uint32_t id;
		struct ff_rule_info *info;
		int n;

		snprintf(expr, sizeof(expr), "op=read,path=data/%d,count=3,error=EIO", i);
		id = add(s.rs, expr);
		add(s.rs, "op=read,path=data/**,prob=0.5,error=EIO");
		n = ff_rules_snapshot(s.rs, &info);
		assert_true(n >= 2);
		ff_rules_info_free(info, n);
		assert_int_equal(ff_rules_remove(s.rs, id), 0);
		if (i % 50 == 49) {
			ff_rules_clear(s.rs);
			keep = add(s.rs, "op=rmdir,path=**/venv,error=EBUSY");
		}
	}
	s.stop = 1;
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(keep > 0);
	assert_true(s.fired > 0);
	ff_rules_free(s.rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op_names),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_set_fields),
		cmocka_unit_test(test_strictness),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_nonfiring_rule_passes_on),
		cmocka_unit_test(test_op_sets),
		cmocka_unit_test(test_nth),
		cmocka_unit_test(test_after),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_after_and_count),
		cmocka_unit_test(test_counters_only_on_match),
		cmocka_unit_test(test_prob_seed),
		cmocka_unit_test(test_prob_sequence_unaffected_by_other_rules),
		cmocka_unit_test(test_uid_gid),
		cmocka_unit_test(test_comm_fetched_lazily),
		cmocka_unit_test(test_remove_clear_generation_ids),
		cmocka_unit_test(test_add_many),
		cmocka_unit_test(test_may_touch),
		cmocka_unit_test(test_mode_clear_default_ops),
		cmocka_unit_test(test_path_matched),
		cmocka_unit_test(test_rename_path2),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_verdict_fields),
		cmocka_unit_test(test_index_matches_linear_scan),
		cmocka_unit_test(test_thread_smoke),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
