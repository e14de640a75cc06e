/* Fuzz target: the size and duration values of runner settings
 * (MAX_SCRIPT_SIZE, MAX_EXECUTION_TIME, MAX_CONCURRENT_SCRIPTS), through the
 * strict parsers in common/strparse.c that the runner uses.
 *
 * Beyond "no crash": an accepted value leaves errno alone and writes the
 * result; a refused one sets EINVAL or ERANGE and leaves the output
 * untouched; a bare number is accepted by the duration parser with a bare
 * unit exactly when parse_u64 accepts it, with the unit applied.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL

static void refused_ok(int ret, uint64_t v)
{
	if (ret < 0 && ((errno != EINVAL && errno != ERANGE) || v != SENTINEL))
		abort();
	if (ret != 0 && ret != -1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t sz = SENTINEL, d_s = SENTINEL, d_0 = SENTINEL, n = SENTINEL;
	int r_sz, r_ds, r_d0, r_n;
	char *s;

	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	errno = 0;
	r_sz = parse_size(s, &sz);
	refused_ok(r_sz, sz);
	r_ds = parse_duration_ns(s, 1000000000ULL, &d_s);
	refused_ok(r_ds, d_s);
	r_d0 = parse_duration_ns(s, 0, &d_0);
	refused_ok(r_d0, d_0);
	r_n = parse_u64(s, &n);
	refused_ok(r_n, n);

	/* With no bare unit, an accepted duration has a unit, so it is the
	 * same value as with one. */
	if (r_d0 == 0 && (r_ds != 0 || d_s != d_0))
		abort();
	/* A plain number: bytes for sizes, seconds for durations. */
	if (r_n == 0) {
		if (r_sz != 0 || sz != n)
			abort();
		if (n <= UINT64_MAX / 1000000000ULL && (r_ds != 0 || d_s != n * 1000000000ULL))
			abort();
		if (r_d0 == 0)
			abort();
	}
	free(s);
	return 0;
}
