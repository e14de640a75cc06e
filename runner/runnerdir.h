/* The runner directory: where per-run and per-user runner scripts
 * (bot_runner_<user>.py) are written before the interpreter runs them.
 *
 * Chain: the configured RUNNER_DIR / BOT_RUNNER_DIR, then
 * <state>/runtime/bot_runners, then failure; never /tmp.  A candidate must
 * exist or be creatable (0770) and be really writable (a probe file is
 * created and removed).  A candidate on a noexec mount is passed over when
 * a later one allows exec; if none does, interpreter mode takes the first
 * writable one (it never needs exec there), direct mode fails. */
#ifndef RUNNER_RUNNERDIR_H
#define RUNNER_RUNNERDIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "settings.h"

struct runnerdir_probe {
	char path[PATH_MAX];
	int err;		/* 0 when usable, else the positive errno */
	bool noexec;		/* the mount forbids exec */
	char why[1024];		/* one line: what was wrong (with diagnostics) */
};

struct runnerdir_choice {
	char path[PATH_MAX];	/* the directory to use ("" when none) */
	bool fallback;		/* not the first candidate */
	bool noexec;		/* chosen anyway, interpreter mode only */
	char reason[2048];	/* one line for the log */
	size_t n;		/* candidates examined */
	struct runnerdir_probe probes[2];
};

/* Checks one directory: creates it (0770) when missing, proves it is
 * writable and reads the mount's exec permission.  Returns 0 with p filled
 * (p->err is the verdict); -ENOMEM only. */
int runnerdir_check(const char *path, struct runnerdir_probe *p);

/* Walks the chain for s.  Returns 0 with c->path set, or -errno of the
 * last candidate's failure (c->reason says why each one failed). */
int runnerdir_resolve(const struct settings *s, struct runnerdir_choice *c);

/* Writes a per-user runner script bot_runner_<user>.py in dir, mode 0640,
 * atomically (temporary name, fsync, rename, fsync of dir).  user is
 * sanitised to [A-Za-z0-9_-] (other bytes become '_', at most 64).
 * path_out gets the full path.  Returns 0 or -errno with err set. */
int runnerdir_write_script(const char *dir, const char *user, const char *content,
			   size_t len, char *path_out, size_t path_len,
			   char *err, size_t errlen);

/* The sanitised user part of a runner script name. */
void runnerdir_user_name(const char *user, char *out, size_t outlen);

#endif
