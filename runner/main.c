/* runner: the command line over the runner library.
 *
 *   runner [--state DIR] [--env-file FILE] [--exec-mode MODE] [--root DIR]
 *          [--json] COMMAND [ARGS]
 *
 * Settings are resolved once (flags > environment > --env-file > defaults)
 * and handed to the command.  Exit status: 0 success, 1 a failed check or
 * job, 2 a usage or input error. */
/* Messages are cut to their buffers on purpose: a long path must not
 * turn an error report into a second error. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_run.h"
#include "detect.h"
#include "doctor.h"
#include "interp.h"
#include "runnerdir.h"
#include "settings.h"
#include "store.h"
#include "upload.h"
#include "venv.h"

extern char **environ;


struct ctx {
	struct settings s;
	bool json;
};

static const char usage_text[] =
"usage: runner [OPTIONS] COMMAND [ARGS]\n"
"\n"
"Runs uploaded user scripts safely; this build covers the job store, upload,\n"
"settings, interpreter and runner directory choice, container detection,\n"
"venv handling and pre-deploy checks.\n"
"\n"
"Options (before the command; --json also after it):\n"
"  --state DIR        state directory (RUNNER_STATE_DIR)\n"
"  --env-file FILE    read settings from a dotenv file (weaker than the environment)\n"
"  --exec-mode MODE   interpreter (default) or direct (RUNNER_EXEC_MODE)\n"
"  --root DIR         root for container detection (RUNNER_ROOT, default /)\n"
"  --json             machine-readable output where a command reports state\n"
"  --help, --version\n"
"\n"
"Commands:\n"
"  config                      every effective setting, its value and source\n"
"  upload FILE [--name NAME]   store a script; prints its id\n"
"  scripts                     list stored scripts\n"
"  which LANG                  interpreter for python, node or ts, and why\n"
"  runner-dir                  the runner directory chosen, and why\n"
"  runner-script USER FILE     write FILE as bot_runner_USER.py in the runner directory\n"
"  detect [--root DIR]         container kind and the evidence\n"
"  venv ensure|recreate|status [--dir DIR]\n"
"  doctor                      pre-deploy checks, one line each; exit 1 on a FAIL\n"
"%s"
"\n"
"Exit status: 0 success, 1 a failed check, 2 a usage or input error.\n"
"See runner/README.md for the settings and their aliases.\n";

/* ---- option parsing shared by the global and command levels ---- */

enum opt_id {
	OPT_STATE = 256, OPT_ENV_FILE, OPT_EXEC_MODE, OPT_ROOT, OPT_JSON, OPT_HELP,
	OPT_VERSION, OPT_NAME, OPT_DIR,
};

static const struct option global_opts[] = {
	{ "state", required_argument, NULL, OPT_STATE },
	{ "env-file", required_argument, NULL, OPT_ENV_FILE },
	{ "exec-mode", required_argument, NULL, OPT_EXEC_MODE },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static const struct option cmd_opts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ NULL, 0, NULL, 0 },
};

/* Per-command options, filled by parse_cmd. */
struct cmd_args {
	const char *name;
	const char *dir;
	const char *root;
	int argc;		/* positional arguments after the command */
	char **argv;
	/* which options this command accepts */
	bool want_name, want_dir, want_root;
};

static int opt_error(int c, char **argv, const char *cmd)
{
	const char *bad = argv[optind - 1];

	if (c == ':')
		errline("option '%s' needs a value (see runner --help)", bad);
	else if (optopt && bad[0] == '-' && bad[1] != '-')
		errline("unknown option '-%c' (see runner --help)", optopt);
	else
		errline("unknown option '%s' (see runner --help)", bad);
	(void)cmd;
	return EXIT_USAGE;
}

/* Parses the options of one command; permutes so that "upload FILE
 * --name N" and "upload --name N FILE" both work.  Returns -1 to go on,
 * or an exit status. */
static int parse_cmd(struct ctx *cx, int argc, char **argv, struct cmd_args *a)
{
	int c, idx = 0;

	optind = 0;	/* glibc: full re-initialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", cmd_opts, &idx)) != -1) {
		switch (c) {
		case OPT_JSON:
			cx->json = true;
			break;
		case OPT_HELP:
			printf(usage_text, cli_run_usage);
			return EXIT_OK;
		case OPT_NAME:
			if (!a->want_name)
				goto unknown;
			a->name = optarg;
			break;
		case OPT_DIR:
			if (!a->want_dir)
				goto unknown;
			a->dir = optarg;
			break;
		case OPT_ROOT:
			if (!a->want_root)
				goto unknown;
			a->root = optarg;
			break;
		default:
			return opt_error(c, argv, argv[0]);
		}
	}
	a->argc = argc - optind;
	a->argv = argv + optind;
	return -1;
unknown:
	errline("unknown option '--%s' for %s (see runner --help)", cmd_opts[idx].name, argv[0]);
	return EXIT_USAGE;
}

static int want_args(const struct cmd_args *a, int min, int max, const char *cmd, const char *what)
{
	if (a->argc < min || a->argc > max) {
		errline("%s: expected %s (see runner --help)", cmd, what);
		return EXIT_USAGE;
	}
	return -1;
}

/* ---- container detection, shared by detect, which, venv and doctor ---- */

static int detect(const struct ctx *cx, const char *root, struct detect_result *r)
{
	struct detect_input in;
	int ret;

	detect_input_init(&in, root ? root : cx->s.root, environ);
	in.override = cx->s.container;
	ret = detect_container(&in, r);
	if (ret < 0 && ret != -EINVAL) {
		errline("container detection: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

static void interp_env_init(const struct ctx *cx, const struct detect_result *r,
			    struct interp_env *e)
{
	memset(e, 0, sizeof(*e));
	e->in_container = r->kind != CONTAINER_NONE;
	e->container = container_kind_name(r->kind);
}

/* ---- commands ---- */

static int cmd_config(struct ctx *cx, struct cmd_args *a)
{
	char buf[4096];
	json_t *arr, *o;
	int i;

	if (want_args(a, 0, 0, "config", "no arguments") >= 0)
		return EXIT_USAGE;
	if (!cx->json) {
		for (i = 0; i < SET__COUNT; i++)
			printf("%s=%s (%s)\n", settings_name(i),
			       settings_display(&cx->s, i, buf, sizeof(buf)), settings_origin(&cx->s, i));
		return EXIT_OK;
	}
	arr = json_array();
	for (i = 0; arr && i < SET__COUNT; i++) {
		const char *al = settings_aliases(i);

		o = json_pack("{s:s, s:s, s:s, s:s, s:o}",
			      "name", settings_name(i),
			      "value", settings_display(&cx->s, i, buf, sizeof(buf)),
			      "source", settings_source_name(cx->s.v[i].raw ? cx->s.v[i].source : SRC_DEFAULT),
			      "origin", settings_origin(&cx->s, i),
			      "aliases", al[0] ? json_pack("[s]", al) : json_array());
		json_array_append_new(arr, o);
	}
	return print_json(json_pack("{s:o}", "settings", arr));
}

static int open_store(struct ctx *cx, struct store **st)
{
	char err[1024];
	int ret = store_open(cx->s.state_dir, st, err, sizeof(err));

	if (ret < 0)
		errline("job store: %s", err);
	return ret;
}

static int cmd_upload(struct ctx *cx, struct cmd_args *a)
{
	struct upload_request req = { 0 };
	struct store *st;
	char id[37], err[2048];
	int ret;

	if (want_args(a, 1, 1, "upload", "one FILE") >= 0)
		return EXIT_USAGE;
	req.src = a->argv[0];
	req.name = a->name;
	if (open_store(cx, &st) < 0)
		return EXIT_FAILED;
	ret = upload_script(&cx->s, st, &req, id, err, sizeof(err));
	store_close(st);
	if (ret < 0) {
		errline("upload: %s", err);
		return req.input_error ? EXIT_USAGE : EXIT_FAILED;
	}
	if (cx->json)
		return print_json(json_pack("{s:s}", "id", id));
	printf("%s\n", id);
	return EXIT_OK;
}

static int list_cb(void *ctx, const struct script_rec *r)
{
	json_t *arr = ctx;

	if (arr == NULL) {
		printf("%s\t%s\t%lld\t%s\n", r->id, r->lang, (long long)r->size, r->name);
		return 0;
	}
	return json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}",
						    "id", r->id, "name", r->name, "file", r->file,
						    "lang", r->lang, "size", (json_int_t)r->size,
						    "created_at_ms", (json_int_t)r->created_at)) ? -ENOMEM : 0;
}

static int cmd_scripts(struct ctx *cx, struct cmd_args *a)
{
	struct store *st;
	json_t *arr = NULL;
	char err[1024];
	int ret;

	if (want_args(a, 0, 0, "scripts", "no arguments") >= 0)
		return EXIT_USAGE;
	if (open_store(cx, &st) < 0)
		return EXIT_FAILED;
	if (cx->json)
		arr = json_array();
	ret = store_list_scripts(st, list_cb, arr, err, sizeof(err));
	store_close(st);
	if (ret < 0) {
		errline("scripts: %s", ret == -ENOMEM ? strerror(ENOMEM) : err);
		json_decref(arr);
		return EXIT_FAILED;
	}
	if (cx->json)
		return print_json(json_pack("{s:o}", "scripts", arr));
	return EXIT_OK;
}

static json_t *interp_json(const struct ctx *cx, const struct interp_choice *c)
{
	json_t *args = json_array();
	size_t i;

	for (i = 0; i < c->n_args; i++)
		json_array_append_new(args, json_string(c->args[i]));
	return json_pack("{s:s, s:s?, s:o, s:s, s:b, s:s, s:s}",
			 "lang", interp_lang_name(c->lang),
			 "path", c->path[0] ? c->path : NULL,
			 "args", args,
			 "setting", c->setting,
			 "explicit", c->explicit_setting,
			 "exec_mode", cx->s.exec_mode == EXEC_DIRECT ? "direct" : "interpreter",
			 "reason", c->reason);
}

static int cmd_which(struct ctx *cx, struct cmd_args *a)
{
	struct detect_result r;
	struct interp_choice c;
	struct interp_env e;
	int lang, ret;
	size_t i;

	if (want_args(a, 1, 1, "which", "one of python, node, ts") >= 0)
		return EXIT_USAGE;
	lang = interp_lang_from_name(a->argv[0]);
	if (lang < 0) {
		errline("which: unknown language '%s' (python, node or ts)", a->argv[0]);
		return EXIT_USAGE;
	}
	if (detect(cx, NULL, &r) < 0)
		return EXIT_FAILED;
	interp_env_init(cx, &r, &e);
	ret = interp_choose(&cx->s, lang, &e, &c);
	detect_result_free(&r);
	if (ret < 0)
		errline("which %s: %s", interp_lang_name(lang), c.reason);
	if (cx->json) {
		print_json(interp_json(cx, &c));
	} else if (ret == 0) {
		printf("%s", c.path);
		for (i = 0; i < c.n_args; i++)
			printf(" %s", c.args[i]);
		printf("\nreason: %s\n", c.reason);
	}
	if (ret == -EINVAL)
		return EXIT_USAGE;
	return ret < 0 ? EXIT_FAILED : EXIT_OK;
}

static int resolve_runner_dir(struct ctx *cx, struct runnerdir_choice *c)
{
	int ret = runnerdir_resolve(&cx->s, c);

	if (ret == -ENOMEM) {
		errline("runner dir: %s", strerror(ENOMEM));
		return ret;
	}
	/* The decision goes to the log whatever it was: the field report's
	 * first question was always "which directory did it use?". */
	errline("runner dir: %s", c->reason);
	return ret;
}

static int cmd_runner_dir(struct ctx *cx, struct cmd_args *a)
{
	struct runnerdir_choice c;
	json_t *cands;
	size_t i;
	int ret;

	if (want_args(a, 0, 0, "runner-dir", "no arguments") >= 0)
		return EXIT_USAGE;
	ret = resolve_runner_dir(cx, &c);
	if (ret == -ENOMEM)
		return EXIT_FAILED;
	if (!cx->json) {
		if (ret == 0)
			printf("%s\n", c.path);
		return ret < 0 ? EXIT_FAILED : EXIT_OK;
	}
	cands = json_array();
	for (i = 0; i < c.n; i++) {
		const struct runnerdir_probe *p = &c.probes[i];

		json_array_append_new(cands, json_pack("{s:s, s:b, s:b, s:s?, s:s?}",
			"path", p->path, "writable", p->err == 0, "noexec", p->noexec,
			"error", p->err ? strerror(p->err) : NULL,
			"why", p->why[0] ? p->why : NULL));
	}
	print_json(json_pack("{s:s?, s:b, s:b, s:s, s:o}",
			     "path", c.path[0] ? c.path : NULL, "fallback", c.fallback,
			     "noexec", c.noexec, "reason", c.reason, "candidates", cands));
	return ret < 0 ? EXIT_FAILED : EXIT_OK;
}

static int read_file(const char *path, char **buf, size_t *len)
{
	FILE *f = fopen(path, "re");
	size_t cap = 4096, n;
	char *b;

	if (f == NULL)
		return -errno;
	b = malloc(cap);
	*len = 0;
	while (b && (n = fread(b + *len, 1, cap - *len, f)) > 0) {
		*len += n;
		if (*len == cap) {
			char *nb = cap > 16u << 20 ? NULL : realloc(b, cap *= 2);

			if (nb == NULL) {
				free(b);
				b = NULL;
				errno = EFBIG;
			}
			b = nb;
		}
	}
	if (b == NULL || ferror(f)) {
		int e = b ? EIO : errno ? errno : ENOMEM;

		free(b);
		fclose(f);
		return -e;
	}
	fclose(f);
	*buf = b;
	return 0;
}

static int cmd_runner_script(struct ctx *cx, struct cmd_args *a)
{
	struct runnerdir_choice c;
	char path[8192], err[2048], *buf = NULL;
	size_t len = 0;
	int ret;

	if (want_args(a, 2, 2, "runner-script", "USER FILE") >= 0)
		return EXIT_USAGE;
	ret = read_file(a->argv[1], &buf, &len);
	if (ret < 0) {
		errline("runner-script: %s: %s", a->argv[1], strerror(-ret));
		return EXIT_USAGE;
	}
	if (resolve_runner_dir(cx, &c) < 0) {
		free(buf);
		return EXIT_FAILED;
	}
	ret = runnerdir_write_script(c.path, a->argv[0], buf, len, path, sizeof(path),
				     err, sizeof(err));
	free(buf);
	if (ret < 0) {
		errline("runner-script: %s", err);
		return EXIT_FAILED;
	}
	if (cx->json)
		return print_json(json_pack("{s:s}", "path", path));
	printf("%s\n", path);
	return EXIT_OK;
}

static int cmd_detect(struct ctx *cx, struct cmd_args *a)
{
	struct detect_result r;
	size_t i;

	a->want_root = true;
	if (want_args(a, 0, 0, "detect", "no arguments") >= 0)
		return EXIT_USAGE;
	if (detect(cx, a->root, &r) < 0)
		return EXIT_FAILED;
	if (cx->json) {
		print_json(detect_result_to_json(&r));
	} else {
		printf("%s%s\n", container_kind_name(r.kind),
		       r.overridden ? " (set by RUNNER_CONTAINER)" : "");
		for (i = 0; i < r.n_evidence; i++) {
			const struct detect_evidence *ev = &r.evidence[i];

			printf("  %s %s: %s%s%s\n", (int)i == r.decided_by ? "*" : "-", ev->source,
			       ev->text, ev->kind >= 0 ? " -> " : "",
			       ev->kind >= 0 ? container_kind_name(ev->kind) : "");
		}
	}
	detect_result_free(&r);
	return EXIT_OK;
}

static int cmd_venv(struct ctx *cx, struct cmd_args *a)
{
	struct venv_options o = { 0 };
	struct venv_status vs = { 0 };
	struct detect_result r;
	struct interp_choice c;
	struct interp_env e;
	char *cache = NULL;
	const char *op;
	int ret, rc;

	if (want_args(a, 1, 1, "venv", "ensure, recreate or status") >= 0)
		return EXIT_USAGE;
	op = a->argv[0];
	if (strcmp(op, "ensure") && strcmp(op, "recreate") && strcmp(op, "status")) {
		errline("venv: unknown action '%s' (ensure, recreate or status)", op);
		return EXIT_USAGE;
	}
	if (detect(cx, NULL, &r) < 0)
		return EXIT_FAILED;
	interp_env_init(cx, &r, &e);
	/* The venv is built from the chosen python; its own project venv is
	 * no base for another one, so look past it. */
	ret = interp_choose(&cx->s, LANG_PYTHON, &e, &c);
	if (ret < 0 && strcmp(op, "status") != 0) {
		errline("venv %s: %s", op, c.reason);
		detect_result_free(&r);
		return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILED;
	}
	cache = venv_default_package_cache(cx->s.state_dir);
	o.dir = a->dir ? a->dir : cx->s.venv_dir;
	o.python = c.path[0] ? c.path : NULL;
	o.package_cache = cache;
	o.in_container = e.in_container;
	if (strcmp(op, "ensure") == 0)
		ret = venv_ensure(&o, &vs);
	else if (strcmp(op, "recreate") == 0)
		ret = venv_recreate(&o, &vs);
	else
		ret = venv_status(&o, &vs);
	if (ret < 0)
		errline("venv %s: %s", op, vs.reason ? vs.reason : strerror(-ret));
	rc = ret < 0 ? EXIT_FAILED : EXIT_OK;
	if (ret == 0 && strcmp(op, "status") == 0 && !vs.healthy && !vs.in_container)
		rc = EXIT_FAILED;
	if (cx->json) {
		print_json(venv_status_to_json(&vs));
	} else if (ret == 0) {
		printf("%s: %s\n", vs.dir ? vs.dir : o.dir,
		       vs.in_container ? "in a container, system interpreter" :
		       vs.healthy ? "healthy" : "not healthy");
		if (vs.python)
			printf("python: %s\n", vs.python);
		if (vs.action)
			printf("action: %s\n", vs.action);
		if (vs.reason)
			printf("reason: %s\n", vs.reason);
	}
	venv_status_free(&vs);
	free(cache);
	detect_result_free(&r);
	return rc;
}

static int cmd_doctor(struct ctx *cx, struct cmd_args *a)
{
	static const char *const lang_ext[LANG__COUNT] = { ".py", ".js", ".ts" };
	struct interp_choice c[LANG__COUNT];
	struct doctor_interp di[LANG__COUNT];
	struct doctor_input in;
	struct doctor_result res = { 0 };
	struct detect_result r;
	struct interp_env e;
	char *db = NULL;
	int i, ret, rc;
	size_t t;

	if (want_args(a, 0, 0, "doctor", "no arguments") >= 0)
		return EXIT_USAGE;
	if (detect(cx, NULL, &r) < 0)
		return EXIT_FAILED;
	interp_env_init(cx, &r, &e);
	doctor_input_init(&in);
	for (i = 0; i < LANG__COUNT; i++) {
		bool allowed = false;

		interp_choose(&cx->s, i, &e, &c[i]);
		for (t = 0; t < cx->s.n_types; t++)
			allowed |= strcmp(cx->s.types[t], lang_ext[i]) == 0;
		di[i].lang = interp_lang_name(i);
		di[i].path = c[i].path[0] ? c[i].path : NULL;
		di[i].why = c[i].reason;
		/* Python is what the field reports run; a missing node or
		 * TypeScript runner is worth a warning, not a failed deploy. */
		di[i].required = i == LANG_PYTHON && allowed;
		if (!allowed && di[i].path == NULL)
			di[i].why = "not needed: type not in RUNNER_ALLOWED_TYPES";
	}
	if (asprintf(&db, "%s/runner.db", cx->s.state_dir) < 0) {
		detect_result_free(&r);
		return EXIT_FAILED;
	}
	in.state_dir = cx->s.state_dir;
	in.scripts_dir = cx->s.scripts_dir;
	in.runner_dir = cx->s.runner_dir;
	in.exec_direct = cx->s.exec_mode == EXEC_DIRECT;
	in.interps = di;
	in.n_interps = LANG__COUNT;
	in.venv_dir = cx->s.venv_dir;
	in.venv_python = c[LANG_PYTHON].path[0] ? c[LANG_PYTHON].path : NULL;
	in.db_path = db;
	detect_input_init(&in.detect, cx->s.root, environ);
	in.detect.override = cx->s.container;
	ret = doctor_run(&in, &res);
	if (ret < 0) {
		errline("doctor: %s", strerror(-ret));
		rc = EXIT_FAILED;
	} else {
		rc = doctor_exit_code(&res) ? EXIT_FAILED : EXIT_OK;
		if (cx->json)
			print_json(doctor_result_to_json(&res));
		else
			doctor_print_text(stdout, &res);
	}
	doctor_result_free(&res);
	detect_result_free(&r);
	free(db);
	return rc;
}

struct command {
	const char *name;
	int (*fn)(struct ctx *, struct cmd_args *);
	bool name_opt, dir_opt, root_opt;
};

static const struct command commands[] = {
	{ "config", cmd_config, false, false, false },
	{ "upload", cmd_upload, true, false, false },
	{ "scripts", cmd_scripts, false, false, false },
	{ "which", cmd_which, false, false, false },
	{ "runner-dir", cmd_runner_dir, false, false, false },
	{ "runner-script", cmd_runner_script, false, false, false },
	{ "detect", cmd_detect, false, false, true },
	{ "venv", cmd_venv, false, true, false },
	{ "doctor", cmd_doctor, false, false, false },
	{ NULL, NULL, false, false, false },
};

int main(int argc, char **argv)
{
	struct ctx cx = { 0 };
	struct cmd_args a = { 0 };
	const struct command *cmd;
	const char *env_file = NULL;
	char err[1024];
	int c, ret, rc = EXIT_USAGE;
	bool run_cmd;

	settings_init(&cx.s);
	opterr = 0;
	/* '+': stop at the command; its own options are parsed after it. */
	while ((c = getopt_long(argc, argv, "+:", global_opts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE:
			settings_set(&cx.s, "RUNNER_STATE_DIR", optarg, SRC_FLAG, "flag --state");
			break;
		case OPT_ENV_FILE:
			env_file = optarg;
			break;
		case OPT_EXEC_MODE:
			settings_set(&cx.s, "RUNNER_EXEC_MODE", optarg, SRC_FLAG, "flag --exec-mode");
			break;
		case OPT_ROOT:
			settings_set(&cx.s, "RUNNER_ROOT", optarg, SRC_FLAG, "flag --root");
			break;
		case OPT_JSON:
			cx.json = true;
			break;
		case OPT_HELP:
			printf(usage_text, cli_run_usage);
			rc = EXIT_OK;
			goto out;
		case OPT_VERSION:
			printf("runner %s\n", FIELDRIG_VERSION);
			rc = EXIT_OK;
			goto out;
		default:
			rc = opt_error(c, argv, NULL);
			goto out;
		}
	}
	if (optind >= argc) {
		errline("no command given (see runner --help)");
		goto out;
	}
	for (cmd = commands; cmd->name; cmd++) {
		if (strcmp(cmd->name, argv[optind]) == 0)
			break;
	}
	/* The run commands (cli_run.c) parse their own options. */
	run_cmd = cli_run_known(argv[optind]);
	if (cmd->name == NULL && !run_cmd) {
		errline("unknown command '%s' (see runner --help)", argv[optind]);
		goto out;
	}

	a.want_name = cmd->name_opt;
	a.want_dir = cmd->dir_opt;
	a.want_root = cmd->root_opt;
	ret = run_cmd ? -1 : parse_cmd(&cx, argc - optind, argv + optind, &a);
	if (ret >= 0) {
		rc = ret;
		goto out;
	}

	if (settings_load_env(&cx.s, NULL) < 0) {
		errline("%s", strerror(ENOMEM));
		rc = EXIT_FAILED;
		goto out;
	}
	if (env_file) {
		ret = settings_load_envfile(&cx.s, env_file, err, sizeof(err));
		if (ret != 0) {
			errline("%s", ret == -ENOMEM ? strerror(ENOMEM) : err);
			goto out;
		}
	}
	if (settings_finalize(&cx.s, err, sizeof(err)) < 0) {
		errline("%s", err);
		goto out;
	}
	rc = run_cmd ? cli_run(&cx.s, cx.json, argc - optind, argv + optind) : cmd->fn(&cx, &a);
out:
	settings_free(&cx.s);
	return rc;
}
