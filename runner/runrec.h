/* The run record: one row of the runs table per `runner exec`, from QUEUED
 * to its verdict.  Every write that decides something (claiming a
 * concurrency slot, writing a verdict) is a guarded UPDATE or an IMMEDIATE
 * transaction, so two processes can never both claim the last slot or
 * overwrite each other's verdict. */
#ifndef RUNNER_RUNREC_H
#define RUNNER_RUNREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "lifecycle.h"
#include "store.h"

struct run_rec {
	int64_t id;
	char script_id[40];
	enum run_state state;	/* as stored: never STOPPING or KILLING */
	bool has_exit_code;
	int exit_code;
	int signal;		/* 0: none */
	char *error;		/* NULL: none */
	int64_t created_at, started_at, ended_at;	/* unix ms, 0: not yet */
	int64_t pid;
	uint64_t pid_start;
	char *cgroup;		/* NULL: no cgroup (process-group domain) */
	int64_t cpu_ms, peak_rss_kb;	/* -1: unknown */
	int64_t supervisor_pid;
	uint64_t supervisor_start;
	char marker[48];	/* the FIELDRIG_RUN_MARK value */
	char *request;		/* JSON of the request */
	bool cancel_requested;
	int exec_errno;		/* 0 unless the exec itself failed */
	int64_t log_bytes;
	char *workdir;		/* the per-run directory, NULL before staging */
};

void run_rec_free(struct run_rec *r);

/* The outcome a supervisor writes. */
struct run_verdict {
	enum run_state state;
	bool has_exit_code;
	int exit_code;
	int signal;
	const char *error;
	int64_t cpu_ms, peak_rss_kb;	/* -1: unknown */
	int exec_errno;
};

int64_t runrec_now_ms(void);

/* Looks a script up: file name in the scripts directory and language. */
int runrec_script(struct store *st, const char *script_id, char *file, size_t filelen,
		  char *lang, size_t langlen, char *err, size_t errlen);

/* Inserts a QUEUED run.  Returns 0 with *id, or -errno with err. */
int runrec_create(struct store *st, const char *script_id, const char *marker,
		  const char *request, int64_t *id, char *err, size_t errlen);

/* 0, -ENOENT when no such run, or -errno. */
int runrec_get(struct store *st, int64_t id, struct run_rec *r, char *err, size_t errlen);

/* Calls cb for every run, newest last; a non-zero return stops. */
typedef int (*runrec_cb)(void *ctx, const struct run_rec *r);
int runrec_list(struct store *st, const char *where_status, runrec_cb cb, void *ctx,
		char *err, size_t errlen);

int runrec_set_supervisor(struct store *st, int64_t id, pid_t pid, uint64_t start);
/* Registers pid as the supervisor of a QUEUED run nobody supervises yet, in
 * one guarded UPDATE: of two processes offered the same run (runner serve
 * and the exec --detach that handed it over) exactly one gets it.  Returns
 * 1 taken, 0 someone else has it or it is no longer QUEUED, -errno. */
int runrec_take_supervisor(struct store *st, int64_t id, pid_t pid, uint64_t start);
/* Hands a QUEUED run that (from, from_start) took on to (pid, start), in
 * one guarded UPDATE: nobody else can take it in between.  1 handed on,
 * 0 it was not from's or no longer QUEUED, -errno. */
int runrec_pass_supervisor(struct store *st, int64_t id, pid_t from, uint64_t from_start,
			   pid_t pid, uint64_t start);

/* Tries to take a concurrency slot for a QUEUED run, in one IMMEDIATE
 * transaction: the run becomes RUNNING when fewer than max runs are RUNNING
 * and no QUEUED run submitted before it would be passed over (submission
 * order).  A QUEUED run ahead of it whose supervisor is gone is marked
 * LOST on the way, so a crashed submitter cannot block the queue.
 * Returns 1 claimed, 0 not yet, -ECANCELED when the run is no longer
 * QUEUED (cancelled meanwhile), or -errno. */
int runrec_claim(struct store *st, int64_t id, uint64_t max);

int runrec_set_process(struct store *st, int64_t id, pid_t pid, uint64_t pid_start,
		       const char *cgroup);

/* Writes the verdict unless one is already there (a guarded UPDATE).
 * Returns 1 written, 0 the run already had a verdict, -errno. */
int runrec_finish(struct store *st, int64_t id, const struct run_verdict *v);

/* Forgets up to max runs that ended before ended_before_ms (unix ms) and
 * whose per-run directory is gone: their log index rows and records go in
 * one transaction, oldest first; their ids are put in ids for the caller to
 * remove their log files.  A QUEUED or RUNNING run is never touched, nor a
 * restart whose run is still recorded (serve tells a restarted run by its
 * restart's record).
 * Returns how many, or -errno. */
int runrec_prune(struct store *st, int64_t ended_before_ms, int64_t *ids, size_t max);

/* Sets cancel_requested on a run without a verdict.  Returns 1 set, 0 the
 * run has already ended, -ENOENT, -errno. */
int runrec_request_cancel(struct store *st, int64_t id);

int runrec_set_workdir(struct store *st, int64_t id, const char *workdir);

int runrec_add_log_bytes(struct store *st, int64_t id, int64_t bytes);

/* Records which mechanism enforces the run's process and memory limits
 * (request.limits, status --json "limits"). */
int runrec_set_limits(struct store *st, int64_t id, const char *limits);
/* Sets request.<key> to the string value. */
int runrec_set_request_field(struct store *st, int64_t id, const char *key, const char *value);

/* The status --json object. */
json_t *run_rec_to_json(const struct run_rec *r);

#endif
