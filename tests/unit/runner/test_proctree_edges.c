/* Unit tests of runner/proctree.c and the watchdog's sweep with real
 * processes: pids that do not exist or were reused, zombies, a command
 * name made to confuse /proc/PID/stat parsing ("a) b (c"), and the sweep
 * that kills every process carrying a run's marker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctree.h"
#include "watchdog.h"

static void test_pids_that_are_not_there(void **state)
{
	uint64_t st = 7;
	pid_t pid;
	int ws;

	(void)state;
	assert_int_equal(proc_start_time(999999999, &st), -ENOENT);
	assert_int_equal(proc_alive(0, 0), 0);
	assert_int_equal(proc_alive(-5, 0), 0);
	assert_int_equal(proc_alive(999999999, 0), 0);

	assert_int_equal(proc_start_time(getpid(), &st), 0);
	assert_true(st > 0);
	assert_int_equal(proc_alive(getpid(), 0), 1);
	assert_int_equal(proc_alive(getpid(), st), 1);
	/* Same pid, another start time: a reused pid is not the process. */
	assert_int_equal(proc_alive(getpid(), st + 1), 0);

	/* A zombie is not alive. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	for (int i = 0; i < 200; i++) {
		if (proc_alive(pid, 0) == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(proc_alive(pid, 0), 0);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
}

/* The command name may hold ") " and spaces: the fields after it are still
 * read from the last ')'. */
static void test_odd_command_name(void **state)
{
	uint64_t st = 0, mine = 0;
	int p[2], ws;
	pid_t pid;
	char c;

	(void)state;
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		prctl(PR_SET_NAME, "a) b (c", 0, 0, 0);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	assert_int_equal(proc_start_time(pid, &st), 0);
	assert_int_equal(proc_start_time(getpid(), &mine), 0);
	assert_true(st >= mine);
	assert_int_equal(proc_alive(pid, st), 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
}

/* Processes carrying the marker, in their own sessions (as escaped
 * daemons would be): counted, and the sweep kills them all. */
static pid_t marked(const char *marker)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		char env[128];
		char *envp[] = { env, NULL };
		char *argv[] = { "/bin/sleep", "30", NULL };

		setsid();
		snprintf(env, sizeof(env), "%s", marker);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	return pid;
}

/* proc_count_marked once it has reached want, or after 2 s (the
 * processes exec with the marker shortly after their fork). */
static int count_marked_soon(const char *marker, int want)
{
	int i, n = 0;

	for (i = 0; i < 200 && n < want; i++) {
		n = proc_count_marked(marker);
		if (n < want)
			usleep(10000);
	}
	return n;
}

static void test_sweep(void **state)
{
	char marker[64];
	pid_t a, b;
	int ws;

	(void)state;
	snprintf(marker, sizeof(marker), "%s=test-proctree-%d", PROC_MARK_VAR, (int)getpid());
	/* Nothing to do. */
	assert_int_equal(domain_kill_orphaned(NULL, NULL, 100), 0);
	assert_int_equal(domain_kill_orphaned("", marker, 100), 0);

	a = marked(marker);
	b = marked(marker);
	assert_int_equal(count_marked_soon(marker, 2), 2);
	/* A marker that is only a prefix of theirs finds nothing. */
	assert_int_equal(proc_count_marked(PROC_MARK_VAR "=test-proctree-"), 0);

	/* Signals sent, counted per sweep: a dying process may be met twice. */
	assert_true(domain_kill_orphaned(NULL, marker, 5000) >= 2);
	assert_int_equal(waitpid(a, &ws, 0), a);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	assert_int_equal(waitpid(b, &ws, 0), b);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	assert_int_equal(proc_count_marked(marker), 0);
}

/* The watchdog as a supervisor without the runner-watchdog helper beside
 * it starts one (this test binary: the forked copy runs it): a supervisor
 * that ends says 'D' and the marked processes live on; one that dies
 * (its end of the pipe closed without a word) takes them with it. */
static void test_watchdog_fallback(void **state)
{
	char marker[64];
	struct watchdog w;
	pid_t a, b;
	int ws;

	(void)state;
	snprintf(marker, sizeof(marker), "%s=test-watchdog-%d", PROC_MARK_VAR, (int)getpid());
	a = marked(marker);
	b = marked(marker);
	assert_int_equal(count_marked_soon(marker, 2), 2);

	/* A supervisor that ends normally. */
	assert_int_equal(watchdog_start(&w, NULL, marker), 0);
	assert_true(w.pid > 0 && w.fd >= 0);
	watchdog_done(&w);
	assert_int_equal(w.fd, -1);
	assert_int_equal(waitpid(w.pid, &ws, 0), w.pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	assert_int_equal(proc_count_marked(marker), 2);
	watchdog_done(&w);	/* twice: nothing to tell */

	/* A supervisor that dies: the pipe closes with nothing said. */
	assert_int_equal(watchdog_start(&w, NULL, marker), 0);
	close(w.fd);
	assert_int_equal(waitpid(a, &ws, 0), a);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	assert_int_equal(waitpid(b, &ws, 0), b);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	assert_int_equal(waitpid(w.pid, &ws, 0), w.pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	assert_int_equal(proc_count_marked(marker), 0);
}

/* The helper's command line: anything but what a supervisor passes is
 * refused with exit status 2. */
static void test_watchdog_args(void **state)
{
	char *bad_argc[] = { "runner-watchdog", WATCHDOG_ARGV1, "3", NULL };
	char *bad_flag[] = { "runner-watchdog", "--nope", "3", "", "", NULL };
	char *bad_fd[] = { "runner-watchdog", WATCHDOG_ARGV1, "3x", "", "", NULL };
	char *neg_fd[] = { "runner-watchdog", WATCHDOG_ARGV1, "-1", "", "", NULL };
	char *multi_fd[] = { "runner-watchdog", WATCHDOG_MULTI_ARGV1, "x", NULL };

	(void)state;
	assert_int_equal(watchdog_exec_main(3, bad_argc), 2);
	assert_int_equal(watchdog_exec_main(5, bad_flag), 2);
	assert_int_equal(watchdog_exec_main(5, bad_fd), 2);
	assert_int_equal(watchdog_exec_main(5, neg_fd), 2);
	assert_int_equal(watchdog_exec_main(3, multi_fd), 2);
}

/* The tree below a root: its descendants, not the root's siblings. */
static void test_signal_tree(void **state)
{
	int p[2], ws;
	pid_t root, other;
	char c;

	(void)state;
	other = fork();
	assert_true(other >= 0);
	if (other == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(pipe(p), 0);
	root = fork();
	assert_true(root >= 0);
	if (root == 0) {
		pid_t kid;

		close(p[0]);
		kid = fork();
		if (kid == 0) {
			pause();
			_exit(0);
		}
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		/* Exits 0 once its child died of SIGTERM. */
		_exit(waitpid(kid, &ws, 0) == kid && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGTERM ? 0 : 1);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	/* The root itself is skipped: only its child gets the signal. */
	assert_true(proc_signal_tree(root, &root, 1, NULL, SIGTERM) >= 1);
	assert_int_equal(waitpid(root, &ws, 0), root);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	/* The sibling was not touched. */
	assert_int_equal(proc_alive(other, 0), 1);
	kill(other, SIGKILL);
	assert_int_equal(waitpid(other, &ws, 0), other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pids_that_are_not_there),
		cmocka_unit_test(test_odd_command_name),
		cmocka_unit_test(test_sweep),
		cmocka_unit_test(test_watchdog_fallback),
		cmocka_unit_test(test_watchdog_args),
		cmocka_unit_test(test_signal_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
