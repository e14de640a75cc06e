/* The runs table; see runrec.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "runrec.h"
#include "proctree.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t runrec_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sq_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_READONLY: case SQLITE_PERM: return -EACCES;
	case SQLITE_FULL: return -ENOSPC;
	default: return -EIO;
	}
}

static int fail(struct store *st, int rc, const char *what, char *err, size_t errlen)
{
	if (err)
		snprintf(err, errlen, "%s: %s: %s", store_path(st), what,
			 sqlite3_errmsg(store_db(st)));
	return sq_errno(rc);
}

void run_rec_free(struct run_rec *r)
{
	free(r->error);
	free(r->cgroup);
	free(r->request);
	free(r->workdir);
	r->error = r->cgroup = r->request = r->workdir = NULL;
}

int runrec_script(struct store *st, const char *script_id, char *file, size_t filelen,
		  char *lang, size_t langlen, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc, ret;

	rc = sqlite3_prepare_v2(store_db(st), "SELECT file, lang FROM scripts WHERE id = ?",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(st, rc, "look up script", err, errlen);
	sqlite3_bind_text(s, 1, script_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		snprintf(file, filelen, "%s", (const char *)sqlite3_column_text(s, 0));
		snprintf(lang, langlen, "%s", (const char *)sqlite3_column_text(s, 1));
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		snprintf(err, errlen, "no script with id '%s' (see runner scripts)", script_id);
		ret = -ENOENT;
	} else {
		ret = fail(st, rc, "look up script", err, errlen);
	}
	sqlite3_finalize(s);
	return ret;
}

int runrec_create(struct store *st, const char *script_id, const char *marker,
		  const char *request, int64_t *id, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(store_db(st),
		"INSERT INTO runs (script_id, status, created_at, marker, request) "
		"VALUES (?, 'QUEUED', ?, ?, ?)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(st, rc, "insert run", err, errlen);
	sqlite3_bind_text(s, 1, script_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, runrec_now_ms());
	sqlite3_bind_text(s, 3, marker, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, request, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return fail(st, rc, "insert run", err, errlen);
	*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

#define RUN_COLS "id, script_id, status, exit_code, signal, error, created_at, started_at, " \
	"ended_at, pid, pid_start_time, cgroup, cpu_ms, peak_rss_kb, supervisor_pid, " \
	"supervisor_start, marker, request, cancel_requested, exec_errno, log_bytes, workdir"

static char *dup_col(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? strdup((const char *)t) : NULL;
}

static int64_t int_or(sqlite3_stmt *s, int i, int64_t dflt)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? dflt : sqlite3_column_int64(s, i);
}

static void row_to_rec(sqlite3_stmt *s, struct run_rec *r)
{
	const unsigned char *t;
	int st;

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	snprintf(r->script_id, sizeof(r->script_id), "%s", (const char *)sqlite3_column_text(s, 1));
	st = run_state_parse((const char *)sqlite3_column_text(s, 2));
	r->state = st < 0 ? RS_LOST : (enum run_state)st;
	r->has_exit_code = sqlite3_column_type(s, 3) != SQLITE_NULL;
	r->exit_code = (int)int_or(s, 3, 0);
	r->signal = (int)int_or(s, 4, 0);
	r->error = dup_col(s, 5);
	r->created_at = int_or(s, 6, 0);
	r->started_at = int_or(s, 7, 0);
	r->ended_at = int_or(s, 8, 0);
	r->pid = int_or(s, 9, 0);
	r->pid_start = (uint64_t)int_or(s, 10, 0);
	r->cgroup = dup_col(s, 11);
	r->cpu_ms = int_or(s, 12, -1);
	r->peak_rss_kb = int_or(s, 13, -1);
	r->supervisor_pid = int_or(s, 14, 0);
	r->supervisor_start = (uint64_t)int_or(s, 15, 0);
	t = sqlite3_column_text(s, 16);
	snprintf(r->marker, sizeof(r->marker), "%s", t ? (const char *)t : "");
	r->request = dup_col(s, 17);
	r->cancel_requested = int_or(s, 18, 0) != 0;
	r->exec_errno = (int)int_or(s, 19, 0);
	r->log_bytes = int_or(s, 20, 0);
	r->workdir = dup_col(s, 21);
}

int runrec_get(struct store *st, int64_t id, struct run_rec *r, char *err, size_t errlen)
{
	sqlite3_stmt *s;
	int rc, ret;

	rc = sqlite3_prepare_v2(store_db(st), "SELECT " RUN_COLS " FROM runs WHERE id = ?",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(st, rc, "read run", err, errlen);
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		row_to_rec(s, r);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		if (err)
			snprintf(err, errlen, "no run with id %lld", (long long)id);
		ret = -ENOENT;
	} else {
		ret = fail(st, rc, "read run", err, errlen);
	}
	sqlite3_finalize(s);
	return ret;
}

int runrec_list(struct store *st, const char *where_status, runrec_cb cb, void *ctx,
		char *err, size_t errlen)
{
	struct run_rec r;
	sqlite3_stmt *s;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(store_db(st), where_status ?
				"SELECT " RUN_COLS " FROM runs WHERE status = ? ORDER BY id" :
				"SELECT " RUN_COLS " FROM runs ORDER BY id", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return fail(st, rc, "list runs", err, errlen);
	if (where_status)
		sqlite3_bind_text(s, 1, where_status, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_to_rec(s, &r);
		ret = cb(ctx, &r);
		run_rec_free(&r);
		if (ret != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = fail(st, rc, "list runs", err, errlen);
	sqlite3_finalize(s);
	return ret;
}

/* Runs one UPDATE with int64 parameters; returns the rows changed. */
static int update(struct store *st, const char *sql, int n, const int64_t *v)
{
	sqlite3_stmt *s;
	int rc, i;

	rc = sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	for (i = 0; i < n; i++)
		sqlite3_bind_int64(s, i + 1, v[i]);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sq_errno(rc);
	return sqlite3_changes(store_db(st));
}

int runrec_set_supervisor(struct store *st, int64_t id, pid_t pid, uint64_t start)
{
	int64_t v[3] = { pid, (int64_t)start, id };
	int ret = update(st, "UPDATE runs SET supervisor_pid = ?, supervisor_start = ? WHERE id = ?",
			 3, v);

	return ret < 0 ? ret : 0;
}

int runrec_take_supervisor(struct store *st, int64_t id, pid_t pid, uint64_t start)
{
	int64_t v[3] = { pid, (int64_t)start, id };
	int ret = update(st, "UPDATE runs SET supervisor_pid = ?, supervisor_start = ? WHERE id = ? "
			 "AND status = 'QUEUED' AND supervisor_pid IS NULL", 3, v);

	return ret < 0 ? ret : ret > 0;
}

int runrec_pass_supervisor(struct store *st, int64_t id, pid_t from, uint64_t from_start,
			   pid_t pid, uint64_t start)
{
	int64_t v[5] = { pid, (int64_t)start, id, from, (int64_t)from_start };
	int ret = update(st, "UPDATE runs SET supervisor_pid = ?, supervisor_start = ? WHERE id = ? "
			 "AND supervisor_pid = ? AND supervisor_start = ? AND status = 'QUEUED'", 5, v);

	return ret < 0 ? ret : ret > 0;
}

static int count_q(struct store *st, const char *sql, int64_t arg, int64_t *out)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	if (arg >= 0)
		sqlite3_bind_int64(s, 1, arg);
	rc = sqlite3_step(s);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : sq_errno(rc);
}

/* QUEUED runs before id whose supervisor is gone become LOST. */
static int reap_dead_queued(struct store *st, int64_t id)
{
	sqlite3_stmt *s;
	int64_t dead[64];
	int n = 0, rc, i;

	rc = sqlite3_prepare_v2(store_db(st),
		"SELECT id, supervisor_pid, supervisor_start FROM runs "
		"WHERE status = 'QUEUED' AND id < ? AND supervisor_pid IS NOT NULL ORDER BY id",
		-1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	sqlite3_bind_int64(s, 1, id);
	while (n < 64 && sqlite3_step(s) == SQLITE_ROW) {
		if (!proc_alive((pid_t)sqlite3_column_int64(s, 1),
				(uint64_t)sqlite3_column_int64(s, 2)))
			dead[n++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	for (i = 0; i < n; i++) {
		int64_t v[2] = { runrec_now_ms(), dead[i] };

		update(st, "UPDATE runs SET status = 'LOST', ended_at = ?, "
		       "error = 'supervisor gone while queued' WHERE id = ? AND status = 'QUEUED'",
		       2, v);
	}
	return 0;
}

int runrec_prune(struct store *st, int64_t ended_before_ms, int64_t *ids, size_t max)
{
	sqlite3 *db = store_db(st);
	sqlite3_stmt *q = NULL;
	size_t n = 0, i;
	int rc, ret = 0;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	/* A restart whose run is still recorded stays too: serve looks for
	 * it to know that run was restarted (it goes with it, later). */
	rc = sqlite3_prepare_v2(db, "SELECT id FROM runs AS r WHERE status NOT IN ('QUEUED', 'RUNNING') "
				"AND ended_at IS NOT NULL AND ended_at < ? AND workdir IS NULL "
				"AND NOT EXISTS (SELECT 1 FROM runs AS p WHERE json_valid(r.request) AND "
				"p.id = json_extract(r.request, '$.restart_of')) "
				"ORDER BY id LIMIT ?", -1, &q, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(q, 1, ended_before_ms);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(q)) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	for (i = 0; i < n; i++) {
		ret = update(st, "DELETE FROM log_lines WHERE run_id = ?", 1, &ids[i]);
		if (ret >= 0)
			ret = update(st, "DELETE FROM runs WHERE id = ?", 1, &ids[i]);
		if (ret < 0)
			goto rollback;
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	return (int)n;
fail:
	ret = sq_errno(rc);
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int runrec_claim(struct store *st, int64_t id, uint64_t max)
{
	sqlite3 *db = store_db(st);
	int64_t running, ahead, mine;
	int rc, ret;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	ret = count_q(st, "SELECT count(*) FROM runs WHERE id = ? AND status = 'QUEUED'", id, &mine);
	if (ret < 0)
		goto rollback;
	if (mine == 0) {
		ret = -ECANCELED;
		goto rollback;
	}
	ret = count_q(st, "SELECT count(*) FROM runs WHERE status = 'RUNNING'", -1, &running);
	if (ret < 0)
		goto rollback;
	if ((uint64_t)running >= max) {
		ret = 0;
		goto rollback;
	}
	ret = count_q(st, "SELECT count(*) FROM runs WHERE status = 'QUEUED' AND id < ?", id, &ahead);
	if (ret < 0)
		goto rollback;
	if (ahead > 0) {
		reap_dead_queued(st, id);
		ret = count_q(st, "SELECT count(*) FROM runs WHERE status = 'QUEUED' AND id < ?",
			      id, &ahead);
		if (ret < 0)
			goto rollback;
	}
	/* Strict submission order: a slot goes to the oldest waiting run. */
	if (ahead > 0) {
		ret = 0;
		goto commit;
	}
	{
		int64_t v[2] = { runrec_now_ms(), id };

		ret = update(st, "UPDATE runs SET status = 'RUNNING', started_at = ? "
			     "WHERE id = ? AND status = 'QUEUED'", 2, v);
		if (ret < 0)
			goto rollback;
	}
	ret = 1;
commit:
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return sq_errno(rc);
	}
	return ret;
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int runrec_set_process(struct store *st, int64_t id, pid_t pid, uint64_t pid_start,
		       const char *cgroup)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(store_db(st),
		"UPDATE runs SET pid = ?, pid_start_time = ?, cgroup = ? WHERE id = ?", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	sqlite3_bind_int64(s, 1, pid);
	sqlite3_bind_int64(s, 2, (int64_t)pid_start);
	if (cgroup)
		sqlite3_bind_text(s, 3, cgroup, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 3);
	sqlite3_bind_int64(s, 4, id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

int runrec_finish(struct store *st, int64_t id, const struct run_verdict *v)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(store_db(st),
		"UPDATE runs SET status = ?, exit_code = ?, signal = ?, error = ?, ended_at = ?, "
		"cpu_ms = ?, peak_rss_kb = ?, exec_errno = ? "
		"WHERE id = ? AND status IN ('QUEUED', 'RUNNING')", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	sqlite3_bind_text(s, 1, run_state_name(v->state), -1, SQLITE_STATIC);
	if (v->has_exit_code)
		sqlite3_bind_int(s, 2, v->exit_code);
	else
		sqlite3_bind_null(s, 2);
	if (v->signal)
		sqlite3_bind_int(s, 3, v->signal);
	else
		sqlite3_bind_null(s, 3);
	if (v->error)
		sqlite3_bind_text(s, 4, v->error, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	sqlite3_bind_int64(s, 5, runrec_now_ms());
	if (v->cpu_ms >= 0)
		sqlite3_bind_int64(s, 6, v->cpu_ms);
	else
		sqlite3_bind_null(s, 6);
	if (v->peak_rss_kb >= 0)
		sqlite3_bind_int64(s, 7, v->peak_rss_kb);
	else
		sqlite3_bind_null(s, 7);
	if (v->exec_errno)
		sqlite3_bind_int(s, 8, v->exec_errno);
	else
		sqlite3_bind_null(s, 8);
	sqlite3_bind_int64(s, 9, id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return sq_errno(rc);
	return sqlite3_changes(store_db(st)) > 0;
}

int runrec_request_cancel(struct store *st, int64_t id)
{
	int64_t v[1] = { id }, n;
	int ret = update(st, "UPDATE runs SET cancel_requested = 1 "
			 "WHERE id = ? AND status IN ('QUEUED', 'RUNNING')", 1, v);

	if (ret != 0)
		return ret;
	if (count_q(st, "SELECT count(*) FROM runs WHERE id = ?", id, &n) < 0 || n == 0)
		return -ENOENT;
	return 0;
}

int runrec_set_workdir(struct store *st, int64_t id, const char *workdir)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(store_db(st), "UPDATE runs SET workdir = ? WHERE id = ?", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	if (workdir)
		sqlite3_bind_text(s, 1, workdir, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 1);
	sqlite3_bind_int64(s, 2, id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

int runrec_set_limits(struct store *st, int64_t id, const char *limits)
{
	return runrec_set_request_field(st, id, "limits", limits);
}

int runrec_set_request_field(struct store *st, int64_t id, const char *key, const char *value)
{
	char jpath[64];
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(store_db(st), "UPDATE runs SET request = "
				"json_set(coalesce(request, '{}'), ?, ?) WHERE id = ?",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return sq_errno(rc);
	snprintf(jpath, sizeof(jpath), "$.%s", key);
	sqlite3_bind_text(s, 1, jpath, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : sq_errno(rc);
}

int runrec_add_log_bytes(struct store *st, int64_t id, int64_t bytes)
{
	int64_t v[2] = { bytes, id };
	int ret = update(st, "UPDATE runs SET log_bytes = log_bytes + ? WHERE id = ?", 2, v);

	return ret < 0 ? ret : 0;
}

static json_t *opt_int(bool have, int64_t v)
{
	return have ? json_integer(v) : json_null();
}

static json_t *opt_time(int64_t ms)
{
	char buf[40];
	struct tm tm;
	time_t t = (time_t)(ms / 1000);

	if (ms <= 0)
		return json_null();
	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_string(buf);
}

json_t *run_rec_to_json(const struct run_rec *r)
{
	json_t *o, *req;
	const char *net = NULL, *lim = NULL, *interp = NULL;

	o = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
			 "s:o, s:s, s:b, s:o, s:I, s:o}",
			 "id", (json_int_t)r->id,
			 "script_id", r->script_id,
			 "status", run_state_name(r->state),
			 "exit_code", opt_int(r->has_exit_code, r->exit_code),
			 "signal", opt_int(r->signal != 0, r->signal),
			 "error", r->error ? json_string(r->error) : json_null(),
			 "created_at", opt_time(r->created_at),
			 "started_at", opt_time(r->started_at),
			 "ended_at", opt_time(r->ended_at),
			 "cpu_ms", opt_int(r->cpu_ms >= 0, r->cpu_ms),
			 "peak_rss_kb", opt_int(r->peak_rss_kb >= 0, r->peak_rss_kb),
			 "pid", opt_int(r->pid > 0, r->pid),
			 "pid_start_time", opt_int(r->pid > 0, (int64_t)r->pid_start),
			 "cgroup", r->cgroup ? json_string(r->cgroup) : json_null(),
			 "marker", r->marker,
			 "cancel_requested", r->cancel_requested,
			 "supervisor_pid", opt_int(r->supervisor_pid > 0, r->supervisor_pid),
			 "log_bytes", (json_int_t)r->log_bytes,
			 "workdir", r->workdir ? json_string(r->workdir) : json_null());
	/* The network the run had: "none" (its own namespace) or "host". */
	req = r->request ? json_loads(r->request, 0, NULL) : NULL;
	if (req) {
		net = json_string_value(json_object_get(req, "network"));
		lim = json_string_value(json_object_get(req, "limits"));
		interp = json_string_value(json_object_get(req, "interpreter"));
	}
	if (o) {
		json_object_set_new(o, "network", json_string(net ? net : "host"));
		/* Which mechanism enforced the process and memory limits. */
		json_object_set_new(o, "limits", lim ? json_string(lim) : json_null());
		/* The interpreter chosen and why ("" in direct mode). */
		json_object_set_new(o, "interpreter", interp ? json_string(interp) : json_null());
	}
	json_decref(req);
	return o;
}
