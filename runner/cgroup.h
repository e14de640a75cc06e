/* A per-run cgroup v2: the kill domain that catches every process of a run,
 * a grandchild that called setsid and a fork storm included.
 *
 * The cgroup2 mount is found in /proc/self/mountinfo (pure v2 at
 * /sys/fs/cgroup, or the unified half of a hybrid at
 * /sys/fs/cgroup/unified).  Run cgroups live in a "fieldrig" parent
 * beneath the runner's own cgroup, else beneath the mount's root.  Limits
 * (memory.max, pids.max) are written where those controllers can be
 * enabled; a kill writes cgroup.kill, or on kernels without it freezes the
 * cgroup and SIGKILLs each pid of cgroup.procs. */
#ifndef RUNNER_CGROUP_H
#define RUNNER_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroup_run {
	char path[PATH_MAX];	/* absolute directory of the run's cgroup */
	bool has_kill;		/* cgroup.kill exists (Linux 5.14+) */
	bool memory_limited;	/* memory.max written */
	bool pids_limited;	/* pids.max written */
};

struct cgroup_limits {
	uint64_t memory_max;	/* bytes, 0: none */
	uint64_t pids_max;	/* 0: none */
};

/* Creates the cgroup <parent>/fieldrig/<name>.  Returns 0, or -errno with
 * err saying which directories were tried and why they failed (the caller
 * falls back to the process-group and /proc kill domain). */
int cgroup_create(const char *name, const struct cgroup_limits *lim,
		  struct cgroup_run *cg, char *err, size_t errlen);

/* Whether a run cgroup can be made here: one is created (named after the
 * caller's pid) and removed.  0, or -errno with err as cgroup_create's. */
int cgroup_probe(char *err, size_t errlen);

/* Opens an existing run cgroup by path (cancel, recover, the watchdog). */
void cgroup_attach(const char *path, struct cgroup_run *cg);

/* Moves pid into the cgroup.  0 or -errno. */
int cgroup_add_pid(const struct cgroup_run *cg, pid_t pid);

/* Sends sig to every process in the cgroup (and SIGCONT after SIGTERM).
 * Returns how many were signalled, or -errno. */
int cgroup_signal(const struct cgroup_run *cg, int sig);

/* Kills every process in the cgroup with SIGKILL: cgroup.kill, or freeze
 * and kill each pid.  0 or -errno. */
int cgroup_kill(const struct cgroup_run *cg);

/* 1 when processes remain, 0 when empty, -errno (-ENOENT: no cgroup). */
int cgroup_populated(const struct cgroup_run *cg);

/* An fd on cgroup.events: poll(2) reports POLLPRI when "populated"
 * changes, so an emptying cgroup can be waited for without sleeping. */
int cgroup_events_fd(const struct cgroup_run *cg);

/* Waits up to timeout_ms for the cgroup to empty.  0, -ETIMEDOUT or
 * -errno. */
int cgroup_wait_empty(const struct cgroup_run *cg, int timeout_ms);

/* CPU time (cpu.stat usage_usec) and peak memory (memory.peak, when the
 * memory controller is on).  Missing values are left at -1. */
void cgroup_stats(const struct cgroup_run *cg, int64_t *cpu_us, int64_t *peak_bytes);

/* Removes the (empty) cgroup.  0 or -errno; -ENOENT counts as done. */
int cgroup_remove(const struct cgroup_run *cg);

#endif
