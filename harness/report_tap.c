/* TAP version 13: a test point per scenario, skipped ones with # SKIP and
 * the reason, failures with a YAML block of expectation, expected, actual
 * and FILE:LINE. */
#include "report.h"

#include <stdbool.h>
#include <string.h>

void tap_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '#' || *s == '\\')
			fputc('\\', f);
		fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
	}
}

/* A YAML double-quoted scalar. */
static void yaml_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

int report_tap(json_t *results, FILE *out)
{
	size_t i, k;
	json_t *r, *fl;

	fprintf(out, "TAP version 13\n1..%zu\n", json_array_size(results));
	json_array_foreach(results, i, r) {
		const char *st = str(r, "status");
		bool ok = strcmp(st, "failed") != 0;

		fprintf(out, "%s %zu - ", ok ? "ok" : "not ok", i + 1);
		tap_escape(out, str(r, "folder"));
		fputc('/', out);
		tap_escape(out, str(r, "name"));
		if (strcmp(st, "skipped") == 0) {
			fputs(" # SKIP ", out);
			tap_escape(out, str(r, "reason"));
		}
		fputc('\n', out);
		if (ok)
			continue;
		fputs("  ---\n  failures:\n", out);
		json_array_foreach(json_object_get(r, "failures"), k, fl) {
			fputs("    - expectation: ", out);
			yaml_quoted(out, str(fl, "expectation"));
			fprintf(out, "\n      at: \"%s:%lld\"\n      expected: ", str(fl, "file"),
				(long long)json_integer_value(json_object_get(fl, "line")));
			yaml_quoted(out, str(fl, "expected"));
			fputs("\n      actual: ", out);
			yaml_quoted(out, str(fl, "actual"));
			fputc('\n', out);
		}
		fputs("  ...\n", out);
	}
	return ferror(out) ? -5 : 0;
}
