/* runner serve; see serve.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "serve.h"
#include "botscript.h"
#include "cleanup.h"
#include "lifecycle.h"
#include "run.h"
#include "runrec.h"
#include "store.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_MAX_MS 60000

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One decision, one line. */
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("runner serve: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void say_line(const char *line)
{
	say("%s", line);
}

/* The runner scripts this serve wrote (see botscript.h). */
static struct botscripts *bots;
/* The runs serve supervises itself, in its loop (run.h). */
static struct run_host *host;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void recover_cb(void *ctx, int64_t id, const char *line)
{
	(void)ctx;
	(void)id;
	say("lost %s", line);
}

static void cleaned(void *ctx, const char *path, int err)
{
	(void)ctx;
	if (err)
		say("cleanup-failed path=%s error=\"%s\"", path, strerror(err));
	else
		say("cleaned path=%s", path);
}

static void housekeeping(const struct settings *s, struct store *st)
{
	struct cleanup_stats cs;
	char err[1024];

	if (run_recover_policy(s, st, recover_cb, NULL, err, sizeof(err)) < 0)
		say("recover-failed error=\"%s\"", err);
	if (cleanup_run(s, st, 3600000, cleaned, NULL, &cs, err, sizeof(err)) < 0)
		say("cleanup-failed error=\"%s\"", err);
	else if (cs.forgotten)
		say("forgot runs=%u keep=%llus", cs.forgotten,
		    (unsigned long long)(s->keep_runs_ns / 1000000000ULL));
}

/* Whether a verdict calls for a restart under policy. */
static bool wants_restart(const char *policy, enum run_state st)
{
	if (strcmp(policy, "always") == 0)
		return st != RS_CANCELLED;
	if (strcmp(policy, "on-failure") == 0)
		return st == RS_FAILED || st == RS_TIMED_OUT || st == RS_LOST;
	return false;
}

static int restarted_already(struct store *st, int64_t id)
{
	sqlite3_stmt *q;
	int rc, n = 0;

	/* One request that is not JSON must not make json_extract fail the
	 * whole query (the answer would be "no" for every run, and each
	 * would be restarted every second). */
	rc = sqlite3_prepare_v2(store_db(st), "SELECT count(*) FROM runs WHERE CASE WHEN "
				"json_valid(request) THEN json_extract(request, '$.restart_of') END = ?",
				-1, &q, NULL);
	if (rc != SQLITE_OK)
		return 1;	/* cannot tell: do not start a second copy */
	sqlite3_bind_int64(q, 1, id);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	else
		n = 1;		/* cannot tell either */
	sqlite3_finalize(q);
	return n > 0;
}

struct pending {
	int64_t ids[1024];
	size_t n;
};

static int pick(void *ctx, const struct run_rec *r)
{
	struct pending *p = ctx;
	json_t *j;
	const char *pol;

	if (!run_state_final(r->state) || r->request == NULL || p->n == 1024)
		return 0;
	j = json_loads(r->request, 0, NULL);
	pol = j ? json_string_value(json_object_get(j, "restart")) : NULL;
	if (pol && strcmp(pol, "no") != 0 && wants_restart(pol, r->state))
		p->ids[p->n++] = r->id;
	json_decref(j);
	return 0;
}

/* Restarts that failed (user or script gone, store error): retried with the
 * same backoff as restarts, and given up, with one line, after as many
 * tries as the run may restart — not retried every second for ever.  Kept
 * in memory only: a new serve tries again. */
#define FAILED_MAX 64
static struct {
	int64_t run;
	unsigned tries;
	int64_t next_ms;
} failed[FAILED_MAX];

/* Whether run id's restart is not to be tried now (waiting or given up). */
static bool restart_held(int64_t id, unsigned maxr)
{
	for (size_t i = 0; i < FAILED_MAX; i++)
		if (failed[i].run == id)
			return failed[i].tries >= (maxr ? maxr : 1) || runrec_now_ms() < failed[i].next_ms;
	return false;
}

static void restart_failed(int64_t id, unsigned maxr)
{
	size_t i, slot = 0;

	for (i = 0; i < FAILED_MAX; i++) {
		if (failed[i].run == id)
			break;
		if (failed[i].next_ms < failed[slot].next_ms)
			slot = i;	/* empty or oldest */
	}
	if (i == FAILED_MAX) {
		i = slot;
		failed[i].run = id;
		failed[i].tries = 0;
	}
	failed[i].tries++;
	failed[i].next_ms = runrec_now_ms() + (1000LL << (failed[i].tries < 6 ? failed[i].tries : 6));
	if (failed[i].tries >= (maxr ? maxr : 1))
		say("restart-gave-up run=%lld tries=%u", (long long)id, failed[i].tries);
}

/* Re-submits run r as attempt+1, detached; logs the decision. */
static void restart(const struct settings *s, struct store *st, const struct run_rec *r)
{
	struct run_request *req = calloc(1, sizeof(*req));
	struct settings s2 = *s;
	struct run_plan plan;
	json_t *j = json_loads(r->request, 0, NULL), *v;
	const char *via = NULL;
	unsigned attempt, maxr;
	int64_t backoff, due;
	char err[2048];
	bool own;
	int rc;
	size_t i;

	if (req == NULL || j == NULL)
		goto out;
	attempt = (unsigned)json_integer_value(json_object_get(j, "attempt"));
	maxr = (unsigned)json_integer_value(json_object_get(j, "max_restarts"));
	if (attempt >= maxr || restart_held(r->id, maxr) || restarted_already(st, r->id))
		goto out;
	backoff = 1000LL << (attempt < 6 ? attempt : 6);
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	due = r->ended_at + backoff;
	if (runrec_now_ms() < due)
		goto out;
	req->script_id = r->script_id;
	json_array_foreach(json_object_get(j, "args"), i, v)
		if (i < RUN_MAX_ARGS)
			req->args[req->n_args++] = json_string_value(v);
	json_array_foreach(json_object_get(j, "env"), i, v)
		if (i < RUN_MAX_ENV)
			req->env[req->n_env++] = json_string_value(v);
	req->timeout_ns = (uint64_t)json_integer_value(json_object_get(j, "timeout_ms")) * 1000000ULL;
	req->restart = json_string_value(json_object_get(j, "restart"));
	req->max_restarts = maxr;
	req->attempt = attempt + 1;
	req->restart_of = r->id;
	req->user = json_string_value(json_object_get(j, "user"));
	req->net = json_string_value(json_object_get(j, "network"));
	if (req->user) {
		struct passwd *pw = getpwnam(req->user);

		if (pw == NULL) {
			say("restart-failed run=%lld error=\"no user '%s'\"", (long long)r->id, req->user);
			restart_failed(r->id, maxr);
			goto out;
		}
		req->drop = true;
		req->uid = pw->pw_uid;
		req->gid = pw->pw_gid;
		snprintf(req->home, sizeof(req->home), "%s", pw->pw_dir);
	}
	v = json_object_get(j, "exec_mode");
	if (json_is_string(v))
		s2.exec_mode = strcmp(json_string_value(v), "direct") == 0 ? EXEC_DIRECT : EXEC_INTERPRETER;
	if (run_prepare(&s2, st, req, &plan, err, sizeof(err)) < 0) {
		say("restart-failed run=%lld error=\"%s\"", (long long)r->id, err);
		restart_failed(r->id, maxr);
		goto out;
	}
	/* The bot's runner script, when serve wrote one, is what the
	 * restarted run executes (through the interpreter). */
	via = bots ? botscripts_path_for(bots, r) : NULL;
	if (via)
		snprintf(plan.script_path, sizeof(plan.script_path), "%s", via);
	/* serve supervises the new run itself, like a run handed over by
	 * exec --detach (and so with the same record of what it needs);
	 * a run without a cgroup gets a supervisor of its own, from the same
	 * record, as exec would give it (see handoff() in run.c). */
	err[0] = '\0';
	own = !s2.use_cgroup || !run_host_cgroups(host);
	rc = run_handoff_mark(&s2, st, req, &plan);
	if (rc == 0 && own) {
		rc = run_daemon_exec(&s2, "supervise-run", plan.id, NULL, err, sizeof(err));
	} else if (rc == 0) {
		rc = run_host_take(host, plan.id, err, sizeof(err));
		/* Its cgroup could not be made: as above, from serve's hands. */
		own = rc == -EOPNOTSUPP;
		rc = rc == 1 ? 0 : own ? run_host_hand_on(host, &s2, plan.id, err, sizeof(err)) : -1;
	}
	if (rc < 0) {
		struct run_verdict fv = { .state = RS_FAILED, .cpu_ms = -1, .peak_rss_kb = -1,
					  .error = "runner serve could not supervise the restart" };

		runrec_finish(st, plan.id, &fv);
		say("restart-failed run=%lld as=%lld error=\"%s\"", (long long)r->id,
		    (long long)plan.id, err[0] ? err : "cannot supervise it");
		restart_failed(r->id, maxr);
		goto out;
	}
	say("restarted run=%lld as=%lld policy=%s after=%s attempt=%u/%u backoff_ms=%lld%s%s%s",
	    (long long)r->id, (long long)plan.id, req->restart, run_state_name(r->state),
	    req->attempt, maxr, (long long)backoff, via ? " via=" : "", via ? via : "",
	    own ? " supervisor=own" : "");
out:
	json_decref(j);
	free(req);
}

static void restarts(const struct settings *s, struct store *st)
{
	struct pending *p = calloc(1, sizeof(*p));
	char err[512];
	size_t i;

	if (p == NULL)
		return;
	if (runrec_list(st, NULL, pick, p, err, sizeof(err)) == 0) {
		for (i = 0; i < p->n; i++) {
			struct run_rec r;

			if (runrec_get(st, p->ids[i], &r, NULL, 0) == 0) {
				restart(s, st, &r);
				run_rec_free(&r);
			}
		}
	}
	free(p);
}

struct live {
	int64_t ids[4096];
	bool ours[4096];	/* supervised by this serve */
	size_t n;
};

static int pick_live(void *ctx, const struct run_rec *r)
{
	struct live *l = ctx;
	json_t *j;
	const char *pol;

	if (run_state_final(r->state) || r->request == NULL || l->n == 4096)
		return 0;
	j = json_loads(r->request, 0, NULL);
	pol = j ? json_string_value(json_object_get(j, "restart")) : NULL;
	if (pol && strcmp(pol, "no") != 0)
		l->ids[l->n++] = r->id;
	json_decref(j);
	return 0;
}

static void ended(void *ctx, int64_t id, int state, const char *error)
{
	(void)ctx;
	if (state == RS_RUNNING)
		say("started run=%lld %s", (long long)id, error);
	else if (state == -ECANCELED)
		say("ended run=%lld status=elsewhere", (long long)id);
	else if (state < 0)
		say("ended run=%lld error=\"%s\"", (long long)id, error ? error : strerror(-state));
	else
		say("ended run=%lld status=%s%s%s%s", (long long)id,
		    run_state_name((enum run_state)state), error ? " error=\"" : "",
		    error ? error : "", error ? "\"" : "");
}

static void took(void *ctx, int64_t id, enum run_take how, const char *text)
{
	(void)ctx;
	if (how == RUN_TAKE_HOSTED)
		say("supervising run=%lld from=exec-detach", (long long)id);
	else if (how == RUN_TAKE_OWN)
		say("handed run=%lld from=exec-detach supervisor=own reason=\"no cgroup: %s\"",
		    (long long)id, text);
	else if (how == RUN_TAKE_FAILED)
		say("handoff-failed run=%lld error=\"%s\"", (long long)id, text);
}

/* Turns of the loop until none of ids[0..n) is hosted any more; another
 * SIGTERM or SIGINT cancels every hosted run meanwhile. */
static void drain(int sigfd, const int64_t *ids, size_t n, bool all)
{
	struct signalfd_siginfo si;
	bool again = false;

	for (;;) {
		size_t i, left = 0;

		for (i = 0; i < n; i++)
			left += run_host_has(host, ids[i]);
		if ((all ? run_host_live(host) : left) == 0)
			return;
		if (run_host_turn(host, sigfd, 1000, ended, NULL) != 1)
			continue;
		while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD)
				run_host_sigchld(host);
			else if (si.ssi_signo == SIGUSR1)
				run_host_check_cancel(host);
			else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !again) {
				again = true;
				say("stop-cancel-all signal=%s runs=%zu", strsignal((int)si.ssi_signo),
				    run_host_live(host));
				run_host_cancel(host, 0, "cancelled: runner serve was stopped twice");
			}
		}
	}
}

/* SIGTERM: the runs serve keeps alive are cancelled or waited for; the
 * other runs it supervises are supervised to their end (a second SIGTERM
 * cancels them). */
static void stop(const struct settings *s, struct store *st, int sigfd)
{
	struct live *l = calloc(1, sizeof(*l));
	char err[512];
	bool already;
	size_t i;
	int r;

	if (l == NULL)
		return;
	runrec_list(st, NULL, pick_live, l, err, sizeof(err));
	/* Ours first, without blocking, then the other supervisors'. */
	for (i = 0; i < l->n; i++)
		l->ours[i] = run_host_has(host, l->ids[i]);
	if (!s->serve_stop_wait)
		for (i = 0; i < l->n; i++)
			if (l->ours[i])
				run_host_cancel(host, l->ids[i], "cancelled: runner serve stopping "
						"(RUNNER_SERVE_STOP=cancel)");
	for (i = 0; i < l->n; i++) {
		if (l->ours[i])
			continue;
		if (s->serve_stop_wait) {
			r = run_wait(st, l->ids[i], 0, err, sizeof(err));
			say("stop-waited run=%lld status=%s", (long long)l->ids[i],
			    r < 0 ? strerror(-r) : run_state_name((enum run_state)r));
		} else {
			r = run_cancel(st, l->ids[i], (int)(s->kill_grace_ns / 1000000) + 60000,
				       &already, err, sizeof(err));
			say("stop-cancelled run=%lld status=%s", (long long)l->ids[i],
			    r < 0 ? strerror(-r) : run_state_name((enum run_state)r));
		}
	}
	drain(sigfd, l->ids, l->n, false);
	for (i = 0; i < l->n; i++) {
		struct run_rec rec;

		if (!l->ours[i] || runrec_get(st, l->ids[i], &rec, NULL, 0) < 0)
			continue;
		/* Only the ones that were ours: the others are said above. */
		say("%s run=%lld status=%s", s->serve_stop_wait ? "stop-waited" : "stop-cancelled",
		    (long long)l->ids[i], run_state_name(rec.state));
		run_rec_free(&rec);
	}
	if (run_host_live(host)) {
		say("stop-waiting runs=%zu (another SIGTERM cancels them)", run_host_live(host));
		drain(sigfd, NULL, 0, true);
	}
	free(l);
}

/* Takes the handoff lock when it can; says so when that changes. */
static void announce(const struct settings *s, bool first)
{
	static bool on;
	char herr[PATH_MAX + 128];

	if (on)
		return;
	int ret = run_host_announce(host, herr, sizeof(herr));

	if (ret == -EOPNOTSUPP) {
		if (first)
			say("handoff-off reason=\"%s\" (exec --detach runs get supervisors of their "
			    "own: without a cgroup only a subreaper of one run finds all of its "
			    "processes)", herr);
		return;
	}
	if (ret < 0) {
		if (first)
			say("handoff-off error=\"%s\" (exec --detach runs get supervisors of their "
			    "own; tried again every second)", herr);
		return;
	}
	on = true;
	say("handoff-on lock=%s/serve.lock (exec --detach hands runs to this serve)", s->state_dir);
	run_host_take_pending(host, took, NULL);
}

int serve_main(const struct settings *s, char *err, size_t errlen)
{
	struct store *st = NULL;
	sigset_t set, old;
	int64_t next_house, next_tick;
	int sigfd, ret;
	bool running = true;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);	/* the runs serve supervises */
	sigaddset(&set, SIGUSR1);	/* runner cancel of one of them */
	sigaddset(&set, SIGUSR2);	/* exec --detach handed a run over */
	if (sigprocmask(SIG_BLOCK, &set, &old) < 0 ||
	    (sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "signals: %s", strerror(errno));
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	ret = store_open(s->state_dir, &st, err, errlen);
	if (ret < 0)
		goto out;
	bots = calloc(1, sizeof(*bots));
	if (bots == NULL) {
		ret = -ENOMEM;
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		goto out;
	}
	ret = run_host_open(s, st, &host, err, errlen);
	if (ret < 0)
		goto out;
	say("started pid=%d state=%s cleanup_interval_ms=%llu stop=%s", (int)getpid(),
	    s->state_dir, (unsigned long long)(s->cleanup_interval_ns / 1000000),
	    s->serve_stop_wait ? "wait" : "cancel");
	/* Recover first: a run of a serve that died is LOST (its watchdog
	 * killed it), not taken again. */
	housekeeping(s, st);
	announce(s, true);
	next_house = mono_ms() + (int64_t)(s->cleanup_interval_ns / 1000000);
	next_tick = 0;
	while (running) {
		struct signalfd_siginfo si;
		int64_t left = next_house - mono_ms(), tick = next_tick - mono_ms();

		if (tick < left)
			left = tick;
		/* The runs' pipes and timers wake the loop as they need;
		 * restarts are looked at every second (their backoff is
		 * counted in seconds). */
		if (run_host_turn(host, sigfd, (int)(left > 0 ? left : 0), ended, NULL) == 1) {
			while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGCHLD) {
					run_host_sigchld(host);
				} else if (si.ssi_signo == SIGUSR1) {
					run_host_check_cancel(host);
				} else if (si.ssi_signo == SIGUSR2) {
					run_host_take_pending(host, took, NULL);
				} else if (si.ssi_signo == SIGHUP) {
					say("hangup: housekeeping now");
					next_house = 0;
				} else {
					say("stopping signal=%s", strsignal((int)si.ssi_signo));
					running = false;
				}
			}
		}
		if (!running)
			break;
		if (mono_ms() < next_tick)
			continue;
		next_tick = mono_ms() + 1000;
		/* Another serve that held the lock may have gone. */
		announce(s, false);
		/* A handed-over run whose signal was merged with another. */
		run_host_take_pending(host, took, NULL);
		botscripts_sync(s, st, bots, say_line);
		restarts(s, st);
		if (mono_ms() >= next_house) {
			housekeeping(s, st);
			next_house = mono_ms() + (int64_t)(s->cleanup_interval_ns / 1000000);
		}
	}
	/* No more runs handed over: a submitter now supervises its own. */
	run_host_withdraw(host);
	stop(s, st, sigfd);
	botscripts_remove_all(bots, say_line);
	say("stopped");
	ret = 0;
out:
	run_host_close(host);
	host = NULL;
	free(bots);
	bots = NULL;
	store_close(st);
	close(sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}
