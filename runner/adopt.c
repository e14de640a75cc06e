/* Adoption of orphaned runs; see adopt.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "adopt.h"
#include "run.h"
#include "cgroup.h"
#include "lifecycle.h"
#include "proctree.h"
#include "store.h"
#include "watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "covflush.h"

#define ADOPT_POLL_MS 100

static int64_t timeout_ms_of(const struct run_rec *r)
{
	json_t *j = r->request ? json_loads(r->request, 0, NULL) : NULL;
	int64_t t = j ? (int64_t)json_integer_value(json_object_get(j, "timeout_ms")) : 0;

	json_decref(j);
	return t;
}

struct adopted {
	const struct run_rec *r;
	struct cgroup_run cg;
	bool have_cg;
	char marker[96];
};

static bool alive(const struct adopted *a)
{
	if (a->have_cg && cgroup_populated(&a->cg) == 1)
		return true;
	return (a->r->pid > 0 && proc_alive((pid_t)a->r->pid, a->r->pid_start)) ||
	       (a->r->marker[0] && proc_count_marked(a->marker) > 0);
}

static void signal_all(const struct adopted *a, int sig)
{
	if (a->have_cg)
		cgroup_signal(&a->cg, sig);
	if (a->r->pid > 0 && proc_alive((pid_t)a->r->pid, a->r->pid_start)) {
		kill((pid_t)a->r->pid, sig);
		if (sig == SIGTERM)
			kill((pid_t)a->r->pid, SIGCONT);
		proc_signal_tree((pid_t)a->r->pid, NULL, 0, a->r->marker[0] ? a->marker : NULL, sig);
	} else if (a->r->marker[0])
		proc_signal_tree(0, NULL, 0, a->marker, sig);
}

/* The adopting supervisor's life, in a freshly exec'd runner (no SQLite
 * state carried across the fork): never returns. */
void run_adopt_main(const struct settings *s, int64_t id, int ready_fd)
{
	struct run_rec rec, *r = &rec;
	struct adopted a = { .r = r };
	struct store *st = NULL;
	struct run_machine m;
	struct run_verdict v = { .cpu_ms = -1, .peak_rss_kb = -1 };
	struct watchdog wd = { .pid = -1, .fd = -1 };
	char err[1024], why[1024], adopted_at[64];
	int64_t deadline = 0, grace_at = 0, tmo;
	uint64_t start = 0;
	sigset_t set;
	int sigfd, evfd = -1, fin;
	time_t now = time(NULL);
	struct tm tm;

	strftime(adopted_at, sizeof(adopted_at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (store_open(s->state_dir, &st, err, sizeof(err)) < 0 ||
	    runrec_get(st, id, &rec, err, sizeof(err)) < 0) {
		fprintf(stderr, "runner[%d]: adopt run %lld: %s\n", (int)getpid(), (long long)id, err);
		_exit(1);
	}
	if (run_state_final(rec.state)) {
		fprintf(stderr, "runner[%d]: adopt run %lld: already %s\n", (int)getpid(), (long long)id,
			run_state_name(rec.state));
		_exit(1);
	}
	snprintf(a.marker, sizeof(a.marker), "%s=%s", PROC_MARK_VAR, r->marker);
	if (r->cgroup) {
		cgroup_attach(r->cgroup, &a.cg);
		a.have_cg = cgroup_populated(&a.cg) >= 0;
	}
	tmo = timeout_ms_of(r);
	proc_start_time(getpid(), &start);
	if (runrec_set_supervisor(st, r->id, getpid(), start) < 0) {
		fprintf(stderr, "runner[%d]: adopt run %lld: cannot register\n", (int)getpid(),
			(long long)r->id);
		_exit(1);
	}
	/* Dying adopter, dying run: as for the first supervisor. */
	if (watchdog_start(&wd, a.have_cg ? a.cg.path : NULL, a.marker) < 0)
		wd.pid = -1;
	if (write(ready_fd, "A", 1) != 1) {
		/* the caller went away: carry on all the same */
	}
	close(ready_fd);
	if (a.have_cg)
		evfd = cgroup_events_fd(&a.cg);
	if (tmo > 0 && r->started_at > 0)
		deadline = r->started_at + tmo;
	run_machine_init(&m, RS_RUNNING);
	while (!run_state_final(m.state)) {
		struct pollfd pf[2] = { { .fd = sigfd, .events = POLLIN },
					{ .fd = evfd, .events = POLLPRI } };
		struct signalfd_siginfo si;
		struct run_rec cur;
		int64_t t = runrec_now_ms();
		bool cancel = false;

		if (!alive(&a)) {
			/* RUNNING: ended on its own, status unknown;
			 * STOPPING/KILLING: the stop's verdict. */
			run_step(&m, EV_EXIT_FAIL);
			break;
		}
		if (m.state == RS_RUNNING && deadline && t >= deadline) {
			run_step(&m, EV_TIMEOUT);
			signal_all(&a, SIGTERM);
			grace_at = t + (int64_t)(s->kill_grace_ns / 1000000);
		}
		if (runrec_get(st, r->id, &cur, NULL, 0) == 0) {
			cancel = cur.cancel_requested;
			run_rec_free(&cur);
		}
		if (poll(pf, evfd >= 0 ? 2 : 1, ADOPT_POLL_MS) > 0 && (pf[0].revents & POLLIN)) {
			while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					while (waitpid(-1, NULL, WNOHANG) > 0)
						;
				else
					cancel = true;
			}
		}
		if (cancel && m.state == RS_RUNNING) {
			run_step(&m, EV_CANCEL);
			signal_all(&a, SIGTERM);
			grace_at = runrec_now_ms() + (int64_t)(s->kill_grace_ns / 1000000);
		}
		if ((m.state == RS_STOPPING) && runrec_now_ms() >= grace_at) {
			run_step(&m, EV_GRACE_EXPIRED);
			if (a.have_cg)
				cgroup_kill(&a.cg);
			signal_all(&a, SIGKILL);
		}
	}
	if (m.state == RS_FAILED)
		snprintf(why, sizeof(why), "adopted at %s by pid %d (runner recover, "
			 "RUNNER_RECOVER_POLICY=adopt) after supervisor %lld died; its processes "
			 "ended on their own; exit status unknown (the adopting supervisor is not "
			 "their parent); output after the first supervisor died was not captured",
			 adopted_at, (int)getpid(), (long long)r->supervisor_pid);
	else
		snprintf(why, sizeof(why), "%s by the adopting supervisor (pid %d, adopted at %s "
			 "after supervisor %lld died); output after the first supervisor died was "
			 "not captured", m.state == RS_TIMED_OUT ? "timed out" : "cancelled",
			 (int)getpid(), adopted_at, (long long)r->supervisor_pid);
	v.state = m.state;
	v.error = why;
	if (a.have_cg) {
		int64_t cpu_us, peak;

		cgroup_stats(&a.cg, &cpu_us, &peak);
		v.cpu_ms = cpu_us >= 0 ? cpu_us / 1000 : -1;
		v.peak_rss_kb = peak >= 0 ? peak / 1024 : -1;
		cgroup_wait_empty(&a.cg, 5000);
		cgroup_remove(&a.cg);
	}
	fin = runrec_finish(st, r->id, &v);
	if (fin < 0)
		fprintf(stderr, "runner[%d]: adopt run %lld: cannot record %s: %s\n", (int)getpid(),
			(long long)r->id, run_state_name(v.state), strerror(-fin));
	if (wd.pid > 0) {
		watchdog_done(&wd);
		waitpid(wd.pid, NULL, 0);
	}
	run_rec_free(&rec);
	store_close(st);
	cov_flush();
	_exit(0);
}

int run_adopt(const struct settings *s, const struct run_rec *r, char *err, size_t errlen)
{
	/* The grace goes by the environment (it beats an env-file the new
	 * process would not see). */
	char grace[64], *env[] = { grace, NULL };
	int pid = -1, rc;

	snprintf(grace, sizeof(grace), "RUNNER_KILL_GRACE=%llums",
		 (unsigned long long)(s->kill_grace_ns / 1000000));
	rc = run_daemon_exec(s, "adopt-run", r->id, env, err, errlen);
	if (rc < 0) {
		if (rc == -ECHILD)
			snprintf(err, errlen, "the adopting supervisor of run %lld did not start (see %s/supervisor.log)",
				 (long long)r->id, s->state_dir);
		return rc;
	}
	/* Its pid is in the store now. */
	{
		struct store *st;
		struct run_rec cur;

		if (store_open(s->state_dir, &st, err, errlen) == 0) {
			if (runrec_get(st, r->id, &cur, NULL, 0) == 0) {
				pid = (int)cur.supervisor_pid;
				run_rec_free(&cur);
			}
			store_close(st);
		}
	}
	return pid;
}
