/* SQLite job store: open, migrate, scripts table access. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Long enough to ride out another process's migration or a burst of
 * inserts, short enough that a wedged writer shows up as an error. */
#define STORE_BUSY_TIMEOUT_MS 10000

struct store {
	sqlite3 *db;
	char *path;
	int wal_frames;		/* frames in the WAL after our last commit */
};

/* The WAL is checkpointed by whoever commits past STORE_CKPT_FRAMES (as
 * SQLite's own automatic checkpoint does, which this hook replaces), and
 * at close by a connection whose last commit left more than
 * STORE_CLOSE_CKPT_FRAMES: see store_open and store_close. */
#define STORE_CKPT_FRAMES 1000
#define STORE_CLOSE_CKPT_FRAMES 128
#define STORE_CLOSE_CKPT_WAIT_MS 50

/* Forward migrations: migrations[i] takes the schema from version i to
 * i + 1.  Never edit a released step; append a new one. */
static const char *const migrations[] = {
	/* 0 -> 1: scripts, runs and their log output. */
	"CREATE TABLE scripts ("
	"  id TEXT PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  file TEXT NOT NULL UNIQUE,"
	"  lang TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  created_at INTEGER NOT NULL);"
	"CREATE TABLE runs ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  script_id TEXT NOT NULL REFERENCES scripts(id),"
	"  status TEXT NOT NULL,"
	"  exit_code INTEGER,"
	"  signal INTEGER,"
	"  error TEXT,"
	"  created_at INTEGER NOT NULL,"
	"  started_at INTEGER,"
	"  ended_at INTEGER,"
	"  pid INTEGER,"
	"  pid_start_time INTEGER,"
	"  cgroup TEXT,"
	"  cpu_ms INTEGER,"
	"  peak_rss_kb INTEGER);"
	"CREATE INDEX runs_status ON runs(status);"
	"CREATE INDEX runs_script ON runs(script_id);"
	"CREATE TABLE log_lines ("
	"  run_id INTEGER NOT NULL REFERENCES runs(id),"
	"  seq INTEGER NOT NULL,"
	"  stream TEXT NOT NULL,"
	"  ts INTEGER NOT NULL,"
	"  data BLOB NOT NULL,"
	"  PRIMARY KEY (run_id, seq));",
	/* 1 -> 2: what a supervisor needs to find, cancel and recover a run:
	 * who supervises it (pid and start time, so a reused pid is not
	 * mistaken for it), the environment marker its processes carry, the
	 * request it was started with, and a cancel flag another process
	 * sets. */
	"ALTER TABLE runs ADD COLUMN supervisor_pid INTEGER;"
	"ALTER TABLE runs ADD COLUMN supervisor_start INTEGER;"
	"ALTER TABLE runs ADD COLUMN marker TEXT;"
	"ALTER TABLE runs ADD COLUMN request TEXT;"
	"ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE runs ADD COLUMN exec_errno INTEGER;"
	"ALTER TABLE runs ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE runs ADD COLUMN workdir TEXT;",
	/* 2 -> 3: a row's output may be in the run's log file of its stream
	 * (<state>/logs/run-<id>.<stream>), at off, len bytes, with data
	 * empty; rows with off NULL carry their bytes in data, as every row
	 * written before did, so those stay readable as they are. */
	"ALTER TABLE log_lines ADD COLUMN off INTEGER;"
	"ALTER TABLE log_lines ADD COLUMN len INTEGER;",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_READONLY: case SQLITE_PERM: case SQLITE_AUTH: return -EACCES;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_CANTOPEN: return -ENOENT;
	case SQLITE_CORRUPT: case SQLITE_NOTADB: return -EILSEQ;
	default: return -EIO;
	}
}

static int db_fail(struct store *st, int rc, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s: %s", st->path, what,
		 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
	return sqlite_errno(rc);
}

static int exec_sql(struct store *st, const char *sql, const char *what, char *err, size_t errlen)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : db_fail(st, rc, what, err, errlen);
}

static int get_version(struct store *st, int *version)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &stmt, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*version = sqlite3_column_int(stmt, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(stmt);
	return rc;
}

/* Migrations run in one IMMEDIATE transaction: the first process to get
 * the write lock migrates, the others wait on the busy timeout and then
 * find the schema current. */
static int migrate(struct store *st, char *err, size_t errlen)
{
	char sql[64];
	int version = 0, ret, rc;

	/* The common case, a current schema, is settled by a read: taking
	 * the write lock and committing on every open cost a WAL write (and
	 * the checkpoint of it) per runner command. */
	if (get_version(st, &version) == SQLITE_OK && version == N_MIGRATIONS)
		return 0;
	ret = exec_sql(st, "BEGIN IMMEDIATE", "begin migration", err, errlen);
	if (ret < 0)
		return ret;
	rc = get_version(st, &version);
	if (rc != SQLITE_OK) {
		ret = db_fail(st, rc, "read schema version", err, errlen);
		goto rollback;
	}
	if (version > N_MIGRATIONS) {
		snprintf(err, errlen, "%s: schema version %d is newer than this runner knows (%d)",
			 st->path, version, N_MIGRATIONS);
		ret = -EPROTO;
		goto rollback;
	}
	/* Current already: nothing to write (a store on a full disk must
	 * still open, if only to be read). */
	if (version == N_MIGRATIONS)
		return exec_sql(st, "COMMIT", "commit migration", err, errlen);
	for (; version < N_MIGRATIONS; version++) {
		ret = exec_sql(st, migrations[version], "migrate schema", err, errlen);
		if (ret < 0)
			goto rollback;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	ret = exec_sql(st, sql, "write schema version", err, errlen);
	if (ret < 0)
		goto rollback;
	return exec_sql(st, "COMMIT", "commit migration", err, errlen);

rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int frames)
{
	struct store *st = ctx;

	st->wal_frames = frames;
	if (frames >= STORE_CKPT_FRAMES &&
	    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK)
		st->wal_frames = 0;
	return SQLITE_OK;
}

int store_open(const char *state_dir, struct store **out, char *err, size_t errlen)
{
	struct store *st;
	int ret, rc;

	*out = NULL;
	if (mkdir(state_dir, 0750) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot create state directory %s: %s", state_dir, strerror(errno));
		return ret;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return -ENOMEM;
	if (asprintf(&st->path, "%s/runner.db", state_dir) < 0) {
		st->path = NULL;
		ret = -ENOMEM;
		goto out_free;
	}
	rc = sqlite3_open_v2(st->path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = db_fail(st, rc, "open", err, errlen);
		goto out_free;
	}
	sqlite3_extended_result_codes(st->db, 1);
	/* The busy timeout must be in place before anything that can take a
	 * lock, switching to WAL included. */
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	/* No unconditional checkpoint when a connection closes: every
	 * runner command is a short-lived process, and the last one out
	 * checkpointing (fsync of the WAL and the database, then deleting
	 * and re-creating the WAL with a directory fsync) was most of a
	 * trivial run's cost.  The WAL stays; the hook below checkpoints it
	 * every STORE_CKPT_FRAMES, and store_close when it holds more than
	 * STORE_CLOSE_CKPT_FRAMES, so the next first opener, which must
	 * read the whole WAL to rebuild its index, never reads much.
	 * Durability is unchanged (synchronous=NORMAL, below). */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_wal_hook(st->db, wal_hook, st);
	/* Switching a fresh file to WAL needs an exclusive lock, and SQLite
	 * answers BUSY at once, without the busy handler, when another
	 * opener holds a lock it would have to wait for (deadlock
	 * avoidance): several processes opening a new store together hit
	 * it.  Retry for as long as the busy timeout would have waited. */
	/* SQLite's default 4 KiB pages.  16 KiB pages made capture of a
	 * chatty run three to four times faster, but a state directory on a
	 * full disk then had no room left for the run's verdict (each WAL
	 * frame is a page), and trivial runs were slower: the verdict matters
	 * more (tests/integration/runner/run_edges.sh, "full disk"). */
	for (rc = 0; rc < STORE_BUSY_TIMEOUT_MS / 5; rc++) {
		struct timespec ts = { 0, 5000000 };

		ret = exec_sql(st, "PRAGMA journal_mode=WAL", "enable WAL", err, errlen);
		if (ret != -EBUSY)
			break;
		nanosleep(&ts, NULL);
	}
	if (ret < 0)
		goto out_free;
	/* NORMAL is crash-safe in WAL mode (a power cut may lose the last
	 * commits, never corrupt); foreign keys keep runs tied to scripts. */
	ret = exec_sql(st, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
		       "set pragmas", err, errlen);
	if (ret < 0)
		goto out_free;
	ret = migrate(st, err, errlen);
	if (ret < 0)
		goto out_free;
	*out = st;
	return 0;

out_free:
	store_close(st);
	return ret;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	/* TRUNCATE, not PASSIVE: a passive checkpoint leaves the WAL's
	 * frames in the file, and the next process to open the store
	 * rebuilds its index from them with the backfill count at zero, so
	 * it saw the whole WAL as not yet checkpointed: every later command
	 * that committed anything found more than STORE_CLOSE_CKPT_FRAMES
	 * and checkpointed the same frames again on close (two or three
	 * fsyncs, most of a trivial run's cost on a busy disk).  Truncated,
	 * the next opener has nothing to read and counts from zero.  A
	 * short busy wait: if another connection writes or still reads the
	 * old frames, SQLite falls back to a passive checkpoint rather than
	 * hold this close up, and a later close truncates. */
	if (st->db && st->wal_frames > STORE_CLOSE_CKPT_FRAMES) {
		sqlite3_busy_timeout(st->db, STORE_CLOSE_CKPT_WAIT_MS);
		sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	}
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

const char *store_path(const struct store *st)
{
	return st->path;
}

int store_watch_open(const struct store *st)
{
	char wal[4096];
	int fd;

	if (snprintf(wal, sizeof(wal), "%s-wal", st->path) >= (int)sizeof(wal))
		return -1;
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return -1;
	/* The WAL file lives as long as any connection, ours included. */
	if (inotify_add_watch(fd, wal, IN_MODIFY) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void store_watch_drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_waiter_open(const struct store *st, struct store_waiter *w)
{
	w->fd = store_watch_open(st);
	w->settle = false;
	w->last_ms = mono_ms();
}

void store_waiter_close(struct store_waiter *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* poll() on what is given, for at most ms (< 0: 0). */
static int poll_some(struct pollfd *pf, nfds_t n, int64_t ms)
{
	return poll(pf, n, ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : (int)ms);
}

int store_waiter_wait(struct store_waiter *w, int other_fd, int max_ms)
{
	struct pollfd pf[2] = { { .fd = other_fd, .events = POLLIN },
				{ .fd = w->fd, .events = POLLIN } };
	int64_t start = mono_ms(), gap;
	int other = 0;

	if (w->settle) {
		/* The look after an event, once more: the commit is whole by
		 * now. */
		w->settle = false;
		other = poll_some(pf, 1, max_ms < STORE_WATCH_SETTLE_MS ? max_ms :
				  STORE_WATCH_SETTLE_MS) > 0;
	} else if (poll_some(pf, w->fd >= 0 ? 2 : 1, max_ms) > 0) {
		other = (pf[0].revents & (POLLIN | POLLHUP)) != 0;
		if (pf[1].revents & POLLIN) {
			/* Not more often than every GAP ms, whatever the rate
			 * of commits (any run's count). */
			gap = w->last_ms + STORE_WATCH_GAP_MS - mono_ms();
			if (gap > start + max_ms - mono_ms())
				gap = start + max_ms - mono_ms();
			if (!other && gap > 0)
				other = poll_some(pf, 1, gap) > 0;
			store_watch_drain(w->fd);
			w->settle = true;
		}
	}
	w->last_ms = mono_ms();
	return other;
}

int store_schema_version(struct store *st)
{
	int v = -1;

	if (get_version(st, &v) != SQLITE_OK)
		return -1;
	return v;
}

int store_add_script(struct store *st, const struct script_rec *rec, char *err, size_t errlen)
{
	static const char sql[] =
		"INSERT INTO scripts (id, name, file, lang, size, created_at) VALUES (?,?,?,?,?,?)";
	sqlite3_stmt *stmt = NULL;
	int rc;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return db_fail(st, rc, "prepare insert", err, errlen);
	sqlite3_bind_text(stmt, 1, rec->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, rec->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, rec->file, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, rec->lang, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, rec->size);
	sqlite3_bind_int64(stmt, 6, rec->created_at);
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE)
		return db_fail(st, rc, "insert script", err, errlen);
	return 0;
}

int store_list_scripts(struct store *st, store_script_cb cb, void *ctx, char *err, size_t errlen)
{
	static const char sql[] =
		"SELECT id, name, file, lang, size, created_at FROM scripts ORDER BY created_at, id";
	struct script_rec rec;
	sqlite3_stmt *stmt = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return db_fail(st, rc, "prepare list", err, errlen);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.id, sizeof(rec.id), "%s", (const char *)sqlite3_column_text(stmt, 0));
		rec.name = (const char *)sqlite3_column_text(stmt, 1);
		rec.file = (const char *)sqlite3_column_text(stmt, 2);
		rec.lang = (const char *)sqlite3_column_text(stmt, 3);
		rec.size = sqlite3_column_int64(stmt, 4);
		rec.created_at = sqlite3_column_int64(stmt, 5);
		ret = cb(ctx, &rec);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = db_fail(st, rc, "list scripts", err, errlen);
	sqlite3_finalize(stmt);
	return ret;
}

int store_integrity_check(struct store *st, char *err, size_t errlen)
{
	sqlite3_stmt *stmt = NULL;
	const char *res;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(st->db, "PRAGMA integrity_check(1)", -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return db_fail(st, rc, "integrity check", err, errlen);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		ret = db_fail(st, rc, "integrity check", err, errlen);
	} else {
		res = (const char *)sqlite3_column_text(stmt, 0);
		if (res == NULL || strcmp(res, "ok") != 0) {
			snprintf(err, errlen, "%s: integrity check: %s", st->path, res ? res : "(null)");
			ret = -EIO;
		}
	}
	sqlite3_finalize(stmt);
	return ret;
}
