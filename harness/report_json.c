/* JSON report: the results as they are, with a summary, through jansson. */
#include "report.h"

#include <errno.h>

int report_json(json_t *results, const char *path)
{
	struct report_counts c;
	json_t *doc;
	int rc;

	report_count(results, &c);
	doc = json_pack("{s:{s:I, s:I, s:I, s:f}, s:O}", "summary", "passed", (json_int_t)c.passed, "failed",
			(json_int_t)c.failed, "skipped", (json_int_t)c.skipped, "time", c.time, "scenarios",
			results);
	if (!doc)
		return -ENOMEM;
	errno = 0;
	rc = json_dump_file(doc, path, JSON_INDENT(1)) < 0 ? (errno ? -errno : -EIO) : 0;
	json_decref(doc);
	return rc;
}
