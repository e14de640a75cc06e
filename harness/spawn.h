/* Running commands for a scenario: each in a process group of its own, its
 * output captured, under a deadline, and killed (the whole group) when the
 * deadline passes or fieldrig is interrupted. */
#ifndef FIELDRIG_SPAWN_H
#define FIELDRIG_SPAWN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Set by SIGINT/SIGTERM: stop what is running and tear down.  The only
 * mutable global of the harness. */
extern volatile sig_atomic_t fr_stop;

/* Monotonic time in nanoseconds. */
uint64_t fr_now_ns(void);

struct proc_result {
	char *out, *err;	/* captured, NUL-terminated (at most cap bytes kept) */
	size_t out_len, err_len;
	int exit_code;		/* -1 when killed by a signal */
	int signal;		/* the signal that ended it, or 0 */
	bool timed_out;		/* the deadline passed (or fr_stop) and it was killed */
	int spawn_errno;	/* exec failed with this errno (then exit_code 127) */
	uint64_t ns;		/* wall time */
};

/* Runs ARGV (ARGV[0] a path, or a name looked up in PATH) with ENVP in CWD,
 * until it ends or DEADLINE (monotonic ns, 0: none) passes; then SIGKILLs
 * its process group.  Returns 0 once it has ended and been reaped (whatever
 * its status), -errno when it could not be started. */
int spawn_run(char *const argv[], char *const envp[], const char *cwd, uint64_t deadline,
	      struct proc_result *res);
void proc_result_free(struct proc_result *res);

/* Starts ARGV in the background, in a process group of its own; its stdout
 * (and stderr when MERGE) go to *OUT_FD when OUT_FD is not NULL, else to
 * /dev/null.  Returns 0 with *PID, or -errno. */
int spawn_bg(char *const argv[], char *const envp[], const char *cwd, pid_t *pid, int *out_fd,
	     bool merge, const char *log_path);

/* Waits for PID (a child) until DEADLINE; 0 and its wait status in *STATUS,
 * -ETIMEDOUT, or -errno. */
int wait_child(pid_t pid, uint64_t deadline, int *status);

/* Sends SIG to every process whose environment holds NAME=VALUE (but not to
 * this process): how a world's processes are found after they left its
 * process groups (setsid, daemons).  Returns how many were signalled. */
int sweep_env(const char *name, const char *value, int sig);

/* Sweeps with SIGKILL until nothing is left or DEADLINE; 0 or -ETIMEDOUT. */
int sweep_env_kill(const char *name, const char *value, uint64_t deadline);

#endif
