/* Path globs for faultfs rules.
 *
 * A pattern is a list of '/'-separated components matched against the
 * components of a mount-relative path.  Within one component:
 *   *       any run of characters, including none and including a leading
 *           dot: rules are about faults, not about hiding files, so "*"
 *           matches ".venv" as well as "venv";
 *   ?       any one character;
 *   [...]   one character from a set, with ranges ("[a-z]") and negation
 *           by a leading '!' or '^'; a ']' right after the '[' (or after
 *           the negation) is a literal; a '[' without its ']' is a literal;
 *   \c      the character c itself ("\*" is a star, "\[" a bracket).
 * A component that is exactly "**" matches zero or more whole components,
 * so "**" matches every path including the root, "**" followed by "/venv"
 * matches "venv" and "a/b/venv", and "tmp" followed by a "**" component
 * matches "tmp" itself and
 * everything below it, unlike gitignore, which needs a separate "tmp".
 * "**" inside a longer component ("a**b") is just two stars.
 *
 * Empty components are ignored on both sides, so leading, trailing and
 * doubled slashes do not matter: "/venv/", "venv" and "venv//" are the same
 * pattern, and the empty pattern (or "/") matches only the root "".
 */
#include "rules.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Advances *s past slashes and returns the length of the component there;
 * *s is left at the component's first character.  Returns 0 at the end. */
static size_t next_component(const char **s)
{
	const char *p = *s;
	size_t n = 0;

	while (*p == '/')
		p++;
	*s = p;
	while (p[n] != '\0' && p[n] != '/')
		n++;
	return n;
}

/* Matches one bracket expression starting at pat[0] == '['.  Returns the
 * length of the expression (so the caller can skip it) and sets *hit, or 0
 * when the bracket is not closed within the component and must be read as a
 * literal '['. */
static size_t match_class(const char *pat, size_t plen, unsigned char c, bool *hit)
{
	size_t i = 1;
	bool negate = false, found = false;

	if (i < plen && (pat[i] == '!' || pat[i] == '^')) {
		negate = true;
		i++;
	}
	/* A ']' first in the set is a member, not the end. */
	if (i < plen && pat[i] == ']') {
		found = c == ']';
		i++;
	}
	while (i < plen && pat[i] != ']') {
		unsigned char lo = (unsigned char)pat[i], hi;

		if (lo == '\\' && i + 1 < plen) {
			i++;
			lo = (unsigned char)pat[i];
		}
		hi = lo;
		if (i + 2 < plen && pat[i + 1] == '-' && pat[i + 2] != ']') {
			i += 2;
			hi = (unsigned char)pat[i];
			if (hi == '\\' && i + 1 < plen) {
				i++;
				hi = (unsigned char)pat[i];
			}
		}
		if (lo <= c && c <= hi)
			found = true;
		i++;
	}
	if (i >= plen)
		return 0;
	*hit = found != negate;
	return i + 1;
}

/* Matches one pattern component against one path component.  Iterative,
 * with a single backtracking point for the last '*': enough because a later
 * star can always absorb what an earlier one would have. */
static bool match_component(const char *pat, size_t plen, const char *str, size_t slen)
{
	size_t p = 0, s = 0;
	size_t star_p = (size_t)-1, star_s = 0;

	while (s < slen) {
		if (p < plen) {
			char pc = pat[p];

			if (pc == '*') {
				while (p < plen && pat[p] == '*')
					p++;
				star_p = p;
				star_s = s;
				continue;
			}
			if (pc == '?') {
				p++;
				s++;
				continue;
			}
			if (pc == '[') {
				bool hit = false;
				size_t n = match_class(pat + p, plen - p, (unsigned char)str[s], &hit);

				if (n > 0) {
					if (hit) {
						p += n;
						s++;
						continue;
					}
					goto backtrack;
				}
				/* Unclosed '[': fall through to a literal match. */
			}
			if (pc == '\\' && p + 1 < plen) {
				if (pat[p + 1] == str[s]) {
					p += 2;
					s++;
					continue;
				}
				goto backtrack;
			}
			if (pc == str[s]) {
				p++;
				s++;
				continue;
			}
		}
backtrack:
		if (star_p == (size_t)-1)
			return false;
		p = star_p;
		s = ++star_s;
	}
	while (p < plen && pat[p] == '*')
		p++;
	return p == plen;
}

bool ff_glob_match(const char *pattern, const char *path)
{
	const char *p = pattern, *s = path;
	/* Where to resume after the last "**": the pattern just after it, and
	 * the path component it will swallow next if the rest fails. */
	const char *star_p = NULL, *star_s = NULL;

	if (pattern == NULL || path == NULL)
		return false;
	for (;;) {
		size_t plen = next_component(&p);
		size_t slen;
		const char *scomp;

		if (plen == 2 && p[0] == '*' && p[1] == '*') {
			p += 2;
			star_p = p;
			next_component(&s);
			star_s = s;
			continue;
		}
		scomp = s;
		slen = next_component(&scomp);
		if (plen == 0 && slen == 0)
			return true;
		if (plen > 0 && slen > 0 && match_component(p, plen, scomp, slen)) {
			p += plen;
			s = scomp + slen;
			continue;
		}
		/* Mismatch: let the last "**" swallow one more component. */
		if (star_p == NULL)
			return false;
		slen = next_component(&star_s);
		if (slen == 0)
			return false;
		star_s += slen;
		p = star_p;
		s = star_s;
	}
}
