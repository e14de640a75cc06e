/* A static HTML report that opens offline: one file, inline CSS, no
 * scripts, no external resources.  Every scenario is a <details> element
 * (failed ones open), so hundreds of them stay a list of one-line
 * summaries; inside, its failures, steps with timings, output, run logs and
 * the faults its mounts injected. */
#include "report.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static void pre_block(FILE *f, const char *title, const char *text)
{
	if (!text || !*text)
		return;
	fprintf(f, "<details class=\"out\"><summary>%s (%zu bytes)</summary><pre>", title, strlen(text));
	xml_escape(f, text);
	fputs("</pre></details>\n", f);
}

static void scenario_html(FILE *f, json_t *r, size_t idx)
{
	const char *st = str(r, "status");
	json_t *s, *fl, *faults = json_object_get(r, "faults"), *tr;
	const char *mname;
	size_t i;

	fprintf(f, "<details class=\"sc %s\" id=\"s%zu\"%s><summary><span class=\"badge %s\">%s</span> ", st, idx,
		strcmp(st, "failed") == 0 ? " open" : "", st, st);
	xml_escape(f, str(r, "folder"));
	fputs(" / <b>", f);
	xml_escape(f, str(r, "name"));
	fprintf(f, "</b> <span class=\"t\">%.2f s</span></summary>\n<div class=\"body\">\n",
		json_number_value(json_object_get(r, "duration")));
	fputs("<p class=\"meta\">", f);
	xml_escape(f, str(r, "file"));
	if (*str(r, "reproduces")) {
		fputs(" &middot; reproduces: <code>", f);
		xml_escape(f, str(r, "reproduces"));
		fputs("</code>", f);
	}
	if (json_array_size(json_object_get(r, "tags"))) {
		fputs(" &middot; tags:", f);
		json_array_foreach(json_object_get(r, "tags"), i, s) {
			fputs(" <code>", f);
			xml_escape(f, json_string_value(s));
			fputs("</code>", f);
		}
	}
	fputs("</p>\n", f);
	if (*str(r, "description")) {
		fputs("<p>", f);
		xml_escape(f, str(r, "description"));
		fputs("</p>\n", f);
	}
	if (*str(r, "reason")) {
		fputs("<p>skipped: ", f);
		xml_escape(f, str(r, "reason"));
		fputs("</p>\n", f);
	}
	if (json_array_size(json_object_get(r, "failures"))) {
		fputs("<table class=\"fail\"><tr><th>at</th><th>expectation</th><th>expected</th><th>actual</th></tr>\n", f);
		json_array_foreach(json_object_get(r, "failures"), i, fl) {
			fputs("<tr><td>", f);
			xml_escape(f, str(fl, "file"));
			fprintf(f, ":%lld</td><td>", (long long)json_integer_value(json_object_get(fl, "line")));
			xml_escape(f, str(fl, "expectation"));
			fputs("</td><td>", f);
			xml_escape(f, str(fl, "expected"));
			fputs("</td><td><code>", f);
			xml_escape(f, str(fl, "actual"));
			fputs("</code></td></tr>\n", f);
		}
		fputs("</table>\n", f);
	}
	if (json_array_size(json_object_get(r, "steps"))) {
		fputs("<table class=\"steps\"><tr><th>#</th><th>step</th><th>line</th><th>time</th><th>exit</th><th>run</th><th></th></tr>\n", f);
		json_array_foreach(json_object_get(r, "steps"), i, s) {
			json_t *run = json_object_get(s, "run");

			fprintf(f, "<tr class=\"%s\"><td>%lld</td><td>", json_is_true(json_object_get(s, "ok")) ? "ok" : "bad",
				(long long)json_integer_value(json_object_get(s, "index")));
			xml_escape(f, str(s, "kind"));
			if (strcmp(str(s, "kind"), str(s, "label")) != 0) {
				fputs(" (", f);
				xml_escape(f, str(s, "label"));
				fputs(")", f);
			}
			fprintf(f, "</td><td>%lld</td><td>%.3f s</td><td>", (long long)json_integer_value(json_object_get(s, "line")),
				json_number_value(json_object_get(s, "duration")));
			if (json_object_get(s, "exit_code"))
				fprintf(f, "%lld", (long long)json_integer_value(json_object_get(s, "exit_code")));
			fputs("</td><td>", f);
			if (run) {
				xml_escape(f, str(run, "status"));
				if (*str(run, "error")) {
					fputs(": ", f);
					xml_escape(f, str(run, "error"));
				}
			}
			fputs("</td><td>", f);
			pre_block(f, "stdout", str(s, "stdout"));
			pre_block(f, "stderr", str(s, "stderr"));
			pre_block(f, "run logs", str(s, "logs"));
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n", f);
	}
	json_object_foreach(faults, mname, tr) {
		json_t *ev;

		if (!json_array_size(tr))
			continue;
		fprintf(f, "<details class=\"faults\"><summary>faults injected on mount <code>");
		xml_escape(f, mname);
		fprintf(f, "</code>: %zu</summary><table><tr><th>time</th><th>op</th><th>path</th><th>comm</th><th>result</th></tr>\n",
			json_array_size(tr));
		json_array_foreach(tr, i, ev) {
			fputs("<tr><td>", f);
			xml_escape(f, str(ev, "time"));
			fputs("</td><td>", f);
			xml_escape(f, str(ev, "op"));
			fputs("</td><td>", f);
			xml_escape(f, str(ev, "path"));
			fputs("</td><td>", f);
			xml_escape(f, str(ev, "comm"));
			fputs("</td><td>", f);
			xml_escape(f, str(ev, "result"));
			fputs("</td></tr>\n", f);
		}
		fputs("</table></details>\n", f);
	}
	pre_block(f, "repro.sh", str(r, "repro"));
	fputs("</div></details>\n", f);
}

int report_html(json_t *results, const char *dir)
{
	struct report_counts c;
	char path[4096];
	FILE *f;
	json_t *r;
	size_t i;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/index.html", dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	report_count(results, &c);
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<title>fieldrig scenarios</title>\n<style>\n"
	      "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\n"
	      "h1{font-size:1.4em} .summary span{margin-right:1.2em;font-weight:bold}\n"
	      ".passed{color:#176f2c} .failed{color:#b3261e} .skipped{color:#8a6d00}\n"
	      "details.sc{border:1px solid #ddd;border-radius:4px;margin:3px 0;padding:2px 8px}\n"
	      "details.sc.failed{border-color:#b3261e}\n"
	      ".badge{display:inline-block;min-width:4.5em;font-size:.8em;font-weight:bold;text-transform:uppercase}\n"
	      ".t{color:#777;float:right} .meta{color:#555;font-size:.9em}\n"
	      "table{border-collapse:collapse;margin:.4em 0;width:100%} td,th{border:1px solid #e3e3e3;padding:2px 6px;text-align:left;vertical-align:top}\n"
	      "tr.bad td{background:#fdecea} table.fail td{background:#fdecea}\n"
	      "pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:4px;max-height:30em;overflow:auto}\n"
	      "code{background:#f3f3f3}\n</style></head><body>\n<h1>fieldrig scenarios</h1>\n", f);
	fprintf(f, "<p class=\"summary\" id=\"summary\"><span class=\"passed\">%zu passed</span><span class=\"failed\">%zu failed</span>"
		   "<span class=\"skipped\">%zu skipped</span><span>%.1f s of scenario time</span></p>\n",
		c.passed, c.failed, c.skipped, c.time);
	fputs("<p class=\"meta\">Failed scenarios are open and listed first. Coverage, when generated: "
	      "<a href=\"../coverage/html/index.html\">reports/coverage/html</a>.</p>\n", f);
	for (int pass = 0; pass < 2; pass++)
		json_array_foreach(results, i, r) {
			bool failed = strcmp(str(r, "status"), "failed") == 0;

			if (failed == (pass == 0))
				scenario_html(f, r, i);
		}
	fputs("</body></html>\n", f);
	if (fclose(f) != 0)
		return -errno;
	return 0;
}
