/* Adoption of a run whose supervisor died while its processes live on
 * (RUNNER_RECOVER_POLICY=adopt; the default, kill, kills them).
 *
 * The adopter is a new detached supervisor (double-forked, own session,
 * errors to <state>/supervisor.log) that registers itself as the run's
 * supervisor in the store - so `runner cancel` signals it and `recover`
 * leaves the run alone - and forks a watchdog of its own.  It cannot be
 * the processes' parent any more, so it watches the run's cgroup
 * (cgroup.events, populated 0) or, without one, the main pid (by pid and
 * start time) and the processes carrying the run's marker.  It enforces
 * what is left of the timeout (counted from the original start) and
 * cancel (TERM, RUNNER_KILL_GRACE, KILL of the whole domain), and records
 * the end time and the verdict.  The exit status of processes it did not
 * fork is unknown: a run that ends on its own is recorded FAILED with no
 * exit code and an error text that says so; output written after the
 * first supervisor died is not captured (its pipes died with it). */
#ifndef RUNNER_ADOPT_H
#define RUNNER_ADOPT_H

#include <stddef.h>

#include "runrec.h"
#include "settings.h"

/* Starts the adopter for r and returns once it is registered as r's
 * supervisor.  Returns its pid, or -errno with err. */
int run_adopt(const struct settings *s, const struct run_rec *r, char *err, size_t errlen);

/* The adopter itself: `runner adopt-run ID FD` (internal, exec'd by
 * run_adopt; writes one byte to FD once registered).  Never returns. */
void run_adopt_main(const struct settings *s, int64_t id, int ready_fd) __attribute__((noreturn));

#endif
