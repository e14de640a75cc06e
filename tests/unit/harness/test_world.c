/* Unit tests of world building without mounts (no root needed): the
 * emulated container roots runner's detection reads, the environment
 * (nothing of the caller's leaks in), files with modes and symlinks,
 * references, and that teardown removes everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scenario.h"
#include "world.h"

static struct scenario *load(const char *text)
{
	struct scenario *sc = NULL;
	char err[1024];

	if (scenario_load_buffer("w.yaml", text, strlen(text), &sc, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return sc;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static const char *env_get(char **env, const char *name)
{
	size_t l = strlen(name);

	for (size_t i = 0; env && env[i]; i++)
		if (strncmp(env[i], name, l) == 0 && env[i][l] == '=')
			return env[i] + l + 1;
	return NULL;
}

/* Builds SC's world in a fresh temp dir; the caller tears it down. */
static void build(struct world *w, struct scenario *sc, char *dir, size_t dlen)
{
	static struct tools t = { .runner = "/bin/true", .faultfs = "/bin/false", .fusermount = "fusermount3" };
	char err[1024];

	snprintf(dir, dlen, "/tmp/fieldrig-test-world-XXXXXX");
	assert_non_null(mkdtemp(dir));
	if (world_build(w, dir, sc, &t, err, sizeof(err)) != 0)
		fail_msg("%s", err);
}

static void test_container_roots(void **state)
{
	static const struct {
		const char *kind, *path, *content;
	} cases[] = {
		{ "docker", ".dockerenv", "" },
		{ "podman", "run/.containerenv", "engine=" },
		{ "lxc", "run/systemd/container", "lxc\n" },
		{ "systemd-nspawn", "run/systemd/container", "systemd-nspawn\n" },
		{ "kubernetes", "proc/1/cgroup", "0::/kubepods/" },
		{ "wsl", "proc/sys/kernel/osrelease", "microsoft" },
		{ "container-other", "run/systemd/container", "rkt\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256], dir[64], path[512], *c;
		struct scenario *sc;
		struct world w;

		snprintf(text, sizeof(text), "name: t\nworld: {container: %s}\nsteps:\n  - sh: x\n", cases[i].kind);
		sc = load(text);
		build(&w, sc, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/root/%s", dir, cases[i].path);
		c = slurp(path);
		if (!c || !strstr(c, cases[i].content))
			fail_msg("%s: %s holds %s", cases[i].kind, path, c ? c : "(missing)");
		assert_int_equal(world_teardown(&w, false), 0);
		assert_int_equal(access(dir, F_OK), -1);
		scenario_free(sc);
	}
}

static void test_openvz_and_none(void **state)
{
	struct scenario *sc = load("name: t\nworld: {container: openvz}\nsteps:\n  - sh: x\n");
	char dir[64], path[512];
	struct world w;
	struct stat st;

	(void)state;
	build(&w, sc, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/root/proc/vz", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(path, sizeof(path), "%s/root/proc/bc", dir);
	assert_int_equal(access(path, F_OK), -1);
	world_teardown(&w, false);
	scenario_free(sc);

	sc = load("name: t\nsteps:\n  - sh: x\n");
	build(&w, sc, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/root", dir);
	assert_int_equal(rmdir(path), 0);	/* none: an empty root */
	assert_int_equal(mkdir(path, 0755), 0);
	world_teardown(&w, false);
	scenario_free(sc);
}

static void test_env_and_files(void **state)
{
	struct scenario *sc = load(
		"name: t\n"
		"world:\n"
		"  env: {MODE: batch, WHERE: '{{world.root}}'}\n"
		"  settings: {RUNNER_DIR: '{{world.dir}}/r', MAX_SCRIPT_SIZE: 1KiB}\n"
		"  files:\n"
		"    - {path: a/b/job.py, content: 'print(1)', mode: '0640'}\n"
		"    - {path: d/, mode: '0700'}\n"
		"    - {path: link, symlink: '{{world.dir}}/a'}\n"
		"steps:\n  - sh: x\n");
	char dir[64], path[512], want[600], link[512];
	struct world w;
	struct stat st;
	ssize_t n;

	(void)state;
	setenv("RUNNER_DIR", "/host/leak", 1);
	setenv("container", "docker", 1);
	build(&w, sc, dir, sizeof(dir));
	/* The world's own variables, the scenario's env, and nothing of ours. */
	assert_string_equal(env_get(w.env, "MODE"), "batch");
	snprintf(want, sizeof(want), "%s/root", dir);
	assert_string_equal(env_get(w.env, "WHERE"), want);
	assert_string_equal(env_get(w.env, "RUNNER_ROOT"), want);
	snprintf(want, sizeof(want), "%s/state", dir);
	assert_string_equal(env_get(w.env, "RUNNER_STATE_DIR"), want);
	assert_string_equal(env_get(w.env, WORLD_MARK), dir);
	assert_string_equal(env_get(w.env, "PATH"), world_path());
	assert_null(env_get(w.env, "RUNNER_DIR"));	/* settings: runner commands only */
	assert_null(env_get(w.env, "container"));
	snprintf(want, sizeof(want), "%s/r", dir);
	assert_string_equal(env_get(w.runner_env, "RUNNER_DIR"), want);
	assert_string_equal(env_get(w.runner_env, "MAX_SCRIPT_SIZE"), "1KiB");
	assert_null(env_get(w.daemon_env, WORLD_MARK));	/* daemons are not swept with the world */
	assert_string_equal(env_get(w.daemon_env, DAEMON_MARK), dir);
	/* Files, modes, a directory, a symlink. */
	snprintf(path, sizeof(path), "%s/a/b/job.py", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_string_equal(slurp(path), "print(1)");
	snprintf(path, sizeof(path), "%s/d", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/link", dir);
	n = readlink(path, link, sizeof(link) - 1);
	assert_true(n > 0);
	link[n] = '\0';
	snprintf(want, sizeof(want), "%s/a", dir);
	assert_string_equal(link, want);
	assert_string_equal(refs_get(&w.refs, "world.state"), env_get(w.env, "STATE"));
	assert_int_equal(world_teardown(&w, false), 0);
	assert_int_equal(access(dir, F_OK), -1);
	unsetenv("RUNNER_DIR");
	unsetenv("container");
	scenario_free(sc);
}

static void test_rm_tree(void **state)
{
	char dir[] = "/tmp/fieldrig-test-rm-XXXXXX", path[128];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b/f", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/a/link", dir);
	assert_int_equal(symlink("/etc", path), 0);	/* removed, never followed */
	assert_int_equal(rm_tree(dir), 0);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(access("/etc/passwd", F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_container_roots),
		cmocka_unit_test(test_openvz_and_none),
		cmocka_unit_test(test_env_and_files),
		cmocka_unit_test(test_rm_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
