/* Unit tests of runner/dotenv.c: the .env syntax of the field reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotenv.h"

struct kv {
	char key[64];
	char value[256];
	unsigned line;
};

struct got {
	struct kv kv[16];
	size_t n;
};

static int collect(void *ctx, const char *key, const char *value, unsigned line)
{
	struct got *g = ctx;

	assert_true(g->n < 16);
	snprintf(g->kv[g->n].key, sizeof(g->kv[0].key), "%s", key);
	snprintf(g->kv[g->n].value, sizeof(g->kv[0].value), "%s", value);
	g->kv[g->n].line = line;
	g->n++;
	return 0;
}

static int parse(const char *text, struct got *g, unsigned *line, char *msg, size_t msglen)
{
	memset(g, 0, sizeof(*g));
	return dotenv_parse(text, strlen(text), collect, g, line, msg, msglen);
}

static void test_report_env(void **state)
{
	/* The .env of field report 002, comments and all. */
	static const char text[] =
		"# Redis (for Celery)\n"
		"REDIS_URL=redis://localhost:6379/0\n"
		"\n"
		"# Script Execution Settings\n"
		"MAX_SCRIPT_SIZE=10485760       # 10MB\n"
		"MAX_EXECUTION_TIME=3600        # 1 hour\n"
		"SCRIPTS_DIR=scripts            # Where uploaded scripts are stored\n";
	struct got g;

	(void)state;
	assert_int_equal(parse(text, &g, NULL, NULL, 0), 0);
	assert_int_equal(g.n, 4);
	assert_string_equal(g.kv[0].key, "REDIS_URL");
	assert_string_equal(g.kv[0].value, "redis://localhost:6379/0");
	assert_int_equal(g.kv[0].line, 2);
	assert_string_equal(g.kv[1].value, "10485760");
	assert_int_equal(g.kv[2].line, 6);
	assert_string_equal(g.kv[2].value, "3600");
	assert_string_equal(g.kv[3].value, "scripts");
}

static void test_quotes_and_export(void **state)
{
	static const char text[] =
		"export BOT_RUNNER_DIR=/srv/blitz-test-server/runtime/bot_runners\n"
		"  export   A = 'single $HOME \\n kept' # comment\n"
		"B=\"tab\\there \\\"q\\\" \\\\ \\$x\"\n"
		"C=a#b\n"
		"D=\n"
		"E=   # only a comment\n"
		"F=\"#not a comment\"\r\n"
		"G.dotted_1 = value with  spaces   \n";
	struct got g;

	(void)state;
	assert_int_equal(parse(text, &g, NULL, NULL, 0), 0);
	assert_int_equal(g.n, 8);
	assert_string_equal(g.kv[0].key, "BOT_RUNNER_DIR");
	assert_string_equal(g.kv[1].key, "A");
	assert_string_equal(g.kv[1].value, "single $HOME \\n kept");
	assert_string_equal(g.kv[2].value, "tab\there \"q\" \\ $x");
	assert_string_equal(g.kv[3].value, "a#b");
	assert_string_equal(g.kv[4].value, "");
	assert_string_equal(g.kv[5].value, "");
	assert_string_equal(g.kv[6].value, "#not a comment");
	assert_string_equal(g.kv[7].key, "G.dotted_1");
	assert_string_equal(g.kv[7].value, "value with  spaces");
}

static void expect_error(const char *text, unsigned want_line, const char *want_msg)
{
	struct got g;
	unsigned line = 0;
	char msg[256];

	assert_int_equal(parse(text, &g, &line, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(line, want_line);
	if (strstr(msg, want_msg) == NULL)
		fail_msg("message '%s' lacks '%s'", msg, want_msg);
}

static void test_errors_name_the_line(void **state)
{
	(void)state;
	expect_error("A=1\nnot an assignment\n", 2, "expected '=' after variable name not");
	expect_error("A=1\n\nB='open\n", 3, "unterminated single quote in value of B");
	expect_error("C=\"open\n", 1, "unterminated double quote in value of C");
	expect_error("D=\"x\" trailing\n", 1, "unexpected text after closing quote");
	expect_error("E=\"\\q\"\n", 1, "unknown escape");
	expect_error("1BAD=x\n", 1, "expected KEY=VALUE");
	expect_error("KEY value\n", 1, "expected '=' after variable name KEY");
	expect_error("export\n", 1, "after variable name export");
}

static void test_nul_byte(void **state)
{
	static const char text[] = "A=1\nB=\0x\n";
	unsigned line = 0;
	char msg[128];
	struct got g = { 0 };

	(void)state;
	assert_int_equal(dotenv_parse(text, sizeof(text) - 1, collect, &g, &line, msg, sizeof(msg)),
			 -EINVAL);
	assert_int_equal(line, 2);
	assert_non_null(strstr(msg, "NUL byte"));
}

static int stop_at_second(void *ctx, const char *key, const char *value, unsigned line)
{
	int *n = ctx;

	(void)key;
	(void)value;
	(void)line;
	return ++*n == 2 ? 42 : 0;
}

static void test_callback_stops(void **state)
{
	static const char text[] = "A=1\nB=2\nC=3\n";
	int n = 0;

	(void)state;
	assert_int_equal(dotenv_parse(text, strlen(text), stop_at_second, &n, NULL, NULL, 0), 42);
	assert_int_equal(n, 2);
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/test_dotenv.XXXXXX", path[64], err[256];
	struct got g = { 0 };
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/.env", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("A=1\nB=\"2\"\nC='3\n", f);
	fclose(f);
	assert_int_equal(dotenv_load(path, collect, &g, err, sizeof(err)), -EINVAL);
	/* FILE:LINE: message */
	assert_non_null(strstr(err, "/.env:3: unterminated single quote"));
	assert_int_equal(g.n, 2);

	assert_int_equal(dotenv_load(dir, collect, &g, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);
	assert_int_equal(dotenv_load(path, collect, &g, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "No such file or directory"));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_env),
		cmocka_unit_test(test_quotes_and_export),
		cmocka_unit_test(test_errors_name_the_line),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
