/* Settings table, precedence and strict value parsing. */
#include "settings.h"
#include "dotenv.h"
#include "strparse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

extern char **environ;

struct setting_desc {
	const char *name;
	const char *alias;	/* the field reports' own name, or NULL */
	const char *def;	/* default raw value, or NULL when derived */
};

static const struct setting_desc table[SET__COUNT] = {
	[SET_STATE_DIR]		 = { "RUNNER_STATE_DIR", NULL, NULL },
	[SET_RUNNER_DIR]	 = { "RUNNER_DIR", "BOT_RUNNER_DIR", NULL },
	[SET_PYTHON]		 = { "RUNNER_PYTHON", "BLITZ_PYTHON", NULL },
	[SET_NODE]		 = { "RUNNER_NODE", NULL, NULL },
	[SET_TS]		 = { "RUNNER_TS", NULL, NULL },
	[SET_SCRIPTS_DIR]	 = { "SCRIPTS_DIR", NULL, "scripts" },
	[SET_MAX_SCRIPT_SIZE]	 = { "MAX_SCRIPT_SIZE", NULL, "10MiB" },
	[SET_MAX_EXECUTION_TIME] = { "MAX_EXECUTION_TIME", NULL, "1h" },
	[SET_MAX_CONCURRENT]	 = { "MAX_CONCURRENT_SCRIPTS", NULL, "5" },
	[SET_VENV_DIR]		 = { "RUNNER_VENV_DIR", NULL, "venv" },
	[SET_EXEC_MODE]		 = { "RUNNER_EXEC_MODE", NULL, "interpreter" },
	[SET_PROJECT_DIR]	 = { "RUNNER_PROJECT_DIR", NULL, NULL },
	[SET_ALLOWED_TYPES]	 = { "RUNNER_ALLOWED_TYPES", NULL, ".py,.js,.ts" },
	[SET_CONTAINER]		 = { "RUNNER_CONTAINER", NULL, NULL },
	[SET_ROOT]		 = { "RUNNER_ROOT", NULL, "/" },
	[SET_KILL_GRACE]	 = { "RUNNER_KILL_GRACE", NULL, "2s" },
	[SET_MAX_LOG]		 = { "RUNNER_MAX_LOG", NULL, "64MiB" },
	[SET_CPU_LIMIT]		 = { "RUNNER_CPU_LIMIT", NULL, "0" },
	[SET_MEMORY_LIMIT]	 = { "RUNNER_MEMORY_LIMIT", NULL, "0" },
	[SET_MAX_PROCS]		 = { "RUNNER_MAX_PROCS", NULL, "1024" },
	[SET_MAX_FILES]		 = { "RUNNER_MAX_FILES", NULL, "1024" },
	[SET_MAX_FILE_SIZE]	 = { "RUNNER_MAX_FILE_SIZE", NULL, "0" },
	[SET_CGROUP]		 = { "RUNNER_CGROUP", NULL, "auto" },
	[SET_CLEANUP_INTERVAL]	 = { "RUNNER_CLEANUP_INTERVAL", NULL, "5m" },
	[SET_SERVE_STOP]	 = { "RUNNER_SERVE_STOP", NULL, "cancel" },
	[SET_NETWORK]		 = { "RUNNER_NETWORK", "RUN_NETWORK", "host" },
	[SET_RECOVER_POLICY]	 = { "RUNNER_RECOVER_POLICY", "RECOVER_POLICY", "kill" },
	[SET_KEEP_RUNS]		 = { "RUNNER_KEEP_RUNS", NULL, "30d" },
};

const char *settings_name(enum setting_id id)
{
	return table[id].name;
}

const char *settings_aliases(enum setting_id id)
{
	return table[id].alias ? table[id].alias : "";
}

const char *settings_source_name(enum setting_source src)
{
	switch (src) {
	case SRC_FLAG: return "flag";
	case SRC_ENV: return "env";
	case SRC_ENVFILE: return "env-file";
	default: return "default";
	}
}

int settings_lookup(const char *name)
{
	int i;

	for (i = 0; i < SET__COUNT; i++) {
		if (strcmp(name, table[i].name) == 0 ||
		    (table[i].alias && strcmp(name, table[i].alias) == 0))
			return i;
	}
	return -1;
}

void settings_init(struct settings *s)
{
	memset(s, 0, sizeof(*s));
}

void settings_free(struct settings *s)
{
	int i;

	for (i = 0; i < SET__COUNT; i++)
		free(s->v[i].raw);
	free(s->runner_dir);
	free(s->scripts_dir);
	free(s->venv_dir);
	free(s->state_dir_buf);
	memset(s, 0, sizeof(*s));
}

static int set_id(struct settings *s, int id, const char *value,
		  enum setting_source src, const char *origin)
{
	struct setting_value *sv = &s->v[id];
	char *dup;

	if (sv->raw != NULL && sv->source > src)
		return 1;
	dup = strdup(value);
	if (dup == NULL)
		return -ENOMEM;
	free(sv->raw);
	sv->raw = dup;
	sv->source = src;
	snprintf(sv->origin, sizeof(sv->origin), "%s", origin);
	return 0;
}

int settings_set(struct settings *s, const char *name, const char *value,
		 enum setting_source src, const char *origin)
{
	int id = settings_lookup(name);

	if (id < 0)
		return -ENOENT;
	return set_id(s, id, value, src, origin);
}

int settings_load_env(struct settings *s, char *const *envp)
{
	char origin[160];
	const char *val;
	int i, pass, ret;
	size_t nl;

	if (envp == NULL)
		envp = environ;
	/* Aliases first, canonical names second: equal sources overwrite, so
	 * the canonical name wins when both are set. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < SET__COUNT; i++) {
			const char *name = pass == 0 ? table[i].alias : table[i].name;
			char *const *e;

			if (name == NULL)
				continue;
			nl = strlen(name);
			val = NULL;
			for (e = envp; *e != NULL; e++) {
				if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
					val = *e + nl + 1;
			}
			if (val == NULL)
				continue;
			snprintf(origin, sizeof(origin), "env %s", name);
			ret = set_id(s, i, val, SRC_ENV, origin);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

struct envfile_ctx {
	struct settings *s;
	const char *path;
	/* Per id: set from the canonical name already in this file? */
	bool canonical[SET__COUNT];
};

static int envfile_cb(void *ctx, const char *key, const char *value, unsigned line)
{
	struct envfile_ctx *c = ctx;
	char origin[160];
	int id = settings_lookup(key);
	bool is_alias;

	if (id < 0)
		return 0;
	is_alias = strcmp(key, table[id].name) != 0;
	/* Same rule as the environment: an alias never overrides the
	 * canonical name given in the same file. */
	if (is_alias && c->canonical[id])
		return 0;
	if (!is_alias)
		c->canonical[id] = true;
	snprintf(origin, sizeof(origin), "env-file %s:%u", c->path, line);
	/* "A stronger source holds it" is not an error: keep reading. */
	return set_id(c->s, id, value, SRC_ENVFILE, origin) < 0 ? -ENOMEM : 0;
}

int settings_load_envfile(struct settings *s, const char *path, char *err, size_t errlen)
{
	struct envfile_ctx c = { .s = s, .path = path };

	return dotenv_load(path, envfile_cb, &c, err, errlen);
}

static const char *raw(const struct settings *s, enum setting_id id)
{
	return s->v[id].raw ? s->v[id].raw : table[id].def;
}

const char *settings_origin(const struct settings *s, enum setting_id id)
{
	return s->v[id].raw ? s->v[id].origin : "default";
}

static int bad(const struct settings *s, enum setting_id id, char *err, size_t errlen,
	       const char *why)
{
	snprintf(err, errlen, "%s: invalid value '%s' (%s): %s", table[id].name,
		 raw(s, id), settings_origin(s, id), why);
	return -EINVAL;
}

/* Joins a relative path onto the state dir; absolute paths stay as given. */
/* p as an absolute path (against the working directory when relative), so
 * that a detached supervisor, which changes to /, still finds it.  A new
 * string, or NULL (errno set). */
static char *absolute(const char *p)
{
	char *cwd, *out;

	if (p[0] == '/')
		return strdup(p);
	cwd = getcwd(NULL, 0);
	if (cwd == NULL)
		return NULL;
	if (asprintf(&out, "%s/%s", cwd, p) < 0)
		out = NULL;
	free(cwd);
	return out;
}

static char *under_state(const char *state, const char *p)
{
	char *out;

	if (p[0] == '/')
		return strdup(p);
	if (asprintf(&out, "%s/%s", state, p) < 0)
		return NULL;
	return out;
}

static const char *nonempty(const struct settings *s, enum setting_id id)
{
	const char *r = raw(s, id);

	return r && r[0] ? r : NULL;
}

static int parse_types(struct settings *s, char *err, size_t errlen)
{
	const char *p = raw(s, SET_ALLOWED_TYPES);

	s->n_types = 0;
	while (*p) {
		size_t n = strcspn(p, ", ");
		size_t i, off = 0;
		char *t;

		if (n > 0) {
			if (s->n_types == SETTINGS_MAX_TYPES)
				return bad(s, SET_ALLOWED_TYPES, err, errlen, "too many types");
			t = s->types[s->n_types];
			/* ".py" and "py" both mean the same extension. */
			if (p[0] == '.') {
				p++;
				n--;
			}
			if (n == 0 || n > 8)
				return bad(s, SET_ALLOWED_TYPES, err, errlen,
					   "each type is an extension such as .py");
			t[off++] = '.';
			for (i = 0; i < n; i++) {
				char c = p[i];

				if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				      (c >= '0' && c <= '9')))
					return bad(s, SET_ALLOWED_TYPES, err, errlen,
						   "extensions are letters and digits");
				t[off++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
			}
			t[off] = '\0';
			s->n_types++;
		}
		p += n;
		p += strspn(p, ", ");
	}
	if (s->n_types == 0)
		return bad(s, SET_ALLOWED_TYPES, err, errlen, "no type allowed");
	return 0;
}

static const char *const container_kinds[] = {
	"docker", "podman", "lxc", "systemd-nspawn", "kubernetes", "wsl",
	"openvz", "container-other", "none", NULL
};

int settings_finalize(struct settings *s, char *err, size_t errlen)
{
	const char *r;
	size_t i;

	/* The state directory: flag or env, else under the user's XDG state
	 * home; never /tmp, which is where the field report's trouble began. */
	r = nonempty(s, SET_STATE_DIR);
	free(s->state_dir_buf);
	s->state_dir_buf = NULL;
	if (r == NULL) {
		const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

		if (xdg && xdg[0] == '/')
			i = (size_t)asprintf(&s->state_dir_buf, "%s/fieldrig-runner", xdg);
		else if (home && home[0] == '/')
			i = (size_t)asprintf(&s->state_dir_buf, "%s/.local/state/fieldrig-runner", home);
		else
			return bad(s, SET_STATE_DIR, err, errlen,
				   "unset, and neither XDG_STATE_HOME nor HOME is an absolute path; use --state DIR");
		if (i == (size_t)-1)
			return -ENOMEM;
		s->state_dir = s->state_dir_buf;
	} else {
		s->state_dir_buf = absolute(r);
		if (s->state_dir_buf == NULL)
			return bad(s, SET_STATE_DIR, err, errlen, "cannot make the relative path absolute");
		s->state_dir = s->state_dir_buf;
	}

	free(s->runner_dir);
	r = nonempty(s, SET_RUNNER_DIR);
	s->runner_dir_configured = r != NULL;
	if (r != NULL)
		s->runner_dir = absolute(r);
	else
		s->runner_dir = under_state(s->state_dir, "runtime/bot_runners");
	free(s->scripts_dir);
	s->scripts_dir = under_state(s->state_dir, nonempty(s, SET_SCRIPTS_DIR) ?: "scripts");
	free(s->venv_dir);
	s->venv_dir = under_state(s->state_dir, nonempty(s, SET_VENV_DIR) ?: "venv");
	if (!s->runner_dir || !s->scripts_dir || !s->venv_dir)
		return -ENOMEM;

	s->python = nonempty(s, SET_PYTHON);
	s->node = nonempty(s, SET_NODE);
	s->ts = nonempty(s, SET_TS);
	s->project_dir = nonempty(s, SET_PROJECT_DIR);
	s->root = nonempty(s, SET_ROOT) ?: "/";

	if (parse_size(raw(s, SET_MAX_SCRIPT_SIZE), &s->max_script_size) < 0)
		return bad(s, SET_MAX_SCRIPT_SIZE, err, errlen,
			   "expected a size such as 10485760, 512KiB or 10MiB");
	if (s->max_script_size == 0)
		return bad(s, SET_MAX_SCRIPT_SIZE, err, errlen, "must be more than 0");
	/* A bare number is seconds, as in the reports' MAX_EXECUTION_TIME=3600. */
	if (parse_duration_ns(raw(s, SET_MAX_EXECUTION_TIME), 1000000000ULL,
			      &s->max_execution_ns) < 0)
		return bad(s, SET_MAX_EXECUTION_TIME, err, errlen,
			   "expected a duration such as 3600, 90s, 30m or 1h");
	if (s->max_execution_ns == 0)
		return bad(s, SET_MAX_EXECUTION_TIME, err, errlen, "must be more than 0");
	if (parse_u64(raw(s, SET_MAX_CONCURRENT), &s->max_concurrent) < 0 ||
	    s->max_concurrent == 0 || s->max_concurrent > 4096)
		return bad(s, SET_MAX_CONCURRENT, err, errlen, "expected a whole number from 1 to 4096");

	/* A bare grace is seconds like MAX_EXECUTION_TIME; 0 sends KILL
	 * right after TERM. */
	if (parse_duration_ns(raw(s, SET_KILL_GRACE), 1000000000ULL, &s->kill_grace_ns) < 0)
		return bad(s, SET_KILL_GRACE, err, errlen, "expected a duration such as 2s or 500ms");
	if (parse_size(raw(s, SET_MAX_LOG), &s->max_log) < 0 || s->max_log == 0)
		return bad(s, SET_MAX_LOG, err, errlen, "expected a size above 0 such as 64MiB");
	{
		uint64_t ns;

		if (parse_duration_ns(raw(s, SET_CPU_LIMIT), 1000000000ULL, &ns) < 0)
			return bad(s, SET_CPU_LIMIT, err, errlen,
				   "expected CPU seconds such as 300 or 5m (0: no limit)");
		/* RLIMIT_CPU counts whole seconds; round a part second up. */
		s->cpu_limit_s = (ns + 999999999ULL) / 1000000000ULL;
	}
	if (parse_size(raw(s, SET_MEMORY_LIMIT), &s->memory_limit) < 0)
		return bad(s, SET_MEMORY_LIMIT, err, errlen, "expected a size such as 512MiB (0: no limit)");
	if (parse_u64(raw(s, SET_MAX_PROCS), &s->max_procs) < 0)
		return bad(s, SET_MAX_PROCS, err, errlen, "expected a whole number (0: no limit)");
	if (parse_u64(raw(s, SET_MAX_FILES), &s->max_files) < 0 || s->max_files > (1u << 20))
		return bad(s, SET_MAX_FILES, err, errlen, "expected a whole number up to 1048576 (0: no limit)");
	if (parse_size(raw(s, SET_MAX_FILE_SIZE), &s->max_file_size) < 0)
		return bad(s, SET_MAX_FILE_SIZE, err, errlen, "expected a size such as 1GiB (0: no limit)");

	/* off: the process group, subreaper and /proc sweep domain even
	 * where a cgroup could be made (tests of that path, odd hosts). */
	r = raw(s, SET_CGROUP);
	if (strcmp(r, "auto") == 0)
		s->use_cgroup = true;
	else if (strcmp(r, "off") == 0)
		s->use_cgroup = false;
	else
		return bad(s, SET_CGROUP, err, errlen, "expected auto or off");
	if (parse_duration_ns(raw(s, SET_CLEANUP_INTERVAL), 1000000000ULL,
			      &s->cleanup_interval_ns) < 0 || s->cleanup_interval_ns < 1000000ULL)
		return bad(s, SET_CLEANUP_INTERVAL, err, errlen,
			   "expected a duration of at least 1ms such as 5m");
	r = raw(s, SET_SERVE_STOP);
	if (strcmp(r, "cancel") == 0)
		s->serve_stop_wait = false;
	else if (strcmp(r, "wait") == 0)
		s->serve_stop_wait = true;
	else
		return bad(s, SET_SERVE_STOP, err, errlen, "expected cancel or wait");
	r = raw(s, SET_NETWORK);
	if (strcmp(r, "host") == 0)
		s->net_none = false;
	else if (strcmp(r, "none") == 0)
		s->net_none = true;
	else
		return bad(s, SET_NETWORK, err, errlen, "expected none or host");
	r = raw(s, SET_RECOVER_POLICY);
	if (strcmp(r, "kill") == 0)
		s->recover_adopt = false;
	else if (strcmp(r, "adopt") == 0)
		s->recover_adopt = true;
	else
		return bad(s, SET_RECOVER_POLICY, err, errlen, "expected kill or adopt");
	if (parse_duration_ns(raw(s, SET_KEEP_RUNS), 1000000000ULL, &s->keep_runs_ns) < 0)
		return bad(s, SET_KEEP_RUNS, err, errlen,
			   "expected a duration such as 30d (0: keep every run)");

	r = raw(s, SET_EXEC_MODE);
	if (strcmp(r, "interpreter") == 0)
		s->exec_mode = EXEC_INTERPRETER;
	else if (strcmp(r, "direct") == 0)
		s->exec_mode = EXEC_DIRECT;
	else
		return bad(s, SET_EXEC_MODE, err, errlen, "expected interpreter or direct");

	if (parse_types(s, err, errlen) < 0)
		return -EINVAL;

	s->container = nonempty(s, SET_CONTAINER);
	if (s->container != NULL) {
		for (i = 0; container_kinds[i]; i++) {
			if (strcmp(s->container, container_kinds[i]) == 0)
				break;
		}
		if (container_kinds[i] == NULL)
			return bad(s, SET_CONTAINER, err, errlen,
				   "expected docker, podman, lxc, systemd-nspawn, kubernetes, wsl, openvz, container-other or none");
	}
	return 0;
}

/* Sizes print in the largest binary unit that divides them exactly. */
static void fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u < 4 && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu%s", (unsigned long long)v, units[u]);
}

static void fmt_duration(uint64_t ns, char *buf, size_t len)
{
	if (ns % 1000000000ULL == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ns / 1000000000ULL));
	else if (ns % 1000000ULL == 0)
		snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000ULL));
	else
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
}

const char *settings_display(const struct settings *s, enum setting_id id, char *buf, size_t len)
{
	size_t i, off = 0;

	switch (id) {
	case SET_STATE_DIR: snprintf(buf, len, "%s", s->state_dir); break;
	case SET_RUNNER_DIR: snprintf(buf, len, "%s", s->runner_dir); break;
	case SET_SCRIPTS_DIR: snprintf(buf, len, "%s", s->scripts_dir); break;
	case SET_VENV_DIR: snprintf(buf, len, "%s", s->venv_dir); break;
	case SET_MAX_SCRIPT_SIZE: fmt_size(s->max_script_size, buf, len); break;
	case SET_MAX_EXECUTION_TIME: fmt_duration(s->max_execution_ns, buf, len); break;
	case SET_MAX_CONCURRENT:
		snprintf(buf, len, "%llu", (unsigned long long)s->max_concurrent);
		break;
	case SET_EXEC_MODE:
		snprintf(buf, len, "%s", s->exec_mode == EXEC_DIRECT ? "direct" : "interpreter");
		break;
	case SET_ALLOWED_TYPES:
		buf[0] = '\0';
		for (i = 0; i < s->n_types && off < len; i++)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", s->types[i]);
		break;
	case SET_ROOT: snprintf(buf, len, "%s", s->root); break;
	case SET_KILL_GRACE: fmt_duration(s->kill_grace_ns, buf, len); break;
	case SET_CLEANUP_INTERVAL: fmt_duration(s->cleanup_interval_ns, buf, len); break;
	case SET_KEEP_RUNS: fmt_duration(s->keep_runs_ns, buf, len); break;
	case SET_MAX_LOG: fmt_size(s->max_log, buf, len); break;
	case SET_CPU_LIMIT: snprintf(buf, len, "%llus", (unsigned long long)s->cpu_limit_s); break;
	case SET_MEMORY_LIMIT: fmt_size(s->memory_limit, buf, len); break;
	case SET_MAX_FILE_SIZE: fmt_size(s->max_file_size, buf, len); break;
	case SET_MAX_PROCS:
	case SET_MAX_FILES:
		snprintf(buf, len, "%llu", (unsigned long long)(id == SET_MAX_PROCS ?
			 s->max_procs : s->max_files));
		break;
	default: {
		const char *r = nonempty(s, id);

		snprintf(buf, len, "%s", r ? r : id == SET_PROJECT_DIR ? "(none)" : "(auto)");
		break;
	}
	}
	return buf;
}
