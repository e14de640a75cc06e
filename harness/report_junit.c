/* JUnit XML, written by hand: a testsuite per folder, a testcase per
 * scenario (classname = folder, name, file, time), failure bodies with the
 * expectation, expected, actual and FILE:LINE, and the steps' output in
 * system-out.  (meson 1.0.1's own JUnit marks timed-out tests as passing,
 * so CI reads this one.) */
#include "report.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

void report_count(json_t *results, struct report_counts *c)
{
	size_t i;
	json_t *r;

	memset(c, 0, sizeof(*c));
	json_array_foreach(results, i, r) {
		const char *st = json_string_value(json_object_get(r, "status"));

		if (st && strcmp(st, "passed") == 0)
			c->passed++;
		else if (st && strcmp(st, "skipped") == 0)
			c->skipped++;
		else
			c->failed++;
		c->time += json_number_value(json_object_get(r, "duration"));
	}
}

void xml_escape(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	for (; *p; p++) {
		switch (*p) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		case '\t': case '\n': fputc(*p, f); break;
		case '\r': fputs("&#13;", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fputc('?', f);
			} else if (*p == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
				/* U+FFFE and U+FFFF are not XML characters. */
				fputc('?', f);
				p += 2;
			} else {
				fputc(*p, f);
			}
		}
	}
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static void failure_text(FILE *f, json_t *fl)
{
	fprintf(f, "%s:%lld: %s\n  expected: ", str(fl, "file"),
		(long long)json_integer_value(json_object_get(fl, "line")), str(fl, "expectation"));
	xml_escape(f, str(fl, "expected"));
	fputs("\n  actual:   ", f);
	xml_escape(f, str(fl, "actual"));
	fputc('\n', f);
}

static void steps_out(FILE *f, json_t *r)
{
	size_t i;
	json_t *s;

	json_array_foreach(json_object_get(r, "steps"), i, s) {
		fprintf(f, "== step %lld %s (%s) %.3f s%s", (long long)json_integer_value(json_object_get(s, "index")),
			str(s, "kind"), str(s, "label"), json_number_value(json_object_get(s, "duration")),
			json_is_true(json_object_get(s, "ok")) ? "" : " FAILED");
		if (json_object_get(s, "exit_code"))
			fprintf(f, ", exit %lld", (long long)json_integer_value(json_object_get(s, "exit_code")));
		fputc('\n', f);
		if (*str(s, "stdout")) {
			fputs("-- stdout\n", f);
			xml_escape(f, str(s, "stdout"));
			fputc('\n', f);
		}
		if (*str(s, "stderr")) {
			fputs("-- stderr\n", f);
			xml_escape(f, str(s, "stderr"));
			fputc('\n', f);
		}
		if (*str(s, "logs")) {
			fputs("-- run logs\n", f);
			xml_escape(f, str(s, "logs"));
			fputc('\n', f);
		}
	}
}

int report_junit(json_t *results, const char *path)
{
	struct report_counts all;
	FILE *f = fopen(path, "we");
	json_t *r, *folders = json_array();
	size_t i, j;

	if (!f)
		return -errno;
	report_count(results, &all);
	/* Folders in the order they first appear. */
	json_array_foreach(results, i, r) {
		json_t *x;
		bool seen = false;

		json_array_foreach(folders, j, x)
			if (strcmp(json_string_value(x), str(r, "folder")) == 0)
				seen = true;
		if (!seen)
			json_array_append_new(folders, json_string(str(r, "folder")));
	}
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(f, "<testsuites name=\"fieldrig\" tests=\"%zu\" failures=\"%zu\" skipped=\"%zu\" time=\"%.3f\">\n",
		json_array_size(results), all.failed, all.skipped, all.time);
	for (j = 0; j < json_array_size(folders); j++) {
		const char *folder = json_string_value(json_array_get(folders, j));
		json_t *sub = json_array();
		struct report_counts c;

		json_array_foreach(results, i, r)
			if (strcmp(str(r, "folder"), folder) == 0)
				json_array_append(sub, r);
		report_count(sub, &c);
		fputs("  <testsuite name=\"", f);
		xml_escape(f, folder);
		fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n",
			json_array_size(sub), c.failed, c.skipped, c.time);
		json_array_foreach(sub, i, r) {
			const char *st = str(r, "status");
			json_t *fl;
			size_t k;

			fputs("    <testcase classname=\"", f);
			xml_escape(f, folder);
			fputs("\" name=\"", f);
			xml_escape(f, str(r, "name"));
			fputs("\" file=\"", f);
			xml_escape(f, str(r, "file"));
			fprintf(f, "\" time=\"%.3f\">\n", json_number_value(json_object_get(r, "duration")));
			if (strcmp(st, "skipped") == 0) {
				fputs("      <skipped message=\"", f);
				xml_escape(f, str(r, "reason"));
				fputs("\"/>\n", f);
			} else if (strcmp(st, "passed") != 0) {
				json_t *f0 = json_array_get(json_object_get(r, "failures"), 0);

				fputs("      <failure message=\"", f);
				if (f0) {
					xml_escape(f, str(f0, "expectation"));
					fputs(": expected ", f);
					xml_escape(f, str(f0, "expected"));
				}
				fputs("\" type=\"", f);
				xml_escape(f, f0 ? str(f0, "expectation") : "failure");
				fputs("\">", f);
				json_array_foreach(json_object_get(r, "failures"), k, fl)
					failure_text(f, fl);
				fputs("</failure>\n", f);
			}
			fputs("      <system-out>", f);
			steps_out(f, r);
			fputs("</system-out>\n    </testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
		json_decref(sub);
	}
	fputs("</testsuites>\n", f);
	json_decref(folders);
	if (fclose(f) != 0)
		return -errno;
	return 0;
}
