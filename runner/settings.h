/* Runner settings: every value the runner reads from flags, the environment
 * or a dotenv file, with the place each one came from.
 *
 * Precedence is flag > environment > --env-file > default: a value is only
 * replaced by one from a source at least as strong.  Within one source the
 * canonical name wins over its alias (RUNNER_DIR over BOT_RUNNER_DIR). */
#ifndef RUNNER_SETTINGS_H
#define RUNNER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum setting_id {
	SET_STATE_DIR,
	SET_RUNNER_DIR,
	SET_PYTHON,
	SET_NODE,
	SET_TS,
	SET_SCRIPTS_DIR,
	SET_MAX_SCRIPT_SIZE,
	SET_MAX_EXECUTION_TIME,
	SET_MAX_CONCURRENT,
	SET_VENV_DIR,
	SET_EXEC_MODE,
	SET_PROJECT_DIR,
	SET_ALLOWED_TYPES,
	SET_CONTAINER,
	SET_ROOT,
	/* Supervision of runs (runner II). */
	SET_KILL_GRACE,
	SET_MAX_LOG,
	SET_CPU_LIMIT,
	SET_MEMORY_LIMIT,
	SET_MAX_PROCS,
	SET_MAX_FILES,
	SET_MAX_FILE_SIZE,
	SET_CGROUP,
	SET_CLEANUP_INTERVAL,
	SET_SERVE_STOP,
	SET_NETWORK,
	SET_RECOVER_POLICY,
	SET_KEEP_RUNS,
	SET__COUNT
};

enum setting_source {
	SRC_DEFAULT = 0,
	SRC_ENVFILE,
	SRC_ENV,
	SRC_FLAG,
};

enum exec_mode {
	EXEC_INTERPRETER = 0,	/* interpreter -u script: no execute bit needed */
	EXEC_DIRECT,		/* execve(script): the old behaviour, on purpose */
};

#define SETTINGS_MAX_TYPES 16

struct setting_value {
	char *raw;			/* NULL while unset */
	enum setting_source source;
	char origin[160];		/* "env BOT_RUNNER_DIR", "env-file .env:4", "flag --state" */
};

struct settings {
	struct setting_value v[SET__COUNT];

	/* Filled by settings_finalize(): absolute or as given, never NULL
	 * except where noted. */
	const char *state_dir;
	char *runner_dir;		/* configured, or <state>/runtime/bot_runners */
	bool runner_dir_configured;
	char *scripts_dir;		/* relative SCRIPTS_DIR is under the state dir */
	char *venv_dir;			/* relative RUNNER_VENV_DIR is under the state dir */
	const char *python;		/* NULL: choose automatically */
	const char *node;
	const char *ts;
	const char *project_dir;	/* NULL: no project venv lookup */
	const char *container;		/* NULL: detect; else a kind or "none" */
	const char *root;		/* root for container detection, "/" by default */
	uint64_t max_script_size;	/* bytes */
	uint64_t max_execution_ns;
	uint64_t max_concurrent;
	enum exec_mode exec_mode;
	size_t n_types;
	char types[SETTINGS_MAX_TYPES][16];	/* ".py", lower case */
	char *state_dir_buf;
	/* Supervision of runs.  A limit of 0 means "not set". */
	uint64_t kill_grace_ns;		/* TERM to KILL */
	uint64_t max_log;		/* bytes of log kept per run */
	uint64_t cpu_limit_s;		/* RLIMIT_CPU, seconds */
	uint64_t memory_limit;		/* memory.max and RLIMIT_DATA, bytes */
	uint64_t max_procs;		/* pids.max and RLIMIT_NPROC */
	uint64_t max_files;		/* RLIMIT_NOFILE */
	uint64_t max_file_size;		/* RLIMIT_FSIZE, bytes */
	bool use_cgroup;		/* RUNNER_CGROUP=auto (true) or off */
	uint64_t cleanup_interval_ns;	/* serve's housekeeping period */
	bool serve_stop_wait;		/* RUNNER_SERVE_STOP=wait (else cancel) */
	bool recover_adopt;		/* RUNNER_RECOVER_POLICY=adopt (else kill) */
	bool net_none;			/* RUNNER_NETWORK=none: own network namespace */
	uint64_t keep_runs_ns;		/* cleanup forgets runs ended longer ago; 0: never */
};

/* Canonical name of a setting ("MAX_EXECUTION_TIME"). */
const char *settings_name(enum setting_id id);

/* Looks a name or alias up; returns the id or -1. */
int settings_lookup(const char *name);

void settings_init(struct settings *s);
void settings_free(struct settings *s);

/* Records value for name (canonical or alias) from src.  Returns 0, 1 when a
 * stronger source already holds a value (ignored), -ENOENT for an unknown
 * name, -ENOMEM. */
int settings_set(struct settings *s, const char *name, const char *value,
		 enum setting_source src, const char *origin);

/* Reads every known name and alias from envp (environ when NULL). */
int settings_load_env(struct settings *s, char *const *envp);

/* Reads a dotenv file; names that are not runner settings are ignored, as
 * the reports' .env also holds other services' variables.  err gets
 * "FILE:LINE: message" on a syntax error. */
int settings_load_envfile(struct settings *s, const char *path, char *err, size_t errlen);

/* Parses and checks every value and derives the defaults.  On a bad value
 * returns -EINVAL with err naming the variable, the value and its origin. */
int settings_finalize(struct settings *s, char *err, size_t errlen);

/* The effective value of a setting as `runner config` shows it ("3600s",
 * "10MiB", "(auto)"), written into buf. */
const char *settings_display(const struct settings *s, enum setting_id id, char *buf, size_t len);

/* Where the effective value came from: "default", "flag --state",
 * "env BOT_RUNNER_DIR", "env-file .env:4". */
const char *settings_origin(const struct settings *s, enum setting_id id);

/* "default", "env", "env-file" or "flag". */
const char *settings_source_name(enum setting_source src);

/* Aliases of a setting as one comma-separated string ("" if none). */
const char *settings_aliases(enum setting_id id);

#endif
