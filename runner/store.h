/* The job store: one SQLite database at <state>/runner.db in WAL mode, with
 * a versioned schema (PRAGMA user_version) brought forward by the
 * migrations in store.c.  Several runner processes may use it at once:
 * writers wait on a busy timeout instead of failing. */
#ifndef RUNNER_STORE_H
#define RUNNER_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct store;

/* The schema version this build writes. */
#define STORE_SCHEMA_VERSION 3

struct script_rec {
	char id[37];		/* uuid v4 */
	const char *name;	/* sanitised original name */
	const char *file;	/* "<uuid>.<ext>" in the scripts directory */
	const char *lang;	/* "python", "node", "ts" or the bare extension */
	int64_t size;
	int64_t created_at;	/* unix milliseconds */
};

/* Opens (creating if needed) <state_dir>/runner.db and migrates it.  The
 * state directory is created (0750) when missing.  Returns 0 or -errno;
 * err names the database path and the cause. */
int store_open(const char *state_dir, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);

/* The open database, for the run record and log code (runrec.c, logs.c),
 * which keep their own SQL beside the concept it serves. */
struct sqlite3;
struct sqlite3 *store_db(struct store *st);

/* Path of the database file. */
const char *store_path(const struct store *st);

/* A descriptor that turns readable when another connection commits to the
 * store (inotify on the WAL file, which every commit writes), or -1 when
 * that cannot be watched (no inotify instance left: the caller polls).
 * After it turns readable, store_watch_drain() before looking. */
int store_watch_open(const struct store *st);
void store_watch_drain(int fd);

/* A waiter for the next commit, for wait, cancel and logs --follow.  The
 * event comes with a commit's first write, not its end, so a look that
 * follows one is repeated once STORE_WATCH_SETTLE_MS later; and as every
 * run's commits write the same file, looks are at least
 * STORE_WATCH_GAP_MS apart however busy the store is. */
#define STORE_WATCH_SETTLE_MS 5
#define STORE_WATCH_GAP_MS 20
struct store_waiter {
	int fd;			/* store_watch_open's, or -1 */
	bool settle;		/* the next wait is the settle look's */
	int64_t last_ms;	/* when the caller last looked (monotonic) */
};
void store_waiter_open(const struct store *st, struct store_waiter *w);
void store_waiter_close(struct store_waiter *w);
/* Returns when a commit may have come (or other_fd, -1 for none, turned
 * readable: then 1), at the latest after max_ms; the caller looks next. */
int store_waiter_wait(struct store_waiter *w, int other_fd, int max_ms);

/* Schema version found in the file (after migration: STORE_SCHEMA_VERSION). */
int store_schema_version(struct store *st);

int store_add_script(struct store *st, const struct script_rec *rec, char *err, size_t errlen);

/* Calls cb for every script, oldest first; a non-zero return stops. */
typedef int (*store_script_cb)(void *ctx, const struct script_rec *rec);
int store_list_scripts(struct store *st, store_script_cb cb, void *ctx, char *err, size_t errlen);

/* Runs PRAGMA integrity_check; returns 0 when it says "ok", -EIO otherwise
 * with the first complaint in err. */
int store_integrity_check(struct store *st, char *err, size_t errlen);

#endif
