/* exec, status, logs, wait, cancel, list, recover; see cli_run.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "cli.h"
#include "cli_run.h"
#include "adopt.h"
#include "cleanup.h"
#include "serve.h"
#include "lifecycle.h"
#include "logs.h"
#include "run.h"
#include "runrec.h"
#include "store.h"
#include "strparse.h"
#include "errnames.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


const char cli_run_usage[] =
"  exec SCRIPT_ID [--timeout DUR] [--detach] [--arg A]... [--env K=V]... [--user NAME]\n"
"       [--restart no|on-failure|always] [--max-restarts N] [--net none|host]\n"
"                              run a script; prints the run id first; exit 0 if COMPLETED\n"
"  status RUN                  a run's status, exit code or signal, error, times\n"
"  logs RUN [--follow] [--stream stdout|stderr]\n"
"                              a run's output in arrival order\n"
"  wait RUN [--timeout DUR]    wait for a verdict; exit 0 if COMPLETED\n"
"  cancel RUN                  stop a run's whole process tree (TERM, grace, KILL)\n"
"  list                        all runs\n"
"  recover                     runs whose supervisor died become LOST\n"
"  cleanup [--older-than DUR]  remove per-run dirs of finished runs, stale runner scripts;\n"
"                              forget runs ended more than RUNNER_KEEP_RUNS (30d) ago\n"
"  serve                       restarts by policy, recover and cleanup every interval; SIGTERM stops\n";

static const char *const names[] = { "exec", "status", "logs", "wait", "cancel", "list",
				     "recover", "cleanup", "serve", "adopt-run", "supervise-run", NULL };

bool cli_run_known(const char *name)
{
	size_t i;

	for (i = 0; names[i]; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

enum {
	O_TIMEOUT = 300, O_OLDER, O_RESTART, O_MAX_RESTARTS, O_DETACH, O_ARG, O_ENV, O_USER, O_NET, O_FOLLOW, O_STREAM, O_JSON, O_HELP,
};

static const struct option opts[] = {
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "detach", no_argument, NULL, O_DETACH },
	{ "older-than", required_argument, NULL, O_OLDER },
	{ "restart", required_argument, NULL, O_RESTART },
	{ "max-restarts", required_argument, NULL, O_MAX_RESTARTS },
	{ "arg", required_argument, NULL, O_ARG },
	{ "env", required_argument, NULL, O_ENV },
	{ "user", required_argument, NULL, O_USER },
	{ "net", required_argument, NULL, O_NET },
	{ "follow", no_argument, NULL, O_FOLLOW },
	{ "stream", required_argument, NULL, O_STREAM },
	{ "json", no_argument, NULL, O_JSON },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

struct args {
	const char *cmd;
	bool json, detach, follow, have_timeout;
	uint64_t timeout_ns;
	uint64_t older_ns;
	bool have_older, have_max_restarts;
	int stream;
	struct run_request req;
	int argc;
	char **argv;
};

/* Which options each command takes. */
static bool allowed(const char *cmd, int o)
{
	switch (o) {
	case O_JSON: case O_HELP: return true;
	case O_TIMEOUT: return !strcmp(cmd, "exec") || !strcmp(cmd, "wait");
	case O_DETACH: case O_ARG: case O_ENV: case O_USER: case O_NET: case O_RESTART: case O_MAX_RESTARTS:
		return !strcmp(cmd, "exec");
	case O_FOLLOW: case O_STREAM: return !strcmp(cmd, "logs");
	case O_OLDER: return !strcmp(cmd, "cleanup");
	}
	return false;
}

static int parse(int argc, char **argv, struct args *a)
{
	int c, idx = 0;

	a->cmd = argv[0];
	a->stream = -1;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
		if (c == ':') {
			errline("option '%s' needs a value (see runner --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
		if (c == '?' || !allowed(a->cmd, c)) {
			errline("unknown option '%s' for %s (see runner --help)", argv[optind - 1],
				a->cmd);
			return EXIT_USAGE;
		}
		switch (c) {
		case O_HELP:
			printf("usage: runner [OPTIONS] COMMAND [ARGS]\n%s", cli_run_usage);
			return EXIT_OK;
		case O_JSON: a->json = true; break;
		case O_DETACH: a->detach = true; break;
		case O_FOLLOW: a->follow = true; break;
		case O_TIMEOUT:
			if (parse_duration_ns(optarg, 1000000000ULL, &a->timeout_ns) < 0 ||
			    a->timeout_ns == 0) {
				errline("%s --timeout: invalid duration '%s': expected e.g. 30, 90s, 250ms or 1h",
					a->cmd, optarg);
				return EXIT_USAGE;
			}
			a->have_timeout = true;
			break;
		case O_NET:
			if (strcmp(optarg, "none") && strcmp(optarg, "host")) {
				errline("exec --net: '%s': expected none or host", optarg);
				return EXIT_USAGE;
			}
			a->req.net = optarg;
			break;
		case O_RESTART:
			if (strcmp(optarg, "no") && strcmp(optarg, "on-failure") && strcmp(optarg, "always")) {
				errline("exec --restart: '%s': expected no, on-failure or always", optarg);
				return EXIT_USAGE;
			}
			a->req.restart = optarg;
			break;
		case O_MAX_RESTARTS: {
			uint64_t v;

			if (parse_u64(optarg, &v) < 0 || v > 1000) {
				errline("exec --max-restarts: '%s': expected a whole number up to 1000", optarg);
				return EXIT_USAGE;
			}
			a->req.max_restarts = (unsigned)v;
			a->have_max_restarts = true;
			break;
		}
		case O_OLDER:
			if (parse_duration_ns(optarg, 1000000000ULL, &a->older_ns) < 0) {
				errline("cleanup --older-than: invalid duration '%s': expected e.g. 0, 90s, 1h or 7d",
					optarg);
				return EXIT_USAGE;
			}
			a->have_older = true;
			break;
		case O_ARG:
			if (a->req.n_args == RUN_MAX_ARGS) {
				errline("exec: more than %d --arg", RUN_MAX_ARGS);
				return EXIT_USAGE;
			}
			a->req.args[a->req.n_args++] = optarg;
			break;
		case O_ENV:
			if (a->req.n_env == RUN_MAX_ENV) {
				errline("exec: more than %d --env", RUN_MAX_ENV);
				return EXIT_USAGE;
			}
			a->req.env[a->req.n_env++] = optarg;
			break;
		case O_USER: a->req.user = optarg; break;
		case O_STREAM:
			if (strcmp(optarg, "stdout") == 0)
				a->stream = LOG_STDOUT;
			else if (strcmp(optarg, "stderr") == 0)
				a->stream = LOG_STDERR;
			else {
				errline("logs --stream: '%s': expected stdout or stderr", optarg);
				return EXIT_USAGE;
			}
			break;
		}
	}
	a->argc = argc - optind;
	a->argv = argv + optind;
	return -1;
}

static int want(const struct args *a, int n, const char *what)
{
	if (a->argc != n) {
		errline("%s: expected %s (see runner --help)", a->cmd, what);
		return EXIT_USAGE;
	}
	return -1;
}

static int run_id(const struct args *a, int64_t *id)
{
	uint64_t v;

	if (parse_u64(a->argv[0], &v) < 0 || v == 0 || v > INT64_MAX) {
		errline("%s: invalid run id '%s': expected the number exec printed", a->cmd,
			a->argv[0]);
		return EXIT_USAGE;
	}
	*id = (int64_t)v;
	return -1;
}

static int open_store(const struct settings *s, struct store **st)
{
	char err[1024];
	int ret = store_open(s->state_dir, st, err, sizeof(err));

	if (ret < 0)
		errline("job store: %s", err);
	return ret;
}

static int exit_for(int state)
{
	return state == RS_COMPLETED ? EXIT_OK : EXIT_FAILED;
}

static void report_end(struct store *st, int64_t id)
{
	struct run_rec r;

	if (runrec_get(st, id, &r, NULL, 0) < 0)
		return;
	if (r.state != RS_COMPLETED)
		errline("run %lld: %s%s%s", (long long)id, run_state_name(r.state),
			r.error ? ": " : "", r.error ? r.error : "");
	run_rec_free(&r);
}

static int cmd_exec(const struct settings *s, struct args *a)
{
	struct run_plan plan;
	struct store *st;
	char err[4096];
	int ret, rc;

	if ((rc = want(a, 1, "one SCRIPT_ID")) >= 0)
		return rc;
	a->req.script_id = a->argv[0];
	a->req.timeout_ns = a->timeout_ns;
	/* A restart policy without a count: a few tries, not forever. */
	if (a->req.restart && strcmp(a->req.restart, "no") && !a->have_max_restarts)
		a->req.max_restarts = 5;
	if (a->req.user) {
		struct passwd *pw = getpwnam(a->req.user);

		if (pw == NULL) {
			errline("exec --user: no user '%s'", a->req.user);
			return EXIT_USAGE;
		}
		a->req.drop = true;
		a->req.uid = pw->pw_uid;
		a->req.gid = pw->pw_gid;
		snprintf(a->req.home, sizeof(a->req.home), "%s", pw->pw_dir);
	}
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	ret = run_prepare(s, st, &a->req, &plan, err, sizeof(err));
	/* A detached supervisor opens a connection of its own (none may be
	 * carried across its fork); a foreground one goes on with this. */
	if (ret < 0 || a->detach)
		store_close(st);
	if (ret < 0) {
		errline("exec: %s", err);
		return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
	}
	if (a->json)
		printf("{\"id\": %lld}\n", (long long)plan.id);
	else
		printf("%lld\n", (long long)plan.id);
	fflush(stdout);
	if (a->detach) {
		ret = run_detach(s, &a->req, &plan, err, sizeof(err));
		if (ret < 0) {
			errline("exec --detach: %s", err);
			return EXIT_FAILED;
		}
		return EXIT_OK;
	}
	ret = run_supervise(s, &a->req, &plan, -1, st, err, sizeof(err));
	if (ret < 0) {
		store_close(st);
		errline("exec: run %lld: %s", (long long)plan.id, err);
		return EXIT_FAILED;
	}
	report_end(st, plan.id);
	store_close(st);
	return exit_for(ret);
}

static void print_rec_text(const struct run_rec *r)
{
	json_t *j = run_rec_to_json(r);
	const char *k;
	json_t *v;

	if (j == NULL)
		return;
	json_object_foreach(j, k, v) {
		if (json_is_null(v))
			continue;
		if (json_is_string(v))
			printf("%s: %s\n", k, json_string_value(v));
		else if (json_is_integer(v))
			printf("%s: %lld\n", k, (long long)json_integer_value(v));
		else if (json_is_boolean(v))
			printf("%s: %s\n", k, json_is_true(v) ? "yes" : "no");
	}
	json_decref(j);
}

static int cmd_status(const struct settings *s, struct args *a)
{
	struct store *st;
	struct run_rec r;
	char err[1024];
	int64_t id;
	int rc, ret;

	if ((rc = want(a, 1, "one RUN id")) >= 0 || (rc = run_id(a, &id)) >= 0)
		return rc;
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	ret = runrec_get(st, id, &r, err, sizeof(err));
	store_close(st);
	if (ret < 0) {
		errline("status: %s", err);
		return ret == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
	}
	if (a->json)
		rc = print_json(run_rec_to_json(&r));
	else {
		print_rec_text(&r);
		rc = EXIT_OK;
	}
	run_rec_free(&r);
	return rc;
}

static int cmd_logs(const struct settings *s, struct args *a)
{
	struct log_read_opts o = { .stream = a->stream, .follow = a->follow };
	struct store *st;
	char err[1024];
	int64_t id;
	int rc, ret;

	if ((rc = want(a, 1, "one RUN id")) >= 0 || (rc = run_id(a, &id)) >= 0)
		return rc;
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	ret = log_print(st, id, &o, stdout, err, sizeof(err));
	store_close(st);
	if (ret == -EPIPE)
		return EXIT_FAILED;
	if (ret < 0) {
		errline("logs: %s", err);
		return ret == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
	}
	return EXIT_OK;
}

static int print_state(struct store *st, int64_t id, bool json)
{
	struct run_rec r;
	int rc = EXIT_FAILED;

	if (runrec_get(st, id, &r, NULL, 0) < 0)
		return EXIT_FAILED;
	if (json) {
		print_json(run_rec_to_json(&r));
	} else {
		printf("%s\n", run_state_name(r.state));
		if (r.state != RS_COMPLETED && r.error)
			errline("run %lld: %s: %s", (long long)id, run_state_name(r.state), r.error);
	}
	rc = exit_for((int)r.state);
	run_rec_free(&r);
	return rc;
}

static int cmd_wait(const struct settings *s, struct args *a)
{
	struct store *st;
	char err[1024];
	int64_t id;
	int rc, ret;

	if ((rc = want(a, 1, "one RUN id")) >= 0 || (rc = run_id(a, &id)) >= 0)
		return rc;
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	ret = run_wait(st, id, a->have_timeout ? (int64_t)(a->timeout_ns / 1000000) : 0,
		       err, sizeof(err));
	if (ret < 0) {
		errline("wait: %s", err);
		store_close(st);
		return ret == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
	}
	rc = print_state(st, id, a->json);
	store_close(st);
	return rc;
}

static int cmd_cancel(const struct settings *s, struct args *a)
{
	struct store *st;
	char err[1024];
	bool already;
	int64_t id;
	int rc, ret;

	if ((rc = want(a, 1, "one RUN id")) >= 0 || (rc = run_id(a, &id)) >= 0)
		return rc;
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	/* Long enough for the grace and the teardown that follows it, even
	 * on a loaded host; it returns as soon as the verdict is written. */
	ret = run_cancel(st, id, (int)(s->kill_grace_ns / 1000000) + 60000, &already,
			 err, sizeof(err));
	if (ret < 0) {
		errline("cancel: %s", err);
		store_close(st);
		return ret == -ENOENT ? EXIT_USAGE : EXIT_FAILED;
	}
	if (already || ret != RS_CANCELLED) {
		errline("cancel: run %lld had already ended: %s", (long long)id,
			run_state_name((enum run_state)ret));
		rc = EXIT_FAILED;
		if (a->json)
			print_state(st, id, true);
	} else if (a->json) {
		print_state(st, id, true);
		rc = EXIT_OK;
	} else {
		printf("CANCELLED\n");
		rc = EXIT_OK;
	}
	store_close(st);
	return rc;
}

static int list_cb(void *ctx, const struct run_rec *r)
{
	json_t *arr = ctx;

	if (arr)
		return json_array_append_new(arr, run_rec_to_json(r)) ? -ENOMEM : 0;
	printf("%lld\t%s\t%s\t", (long long)r->id, run_state_name(r->state), r->script_id);
	if (r->has_exit_code)
		printf("exit %d", r->exit_code);
	else if (r->signal)
		printf("signal %d", r->signal);
	else
		printf("-");
	printf("\t%s\n", r->error ? r->error : "");
	return 0;
}

static int cmd_list(const struct settings *s, struct args *a)
{
	struct store *st;
	json_t *arr = NULL;
	char err[1024];
	int rc, ret;

	if ((rc = want(a, 0, "no arguments")) >= 0)
		return rc;
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	if (a->json)
		arr = json_array();
	ret = runrec_list(st, NULL, list_cb, arr, err, sizeof(err));
	store_close(st);
	if (ret < 0) {
		errline("list: %s", ret == -ENOMEM ? strerror(ENOMEM) : err);
		json_decref(arr);
		return EXIT_FAILED;
	}
	return a->json ? print_json(json_pack("{s:o}", "runs", arr)) : EXIT_OK;
}

static int recover_lines;

static void recover_line(void *ctx, int64_t id, const char *line)
{
	json_t *arr = ctx;

	recover_lines++;
	if (arr)
		json_array_append_new(arr, json_pack("{s:I, s:s}", "id", (json_int_t)id,
						     "decision", line));
	else
		printf("%s\n", line);
}

static int cmd_recover(const struct settings *s, struct args *a)
{
	struct store *st;
	json_t *arr = NULL;
	char err[1024];
	int rc, ret;

	if ((rc = want(a, 0, "no arguments")) >= 0)
		return rc;
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	if (a->json)
		arr = json_array();
	ret = run_recover_policy(s, st, recover_line, arr, err, sizeof(err));
	store_close(st);
	if (ret < 0) {
		errline("recover: %s", ret == -ENOMEM ? strerror(ENOMEM) : err);
		json_decref(arr);
		return EXIT_FAILED;
	}
	if (a->json)
		return print_json(json_pack("{s:i, s:o}", "lost", ret, "runs", arr));
	if (ret == 0 && recover_lines == 0)
		printf("nothing to recover\n");
	return EXIT_OK;
}

static void cleanup_line(void *ctx, const char *path, int err)
{
	json_t *o = ctx;

	if (o) {
		if (err)
			json_array_append_new(json_object_get(o, "failed"),
					      json_pack("{s:s, s:s, s:s}", "path", path,
							"errno", errno_name(err) ? errno_name(err) : "?",
							"error", strerror(err)));
		else
			json_array_append_new(json_object_get(o, "removed"), json_string(path));
	} else if (err) {
		errline("cleanup: cannot remove %s: %s (%s)", path, strerror(err),
			errno_name(err) ? errno_name(err) : "?");
	} else {
		printf("removed %s\n", path);
	}
}

static int cmd_cleanup(const struct settings *s, struct args *a)
{
	struct cleanup_stats stats;
	struct store *st;
	json_t *o = NULL;
	char err[1024];
	int rc, ret;

	if ((rc = want(a, 0, "no arguments")) >= 0)
		return rc;
	if (open_store(s, &st) < 0)
		return EXIT_FAILED;
	if (a->json)
		o = json_pack("{s:[], s:[]}", "removed", "failed");
	/* Default: what finished an hour ago; --older-than 0 takes all. */
	ret = cleanup_run(s, st, a->have_older ? (int64_t)(a->older_ns / 1000000) : 3600000,
			  cleanup_line, o, &stats, err, sizeof(err));
	store_close(st);
	if (ret < 0) {
		errline("cleanup: %s", err);
		json_decref(o);
		return EXIT_FAILED;
	}
	if (o) {
		json_object_set_new(o, "forgotten", json_integer(stats.forgotten));
		print_json(o);
	} else {
		if (stats.forgotten) {
			uint64_t k = s->keep_runs_ns / 1000000000ULL;

			printf("forgot %u run%s that ended more than %llu%s ago (RUNNER_KEEP_RUNS)\n",
			       stats.forgotten, stats.forgotten == 1 ? "" : "s",
			       (unsigned long long)(k % 86400 == 0 ? k / 86400 : k % 3600 == 0 ? k / 3600 : k),
			       k % 86400 == 0 ? "d" : k % 3600 == 0 ? "h" : "s");
		}
		if (stats.removed == 0 && stats.failed == 0 && stats.forgotten == 0)
			printf("nothing to clean up\n");
	}
	return stats.failed ? EXIT_FAILED : EXIT_OK;
}

static int cmd_serve(const struct settings *s, struct args *a)
{
	char err[1024];
	int rc;

	if ((rc = want(a, 0, "no arguments")) >= 0)
		return rc;
	if (serve_main(s, err, sizeof(err)) < 0) {
		errline("serve: %s", err);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

int cli_run(const struct settings *s, bool json, int argc, char **argv)
{
	struct args *a = calloc(1, sizeof(*a));
	int rc;

	if (a == NULL) {
		errline("%s", strerror(ENOMEM));
		return EXIT_FAILED;
	}
	a->json = json;
	rc = parse(argc, argv, a);
	if (rc >= 0)
		goto out;
	if (!strcmp(a->cmd, "exec"))
		rc = cmd_exec(s, a);
	else if (!strcmp(a->cmd, "status"))
		rc = cmd_status(s, a);
	else if (!strcmp(a->cmd, "logs"))
		rc = cmd_logs(s, a);
	else if (!strcmp(a->cmd, "wait"))
		rc = cmd_wait(s, a);
	else if (!strcmp(a->cmd, "cancel"))
		rc = cmd_cancel(s, a);
	else if (!strcmp(a->cmd, "list"))
		rc = cmd_list(s, a);
	else if (!strcmp(a->cmd, "adopt-run") || !strcmp(a->cmd, "supervise-run")) {
		/* Internal: exec'd by run_daemon_exec, for run_adopt (adopt.h)
		 * and for serve's restarts without a cgroup (run.h). */
		int64_t id;
		uint64_t fd;

		if (a->argc != 2 || (rc = run_id(a, &id)) >= 0 || parse_u64(a->argv[1], &fd) < 0 ||
		    fd > 1024) {
			errline("%s: internal command: ID FD", a->cmd);
			rc = EXIT_USAGE;
		} else if (a->cmd[0] == 'a') {
			run_adopt_main(s, id, (int)fd);
		} else {
			run_handed_main(s, id, (int)fd);
		}
	} else if (!strcmp(a->cmd, "serve"))
		rc = cmd_serve(s, a);
	else if (!strcmp(a->cmd, "cleanup"))
		rc = cmd_cleanup(s, a);
	else
		rc = cmd_recover(s, a);
out:
	free(a);
	return rc;
}
