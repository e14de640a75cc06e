/* Log capture and reading; see logs.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "logs.h"
#include "lifecycle.h"
#include "runrec.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
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

int log_writer_init(struct log_writer *w, struct store *st, int64_t run_id, uint64_t cap)
{
	memset(w, 0, sizeof(*w));
	w->st = st;
	w->run_id = run_id;
	w->cap = cap;
	w->buf = malloc(LOG_BATCH_BYTES + LOG_CHUNK + 512);
	w->part[0] = malloc(LOG_CHUNK);
	w->part[1] = malloc(LOG_CHUNK);
	if (!w->buf || !w->part[0] || !w->part[1]) {
		free(w->buf);
		free(w->part[0]);
		free(w->part[1]);
		return -ENOMEM;
	}
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
	rc = sqlite3_prepare_v2(db, "INSERT INTO log_lines (run_id, seq, stream, ts, data) "
				"VALUES (?, ?, ?, ?, ?)", -1, &s, NULL);
	for (i = from; rc == SQLITE_OK && i < to; i++) {
		const struct log_row *r = &w->rows[i];

		sqlite3_bind_int64(s, 1, w->run_id);
		sqlite3_bind_int64(s, 2, ++seq);
		sqlite3_bind_text(s, 3, log_stream_name(r->stream), -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, r->ts);
		sqlite3_bind_blob(s, 5, w->buf + r->off, (int)r->len, SQLITE_STATIC);
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
 * what does fit is kept however large the batch grew (a slow supervisor,
 * under valgrind say, gathers more per batch); the output is kept as a
 * prefix: past the first row that does not fit nothing more is stored. */
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
	w->buf_len = 0;
	w->batch_start_ms = 0;
	if (rc == SQLITE_OK)
		return 0;
	/* The batch is dropped rather than kept growing: memory stays flat,
	 * and the error is reported when the run ends. */
	if ((rc & 0xff) == SQLITE_FULL)
		w->full = true;
	if (w->err == 0)
		w->err = (rc & 0xff) == SQLITE_FULL ? -ENOSPC : (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
	return w->err;
}

static int add_row(struct log_writer *w, enum log_stream s, const char *data, size_t len)
{
	struct timespec ts;
	struct log_row *r;

	if (w->n_rows == LOG_BATCH_LINES || w->buf_len + len > LOG_BATCH_BYTES + LOG_CHUNK + 512)
		log_writer_flush(w);
	clock_gettime(CLOCK_REALTIME, &ts);
	r = &w->rows[w->n_rows++];
	r->off = (uint32_t)w->buf_len;
	r->len = (uint32_t)len;
	r->stream = (uint8_t)s;
	r->ts = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	memcpy(w->buf + w->buf_len, data, len);
	w->buf_len += len;
	if (w->batch_start_ms == 0)
		w->batch_start_ms = mono_ms();
	if (w->n_rows == LOG_BATCH_LINES || w->buf_len >= LOG_BATCH_BYTES)
		return log_writer_flush(w);
	return 0;
}

/* One complete line (or chunk) of a stream, subject to the cap. */
static int emit(struct log_writer *w, enum log_stream s, const char *data, size_t len)
{
	char note[160];

	if (w->truncated)
		return 0;
	if (w->kept + len > w->cap) {
		/* The whole lines that still fit are kept; never a part of
		 * one. */
		size_t fit = (size_t)(w->cap - w->kept);
		const char *cut = fit ? memrchr(data, '\n', fit) : NULL;

		if (cut) {
			w->kept += (size_t)(cut - data) + 1;
			add_row(w, s, data, (size_t)(cut - data) + 1);
		}
		w->truncated = true;
		snprintf(note, sizeof(note),
			 "[runner: log truncated: RUNNER_MAX_LOG (%llu bytes) reached; further output dropped]\n",
			 (unsigned long long)w->cap);
		return add_row(w, LOG_RUNNER, note, strlen(note));
	}
	w->kept += len;
	return add_row(w, s, data, len);
}

int log_writer_feed(struct log_writer *w, enum log_stream s, const char *data, size_t len)
{
	size_t *pl = &w->part_len[s];
	char *part = w->part[s];

	/* A row is every whole line of what was read at once (they arrived
	 * together: one timestamp says all there is to say about them), up
	 * to LOG_CHUNK bytes; a line longer than that is cut in LOG_CHUNK
	 * pieces.  Per-line rows cost an INSERT per line: most of the time
	 * of a chatty run's capture. */
	while (len > 0) {
		size_t room = LOG_CHUNK - *pl, span = len < room ? len : room, take;
		const char *nl = memrchr(data, '\n', span);

		if (nl == NULL) {
			memcpy(part + *pl, data, span);
			*pl += span;
			if (*pl == LOG_CHUNK) {
				emit(w, s, part, *pl);
				*pl = 0;
			}
			data += span;
			len -= span;
			continue;
		}
		take = (size_t)(nl - data) + 1;
		if (*pl == 0) {
			/* Whole lines straight from the read buffer. */
			emit(w, s, data, take);
		} else {
			memcpy(part + *pl, data, take);
			emit(w, s, part, *pl + take);
			*pl = 0;
		}
		data += take;
		len -= take;
	}
	return w->err;
}

int log_writer_note(struct log_writer *w, const char *text)
{
	return add_row(w, LOG_RUNNER, text, strlen(text));
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

	for (s = 0; s < 2; s++) {
		if (w->part_len[s] > 0)
			emit(w, (enum log_stream)s, w->part[s], w->part_len[s]);
		w->part_len[s] = 0;
	}
	ret = log_writer_flush(w);
	free(w->buf);
	free(w->part[0]);
	free(w->part[1]);
	w->buf = w->part[0] = w->part[1] = NULL;
	/* A batch dropped earlier (store busy or full for a while) is lost
	 * output even when the last flush went through: report it. */
	return ret < 0 ? ret : w->err;
}

/* Prints rows after *last; returns the number printed or -errno. */
static int print_batch(struct store *st, int64_t run_id, int stream, int64_t *last, FILE *out)
{
	sqlite3_stmt *s;
	int rc, n = 0;
	const char *sql = stream < 0 ?
		"SELECT seq, data FROM log_lines WHERE run_id = ? AND seq > ? ORDER BY seq" :
		"SELECT seq, data FROM log_lines WHERE run_id = ? AND seq > ? "
		"AND stream IN (?, 'runner') ORDER BY seq";

	rc = sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, *last);
	if (stream >= 0)
		sqlite3_bind_text(s, 3, log_stream_name((enum log_stream)stream), -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *d = sqlite3_column_blob(s, 1);
		int len = sqlite3_column_bytes(s, 1);

		*last = sqlite3_column_int64(s, 0);
		if (len > 0 && fwrite(d, 1, (size_t)len, out) != (size_t)len) {
			sqlite3_finalize(s);
			return -EPIPE;
		}
		n++;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? n : -EIO;
}

int log_print(struct store *st, int64_t run_id, const struct log_read_opts *o, FILE *out,
	      char *err, size_t errlen)
{
	struct run_rec r;
	int64_t last = 0;
	bool ended;
	int ret;

	ret = runrec_get(st, run_id, &r, err, errlen);
	if (ret < 0)
		return ret;
	run_rec_free(&r);
	for (;;) {
		/* Look at the status before reading: rows written before the
		 * verdict are then certainly in the read that follows. */
		if (o->follow) {
			ret = runrec_get(st, run_id, &r, err, errlen);
			if (ret < 0)
				return ret;
			ended = run_state_final(r.state);
			run_rec_free(&r);
		} else {
			ended = true;
		}
		ret = print_batch(st, run_id, o->stream, &last, out);
		if (ret < 0) {
			snprintf(err, errlen, "%s: read log of run %lld: %s", store_path(st),
				 (long long)run_id, strerror(-ret));
			return ret;
		}
		if (ended)
			break;
		fflush(out);
		if (ret == 0) {
			struct timespec ts = { 0, (o->poll_ms > 0 ? o->poll_ms : 50) * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	return fflush(out) == 0 ? 0 : -errno;
}
