/* Container detection's less travelled paths, on crafted roots only (the
 * build host has /.dockerenv, so "/" is never read): container=oci refined
 * by the marker files, OpenVZ host versus container, markers that are
 * directories, FIFOs or symlink loops (unreadable evidence, never an
 * error), cgroup namespace links given as plain files, and the name
 * tables' edges. */
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
#include <unistd.h>
#include <cmocka.h>

#include "detect.h"
#include "testutil.h"

static void path_of(const struct tu_tmpdir *f, const char *rel, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", f->path, rel);
}

static void detect(const struct tu_tmpdir *f, struct detect_result *r)
{
	struct detect_input in;

	detect_input_init(&in, f->path, NULL);
	assert_false(in.env_is_pid1);
	assert_int_equal(detect_container(&in, r), 0);
}

/* The text of the evidence from source that contains needle, or fails. */
static void assert_ev(const struct detect_result *r, const char *source, const char *needle)
{
	for (size_t i = 0; i < r->n_evidence; i++)
		if (strcmp(r->evidence[i].source, source) == 0 &&
		    strstr(r->evidence[i].text, needle))
			return;
	for (size_t i = 0; i < r->n_evidence; i++)
		print_message("  %s: %s\n", r->evidence[i].source, r->evidence[i].text);
	fail_msg("no evidence from %s containing '%s'", source, needle);
}

static void test_oci_refined_by_markers(void **state)
{
	struct tu_tmpdir *f = *state;
	struct detect_result r;

	tu_put_str(f->path, "run/systemd/container", "oci\n");
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_OTHER);
	detect_result_free(&r);

	tu_put_str(f->path, ".dockerenv", "");
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_DOCKER);
	assert_ev(&r, "/run/systemd/container", "content 'oci'");
	detect_result_free(&r);

	tu_put_str(f->path, "run/.containerenv", "");
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_PODMAN);
	detect_result_free(&r);

	/* The same through /run/host/container-manager. */
	tu_put_str(f->path, "run/host/container-manager", "oci");
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_PODMAN);
	assert_string_equal(r.evidence[r.decided_by].source, "/run/host/container-manager");
	detect_result_free(&r);
}

static void test_openvz_host_and_container(void **state)
{
	struct tu_tmpdir *f = *state;
	struct detect_result r;

	tu_mkdir_in(f->path, "proc/vz");
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_OPENVZ);
	assert_ev(&r, "/proc/vz", "exists and /proc/bc does not");
	detect_result_free(&r);

	tu_mkdir_in(f->path, "proc/bc");
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_NONE);
	assert_ev(&r, "/proc/vz", "an OpenVZ host");
	detect_result_free(&r);
}

static void test_markers_that_are_not_files(void **state)
{
	struct tu_tmpdir *f = *state;
	struct detect_result r;
	char fifo[512];

	tu_mkdir_in(f->path, "run/host/container-manager");
	tu_mkdir_in(f->path, "proc/sys/kernel/osrelease");
	tu_mkdir_in(f->path, "proc/1/cgroup");
	path_of(f, "run/systemd/container", fifo, sizeof(fifo));
	tu_mkparents(f->path, "run/systemd/container");
	assert_int_equal(mkfifo(fifo, 0644), 0);
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_NONE);
	assert_ev(&r, "/run/host/container-manager", "Is a directory (EISDIR)");
	assert_ev(&r, "/proc/sys/kernel/osrelease", "Is a directory (EISDIR)");
	assert_ev(&r, "/proc/1/cgroup", "Is a directory (EISDIR)");
	/* A FIFO must not block detection. */
	assert_ev(&r, "/run/systemd/container", "cannot read /run/systemd/container");
	detect_result_free(&r);
}

static void test_symlink_loops_are_evidence(void **state)
{
	struct tu_tmpdir *f = *state;
	struct detect_result r;

	tu_symlink_in(f->path, "run", "run");
	tu_symlink_in(f->path, "proc", "proc");
	detect(f, &r);
	assert_int_equal(r.kind, CONTAINER_NONE);
	assert_ev(&r, "/run/.containerenv", "(ELOOP)");
	assert_ev(&r, "/run/systemd/container", "(ELOOP)");
	assert_ev(&r, "/proc/vz", "(ELOOP)");
	assert_ev(&r, "/proc/1/cgroup", "(ELOOP)");
	assert_ev(&r, "/proc/self/ns/cgroup", "(ELOOP)");
	assert_ev(&r, "/proc/1/ns/cgroup", "(ELOOP)");
	detect_result_free(&r);
}

static void test_cgroupns_as_files(void **state)
{
	struct tu_tmpdir *f = *state;
	struct detect_result r;

	/* Crafted roots may hold the namespace links as regular files. */
	tu_put_str(f->path, "proc/self/ns/cgroup", "cgroup:[4026531835]\n");
	tu_put_str(f->path, "proc/1/ns/cgroup", "cgroup:[4026532999]\n");
	detect(f, &r);
	assert_ev(&r, "/proc/self/ns/cgroup", "4026531835");
	detect_result_free(&r);

	/* Unreadable as either: directories. */
	assert_int_equal(unlink(strcat(strcpy((char[512]){0}, f->path), "/proc/self/ns/cgroup")), 0);
	assert_int_equal(unlink(strcat(strcpy((char[512]){0}, f->path), "/proc/1/ns/cgroup")), 0);
	tu_mkdir_in(f->path, "proc/self/ns/cgroup");
	tu_mkdir_in(f->path, "proc/1/ns/cgroup");
	detect(f, &r);
	assert_ev(&r, "/proc/self/ns/cgroup", "(EISDIR)");
	assert_ev(&r, "/proc/1/ns/cgroup", "(EISDIR)");
	detect_result_free(&r);
}

static void test_root_unusable(void **state)
{
	struct tu_tmpdir *f = *state;
	struct detect_input in;
	struct detect_result r;
	char file[512];

	path_of(f, "plain", file, sizeof(file));
	tu_put_str(f->path, "plain", "x");
	detect_input_init(&in, file, NULL);
	assert_int_equal(detect_container(&in, &r), 0);
	assert_int_equal(r.kind, CONTAINER_NONE);
	assert_ev(&r, file, "Not a directory (ENOTDIR)");
	detect_result_free(&r);

	/* A bad override is -EINVAL with the detected kind kept. */
	detect_input_init(&in, f->path, NULL);
	in.override = "vmware";
	assert_int_equal(detect_container(&in, &r), -EINVAL);
	assert_int_equal(r.kind, CONTAINER_NONE);
	detect_result_free(&r);
}

static void test_name_tables(void **state)
{
	(void)state;
	assert_string_equal(container_kind_name((enum container_kind)999), "container-other");
	assert_int_equal(container_kind_from_name(NULL), -EINVAL);
	assert_int_equal(container_kind_from_name("no-such-kind"), -EINVAL);
	assert_int_equal(container_kind_from_name("docker"), CONTAINER_DOCKER);
	detect_result_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_oci_refined_by_markers, tu_tmpdir_setup, tu_tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_openvz_host_and_container, tu_tmpdir_setup, tu_tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_markers_that_are_not_files, tu_tmpdir_setup, tu_tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_loops_are_evidence, tu_tmpdir_setup, tu_tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_cgroupns_as_files, tu_tmpdir_setup, tu_tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_root_unusable, tu_tmpdir_setup, tu_tmpdir_teardown),
		cmocka_unit_test(test_name_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
