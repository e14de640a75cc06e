/* Report writers.  Each takes the array of scenario results run_all()
 * returned (JSON objects: name, file, folder, status, duration, steps,
 * failures, faults...) and writes one format.  Each returns 0 or -errno. */
#ifndef FIELDRIG_REPORT_H
#define FIELDRIG_REPORT_H

#include <jansson.h>
#include <stdio.h>

/* Counts over RESULTS. */
struct report_counts {
	size_t passed, failed, skipped;
	double time;
};
void report_count(json_t *results, struct report_counts *c);

/* XML (and HTML) text: & < > " ' as entities; characters XML 1.0 does not
 * allow (most controls, U+FFFE/U+FFFF) as '?'. */
void xml_escape(FILE *f, const char *s);

/* A TAP test description: '#' (which starts a directive) and '\' are
 * escaped, line breaks become spaces. */
void tap_escape(FILE *f, const char *s);

int report_junit(json_t *results, const char *path);
int report_tap(json_t *results, FILE *out);
int report_json(json_t *results, const char *path);
/* Writes DIR/index.html (DIR is made if missing). */
int report_html(json_t *results, const char *dir);

#endif
