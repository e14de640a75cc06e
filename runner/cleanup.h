/* `runner cleanup`: removes what the runner itself left behind and nobody
 * needs any more - the per-run directories of finished runs (staged script
 * and whatever the script wrote in its working directory), stale per-user
 * runner scripts (bot_runner_*.py), leftover upload temporaries
 * (.upload-*.tmp) and log files of runs the store does not have
 * (<state>/logs/run-<id>.<stream>) - never anything of a run that is QUEUED
 * or RUNNING, never a log file of a run in the store (its log is read from
 * it for as long as the run is recorded), and
 * never anything it did not create.  A file it cannot remove (EACCES,
 * EBUSY on a mountpoint, EROFS...) is reported and skipped; the rest goes
 * on.  Runs that ended more than RUNNER_KEEP_RUNS ago (and whose per-run
 * directory is gone) are forgotten: record, log index rows, log files. */
#ifndef RUNNER_CLEANUP_H
#define RUNNER_CLEANUP_H

#include <stdint.h>

#include "settings.h"
#include "store.h"

/* One call per path: err 0 removed, else the positive errno. */
typedef void (*cleanup_cb)(void *ctx, const char *path, int err);

/* Runs forgotten in one call at most (RUNNER_KEEP_RUNS); more go next time. */
#define CLEANUP_FORGET_MAX 1024

struct cleanup_stats {
	unsigned removed;
	unsigned failed;
	unsigned forgotten;	/* runs past RUNNER_KEEP_RUNS: record, log rows and files */
};

/* Removes what is older than older_than_ms (finished that long ago, or
 * not modified for that long).  Returns 0 (failures are in stats and the
 * callbacks) or -errno when the store cannot be read. */
int cleanup_run(const struct settings *s, struct store *st, int64_t older_than_ms,
		cleanup_cb cb, void *ctx, struct cleanup_stats *stats, char *err, size_t errlen);

#endif
