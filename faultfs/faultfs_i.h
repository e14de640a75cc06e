/* faultfs internals shared by the daemon's files.  Nothing here is a public
 * promise; the public contract is the command line (main.c) and the rule
 * language (rules.h). */
#ifndef FAULTFS_I_H
#define FAULTFS_I_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "rules.h"

/* ------------------------------------------------------------------ inodes */

/* One backing file or directory the kernel knows about.  The daemon holds an
 * O_PATH descriptor to it, so renames in the backing tree do not lose it.
 * parent/name remember where it was last seen, which is all we need to build
 * the mount-relative path that rules match against. */
struct ff_inode {
	int fd;                     /* O_PATH descriptor of the backing object */
	dev_t dev;
	ino_t ino;
	mode_t type;                /* S_IFMT bits, fixed for the inode's life */
	uint64_t nlookup;           /* kernel references (lookup count) */
	uint64_t refs;              /* daemon references: children, open handles */
	struct ff_inode *parent;    /* NULL only for the root */
	char *name;                 /* NULL only for the root */
	struct ff_inode *hnext;     /* hash chain */
};

struct ff_itable {
	pthread_mutex_t lock;
	struct ff_inode **buckets;
	size_t nbuckets;
	size_t count;
	struct ff_inode root;
};

int ff_itable_init(struct ff_itable *t, const char *backing);
void ff_itable_destroy(struct ff_itable *t);

/* Maps a kernel inode number to our inode (the root is FUSE_ROOT_ID). */
struct ff_inode *ff_ino(struct ff_itable *t, fuse_ino_t ino);
fuse_ino_t ff_ino_id(struct ff_itable *t, struct ff_inode *in);

/* Finds or creates the inode for `name` in `parent`, whose backing object
 * has just been opened as the O_PATH descriptor fd (which is consumed) and
 * stat'ed as st; counts one kernel lookup.  Returns NULL with errno set. */
struct ff_inode *ff_itable_get(struct ff_itable *t, struct ff_inode *parent, const char *name,
                               int fd, const struct stat *st);
/* Takes and drops a daemon reference, keeping an inode alive across a
 * reply after which the kernel may forget it. */
void ff_itable_hold(struct ff_itable *t, struct ff_inode *in);
void ff_itable_drop(struct ff_itable *t, struct ff_inode *in);
/* Drops n kernel lookups (FORGET). */
void ff_itable_forget(struct ff_itable *t, struct ff_inode *in, uint64_t n);
/* Records that a directory entry moved (rename). */
void ff_itable_moved(struct ff_itable *t, struct ff_inode *oldparent, const char *oldname,
                     struct ff_inode *newparent, const char *newname);

/* Writes the mount-relative path of `in` (optionally followed by "/name")
 * into buf, with no leading slash; the root is "".  Returns 0, or -1 when it
 * does not fit. */
int ff_itable_path(struct ff_itable *t, struct ff_inode *in, const char *name, char *buf, size_t len);

/* Copies the name under which `in` was last seen into name and returns a
 * new descriptor of its parent directory (the caller closes it), or -errno. */
int ff_itable_parent(struct ff_itable *t, struct ff_inode *in, char *name, size_t len);

/* One entry of a cache-invalidation sweep. */
struct ff_inval {
	fuse_ino_t ino;
	fuse_ino_t parent;
	char *name;
};
/* Snapshot of every known inode with its parent and name, for invalidating
 * the kernel's caches outside the table lock.  Returns the count or -1. */
ssize_t ff_itable_snapshot(struct ff_itable *t, struct ff_inval **out);
/* The same, for the known entries of one directory only. */
ssize_t ff_itable_snapshot_children(struct ff_itable *t, struct ff_inode *dir, struct ff_inval **out);

/* ------------------------------------------------------------------ callers */

/* The process behind one request, with lazily fetched details. */
struct ff_req_caller {
	struct ff_caller c;         /* uid, gid, pid + comm callback for rules */
	fuse_req_t req;
	bool exec_open;             /* never read /proc/PID files in this state */
	bool comm_done;
	char comm[32];
};

void ff_caller_init(struct ff_req_caller *rc, fuse_req_t req, bool exec_open);
const char *ff_caller_comm(struct ff_req_caller *rc);

/* Takes on the caller's filesystem identity (fsuid, fsgid, supplementary
 * groups) for the current thread, so the backing filesystem checks
 * permissions as it would for that user.  A no-op when the daemon is not
 * root or the caller is the daemon's own user.  Always pair with
 * ff_caller_restore(). */
struct ff_fs;
struct ff_identity {
	bool switched;
	struct ff_fs *fs;
};
int ff_caller_assume(struct ff_req_caller *rc, struct ff_identity *id);
void ff_caller_restore(struct ff_identity *id);

/* ------------------------------------------------------------------ trace */

struct ff_trace;

struct ff_trace_event {
	const char *op;
	const char *path;
	const char *path2;          /* rename/link target, or NULL */
	struct ff_req_caller *caller;
	uint32_t rule_id;           /* 0 when no rule fired (--trace-all) */
	const char *result;         /* "EBUSY", "delay 250ms", "ok" … */
};

/* file may be NULL (memory ring only). */
struct ff_trace *ff_trace_new(const char *file, size_t ring_size, char *err, size_t errlen);
void ff_trace_free(struct ff_trace *t);
void ff_trace_write(struct ff_trace *t, const struct ff_trace_event *ev);
/* Streams the ring (from sequence number *from on) to fd; with follow, keeps
 * streaming new lines until the peer goes away or stop becomes true.
 * Returns 0 or -errno. */
int ff_trace_stream(struct ff_trace *t, int fd, bool follow, atomic_bool *stop);
void ff_trace_wake(struct ff_trace *t);
uint64_t ff_trace_count(struct ff_trace *t);

/* ------------------------------------------------------------------ the filesystem */

struct ff_stats {
	atomic_uint_fast64_t ops;       /* requests handled */
	atomic_uint_fast64_t faults;    /* requests a rule fired on */
	atomic_uint_fast64_t invalidations; /* cache sweeps after rule changes */
};

struct ff_fs {
	struct fuse_session *se;
	struct ff_itable itable;
	struct ff_rules *rules;
	struct ff_trace *trace;
	struct ff_stats stats;
	char *backing;              /* absolute path of the backing directory */
	char *mountpoint;           /* absolute path of the mountpoint */
	double timeout;             /* entry/attr cache timeout for untouched paths */
	uid_t owner;                /* who mounted; may change rules */
	bool impersonate;           /* daemon is root: act as each caller */
	bool trace_all;
	bool writeback;             /* -o writeback_cache: kernel caches writes */
	bool debug;
	char ctl_name[108];         /* abstract socket name of the control channel */
	gid_t groups[64];           /* the daemon's own supplementary groups, */
	int ngroups;                /* restored after acting as a caller */
};

extern const struct fuse_lowlevel_ops ff_ops;

/* Drops every kernel cache entry, attribute and page the rules could have
 * changed; called after each rule change, before the change is reported
 * done.  Returns the number of inodes swept. */
size_t ff_fs_invalidate(struct ff_fs *fs);
/* Drops the kernel's cached entries for the known children of dir.  Never
 * call it while a request on dir is unanswered: the kernel holds its lock. */
void ff_fs_invalidate_children(struct ff_fs *fs, struct ff_inode *dir);

/* The extended attribute on the mount root through which `faultfs ctl` finds
 * the control socket of a mounted instance from the mountpoint alone. */
#define FF_CTL_XATTR "user.faultfs.ctl"

/* The longest command line the control channel takes, newline included. */
#define FF_CTL_LINE_MAX 8191

/* ------------------------------------------------------------------ control */

struct ff_ctl;
/* Starts the control server thread on an abstract unix socket named
 * fs->ctl_name.  Returns NULL with the reason in err. */
struct ff_ctl *ff_ctl_start(struct ff_fs *fs, char *err, size_t errlen);
void ff_ctl_stop(struct ff_ctl *ctl);

/* `faultfs ctl MOUNTPOINT COMMAND…`; returns the process exit code. */
int ff_ctl_client_main(int argc, char **argv);

#endif
