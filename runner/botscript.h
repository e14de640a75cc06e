/* Per-user runner scripts written by `runner serve` (the bot-manager
 * workflow of the /tmp report): for each long-running bot run serve
 * manages (a live run with a restart policy), bot_runner_<key>.py is
 * written into the runner directory (the chosen one: configured
 * RUNNER_DIR or its fallback, never /tmp unless configured), mode 0640,
 * group of the run's --user so that user can read it.  Restarts of that
 * bot run the runner script through the interpreter; serve removes the
 * scripts it wrote on SIGTERM; `runner cleanup` removes stale ones but
 * never the one of a live run.
 *
 * The key is the run's --user, else "script-<script id>"; it is derived
 * from the run record alone, so cleanup can tell which runner scripts
 * belong to live runs without asking serve. */
#ifndef RUNNER_BOTSCRIPT_H
#define RUNNER_BOTSCRIPT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runrec.h"
#include "settings.h"
#include "store.h"

#define BOTSCRIPT_MAX 256

/* The file name bot_runner_<key>.py of run r's runner script. */
void botscript_name(const struct run_rec *r, char *out, size_t outlen);

/* File names of the runner scripts of every QUEUED or RUNNING run. */
struct botscript_live {
	char (*names)[96];
	size_t n;
};
int botscript_live_names(struct store *st, struct botscript_live *l);
bool botscript_live_has(const struct botscript_live *l, const char *name);
void botscript_live_free(struct botscript_live *l);

/* What serve wrote. */
struct botscript_entry {
	char name[96];
	char path[PATH_MAX];
	int64_t run;		/* last live run it was written or kept for */
};
struct botscripts {
	struct botscript_entry v[BOTSCRIPT_MAX];
	size_t n;
};

/* Log callback: one line per decision ("runner-script wrote ..."). */
typedef void (*botscript_say)(const char *line);

/* Writes the runner script of every live managed run that has none yet
 * (and rewrites one that has gone, e.g. removed by hand). */
void botscripts_sync(const struct settings *s, struct store *st, struct botscripts *b,
		     botscript_say say);
/* The runner script serve wrote for run r's bot, or NULL. */
const char *botscripts_path_for(const struct botscripts *b, const struct run_rec *r);
/* Removes every runner script serve wrote (SIGTERM). */
void botscripts_remove_all(struct botscripts *b, botscript_say say);

#endif
