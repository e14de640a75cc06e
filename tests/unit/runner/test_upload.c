/* Unit tests of runner/upload.c: names, uuids, the atomic store and its
 * refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "settings.h"
#include "store.h"
#include "upload.h"
#include "testutil.h"

static void san(const char *in, const char *want, size_t maxlen)
{
	char out[256];

	sanitize_name(in, out, maxlen);
	assert_string_equal(out, want);
}

static void test_sanitize_name(void **state)
{
	char longname[400], want[200];

	(void)state;
	san("bot.py", "bot.py", UPLOAD_NAME_MAX);
	san("../../etc/passwd.py", "passwd.py", UPLOAD_NAME_MAX);
	san("C:\\Users\\me\\bot.py", "bot.py", UPLOAD_NAME_MAX);
	san("evil\n\r\t\x1b[31mname.py", "evil[31mname.py", UPLOAD_NAME_MAX);
	san("...hidden.py", "hidden.py", UPLOAD_NAME_MAX);
	san("..", "script", UPLOAD_NAME_MAX);
	san("dir/", "script", UPLOAD_NAME_MAX);
	san("", "script", UPLOAD_NAME_MAX);
	san("  spaced  .py  ", "spaced  .py", UPLOAD_NAME_MAX);
	san("caf\xc3\xa9.py", "caf\xc3\xa9.py", UPLOAD_NAME_MAX);
	/* Invalid UTF-8, an overlong '/', a C1 control: dropped. */
	san("a\xff\xc0\xaf" "b\xc2\x85.py", "ab.py", UPLOAD_NAME_MAX);
	san("del\x7f.py", "del.py", UPLOAD_NAME_MAX);

	/* Long names keep their extension and are cut on a character
	 * boundary. */
	memset(longname, 'a', 300);
	strcpy(longname + 300, ".py");
	memset(want, 'a', 17);
	strcpy(want + 17, ".py");
	san(longname, want, 20);
	san("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9.py", "\xc3\xa9\xc3\xa9.py", 8);
}

static void test_uuid(void **state)
{
	char a[37], b[37];
	int i;

	(void)state;
	assert_int_equal(uuid_v4(a), 0);
	assert_int_equal(uuid_v4(b), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(strlen(a), 36);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(a[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", a[i]));
	}
	assert_int_equal(a[14], '4');
	assert_non_null(strchr("89ab", a[19]));
}

struct env {
	char state[192];
	char src[256];
	struct settings s;
	struct store *st;
};

static void env_open(struct env *e, const char *name, const char *extra_name, const char *extra_value)
{
	char err[512];

	snprintf(e->state, sizeof(e->state), "%s/%s", tu_dir, name);
	settings_init(&e->s);
	settings_set(&e->s, "RUNNER_STATE_DIR", e->state, SRC_FLAG, "flag --state");
	if (extra_name)
		settings_set(&e->s, extra_name, extra_value, SRC_ENV, "env test");
	assert_int_equal(settings_finalize(&e->s, err, sizeof(err)), 0);
	if (store_open(e->state, &e->st, err, sizeof(err)) != 0)
		fail_msg("%s", err);
}

static void env_close(struct env *e)
{
	store_close(e->st);
	settings_free(&e->s);
}

static void write_src(struct env *e, const char *name, const char *content, size_t len)
{
	int fd;

	snprintf(e->src, sizeof(e->src), "%s/%s", e->state, name);
	fd = open(e->src, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
}

/* Names in the scripts directory, joined by spaces. */
static void listing(struct env *e, char *out, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(e->s.scripts_dir);
	size_t off = 0;

	out[0] = '\0';
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		off += (size_t)snprintf(out + off, len - off, "%s%s", off ? " " : "", de->d_name);
	}
	closedir(d);
}

struct one {
	int n;
	char name[160];
	char file[64];
	char lang[16];
	long long size;
};

static int one_cb(void *ctx, const struct script_rec *r)
{
	struct one *o = ctx;

	o->n++;
	snprintf(o->name, sizeof(o->name), "%s", r->name);
	snprintf(o->file, sizeof(o->file), "%s", r->file);
	snprintf(o->lang, sizeof(o->lang), "%s", r->lang);
	o->size = r->size;
	return 0;
}

static void test_upload_ok(void **state)
{
	struct upload_request req = { 0 };
	struct env e;
	struct one o = { 0 };
	struct stat st;
	char id[37], err[1024], want[64], got[512], path[512], buf[32];
	int fd;
	mode_t old = umask(077);

	(void)state;
	env_open(&e, "ok", NULL, NULL);
	write_src(&e, "hello.py", "print('hi')\n", 12);
	req.src = e.src;
	req.name = "../My Bot.PY";
	if (upload_script(&e.s, e.st, &req, id, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	umask(old);
	snprintf(want, sizeof(want), "%s.py", id);
	listing(&e, got, sizeof(got));
	/* Only the final file: no temporary left over. */
	assert_string_equal(got, want);
	snprintf(path, sizeof(path), "%s/%s", e.s.scripts_dir, want);
	assert_int_equal(stat(path, &st), 0);
	/* 0640 whatever the umask. */
	assert_int_equal(st.st_mode & 07777, 0640);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 12);
	close(fd);
	assert_memory_equal(buf, "print('hi')\n", 12);

	assert_int_equal(store_list_scripts(e.st, one_cb, &o, err, sizeof(err)), 0);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.name, "My Bot.PY");
	assert_string_equal(o.file, want);
	assert_string_equal(o.lang, "python");
	assert_int_equal(o.size, 12);
	env_close(&e);
}

static void expect_refused(struct env *e, struct upload_request *req, int want_ret,
			   const char *want_msg)
{
	char id[37], err[1024], got[512];

	assert_int_equal(upload_script(&e->s, e->st, req, id, err, sizeof(err)), want_ret);
	if (strstr(err, want_msg) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want_msg);
	assert_true(req->input_error);
	listing(e, got, sizeof(got));
	assert_string_equal(got, "");
}

static void test_upload_refusals(void **state)
{
	struct upload_request req = { 0 };
	struct env e;
	char big[2048];

	(void)state;
	env_open(&e, "refuse", "MAX_SCRIPT_SIZE", "1KiB");
	write_src(&e, "tool.exe", "MZ", 2);
	req.src = e.src;
	expect_refused(&e, &req, -EINVAL, "type '.exe' is not allowed (allowed: .py,.js,.ts");

	write_src(&e, "noext", "x", 1);
	expect_refused(&e, &req, -EINVAL, "has no usable extension");

	memset(big, '#', sizeof(big));
	write_src(&e, "big.py", big, sizeof(big));
	expect_refused(&e, &req, -EFBIG, "2048 bytes is over MAX_SCRIPT_SIZE (1KiB)");

	req.src = e.state;
	req.name = "dir.py";
	expect_refused(&e, &req, -EINVAL, "not a regular file");

	req.src = "/nonexistent/x.py";
	req.name = NULL;
	expect_refused(&e, &req, -ENOENT, "/nonexistent/x.py");
	env_close(&e);
}

static void test_upload_follows_source_symlink(void **state)
{
	struct upload_request req = { 0 };
	struct env e;
	char id[37], err[1024], link[300];

	(void)state;
	env_open(&e, "link", NULL, NULL);
	write_src(&e, "real.js", "1\n", 2);
	snprintf(link, sizeof(link), "%s/alias.js", e.state);
	assert_int_equal(symlink(e.src, link), 0);
	req.src = link;
	if (upload_script(&e.s, e.st, &req, id, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	env_close(&e);
}

static void test_scripts_dir_symlink_refused(void **state)
{
	struct upload_request req = { 0 };
	struct env e;
	char id[37], err[1024], target[300], sd[300];

	(void)state;
	/* A scripts directory that is a symlink could send uploads anywhere:
	 * the directory is opened with O_NOFOLLOW. */
	snprintf(target, sizeof(target), "%s/elsewhere", tu_dir);
	assert_int_equal(mkdir(target, 0750), 0);
	snprintf(sd, sizeof(sd), "%s/symsd", tu_dir);
	assert_int_equal(mkdir(sd, 0750), 0);
	snprintf(sd, sizeof(sd), "%s/symsd/scripts", tu_dir);
	assert_int_equal(symlink(target, sd), 0);
	env_open(&e, "symsd", NULL, NULL);
	write_src(&e, "a.py", "1\n", 2);
	req.src = e.src;
	assert_int_equal(upload_script(&e.s, e.st, &req, id, err, sizeof(err)), -ELOOP);
	assert_false(req.input_error);
	assert_non_null(strstr(err, sd));
	env_close(&e);
}

/* Filesystems without O_TMPFILE get a hidden temporary name: the result
 * is the same, and nothing is left behind either way. */
static void test_named_temporary(void **state)
{
	struct upload_request req = { .no_tmpfile = true };
	struct env e;
	char id[37], err[1024], want[64], got[512];

	(void)state;
	env_open(&e, "named", NULL, NULL);
	write_src(&e, "n.ts", "let x: number = 1;\n", 19);
	req.src = e.src;
	if (upload_script(&e.s, e.st, &req, id, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	snprintf(want, sizeof(want), "%s.ts", id);
	listing(&e, got, sizeof(got));
	assert_string_equal(got, want);
	env_close(&e);
}

/* ENOSPC half-way through the copy, on both paths: a 64 KiB tmpfs (needs
 * root; skipped otherwise). */
static void test_enospc_leaves_nothing(void **state)
{
	struct upload_request req = { 0 };
	struct env e;
	char id[37], err[1024], got[512], mnt[256], big[100 * 1024];
	int pass, ret;

	(void)state;
	env_open(&e, "enospc", "MAX_SCRIPT_SIZE", "1MiB");
	snprintf(mnt, sizeof(mnt), "%s/scripts", e.state);
	assert_int_equal(mkdir(mnt, 0750), 0);
	if (geteuid() != 0 || mount("fieldrig-test", mnt, "tmpfs", 0, "size=64k") != 0) {
		env_close(&e);
		skip();
	}
	memset(big, '#', sizeof(big));
	write_src(&e, "big.py", big, sizeof(big));
	for (pass = 0; pass < 2; pass++) {
		req.src = e.src;
		req.no_tmpfile = pass == 1;
		ret = upload_script(&e.s, e.st, &req, id, err, sizeof(err));
		listing(&e, got, sizeof(got));
		if (ret != -ENOSPC || strstr(err, "No space left on device") == NULL ||
		    strstr(err, mnt) == NULL || got[0] != '\0') {
			umount(mnt);
			fail_msg("pass %d: ret %d, err '%s', left '%s'", pass, ret, err, got);
		}
		assert_false(req.input_error);
	}
	umount(mnt);
	env_close(&e);
}

static void test_lang(void **state)
{
	(void)state;
	assert_string_equal(upload_lang(".py"), "python");
	assert_string_equal(upload_lang(".js"), "node");
	assert_string_equal(upload_lang(".ts"), "ts");
	assert_string_equal(upload_lang(".rb"), "rb");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sanitize_name),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_upload_ok),
		cmocka_unit_test(test_upload_refusals),
		cmocka_unit_test(test_upload_follows_source_symlink),
		cmocka_unit_test(test_scripts_dir_symlink_refused),
		cmocka_unit_test(test_named_temporary),
		cmocka_unit_test(test_enospc_leaves_nothing),
		cmocka_unit_test(test_lang),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
