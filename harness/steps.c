/* Steps and expectations (see steps.h).  Every step drives runner or
 * faultfs through its command line, as a deployment would. */
#include "steps.h"

#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <poll.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn.h"

#define DEFAULT_STEP_NS (30ull * 1000000000ull)
#define SHOW_MAX 400

/* What a step left to check. */
struct obs {
	struct proc_result pr;
	bool have_pr;
	char *run_id;
	json_t *status;		/* runner status --json of the step's run */
	char *logs;
	uint64_t ns;
	long *trace_off;	/* per mount: the trace size when the step began */
};

static void shell_quote(FILE *f, const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == strlen(s)) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

static void repro_cmd(struct step_ctx *cx, char *const argv[])
{
	if (!cx->repro)
		return;
	for (int i = 0; argv[i]; i++) {
		if (i)
			fputc(' ', cx->repro);
		shell_quote(cx->repro, argv[i]);
	}
	fputc('\n', cx->repro);
}

static char *shown_text(const char *s);

/* A shortened copy for messages: at most SHOW_MAX bytes, one line. */
static char *show(const char *s)
{
	size_t n = strlen(s);
	char *o;

	if (n > SHOW_MAX)
		n = SHOW_MAX;
	o = malloc(n + 4);
	if (!o)
		return NULL;
	memcpy(o, s, n);
	strcpy(o + n, strlen(s) > SHOW_MAX ? "..." : "");
	for (char *p = o; *p; p++)
		if (*p == '\n')
			*p = ' ';
		else if ((unsigned char)*p < 0x20)
			*p = '?';
	{
		char *clean = shown_text(o);

		free(o);
		return clean;
	}
}

void add_failure(struct step_ctx *cx, int step, const char *path, const char *what,
		 const char *expected, const char *actual)
{
	struct sc_pos pos = scenario_pos(cx->sc, path);
	char *a = show(actual ? actual : "");
	json_t *f = json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:i}", "step", step, "expectation", what,
			      "expected", expected ? expected : "", "actual", a ? a : "",
			      "file", cx->sc->file, "line", (int)pos.line, "col", (int)pos.col);

	free(a);
	if (f)
		json_array_append_new(cx->failures, f);
}

static int expand(struct step_ctx *cx, int step, const char *in, char **out)
{
	char err[256];
	char path[64];

	if (refs_expand(&cx->w->refs, in, out, err, sizeof(err)) == 0)
		return 0;
	snprintf(path, sizeof(path), "steps.%d", step);
	add_failure(cx, step, path, "reference", "a known reference", err);
	return -EINVAL;
}

/* ---- running ---- */

static uint64_t step_deadline(struct step_ctx *cx, const struct sc_step *st)
{
	uint64_t d = fr_now_ns() + (st->timeout_ns && st->kind != SK_EXEC ? st->timeout_ns : DEFAULT_STEP_NS);

	return d < cx->deadline ? d : cx->deadline;
}

static int run_cmd(struct step_ctx *cx, char *const argv[], char *const envp[], uint64_t deadline,
		   struct obs *o)
{
	int rc;

	repro_cmd(cx, argv);
	rc = spawn_run(argv, envp, cx->w->dir, deadline, &o->pr);
	if (rc < 0)
		return rc;
	o->have_pr = true;
	return 0;
}

/* The argv of a runner command: runner CMD [ARGS...] [EXTRA...]. */
struct argv {
	char *v[256];
	int n;
	char *owned[256];
	int nowned;
};

static void av_add(struct argv *a, const char *s)
{
	if (a->n < 255) {
		a->v[a->n++] = (char *)s;
		a->v[a->n] = NULL;
	}
}

/* Frees S with the argv, without making it an argument. */
static void av_keep(struct argv *a, char *s)
{
	if (a->nowned < 256)
		a->owned[a->nowned++] = s;
	else
		free(s);	/* cannot happen: at most 255 arguments */
}

static void av_own(struct argv *a, char *s)
{
	av_keep(a, s);
	av_add(a, s);
}

static void av_free(struct argv *a)
{
	for (int i = 0; i < a->nowned; i++)
		free(a->owned[i]);
}

static int av_add_expanded(struct step_ctx *cx, int step, struct argv *a, const char *s)
{
	char *e;

	if (expand(cx, step, s, &e) < 0)
		return -EINVAL;
	av_own(a, e);
	return 0;
}

static char *first_line(const char *s)
{
	return strndup(s, strcspn(s, "\n"));
}

static void fetch_status(struct step_ctx *cx, struct obs *o, bool with_logs)
{
	char *argv[] = { (char *)cx->w->tools->runner, "status", o->run_id, "--json", NULL };
	struct proc_result pr;

	if (spawn_run(argv, cx->w->runner_env, cx->w->dir, cx->deadline, &pr) == 0) {
		o->status = json_loads(pr.out, 0, NULL);
		proc_result_free(&pr);
	}
	if (with_logs) {
		char *largv[] = { (char *)cx->w->tools->runner, "logs", o->run_id, NULL };

		if (spawn_run(largv, cx->w->runner_env, cx->w->dir, cx->deadline, &pr) == 0) {
			o->logs = pr.out;
			pr.out = NULL;
			proc_result_free(&pr);
		}
	}
}

/* wait_log: follows the run's log until a line matches. */
static int do_wait_log(struct step_ctx *cx, const struct sc_step *st, int i, struct obs *o)
{
	struct argv a = { 0 };
	regex_t re;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = -1, rc = 0, matched = 0;
	uint64_t start = fr_now_ns(), deadline = step_deadline(cx, st);
	pid_t pid = 0;

	if (st->timeout_ns == 0 && deadline > start + 10000000000ull)
		deadline = start + 10000000000ull;
	if (regcomp(&re, st->regex, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
		return -EINVAL;
	av_add(&a, cx->w->tools->runner);
	av_add(&a, "logs");
	av_add(&a, o->run_id);
	av_add(&a, "--follow");
	if (st->stream) {
		av_add(&a, "--stream");
		av_add(&a, st->stream);
	}
	repro_cmd(cx, a.v);
	rc = spawn_bg(a.v, cx->w->runner_env, cx->w->dir, &pid, &fd, false, NULL);
	if (rc < 0)
		goto out;
	while (!matched) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = fr_now_ns();
		char tmp[8192];
		ssize_t n;

		if (now >= deadline || fr_stop)
			break;
		if (poll(&p, 1, (int)((deadline - now) / 1000000 + 1)) <= 0)
			continue;
		n = read(fd, tmp, sizeof(tmp));
		if (n <= 0)
			break;	/* the run ended without a match */
		if (len + (size_t)n + 1 > cap) {
			char *nb = realloc(buf, (len + (size_t)n + 1) * 2);

			if (!nb)
				break;
			buf = nb;
			cap = (len + (size_t)n + 1) * 2;
		}
		memcpy(buf + len, tmp, (size_t)n);
		len += (size_t)n;
		buf[len] = '\0';
		matched = regexec(&re, buf, 0, NULL, 0) == 0;
	}
	kill(-pid, SIGKILL);
	wait_child(pid, fr_now_ns() + 2000000000ull, NULL);
	o->logs = buf ? buf : strdup("");
	buf = NULL;
	o->pr.out = strdup(o->logs ? o->logs : "");
	o->pr.err = strdup("");
	o->pr.exit_code = matched ? 0 : 1;
	o->have_pr = true;
	if (!matched) {
		char path[64], exp[300];

		snprintf(path, sizeof(path), "steps.%d.regex", i);
		snprintf(exp, sizeof(exp), "a log line matching /%s/ within %.1f s", st->regex,
			 (double)(deadline - start) / 1e9);
		add_failure(cx, i, path, "wait_log", exp, o->logs && *o->logs ? o->logs : "(no output)");
		rc = 1;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	regfree(&re);
	return rc;
}

static int do_kill(struct step_ctx *cx, const struct sc_step *st, int i, struct obs *o)
{
	const char *key = st->target && strcmp(st->target, "child") == 0 ? "pid" : "supervisor_pid";
	char path[64], exp[128];
	json_int_t pid;

	fetch_status(cx, o, false);
	pid = json_integer_value(json_object_get(o->status, key));
	snprintf(path, sizeof(path), "steps.%d.kill", i);
	if (pid <= 1) {
		snprintf(exp, sizeof(exp), "run %s to have a %s", o->run_id, key);
		add_failure(cx, i, path, "kill", exp, "none in runner status");
		return 1;
	}
	if (cx->repro)
		fprintf(cx->repro, "kill -%d %lld\n", st->signal_v, (long long)pid);
	if (kill((pid_t)pid, st->signal_v) < 0) {
		snprintf(exp, sizeof(exp), "to signal pid %lld", (long long)pid);
		add_failure(cx, i, path, "kill", exp, strerror(errno));
		return 1;
	}
	if (st->signal_v == SIGKILL) {
		/* Until it is gone: the supervisor is not our child, so poll
		 * its pidfd (it polls readable when the process exits). */
		int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);

		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, 5000);
			close(pfd);
		}
	}
	o->pr.out = strdup("");
	o->pr.err = strdup("");
	o->have_pr = true;
	return 0;
}

static int do_fault(struct step_ctx *cx, const struct sc_step *st, int i, struct obs *o)
{
	struct wmount *m = world_mount(cx->w, st->arg);
	struct argv a = { 0 };
	int rc;

	av_add(&a, cx->w->tools->faultfs);
	av_add(&a, "ctl");
	av_add(&a, m->mnt);
	if (st->add) {
		av_add(&a, "add");
		if (av_add_expanded(cx, i, &a, st->add) < 0) {
			av_free(&a);
			return 1;
		}
	} else if (strcmp(st->remove, "all") == 0) {
		av_add(&a, "clear");
	} else {
		av_add(&a, "remove");
		if (av_add_expanded(cx, i, &a, st->remove) < 0) {
			av_free(&a);
			return 1;
		}
	}
	rc = run_cmd(cx, a.v, cx->w->env, step_deadline(cx, st), o);
	av_free(&a);
	return rc;
}

static int run_step(struct step_ctx *cx, const struct sc_step *st, int i, struct obs *o)
{
	struct world *w = cx->w;
	struct argv a = { 0 };
	char *arg = NULL;
	int rc = 0;

	if (st->kind != SK_SLEEP && st->kind != SK_FAULT && expand(cx, i, st->arg, &arg) < 0)
		return 1;
	switch (st->kind) {
	case SK_UPLOAD: case SK_EXEC: case SK_WAIT: case SK_CANCEL: case SK_CLEANUP:
	case SK_RECOVER: case SK_DETECT: case SK_VENV: case SK_DOCTOR:
		av_add(&a, w->tools->runner);
		av_add(&a, st->kind == SK_UPLOAD ? "upload" : st->kind == SK_EXEC ? "exec" :
			   st->kind == SK_WAIT ? "wait" : st->kind == SK_CANCEL ? "cancel" :
			   st->kind == SK_CLEANUP ? "cleanup" : st->kind == SK_RECOVER ? "recover" :
			   st->kind == SK_DETECT ? "detect" : st->kind == SK_VENV ? "venv" : "doctor");
		if (st->kind == SK_UPLOAD || st->kind == SK_EXEC || st->kind == SK_WAIT ||
		    st->kind == SK_CANCEL || (st->kind == SK_VENV))
			av_add(&a, arg);
		if (st->kind == SK_EXEC) {
			w->used_runs = true;
			if (st->timeout) {
				av_add(&a, "--timeout");
				av_add(&a, st->timeout);
			}
			if (st->detach_v)
				av_add(&a, "--detach");
			if (st->user) {
				av_add(&a, "--user");
				av_add(&a, st->user);
			}
			for (unsigned j = 0; j < st->env_count; j++) {
				av_add(&a, "--env");
				if (av_add_expanded(cx, i, &a, st->env[j]) < 0)
					goto out_fail;
			}
		}
		if (st->kind == SK_WAIT && st->timeout) {
			av_add(&a, "--timeout");
			av_add(&a, st->timeout);
		}
		for (unsigned j = 0; j < st->args_count; j++)
			if (av_add_expanded(cx, i, &a, st->args[j]) < 0)
				goto out_fail;
		rc = run_cmd(cx, a.v, w->runner_env, st->kind == SK_EXEC || st->kind == SK_WAIT ?
			     cx->deadline : step_deadline(cx, st), o);
		if (rc < 0)
			break;
		if (st->kind == SK_UPLOAD || st->kind == SK_EXEC)
			o->run_id = first_line(o->pr.out);
		if (st->kind == SK_WAIT || st->kind == SK_CANCEL)
			o->run_id = strdup(arg);
		if ((st->kind == SK_EXEC || st->kind == SK_WAIT || st->kind == SK_CANCEL) && o->run_id &&
		    *o->run_id)
			fetch_status(cx, o, !st->detach_v);
		break;
	case SK_WAIT_LOG:
		o->run_id = strdup(arg);
		rc = do_wait_log(cx, st, i, o);
		break;
	case SK_KILL:
		o->run_id = strdup(arg);
		rc = do_kill(cx, st, i, o);
		break;
	case SK_FAULT:
		rc = do_fault(cx, st, i, o);
		if (rc == 0 && st->add)
			o->run_id = first_line(o->pr.out);
		break;
	case SK_SH: {
		char **env = NULL;
		size_t n = 0;

		while (w->runner_env[n])
			n++;
		env = calloc(n + st->env_count + 1, sizeof(*env));
		if (!env)
			goto out_fail;
		memcpy(env, w->runner_env, n * sizeof(*env));
		for (unsigned j = 0; j < st->env_count; j++) {
			char *e;

			if (expand(cx, i, st->env[j], &e) < 0)
				break;
			env[n++] = e;
			av_keep(&a, e);	/* freed with the argv */
		}
		av_add(&a, "/bin/sh");
		av_add(&a, "-c");
		av_add(&a, arg);
		rc = run_cmd(cx, a.v, env, step_deadline(cx, st), o);
		free(env);
		break;
	}
	case SK_SLEEP: {
		uint64_t end = fr_now_ns() + st->sleep_ns;

		if (cx->repro)
			fprintf(cx->repro, "sleep %.3f\n", (double)st->sleep_ns / 1e9);
		while (!fr_stop && fr_now_ns() < end && fr_now_ns() < cx->deadline) {
			uint64_t left = end - fr_now_ns();
			struct timespec ts = { (time_t)(left / 1000000000ull), (long)(left % 1000000000ull) };

			if (left > end)
				break;
			nanosleep(&ts, NULL);
		}
		o->pr.out = strdup("");
		o->pr.err = strdup("");
		o->have_pr = true;
		break;
	}
	default:
		break;
	}
	av_free(&a);
	free(arg);
	return rc;
out_fail:
	av_free(&a);
	free(arg);
	return 1;
}

/* ---- expectations ---- */

static size_t count_lines(const char *s)
{
	size_t n = 0, len = strlen(s);

	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n')
			n++;
	if (len && s[len - 1] != '\n')
		n++;
	return n;
}

static int check_match(struct step_ctx *cx, int step, const char *path, const char *what,
		       const struct sc_match *m, const char *text)
{
	char p[128], exp[600], *pat = NULL;
	int bad = 0;

	if (!m)
		return 0;
	if (!text)
		text = "";
	if (m->contains) {
		snprintf(p, sizeof(p), "%s.contains", path);
		if (expand(cx, step, m->contains, &pat) < 0)
			return 1;
		if (!strstr(text, pat)) {
			snprintf(exp, sizeof(exp), "%s contains \"%s\"", what, pat);
			add_failure(cx, step, p, what, exp, *text ? text : "(empty)");
			bad = 1;
		}
		free(pat);
	}
	if (m->not_contains) {
		snprintf(p, sizeof(p), "%s.not_contains", path);
		if (expand(cx, step, m->not_contains, &pat) < 0)
			return 1;
		if (strstr(text, pat)) {
			snprintf(exp, sizeof(exp), "%s does not contain \"%s\"", what, pat);
			add_failure(cx, step, p, what, exp, text);
			bad = 1;
		}
		free(pat);
	}
	if (m->regex) {
		regex_t re;

		snprintf(p, sizeof(p), "%s.regex", path);
		if (expand(cx, step, m->regex, &pat) < 0)
			return 1;
		if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) == 0) {
			if (regexec(&re, text, 0, NULL, 0) != 0) {
				snprintf(exp, sizeof(exp), "%s matches /%s/", what, pat);
				add_failure(cx, step, p, what, exp, *text ? text : "(empty)");
				bad = 1;
			}
			regfree(&re);
		}
		free(pat);
	}
	if (m->has_lines) {
		size_t n = count_lines(text);

		if (n != m->nlines) {
			char act[64];

			snprintf(p, sizeof(p), "%s.lines", path);
			snprintf(exp, sizeof(exp), "%s has %llu lines", what, (unsigned long long)m->nlines);
			snprintf(act, sizeof(act), "%zu lines", n);
			add_failure(cx, step, p, what, exp, act);
			bad = 1;
		}
	}
	return bad;
}

json_t *trace_read(const char *path, long from)
{
	json_t *arr = json_array();
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f || !arr)
		return arr;
	if (from > 0)
		fseek(f, from, SEEK_SET);
	while (getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);

		if (j)
			json_array_append_new(arr, j);
	}
	free(line);
	fclose(f);
	return arr;
}

static bool op_matches(const char *want, const char *op)
{
	char buf[256], *save, *tok;

	snprintf(buf, sizeof(buf), "%s", want);
	for (tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
		if (strcmp(tok, op) == 0)
			return true;
	return false;
}

static int check_faults(struct step_ctx *cx, int step, const struct sc_expect *e, const struct obs *o)
{
	int bad = 0;

	for (unsigned i = 0; i < e->faults_count; i++) {
		const struct sc_faults_expect *fe = &e->faults[i];
		struct wmount *m = fe->mount ? world_mount(cx->w, fe->mount) : &cx->w->mounts[0];
		long from = o && o->trace_off ? o->trace_off[m - cx->w->mounts] : 0;
		json_t *tr = trace_read(m->trace, from), *ev;
		size_t idx, n = 0;
		char p[128], exp[400], act[600], *pat = NULL;

		if (fe->path && expand(cx, step, fe->path, &pat) < 0) {
			json_decref(tr);
			return 1;
		}
		json_array_foreach(tr, idx, ev) {
			const char *op = json_string_value(json_object_get(ev, "op"));
			const char *pth = json_string_value(json_object_get(ev, "path"));

			if (fe->op && (!op || !op_matches(fe->op, op)))
				continue;
			if (pat && (!pth || fnmatch(pat, pth, 0) != 0))
				continue;
			n++;
		}
		snprintf(exp, sizeof(exp), "%s%s%s%s%s on mount %s: %s%llu", "faults", fe->op ? " op=" : "",
			 fe->op ? fe->op : "", pat ? " path=" : "", pat ? pat : "", m->name,
			 fe->has_count ? "exactly " : "at least ",
			 (unsigned long long)(fe->has_count ? fe->count_v : fe->min_v));
		snprintf(act, sizeof(act), "%zu matching of %zu traced", n, json_array_size(tr));
		snprintf(p, sizeof(p), "%s.faults.%u", e->path, i);
		if ((fe->has_count && n != fe->count_v) || (fe->has_min && n < fe->min_v)) {
			add_failure(cx, step, p, "faults", exp, act);
			bad = 1;
		}
		free(pat);
		json_decref(tr);
	}
	return bad;
}

/* glob(3) with GLOB_PERIOD (so "*" also finds hidden temporaries) lists
 * "." and ".." too: they are not matches. */
static bool dot_entry(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return strcmp(b, ".") == 0 || strcmp(b, "..") == 0;
}

/* The first real match of PATTERN, or NULL; *G to globfree when non-NULL. */
static const char *glob_first(const char *pattern, glob_t *g, bool *allocated)
{
	*allocated = false;
	if (glob(pattern, GLOB_NOSORT | GLOB_PERIOD, NULL, g) != 0)
		return NULL;
	*allocated = true;
	for (size_t i = 0; i < g->gl_pathc; i++)
		if (!dot_entry(g->gl_pathv[i]))
			return g->gl_pathv[i];
	return NULL;
}

static int check_files(struct step_ctx *cx, int step, const struct sc_expect *e)
{
	const struct sc_files_expect *fe = e->files;
	char p[128], exp[PATH_MAX + 64], pattern[PATH_MAX], *x;
	int bad = 0;

	if (!fe)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		char **list = pass ? fe->absent : fe->present;
		unsigned n = pass ? fe->absent_count : fe->present_count;

		for (unsigned i = 0; i < n; i++) {
			glob_t g;
			const char *first;
			bool alloc;

			if (expand(cx, step, list[i], &x) < 0)
				return 1;
			if (snprintf(pattern, sizeof(pattern), "%s%s%s", x[0] == '/' ? "" : cx->w->dir,
				 x[0] == '/' ? "" : "/", x) >= (int)sizeof(pattern))
				pattern[0] = '\0';	/* too long: matches nothing */
			first = glob_first(pattern, &g, &alloc);
			if (!first == !pass) {
				snprintf(p, sizeof(p), "%s.files.%s.%u", e->path, pass ? "absent" : "present", i);
				snprintf(exp, sizeof(exp), "%s %s", x, pass ? "absent" : "present");
				add_failure(cx, step, p, "files", exp, pass ? first : "no such file");
				bad = 1;
			}
			if (alloc)
				globfree(&g);
			free(x);
		}
	}
	for (unsigned i = 0; i < fe->modes_count; i++) {
		glob_t g;
		const char *first;
		bool alloc;

		if (expand(cx, step, fe->modes[i].path, &x) < 0)
			return 1;
		if (snprintf(pattern, sizeof(pattern), "%s%s%s", x[0] == '/' ? "" : cx->w->dir,
			 x[0] == '/' ? "" : "/", x) >= (int)sizeof(pattern))
			pattern[0] = '\0';
		snprintf(p, sizeof(p), "%s.files.modes.%u.mode", e->path, i);
		first = glob_first(pattern, &g, &alloc);
		if (!first) {
			snprintf(exp, sizeof(exp), "%s with mode %04o", x, fe->modes[i].mode_v);
			add_failure(cx, step, p, "files", exp, "no such file");
			bad = 1;
		} else {
			for (size_t k = 0; k < g.gl_pathc; k++) {
				struct stat sb;
				char act[PATH_MAX + 64];

				if (dot_entry(g.gl_pathv[k]))
					continue;
				if (lstat(g.gl_pathv[k], &sb) == 0 && (sb.st_mode & 07777) == fe->modes[i].mode_v)
					continue;
				snprintf(exp, sizeof(exp), "%s with mode %04o", x, fe->modes[i].mode_v);
				snprintf(act, sizeof(act), "%s: mode %04o", g.gl_pathv[k], sb.st_mode & 07777);
				add_failure(cx, step, p, "files", exp, act);
				bad = 1;
				break;
			}
		}
		if (alloc)
			globfree(&g);
		free(x);
	}
	return bad;
}

/* No process of the step's run is left: none carries its marker. */
static int check_leftovers(struct step_ctx *cx, int step, const struct sc_expect *e, const struct obs *o)
{
	const char *marker = json_string_value(json_object_get(o ? o->status : NULL, "marker"));
	char p[128];
	int n;

	if (!e->no_leftovers_v)
		return 0;
	snprintf(p, sizeof(p), "%s.no_leftovers", e->path);
	if (!marker) {
		add_failure(cx, step, p, "no_leftovers", "a run with a marker", "the step has no run");
		return 1;
	}
	n = sweep_env("FIELDRIG_RUN_MARK", marker, 0);
	if (n > 0) {
		char act[64];

		snprintf(act, sizeof(act), "%d process(es) still carry the run's marker", n);
		add_failure(cx, step, p, "no_leftovers", "no process left in the run's tree", act);
		return 1;
	}
	return 0;
}

static int check_expect(struct step_ctx *cx, int step, const struct sc_expect *e, const struct obs *o)
{
	char p[128], exp[128], act[600];
	int bad = 0;

	if (!e)
		return 0;
	if (e->has_exit_code && o && o->have_pr && o->pr.exit_code != e->exit_code_v) {
		snprintf(p, sizeof(p), "%s.exit_code", e->path);
		snprintf(exp, sizeof(exp), "exit code %d", e->exit_code_v);
		if (o->pr.timed_out)
			snprintf(act, sizeof(act), "killed at the step's time limit");
		else if (o->pr.signal)
			snprintf(act, sizeof(act), "killed by signal %d; stderr: %.400s", o->pr.signal, o->pr.err);
		else
			snprintf(act, sizeof(act), "exit code %d; stderr: %.400s", o->pr.exit_code, o->pr.err);
		add_failure(cx, step, p, "exit_code", exp, act);
		bad = 1;
	}
	if (e->status) {
		const char *st = json_string_value(json_object_get(o ? o->status : NULL, "status"));
		const char *why = json_string_value(json_object_get(o ? o->status : NULL, "error"));

		if (!st || strcmp(st, sc_status_names[*e->status]) != 0) {
			snprintf(p, sizeof(p), "%s.status", e->path);
			snprintf(exp, sizeof(exp), "status %s", sc_status_names[*e->status]);
			snprintf(act, sizeof(act), "%s%s%.500s", st ? st : "no run status", why ? ": " : "",
				 why ? why : "");
			add_failure(cx, step, p, "status", exp, act);
			bad = 1;
		}
	}
	if (e->error) {
		const char *err = NULL;

		if (o && o->status && json_is_string(json_object_get(o->status, "error")))
			err = json_string_value(json_object_get(o->status, "error"));
		else if (o && o->have_pr)
			err = o->pr.err;
		snprintf(p, sizeof(p), "%s.error", e->path);
		bad |= check_match(cx, step, p, "error", e->error, err);
	}
	if (o && o->have_pr) {
		snprintf(p, sizeof(p), "%s.stdout", e->path);
		bad |= check_match(cx, step, p, "stdout", e->stdout_, o->pr.out);
		snprintf(p, sizeof(p), "%s.stderr", e->path);
		bad |= check_match(cx, step, p, "stderr", e->stderr_, o->pr.err);
	}
	if (e->logs) {
		snprintf(p, sizeof(p), "%s.logs", e->path);
		bad |= check_match(cx, step, p, "logs", e->logs, o ? o->logs : NULL);
	}
	bad |= check_files(cx, step, e);
	bad |= check_faults(cx, step, e, o);
	if (e->duration && o) {
		if ((e->duration->max_ns && o->ns > e->duration->max_ns) || o->ns < e->duration->min_ns) {
			snprintf(p, sizeof(p), "%s.duration", e->path);
			snprintf(exp, sizeof(exp), "duration within [%s, %s]", e->duration->min ? e->duration->min : "0",
				 e->duration->max ? e->duration->max : "-");
			snprintf(act, sizeof(act), "%.3f s", (double)o->ns / 1e9);
			add_failure(cx, step, p, "duration", exp, act);
			bad = 1;
		}
	}
	bad |= check_leftovers(cx, step, e, o);
	return bad;
}

/* Reports keep the first 64 KiB of each output, as valid UTF-8 (JSON and
 * XML need it): bytes that are not part of a valid sequence become '?'. */
static char *shown_text(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *d;

	if (n > 65536)
		n = 65536;
	d = malloc(n + 1);
	if (!d)
		return NULL;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
			     (c & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xc2) && !(len == 4 && c > 0xf4);

		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
		if (ok && len == 3) {
			unsigned cp = ((c & 0x0fu) << 12) | (((unsigned char)s[i + 1] & 0x3fu) << 6);

			ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
		}
		if (ok && len == 4) {
			unsigned cp = ((c & 0x07u) << 18) | (((unsigned char)s[i + 1] & 0x3fu) << 12);

			ok = cp >= 0x10000 && cp <= 0x10ffff;
		}
		if (!ok) {
			d[o++] = '?';
			i++;
			continue;
		}
		memcpy(d + o, s + i, len);
		o += len;
		i += len;
	}
	d[o] = '\0';
	return d;
}

int step_run(struct step_ctx *cx, unsigned i, json_t *steps)
{
	const struct sc_step *st = &cx->sc->steps[i];
	struct obs o;
	struct sc_pos pos;
	uint64_t start;
	json_t *rec;
	char key[96], num[32], path[64];
	int rc, bad;

	memset(&o, 0, sizeof(o));
	o.trace_off = calloc(cx->w->nmounts + 1, sizeof(long));
	for (unsigned m = 0; o.trace_off && m < cx->w->nmounts; m++) {
		struct stat sb;

		o.trace_off[m] = stat(cx->w->mounts[m].trace, &sb) == 0 ? (long)sb.st_size : 0;
	}
	if (cx->repro)
		fprintf(cx->repro, "# step %u: %s\n", i + 1, sc_step_kind_names[st->kind]);
	start = fr_now_ns();
	rc = run_step(cx, st, (int)i, &o);
	o.ns = fr_now_ns() - start;
	/* What later steps, and this step's own expectations, may refer to. */
	if (o.run_id) {
		snprintf(key, sizeof(key), "%s.id", st->label);
		refs_set(&cx->w->refs, key, o.run_id);
	}
	if (o.have_pr) {
		char *fl = first_line(o.pr.out ? o.pr.out : "");

		snprintf(key, sizeof(key), "%s.stdout", st->label);
		refs_set(&cx->w->refs, key, fl ? fl : "");
		free(fl);
		snprintf(key, sizeof(key), "%s.exit_code", st->label);
		snprintf(num, sizeof(num), "%d", o.pr.exit_code);
		refs_set(&cx->w->refs, key, num);
	}
	if (o.status && json_is_integer(json_object_get(o.status, "pid"))) {
		snprintf(key, sizeof(key), "%s.pid", st->label);
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(json_object_get(o.status, "pid")));
		refs_set(&cx->w->refs, key, num);
	}
	snprintf(path, sizeof(path), "steps.%u", i);
	pos = scenario_pos(cx->sc, path);
	if (rc < 0) {
		add_failure(cx, (int)i, path, "run", "the step to run", strerror(-rc));
		bad = 1;
	} else {
		bad = rc;
		if (!bad && o.have_pr && o.pr.timed_out) {
			snprintf(path, sizeof(path), "steps.%u%s", i, st->timeout && st->kind != SK_EXEC ? ".timeout" : "");
			add_failure(cx, (int)i, path, "time limit", "the step to end within its time limit",
				    fr_stop ? "interrupted" : "killed at the time limit");
			bad = 1;
		} else if (!bad) {
			/* Without an expectation on the outcome, a step must succeed. */
			bool outcome = st->expect && (st->expect->has_exit_code || st->expect->status ||
						      st->expect->error);

			if (!outcome && o.have_pr && o.pr.exit_code != 0 && st->kind != SK_WAIT_LOG) {
				char act[600];

				snprintf(act, sizeof(act), "exit code %d; stderr: %.500s", o.pr.exit_code,
					 o.pr.err ? o.pr.err : "");
				add_failure(cx, (int)i, path, "exit_code", "exit code 0 (no expect.exit_code given)",
					    act);
				bad = 1;
			} else {
				bad = check_expect(cx, (int)i, st->expect, &o);
			}
		}
	}
	rec = json_pack("{s:i, s:s, s:s, s:i, s:f, s:b}", "index", (int)i + 1, "kind",
			sc_step_kind_names[st->kind], "label", st->label, "line", (int)pos.line,
			"duration", (double)o.ns / 1e9, "ok", !bad);
	if (rec) {
		/* The command as written, for reports (references unexpanded). */
		if (st->kind == SK_SH && st->arg)
			json_object_set_new(rec, "command", json_string(st->arg));
		if (o.have_pr) {
			char *so = shown_text(o.pr.out ? o.pr.out : ""), *se = shown_text(o.pr.err ? o.pr.err : "");

			json_object_set_new(rec, "exit_code", json_integer(o.pr.exit_code));
			json_object_set_new(rec, "stdout", json_stringn_nocheck(so ? so : "", so ? strlen(so) : 0));
			json_object_set_new(rec, "stderr", json_stringn_nocheck(se ? se : "", se ? strlen(se) : 0));
			free(so);
			free(se);
		}
		if (o.run_id)
			json_object_set_new(rec, "id", json_string(o.run_id));
		if (o.status)
			json_object_set(rec, "run", o.status);
		if (o.logs) {
			char *l = shown_text(o.logs);

			json_object_set_new(rec, "logs", json_stringn_nocheck(l ? l : "", l ? strlen(l) : 0));
			free(l);
		}
		json_array_append_new(steps, rec);
	}
	if (o.have_pr)
		proc_result_free(&o.pr);
	free(o.run_id);
	free(o.logs);
	free(o.trace_off);
	json_decref(o.status);
	if (fr_stop || fr_now_ns() >= cx->deadline)
		return bad ? -ETIMEDOUT : (fr_stop ? -ETIMEDOUT : bad);
	return bad;
}

int scenario_expect(struct step_ctx *cx, uint64_t elapsed_ns)
{
	struct obs o;

	if (!cx->sc->expect)
		return 0;
	memset(&o, 0, sizeof(o));
	o.ns = elapsed_ns;
	return check_expect(cx, 0, cx->sc->expect, &o);
}
