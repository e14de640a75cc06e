/* Strict parsers for the numbers people write in rule files, scenario files,
 * dotenv files and flags.  Every function accepts the whole string or nothing:
 * "12abc", "", " 12", "-1" (for unsigned values) and overflow are rejected.
 * Each returns 0 on success, or -1 with errno set (EINVAL for bad syntax,
 * ERANGE for overflow) and *out untouched. */
#ifndef FIELDRIG_STRPARSE_H
#define FIELDRIG_STRPARSE_H

#include <stdint.h>

/* Decimal unsigned integer, no sign, no spaces. */
int parse_u64(const char *s, uint64_t *out);

/* Octal number such as "0111" or "111" (at most 07777). */
int parse_mode(const char *s, uint32_t *out);

/* Duration with a unit: ns, us, ms, s, m, h, d ("250ms", "2s", "1h", "1.5s").
 * A bare number is seconds when bare_unit_ns is 1000000000, milliseconds when
 * it is 1000000, and is rejected when it is 0.  Result in nanoseconds. */
int parse_duration_ns(const char *s, uint64_t bare_unit_ns, uint64_t *out);

/* Size with a unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (K and KiB are
 * 1024, KB is 1000).  A bare number is bytes. */
int parse_size(const char *s, uint64_t *out);

/* Probability between 0 and 1 inclusive, as a decimal ("0.25", "1", "0"). */
int parse_probability(const char *s, double *out);

#endif
