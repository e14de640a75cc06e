/* fieldrig: runs scenario files against real runner and faultfs binaries.
 *
 *   fieldrig run [PATHS...] [-j N] [--tag T] [--filter RE] [--shard K/N] [--keep] [--keep-all]
 *                [--timeout DUR] [--junit FILE] [--tap] [--json FILE] [--html DIR]
 *                [--reports DIR] [--fail-on-skip]
 *   fieldrig list [PATHS...]
 *   fieldrig check FILE...
 *   fieldrig bench-world [-n N]
 *
 * Exit status: 0 nothing failed, 1 a scenario failed, 2 usage or input error.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "run.h"
#include "scenario.h"
#include "spawn.h"
#include "strparse.h"
#include "world.h"

static const char usage_text[] =
"usage: fieldrig run [PATHS...] [options]   run scenario files or folders (default: scenarios/)\n"
"       fieldrig list [PATHS...]            list scenarios: folder/name, tags, file\n"
"       fieldrig check FILE...              validate scenario files only\n"
"       fieldrig bench-world [-n N]         cost of building and tearing down a world with a mount\n"
"\n"
"run options:\n"
"  -j, --jobs N        scenarios in parallel (default 1)\n"
"  --tag T             only scenarios tagged T\n"
"  --filter RE         only scenarios whose name matches the extended regex RE\n"
"  --shard K/N         only the K-th of N shares of the scenarios (CI splitting)\n"
"  --keep              keep a failed scenario's world mounted; print how to enter it\n"
"  --keep-all          keep every scenario's world (choose them with --filter)\n"
"  --timeout DUR       limit for scenarios that set none (default 60s)\n"
"  --junit FILE        JUnit XML report\n"
"  --tap               TAP on stdout (the summary goes to stderr)\n"
"  --json FILE         JSON report\n"
"  --html DIR          HTML report DIR/index.html\n"
"  --reports DIR       where failures' repro scripts go (default reports/)\n"
"  --fail-on-skip      exit 1 when a scenario was skipped (CI: nothing may skip)\n"
"\n"
"Programs: FIELDRIG_RUNNER, FIELDRIG_FAULTFS, else next to fieldrig in the build tree, else PATH.\n"
"Scenario commands get PATH=FIELDRIG_PATH, else the standard system directories.\n"
"Worlds go under FIELDRIG_TMPDIR, TMPDIR or /tmp.\n"
"Exit status: 0 nothing failed, 1 a scenario failed, 2 a usage or input error.\n";

static void on_signal(int sig)
{
	(void)sig;
	fr_stop = 1;
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("fieldrig: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see fieldrig --help)\n", stderr);
	return 2;
}

/* Makes the directories above PATH (and PATH itself when DIR_TOO), so
 * report paths may point into folders that do not exist yet. */
static void make_dirs(const char *path, bool dir_too)
{
	char tmp[4096];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
	if (dir_too)
		mkdir(tmp, 0755);
}

struct filelist {
	char **v;
	size_t n, cap;
};

static int fl_add(struct filelist *fl, const char *p)
{
	if (fl->n == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 64;
		char **v = realloc(fl->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		fl->v = v;
		fl->cap = cap;
	}
	fl->v[fl->n] = strdup(p);
	return fl->v[fl->n++] ? 0 : -ENOMEM;
}

static bool is_yaml(const char *name)
{
	size_t l = strlen(name);

	return (l > 5 && strcmp(name + l - 5, ".yaml") == 0) || (l > 4 && strcmp(name + l - 4, ".yml") == 0);
}

/* Scenario files under PATH (a file, or a folder searched recursively). */
static int collect(struct filelist *fl, const char *path)
{
	struct stat st;
	struct dirent **ents;
	int n, rc = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "fieldrig: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return fl_add(fl, path);
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		char sub[4096];
		struct stat ss;

		if (ents[i]->d_name[0] == '.' || rc < 0) {
			free(ents[i]);
			continue;
		}
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", ents[i]->d_name);
		if (stat(sub, &ss) == 0 && S_ISDIR(ss.st_mode))
			rc = collect(fl, sub);
		else if (is_yaml(ents[i]->d_name))
			rc = fl_add(fl, sub);
		free(ents[i]);
	}
	free(ents);
	return rc;
}

/* Loads every file; on any error prints them all and returns -EINVAL. */
static int load_all(char **paths, int npaths, struct scenario ***out, size_t *nout)
{
	struct filelist fl = { 0 };
	struct scenario **scs;
	size_t n = 0;
	int bad = 0;

	if (npaths == 0) {
		if (collect(&fl, "scenarios") < 0)
			return -EINVAL;
	}
	for (int i = 0; i < npaths; i++)
		if (collect(&fl, paths[i]) < 0)
			bad = 1;
	scs = calloc(fl.n ? fl.n : 1, sizeof(*scs));
	if (!scs)
		return -ENOMEM;
	for (size_t i = 0; i < fl.n; i++) {
		char err[1200];

		if (scenario_load(fl.v[i], &scs[n], err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			bad = 1;
			continue;
		}
		for (size_t j = 0; j < n; j++)
			if (strcmp(scs[j]->name, scs[n]->name) == 0) {
				struct sc_pos p = scenario_pos(scs[n], "name");

				fprintf(stderr, "%s:%u:%u: field 'name': '%s' is also the name of %s\n", scs[n]->file,
					p.line, p.col, scs[n]->name, scs[j]->file);
				bad = 1;
			}
		n++;
	}
	for (size_t i = 0; i < fl.n; i++)
		free(fl.v[i]);
	free(fl.v);
	*out = scs;
	*nout = n;
	return bad ? -EINVAL : 0;
}

static void free_all(struct scenario **scs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		scenario_free(scs[i]);
	free(scs);
}

static int cmd_check(int argc, char **argv)
{
	int bad = 0;

	if (argc < 1)
		return usage_error("check needs FILE...");
	for (int i = 0; i < argc; i++) {
		struct scenario *sc;
		char err[1200];

		if (scenario_load(argv[i], &sc, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			bad = 1;
			continue;
		}
		printf("%s: ok: %s, %u steps\n", argv[i], sc->name, sc->steps_count);
		scenario_free(sc);
	}
	return bad ? 2 : 0;
}

static int cmd_list(int argc, char **argv)
{
	struct scenario **scs;
	size_t n;
	int rc = load_all(argv, argc, &scs, &n);

	for (size_t i = 0; i < n; i++) {
		char folder[4096], *slash;

		snprintf(folder, sizeof(folder), "%s", scs[i]->file);
		slash = strrchr(folder, '/');
		if (slash) {
			*slash = '\0';
			slash = strrchr(folder, '/');
		}
		printf("%s/%s\t", slash ? slash + 1 : folder, scs[i]->name);
		for (unsigned t = 0; t < scs[i]->tags_count; t++)
			printf("%s%s", t ? "," : "", scs[i]->tags[t]);
		printf("\t%s\n", scs[i]->file);
	}
	free_all(scs, n);
	return rc < 0 ? 2 : 0;
}

static void print_summary(json_t *results, FILE *out, double wall, const char *reports)
{
	struct report_counts c;
	json_t *r, *fl;
	size_t i, k, order[5] = { 0 }, nslow = 0;

	report_count(results, &c);
	/* Failures, each with what it expected, what it saw, and where. */
	json_array_foreach(results, i, r) {
		const char *st = json_string_value(json_object_get(r, "status"));
		const char *kept = json_string_value(json_object_get(r, "kept"));
		const char *repro = json_string_value(json_object_get(r, "repro"));

		if (strcmp(st, "skipped") == 0) {
			fprintf(out, "SKIPPED %s/%s: %s\n", json_string_value(json_object_get(r, "folder")),
				json_string_value(json_object_get(r, "name")),
				json_string_value(json_object_get(r, "reason")));
			continue;
		}
		if (strcmp(st, "failed") != 0) {
			if (kept)
				fprintf(out, "KEPT %s/%s: %s\n    enter:     cd %s && . ./env.sh\n    tear down: sh %s/teardown.sh\n",
					json_string_value(json_object_get(r, "folder")),
					json_string_value(json_object_get(r, "name")), kept, kept, kept);
			continue;
		}
		fprintf(out, "FAILED %s/%s (%s)%s\n", json_string_value(json_object_get(r, "folder")),
			json_string_value(json_object_get(r, "name")), json_string_value(json_object_get(r, "file")),
			json_is_true(json_object_get(r, "timed_out")) ? " [time limit]" : "");
		json_array_foreach(json_object_get(r, "failures"), k, fl)
			fprintf(out, "  %s:%lld: %s\n    expected: %s\n    actual:   %s\n",
				json_string_value(json_object_get(fl, "file")),
				(long long)json_integer_value(json_object_get(fl, "line")),
				json_string_value(json_object_get(fl, "expectation")),
				json_string_value(json_object_get(fl, "expected")),
				json_string_value(json_object_get(fl, "actual")));
		if (repro && reports) {
			char dir[4096], path[4200];
			FILE *f;

			snprintf(dir, sizeof(dir), "%s/repro", reports);
			make_dirs(dir, true);
			snprintf(path, sizeof(path), "%s/%s.sh", dir, json_string_value(json_object_get(r, "name")));
			f = fopen(path, "we");
			if (f) {
				fputs(repro, f);
				fclose(f);
				chmod(path, 0755);
				fprintf(out, "  repro: %s\n", path);
			}
		}
		if (kept)
			fprintf(out, "  kept:  %s\n    enter:     cd %s && . ./env.sh\n    tear down: sh %s/teardown.sh\n",
				kept, kept, kept);
	}
	/* The slowest five. */
	json_array_foreach(results, i, r) {
		double d = json_number_value(json_object_get(r, "duration"));
		size_t pos = nslow < 5 ? nslow++ : 5;

		while (pos > 0 && json_number_value(json_object_get(json_array_get(results, order[pos - 1]), "duration")) < d) {
			if (pos < 5)
				order[pos] = order[pos - 1];
			pos--;
		}
		if (pos < 5)
			order[pos] = i;
	}
	if (nslow) {
		fputs("slowest:", out);
		for (size_t s = 0; s < nslow; s++) {
			r = json_array_get(results, order[s]);
			fprintf(out, "%s %.2f s %s/%s", s ? "," : "", json_number_value(json_object_get(r, "duration")),
				json_string_value(json_object_get(r, "folder")), json_string_value(json_object_get(r, "name")));
		}
		fputc('\n', out);
	}
	fprintf(out, "%zu passed, %zu failed, %zu skipped (%.1f s)\n", c.passed, c.failed, c.skipped, wall);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "tag", required_argument, NULL, 't' },
		{ "filter", required_argument, NULL, 'f' },
		{ "shard", required_argument, NULL, 's' },
		{ "keep", no_argument, NULL, 'k' },
		{ "keep-all", no_argument, NULL, 'K' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "junit", required_argument, NULL, 'J' },
		{ "tap", no_argument, NULL, 'P' },
		{ "json", required_argument, NULL, 'O' },
		{ "html", required_argument, NULL, 'H' },
		{ "reports", required_argument, NULL, 'R' },
		{ "fail-on-skip", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o = { .jobs = 1, .reports = "reports" };
	const char *junit = NULL, *json = NULL, *html = NULL;
	int e;
	unsigned shard_k = 0, shard_n = 0;
	bool tap = false, have_filter = false, fail_on_skip = false;
	struct scenario **scs = NULL;
	regex_t filter;
	json_t *results;
	size_t n;
	uint64_t v, start;
	char err[512];
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "j:", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (parse_u64(optarg, &v) < 0 || v < 1 || v > 64)
				return usage_error("-j: expected 1 to 64, not '%s'", optarg);
			o.jobs = (int)v;
			break;
		case 't':
			o.tag = optarg;
			break;
		case 'f':
			if (regcomp(&filter, optarg, REG_EXTENDED | REG_NOSUB) != 0)
				return usage_error("--filter: invalid regular expression '%s'", optarg);
			have_filter = true;
			o.filter = &filter;
			break;
		case 's':
			if (sscanf(optarg, "%u/%u", &shard_k, &shard_n) != 2 || shard_n == 0 || shard_k < 1 ||
			    shard_k > shard_n)
				return usage_error("--shard: expected K/N with 1 <= K <= N, not '%s'", optarg);
			break;
		case 'k':
			o.keep = true;
			break;
		case 'K':
			o.keep_all = true;
			break;
		case 'T':
			if (parse_duration_ns(optarg, 1000000000ull, &o.timeout_ns) < 0 || o.timeout_ns == 0)
				return usage_error("--timeout: invalid duration '%s'", optarg);
			break;
		case 'J':
			junit = optarg;
			break;
		case 'P':
			tap = true;
			break;
		case 'O':
			json = optarg;
			break;
		case 'H':
			html = optarg;
			break;
		case 'R':
			o.reports = optarg;
			break;
		case 'S':
			fail_on_skip = true;
			break;
		default:
			return 2;
		}
	}
	if (tools_find(&o.tools, err, sizeof(err)) < 0) {
		fprintf(stderr, "fieldrig: %s\n", err);
		return 2;
	}
	if (load_all(argv + optind, argc - optind, &scs, &n) < 0) {
		free_all(scs, n);
		return 2;
	}
	if (shard_n) {
		size_t m = 0;

		for (size_t i = 0; i < n; i++) {
			if (i % shard_n == shard_k - 1)
				scs[m++] = scs[i];
			else
				scenario_free(scs[i]);
		}
		n = m;
	}
	o.tty = isatty(STDOUT_FILENO) && !tap;
	start = fr_now_ns();
	results = run_all(scs, n, &o);
	rc = 0;
	if (junit)
		make_dirs(junit, false);
	if (json)
		make_dirs(json, false);
	if (html)
		make_dirs(html, true);
	if (junit && (e = report_junit(results, junit)) < 0) {
		fprintf(stderr, "fieldrig: %s: %s\n", junit, strerror(-e));
		rc = 2;
	}
	if (json && (e = report_json(results, json)) < 0) {
		fprintf(stderr, "fieldrig: %s: %s\n", json, strerror(-e));
		rc = 2;
	}
	if (html && (e = report_html(results, html)) < 0) {
		fprintf(stderr, "fieldrig: %s: %s\n", html, strerror(-e));
		rc = 2;
	}
	if (tap)
		report_tap(results, stdout);
	print_summary(results, tap ? stderr : stdout, (double)(fr_now_ns() - start) / 1e9, o.reports);
	if (rc == 0) {
		struct report_counts cnt;

		report_count(results, &cnt);
		rc = cnt.failed || (fail_on_skip && cnt.skipped) ? 1 : 0;
		if (fail_on_skip && cnt.skipped)
			fprintf(tap ? stderr : stdout, "fieldrig: %zu skipped, and --fail-on-skip counts that as failing\n",
				cnt.skipped);
		if (fr_stop)
			rc = rc ? rc : 1;
	}
	json_decref(results);
	free_all(scs, n);
	if (have_filter)
		regfree(&filter);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The cost of one world with one faultfs mount: build (mkdtemp, dirs,
 * container root, daemon start, wait for the mount) and teardown (sweep,
 * unmount, daemon exit, removal). */
static int cmd_bench_world(int argc, char **argv)
{
	static const char yaml[] =
		"name: bench\nworld:\n  container: docker\n  mounts:\n    tmp:\n      rules: ['op=exec,path=**,error=EACCES']\n"
		"  files:\n    - path: mnt/tmp/job.py\n      content: \"print(1)\\n\"\nsteps:\n  - sleep: 0s\n";
	struct scenario *sc;
	struct tools t;
	uint64_t *ns, nruns = 20;
	char err[1024];
	int rc = 0;

	if (argc >= 2 && strcmp(argv[0], "-n") == 0 && (parse_u64(argv[1], &nruns) < 0 || nruns == 0 || nruns > 10000))
		return usage_error("bench-world: -n expects 1 to 10000, not '%s'", argv[1]);
	if (tools_find(&t, err, sizeof(err)) < 0 || !t.faultfs[0]) {
		fprintf(stderr, "fieldrig: bench-world needs runner and faultfs\n");
		return 2;
	}
	if (scenario_load_buffer("bench.yaml", yaml, sizeof(yaml) - 1, &sc, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	ns = calloc(nruns, sizeof(*ns));
	for (uint64_t i = 0; ns && i < nruns && !fr_stop; i++) {
		char dir[4096];
		struct world w;
		uint64_t s = fr_now_ns();
		const char *base = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/fieldrig-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(dir)) {
			rc = 1;
			break;
		}
		if (world_build(&w, dir, sc, &t, err, sizeof(err)) < 0) {
			fprintf(stderr, "fieldrig: %s\n", err);
			rc = 1;
		}
		if (world_teardown(&w, false) < 0)
			rc = 1;
		ns[i] = fr_now_ns() - s;
		if (rc)
			break;
	}
	if (!rc && ns) {
		qsort(ns, nruns, sizeof(*ns), cmp_u64);
		printf("worlds: %llu, median %.1f ms, min %.1f ms, p90 %.1f ms, max %.1f ms\n",
		       (unsigned long long)nruns, (double)ns[nruns / 2] / 1e6, (double)ns[0] / 1e6,
		       (double)ns[nruns * 9 / 10] / 1e6, (double)ns[nruns - 1] / 1e6);
	}
	free(ns);
	scenario_free(sc);
	return rc;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocking poll or wait returns, and fr_stop is seen. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		return usage_error("missing command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("fieldrig %s\n", FIELDRIG_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(argc - 2, argv + 2);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check(argc - 2, argv + 2);
	if (strcmp(argv[1], "bench-world") == 0)
		return cmd_bench_world(argc - 2, argv + 2);
	return usage_error("unknown command '%s'", argv[1]);
}
