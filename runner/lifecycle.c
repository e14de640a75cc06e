/* The run lifecycle table; see lifecycle.h. */
#include "lifecycle.h"

#include <string.h>

/* Pseudo state for "end in the reason the stop began with". */
#define RS_VERDICT RS__COUNT

struct transition {
	unsigned char next;	/* enum run_state, RS_VERDICT; same state when ignored */
	unsigned char act;	/* enum run_action */
};

#define T(n, a) { (n), (a) }
#define IGN(s) { (s), ACT_NONE }

/* [state][event].  Final states ignore everything: a late exit or a
 * second cancel must never rewrite a verdict. */
static const struct transition table[RS__COUNT][EV__COUNT] = {
	[RS_QUEUED] = {
		[EV_CLAIM]	  = T(RS_RUNNING, ACT_SPAWN),
		[EV_SPAWN_FAILED] = IGN(RS_QUEUED),
		[EV_EXIT_OK]	  = IGN(RS_QUEUED),
		[EV_EXIT_FAIL]	  = IGN(RS_QUEUED),
		/* A queued run has no processes yet; its timeout starts
		 * when it runs. */
		[EV_TIMEOUT]	  = IGN(RS_QUEUED),
		[EV_CANCEL]	  = T(RS_CANCELLED, ACT_RECORD),
		[EV_GRACE_EXPIRED] = IGN(RS_QUEUED),
		[EV_LOST]	  = T(RS_LOST, ACT_RECORD),
	},
	[RS_RUNNING] = {
		[EV_CLAIM]	  = IGN(RS_RUNNING),
		[EV_SPAWN_FAILED] = T(RS_FAILED, ACT_RECORD),
		[EV_EXIT_OK]	  = T(RS_COMPLETED, ACT_RECORD),
		[EV_EXIT_FAIL]	  = T(RS_FAILED, ACT_RECORD),
		[EV_TIMEOUT]	  = T(RS_STOPPING, ACT_TERM),
		[EV_CANCEL]	  = T(RS_STOPPING, ACT_TERM),
		[EV_GRACE_EXPIRED] = IGN(RS_RUNNING),
		[EV_LOST]	  = T(RS_LOST, ACT_RECORD),
	},
	[RS_STOPPING] = {
		[EV_CLAIM]	  = IGN(RS_STOPPING),
		[EV_SPAWN_FAILED] = IGN(RS_STOPPING),
		/* Whatever the exit status, the run was stopped. */
		[EV_EXIT_OK]	  = T(RS_VERDICT, ACT_RECORD),
		[EV_EXIT_FAIL]	  = T(RS_VERDICT, ACT_RECORD),
		[EV_TIMEOUT]	  = IGN(RS_STOPPING),
		[EV_CANCEL]	  = IGN(RS_STOPPING),
		[EV_GRACE_EXPIRED] = T(RS_KILLING, ACT_KILL),
		[EV_LOST]	  = T(RS_LOST, ACT_RECORD),
	},
	[RS_KILLING] = {
		[EV_CLAIM]	  = IGN(RS_KILLING),
		[EV_SPAWN_FAILED] = IGN(RS_KILLING),
		[EV_EXIT_OK]	  = T(RS_VERDICT, ACT_RECORD),
		[EV_EXIT_FAIL]	  = T(RS_VERDICT, ACT_RECORD),
		[EV_TIMEOUT]	  = IGN(RS_KILLING),
		[EV_CANCEL]	  = IGN(RS_KILLING),
		[EV_GRACE_EXPIRED] = IGN(RS_KILLING),
		[EV_LOST]	  = T(RS_LOST, ACT_RECORD),
	},
};

void run_machine_init(struct run_machine *m, enum run_state initial)
{
	m->state = initial;
	m->stop_reason = RS_CANCELLED;
}

bool run_state_final(enum run_state s)
{
	return s >= RS_COMPLETED;
}

enum run_action run_step(struct run_machine *m, enum run_event ev)
{
	const struct transition *t;

	if (run_state_final(m->state) || ev >= EV__COUNT)
		return ACT_NONE;
	t = &table[m->state][ev];
	if (t->act == ACT_TERM)
		m->stop_reason = ev == EV_TIMEOUT ? RS_TIMED_OUT : RS_CANCELLED;
	m->state = t->next == RS_VERDICT ? m->stop_reason : (enum run_state)t->next;
	return (enum run_action)t->act;
}

static const char *const state_names[RS__COUNT] = {
	[RS_QUEUED] = "QUEUED", [RS_RUNNING] = "RUNNING", [RS_STOPPING] = "RUNNING",
	[RS_KILLING] = "RUNNING", [RS_COMPLETED] = "COMPLETED", [RS_FAILED] = "FAILED",
	[RS_TIMED_OUT] = "TIMED_OUT", [RS_CANCELLED] = "CANCELLED", [RS_LOST] = "LOST",
};

const char *run_state_name(enum run_state s)
{
	return s < RS__COUNT ? state_names[s] : "?";
}

int run_state_parse(const char *name)
{
	int i;

	for (i = 0; i < RS__COUNT; i++) {
		if (i == RS_STOPPING || i == RS_KILLING)
			continue;
		if (strcmp(name, state_names[i]) == 0)
			return i;
	}
	return -1;
}

const char *run_event_name(enum run_event ev)
{
	static const char *const names[EV__COUNT] = {
		"claim", "spawn-failed", "exit-ok", "exit-fail", "timeout", "cancel",
		"grace-expired", "lost",
	};

	return ev < EV__COUNT ? names[ev] : "?";
}
