/* Starting a run's process: clone it into its kill domain sharing the
 * supervisor's memory until its exec (as vfork and posix_spawn do), set it
 * up, exec.  Where the kernel cannot start it in its cgroup, a fork, held
 * until the supervisor has moved it there.
 *
 * As libuv's uv_spawn does, a failure in the child after fork (chdir,
 * setrlimit, setuid, the exec itself) comes back to the parent over a
 * close-on-exec pipe as the step and its errno: EOF on that pipe means the
 * exec happened, so "cannot exec: EACCES" is never confused with a script
 * that exited 126 or 127.
 *
 * The child: new session (setsid), stdin from /dev/null, stdout and stderr
 * to the given pipes, no other descriptors (close_range), the given
 * environment only, the given working directory, resource limits, an
 * optional drop to another user with supplementary groups cleared, and
 * always PR_SET_NO_NEW_PRIVS (a user script has no business gaining
 * privileges through setuid binaries). */
#ifndef RUNNER_SPAWN_H
#define RUNNER_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spawn_limits {
	uint64_t cpu_s;		/* RLIMIT_CPU soft (SIGXCPU); hard one second more */
	uint64_t data;		/* RLIMIT_DATA bytes: RLIMIT_AS breaks Node/V8 */
	uint64_t nofile;	/* RLIMIT_NOFILE */
	/* With nofile 0: the soft NOFILE limit the child gets back (serve
	 * raised its own for its many pipes; a script inherits the
	 * original), 0: as it is. */
	uint64_t nofile_soft;
	uint64_t nproc;		/* RLIMIT_NPROC (per user; root is exempt) */
	uint64_t fsize;		/* RLIMIT_FSIZE bytes */
	/* RLIMIT_CORE is always 0: a core of a user script is a leak. */
};

struct spawn_req {
	const char *file;	/* what to execve: absolute or relative to cwd */
	char *const *argv;
	char *const *envp;
	const char *cwd;	/* entered before any privilege drop */
	int out_fd, err_fd;	/* become stdout and stderr */
	struct spawn_limits lim;
	bool drop;		/* change to uid/gid */
	uid_t uid;
	gid_t gid;
	bool new_netns;		/* unshare(CLONE_NEWNET): no network */
	/* Opened (relative to cwd, before any privilege drop) onto fd 3 and
	 * left open across exec, so argv can name it /dev/fd/3: a dropped
	 * user may not be able to traverse the path to the staged script,
	 * and Python opens its script by absolute path. */
	const char *pass_file;
	/* A cgroup v2 directory to start the child in (clone3 with
	 * CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK): it is born there, so
	 * it needs no hold and the supervisor no migration (a write to
	 * cgroup.procs, which waits for an RCU grace period), and it copies
	 * none of the supervisor's page tables.  Where clone3 cannot do it
	 * (before Linux 5.7, valgrind, a refusal, not x86_64), a plain fork:
	 * the child is then held for the caller to move
	 * (spawn_child.in_cgroup false).  NULL: vfork, nothing held. */
	const char *cgroup_dir;
};

/* Steps that can fail in the child, as reported. */
enum spawn_step {
	SPAWN_STEP_SETUP = 1,	/* setsid, descriptors, signals */
	SPAWN_STEP_CHDIR,
	SPAWN_STEP_OPEN_SCRIPT,
	SPAWN_STEP_RLIMIT,
	SPAWN_STEP_NETNS,
	SPAWN_STEP_SETGROUPS,
	SPAWN_STEP_SETGID,
	SPAWN_STEP_SETUID,
	SPAWN_STEP_NO_NEW_PRIVS,
	SPAWN_STEP_EXEC,
};

struct spawn_child {
	pid_t pid;
	int go_fd;		/* write end: releases the child (-1: not held) */
	int err_fd;		/* read end of the exec-error pipe */
	bool in_cgroup;		/* born in req->cgroup_dir, not held */
};

/* Starts the child.  Born in req->cgroup_dir, or with no cgroup_dir, it
 * has exec'd or failed by the time this returns (the supervisor waits, as
 * for vfork); otherwise it sets up and then blocks until spawn_release().
 * Returns 0 or -errno (of clone, fork or pipe creation). */
int spawn_start(const struct spawn_req *r, struct spawn_child *c);

/* Lets the child go on to exec and waits for the outcome.  Returns 0 when
 * the exec happened, or -errno of the failed step with *step set (the
 * child has then exited; the caller still reaps it).  Closing go_fd
 * without releasing (spawn_abort) makes the child exit. */
int spawn_release(struct spawn_child *c, enum spawn_step *step);

/* Gives up on a held child: it exits without exec.  The caller reaps. */
void spawn_abort(struct spawn_child *c);

const char *spawn_step_name(enum spawn_step step);

#endif
