/* Scenario files: what world to build, what to do in it, what must hold.
 *
 * A scenario is YAML, loaded with libcyaml against a strict schema (unknown
 * keys and unknown enum values are errors).  Every number, mode, duration
 * and boolean is read as the text that was written and parsed strictly
 * with common/strparse.h, because libcyaml would take "12abc" as 12.  The
 * maps whose keys the author chooses (world.mounts, world.env,
 * world.settings) are read from the mark index (ymarks.h), which also gives
 * every error its position: one line, "FILE:LINE:COLUMN: field 'x': reason".
 *
 * The full format is described in harness/README.md.
 */
#ifndef FIELDRIG_SCENARIO_H
#define FIELDRIG_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ymarks.h"

enum sc_container {
	SC_CT_NONE, SC_CT_DOCKER, SC_CT_PODMAN, SC_CT_LXC, SC_CT_NSPAWN, SC_CT_KUBERNETES,
	SC_CT_WSL, SC_CT_OPENVZ, SC_CT_OTHER,
};

enum sc_require { SC_REQ_FUSE, SC_REQ_ROOT, SC_REQ_CGROUP2, SC_REQ_PYTHON, SC_REQ_NODE, SC_REQ__N };

enum sc_step_kind {
	SK_UPLOAD, SK_EXEC, SK_WAIT_LOG, SK_WAIT, SK_CANCEL, SK_CLEANUP, SK_RECOVER, SK_DETECT,
	SK_VENV, SK_DOCTOR, SK_FAULT, SK_KILL, SK_SH, SK_SLEEP, SK__N,
};

enum sc_run_status {
	SC_ST_QUEUED, SC_ST_RUNNING, SC_ST_COMPLETED, SC_ST_FAILED, SC_ST_TIMED_OUT,
	SC_ST_CANCELLED, SC_ST_LOST,
};

/* Where something was written, for messages. */
struct sc_pos {
	unsigned line, col;	/* 1-based; 0 when unknown */
};

struct sc_match {
	char *contains;
	char *not_contains;
	char *regex;
	char *lines;		/* exact line count (text) */
	/* parsed */
	bool has_lines;
	uint64_t nlines;
};

struct sc_mode_expect {
	char *path;
	char *mode;
	uint32_t mode_v;
};

struct sc_files_expect {
	char **present;
	unsigned present_count;
	char **absent;
	unsigned absent_count;
	struct sc_mode_expect *modes;
	unsigned modes_count;
};

struct sc_faults_expect {
	char *mount;		/* default: the only mount */
	char *count;		/* exactly */
	char *min;		/* at least */
	char *op;
	char *path;		/* a glob over the traced path */
	bool has_count, has_min;
	uint64_t count_v, min_v;
};

struct sc_duration_expect {
	char *min, *max;
	uint64_t min_ns, max_ns;	/* max 0: none */
};

struct sc_expect {
	char *exit_code;
	enum sc_run_status *status;
	struct sc_match *error;
	struct sc_match *stdout_;
	struct sc_match *stderr_;
	struct sc_match *logs;
	struct sc_files_expect *files;
	struct sc_faults_expect *faults;
	unsigned faults_count;
	struct sc_duration_expect *duration;
	char *no_leftovers;
	/* parsed */
	bool has_exit_code;
	int exit_code_v;
	bool no_leftovers_v;
	char path[64];		/* "steps.3.expect" or "expect", for positions */
};

struct sc_step {
	/* One of these names the step's kind; its value is the step's argument
	 * (a file, a run, a command...; "" where there is none). */
	char *upload, *exec, *wait_log, *wait, *cancel, *cleanup, *recover, *detect, *venv,
	     *doctor, *fault, *kill, *sh, *sleep;
	char *name;		/* reference label; default: the kind's name */
	char **args;
	unsigned args_count;
	char **env;		/* K=V, for runner exec --env and sh */
	unsigned env_count;
	char *timeout;		/* the step's wall-clock limit (exec: the run's) */
	char *detach;		/* exec: do not wait for the run */
	char *regex;		/* wait_log */
	char *stream;		/* wait_log: stdout or stderr */
	char *mount;		/* fault */
	char *add;		/* fault: a rule expression */
	char *remove;		/* fault: a rule id */
	char *signal;		/* kill: a signal name, default KILL */
	char *target;		/* kill: supervisor (default) or child */
	char *user;		/* exec --user */
	struct sc_expect *expect;
	/* parsed */
	enum sc_step_kind kind;
	const char *arg;
	bool detach_v;
	uint64_t timeout_ns;	/* 0: the default */
	uint64_t sleep_ns;
	int signal_v;
	char label[64];
};

struct sc_file {
	char *path;
	char *content;
	char *mode;
	char *symlink;		/* a symlink to this target instead of content */
	uint32_t mode_v;
	bool has_mode;
};

struct sc_kv {
	char *key, *value;
};

struct sc_mount {
	char *name;
	char **rules;		/* expressions (mappings are turned into expressions) */
	unsigned rules_count;
	char *profile;
	char *options;		/* -o options */
	char *at;		/* where the mount is used, relative to the world
				 * (default: mnt/NAME); e.g. a setting's path */
};

struct sc_world {
	enum sc_container container;
	struct sc_file *files;
	unsigned files_count;
	/* from the index */
	struct sc_mount *mounts;
	unsigned mounts_count;
	struct sc_kv *env;
	unsigned env_count;
	struct sc_kv *settings;
	unsigned settings_count;
};

struct scenario {
	char *name;
	char *description;
	char **tags;
	unsigned tags_count;
	char *reproduces;
	enum sc_require *requires;
	unsigned requires_count;
	char *timeout;
	struct sc_world *world;
	struct sc_step *steps;
	unsigned steps_count;
	struct sc_expect *expect;

	/* filled by the loader */
	char *file;
	uint64_t timeout_ns;
	struct yindex ix;
};

extern const char *const sc_step_kind_names[SK__N];
extern const char *const sc_container_names[];
extern const char *const sc_require_names[SC_REQ__N];
extern const char *const sc_status_names[];

/* Loads and checks FILE.  Returns 0 and a scenario to free with
 * scenario_free(), or -errno with one line in ERR
 * ("FILE:LINE:COLUMN: field 'x': reason"). */
int scenario_load(const char *file, struct scenario **out, char *err, size_t errlen);

/* The same, from a buffer; NAME is used in messages. */
int scenario_load_buffer(const char *name, const char *buf, size_t len, struct scenario **out,
			 char *err, size_t errlen);

void scenario_free(struct scenario *sc);

/* Where the node at PATH ("steps.2.expect.status") was written; the
 * closest written ancestor when PATH itself was not. */
struct sc_pos scenario_pos(const struct scenario *sc, const char *path);

/* Whether the scenario carries TAG. */
bool scenario_has_tag(const struct scenario *sc, const char *tag);

#endif
