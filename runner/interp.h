/* Interpreter choice per language, and its verification.
 *
 * Order, first match wins:
 *   1. the explicit setting (RUNNER_PYTHON / BLITZ_PYTHON, RUNNER_NODE,
 *      RUNNER_TS); a bare name such as "python3" is looked up on PATH;
 *   2. python only: <RUNNER_PROJECT_DIR>/.venv/bin/python, unless running in
 *      a container (the container's system interpreter is the right one
 *      there, field report 001);
 *   3. PATH: python3 then python; node; for ts: tsx, ts-node, then node
 *      with --experimental-strip-types when node is 22.6 or newer.
 * The choice is verified: it exists, is executable, and really runs
 * (`python -c pass`, `node -e 0`) within a timeout. */
#ifndef RUNNER_INTERP_H
#define RUNNER_INTERP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "settings.h"

enum interp_lang { LANG_PYTHON = 0, LANG_NODE, LANG_TS, LANG__COUNT };

struct interp_choice {
	enum interp_lang lang;
	char path[PATH_MAX];	/* "" when nothing was found */
	/* Arguments that go between the interpreter and the script:
	 * "-u" for python (unbuffered output for live logs),
	 * "--experimental-strip-types" for ts through node. */
	const char *args[2];
	size_t n_args;
	const char *setting;	/* the setting that controls it */
	bool explicit_setting;	/* came from the setting */
	char reason[1024];	/* one line: why this one, or why none */
};

struct interp_env {
	const char *path_var;	/* PATH to search; NULL: getenv("PATH") */
	bool in_container;	/* from container detection */
	const char *container;	/* kind name, for the reason text */
	int timeout_ms;		/* for the verification run; 0: 10 s */
	/* When set, a passed verification is remembered in
	 * <cache_dir>/interp-cache for INTERP_CACHE_TTL_S, keyed by the
	 * path, the arguments and the file's identity (device, inode, size,
	 * mtime, ctime), and not repeated while all of them match.  NULL:
	 * always run the check (which, doctor). */
	const char *cache_dir;
};

#define INTERP_CACHE_TTL_S 600

/* "python", "node", "ts" -> lang, or -EINVAL. */
int interp_lang_from_name(const char *name);
const char *interp_lang_name(enum interp_lang lang);

/* Chooses and verifies.  Returns 0 (c->path set), -EINVAL when the explicit
 * setting is unusable (a configuration error), -ENOENT when nothing usable
 * was found, or another -errno; c->reason is one line naming the setting
 * and the path either way. */
int interp_choose(const struct settings *s, enum interp_lang lang,
		  const struct interp_env *env, struct interp_choice *c);

/* Runs argv[0] (a path) with argv, stdin and stdout on /dev/null, and waits
 * at most timeout_ms.  Up to outlen-1 bytes of stderr land in out.  Returns
 * 0 with *wstatus, -ETIMEDOUT (the child is killed), or -errno of the exec
 * itself (passed back over a close-on-exec pipe, so "cannot exec" is told
 * apart from "exited 126"). */
int interp_run(char *const argv[], int timeout_ms, int *wstatus, char *out, size_t outlen);

#endif
