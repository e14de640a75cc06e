/* Log capture and reading; see logs.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "logs.h"
#include "lifecycle.h"
#include "runrec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *log_stream_name(enum log_stream s)
{
	switch (s) {
	case LOG_STDOUT: return "stdout";
	case LOG_STDERR: return "stderr";
	default: return "runner";
	}
}

/* The state directory is the store's: <state>/runner.db. */
static int log_dir(const struct store *st, char *buf, size_t len)
{
	const char *db = store_path(st), *slash = strrchr(db, '/');
	int n;

	if (slash == NULL)
		n = snprintf(buf, len, "logs");
	else
		n = snprintf(buf, len, "%.*s/logs", (int)(slash - db), db);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int log_file_path(const struct store *st, int64_t run_id, enum log_stream s, char *buf,
		  size_t len)
{
	size_t l;
	int n, ret = log_dir(st, buf, len);

	if (ret < 0)
		return ret;
	l = strlen(buf);
	n = snprintf(buf + l, len - l, "/run-%lld.%s", (long long)run_id, log_stream_name(s));
	return n < 0 || (size_t)n >= len - l ? -ENAMETOOLONG : 0;
}

int log_writer_init(struct log_writer *w, struct store *st, int64_t run_id, uint64_t cap)
{
	memset(w, 0, sizeof(*w));
	w->st = st;
	w->run_id = run_id;
	w->cap = cap;
	w->f[0].fd = w->f[1].fd = -1;
	/* Large enough for malloc to map it afresh: untouched pages cost
	 * nothing. */
	w->rows = malloc(LOG_BATCH_LINES * sizeof(*w->rows) + LOG_NOTES_BYTES + LOG_READ_BYTES);
	if (w->rows == NULL)
		return -ENOMEM;
	w->notes = (char *)(w->rows + LOG_BATCH_LINES);
	w->rbuf = w->notes + LOG_NOTES_BYTES;
	return 0;
}

ssize_t log_writer_read(struct log_writer *w, enum log_stream s, int fd)
{
	ssize_t n = read(fd, w->rbuf, LOG_READ_BYTES);

	if (n < 0)
		return -errno;
	if (n > 0)
		log_writer_feed(w, s, w->rbuf, (size_t)n);
	return n;
}

static void keep_err(struct log_writer *w, int err)
{
	if (w->err == 0)
		w->err = err;
}

/* The stream's file, made as SQLite makes the store's own files: the
 * database's permission bits, and when root makes it for a store that
 * belongs to someone else, that owner (so whoever may read the store may
 * read its logs, and nobody else).  A file left by an earlier store at the
 * same path is truncated: run ids are never reused within a store. */
static int open_stream(struct log_writer *w, enum log_stream s)
{
	char path[PATH_MAX];
	struct stat db;
	bool have_db = stat(store_path(w->st), &db) == 0;
	mode_t mode = have_db ? db.st_mode & 0666 : 0644;
	bool chown_it = have_db && geteuid() == 0 && (db.st_uid != 0 || db.st_gid != 0);
	int fd, ret;

	ret = log_dir(w->st, path, sizeof(path));
	if (ret < 0)
		return ret;
	if (mkdir(path, 0750) == 0) {
		if (chown_it && chown(path, db.st_uid, db.st_gid) < 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	ret = log_file_path(w->st, w->run_id, s, path, sizeof(path));
	if (ret < 0)
		return ret;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	/* The umask may have taken bits the store has. */
	if (fchmod(fd, mode) < 0 || (chown_it && fchown(fd, db.st_uid, db.st_gid) < 0)) {
		ret = -errno;
		close(fd);
		unlink(path);
		return ret;
	}
	w->f[s].fd = fd;
	return 0;
}

/* One transaction for rows [from, to) of the batch; a SQLite result code. */
static int flush_rows(struct log_writer *w, size_t from, size_t to)
{
	sqlite3 *db = store_db(w->st);
	sqlite3_stmt *s = NULL;
	uint64_t bytes = 0;
	int64_t seq = w->seq;
	size_t i;
	int rc;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_prepare_v2(db, "INSERT INTO log_lines (run_id, seq, stream, ts, data, off, len) "
				"VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &s, NULL);
	for (i = from; rc == SQLITE_OK && i < to; i++) {
		const struct log_row *r = &w->rows[i];

		sqlite3_bind_int64(s, 1, w->run_id);
		sqlite3_bind_int64(s, 2, ++seq);
		sqlite3_bind_text(s, 3, log_stream_name(r->stream), -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, r->ts);
		if (r->stream == LOG_RUNNER) {
			sqlite3_bind_blob(s, 5, w->notes + r->off, (int)r->len, SQLITE_STATIC);
			sqlite3_bind_null(s, 6);
			sqlite3_bind_null(s, 7);
		} else {
			sqlite3_bind_zeroblob(s, 5, 0);
			sqlite3_bind_int64(s, 6, (int64_t)r->off);
			sqlite3_bind_int64(s, 7, r->len);
		}
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		bytes += r->len;
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK) {
		sqlite3_stmt *u = NULL;

		rc = sqlite3_prepare_v2(db, "UPDATE runs SET log_bytes = log_bytes + ? WHERE id = ?",
					-1, &u, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(u, 1, (int64_t)bytes);
			sqlite3_bind_int64(u, 2, w->run_id);
			rc = sqlite3_step(u);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
		sqlite3_finalize(u);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	w->seq = seq;
	return SQLITE_OK;
}

/* On a full disk a batch that does not fit whole is written in halves, so
 * what does fit is kept however large the batch grew; the output is kept
 * as a prefix: past the first row that does not fit nothing more is
 * stored. */
static int flush_fitting(struct log_writer *w, size_t from, size_t to)
{
	size_t mid;
	int rc = flush_rows(w, from, to);

	if ((rc & 0xff) != SQLITE_FULL || to - from < 2)
		return rc;
	mid = from + (to - from) / 2;
	rc = flush_fitting(w, from, mid);
	return rc == SQLITE_OK ? flush_fitting(w, mid, to) : rc;
}

int log_writer_flush(struct log_writer *w)
{
	int rc;

	if (w->n_rows == 0)
		return w->err;
	rc = w->full ? SQLITE_FULL : flush_fitting(w, 0, w->n_rows);
	w->n_rows = 0;
	w->notes_len = 0;
	w->batch_start_ms = 0;
	if (rc == SQLITE_OK)
		return 0;
	/* The batch is dropped rather than kept growing: memory stays flat,
	 * and the error is reported when the run ends.  Its bytes stay in
	 * the files, past the rows: never shown. */
	if ((rc & 0xff) == SQLITE_FULL)
		w->full = true;
	keep_err(w, (rc & 0xff) == SQLITE_FULL ? -ENOSPC : (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO);
	return w->err;
}

/* Returns what a flush it made returned, else 0. */
static int add_row(struct log_writer *w, enum log_stream s, uint64_t off, size_t len, int64_t ts)
{
	struct log_row *r = &w->rows[w->n_rows++];

	r->off = off;
	r->len = (uint32_t)len;
	r->stream = (uint8_t)s;
	r->ts = ts;
	if (w->batch_start_ms == 0)
		w->batch_start_ms = mono_ms();
	if (w->n_rows == LOG_BATCH_LINES)
		return log_writer_flush(w);
	return 0;
}

static int add_note(struct log_writer *w, const char *text)
{
	size_t len = strlen(text), at;
	int ret = 0;

	if (len > LOG_NOTES_BYTES)
		len = LOG_NOTES_BYTES;
	if (w->notes_len + len > LOG_NOTES_BYTES)
		ret = log_writer_flush(w);
	at = w->notes_len;
	memcpy(w->notes + at, text, len);
	w->notes_len += len;
	if (add_row(w, LOG_RUNNER, at, len, wall_ms()) < 0)
		return w->err;
	return ret;
}

/* Output is no longer kept: a stream's unfinished line goes from its file
 * too, so the log ends at whole lines. */
static void drop_unfinished(struct log_writer *w)
{
	int s;

	for (s = 0; s < 2; s++) {
		struct log_file *f = &w->f[s];

		if (f->fd >= 0 && f->end > f->row_end && ftruncate(f->fd, (off_t)f->row_end) == 0)
			f->end = f->row_end;
	}
}

/* Rows for the bytes [f->end - n, f->end) of stream s, in memory at mem,
 * and what was not in rows before them: every whole line, cut at
 * LOG_CHUNK. */
static void cut_rows(struct log_writer *w, enum log_stream s, const char *mem, size_t n,
		     int64_t ts)
{
	struct log_file *f = &w->f[s];
	uint64_t mem_off = f->end - n;

	for (;;) {
		uint64_t limit = f->row_end + LOG_CHUNK, stop = f->end < limit ? f->end : limit;
		uint64_t from = f->row_end > mem_off ? f->row_end : mem_off, row_end;
		const char *nl = NULL;

		/* What came before mem holds no '\n' (it would be in a row). */
		if (stop > from)
			nl = memrchr(mem + (from - mem_off), '\n', (size_t)(stop - from));
		if (nl != NULL)
			row_end = mem_off + (uint64_t)(nl - mem) + 1;
		else if (f->end >= limit)
			row_end = limit;
		else
			break;
		add_row(w, s, f->row_end, (size_t)(row_end - f->row_end), ts);
		w->kept += row_end - f->row_end;
		f->row_end = row_end;
	}
}

static void cap_reached(struct log_writer *w)
{
	char note[160];

	w->truncated = true;
	drop_unfinished(w);
	snprintf(note, sizeof(note),
		 "[runner: log truncated: RUNNER_MAX_LOG (%llu bytes) reached; further output dropped]\n",
		 (unsigned long long)w->cap);
	add_note(w, note);
}

static void stop_keeping(struct log_writer *w, enum log_stream s, int err)
{
	char path[PATH_MAX], note[PATH_MAX + 160];

	w->stopped = true;
	keep_err(w, -err);
	drop_unfinished(w);
	if (log_file_path(w->st, w->run_id, s, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "%s", log_stream_name(s));
	if (err == ENOSPC)
		snprintf(note, sizeof(note), "[runner: log capture stopped: %s: less than %u KiB "
			 "left on its file system, kept for the store; further output dropped]\n",
			 path, LOG_DISK_RESERVE >> 10);
	else
		snprintf(note, sizeof(note), "[runner: log capture stopped: %s: %s; further output "
			 "dropped]\n", path, strerror(err));
	add_note(w, note);
}

/* How much of len bytes the file system takes while leaving the
 * reserve.  It is looked at again once half of what was free past the
 * reserve, or LOG_DISK_RECHECK, has been written (others may be writing
 * too), so a roomy disk costs one fstatvfs per 64 MiB, a nearly full one
 * one per read. */
static size_t room_for(struct log_writer *w, int fd, size_t len)
{
	struct statvfs v;
	uint64_t avail;

	if (len <= w->room) {
		w->room -= len;
		return len;
	}
	if (fstatvfs(fd, &v) < 0)
		return len;
	avail = (uint64_t)v.f_bavail * v.f_frsize;
	avail = avail > LOG_DISK_RESERVE ? avail - LOG_DISK_RESERVE : 0;
	if (avail < len) {
		w->room = 0;
		return (size_t)avail;
	}
	w->room = (avail - len) / 2 < LOG_DISK_RECHECK ? (avail - len) / 2 : LOG_DISK_RECHECK;
	return len;
}

int log_writer_feed(struct log_writer *w, enum log_stream s, const char *data, size_t len)
{
	struct log_file *f = &w->f[s];
	uint64_t left = w->cap - w->kept, pending;
	size_t put = len, done = 0;
	bool at_cap = false;
	int err = 0;

	if (len == 0 || w->truncated || w->stopped || w->full)
		return w->err;
	if (f->fd < 0) {
		int ret = open_stream(w, s);

		if (ret < 0) {
			stop_keeping(w, s, -ret);
			return w->err;
		}
	}
	/* The cap: only whole lines that fit are written. */
	pending = f->end - f->row_end;
	if (pending + len > left) {
		const char *nl = left > pending ? memrchr(data, '\n', (size_t)(left - pending)) : NULL;

		put = nl ? (size_t)(nl - data) + 1 : 0;
		at_cap = true;
	}
	if (put > 0) {
		size_t room = room_for(w, f->fd, put);

		if (room < put) {
			put = room;
			err = ENOSPC;
		}
	}
	while (done < put) {
		ssize_t n = write(f->fd, data + done, put - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : ENOSPC;
			break;
		}
		done += (size_t)n;
	}
	f->end += done;
	cut_rows(w, s, data, done, wall_ms());
	if (err)
		stop_keeping(w, s, err);
	else if (at_cap)
		cap_reached(w);
	return w->err;
}

int log_writer_note(struct log_writer *w, const char *text)
{
	return add_note(w, text);
}

int log_writer_due_ms(const struct log_writer *w)
{
	int64_t left;

	if (w->n_rows == 0)
		return -1;
	left = w->batch_start_ms + LOG_BATCH_MS - mono_ms();
	return left < 0 ? 0 : (int)left;
}

int log_writer_close(struct log_writer *w)
{
	int s, ret;

	/* The last line without '\n' of each stream, if it is kept. */
	for (s = 0; s < 2; s++) {
		struct log_file *f = &w->f[s];
		uint64_t len = f->end - f->row_end;

		if (len == 0 || w->truncated || w->stopped || w->full)
			continue;
		if (len > w->cap - w->kept) {
			cap_reached(w);
			continue;
		}
		add_row(w, (enum log_stream)s, f->row_end, (size_t)len, wall_ms());
		w->kept += len;
		f->row_end = f->end;
	}
	ret = log_writer_flush(w);
	free(w->rows);
	w->rows = NULL;
	w->notes = w->rbuf = NULL;
	for (s = 0; s < 2; s++) {
		if (w->f[s].fd >= 0 && close(w->f[s].fd) < 0)
			keep_err(w, -errno);
		w->f[s].fd = -1;
	}
	/* A batch dropped earlier (store busy or full for a while) is lost
	 * output even when the last flush went through: report it. */
	return ret < 0 ? ret : w->err;
}

/* The reading side: rows in sequence order, bytes from the row itself or
 * from the stream's file.  Rows that follow each other in one file are
 * copied as one range. */
struct reader {
	struct store *st;
	int64_t run_id;
	int fd[2];
	char *buf;
	/* a range of a file not copied yet */
	int pend_s;		/* -1: none */
	uint64_t pend_off, pend_len;
	char *err;
	size_t errlen;
};

#define READ_BUF (256u << 10)

static int copy_range(struct reader *r, FILE *out)
{
	enum log_stream s = (enum log_stream)r->pend_s;
	char path[PATH_MAX];
	uint64_t off = r->pend_off, end = r->pend_off + r->pend_len;

	if (r->pend_s < 0)
		return 0;
	r->pend_s = -1;
	if (log_file_path(r->st, r->run_id, s, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "(log of run %lld)", (long long)r->run_id);
	if (r->fd[s] < 0) {
		r->fd[s] = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (r->fd[s] < 0) {
			int e = errno;

			snprintf(r->err, r->errlen, "%s: read log of run %lld: %s", path,
				 (long long)r->run_id, strerror(e));
			/* Not -ENOENT: the run is there, its file is not. */
			return e == ENOENT ? -EIO : -e;
		}
	}
	while (off < end) {
		size_t want = end - off < READ_BUF ? (size_t)(end - off) : READ_BUF;
		ssize_t n = pread(r->fd[s], r->buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			snprintf(r->err, r->errlen, "%s: read log of run %lld: %s", path,
				 (long long)r->run_id, strerror(e));
			return -e;
		}
		if (n == 0) {
			snprintf(r->err, r->errlen, "%s: read log of run %lld: the file ends at byte "
				 "%llu, its rows go to byte %llu (cut after it was written: a power "
				 "failure, or by hand)", path, (long long)r->run_id,
				 (unsigned long long)off, (unsigned long long)end);
			return -EIO;
		}
		if (fwrite(r->buf, 1, (size_t)n, out) != (size_t)n)
			return -EPIPE;
		off += (uint64_t)n;
	}
	return 0;
}

/* Prints rows after *last; returns the number printed or -errno. */
static int print_batch(struct reader *r, int stream, int64_t *last, FILE *out)
{
	sqlite3_stmt *s;
	int rc, ret, n = 0;
	const char *sql = stream < 0 ?
		"SELECT seq, stream, data, off, len FROM log_lines WHERE run_id = ? AND seq > ? "
		"ORDER BY seq" :
		"SELECT seq, stream, data, off, len FROM log_lines WHERE run_id = ? AND seq > ? "
		"AND stream IN (?, 'runner') ORDER BY seq";

	rc = sqlite3_prepare_v2(store_db(r->st), sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto db_err;
	sqlite3_bind_int64(s, 1, r->run_id);
	sqlite3_bind_int64(s, 2, *last);
	if (stream >= 0)
		sqlite3_bind_text(s, 3, log_stream_name((enum log_stream)stream), -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 1);
		int fs = name == NULL ? -1 : !strcmp(name, "stdout") ? LOG_STDOUT :
			 !strcmp(name, "stderr") ? LOG_STDERR : -1;

		*last = sqlite3_column_int64(s, 0);
		n++;
		if (sqlite3_column_type(s, 3) != SQLITE_NULL && fs >= 0) {
			uint64_t off = (uint64_t)sqlite3_column_int64(s, 3);
			uint64_t len = (uint64_t)sqlite3_column_int64(s, 4);

			if (r->pend_s == fs && r->pend_off + r->pend_len == off) {
				r->pend_len += len;
				continue;
			}
			ret = copy_range(r, out);
			if (ret < 0)
				goto fail;
			r->pend_s = fs;
			r->pend_off = off;
			r->pend_len = len;
		} else {
			const void *d = sqlite3_column_blob(s, 2);
			int len = sqlite3_column_bytes(s, 2);

			ret = copy_range(r, out);
			if (ret < 0)
				goto fail;
			if (len > 0 && fwrite(d, 1, (size_t)len, out) != (size_t)len) {
				ret = -EPIPE;
				goto fail;
			}
		}
	}
	if (rc != SQLITE_DONE)
		goto db_err;
	sqlite3_finalize(s);
	ret = copy_range(r, out);
	return ret < 0 ? ret : n;

db_err:
	snprintf(r->err, r->errlen, "%s: read log of run %lld: %s", store_path(r->st),
		 (long long)r->run_id, sqlite3_errmsg(store_db(r->st)));
	sqlite3_finalize(s);
	return -EIO;
fail:
	sqlite3_finalize(s);
	return ret;
}

int log_print(struct store *st, int64_t run_id, const struct log_read_opts *o, FILE *out,
	      char *err, size_t errlen)
{
	struct reader rd = { .st = st, .run_id = run_id, .fd = { -1, -1 }, .pend_s = -1,
			     .err = err, .errlen = errlen };
	struct run_rec r;
	int64_t last = 0;
	bool ended;
	struct store_waiter w = { .fd = -1 };
	int ret;

	ret = runrec_get(st, run_id, &r, err, errlen);
	if (ret < 0)
		return ret;
	run_rec_free(&r);
	rd.buf = malloc(READ_BUF);
	if (rd.buf == NULL)
		return -ENOMEM;
	if (o->follow)
		store_waiter_open(st, &w);
	for (;;) {
		/* Look at the status before reading: rows written before the
		 * verdict are then certainly in the read that follows. */
		if (o->follow) {
			ret = runrec_get(st, run_id, &r, err, errlen);
			if (ret < 0)
				goto out;
			ended = run_state_final(r.state);
			run_rec_free(&r);
		} else {
			ended = true;
		}
		ret = print_batch(&rd, o->stream, &last, out);
		if (ret < 0) {
			if (ret == -EPIPE)
				snprintf(err, errlen, "%s: read log of run %lld: %s", store_path(st),
					 (long long)run_id, strerror(EPIPE));
			goto out;
		}
		if (ended)
			break;
		fflush(out);
		/* Woken by the next commit (rows or verdict), at the latest
		 * after the poll interval (see store.h). */
		if (ret == 0)
			store_waiter_wait(&w, -1, o->poll_ms > 0 ? o->poll_ms : w.fd >= 0 ? 250 : 50);
	}
	ret = fflush(out) == 0 ? 0 : -errno;
out:
	if (rd.fd[0] >= 0)
		close(rd.fd[0]);
	if (rd.fd[1] >= 0)
		close(rd.fd[1]);
	store_waiter_close(&w);
	free(rd.buf);
	return ret;
}
