/* Unit tests of step references (harness/refs.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refs.h"

static void test_expand(void **state)
{
	struct refs r;
	char *out = NULL, err[128];

	(void)state;
	refs_init(&r);
	assert_int_equal(refs_set(&r, "upload.id", "abc"), 0);
	assert_int_equal(refs_set(&r, "mount.tmp", "/w/mnt/tmp"), 0);
	assert_int_equal(refs_expand(&r, "run {{upload.id}} in {{ mount.tmp }}/x", &out, err, sizeof(err)), 0);
	assert_string_equal(out, "run abc in /w/mnt/tmp/x");
	free(out);
	/* A later value replaces the earlier one. */
	assert_int_equal(refs_set(&r, "upload.id", "def"), 0);
	assert_int_equal(refs_expand(&r, "{{upload.id}}{{upload.id}}", &out, err, sizeof(err)), 0);
	assert_string_equal(out, "defdef");
	free(out);
	/* No references, and text that only looks like one. */
	assert_int_equal(refs_expand(&r, "plain { } }} text", &out, err, sizeof(err)), 0);
	assert_string_equal(out, "plain { } }} text");
	free(out);
	refs_free(&r);
}

static void test_errors(void **state)
{
	struct refs r;
	char *out = NULL, err[128];

	(void)state;
	refs_init(&r);
	assert_int_equal(refs_expand(&r, "x {{nope.id}}", &out, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "unknown reference '{{nope.id}}'");
	assert_null(out);
	assert_int_equal(refs_expand(&r, "x {{open", &out, err, sizeof(err)), -EINVAL);
	assert_int_equal(refs_expand(&r, "x {{  }}", &out, err, sizeof(err)), -EINVAL);
	refs_free(&r);
}

static int collect(void *ctx, const char *name)
{
	char *buf = ctx;

	strcat(buf, name);
	strcat(buf, ";");
	return strcmp(name, "stop") == 0 ? 7 : 0;
}

static void test_scan(void **state)
{
	char buf[256] = "";

	(void)state;
	assert_int_equal(refs_scan("a {{x.y}} b {{ z }} c", collect, buf), 0);
	assert_string_equal(buf, "x.y;z;");
	buf[0] = '\0';
	assert_int_equal(refs_scan("{{a}}{{stop}}{{b}}", collect, buf), 7);
	assert_string_equal(buf, "a;stop;");
	assert_int_equal(refs_scan("{{a", collect, buf), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
