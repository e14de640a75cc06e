/* Unit tests of runner/logs.c against a real store: the rows of a stream
 * concatenate back to its exact bytes (binary, long lines, a last line
 * without newline), sequence numbers follow arrival order, the cap leaves
 * one visible marker, and --stream filters.  The bytes are in the run's
 * files, with the store's mode and owner; rows of a schema-2 store (bytes
 * in the row) still read after the migration; a writer killed at any point
 * leaves every committed row readable; a file that cannot take more keeps
 * whole lines and says why; a file cut short is reported, naming it.
 * `logs --follow` and `wait` are woken by another process's commit, not by
 * their poll interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "logs.h"
#include "runrec.h"
#include "store.h"
#include "testutil.h"

static int n_state;

/* A fresh store with one script and one run; returns the run id. */
static int64_t fresh(struct store **st)
{
	struct script_rec sr = { .id = "00000000-0000-4000-8000-000000000000", .name = "a.py",
				 .file = "a.py", .lang = "python", .size = 1, .created_at = 1 };
	char path[256], err[512];
	int64_t id;

	snprintf(path, sizeof(path), "%s/s%d", tu_dir, n_state++);
	if (store_open(path, st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(store_add_script(*st, &sr, err, sizeof(err)), 0);
	assert_int_equal(runrec_create(*st, sr.id, "m", "{}", &id, err, sizeof(err)), 0);
	return id;
}

/* What `runner logs` prints, in memory. */
static char *dump(struct store *st, int64_t id, int stream, size_t *len)
{
	struct log_read_opts o = { .stream = stream };
	char *buf = NULL, err[256];
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	assert_int_equal(log_print(st, id, &o, f, err, sizeof(err)), 0);
	fclose(f);
	return buf;
}

static int64_t count_rows(struct store *st)
{
	sqlite3_stmt *s;
	int64_t n;

	assert_int_equal(sqlite3_prepare_v2(store_db(st), "SELECT count(*) FROM log_lines", -1,
					    &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void test_exact_bytes(void **state)
{
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	const char bin[] = "a\0b\nline two\n\xff\xfe\x00z";
	char *big = malloc(3 * LOG_CHUNK + 10), *got;
	size_t len, i;

	(void)state;
	for (i = 0; i < 3 * LOG_CHUNK + 9; i++)
		big[i] = (char)('a' + i % 26);
	big[3 * LOG_CHUNK + 9] = '\n';
	assert_int_equal(log_writer_init(&w, st, id, 1 << 30), 0);
	/* Fed in awkward pieces: a line split across reads must come out
	 * whole. */
	for (i = 0; i < sizeof(bin) - 1; i++)
		assert_int_equal(log_writer_feed(&w, LOG_STDOUT, bin + i, 1), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, "\n", 1), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, big, 3 * LOG_CHUNK + 10), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, "tail", 4), 0);
	assert_int_equal(log_writer_close(&w), 0);

	got = dump(st, id, -1, &len);
	assert_int_equal(len, sizeof(bin) - 1 + 1 + 3 * LOG_CHUNK + 10 + 4);
	assert_memory_equal(got, bin, sizeof(bin) - 1);
	assert_memory_equal(got + sizeof(bin), big, 3 * LOG_CHUNK + 10);
	assert_memory_equal(got + len - 4, "tail", 4);
	/* 3 lines of bin, 4 chunks of the long line, the tail. */
	assert_int_equal(count_rows(st), 3 + 4 + 1);
	free(got);
	free(big);
	store_close(st);
}

static void test_streams_and_order(void **state)
{
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	static char want_out[16384], want_err[16384], want_all[32768];
	char line[32], *got;
	size_t len;
	int i;

	(void)state;
	want_out[0] = want_err[0] = want_all[0] = '\0';
	assert_int_equal(log_writer_init(&w, st, id, 1 << 30), 0);
	/* More than one batch, alternating streams. */
	for (i = 0; i < LOG_BATCH_LINES + 300; i++) {
		enum log_stream s = i % 3 == 0 ? LOG_STDERR : LOG_STDOUT;

		snprintf(line, sizeof(line), "%d\n", i);
		log_writer_feed(&w, s, line, strlen(line));
		strcat(s == LOG_STDOUT ? want_out : want_err, line);
		strcat(want_all, line);
	}
	assert_int_equal(log_writer_close(&w), 0);
	got = dump(st, id, -1, &len);
	assert_string_equal(got, want_all);
	free(got);
	got = dump(st, id, LOG_STDOUT, &len);
	assert_string_equal(got, want_out);
	free(got);
	got = dump(st, id, LOG_STDERR, &len);
	assert_string_equal(got, want_err);
	free(got);
	store_close(st);
}

static void test_cap_marker(void **state)
{
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	struct run_rec r;
	char *got;
	size_t len;
	int i;

	(void)state;
	assert_int_equal(log_writer_init(&w, st, id, 100), 0);
	for (i = 0; i < 100; i++)
		log_writer_feed(&w, LOG_STDOUT, "0123456789\n", 11);
	assert_int_equal(log_writer_close(&w), 0);
	got = dump(st, id, LOG_STDOUT, &len);
	/* 9 whole lines fit in 100 bytes; then the marker, once. */
	assert_int_equal(count_rows(st), 10);
	assert_memory_equal(got, "0123456789\n", 11);
	assert_non_null(strstr(got, "[runner: log truncated: RUNNER_MAX_LOG (100 bytes) reached"));
	assert_null(strstr(strstr(got, "[runner: log") + 1, "[runner: log"));
	free(got);
	assert_int_equal(runrec_get(st, id, &r, NULL, 0), 0);
	assert_true(r.log_bytes > 99 && r.log_bytes < 99 + 200);
	run_rec_free(&r);
	store_close(st);
}

/* What is read at once becomes one row of whole lines, and the cap still
 * cuts between lines, never inside one. */
static void test_read_rows_and_cap(void **state)
{
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	char many[20 * 11 + 3], *got;
	size_t len;
	int i;

	(void)state;
	for (i = 0; i < 20; i++)
		memcpy(many + i * 11, "0123456789\n", 11);
	memcpy(many + 220, "abc", 3);
	assert_int_equal(log_writer_init(&w, st, id, 1 << 20), 0);
	/* 20 lines and the start of a 21st: one row now, the 21st joins
	 * the next read's. */
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, many, sizeof(many)), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, "def\nghi\n", 8), 0);
	assert_int_equal(log_writer_close(&w), 0);
	assert_int_equal(count_rows(st), 2);
	got = dump(st, id, -1, &len);
	assert_int_equal(len, 220 + 11);
	assert_memory_equal(got + 220, "abcdef\nghi\n", 11);
	free(got);
	store_close(st);

	id = fresh(&st);
	assert_int_equal(log_writer_init(&w, st, id, 100), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, many, 220), 0);
	assert_int_equal(log_writer_close(&w), 0);
	got = dump(st, id, -1, &len);
	/* 9 whole lines (99 bytes) in one row, then the marker. */
	assert_int_equal(count_rows(st), 2);
	assert_memory_equal(got, many, 99);
	assert_true(strncmp(got + 99, "[runner: log truncated", 22) == 0);
	free(got);
	store_close(st);
}

/* A batch is due LOG_BATCH_MS after its first row, not before. */
static void test_batch_due(void **state)
{
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	int due;

	(void)state;
	assert_int_equal(log_writer_init(&w, st, id, 1 << 20), 0);
	assert_int_equal(log_writer_due_ms(&w), -1);
	log_writer_feed(&w, LOG_STDOUT, "x\n", 2);
	due = log_writer_due_ms(&w);
	assert_true(due > 0 && due <= LOG_BATCH_MS);
	assert_int_equal(count_rows(st), 0);
	assert_int_equal(log_writer_flush(&w), 0);
	assert_int_equal(count_rows(st), 1);
	assert_int_equal(log_writer_due_ms(&w), -1);
	assert_int_equal(log_writer_close(&w), 0);
	store_close(st);
}


/* The whole content of a file, NUL-terminated too; *len its size. */
static char *slurp(const char *path, size_t *len)
{
	struct stat sb;
	char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	assert_int_equal(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	buf[sb.st_size] = '\0';
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

static void stream_path(struct store *st, int64_t id, enum log_stream s, char *buf, size_t len)
{
	assert_int_equal(log_file_path(st, id, s, buf, len), 0);
}

/* Each stream's bytes are its file's bytes, and the rows point into it:
 * data empty, off and len contiguous.  The files take the store's mode
 * (whatever the umask) and, made by root, its owner. */
static void test_files_hold_the_bytes(void **state)
{
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	const char out[] = "one\ntwo\n\0\xff bin\nno newline", errs[] = "e1\ne2\n";
	char path[PATH_MAX], *got;
	struct stat sb;
	sqlite3_stmt *q;
	uint64_t next[2] = { 0, 0 };
	size_t len;
	mode_t um;
	bool root = geteuid() == 0;

	(void)state;
	assert_int_equal(chmod(store_path(st), 0640), 0);
	if (root)
		assert_int_equal(chown(store_path(st), TU_NOBODY, TU_NOBODY), 0);
	um = umask(077);
	assert_int_equal(log_writer_init(&w, st, id, 1 << 20), 0);
	/* No output, no file. */
	stream_path(st, id, LOG_STDOUT, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	log_writer_feed(&w, LOG_STDOUT, out, 8);
	log_writer_feed(&w, LOG_STDERR, errs, 3);
	log_writer_feed(&w, LOG_STDOUT, out + 8, sizeof(out) - 1 - 8);
	log_writer_feed(&w, LOG_STDERR, errs + 3, 3);
	assert_int_equal(log_writer_close(&w), 0);
	umask(um);

	got = slurp(path, &len);
	assert_int_equal(len, sizeof(out) - 1);
	assert_memory_equal(got, out, len);
	free(got);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	if (root) {
		assert_int_equal(sb.st_uid, TU_NOBODY);
		assert_int_equal(sb.st_gid, TU_NOBODY);
	}
	stream_path(st, id, LOG_STDERR, path, sizeof(path));
	got = slurp(path, &len);
	assert_string_equal(got, errs);
	free(got);

	assert_int_equal(sqlite3_prepare_v2(store_db(st), "SELECT stream, length(data), off, len "
					    "FROM log_lines WHERE run_id = ? ORDER BY seq", -1,
					    &q, NULL), SQLITE_OK);
	sqlite3_bind_int64(q, 1, id);
	while (sqlite3_step(q) == SQLITE_ROW) {
		int s = strcmp((const char *)sqlite3_column_text(q, 0), "stdout") == 0 ? 0 : 1;

		assert_int_equal(sqlite3_column_int(q, 1), 0);
		assert_int_equal(sqlite3_column_int64(q, 2), next[s]);
		next[s] += (uint64_t)sqlite3_column_int64(q, 3);
	}
	sqlite3_finalize(q);
	assert_int_equal(next[0], sizeof(out) - 1);
	assert_int_equal(next[1], sizeof(errs) - 1);
	got = dump(st, id, -1, &len);
	assert_string_equal(got, "one\ntwo\ne1\n");	/* stops at the NUL */
	assert_int_equal(len, sizeof(out) - 1 + sizeof(errs) - 1);
	free(got);
	store_close(st);
}

static void exec_sql(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(store_db(st), sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

/* A store of schema 2 (log_lines without off and len, bytes in data) is
 * migrated on open, and its rows print as they did, before the rows of a
 * run captured after the migration, which are in files. */
static void test_old_rows_after_migration(void **state)
{
	struct script_rec sr = { .id = "00000000-0000-4000-8000-000000000000", .name = "a.py",
				 .file = "a.py", .lang = "python", .size = 1, .created_at = 1 };
	struct log_writer w;
	struct store *st;
	char dir[PATH_MAX], err[512], *got;
	int64_t old_id, new_id;
	size_t len;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/s%d", tu_dir, n_state++);
	assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
	assert_int_equal(store_add_script(st, &sr, err, sizeof(err)), 0);
	assert_int_equal(runrec_create(st, sr.id, "m", "{}", &old_id, err, sizeof(err)), 0);
	/* Back to what schema 2 made, with a run's log in it. */
	exec_sql(st, "ALTER TABLE log_lines DROP COLUMN off; ALTER TABLE log_lines DROP COLUMN len;"
		 "PRAGMA user_version = 2");
	exec_sql(st, "INSERT INTO log_lines (run_id, seq, stream, ts, data) VALUES "
		 "(1, 1, 'stdout', 1, X'6f6c640a'), (1, 2, 'stderr', 1, X'6f6c64206572720a'),"
		 "(1, 3, 'stdout', 2, X'0001ff')");
	store_close(st);

	assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	got = dump(st, old_id, -1, &len);
	assert_int_equal(len, 4 + 8 + 3);
	assert_memory_equal(got, "old\nold err\n\x00\x01\xff", len);
	free(got);
	got = dump(st, old_id, LOG_STDERR, &len);
	assert_string_equal(got, "old err\n");
	free(got);

	assert_int_equal(runrec_create(st, sr.id, "m2", "{}", &new_id, err, sizeof(err)), 0);
	assert_int_equal(log_writer_init(&w, st, new_id, 1 << 20), 0);
	log_writer_feed(&w, LOG_STDOUT, "new\n", 4);
	log_writer_note(&w, "[runner] a note\n");
	assert_int_equal(log_writer_close(&w), 0);
	got = dump(st, new_id, -1, &len);
	assert_string_equal(got, "new\n[runner] a note\n");
	free(got);
	store_close(st);
}

/* Line i of the crash test's output: 100 bytes. */
static void crash_line(char *buf, unsigned i)
{
	snprintf(buf, 101, "%08u %090u", i, i);
	buf[99] = '\n';
}

/* The file is written before the rows that point into it commit: a
 * writer killed at any moment leaves a log that is a whole-line prefix of
 * its output, every row readable. */
static void test_killed_writer_leaves_readable_rows(void **state)
{
	int round;

	(void)state;
	for (round = 0; round < 4; round++) {
		struct store *st;
		int64_t id = fresh(&st);
		char err[512], *got;
		int ready[2], ws;
		size_t len, i;
		pid_t pid;

		assert_int_equal(pipe(ready), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct log_writer w;
			struct store *cst;
			char dir[PATH_MAX], buf[100 * 97];
			unsigned n = 0;

			/* A connection of its own, as a supervisor has. */
			snprintf(dir, sizeof(dir), "%s", store_path(st));
			*strrchr(dir, '/') = '\0';
			if (store_open(dir, &cst, err, sizeof(err)) != 0 ||
			    log_writer_init(&w, cst, id, 1ull << 40) != 0)
				_exit(1);
			for (;;) {
				/* 97 lines, fed in pieces that split lines. */
				for (i = 0; i < 97; i++)
					crash_line(buf + 100 * i, n++);
				log_writer_feed(&w, LOG_STDOUT, buf, 3333);
				log_writer_feed(&w, LOG_STDOUT, buf + 3333, sizeof(buf) - 3333);
				/* Two rows a round: three batches committed. */
				if (n == 97 * (LOG_BATCH_LINES * 3 / 2))
					assert_true(write(ready[1], "r", 1) == 1);
			}
		}
		close(ready[1]);
		assert_int_equal(read(ready[0], err, 1), 1);
		close(ready[0]);
		/* Killed a little later each round, mid-batch or mid-commit. */
		usleep(2000u * (unsigned)round);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &ws, 0), pid);
		assert_true(WIFSIGNALED(ws));

		got = dump(st, id, -1, &len);
		assert_true(len >= 100 * 97 * (LOG_BATCH_LINES * 3 / 2));
		assert_int_equal(len % 100, 0);
		for (i = 0; i < len / 100; i++) {
			char want[101];

			crash_line(want, (unsigned)i);
			if (memcmp(got + 100 * i, want, 100) != 0)
				fail_msg("round %d: line %zu differs", round, i);
		}
		free(got);
		store_close(st);
	}
}

/* A file cut short after its rows were written (by a power failure: the
 * rows may reach the disk before the file's last bytes) prints what it
 * has, then names the file and the bytes missing; a file gone names it
 * (-EIO: `runner logs` exits 1, not 2 as for a run that does not exist). */
static void test_file_cut_short(void **state)
{
	struct log_read_opts o = { .stream = -1 };
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	char path[PATH_MAX], err[PATH_MAX + 256], *buf = NULL;
	size_t len;
	FILE *f;

	(void)state;
	assert_int_equal(log_writer_init(&w, st, id, 1 << 20), 0);
	log_writer_feed(&w, LOG_STDOUT, "first line\nsecond line\n", 23);
	assert_int_equal(log_writer_close(&w), 0);
	stream_path(st, id, LOG_STDOUT, path, sizeof(path));
	assert_int_equal(truncate(path, 15), 0);
	f = open_memstream(&buf, &len);
	assert_int_equal(log_print(st, id, &o, f, err, sizeof(err)), -EIO);
	fclose(f);
	assert_int_equal(len, 15);
	assert_memory_equal(buf, "first line\nseco", 15);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "ends at byte 15, its rows go to byte 23"));
	free(buf);

	assert_int_equal(unlink(path), 0);
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_int_equal(log_print(st, id, &o, f, err, sizeof(err)), -EIO);
	fclose(f);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));
	free(buf);
	store_close(st);
}

/* A file that cannot take more (here RLIMIT_FSIZE: EFBIG; a full disk is
 * tests/integration/runner/run_edges.sh) keeps the whole lines written,
 * drops the unfinished one, says why in a marker row and in the error, and
 * takes nothing more. */
static void test_file_write_fails(void **state)
{
	struct store *st;
	int64_t id = fresh(&st);
	char path[PATH_MAX], *got, *marker;
	size_t len, i;
	int ws;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 1 << 20, 1 << 20 };
		struct log_writer w;
		struct store *cst;
		char dir[PATH_MAX], err[512], line[100 * 655];

		snprintf(dir, sizeof(dir), "%s", store_path(st));
		*strrchr(dir, '/') = '\0';
		signal(SIGXFSZ, SIG_IGN);
		if (store_open(dir, &cst, err, sizeof(err)) != 0 ||
		    log_writer_init(&w, cst, id, 1ull << 40) != 0 || setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(1);
		for (i = 0; i < 655; i++) {
			memset(line + 100 * i, 'a' + (int)(i % 26), 99);
			line[100 * i + 99] = '\n';
		}
		/* 4 MiB of 100-byte lines in reads that end mid-line. */
		for (i = 0; i < 64; i++) {
			size_t at = i % 2 ? 32750 : 0, n = i % 2 ? sizeof(line) - 32750 : 32750;

			if (log_writer_feed(&w, LOG_STDOUT, line + at, n) != 0)
				break;
		}
		if (i == 64 || log_writer_feed(&w, LOG_STDOUT, line, 100) != -EFBIG ||
		    w.f[LOG_STDOUT].end % 100 != 0 || w.f[LOG_STDOUT].end != w.f[LOG_STDOUT].row_end)
			_exit(2);
		_exit(log_writer_close(&w) == -EFBIG ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);

	stream_path(st, id, LOG_STDOUT, path, sizeof(path));
	got = slurp(path, &len);
	/* Whole lines only, the unfinished one gone from the file too. */
	assert_true(len <= 1 << 20 && len > (1 << 20) - 100 * 655);
	assert_int_equal(got[len - 1], '\n');
	free(got);
	got = dump(st, id, -1, &len);
	marker = strstr(got, "[runner: log capture stopped: ");
	assert_non_null(marker);
	assert_non_null(strstr(marker, path));
	assert_non_null(strstr(marker, "File too large; further output dropped]\n"));
	for (i = 0; i < (size_t)(marker - got); i += 100)
		assert_int_equal(got[i + 99], '\n');
	assert_int_equal(i, (size_t)(marker - got));
	free(got);
	store_close(st);
}

/* The cap reached on one stream drops the other's unfinished line too,
 * from its file as well: the files hold no more than the rows. */
static void test_cap_drops_unfinished_lines(void **state)
{
	struct log_writer w;
	struct store *st;
	int64_t id = fresh(&st);
	char path[PATH_MAX], *got;
	size_t len;

	(void)state;
	assert_int_equal(log_writer_init(&w, st, id, 30), 0);
	log_writer_feed(&w, LOG_STDOUT, "kept\nunfinished", 15);
	log_writer_feed(&w, LOG_STDERR, "0123456789\n0123456789\n0123456789\n", 33);
	log_writer_feed(&w, LOG_STDOUT, " line\n", 6);
	assert_int_equal(log_writer_close(&w), 0);
	got = dump(st, id, -1, &len);
	assert_string_equal(got, "kept\n0123456789\n0123456789\n"
			    "[runner: log truncated: RUNNER_MAX_LOG (30 bytes) reached; further output dropped]\n");
	free(got);
	stream_path(st, id, LOG_STDOUT, path, sizeof(path));
	got = slurp(path, &len);
	assert_string_equal(got, "kept\n");
	free(got);
	stream_path(st, id, LOG_STDERR, path, sizeof(path));
	got = slurp(path, &len);
	assert_string_equal(got, "0123456789\n0123456789\n");
	free(got);
	store_close(st);
}

/* A child process commits to the store after the parent started waiting:
 * the watch turns readable, and a follow whose poll interval is a minute
 * gets every byte and returns at the verdict (CTest's timeout would end
 * it otherwise).  In the child: a second connection, like the
 * supervisor's. */
static void test_follow_woken_by_commit(void **state)
{
	struct log_read_opts o = { .stream = -1, .follow = true, .poll_ms = 60000 };
	struct store *st, *st2;
	struct pollfd pf;
	int64_t id = fresh(&st);
	char *buf = NULL, err[256];
	size_t len = 0;
	FILE *f;
	pid_t c;
	int ws, wfd;

	(void)state;
	assert_int_equal(runrec_claim(st, id, 100), 1);
	wfd = store_watch_open(st);
	assert_true(wfd >= 0);
	c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		struct log_writer w;
		struct run_verdict v = { .state = RS_COMPLETED, .has_exit_code = true,
					 .cpu_ms = -1, .peak_rss_kb = -1 };
		char dir[4096];
		int i;

		snprintf(dir, sizeof(dir), "%s", store_path(st));
		*strrchr(dir, '/') = '\0';
		if (store_open(dir, &st2, err, sizeof(err)) != 0)
			_exit(3);
		usleep(200000);	/* the parent is following by now */
		if (log_writer_init(&w, st2, id, 1 << 20) != 0)
			_exit(4);
		for (i = 0; i < 3; i++) {
			if (log_writer_feed(&w, LOG_STDOUT, "line\n", 5) != 0 || log_writer_flush(&w) != 0)
				_exit(5);
			usleep(50000);
		}
		if (log_writer_close(&w) != 0 || runrec_finish(st2, id, &v) != 1)
			_exit(6);
		store_close(st2);
		_exit(0);
	}
	pf.fd = wfd;
	pf.events = POLLIN;
	assert_int_equal(poll(&pf, 1, 30000), 1);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(log_print(st, id, &o, f, err, sizeof(err)), 0);
	fclose(f);
	assert_int_equal(waitpid(c, &ws, 0), c);
	assert_int_equal(ws, 0);
	/* Drained once nobody writes any more, nothing is left: checked
	 * only now, because one commit is several writes to the WAL, and
	 * a drain between two of them (the child is slow under valgrind)
	 * leaves the next one's event behind. */
	store_watch_drain(wfd);
	assert_int_equal(poll(&pf, 1, 0), 0);
	close(wfd);
	assert_int_equal(len, 15);
	assert_memory_equal(buf, "line\nline\nline\n", 15);
	free(buf);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_streams_and_order),
		cmocka_unit_test(test_cap_marker),
		cmocka_unit_test(test_read_rows_and_cap),
		cmocka_unit_test(test_batch_due),
		cmocka_unit_test(test_files_hold_the_bytes),
		cmocka_unit_test(test_old_rows_after_migration),
		cmocka_unit_test(test_killed_writer_leaves_readable_rows),
		cmocka_unit_test(test_file_cut_short),
		cmocka_unit_test(test_file_write_fails),
		cmocka_unit_test(test_cap_drops_unfinished_lines),
		cmocka_unit_test(test_follow_woken_by_commit),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
