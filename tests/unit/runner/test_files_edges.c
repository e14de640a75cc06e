/* The file-handling edges of dotenv, settings, runnerdir and upload:
 * escapes, an oversized env-file, a callback that stops the parse,
 * every ALLOWED_TYPES complaint, the state dir from HOME, sub-second
 * durations in the display, runner scripts that cannot be created or
 * renamed into place, scripts dirs that cannot be made, and a source file
 * that grows past MAX_SCRIPT_SIZE while it is read (a /proc file: size 0
 * in stat, content when read).  EPERM comes from immutable files, which
 * needs root on ext4/xfs/btrfs; those parts are skipped elsewhere. */
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

#include "dotenv.h"
#include "runnerdir.h"
#include "settings.h"
#include "store.h"
#include "upload.h"
#include "testutil.h"

/* ---- dotenv ------------------------------------------------------------ */

struct kv { char key[64], value[64]; int n; int stop_at; };

static int collect(void *ctx, const char *key, const char *value, unsigned line)
{
	struct kv *kv = ctx;

	(void)line;
	kv->n++;
	snprintf(kv->key, sizeof(kv->key), "%s", key);
	snprintf(kv->value, sizeof(kv->value), "%s", value);
	return kv->n == kv->stop_at ? -ECANCELED : 0;
}

static void test_dotenv_edges(void **state)
{
	static const char esc[] = "A=\"a\\nb\\rc\\td\"\n";
	struct kv kv = { .stop_at = 0 };
	char path[128], err[512];
	unsigned line = 0;
	char msg[128];

	(void)state;
	assert_int_equal(dotenv_parse(esc, sizeof(esc) - 1, collect, &kv, &line, msg, sizeof(msg)), 0);
	assert_string_equal(kv.value, "a\nb\rc\td");

	/* A callback's error ends the parse and comes back as is. */
	memset(&kv, 0, sizeof(kv));
	kv.stop_at = 2;
	snprintf(path, sizeof(path), "%s/stop.env", tu_dir);
	tu_write_file(path, "A=1\nB=2\nC=3\n", 0644);
	assert_int_equal(dotenv_load(path, collect, &kv, err, sizeof(err)), -ECANCELED);
	assert_int_equal(kv.n, 2);
	tu_assert_contains(err, path);

	/* Over 1 MiB: refused before reading. */
	snprintf(path, sizeof(path), "%s/big.env", tu_dir);
	tu_write_file(path, "", 0644);
	assert_int_equal(truncate(path, 2 * 1024 * 1024), 0);
	assert_int_equal(dotenv_load(path, collect, &kv, err, sizeof(err)), -EFBIG);
	tu_assert_contains(err, "larger than 1048576 bytes");

	/* A file whose size stat gives as 0 but that has content. */
	memset(&kv, 0, sizeof(kv));
	assert_int_equal(dotenv_load("/proc/self/environ", collect, &kv, err, sizeof(err)), -EFBIG);
	tu_assert_contains(err, "/proc/self/environ: file grew while being read");

	/* Unreadable as a directory would be: not a regular file. */
	assert_int_equal(dotenv_load(tu_dir, collect, &kv, err, sizeof(err)), -EINVAL);
	tu_assert_contains(err, "not a regular file");
}

/* ---- settings ---------------------------------------------------------- */

static int finalize_with(const char *name, const char *value, char *err, size_t errlen)
{
	struct settings s;
	int rc;

	settings_init(&s);
	settings_set(&s, "RUNNER_STATE_DIR", tu_dir, SRC_FLAG, "flag --state");
	settings_set(&s, name, value, SRC_ENVFILE, "env-file x.env:3");
	rc = settings_finalize(&s, err, errlen);
	settings_free(&s);
	return rc;
}

static void test_settings_edges(void **state)
{
	char err[512], buf[64];
	struct settings s;
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	char *xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;

	(void)state;
	assert_true(finalize_with("RUNNER_ALLOWED_TYPES", ".a,.b,.c,.d,.e,.f,.g,.h,.i,.j,.k,.l,.m,.n,.o,.p,.q,.r,.s,.t,.u,.v,.w,.x,.y,.z,.aa,.bb,.cc,.dd,.ee,.ff,.gg",
				  err, sizeof(err)) < 0);
	tu_assert_contains(err, "too many types");
	assert_true(finalize_with("RUNNER_ALLOWED_TYPES", ".py,.toolongext", err, sizeof(err)) < 0);
	tu_assert_contains(err, "each type is an extension such as .py");
	assert_true(finalize_with("RUNNER_ALLOWED_TYPES", ".py,.", err, sizeof(err)) < 0);
	tu_assert_contains(err, "each type is an extension such as .py");
	assert_true(finalize_with("RUNNER_ALLOWED_TYPES", ".p-y", err, sizeof(err)) < 0);
	tu_assert_contains(err, "extensions are letters and digits");
	tu_assert_contains(err, "env-file x.env:3");
	assert_int_equal(finalize_with("RUNNER_ALLOWED_TYPES", "py, JS9 ,.ts", err, sizeof(err)), 0);

	/* Sub-second durations keep their unit in the display. */
	settings_init(&s);
	settings_set(&s, "RUNNER_STATE_DIR", tu_dir, SRC_FLAG, "flag --state");
	settings_set(&s, "MAX_EXECUTION_TIME", "250ms", SRC_ENV, "env MAX_EXECUTION_TIME");
	assert_int_equal(settings_finalize(&s, err, sizeof(err)), 0);
	assert_string_equal(settings_display(&s, SET_MAX_EXECUTION_TIME, buf, sizeof(buf)), "250ms");
	assert_string_equal(settings_source_name(SRC_ENVFILE), "env-file");
	settings_free(&s);
	settings_init(&s);
	settings_set(&s, "RUNNER_STATE_DIR", tu_dir, SRC_FLAG, "flag --state");
	settings_set(&s, "MAX_EXECUTION_TIME", "1500us", SRC_ENV, "env MAX_EXECUTION_TIME");
	if (settings_finalize(&s, err, sizeof(err)) == 0)
		assert_string_equal(settings_display(&s, SET_MAX_EXECUTION_TIME, buf, sizeof(buf)),
				    "1500000ns");
	settings_free(&s);

	/* No state dir given: XDG_STATE_HOME, else HOME, else a clear error. */
	unsetenv("XDG_STATE_HOME");
	setenv("HOME", "/home/someone", 1);
	settings_init(&s);
	assert_int_equal(settings_finalize(&s, err, sizeof(err)), 0);
	assert_string_equal(s.state_dir, "/home/someone/.local/state/fieldrig-runner");
	settings_free(&s);
	setenv("HOME", "relative", 1);
	settings_init(&s);
	assert_true(settings_finalize(&s, err, sizeof(err)) < 0);
	tu_assert_contains(err, "neither XDG_STATE_HOME nor HOME is an absolute path");
	settings_free(&s);
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	if (xdg)
		setenv("XDG_STATE_HOME", xdg, 1);
	free(home);
	free(xdg);
}

/* ---- runner dir and upload --------------------------------------------- */

static void test_runnerdir_eperm(void **state)
{
	char locked[128], path[256], err[1024], under[192];
	struct runnerdir_probe p;

	(void)state;
	/* A directory path through a regular file. */
	snprintf(under, sizeof(under), "%s/plain", tu_dir);
	tu_write_file(under, "x", 0644);
	strcat(under, "/runners");
	assert_int_equal(runnerdir_check(under, &p), 0);
	assert_int_equal(p.err, ENOTDIR);
	assert_int_equal(runnerdir_write_script(under, "bob", "x", 1, path, sizeof(path),
						err, sizeof(err)), -ENOTDIR);

	if (!tu_can_immutable(tu_dir))
		skip();
	snprintf(locked, sizeof(locked), "%s/locked", tu_dir);
	assert_int_equal(mkdir(locked, 0755), 0);
	/* The script name is taken by an immutable file: written, not renamed. */
	snprintf(path, sizeof(path), "%s/bot_runner_bob.py", locked);
	tu_write_file(path, "old\n", 0644);
	assert_int_equal(tu_set_immutable(path, 1), 0);
	assert_int_equal(runnerdir_write_script(locked, "bob", "new\n", 4, path, sizeof(path),
						err, sizeof(err)), -EPERM);
	tu_assert_contains(err, "rename");
	tu_assert_contains(err, "bot_runner_bob.py");
	assert_int_equal(tu_set_immutable(path, 0), 0);
	/* Nothing temporary left behind. */
	{
		char cmd[256];
		FILE *ls;
		int n = -1;

		snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", locked);
		ls = popen(cmd, "r");
		assert_non_null(ls);
		assert_int_equal(fscanf(ls, "%d", &n), 1);
		pclose(ls);
		assert_int_equal(n, 1);
	}

	/* An immutable directory: nothing can be created in it. */
	assert_int_equal(tu_set_immutable(locked, 1), 0);
	assert_int_equal(runnerdir_write_script(locked, "bob", "x", 1, path, sizeof(path),
						err, sizeof(err)), -EPERM);
	tu_assert_contains(err, "create");
	snprintf(under, sizeof(under), "%s/sub/runners", locked);
	assert_int_equal(runnerdir_check(under, &p), 0);
	assert_int_equal(p.err, EPERM);
	tu_assert_contains(p.why, "mkdir");
	assert_int_equal(tu_set_immutable(locked, 0), 0);
}

static void test_upload_edges(void **state)
{
	char state_dir[128], scripts[192], src[192], err[1024], id[37];
	struct settings s;
	struct store *st;
	struct upload_request req = { 0 };

	(void)state;
	snprintf(state_dir, sizeof(state_dir), "%s/ustate", tu_dir);
	assert_int_equal(mkdir(state_dir, 0755), 0);
	/* The scripts dir path runs through a regular file. */
	snprintf(scripts, sizeof(scripts), "%s/plain", tu_dir);
	tu_write_file(scripts, "x", 0644);
	snprintf(scripts, sizeof(scripts), "%s/plain/scripts", tu_dir);
	settings_init(&s);
	settings_set(&s, "RUNNER_STATE_DIR", state_dir, SRC_FLAG, "flag --state");
	settings_set(&s, "SCRIPTS_DIR", scripts, SRC_ENV, "env SCRIPTS_DIR");
	settings_set(&s, "MAX_SCRIPT_SIZE", "64", SRC_ENV, "env MAX_SCRIPT_SIZE");
	assert_int_equal(settings_finalize(&s, err, sizeof(err)), 0);
	assert_int_equal(store_open(state_dir, &st, err, sizeof(err)), 0);

	snprintf(src, sizeof(src), "%s/ok.py", tu_dir);
	tu_write_file(src, "print(1)\n", 0644);
	req.src = src;
	assert_int_equal(upload_script(&s, st, &req, id, err, sizeof(err)), -ENOTDIR);
	assert_false(req.input_error);
	tu_assert_contains(err, "mkdir");
	tu_assert_contains(err, "plain/scripts");

	/* The scripts dir is a regular file: it "exists", and cannot be opened
	 * as a directory. */
	settings_free(&s);
	snprintf(scripts, sizeof(scripts), "%s/plain", tu_dir);
	settings_init(&s);
	settings_set(&s, "RUNNER_STATE_DIR", state_dir, SRC_FLAG, "flag --state");
	settings_set(&s, "SCRIPTS_DIR", scripts, SRC_ENV, "env SCRIPTS_DIR");
	assert_int_equal(settings_finalize(&s, err, sizeof(err)), 0);
	assert_int_equal(upload_script(&s, st, &req, id, err, sizeof(err)), -ENOTDIR);
	assert_false(req.input_error);
	tu_assert_contains(err, "open");
	tu_assert_contains(err, "/plain");

	/* A "file" that stat says is empty and that reads as more than 64
	 * bytes: it grew while being read. */
	settings_free(&s);
	settings_init(&s);
	settings_set(&s, "RUNNER_STATE_DIR", state_dir, SRC_FLAG, "flag --state");
	settings_set(&s, "MAX_SCRIPT_SIZE", "64", SRC_ENV, "env MAX_SCRIPT_SIZE");
	assert_int_equal(settings_finalize(&s, err, sizeof(err)), 0);
	snprintf(src, sizeof(src), "%s/grows.py", tu_dir);
	assert_int_equal(symlink("/proc/self/maps", src), 0);
	req.src = src;
	assert_int_equal(upload_script(&s, st, &req, id, err, sizeof(err)), -EFBIG);
	assert_true(req.input_error);
	tu_assert_contains(err, "grew over MAX_SCRIPT_SIZE while being read");
	{
		char cmd[256];
		FILE *ls;
		int n = -1;

		snprintf(cmd, sizeof(cmd), "ls -A '%s/scripts' | wc -l", state_dir);
		ls = popen(cmd, "r");
		assert_non_null(ls);
		assert_int_equal(fscanf(ls, "%d", &n), 1);
		pclose(ls);
		assert_int_equal(n, 0);
	}
	store_close(st);
	settings_free(&s);
}

static void sane(const char *in, const char *want)
{
	char out[UPLOAD_NAME_MAX + 1];

	sanitize_name(in, out, UPLOAD_NAME_MAX);
	if (strcmp(out, want) != 0)
		fail_msg("sanitize_name gave '%s', wanted '%s'", out, want);
}

static void test_sanitize_hostile_utf8(void **state)
{
	char in[256], want[256];

	(void)state;
	sane("\xe2\x82\xac.py", "\xe2\x82\xac.py");             /* 3 bytes */
	sane("\xf0\x9f\x98\x80.py", "\xf0\x9f\x98\x80.py");     /* 4 bytes */
	/* Overlong, surrogate, below U+10000 in 4 bytes, above U+10FFFF,
	 * a bad continuation, a byte that never starts a character: the
	 * bytes go, and the leading dot left then goes too. */
	sane("\xe0\x80\xaf.py", "py");
	sane("\xed\xa0\x80.py", "py");
	sane("\xf0\x80\x80\x80.py", "py");
	sane("\xf4\x90\x80\x80.py", "py");
	sane("\xc3\x28.py", "(.py");
	sane("\xf5.py", "py");
	sane("\xc2\x85name.py", "name.py");                     /* C1 control */
	/* Too long with an extension over 16 bytes: cut without one. */
	memset(in, 'a', 140);
	strcpy(in + 140, ".verylongextension17");
	memset(want, 'a', UPLOAD_NAME_MAX);
	want[UPLOAD_NAME_MAX] = '\0';
	sane(in, want);
	/* The cut never splits a character. */
	memset(in, 'a', 124);
	strcpy(in + 124, "\xe2\x82\xac" "bbbbbbbbbbbb.py");
	memset(want, 'a', 124);
	strcpy(want + 124, ".py");
	sane(in, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dotenv_edges),
		cmocka_unit_test(test_settings_edges),
		cmocka_unit_test(test_runnerdir_eperm),
		cmocka_unit_test(test_upload_edges),
		cmocka_unit_test(test_sanitize_hostile_utf8),
	};

	return cmocka_run_group_tests(tests, tu_dir_setup, tu_dir_teardown);
}
