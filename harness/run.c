/* Running scenarios (see run.h). */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "steps.h"
#include "covflush.h"

/* Teardown may take this long beyond a scenario's own limit before its
 * child is killed and the world reaped from outside. */
#define TEARDOWN_SLACK_NS (45ull * 1000000000ull)

static bool in_path_of(const char *path, const char *name, char *out, size_t outlen);

/* In the PATH scenarios run with. */
static bool in_world_path(const char *name)
{
	return in_path_of(world_path(), name, NULL, 0);
}

static bool in_path(const char *name, char *out, size_t outlen)
{
	return in_path_of(getenv("PATH"), name, out, outlen);
}

static bool in_path_of(const char *path, const char *name, char *out, size_t outlen)
{
	char buf[4096], *save, *dir;

	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char cand[PATH_MAX];

		snprintf(cand, sizeof(cand), "%s/%s", dir, name);
		if (access(cand, X_OK) == 0) {
			if (out)
				snprintf(out, outlen, "%s", cand);
			return true;
		}
	}
	return false;
}

static int find_tool(const char *envname, const char *rel, const char *name, char *out, size_t outlen)
{
	const char *e = getenv(envname);
	char self[PATH_MAX], cand[PATH_MAX];
	ssize_t n;

	if (e && *e) {
		if (!realpath(e, out))
			return -errno;
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(cand, sizeof(cand), "%s/%s", dirname(self), rel);
		if (access(cand, X_OK) == 0 && realpath(cand, out))
			return 0;
	}
	if (in_path(name, out, outlen))
		return 0;
	return -ENOENT;
}

int tools_find(struct tools *t, char *err, size_t errlen)
{
	ssize_t n;

	memset(t, 0, sizeof(*t));
	if (find_tool("FIELDRIG_RUNNER", "../runner/runner", "runner", t->runner, sizeof(t->runner)) < 0) {
		snprintf(err, errlen, "cannot find runner: set FIELDRIG_RUNNER, or build it next to fieldrig, or put it in PATH");
		return -ENOENT;
	}
	if (find_tool("FIELDRIG_FAULTFS", "../faultfs/faultfs", "faultfs", t->faultfs, sizeof(t->faultfs)) < 0)
		t->faultfs[0] = '\0';	/* only scenarios with mounts need it */
	if (!in_path("fusermount3", t->fusermount, sizeof(t->fusermount)))
		snprintf(t->fusermount, sizeof(t->fusermount), "fusermount3");
	n = readlink("/proc/self/exe", t->self, sizeof(t->self) - 1);
	if (n > 0)
		t->self[n] = '\0';
	return 0;
}

char *requirements_unmet(const struct scenario *sc, const struct tools *t)
{
	char *why = NULL;
	bool need_fuse = sc->world && sc->world->mounts_count > 0;

	for (unsigned i = 0; i < sc->requires_count; i++) {
		switch (sc->requires[i]) {
		case SC_REQ_FUSE:
			need_fuse = true;
			break;
		case SC_REQ_ROOT:
			if (geteuid() != 0 && asprintf(&why, "needs root") < 0)
				return NULL;
			break;
		case SC_REQ_CGROUP2: {
			FILE *f = fopen("/proc/self/mounts", "re");
			char line[4096];
			bool found = false;

			while (f && fgets(line, sizeof(line), f))
				if (strstr(line, " cgroup2 "))
					found = true;
			if (f)
				fclose(f);
			if (!found && asprintf(&why, "needs a cgroup2 mount") < 0)
				return NULL;
			break;
		}
		case SC_REQ_PYTHON:
			if (!in_world_path("python3") && asprintf(&why, "needs python3 in %s", world_path()) < 0)
				return NULL;
			break;
		case SC_REQ_NODE:
			if (!in_world_path("node") && asprintf(&why, "needs node in %s", world_path()) < 0)
				return NULL;
			break;
		default:
			break;
		}
		if (why)
			return why;
	}
	if (need_fuse) {
		if (access("/dev/fuse", R_OK | W_OK) != 0) {
			if (asprintf(&why, "needs /dev/fuse (%s)", strerror(errno)) < 0)
				return NULL;
		} else if (!t->faultfs[0]) {
			if (asprintf(&why, "needs faultfs: set FIELDRIG_FAULTFS or put it in PATH") < 0)
				return NULL;
		}
	}
	return why;
}

static const char *folder_of(const char *file, char *buf, size_t len)
{
	char tmp[PATH_MAX], *d;

	snprintf(tmp, sizeof(tmp), "%s", file);
	d = dirname(tmp);
	snprintf(buf, len, "%s", basename(d));
	return buf;
}

static json_t *result_new(const struct scenario *sc)
{
	char folder[PATH_MAX];
	json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:[], s:[], s:{}}", "name", sc->name, "file", sc->file,
			      "folder", folder_of(sc->file, folder, sizeof(folder)), "status", "passed",
			      "steps", "failures", "faults");
	json_t *tags = json_array();

	for (unsigned i = 0; i < sc->tags_count; i++)
		json_array_append_new(tags, json_string(sc->tags[i]));
	json_object_set_new(r, "tags", tags);
	if (sc->description)
		json_object_set_new(r, "description", json_string(sc->description));
	if (sc->reproduces)
		json_object_set_new(r, "reproduces", json_string(sc->reproduces));
	return r;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) {
		/* best effort: the same text is in the result */
	}
	close(fd);
}

static char *make_repro(const struct scenario *sc, const struct world *w, const struct tools *t,
			const char *transcript, json_t *failures)
{
	json_t *f0 = json_array_get(failures, 0);
	char *text = NULL, cwd[PATH_MAX];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), ".");
	fprintf(f, "#!/bin/sh\n# repro.sh: scenario '%s' (%s) failed", sc->name, sc->file);
	if (f0)
		fprintf(f, " at %s:%lld: %s: expected %s", sc->file,
			(long long)json_integer_value(json_object_get(f0, "line")),
			json_string_value(json_object_get(f0, "expectation")),
			json_string_value(json_object_get(f0, "expected")));
	fprintf(f, "\n#\n# Running this script rebuilds that world (fresh temp dir, same mounts,\n"
		   "# files and steps) and keeps it when it fails again, printing how to\n"
		   "# enter it and tear it down.\n");
	fprintf(f, "cd '%s' || exit 2\n", cwd);
	fprintf(f, "FIELDRIG_RUNNER='%s' FIELDRIG_FAULTFS='%s' exec '%s' run --keep --filter '^%s$' '%s' \"$@\"\n",
		t->runner, t->faultfs, t->self, sc->name, sc->file);
	fprintf(f, "\n# The commands as they ran, in world %s (its environment:\n", w->dir);
	for (size_t i = 0; w->runner_env && w->runner_env[i]; i++)
		fprintf(f, "#   %s\n", w->runner_env[i]);
	fprintf(f, "# ):\n");
	for (const char *p = transcript ? transcript : ""; *p;) {
		size_t l = strcspn(p, "\n");

		fprintf(f, "#   %.*s\n", (int)l, p);
		p += l + (p[l] == '\n');
	}
	fclose(f);
	return text;
}

/* --keep: files that say how to enter the world and how to take it down. */
static void write_keep_files(const struct world *w, const struct tools *t)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/env.sh", w->dir) >= (int)sizeof(path))
		return;
	f = open_memstream(&text, &len);
	if (!f)
		return;
	for (size_t i = 0; w->runner_env && w->runner_env[i]; i++) {
		const char *eq = strchr(w->runner_env[i], '=');

		fprintf(f, "export %.*s='", (int)(eq - w->runner_env[i]), w->runner_env[i]);
		for (const char *p = eq + 1; *p; p++)
			fputs(*p == '\'' ? "'\\''" : (char[]){ *p, 0 }, f);
		fputs("'\n", f);
	}
	fprintf(f, "cd '%s'\n", w->dir);
	fclose(f);
	write_text(path, text, 0644);
	free(text);
	text = NULL;
	if (snprintf(path, sizeof(path), "%s/teardown.sh", w->dir) >= (int)sizeof(path))
		return;
	f = open_memstream(&text, &len);
	if (!f)
		return;
	fprintf(f, "#!/bin/sh\n# Tears down the kept world %s.\n", w->dir);
	for (unsigned i = 0; i < w->nmounts; i++)
		fprintf(f, "%s -u '%s' 2>/dev/null || %s -uz '%s'\n", t->fusermount, w->mounts[i].mnt,
			t->fusermount, w->mounts[i].mnt);
	fprintf(f, "rm -rf --one-file-system '%s'\n", w->dir);
	fclose(f);
	write_text(path, text, 0755);
	free(text);
}

json_t *scenario_exec(const struct scenario *sc, const char *world_dir, const struct run_opts *o)
{
	uint64_t start = fr_now_ns(), limit = sc->timeout ? sc->timeout_ns : (o->timeout_ns ? o->timeout_ns : sc->timeout_ns);
	json_t *res = result_new(sc), *steps = json_object_get(res, "steps");
	struct step_ctx cx = { 0 };
	struct world w;
	char err[1024], *transcript = NULL;
	size_t tlen = 0;
	bool failed = false, timed_out = false;
	int rc;

	cx.w = &w;
	cx.sc = sc;
	cx.deadline = start + limit;
	cx.failures = json_object_get(res, "failures");
	cx.repro = open_memstream(&transcript, &tlen);
	rc = world_build(&w, world_dir, sc, &o->tools, err, sizeof(err));
	if (rc < 0) {
		add_failure(&cx, 0, "world", "world", "the world to build", rc == -ENOMEM ? "out of memory" : err);
		failed = true;
	}
	for (unsigned i = 0; !failed && i < sc->steps_count; i++) {
		rc = step_run(&cx, i, steps);
		if (rc == -ETIMEDOUT) {
			timed_out = true;
			failed = true;
			if (json_array_size(cx.failures) == 0) {
				char p[32];

				snprintf(p, sizeof(p), "steps.%u", i);
				add_failure(&cx, (int)i, sc->timeout ? "timeout" : p, "time limit",
					    "the scenario to end within its time limit",
					    fr_stop ? "interrupted" : "the limit passed");
			}
		} else if (rc != 0) {
			failed = true;
		}
	}
	if (!failed && scenario_expect(&cx, fr_now_ns() - start) != 0)
		failed = true;
	for (unsigned i = 0; i < w.nmounts; i++) {
		json_t *tr = trace_read(w.mounts[i].trace, 0);

		while (json_array_size(tr) > 200)
			json_array_remove(tr, 200);
		json_object_set_new(json_object_get(res, "faults"), w.mounts[i].name, tr);
	}
	if (cx.repro)
		fclose(cx.repro);
	if (failed) {
		char path[PATH_MAX], *repro = make_repro(sc, &w, &o->tools, transcript, cx.failures);

		json_object_set_new(res, "status", json_string("failed"));
		if (timed_out)
			json_object_set_new(res, "timed_out", json_true());
		if (fr_stop)
			json_object_set_new(res, "interrupted", json_true());
		if (repro) {
			snprintf(path, sizeof(path), "%s/repro.sh", world_dir);
			write_text(path, repro, 0755);
			json_object_set_new(res, "repro", json_string(repro));
			free(repro);
		}
	}
	if ((failed && o->keep) || o->keep_all) {
		write_keep_files(&w, &o->tools);
		json_object_set_new(res, "kept", json_string(world_dir));
	}
	free(transcript);
	if (world_teardown(&w, (failed && o->keep) || o->keep_all) < 0)
		json_object_set_new(res, "teardown_error", json_true());
	json_object_set_new(res, "duration", json_real((double)(fr_now_ns() - start) / 1e9));
	return res;
}

/* ---- the scheduler ---- */

struct slot {
	pid_t pid;
	int pidfd;
	size_t idx;
	uint64_t deadline;
	char world[PATH_MAX];
	char result[PATH_MAX];
};

static const char *tmp_base(void)
{
	const char *t = getenv("FIELDRIG_TMPDIR");

	if (!t || !*t)
		t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

static json_t *error_result(const struct scenario *sc, const char *why)
{
	json_t *r = result_new(sc);
	struct sc_pos pos = scenario_pos(sc, "");

	json_object_set_new(r, "status", json_string("failed"));
	json_array_append_new(json_object_get(r, "failures"),
			      json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:i}", "step", 0, "expectation", "harness",
					"expected", "the scenario to run to its end", "actual", why, "file", sc->file,
					"line", (int)pos.line, "col", (int)pos.col));
	json_object_set_new(r, "duration", json_real(0));
	return r;
}

static void progress(const struct run_opts *o, size_t done, size_t total, size_t failed, uint64_t start)
{
	if (!o->tty)
		return;
	fprintf(stdout, "\r\033[K[%zu/%zu] %zu failed, %.1f s", done, total, failed,
		(double)(fr_now_ns() - start) / 1e9);
	fflush(stdout);
}

/* What the scheduler holds; a scenario's child frees its copy before it
 * exits, so a memory checker following the fork reports only real leaks. */
struct sched {
	json_t *results;
	json_t **res;
	size_t n;
	struct slot *slots;
};

static void sched_free(struct sched *sd)
{
	for (size_t i = 0; sd->res && i < sd->n; i++)
		json_decref(sd->res[i]);
	free(sd->res);
	free(sd->slots);
	json_decref(sd->results);
	sd->res = NULL;
	sd->slots = NULL;
	sd->results = NULL;
}

static int start_one(struct scenario *sc, size_t idx, const char *rundir, const struct run_opts *o,
		     struct slot *s, struct sched *sd)
{
	char tmpl[PATH_MAX];
	uint64_t limit = sc->timeout ? sc->timeout_ns : (o->timeout_ns ? o->timeout_ns : sc->timeout_ns);
	pid_t pid;
	int rc;

	snprintf(tmpl, sizeof(tmpl), "%s/fieldrig-XXXXXX", tmp_base());
	if (!mkdtemp(tmpl))
		return -errno;
	snprintf(s->world, sizeof(s->world), "%s", tmpl);
	if (snprintf(s->result, sizeof(s->result), "%s/%zu.json", rundir, idx) >= (int)sizeof(s->result))
		return -ENAMETOOLONG;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		json_t *r;

		setpgid(0, 0);
		/* The parent forwards Ctrl-C as SIGTERM; our handler (inherited)
		 * sets fr_stop, and the steps wind down and tear down. */
		r = scenario_exec(sc, s->world, o);
		rc = json_dump_file(r, s->result, JSON_COMPACT) < 0 ? 3 : 0;
		json_decref(r);
		sched_free(sd);
		cov_flush();
		_exit(rc);
	}
	setpgid(pid, pid);
	s->pid = pid;
	s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	s->idx = idx;
	s->deadline = fr_now_ns() + limit + TEARDOWN_SLACK_NS;
	return 0;
}

static json_t *finish_one(struct scenario *sc, struct slot *s, const struct run_opts *o, int status)
{
	json_error_t je;
	json_t *r = json_load_file(s->result, 0, &je);

	if (!r) {
		char why[256];

		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "fieldrig's scenario process died of signal %d", WTERMSIG(status));
		else
			snprintf(why, sizeof(why), "fieldrig's scenario process left no result (exit %d)",
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		r = error_result(sc, why);
		world_reap(s->world, &o->tools, false);
	}
	unlink(s->result);
	/* A child that tore down cleanly removed the world; make sure. */
	if (!json_object_get(r, "kept"))
		world_reap(s->world, &o->tools, false);
	return r;
}

json_t *run_all(struct scenario **scs, size_t n, const struct run_opts *o)
{
	json_t *results = json_array();
	json_t **res = calloc(n ? n : 1, sizeof(*res));
	struct slot *slots = calloc((size_t)(o->jobs > 0 ? o->jobs : 1), sizeof(*slots));
	int jobs = o->jobs > 0 ? o->jobs : 1, running = 0;
	char rundir[PATH_MAX];
	size_t next = 0, done = 0, failed = 0;
	uint64_t start = fr_now_ns();
	bool stop_sent = false;
	struct sched sd = { results, res, n, slots };

	if (!results || !res || !slots)
		goto out;
	{
		struct statvfs sv;

		/* Worlds hold the runner's own runtime dir, which scenarios
		 * expect to allow exec unless they mount something over it. */
		if (statvfs(tmp_base(), &sv) == 0 && (sv.f_flag & ST_NOEXEC))
			fprintf(stderr, "fieldrig: warning: %s is mounted noexec: scenarios that exec from "
				"their world will fail; set FIELDRIG_TMPDIR to a directory that allows exec\n",
				tmp_base());
	}
	snprintf(rundir, sizeof(rundir), "%s/fieldrig-results-XXXXXX", tmp_base());
	if (!mkdtemp(rundir))
		goto out;
	for (size_t i = 0; i < n; i++) {
		char *why;

		if (o->tag && !scenario_has_tag(scs[i], o->tag))
			continue;
		if (o->filter && regexec(o->filter, scs[i]->name, 0, NULL, 0) != 0)
			continue;
		why = requirements_unmet(scs[i], &o->tools);
		res[i] = result_new(scs[i]);
		if (why) {
			json_object_set_new(res[i], "status", json_string("skipped"));
			json_object_set_new(res[i], "reason", json_string(why));
			json_object_set_new(res[i], "duration", json_real(0));
			free(why);
		} else {
			json_decref(res[i]);
			res[i] = json_null();	/* to run */
		}
	}
	for (;;) {
		struct pollfd pfds[256];
		int np = 0, timeout = 1000;
		uint64_t now;

		while (running < jobs && next < n && !fr_stop) {
			int k;

			if (!res[next] || !json_is_null(res[next])) {
				next++;
				continue;
			}
			for (k = 0; k < jobs && slots[k].pid; k++)
				;
			if (start_one(scs[next], next, rundir, o, &slots[k], &sd) < 0) {
				json_decref(res[next]);
				res[next] = error_result(scs[next], "cannot start the scenario process");
				done++;
				failed++;
			} else {
				running++;
			}
			next++;
		}
		if (running == 0 && (next >= n || fr_stop))
			break;
		if (fr_stop && !stop_sent) {
			for (int k = 0; k < jobs; k++)
				if (slots[k].pid)
					kill(-slots[k].pid, SIGTERM);
			stop_sent = true;
		}
		now = fr_now_ns();
		for (int k = 0; k < jobs; k++) {
			if (!slots[k].pid)
				continue;
			if (now >= slots[k].deadline) {
				kill(-slots[k].pid, SIGKILL);
				kill(slots[k].pid, SIGKILL);
			} else if ((slots[k].deadline - now) / 1000000 < (uint64_t)timeout) {
				timeout = (int)((slots[k].deadline - now) / 1000000) + 1;
			}
			if (slots[k].pidfd >= 0 && np < 256)
				pfds[np++] = (struct pollfd){ .fd = slots[k].pidfd, .events = POLLIN };
		}
		if (o->tty && timeout > 250)
			timeout = 250;	/* the progress line's clock */
		/* Without pidfds (valgrind, kernels before 5.3) nothing here
		 * wakes on a child's exit: look again every 10 ms. */
		poll(pfds, (nfds_t)np, np == running ? timeout : (timeout < 10 ? timeout : 10));
		for (int k = 0; k < jobs; k++) {
			int status = 0;
			json_t *r;

			pid_t wr;

			if (!slots[k].pid)
				continue;
			wr = waitpid(slots[k].pid, &status, WNOHANG);
			/* ECHILD: reaped already; its result file says how it went. */
			if (wr != slots[k].pid && !(wr < 0 && errno == ECHILD))
				continue;
			r = finish_one(scs[slots[k].idx], &slots[k], o, status);
			json_decref(res[slots[k].idx]);
			res[slots[k].idx] = r;
			if (strcmp(json_string_value(json_object_get(r, "status")), "failed") == 0)
				failed++;
			if (slots[k].pidfd >= 0)
				close(slots[k].pidfd);
			memset(&slots[k], 0, sizeof(slots[k]));
			running--;
			done++;
		}
		progress(o, done, n, failed, start);
	}
	if (o->tty) {
		fprintf(stdout, "\r\033[K");
		fflush(stdout);
	}
	rmdir(rundir);
	for (size_t i = 0; i < n; i++) {
		if (res[i] && json_is_null(res[i])) {
			json_decref(res[i]);
			res[i] = result_new(scs[i]);
			json_object_set_new(res[i], "status", json_string("skipped"));
			json_object_set_new(res[i], "reason", json_string("interrupted before it started"));
			json_object_set_new(res[i], "duration", json_real(0));
		}
		if (res[i])
			json_array_append_new(results, res[i]);
	}
out:
	free(res);
	free(slots);
	return results;
}
