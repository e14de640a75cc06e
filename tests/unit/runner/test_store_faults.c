/* Unit tests of runner/store.c against a real SQLite file that is not what
 * the store expects: no state directory, a directory where the database
 * should be, a file the user may only read, a half-migrated schema, a
 * damaged page, tables that went missing.  Each gives an error naming the
 * database and what failed, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"
#include "testutil.h"

/* A fresh state directory under dir. */
static void fresh(char *sd, size_t len, const char *name)
{
	snprintf(sd, len, "%s/%s", tu_dir, name);
	assert_int_equal(mkdir(sd, 0755), 0);
}

static void add(struct store *st, const char *id, int64_t at)
{
	struct script_rec rec;
	char err[512], file[64];

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "%s", id);
	snprintf(file, sizeof(file), "%s.py", id);
	rec.name = "s.py";
	rec.file = file;
	rec.lang = "python";
	rec.size = 10;
	rec.created_at = at;
	assert_int_equal(store_add_script(st, &rec, err, sizeof(err)), 0);
}

static void test_state_dir_cannot_be_made(void **state)
{
	struct store *st = NULL;
	char sd[256], err[512];

	(void)state;
	snprintf(sd, sizeof(sd), "%s/no/such/parent", tu_dir);
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), -ENOENT);
	assert_null(st);
	assert_non_null(strstr(err, "cannot create state directory"));
	assert_non_null(strstr(err, sd));
	store_close(NULL);	/* a no-op, as after a failed open */
}

static void test_db_is_a_directory(void **state)
{
	struct store *st = NULL;
	char sd[256], db[300], err[512];
	int ret;

	(void)state;
	fresh(sd, sizeof(sd), "dbdir");
	snprintf(db, sizeof(db), "%s/runner.db", sd);
	assert_int_equal(mkdir(db, 0755), 0);
	ret = store_open(sd, &st, err, sizeof(err));
	assert_int_equal(ret, -ENOENT);	/* SQLITE_CANTOPEN */
	assert_null(st);
	assert_non_null(strstr(err, db));
}

/* Another user's database in a directory this user cannot write (as nobody,
 * in a child): reading may work (opening a current store writes nothing,
 * so `status` can read it), but adding to it fails, with the path in the
 * message. */
static void test_read_only_for_this_user(void **state)
{
	struct store *st = NULL;
	char sd[256], err[512];
	int ws, p[2];
	pid_t pid;
	char msg[512] = "";
	ssize_t n;

	(void)state;
	if (geteuid() != 0)
		skip();
	fresh(sd, sizeof(sd), "ro");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	add(st, "aaaa", 1);
	store_close(st);
	st = NULL;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ret;

		close(p[0]);
		if (tu_drop_to_nobody() < 0)
			exit(100);
		ret = store_open(sd, &st, err, sizeof(err));
		if (ret == 0) {
			struct script_rec rec;

			memset(&rec, 0, sizeof(rec));
			snprintf(rec.id, sizeof(rec.id), "bbbb");
			rec.name = "s.py";
			rec.file = "bbbb.py";
			rec.lang = "python";
			rec.size = 10;
			ret = store_add_script(st, &rec, err, sizeof(err));
			if (ret == 0)
				exit(102);
		}
		if (write(p[1], err, strlen(err) + 1) < 0)
			exit(101);
		store_close(st);
		exit(ret < 0 ? -ret : 0);
	}
	close(p[1]);
	n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	assert_true(n > 0);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	/* The WAL switch or the first lock needs a file it cannot make. */
	assert_true(WEXITSTATUS(ws) == EACCES || WEXITSTATUS(ws) == ENOENT ||
		    WEXITSTATUS(ws) == EIO || WEXITSTATUS(ws) == EROFS || WEXITSTATUS(ws) == EPERM);
	assert_non_null(strstr(msg, sd));
}

/* A schema version older than the columns already there: the migration
 * fails on its duplicate column and is rolled back whole. */
static void test_migration_fails_and_rolls_back(void **state)
{
	struct store *st = NULL;
	char sd[256], db[300], err[512];
	sqlite3 *h;
	int v;

	(void)state;
	fresh(sd, sizeof(sd), "mig");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	v = store_schema_version(st);
	assert_true(v >= 2);
	add(st, "bbbb", 1);
	store_close(st);
	st = NULL;

	snprintf(db, sizeof(db), "%s/runner.db", sd);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);

	assert_int_equal(store_open(sd, &st, err, sizeof(err)), -EIO);
	assert_null(st);
	assert_non_null(strstr(err, "migrate schema"));
	assert_non_null(strstr(err, "duplicate column"));

	/* Rolled back: still version 1, the row still there. */
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	{
		sqlite3_stmt *s;

		assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(s, 0), 1);
		sqlite3_finalize(s);
		assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM scripts", -1, &s, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(s, 0), 1);
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
}

static int count_cb(void *ctx, const struct script_rec *rec)
{
	int *n = ctx;

	(void)rec;
	return ++*n == 2 ? 42 : 0;
}

/* A callback's non-zero answer stops the listing and is returned. */
static void test_list_stops_on_callback(void **state)
{
	struct store *st = NULL;
	char sd[256], err[512], want[300];
	int n = 0;

	(void)state;
	fresh(sd, sizeof(sd), "list");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/runner.db", sd);
	assert_string_equal(store_path(st), want);
	add(st, "c001", 1);
	add(st, "c002", 2);
	add(st, "c003", 3);
	assert_int_equal(store_list_scripts(st, count_cb, &n, err, sizeof(err)), 42);
	assert_int_equal(n, 2);
	assert_int_equal(store_integrity_check(st, err, sizeof(err)), 0);
	store_close(st);
}

/* The scripts table gone (another tool, a bad restore): adding and
 * listing name what failed. */
static void test_table_missing(void **state)
{
	struct store *st = NULL;
	struct script_rec rec;
	char sd[256], err[512];
	int n = 0;

	(void)state;
	fresh(sd, sizeof(sd), "notable");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	assert_int_equal(sqlite3_exec(store_db(st), "PRAGMA foreign_keys=OFF; DROP TABLE scripts",
				      NULL, NULL, NULL), SQLITE_OK);
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "dddd");
	rec.name = rec.file = "x.sh";
	rec.lang = "bash";
	assert_int_equal(store_add_script(st, &rec, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "prepare insert"));
	assert_non_null(strstr(err, "no such table"));
	assert_int_equal(store_list_scripts(st, count_cb, &n, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "prepare list"));
	assert_int_equal(n, 0);
	store_close(st);
}

/* A damaged page: the integrity check (what doctor runs) reports it, with
 * the database's path, instead of "ok". */
static void test_damaged_page(void **state)
{
	struct store *st = NULL;
	char sd[256], db[300], err[512], id[16], junk[512];
	sqlite3 *h;
	int fd, i, ret;

	(void)state;
	fresh(sd, sizeof(sd), "damaged");
	assert_int_equal(store_open(sd, &st, err, sizeof(err)), 0);
	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "e%03d", i);
		add(st, id, i);
	}
	store_close(st);
	st = NULL;
	/* Everything into the main file, back to a rollback journal so
	 * nothing of it lives in a WAL any more. */
	snprintf(db, sizeof(db), "%s/runner.db", sd);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);

	/* Scribble over the header of the scripts table's root page. */
	{
		sqlite3_stmt *q;
		int root, psz;

		assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(h, "SELECT rootpage FROM sqlite_master"
						    " WHERE name = 'scripts'", -1, &q, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		root = sqlite3_column_int(q, 0);
		sqlite3_finalize(q);
		assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA page_size", -1, &q, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(q), SQLITE_ROW);
		psz = sqlite3_column_int(q, 0);
		sqlite3_finalize(q);
		sqlite3_close(h);
		assert_true(root > 1);
		memset(junk, 0x5a, sizeof(junk));
		fd = open(db, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, junk, sizeof(junk), (off_t)(root - 1) * psz),
				 (ssize_t)sizeof(junk));
		close(fd);
	}

	ret = store_open(sd, &st, err, sizeof(err));
	if (ret == 0) {
		ret = store_integrity_check(st, err, sizeof(err));
		store_close(st);
	}
	assert_true(ret == -EIO || ret == -EILSEQ);
	assert_non_null(strstr(err, db));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_dir_cannot_be_made),
		cmocka_unit_test(test_db_is_a_directory),
		cmocka_unit_test(test_read_only_for_this_user),
		cmocka_unit_test(test_migration_fails_and_rolls_back),
		cmocka_unit_test(test_list_stops_on_callback),
		cmocka_unit_test(test_table_missing),
		cmocka_unit_test(test_damaged_page),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup_0755, tu_dir_teardown);
}
