/* Shared by the section B integration tests: a private mount namespace so
 * that every tmpfs a test mounts disappears with the test process even if it
 * crashes, plus explicit unmounts in teardown for the normal path. */
#ifndef TESTS_RUNNER_MOUNTS_B_H
#define TESTS_RUNNER_MOUNTS_B_H

#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Returns 0, or prints why and returns 77 (meson's "skipped"). */
static inline int private_mount_ns(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: needs root to mount tmpfs\n");
		return 77;
	}
	if (unshare(CLONE_NEWNS) < 0) {
		fprintf(stderr, "skipped: unshare(CLONE_NEWNS): %s\n", strerror(errno));
		return 77;
	}
	/* Without this, mounts would propagate back to the host namespace. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "skipped: make / private: %s\n", strerror(errno));
		return 77;
	}
	return 0;
}

static inline int tmpfs_at(const char *dir, unsigned long flags, const char *data)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return mount("tmpfs", dir, "tmpfs", flags, data) < 0 ? -errno : 0;
}

static inline void unmount_all_under(const char *dir)
{
	/* Unmount whatever is stacked below dir, deepest first; a lazy
	 * unmount never fails on a busy mount. */
	for (int tries = 0; tries < 16; tries++) {
		FILE *f = fopen("/proc/self/mountinfo", "re");
		char line[4096], mp[4096], deepest[4096] = "";

		if (!f)
			return;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 &&
			    strncmp(mp, dir, strlen(dir)) == 0 &&
			    strlen(mp) > strlen(deepest))
				strcpy(deepest, mp);
		}
		fclose(f);
		if (!deepest[0])
			return;
		umount2(deepest, MNT_DETACH);
	}
}

static int rm_entry_b(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static inline void remove_tree_b(const char *dir)
{
	unmount_all_under(dir);
	nftw(dir, rm_entry_b, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
