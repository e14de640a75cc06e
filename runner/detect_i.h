/* Private to detect.c and its tests. */
#ifndef RUNNER_DETECT_I_H
#define RUNNER_DETECT_I_H

#include <stdbool.h>

/* Resolves the absolute path abs inside the directory rootfd the way
 * openat2(RESOLVE_IN_ROOT) does: ".." stops at the root, an absolute
 * symlink target starts again from the root, at most 40 links.  The last
 * component is followed only when follow_last.  Returns 0 with a malloc'd
 * path relative to rootfd ("." for the root itself), or -errno (-ELOOP,
 * -ENOMEM, or what readlinkat gave other than EINVAL and ENOENT).  This is
 * detect.c's fallback where openat2 is missing (before Linux 5.6, and under
 * valgrind). */
int detect_resolve_in_root(int rootfd, const char *abs, bool follow_last, char **out);

#endif
