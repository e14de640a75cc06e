/* runner/venv.c's create/recreate/ensure decisions driven by a crafted
 * interpreter: a shell script that answers `PY -m venv DIR` the way
 * python3 does (DIR/pyvenv.cfg, DIR/bin/python, DIR/bin/pip) or fails the
 * way a broken host does (no ensurepip, a hang, a signal, a venv without
 * pip, a half-built directory).  The venv it makes has a shell "python"
 * that answers the health checks venv.c runs.  Real processes, real files;
 * what is faked is only which interpreter is installed.  Immutable files
 * (root on ext4/xfs/btrfs: FS_IMMUTABLE_FL) make unlink, rename and mkdir
 * fail with EPERM where the test needs it; without them those cases are
 * skipped, not passed. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "venv.h"
#include "testutil.h"

struct fixture {
	char dir[64];
	char py[128];    /* the crafted system interpreter */
	char venv[128];  /* DIR/venv */
	char mode[128];  /* its behaviour for `-m venv`, one word */
	char vmode[128]; /* the created venv python's behaviour */
	char smode[128]; /* the system interpreter's behaviour for -c/-m pip */
};

static void set_mode(const char *file, const char *word)
{
	tu_write_file(file, word, 0644);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char script[4096];

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/fieldrig-venvf-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->py, sizeof(f->py), "%s/python3", f->dir);
	snprintf(f->venv, sizeof(f->venv), "%s/venv", f->dir);
	snprintf(f->mode, sizeof(f->mode), "%s/mode", f->dir);
	snprintf(f->vmode, sizeof(f->vmode), "%s/vmode", f->dir);
	snprintf(f->smode, sizeof(f->smode), "%s/smode", f->dir);
	/* The venv's own python: -c (the "is this a venv" probe) exits 0, or
	 * 3 in vmode "base"; -m pip fails (pip is found as bin/pip or not). */
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 "case \"$1\" in\n"
		 "-c) [ \"$(cat %s)\" = base ] && exit 3; exit 0;;\n"
		 "-m) echo 'No module named pip' >&2; exit 1;;\n"
		 "esac\nexit 2\n", f->vmode);
	{
		char p[192];

		snprintf(p, sizeof(p), "%s/venvpy", f->dir);
		tu_write_file(p, script, 0755);
	}
	/* The system interpreter. */
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 "D=%s\n"
		 "if [ \"$1 $2\" = '-m venv' ]; then\n"
		 "  case \"$(cat $D/mode)\" in\n"
		 "  noensurepip) echo 'The virtual environment was not created successfully "
		 "because ensurepip is not available.' >&2; exit 1;;\n"
		 "  hang) exec sleep 30;;\n"
		 "  signal) kill -9 $$;;\n"
		 "  partial) mkdir -p \"$3/bin\"; echo half >\"$3/bin/half\"; echo 'disk full' >&2; exit 1;;\n"
		 "  file) echo x >\"$3\"; exit 1;;\n"
		 "  silent) exit 4;;\n"
		 "  esac\n"
		 "  mkdir -p \"$3/bin\" || exit 1\n"
		 "  echo 'home = /usr/bin' >\"$3/pyvenv.cfg\"\n"
		 "  cp $D/venvpy \"$3/bin/python\"\n"
		 "  [ \"$(cat $D/mode)\" = nopip ] || cp $D/venvpy \"$3/bin/pip\"\n"
		 "  exit 0\n"
		 "fi\n"
		 "case \"$(cat $D/smode) $1\" in\n"
		 "'broken -c') echo 'Fatal Python error: init_fs_encoding' >&2; exit 1;;\n"
		 "'nopip -m') exit 1;;\n"
		 "esac\n"
		 "exit 0\n", f->dir);
	tu_write_file(f->py, script, 0755);
	set_mode(f->mode, "ok");
	set_mode(f->vmode, "ok");
	set_mode(f->smode, "ok");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tu_rm_tree(f->dir);
	free(f);
	return 0;
}

static struct venv_options opts(const struct fixture *f)
{
	struct venv_options o = { .dir = f->venv, .python = f->py, .timeout_ms = 60000 };

	return o;
}

static bool exists(const char *dir, const char *rel)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return access(p, F_OK) == 0;
}

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
	char cmd[512];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A %s | grep -c '^%s'", dir, prefix);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_ensure_creates_then_keeps(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;
	json_t *j;

	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_string_equal(st.action, "created");
	assert_true(st.healthy);
	assert_true(st.pip_present);
	tu_assert_contains(st.reason, "healthy");
	venv_status_free(&st);

	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_string_equal(st.action, "none: already healthy");
	j = venv_status_to_json(&st);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "healthy")));
	assert_string_equal(json_string_value(json_object_get(j, "dir")), f->venv);
	json_decref(j);
	venv_status_free(&st);
}

static void test_build_failures_say_why(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;

	set_mode(f->mode, "noensurepip");
	assert_int_equal(venv_ensure(&o, &st), -EIO);
	tu_assert_contains(st.reason, "cannot build venv in ");
	tu_assert_contains(st.reason, "exited 1: The virtual environment was not created "
			"successfully because ensurepip is not available.");
	assert_false(st.exists);
	venv_status_free(&st);

	set_mode(f->mode, "silent");
	assert_int_equal(venv_ensure(&o, &st), -EIO);
	tu_assert_contains(st.reason, "python3 exited 4");
	venv_status_free(&st);

	set_mode(f->mode, "signal");
	assert_int_equal(venv_ensure(&o, &st), -EIO);
	tu_assert_contains(st.reason, "killed by signal 9");
	venv_status_free(&st);

	set_mode(f->mode, "hang");
	o.timeout_ms = 300;
	assert_int_equal(venv_ensure(&o, &st), -EIO);
	tu_assert_contains(st.reason, "timed out after 300 ms");
	venv_status_free(&st);

	o.python = "/nonexistent/python3";
	assert_int_equal(venv_ensure(&o, &st), -EIO);
	tu_assert_contains(st.reason, "cannot run /nonexistent/python3: No such file or directory");
	venv_status_free(&st);
}

static void test_built_but_unhealthy(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;

	/* ensurepip missing in a way venv does not notice: no pip at all. */
	set_mode(f->mode, "nopip");
	assert_int_equal(venv_ensure(&o, &st), -EIO);
	assert_string_equal(st.action, "created");
	assert_false(st.healthy);
	assert_false(st.pip_present);
	tu_assert_contains(st.reason, "broken: no pip in ");
	venv_status_free(&st);

	/* A "venv" whose python is the base interpreter. */
	set_mode(f->mode, "ok");
	set_mode(f->vmode, "base");
	assert_int_equal(venv_recreate(&o, &st), -EIO);
	tu_assert_contains(st.action, "recreated");
	tu_assert_contains(st.reason, "broken: ");
	tu_assert_contains(st.reason, "bin/python exited 3");
	venv_status_free(&st);
	assert_int_equal(count_prefixed(f->dir, "venv.old-"), 0);

	/* ensure rebuilds it (through recreate) once the python is right. */
	set_mode(f->vmode, "ok");
	assert_int_equal(venv_status(&o, &st), 0);
	assert_true(st.healthy);
	venv_status_free(&st);
}

static void test_recreate_failed_build_keeps_old(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;
	char marker[256];

	assert_int_equal(venv_ensure(&o, &st), 0);
	venv_status_free(&st);
	snprintf(marker, sizeof(marker), "%s/bin/keepme", f->venv);
	tu_write_file(marker, "old\n", 0644);

	/* The rebuild leaves half a directory: it goes, the old one returns. */
	set_mode(f->mode, "partial");
	assert_int_equal(venv_recreate(&o, &st), -EIO);
	tu_assert_contains(st.reason, "cannot build venv in ");
	tu_assert_contains(st.reason, "disk full");
	assert_true(st.healthy);
	venv_status_free(&st);
	assert_true(exists(f->venv, "bin/keepme"));
	assert_false(exists(f->venv, "bin/half"));
	assert_int_equal(count_prefixed(f->dir, "venv.old-"), 0);

	/* The rebuild leaves a file where the venv belongs. */
	set_mode(f->mode, "file");
	assert_int_equal(venv_recreate(&o, &st), -EIO);
	venv_status_free(&st);
	assert_true(exists(f->venv, "bin/keepme"));
	assert_int_equal(count_prefixed(f->dir, "venv.old-"), 0);

	/* A working rebuild with a trailing slash on the directory. */
	set_mode(f->mode, "ok");
	{
		char slashed[160];

		snprintf(slashed, sizeof(slashed), "%s//", f->venv);
		o.dir = slashed;
		assert_int_equal(venv_recreate(&o, &st), 0);
		assert_string_equal(st.action, "recreated");
		assert_string_equal(st.dir, f->venv);
		venv_status_free(&st);
	}
	assert_false(exists(f->venv, "bin/keepme"));
	assert_int_equal(count_prefixed(f->dir, "venv.old-"), 0);
}

static void test_recreate_non_directory(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;

	/* A file where the venv belongs. */
	tu_write_file(f->venv, "not a venv\n", 0644);
	assert_int_equal(venv_status(&o, &st), 0);
	assert_true(st.exists);
	assert_false(st.healthy);
	tu_assert_contains(st.reason, "is not a directory");
	venv_status_free(&st);
	assert_int_equal(venv_ensure(&o, &st), 0);
	assert_string_equal(st.action, "created (replaced a non-directory)");
	venv_status_free(&st);

	/* A dangling symlink, and a build that then fails. */
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->venv);
		assert_int_equal(system(cmd), 0);
	}
	assert_int_equal(symlink("/nonexistent/elsewhere", f->venv), 0);
	set_mode(f->mode, "noensurepip");
	assert_int_equal(venv_recreate(&o, &st), -EIO);
	tu_assert_contains(st.reason, "ensurepip is not available");
	assert_false(st.exists);
	venv_status_free(&st);
	assert_int_equal(access(f->venv, F_OK), -1);
}

static void test_recreate_path_errors(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;
	char file[160], under[200];

	/* A path through a regular file: lstat says ENOTDIR. */
	snprintf(file, sizeof(file), "%s/afile", f->dir);
	tu_write_file(file, "x\n", 0644);
	snprintf(under, sizeof(under), "%s/venv", file);
	o.dir = under;
	assert_int_equal(venv_recreate(&o, &st), -ENOTDIR);
	tu_assert_contains(st.reason, under);
	tu_assert_contains(st.reason, "Not a directory");
	venv_status_free(&st);

	assert_int_equal(venv_status(&o, &st), 0);
	tu_assert_contains(st.reason, "cannot inspect ");
	venv_status_free(&st);

	o.dir = "";
	assert_int_equal(venv_ensure(&o, &st), -EINVAL);
	assert_int_equal(venv_recreate(&o, &st), -EINVAL);
	o.dir = NULL;
	assert_int_equal(venv_status(&o, &st), -EINVAL);
}

static void test_in_container(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = { .python = f->py, .in_container = true };
	struct venv_status st;
	char cache[256], bad[256];

	assert_int_equal(venv_status(&o, &st), 0);
	assert_true(st.healthy);
	assert_false(st.exists);
	assert_string_equal(st.python, f->py);
	tu_assert_contains(st.reason, "runs, pip present");
	venv_status_free(&st);

	set_mode(f->smode, "nopip");
	assert_int_equal(venv_status(&o, &st), 0);
	tu_assert_contains(st.reason, "runs, no pip");
	venv_status_free(&st);

	set_mode(f->smode, "broken");
	assert_int_equal(venv_status(&o, &st), 0);
	assert_false(st.healthy);
	tu_assert_contains(st.reason, "system interpreter broken: ");
	tu_assert_contains(st.reason, "exited 1: Fatal Python error: init_fs_encoding");
	venv_status_free(&st);
	set_mode(f->smode, "ok");

	/* ensure and recreate keep the package cache, creating parents. */
	snprintf(cache, sizeof(cache), "%s/state/deep/package_cache.json", f->dir);
	o.package_cache = cache;
	assert_int_equal(venv_ensure(&o, &st), 0);
	tu_assert_contains(st.action, "none: in a container");
	venv_status_free(&st);
	assert_int_equal(access(cache, F_OK), 0);
	assert_int_equal(venv_recreate(&o, &st), 0);
	venv_status_free(&st);

	/* A cache that is not one: -EINVAL naming the file. */
	snprintf(bad, sizeof(bad), "%s/bad.json", f->dir);
	tu_write_file(bad, "{\"packages\": []}\n", 0644);
	o.package_cache = bad;
	assert_int_equal(venv_ensure(&o, &st), -EINVAL);
	tu_assert_contains(st.reason, "package cache: ");
	tu_assert_contains(st.reason, "not a package cache");
	venv_status_free(&st);

	/* A cache path through a regular file. */
	snprintf(bad, sizeof(bad), "%s/mode/package_cache.json", f->dir);
	o.package_cache = bad;
	assert_int_equal(venv_ensure(&o, &st), -EINVAL);
	tu_assert_contains(st.reason, "package cache: access ");
	tu_assert_contains(st.reason, "Not a directory");
	venv_status_free(&st);
}

/* ---- EPERM from immutable files ---------------------------------------- */

static void test_eperm_old_venv_left(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;
	char pinned[256];

	if (!tu_can_immutable(f->dir))
		skip();
	assert_int_equal(venv_ensure(&o, &st), 0);
	venv_status_free(&st);
	snprintf(pinned, sizeof(pinned), "%s/bin/pinned", f->venv);
	tu_write_file(pinned, "x\n", 0644);
	assert_int_equal(tu_set_immutable(pinned, 1), 0);

	/* The new venv works; the old one cannot go, and that is said. */
	assert_int_equal(venv_recreate(&o, &st), 0);
	tu_assert_contains(st.action, "recreated (old venv left at ");
	tu_assert_contains(st.action, "/bin/pinned: Operation not permitted");
	assert_true(st.healthy);
	venv_status_free(&st);
	assert_int_equal(count_prefixed(f->dir, "venv.old-"), 1);
	assert_false(exists(f->venv, "bin/pinned"));
}

static void test_eperm_in_place_cannot_empty(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;

	if (!tu_can_immutable(f->dir))
		skip();
	assert_int_equal(venv_ensure(&o, &st), 0);
	venv_status_free(&st);
	/* An immutable directory can be neither renamed nor emptied. */
	assert_int_equal(tu_set_immutable(f->venv, 1), 0);
	assert_int_equal(venv_recreate(&o, &st), -EPERM);
	tu_assert_contains(st.reason, "cannot build venv in ");
	tu_assert_contains(st.reason, "Operation not permitted");
	assert_true(st.healthy);
	venv_status_free(&st);
	assert_int_equal(count_prefixed(f->dir, "venv.old-"), 0);
	assert_int_equal(tu_set_immutable(f->venv, 0), 0);
}

static void test_eperm_parents_and_cache(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;
	char locked[160], deep[256], cache[256], err[512];

	if (!tu_can_immutable(f->dir))
		skip();
	snprintf(locked, sizeof(locked), "%s/locked", f->dir);
	assert_int_equal(mkdir(locked, 0755), 0);
	assert_int_equal(tu_set_immutable(locked, 1), 0);

	snprintf(deep, sizeof(deep), "%s/sub/venv", locked);
	o.dir = deep;
	assert_int_equal(venv_ensure(&o, &st), -EIO);
	tu_assert_contains(st.reason, "mkdir parents of ");
	tu_assert_contains(st.reason, "Operation not permitted");
	venv_status_free(&st);

	snprintf(cache, sizeof(cache), "%s/sub/package_cache.json", locked);
	assert_int_equal(venv_package_cache_ensure(cache, err, sizeof(err)), -EPERM);
	tu_assert_contains(err, "mkdir parents of ");

	snprintf(cache, sizeof(cache), "%s/package_cache.json", locked);
	assert_int_equal(venv_package_cache_ensure(cache, err, sizeof(err)), -EPERM);
	tu_assert_contains(err, "create ");
	tu_assert_contains(err, "package_cache.json.tmp-");

	/* Emptying: an immutable file and an immutable subdirectory. */
	{
		char d[160], sub[200], file[200];

		snprintf(d, sizeof(d), "%s/toempty", f->dir);
		snprintf(sub, sizeof(sub), "%s/sub", d);
		snprintf(file, sizeof(file), "%s/sub/f", d);
		assert_int_equal(mkdir(d, 0755), 0);
		assert_int_equal(mkdir(sub, 0755), 0);
		assert_int_equal(tu_set_immutable(sub, 1), 0);
		assert_int_equal(venv_empty_dir(d, err, sizeof(err)), -EPERM);
		tu_assert_contains(err, "rmdir ");
		tu_assert_contains(err, "/toempty/sub: Operation not permitted");
		assert_int_equal(tu_set_immutable(sub, 0), 0);
		tu_write_file(file, "x\n", 0644);
		assert_int_equal(tu_set_immutable(file, 1), 0);
		assert_int_equal(venv_empty_dir(d, err, sizeof(err)), -EPERM);
		tu_assert_contains(err, "unlink ");
		tu_assert_contains(err, "/toempty/sub/f: Operation not permitted");
	}
}

static void test_eperm_parent_in_place(void **state)
{
	struct fixture *f = *state;
	struct venv_options o = opts(f);
	struct venv_status st;
	char marker[256], file[160];

	if (!tu_can_immutable(f->dir))
		skip();
	assert_int_equal(venv_ensure(&o, &st), 0);
	venv_status_free(&st);
	snprintf(marker, sizeof(marker), "%s/bin/old-marker", f->venv);
	tu_write_file(marker, "old\n", 0644);
	snprintf(file, sizeof(file), "%s/notavenv", f->dir);
	tu_write_file(file, "x\n", 0644);
	/* The parent cannot change: no name for the old venv beside it, so
	 * it is emptied and rebuilt where it is. */
	assert_int_equal(tu_set_immutable(f->dir, 1), 0);
	assert_int_equal(venv_recreate(&o, &st), 0);
	tu_assert_contains(st.action, "recreated in place: ");
	tu_assert_contains(st.action, "cannot be moved (Operation not permitted)");
	assert_true(st.healthy);
	venv_status_free(&st);
	assert_false(exists(f->venv, "bin/old-marker"));

	/* The rebuild in place fails: the venv is left broken, and says why. */
	set_mode(f->mode, "noensurepip");
	assert_int_equal(venv_recreate(&o, &st), -EIO);
	tu_assert_contains(st.reason, "cannot build venv in ");
	tu_assert_contains(st.reason, "ensurepip is not available");
	assert_false(st.healthy);
	assert_true(st.exists);
	venv_status_free(&st);

	/* A file where the venv belongs cannot be removed either. */
	o.dir = file;
	assert_int_equal(venv_ensure(&o, &st), -EPERM);
	tu_assert_contains(st.reason, file);
	tu_assert_contains(st.reason, "Operation not permitted");
	venv_status_free(&st);
	assert_int_equal(tu_set_immutable(f->dir, 0), 0);
}

static void test_empty_dir_depth_and_missing(void **state)
{
	struct fixture *f = *state;
	char path[2048], err[4096];
	size_t l;

	/* Deeper than 256 levels: refused rather than recursing on. */
	l = (size_t)snprintf(path, sizeof(path), "%s/deep", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	for (int i = 0; i < 260; i++) {
		l += (size_t)snprintf(path + l, sizeof(path) - l, "/d");
		assert_int_equal(mkdir(path, 0755), 0);
	}
	snprintf(path, sizeof(path), "%s/deep", f->dir);
	assert_int_equal(venv_empty_dir(path, err, sizeof(err)), -ELOOP);
	tu_assert_contains(err, "empty ");
	tu_assert_contains(err, "Too many levels of symbolic links");

	snprintf(path, sizeof(path), "%s/missing", f->dir);
	assert_int_equal(venv_empty_dir(path, err, sizeof(err)), -ENOENT);
	tu_assert_contains(err, "No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ensure_creates_then_keeps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_failures_say_why, setup, teardown),
		cmocka_unit_test_setup_teardown(test_built_but_unhealthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recreate_failed_build_keeps_old, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recreate_non_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recreate_path_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_container, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eperm_old_venv_left, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eperm_in_place_cannot_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eperm_parents_and_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eperm_parent_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_dir_depth_and_missing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
