/* Scenario files (see scenario.h): the libcyaml schema, the capture of
 * libcyaml's messages into one positioned line, and the checks libcyaml
 * cannot make (strict numbers, step kinds, references). */
#include "scenario.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <regex.h>
#include <unistd.h>

#include "refs.h"
#include "strparse.h"

#define MAX_SCENARIO_BYTES (4u << 20)

const char *const sc_step_kind_names[SK__N] = {
	"upload", "exec", "wait_log", "wait", "cancel", "cleanup", "recover", "detect",
	"venv", "doctor", "fault", "kill", "sh", "sleep",
};

static const cyaml_strval_t container_strings[] = {
	{ "none", SC_CT_NONE }, { "docker", SC_CT_DOCKER }, { "podman", SC_CT_PODMAN },
	{ "lxc", SC_CT_LXC }, { "systemd-nspawn", SC_CT_NSPAWN },
	{ "kubernetes", SC_CT_KUBERNETES }, { "wsl", SC_CT_WSL }, { "openvz", SC_CT_OPENVZ },
	{ "container-other", SC_CT_OTHER },
};
const char *const sc_container_names[] = {
	"none", "docker", "podman", "lxc", "systemd-nspawn", "kubernetes", "wsl", "openvz",
	"container-other",
};

static const cyaml_strval_t require_strings[] = {
	{ "fuse", SC_REQ_FUSE }, { "root", SC_REQ_ROOT }, { "cgroup2", SC_REQ_CGROUP2 },
	{ "python", SC_REQ_PYTHON }, { "node", SC_REQ_NODE },
};
const char *const sc_require_names[SC_REQ__N] = { "fuse", "root", "cgroup2", "python", "node" };

static const cyaml_strval_t status_strings[] = {
	{ "QUEUED", SC_ST_QUEUED }, { "RUNNING", SC_ST_RUNNING },
	{ "COMPLETED", SC_ST_COMPLETED }, { "FAILED", SC_ST_FAILED },
	{ "TIMED_OUT", SC_ST_TIMED_OUT }, { "CANCELLED", SC_ST_CANCELLED },
	{ "LOST", SC_ST_LOST },
};
const char *const sc_status_names[] = {
	"QUEUED", "RUNNING", "COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED", "LOST",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define STR(key, st, m) CYAML_FIELD_STRING_PTR(key, OPT, st, m, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t string_entry = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t match_fields[] = {
	STR("contains", struct sc_match, contains),
	STR("not_contains", struct sc_match, not_contains),
	STR("regex", struct sc_match, regex),
	STR("lines", struct sc_match, lines),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t mode_fields[] = {
	CYAML_FIELD_STRING_PTR("path", CYAML_FLAG_POINTER, struct sc_mode_expect, path, 1, CYAML_UNLIMITED),
	CYAML_FIELD_STRING_PTR("mode", CYAML_FLAG_POINTER, struct sc_mode_expect, mode, 1, CYAML_UNLIMITED),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t mode_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sc_mode_expect, mode_fields),
};

static const cyaml_schema_field_t files_expect_fields[] = {
	CYAML_FIELD_SEQUENCE("present", OPT, struct sc_files_expect, present, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("absent", OPT, struct sc_files_expect, absent, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("modes", OPT, struct sc_files_expect, modes, &mode_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t faults_fields[] = {
	STR("mount", struct sc_faults_expect, mount),
	STR("count", struct sc_faults_expect, count),
	STR("min", struct sc_faults_expect, min),
	STR("op", struct sc_faults_expect, op),
	STR("path", struct sc_faults_expect, path),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t faults_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sc_faults_expect, faults_fields),
};

static const cyaml_schema_field_t duration_fields[] = {
	STR("min", struct sc_duration_expect, min),
	STR("max", struct sc_duration_expect, max),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t expect_fields[] = {
	STR("exit_code", struct sc_expect, exit_code),
	CYAML_FIELD_ENUM_PTR("status", OPT | CYAML_FLAG_STRICT, struct sc_expect, status,
			     status_strings, N(status_strings)),
	CYAML_FIELD_MAPPING_PTR("error", OPT, struct sc_expect, error, match_fields),
	CYAML_FIELD_MAPPING_PTR("stdout", OPT, struct sc_expect, stdout_, match_fields),
	CYAML_FIELD_MAPPING_PTR("stderr", OPT, struct sc_expect, stderr_, match_fields),
	CYAML_FIELD_MAPPING_PTR("logs", OPT, struct sc_expect, logs, match_fields),
	CYAML_FIELD_MAPPING_PTR("files", OPT, struct sc_expect, files, files_expect_fields),
	CYAML_FIELD_SEQUENCE("faults", OPT, struct sc_expect, faults, &faults_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("duration", OPT, struct sc_expect, duration, duration_fields),
	STR("no_leftovers", struct sc_expect, no_leftovers),
	CYAML_FIELD_END
};

static const cyaml_schema_field_t step_fields[] = {
	STR("upload", struct sc_step, upload),
	STR("exec", struct sc_step, exec),
	STR("wait_log", struct sc_step, wait_log),
	STR("wait", struct sc_step, wait),
	STR("cancel", struct sc_step, cancel),
	STR("cleanup", struct sc_step, cleanup),
	STR("recover", struct sc_step, recover),
	STR("detect", struct sc_step, detect),
	STR("venv", struct sc_step, venv),
	STR("doctor", struct sc_step, doctor),
	STR("fault", struct sc_step, fault),
	STR("kill", struct sc_step, kill),
	STR("sh", struct sc_step, sh),
	STR("sleep", struct sc_step, sleep),
	STR("name", struct sc_step, name),
	CYAML_FIELD_SEQUENCE("args", OPT, struct sc_step, args, &string_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_SEQUENCE("env", OPT, struct sc_step, env, &string_entry, 0, CYAML_UNLIMITED),
	STR("timeout", struct sc_step, timeout),
	STR("detach", struct sc_step, detach),
	STR("regex", struct sc_step, regex),
	STR("stream", struct sc_step, stream),
	STR("mount", struct sc_step, mount),
	STR("add", struct sc_step, add),
	STR("remove", struct sc_step, remove),
	STR("signal", struct sc_step, signal),
	STR("target", struct sc_step, target),
	STR("user", struct sc_step, user),
	CYAML_FIELD_MAPPING_PTR("expect", OPT, struct sc_step, expect, expect_fields),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t step_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sc_step, step_fields),
};

static const cyaml_schema_field_t file_fields[] = {
	CYAML_FIELD_STRING_PTR("path", CYAML_FLAG_POINTER, struct sc_file, path, 1, CYAML_UNLIMITED),
	STR("content", struct sc_file, content),
	STR("mode", struct sc_file, mode),
	STR("symlink", struct sc_file, symlink),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t file_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct sc_file, file_fields),
};

/* mounts, env and settings are maps keyed by names the author picks, which
 * libcyaml's fixed-field mappings cannot hold: libcyaml skips them and
 * they are read from the mark index instead. */
static const cyaml_schema_field_t world_fields[] = {
	CYAML_FIELD_ENUM("container", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, struct sc_world,
			 container, container_strings, N(container_strings)),
	CYAML_FIELD_SEQUENCE("files", OPT, struct sc_world, files, &file_entry, 0, CYAML_UNLIMITED),
	CYAML_FIELD_IGNORE("mounts", CYAML_FLAG_OPTIONAL),
	CYAML_FIELD_IGNORE("env", CYAML_FLAG_OPTIONAL),
	CYAML_FIELD_IGNORE("settings", CYAML_FLAG_OPTIONAL),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t require_entry = {
	CYAML_VALUE_ENUM(CYAML_FLAG_STRICT, enum sc_require, require_strings, N(require_strings)),
};

static const cyaml_schema_field_t scenario_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, struct scenario, name, 1, 200),
	STR("description", struct scenario, description),
	CYAML_FIELD_SEQUENCE("tags", OPT, struct scenario, tags, &string_entry, 0, CYAML_UNLIMITED),
	STR("reproduces", struct scenario, reproduces),
	CYAML_FIELD_SEQUENCE("requires", OPT, struct scenario, requires, &require_entry, 0, CYAML_UNLIMITED),
	STR("timeout", struct scenario, timeout),
	CYAML_FIELD_MAPPING_PTR("world", OPT, struct scenario, world, world_fields),
	CYAML_FIELD_SEQUENCE("steps", CYAML_FLAG_POINTER, struct scenario, steps, &step_entry, 1, CYAML_UNLIMITED),
	CYAML_FIELD_MAPPING_PTR("expect", OPT, struct scenario, expect, expect_fields),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t scenario_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct scenario, scenario_fields),
};

/* What libcyaml said, collected by the log callback. */
struct cylog {
	char first[512];	/* the first error message, "Load: " stripped */
	char path[1024];	/* the backtrace as a dotted path, outermost first */
	unsigned line, col;	/* the innermost frame's position */
	size_t inner_len;	/* length of the innermost frame's name in path */
	bool in_backtrace;
};

static void cy_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cylog *lg = ctx;
	char msg[1024], *m = msg, name[256], tmp[2048];
	size_t ln, co;
	unsigned idx;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(msg, sizeof(msg), fmt, args);
	msg[strcspn(msg, "\n")] = '\0';
	if (strncmp(m, "Load: ", 6) == 0)
		m += 6;
	if (strcmp(m, "Backtrace:") == 0) {
		lg->in_backtrace = true;
		return;
	}
	if (!lg->in_backtrace) {
		if (!lg->first[0])
			snprintf(lg->first, sizeof(lg->first), "%.500s", m);
		return;
	}
	/* Backtrace frames come innermost first: prepend each. */
	while (*m == ' ')
		m++;
	name[0] = '\0';
	if (sscanf(m, "in mapping field '%255[^']' (line: %zu, column: %zu)", name, &ln, &co) == 3) {
		/* name set */
	} else if (sscanf(m, "in sequence entry '%u' (line: %zu, column: %zu)", &idx, &ln, &co) == 3) {
		/* libcyaml counts entries from 1; the index from 0. */
		snprintf(name, sizeof(name), "%u", idx ? idx - 1 : 0);
	} else if (sscanf(m, "in mapping (line: %zu, column: %zu)", &ln, &co) == 2) {
		/* no path component */
	} else {
		return;
	}
	if (!lg->line) {
		lg->line = (unsigned)ln;
		lg->col = (unsigned)co;
		lg->inner_len = strlen(name);
	}
	if (name[0]) {
		snprintf(tmp, sizeof(tmp), "%s%s%s", name, lg->path[0] ? "." : "", lg->path);
		if (snprintf(lg->path, sizeof(lg->path), "%s", tmp) >= (int)sizeof(lg->path))
			lg->path[0] = '\0';	/* too deep to name: position at the root */
	}
}

/* ---- errors ---- */

struct loadctx {
	struct scenario *sc;
	const char *name;
	char *err;
	size_t errlen;
};

static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

__attribute__((format(printf, 4, 5)))
static int fail_node(struct loadctx *lc, const char *path, bool at_key, const char *fmt, ...)
{
	const struct ynode *n = NULL;
	char p[1024], msg[1024];
	va_list ap;
	unsigned line = 0, col = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The node itself, else its closest written ancestor. */
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		n = yindex_get(&lc->sc->ix, p);
		if (n || !p[0])
			break;
		char *dot = strrchr(p, '.');

		if (dot)
			*dot = '\0';
		else
			p[0] = '\0';
	}
	if (n) {
		yaml_mark_t m = (at_key || n->type != YN_SCALAR) ? n->key_mark : n->val_mark;

		if (strcmp(p, path) != 0)
			m = n->val_mark;
		line = (unsigned)m.line + 1;
		col = (unsigned)m.column + 1;
	}
	if (lc->err && lc->errlen) {
		if (path[0])
			snprintf(lc->err, lc->errlen, "%s:%u:%u: field '%s': %s", lc->name, line ? line : 1,
				 col ? col : 1, path, msg);
		else
			snprintf(lc->err, lc->errlen, "%s:%u:%u: %s", lc->name, line ? line : 1,
				 col ? col : 1, msg);
		one_line(lc->err);
	}
	return -EINVAL;
}

struct sc_pos scenario_pos(const struct scenario *sc, const char *path)
{
	struct sc_pos pos = { 0, 0 };
	char p[1024];

	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		const struct ynode *n = yindex_get(&sc->ix, p);

		if (n) {
			yaml_mark_t m = n->type == YN_SCALAR ? n->val_mark : n->key_mark;

			pos.line = (unsigned)m.line + 1;
			pos.col = (unsigned)m.column + 1;
			return pos;
		}
		if (!p[0])
			return pos;
		char *dot = strrchr(p, '.');

		if (dot)
			*dot = '\0';
		else
			p[0] = '\0';
	}
}

/* ---- strict values ---- */

static int parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0) {
		*out = false;
		return 0;
	}
	return -1;
}

static int check_duration(struct loadctx *lc, const char *path, const char *s, uint64_t *out)
{
	if (parse_duration_ns(s, 1000000000ull, out) < 0)
		return fail_node(lc, path, false, "invalid duration '%s': expected e.g. 250ms, 2s, 1m", s);
	return 0;
}

static int check_count(struct loadctx *lc, const char *path, const char *s, uint64_t *out)
{
	if (parse_u64(s, out) < 0)
		return fail_node(lc, path, false, "invalid number '%s': expected a whole number such as 3", s);
	return 0;
}

static int check_match(struct loadctx *lc, const char *path, struct sc_match *m)
{
	char p[256];

	if (!m)
		return 0;
	if (!m->contains && !m->not_contains && !m->regex && !m->lines)
		return fail_node(lc, path, true, "needs contains, not_contains, regex or lines");
	if (m->lines) {
		snprintf(p, sizeof(p), "%s.lines", path);
		if (check_count(lc, p, m->lines, &m->nlines) < 0)
			return -EINVAL;
		m->has_lines = true;
	}
	if (m->regex) {
		regex_t re;
		int rc;

		snprintf(p, sizeof(p), "%s.regex", path);
		rc = regcomp(&re, m->regex, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
		if (rc != 0) {
			char why[128];

			regerror(rc, &re, why, sizeof(why));
			return fail_node(lc, p, false, "invalid regular expression: %s", why);
		}
		regfree(&re);
	}
	return 0;
}

static int check_expect(struct loadctx *lc, const char *path, struct sc_expect *e)
{
	char p[256];
	uint64_t v;

	snprintf(e->path, sizeof(e->path), "%s", path);
	if (e->exit_code) {
		snprintf(p, sizeof(p), "%s.exit_code", path);
		if (check_count(lc, p, e->exit_code, &v) < 0)
			return -EINVAL;
		if (v > 255)
			return fail_node(lc, p, false, "exit codes are 0 to 255, not %s", e->exit_code);
		e->has_exit_code = true;
		e->exit_code_v = (int)v;
	}
#define MATCH(m, name)                                                   \
	do {                                                                 \
		snprintf(p, sizeof(p), "%s.%s", path, name);                 \
		if (check_match(lc, p, e->m) < 0)                            \
			return -EINVAL;                                      \
	} while (0)
	MATCH(error, "error");
	MATCH(stdout_, "stdout");
	MATCH(stderr_, "stderr");
	MATCH(logs, "logs");
#undef MATCH
	if (e->files) {
		for (unsigned i = 0; i < e->files->modes_count; i++) {
			struct sc_mode_expect *me = &e->files->modes[i];

			snprintf(p, sizeof(p), "%s.files.modes.%u.mode", path, i);
			if (parse_mode(me->mode, &me->mode_v) < 0)
				return fail_node(lc, p, false, "invalid mode '%s': expected octal such as 0640",
						 me->mode);
		}
	}
	for (unsigned i = 0; i < e->faults_count; i++) {
		struct sc_faults_expect *f = &e->faults[i];
		bool found = !f->mount && lc->sc->world && lc->sc->world->mounts_count == 1;

		if (f->count) {
			snprintf(p, sizeof(p), "%s.faults.%u.count", path, i);
			if (check_count(lc, p, f->count, &f->count_v) < 0)
				return -EINVAL;
			f->has_count = true;
		}
		if (f->min) {
			snprintf(p, sizeof(p), "%s.faults.%u.min", path, i);
			if (check_count(lc, p, f->min, &f->min_v) < 0)
				return -EINVAL;
			f->has_min = true;
		}
		for (unsigned j = 0; f->mount && lc->sc->world && j < lc->sc->world->mounts_count; j++)
			if (strcmp(f->mount, lc->sc->world->mounts[j].name) == 0)
				found = true;
		snprintf(p, sizeof(p), "%s.faults.%u%s", path, i, f->mount ? ".mount" : "");
		if (!found)
			return fail_node(lc, p, !f->mount, f->mount ? "no mount named '%s' in world.mounts" :
					 "%snames no mount and the world has not exactly one",
					 f->mount ? f->mount : "");
		if (!f->has_count && !f->has_min) {
			f->has_min = true;	/* "faults happened" */
			f->min_v = 1;
		}
	}
	if (e->duration) {
		snprintf(p, sizeof(p), "%s.duration.min", path);
		if (e->duration->min && check_duration(lc, p, e->duration->min, &e->duration->min_ns) < 0)
			return -EINVAL;
		snprintf(p, sizeof(p), "%s.duration.max", path);
		if (e->duration->max && check_duration(lc, p, e->duration->max, &e->duration->max_ns) < 0)
			return -EINVAL;
	}
	if (e->no_leftovers) {
		snprintf(p, sizeof(p), "%s.no_leftovers", path);
		if (parse_bool(e->no_leftovers, &e->no_leftovers_v) < 0)
			return fail_node(lc, p, false, "expected true or false, not '%s'", e->no_leftovers);
	}
	return 0;
}

/* ---- the maps read from the index ---- */

static bool valid_name(const char *s, bool env_style)
{
	if (!*s || strlen(s) > 64)
		return false;
	if (env_style && isdigit((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && (env_style || *s != '-'))
			return false;
	return true;
}

static int read_kv_map(struct loadctx *lc, const char *path, struct sc_kv **out, unsigned *count)
{
	const struct ynode *m = yindex_get(&lc->sc->ix, path), *c;
	size_t pos = 0;
	char p[512];

	if (!m || (m->type == YN_SCALAR && m->plain && !m->value[0]))
		return 0;
	if (m->type != YN_MAP)
		return fail_node(lc, path, true, "expected a mapping of NAME: value");
	while ((c = yindex_child(&lc->sc->ix, path, &pos))) {
		struct sc_kv *v;

		snprintf(p, sizeof(p), "%s.%s", path, c->key);
		if (!valid_name(c->key, true))
			return fail_node(lc, p, true, "'%s' is not a variable name", c->key);
		if (c->type != YN_SCALAR)
			return fail_node(lc, p, true, "expected a single value");
		v = realloc(*out, (*count + 1) * sizeof(**out));
		if (!v)
			return -ENOMEM;
		*out = v;
		v[*count].key = strdup(c->key);
		v[*count].value = strdup(c->value);
		(*count)++;
		if (!v[*count - 1].key || !v[*count - 1].value)
			return -ENOMEM;
	}
	return 0;
}

/* A rule written as a mapping becomes the expression faultfs takes. */
static int rule_from_map(struct loadctx *lc, const char *path, char **out)
{
	const struct ynode *c;
	size_t pos = 0, len = 0;
	char *buf = NULL, p[512];
	FILE *f = open_memstream(&buf, &len);
	int rc = 0, first = 1;

	if (!f)
		return -ENOMEM;
	while ((c = yindex_child(&lc->sc->ix, path, &pos))) {
		if (snprintf(p, sizeof(p), "%s.%s", path, c->key) >= (int)sizeof(p))
			return fail_node(lc, path, true, "key too long");
		if (c->type == YN_MAP) {
			rc = fail_node(lc, p, true, "expected a value or, for op, a list");
			break;
		}
		fprintf(f, "%s%s=", first ? "" : ",", c->key);
		first = 0;
		if (c->type == YN_SEQ) {
			const struct ynode *it;
			size_t ipos = 0;
			int ifirst = 1;

			if (strcmp(c->key, "op") != 0) {
				rc = fail_node(lc, p, true, "only op may be a list");
				break;
			}
			while ((it = yindex_child(&lc->sc->ix, p, &ipos))) {
				if (it->type != YN_SCALAR) {
					rc = fail_node(lc, p, true, "expected operation names");
					break;
				}
				fprintf(f, "%s%s", ifirst ? "" : "|", it->value);
				ifirst = 0;
			}
			if (rc)
				break;
		} else {
			if (strchr(c->value, ',')) {
				rc = fail_node(lc, p, false, "a rule value may not contain ','");
				break;
			}
			fputs(c->value, f);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	if (rc) {
		free(buf);
		return rc;
	}
	if (first) {
		free(buf);
		return fail_node(lc, path, true, "an empty rule");
	}
	*out = buf;
	return 0;
}

static int read_mounts(struct loadctx *lc)
{
	struct sc_world *w = lc->sc->world;
	const struct ynode *m = yindex_get(&lc->sc->ix, "world.mounts"), *c, *k;
	size_t pos = 0;
	char p[512], q[600];

	if (!m || (m->type == YN_SCALAR && m->plain && !m->value[0]))
		return 0;
	if (m->type != YN_MAP)
		return fail_node(lc, "world.mounts", true, "expected a mapping of NAME: {rules, profile, options}");
	while ((c = yindex_child(&lc->sc->ix, "world.mounts", &pos))) {
		struct sc_mount *mt, *v;
		size_t kpos = 0;

		snprintf(p, sizeof(p), "world.mounts.%s", c->key);
		if (!valid_name(c->key, false) || strchr(c->key, '.'))
			return fail_node(lc, p, true, "'%s' is not a mount name (letters, digits, _ and -)", c->key);
		v = realloc(w->mounts, (w->mounts_count + 1) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		w->mounts = v;
		mt = &v[w->mounts_count++];
		memset(mt, 0, sizeof(*mt));
		mt->name = strdup(c->key);
		if (!mt->name)
			return -ENOMEM;
		if (c->type == YN_SCALAR && c->plain && !c->value[0])
			continue;	/* a plain passthrough mount */
		if (c->type != YN_MAP)
			return fail_node(lc, p, true, "expected a mapping with rules, profile, options or at");
		while ((k = yindex_child(&lc->sc->ix, p, &kpos))) {
			char **dst = NULL;

			snprintf(q, sizeof(q), "%s.%s", p, k->key);
			if (strcmp(k->key, "profile") == 0)
				dst = &mt->profile;
			else if (strcmp(k->key, "options") == 0)
				dst = &mt->options;
			else if (strcmp(k->key, "at") == 0)
				dst = &mt->at;
			else if (strcmp(k->key, "rules") != 0)
				return fail_node(lc, q, true, "unknown key (expected rules, profile, options or at)");
			if (dst) {
				if (k->type != YN_SCALAR)
					return fail_node(lc, q, true, "expected a single value");
				*dst = strdup(k->value);
				if (!*dst)
					return -ENOMEM;
				continue;
			}
			if (k->type != YN_SEQ)
				return fail_node(lc, q, true, "expected a list of rules");
			{
				const struct ynode *r;
				size_t rpos = 0;

				while ((r = yindex_child(&lc->sc->ix, q, &rpos))) {
					char rp[1024], *expr = NULL, **nr;
					int rc;

					snprintf(rp, sizeof(rp), "%s.%s", q, r->key);
					if (r->type == YN_SCALAR) {
						expr = strdup(r->value);
						if (!expr)
							return -ENOMEM;
					} else if (r->type == YN_MAP) {
						rc = rule_from_map(lc, rp, &expr);
						if (rc)
							return rc;
					} else {
						return fail_node(lc, rp, true, "expected a rule expression or mapping");
					}
					nr = realloc(mt->rules, (mt->rules_count + 1) * sizeof(*nr));
					if (!nr) {
						free(expr);
						return -ENOMEM;
					}
					mt->rules = nr;
					nr[mt->rules_count++] = expr;
				}
			}
		}
		if (mt->at && (mt->at[0] == '/' || strstr(mt->at, "..")))
			return fail_node(lc, p, true, "'at' must be a path inside the world, without '..'");
	}
	return 0;
}

/* ---- steps ---- */

/* Which optional step fields each kind takes. */
enum { F_ARGS, F_ENV, F_TIMEOUT, F_DETACH, F_REGEX, F_STREAM, F_MOUNT, F_ADD, F_REMOVE,
       F_SIGNAL, F_TARGET, F_USER, F__N };
static const char *const field_names[F__N] = {
	"args", "env", "timeout", "detach", "regex", "stream", "mount", "add", "remove",
	"signal", "target", "user",
};
static const unsigned allowed[SK__N] = {
	[SK_UPLOAD] = 1u << F_ARGS | 1u << F_TIMEOUT | 1u << F_ENV,
	[SK_EXEC] = 1u << F_ARGS | 1u << F_ENV | 1u << F_TIMEOUT | 1u << F_DETACH | 1u << F_USER,
	[SK_WAIT_LOG] = 1u << F_TIMEOUT | 1u << F_REGEX | 1u << F_STREAM,
	[SK_WAIT] = 1u << F_TIMEOUT,
	[SK_CANCEL] = 1u << F_TIMEOUT,
	[SK_CLEANUP] = 1u << F_ARGS | 1u << F_TIMEOUT | 1u << F_ENV,
	[SK_RECOVER] = 1u << F_TIMEOUT,
	[SK_DETECT] = 1u << F_ARGS | 1u << F_TIMEOUT | 1u << F_ENV,
	[SK_VENV] = 1u << F_ARGS | 1u << F_TIMEOUT | 1u << F_ENV,
	[SK_DOCTOR] = 1u << F_ARGS | 1u << F_TIMEOUT | 1u << F_ENV,
	[SK_FAULT] = 1u << F_MOUNT | 1u << F_ADD | 1u << F_REMOVE | 1u << F_TIMEOUT,
	[SK_KILL] = 1u << F_SIGNAL | 1u << F_TARGET | 1u << F_TIMEOUT,
	[SK_SH] = 1u << F_ENV | 1u << F_TIMEOUT,
	[SK_SLEEP] = 0,
};

static char **step_kind_slot(struct sc_step *st, enum sc_step_kind k)
{
	char **slots[SK__N] = {
		&st->upload, &st->exec, &st->wait_log, &st->wait, &st->cancel, &st->cleanup,
		&st->recover, &st->detect, &st->venv, &st->doctor, &st->fault, &st->kill,
		&st->sh, &st->sleep,
	};
	return slots[k];
}

static bool field_set(const struct sc_step *st, int f)
{
	switch (f) {
	case F_ARGS: return st->args_count > 0;
	case F_ENV: return st->env_count > 0;
	case F_TIMEOUT: return st->timeout != NULL;
	case F_DETACH: return st->detach != NULL;
	case F_REGEX: return st->regex != NULL;
	case F_STREAM: return st->stream != NULL;
	case F_MOUNT: return st->mount != NULL;
	case F_ADD: return st->add != NULL;
	case F_REMOVE: return st->remove != NULL;
	case F_SIGNAL: return st->signal != NULL;
	case F_TARGET: return st->target != NULL;
	case F_USER: return st->user != NULL;
	}
	return false;
}

static int signal_from_name(const char *s)
{
	static const struct { const char *n; int s; } sigs[] = {
		{ "KILL", SIGKILL }, { "TERM", SIGTERM }, { "INT", SIGINT }, { "HUP", SIGHUP },
		{ "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "USR1", SIGUSR1 }, { "QUIT", SIGQUIT },
	};

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < N(sigs); i++)
		if (strcmp(s, sigs[i].n) == 0)
			return sigs[i].s;
	return -1;
}

static int check_step(struct loadctx *lc, unsigned i)
{
	struct sc_step *st = &lc->sc->steps[i];
	int kinds = 0;
	char p[256];

	for (int k = 0; k < SK__N; k++)
		if (*step_kind_slot(st, (enum sc_step_kind)k)) {
			if (kinds++) {
				snprintf(p, sizeof(p), "steps.%u.%s", i, sc_step_kind_names[k]);
				return fail_node(lc, p, true, "a step has one kind; '%s' also given",
						 sc_step_kind_names[st->kind]);
			}
			st->kind = (enum sc_step_kind)k;
			st->arg = *step_kind_slot(st, (enum sc_step_kind)k);
		}
	snprintf(p, sizeof(p), "steps.%u", i);
	if (!kinds)
		return fail_node(lc, p, true, "a step needs one of upload, exec, wait_log, wait, cancel, "
				 "cleanup, recover, detect, venv, doctor, fault, kill, sh, sleep");
	for (int f = 0; f < F__N; f++)
		if (field_set(st, f) && !(allowed[st->kind] & (1u << f))) {
			snprintf(p, sizeof(p), "steps.%u.%s", i, field_names[f]);
			return fail_node(lc, p, true, "not used by a '%s' step", sc_step_kind_names[st->kind]);
		}
	snprintf(p, sizeof(p), "steps.%u.%s", i, sc_step_kind_names[st->kind]);
	switch (st->kind) {
	case SK_UPLOAD: case SK_EXEC: case SK_WAIT_LOG: case SK_WAIT: case SK_CANCEL:
	case SK_KILL: case SK_SH: case SK_SLEEP: case SK_FAULT:
		if (!st->arg[0])
			return fail_node(lc, p, false, "needs a value (%s)",
					 st->kind == SK_UPLOAD ? "the file to upload" :
					 st->kind == SK_EXEC ? "the script id, e.g. '{{upload.id}}'" :
					 st->kind == SK_SH ? "the command" : st->kind == SK_SLEEP ? "a duration" :
					 st->kind == SK_FAULT ? "the mount name" : "the run id, e.g. '{{exec.id}}'");
		break;
	case SK_VENV:
		if (strcmp(st->arg, "ensure") != 0 && strcmp(st->arg, "recreate") != 0 &&
		    strcmp(st->arg, "status") != 0)
			return fail_node(lc, p, false, "expected ensure, recreate or status, not '%s'", st->arg);
		break;
	default:
		break;
	}
	if (st->kind == SK_SLEEP && check_duration(lc, p, st->arg, &st->sleep_ns) < 0)
		return -EINVAL;
	if (st->kind == SK_WAIT_LOG && !st->regex) {
		snprintf(p, sizeof(p), "steps.%u", i);
		return fail_node(lc, p, true, "a wait_log step needs regex");
	}
	if (st->kind == SK_FAULT) {
		bool found = false;

		for (unsigned j = 0; lc->sc->world && j < lc->sc->world->mounts_count; j++)
			if (strcmp(st->arg, lc->sc->world->mounts[j].name) == 0)
				found = true;
		if (!found)
			return fail_node(lc, p, false, "no mount named '%s' in world.mounts", st->arg);
		if (!!st->add + !!st->remove != 1) {
			snprintf(p, sizeof(p), "steps.%u", i);
			return fail_node(lc, p, true, "a fault step needs add (a rule) or remove (an id or 'all')");
		}
	}
	if (st->regex) {
		regex_t re;

		snprintf(p, sizeof(p), "steps.%u.regex", i);
		if (regcomp(&re, st->regex, REG_EXTENDED | REG_NOSUB) != 0)
			return fail_node(lc, p, false, "invalid regular expression");
		regfree(&re);
	}
	if (st->stream && strcmp(st->stream, "stdout") != 0 && strcmp(st->stream, "stderr") != 0) {
		snprintf(p, sizeof(p), "steps.%u.stream", i);
		return fail_node(lc, p, false, "expected stdout or stderr, not '%s'", st->stream);
	}
	if (st->timeout) {
		snprintf(p, sizeof(p), "steps.%u.timeout", i);
		if (check_duration(lc, p, st->timeout, &st->timeout_ns) < 0)
			return -EINVAL;
	}
	if (st->detach) {
		snprintf(p, sizeof(p), "steps.%u.detach", i);
		if (parse_bool(st->detach, &st->detach_v) < 0)
			return fail_node(lc, p, false, "expected true or false, not '%s'", st->detach);
	}
	st->signal_v = SIGKILL;
	if (st->signal) {
		snprintf(p, sizeof(p), "steps.%u.signal", i);
		st->signal_v = signal_from_name(st->signal);
		if (st->signal_v < 0)
			return fail_node(lc, p, false, "unknown signal '%s' (KILL, TERM, INT, HUP, STOP, CONT, USR1, QUIT)",
					 st->signal);
	}
	if (st->target && strcmp(st->target, "supervisor") != 0 && strcmp(st->target, "child") != 0) {
		snprintf(p, sizeof(p), "steps.%u.target", i);
		return fail_node(lc, p, false, "expected supervisor or child, not '%s'", st->target);
	}
	for (unsigned j = 0; j < st->env_count; j++) {
		const char *eq = strchr(st->env[j], '=');
		char key[80];

		snprintf(p, sizeof(p), "steps.%u.env.%u", i, j);
		if (!eq || (size_t)(eq - st->env[j]) >= sizeof(key))
			return fail_node(lc, p, false, "expected NAME=value");
		memcpy(key, st->env[j], (size_t)(eq - st->env[j]));
		key[eq - st->env[j]] = '\0';
		if (!valid_name(key, true))
			return fail_node(lc, p, false, "'%s' is not a variable name", key);
	}
	snprintf(st->label, sizeof(st->label), "%s", st->name ? st->name : sc_step_kind_names[st->kind]);
	if (st->name && (!valid_name(st->name, false) || strcmp(st->name, "world") == 0 ||
			 strcmp(st->name, "mount") == 0 || strcmp(st->name, "backing") == 0)) {
		snprintf(p, sizeof(p), "steps.%u.name", i);
		return fail_node(lc, p, false, "'%s' is not usable as a step name (letters, digits, _ "
				 "and -; not world, mount or backing)", st->name);
	}
	if (st->expect) {
		snprintf(p, sizeof(p), "steps.%u.expect", i);
		return check_expect(lc, p, st->expect);
	}
	return 0;
}

/* ---- references ---- */

struct refcheck {
	struct loadctx *lc;
	const char *path;
	unsigned max_step;	/* steps below this may be referred to */
};

static int check_one_ref(void *ctx, const char *name)
{
	struct refcheck *rc = ctx;
	struct scenario *sc = rc->lc->sc;
	const char *dot = strchr(name, '.');
	size_t hl = dot ? (size_t)(dot - name) : strlen(name);
	const char *field = dot ? dot + 1 : "";

	if (hl == 5 && strncmp(name, "world", 5) == 0) {
		static const char *const wf[] = { "root", "dir", "state", "files", "runner" };

		for (size_t i = 0; i < N(wf); i++)
			if (strcmp(field, wf[i]) == 0)
				return 0;
		return fail_node(rc->lc, rc->path, false, "unknown reference '{{%s}}' (world has root, dir, "
				 "state, files, runner)", name);
	}
	if ((hl == 5 && strncmp(name, "mount", 5) == 0) || (hl == 7 && strncmp(name, "backing", 7) == 0)) {
		for (unsigned i = 0; sc->world && i < sc->world->mounts_count; i++)
			if (strcmp(field, sc->world->mounts[i].name) == 0)
				return 0;
		return fail_node(rc->lc, rc->path, false, "unknown reference '{{%s}}': no mount '%s'",
				 name, field);
	}
	for (unsigned i = 0; i < rc->max_step && i < sc->steps_count; i++)
		if (strlen(sc->steps[i].label) == hl && strncmp(sc->steps[i].label, name, hl) == 0) {
			if (strcmp(field, "id") == 0 || strcmp(field, "stdout") == 0 ||
			    strcmp(field, "exit_code") == 0 || strcmp(field, "pid") == 0)
				return 0;
			return fail_node(rc->lc, rc->path, false, "unknown reference '{{%s}}' (a step has id, "
					 "stdout, exit_code, pid)", name);
		}
	return fail_node(rc->lc, rc->path, false, "unknown reference '{{%s}}': no earlier step is named '%.*s'",
			 name, (int)hl, name);
}

static int check_refs(struct loadctx *lc)
{
	for (size_t i = 0; i < lc->sc->ix.n; i++) {
		const struct ynode *n = &lc->sc->ix.v[i];
		struct refcheck rc = { lc, n->path, lc->sc->steps_count };
		unsigned step;
		int r;

		if (n->type != YN_SCALAR)
			continue;
		if (strncmp(n->path, "world.files.", 12) == 0 && strstr(n->path, ".content"))
			continue;	/* file content is written as it is */
		if (sscanf(n->path, "steps.%u.", &step) == 1) {
			char exp[64];

			snprintf(exp, sizeof(exp), "steps.%u.expect.", step);
			rc.max_step = strncmp(n->path, exp, strlen(exp)) == 0 ? step + 1 : step;
		} else if (strncmp(n->path, "world.", 6) == 0) {
			rc.max_step = 0;
		}
		r = refs_scan(n->value, check_one_ref, &rc);
		if (r == -EINVAL && !(lc->err && strstr(lc->err, "reference")))
			return fail_node(lc, n->path, false, "'{{' without a matching '}}'");
		if (r)
			return r;
	}
	return 0;
}

/* ---- the whole file ---- */

static int check_scenario(struct loadctx *lc)
{
	struct scenario *sc = lc->sc;
	int rc;

	sc->timeout_ns = 60ull * 1000000000ull;
	if (sc->timeout && check_duration(lc, "timeout", sc->timeout, &sc->timeout_ns) < 0)
		return -EINVAL;
	if (!sc->world) {
		sc->world = calloc(1, sizeof(*sc->world));
		if (!sc->world)
			return -ENOMEM;
	}
	if ((rc = read_mounts(lc)) < 0 ||
	    (rc = read_kv_map(lc, "world.env", &sc->world->env, &sc->world->env_count)) < 0 ||
	    (rc = read_kv_map(lc, "world.settings", &sc->world->settings, &sc->world->settings_count)) < 0)
		return rc;
	for (unsigned i = 0; i < sc->world->files_count; i++) {
		struct sc_file *f = &sc->world->files[i];
		char p[128];

		snprintf(p, sizeof(p), "world.files.%u.path", i);
		if (f->path[0] == '/' || strstr(f->path, ".."))
			return fail_node(lc, p, false, "a world file is a relative path without '..'");
		if (f->symlink && f->content)
			return fail_node(lc, p, false, "a file has content or a symlink, not both");
		if (f->mode) {
			snprintf(p, sizeof(p), "world.files.%u.mode", i);
			if (parse_mode(f->mode, &f->mode_v) < 0)
				return fail_node(lc, p, false, "invalid mode '%s': expected octal such as 0644",
						 f->mode);
			f->has_mode = true;
		}
	}
	for (unsigned i = 0; i < sc->tags_count; i++) {
		char p[64];

		snprintf(p, sizeof(p), "tags.%u", i);
		if (!valid_name(sc->tags[i], false) && !strchr(sc->tags[i], '.'))
			return fail_node(lc, p, false, "'%s' is not a tag (letters, digits, _ and -)", sc->tags[i]);
	}
	for (unsigned i = 0; i < sc->steps_count; i++)
		if ((rc = check_step(lc, i)) < 0)
			return rc;
	if (sc->expect && (rc = check_expect(lc, "expect", sc->expect)) < 0)
		return rc;
	return check_refs(lc);
}

/* Turns libcyaml's complaint into one positioned line. */
static void cyaml_failure(struct loadctx *lc, const struct cylog *lg, cyaml_err_t err)
{
	char key[256];
	const char *what = lg->first[0] ? lg->first : cyaml_strerror(err);

	if (sscanf(what, "Unexpected key: %255s", key) == 1) {
		char p[1400];

		snprintf(p, sizeof(p), "%s%s%s", lg->path, lg->path[0] ? "." : "", key);
		fail_node(lc, p, true, "unknown key");
		return;
	}
	if (sscanf(what, "Missing required mapping field: %255s", key) == 1) {
		char parent[1024], p[1400];
		size_t pl = strlen(lg->path);

		/* The innermost frame names the mapping's last field read, not
		 * the mapping: drop it to get the mapping that lacks KEY. */
		snprintf(parent, sizeof(parent), "%s", lg->path);
		if (lg->inner_len && lg->inner_len <= pl) {
			pl -= lg->inner_len;
			if (pl > 0)
				pl--;	/* the dot */
			parent[pl] = '\0';
		}
		snprintf(p, sizeof(p), "%s%s%s", parent, parent[0] ? "." : "", key);
		fail_node(lc, p, true, "required field missing");
		return;
	}
	if (strncmp(what, "Invalid ENUM value: ", 20) == 0) {
		fail_node(lc, lg->path, false, "invalid value '%s'", what + 20);
		return;
	}
	fail_node(lc, lg->path, false, "%s", what);
}

int scenario_load_buffer(const char *name, const char *buf, size_t len, struct scenario **out,
			 char *err, size_t errlen)
{
	struct cylog lg;
	cyaml_config_t cfg = {
		.log_fn = cy_log,
		.log_ctx = &lg,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_NO_ALIAS,
	};
	struct scenario tmp, *sc = NULL;
	struct loadctx lc = { &tmp, name, err, errlen };
	cyaml_err_t ce;
	int rc;

	memset(&tmp, 0, sizeof(tmp));
	memset(&lg, 0, sizeof(lg));
	if (err && errlen)
		err[0] = '\0';
	/* The index first: syntax errors get libyaml's exact mark, and the
	 * index must exist for every later message. */
	rc = yindex_build(&tmp.ix, name, buf, len, err, errlen);
	if (rc < 0)
		return rc;
	if (!yindex_get(&tmp.ix, "") || yindex_get(&tmp.ix, "")->type != YN_MAP) {
		rc = fail_node(&lc, "", false, "a scenario is a mapping with name, world and steps");
		yindex_free(&tmp.ix);
		return rc;
	}
	ce = cyaml_load_data((const uint8_t *)buf, len, &cfg, &scenario_schema, (cyaml_data_t **)&sc, NULL);
	if (ce != CYAML_OK) {
		cyaml_failure(&lc, &lg, ce);
		yindex_free(&tmp.ix);
		return ce == CYAML_ERR_OOM ? -ENOMEM : -EINVAL;
	}
	sc->ix = tmp.ix;
	lc.sc = sc;
	sc->file = strdup(name);
	rc = sc->file ? check_scenario(&lc) : -ENOMEM;
	if (rc < 0) {
		if (rc == -ENOMEM && err && errlen)
			snprintf(err, errlen, "%s: out of memory", name);
		scenario_free(sc);
		return rc;
	}
	*out = sc;
	return 0;
}

int scenario_load(const char *file, struct scenario **out, char *err, size_t errlen)
{
	struct stat stb;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", file, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &stb) < 0 || !S_ISREG(stb.st_mode) || stb.st_size > MAX_SCENARIO_BYTES) {
		rc = S_ISREG(stb.st_mode) ? -EFBIG : -EINVAL;
		snprintf(err, errlen, "%s: not a regular file of at most 4 MiB", file);
		goto out_close;
	}
	buf = malloc((size_t)stb.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", file);
		goto out_close;
	}
	while (got < (size_t)stb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)stb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "%s: cannot read: %s", file, strerror(-rc));
			goto out_free;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	rc = scenario_load_buffer(file, buf, got, out, err, errlen);
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

void scenario_free(struct scenario *sc)
{
	cyaml_config_t cfg = { .mem_fn = cyaml_mem, .log_level = CYAML_LOG_ERROR };

	if (!sc)
		return;
	if (sc->world) {
		for (unsigned i = 0; i < sc->world->mounts_count; i++) {
			struct sc_mount *m = &sc->world->mounts[i];

			for (unsigned j = 0; j < m->rules_count; j++)
				free(m->rules[j]);
			free(m->rules);
			free(m->name);
			free(m->profile);
			free(m->options);
			free(m->at);
		}
		free(sc->world->mounts);
		for (unsigned i = 0; i < sc->world->env_count; i++) {
			free(sc->world->env[i].key);
			free(sc->world->env[i].value);
		}
		free(sc->world->env);
		for (unsigned i = 0; i < sc->world->settings_count; i++) {
			free(sc->world->settings[i].key);
			free(sc->world->settings[i].value);
		}
		free(sc->world->settings);
		sc->world->mounts = NULL;
		sc->world->env = NULL;
		sc->world->settings = NULL;
	}
	free(sc->file);
	yindex_free(&sc->ix);
	cyaml_free(&cfg, &scenario_schema, sc, 0);
}

bool scenario_has_tag(const struct scenario *sc, const char *tag)
{
	for (unsigned i = 0; i < sc->tags_count; i++)
		if (strcmp(sc->tags[i], tag) == 0)
			return true;
	return false;
}
