/* Path diagnostics: when an operation on a path fails (or before it is
 * tried), gather what explains it - the errno text, owner and mode of the
 * path or its nearest existing parent, the mount it lives on with its
 * options - and a hint in plain words. */
#ifndef RUNNER_DIAG_H
#define RUNNER_DIAG_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "mountinfo.h"

struct diag_options {
	/* A parsed mount table to use, or NULL to load mountinfo_path. */
	const struct mount_table *mounts;
	/* mountinfo file to read when mounts is NULL; NULL means
	 * /proc/self/mountinfo. */
	const char *mountinfo_path;
	/* The identity whose access is judged in hints ("not writable by uid
	 * 1000"); diag_options_init sets geteuid()/getegid(). */
	uid_t uid;
	gid_t gid;
	/* The path holds runner scripts: a noexec mount then gets the
	 * "interpreter mode is unaffected, direct mode cannot work here" hint
	 * even without an error. */
	bool runner_dir;
};

struct diag_report {
	char *op;            /* "mkdir", "open", "exec", "rmdir", ... */
	char *path;
	int err;             /* positive errno, 0 when only inspecting */
	char *examined;      /* path whose owner and mode are shown: the path
			      * itself or its nearest existing parent */
	bool have_stat;
	uid_t uid;
	gid_t gid;
	char *owner;         /* user name, or the number as text */
	char *group;
	mode_t mode;         /* full st_mode */
	bool is_mountpoint;  /* examined is the mount point itself */
	bool have_mount;
	char *mount_point;
	char *fs_type;
	char *source;
	char *mount_options;
	char *super_options;
	unsigned int mount_flags;  /* MOUNT_F_* */
	char *hint;          /* plain words; NULL if nothing to add */
};

void diag_options_init(struct diag_options *o);

/* Fills r for op on path that failed with err (positive errno, or 0 to
 * only inspect).  Never fails for lack of information: what cannot be found
 * is left out.  Returns 0 or -ENOMEM. */
int diag_path(const char *op, const char *path, int err,
	      const struct diag_options *o, struct diag_report *r);

void diag_report_free(struct diag_report *r);

/* One line, malloc'd:
 * "mkdir /x/y: Permission denied; /x: owner root:root mode 0755; mount /
 *  (ext4, rw,relatime); hint: directory not writable by uid 1000 ..."
 * NULL on allocation failure. */
char *diag_format_line(const struct diag_report *r);

/* {"op","path","errno","error","examined","owner","group","uid","gid",
 *  "mode","is_mountpoint","mount":{"point","fs_type","source","options",
 *  "super_options","noexec","ro","nosuid","nodev"}|null,"hint"} */
json_t *diag_report_to_json(const struct diag_report *r);

/* Convenience: diag_path + diag_format_line with default options.  Returns
 * a malloc'd line, or NULL on allocation failure. */
char *diag_line(const char *op, const char *path, int err);

#endif
