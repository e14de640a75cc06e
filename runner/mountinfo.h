/* Parsing of /proc/self/mountinfo and lookup of the mount that holds a path.
 *
 * The format is described in proc(5): each line is
 *   ID PARENT MAJ:MIN ROOT MOUNTPOINT MOUNTOPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
 * where ROOT, MOUNTPOINT, SOURCE and the option strings escape space, tab,
 * newline and backslash as \040, \011, \012 and \134.  The strings kept in a
 * struct mount_entry are unescaped. */
#ifndef RUNNER_MOUNTINFO_H
#define RUNNER_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>

/* Per-mount flags decoded from the mount options (not the super options). */
#define MOUNT_F_RO      0x1u
#define MOUNT_F_NOEXEC  0x2u
#define MOUNT_F_NOSUID  0x4u
#define MOUNT_F_NODEV   0x8u

struct mount_entry {
	unsigned int mount_id;
	unsigned int parent_id;
	unsigned int dev_major;
	unsigned int dev_minor;
	char *root;           /* the directory of the filesystem mounted here */
	char *mount_point;    /* absolute path in our mount namespace */
	char *mount_options;  /* per-mount options, e.g. "rw,nosuid,noexec" */
	char *optional;       /* optional fields joined by spaces, "" if none */
	char *fs_type;        /* e.g. "tmpfs", "fuse.faultfs", "cgroup2" */
	char *source;         /* e.g. "/dev/sda1", "tmpfs" */
	char *super_options;  /* per-superblock options, e.g. "rw,size=1024k" */
	unsigned int flags;   /* MOUNT_F_* from mount_options */
};

/* Entries in file order, which is the order they were mounted. */
struct mount_table {
	struct mount_entry *entries;
	size_t n;
};

/* Parses len bytes of mountinfo text.  Returns 0, -ENOMEM, or -EINVAL for a
 * malformed line; then, if err is not NULL, writes a one-line reason naming
 * the line number and field ("line 3: missing ' - ' separator") into err.
 * On error the table is left empty. */
int mount_table_parse(const char *buf, size_t len, struct mount_table *t,
		      char *err, size_t errlen);

/* Reads and parses a mountinfo file; path NULL means /proc/self/mountinfo.
 * Returns 0 or -errno (-EINVAL for malformed content, with err as above; for
 * a read failure err says "cannot read PATH: strerror"). */
int mount_table_load(const char *path, struct mount_table *t,
		     char *err, size_t errlen);

void mount_table_free(struct mount_table *t);

/* The mount whose mount point is the longest prefix (at a '/' boundary) of
 * the already-canonical absolute path canon; among stacked mounts on the
 * same mount point the last mounted wins.  NULL if none matches. */
const struct mount_entry *mount_table_find_canonical(const struct mount_table *t,
						     const char *canon);

/* Like mount_table_find_canonical, after resolving path with realpath(3).
 * A path that does not exist yet is resolved through its nearest existing
 * parent, so a directory about to be created reports the mount it will be
 * created on.  Returns NULL (errno set) if nothing could be resolved. */
const struct mount_entry *mount_table_find(const struct mount_table *t,
					   const char *path);

/* The last mounted entry with this filesystem type ("cgroup2"), or NULL. */
const struct mount_entry *mount_table_find_fstype(const struct mount_table *t,
						  const char *fs_type);

/* Whether a comma-separated option string holds option name exactly
 * ("noexec" is in "rw,noexec", not in "rw,noexecx"); also matches
 * "name=value" when name has no '='. */
bool mount_option_present(const char *options, const char *name);

/* Decodes the octal escapes of mountinfo (\NNN) in place.  Returns 0, or
 * -EINVAL for a backslash not followed by three octal digits. */
int mountinfo_unescape(char *s);

#endif
