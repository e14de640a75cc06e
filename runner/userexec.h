/* Whether another user can execute a file: the check a run dropped to
 * --user needs before it is handed an interpreter found as root (a pyenv
 * shim under /root, mode 0700, is fine for root and useless for nobody).
 *
 * The check is made for real - a child process takes the user's uid and
 * gid (groups cleared, as the run will) and calls access(2) - so ACLs,
 * mount options and LSMs count.  When it fails, the parents are walked
 * from the root down and the first one the user cannot search is named. */
#ifndef RUNNER_USEREXEC_H
#define RUNNER_USEREXEC_H

#include <stddef.h>
#include <sys/types.h>

/* 0 when uid/gid can execute path; else -errno with why set ("/root: not
 * searchable by uid 65534 (owner 0:0 mode 0700)" or "<path>: ..."). */
int userexec_check(const char *path, uid_t uid, gid_t gid, char *why, size_t whylen);

#endif
