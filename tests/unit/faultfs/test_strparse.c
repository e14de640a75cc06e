/* Tests for the shared strict parsers in common/ (strparse.h, errnames.h),
 * which every faultfs rule field goes through. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "errnames.h"
#include "strparse.h"

#define SENTINEL 0x5a5a5a5aULL

/* Each failure must leave *out alone and set errno. */
#define U64_OK(s, want) do { uint64_t v_ = SENTINEL; \
	assert_int_equal(parse_u64((s), &v_), 0); assert_int_equal(v_, (want)); } while (0)
#define U64_BAD(s, e) do { uint64_t v_ = SENTINEL; errno = 0; \
	assert_int_equal(parse_u64((s), &v_), -1); assert_int_equal(errno, (e)); \
	assert_int_equal(v_, SENTINEL); } while (0)

#define DUR_OK(s, bare, want) do { uint64_t v_ = SENTINEL; \
	assert_int_equal(parse_duration_ns((s), (bare), &v_), 0); assert_int_equal(v_, (want)); } while (0)
#define DUR_BAD(s, bare, e) do { uint64_t v_ = SENTINEL; errno = 0; \
	assert_int_equal(parse_duration_ns((s), (bare), &v_), -1); assert_int_equal(errno, (e)); \
	assert_int_equal(v_, SENTINEL); } while (0)

#define SIZE_OK(s, want) do { uint64_t v_ = SENTINEL; \
	assert_int_equal(parse_size((s), &v_), 0); assert_int_equal(v_, (want)); } while (0)
#define SIZE_BAD(s, e) do { uint64_t v_ = SENTINEL; errno = 0; \
	assert_int_equal(parse_size((s), &v_), -1); assert_int_equal(errno, (e)); \
	assert_int_equal(v_, SENTINEL); } while (0)

#define MODE_OK(s, want) do { uint32_t v_ = 0x5a5a; \
	assert_int_equal(parse_mode((s), &v_), 0); assert_int_equal(v_, (want)); } while (0)
#define MODE_BAD(s, e) do { uint32_t v_ = 0x5a5a; errno = 0; \
	assert_int_equal(parse_mode((s), &v_), -1); assert_int_equal(errno, (e)); \
	assert_int_equal(v_, 0x5a5a); } while (0)

#define PROB_OK(s, want) do { double v_ = -1; \
	assert_int_equal(parse_probability((s), &v_), 0); assert_true(v_ == (want)); } while (0)
#define PROB_BAD(s, e) do { double v_ = -1; errno = 0; \
	assert_int_equal(parse_probability((s), &v_), -1); assert_int_equal(errno, (e)); \
	assert_true(v_ == -1); } while (0)

static void test_u64(void **state)
{
	U64_OK("0", 0);
	U64_OK("42", 42);
	U64_OK("007", 7);
	U64_OK("18446744073709551615", UINT64_MAX);
	U64_BAD("18446744073709551616", ERANGE);
	U64_BAD("99999999999999999999999", ERANGE);
	U64_BAD("12abc", EINVAL);
	U64_BAD("", EINVAL);
	U64_BAD(" 12", EINVAL);
	U64_BAD("12 ", EINVAL);
	U64_BAD("-1", EINVAL);
	U64_BAD("+1", EINVAL);
	U64_BAD("1.0", EINVAL);
	U64_BAD("0x10", EINVAL);
	U64_BAD(NULL, EINVAL);
}

static void test_mode(void **state)
{
	MODE_OK("0111", 0111);
	MODE_OK("111", 0111);
	MODE_OK("0", 0);
	MODE_OK("7777", 07777);
	MODE_OK("07777", 07777);
	MODE_BAD("10000", ERANGE);
	MODE_BAD("000000", EINVAL);
	MODE_BAD("8", EINVAL);
	MODE_BAD("0o111", EINVAL);
	MODE_BAD("", EINVAL);
	MODE_BAD(" 111", EINVAL);
	MODE_BAD("-1", EINVAL);
	MODE_BAD(NULL, EINVAL);
}

static void test_duration_units(void **state)
{
	DUR_OK("5ns", 0, 5ULL);
	DUR_OK("10us", 0, 10000ULL);
	DUR_OK("250ms", 0, 250000000ULL);
	DUR_OK("2s", 0, 2000000000ULL);
	DUR_OK("2m", 0, 120000000000ULL);
	DUR_OK("1min", 0, 60000000000ULL);
	DUR_OK("1h", 0, 3600000000000ULL);
	DUR_OK("1d", 0, 86400000000000ULL);
	DUR_OK("0s", 0, 0ULL);
	DUR_BAD("1S", 0, EINVAL);
	DUR_BAD("1sec", 0, EINVAL);
	DUR_BAD("1ms5", 0, EINVAL);
}

static void test_duration_fractions(void **state)
{
	DUR_OK("1.5s", 0, 1500000000ULL);
	DUR_OK("0.5ms", 0, 500000ULL);
	DUR_OK("0.000000001s", 0, 1ULL);
	DUR_OK("2.25h", 0, 8100000000000ULL);
	/* Below a nanosecond is dropped, not rounded up. */
	DUR_OK("1.0000000009s", 0, 1000000000ULL);
	DUR_OK("1.9ns", 0, 1ULL);
	DUR_BAD("1.s", 0, EINVAL);
	DUR_BAD(".5s", 0, EINVAL);
	DUR_BAD("1..5s", 0, EINVAL);
	DUR_BAD("1,5s", 0, EINVAL);
}

static void test_duration_bare_numbers(void **state)
{
	DUR_BAD("250", 0, EINVAL);
	DUR_OK("250", 1000000ULL, 250000000ULL);
	DUR_OK("3", 1000000000ULL, 3000000000ULL);
	DUR_OK("1.5", 1000000000ULL, 1500000000ULL);
}

static void test_duration_bad_syntax(void **state)
{
	DUR_BAD("", 0, EINVAL);
	DUR_BAD("", 1000000000ULL, EINVAL);
	DUR_BAD("12abc", 0, EINVAL);
	DUR_BAD("-1s", 0, EINVAL);
	DUR_BAD("+1s", 0, EINVAL);
	DUR_BAD(" 1s", 0, EINVAL);
	DUR_BAD("1s ", 0, EINVAL);
	DUR_BAD("1 s", 0, EINVAL);
	DUR_BAD("ms", 0, EINVAL);
	DUR_BAD("s", 0, EINVAL);
	DUR_BAD("1e3ms", 0, EINVAL);
	DUR_BAD(NULL, 0, EINVAL);
}

static void test_duration_overflow(void **state)
{
	DUR_BAD("18446744073709551616ns", 0, ERANGE);
	DUR_OK("18446744073709551615ns", 0, UINT64_MAX);
	DUR_OK("18446744073.709551615s", 0, UINT64_MAX);
	DUR_BAD("18446744073.709551616s", 0, ERANGE);
	DUR_OK("18446744073.709s", 0, 18446744073709000000ULL);
	DUR_BAD("18446744074s", 0, ERANGE);
	DUR_OK("213503d", 0, 213503ULL * 86400000000000ULL);
	DUR_BAD("213504d", 0, ERANGE);
	DUR_BAD("99999999999999999999h", 0, ERANGE);
	DUR_BAD("18446744073709551616", 1ULL, ERANGE);
}

static void test_size(void **state)
{
	SIZE_OK("0", 0);
	SIZE_OK("10", 10);
	SIZE_OK("1B", 1);
	SIZE_OK("4K", 4096);
	SIZE_OK("4k", 4096);
	SIZE_OK("4KiB", 4096);
	SIZE_OK("4KB", 4000);
	SIZE_OK("4kB", 4000);
	SIZE_OK("1M", 1ULL << 20);
	SIZE_OK("1MB", 1000000ULL);
	SIZE_OK("2G", 2ULL << 30);
	SIZE_OK("1GiB", 1ULL << 30);
	SIZE_OK("1T", 1ULL << 40);
	SIZE_OK("1TB", 1000000000000ULL);
	SIZE_OK("1.5K", 1536);
	SIZE_OK("0.5M", 1ULL << 19);
	SIZE_OK("16777215T", 16777215ULL << 40);
	SIZE_BAD("16777216T", ERANGE);
	SIZE_BAD("17179869184G", ERANGE);
	SIZE_BAD("18446744073709551616", ERANGE);
	SIZE_BAD("12abc", EINVAL);
	SIZE_BAD("", EINVAL);
	SIZE_BAD("-1", EINVAL);
	SIZE_BAD("-1K", EINVAL);
	SIZE_BAD(" 1K", EINVAL);
	SIZE_BAD("1 K", EINVAL);
	SIZE_BAD("1K ", EINVAL);
	SIZE_BAD("1E", EINVAL);
	SIZE_BAD("1mb", EINVAL);
	SIZE_BAD("K", EINVAL);
	SIZE_BAD(NULL, EINVAL);
}

static void test_probability(void **state)
{
	PROB_OK("0", 0.0);
	PROB_OK("1", 1.0);
	PROB_OK("1.0", 1.0);
	PROB_OK("1.000", 1.0);
	PROB_OK("0.25", 0.25);
	PROB_OK("0.5", 0.5);
	PROB_OK("00.5", 0.5);
	PROB_BAD("1.5", ERANGE);
	PROB_BAD("1.0001", ERANGE);
	PROB_BAD("2", ERANGE);
	PROB_BAD("-0.1", EINVAL);
	PROB_BAD(".5", EINVAL);
	PROB_BAD("0.5x", EINVAL);
	PROB_BAD("50%", EINVAL);
	PROB_BAD("1e-3", EINVAL);
	PROB_BAD("", EINVAL);
	PROB_BAD(" 0.5", EINVAL);
	PROB_BAD(NULL, EINVAL);
}

static void test_errnames(void **state)
{
	assert_int_equal(errno_from_name("EBUSY"), EBUSY);
	assert_int_equal(errno_from_name("EACCES"), EACCES);
	assert_int_equal(errno_from_name("ENOSPC"), ENOSPC);
	assert_int_equal(errno_from_name("EROFS"), EROFS);
	assert_int_equal(errno_from_name("EWOULDBLOCK"), EAGAIN);
	assert_int_equal(errno_from_name("16"), 16);
	assert_int_equal(errno_from_name("1"), 1);
	assert_int_equal(errno_from_name("4095"), 4095);
	assert_int_equal(errno_from_name("4096"), -1);
	assert_int_equal(errno_from_name("0"), -1);
	assert_int_equal(errno_from_name("-5"), -1);
	assert_int_equal(errno_from_name("ebusy"), -1);
	assert_int_equal(errno_from_name("EBUSY "), -1);
	assert_int_equal(errno_from_name("16x"), -1);
	assert_int_equal(errno_from_name(""), -1);
	assert_int_equal(errno_from_name(NULL), -1);

	assert_string_equal(errno_name(EBUSY), "EBUSY");
	assert_string_equal(errno_name(EACCES), "EACCES");
	/* Aliases share a number; the primary name comes back. */
	assert_string_equal(errno_name(EWOULDBLOCK), "EAGAIN");
	assert_string_equal(errno_name(EDEADLOCK), "EDEADLK");
	assert_null(errno_name(0));
	assert_null(errno_name(4000));
	assert_null(errno_name(-1));
	/* Every name maps to a number whose name maps back to that number. */
	for (int e = 1; e < 200; e++) {
		const char *n = errno_name(e);

		if (n != NULL)
			assert_int_equal(errno_from_name(n), e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_mode),
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_fractions),
		cmocka_unit_test(test_duration_bare_numbers),
		cmocka_unit_test(test_duration_bad_syntax),
		cmocka_unit_test(test_duration_overflow),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_probability),
		cmocka_unit_test(test_errnames),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
