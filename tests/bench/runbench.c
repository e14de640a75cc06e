/* Workload driver of ci/bench-runner: built, never installed, not a test.
 *
 *   runbench spawn N PROG [ARG...]
 *       N sequential posix_spawn + waitpid of PROG (stdout on /dev/null,
 *       stderr inherited); each must exit 0.  Prints
 *       "seconds S maxrss_kb K" (K: the largest child's peak RSS).
 *   runbench floor N SCRIPT DB [CGROUP_PARENT]
 *       The floor of the work a runner does per run, in one process with
 *       nothing else: INSERT the run into SQLite (WAL, synchronous=NORMAL,
 *       as the runner's store; one connection opened before the clock)
 *       and commit; mkdir a cgroup under CGROUP_PARENT (when given); start
 *       the script in it as the runner does (clone3 CLONE_INTO_CGROUP,
 *       sharing our memory until the exec) or posix_spawn it;
 *       wait; rmdir the cgroup; UPDATE the run's verdict and commit.
 *       Added to the start of a process (`runbench spawn N runner
 *       --version`), it is what no runner built as one process per run
 *       can go below.  Prints "seconds S".
 *   runbench capture SCRIPT ARG OUT
 *       The floor of capturing a script's output through a pipe: one
 *       posix_spawn of SCRIPT ARG with its stdout on a pipe (1 MiB, as the
 *       runner's), read in 256 KiB pieces (the runner's read size) and
 *       written to OUT until EOF, then waitpid.  No supervisor process to
 *       start, no store, no rows, no timestamps: what any capture through a
 *       pipe into a file costs on this machine.  Prints "seconds S bytes B".
 *   runbench cancel RUNNER_CMD... -- RUN_ID
 *       Measures a cancel.  Before the clock starts, every process of the
 *       run is collected: the pids in its cgroup (RUNBENCH_CGROUP) or,
 *       without one, every process whose environment carries
 *       RUNBENCH_MARK, and a pidfd is opened on each.  Then RUNNER_CMD
 *       cancel RUN_ID is spawned (t0) and the pidfds are polled until every
 *       one has exited (a zombie counts as gone: it runs no code and holds
 *       no resources but its pid) and the cancel command has returned.
 *       Prints "procs P kill_ms A cancel_ms B": A = t0 to the last process
 *       gone, B = t0 to the cancel command's exit.  With RUNBENCH_EXPECT=N
 *       the collection is repeated (up to a second) until N are found.
 *       With RUNBENCH_DIRECT=1 the floor of any cancel instead: at t0 the
 *       bench kills the collected processes itself, from a running process
 *       that already knows them -- "1" into the cgroup's cgroup.kill, or,
 *       without a cgroup, SIGKILL to each pid -- so A is what the kernel
 *       needs to end those processes on this machine, with no runner, no
 *       process start, no store and no discovery.  The cancel command runs
 *       after they are gone, off the clock, and may find the run ended
 *       already (exit 1); B = A. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sched.h>
#include "clone3vfork.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

extern char **environ;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "runbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int cmd_spawn(int argc, char **argv)
{
	long n = atol(argv[0]), i;
	struct rusage ru;
	long maxrss = 0;
	double t0;
	pid_t p;
	int ws;

	if (n <= 0 || argc < 2) {
		fprintf(stderr, "usage: runbench spawn N PROG [ARG...]\n");
		return 2;
	}
	/* The children's stdout goes to /dev/null; ours carries the result. */
	posix_spawn_file_actions_t fa;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		errno = posix_spawn(&p, argv[1], &fa, NULL, argv + 1, environ);
		if (errno)
			die(argv[1]);
		if (wait4(p, &ws, 0, &ru) != p)
			die("wait4");
		if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
			fprintf(stderr, "runbench: %s: run %ld ended with status 0x%x\n", argv[1], i, ws);
			return 1;
		}
		if (ru.ru_maxrss > maxrss)
			maxrss = ru.ru_maxrss;
	}
	printf("seconds %.6f maxrss_kb %ld\n", now_s() - t0, maxrss);
	return 0;
}

static void db_exec(sqlite3 *db, const char *sql)
{
	char *e = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &e) != SQLITE_OK) {
		fprintf(stderr, "runbench floor: %s: %s\n", sql, e ? e : "?");
		exit(2);
	}
}

static int cmd_floor(int argc, char **argv)
{
	long n = argc >= 3 ? atol(argv[0]) : 0, i;
	const char *cgp = argc >= 4 && argv[3][0] ? argv[3] : NULL;
	char *sargv[] = { argv[1], NULL };
	sqlite3_stmt *ins, *upd;
	sqlite3 *db;
	double t0;
	pid_t p;
	int ws;

	if (n <= 0) {
		fprintf(stderr, "usage: runbench floor N SCRIPT DB [CGROUP_PARENT]\n");
		return 2;
	}
	if (sqlite3_open(argv[2], &db) != SQLITE_OK)
		die(argv[2]);
	db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		"CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, script TEXT, status TEXT,"
		" exit_code INTEGER, created_at INTEGER, ended_at INTEGER)");
	if (sqlite3_prepare_v2(db, "INSERT INTO runs (script, status, created_at) VALUES (?, 'RUNNING', ?)",
			       -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE runs SET status = ?, exit_code = ?, ended_at = ? WHERE id = ?",
			       -1, &upd, NULL) != SQLITE_OK)
		die("prepare");
	t0 = now_s();
	for (i = 0; i < n; i++) {
		char cg[4096];
		sqlite3_int64 id;
		volatile int fd = -1;	/* kept across the clone, which returns twice */

		sqlite3_bind_text(ins, 1, argv[1], -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)time(NULL));
		if (sqlite3_step(ins) != SQLITE_DONE)
			die("insert");
		sqlite3_reset(ins);
		id = sqlite3_last_insert_rowid(db);
		if (cgp) {
			struct clone_args ca;

			snprintf(cg, sizeof(cg), "%s/floor-%ld", cgp, i);
			if (mkdir(cg, 0755) < 0)
				die(cg);
			fd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0)
				die(cg);
			memset(&ca, 0, sizeof(ca));
			ca.flags = CLONE_INTO_CGROUP;
			ca.exit_signal = SIGCHLD;
			ca.cgroup = (uint64_t)fd;
#ifdef FR_HAVE_CLONE3_VFORK
			/* As the runner starts its child: sharing our memory
			 * until the exec, born in the cgroup. */
			ca.flags |= CLONE_VM | CLONE_VFORK;
			p = (pid_t)fr_clone3_vfork(&ca, sizeof(ca));
			if (p < 0) {
				errno = -p;
				p = -1;
			}
#else
			p = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
#endif
			if (p == 0) {
				int dn = open("/dev/null", O_WRONLY);

				dup2(dn, 1);
				execve(argv[1], sargv, environ);
				_exit(127);
			}
			if (p < 0)
				die("clone3");
		} else {
			posix_spawn_file_actions_t fa;

			posix_spawn_file_actions_init(&fa);
			posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
			errno = posix_spawn(&p, argv[1], &fa, NULL, sargv, environ);
			posix_spawn_file_actions_destroy(&fa);
			if (errno)
				die(argv[1]);
		}
		if (waitpid(p, &ws, 0) != p)
			die("waitpid");
		if (fd >= 0) {
			close(fd);
			if (rmdir(cg) < 0)
				die(cg);
		}
		if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
			fprintf(stderr, "runbench floor: %s: run %ld ended with status 0x%x\n", argv[1], i, ws);
			return 1;
		}
		sqlite3_bind_text(upd, 1, "COMPLETED", -1, SQLITE_STATIC);
		sqlite3_bind_int(upd, 2, WEXITSTATUS(ws));
		sqlite3_bind_int64(upd, 3, (sqlite3_int64)time(NULL));
		sqlite3_bind_int64(upd, 4, id);
		if (sqlite3_step(upd) != SQLITE_DONE)
			die("update");
		sqlite3_reset(upd);
	}
	printf("seconds %.6f\n", now_s() - t0);
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	sqlite3_close(db);
	return 0;
}

/* Whether /proc/PID/environ holds the entry mark. */
static int has_mark(pid_t pid, const char *mark)
{
	char path[64], buf[65536];
	size_t ml = strlen(mark), off = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	while (n > 0 && off < (size_t)n) {
		size_t el = strnlen(buf + off, (size_t)n - off);

		if (el == ml && memcmp(buf + off, mark, ml) == 0)
			return 1;
		off += el + 1;
	}
	return 0;
}

static int collect(pid_t *pids, int max)
{
	const char *cg = getenv("RUNBENCH_CGROUP"), *mark = getenv("RUNBENCH_MARK");
	int n = 0;

	if (cg && cg[0]) {
		char path[4096];
		FILE *f;
		int pid;

		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		f = fopen(path, "re");
		if (f == NULL)
			die(path);
		while (n < max && fscanf(f, "%d", &pid) == 1)
			pids[n++] = pid;
		fclose(f);
	} else if (mark && mark[0]) {
		DIR *d = opendir("/proc");
		struct dirent *de;

		if (d == NULL)
			die("/proc");
		while (n < max && (de = readdir(d)) != NULL) {
			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			if (has_mark(atoi(de->d_name), mark))
				pids[n++] = atoi(de->d_name);
		}
		closedir(d);
	} else {
		fprintf(stderr, "runbench cancel: set RUNBENCH_CGROUP or RUNBENCH_MARK\n");
		exit(2);
	}
	return n;
}

/* RUNBENCH_DIRECT: the kill itself, nothing around it. */
static void direct_kill(const pid_t *pids, int n)
{
	const char *cg = getenv("RUNBENCH_CGROUP");
	int i;

	if (cg && cg[0]) {
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.kill", cg);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "1", 1) != 1)
			die(path);
		close(fd);
		return;
	}
	for (i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
}

static int cmd_cancel(int argc, char **argv)
{
	pid_t pids[4096], p;
	struct pollfd *pf;
	char *cargv[64];
	int n, i, k = 0, left, ws, ca = 0;
	double t0, t_kill = -1, t_cancel = -1;
	bool direct;

	for (i = 0; i < argc && strcmp(argv[i], "--") != 0 && ca < 60; i++)
		cargv[ca++] = argv[i];
	if (i + 2 != argc) {
		fprintf(stderr, "usage: runbench cancel RUNNER_CMD... -- RUN_ID\n");
		return 2;
	}
	cargv[ca++] = "cancel";
	cargv[ca++] = argv[i + 1];
	cargv[ca] = NULL;
	/* A process caught in the middle of an exec (setsid -> sleep) can
	 * show no environment for an instant: look again, briefly, until
	 * RUNBENCH_EXPECT processes are found. */
	{
		const char *e = getenv("RUNBENCH_EXPECT");
		int want = e ? atoi(e) : 0, tries;

		for (tries = 0; (n = collect(pids, 4096)) < want && tries < 100; tries++)
			usleep(10000);
	}
	pf = calloc((size_t)n + 1, sizeof(*pf));
	if (pf == NULL)
		die("calloc");
	for (i = 0; i < n; i++) {
		int fd = (int)syscall(SYS_pidfd_open, pids[i], 0);

		if (fd >= 0) {
			pf[k].fd = fd;
			pf[k++].events = POLLIN;
		}
	}
	left = k;
	direct = getenv("RUNBENCH_DIRECT") && strcmp(getenv("RUNBENCH_DIRECT"), "1") == 0;
	t0 = now_s();
	if (direct) {
		direct_kill(pids, n);
		pf[k].fd = -1;
		t_cancel = 0;	/* set once they are gone */
	} else {
		errno = posix_spawn(&p, cargv[0], NULL, NULL, cargv, environ);
		if (errno)
			die(cargv[0]);
		pf[k].fd = (int)syscall(SYS_pidfd_open, p, 0);
		pf[k].events = POLLIN;
		if (pf[k].fd < 0)
			die("pidfd_open");
	}
	while (left > 0 || t_cancel < 0) {
		int r = poll(pf, (nfds_t)k + 1, 5000);

		if (r < 0 && errno != EINTR)
			die("poll");
		if (r == 0) {
			fprintf(stderr, "runbench cancel: %d of %d processes alive, cancel %s, after 5 s of nothing\n",
				left, k, t_cancel < 0 ? "still running" : "returned");
			return 1;
		}
		for (i = 0; i < k; i++) {
			if (pf[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				close(pf[i].fd);
				pf[i].fd = -1;
				if (--left == 0)
					t_kill = now_s();
			}
		}
		if (t_cancel < 0 && (pf[k].revents & POLLIN) && waitpid(p, &ws, 0) == p) {
			t_cancel = now_s();
			close(pf[k].fd);
			pf[k].fd = -1;
			if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
				fprintf(stderr, "runbench cancel: %s cancel ended with status 0x%x\n",
					cargv[0], ws);
				return 1;
			}
		}
	}
	if (k == 0)
		t_kill = t0;
	if (direct) {
		/* Off the clock: the supervisor has seen its script killed
		 * and records FAILED ("had already ended", exit 1), unless the
		 * cancel comes first. */
		t_cancel = t_kill;
		errno = posix_spawn(&p, cargv[0], NULL, NULL, cargv, environ);
		if (errno)
			die(cargv[0]);
		if (waitpid(p, &ws, 0) != p || !WIFEXITED(ws) || WEXITSTATUS(ws) > 1) {
			fprintf(stderr, "runbench cancel: %s cancel ended with status 0x%x\n", cargv[0], ws);
			return 1;
		}
	}
	printf("procs %d kill_ms %.3f cancel_ms %.3f\n", k, (t_kill - t0) * 1e3, (t_cancel - t0) * 1e3);
	free(pf);
	return 0;
}

static int cmd_capture(int argc, char **argv)
{
	char *sargv[] = { argv[0], argv[1], NULL };
	size_t cap = 256u << 10;
	char *buf = malloc(cap);
	posix_spawn_file_actions_t fa;
	long long total = 0;
	double t0;
	int p[2], out, ws;
	ssize_t n;
	pid_t pid;

	if (argc != 3 || buf == NULL) {
		fprintf(stderr, "usage: runbench capture SCRIPT ARG OUT\n");
		return 2;
	}
	out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		die(argv[2]);
	t0 = now_s();
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe2");
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	errno = posix_spawn(&pid, argv[0], &fa, NULL, sargv, environ);
	if (errno)
		die(argv[0]);
	close(p[1]);
	while ((n = read(p[0], buf, cap)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));

			if (w < 0)
				die(argv[2]);
			done += w;
		}
		total += n;
	}
	if (waitpid(pid, &ws, 0) != pid)
		die("waitpid");
	if (close(out) < 0)
		die(argv[2]);
	t0 = now_s() - t0;
	close(p[0]);
	free(buf);
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		fprintf(stderr, "runbench capture: %s ended with status 0x%x\n", argv[0], ws);
		return 1;
	}
	printf("seconds %.6f bytes %lld\n", t0, total);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && strcmp(argv[1], "spawn") == 0)
		return cmd_spawn(argc - 2, argv + 2);
	if (argc >= 3 && strcmp(argv[1], "floor") == 0)
		return cmd_floor(argc - 2, argv + 2);
	if (argc >= 3 && strcmp(argv[1], "cancel") == 0)
		return cmd_cancel(argc - 2, argv + 2);
	if (argc >= 3 && strcmp(argv[1], "capture") == 0)
		return cmd_capture(argc - 2, argv + 2);
	fprintf(stderr, "usage: runbench spawn N PROG [ARG...] | floor N SCRIPT DB [CGROUP_PARENT] |"
		" cancel RUNNER_CMD... -- RUN_ID | capture SCRIPT ARG OUT\n");
	return 2;
}
