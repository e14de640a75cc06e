/* A static HTML report that opens offline: one file, inline CSS and
 * script, no external resources.  Every scenario is a <details> element
 * (failed ones open), so hundreds of them stay a list of one-line
 * summaries; inside, its failures, steps with timings, output, run logs and
 * the faults its mounts injected.  The page reads without scripts; the
 * script adds a filter, opens the scenario the URL's #fragment names, and
 * reports its own errors into the page (see html_head_script). */
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

/* The genhtml report (reports/coverage/html/, written by ci/coverage) as
 * seen from the report's directory, and which of its per-part directory
 * pages exist.  Links are relative so both open offline side by side. */
struct coverage {
	const char *href;	/* NULL: no coverage report found */
	bool part[4];
};
static const char *const coverage_parts[4] = { "runner", "faultfs", "harness", "common" };

static void coverage_find(const char *dir, struct coverage *cov)
{
	static const char *const rel[] = { "coverage/html", "../coverage/html" };
	char path[4096];

	memset(cov, 0, sizeof(*cov));
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]) && !cov->href; i++) {
		snprintf(path, sizeof(path), "%s/%s/index.html", dir, rel[i]);
		if (access(path, R_OK) == 0)
			cov->href = rel[i];
	}
	for (size_t p = 0; cov->href && p < 4; p++) {
		snprintf(path, sizeof(path), "%s/%s/%s/index.html", dir, cov->href, coverage_parts[p]);
		cov->part[p] = access(path, R_OK) == 0;
	}
}

/* Whether a sh step's command (as written) calls the runner. */
static bool sh_calls_runner(const char *cmd)
{
	return strstr(cmd, "$RUNNER") || strstr(cmd, "${RUNNER}") || strstr(cmd, "{{world.runner}}");
}

/* The parts a scenario exercised, from what it ran: fieldrig (harness/,
 * with common/) always, faultfs/ when its world had a mount, runner/ when a
 * step ran a runner command or signalled a supervisor, or a sh step's
 * command names the runner ($RUNNER, {{world.runner}}). */
static void coverage_links(FILE *f, json_t *r, const struct coverage *cov)
{
	bool used[4] = { false, json_object_size(json_object_get(r, "faults")) > 0, true, true };
	json_t *s;
	size_t i;

	if (!cov->href)
		return;
	json_array_foreach(json_object_get(r, "steps"), i, s) {
		const char *k = str(s, "kind");

		if ((strcmp(k, "sh") != 0 && strcmp(k, "sleep") != 0 && strcmp(k, "fault") != 0) ||
		    (strcmp(k, "sh") == 0 && sh_calls_runner(str(s, "command"))))
			used[0] = true;
	}
	fputs(" &middot; coverage:", f);
	for (size_t p = 0; p < 4; p++)
		if (used[p] && cov->part[p])
			fprintf(f, " <a class=\"cov\" href=\"%s/%s/index.html\">%s/</a>", cov->href, coverage_parts[p],
				coverage_parts[p]);
}

static void scenario_html(FILE *f, json_t *r, size_t idx, const struct coverage *cov)
{
	const char *st = str(r, "status");
	json_t *s, *fl, *faults = json_object_get(r, "faults"), *tr;
	const char *mname;
	size_t i;

	fprintf(f, "<details class=\"sc %s\" id=\"s%zu\" data-name=\"", st, idx);
	xml_escape(f, str(r, "folder"));
	fputc('/', f);
	xml_escape(f, str(r, "name"));
	fprintf(f, "\"%s><summary><span class=\"badge %s\">%s</span> ", strcmp(st, "failed") == 0 ? " open" : "", st, st);
	xml_escape(f, str(r, "folder"));
	fputs(" / <b>", f);
	xml_escape(f, str(r, "name"));
	fprintf(f, "</b> <span class=\"t\">%.2f s</span></summary>\n<div class=\"body\">\n",
		json_number_value(json_object_get(r, "duration")));
	fputs("<p class=\"meta\">", f);
	xml_escape(f, str(r, "file"));
	fprintf(f, " &middot; <a href=\"#s%zu\">link</a>", idx);
	coverage_links(f, r, cov);
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
			if (*str(s, "command")) {
				fputs(" <code>", f);
				xml_escape(f, str(s, "command"));
				fputs("</code>", f);
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

/* First in <head>, before any other script: collects every uncaught error
 * and unhandled rejection, and shows them in the page (#script-errors, with
 * data-count), so a reader and a headless test both see them. */
static const char html_head_script[] =
	"<script>\n"
	"(function(){var errs=[];window.fieldrigErrors=errs;\n"
	"function show(){var b=document.body;if(!b)return;var p=document.getElementById('script-errors');\n"
	" if(!p){p=document.createElement('pre');p.id='script-errors';b.insertBefore(p,b.firstChild);}\n"
	" p.setAttribute('data-count',String(errs.length));p.hidden=errs.length===0;\n"
	" p.textContent=errs.length?'script errors in this page:\\n'+errs.join('\\n'):'';}\n"
	"function add(m){errs.push(m);show();}\n"
	"window.addEventListener('error',function(e){add('error: '+(e.message||e.type)+' at '+(e.filename||'?')+':'+(e.lineno||0));},true);\n"
	"window.addEventListener('unhandledrejection',function(e){add('unhandled rejection: '+e.reason);});\n"
	"document.addEventListener('DOMContentLoaded',show);})();\n"
	"</script>\n";

/* Last in <body>: the filter, and opening what the #fragment names (an id
 * such as s3, or a scenario's folder/name; a malformed escape such as #%
 * is taken as written).  When it has run through,
 * <body data-ready="1">; the opened scenario gets data-shown="1" only when
 * its summary and failure table are actually laid out with a size. */
static const char html_body_script[] =
	"<script>\n"
	"(function(){\n"
	"var all=Array.prototype.slice.call(document.querySelectorAll('details.sc'));\n"
	"function target(){var h=location.hash.slice(1);try{h=decodeURIComponent(h);}catch(x){}if(!h)return null;\n"
	" var e=document.getElementById(h);if(e&&e.matches('details.sc'))return e;\n"
	" for(var i=0;i<all.length;i++)if(all[i].getAttribute('data-name')===h)return all[i];return null;}\n"
	"function laidOut(e){return !!e&&e.getClientRects().length>0&&e.offsetHeight>0;}\n"
	"function openTarget(){var e=target();if(!e)return;e.open=true;e.hidden=false;e.classList.add('target');\n"
	" e.scrollIntoView();var t=e.querySelector('table.fail');\n"
	" e.setAttribute('data-shown',laidOut(e.querySelector('summary'))&&(!t||laidOut(t))?'1':'0');}\n"
	"var q=document.getElementById('filter'),only=document.getElementById('failed-only'),n=document.getElementById('shown');\n"
	"function filter(){var s=q.value.toLowerCase(),k=0;all.forEach(function(e){\n"
	" var hit=(!only.checked||e.classList.contains('failed'))&&(!s||e.textContent.toLowerCase().indexOf(s)>=0||e.getAttribute('data-name').toLowerCase().indexOf(s)>=0);\n"
	" e.hidden=!hit;if(hit)k++;});n.textContent=k+' of '+all.length+' shown';}\n"
	"q.addEventListener('input',filter);only.addEventListener('change',filter);\n"
	"document.getElementById('expand').addEventListener('click',function(){all.forEach(function(e){if(!e.hidden)e.open=true;});});\n"
	"document.getElementById('collapse').addEventListener('click',function(){all.forEach(function(e){e.open=false;});});\n"
	"window.addEventListener('hashchange',openTarget);\n"
	"filter();openTarget();document.body.setAttribute('data-ready','1');\n"
	"})();\n"
	"</script>\n";

int report_html(json_t *results, const char *dir)
{
	struct coverage cov;
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
	coverage_find(dir, &cov);
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n", f);
	fputs(html_head_script, f);
	fputs("<title>fieldrig scenarios</title>\n<style>\n"
	      "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\n"
	      "h1{font-size:1.4em} .summary span{margin-right:1.2em;font-weight:bold}\n"
	      ".passed{color:#176f2c} .failed{color:#b3261e} .skipped{color:#8a6d00}\n"
	      "details.sc{border:1px solid #ddd;border-radius:4px;margin:3px 0;padding:2px 8px}\n"
	      "details.sc.failed{border-color:#b3261e} details.sc .body{color:#222}\n"
	      ".badge{display:inline-block;min-width:4.5em;font-size:.8em;font-weight:bold;text-transform:uppercase}\n"
	      ".t{color:#777;float:right} .meta{color:#555;font-size:.9em}\n"
	      "table{border-collapse:collapse;margin:.4em 0;width:100%} td,th{border:1px solid #e3e3e3;padding:2px 6px;text-align:left;vertical-align:top}\n"
	      "tr.bad td{background:#fdecea} table.fail td{background:#fdecea}\n"
	      "pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:4px;max-height:30em;overflow:auto}\n"
	      "code{background:#f3f3f3}\n"
	      "#script-errors{background:#b3261e;color:#fff;padding:6px}\n"
	      ".tools{position:sticky;top:0;background:#fff;padding:4px 0;border-bottom:1px solid #ddd;z-index:1}\n"
	      ".tools input[type=search]{width:20em} .tools button,.tools label{margin-left:.8em}\n"
	      "details.sc.target{outline:2px solid #1a5fb4}\n"
	      "</style></head><body>\n<h1>fieldrig scenarios</h1>\n", f);
	fprintf(f, "<p class=\"summary\" id=\"summary\"><span class=\"passed\">%zu passed</span><span class=\"failed\">%zu failed</span>"
		   "<span class=\"skipped\">%zu skipped</span><span>%.1f s of scenario time</span></p>\n",
		c.passed, c.failed, c.skipped, c.time);
	fputs("<p class=\"meta\">Failed scenarios are open and listed first. ", f);
	if (cov.href)
		fprintf(f, "Coverage: <a id=\"coverage\" href=\"%s/index.html\">%s/index.html</a> (per scenario: the parts it ran).</p>\n",
			cov.href, cov.href);
	else
		fputs("No coverage report beside this one (<code>ci/coverage</code> writes <code>reports/coverage/html/</code>; "
		      "generate it before this report to get links).</p>\n", f);
	fputs("<div class=\"tools\"><input type=\"search\" id=\"filter\" placeholder=\"filter: name, folder, text\">"
	      "<label><input type=\"checkbox\" id=\"failed-only\"> failed only</label>"
	      "<button id=\"expand\">expand shown</button><button id=\"collapse\">collapse all</button>"
	      " <span class=\"meta\" id=\"shown\"></span></div>\n", f);
	for (int pass = 0; pass < 2; pass++)
		json_array_foreach(results, i, r) {
			bool failed = strcmp(str(r, "status"), "failed") == 0;

			if (failed == (pass == 0))
				scenario_html(f, r, i, &cov);
		}
	fputs(html_body_script, f);
	fputs("</body></html>\n", f);
	if (fclose(f) != 0)
		return -errno;
	return 0;
}
