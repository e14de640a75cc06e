/* A scenario's world: a private temporary directory holding the emulated
 * container root, the runner's state directory, the scenario's files and
 * its faultfs mounts (daemons in the foreground, as children), plus the
 * environment every command of the scenario gets.  world_teardown() undoes
 * all of it, whatever happened in between. */
#ifndef FIELDRIG_WORLD_H
#define FIELDRIG_WORLD_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "refs.h"
#include "scenario.h"

/* The programs a world uses. */
struct tools {
	char runner[PATH_MAX];
	char faultfs[PATH_MAX];
	char fusermount[PATH_MAX];
	char self[PATH_MAX];	/* fieldrig itself, for repro.sh */
};

struct wmount {
	char name[72];
	char mnt[PATH_MAX];
	char backing[PATH_MAX];
	char trace[PATH_MAX];
	char log[PATH_MAX];
	pid_t pid;		/* the faultfs daemon, 0 when not started */
	bool mounted;
};

struct world {
	char dir[PATH_MAX];	/* made by the caller (mkdtemp), owned by the world */
	char root[PATH_MAX];
	char state[PATH_MAX];
	struct wmount *mounts;
	unsigned nmounts;
	char **env;		/* for sh steps: base + world.env */
	char **runner_env;	/* for runner commands: env + world.settings */
	char **daemon_env;	/* for faultfs: base, without the world marker */
	struct refs refs;
	const struct tools *tools;
	bool used_runs;		/* a runner exec happened: teardown cancels and recovers */
};

/* Env names that tie processes to a world, for sweeps. */
#define WORLD_MARK "FIELDRIG_WORLD"
#define DAEMON_MARK "FIELDRIG_WORLD_DAEMON"

/* Builds SC's world in DIR (an existing empty directory).  Returns 0, or
 * -errno with one line in ERR; either way world_teardown() must follow. */
int world_build(struct world *w, const char *dir, const struct scenario *sc, const struct tools *t,
		char *err, size_t errlen);

/* Stops every process of the world, unmounts its mounts, and removes it
 * unless KEEP.  Returns 0, or -errno when something could not be undone
 * (named on stderr). */
int world_teardown(struct world *w, bool keep);

/* Last-resort cleanup of a world whose fieldrig child died: sweeps its
 * processes by marker, lazily unmounts whatever is mounted under DIR, and
 * removes DIR. */
void world_reap(const char *dir, const struct tools *t, bool keep);

/* Removes DIR recursively without crossing into other filesystems. */
int rm_tree(const char *dir);

/* The PATH every command of a world gets (and requirements are checked
 * against): FIELDRIG_PATH, else the system's standard directories. */
#define WORLD_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
const char *world_path(void);

/* The world's mount named NAME, or NULL. */
struct wmount *world_mount(struct world *w, const char *name);

#endif
