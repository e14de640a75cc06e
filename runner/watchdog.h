/* The watchdog: what makes a run's processes die with their supervisor.
 *
 * PR_SET_PDEATHSIG on the direct child does not reach its descendants, so
 * before the child is spawned the supervisor forks a small watchdog in a
 * session of its own, outside the run's kill domain, holding the read end
 * of a pipe whose only write end the supervisor keeps.  When the
 * supervisor ends normally it writes 'D' and the watchdog exits.  When the
 * supervisor dies any other way (kill -9, a crash, OOM) the kernel closes
 * the write end, the watchdog reads EOF and kills the domain: cgroup.kill
 * (or freeze + KILL of cgroup.procs) and rmdir when the run has a cgroup,
 * else SIGKILL to every process carrying the run's environment marker,
 * repeated until none is left.  The run stays RUNNING in the store until
 * `runner recover` marks it LOST: the watchdog does not open the store, so
 * it cannot be the one that wedges it. */
#ifndef RUNNER_WATCHDOG_H
#define RUNNER_WATCHDOG_H

#include <sys/types.h>

struct watchdog {
	pid_t pid;
	int fd;			/* write end; -1 when not running */
};

/* cgroup_path may be NULL (no cgroup: marker sweep only).  marker is
 * "FIELDRIG_RUN_MARK=<token>".  Returns 0 or -errno. */
int watchdog_start(struct watchdog *w, const char *cgroup_path, const char *marker);

/* The watchdog process is WATCHDOG_HELPER, from the directory of the
 * running binary, when it is there (built and installed next to runner),
 * else a forked copy of the supervisor.  The helper's main() is
 * watchdog_exec_main, argv: WATCHDOG_HELPER WATCHDOG_ARGV1 FD CGROUP
 * MARKER ("" for none); it never returns for a well-formed one (2 for
 * anything else). */
#define WATCHDOG_HELPER "runner-watchdog"
#define WATCHDOG_ARGV1 "--watchdog"
int watchdog_exec_main(int argc, char **argv);

/* Tells the watchdog the supervisor finished its job; it exits.  The
 * caller reaps it (or the subreaper loop does). */
void watchdog_done(struct watchdog *w);

/* One watchdog for many runs (runner serve): started once, told over the
 * pipe which kill domains are live ("+MARKER<TAB>CGROUP\n" before a run's
 * child is spawned, "-MARKER\n" after its teardown).  When the write end
 * closes without a 'D' (serve died), it kills every domain it still holds:
 * every cgroup at once, then the marker sweeps.  Same helper binary,
 * argv: WATCHDOG_HELPER WATCHDOG_MULTI_ARGV1 FD. */
#define WATCHDOG_MULTI_ARGV1 "--watchdog-multi"
int watchdog_multi_start(struct watchdog *w);
/* 0 or -errno (-EPIPE: the watchdog is gone). */
int watchdog_multi_add(struct watchdog *w, const char *cgroup_path, const char *marker);
int watchdog_multi_del(struct watchdog *w, const char *marker);

/* Kills a run's domain from outside its supervisor (watchdog, cancel of an
 * orphaned run, recover): cgroup first, then the marker sweep, until both
 * are empty or timeout_ms passes.  Returns the number of processes seen
 * by the sweeps, or -ETIMEDOUT. */
int domain_kill_orphaned(const char *cgroup_path, const char *marker, int timeout_ms);

#endif
