#include "strparse.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

static int fail(int err)
{
	errno = err;
	return -1;
}

/* Reads the leading decimal digits of s into *v; returns the count of digits
 * read, or -1 with errno set on overflow. */
static int read_digits(const char *s, uint64_t *v)
{
	int n = 0;

	*v = 0;
	while (s[n] >= '0' && s[n] <= '9') {
		unsigned d = (unsigned)(s[n] - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return fail(ERANGE);
		*v = *v * 10 + d;
		n++;
	}
	return n;
}

int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v;
	int n;

	if (s == NULL)
		return fail(EINVAL);
	n = read_digits(s, &v);
	if (n < 0)
		return -1;
	if (n == 0 || s[n] != '\0')
		return fail(EINVAL);
	*out = v;
	return 0;
}

int parse_mode(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return fail(EINVAL);
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '7' || i >= 5)
			return fail(EINVAL);
		v = v * 8 + (uint32_t)(s[i] - '0');
	}
	if (v > 07777)
		return fail(ERANGE);
	*out = v;
	return 0;
}

/* Parses "<digits>[.<digits>]" at s; stores the value scaled by `scale` units
 * once the caller knows the unit.  Returns characters consumed or -1. */
static int read_decimal(const char *s, uint64_t *whole, uint64_t *frac, uint64_t *frac_div)
{
	int n = read_digits(s, whole);
	uint64_t f = 0, div = 1;

	if (n <= 0)
		return n < 0 ? -1 : fail(EINVAL);
	if (s[n] == '.') {
		int m = 1;

		while (s[n + m] >= '0' && s[n + m] <= '9') {
			if (div < 1000000000000ULL) {
				f = f * 10 + (uint64_t)(s[n + m] - '0');
				div *= 10;
			}
			m++;
		}
		if (m == 1)
			return fail(EINVAL);
		n += m;
	}
	*frac = f;
	*frac_div = div;
	return n;
}

/* whole.frac (frac/div) times unit, exactly, in 128-bit integers: long
 * double would do on x86 but not under valgrind or on ABIs where it is a
 * plain double, and a parser must not change its answer with the machine. */
static int scale(uint64_t whole, uint64_t frac, uint64_t div, uint64_t unit, uint64_t *out)
{
	unsigned __int128 v = (unsigned __int128)whole * unit;

	v += (unsigned __int128)frac * unit / div;
	if (v > UINT64_MAX)
		return fail(ERANGE);
	*out = (uint64_t)v;
	return 0;
}

struct unit { const char *suffix; uint64_t mult; };

static int parse_with_units(const char *s, const struct unit *units, uint64_t bare, uint64_t *out)
{
	uint64_t whole, frac, div;
	int n;

	if (s == NULL)
		return fail(EINVAL);
	n = read_decimal(s, &whole, &frac, &div);
	if (n < 0)
		return -1;
	if (s[n] == '\0') {
		if (bare == 0)
			return fail(EINVAL);
		return scale(whole, frac, div, bare, out);
	}
	for (size_t i = 0; units[i].suffix != NULL; i++)
		if (strcmp(s + n, units[i].suffix) == 0)
			return scale(whole, frac, div, units[i].mult, out);
	return fail(EINVAL);
}

int parse_duration_ns(const char *s, uint64_t bare_unit_ns, uint64_t *out)
{
	static const struct unit units[] = {
		{ "ns", 1ULL }, { "us", 1000ULL }, { "ms", 1000000ULL },
		{ "s", 1000000000ULL }, { "m", 60000000000ULL },
		{ "min", 60000000000ULL }, { "h", 3600000000000ULL },
		{ "d", 86400000000000ULL }, { NULL, 0 },
	};
	return parse_with_units(s, units, bare_unit_ns, out);
}

int parse_size(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
		{ "B", 1ULL },
		{ "K", 1ULL << 10 }, { "KiB", 1ULL << 10 }, { "k", 1ULL << 10 }, { "KB", 1000ULL }, { "kB", 1000ULL },
		{ "M", 1ULL << 20 }, { "MiB", 1ULL << 20 }, { "MB", 1000000ULL },
		{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "GB", 1000000000ULL },
		{ "T", 1ULL << 40 }, { "TiB", 1ULL << 40 }, { "TB", 1000000000000ULL },
		{ NULL, 0 },
	};
	return parse_with_units(s, units, 1, out);
}

int parse_probability(const char *s, double *out)
{
	uint64_t whole, frac, div;
	int n;

	if (s == NULL)
		return fail(EINVAL);
	n = read_decimal(s, &whole, &frac, &div);
	if (n < 0)
		return -1;
	if (s[n] != '\0')
		return fail(EINVAL);
	if (whole > 1 || (whole == 1 && frac != 0))
		return fail(ERANGE);
	*out = (double)whole + (double)frac / (double)div;
	return 0;
}
