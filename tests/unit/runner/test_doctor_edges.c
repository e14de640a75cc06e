/* runner/doctor.c's checks on their failure paths, with crafted inputs
 * only: directories that are files or cannot be made, interpreters that
 * hang, fail or die, a RUNNER_CONTAINER that names no kind, venvs healthy
 * and broken, job stores that are not databases or fail integrity_check,
 * and the cgroup check against a crafted mountinfo and /proc/self/cgroup
 * whose "cgroup2 mount" is a plain directory (mkdir works there, no
 * cgroup.kill) or missing.  Nothing reads the host's own container
 * markers: detection runs on an empty crafted root. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "doctor.h"
#include "testutil.h"

struct fixture {
	char base[64];
	char state[128], scripts[128], runner[128], root[128];
	char mountinfo[128], cgroup[128], cgmount[128];
	struct doctor_interp py;
	struct doctor_input in;
	struct doctor_result res;
};

static void write_mountinfo(struct fixture *f, const char *cg2_root)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
		 "1 0 8:1 / / rw,relatime - ext4 /dev/vda rw\n"
		 "30 1 0:26 %s %s rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw\n",
		 cg2_root, f->cgmount);
	tu_write_file(f->mountinfo, buf, 0644);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/fieldrig-doctore-XXXXXX");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/state", f->base);
	snprintf(f->scripts, sizeof(f->scripts), "%s/state/scripts", f->base);
	snprintf(f->runner, sizeof(f->runner), "%s/state/runtime", f->base);
	snprintf(f->root, sizeof(f->root), "%s/root", f->base);
	snprintf(f->mountinfo, sizeof(f->mountinfo), "%s/mountinfo", f->base);
	snprintf(f->cgroup, sizeof(f->cgroup), "%s/cgroup", f->base);
	snprintf(f->cgmount, sizeof(f->cgmount), "%s/cg", f->base);
	if (mkdir(f->root, 0755) < 0 || mkdir(f->cgmount, 0755) < 0)
		return -1;
	f->py.lang = "python";
	f->py.path = "/bin/true";
	f->py.required = true;
	doctor_input_init(&f->in);
	f->in.state_dir = f->state;
	f->in.scripts_dir = f->scripts;
	f->in.runner_dir = f->runner;
	f->in.interps = &f->py;
	f->in.n_interps = 1;
	f->in.mountinfo_path = f->mountinfo;
	f->in.proc_cgroup_path = f->cgroup;
	f->in.interp_timeout_ms = 2000;
	detect_input_init(&f->in.detect, f->root, NULL);
	f->in.detect.env_is_pid1 = false;
	*state = f;
	write_mountinfo(f, "/");
	tu_write_file(f->cgroup, "0::/\n", 0644);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	doctor_result_free(&f->res);
	tu_rm_tree(f->base);
	free(f);
	return 0;
}

static const struct doctor_check *check(const struct doctor_result *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->checks[i].name, name) == 0)
			return &r->checks[i];
	fail_msg("no check named %s", name);
	return NULL;
}

static void run(struct fixture *f)
{
	doctor_result_free(&f->res);
	assert_int_equal(doctor_run(&f->in, &f->res), 0);
}

static void expect(struct fixture *f, const char *name, enum doctor_level l, const char *needle)
{
	const struct doctor_check *c = check(&f->res, name);

	if (c->level != l)
		fail_msg("%s is %s, not %s: %s", name, doctor_level_name(c->level),
			 doctor_level_name(l), c->reason);
	tu_assert_contains(c->reason, needle);
}

static void test_dirs_that_cannot_be(void **state)
{
	struct fixture *f = *state;
	char file[160], under[200];

	snprintf(file, sizeof(file), "%s/afile", f->base);
	tu_write_file(file, "x\n", 0644);
	snprintf(under, sizeof(under), "%s/sub", file);
	f->in.state_dir = file;
	f->in.scripts_dir = under;
	f->in.runner_dir = NULL;
	f->in.exec_direct = true;
	run(f);
	expect(f, "state_dir", DOCTOR_FAIL, "afile");
	expect(f, "scripts_dir", DOCTOR_FAIL, "afile/sub");
	expect(f, "runner_dir", DOCTOR_FAIL, "not configured");
	expect(f, "exec_mode", DOCTOR_FAIL, "runner dir not configured");
	expect(f, "disk_space", DOCTOR_PASS, "free on");
	assert_int_equal(doctor_exit_code(&f->res), 1);

	/* Through a regular file: neither stat nor statvfs can work. */
	f->in.state_dir = under;
	run(f);
	expect(f, "state_dir", DOCTOR_FAIL, "Not a directory");
	expect(f, "disk_space", DOCTOR_FAIL, "afile/sub");

	f->in.state_dir = NULL;
	run(f);
	expect(f, "state_dir", DOCTOR_FAIL, "not configured");
	expect(f, "disk_space", DOCTOR_WARN, "no state dir configured");
}

static void test_interpreters_that_fail(void **state)
{
	struct fixture *f = *state;
	char hang[160], dies[160], quiet[160];
	struct doctor_interp ip[4] = {
		{ .lang = "python", .required = true },
		{ .lang = "node" },
		{ .lang = "ts", .why = "type not allowed" },
		{ .lang = "python", .why = "RUNNER_PYTHON" },
	};

	snprintf(hang, sizeof(hang), "%s/hang", f->base);
	snprintf(dies, sizeof(dies), "%s/dies", f->base);
	snprintf(quiet, sizeof(quiet), "%s/quiet", f->base);
	tu_write_file(hang, "#!/bin/sh\nexec sleep 30\n", 0755);
	tu_write_file(dies, "#!/bin/sh\nkill -9 $$\n", 0755);
	tu_write_file(quiet, "#!/bin/sh\nexit 0\n", 0755);
	ip[0].path = hang;
	ip[1].path = dies;
	ip[3].path = quiet;
	/* The hang alone with a short limit; the rest with a generous one,
	 * so a loaded machine cannot turn them into timeouts. */
	f->in.interps = ip;
	f->in.n_interps = 1;
	f->in.interp_timeout_ms = 300;
	run(f);
	expect(f, "interpreter:python", DOCTOR_FAIL, "--version timed out after 300 ms");
	f->in.interps = ip + 1;
	f->in.n_interps = 3;
	f->in.interp_timeout_ms = 20000;
	run(f);
	expect(f, "interpreter:node", DOCTOR_WARN, "--version failed (status 137)");
	expect(f, "interpreter:ts", DOCTOR_WARN, "no ts interpreter found: type not allowed");
	expect(f, "interpreter:python", DOCTOR_PASS, "runs (no version printed); RUNNER_PYTHON");
}

static void test_bad_override_and_venvs(void **state)
{
	struct fixture *f = *state;
	char venv[160], p[200];

	f->in.detect.override = "vmware";
	snprintf(venv, sizeof(venv), "%s/venv", f->base);
	f->in.venv_dir = venv;
	run(f);
	expect(f, "container", DOCTOR_WARN, "RUNNER_CONTAINER is not a kind name, ignored");
	expect(f, "venv", DOCTOR_WARN, "`runner venv ensure` creates it");

	/* Exists, broken: no pyvenv.cfg. */
	assert_int_equal(mkdir(venv, 0755), 0);
	run(f);
	expect(f, "venv", DOCTOR_WARN, "`runner venv recreate` rebuilds it");

	/* Healthy: pyvenv.cfg, a python that says it is a venv, bin/pip. */
	snprintf(p, sizeof(p), "%s/pyvenv.cfg", venv);
	tu_write_file(p, "home = /usr/bin\n", 0644);
	snprintf(p, sizeof(p), "%s/bin", venv);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/bin/python", venv);
	tu_write_file(p, "#!/bin/sh\nexit 0\n", 0755);
	snprintf(p, sizeof(p), "%s/bin/pip", venv);
	tu_write_file(p, "#!/bin/sh\nexit 0\n", 0755);
	f->in.detect.override = NULL;
	run(f);
	expect(f, "venv", DOCTOR_PASS, "healthy");

	/* In a container there is no venv to check. */
	f->in.detect.override = "docker";
	run(f);
	expect(f, "container", DOCTOR_PASS, "docker (RUNNER_CONTAINER override)");
	expect(f, "venv", DOCTOR_PASS, "not used in a container");
}

static void exec_sql(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

static void test_job_stores(void **state)
{
	struct fixture *f = *state;
	char db[160], under[200];
	sqlite3 *h;

	snprintf(db, sizeof(db), "%s/runner.db", f->base);
	f->in.db_path = db;
	tu_write_file(db, "this is not an SQLite database, just some text that is long enough "
		   "to be looked at as a header and found wanting......................\n", 0644);
	run(f);
	expect(f, "job_store", DOCTOR_FAIL, "integrity_check: file is not a database");

	snprintf(under, sizeof(under), "%s/x.db", db);
	f->in.db_path = under;
	run(f);
	expect(f, "job_store", DOCTOR_FAIL, "x.db");

	/* A directory where the database belongs. */
	f->in.db_path = f->root;
	run(f);
	expect(f, "job_store", DOCTOR_FAIL, f->root);

	/* Two indexes whose root pages are swapped: every row is missing
	 * from both, which integrity_check reports one by one. */
	unlink(db);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	exec_sql(h, "CREATE TABLE t(a, b); CREATE INDEX ia ON t(a); CREATE INDEX ib ON t(b);"
		 "INSERT INTO t VALUES (1, 'z'), (2, 'y'), (3, 'x');");
	{
		sqlite3_stmt *s;
		int ra = 0, rb = 0;
		char sql[256];

		assert_int_equal(sqlite3_prepare_v2(h, "SELECT name, rootpage FROM sqlite_master "
						    "WHERE type = 'index'", -1, &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW) {
			if (strcmp((const char *)sqlite3_column_text(s, 0), "ia") == 0)
				ra = sqlite3_column_int(s, 1);
			else
				rb = sqlite3_column_int(s, 1);
		}
		sqlite3_finalize(s);
		assert_true(ra > 0 && rb > 0);
		snprintf(sql, sizeof(sql), "PRAGMA writable_schema = ON;"
			 "UPDATE sqlite_master SET rootpage = %d WHERE name = 'ia';"
			 "UPDATE sqlite_master SET rootpage = %d WHERE name = 'ib';"
			 "PRAGMA writable_schema = OFF;", rb, ra);
		exec_sql(h, sql);
	}
	sqlite3_close(h);
	f->in.db_path = db;
	run(f);
	expect(f, "job_store", DOCTOR_FAIL, "integrity_check found ");
	expect(f, "job_store", DOCTOR_FAIL, "problems, first: ");
}

static void test_cgroup_candidates(void **state)
{
	struct fixture *f = *state;
	char base[160], sub[200];

	/* The "cgroup2 mount" is a plain directory: a probe can be made and
	 * removed there, and there is no cgroup.kill. */
	run(f);
	expect(f, "cgroup", DOCTOR_PASS, "no cgroup.kill (kernel < 5.14)");
	expect(f, "cgroup", DOCTOR_PASS, f->cgmount);

	/* A delegated base that is missing, our own cgroup (under a mount
	 * whose root is a subtree) missing too: the mount point is tried last. */
	snprintf(base, sizeof(base), "%s/delegated", f->base);
	f->in.cgroup_base = base;
	write_mountinfo(f, "/sub");
	tu_write_file(f->cgroup, "1:name=systemd:/\n0::/sub/own\n", 0644);
	run(f);
	expect(f, "cgroup", DOCTOR_PASS, "created under ");
	expect(f, "cgroup", DOCTOR_PASS, f->cgmount);

	/* Our own cgroup exists: it is used. */
	snprintf(sub, sizeof(sub), "%s/own", f->cgmount);
	assert_int_equal(mkdir(sub, 0755), 0);
	run(f);
	expect(f, "cgroup", DOCTOR_PASS, sub);
	assert_int_equal(rmdir(sub), 0);

	/* Nothing can be created: every candidate is listed. */
	assert_int_equal(rmdir(f->cgmount), 0);
	run(f);
	expect(f, "cgroup", DOCTOR_WARN, "cannot create a cgroup (");
	expect(f, "cgroup", DOCTOR_WARN, "delegated: No such file or directory; ");
	expect(f, "cgroup", DOCTOR_WARN, "process group + subreaper");

	/* No cgroup2 line at all, and an unreadable mountinfo. */
	tu_write_file(f->mountinfo, "1 0 8:1 / / rw - ext4 /dev/vda rw\n", 0644);
	run(f);
	expect(f, "cgroup", DOCTOR_WARN, "no cgroup v2 mount");
	unlink(f->mountinfo);
	run(f);
	expect(f, "cgroup", DOCTOR_WARN, "mountinfo");
}

/* EPERM where the mode bits allow everything: immutable directories
 * (root on ext4/xfs/btrfs; skipped elsewhere). */
static void test_immutable_dirs(void **state)
{
	struct fixture *f = *state;
	char locked[160], missing[200];

	snprintf(locked, sizeof(locked), "%s/locked", f->base);
	assert_int_equal(mkdir(locked, 0770), 0);
	if (tu_set_immutable(locked, 1) < 0) {
		rmdir(locked);
		skip();
	}
	snprintf(missing, sizeof(missing), "%s/scripts", locked);
	f->in.scripts_dir = missing;
	f->in.runner_dir = locked;
	f->in.exec_direct = true;
	run(f);
	tu_set_immutable(locked, 0);
	expect(f, "scripts_dir", DOCTOR_FAIL, "scripts");
	expect(f, "scripts_dir", DOCTOR_FAIL, "Operation not permitted");
	expect(f, "runner_dir", DOCTOR_FAIL, "locked");
	expect(f, "exec_mode", DOCTOR_WARN, "direct mode: cannot write an exec probe in ");
	expect(f, "exec_mode", DOCTOR_WARN, "Operation not permitted");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dirs_that_cannot_be, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interpreters_that_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_override_and_venvs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_stores, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cgroup_candidates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_immutable_dirs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
