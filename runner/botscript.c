/* Per-user runner scripts of runner serve; see botscript.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "botscript.h"
#include "lifecycle.h"
#include "runnerdir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void request_user(const struct run_rec *r, char *out, size_t outlen)
{
	json_t *j = r->request ? json_loads(r->request, 0, NULL) : NULL;
	const char *u = j ? json_string_value(json_object_get(j, "user")) : NULL;

	snprintf(out, outlen, "%s", u ? u : "");
	json_decref(j);
}

static bool managed(const struct run_rec *r)
{
	json_t *j = r->request ? json_loads(r->request, 0, NULL) : NULL;
	const char *p = j ? json_string_value(json_object_get(j, "restart")) : NULL;
	bool m = p && strcmp(p, "no") != 0;

	json_decref(j);
	return m;
}

void botscript_name(const struct run_rec *r, char *out, size_t outlen)
{
	char user[256], key[300], clean[80];

	request_user(r, user, sizeof(user));
	if (user[0])
		snprintf(key, sizeof(key), "%s", user);
	else
		snprintf(key, sizeof(key), "script-%s", r->script_id);
	runnerdir_user_name(key, clean, sizeof(clean));
	snprintf(out, outlen, "bot_runner_%s.py", clean);
}

static int live_cb(void *ctx, const struct run_rec *r)
{
	struct botscript_live *l = ctx;
	char (*nv)[96];

	if (run_state_final(r->state))
		return 0;
	nv = realloc(l->names, (l->n + 1) * sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	l->names = nv;
	botscript_name(r, l->names[l->n], sizeof(l->names[l->n]));
	l->n++;
	return 0;
}

int botscript_live_names(struct store *st, struct botscript_live *l)
{
	char err[256];

	l->names = NULL;
	l->n = 0;
	return runrec_list(st, NULL, live_cb, l, err, sizeof(err));
}

bool botscript_live_has(const struct botscript_live *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->names[i], name) == 0)
			return true;
	return false;
}

void botscript_live_free(struct botscript_live *l)
{
	free(l->names);
	l->names = NULL;
	l->n = 0;
}

static struct botscript_entry *find(struct botscripts *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->v[i].name, name) == 0)
			return &b->v[i];
	return NULL;
}

const char *botscripts_path_for(const struct botscripts *b, const struct run_rec *r)
{
	char name[96];
	size_t i;

	botscript_name(r, name, sizeof(name));
	for (i = 0; i < b->n; i++)
		if (strcmp(b->v[i].name, name) == 0 && access(b->v[i].path, F_OK) == 0)
			return b->v[i].path;
	return NULL;
}

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t off = 0;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	while (off < (size_t)st.st_size && (n = read(fd, buf + off, (size_t)st.st_size - off)) > 0)
		off += (size_t)n;
	close(fd);
	*len = off;
	return buf;
}

struct sync_ctx {
	struct run_rec *v;
	size_t n;
};

static int sync_cb(void *ctx, const struct run_rec *r)
{
	struct sync_ctx *c = ctx;
	struct run_rec *nv;

	if (run_state_final(r->state) || !managed(r))
		return 0;
	nv = realloc(c->v, (c->n + 1) * sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	c->v = nv;
	memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
	c->v[c->n].id = r->id;
	snprintf(c->v[c->n].script_id, sizeof(c->v[c->n].script_id), "%s", r->script_id);
	c->v[c->n].request = r->request ? strdup(r->request) : NULL;
	c->n++;
	return 0;
}

static void write_one(const struct settings *s, struct store *st, struct botscripts *b,
		      const struct run_rec *r, botscript_say say)
{
	char name[96], file[512], lang[32], err[2048], path[PATH_MAX], user[256], line[4096];
	struct runnerdir_choice c;
	struct botscript_entry *e;
	const char *dot;
	char *content;
	size_t len = 0;
	gid_t gid = (gid_t)-1;
	int ret;

	botscript_name(r, name, sizeof(name));
	e = find(b, name);
	if (e && access(e->path, F_OK) == 0) {
		e->run = r->id;
		return;
	}
	if (runrec_script(st, r->script_id, file, sizeof(file), lang, sizeof(lang), err,
			  sizeof(err)) < 0)
		return;
	dot = strrchr(file, '.');
	if (dot == NULL || strcmp(dot, ".py") != 0)
		return;		/* bot_runner_*.py: Python bots only */
	if (b->n == BOTSCRIPT_MAX && e == NULL) {
		snprintf(line, sizeof(line), "runner-script-failed run=%lld error=\"more than %d runner scripts\"",
			 (long long)r->id, BOTSCRIPT_MAX);
		say(line);
		return;
	}
	ret = runnerdir_resolve(s, &c);
	if (ret < 0) {
		snprintf(line, sizeof(line), "runner-script-failed run=%lld error=\"runner dir: %s\"",
			 (long long)r->id, c.reason);
		say(line);
		return;
	}
	if (c.fallback || c.noexec) {
		snprintf(line, sizeof(line), "fell-back runner_dir=%s reason=\"%s\"", c.path, c.reason);
		say(line);
	}
	snprintf(path, sizeof(path), "%s/%s", s->scripts_dir, file);
	content = slurp(path, &len);
	if (content == NULL) {
		snprintf(line, sizeof(line), "runner-script-failed run=%lld error=\"read %s: %s\"",
			 (long long)r->id, path, strerror(errno));
		say(line);
		return;
	}
	/* The name's key is already sanitised; runnerdir_write_script keeps
	 * it as it is. */
	snprintf(user, sizeof(user), "%s", name + strlen("bot_runner_"));
	user[strlen(user) - 3] = '\0';
	ret = runnerdir_write_script(c.path, user, content, len, path, sizeof(path), err,
				     sizeof(err));
	free(content);
	if (ret < 0) {
		snprintf(line, sizeof(line), "runner-script-failed run=%lld error=\"%s\"",
			 (long long)r->id, err);
		say(line);
		return;
	}
	request_user(r, user, sizeof(user));
	if (user[0]) {
		struct passwd *pw = getpwnam(user);

		/* The bot's user reads it through its group; nobody else. */
		if (pw)
			gid = pw->pw_gid;
		if (pw && chown(path, (uid_t)-1, gid) < 0) {
			snprintf(line, sizeof(line), "runner-script-failed run=%lld error=\"chown %s: %s\"",
				 (long long)r->id, path, strerror(errno));
			say(line);
		}
	}
	if (e == NULL)
		e = &b->v[b->n++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->run = r->id;
	snprintf(line, sizeof(line), "runner-script wrote path=%s run=%lld user=%s mode=0640",
		 path, (long long)r->id, user[0] ? user : "-");
	say(line);
}

void botscripts_sync(const struct settings *s, struct store *st, struct botscripts *b,
		     botscript_say say)
{
	struct sync_ctx c = { 0 };
	char err[256];
	size_t i;

	runrec_list(st, NULL, sync_cb, &c, err, sizeof(err));
	for (i = 0; i < c.n; i++) {
		write_one(s, st, b, &c.v[i], say);
		free(c.v[i].request);
	}
	free(c.v);
}

void botscripts_remove_all(struct botscripts *b, botscript_say say)
{
	char line[PATH_MAX + 128];
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (unlink(b->v[i].path) < 0 && errno != ENOENT)
			snprintf(line, sizeof(line), "runner-script-remove-failed path=%s error=\"%s\"",
				 b->v[i].path, strerror(errno));
		else
			snprintf(line, sizeof(line), "runner-script removed path=%s", b->v[i].path);
		say(line);
	}
	b->n = 0;
}
