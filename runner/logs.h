/* Log capture into log_lines, and reading it back.
 *
 * The writer cuts each stream into lines (a line keeps its '\n'; a line
 * longer than LOG_CHUNK is stored in LOG_CHUNK pieces; a last line without
 * '\n' is kept as it is), so concatenating the rows of a stream gives back
 * its bytes exactly, binary included.  Rows carry a run-wide sequence
 * number in arrival order, the stream and a timestamp.  Rows are buffered
 * and inserted in one short transaction per batch (LOG_BATCH_LINES lines,
 * LOG_BATCH_BYTES bytes or LOG_BATCH_MS, whichever comes first), so the
 * write lock is never held while waiting for output, and memory stays
 * flat whatever the output size.  Past the per-run cap (RUNNER_MAX_LOG)
 * one marker row on the "runner" stream says so and the rest is dropped
 * (still read, so the script never blocks on a full pipe). */
#ifndef RUNNER_LOGS_H
#define RUNNER_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

#define LOG_CHUNK	 65536
#define LOG_BATCH_LINES	 256
#define LOG_BATCH_BYTES	 (1u << 20)
#define LOG_BATCH_MS	 50

enum log_stream { LOG_STDOUT = 0, LOG_STDERR, LOG_RUNNER, LOG__STREAMS };

struct log_row {
	uint32_t off, len;
	uint8_t stream;
	int64_t ts;
};

struct log_writer {
	struct store *st;
	int64_t run_id;
	int64_t seq;		/* last sequence number written */
	uint64_t cap;		/* bytes kept per run */
	uint64_t kept;		/* bytes accepted so far */
	bool truncated;
	/* partial line per stream */
	char *part[2];
	size_t part_len[2];
	/* the batch */
	char *buf;
	size_t buf_len;
	struct log_row rows[LOG_BATCH_LINES];
	size_t n_rows;
	int64_t batch_start_ms;	/* monotonic; 0 when empty */
	int err;		/* first store error, -errno */
	bool full;		/* the disk was full: the rest is dropped */
};

int log_writer_init(struct log_writer *w, struct store *st, int64_t run_id, uint64_t cap);

/* Feeds bytes read from stream s (LOG_STDOUT or LOG_STDERR). */
int log_writer_feed(struct log_writer *w, enum log_stream s, const char *data, size_t len);

/* Adds one row of the runner's own (a notice in the log). */
int log_writer_note(struct log_writer *w, const char *text);

/* Milliseconds until the batch must be written (-1: nothing pending). */
int log_writer_due_ms(const struct log_writer *w);

/* Writes the batch now. */
int log_writer_flush(struct log_writer *w);

/* Ends the streams (their last lines without '\n' become rows), flushes,
 * and frees.  Returns the first error seen, or 0. */
int log_writer_close(struct log_writer *w);

const char *log_stream_name(enum log_stream s);

struct log_read_opts {
	int stream;		/* -1: all; else LOG_STDOUT or LOG_STDERR (plus runner notes) */
	bool follow;		/* keep reading while the run is live */
	int poll_ms;		/* follow: wait between looks, default 50 */
};

/* Writes the run's log to out in sequence order.  With follow, returns
 * once the run has a verdict and every row is written.  0 or -errno. */
int log_print(struct store *st, int64_t run_id, const struct log_read_opts *o, FILE *out,
	      char *err, size_t errlen);

#endif
