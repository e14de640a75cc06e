/* /proc walks for the kill domain when no cgroup is available, and for
 * telling a live process from a reused pid.
 *
 * A run's processes are found two ways: by parent chain from a root pid
 * (the supervisor is a child subreaper, so orphaned descendants are
 * re-parented to it instead of to init), and by an environment marker
 * (FIELDRIG_RUN_MARK=<token>) every process of the run inherits, which also
 * finds a grandchild that called setsid and was re-parented elsewhere after
 * its supervisor died.  A process can clear its environment; the marker is
 * a net under the parent chain, and the cgroup is the real domain. */
#ifndef RUNNER_PROCTREE_H
#define RUNNER_PROCTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_MARK_VAR "FIELDRIG_RUN_MARK"

/* Start time of pid in clock ticks since boot (/proc/PID/stat field 22).
 * Returns 0, -ENOENT when the process is gone, or -errno. */
int proc_start_time(pid_t pid, uint64_t *start);

/* 1 when pid runs and started at start (0 matches any start time), 0 when
 * it is gone, a zombie or a different process under a reused pid. */
int proc_alive(pid_t pid, uint64_t start);

/* Signals every process that descends from root (not root itself, not the
 * pids in skip) or carries marker in its environment ("NAME=VALUE", NULL for
 * none).  With SIGTERM each one also gets SIGCONT, so a stopped process
 * sees the TERM.  Returns the number signalled (>= 0) or -errno. */
int proc_signal_tree(pid_t root, const pid_t *skip, size_t n_skip, const char *marker, int sig);

/* Number of processes (not zombies) carrying marker; -errno on error. */
int proc_count_marked(const char *marker);

#endif
