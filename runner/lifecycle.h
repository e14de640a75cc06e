/* The lifecycle of a run as one state x event table, in the manner of s6's
 * supervisor: every event has a defined effect in every state, and the
 * supervisor, `cancel` and `recover` all go through run_step() instead of
 * deciding transitions of their own.
 *
 *   QUEUED --claim--> RUNNING --exit 0--> COMPLETED
 *                        |    --exit!=0 / signal / exec error--> FAILED
 *                        +--timeout/cancel--> STOPPING (TERM sent, grace)
 *                                --grace--> KILLING (KILL sent)
 *   STOPPING/KILLING --tree gone--> TIMED_OUT or CANCELLED (the reason
 *   that started the stop)
 *   any live state --lost--> LOST
 *
 * STOPPING and KILLING exist only inside the supervisor; the store shows
 * them as RUNNING until the verdict. */
#ifndef RUNNER_LIFECYCLE_H
#define RUNNER_LIFECYCLE_H

#include <stdbool.h>

enum run_state {
	RS_QUEUED = 0,
	RS_RUNNING,
	RS_STOPPING,
	RS_KILLING,
	RS_COMPLETED,
	RS_FAILED,
	RS_TIMED_OUT,
	RS_CANCELLED,
	RS_LOST,
	RS__COUNT
};

enum run_event {
	EV_CLAIM = 0,		/* a concurrency slot was taken */
	EV_SPAWN_FAILED,	/* setup or exec failed in the child */
	EV_EXIT_OK,		/* main process exited 0 */
	EV_EXIT_FAIL,		/* exited non-zero or was killed by a signal */
	EV_TIMEOUT,		/* MAX_EXECUTION_TIME / --timeout reached */
	EV_CANCEL,		/* runner cancel */
	EV_GRACE_EXPIRED,	/* RUNNER_KILL_GRACE after TERM */
	EV_LOST,		/* supervisor gone (recover) */
	EV__COUNT
};

enum run_action {
	ACT_NONE = 0,		/* nothing to do (event ignored in this state) */
	ACT_SPAWN,		/* start the process */
	ACT_TERM,		/* TERM (and CONT) to the whole tree, arm grace */
	ACT_KILL,		/* KILL the whole tree */
	ACT_RECORD,		/* write the final state */
};

struct run_machine {
	enum run_state state;
	/* The verdict a stop will end in (TIMED_OUT or CANCELLED): the
	 * event that started the stop, not whatever comes after it. */
	enum run_state stop_reason;
};

void run_machine_init(struct run_machine *m, enum run_state initial);

/* Applies ev: updates m and returns what the caller must do now. */
enum run_action run_step(struct run_machine *m, enum run_event ev);

bool run_state_final(enum run_state s);

/* "QUEUED", "RUNNING" ... as stored; STOPPING and KILLING map to
 * "RUNNING". */
const char *run_state_name(enum run_state s);

/* Stored name -> state, or -1. */
int run_state_parse(const char *name);

const char *run_event_name(enum run_event ev);

#endif
