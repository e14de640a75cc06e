/* runner doctor on real directories and tmpfs mounts: a noexec runner dir
 * fails direct mode and passes interpreter mode (field report 000), a
 * read-only or nearly full state dir, the job store's integrity check, the
 * cgroup probe and container-aware venv checks. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "mounts_b.h"
#include "doctor.h"
#include "testutil.h"

struct fixture {
	char base[64];
	char state[128], scripts[128], runner[128], root[128], db[160];
	struct doctor_interp py;
	struct doctor_input in;
	struct doctor_result res;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/fieldrig-doctor-XXXXXX");
	if (!mkdtemp(f->base))
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/state", f->base);
	snprintf(f->scripts, sizeof(f->scripts), "%s/state/scripts", f->base);
	snprintf(f->runner, sizeof(f->runner), "%s/bot_runners", f->base);
	snprintf(f->root, sizeof(f->root), "%s/root", f->base);
	snprintf(f->db, sizeof(f->db), "%s/state/jobs.db", f->base);
	mkdir(f->root, 0755);
	f->py = (struct doctor_interp){ "python", "/usr/bin/python3", "test", true };
	doctor_input_init(&f->in);
	f->in.state_dir = f->state;
	f->in.scripts_dir = f->scripts;
	f->in.runner_dir = f->runner;
	f->in.interps = &f->py;
	f->in.n_interps = 1;
	/* An empty crafted root: this machine's own /.dockerenv must not
	 * count. */
	detect_input_init(&f->in.detect, f->root, NULL);
	f->in.detect.env_is_pid1 = false;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	doctor_result_free(&f->res);
	remove_tree_b(f->base);
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

static void test_noexec_runner_dir_direct_fails(void **state)
{
	struct fixture *f = *state;
	const struct doctor_check *c;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	assert_int_equal(tmpfs_at(f->runner, MS_NOEXEC | MS_NOSUID | MS_NODEV, "mode=0770"), 0);
	f->in.exec_direct = true;
	run(f);
	c = check(&f->res, "exec_mode");
	assert_int_equal(c->level, DOCTOR_FAIL);
	tu_assert_contains(c->reason, "bot_runners is on a noexec mount");
	tu_assert_contains(c->reason, "direct mode cannot work here");
	assert_non_null(c->detail);
	assert_int_equal(doctor_exit_code(&f->res), 1);
	/* The runner dir itself is still usable for writing. */
	assert_int_equal(check(&f->res, "runner_dir")->level, DOCTOR_PASS);

	mem = open_memstream(&buf, &len);
	doctor_print_text(mem, &f->res);
	fclose(mem);
	tu_assert_contains(buf, "FAIL  exec_mode: ");
	tu_assert_contains(buf, "PASS  state_dir: ");
	for (char *p = buf; *p; p++) {
		/* Every line starts with a level and two spaces. */
		assert_true(strncmp(p, "PASS  ", 6) == 0 || strncmp(p, "WARN  ", 6) == 0 ||
			    strncmp(p, "FAIL  ", 6) == 0);
		p = strchr(p, '\n');
		assert_non_null(p);
	}
	free(buf);
}

static void test_noexec_runner_dir_interpreter_passes(void **state)
{
	struct fixture *f = *state;
	const struct doctor_check *c;
	json_t *j;

	assert_int_equal(tmpfs_at(f->runner, MS_NOEXEC, "mode=0770"), 0);
	f->in.exec_direct = false;
	run(f);
	c = check(&f->res, "exec_mode");
	assert_int_equal(c->level, DOCTOR_PASS);
	tu_assert_contains(c->reason, "interpreter mode");
	tu_assert_contains(c->reason, "noexec");
	assert_int_equal(check(&f->res, "interpreter:python")->level, DOCTOR_PASS);
	tu_assert_contains(check(&f->res, "interpreter:python")->reason, "Python 3");
	assert_int_equal(check(&f->res, "container")->level, DOCTOR_PASS);
	tu_assert_contains(check(&f->res, "container")->reason, "none");
	assert_int_equal(check(&f->res, "venv")->level, DOCTOR_WARN);
	assert_int_equal(doctor_exit_code(&f->res), 0);
	{
		/* Created with the runner's own modes, not the umask's. */
		struct stat st;

		assert_int_equal(stat(f->state, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0750);
		assert_int_equal(stat(f->scripts, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0750);
	}

	j = doctor_result_to_json(&f->res);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(json_array_size(json_object_get(j, "checks")), f->res.n);
	json_decref(j);
}

static void test_direct_mode_on_exec_mount_passes(void **state)
{
	struct fixture *f = *state;
	const struct doctor_check *c;

	assert_int_equal(tmpfs_at(f->runner, 0, "mode=0770"), 0);
	f->in.exec_direct = true;
	run(f);
	c = check(&f->res, "exec_mode");
	assert_int_equal(c->level, DOCTOR_PASS);
	tu_assert_contains(c->reason, "can be executed");
	/* The exec probe is gone again. */
	assert_int_equal(rmdir(f->runner) == 0 || errno == EBUSY, 1);
}

static void test_read_only_state_dir(void **state)
{
	struct fixture *f = *state;
	const struct doctor_check *c;

	assert_int_equal(tmpfs_at(f->state, 0, "mode=0755"), 0);
	assert_int_equal(mkdir(f->scripts, 0770), 0);
	assert_int_equal(mount("tmpfs", f->state, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL), 0);
	run(f);
	c = check(&f->res, "state_dir");
	assert_int_equal(c->level, DOCTOR_FAIL);
	tu_assert_contains(c->reason, "Read-only file system");
	tu_assert_contains(c->reason, "read-only filesystem");
	assert_int_equal(check(&f->res, "scripts_dir")->level, DOCTOR_FAIL);
	assert_int_equal(doctor_exit_code(&f->res), 1);
}

static void test_disk_space_thresholds(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(tmpfs_at(f->state, 0, "size=4m"), 0);
	run(f);
	assert_int_equal(check(&f->res, "disk_space")->level, DOCTOR_FAIL);
	tu_assert_contains(check(&f->res, "disk_space")->reason, "below 10.0 MiB");
	f->in.disk_fail_bytes = 1024 * 1024;
	run(f);
	assert_int_equal(check(&f->res, "disk_space")->level, DOCTOR_WARN);
	f->in.disk_warn_bytes = 2 * 1024 * 1024;
	run(f);
	assert_int_equal(check(&f->res, "disk_space")->level, DOCTOR_PASS);
}

static void make_db(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE runs(id "
				      "INTEGER PRIMARY KEY, state TEXT); INSERT INTO runs(state) "
				      "VALUES ('done');", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_job_store_integrity(void **state)
{
	struct fixture *f = *state;
	const struct doctor_check *c;
	int fd;

	f->in.db_path = f->db;
	run(f);
	assert_int_equal(check(&f->res, "job_store")->level, DOCTOR_WARN);
	make_db(f->db);
	run(f);
	c = check(&f->res, "job_store");
	assert_int_equal(c->level, DOCTOR_PASS);
	tu_assert_contains(c->reason, "integrity_check ok");

	unlink(f->db);
	fd = open(f->db, O_WRONLY | O_CREAT, 0600);
	for (int i = 0; i < 64; i++)
		assert_int_equal(write(fd, "garbage garbage garbage garbage garbage garbage "
				       "garbage garbage garbage ", 64), 64);
	close(fd);
	run(f);
	assert_int_equal(check(&f->res, "job_store")->level, DOCTOR_FAIL);
	assert_int_equal(doctor_exit_code(&f->res), 1);
}

static void test_cgroup_without_v2_warns(void **state)
{
	struct fixture *f = *state;
	char mi[192];
	FILE *m;

	snprintf(mi, sizeof(mi), "%s/mountinfo", f->base);
	m = fopen(mi, "w");
	assert_non_null(m);
	fputs("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
	      "2 1 0:20 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", m);
	fclose(m);
	f->in.mountinfo_path = mi;
	run(f);
	assert_int_equal(check(&f->res, "cgroup")->level, DOCTOR_WARN);
	tu_assert_contains(check(&f->res, "cgroup")->reason, "process group + subreaper");
	{
		struct stat st;

		assert_int_equal(stat(f->runner, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0770);
	}
}

/* On this machine (root, cgroup2 at /sys/fs/cgroup/unified) the probe
 * should succeed; elsewhere a WARN with the fallback is right too. */
static void test_cgroup_real(void **state)
{
	struct fixture *f = *state;
	const struct doctor_check *c;

	run(f);
	c = check(&f->res, "cgroup");
	if (c->level == DOCTOR_PASS)
		tu_assert_contains(c->reason, "per-run cgroups can be created");
	else
		tu_assert_contains(c->reason, "fall back to process group + subreaper");
	print_message("cgroup: %s %s\n", doctor_level_name(c->level), c->reason);
}

static void test_in_container_venv_not_used(void **state)
{
	struct fixture *f = *state;
	char marker[192];
	int fd;

	snprintf(marker, sizeof(marker), "%s/.dockerenv", f->root);
	fd = open(marker, O_WRONLY | O_CREAT, 0644);
	close(fd);
	f->in.venv_dir = "/nonexistent/venv";
	run(f);
	tu_assert_contains(check(&f->res, "container")->reason, "docker");
	assert_int_equal(check(&f->res, "venv")->level, DOCTOR_PASS);
	tu_assert_contains(check(&f->res, "venv")->reason, "not used in a container");
}

static void test_missing_interpreters(void **state)
{
	struct fixture *f = *state;
	struct doctor_interp ips[] = {
		{ "python", "/nonexistent/python3", NULL, true },
		{ "node", NULL, "not on PATH", false },
	};

	f->in.interps = ips;
	f->in.n_interps = 2;
	run(f);
	assert_int_equal(check(&f->res, "interpreter:python")->level, DOCTOR_FAIL);
	tu_assert_contains(check(&f->res, "interpreter:python")->reason, "No such file or directory");
	assert_int_equal(check(&f->res, "interpreter:node")->level, DOCTOR_WARN);
	tu_assert_contains(check(&f->res, "interpreter:node")->reason, "not on PATH");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_noexec_runner_dir_direct_fails),
		T(test_noexec_runner_dir_interpreter_passes),
		T(test_direct_mode_on_exec_mount_passes),
		T(test_read_only_state_dir),
		T(test_disk_space_thresholds),
		T(test_job_store_integrity),
		T(test_cgroup_without_v2_warns),
		T(test_cgroup_real),
		T(test_in_container_venv_not_used),
		T(test_missing_interpreters),
	};
	int rc = private_mount_ns();

	if (rc)
		return rc;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
