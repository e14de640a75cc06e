/* Which mechanism enforces a run's process and memory limits, and saying
 * so.  Where the run's cgroup v2 took pids.max / memory.max those hold;
 * otherwise the rlimit fallbacks do: RLIMIT_NPROC (per user: it counts
 * every process of the run's uid, and does not bind root at all) and
 * RLIMIT_DATA (not RLIMIT_AS, which breaks Node/V8).  An rlimit fallback
 * is not set where the cgroup limit holds (RLIMIT_NPROC would count the
 * user's other processes too). */
#ifndef RUNNER_RUNLIMITS_H
#define RUNNER_RUNLIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "spawn.h"

/* Adjusts lim (nproc, data) to the mechanism that applies and writes one
 * line into desc: "limits: processes 64 by cgroup pids.max; memory 64MiB by
 * RLIMIT_DATA (no memory controller for /sys/fs/cgroup/…: controllers
 * 'hugetlb')".  cg is NULL without a cgroup; drop/uid: the run's user. */
void limits_choose(uint64_t max_procs, uint64_t memory_max, const struct cgroup_run *cg,
		   bool drop, uid_t uid, struct spawn_limits *lim, char *desc, size_t desclen);

#endif
