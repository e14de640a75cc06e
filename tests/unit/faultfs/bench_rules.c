/* Micro-benchmark: what ff_rules_eval() costs per request with no rules, one
 * rule, and a thousand rules that do not match, over realistic paths.  Not a
 * test (timings make flaky assertions); run it by hand:
 *
 *     ninja -C build tests/unit/faultfs/bench_rules && build/tests/unit/faultfs/bench_rules
 *
 * The thousand rules are written the way people write them (a literal first
 * or last component), so the index narrows each request to a handful of
 * candidates.  The last two lines show what the index cannot help with: a
 * thousand rules whose first and last components are both wildcards, which
 * every request must try in turn.  When their last component ends in a
 * literal suffix (any depth, then "*.x") a cheap suffix test still rejects
 * most of them; without one (any depth, then "x*") each costs a full glob
 * match, as every rule would in an engine without the index.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rules.h"

static const char *const paths[] = {
	"",
	"venv",
	"venv/bin/python3",
	"venv/lib/python3.11/site-packages/numpy/__init__.py",
	"tmp/runner_1234.sh",
	"scripts/user_42/main.py",
	"data/uploads/3f2a9c.csv",
	"logs/job-17.log",
	".cache/pip/http/a/b/c/d",
	"src/app/models/user.py",
};

#define NPATHS (sizeof(paths) / sizeof(paths[0]))

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void add(struct ff_rules *rs, const char *expr)
{
	char err[256];
	struct ff_rule *r = ff_rule_parse(expr, err, sizeof(err));

	if (r == NULL || ff_rules_add(rs, r) == 0) {
		fprintf(stderr, "bench_rules: %s: %s\n", expr, r == NULL ? err : "out of memory");
		exit(1);
	}
}

/* Returns nanoseconds per evaluation, best of five runs. */
static double measure(struct ff_rules *rs, long iters)
{
	struct ff_caller c = { .uid = 1000, .gid = 1000, .pid = 1 };
	double best = 1e18;
	long fired = 0;

	for (int run = 0; run < 5; run++) {
		double t0 = now_ns(), t;

		for (long i = 0; i < iters; i++) {
			struct ff_verdict v;

			fired += ff_rules_eval(rs, FF_OP_GETATTR, paths[(size_t)i % NPATHS], NULL, &c, &v);
		}
		t = (now_ns() - t0) / (double)iters;
		if (t < best)
			best = t;
	}
	if (fired != 0) {
		fprintf(stderr, "bench_rules: a rule fired; the rules were meant not to match\n");
		exit(1);
	}
	return best;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 2000000;
	struct ff_rules *rs = ff_rules_new();
	double t0, t1, t1000, twild, tworst;
	char expr[128];

	t0 = measure(rs, iters);

	add(rs, "path=nomatch/**,error=EIO");
	t1 = measure(rs, iters);
	ff_rules_clear(rs);

	for (int i = 0; i < 1000; i++) {
		switch (i % 3) {
		case 0:
			snprintf(expr, sizeof(expr), "path=nomatch%d/**,error=EIO", i);
			break;
		case 1:
			snprintf(expr, sizeof(expr), "path=**/nomatch%d.py,error=EIO", i);
			break;
		default:
			snprintf(expr, sizeof(expr), "path=dir/%d/*,error=EIO", i);
			break;
		}
		add(rs, expr);
	}
	t1000 = measure(rs, iters);
	ff_rules_clear(rs);

	for (int i = 0; i < 1000; i++) {
		snprintf(expr, sizeof(expr), "path=**/*.nomatch%d,error=EIO", i);
		add(rs, expr);
	}
	twild = measure(rs, iters / 10 > 0 ? iters / 10 : 1);
	ff_rules_clear(rs);

	for (int i = 0; i < 1000; i++) {
		snprintf(expr, sizeof(expr), "path=**/nomatch%d*,error=EIO", i);
		add(rs, expr);
	}
	tworst = measure(rs, iters / 100 > 0 ? iters / 100 : 1);
	ff_rules_free(rs);

	printf("ff_rules_eval over %zu realistic paths, %ld evaluations per run, best of 5:\n",
	       NPATHS, iters);
	printf("  0 rules:                                   %8.1f ns/eval\n", t0);
	printf("  1 non-matching rule:                       %8.1f ns/eval\n", t1);
	printf("  1000 non-matching rules (indexed):         %8.1f ns/eval\n", t1000);
	printf("  ratio 1000 rules / 0 rules:                %8.1f\n", t1000 / t0);
	printf("  ratio 1000 rules / 1 rule:                 %8.2f\n", t1000 / t1);
	printf("  1000 rules like '**/*.x' (no index, suffix): %7.1f ns/eval\n", twild);
	printf("  1000 rules like '**/x*' (no index, worst):  %7.1f ns/eval\n", tworst);
	return 0;
}
