/* Unit tests of runner/store.c: schema, migrations, concurrent writers. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

/* A fresh state directory per test. */
static void fresh(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tu_dir, name);
}

static int count_cb(void *ctx, const struct script_rec *r)
{
	(*(int *)ctx)++;
	assert_int_equal(strlen(r->id), 36);
	return 0;
}

static void add(struct store *st, const char *id, int64_t t)
{
	struct script_rec r = { .name = "a.py", .lang = "python", .size = 3, .created_at = t };
	char file[64], err[512];

	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(file, sizeof(file), "%s.py", id);
	r.file = file;
	if (store_add_script(st, &r, err, sizeof(err)) != 0)
		fail_msg("%s", err);
}

static void test_open_creates_schema(void **state)
{
	struct store *st;
	char sd[128], err[512];
	int n = 0;

	(void)state;
	fresh(sd, sizeof(sd), "s1");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	assert_int_equal(store_schema_version(st), STORE_SCHEMA_VERSION);
	add(st, "00000000-0000-4000-8000-000000000001", 1);
	add(st, "00000000-0000-4000-8000-000000000002", 2);
	assert_int_equal(store_list_scripts(st, count_cb, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_integrity_check(st, err, sizeof(err)), 0);
	store_close(st);

	/* Reopening finds the data and does not migrate twice. */
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	n = 0;
	assert_int_equal(store_list_scripts(st, count_cb, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	store_close(st);
}

static void test_wal_and_tables(void **state)
{
	sqlite3 *db;
	sqlite3_stmt *stmt;
	struct store *st;
	char sd[128], path[192], err[512];
	static const char *const cols[] = {
		"SELECT id, script_id, status, exit_code, signal, error, created_at, started_at,"
		" ended_at, pid, pid_start_time, cgroup, cpu_ms, peak_rss_kb FROM runs",
		"SELECT run_id, seq, stream, ts, data FROM log_lines",
		"PRAGMA journal_mode",
	};
	size_t i;

	(void)state;
	fresh(sd, sizeof(sd), "s2");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	store_close(st);
	snprintf(path, sizeof(path), "%s/runner.db", sd);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	for (i = 0; i < 3; i++) {
		if (sqlite3_prepare_v2(db, cols[i], -1, &stmt, NULL) != SQLITE_OK)
			fail_msg("%s: %s", cols[i], sqlite3_errmsg(db));
		if (i == 2) {
			assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
			assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
		}
		sqlite3_finalize(stmt);
	}
	sqlite3_close(db);
}

static void test_newer_schema_refused(void **state)
{
	sqlite3 *db;
	struct store *st;
	char sd[128], path[192], err[512];

	(void)state;
	fresh(sd, sizeof(sd), "s3");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	store_close(st);
	snprintf(path, sizeof(path), "%s/runner.db", sd);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "schema version 99 is newer"));
	assert_null(st);
}

static void test_not_a_database(void **state)
{
	struct store *st;
	char sd[128], path[192], err[512];
	FILE *f;

	(void)state;
	fresh(sd, sizeof(sd), "s4");
	assert_int_equal(mkdir(sd, 0750), 0);
	snprintf(path, sizeof(path), "%s/runner.db", sd);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not an SQLite database, just some text that is long enough......"
	      "..................................................................", f);
	fclose(f);
	assert_true(store_open(sd, &st, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, path));
}

#define N_PROCS 8
#define N_EACH 40

/* Several runner processes first-open the same fresh store (racing on the
 * WAL switch and the migration) and insert at once; none may fail with
 * "database is locked" and no row may be lost. */
static void test_concurrent_processes(void **state)
{
	pid_t pids[N_PROCS];
	struct store *st;
	char sd[128], err[512];
	int i, j, ws, n = 0;

	(void)state;
	fresh(sd, sizeof(sd), "s5");
	for (i = 0; i < N_PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char id[37];

			if (store_open(sd, &st, err, sizeof(err)) != 0) {
				fprintf(stderr, "child %d: %s\n", i, err);
				_exit(1);
			}
			for (j = 0; j < N_EACH; j++) {
				struct script_rec r = { .name = "c.py", .lang = "python",
							.size = 1, .created_at = j };
				char file[64];

				snprintf(id, sizeof(id), "00000000-0000-4000-8000-%04x%08x", i, j);
				memcpy(r.id, id, sizeof(id));
				snprintf(file, sizeof(file), "%s.py", id);
				r.file = file;
				if (store_add_script(st, &r, err, sizeof(err)) != 0) {
					fprintf(stderr, "child %d insert %d: %s\n", i, j, err);
					_exit(1);
				}
			}
			store_close(st);
			_exit(0);
		}
	}
	for (i = 0; i < N_PROCS; i++) {
		assert_int_equal(waitpid(pids[i], &ws, 0), pids[i]);
		assert_true(WIFEXITED(ws));
		assert_int_equal(WEXITSTATUS(ws), 0);
	}
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	assert_int_equal(store_list_scripts(st, count_cb, &n, err, sizeof(err)), 0);
	assert_int_equal(n, N_PROCS * N_EACH);
	assert_int_equal(store_integrity_check(st, err, sizeof(err)), 0);
	store_close(st);
}

static void test_duplicate_id(void **state)
{
	struct script_rec r = { .name = "a.py", .file = "f.py", .lang = "python", .size = 1 };
	struct store *st;
	char sd[128], err[512];

	(void)state;
	fresh(sd, sizeof(sd), "s6");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	snprintf(r.id, sizeof(r.id), "00000000-0000-4000-8000-000000000001");
	assert_int_equal(store_add_script(st, &r, err, sizeof(err)), 0);
	assert_true(store_add_script(st, &r, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "insert script"));
	store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates_schema),
		cmocka_unit_test(test_wal_and_tables),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_not_a_database),
		cmocka_unit_test(test_concurrent_processes),
		cmocka_unit_test(test_duplicate_id),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
