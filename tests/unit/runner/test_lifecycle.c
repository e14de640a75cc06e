/* Unit tests of runner/lifecycle.c: the run state x event table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lifecycle.h"

static enum run_state after(enum run_state from, const enum run_event *evs, size_t n,
			    enum run_action *last)
{
	struct run_machine m;
	size_t i;

	run_machine_init(&m, from);
	for (i = 0; i < n; i++)
		*last = run_step(&m, evs[i]);
	return m.state;
}

static void test_happy_paths(void **state)
{
	enum run_action a = ACT_NONE;
	const enum run_event ok[] = { EV_CLAIM, EV_EXIT_OK };
	const enum run_event bad[] = { EV_CLAIM, EV_EXIT_FAIL };
	const enum run_event noexec[] = { EV_CLAIM, EV_SPAWN_FAILED };

	(void)state;
	assert_int_equal(after(RS_QUEUED, ok, 1, &a), RS_RUNNING);
	assert_int_equal(a, ACT_SPAWN);
	assert_int_equal(after(RS_QUEUED, ok, 2, &a), RS_COMPLETED);
	assert_int_equal(a, ACT_RECORD);
	assert_int_equal(after(RS_QUEUED, bad, 2, &a), RS_FAILED);
	assert_int_equal(after(RS_QUEUED, noexec, 2, &a), RS_FAILED);
	assert_int_equal(a, ACT_RECORD);
}

/* A stop ends in the reason that started it, whatever the exit status and
 * whatever else arrives meanwhile. */
static void test_stop_verdicts(void **state)
{
	enum run_action a = ACT_NONE;
	const enum run_event t[] = { EV_CLAIM, EV_TIMEOUT, EV_CANCEL, EV_GRACE_EXPIRED, EV_EXIT_OK };
	const enum run_event c[] = { EV_CLAIM, EV_CANCEL, EV_TIMEOUT, EV_EXIT_FAIL };
	const enum run_event k[] = { EV_CLAIM, EV_CANCEL, EV_GRACE_EXPIRED };

	(void)state;
	assert_int_equal(after(RS_QUEUED, t, 2, &a), RS_STOPPING);
	assert_int_equal(a, ACT_TERM);
	assert_int_equal(after(RS_QUEUED, t, 3, &a), RS_STOPPING);
	assert_int_equal(a, ACT_NONE);
	assert_int_equal(after(RS_QUEUED, t, 4, &a), RS_KILLING);
	assert_int_equal(a, ACT_KILL);
	assert_int_equal(after(RS_QUEUED, t, 5, &a), RS_TIMED_OUT);
	assert_int_equal(a, ACT_RECORD);
	assert_int_equal(after(RS_QUEUED, c, 4, &a), RS_CANCELLED);
	assert_int_equal(after(RS_QUEUED, k, 3, &a), RS_KILLING);
}

static void test_queued(void **state)
{
	enum run_action a = ACT_NONE;
	const enum run_event cancel[] = { EV_CANCEL };
	const enum run_event timeout[] = { EV_TIMEOUT };
	const enum run_event lost[] = { EV_LOST };

	(void)state;
	/* A queued run has no processes: cancel records at once. */
	assert_int_equal(after(RS_QUEUED, cancel, 1, &a), RS_CANCELLED);
	assert_int_equal(a, ACT_RECORD);
	/* Its timeout counts from the start, not from the queue. */
	assert_int_equal(after(RS_QUEUED, timeout, 1, &a), RS_QUEUED);
	assert_int_equal(a, ACT_NONE);
	assert_int_equal(after(RS_QUEUED, lost, 1, &a), RS_LOST);
}

/* Every event in every state: final states never move, live states only
 * move along the documented edges, and run_step never returns an action
 * outside the enum. */
static void test_table_total(void **state)
{
	int s, e;

	(void)state;
	for (s = 0; s < RS__COUNT; s++) {
		for (e = 0; e < EV__COUNT; e++) {
			struct run_machine m;
			enum run_action a;

			run_machine_init(&m, (enum run_state)s);
			a = run_step(&m, (enum run_event)e);
			assert_true(a <= ACT_RECORD);
			assert_true(m.state < RS__COUNT);
			if (run_state_final((enum run_state)s)) {
				assert_int_equal(m.state, s);
				assert_int_equal(a, ACT_NONE);
			}
			if (e == EV_LOST && !run_state_final((enum run_state)s))
				assert_int_equal(m.state, RS_LOST);
			if (a == ACT_RECORD)
				assert_true(run_state_final(m.state));
			if (a == ACT_NONE)
				assert_int_equal(m.state, s);
		}
	}
	/* Past the end: ignored, not a crash. */
	{
		struct run_machine m;

		run_machine_init(&m, RS_RUNNING);
		assert_int_equal(run_step(&m, EV__COUNT), ACT_NONE);
		assert_int_equal(m.state, RS_RUNNING);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(run_state_name(RS_STOPPING), "RUNNING");
	assert_string_equal(run_state_name(RS_KILLING), "RUNNING");
	assert_string_equal(run_state_name(RS_TIMED_OUT), "TIMED_OUT");
	assert_int_equal(run_state_parse("LOST"), RS_LOST);
	assert_int_equal(run_state_parse("RUNNING"), RS_RUNNING);
	assert_int_equal(run_state_parse("STOPPING"), -1);
	assert_int_equal(run_state_parse("running"), -1);
	assert_string_equal(run_event_name(EV_GRACE_EXPIRED), "grace-expired");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_paths),
		cmocka_unit_test(test_stop_verdicts),
		cmocka_unit_test(test_queued),
		cmocka_unit_test(test_table_total),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
