/* Running a scenario's steps in its world and checking what they show. */
#ifndef FIELDRIG_STEPS_H
#define FIELDRIG_STEPS_H

#include <jansson.h>
#include <stdio.h>

#include "scenario.h"
#include "world.h"

struct step_ctx {
	struct world *w;
	const struct scenario *sc;
	uint64_t deadline;	/* the scenario's wall-clock limit (monotonic ns) */
	json_t *failures;	/* array: what failed, expected, actual, file:line */
	FILE *repro;		/* the commands as they ran, for repro.sh */
};

/* Runs step I and checks its expectations; appends its record to STEPS.
 * Returns 0 when it passed, 1 when an expectation failed, -ETIMEDOUT when
 * the scenario's limit passed or fieldrig was interrupted. */
int step_run(struct step_ctx *cx, unsigned i, json_t *steps);

/* Checks the scenario-wide expectations once the steps are done. */
int scenario_expect(struct step_ctx *cx, uint64_t elapsed_ns);

/* The faults a mount's trace holds (parsed JSON lines), for reports. */
json_t *trace_read(const char *path, long from);

/* Appends a failure record. */
void add_failure(struct step_ctx *cx, int step, const char *path, const char *what,
		 const char *expected, const char *actual);

#endif
