/* Tests for ff_glob_match(): the path patterns of faultfs rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rules.h"

#define MATCH(p, s) assert_true(ff_glob_match((p), (s)))
#define NOMATCH(p, s) assert_false(ff_glob_match((p), (s)))

static void test_literal(void **state)
{
	MATCH("venv", "venv");
	MATCH("a/b/c", "a/b/c");
	NOMATCH("venv", "venv2");
	NOMATCH("venv", "ven");
	NOMATCH("a/b", "a/b/c");
	NOMATCH("a/b/c", "a/b");
	NOMATCH("a", "");
}

static void test_root(void **state)
{
	/* The root is the empty path; only "", "/" and patterns that can
	 * match zero components reach it. */
	MATCH("", "");
	MATCH("/", "");
	MATCH("//", "");
	MATCH("**", "");
	MATCH("/**", "");
	NOMATCH("", "a");
	NOMATCH("*", "");
	NOMATCH("?", "");
	NOMATCH("a/**", "");
}

static void test_slashes_ignored(void **state)
{
	MATCH("/venv", "venv");
	MATCH("venv/", "venv");
	MATCH("/venv/", "venv");
	MATCH("a//b", "a/b");
	MATCH("a/b", "a//b");
	/* Callers pass paths without a leading slash, but one is harmless. */
	MATCH("venv", "/venv");
}

static void test_star(void **state)
{
	MATCH("*", "anything");
	MATCH("*.py", "main.py");
	MATCH("*.py", ".py");
	MATCH("a*b", "ab");
	MATCH("a*b", "axxxb");
	MATCH("a*b*c", "abbbcbc");
	MATCH("*a*", "banana");
	NOMATCH("*.py", "main.pyc");
	NOMATCH("a*b", "axxxbc");
	/* A star stays within its component. */
	NOMATCH("*", "a/b");
	NOMATCH("a*", "a/b");
	NOMATCH("*.py", "dir/main.py");
	MATCH("*/*.py", "dir/main.py");
	/* "**" inside a component is two stars, not a directory wildcard. */
	MATCH("a**b", "axyb");
	NOMATCH("a**b", "ax/yb");
}

static void test_star_dotfiles(void **state)
{
	/* Stars match dot files: a rule about faults should not let ".venv"
	 * escape a pattern written for every entry. */
	MATCH("*", ".venv");
	MATCH("*.py", ".hidden.py");
	MATCH("**", ".git/config");
	MATCH("?venv", ".venv");
}

static void test_question(void **state)
{
	MATCH("?", "a");
	MATCH("a?c", "abc");
	NOMATCH("a?c", "ac");
	NOMATCH("a?c", "abbc");
	NOMATCH("?", "ab");
	NOMATCH("a?b", "a/b");
}

static void test_classes(void **state)
{
	MATCH("[abc]", "b");
	NOMATCH("[abc]", "d");
	MATCH("file[0-9].txt", "file7.txt");
	NOMATCH("file[0-9].txt", "filex.txt");
	MATCH("[a-cx-z]", "y");
	NOMATCH("[a-cx-z]", "m");
	MATCH("[!a-c]", "d");
	NOMATCH("[!a-c]", "b");
	MATCH("[^a-c]", "d");
	NOMATCH("[^a-c]", "a");
	/* A ']' first in the class is a member. */
	MATCH("[]]", "]");
	MATCH("[]a]", "a");
	MATCH("[!]]", "a");
	NOMATCH("[!]]", "]");
	/* A '-' at the end is literal. */
	MATCH("[a-]", "-");
	/* An unclosed '[' is a literal bracket. */
	MATCH("a[b", "a[b");
	NOMATCH("a[b", "ab");
	/* Classes with stars around them. */
	MATCH("*[0-9]", "log7");
	NOMATCH("*[0-9]", "log");
	/* A class never matches the empty string or crosses components. */
	NOMATCH("[a]", "");
	NOMATCH("x[/]y", "x/y");
}

static void test_escapes(void **state)
{
	MATCH("\\*", "*");
	NOMATCH("\\*", "a");
	MATCH("a\\?b", "a?b");
	NOMATCH("a\\?b", "axb");
	MATCH("\\[x]", "[x]");
	NOMATCH("\\[x]", "x");
	MATCH("[\\]]", "]");
	MATCH("\\{a,b\\}", "{a,b}");
	MATCH("*\\*", "ab*");
	NOMATCH("*\\*", "ab");
}

static void test_doublestar_start(void **state)
{
	MATCH("**/venv", "venv");
	MATCH("**/venv", "a/venv");
	MATCH("**/venv", "a/b/c/venv");
	NOMATCH("**/venv", "a/venv/b");
	NOMATCH("**/venv", "xvenv");
	MATCH("**/*.py", "x.py");
	MATCH("**/*.py", "a/b/x.py");
	NOMATCH("**/*.py", "a/b/x.pyc");
}

static void test_doublestar_end(void **state)
{
	/* Decided: "tmp/" plus "**" covers tmp itself as well as everything
	 * below it. */
	MATCH("tmp/**", "tmp");
	MATCH("tmp/**", "tmp/a");
	MATCH("tmp/**", "tmp/a/b/c");
	NOMATCH("tmp/**", "tmpx");
	NOMATCH("tmp/**", "other/tmp");
	NOMATCH("tmp/**", "");
	MATCH("**", "a/b/c");
	MATCH("**", "a");
}

static void test_doublestar_middle(void **state)
{
	MATCH("a/**/b", "a/b");
	MATCH("a/**/b", "a/x/b");
	MATCH("a/**/b", "a/x/y/z/b");
	NOMATCH("a/**/b", "a/x/y/z/c");
	NOMATCH("a/**/b", "b");
	MATCH("a/**/b/**/c", "a/b/c");
	MATCH("a/**/b/**/c", "a/1/b/2/3/c");
	MATCH("a/**/b/**/c", "a/b/b/b/c");
	NOMATCH("a/**/b/**/c", "a/c/b");
	MATCH("**/**/x", "x");
	MATCH("**/a/**", "q/a/r/s");
	MATCH("**/a/**", "a");
	/* Backtracking: the first "b" candidate is not the right one. */
	MATCH("**/b/c", "b/b/c");
	MATCH("**/b/*/d", "b/x/b/y/d");
}

static void test_null_arguments(void **state)
{
	NOMATCH(NULL, "a");
	NOMATCH("a", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literal),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_slashes_ignored),
		cmocka_unit_test(test_star),
		cmocka_unit_test(test_star_dotfiles),
		cmocka_unit_test(test_question),
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_doublestar_start),
		cmocka_unit_test(test_doublestar_end),
		cmocka_unit_test(test_doublestar_middle),
		cmocka_unit_test(test_null_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
