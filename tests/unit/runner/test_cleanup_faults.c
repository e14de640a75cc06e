/* Unit tests of runner/cleanup.c where removal fails for real: a mount
 * point inside an old run's directory (EBUSY), a read-only mount in it
 * (EROFS), and directories this user may not enter or change (EACCES, as
 * nobody).  Every failure is reported once, by path, the rest of the tree
 * still goes, and a run whose directory could not be removed keeps its
 * workdir in the store so a later pass tries again.  The mounts are made
 * in a helper's private mount namespace: nothing outlives the helper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "runrec.h"
#include "settings.h"
#include "store.h"
#include "testutil.h"

/* What the callback saw, one "path err" line each. */
struct seen {
	char buf[4096];
	size_t len;
};

static void cb(void *ctx, const char *path, int err)
{
	struct seen *s = ctx;

	s->len += (size_t)snprintf(s->buf + s->len, sizeof(s->buf) - s->len, "%s %d\n",
				   path + strlen(tu_dir), err);
}

static void mk(const char *a, const char *sub)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", a, sub);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void touch(const char *a, const char *sub)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", a, sub);
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
}

struct world {
	char sd[256], wd[256];
	struct store *st;
	struct settings s;
	int64_t id;
};

/* A store with one finished run whose workdir is <dir>/<name>/run-ID-x. */
static void make_world(struct world *w, const char *name)
{
	struct script_rec rec;
	struct run_verdict v = { .state = RS_COMPLETED, .has_exit_code = true, .cpu_ms = -1,
				 .peak_rss_kb = -1 };
	char err[512], base[200];

	snprintf(base, sizeof(base), "%s/%s", tu_dir, name);
	assert_int_equal(mkdir(base, 0755), 0);
	snprintf(w->sd, sizeof(w->sd), "%s/state", base);
	assert_int_equal(store_open(w->sd, &w->st, err, sizeof(err)), 0);
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.id, sizeof(rec.id), "s-1");
	rec.name = rec.file = "s.sh";
	rec.lang = "bash";
	assert_int_equal(store_add_script(w->st, &rec, err, sizeof(err)), 0);
	assert_int_equal(runrec_create(w->st, "s-1", "m", "{}", &w->id, err, sizeof(err)), 0);
	assert_int_equal(runrec_finish(w->st, w->id, &v), 1);
	snprintf(w->wd, sizeof(w->wd), "%s/run-%lld-x", base, (long long)w->id);
	assert_int_equal(mkdir(w->wd, 0755), 0);
	assert_int_equal(runrec_set_workdir(w->st, w->id, w->wd), 0);
	memset(&w->s, 0, sizeof(w->s));
	/* Nothing stale there. */
	w->s.runner_dir = strdup(base);
	w->s.scripts_dir = strdup(base);
}

static void free_world(struct world *w)
{
	store_close(w->st);
	free(w->s.runner_dir);
	free(w->s.scripts_dir);
}

static char *workdir_of(struct world *w)
{
	struct run_rec r;
	char err[512], *wd;

	assert_int_equal(runrec_get(w->st, w->id, &r, err, sizeof(err)), 0);
	wd = r.workdir ? strdup(r.workdir) : NULL;
	run_rec_free(&r);
	return wd;
}

/* Runs cleanup in a forked helper (private mount namespace, optionally
 * as nobody) after prep(); returns what the callback saw and the stats. */
struct outcome {
	int ret;
	struct cleanup_stats cs;
	struct seen seen;
};

typedef void (*prep_fn)(struct world *w);

static struct outcome cleanup_in_helper(struct world *w, prep_fn prep, bool as_nobody)
{
	struct outcome o;
	int p[2];
	pid_t pid;

	memset(&o, 0, sizeof(o));
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[512];

		close(p[0]);
		if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
			exit(2);
		if (prep)
			prep(w);
		if (as_nobody && (tu_drop_to_nobody() < 0))
			exit(3);
		o.ret = cleanup_run(&w->s, w->st, 0, cb, &o.seen, &o.cs, err, sizeof(err));
		if (write(p[1], &o, sizeof(o)) != (ssize_t)sizeof(o))
			exit(4);
		exit(0);
	}
	tu_collect_child(pid, p, &o, sizeof(o));
	return o;
}

static void prep_mounts(struct world *w)
{
	char p[512];

	/* busy/: a mount point (rmdir says EBUSY); ro/: read-only, with a
	 * file that cannot be unlinked (EROFS). */
	snprintf(p, sizeof(p), "%s/busy", w->wd);
	if (mount("none", p, "tmpfs", 0, "size=64k") < 0)
		exit(5);
	snprintf(p, sizeof(p), "%s/ro", w->wd);
	if (mount(p, p, "none", MS_BIND, NULL) < 0 ||
	    mount("none", p, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		exit(6);
}

static void test_mounts_inside(void **state)
{
	struct world w;
	struct outcome o;
	char want[1024], *wd;
	const char *rel;

	(void)state;
	if (geteuid() != 0)
		skip();
	make_world(&w, "mounts");
	mk(w.wd, "busy");
	mk(w.wd, "ro");
	touch(w.wd, "ro/keep");
	touch(w.wd, "plain");
	mk(w.wd, "sub");
	touch(w.wd, "sub/f");
	o = cleanup_in_helper(&w, prep_mounts, false);
	assert_int_equal(o.ret, 0);
	rel = w.wd + strlen(tu_dir);
	/* readdir order decides the order of the lines: compare as sets. */
	snprintf(want, sizeof(want), "%s/busy %d\n", rel, EBUSY);
	assert_non_null(strstr(o.seen.buf, want));
	snprintf(want, sizeof(want), "%s/ro/keep %d\n", rel, EROFS);
	assert_non_null(strstr(o.seen.buf, want));
	/* ro/ is a mount point too: its own rmdir fails with EBUSY, not
	 * just ENOTEMPTY, so it is a failure of its own. */
	snprintf(want, sizeof(want), "%s/ro %d\n", rel, EBUSY);
	assert_non_null(strstr(o.seen.buf, want));
	/* The run directory itself is not reported again (ENOTEMPTY only
	 * repeats the failures inside), nor as removed. */
	snprintf(want, sizeof(want), "%s %d\n", rel, 0);
	assert_null(strstr(o.seen.buf, want));
	snprintf(want, sizeof(want), "%s %d\n", rel, ENOTEMPTY);
	assert_null(strstr(o.seen.buf, want));
	assert_int_equal(o.cs.failed, 3);
	assert_int_equal(o.cs.removed, 0);
	/* Everything else went; the run keeps its workdir for next time. */
	snprintf(want, sizeof(want), "%s/plain", w.wd);
	assert_int_equal(access(want, F_OK), -1);
	snprintf(want, sizeof(want), "%s/sub", w.wd);
	assert_int_equal(access(want, F_OK), -1);
	wd = workdir_of(&w);
	assert_non_null(wd);
	assert_string_equal(wd, w.wd);
	free(wd);

	/* Without the mounts (the helper's namespace is gone) the next pass
	 * removes the rest and clears the workdir. */
	o = cleanup_in_helper(&w, NULL, false);
	assert_int_equal(o.ret, 0);
	assert_int_equal(o.cs.failed, 0);
	assert_int_equal(access(w.wd, F_OK), -1);
	assert_null(workdir_of(&w));
	free_world(&w);
}

static void test_not_allowed(void **state)
{
	struct world w;
	struct outcome o;
	char want[1024], p[512];
	const char *rel;

	(void)state;
	if (geteuid() != 0)
		skip();
	make_world(&w, "perm");
	/* locked/: not enterable for others (open fails); noexec/: listable
	 * but not searchable (lstat of its entries fails); f: in a
	 * directory others cannot write (unlink fails). */
	mk(w.wd, "locked");
	touch(w.wd, "locked/x");
	snprintf(p, sizeof(p), "%s/locked", w.wd);
	assert_int_equal(chmod(p, 0700), 0);
	mk(w.wd, "noexec");
	touch(w.wd, "noexec/y");
	snprintf(p, sizeof(p), "%s/noexec", w.wd);
	assert_int_equal(chmod(p, 0744), 0);
	touch(w.wd, "f");
	/* The store must stay writable for nobody to clear a workdir. */
	snprintf(p, sizeof(p), "chmod -R a+rwX '%s'", w.sd);
	assert_int_equal(system(p), 0);

	o = cleanup_in_helper(&w, NULL, true);
	assert_int_equal(o.ret, 0);
	rel = w.wd + strlen(tu_dir);
	snprintf(want, sizeof(want), "%s/locked %d\n", rel, EACCES);
	assert_non_null(strstr(o.seen.buf, want));
	snprintf(want, sizeof(want), "%s/noexec/y %d\n", rel, EACCES);
	assert_non_null(strstr(o.seen.buf, want));
	snprintf(want, sizeof(want), "%s/f %d\n", rel, EACCES);
	assert_non_null(strstr(o.seen.buf, want));
	assert_true(o.cs.failed >= 3);
	assert_int_equal(o.cs.removed, 0);
	assert_int_equal(access(w.wd, F_OK), 0);
	free_world(&w);
}

/* A workdir that is not the runner's own (run-<id>- prefix) is never
 * touched; one already gone counts as removed. */
static void test_foreign_and_gone(void **state)
{
	struct world w;
	struct outcome o;
	char foreign[300], err[512], want[512];
	int64_t id2;
	struct run_verdict v = { .state = RS_FAILED, .cpu_ms = -1, .peak_rss_kb = -1 };

	(void)state;
	make_world(&w, "foreign");
	assert_int_equal(rmdir(w.wd), 0);	/* already gone */
	assert_int_equal(runrec_create(w.st, "s-1", "m2", "{}", &id2, err, sizeof(err)), 0);
	assert_int_equal(runrec_finish(w.st, id2, &v), 1);
	snprintf(foreign, sizeof(foreign), "%s/foreign/precious", tu_dir);
	assert_int_equal(mkdir(foreign, 0755), 0);
	assert_int_equal(runrec_set_workdir(w.st, id2, foreign), 0);
	o = cleanup_in_helper(&w, NULL, false);
	assert_int_equal(o.ret, 0);
	assert_int_equal(access(foreign, F_OK), 0);
	snprintf(want, sizeof(want), "%s 0\n", w.wd + strlen(tu_dir));
	assert_string_equal(o.seen.buf, want);
	assert_int_equal(o.cs.removed, 1);
	assert_null(workdir_of(&w));
	free_world(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mounts_inside),
		cmocka_unit_test(test_not_allowed),
		cmocka_unit_test(test_foreign_and_gone),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup_0755, tu_dir_teardown);
}
