/* Unit tests of runner/spawn.c with real processes: an exec failure comes
 * back as the step and errno, never as an exit status; the child starts
 * with only stdin, stdout and stderr, in a new session, with no core
 * dumps; started in a cgroup it is in it before its exec (clone3 sharing
 * our memory); where the kernel cannot start it there, it blocks until
 * released.  The cgroup cases need root and a writable cgroup2 mount. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "spawn.h"
#include "testutil.h"

/* Runs file with argv; returns the spawn_release result, *ws the wait
 * status, out what the child wrote to stdout. */
static const char *run_cgroup;	/* started in this cgroup, when set */

static int run(const char *file, char *const argv[], enum spawn_step *step, int *ws,
	       char *out, size_t outlen)
{
	static char *const envp[] = { "PATH=/usr/bin:/bin", NULL };
	struct spawn_req r = { 0 };
	struct spawn_child c;
	int p[2], ret;
	size_t got = 0;
	ssize_t n;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r.file = file;
	r.argv = argv;
	r.envp = envp;
	r.cwd = tu_dir;
	r.out_fd = p[1];
	r.err_fd = p[1];
	r.lim.nofile = 64;
	r.cgroup_dir = run_cgroup;
	assert_int_equal(spawn_start(&r, &c), 0);
	if (run_cgroup != NULL && !c.in_cgroup) {
		/* Only where clone3 cannot (valgrind has none): held, and
		 * moved as the supervisor moves it. */
		char procs[PATH_MAX + 16], pid[16];
		int fd;

		assert_non_null(getenv("FIELDRIG_UNDER_VALGRIND"));
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", run_cgroup);
		snprintf(pid, sizeof(pid), "%d", (int)c.pid);
		fd = open(procs, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, pid, strlen(pid)), (ssize_t)strlen(pid));
		close(fd);
	}
	close(p[1]);
	ret = spawn_release(&c, step);
	while (got + 1 < outlen && (n = read(p[0], out + got, outlen - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(c.pid, ws, 0), c.pid);
	return ret;
}

static void test_exec_errors(void **state)
{
	char path[256], out[256];
	char *argv[] = { path, NULL };
	enum spawn_step step = 0;
	int ws, fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/missing", tu_dir);
	assert_int_equal(run(path, argv, &step, &ws, out, sizeof(out)), -ENOENT);
	assert_int_equal(step, SPAWN_STEP_EXEC);

	/* Readable, not executable. */
	snprintf(path, sizeof(path), "%s/noexec.sh", tu_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(write(fd, "#!/bin/sh\nexit 0\n", 17) == 17);
	close(fd);
	chmod(path, 0644);
	assert_int_equal(run(path, argv, &step, &ws, out, sizeof(out)), -EACCES);
	assert_int_equal(step, SPAWN_STEP_EXEC);

	/* Executable, but no format the kernel knows. */
	snprintf(path, sizeof(path), "%s/garbage", tu_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	assert_true(write(fd, "\x7f\x45garbage", 9) == 9);
	close(fd);
	assert_int_equal(run(path, argv, &step, &ws, out, sizeof(out)), -ENOEXEC);

	/* The child's own chdir failure names its step. */
	{
		static char *const envp[] = { NULL };
		char *av[] = { "/bin/true", NULL };
		struct spawn_req r = { .file = "/bin/true", .argv = av, .envp = envp,
				       .cwd = "/nonexistent/dir", .out_fd = 1, .err_fd = 2 };
		struct spawn_child c;

		assert_int_equal(spawn_start(&r, &c), 0);
		assert_int_equal(spawn_release(&c, &step), -ENOENT);
		assert_int_equal(step, SPAWN_STEP_CHDIR);
		waitpid(c.pid, NULL, 0);
	}
}

/* Exit statuses 126 and 127 are a script's own business: no error. */
static void test_exit_126_127_are_not_exec_errors(void **state)
{
	char *a126[] = { "/bin/sh", "-c", "exit 126", NULL };
	char *a127[] = { "/bin/sh", "-c", "exit 127", NULL };
	enum spawn_step step = 0;
	char out[64];
	int ws;

	(void)state;
	assert_int_equal(run("/bin/sh", a126, &step, &ws, out, sizeof(out)), 0);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 126);
	assert_int_equal(run("/bin/sh", a127, &step, &ws, out, sizeof(out)), 0);
	assert_int_equal(WEXITSTATUS(ws), 127);
}

static void test_child_setup(void **state)
{
	/* Descriptors (the listing's own included), session, core limit,
	 * stdin, cwd and no_new_privs, all as the script would see them. */
	char *argv[] = { "/bin/sh", "-c",
		"ls /proc/self/fd | tr '\\n' ' '; echo;"
		"[ $(cut -d' ' -f6 /proc/self/stat) = $$ ] && echo session-leader;"
		"ulimit -c; ulimit -n; pwd; read x; echo stdin-eof=$?;"
		"grep NoNewPrivs /proc/self/status", NULL };
	enum spawn_step step = 0;
	char out[1024], want[512];
	int ws;

	(void)state;
	assert_int_equal(run("/bin/sh", argv, &step, &ws, out, sizeof(out)), 0);
	assert_int_equal(WEXITSTATUS(ws), 0);
	/* Valgrind keeps RLIMIT_NOFILE changes to itself (a virtual limit
	 * for its guest), so the exec'd shell sees the real one there. */
	snprintf(want, sizeof(want), "0 1 2 3 \nsession-leader\n0\n%s\n%s\nstdin-eof=1\nNoNewPrivs:\t1\n",
		 getenv("FIELDRIG_UNDER_VALGRIND") ? "VG" : "64", tu_dir);
	if (getenv("FIELDRIG_UNDER_VALGRIND")) {
		char *p = strstr(out, "0\n") + 2, *nl = strchr(p, '\n');

		memmove(p + 2, nl, strlen(nl) + 1);
		memcpy(p, "VG", 2);
	}
	assert_string_equal(out, want);
}

/* Where the kernel cannot start the child in its cgroup (here: the
 * directory is no cgroup), it is held and does nothing before it is
 * released: an aborted spawn never runs the program. */
static void test_abort_before_release(void **state)
{
	char path[256], *argv[] = { "/bin/sh", "-c", NULL, NULL }, cmd[300];
	static char *const envp[] = { NULL };
	struct spawn_req r = { 0 };
	struct spawn_child c;
	struct stat st;
	int ws;

	(void)state;
	snprintf(path, sizeof(path), "%s/ran", tu_dir);
	snprintf(cmd, sizeof(cmd), "touch %s", path);
	argv[2] = cmd;
	r.file = "/bin/sh";
	r.argv = argv;
	r.envp = envp;
	r.out_fd = 1;
	r.err_fd = 2;
	r.cgroup_dir = tu_dir;
	assert_int_equal(spawn_start(&r, &c), 0);
	assert_false(c.in_cgroup);
	spawn_abort(&c);
	assert_int_equal(waitpid(c.pid, &ws, 0), c.pid);
	assert_int_equal(WEXITSTATUS(ws), 127);
	assert_int_equal(stat(path, &st), -1);
}

static struct cgroup_run born_cg;	/* made by test_born_in_cgroup */
static bool born_cg_made;

/* Removes the test's cgroup whatever happened in the test (a failed
 * assertion leaves it in the middle), the children in it first. */
static int born_cg_teardown(void **state)
{
	(void)state;
	run_cgroup = NULL;
	if (born_cg_made) {
		cgroup_kill(&born_cg);
		cgroup_wait_empty(&born_cg, 5000);
		cgroup_remove(&born_cg);
		born_cg_made = false;
	}
	return 0;
}

/* Started in a cgroup: the child is in it from its first instruction, so
 * the script finds itself there; exec errors and exit statuses come back
 * as without one.  Skipped without root or a writable cgroup2 mount. */
static void test_born_in_cgroup(void **state)
{
	char name[64], out[PATH_MAX + 64], want[PATH_MAX + 8], err[512];
	char *cat[] = { "/bin/sh", "-c", "cat /proc/self/cgroup", NULL };
	char *exit127[] = { "/bin/sh", "-c", "exit 127", NULL };
	char *missing[] = { "./no-such-program", NULL };
	struct cgroup_limits lim = { 0 };
	struct cgroup_run *cg = &born_cg;
	enum spawn_step step = 0;
	int ws;

	(void)state;
	snprintf(name, sizeof(name), "test-spawn-%d", (int)getpid());
	if (cgroup_create(name, &lim, cg, err, sizeof(err)) < 0) {
		if (geteuid() != 0)
			skip();
		fail_msg("cgroup_create as root: %s", err);
	}
	born_cg_made = true;
	run_cgroup = cg->path;
	assert_int_equal(run("/bin/sh", cat, &step, &ws, out, sizeof(out)), 0);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	/* "0::/fieldrig/test-spawn-PID": the path below the mount. */
	snprintf(want, sizeof(want), "/%s\n", name);
	assert_non_null(strstr(out, "0::/"));
	assert_non_null(strstr(out, want));
	assert_int_equal(run("/bin/sh", exit127, &step, &ws, out, sizeof(out)), 0);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 127);
	assert_int_equal(run("./no-such-program", missing, &step, &ws, out, sizeof(out)), -ENOENT);
	assert_int_equal(step, SPAWN_STEP_EXEC);
	run_cgroup = NULL;
	assert_int_equal(cgroup_remove(cg), 0);
	born_cg_made = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_errors),
		cmocka_unit_test(test_exit_126_127_are_not_exec_errors),
		cmocka_unit_test(test_child_setup),
		cmocka_unit_test(test_abort_before_release),
		cmocka_unit_test_teardown(test_born_in_cgroup, born_cg_teardown),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
