/* Out of memory at every allocation: container detection, path
 * diagnostics, mountinfo, venv status and the package cache, and doctor
 * are run again and again with the Nth allocation failing (N = 0, 1, 2,
 * ... until a run makes no more allocations than N).  Each run must end in
 * success or -ENOMEM, never a crash or another error; leaks on these paths
 * are not checked here (valgrind and the sanitizers replace the allocator,
 * so no failure can be injected under them: the tests skip there).  The allocator is glibc's own: this
 * file interposes malloc, calloc and realloc (glibc supports replacing
 * them, and its internal callers - strdup, asprintf, realpath, fopen -
 * then use the replacement) and passes through to __libc_malloc and
 * friends until the countdown reaches zero.  Not built with sanitizers,
 * which bring their own malloc. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "detect.h"
#include "diag.h"
#include "doctor.h"
#include "mountinfo.h"
#include "venv.h"
#include "testutil.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);

static long countdown = -1;   /* -1: no failure armed */
static bool fired;

static bool fail_now(void)
{
	if (countdown < 0)
		return false;
	if (countdown == 0) {
		countdown = -1;
		fired = true;
		return true;
	}
	countdown--;
	return false;
}

void *malloc(size_t n)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

static char dir[64];

static void put(const char *rel, const char *content, mode_t mode)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *s = path + strlen(dir) + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int group_setup(void **state)
{
	(void)state;
	/* glibc's NSS cannot take a failed allocation while it initialises
	 * itself (a crash inside getpwuid_r): let it do that first. */
	getpwuid(0);
	getgrgid(0);
	snprintf(dir, sizeof(dir), "/tmp/fieldrig-oom-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	/* A crafted root with a marker of every kind. */
	put("root/.dockerenv", "", 0644);
	put("root/run/.containerenv", "", 0644);
	put("root/run/systemd/container", "oci\n", 0644);
	put("root/run/host/container-manager", "podman\n", 0644);
	put("root/proc/sys/kernel/osrelease", "5.15.0-microsoft-standard-WSL2\n", 0644);
	put("root/proc/1/cgroup", "0::/kubepods/besteffort/pod1\n", 0644);
	put("root/proc/self/cgroup", "0::/kubepods/besteffort/pod1\n", 0644);
	put("root/proc/1/environ", "container=lxc", 0644);
	put("root/proc/self/ns/cgroup", "cgroup:[1]\n", 0644);
	put("root/proc/1/ns/cgroup", "cgroup:[2]\n", 0644);
	put("root/proc/vz/x", "", 0644);
	/* A venv that passes venv_status's checks. */
	put("venv/pyvenv.cfg", "home = /usr/bin\n", 0644);
	put("venv/bin/python", "#!/bin/sh\nexit 0\n", 0755);
	put("venv/bin/pip", "#!/bin/sh\nexit 0\n", 0755);
	put("mountinfo", "1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	    "2 1 0:26 / /tmp rw,nosuid,nodev,noexec - tmpfs tmp\\040fs rw,size=1024k\n"
	    "3 1 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n", 0644);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tu_rm_tree(dir);
	return 0;
}

#define each_failure(fn, arg) each_failure_(#fn, fn, arg)

/* Runs fn with the Nth allocation failing, for every N until fn finishes
 * without reaching its Nth allocation; fn returns 0 or a negative errno,
 * and must return 0 then.  Returns how many failures were injected. */
static long each_failure_(const char *name, int (*fn)(void *), void *arg)
{
	for (long n = 0; n < 100000; n++) {
		int rc;

		fired = false;
		countdown = n;
		rc = fn(arg);
		countdown = -1;
		if (!fired) {
			if (rc != 0)
				fail_msg("%s: run without a failure returned %d", name, rc);
			return n;
		}
		if (rc != 0 && rc != -ENOMEM)
			fail_msg("%s: allocation %ld failed: returned %d, not 0 or -ENOMEM", name, n, rc);
	}
	fail_msg("no end to the allocations");
	return -1;
}

static int run_detect(void *arg)
{
	struct detect_input in;
	struct detect_result r;
	char root[128];
	json_t *j;
	int rc;

	(void)arg;
	snprintf(root, sizeof(root), "%s/root", dir);
	detect_input_init(&in, root, (char *const[]){ "KUBERNETES_SERVICE_HOST=10.0.0.1",
						     "container=docker", NULL });
	in.env_is_pid1 = true;
	in.override = "lxc";
	rc = detect_container(&in, &r);
	if (rc < 0)
		return rc;
	j = detect_result_to_json(&r);
	detect_result_free(&r);
	if (!j)
		return -ENOMEM;
	json_decref(j);
	return 0;
}

static int run_diag(void *arg)
{
	struct diag_options o;
	struct diag_report r;
	char mi[128], path[128], *line;
	json_t *j;
	int rc;

	(void)arg;
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	snprintf(path, sizeof(path), "%s/venv/missing/deeper", dir);
	diag_options_init(&o);
	o.mountinfo_path = mi;
	o.uid = 4321;
	o.gid = 4321;
	o.runner_dir = true;
	rc = diag_path("exec", path, EACCES, &o, &r);
	if (rc < 0)
		return rc;
	line = diag_format_line(&r);
	j = diag_report_to_json(&r);
	diag_report_free(&r);
	free(line);
	if (!line || !j) {
		json_decref(j);
		return -ENOMEM;
	}
	json_decref(j);
	return 0;
}

static int run_mountinfo(void *arg)
{
	struct mount_table t;
	char mi[128];
	int rc;

	(void)arg;
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	rc = mount_table_load(mi, &t, NULL, 0);
	if (rc < 0)
		return rc;
	if (!mount_table_find(&t, "/tmp/x/y")) {
		mount_table_free(&t);
		return -ENOMEM;
	}
	mount_table_free(&t);
	return 0;
}

static int run_venv_status(void *arg)
{
	struct venv_options o = { .python = "/bin/true" };
	struct venv_status st;
	char v[128];
	json_t *j;
	int rc;

	o.in_container = arg != NULL;
	snprintf(v, sizeof(v), "%s/venv", dir);
	o.dir = v;
	rc = venv_status(&o, &st);
	if (rc < 0)
		return rc;
	j = venv_status_to_json(&st);
	venv_status_free(&st);
	if (!j)
		return -ENOMEM;
	json_decref(j);
	return 0;
}

static int run_cache(void *arg)
{
	char p[128], err[256];
	int rc;

	(void)arg;
	snprintf(p, sizeof(p), "%s/cache/sub/package_cache.json", dir);
	unlink(p);
	rc = venv_package_cache_ensure(p, err, sizeof(err));
	/* Whatever happened, no half-written cache is left: it is missing or
	 * valid.  (Reading is not run under failures: jansson reports some of
	 * its own allocation failures as syntax errors.) */
	{
		long saved = countdown;
		struct stat sb;

		countdown = -1;
		if (stat(p, &sb) == 0 && venv_package_cache_ensure(p, err, sizeof(err)) != 0)
			fail_msg("cache left invalid after rc %d: %s", rc, err);
		countdown = saved;
	}
	return rc;
}

static int run_doctor(void *arg)
{
	struct doctor_input in;
	struct doctor_result res;
	char state[128], root[128], mi[128], cg[128];
	json_t *j;
	int rc;

	(void)arg;
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	snprintf(cg, sizeof(cg), "%s/root/proc/self/cgroup", dir);
	doctor_input_init(&in);
	in.state_dir = state;
	in.scripts_dir = state;
	in.runner_dir = state;
	in.mountinfo_path = mi;
	in.proc_cgroup_path = cg;
	in.cgroup_base = "/nonexistent/cgroup";
	detect_input_init(&in.detect, root, NULL);
	in.detect.env_is_pid1 = false;
	rc = doctor_run(&in, &res);
	if (rc < 0)
		return rc;
	j = doctor_result_to_json(&res);
	doctor_result_free(&res);
	if (!j)
		return -ENOMEM;
	json_decref(j);
	return 0;
}

/* valgrind replaces the allocator in the whole process, this file's
 * malloc included: no failure can be injected there. */
static void skip_under_valgrind(void)
{
	if (getenv("FIELDRIG_UNDER_VALGRIND"))
		skip();
}

static void test_detect_oom(void **state)
{
	(void)state;
	skip_under_valgrind();
	assert_true(each_failure(run_detect, NULL) > 20);
}

static void test_diag_oom(void **state)
{
	(void)state;
	skip_under_valgrind();
	assert_true(each_failure(run_diag, NULL) > 10);
}

static void test_mountinfo_oom(void **state)
{
	(void)state;
	skip_under_valgrind();
	assert_true(each_failure(run_mountinfo, NULL) > 5);
}

static void test_venv_oom(void **state)
{
	(void)state;
	skip_under_valgrind();
	assert_true(each_failure(run_venv_status, NULL) > 5);
	assert_true(each_failure(run_venv_status, (void *)1) > 2);
	assert_true(each_failure(run_cache, NULL) > 5);
}

static void test_doctor_oom(void **state)
{
	(void)state;
	skip_under_valgrind();
	assert_true(each_failure(run_doctor, NULL) > 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect_oom),
		cmocka_unit_test(test_diag_oom),
		cmocka_unit_test(test_mountinfo_oom),
		cmocka_unit_test(test_venv_oom),
		cmocka_unit_test(test_doctor_oom),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
