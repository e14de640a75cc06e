/* Limit mechanisms; see limits.h. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "runlimits.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The controllers a cgroup offers, "" when unknown. */
static void controllers(const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX + 32];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

void limits_choose(uint64_t max_procs, uint64_t memory_max, const struct cgroup_run *cg,
		   bool drop, uid_t uid, struct spawn_limits *lim, char *desc, size_t desclen)
{
	char why[PATH_MAX + 128], ctl[256];
	size_t off = 0;

	if (cg)
		controllers(cg->path, ctl, sizeof(ctl));
	if (cg)
		snprintf(why, sizeof(why), "%s offers controllers '%s'", cg->path, ctl);
	else
		snprintf(why, sizeof(why), "no cgroup");
	off += (size_t)snprintf(desc + off, desclen - off, "limits:");
	if (max_procs == 0) {
		off += (size_t)snprintf(desc + off, desclen - off, " processes unlimited;");
	} else if (cg && cg->pids_limited) {
		lim->nproc = 0;
		off += (size_t)snprintf(desc + off, desclen - off,
					" processes %llu by cgroup pids.max;", (unsigned long long)max_procs);
	} else if (drop && uid != 0) {
		lim->nproc = max_procs;
		off += (size_t)snprintf(desc + off, desclen - off,
					" processes %llu by RLIMIT_NPROC (per user: every process of uid %u counts; %s);",
					(unsigned long long)max_procs, (unsigned)uid, why);
	} else {
		lim->nproc = max_procs;
		off += (size_t)snprintf(desc + off, desclen - off,
					" processes NOT LIMITED: RLIMIT_NPROC %llu does not bind root (%s; use --user);",
					(unsigned long long)max_procs, why);
	}
	if (off >= desclen)
		return;
	if (memory_max == 0) {
		snprintf(desc + off, desclen - off, " memory unlimited");
	} else if (cg && cg->memory_limited) {
		lim->data = 0;
		snprintf(desc + off, desclen - off, " memory %llu bytes by cgroup memory.max",
			 (unsigned long long)memory_max);
	} else {
		lim->data = memory_max;
		snprintf(desc + off, desclen - off,
			 " memory %llu bytes by RLIMIT_DATA per process (not RLIMIT_AS; %s)",
			 (unsigned long long)memory_max, why);
	}
}
