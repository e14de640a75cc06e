#include "cli.h"

#include <stdarg.h>
#include <stdio.h>

void errline(const char *fmt, ...)
{
	va_list ap;

	fputs("runner: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int print_json(json_t *j)
{
	int ret;

	if (j == NULL) {
		errline("out of memory");
		return EXIT_FAILED;
	}
	ret = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
	return ret == 0 ? EXIT_OK : EXIT_FAILED;
}
