/* Unit tests of runner/logs.c against a real store: the rows of a stream
 * concatenate back to its exact bytes (binary, long lines, a last line
 * without newline), sequence numbers follow arrival order, the cap leaves
 * one visible marker, and --stream filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	char line[32], *got, want_out[4096] = "", want_err[4096] = "", want_all[8192] = "";
	size_t len;
	int i;

	(void)state;
	assert_int_equal(log_writer_init(&w, st, id, 1 << 30), 0);
	/* More than one batch, alternating streams. */
	for (i = 0; i < 300; i++) {
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_streams_and_order),
		cmocka_unit_test(test_cap_marker),
		cmocka_unit_test(test_read_rows_and_cap),
		cmocka_unit_test(test_batch_due),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
