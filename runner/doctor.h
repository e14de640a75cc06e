/* `runner doctor`: the pre-deploy verification of field report 000 made
 * general.  The caller fills a struct doctor_input from its settings; the
 * checks use nothing else, so they can be pointed at crafted directories. */
#ifndef RUNNER_DOCTOR_H
#define RUNNER_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "detect.h"

enum doctor_level { DOCTOR_PASS = 0, DOCTOR_WARN, DOCTOR_FAIL };

struct doctor_interp {
	const char *lang;   /* "python", "node", "ts" */
	const char *path;   /* the chosen interpreter, NULL if none found */
	const char *why;    /* how it was chosen, shown in the reason; or NULL */
	bool required;      /* missing or broken: FAIL if true, else WARN */
};

struct doctor_input {
	/* Directories that do not exist yet are created, with the modes the
	 * runner itself uses: 0750, 0750 and 0770. */
	const char *state_dir;
	const char *scripts_dir;
	const char *runner_dir;
	bool exec_direct;              /* exec mode "direct", else "interpreter" */
	const struct doctor_interp *interps;
	size_t n_interps;
	const char *venv_dir;          /* NULL: venv check reports "not configured" */
	const char *venv_python;
	const char *db_path;           /* SQLite job store */
	struct detect_input detect;    /* root, env, override for detection */
	const char *mountinfo_path;    /* NULL: /proc/self/mountinfo */
	const char *proc_cgroup_path;  /* NULL: /proc/self/cgroup */
	const char *cgroup_base;       /* a delegated cgroup v2 directory to try
					* first, or NULL */
	uint64_t disk_warn_bytes;      /* free space below: WARN (100 MiB) */
	uint64_t disk_fail_bytes;      /* free space below: FAIL (10 MiB) */
	int interp_timeout_ms;         /* per interpreter run (10 s) */
};

struct doctor_check {
	char *name;          /* "state_dir", "scripts_dir", "runner_dir",
			      * "interpreter:python", "exec_mode", "container",
			      * "venv", "job_store", "cgroup", "disk_space" */
	enum doctor_level level;
	char *reason;        /* one line */
	json_t *detail;      /* extra JSON (diag report, evidence) or NULL */
};

struct doctor_result {
	struct doctor_check *checks;
	size_t n;
};

/* Zeroes in and sets the defaults given in the comments above. */
void doctor_input_init(struct doctor_input *in);

/* Runs every check in the order listed above.  Returns 0 or -ENOMEM; a
 * failed check is a result, not an error. */
int doctor_run(const struct doctor_input *in, struct doctor_result *res);

void doctor_result_free(struct doctor_result *res);

/* 1 if any check failed, else 0. */
int doctor_exit_code(const struct doctor_result *res);

/* One line per check: "PASS  name: reason" (also WARN, FAIL). */
void doctor_print_text(FILE *f, const struct doctor_result *res);

/* {"ok": bool, "checks": [{"name","level":"PASS"|"WARN"|"FAIL","reason",
 *  "detail"?}, ...]} */
json_t *doctor_result_to_json(const struct doctor_result *res);

const char *doctor_level_name(enum doctor_level l);

#endif
