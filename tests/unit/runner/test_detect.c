/* Container detection (runner/detect.c) against crafted root directories:
 * every kind, conflicting markers, and markers that cannot be read.  The
 * build machine carries /.dockerenv itself, so no test ever reads "/". */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "detect.h"
#include "detect_i.h"
#include "testutil.h"

/* The crafted root of the test's fixture. */
static const char *root_of(void **state)
{
	return ((struct tu_tmpdir *)*state)->path;
}

static enum container_kind run(struct tu_tmpdir *f, char *const *env, bool pid1,
			       const char *override, struct detect_result *r)
{
	struct detect_input in;

	detect_input_init(&in, f->path, env);
	in.env_is_pid1 = pid1;
	in.override = override;
	assert_int_equal(detect_container(&in, r), 0);
	return r->kind;
}

static enum container_kind kind_of(struct tu_tmpdir *f)
{
	struct detect_result r;
	enum container_kind k = run(f, NULL, false, NULL, &r);

	detect_result_free(&r);
	return k;
}

/* The evidence item whose text contains needle, or NULL. */
static const struct detect_evidence *find_ev(const struct detect_result *r,
					     const char *needle)
{
	for (size_t i = 0; i < r->n_evidence; i++)
		if (strstr(r->evidence[i].text, needle) || strstr(r->evidence[i].source, needle))
			return &r->evidence[i];
	return NULL;
}

static void test_empty_root_is_none(void **state)
{
	struct detect_result r;

	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_NONE);
	assert_int_equal(r.n_evidence, 0);
	assert_int_equal(r.decided_by, -1);
	detect_result_free(&r);
}

static void test_dockerenv(void **state)
{
	struct detect_result r;

	tu_put_str(root_of(state), ".dockerenv", "");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_DOCKER);
	assert_string_equal(r.evidence[r.decided_by].source, "/.dockerenv");
	detect_result_free(&r);
}

static void test_containerenv_is_podman(void **state)
{
	tu_put_str(root_of(state), "run/.containerenv", "engine=\"podman-4.3\"\n");
	assert_int_equal(kind_of(*state), CONTAINER_PODMAN);
}

static void test_openvz(void **state)
{
	tu_mkdirs(root_of(state), "proc/vz");
	assert_int_equal(kind_of(*state), CONTAINER_OPENVZ);
}

static void test_openvz_host_is_not_container(void **state)
{
	struct detect_result r;

	tu_mkdirs(root_of(state), "proc/vz");
	tu_mkdirs(root_of(state), "proc/bc");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_NONE);
	assert_non_null(find_ev(&r, "OpenVZ host"));
	detect_result_free(&r);
}

static void test_wsl(void **state)
{
	tu_put_str(root_of(state), "proc/sys/kernel/osrelease", "5.15.90.1-microsoft-standard-WSL2\n");
	assert_int_equal(kind_of(*state), CONTAINER_WSL);
}

static void test_wsl1_microsoft(void **state)
{
	tu_put_str(root_of(state), "proc/sys/kernel/osrelease", "4.4.0-19041-Microsoft\n");
	assert_int_equal(kind_of(*state), CONTAINER_WSL);
}

static void test_plain_osrelease_is_none(void **state)
{
	tu_put_str(root_of(state), "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
	assert_int_equal(kind_of(*state), CONTAINER_NONE);
}

static void test_container_manager_values(void **state)
{
	static const struct {
		const char *v;
		enum container_kind k;
	} cases[] = {
		{ "docker\n", CONTAINER_DOCKER },
		{ "podman", CONTAINER_PODMAN },
		{ "lxc\n", CONTAINER_LXC },
		{ "lxc-libvirt\n", CONTAINER_LXC },
		{ "systemd-nspawn\n", CONTAINER_SYSTEMD_NSPAWN },
		{ "wsl\n", CONTAINER_WSL },
		{ "rkt\n", CONTAINER_OTHER },
		{ "something-new\n", CONTAINER_OTHER },
		{ "oci\n", CONTAINER_OTHER },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tu_put_str(root_of(state), "run/host/container-manager", cases[i].v);
		assert_int_equal(kind_of(*state), cases[i].k);
	}
}

static void test_run_systemd_container(void **state)
{
	tu_put_str(root_of(state), "run/systemd/container", "systemd-nspawn\n");
	assert_int_equal(kind_of(*state), CONTAINER_SYSTEMD_NSPAWN);
}

static void test_empty_value_file_ignored(void **state)
{
	struct detect_result r;

	tu_put_str(root_of(state), "run/systemd/container", "");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_NONE);
	assert_non_null(find_ev(&r, "empty, ignored"));
	detect_result_free(&r);
}

static void test_oci_refined_by_dockerenv(void **state)
{
	tu_put_str(root_of(state), "run/systemd/container", "oci\n");
	tu_put_str(root_of(state), ".dockerenv", "");
	assert_int_equal(kind_of(*state), CONTAINER_DOCKER);
}

static void test_pid1_environ(void **state)
{
	static const char env[] = "PATH=/bin\0HOME=/\0container=lxc\0";

	tu_put(root_of(state), "proc/1/environ", env, sizeof(env) - 1);
	assert_int_equal(kind_of(*state), CONTAINER_LXC);
}

static void test_pid1_environ_without_trailing_nul(void **state)
{
	static const char env[] = "PATH=/bin\0container=podman";

	tu_put(root_of(state), "proc/1/environ", env, sizeof(env) - 1);
	assert_int_equal(kind_of(*state), CONTAINER_PODMAN);
}

static void test_pid1_environ_without_container(void **state)
{
	static const char env[] = "PATH=/bin\0notcontainer=lxc\0";

	tu_put(root_of(state), "proc/1/environ", env, sizeof(env) - 1);
	assert_int_equal(kind_of(*state), CONTAINER_NONE);
}

static void test_container_env_only_for_pid1(void **state)
{
	char *env[] = { "container=systemd-nspawn", NULL };
	struct detect_result r;

	assert_int_equal(run(*state, env, false, NULL, &r), CONTAINER_NONE);
	detect_result_free(&r);
	assert_int_equal(run(*state, env, true, NULL, &r), CONTAINER_SYSTEMD_NSPAWN);
	assert_string_equal(r.evidence[r.decided_by].source, "$container");
	detect_result_free(&r);
}

static void test_cgroupns_symlinks_differ(void **state)
{
	struct detect_result r;

	tu_symlink_in(root_of(state), "proc/self/ns/cgroup", "cgroup:[4026532101]");
	tu_symlink_in(root_of(state), "proc/1/ns/cgroup", "cgroup:[4026531835]");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_OTHER);
	assert_non_null(find_ev(&r, "private cgroup namespace"));
	detect_result_free(&r);
}

static void test_cgroupns_same_is_none(void **state)
{
	tu_symlink_in(root_of(state), "proc/self/ns/cgroup", "cgroup:[4026531835]");
	tu_symlink_in(root_of(state), "proc/1/ns/cgroup", "cgroup:[4026531835]");
	assert_int_equal(kind_of(*state), CONTAINER_NONE);
}

static void test_cgroupns_regular_files(void **state)
{
	tu_put_str(root_of(state), "proc/self/ns/cgroup", "cgroup:[1]\n");
	tu_put_str(root_of(state), "proc/1/ns/cgroup", "cgroup:[2]\n");
	assert_int_equal(kind_of(*state), CONTAINER_OTHER);
}

static void test_cgroupns_one_missing_is_no_evidence(void **state)
{
	struct detect_result r;

	tu_symlink_in(root_of(state), "proc/self/ns/cgroup", "cgroup:[4026532101]");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_NONE);
	assert_int_equal(r.n_evidence, 0);
	detect_result_free(&r);
}

static void test_kubernetes_env(void **state)
{
	char *env[] = { "HOME=/", "KUBERNETES_SERVICE_HOST=10.96.0.1", NULL };
	struct detect_result r;

	assert_int_equal(run(*state, env, false, NULL, &r), CONTAINER_KUBERNETES);
	assert_string_equal(r.evidence[r.decided_by].source, "$KUBERNETES_SERVICE_HOST");
	detect_result_free(&r);
}

static void test_kubernetes_cgroup_over_docker(void **state)
{
	struct detect_result r;

	tu_put_str(root_of(state), ".dockerenv", "");
	tu_put_str(root_of(state), "proc/self/cgroup",
	      "0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-1.scope\n");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_KUBERNETES);
	/* The runtime's marker is listed as well. */
	assert_non_null(find_ev(&r, "/.dockerenv"));
	assert_non_null(find_ev(&r, "kubepods"));
	detect_result_free(&r);
}

static void test_kubernetes_pid1_cgroup(void **state)
{
	tu_put_str(root_of(state), "proc/1/cgroup", "12:pids:/kubepods/besteffort/pod1234\n");
	assert_int_equal(kind_of(*state), CONTAINER_KUBERNETES);
}

static void test_named_manager_beats_kubernetes(void **state)
{
	tu_put_str(root_of(state), "run/host/container-manager", "lxc\n");
	tu_put_str(root_of(state), "proc/1/cgroup", "0::/kubepods/pod1\n");
	assert_int_equal(kind_of(*state), CONTAINER_LXC);
}

static void test_conflict_first_in_order_wins(void **state)
{
	struct detect_result r;

	tu_put_str(root_of(state), ".dockerenv", "");
	tu_put_str(root_of(state), "run/.containerenv", "");
	tu_put_str(root_of(state), "run/systemd/container", "lxc\n");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_LXC);
	assert_string_equal(r.evidence[r.decided_by].source, "/run/systemd/container");
	/* All evidence is listed, in systemd's order. */
	assert_int_equal(r.n_evidence, 3);
	assert_string_equal(r.evidence[1].source, "/run/.containerenv");
	assert_int_equal(r.evidence[1].kind, CONTAINER_PODMAN);
	assert_string_equal(r.evidence[2].source, "/.dockerenv");
	detect_result_free(&r);
}

static void test_conflict_openvz_before_wsl(void **state)
{
	tu_mkdirs(root_of(state), "proc/vz");
	tu_put_str(root_of(state), "proc/sys/kernel/osrelease", "5.15-microsoft-standard-WSL2\n");
	tu_put_str(root_of(state), ".dockerenv", "");
	assert_int_equal(kind_of(*state), CONTAINER_OPENVZ);
}

static void test_containerenv_before_dockerenv(void **state)
{
	tu_put_str(root_of(state), ".dockerenv", "");
	tu_put_str(root_of(state), "run/.containerenv", "");
	assert_int_equal(kind_of(*state), CONTAINER_PODMAN);
}

/* Unreadable for real, as root: a directory where a file belongs gives
 * EISDIR on read. */
static void test_unreadable_environ_is_evidence(void **state)
{
	struct detect_result r;
	const struct detect_evidence *e;

	tu_mkdirs(root_of(state), "proc/1/environ");
	tu_put_str(root_of(state), ".dockerenv", "");
	assert_int_equal(run(*state, NULL, false, NULL, &r), CONTAINER_DOCKER);
	e = find_ev(&r, "cannot read /proc/1/environ");
	assert_non_null(e);
	assert_non_null(strstr(e->text, "Is a directory"));
	assert_non_null(strstr(e->text, "EISDIR"));
	assert_int_equal(e->kind, -1);
	detect_result_free(&r);
}

/* A FIFO where a marker file belongs must neither block nor crash. */
static void test_fifo_marker_does_not_block(void **state)
{
	struct tu_tmpdir *f = *state;
	struct detect_result r;
	char path[512];

	tu_mkdirs(f->path, "run/systemd");
	snprintf(path, sizeof(path), "%s/run/systemd/container", f->path);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_int_equal(run(f, NULL, false, NULL, &r), CONTAINER_NONE);
	assert_non_null(find_ev(&r, "cannot read /run/systemd/container"));
	detect_result_free(&r);
}

/* EACCES needs an unprivileged reader: tests run as root, so a forked
 * child drops to nobody (65534) and reads a 0600 root-owned environ and a
 * marker behind a 0700 directory.  Skipped inside when not root. */
static void test_permission_denied_as_nobody(void **state)
{
	struct tu_tmpdir *f = *state;
	static const char env[] = "container=lxc\0";
	char path[512];
	pid_t pid;
	int status;

	if (geteuid() != 0)
		return;
	tu_put(f->path, "proc/1/environ", env, sizeof(env) - 1);
	snprintf(path, sizeof(path), "%s/proc/1/environ", f->path);
	chmod(path, 0600);
	tu_put_str(f->path, "run/.containerenv", "");
	snprintf(path, sizeof(path), "%s/run", f->path);
	chmod(path, 0700);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct detect_input in;
		struct detect_result r;
		const struct detect_evidence *e1, *e2;
		int code = 0;

		if (tu_drop_to_nobody() < 0)
			_exit(10);
		detect_input_init(&in, f->path, NULL);
		in.env_is_pid1 = false;
		if (detect_container(&in, &r) < 0)
			_exit(11);
		e1 = find_ev(&r, "cannot read /proc/1/environ: Permission denied (EACCES)");
		e2 = find_ev(&r, "cannot read /run/.containerenv: Permission denied");
		if (!e1)
			code = 12;
		else if (!e2)
			code = 13;
		else if (r.kind != CONTAINER_NONE)
			code = 14;
		detect_result_free(&r);
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_absolute_symlink_stays_in_root(void **state)
{
	tu_put_str(root_of(state), "data/c", "lxc\n");
	tu_symlink_in(root_of(state), "run/systemd/container", "/data/c");
	assert_int_equal(kind_of(*state), CONTAINER_LXC);
}

static void test_missing_root_is_evidence(void **state)
{
	struct detect_input in;
	struct detect_result r;

	(void)state;
	detect_input_init(&in, "/nonexistent/fieldrig-root", NULL);
	assert_int_equal(detect_container(&in, &r), 0);
	assert_int_equal(r.kind, CONTAINER_NONE);
	assert_non_null(find_ev(&r, "No such file or directory"));
	detect_result_free(&r);
}

static void test_override(void **state)
{
	struct detect_result r;

	tu_put_str(root_of(state), ".dockerenv", "");
	assert_int_equal(run(*state, NULL, false, "none", &r), CONTAINER_NONE);
	assert_true(r.overridden);
	assert_non_null(find_ev(&r, "/.dockerenv"));
	detect_result_free(&r);
	assert_int_equal(run(*state, NULL, false, "kubernetes", &r), CONTAINER_KUBERNETES);
	detect_result_free(&r);
}

static void test_bad_override(void **state)
{
	struct detect_input in;
	struct detect_result r;
	struct tu_tmpdir *f = *state;

	tu_put_str(f->path, ".dockerenv", "");
	detect_input_init(&in, f->path, NULL);
	in.override = "dockerr";
	assert_int_equal(detect_container(&in, &r), -EINVAL);
	assert_int_equal(r.kind, CONTAINER_DOCKER);
	assert_false(r.overridden);
	assert_non_null(find_ev(&r, "not a kind"));
	detect_result_free(&r);
}

static void test_json(void **state)
{
	struct detect_result r;
	json_t *j;

	tu_put_str(root_of(state), ".dockerenv", "");
	tu_mkdirs(root_of(state), "proc/1/environ");
	run(*state, NULL, false, NULL, &r);
	j = detect_result_to_json(&r);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "docker");
	assert_true(json_is_true(json_object_get(j, "in_container")));
	assert_int_equal(json_array_size(json_object_get(j, "evidence")), 2);
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(j, "decided_by"), "source")), "/.dockerenv");
	assert_true(json_is_null(json_object_get(
		json_array_get(json_object_get(j, "evidence"), 0), "kind")));
	json_decref(j);
	detect_result_free(&r);
}

static void test_kind_names_roundtrip(void **state)
{
	(void)state;
	for (int k = CONTAINER_NONE; k <= CONTAINER_OTHER; k++)
		assert_int_equal(container_kind_from_name(container_kind_name(k)), k);
	assert_int_equal(container_kind_from_name("Docker"), -EINVAL);
	assert_int_equal(container_kind_from_value("lxc-libvirt"), CONTAINER_LXC);
}


/* The fallback resolver used where openat2 is missing. */
static void expect_resolve(struct tu_tmpdir *f, const char *abs, bool follow,
			   int want_rc, const char *want)
{
	char *out = NULL;
	int dfd = open(f->path, O_PATH | O_DIRECTORY);
	int rc;

	assert_true(dfd >= 0);
	rc = detect_resolve_in_root(dfd, abs, follow, &out);
	close(dfd);
	if (rc != want_rc)
		fail_msg("%s: rc %d, want %d", abs, rc, want_rc);
	if (want)
		assert_string_equal(out, want);
	free(out);
}

static void test_resolve_in_root_fallback(void **state)
{
	struct tu_tmpdir *f = *state;

	tu_put_str(f->path, "data/c", "lxc\n");
	tu_symlink_in(f->path, "run/systemd/container", "/data/c");
	tu_symlink_in(f->path, "run/rel", "../data");
	tu_symlink_in(f->path, "up", "../../../..");
	tu_symlink_in(f->path, "loop", "loop");
	expect_resolve(f, "/", true, 0, ".");
	expect_resolve(f, "/data/c", true, 0, "data/c");
	expect_resolve(f, "/run/systemd/container", true, 0, "data/c");
	expect_resolve(f, "/run/systemd/container", false, 0, "run/systemd/container");
	expect_resolve(f, "/run/rel/c", true, 0, "data/c");
	/* ".." and links cannot climb above the root. */
	expect_resolve(f, "/../../data/./c", true, 0, "data/c");
	expect_resolve(f, "/up/data/c", true, 0, "data/c");
	expect_resolve(f, "/missing/x", true, 0, "missing/x");
	expect_resolve(f, "/loop", true, -ELOOP, NULL);
	expect_resolve(f, "/data/c/x", true, -ENOTDIR, NULL);
}

/* 0755: readable by the unprivileged child of the EACCES test. */
#define T(f) cmocka_unit_test_setup_teardown(f, tu_tmpdir_setup_0755, tu_tmpdir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_empty_root_is_none),
		T(test_dockerenv),
		T(test_containerenv_is_podman),
		T(test_openvz),
		T(test_openvz_host_is_not_container),
		T(test_wsl),
		T(test_wsl1_microsoft),
		T(test_plain_osrelease_is_none),
		T(test_container_manager_values),
		T(test_run_systemd_container),
		T(test_empty_value_file_ignored),
		T(test_oci_refined_by_dockerenv),
		T(test_pid1_environ),
		T(test_pid1_environ_without_trailing_nul),
		T(test_pid1_environ_without_container),
		T(test_container_env_only_for_pid1),
		T(test_cgroupns_symlinks_differ),
		T(test_cgroupns_same_is_none),
		T(test_cgroupns_regular_files),
		T(test_cgroupns_one_missing_is_no_evidence),
		T(test_kubernetes_env),
		T(test_kubernetes_cgroup_over_docker),
		T(test_kubernetes_pid1_cgroup),
		T(test_named_manager_beats_kubernetes),
		T(test_conflict_first_in_order_wins),
		T(test_conflict_openvz_before_wsl),
		T(test_containerenv_before_dockerenv),
		T(test_unreadable_environ_is_evidence),
		T(test_fifo_marker_does_not_block),
		T(test_permission_denied_as_nobody),
		T(test_absolute_symlink_stays_in_root),
		T(test_missing_root_is_evidence),
		T(test_override),
		T(test_bad_override),
		T(test_json),
		T(test_kind_names_roundtrip),
		T(test_resolve_in_root_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
