/* Unit tests of the report writers: XML and TAP escaping, and a JUnit and
 * TAP document built from results with hostile text in every field. */
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
#include <jansson.h>

#include "report.h"

static char *escaped(void (*fn)(FILE *, const char *), const char *in)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, in);
	fclose(f);
	return buf;
}

static void test_xml_escape(void **state)
{
	char *s;

	(void)state;
	s = escaped(xml_escape, "a<b>&\"c\"'d'");
	assert_string_equal(s, "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
	free(s);
	/* Controls XML 1.0 forbids become '?'; tab and newline stay; CR is kept as a reference. */
	s = escaped(xml_escape, "x\x01y\x1b[0m\tz\n\r");
	assert_string_equal(s, "x?y?[0m\tz\n&#13;");
	free(s);
	/* U+FFFE/U+FFFF are not characters; other UTF-8 passes. */
	s = escaped(xml_escape, "\xef\xbf\xbe-\xef\xbf\xbf-\xd1\x8f\xf0\x9f\xa4\x96");
	assert_string_equal(s, "?-?-\xd1\x8f\xf0\x9f\xa4\x96");
	free(s);
	s = escaped(xml_escape, "]]><![CDATA[");
	assert_string_equal(s, "]]&gt;&lt;![CDATA[");
	free(s);
}

static void test_tap_escape(void **state)
{
	char *s;

	(void)state;
	s = escaped(tap_escape, "a # SKIP not\\really\nline");
	assert_string_equal(s, "a \\# SKIP not\\\\really line");
	free(s);
}

static json_t *hostile_results(void)
{
	return json_pack("[{s:s, s:s, s:s, s:s, s:f, s:[{s:i, s:s, s:s, s:s, s:s, s:i}], s:[{s:i, s:s, s:s, s:f, s:b, s:i, s:s, s:s}]},"
			 " {s:s, s:s, s:s, s:s, s:s, s:f}]",
			 "name", "x<&>\"#", "file", "s/a.yaml", "folder", "g&h", "status", "failed", "duration", 1.5,
			 "failures", "step", 1, "expectation", "status", "expected", "status <COMPLETED>", "actual",
			 "FAILED: \"quoted\"\nnext # line", "file", "s/a.yaml", "line", 7,
			 "steps", "index", 1, "kind", "exec", "label", "exec", "duration", 0.25, "ok", 0, "exit_code", 1,
			 "stdout", "<script>alert(1)</script>", "stderr", "\x1b[31mred\x1b[0m",
			 "name", "skipped one", "file", "s/b.yaml", "folder", "g&h", "status", "skipped", "reason",
			 "needs /dev/fuse # really", "duration", 0.0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void test_junit(void **state)
{
	char path[] = "/tmp/fieldrig-test-junit-XXXXXX";
	json_t *r = hostile_results();
	char *x;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(report_junit(r, path), 0);
	x = slurp(path);
	assert_non_null(strstr(x, "<testsuites name=\"fieldrig\" tests=\"2\" failures=\"1\" skipped=\"1\""));
	assert_non_null(strstr(x, "<testsuite name=\"g&amp;h\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"1\""));
	assert_non_null(strstr(x, "<testcase classname=\"g&amp;h\" name=\"x&lt;&amp;&gt;&quot;#\" file=\"s/a.yaml\" time=\"1.500\">"));
	assert_non_null(strstr(x, "<failure message=\"status: expected status &lt;COMPLETED&gt;\" type=\"status\">"));
	assert_non_null(strstr(x, "s/a.yaml:7: status"));
	assert_non_null(strstr(x, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(x, "?[31mred?[0m"));
	assert_non_null(strstr(x, "<skipped message=\"needs /dev/fuse # really\"/>"));
	assert_null(strstr(x, "<script>"));
	assert_null(strchr(x, '\x1b'));
	free(x);
	unlink(path);
	json_decref(r);
}

static void test_tap(void **state)
{
	json_t *r = hostile_results();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_int_equal(report_tap(r, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "TAP version 13\n1..2\n"));
	assert_non_null(strstr(buf, "not ok 1 - g&h/x<&>\"\\#\n"));
	assert_non_null(strstr(buf, "      actual: \"FAILED: \\\"quoted\\\"\\nnext # line\"\n"));
	assert_non_null(strstr(buf, "ok 2 - g&h/skipped one # SKIP needs /dev/fuse \\# really\n"));
	free(buf);
	json_decref(r);
}

static void test_html(void **state)
{
	char dir[] = "/tmp/fieldrig-test-html-XXXXXX", path[64];
	json_t *r = hostile_results();
	char *x;
	int n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(report_html(r, dir), 0);
	snprintf(path, sizeof(path), "%s/index.html", dir);
	x = slurp(path);
	assert_non_null(strstr(x, "1 failed"));
	/* Only the report's own two scripts (the error collector first in
	 * <head>); the hostile one in a scenario's text is escaped. */
	n = 0;
	for (const char *p = x; (p = strstr(p, "<script")); p++)
		n++;
	assert_int_equal(n, 2);
	assert_true(strstr(x, "<script") < strstr(x, "<title>"));
	/* No coverage report beside the temp dir: no coverage links. */
	assert_null(strstr(x, "class=\"cov\""));
	assert_null(strstr(x, "http"));	/* no external resources */
	assert_non_null(strstr(x, "&lt;script&gt;"));
	free(x);
	unlink(path);
	rmdir(dir);
	json_decref(r);
}

/* With reports/coverage/html/ beside the report, the summary links to it
 * and each scenario to the genhtml directory pages of the parts it ran,
 * all relative: runner/ only after a runner step, faultfs/ only with a
 * mount, and no link to a page that does not exist (common/ here). */
static void test_html_coverage(void **state)
{
	char dir[] = "/tmp/fieldrig-test-htmlcov-XXXXXX", path[128];
	static const char *const made[] = { "coverage", "coverage/html", "coverage/html/runner",
					    "coverage/html/faultfs", "coverage/html/harness" };
	json_t *r = json_pack("[{s:s, s:s, s:s, s:s, s:f, s:[{s:i, s:s, s:s}], s:{s:[]}},"
			      " {s:s, s:s, s:s, s:s, s:f, s:[{s:i, s:s, s:s, s:s}], s:{}},"
			      " {s:s, s:s, s:s, s:s, s:f, s:[{s:i, s:s, s:s, s:s}], s:{}}]",
			      "name", "a", "file", "s/a.yaml", "folder", "f", "status", "passed", "duration", 0.1,
			      "steps", "index", 0, "kind", "upload", "label", "upload", "faults", "tmp",
			      "name", "b", "file", "s/b.yaml", "folder", "f", "status", "passed", "duration", 0.1,
			      "steps", "index", 0, "kind", "sh", "label", "sh", "command", "echo runner", "faults",
			      "name", "c", "file", "s/c.yaml", "folder", "f", "status", "passed", "duration", 0.1,
			      "steps", "index", 0, "kind", "sh", "label", "sh", "command", "\"$RUNNER\" config", "faults");
	char *x, *a, *b, *c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
		assert_int_equal(mkdir(path, 0755), 0);
		if (i >= 1) {
			snprintf(path, sizeof(path), "%s/%s/index.html", dir, made[i]);
			f = fopen(path, "w");
			assert_non_null(f);
			fclose(f);
		}
	}
	assert_int_equal(report_html(r, dir), 0);
	snprintf(path, sizeof(path), "%s/index.html", dir);
	x = slurp(path);
	assert_non_null(strstr(x, "<a id=\"coverage\" href=\"coverage/html/index.html\">"));
	a = strstr(x, "data-name=\"f/a\"");
	b = strstr(x, "data-name=\"f/b\"");
	c = strstr(x, "data-name=\"f/c\"");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_true(a < b && b < c);
	/* A sh step calling "$RUNNER" links runner/. */
	assert_non_null(strstr(c, "href=\"coverage/html/runner/index.html\""));
	*c = '\0';	/* b's part of the page ends where c's begins */
	*b = '\0';	/* a's part of the page ends where b's begins */
	assert_non_null(strstr(a, "href=\"coverage/html/runner/index.html\""));
	assert_non_null(strstr(a, "href=\"coverage/html/faultfs/index.html\""));
	assert_non_null(strstr(a, "href=\"coverage/html/harness/index.html\""));
	assert_null(strstr(a, "common/index.html"));
	assert_null(strstr(b + 1, "runner/index.html"));
	assert_null(strstr(b + 1, "faultfs/index.html"));
	assert_non_null(strstr(b + 1, "href=\"coverage/html/harness/index.html\""));
	free(x);
	unlink(path);
	for (size_t i = 5; i-- > 0;) {
		if (i >= 1) {
			snprintf(path, sizeof(path), "%s/%s/index.html", dir, made[i]);
			unlink(path);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, made[i]);
		rmdir(path);
	}
	rmdir(dir);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_tap_escape),
		cmocka_unit_test(test_junit),
		cmocka_unit_test(test_tap),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_html_coverage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
