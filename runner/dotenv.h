/* A dotenv reader for the `.env` files the field reports deploy with.
 *
 * Accepted lines: blank lines, `# comments`, `KEY=VALUE`, `export KEY=VALUE`.
 * Values may be unquoted (trailing blanks and an inline ` # comment` are
 * dropped), 'single quoted' (taken literally) or "double quoted" (escapes
 * \n \t \r \\ \" \$ and \' are understood).  A quoted value ends on its line.
 * Anything else is an error that names the line. */
#ifndef RUNNER_DOTENV_H
#define RUNNER_DOTENV_H

#include <stddef.h>

/* Called once per assignment, in file order.  A non-zero return stops the
 * parse and is passed back to the caller. */
typedef int (*dotenv_cb)(void *ctx, const char *key, const char *value, unsigned line);

/* Parses len bytes of buf.  Returns 0, the callback's non-zero value, or
 * -EINVAL for a syntax error, with *err_line set to its line and msg (if
 * msglen > 0) filled with a one-line description without the line number. */
int dotenv_parse(const char *buf, size_t len, dotenv_cb cb, void *ctx,
		 unsigned *err_line, char *msg, size_t msglen);

/* Reads and parses the file at path.  On failure returns -errno (or the
 * callback's value) with err set to "PATH:LINE: message" or
 * "PATH: strerror". */
int dotenv_load(const char *path, dotenv_cb cb, void *ctx, char *err, size_t errlen);

#endif
