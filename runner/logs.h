/* Log capture, and reading it back.
 *
 * The bytes of each stream go, as they are read, to an append-only file of
 * their own in the state directory (<state>/logs/run-<id>.stdout and
 * .stderr, created on the first byte, with the mode and owner of the job
 * store); SQLite keeps an index of rows in log_lines: run-wide sequence
 * number in arrival order, stream, timestamp, and the row's offset and
 * length in its file.  A row is every whole line of what one read brought,
 * up to LOG_CHUNK bytes (a line longer than that is cut in LOG_CHUNK
 * pieces; a last line without '\n' is a row of its own at the end), so the
 * rows of a stream concatenate back to its exact bytes, binary included.
 * The file is written before the index rows that point into it are
 * committed, so every committed row's bytes are there after a crash of the
 * process; bytes past the last row are not shown.  Index rows are inserted
 * in one short transaction per batch (LOG_BATCH_LINES rows or LOG_BATCH_MS,
 * whichever comes first), so the write lock is never held while waiting
 * for output, and memory stays flat whatever the output size.  (1024 rows,
 * not 256: 200 MB of output is then 4 commits, not 17, and their WAL frames
 * stay under the store's close-time checkpoint threshold, whose two
 * fdatasyncs cost more than the rest of the index.)  The runner's own notes are rows whose bytes
 * are in the row itself (data), as were all rows before schema version 3:
 * those are still read.
 *
 * Past the per-run cap (RUNNER_MAX_LOG) one marker row on the "runner"
 * stream says so and the rest is dropped (still read, so the script never
 * blocks on a full pipe).  Output stops being kept, at a line boundary and
 * with a marker row, when the file system would have less than
 * LOG_DISK_RESERVE left, so the index rows and the run's verdict still fit
 * in the store beside it. */
#ifndef RUNNER_LOGS_H
#define RUNNER_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "store.h"

#define LOG_CHUNK	 65536
#define LOG_BATCH_LINES	 1024
#define LOG_BATCH_MS	 50
#define LOG_NOTES_BYTES	 8192
#define LOG_READ_BYTES	 (256u << 10)
#define LOG_DISK_RESERVE (1u << 20)
#define LOG_DISK_RECHECK (64u << 20)

enum log_stream { LOG_STDOUT = 0, LOG_STDERR, LOG_RUNNER, LOG__STREAMS };

struct log_row {
	uint64_t off;		/* in the stream's file; LOG_RUNNER: in notes */
	uint32_t len;
	uint8_t stream;
	int64_t ts;
};

/* One stream's file: [0, row_end) is in rows (committed or in the batch),
 * [row_end, end) is a line not finished yet (it holds no '\n'). */
struct log_file {
	int fd;			/* -1 until the stream's first byte */
	uint64_t end;
	uint64_t row_end;
};

struct log_writer {
	struct store *st;
	int64_t run_id;
	int64_t seq;		/* last sequence number written */
	uint64_t cap;		/* bytes kept per run */
	uint64_t kept;		/* bytes in rows so far */
	bool truncated;		/* the cap was reached */
	struct log_file f[2];
	uint64_t room;		/* bytes to write before looking at free space again */
	/* One allocation, its pages touched only as they are used (an idle
	 * supervisor's resident size is what counts with hundreds of runs):
	 * the batch's rows, the notes' bytes, the read buffer. */
	struct log_row *rows;	/* LOG_BATCH_LINES */
	size_t n_rows;
	char *notes;		/* LOG_NOTES_BYTES */
	size_t notes_len;
	char *rbuf;		/* LOG_READ_BYTES, for log_writer_read */
	int64_t batch_start_ms;	/* monotonic; 0 when empty */
	int err;		/* first error, -errno */
	bool stopped;		/* a file could not take more: output is no longer kept */
	bool full;		/* the store was full: nothing more is kept */
};

/* Never fails for want of the files: they are created on the first byte,
 * and a failure then is kept in err (reported by log_writer_close).
 * -ENOMEM, or 0. */
int log_writer_init(struct log_writer *w, struct store *st, int64_t run_id, uint64_t cap);

/* Feeds bytes read from stream s (LOG_STDOUT or LOG_STDERR): they are in
 * the stream's file when this returns.  Returns the first error so far. */
int log_writer_feed(struct log_writer *w, enum log_stream s, const char *data, size_t len);

/* Reads what fd (stream s's pipe) has, up to LOG_READ_BYTES, and feeds
 * it.  Returns the bytes read, 0 at end of file, or -errno of the read
 * (-EAGAIN: nothing there); the feed's errors are kept for
 * log_writer_close.  Reads of 256 KiB rather than 64 KiB cost a fifth less
 * CPU per captured byte (fewer system calls and wake-ups of the writer;
 * 1 MiB gained nothing more). */
ssize_t log_writer_read(struct log_writer *w, enum log_stream s, int fd);

/* Adds one row of the runner's own (a notice in the log). */
int log_writer_note(struct log_writer *w, const char *text);

/* Milliseconds until the batch must be written (-1: nothing pending). */
int log_writer_due_ms(const struct log_writer *w);

/* Writes the batch now. */
int log_writer_flush(struct log_writer *w);

/* Ends the streams (their last lines without '\n' become rows), flushes,
 * and closes the files.  Returns the first error seen, or 0. */
int log_writer_close(struct log_writer *w);

const char *log_stream_name(enum log_stream s);

/* <state>/logs/run-<id>.<stream> of the store's state directory; 0 or
 * -ENAMETOOLONG. */
int log_file_path(const struct store *st, int64_t run_id, enum log_stream s, char *buf,
		  size_t len);

struct log_read_opts {
	int stream;		/* -1: all; else LOG_STDOUT or LOG_STDERR (plus runner notes) */
	bool follow;		/* keep reading while the run is live */
	int poll_ms;		/* follow: most wait between looks, default 250 (50 if commits cannot be watched) */
};

/* Writes the run's log to out in sequence order.  With follow, returns
 * once the run has a verdict and every row is written.  0 or -errno; a
 * log file shorter than its rows say (cut by a power failure, or by hand)
 * is -EIO, naming the file, after everything there was printed. */
int log_print(struct store *st, int64_t run_id, const struct log_read_opts *o, FILE *out,
	      char *err, size_t errlen);

#endif
