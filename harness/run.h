/* Running scenarios: requirements, one forked child per scenario (its own
 * process group, world and wall-clock limit), up to N at once, results
 * gathered as JSON for the console and the reports. */
#ifndef FIELDRIG_RUN_H
#define FIELDRIG_RUN_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "scenario.h"
#include "world.h"

struct run_opts {
	int jobs;
	const char *tag;
	const regex_t *filter;
	bool keep;		/* keep the worlds of failed scenarios */
	bool keep_all;		/* keep every world (--keep-all, with --filter) */
	uint64_t timeout_ns;	/* for scenarios without a timeout of their own; 0: theirs */
	bool tty;
	const char *reports;	/* where repro scripts go */
	struct tools tools;
};

/* Finds the programs: FIELDRIG_RUNNER / FIELDRIG_FAULTFS, else next to
 * this binary in the build tree, else PATH. */
int tools_find(struct tools *t, char *err, size_t errlen);

/* Why SC cannot run here (a malloc'd reason), or NULL when it can. */
char *requirements_unmet(const struct scenario *sc, const struct tools *t);

/* Runs one scenario in WORLD_DIR (made by the caller) and returns its result. */
json_t *scenario_exec(const struct scenario *sc, const char *world_dir, const struct run_opts *o);

/* Runs SCS (N of them) and returns the array of results (in SCS order). */
json_t *run_all(struct scenario **scs, size_t n, const struct run_opts *o);

#endif
