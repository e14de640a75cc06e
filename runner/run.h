/* Running a script under supervision: submission of a run, and the
 * supervisor that takes it from QUEUED to its verdict.
 *
 * The supervisor is the `runner exec` process itself, or with --detach a
 * live `runner serve` (run_host_*, below) or else a double-forked process
 * in its own session that outlives the command.  It
 * waits for a concurrency slot (runrec_claim), stages the script in a
 * per-run directory of the runner directory (its working directory), puts
 * the child in a per-run cgroup (or, without one, relies on being a child
 * subreaper plus process group and /proc sweeps), starts a watchdog that
 * kills the run if the supervisor dies, captures stdout and stderr into
 * the store, enforces the timeout, obeys cancel (SIGUSR1 after the store's
 * cancel flag is set; SIGTERM, SIGINT and SIGHUP to the supervisor count as
 * cancel too), and records the verdict through the lifecycle table. */
#ifndef RUNNER_RUN_H
#define RUNNER_RUN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lifecycle.h"
#include "settings.h"
#include "store.h"

#define RUN_MAX_ARGS 256
#define RUN_MAX_ENV 256

struct run_request {
	const char *script_id;
	const char *args[RUN_MAX_ARGS];
	size_t n_args;
	const char *env[RUN_MAX_ENV];	/* "K=V" */
	size_t n_env;
	uint64_t timeout_ns;		/* 0: MAX_EXECUTION_TIME */
	/* --user: resolved before any fork (NSS is not fork-safe). */
	const char *user;
	bool drop;
	uid_t uid;
	gid_t gid;
	char home[PATH_MAX];
	/* Restart policy, acted on by `runner serve`: "no", "on-failure"
	 * or "always"; attempt counts restarts so far, restart_of is the
	 * run this one restarts (0: none). */
	const char *restart;
	unsigned max_restarts;
	unsigned attempt;
	int64_t restart_of;
	/* --net: "none" (a network namespace of its own, only lo, up) or
	 * "host"; NULL: RUNNER_NETWORK. */
	const char *net;
};

/* What the supervisor needs beyond the request: filled by run_prepare. */
struct run_plan {
	int64_t id;
	char marker[48];		/* token of FIELDRIG_RUN_MARK */
	char script_path[PATH_MAX];	/* the uploaded file */
	char ext[16];			/* ".py" */
	char interp[PATH_MAX];		/* "" in direct mode */
	const char *interp_args[2];
	size_t n_interp_args;
};

/* Checks the script and request, chooses the interpreter, and inserts the
 * QUEUED run.  Returns 0, -EINVAL for the caller's input (unknown script,
 * bad --env), or another -errno; err names the cause. */
int run_prepare(const struct settings *s, struct store *st, const struct run_request *req,
		struct run_plan *plan, char *err, size_t errlen);

/* Whether the run gets a network namespace of its own (--net none, else
 * RUNNER_NETWORK=none). */
bool run_net_none(const struct settings *s, const struct run_request *req);

/* Supervises the run to its verdict, on the store connection st when it is
 * not NULL (the caller keeps it, open: a foreground exec goes on to report
 * on it), else on a connection of its own (call it so after a fork: no
 * connection may be carried across one).  ready_fd, when >= 0, gets
 * one byte once the supervisor is registered in the store, and is closed.
 * Returns the final state, or -errno when supervision itself could not
 * start (err set). */
int run_supervise(const struct settings *s, const struct run_request *req,
		  const struct run_plan *plan, int ready_fd, struct store *st, char *err,
		  size_t errlen);

/* Starts a detached process for a supervisor: forks twice, so it has a
 * session of its own and is nobody's child, with stdin and stdout on
 * /dev/null, stderr appended to <state>/supervisor.log and / as working
 * directory.  Returns 0 in that process, which writes one byte to *ready_fd
 * once it is registered; in the caller, 1 once that byte came, -ECHILD if
 * the process ended without it, or -errno (err set) when it could not be
 * started. */
int run_daemon_start(const struct settings *s, int *ready_fd, char *err, size_t errlen);

/* run_daemon_start, then an exec of this binary as `runner --state DIR CMD
 * ID FD` (FD: where it writes the ready byte), a fresh process image that
 * does not carry the caller's SQLite state, with env ("K=V", NULL-ended;
 * may be NULL) added to its environment.  Returns 0 once it is
 * registered, or -errno with err. */
int run_daemon_exec(const struct settings *s, const char *cmd, int64_t id, char *const *env,
		    char *err, size_t errlen);

/* Internal command `supervise-run ID FD`: supervises a run marked handed
 * over (run_handoff_mark) in this process, after the same guarded claim
 * as serve's; the handoff's settings and environment are the run's. */
void run_handed_main(const struct settings *s, int64_t id, int ready_fd) __attribute__((noreturn));

/* Hands the run to a double-forked supervisor in a session of its own
 * (stdio on /dev/null, errors appended to <state>/supervisor.log) and
 * returns once it is registered in the store.  0 or -errno with err. */
int run_detach(const struct settings *s, const struct run_request *req,
	       const struct run_plan *plan, char *err, size_t errlen);

/* Cancels a run from another process: sets the cancel flag and signals a
 * live supervisor, or, when the supervisor is gone, kills the run's domain
 * and records CANCELLED itself.  Waits up to wait_ms for the verdict.
 * Returns the final state (*already: it had ended before), -ENOENT,
 * -ETIMEDOUT or -errno. */
int run_cancel(struct store *st, int64_t id, int wait_ms, bool *already, char *err,
	       size_t errlen);

/* Waits for a verdict (0: forever).  Returns the final state or
 * -ETIMEDOUT / -errno. */
int run_wait(struct store *st, int64_t id, int64_t timeout_ms, char *err, size_t errlen);

/* `runner recover`: every QUEUED or RUNNING run whose supervisor is gone
 * becomes LOST, its processes killed first if any live.  cb (may be NULL)
 * gets one line per decision.  Returns the number of runs marked LOST or
 * -errno. */
int run_recover(struct store *st, void (*cb)(void *ctx, int64_t id, const char *line),
		void *ctx, char *err, size_t errlen);
/* The same under RUNNER_RECOVER_POLICY: with s->recover_adopt a RUNNING
 * run whose processes live is handed to an adopting supervisor (adopt.h)
 * instead of being killed; s may be NULL (kill). */
int run_recover_policy(const struct settings *s, struct store *st,
		       void (*cb)(void *ctx, int64_t id, const char *line), void *ctx,
		       char *err, size_t errlen);

/* ---- many runs in one process (runner serve) ----
 *
 * A host supervises runs in the caller's loop: one store connection (the
 * caller's), one watchdog process for all its runs (it kills every live
 * run's domain when the host's process dies), per-run state kept small
 * (log buffers only once output comes).  The caller blocks SIGCHLD,
 * SIGUSR1 and SIGUSR2 into its signalfd and passes them on: SIGCHLD to
 * run_host_sigchld, SIGUSR1 (runner cancel) to run_host_check_cancel,
 * SIGUSR2 (a run handed over) to run_host_take_pending. */
struct run_host;

int run_host_open(const struct settings *s, struct store *st, struct run_host **h, char *err,
		  size_t errlen);
/* Lets exec --detach hand runs over (the lock file <state>/serve.lock,
 * held while taking): -EBUSY when another serve holds it. */
int run_host_announce(struct run_host *h, char *err, size_t errlen);
/* Stops taking handed-over runs (a submitter then supervises its own). */
void run_host_withdraw(struct run_host *h);
/* Marks a QUEUED run as handed over: request.handoff gets what its
 * supervisor needs from the submitter (plan, settings, environment). */
int run_handoff_mark(const struct settings *s, struct store *st, const struct run_request *req,
		     const struct run_plan *plan);
/* Whether serve's probe could make a run cgroup (it hosts only runs with
 * one: see handoff() in run.c). */
bool run_host_cgroups(const struct run_host *h);
/* Takes one handed-over run (guarded: 1 taken, 0 someone else has it) and
 * makes its cgroup: -EOPNOTSUPP (err says why) when that cannot be made;
 * the run is then the caller's, QUEUED, to hand on. */
int run_host_take(struct run_host *h, int64_t id, char *err, size_t errlen);
/* Hands a QUEUED run the host took on to a supervisor of its own (runner
 * supervise-run, which takes it over from the host in one guarded
 * UPDATE), waiting until it has; when that process cannot start, the run
 * is recorded FAILED.  0 or -errno (err says why). */
int run_host_hand_on(struct run_host *h, const struct settings *s, int64_t id, char *err,
		     size_t errlen);
enum run_take {
	RUN_TAKE_HOSTED,	/* the host supervises it */
	RUN_TAKE_OWN,		/* no cgroup for it: a supervisor of its own (text: why) */
	RUN_TAKE_NOT,		/* someone else took it first (text) */
	RUN_TAKE_FAILED,	/* text: the error */
};
/* Takes every handed-over run nobody supervises, or, where its cgroup
 * cannot be made, starts a supervisor of its own for it (runner
 * supervise-run); cb gets each.  Returns the number taken. */
int run_host_take_pending(struct run_host *h,
			  void (*cb)(void *ctx, int64_t id, enum run_take how, const char *text),
			  void *ctx);
/* One turn: polls fd and the runs' pipes for at most max_ms (less when a
 * run's timer is due), then moves every run's machine; cb (may be NULL)
 * gets each run that started (RS_RUNNING, text "pid=… domain=…") and each
 * that got its verdict (the state, or -errno; text: the error).  Returns 1
 * when fd is readable, 0, or -errno. */
int run_host_turn(struct run_host *h, int fd, int max_ms,
		  void (*cb)(void *ctx, int64_t id, int state, const char *text), void *ctx);
void run_host_sigchld(struct run_host *h);
void run_host_check_cancel(struct run_host *h);
/* Cancels run id (0: every hosted run) with why as the reason. */
void run_host_cancel(struct run_host *h, int64_t id, const char *why);
size_t run_host_live(const struct run_host *h);
bool run_host_has(const struct run_host *h, int64_t id);
/* Ends the host: the watchdog is told all is done when no run is live,
 * else it is left to kill what remains once this process exits. */
void run_host_close(struct run_host *h);

#endif
