/* Unit tests of the run records (runner/runrec.c) and log capture
 * (runner/logs.c) against a real SQLite store that fails: locked by
 * another connection (SQLITE_BUSY), full (PRAGMA max_page_count, a real
 * SQLITE_FULL), tables gone.  Every call returns -errno and, where it
 * takes an err buffer, names the database and the operation.  Also the
 * slot queue's handling of a queued run whose supervisor died, and the
 * log reader writing to a full device. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "logs.h"
#include "runrec.h"
#include "store.h"
#include "testutil.h"

static int seq;

/* A fresh store with one script "s-1" and one QUEUED run (*id). */
static struct store *fresh(int64_t *id)
{
	struct store *st = NULL;
	struct script_rec rec;
	char sd[256], err[512];

	snprintf(sd, sizeof(sd), "%s/st%d", tu_dir, ++seq);
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "s-1");
	rec.name = rec.file = "s.sh";
	rec.lang = "bash";
	rec.size = 1;
	assert_int_equal(store_add_script(st, &rec, err, sizeof(err)), 0);
	assert_int_equal(runrec_create(st, "s-1", "mark", "{}", id, err, sizeof(err)), 0);
	return st;
}

static void exec_ok(struct store *st, const char *sql)
{
	assert_int_equal(sqlite3_exec(store_db(st), sql, NULL, NULL, NULL), SQLITE_OK);
}

/* A second connection holds the write lock; the store's own connection
 * is told not to wait, so the lock shows as SQLITE_BUSY at once. */
static sqlite3 *lock_db(struct store *st)
{
	sqlite3 *h;

	assert_int_equal(sqlite3_open(store_path(st), &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_busy_timeout(store_db(st), 0);
	return h;
}

static void unlock_db(struct store *st, sqlite3 *h)
{
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(h);
	sqlite3_busy_timeout(store_db(st), 10000);
}

static void test_locked_store(void **state)
{
	struct run_verdict v = { .state = RS_COMPLETED, .has_exit_code = true, .cpu_ms = -1,
				 .peak_rss_kb = -1 };
	struct log_writer w;
	struct store *st;
	struct run_rec r;
	char err[512];
	int64_t id, id2;
	sqlite3 *h;

	(void)state;
	st = fresh(&id);
	h = lock_db(st);
	assert_int_equal(runrec_create(st, "s-1", "m2", "{}", &id2, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "insert run"));
	assert_non_null(strstr(err, store_path(st)));
	assert_int_equal(runrec_claim(st, id, 4), -EBUSY);
	assert_int_equal(runrec_set_supervisor(st, id, getpid(), 1), -EBUSY);
	assert_int_equal(runrec_set_process(st, id, getpid(), 1, NULL), -EBUSY);
	assert_int_equal(runrec_finish(st, id, &v), -EBUSY);
	assert_int_equal(runrec_request_cancel(st, id), -EBUSY);
	assert_int_equal(runrec_set_workdir(st, id, "/tmp/x"), -EBUSY);
	assert_int_equal(runrec_add_log_bytes(st, id, 5), -EBUSY);
	{
		int64_t ids[4];

		assert_int_equal(runrec_prune(st, INT64_MAX, ids, 4), -EBUSY);
	}
	/* Reading still works under WAL. */
	assert_int_equal(runrec_get(st, id, &r, err, sizeof(err)), 0);
	assert_int_equal(r.state, RS_QUEUED);
	run_rec_free(&r);

	/* The log writer keeps the first error and drops the batch. */
	assert_int_equal(log_writer_init(&w, st, id, 1 << 20), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, "line\n", 5), 0);
	assert_int_equal(log_writer_flush(&w), -EBUSY);
	assert_int_equal(w.err, -EBUSY);
	assert_int_equal(w.n_rows, 0);
	unlock_db(st, h);
	assert_int_equal(log_writer_note(&w, "after"), 0);
	/* The last flush goes through, but the dropped batch is lost output:
	 * closing reports the first error. */
	assert_int_equal(log_writer_close(&w), -EBUSY);

	/* Unlocked, all is well again. */
	assert_int_equal(runrec_add_log_bytes(st, id, 5), 0);
	assert_int_equal(runrec_add_log_bytes(st, id, 7), 0);
	assert_int_equal(runrec_get(st, id, &r, err, sizeof(err)), 0);
	assert_int_equal(r.log_bytes, 12 + 5);	/* and the note "after" */
	run_rec_free(&r);
	store_close(st);
}

static void test_store_full(void **state)
{
	struct log_writer w;
	struct store *st;
	char *big, err[512];
	int64_t id, id2;
	sqlite3_stmt *s;
	int pages, i, ret = 0;

	(void)state;
	st = fresh(&id);
	assert_int_equal(sqlite3_prepare_v2(store_db(st), "PRAGMA page_count", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	pages = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	{
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %d", pages + 1);
		exec_ok(st, sql);
	}
	/* More index rows than fit (the output itself is in the log file):
	 * the flush reports a full store. */
	big = malloc(LOG_CHUNK);
	assert_non_null(big);
	memset(big, 'x', LOG_CHUNK - 1);
	big[LOG_CHUNK - 1] = '\n';
	assert_int_equal(log_writer_init(&w, st, id, 1 << 30), 0);
	for (i = 0; i < 4096 && ret == 0; i++) {
		ret = log_writer_feed(&w, LOG_STDERR, big + LOG_CHUNK - 2, 2);
		if (ret == 0 && i % 64 == 63)
			ret = log_writer_flush(&w);
	}
	assert_int_equal(ret, -ENOSPC);
	assert_true(w.full);
	/* Nothing more is written to the file once the store cannot index
	 * it. */
	assert_int_equal(log_writer_feed(&w, LOG_STDERR, big, LOG_CHUNK), -ENOSPC);
	assert_int_equal(w.f[LOG_STDERR].end, 2 * (uint64_t)i);
	assert_int_equal(log_writer_close(&w), -ENOSPC);
	free(big);
	/* A new run cannot be recorded either; the message says why. */
	for (i = 0; i < 200; i++) {
		char req[2048];

		memset(req, 'r', sizeof(req) - 1);
		req[sizeof(req) - 1] = '\0';
		ret = runrec_create(st, "s-1", "m", req, &id2, err, sizeof(err));
		if (ret < 0)
			break;
	}
	assert_int_equal(ret, -ENOSPC);
	assert_non_null(strstr(err, "insert run"));
	assert_non_null(strstr(err, "full"));
	store_close(st);
}

static int never(void *ctx, const struct run_rec *r)
{
	(void)ctx;
	(void)r;
	fail();
	return 0;
}

static void test_tables_gone(void **state)
{
	struct run_verdict v = { .state = RS_FAILED, .error = "x", .cpu_ms = -1, .peak_rss_kb = -1 };
	struct log_read_opts o = { .stream = -1 };
	struct log_writer w;
	struct store *st;
	struct run_rec r;
	char err[512], file[64], lang[16];
	int64_t id, id2;
	FILE *out;

	(void)state;
	st = fresh(&id);
	out = fopen("/dev/null", "w");
	assert_non_null(out);

	/* A finished run to forget, with its log table gone: the prune
	 * fails whole and the run stays. */
	{
		int64_t ids[4];

		assert_int_equal(runrec_finish(st, id, &v), 1);
		exec_ok(st, "DROP TABLE log_lines");
		assert_int_equal(runrec_prune(st, INT64_MAX, ids, 4), -EIO);
		assert_int_equal(runrec_get(st, id, &r, err, sizeof(err)), 0);
		run_rec_free(&r);
	}

	/* The log table gone: writing and reading name it. */
	assert_int_equal(log_writer_init(&w, st, id, 1 << 20), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, "a\n", 2), 0);
	assert_int_equal(log_writer_flush(&w), -EIO);
	assert_int_equal(log_writer_close(&w), -EIO);
	assert_int_equal(log_print(st, id, &o, out, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "read log of run"));

	/* The runs table gone. */
	exec_ok(st, "PRAGMA foreign_keys=OFF; DROP TABLE runs");
	assert_int_equal(runrec_create(st, "s-1", "m", "{}", &id2, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "insert run"));
	assert_non_null(strstr(err, "no such table"));
	assert_int_equal(runrec_get(st, id, &r, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "read run"));
	assert_int_equal(runrec_list(st, NULL, never, NULL, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "list runs"));
	assert_int_equal(runrec_claim(st, id, 4), -EIO);
	assert_int_equal(runrec_set_supervisor(st, id, 1, 1), -EIO);
	assert_int_equal(runrec_set_process(st, id, 1, 1, "/x"), -EIO);
	assert_int_equal(runrec_finish(st, id, &v), -EIO);
	assert_int_equal(runrec_request_cancel(st, id), -EIO);
	assert_int_equal(runrec_set_workdir(st, id, "/x"), -EIO);
	assert_int_equal(runrec_add_log_bytes(st, id, 1), -EIO);
	{
		int64_t ids[4];

		assert_int_equal(runrec_prune(st, INT64_MAX, ids, 4), -EIO);
	}
	assert_int_equal(log_print(st, id, &o, out, err, sizeof(err)), -EIO);

	/* And the scripts table. */
	exec_ok(st, "DROP TABLE scripts");
	assert_int_equal(runrec_script(st, "s-1", file, sizeof(file), lang, sizeof(lang),
				       err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "look up script"));
	fclose(out);
	store_close(st);
}

/* A queued run ahead whose supervisor is gone does not hold the queue:
 * it becomes LOST and the next run gets the slot.  One whose supervisor
 * lives keeps its place. */
static void test_claim_queue(void **state)
{
	struct store *st;
	struct run_rec r;
	char err[512], buf[1024], *p;
	int64_t first, second;
	unsigned long long start;
	FILE *f;
	pid_t pid;
	int i;

	(void)state;
	st = fresh(&first);
	assert_int_equal(runrec_create(st, "s-1", "m2", "{}", &second, err, sizeof(err)), 0);
	/* Not queued: no claim. */
	assert_int_equal(runrec_claim(st, 999, 4), -ECANCELED);

	/* The first run's supervisor: a live process (this one) ... */
	f = fopen("/proc/self/stat", "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')') + 2;
	for (i = 0; i < 19; i++)
		p = strchr(p, ' ') + 1;
	start = strtoull(p, NULL, 10);
	assert_int_equal(runrec_set_supervisor(st, first, getpid(), start), 0);
	assert_int_equal(runrec_claim(st, second, 4), 0);	/* waits its turn */
	assert_int_equal(runrec_get(st, first, &r, err, sizeof(err)), 0);
	assert_int_equal(r.state, RS_QUEUED);
	run_rec_free(&r);

	/* ... then one that has exited. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(runrec_set_supervisor(st, first, pid, start), 0);
	assert_int_equal(runrec_claim(st, second, 4), 1);
	assert_int_equal(runrec_get(st, first, &r, err, sizeof(err)), 0);
	assert_int_equal(r.state, RS_LOST);
	assert_string_equal(r.error, "supervisor gone while queued");
	run_rec_free(&r);
	assert_int_equal(runrec_get(st, second, &r, err, sizeof(err)), 0);
	assert_int_equal(r.state, RS_RUNNING);
	run_rec_free(&r);
	/* The slot is taken: with a cap of one, nobody else gets in. */
	assert_int_equal(runrec_create(st, "s-1", "m3", "{}", &first, err, sizeof(err)), 0);
	assert_int_equal(runrec_claim(st, first, 1), 0);
	store_close(st);
}

/* Taking a QUEUED run is guarded, and so is handing it on: only from
 * its taker (pid and start time), only while it is QUEUED. */
static void test_take_and_pass(void **state)
{
	struct store *st;
	struct run_rec r;
	char err[512];
	int64_t id;

	(void)state;
	st = fresh(&id);
	assert_int_equal(runrec_take_supervisor(st, id, 1111, 5), 1);
	assert_int_equal(runrec_take_supervisor(st, id, 2222, 6), 0);
	assert_int_equal(runrec_pass_supervisor(st, id, 2222, 6, 3333, 7), 0);	/* not 2222's */
	assert_int_equal(runrec_pass_supervisor(st, id, 1111, 9, 3333, 7), 0);	/* a reused pid */
	assert_int_equal(runrec_pass_supervisor(st, id, 1111, 5, 3333, 7), 1);
	assert_int_equal(runrec_get(st, id, &r, err, sizeof(err)), 0);
	assert_int_equal(r.state, RS_QUEUED);
	assert_int_equal(r.supervisor_pid, 3333);
	run_rec_free(&r);
	assert_int_equal(runrec_pass_supervisor(st, id, 1111, 5, 4444, 8), 0);	/* passed on already */
	/* Once it runs, it is no longer handed on. */
	assert_int_equal(runrec_claim(st, id, 4), 1);
	assert_int_equal(runrec_pass_supervisor(st, id, 3333, 7, 4444, 8), 0);
	assert_int_equal(runrec_get(st, id, &r, err, sizeof(err)), 0);
	assert_int_equal(r.supervisor_pid, 3333);
	run_rec_free(&r);
	/* A broken store says so. */
	exec_ok(st, "DROP TABLE runs");
	assert_true(runrec_pass_supervisor(st, id, 3333, 7, 4444, 8) < 0);
	store_close(st);
}

/* The reader writing into a full device says so (EPIPE from the copy,
 * or the final flush's ENOSPC) instead of claiming success. */
static void test_print_to_full_device(void **state)
{
	struct log_read_opts o = { .stream = LOG_STDOUT };
	struct log_writer w;
	struct store *st;
	char err[512];
	int64_t id;
	FILE *out;
	int ret;

	(void)state;
	st = fresh(&id);
	assert_int_equal(log_writer_init(&w, st, id, 1 << 20), 0);
	assert_int_equal(log_writer_feed(&w, LOG_STDOUT, "hello\n", 6), 0);
	assert_int_equal(log_writer_close(&w), 0);
	out = fopen("/dev/full", "w");
	if (out == NULL)
		skip();
	setvbuf(out, NULL, _IONBF, 0);
	ret = log_print(st, id, &o, out, err, sizeof(err));
	assert_int_equal(ret, -EPIPE);
	assert_non_null(strstr(err, "read log of run"));
	fclose(out);
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locked_store),
		cmocka_unit_test(test_store_full),
		cmocka_unit_test(test_tables_gone),
		cmocka_unit_test(test_claim_queue),
		cmocka_unit_test(test_take_and_pass),
		cmocka_unit_test(test_print_to_full_device),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
