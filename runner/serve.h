/* `runner serve`: the manager loop of the bot-manager report, over runs
 * that are each supervised by their own process (so serve is not needed
 * for a run to be timed out, logged or cancelled, and a serve restart
 * loses nothing):
 *   - at start and every RUNNER_CLEANUP_INTERVAL: recover (runs whose
 *     supervisor died become LOST) and cleanup (per-run directories of runs
 *     finished over an hour ago, stale runner scripts);
 *   - restarts runs submitted with --restart on-failure|always, up to
 *     --max-restarts times, after a backoff of 1 s doubling per attempt
 *     (at most 60 s), counted from the previous attempt's end;
 *   - on SIGTERM or SIGINT stops taking work, then by RUNNER_SERVE_STOP
 *     cancels (default) or waits for the live runs that have a restart
 *     policy, and exits 0.
 * Every decision is one line on stderr, "runner serve: EVENT key=value...",
 * which journald and grep both take as they are. */
#ifndef RUNNER_SERVE_H
#define RUNNER_SERVE_H

#include "settings.h"

/* Runs until SIGTERM/SIGINT.  Returns 0, or -errno when the store cannot
 * be opened (err set). */
int serve_main(const struct settings *s, char *err, size_t errlen);

#endif
