/* The supervisor of a run; see run.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "run.h"
#include "cgroup.h"
#include "detect.h"
#include "adopt.h"
#include "diag.h"
#include "errnames.h"
#include "interp.h"
#include "runlimits.h"
#include "logs.h"
#include "proctree.h"
#include "runnerdir.h"
#include "runrec.h"
#include "spawn.h"
#include "upload.h"
#include "userexec.h"
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "covflush.h"

extern char **environ;

/* How often a queued supervisor looks for a free slot. */
#define QUEUE_POLL_MS 50
/* After the main process is gone: how long the rest of the tree may take
 * to die and the pipes to reach EOF before the supervisor gives up. */
#define TEARDOWN_MS 5000
/* ...and however much it writes, not longer than this. */
#define TEARDOWN_MAX_MS 60000
/* How long a run must have been running before its supervisor gives the
 * setup's garbage back (sup_tick): most runs of a busy service end sooner,
 * and for them the trim (page releases, a TLB flush on every CPU the
 * process ran on) was a cost with nothing to gain. */
#define SUP_TRIM_MS 1000

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- preparation (in the submitting process) ---- */

static bool env_name_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');
	const char *p;

	if (eq == NULL || eq == kv)
		return false;
	for (p = kv; p < eq; p++) {
		char c = *p;

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
		      (p > kv && c >= '0' && c <= '9')))
			return false;
	}
	/* The marker is how the run's processes are found; a script
	 * request must not be able to hide from the kill. */
	return strncmp(kv, PROC_MARK_VAR "=", sizeof(PROC_MARK_VAR)) != 0 &&
	       strncmp(kv, "FIELDRIG_RUN_ID=", 16) != 0;
}

bool run_net_none(const struct settings *s, const struct run_request *req)
{
	return req->net ? strcmp(req->net, "none") == 0 : s->net_none;
}

static char *request_json(const struct settings *s, const struct run_request *req)
{
	json_t *args = json_array(), *env = json_array(), *o;
	char *out;
	size_t i;

	for (i = 0; args && i < req->n_args; i++)
		json_array_append_new(args, json_string(req->args[i]));
	for (i = 0; env && i < req->n_env; i++)
		json_array_append_new(env, json_string(req->env[i]));
	o = json_pack("{s:o, s:o, s:I, s:s?, s:s, s:s, s:i, s:i, s:I, s:s}", "args", args, "env", env,
		      "timeout_ms", (json_int_t)((req->timeout_ns ? req->timeout_ns :
						 s->max_execution_ns) / 1000000),
		      "user", req->user,
		      "exec_mode", s->exec_mode == EXEC_DIRECT ? "direct" : "interpreter",
		      "restart", req->restart ? req->restart : "no",
		      "max_restarts", (int)req->max_restarts,
		      "attempt", (int)req->attempt,
		      "restart_of", (json_int_t)req->restart_of,
		      "network", run_net_none(s, req) ? "none" : "host");
	if (o == NULL)
		return NULL;
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

/* Replaces c's interpreter by the system one when req's user cannot
 * execute it (and can execute that); c->reason tells. */
static void user_interp(const struct run_request *req, enum interp_lang lg, struct interp_choice *c)
{
	static const char *const sys[LANG__COUNT] = { "/usr/bin/python3", "/usr/bin/node", NULL };
	char why[PATH_MAX + 256], why2[PATH_MAX + 256];

	if (userexec_check(c->path, req->uid, req->gid, why, sizeof(why)) == 0)
		return;
	if (sys[lg] == NULL || strcmp(sys[lg], c->path) == 0 ||
	    userexec_check(sys[lg], req->uid, req->gid, why2, sizeof(why2)) < 0) {
		/* Nothing better: the run fails at exec with the diagnostics. */
		return;
	}
	snprintf(c->reason, sizeof(c->reason), "%s (user %s cannot execute %s: %s)", sys[lg],
		 req->user ? req->user : "?", c->path, why);
	snprintf(c->path, sizeof(c->path), "%s", sys[lg]);
}

int run_prepare(const struct settings *s, struct store *st, const struct run_request *req,
		struct run_plan *plan, char *err, size_t errlen)
{
	char file[512], lang[32], uuid[37], *reqjs, why_interp[1100] = "";
	const char *dot;
	size_t i;
	int ret;

	memset(plan, 0, sizeof(*plan));
	for (i = 0; i < req->n_env; i++) {
		if (!env_name_ok(req->env[i])) {
			snprintf(err, errlen, "--env '%s': expected NAME=VALUE with NAME a shell "
				 "variable name (not FIELDRIG_RUN_*)", req->env[i]);
			return -EINVAL;
		}
	}
	ret = runrec_script(st, req->script_id, file, sizeof(file), lang, sizeof(lang), err, errlen);
	if (ret < 0)
		return ret == -ENOENT ? -EINVAL : ret;
	snprintf(plan->script_path, sizeof(plan->script_path), "%s/%s", s->scripts_dir, file);
	dot = strrchr(file, '.');
	snprintf(plan->ext, sizeof(plan->ext), "%s", dot ? dot : "");

	if (s->exec_mode == EXEC_INTERPRETER) {
		struct detect_input in;
		struct detect_result dr;
		struct interp_choice c;
		struct interp_env e = { 0 };
		int lg = interp_lang_from_name(lang);

		if (lg < 0) {
			snprintf(err, errlen, "script %s: no interpreter for language '%s'",
				 req->script_id, lang);
			return -EINVAL;
		}
		detect_input_init(&in, s->root, environ);
		in.override = s->container;
		/* -EINVAL (a bad override) still leaves the detected kind. */
		ret = detect_container(&in, &dr);
		if (ret == -ENOMEM)
			return ret;
		e.in_container = dr.kind != CONTAINER_NONE;
		e.container = container_kind_name(dr.kind);
		/* A check that passed is not repeated for every run (see
		 * interp.h): it was most of a short run's cost. */
		e.cache_dir = s->state_dir;
		ret = interp_choose(s, (enum interp_lang)lg, &e, &c);
		detect_result_free(&dr);
		if (ret < 0) {
			snprintf(err, errlen, "interpreter for %s: %s", lang, c.reason);
			return ret;
		}
		/* An interpreter chosen for root (a pyenv shim under /root,
		 * 0700) may be out of --user's reach: take the system one. */
		if (req->drop && !c.explicit_setting)
			user_interp(req, (enum interp_lang)lg, &c);
		snprintf(plan->interp, sizeof(plan->interp), "%s", c.path);
		snprintf(why_interp, sizeof(why_interp), "%s", c.reason);
		/* interp args are string literals owned by interp.c */
		for (i = 0; i < c.n_args && i < 2; i++)
			plan->interp_args[i] = c.args[i];
		plan->n_interp_args = c.n_args;
	}
	ret = uuid_v4(uuid);
	if (ret < 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(-ret));
		return ret;
	}
	snprintf(plan->marker, sizeof(plan->marker), "%s", uuid);
	reqjs = request_json(s, req);
	if (reqjs == NULL)
		return -ENOMEM;
	ret = runrec_create(st, req->script_id, plan->marker, reqjs, &plan->id, err, errlen);
	free(reqjs);
	if (ret == 0 && why_interp[0])
		runrec_set_request_field(st, plan->id, "interpreter", why_interp);
	return ret;
}

/* ---- the supervisor ---- */

struct sup {
	const struct settings *s;
	const struct run_request *req;
	const struct run_plan *plan;
	struct store *st;
	struct run_machine m;
	int sigfd;
	char marker_kv[80];
	char rundir[PATH_MAX];
	char staged[PATH_MAX + 32];
	char staged_rel[32];
	bool have_cg;
	struct cgroup_run cg;
	struct watchdog wd;
	pid_t pid;
	uint64_t pid_start;
	int out_rd, err_rd;
	/* Allocated when the first byte of output or note comes: a sleeping
	 * run hosted by serve costs no log buffers. */
	struct log_writer *lw;
	int lw_err;
	/* NULL: this process supervises this one run (exec, or its detached
	 * supervisor); else the serve loop hosting it with others. */
	struct run_host *host;
	/* The environment the allowlist is taken from: ours, or the
	 * submitter's for a run handed to serve. */
	char *const *envv;
	bool exited;
	int wstatus;
	struct rusage ru;
	struct rusage ru_before;
	int64_t deadline, grace_deadline;
	int64_t trim_at;	/* monotonic ms of the trim, 0: none due */
	/* Teardown, after the machine's verdict: kill and wait for the
	 * domain to empty, then read the pipes to their end; serve steps it
	 * turn by turn beside its other runs, a lone supervisor blocks. */
	enum { TD_NONE, TD_KILL, TD_DRAIN, TD_DONE } td;
	int64_t td_deadline;
	int64_t td_drain_end;	/* the drain's end, whatever is still written */
	uint64_t timeout_ns;
	char error[4096];
	int exec_errno;
	const char *cancel_why;
};

static struct log_writer *sup_lw(struct sup *x)
{
	struct log_writer *w;

	if (x->lw || x->lw_err)
		return x->lw;
	w = malloc(sizeof(*w));
	x->lw_err = w ? log_writer_init(w, x->st, x->plan->id, x->s->max_log) : -ENOMEM;
	if (x->lw_err < 0)
		free(w);
	else
		x->lw = w;
	return x->lw;
}

static void note(struct sup *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line of the runner's own in the run's log (and on stderr). */
static void note(struct sup *x, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "[runner] ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	if (sup_lw(x))
		log_writer_note(x->lw, line);
}

/* *failed: the path an error is about - the stored script when it cannot
 * be opened or read, else the staged copy. */
static int copy_script(struct sup *x, mode_t mode, const char **failed)
{
	char buf[65536];
	int in, out, ret = 0;
	ssize_t n;

	*failed = x->plan->script_path;
	in = open(x->plan->script_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -errno;
	*failed = x->staged;
	out = open(x->staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (out < 0) {
		ret = -errno;
		close(in);
		return ret;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			ret = errno ? -errno : -EIO;
			break;
		}
	}
	if (n < 0) {
		ret = -errno;
		*failed = x->plan->script_path;
	}
	/* The umask must not decide whether direct mode can exec it. */
	if (ret == 0 && fchmod(out, mode) < 0)
		ret = -errno;
	if (ret == 0 && x->req->drop && fchown(out, x->req->uid, x->req->gid) < 0)
		ret = -errno;
	close(in);
	if (close(out) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

/* The per-run directory <runner dir>/run-<id>-<marker>: the working
 * directory, holding the staged copy of the script.  The child enters it
 * before dropping privileges and names the script relative to it, so a
 * dropped user needs no access to the state directory above. */
static int stage(struct sup *x)
{
	struct runnerdir_choice c;
	const char *dir = NULL, *failed;
	size_t i;
	int ret;

	ret = runnerdir_resolve(x->s, &c);
	if (ret == 0) {
		dir = c.path;
	} else {
		/* Direct mode with no exec-able candidate: the regression is
		 * reproduced on purpose, so use the first writable one and let
		 * the exec fail - with the mount's options in the error. */
		for (i = 0; i < c.n && dir == NULL; i++)
			if (c.probes[i].err == 0)
				dir = c.probes[i].path;
		if (dir == NULL) {
			snprintf(x->error, sizeof(x->error), "runner dir: %s", c.reason);
			return ret;
		}
	}
	/* Only a decision worth knowing goes into the run's log; the plain
	 * default would be noise in every run's output. */
	if (ret < 0)
		note(x, "runner dir: %s; direct mode tries %s anyway", c.reason, dir);
	else if (c.fallback || c.noexec)
		note(x, "runner dir: %s", c.reason);
	snprintf(x->rundir, sizeof(x->rundir), "%s/run-%lld-%.8s", dir, (long long)x->plan->id,
		 x->plan->marker);
	if (mkdir(x->rundir, 0700) < 0) {
		ret = -errno;
		goto fail;
	}
	/* Recorded before anything goes in, so recover can clear it up after
	 * a supervisor that died. */
	runrec_set_workdir(x->st, x->plan->id, x->rundir);
	if (x->req->drop && chown(x->rundir, x->req->uid, x->req->gid) < 0) {
		ret = -errno;
		goto fail;
	}
	snprintf(x->staged_rel, sizeof(x->staged_rel), "./script%s", x->plan->ext);
	snprintf(x->staged, sizeof(x->staged), "%s/script%s", x->rundir, x->plan->ext);
	ret = copy_script(x, x->s->exec_mode == EXEC_DIRECT ? 0750 : 0640, &failed);
	if (ret < 0) {
		char *d = diag_line("stage script", failed, -ret);

		snprintf(x->error, sizeof(x->error), "%s", d ? d : strerror(-ret));
		free(d);
		return ret;
	}
	return 0;
fail:
	{
		char *d = diag_line("mkdir", x->rundir, -ret);

		snprintf(x->error, sizeof(x->error), "%s", d ? d : strerror(-ret));
		free(d);
	}
	return ret;
}

/* Removes the staged script and, when nothing else is in it, the per-run
 * directory.  Files the script left in its working directory stay for
 * `runner cleanup`. */
static void unstage_dir(const char *rundir)
{
	static const char *const exts[] = { ".py", ".js", ".ts", "", NULL };
	char p[PATH_MAX + 32];
	size_t i;

	for (i = 0; exts[i]; i++) {
		snprintf(p, sizeof(p), "%s/script%s", rundir, exts[i]);
		unlink(p);
	}
	rmdir(rundir);
}

static void unstage(struct sup *x)
{
	/* The staged name first: its extension may be none of those
	 * unstage_dir knows (direct mode runs any allowed type). */
	if (x->staged[0])
		unlink(x->staged);
	if (x->rundir[0])
		unstage_dir(x->rundir);
}

static const char *env_get(char *const *envv, const char *name)
{
	size_t l = strlen(name);

	for (; envv && *envv; envv++)
		if (strncmp(*envv, name, l) == 0 && (*envv)[l] == '=')
			return *envv + l + 1;
	return NULL;
}

/* The child's environment: an allowlist of the runner's own, then the
 * request's --env, then the run's id and marker. */
static char **build_env(struct sup *x)
{
	static const char *const allow[] = { "PATH", "LANG", "TZ", "HOME", NULL };
	size_t cap = 16 + x->req->n_env, n = 0, i;
	char **envp, *kv;
	char *const *e;

	for (e = x->envv; *e; e++)
		cap++;
	envp = calloc(cap, sizeof(*envp));
	if (envp == NULL)
		return NULL;
#define ADD(...) do { if (asprintf(&kv, __VA_ARGS__) < 0) goto nomem; envp[n++] = kv; } while (0)
	for (i = 0; allow[i]; i++) {
		const char *v = env_get(x->envv, allow[i]);

		if (strcmp(allow[i], "HOME") == 0 && x->req->drop)
			v = x->req->home;
		if (v == NULL && strcmp(allow[i], "PATH") == 0)
			v = "/usr/local/bin:/usr/bin:/bin";
		if (v)
			ADD("%s=%s", allow[i], v);
	}
	for (e = x->envv; *e; e++)
		if (strncmp(*e, "LC_", 3) == 0)
			ADD("%s", *e);
	if (x->req->drop) {
		ADD("USER=%s", x->req->user);
		ADD("LOGNAME=%s", x->req->user);
	}
	for (i = 0; i < x->req->n_env; i++) {
		size_t kl = (size_t)(strchr(x->req->env[i], '=') - x->req->env[i]), j;

		/* --env replaces an allowlisted value of the same name. */
		for (j = 0; j < n; j++) {
			if (strncmp(envp[j], x->req->env[i], kl + 1) == 0) {
				free(envp[j]);
				envp[j] = envp[--n];
				envp[n] = NULL;
				break;
			}
		}
		ADD("%s", x->req->env[i]);
	}
	ADD("FIELDRIG_RUN_ID=%lld", (long long)x->plan->id);
	ADD("%s", x->marker_kv);
#undef ADD
	return envp;
nomem:
	for (i = 0; i < n; i++)
		free(envp[i]);
	free(envp);
	return NULL;
}

static void free_env(char **envp)
{
	size_t i;

	for (i = 0; envp && envp[i]; i++)
		free(envp[i]);
	free(envp);
}

static void host_reap(struct run_host *h);
/* The soft NOFILE limit this process had before serve raised it (0: not
 * raised): what its scripts and the supervisors it starts get back. */
static rlim_t nofile_soft_orig;

/* Where the no-cgroup sweep starts: a lone supervisor is the subreaper of
 * its run alone, so everything below it is the run's; serve's processes
 * below it belong to many runs, so only the main process's descendants
 * (and the marker, which catches the orphans re-parented to serve). */
static pid_t sweep_root(struct sup *x)
{
	/* Once reaped, the main pid may be reused by anyone: from then on
	 * the marker alone (its orphans carry it). */
	return x->host ? (x->pid > 0 && !x->exited ? x->pid : -1) : getpid();
}

static int sweep(struct sup *x, int sig)
{
	pid_t skip[1] = { x->wd.pid };
	pid_t root = sweep_root(x);

	/* root -1: no main process left; the marker alone (proc_signal_tree
	 * with root 0 looks at every process for it). */
	return proc_signal_tree(root > 0 ? root : 0, skip, x->wd.pid > 0 ? 1 : 0, x->marker_kv, sig);
}

/* Signals the whole domain.  Returns 0 when it found nothing alive to
 * signal (so a KILL has nothing to wait for), else 1. */
static int domain_signal(struct sup *x, int sig)
{
	if (x->have_cg && sig != SIGKILL) {
		cgroup_signal(&x->cg, sig);
		return 1;
	}
	if (x->have_cg) {
		cgroup_kill(&x->cg);
		return cgroup_populated(&x->cg) != 0;
	}
	/* No cgroup: the process group, then everything below us (we are the
	 * subreaper, so setsid'd orphans are our children) and everything with
	 * the marker.  The sweep's count is the answer: it sees every member
	 * of the group (they descend from the main process) and, unlike
	 * kill(), does not count the main process as a zombie. */
	if (x->pid > 0) {
		kill(-x->pid, sig);
		if (sig == SIGTERM)
			kill(-x->pid, SIGCONT);
	}
	return sweep(x, sig) != 0;
}

/* Records what wait4 returned for pid, when it is x's. */
static bool sup_reaped(struct sup *x, pid_t p, int ws, const struct rusage *ru)
{
	if (p == x->pid && !x->exited) {
		x->exited = true;
		x->wstatus = ws;
		x->ru = *ru;
		return true;
	}
	if (p == x->wd.pid) {
		x->wd.pid = -1;
		return true;
	}
	return false;
}

static void reap(struct sup *x)
{
	struct rusage ru;
	int ws;
	pid_t p;

	if (x->host) {
		host_reap(x->host);
		return;
	}
	while ((p = wait4(-1, &ws, WNOHANG, &ru)) > 0)
		sup_reaped(x, p, ws, &ru);
}

static void act(struct sup *x, enum run_action a);

static void step(struct sup *x, enum run_event ev)
{
	act(x, run_step(&x->m, ev));
}

static void act(struct sup *x, enum run_action a)
{
	switch (a) {
	case ACT_TERM:
		note(x, "%s: TERM to the whole tree, KILL after %llu ms",
		     x->m.stop_reason == RS_TIMED_OUT ? "timeout" : "cancel",
		     (unsigned long long)(x->s->kill_grace_ns / 1000000));
		domain_signal(x, SIGTERM);
		x->grace_deadline = mono_ms() + (int64_t)(x->s->kill_grace_ns / 1000000);
		if (x->s->kill_grace_ns == 0)
			step(x, EV_GRACE_EXPIRED);
		break;
	case ACT_KILL:
		note(x, "grace over: KILL to the whole tree");
		domain_signal(x, SIGKILL);
		break;
	default:
		break;
	}
}

static void check_cancel(struct sup *x)
{
	struct run_rec r;

	if (runrec_get(x->st, x->plan->id, &r, NULL, 0) == 0) {
		bool c = r.cancel_requested;

		run_rec_free(&r);
		if (c) {
			x->cancel_why = "cancelled by runner cancel";
			step(x, EV_CANCEL);
		}
	}
}

/* Handles what the signalfd holds. */
static void on_signals(struct sup *x)
{
	struct signalfd_siginfo si;

	while (read(x->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(x);
			break;
		case SIGUSR1:
			check_cancel(x);
			break;
		case SIGTERM:
		case SIGINT:
		case SIGHUP:
			if (x->cancel_why == NULL)
				x->cancel_why = si.ssi_signo == SIGTERM ? "supervisor got SIGTERM" :
						si.ssi_signo == SIGINT ? "supervisor got SIGINT" :
						"supervisor got SIGHUP";
			step(x, EV_CANCEL);
			break;
		}
	}
}

static void read_pipe(struct sup *x, int *fd, enum log_stream s)
{
	char drop[4096];
	ssize_t n;

	if (sup_lw(x)) {
		n = log_writer_read(x->lw, s, *fd);
	} else {
		/* No writer (out of memory, said when the run ends): the
		 * output is drained so the script never blocks on a full
		 * pipe. */
		n = read(*fd, drop, sizeof(drop));
		if (n < 0)
			n = -errno;
	}
	if (n == 0 || (n < 0 && n != -EINTR && n != -EAGAIN)) {
		close(*fd);
		*fd = -1;
	}
}

/* The diagnostics line for a failed exec, judged for the user the run
 * was to run as (a dropped run's EACCES is about that user, not root). */
static char *exec_diag(struct sup *x, const char *path, int err)
{
	struct diag_options o;
	struct diag_report r;
	char *line;

	diag_options_init(&o);
	o.runner_dir = x->s->exec_mode == EXEC_DIRECT;
	if (x->req->drop) {
		o.uid = x->req->uid;
		o.gid = x->req->gid;
	}
	if (diag_path(path == x->rundir ? "chdir" : "exec", path, err, &o, &r) < 0)
		return NULL;
	line = diag_format_line(&r);
	diag_report_free(&r);
	return line;
}

static int spawn_child(struct sup *x)
{
	struct spawn_req sr = { 0 };
	struct spawn_child ch;
	enum spawn_step st = SPAWN_STEP_SETUP;
	char *argv[RUN_MAX_ARGS + 8];
	char **envp;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, ret;
	size_t n = 0, i;

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		ret = -errno;
		snprintf(x->error, sizeof(x->error), "pipe: %s", strerror(-ret));
		goto out_pipes;
	}
	/* Bigger pipes: fewer wake-ups for chatty scripts. */
	fcntl(outp[0], F_SETPIPE_SZ, 1 << 20);
	fcntl(errp[0], F_SETPIPE_SZ, 1 << 20);
	if (x->plan->interp[0]) {
		argv[n++] = (char *)x->plan->interp;
		for (i = 0; i < x->plan->n_interp_args; i++)
			argv[n++] = (char *)x->plan->interp_args[i];
	}
	if (x->req->drop && x->plan->interp[0]) {
		sr.pass_file = x->staged_rel;
		argv[n++] = "/dev/fd/3";
	} else {
		argv[n++] = x->staged_rel;
	}
	for (i = 0; i < x->req->n_args; i++)
		argv[n++] = (char *)x->req->args[i];
	argv[n] = NULL;
	envp = build_env(x);
	if (envp == NULL) {
		ret = -ENOMEM;
		snprintf(x->error, sizeof(x->error), "%s", strerror(ENOMEM));
		goto out_pipes;
	}
	sr.file = x->plan->interp[0] ? x->plan->interp : x->staged_rel;
	sr.argv = argv;
	sr.envp = envp;
	sr.cwd = x->rundir;
	sr.out_fd = outp[1];
	sr.err_fd = errp[1];
	sr.lim.cpu_s = x->s->cpu_limit_s;
	sr.lim.data = x->s->memory_limit;
	sr.lim.nofile = x->s->max_files;
	sr.lim.nofile_soft = (uint64_t)nofile_soft_orig;
	sr.lim.nproc = x->s->max_procs;
	sr.lim.fsize = x->s->max_file_size;
	sr.drop = x->req->drop;
	sr.uid = x->req->uid;
	sr.gid = x->req->gid;
	sr.new_netns = run_net_none(x->s, x->req);
	sr.cgroup_dir = x->have_cg ? x->cg.path : NULL;
	{
		char desc[PATH_MAX + 512];

		limits_choose(x->s->max_procs, x->s->memory_limit, x->have_cg ? &x->cg : NULL,
			      x->req->drop, x->req->uid, &sr.lim, desc, sizeof(desc));
		/* In the record, not the log: the log is the script's own
		 * output, byte for byte. */
		runrec_set_limits(x->st, x->plan->id, desc);
	}

	ret = spawn_start(&sr, &ch);
	free_env(envp);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (ret < 0) {
		snprintf(x->error, sizeof(x->error), "fork: %s", strerror(-ret));
		goto out_pipes;
	}
	x->pid = ch.pid;
	ret = x->have_cg && !ch.in_cgroup ? cgroup_add_pid(&x->cg, ch.pid) : 0;
	if (ret < 0 && x->host) {
		/* serve hosts only runs in a cgroup (run_host_take): the
		 * child, still held before its exec, goes. */
		snprintf(x->error, sizeof(x->error), "cannot move pid %d into %s: %s", (int)ch.pid,
			 x->cg.path, strerror(-ret));
		spawn_abort(&ch);
		kill(ch.pid, SIGKILL);
		waitpid(ch.pid, NULL, 0);
		x->pid = -1;
		goto out_pipes;
	}
	if (ret < 0) {
		note(x, "cannot move pid %d into %s: %s; falling back to process group and /proc sweep",
		     (int)ch.pid, x->cg.path, strerror(-ret));
		cgroup_remove(&x->cg);
		x->have_cg = false;
	}
	ret = spawn_release(&ch, &st);
	if (ret < 0) {
		if (st == SPAWN_STEP_EXEC) {
			char path[PATH_MAX + 64], *d;

			/* The path the user can look at: the interpreter, or
			 * the staged script itself in direct mode. */
			snprintf(path, sizeof(path), "%s", x->plan->interp[0] ? x->plan->interp :
				 x->staged);
			d = exec_diag(x, path, -ret);
			snprintf(x->error, sizeof(x->error), "%s", d ? d : strerror(-ret));
			free(d);
			x->exec_errno = -ret;
		} else if (st == SPAWN_STEP_CHDIR) {
			char *d = exec_diag(x, x->rundir, -ret);

			snprintf(x->error, sizeof(x->error), "chdir in the child before exec: %s",
				 d ? d : strerror(-ret));
			free(d);
		} else if (st == SPAWN_STEP_NETNS) {
			/* No silent fallback to the host's network. */
			snprintf(x->error, sizeof(x->error), "network isolation (--net none / "
				 "RUNNER_NETWORK=none): %s or bringing lo up in the child before exec: "
				 "%s (%s)%s", spawn_step_name(st), strerror(-ret), errno_name(-ret) ? errno_name(-ret) : "?",
				 -ret == EPERM ? "; needs CAP_SYS_ADMIN (run as root) or --net host" : "");
		} else {
			snprintf(x->error, sizeof(x->error), "%s in the child before exec: %s",
				 spawn_step_name(st), strerror(-ret));
		}
		waitpid(ch.pid, NULL, 0);
		x->pid = -1;
		goto out_pipes;
	}
	proc_start_time(ch.pid, &x->pid_start);
	x->out_rd = outp[0];
	x->err_rd = errp[0];
	fcntl(x->out_rd, F_SETFL, O_NONBLOCK);
	fcntl(x->err_rd, F_SETFL, O_NONBLOCK);
	return 0;

out_pipes:
	for (i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return ret;
}

static int wait_queue(struct sup *x)
{
	for (;;) {
		struct pollfd pf = { .fd = x->sigfd, .events = POLLIN };
		int r = runrec_claim(x->st, x->plan->id, x->s->max_concurrent);

		if (r == 1) {
			step(x, EV_CLAIM);
			return 0;
		}
		if (r == -ECANCELED)
			return r;
		if (r < 0 && r != -EBUSY) {
			snprintf(x->error, sizeof(x->error), "claim a slot: %s", strerror(-r));
			return r;
		}
		check_cancel(x);
		if (run_state_final(x->m.state))
			return 0;
		if (poll(&pf, 1, QUEUE_POLL_MS) > 0)
			on_signals(x);
		if (run_state_final(x->m.state))
			return 0;
	}
}

/* ---- the per-run machine, driven by a loop ----
 *
 * A run's loop-facing side: the descriptors it waits on (sup_pollfds), when
 * it next needs the loop without one of them being ready (sup_next_ms),
 * and what it does when woken (sup_on_fd, then sup_tick).  The loop is
 * main_loop for a lone supervisor, or serve's (run_host_*) for many. */

/* Fills pf with the run's pipes; returns how many. */
static int sup_pollfds(struct sup *x, struct pollfd *pf)
{
	int n = 0;

	if (x->out_rd >= 0) {
		pf[n].fd = x->out_rd;
		pf[n].revents = 0;
		pf[n++].events = POLLIN;
	}
	if (x->err_rd >= 0) {
		pf[n].fd = x->err_rd;
		pf[n].revents = 0;
		pf[n++].events = POLLIN;
	}
	return n;
}

static int64_t td_next_ms(const struct sup *x, int64_t now);

/* Milliseconds until the run needs a tick of its own (-1: only when a
 * descriptor or signal wakes us). */
static int64_t sup_next_ms(struct sup *x, int64_t now)
{
	int64_t t = -1;
	int due;

	if (run_state_final(x->m.state))
		return td_next_ms(x, now);
	if (x->m.state == RS_RUNNING) {
		int64_t at = x->trim_at && x->trim_at < x->deadline ? x->trim_at : x->deadline;

		t = at > now ? at - now : 0;
	} else if (x->m.state == RS_STOPPING)
		t = x->grace_deadline - now;
	else if (x->m.state == RS_KILLING)
		t = 100;	/* re-kill a straggler now and then */
	due = x->lw ? log_writer_due_ms(x->lw) : -1;
	if (due >= 0 && (t < 0 || due < t))
		t = due;
	if (t < 0 && x->m.state != RS_RUNNING)
		t = 0;
	return t < 0 ? -1 : t;
}

static void sup_on_fd(struct sup *x, const struct pollfd *p)
{
	if (!(p->revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	if (x->td == TD_DRAIN)
		x->td_deadline = mono_ms() + TEARDOWN_MS;
	if (p->fd == x->out_rd)
		read_pipe(x, &x->out_rd, LOG_STDOUT);
	else if (p->fd == x->err_rd)
		read_pipe(x, &x->err_rd, LOG_STDERR);
}

/* The time- and exit-driven steps of the machine. */
static void sup_tick(struct sup *x)
{
	int64_t now;

	/* The exit may have been reaped while a stop was under way; the
	 * table decides what it means in this state. */
	if (x->exited && !run_state_final(x->m.state))
		step(x, WIFEXITED(x->wstatus) && WEXITSTATUS(x->wstatus) == 0 ?
		     EV_EXIT_OK : EV_EXIT_FAIL);
	now = mono_ms();
	if (x->m.state == RS_RUNNING && now >= x->deadline)
		step(x, EV_TIMEOUT);
	if (x->m.state == RS_STOPPING && now >= x->grace_deadline)
		step(x, EV_GRACE_EXPIRED);
	if (x->m.state == RS_KILLING)
		domain_signal(x, SIGKILL);
	if (x->lw && log_writer_due_ms(x->lw) == 0)
		log_writer_flush(x->lw);
	if (x->trim_at && now >= x->trim_at) {
		x->trim_at = 0;
		if (x->m.state == RS_RUNNING) {
			sqlite3_db_release_memory(store_db(x->st));
			malloc_trim(0);
		}
	}
}

static void main_loop(struct sup *x)
{
	while (!run_state_final(x->m.state)) {
		struct pollfd pf[3];
		int64_t t = sup_next_ms(x, mono_ms());
		int n, i;

		pf[0].fd = x->sigfd;
		pf[0].events = POLLIN;
		n = 1 + sup_pollfds(x, pf + 1);
		if (poll(pf, (nfds_t)n, t > INT32_MAX ? INT32_MAX : (int)t) > 0) {
			for (i = 1; i < n; i++)
				sup_on_fd(x, &pf[i]);
			if (pf[0].revents & POLLIN)
				on_signals(x);
		}
		sup_tick(x);
	}
}

/* After the verdict: nothing of the run may remain, and every byte the
 * run wrote before dying is still read.  Begun once; td_step() moves it on
 * without blocking, td_next_ms() says when it wants to be looked at again;
 * the pipes stay in sup_pollfds() meanwhile. */
static void td_drain(struct sup *x, int64_t now)
{
	x->td = TD_DRAIN;
	x->td_deadline = now + TEARDOWN_MS;
	x->td_drain_end = now + TEARDOWN_MAX_MS;
}

static void td_begin(struct sup *x)
{
	int64_t now = mono_ms();

	td_drain(x, now);
	/* A run whose processes have all ended (the usual end of a run)
	 * goes straight on to the drain, without a second look. */
	if ((x->pid > 0 || x->have_cg) && domain_signal(x, SIGKILL) != 0) {
		x->td = TD_KILL;
		x->td_deadline = now + TEARDOWN_MS;
	}
}

static void td_step(struct sup *x)
{
	int64_t now = mono_ms();

	if (x->td == TD_NONE)
		td_begin(x);
	/* What the drain reads shows in `logs` as it comes. */
	if (x->lw && log_writer_due_ms(x->lw) == 0)
		log_writer_flush(x->lw);
	if (x->td == TD_KILL) {
		bool gone;

		if (x->have_cg) {
			gone = cgroup_populated(&x->cg) <= 0;
		} else {
			reap(x);
			if (x->pid > 0 && !x->exited)
				kill(-x->pid, SIGKILL);
			gone = sweep(x, SIGKILL) <= 0;
		}
		if (!gone && now < x->td_deadline)
			return;
		td_drain(x, now);
	}
	if (x->td == TD_DRAIN) {
		/* The limit is on silence, not on the total (sup_on_fd
		 * moves it on): what the run wrote before it died is read to
		 * the end however slowly we go (under valgrind a full pipe
		 * takes seconds); only a writer that stays silent outside the
		 * domain is given up on. */
		if ((x->out_rd >= 0 || x->err_rd >= 0) && now < x->td_deadline &&
		    now < x->td_drain_end)
			return;
		if ((x->out_rd >= 0 || x->err_rd >= 0) && now >= x->td_drain_end)
			note(x, "output pipes still written to %d ms after the run ended; "
			     "a process outside the kill domain holds them", TEARDOWN_MAX_MS);
		else if (x->out_rd >= 0 || x->err_rd >= 0)
			note(x, "output pipes still open and silent %d ms after the run ended; "
			     "a process outside the kill domain holds them", TEARDOWN_MS);
		if (x->out_rd >= 0)
			close(x->out_rd);
		if (x->err_rd >= 0)
			close(x->err_rd);
		x->out_rd = x->err_rd = -1;
		/* serve does not wait for a main process that outlived its
		 * KILL (stuck in the kernel): its reaper gets it later. */
		if (x->pid > 0 && !x->exited)
			x->exited = wait4(x->pid, &x->wstatus, x->host ? WNOHANG : 0, &x->ru) == x->pid;
		reap(x);
		x->td = TD_DONE;
	}
}

static int64_t td_next_ms(const struct sup *x, int64_t now)
{
	int64_t t = x->td_deadline - now;
	int due = x->lw ? log_writer_due_ms(x->lw) : -1;

	if (x->td == TD_NONE)
		return 0;
	if (x->td == TD_DONE)
		return -1;
	if (x->td == TD_KILL && t > 2)	/* dying processes: look again soon */
		t = 2;
	if (x->td == TD_DRAIN && x->out_rd < 0 && x->err_rd < 0)
		return 0;	/* nothing to drain: done at the next step */
	if (x->td == TD_DRAIN && x->td_drain_end - now < t)
		t = x->td_drain_end - now;
	if (t < 0)
		t = 0;
	return due >= 0 && due < t ? due : t;
}

/* The blocking form, for a supervisor of one run. */
static void teardown(struct sup *x)
{
	if (x->td == TD_NONE)
		td_begin(x);
	while (x->td != TD_DONE) {
		struct pollfd pf[2];
		int64_t now = mono_ms(), t = td_next_ms(x, now);
		int n, i;

		if (x->td == TD_KILL && x->have_cg) {
			/* Woken by the kernel when the cgroup empties. */
			cgroup_wait_empty(&x->cg, (int)(x->td_deadline > now ? x->td_deadline - now : 0));
		} else {
			n = sup_pollfds(x, pf);
			if (poll(pf, (nfds_t)n, (int)t) > 0)
				for (i = 0; i < n; i++)
					sup_on_fd(x, &pf[i]);
		}
		td_step(x);
	}
}

static void verdict_text(struct sup *x, struct run_verdict *v)
{
	char sigtxt[128] = "";
	int ws = x->wstatus;

	v->state = x->m.state;
	v->has_exit_code = x->exited && WIFEXITED(ws);
	v->exit_code = v->has_exit_code ? WEXITSTATUS(ws) : 0;
	v->signal = x->exited && WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
	v->exec_errno = x->exec_errno;
	if (v->signal)
		snprintf(sigtxt, sizeof(sigtxt), "killed by signal %d (%s)", v->signal,
			 strsignal(v->signal));
	switch (x->m.state) {
	case RS_COMPLETED:
		if (x->error[0] == '\0')
			v->error = NULL;
		break;
	case RS_FAILED:
		if (x->error[0] == '\0') {
			if (v->signal)
				snprintf(x->error, sizeof(x->error), "%s", sigtxt);
			else
				snprintf(x->error, sizeof(x->error), "exited with status %d",
					 v->exit_code);
		}
		break;
	case RS_TIMED_OUT:
		snprintf(x->error, sizeof(x->error), "timed out after %llu ms%s%s",
			 (unsigned long long)(x->timeout_ns / 1000000), sigtxt[0] ? "; " : "", sigtxt);
		break;
	case RS_CANCELLED:
		snprintf(x->error, sizeof(x->error), "%s%s%s",
			 x->cancel_why ? x->cancel_why : "cancelled", sigtxt[0] ? "; " : "", sigtxt);
		break;
	default:
		break;
	}
	v->error = x->error[0] ? x->error : NULL;
}

static int setup_signals(int *sigfd, sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, old) < 0)
		return -errno;
	*sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (*sigfd < 0)
		return -errno;
	/* A reader of `runner logs` may go away; the supervisor never
	 * writes to a pipe of its own, but the store's files must not
	 * kill it either. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void host_wd_add(struct run_host *h, struct sup *x);
static void host_wd_del(struct run_host *h, struct sup *x);

static void sup_init(struct sup *x, const struct settings *s, const struct run_request *req,
		     const struct run_plan *plan)
{
	memset(x, 0, sizeof(*x));
	x->s = s;
	x->req = req;
	x->plan = plan;
	x->pid = -1;
	x->wd.pid = -1;
	x->wd.fd = -1;
	x->out_rd = x->err_rd = -1;
	x->sigfd = -1;
	x->envv = environ;
	x->timeout_ns = req->timeout_ns ? req->timeout_ns : s->max_execution_ns;
	snprintf(x->marker_kv, sizeof(x->marker_kv), "%s=%s", PROC_MARK_VAR, plan->marker);
	run_machine_init(&x->m, RS_QUEUED);
}

/* Makes the run's cgroup, with its limits: false (err says why) when it
 * cannot. */
static bool sup_cgroup(struct sup *x, char *err, size_t errlen)
{
	struct cgroup_limits lim = { .memory_max = x->s->memory_limit,
				     .pids_max = x->s->max_procs };
	char name[96];

	snprintf(name, sizeof(name), "run-%lld-%.8s", (long long)x->plan->id, x->plan->marker);
	x->have_cg = cgroup_create(name, &lim, &x->cg, err, errlen) == 0;
	return x->have_cg;
}

/* From a claimed slot to a running child: stage, kill domain, watchdog,
 * spawn.  0 when the run is RUNNING, -1 when setup failed (the machine has
 * taken EV_SPAWN_FAILED; x->error says why). */
static int sup_launch(struct sup *x)
{
	const struct settings *s = x->s;
	int ret;

	if (stage(x) < 0)
		goto failed;
	/* serve's runs have their cgroup already, and serve's one watchdog
	 * learned it when serve took the run (run_host_take). */
	if (!x->host) {
		char cgerr[1024];

		if (s->use_cgroup)
			sup_cgroup(x, cgerr, sizeof(cgerr));
		else
			snprintf(cgerr, sizeof(cgerr), "RUNNER_CGROUP=off");
		if (!x->have_cg)
			note(x, "no cgroup (%s): kill domain is the process group, subreaper and /proc sweep",
			     cgerr);
		ret = watchdog_start(&x->wd, x->have_cg ? x->cg.path : NULL, x->marker_kv);
		if (ret < 0) {
			snprintf(x->error, sizeof(x->error), "watchdog: %s", strerror(-ret));
			goto failed;
		}
	}
	if (spawn_child(x) < 0)
		goto failed;
	runrec_set_process(x->st, x->plan->id, x->pid, x->pid_start, x->have_cg ? x->cg.path : NULL);
	x->deadline = mono_ms() + (int64_t)(x->timeout_ns / 1000000);
	/* A cancel that came while we were setting up. */
	check_cancel(x);
	/* The setup's garbage (detection, staging, the store's page cache)
	 * would otherwise stay resident for the whole run: with hundreds
	 * of runs each supervisor's idle size is what counts.  Given back
	 * once the run has lasted SUP_TRIM_MS (sup_tick). */
	x->trim_at = mono_ms() + SUP_TRIM_MS;
	return 0;
failed:
	step(x, EV_SPAWN_FAILED);
	return -1;
}

/* After the machine reached a verdict: teardown (when the run was
 * launched), statistics, unstaging, the log's end and the verdict in the
 * store.  Returns the final state or -errno (err set). */
static int sup_conclude(struct sup *x, bool launched, char *err, size_t errlen)
{
	struct run_verdict v = { .cpu_ms = -1, .peak_rss_kb = -1 };
	int ret;

	if (!launched)
		goto record;
	teardown(x);
	if (x->have_cg) {
		int64_t cpu_us, peak;

		cgroup_stats(&x->cg, &cpu_us, &peak);
		v.cpu_ms = cpu_us >= 0 ? cpu_us / 1000 : -1;
		v.peak_rss_kb = peak >= 0 ? peak / 1024 : -1;
		if (cgroup_remove(&x->cg) < 0)
			note(x, "cannot remove cgroup %s: %s", x->cg.path, strerror(errno));
	}
	if (x->host) {
		/* serve reaps the orphans of every run: RUSAGE_CHILDREN
		 * is theirs all together; the main process's own is this
		 * run's (with the children it waited for). */
		int64_t ru_ms = ((int64_t)x->ru.ru_utime.tv_sec + x->ru.ru_stime.tv_sec) * 1000 +
			((int64_t)x->ru.ru_utime.tv_usec + x->ru.ru_stime.tv_usec) / 1000;

		if (x->exited && ru_ms > v.cpu_ms)
			v.cpu_ms = ru_ms;
		host_wd_del(x->host, x);
	} else {
		/* What this supervisor reaped, the run's orphans included (it
		 * is their subreaper).  The cgroup's figure can trail it (its
		 * statistics are flushed lazily), so the larger one counts. */
		struct rusage now;
		int64_t ru_ms;

		getrusage(RUSAGE_CHILDREN, &now);
		ru_ms = ((int64_t)(now.ru_utime.tv_sec - x->ru_before.ru_utime.tv_sec) +
			 (now.ru_stime.tv_sec - x->ru_before.ru_stime.tv_sec)) * 1000 +
			((int64_t)(now.ru_utime.tv_usec - x->ru_before.ru_utime.tv_usec) +
			 (now.ru_stime.tv_usec - x->ru_before.ru_stime.tv_usec)) / 1000;
		if (ru_ms > v.cpu_ms)
			v.cpu_ms = ru_ms;
	}
	if (v.peak_rss_kb < 0 && x->exited)
		v.peak_rss_kb = x->ru.ru_maxrss;
	/* The watchdog is told now and reaped at the end: it exits while
	 * the verdict is written, instead of being waited for here. */
	watchdog_done(&x->wd);
	unstage(x);
record:
	if (x->lw || x->lw_err) {
		int lr = x->lw_err ? x->lw_err : log_writer_close(x->lw);

		free(x->lw);
		x->lw = NULL;
		if (lr < 0) {
			size_t l = strlen(x->error);

			snprintf(x->error + l, sizeof(x->error) - l, "%slog capture failed: %s",
				 l ? "; " : "", strerror(-lr));
		}
		x->lw_err = 0;
	}
	verdict_text(x, &v);
	ret = runrec_finish(x->st, x->plan->id, &v);
	if (ret < 0)
		snprintf(err, errlen, "%s: record verdict of run %lld: %s", store_path(x->st),
			 (long long)x->plan->id, strerror(-ret));
	else
		ret = (int)x->m.state;
	return ret;
}

int run_supervise(const struct settings *s, const struct run_request *req,
		  const struct run_plan *plan, int ready_fd, struct store *st, char *err,
		  size_t errlen)
{
	struct sup x;
	sigset_t oldmask;
	uint64_t self_start = 0;
	bool launched = false;
	int ret;

	sup_init(&x, s, req, plan);
	ret = setup_signals(&x.sigfd, &oldmask);
	if (ret < 0) {
		snprintf(err, errlen, "signals: %s", strerror(-ret));
		return ret;
	}
	/* Orphans of the run are re-parented to us, not to init: we can
	 * reap and find them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (st) {
		/* The caller's: opening another costs a second read of
		 * whatever the WAL holds. */
		x.st = st;
	} else {
		ret = store_open(s->state_dir, &x.st, err, errlen);
		if (ret < 0)
			goto out_sig;
		/* No lookaside (SQLite's per-connection pool of small blocks,
		 * some 100 KiB when used): one connection per run adds up,
		 * and the supervisor's few statements do not need it. */
		sqlite3_db_config(store_db(x.st), SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
	}
	proc_start_time(getpid(), &self_start);
	ret = runrec_set_supervisor(x.st, plan->id, getpid(), self_start);
	if (ready_fd >= 0) {
		if (ret == 0 && write(ready_fd, "R", 1) != 1)
			ret = -errno;
		close(ready_fd);
	}
	if (ret < 0) {
		snprintf(err, errlen, "%s: register supervisor: %s", store_path(x.st), strerror(-ret));
		goto out_store;
	}
	getrusage(RUSAGE_CHILDREN, &x.ru_before);

	ret = wait_queue(&x);
	if (ret == -ECANCELED) {
		/* Someone recorded a verdict for the queued run already. */
		struct run_rec r;

		ret = runrec_get(x.st, plan->id, &r, err, errlen);
		if (ret == 0) {
			ret = (int)r.state;
			run_rec_free(&r);
		}
		goto out_store;
	}
	if (ret < 0 || run_state_final(x.m.state)) {
		if (ret < 0)
			run_machine_init(&x.m, RS_FAILED);
	} else {
		launched = true;
		if (sup_launch(&x) == 0)
			main_loop(&x);
	}
	ret = sup_conclude(&x, launched, err, errlen);
out_store:
	if (x.wd.pid > 0)
		waitpid(x.wd.pid, NULL, 0);
	if (x.st != st)
		store_close(x.st);
out_sig:
	if (x.sigfd >= 0)
		close(x.sigfd);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	return ret;
}

/* ---- many runs in one process: runner serve ----
 *
 * serve hosts the runs handed to it (exec --detach while serve is live,
 * and its own restarts) as struct sup machines in its one loop, on its one
 * store connection, with one watchdog for all of them.  A handed-over run
 * carries what its supervisor needs from the submitter (the plan, the
 * settings that shape supervision, the environment the allowlist reads) in
 * request.handoff, so serve supervises it exactly as the submitter's own
 * supervisor would have. */

struct hosted {
	struct sup x;
	struct settings s;
	struct run_request req;
	struct run_plan plan;
	json_t *js;		/* the request: req's strings point into it */
	json_t *ho;		/* the handoff: plan's, settings' and envv's too */
	char script_id[40];
	char **envv;
	bool launched;
	bool foreign_verdict;	/* another process wrote its verdict */
	bool started;		/* launched and not yet said so */
	struct hosted *next;
};

struct run_host {
	const struct settings *s;
	struct store *st;
	struct watchdog wd;
	struct hosted *runs;	/* in id (submission) order */
	size_t n;
	pid_t self;
	uint64_t self_start;
	int64_t next_claim_ms;
	int lock_fd;		/* held while serve takes handed-over runs */
	struct pollfd *pf;
	size_t pf_cap;
	char no_cgroup[512];	/* why serve cannot make run cgroups; "": it can */
};

#define HANDOFF_LOCK "serve.lock"
/* supervise-run's environment: "PID:START" of the serve that holds the
 * run and hands it on (run_host_hand_on). */
#define HAND_ON_VAR "FIELDRIG_HAND_ON_FROM"
/* How long exec --detach waits for serve to take a run before supervising
 * it itself. */
#define HANDOFF_WAIT_MS 2000

static char *handoff_json(const struct settings *s, const struct run_request *req,
			  const struct run_plan *plan)
{
	static const char *const allow[] = { "PATH=", "LANG=", "TZ=", "HOME=", "LC_", NULL };
	json_t *o, *ia = json_array(), *env = json_array();
	char **e;
	char *out;
	size_t i;

	for (i = 0; ia && i < plan->n_interp_args && i < 2; i++)
		json_array_append_new(ia, json_string(plan->interp_args[i]));
	for (e = environ; env && *e; e++)
		for (i = 0; allow[i]; i++)
			if (strncmp(*e, allow[i], strlen(allow[i])) == 0)
				json_array_append_new(env, json_string(*e));
	o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, "
		      "s:I, s:b, s:I, s:I, s:b, s:b, s:I, s:I, s:s}",
		      "script_path", plan->script_path, "ext", plan->ext, "interp", plan->interp,
		      "interp_args", ia, "environ", env,
		      "runner_dir", s->runner_dir ? s->runner_dir : "",
		      "runner_dir_configured", s->runner_dir_configured,
		      "exec_mode", (int)s->exec_mode,
		      "kill_grace_ns", (json_int_t)s->kill_grace_ns,
		      "max_log", (json_int_t)s->max_log,
		      "cpu_limit_s", (json_int_t)s->cpu_limit_s,
		      "memory_limit", (json_int_t)s->memory_limit,
		      "max_procs", (json_int_t)s->max_procs,
		      "max_files", (json_int_t)s->max_files,
		      "max_file_size", (json_int_t)s->max_file_size,
		      "use_cgroup", s->use_cgroup,
		      "max_concurrent", (json_int_t)s->max_concurrent,
		      "max_execution_ns", (json_int_t)s->max_execution_ns,
		      "net_none", s->net_none,
		      "drop", req->drop, "uid", (json_int_t)req->uid, "gid", (json_int_t)req->gid,
		      "home", req->home);
	if (o == NULL)
		return NULL;
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return out;
}

int run_handoff_mark(const struct settings *s, struct store *st, const struct run_request *req,
		     const struct run_plan *plan)
{
	char *js = handoff_json(s, req, plan);
	int ret;

	if (js == NULL)
		return -ENOMEM;
	ret = runrec_set_request_field(st, plan->id, "handoff", js);
	free(js);
	return ret;
}

/* The live serve that takes handed-over runs, from its lock file. */
static bool serve_live(const struct settings *s, pid_t *pid, uint64_t *start)
{
	char path[PATH_MAX + 32], buf[64];
	long long p = 0;
	unsigned long long st = 0;
	ssize_t n;
	int fd;
	bool live = false;

	snprintf(path, sizeof(path), "%s/%s", s->state_dir, HANDOFF_LOCK);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		/* Nobody holds it: no serve takes runs now. */
		close(fd);
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		live = sscanf(buf, "%lld %llu", &p, &st) == 2 && p > 0 &&
		       proc_alive((pid_t)p, (uint64_t)st);
	}
	close(fd);
	*pid = (pid_t)p;
	*start = (uint64_t)st;
	return live;
}

/* exec --detach with a live serve: offers the run to it.  Returns 1 when
 * serve took it, 0 when there was no serve to offer it to, 2 when serve
 * did not take it in time (the caller is then its registered supervisor
 * until its detached supervisor registers itself). */
static int handoff(const struct settings *s, const struct run_request *req,
		   const struct run_plan *plan)
{
	struct store *st = NULL;
	uint64_t sstart, self_start = 0;
	int64_t deadline;
	char err[512];
	pid_t spid;
	int ret;

	/* Only a run with a cgroup: without one, orphans of the run that
	 * left its tree and cleared their environment (so carry no marker)
	 * are found only by a subreaper of this run alone; under serve they
	 * would be re-parented to serve, among every other run's. */
	if (!s->use_cgroup || !serve_live(s, &spid, &sstart))
		return 0;
	ret = store_open(s->state_dir, &st, err, sizeof(err));
	if (ret < 0)
		return 0;
	ret = run_handoff_mark(s, st, req, plan);
	if (ret < 0)
		goto out;
	kill(spid, SIGUSR2);
	deadline = mono_ms() + HANDOFF_WAIT_MS;
	for (;;) {
		struct run_rec r;
		int64_t sup = 0;

		if (runrec_get(st, plan->id, &r, NULL, 0) == 0) {
			sup = r.supervisor_pid;
			run_rec_free(&r);
		}
		if (sup > 0) {
			ret = 1;
			goto out;
		}
		if (mono_ms() >= deadline || !proc_alive(spid, sstart))
			break;
		sleep_ms(5);
	}
	/* Not taken in time: whoever registers first has it, in one guarded
	 * UPDATE, so the run is neither lost nor started twice. */
	proc_start_time(getpid(), &self_start);
	ret = runrec_take_supervisor(st, plan->id, getpid(), self_start);
	ret = ret == 1 ? 2 : ret == 0 ? 1 : ret;
out:
	store_close(st);
	return ret < 0 ? 0 : ret;
}

static void hosted_free(struct hosted *r)
{
	if (r == NULL)
		return;
	/* The cgroup made when serve took it, for a run that never started
	 * (cancelled while queued, or serve stopped): empty. */
	if (!r->launched && r->x.have_cg && r->x.host) {
		host_wd_del(r->x.host, &r->x);
		cgroup_remove(&r->x.cg);
	}
	free(r->envv);
	json_decref(r->js);
	json_decref(r->ho);
	free(r);
}

static int64_t jint(json_t *o, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Builds the hosted run from its record.  0 or -EINVAL (err set). */
/* What request.handoff holds, over the base settings: the request, the
 * plan, the submitter's settings and environment. */
static int handoff_load(const struct settings *base, const struct run_rec *rec, struct hosted *r,
			char *err, size_t errlen)
{
	json_t *v, *ho;
	size_t i;

	r->js = json_loads(rec->request ? rec->request : "", 0, NULL);
	v = r->js ? json_object_get(r->js, "handoff") : NULL;
	r->ho = json_is_string(v) ? json_loads(json_string_value(v), 0, NULL) : NULL;
	ho = r->ho;
	if (r->js == NULL || ho == NULL || !jstr(ho, "script_path") || !jstr(ho, "ext") ||
	    !jstr(ho, "interp") || !jstr(ho, "runner_dir")) {
		snprintf(err, errlen, "run %lld: request.handoff is missing or not valid JSON",
			 (long long)rec->id);
		return -EINVAL;
	}
	/* The request */
	snprintf(r->script_id, sizeof(r->script_id), "%s", rec->script_id);
	r->req.script_id = r->script_id;
	json_array_foreach(json_object_get(r->js, "args"), i, v)
		if (i < RUN_MAX_ARGS && json_is_string(v))
			r->req.args[r->req.n_args++] = json_string_value(v);
	json_array_foreach(json_object_get(r->js, "env"), i, v)
		if (i < RUN_MAX_ENV && json_is_string(v))
			r->req.env[r->req.n_env++] = json_string_value(v);
	r->req.timeout_ns = (uint64_t)jint(r->js, "timeout_ms") * 1000000ULL;
	r->req.user = jstr(r->js, "user");
	r->req.restart = jstr(r->js, "restart");
	r->req.max_restarts = (unsigned)jint(r->js, "max_restarts");
	r->req.attempt = (unsigned)jint(r->js, "attempt");
	r->req.restart_of = jint(r->js, "restart_of");
	r->req.net = jstr(r->js, "network");
	r->req.drop = json_is_true(json_object_get(ho, "drop"));
	r->req.uid = (uid_t)jint(ho, "uid");
	r->req.gid = (gid_t)jint(ho, "gid");
	snprintf(r->req.home, sizeof(r->req.home), "%s", jstr(ho, "home") ? jstr(ho, "home") : "");
	/* The plan */
	r->plan.id = rec->id;
	snprintf(r->plan.marker, sizeof(r->plan.marker), "%s", rec->marker);
	snprintf(r->plan.script_path, sizeof(r->plan.script_path), "%s", jstr(ho, "script_path"));
	snprintf(r->plan.ext, sizeof(r->plan.ext), "%s", jstr(ho, "ext"));
	snprintf(r->plan.interp, sizeof(r->plan.interp), "%s", jstr(ho, "interp"));
	json_array_foreach(json_object_get(ho, "interp_args"), i, v)
		if (i < 2 && json_is_string(v))
			r->plan.interp_args[r->plan.n_interp_args++] = json_string_value(v);
	/* The submitter's settings that shape supervision */
	r->s = *base;
	r->s.runner_dir = (char *)jstr(ho, "runner_dir");
	r->s.runner_dir_configured = json_is_true(json_object_get(ho, "runner_dir_configured"));
	r->s.exec_mode = jint(ho, "exec_mode") == EXEC_DIRECT ? EXEC_DIRECT : EXEC_INTERPRETER;
	r->s.kill_grace_ns = (uint64_t)jint(ho, "kill_grace_ns");
	r->s.max_log = (uint64_t)jint(ho, "max_log");
	r->s.cpu_limit_s = (uint64_t)jint(ho, "cpu_limit_s");
	r->s.memory_limit = (uint64_t)jint(ho, "memory_limit");
	r->s.max_procs = (uint64_t)jint(ho, "max_procs");
	r->s.max_files = (uint64_t)jint(ho, "max_files");
	r->s.max_file_size = (uint64_t)jint(ho, "max_file_size");
	r->s.use_cgroup = json_is_true(json_object_get(ho, "use_cgroup"));
	r->s.max_concurrent = (uint64_t)jint(ho, "max_concurrent");
	r->s.max_execution_ns = (uint64_t)jint(ho, "max_execution_ns");
	r->s.net_none = json_is_true(json_object_get(ho, "net_none"));
	v = json_object_get(ho, "environ");
	r->envv = calloc(json_array_size(v) + 1, sizeof(*r->envv));
	if (r->envv == NULL) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	{
		json_t *e;
		size_t n = 0;

		json_array_foreach(v, i, e)
			if (json_is_string(e))
				r->envv[n++] = (char *)json_string_value(e);
	}
	return 0;
}

static int hosted_from_rec(struct run_host *h, const struct run_rec *rec, struct hosted *r,
			   char *err, size_t errlen)
{
	int ret = handoff_load(h->s, rec, r, err, errlen);

	if (ret < 0)
		return ret;
	sup_init(&r->x, &r->s, &r->req, &r->plan);
	r->x.host = h;
	r->x.st = h->st;
	r->x.envv = r->envv;
	return 0;
}

/* ---- a handed-over run with a supervisor of its own (runner serve's
 * restarts of runs without a cgroup) ---- */

int run_daemon_exec(const struct settings *s, const char *cmd, int64_t id, char *const *env,
		    char *err, size_t errlen)
{
	int ready_fd, rc = run_daemon_start(s, &ready_fd, err, errlen);

	if (rc == 0) {
		/* A fresh process image: SQLite state must not cross a fork. */
		char idb[32], fdb[16], self[PATH_MAX], *abs_state = realpath(s->state_dir, NULL);
		int rfd;
		ssize_t ln;

		for (; env && *env; env++)
			putenv(*env);
		if (nofile_soft_orig) {
			struct rlimit rl;

			if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
				rl.rlim_cur = nofile_soft_orig;
				setrlimit(RLIMIT_NOFILE, &rl);
			}
		}
		/* A low number whatever serve's count of descriptors (the
		 * command takes at most 1024); dup2 clears close-on-exec. */
		if (ready_fd != 3 ? dup2(ready_fd, 3) < 0 : fcntl(3, F_SETFD, 0) < 0)
			_exit(1);
		rfd = 3;

		snprintf(idb, sizeof(idb), "%lld", (long long)id);
		snprintf(fdb, sizeof(fdb), "%d", rfd);
		/* The binary's own path (under valgrind readlink names the
		 * client, where an exec of /proc/self/exe would not). */
		ln = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (ln <= 0)
			snprintf(self, sizeof(self), "/proc/self/exe");
		else
			self[ln] = '\0';
		execl(self, "runner", "--state", abs_state ? abs_state : s->state_dir, cmd, idb, fdb,
		      (char *)NULL);
		fprintf(stderr, "runner[%d]: %s %s: exec %s: %s\n", (int)getpid(), cmd, idb, self,
			strerror(errno));
		_exit(1);
	}
	if (rc == -ECHILD)
		snprintf(err, errlen, "the supervisor of run %lld did not start (see %s/supervisor.log)",
			 (long long)id, s->state_dir);
	return rc < 0 ? rc : 0;
}

void run_handed_main(const struct settings *s, int64_t id, int ready_fd)
{
	struct hosted *r = calloc(1, sizeof(*r));
	struct store *st = NULL;
	struct run_rec rec;
	uint64_t self_start = 0;
	unsigned long long from_start;
	const char *from;
	char err[2048];
	int ret, taken, from_pid;

	if (r == NULL || store_open(s->state_dir, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "runner[%d]: run %lld: %s\n", (int)getpid(), (long long)id,
			r ? err : strerror(ENOMEM));
		_exit(1);
	}
	ret = runrec_get(st, id, &rec, err, sizeof(err));
	if (ret == 0) {
		ret = handoff_load(s, &rec, r, err, sizeof(err));
		run_rec_free(&rec);
	}
	/* The same guarded claim as serve's and exec's: nobody else runs it;
	 * or, from serve that holds it, a hand-over nobody can come between. */
	proc_start_time(getpid(), &self_start);
	from = getenv(HAND_ON_VAR);
	if (from && sscanf(from, "%d:%llu", &from_pid, &from_start) == 2)
		taken = runrec_pass_supervisor(st, id, (pid_t)from_pid, (uint64_t)from_start, getpid(),
					       self_start);
	else
		taken = runrec_take_supervisor(st, id, getpid(), self_start);
	unsetenv(HAND_ON_VAR);
	if (taken == 1 && ret < 0) {
		struct run_verdict v = { .state = RS_FAILED, .cpu_ms = -1, .peak_rss_kb = -1,
					 .error = err };

		runrec_finish(st, id, &v);
	}
	store_close(st);
	if (taken != 1 || ret < 0) {
		fprintf(stderr, "runner[%d]: run %lld: %s\n", (int)getpid(), (long long)id,
			ret < 0 ? err : "taken by another supervisor");
		_exit(1);
	}
	/* The submitter's environment is what the run's allowlist reads. */
	environ = r->envv;
	if (run_supervise(&r->s, &r->req, &r->plan, ready_fd, NULL, err, sizeof(err)) < 0)
		fprintf(stderr, "runner[%d]: run %lld: %s\n", (int)getpid(), (long long)id, err);
	fflush(NULL);
	cov_flush();
	_exit(0);
}

int run_host_open(const struct settings *s, struct store *st, struct run_host **hp, char *err,
		  size_t errlen)
{
	struct run_host *h = calloc(1, sizeof(*h));
	int ret;

	if (h == NULL)
		return -ENOMEM;
	h->s = s;
	h->st = st;
	h->lock_fd = -1;
	h->self = getpid();
	proc_start_time(h->self, &h->self_start);
	/* Orphans of every hosted run come to serve (the marker finds them
	 * for their run's teardown). */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	{
		/* Two pipes per running run: the default soft limit (1024)
		 * would stop serve near 500 runs.  A child gets its own limit
		 * (RUNNER_MAX_FILES) in spawn, or with none set the soft
		 * limit serve had. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rlim_t was = rl.rlim_cur;

			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
				nofile_soft_orig = was;
		}
	}
	if (!s->use_cgroup)
		snprintf(h->no_cgroup, sizeof(h->no_cgroup), "RUNNER_CGROUP=off");
	else
		cgroup_probe(h->no_cgroup, sizeof(h->no_cgroup));
	ret = watchdog_multi_start(&h->wd);
	if (ret < 0) {
		snprintf(err, errlen, "watchdog: %s", strerror(-ret));
		free(h);
		return ret;
	}
	*hp = h;
	return 0;
}

int run_host_announce(struct run_host *h, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], buf[64];
	int fd, n;

	/* Handed-over runs are those with a cgroup (see handoff()): a serve
	 * that cannot make one takes none. */
	if (h->no_cgroup[0]) {
		snprintf(err, errlen, "no run cgroup can be made (%s)", h->no_cgroup);
		return -EOPNOTSUPP;
	}

	snprintf(path, sizeof(path), "%s/%s", h->s->state_dir, HANDOFF_LOCK);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		snprintf(err, errlen, "%s is held by another runner serve", path);
		close(fd);
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	n = snprintf(buf, sizeof(buf), "%d %llu\n", (int)h->self,
		     (unsigned long long)h->self_start);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int e = errno ? errno : EIO;

		snprintf(err, errlen, "%s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	h->lock_fd = fd;
	return 0;
}

void run_host_withdraw(struct run_host *h)
{
	if (h->lock_fd >= 0)
		close(h->lock_fd);
	h->lock_fd = -1;
}

size_t run_host_live(const struct run_host *h)
{
	return h->n;
}

bool run_host_has(const struct run_host *h, int64_t id)
{
	for (struct hosted *r = h->runs; r; r = r->next)
		if (r->plan.id == id)
			return true;
	return false;
}

/* The watchdog died (it should not): a new one, told every live domain. */
static void host_wd_restart(struct run_host *h)
{
	watchdog_done(&h->wd);
	if (watchdog_multi_start(&h->wd) < 0)
		return;
	for (struct hosted *r = h->runs; r; r = r->next)
		if (r->x.have_cg || (r->launched && (r->x.pid > 0 || r->x.rundir[0])))
			watchdog_multi_add(&h->wd, r->x.have_cg ? r->x.cg.path : NULL,
					   r->x.marker_kv);
}

static void host_wd_add(struct run_host *h, struct sup *x)
{
	if (watchdog_multi_add(&h->wd, x->have_cg ? x->cg.path : NULL, x->marker_kv) < 0) {
		host_wd_restart(h);
		watchdog_multi_add(&h->wd, x->have_cg ? x->cg.path : NULL, x->marker_kv);
	}
}

static void host_wd_del(struct run_host *h, struct sup *x)
{
	watchdog_multi_del(&h->wd, x->marker_kv);
}

static void host_reap(struct run_host *h)
{
	struct rusage ru;
	int ws;
	pid_t p;

	while ((p = wait4(-1, &ws, WNOHANG, &ru)) > 0) {
		struct hosted *r;

		if (p == h->wd.pid) {
			h->wd.pid = -1;
			host_wd_restart(h);
			continue;
		}
		for (r = h->runs; r; r = r->next)
			if (sup_reaped(&r->x, p, ws, &ru))
				break;
	}
}

bool run_host_cgroups(const struct run_host *h)
{
	return h->no_cgroup[0] == '\0';
}

void run_host_sigchld(struct run_host *h)
{
	host_reap(h);
}

void run_host_check_cancel(struct run_host *h)
{
	for (struct hosted *r = h->runs; r; r = r->next)
		if (!run_state_final(r->x.m.state))
			check_cancel(&r->x);
}

void run_host_cancel(struct run_host *h, int64_t id, const char *why)
{
	for (struct hosted *r = h->runs; r; r = r->next) {
		if ((id && r->plan.id != id) || run_state_final(r->x.m.state))
			continue;
		if (r->x.cancel_why == NULL)
			r->x.cancel_why = why;
		step(&r->x, EV_CANCEL);
	}
}

/* Takes a run handed over; 1 taken, 0 someone else has it, -errno.  Its
 * cgroup is made once the run is ours: serve hosts only runs with one (an
 * orphan that leaves the tree and clears its environment is found by
 * nothing else there), so when it cannot be made the run stays ours but
 * is not hosted (-EOPNOTSUPP, err says why): run_host_hand_on gives it a
 * supervisor of its own. */
int run_host_take(struct run_host *h, int64_t id, char *err, size_t errlen)
{
	struct hosted *r, **pp;
	struct run_rec rec;
	int ret;

	ret = runrec_take_supervisor(h->st, id, h->self, h->self_start);
	if (ret <= 0)
		return ret;
	ret = runrec_get(h->st, id, &rec, err, errlen);
	if (ret < 0)
		return ret;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		run_rec_free(&rec);
		return -ENOMEM;
	}
	ret = hosted_from_rec(h, &rec, r, err, errlen);
	run_rec_free(&rec);
	if (ret < 0) {
		struct run_verdict v = { .state = RS_FAILED, .cpu_ms = -1, .peak_rss_kb = -1,
					 .error = err };

		runrec_finish(h->st, id, &v);
		hosted_free(r);
		return ret;
	}
	if (!sup_cgroup(&r->x, err, errlen)) {
		hosted_free(r);
		return -EOPNOTSUPP;
	}
	/* serve's one watchdog learns the domain before anything of the
	 * run exists. */
	host_wd_add(h, &r->x);
	for (pp = &h->runs; *pp && (*pp)->plan.id < id; pp = &(*pp)->next)
		;
	r->next = *pp;
	*pp = r;
	h->n++;
	h->next_claim_ms = 0;
	return 1;
}

int run_host_hand_on(struct run_host *h, const struct settings *s, int64_t id, char *err,
		     size_t errlen)
{
	char from[64], *env[2] = { from, NULL };
	int rc;

	snprintf(from, sizeof(from), "%s=%d:%llu", HAND_ON_VAR, (int)h->self,
		 (unsigned long long)h->self_start);
	err[0] = '\0';
	rc = run_daemon_exec(s, "supervise-run", id, env, err, errlen);
	if (rc < 0) {
		struct run_verdict v = { .state = RS_FAILED, .cpu_ms = -1, .peak_rss_kb = -1 };
		char why[1024];

		snprintf(why, sizeof(why), "runner serve could make no cgroup for it nor start a "
			 "supervisor of its own: %s", err[0] ? err : strerror(-rc));
		v.error = why;
		runrec_finish(h->st, id, &v);
	}
	return rc;
}

int run_host_take_pending(struct run_host *h,
			  void (*cb)(void *ctx, int64_t id, enum run_take how, const char *text),
			  void *ctx)
{
	sqlite3_stmt *q;
	int64_t ids[256];
	char err[1024];
	int n = 0, taken = 0, i, rc;

	if (h->lock_fd < 0)
		return 0;
	rc = sqlite3_prepare_v2(store_db(h->st), "SELECT id FROM runs WHERE status = 'QUEUED' AND "
				"supervisor_pid IS NULL AND json_valid(request) AND "
				"json_extract(request, '$.handoff') IS NOT NULL AND "
				/* serve hosts only runs with a cgroup (handoff()) */
				"json_valid(json_extract(request, '$.handoff')) AND "
				"json_extract(json_extract(request, '$.handoff'), '$.use_cgroup') = 1 "
				"ORDER BY id",
				-1, &q, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	while (n < 256 && sqlite3_step(q) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	for (i = 0; i < n; i++) {
		char why[1024];

		err[0] = '\0';
		rc = run_host_take(h, ids[i], err, sizeof(err));
		if (rc == -EOPNOTSUPP) {
			/* No cgroup for it here: a supervisor of its own,
			 * as exec gives a run without one. */
			snprintf(why, sizeof(why), "%s", err);
			rc = run_host_hand_on(h, h->s, ids[i], err, sizeof(err));
			if (cb)
				cb(ctx, ids[i], rc < 0 ? RUN_TAKE_FAILED : RUN_TAKE_OWN,
				   rc < 0 ? (err[0] ? err : strerror(-rc)) : why);
			continue;
		}
		if (rc > 0)
			taken++;
		if (cb)
			cb(ctx, ids[i], rc > 0 ? RUN_TAKE_HOSTED : rc == 0 ? RUN_TAKE_NOT : RUN_TAKE_FAILED,
			   rc > 0 ? NULL : rc == 0 ? "taken by its submitter" :
			   err[0] ? err : strerror(-rc));
	}
	return taken;
}

static int64_t rec_id_of(const struct hosted *r)
{
	return r->plan.id;
}

/* Claims slots for queued runs in submission order; at the first that
 * cannot start yet, the rest cannot either (runrec_claim keeps the order). */
static void host_claims(struct run_host *h)
{
	int64_t now = mono_ms();

	if (now < h->next_claim_ms)
		return;
	h->next_claim_ms = now + QUEUE_POLL_MS;
	for (struct hosted *r = h->runs; r; r = r->next) {
		int c;

		if (r->launched || run_state_final(r->x.m.state))
			continue;
		c = runrec_claim(h->st, rec_id_of(r), r->s.max_concurrent);
		if (c == 1) {
			step(&r->x, EV_CLAIM);
			r->launched = true;
			r->started = sup_launch(&r->x) == 0;
			continue;
		}
		if (c == -ECANCELED) {
			/* A verdict was written by someone else (cancel of
			 * a run whose supervisor looked gone): keep it. */
			run_machine_init(&r->x.m, RS_LOST);
			r->foreign_verdict = true;
			continue;
		}
		if (c < 0 && c != -EBUSY) {
			snprintf(r->x.error, sizeof(r->x.error), "claim a slot: %s", strerror(-c));
			run_machine_init(&r->x.m, RS_FAILED);
			continue;
		}
		break;
	}
}

int run_host_turn(struct run_host *h, int fd, int max_ms, void (*ended)(void *ctx, int64_t id,
		  int state, const char *text), void *ctx)
{
	struct hosted *r, **pp;
	int64_t now = mono_ms(), t = max_ms;
	size_t n = 0;
	int ret = 0, k;

	if (h->pf_cap < 1 + 2 * h->n) {
		size_t cap = (1 + 2 * h->n) * 2;
		struct pollfd *pf = realloc(h->pf, cap * sizeof(*pf));

		if (pf == NULL)
			return -ENOMEM;
		h->pf = pf;
		h->pf_cap = cap;
	}
	h->pf[n].fd = fd;
	h->pf[n].events = POLLIN;
	h->pf[n++].revents = 0;
	for (r = h->runs; r; r = r->next) {
		int64_t d;

		if (!r->launched) {
			d = run_state_final(r->x.m.state) ? 0 : h->next_claim_ms - now;
			if (d < 0)
				d = 0;
		} else {
			n += (size_t)sup_pollfds(&r->x, h->pf + n);
			d = sup_next_ms(&r->x, now);
		}
		if (d >= 0 && (t < 0 || d < t))
			t = d < 0 ? 0 : d;
	}
	k = poll(h->pf, (nfds_t)n, t > INT32_MAX ? INT32_MAX : (int)t);
	if (k > 0) {
		size_t i;

		ret = (h->pf[0].revents & POLLIN) != 0;
		/* A run's descriptors are found by value: a run that closed
		 * one since (EOF) cannot be confused, fds are not reused
		 * before the next turn. */
		for (i = 1; i < n; i++) {
			if (!h->pf[i].revents)
				continue;
			for (r = h->runs; r; r = r->next)
				if (r->launched && (r->x.out_rd == h->pf[i].fd ||
						    r->x.err_rd == h->pf[i].fd)) {
					sup_on_fd(&r->x, &h->pf[i]);
					break;
				}
		}
	}
	host_claims(h);
	for (r = h->runs; r; r = r->next) {
		if (r->started && ended) {
			char what[PATH_MAX + 64];

			snprintf(what, sizeof(what), "pid=%d domain=%s", (int)r->x.pid,
				 r->x.have_cg ? r->x.cg.path : "process-group+marker");
			ended(ctx, r->plan.id, RS_RUNNING, what);
		}
		r->started = false;
		if (r->launched && !run_state_final(r->x.m.state))
			sup_tick(&r->x);
	}
	/* Ended runs: teardown and verdict, then gone. */
	for (pp = &h->runs; *pp;) {
		char err[1024];
		int st;

		r = *pp;
		if (!run_state_final(r->x.m.state)) {
			pp = &r->next;
			continue;
		}
		if (r->foreign_verdict) {
			st = -ECANCELED;
		} else {
			/* Teardown a step at a time: a run whose pipes stay
			 * open (a process outside its domain holds them) must
			 * not hold up the others for its TEARDOWN_MS. */
			if (r->launched) {
				td_step(&r->x);
				if (r->x.td != TD_DONE) {
					pp = &r->next;
					continue;
				}
			}
			st = sup_conclude(&r->x, r->launched, err, sizeof(err));
		}
		if (ended)
			ended(ctx, r->plan.id, st, st < 0 ? (st == -ECANCELED ? NULL : err) :
			      (r->x.error[0] ? r->x.error : NULL));
		*pp = r->next;
		h->n--;
		hosted_free(r);
	}
	return ret;
}

void run_host_close(struct run_host *h)
{
	if (h == NULL)
		return;
	run_host_withdraw(h);
	/* Runs still hosted now are left to the watchdog: it kills them
	 * when we are gone (the caller has stopped them first). */
	if (h->n == 0) {
		watchdog_done(&h->wd);
	} else if (h->wd.fd >= 0) {
		close(h->wd.fd);
		h->wd.fd = -1;
	}
	if (h->wd.pid > 0)
		waitpid(h->wd.pid, NULL, 0);
	while (h->runs) {
		struct hosted *r = h->runs;

		h->runs = r->next;
		hosted_free(r);
	}
	free(h->pf);
	free(h);
}

int run_daemon_start(const struct settings *s, int *ready_fd, char *err, size_t errlen)
{
	int ready[2], ws, fd;
	char c, path[PATH_MAX + 32];
	pid_t p;
	ssize_t n;

	if (pipe2(ready, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	fflush(NULL);
	p = fork();
	if (p < 0) {
		int e = errno;

		snprintf(err, errlen, "fork: %s", strerror(e));
		close(ready[0]);
		close(ready[1]);
		return -e;
	}
	if (p == 0) {
		/* Its own session, stdio away from the caller's terminal and
		 * pipes (a caller reading our stdout to EOF must not wait for
		 * the run), errors appended to <state>/supervisor.log. */
		close(ready[0]);
		setsid();
		p = fork();
		if (p != 0) {
			cov_flush();
			_exit(p < 0 ? 1 : 0);
		}
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		snprintf(path, sizeof(path), "%s/supervisor.log", s->state_dir);
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd >= 0)
			dup2(fd, 2);
		if (chdir("/") < 0) {
			/* stays where it is: nothing there is used */
		}
		*ready_fd = ready[1];
		return 0;
	}
	close(ready[1]);
	waitpid(p, &ws, 0);
	do
		n = read(ready[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(ready[0]);
	return n == 1 ? 1 : -ECHILD;
}

int run_detach(const struct settings *s, const struct run_request *req,
	       const struct run_plan *plan, char *err, size_t errlen)
{
	char serr[2048];
	int ready_fd, rc;

	/* A live serve supervises it in its own loop, if it takes it in
	 * time; otherwise (or without serve) a supervisor of its own. */
	rc = handoff(s, req, plan);
	if (rc == 1)
		return 0;
	if (rc == 2)
		fprintf(stderr, "runner: run %lld: runner serve did not take it within %d ms; "
			"it gets a supervisor of its own\n", (long long)plan->id, HANDOFF_WAIT_MS);
	rc = run_daemon_start(s, &ready_fd, err, errlen);

	if (rc == 0) {
		if (run_supervise(s, req, plan, ready_fd, NULL, serr, sizeof(serr)) < 0)
			fprintf(stderr, "runner[%d]: run %lld: %s\n", (int)getpid(),
				(long long)plan->id, serr);
		fflush(NULL);
		cov_flush();
		_exit(0);
	}
	if (rc == -ECHILD)
		snprintf(err, errlen, "the supervisor of run %lld did not start (see %s/supervisor.log)",
			 (long long)plan->id, s->state_dir);
	return rc < 0 ? rc : 0;
}

/* ---- from other processes: cancel, wait, recover ---- */


/* A pidfd on the run's live supervisor, or -1.  The supervisor exits
 * right after writing the verdict, so its exit is the event to wait for;
 * the store is still what decides. */
static int supervisor_pidfd(const struct run_rec *r)
{
	int fd;

	if (r->supervisor_pid <= 0)
		return -1;
	fd = (int)syscall(SYS_pidfd_open, (pid_t)r->supervisor_pid, 0);
	if (fd < 0)
		return -1;
	/* Opened first, checked second: the pid cannot be reused for
	 * another process while we hold the pidfd's answer. */
	if (!proc_alive((pid_t)r->supervisor_pid, r->supervisor_start)) {
		close(fd);
		return -1;
	}
	return fd;
}

int run_wait(struct store *st, int64_t id, int64_t timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct store_waiter w;
	struct run_rec r;
	int ret, pfd = -1;

	store_waiter_open(st, &w);
	for (;;) {
		int64_t t;

		ret = runrec_get(st, id, &r, err, errlen);
		if (ret < 0)
			break;
		ret = (int)r.state;
		if (pfd == -1)
			pfd = supervisor_pidfd(&r);
		run_rec_free(&r);
		if (run_state_final((enum run_state)ret))
			break;
		if (timeout_ms > 0 && mono_ms() >= deadline) {
			snprintf(err, errlen, "run %lld is still %s", (long long)id,
				 run_state_name((enum run_state)ret));
			ret = -ETIMEDOUT;
			break;
		}
		/* Woken by a commit to the store (the verdict is one), by the
		 * supervisor's exit (it exits right after the verdict; serve,
		 * which hosts many runs, does not), and still looking now and
		 * then: a verdict may come from anywhere (recover, a cancel of
		 * an orphan) and a commit may fall between look and poll. */
		t = w.fd >= 0 || pfd >= 0 ? 250 : 20;
		if (timeout_ms > 0 && deadline - mono_ms() < t)
			t = deadline - mono_ms() > 0 ? deadline - mono_ms() : 0;
		if (store_waiter_wait(&w, pfd, (int)t) && pfd >= 0) {
			close(pfd);
			pfd = -2;	/* gone: do not look for it again */
		}
	}
	if (pfd >= 0)
		close(pfd);
	store_waiter_close(&w);
	return ret;
}

int run_cancel(struct store *st, int64_t id, int wait_ms, bool *already, char *err, size_t errlen)
{
	struct run_rec r;
	char marker[96], why[256];
	int ret;

	*already = false;
	ret = runrec_get(st, id, &r, err, errlen);
	if (ret < 0)
		return ret;
	if (run_state_final(r.state)) {
		*already = true;
		ret = (int)r.state;
		goto out;
	}
	ret = runrec_request_cancel(st, id);
	if (ret < 0) {
		snprintf(err, errlen, "%s: request cancel of run %lld: %s", store_path(st),
			 (long long)id, strerror(-ret));
		goto out;
	}
	if (r.supervisor_pid > 0 && proc_alive((pid_t)r.supervisor_pid, r.supervisor_start)) {
		kill((pid_t)r.supervisor_pid, SIGUSR1);
	} else {
		struct run_machine m;
		struct run_verdict v = { .cpu_ms = -1, .peak_rss_kb = -1 };

		/* No supervisor to do it: kill the domain ourselves and
		 * record the verdict through the same table. */
		run_machine_init(&m, r.state);
		run_step(&m, EV_CANCEL);
		if (m.state == RS_STOPPING) {
			snprintf(marker, sizeof(marker), "%s=%s", PROC_MARK_VAR, r.marker);
			domain_kill_orphaned(r.cgroup, r.marker[0] ? marker : NULL, 5000);
			if (r.workdir)
				unstage_dir(r.workdir);
			run_step(&m, EV_EXIT_FAIL);
		}
		snprintf(why, sizeof(why), "cancelled by runner cancel; the supervisor%s was gone%s",
			 r.supervisor_pid > 0 ? "" : " (none registered)",
			 r.state == RS_RUNNING ? ", so cancel killed the run's processes itself" : "");
		v.state = m.state;
		v.error = why;
		runrec_finish(st, id, &v);
	}
	ret = run_wait(st, id, wait_ms, err, errlen);
out:
	run_rec_free(&r);
	return ret;
}

struct recover_ctx {
	int64_t ids[4096];
	size_t n;
};

static int collect(void *ctx, const struct run_rec *r)
{
	struct recover_ctx *c = ctx;

	if (c->n < sizeof(c->ids) / sizeof(c->ids[0]))
		c->ids[c->n++] = r->id;
	return 0;
}

int run_recover(struct store *st, void (*cb)(void *ctx, int64_t id, const char *line),
		void *ctx, char *err, size_t errlen)
{
	return run_recover_policy(NULL, st, cb, ctx, err, errlen);
}

int run_recover_policy(const struct settings *s, struct store *st,
		       void (*cb)(void *ctx, int64_t id, const char *line), void *ctx,
		       char *err, size_t errlen)
{
	struct recover_ctx *c = calloc(1, sizeof(*c));
	int lost = 0, ret;
	size_t i;

	if (c == NULL)
		return -ENOMEM;
	ret = runrec_list(st, "RUNNING", collect, c, err, errlen);
	if (ret == 0)
		ret = runrec_list(st, "QUEUED", collect, c, err, errlen);
	if (ret < 0)
		goto out;
	for (i = 0; i < c->n; i++) {
		struct run_rec r;
		struct run_machine m;
		struct run_verdict v = { .cpu_ms = -1, .peak_rss_kb = -1 };
		char marker[96], why[512];
		struct cgroup_run cg;
		bool procs = false;

		if (runrec_get(st, c->ids[i], &r, NULL, 0) < 0)
			continue;
		if (run_state_final(r.state) ||
		    (r.supervisor_pid > 0 && proc_alive((pid_t)r.supervisor_pid, r.supervisor_start)) ||
		    (r.supervisor_pid == 0 && runrec_now_ms() - r.created_at < 10000)) {
			run_rec_free(&r);
			continue;
		}
		snprintf(marker, sizeof(marker), "%s=%s", PROC_MARK_VAR, r.marker);
		if (r.cgroup) {
			memset(&cg, 0, sizeof(cg));
			cgroup_attach(r.cgroup, &cg);
			procs = cgroup_populated(&cg) == 1;
		}
		procs = procs || (r.pid > 0 && proc_alive((pid_t)r.pid, r.pid_start)) ||
			(r.marker[0] && proc_count_marked(marker) > 0);
		/* RUNNER_RECOVER_POLICY=adopt: a new supervisor takes a
		 * running run over (adopt.h); kill (the default), or a failed
		 * adoption: processes without a supervisor are killed. */
		if (procs && s && s->recover_adopt && r.state == RS_RUNNING) {
			char aerr[512], line[1024];
			int ap = run_adopt(s, &r, aerr, sizeof(aerr));

			if (ap > 0) {
				if (cb) {
					snprintf(line, sizeof(line), "run %lld: ADOPTED: supervisor %lld gone "
						 "(found by runner recover); its processes live; adopted by "
						 "supervisor %d (RUNNER_RECOVER_POLICY=adopt)",
						 (long long)r.id, (long long)r.supervisor_pid, ap);
					cb(ctx, r.id, line);
				}
				run_rec_free(&r);
				continue;
			}
			if (cb) {
				snprintf(line, sizeof(line), "run %lld: adoption failed (%s); killing instead",
					 (long long)r.id, aerr);
				cb(ctx, r.id, line);
			}
		}
		if (procs || r.cgroup)
			domain_kill_orphaned(r.cgroup, r.marker[0] ? marker : NULL, 5000);
		snprintf(why, sizeof(why), "%s; supervisor %lld gone (found by runner recover)%s",
			 r.state == RS_QUEUED ? "lost while queued" : "lost while running",
			 (long long)r.supervisor_pid,
			 procs ? "; its processes were still running and were killed" :
			 "; no process of the run was left");
		if (r.workdir)
			unstage_dir(r.workdir);
		run_machine_init(&m, r.state);
		run_step(&m, EV_LOST);
		v.state = m.state;
		v.error = why;
		if (runrec_finish(st, r.id, &v) == 1) {
			lost++;
			if (cb) {
				char line[700];

				snprintf(line, sizeof(line), "run %lld: LOST: %s", (long long)r.id, why);
				cb(ctx, r.id, line);
			}
		}
		run_rec_free(&r);
	}
	ret = lost;
out:
	free(c);
	return ret;
}
