/* The filesystem operations: a low-level FUSE passthrough over a backing
 * directory, with a rule check at the top of every operation.
 *
 * The shape follows libfuse's passthrough_ll example (O_PATH descriptors per
 * inode, /proc/self/fd to reopen them), because the low-level API is what
 * reaches native speed.  What faultfs adds:
 *   - every request asks the rule table what to do before touching the
 *     backing file (see begin()), and untouched requests never build a path;
 *   - a root daemon acts as each caller (caller.c), so other users get the
 *     backing filesystem's own permission checks;
 *   - paths some rule matches get zero cache timeouts and uncached I/O, and
 *     every rule change sweeps the kernel's caches (ff_fs_invalidate), so a
 *     fault shows on the very next operation and vanishes as promptly.
 *
 * Operations return errors through fuse_reply_err() with a positive errno. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "errnames.h"
#include "faultfs_i.h"

/* The kernel marks the open of a file being executed with __FMODE_EXEC. */
#define FF_FMODE_EXEC 0x20

/* ------------------------------------------------------------------ request context */

struct op {
	struct ff_fs *fs;
	const char *name;           /* op name for traces */
	uint64_t ops;
	struct ff_inode *in;        /* the request's path is in[/child] */
	const char *child;
	struct ff_inode *in2;       /* second path of rename and link */
	const char *child2;
	struct ff_req_caller rc;
	struct ff_verdict v;
	bool fired;
	bool have_path;
	bool path_ok;
	char path[PATH_MAX];
	char path2[PATH_MAX];
};

static struct ff_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static const char *op_path(struct op *o)
{
	if (!o->have_path) {
		o->have_path = true;
		o->path_ok = ff_itable_path(&o->fs->itable, o->in, o->child, o->path, sizeof(o->path)) == 0;
		if (o->in2 != NULL &&
		    ff_itable_path(&o->fs->itable, o->in2, o->child2, o->path2, sizeof(o->path2)) < 0)
			o->in2 = NULL;
	}
	return o->path_ok ? o->path : NULL;
}

/* Formats what a fired rule did, for the trace. */
static void describe(const struct ff_verdict *v, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	if (v->error != 0) {
		const char *name = errno_name(v->error);

		if (name != NULL)
			n += (size_t)snprintf(buf + n, len - n, "%s", name);
		else
			n += (size_t)snprintf(buf + n, len - n, "errno %d", v->error);
	}
	if (v->delay_ns != 0 && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%sdelay %llums", n ? " after " : "",
		                      (unsigned long long)(v->delay_ns / 1000000));
	if (v->mode_clear != 0 && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%smode_clear %04o", n ? ", " : "", v->mode_clear);
	if (v->short_len != 0 && n < len)
		snprintf(buf + n, len - n, "%sshort %llu", n ? ", " : "", (unsigned long long)v->short_len);
}

static void trace(struct op *o, const char *result)
{
	struct ff_trace_event ev = {
		.op = o->name,
		.path = op_path(o),
		.path2 = o->in2 != NULL ? o->path2 : NULL,
		.caller = &o->rc,
		.rule_id = o->fired ? o->v.rule_id : 0,
		.result = result,
	};

	if (ev.path == NULL)
		ev.path = "?";
	ff_trace_write(o->fs->trace, &ev);
}

/* Asks the rules about a request.  Returns 0 to go on, or the positive
 * errno the request must fail with.  Sleeps for a delay effect here, so the
 * caller sees the delay whether or not an error follows. */
static int begin2(struct op *o, fuse_req_t req, const char *name, uint64_t ops,
                  struct ff_inode *in, const char *child, struct ff_inode *in2, const char *child2,
                  bool exec_open)
{
	struct ff_fs *fs = fs_of(req);
	char result[96];

	o->fs = fs;
	o->name = name;
	o->ops = ops;
	o->in = in;
	o->child = child;
	o->in2 = in2;
	o->child2 = child2;
	o->fired = false;
	o->have_path = false;
	o->v.error = 0;
	o->v.mode_clear = 0;
	o->v.short_len = 0;
	o->v.delay_ns = 0;
	ff_caller_init(&o->rc, req, exec_open);
	atomic_fetch_add_explicit(&fs->stats.ops, 1, memory_order_relaxed);
	if (!ff_rules_may_touch(fs->rules, ops) || op_path(o) == NULL)
		return 0;
	o->fired = ff_rules_eval(fs->rules, ops, o->path, o->in2 != NULL ? o->path2 : NULL,
	                         &o->rc.c, &o->v);
	if (!o->fired)
		return 0;
	atomic_fetch_add_explicit(&fs->stats.faults, 1, memory_order_relaxed);
	describe(&o->v, result, sizeof(result));
	trace(o, result);
	if (o->v.delay_ns != 0) {
		struct timespec ts = {
			.tv_sec = (time_t)(o->v.delay_ns / 1000000000ULL),
			.tv_nsec = (long)(o->v.delay_ns % 1000000000ULL),
		};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return o->v.error;
}

static int begin(struct op *o, fuse_req_t req, const char *name, uint64_t ops,
                 struct ff_inode *in, const char *child)
{
	return begin2(o, req, name, ops, in, child, NULL, NULL, false);
}

/* With --trace-all, records how an untouched request ended. */
static void finish(struct op *o, int err)
{
	if (!o->fs->trace_all || o->fired)
		return;
	if (err == 0) {
		trace(o, "ok");
	} else {
		const char *n = errno_name(err);

		trace(o, n != NULL ? n : "error");
	}
}

static void reply_err(struct op *o, fuse_req_t req, int err)
{
	finish(o, err);
	fuse_reply_err(req, err);
}

/* Operations whose faults the kernel's entry and attribute caches could
 * hide (attribute replies are where mode_clear acts). */
#define CACHED_OPS (FF_OP_LOOKUP | FF_OP_GETATTR | FF_OP_READDIR | FF_OP_CREATE | FF_OP_MKDIR | \
                    FF_OP_MKNOD | FF_OP_SYMLINK | FF_OP_LINK | FF_OP_CHMOD | FF_OP_CHOWN | \
                    FF_OP_TRUNCATE | FF_OP_UTIMENS)

/* How long the kernel may cache what we say about this path.  A path that
 * any rule matches is never cached, so counting conditions (nth, count,
 * prob) and delays are seen on every call. */
static double cache_timeout(struct op *o)
{
	/* Only faults on lookups and attributes can hide behind the entry
	 * and attribute caches; an exec-only rule set costs nothing here. */
	if (!ff_rules_may_touch(o->fs->rules, CACHED_OPS))
		return o->fs->timeout;
	if (op_path(o) == NULL || ff_rules_path_matched(o->fs->rules, o->path))
		return 0.0;
	return o->fs->timeout;
}

static void apply_mode(struct op *o, struct stat *st)
{
	if (o->fired && o->v.mode_clear != 0)
		st->st_mode &= ~(mode_t)o->v.mode_clear;
}

static void proc_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* ------------------------------------------------------------------ lifecycle */

static void ff_init(void *userdata, struct fuse_conn_info *conn)
{
	struct ff_fs *fs = userdata;

	/* readdirplus would hand the kernel attributes behind lookup's back,
	 * where mode_clear and lookup faults could not reach them. */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
	/* Off unless asked for (-o writeback_cache): with it the kernel
	 * answers write() from its page cache and sends the data later, so a
	 * write fault could only show at fsync or close (see the README). */
	if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	} else {
		if (fs->writeback)
			fprintf(stderr, "faultfs: warning: the kernel offers no writeback cache; writing through\n");
		fs->writeback = false;
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	}
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* Requests are read() into memory, as passthrough_ll's are (see
	 * faultfs/README.md).  With splice reads libfuse 3.14 receives every
	 * request by splice() into a pipe and then read()s the small ones out
	 * of it: two system calls for each LOOKUP, CREATE or UNLINK, which
	 * cost more on small files than sparing the copy of WRITE data gains
	 * on large writes.  libfuse turns them on by default wherever a pipe
	 * can hold max_write; they stay off everywhere, so the daemon does
	 * the same work on every host. */
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

/* ------------------------------------------------------------------ lookup and attributes */

/* Without default_permissions the kernel checks no search permission when
 * it walks a path through cached entries, so a name cached for root inside
 * a 0700 directory would let any user reach it.  Entries in a directory
 * that some class of user may not search are therefore never cached: every
 * walk through it sends a lookup, which runs as the caller.  Elsewhere the
 * search check would pass for everyone, and caching is safe. */
static bool restricted_dir(struct ff_fs *fs, struct ff_inode *dir)
{
	struct stat st;

	if (!fs->impersonate)
		return false;
	if (fstatat(dir->fd, "", &st, AT_EMPTY_PATH) < 0)
		return true;
	return (st.st_mode & 0111) != 0111;
}

/* Opens name in parent as an O_PATH descriptor, registers it and fills e. */
static int do_lookup(struct op *o, struct ff_inode *parent, const char *name, struct fuse_entry_param *e)
{
	struct ff_identity id;
	struct stat st;
	struct ff_inode *in;
	int fd, err;

	memset(e, 0, sizeof(*e));
	err = ff_caller_assume(&o->rc, &id);
	if (err < 0)
		return -err;
	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	err = fd < 0 ? errno : 0;
	ff_caller_restore(&id);
	if (fd < 0)
		return err;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		err = errno;
		close(fd);
		return err;
	}
	in = ff_itable_get(&o->fs->itable, parent, name, fd, &st);
	if (in == NULL)
		return errno;
	apply_mode(o, &st);
	e->ino = ff_ino_id(&o->fs->itable, in);
	e->attr = st;
	e->attr_timeout = restricted_dir(o->fs, parent) ? 0.0 : cache_timeout(o);
	e->entry_timeout = e->attr_timeout;
	return 0;
}

static void ff_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct op o;
	struct ff_inode *dir = ff_ino(&fs_of(req)->itable, parent);
	struct fuse_entry_param e;
	int err = begin(&o, req, "lookup", FF_OP_LOOKUP, dir, name);

	if (err == 0)
		err = do_lookup(&o, dir, name, &e);
	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	finish(&o, 0);
	fuse_reply_entry(req, &e);
}

static void ff_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct ff_fs *fs = fs_of(req);

	ff_itable_forget(&fs->itable, ff_ino(&fs->itable, ino), nlookup);
	fuse_reply_none(req);
}

static void ff_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct ff_fs *fs = fs_of(req);

	for (size_t i = 0; i < count; i++)
		ff_itable_forget(&fs->itable, ff_ino(&fs->itable, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void reply_attr(struct op *o, fuse_req_t req, struct ff_inode *in)
{
	struct stat st;

	if (fstatat(in->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		reply_err(o, req, errno);
		return;
	}
	apply_mode(o, &st);
	finish(o, 0);
	fuse_reply_attr(req, &st, cache_timeout(o));
}

static void ff_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	int err = begin(&o, req, "getattr", FF_OP_GETATTR, in, NULL);

	if (err != 0)
		reply_err(&o, req, err);
	else
		reply_attr(&o, req, in);
}

static uint64_t setattr_ops(int valid)
{
	uint64_t ops = 0;

	if (valid & FUSE_SET_ATTR_MODE)
		ops |= FF_OP_CHMOD;
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		ops |= FF_OP_CHOWN;
	if (valid & FUSE_SET_ATTR_SIZE)
		ops |= FF_OP_TRUNCATE;
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))
		ops |= FF_OP_UTIMENS;
	return ops;
}

static const char *setattr_name(uint64_t ops)
{
	if (ops & FF_OP_TRUNCATE)
		return "truncate";
	if (ops & FF_OP_CHMOD)
		return "chmod";
	if (ops & FF_OP_CHOWN)
		return "chown";
	return "utimens";
}

static int do_setattr(struct ff_itable *itable, struct ff_inode *in, struct stat *attr, int valid, struct fuse_file_info *fi)
{
	char procname[64];
	int fd = fi != NULL ? (int)fi->fh : -1;

	proc_path(procname, sizeof(procname), in->fd);
	if (valid & FUSE_SET_ATTR_MODE) {
		if ((fd >= 0 ? fchmod(fd, attr->st_mode) : chmod(procname, attr->st_mode)) < 0)
			return errno;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(in->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if ((fd >= 0 ? ftruncate(fd, attr->st_size) : truncate(procname, attr->st_size)) < 0)
			return errno;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
		struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (fd >= 0) {
			if (futimens(fd, tv) < 0)
				return errno;
		} else if (S_ISLNK(in->type)) {
			/* /proc/self/fd would follow the link, so a symlink's
			 * own times are set through its parent and name. */
			char name[NAME_MAX + 1];
			int dirfd = ff_itable_parent(itable, in, name, sizeof(name));
			int rc;

			if (dirfd < 0)
				return -dirfd;
			rc = utimensat(dirfd, name, tv, AT_SYMLINK_NOFOLLOW);
			close(dirfd);
			if (rc < 0)
				return errno;
		} else if (utimensat(AT_FDCWD, procname, tv, 0) < 0) {
			return errno;
		}
	}
	return 0;
}

/* Whether a chmod in the caller's name is the kernel clearing setuid/setgid
 * before that caller's write or truncate (file_remove_privs: without
 * FUSE_HANDLE_KILLPRIV, which libfuse 3.14 does not pass on, the kernel
 * sends it as a SETATTR of the mode): the new mode only drops S_ISUID or
 * S_ISGID from a regular file the caller does not own but may write.  The
 * backing filesystem would refuse it (EPERM, only the owner may chmod), and
 * the caller's write with it, where natively the kernel clears the bits on
 * its own authority.  Called with the caller's identity assumed.  The one
 * difference left: such a caller's explicit `chmod u-s` also succeeds. */
static bool kills_privs(struct ff_inode *in, const struct stat *attr, uid_t caller)
{
	char procname[64];
	struct stat st;
	mode_t dropped;

	if (fstat(in->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid == caller)
		return false;
	dropped = st.st_mode & ~attr->st_mode & 07777;
	if (dropped == 0 || (dropped & ~(mode_t)(S_ISUID | S_ISGID)) != 0 ||
	    (attr->st_mode & 07777) != ((st.st_mode & 07777) & ~dropped))
		return false;
	proc_path(procname, sizeof(procname), in->fd);
	return faccessat(AT_FDCWD, procname, W_OK, AT_EACCESS) == 0;
}

static void ff_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	uint64_t ops = setattr_ops(valid);
	struct ff_identity id;
	int err = begin(&o, req, setattr_name(ops), ops, in, NULL);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0 && id.switched && (valid & FUSE_SET_ATTR_MODE) && kills_privs(in, attr, o.rc.c.uid)) {
		/* Done with the daemon's rights, the rest (a truncate) as the
		 * caller. */
		ff_caller_restore(&id);
		err = do_setattr(&o.fs->itable, in, attr, FUSE_SET_ATTR_MODE, fi);
		valid &= ~FUSE_SET_ATTR_MODE;
		if (err == 0)
			err = -ff_caller_assume(&o.rc, &id);
	}
	if (err == 0) {
		err = do_setattr(&o.fs->itable, in, attr, valid, fi);
		ff_caller_restore(&id);
	}
	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	/* A directory that just lost search bits must not keep serving cached
	 * children to users who may no longer reach them.  Only after the
	 * reply, since the kernel holds the directory's lock until then; and
	 * the reply lets the kernel forget the inode, so hold it meanwhile. */
	if ((valid & FUSE_SET_ATTR_MODE) && S_ISDIR(in->type) && o.fs->impersonate) {
		ff_itable_hold(&o.fs->itable, in);
		reply_attr(&o, req, in);
		ff_fs_invalidate_children(o.fs, in);
		ff_itable_drop(&o.fs->itable, in);
		return;
	}
	reply_attr(&o, req, in);
}

static void ff_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;
	int err = begin(&o, req, "readlink", FF_OP_READLINK, in, NULL);

	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	n = readlinkat(in->fd, "", buf, sizeof(buf));
	if (n < 0 || n >= (ssize_t)sizeof(buf)) {
		reply_err(&o, req, n < 0 ? errno : ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	finish(&o, 0);
	fuse_reply_readlink(req, buf);
}

static void ff_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	/* X_OK on a directory asks about search, which noexec never takes
	 * away: only regular files count as exec for the rules. */
	bool exec = (mask & X_OK) && S_ISREG(in->type);
	uint64_t ops = FF_OP_ACCESS | (exec ? FF_OP_EXEC : 0);
	char procname[64];
	struct ff_identity id;
	int err = begin(&o, req, exec ? "access(X_OK)" : "access", ops, in, NULL);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		proc_path(procname, sizeof(procname), in->fd);
		if (faccessat(AT_FDCWD, procname, mask, AT_EACCESS) < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	/* mode_clear hides execute bits from stat; access(X_OK) must agree,
	 * as it would on a filesystem where the bits are really gone. */
	if (err == 0 && (mask & X_OK) && S_ISREG(in->type) &&
	    ff_rules_may_touch(o.fs->rules, FF_OP_GETATTR)) {
		struct op g;
		struct stat st;

		if (begin(&g, req, "getattr", FF_OP_GETATTR, in, NULL) == 0 && g.fired &&
		    g.v.mode_clear != 0 && fstatat(in->fd, "", &st, AT_EMPTY_PATH) == 0) {
			apply_mode(&g, &st);
			if ((st.st_mode & 0111) == 0)
				err = EACCES;
		}
	}
	reply_err(&o, req, err);
}

static void ff_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	struct statvfs sv;
	int err = begin(&o, req, "statfs", FF_OP_STATFS, in, NULL);

	if (err == 0 && fstatvfs(in->fd, &sv) < 0)
		err = errno;
	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	finish(&o, 0);
	fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------------ creating and removing names */

/* Replies to mkdir, mknod and symlink: looks the new name up so the
 * kernel gets its inode.  The lookup runs as the daemon: the caller just
 * created the name, so it may see it. */
static void reply_new_entry(struct op *o, fuse_req_t req, struct ff_inode *dir, const char *name)
{
	struct fuse_entry_param e;
	int err = do_lookup(o, dir, name, &e);

	if (err != 0) {
		reply_err(o, req, err);
		return;
	}
	finish(o, 0);
	fuse_reply_entry(req, &e);
}

/* mkdir, mknod and symlink: create a name as the caller, then answer with
 * its entry.  target is the symlink's content, NULL for the others. */
static void make_name(fuse_req_t req, fuse_ino_t parent, const char *name, const char *opname,
                      uint64_t opbit, mode_t mode, dev_t rdev, const char *target)
{
	struct op o;
	struct ff_inode *dir = ff_ino(&fs_of(req)->itable, parent);
	struct ff_identity id;
	int err = begin(&o, req, opname, opbit, dir, name);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		int rc = opbit == FF_OP_MKDIR   ? mkdirat(dir->fd, name, mode)
		       : opbit == FF_OP_SYMLINK ? symlinkat(target, dir->fd, name)
		                                : mknodat(dir->fd, name, mode, rdev);

		if (rc < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	if (err != 0)
		reply_err(&o, req, err);
	else
		reply_new_entry(&o, req, dir, name);
}

static void ff_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_name(req, parent, name, "mkdir", FF_OP_MKDIR, mode, 0, NULL);
}

static void ff_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make_name(req, parent, name, "mknod", FF_OP_MKNOD, mode, rdev, NULL);
}

static void ff_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	make_name(req, parent, name, "symlink", FF_OP_SYMLINK, 0, 0, target);
}

static void ff_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct op o;
	struct ff_fs *fs = fs_of(req);
	struct ff_inode *in = ff_ino(&fs->itable, ino);
	struct ff_inode *dir = ff_ino(&fs->itable, newparent);
	struct ff_identity id;
	char procname[64];
	int err = begin2(&o, req, "link", FF_OP_LINK, in, NULL, dir, newname, false);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		/* Linking an O_PATH descriptor with AT_EMPTY_PATH needs
		 * CAP_DAC_READ_SEARCH, which a caller may lack; following the
		 * /proc link does not. */
		proc_path(procname, sizeof(procname), in->fd);
		if (linkat(AT_FDCWD, procname, dir->fd, newname, AT_SYMLINK_FOLLOW) < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	if (err != 0)
		reply_err(&o, req, err);
	else
		reply_new_entry(&o, req, dir, newname);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, bool isdir)
{
	struct op o;
	struct ff_inode *dir = ff_ino(&fs_of(req)->itable, parent);
	struct ff_identity id;
	int err = begin(&o, req, isdir ? "rmdir" : "unlink", isdir ? FF_OP_RMDIR : FF_OP_UNLINK, dir, name);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		if (unlinkat(dir->fd, name, isdir ? AT_REMOVEDIR : 0) < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	reply_err(&o, req, err);
}

static void ff_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, false);
}

static void ff_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, true);
}

static void ff_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	struct op o;
	struct ff_fs *fs = fs_of(req);
	struct ff_inode *dir = ff_ino(&fs->itable, parent);
	struct ff_inode *newdir = ff_ino(&fs->itable, newparent);
	struct ff_identity id;
	int err = begin2(&o, req, "rename", FF_OP_RENAME, dir, name, newdir, newname, false);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		if (renameat2(dir->fd, name, newdir->fd, newname, flags) < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	if (err == 0) {
		ff_itable_moved(&fs->itable, dir, name, newdir, newname);
		if (flags & RENAME_EXCHANGE)
			ff_itable_moved(&fs->itable, newdir, newname, dir, name);
	}
	reply_err(&o, req, err);
}

/* ------------------------------------------------------------------ files */

/* With the writeback cache the kernel may read a page before writing part
 * of it, even through a write-only descriptor, and keeps the file position
 * itself, appends included; so backing files are opened for reading too
 * where the caller may read, and never O_APPEND (as passthrough_ll does). */
static int writeback_flags(const struct ff_fs *fs, int flags)
{
	if (!fs->writeback)
		return flags;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags & ~O_APPEND;
}

/* Decides how the kernel may cache an open file.  Files that rules match
 * bypass the page cache, so every read and write reaches the rules and a
 * short read is a short read(2), not zero-filled pages. */
static void set_cache_mode(struct op *o, struct fuse_file_info *fi)
{
	bool touched = ff_rules_may_touch(o->fs->rules, FF_OP_READ | FF_OP_WRITE | FF_OP_FLUSH) &&
	               (op_path(o) == NULL || ff_rules_path_matched(o->fs->rules, o->path));

	fi->direct_io = touched && ff_rules_may_touch(o->fs->rules, FF_OP_READ | FF_OP_WRITE);
	fi->keep_cache = !fi->direct_io;
	/* Skipping FLUSH saves a round trip per close; only worth keeping
	 * when a rule for this file or the trace wants to see it. */
	fi->noflush = !o->fs->trace_all && !(touched && ff_rules_may_touch(o->fs->rules, FF_OP_FLUSH));
}

static void ff_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *dir = ff_ino(&fs_of(req)->itable, parent);
	struct fuse_entry_param e;
	struct ff_identity id;
	int fd = -1;
	int err = begin(&o, req, "create", FF_OP_CREATE | FF_OP_OPEN_WRITE, dir, name);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		int flags = (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW;

		fd = openat(dir->fd, name, writeback_flags(o.fs, flags), mode);
		if (fd < 0 && errno == EACCES && writeback_flags(o.fs, flags) != flags)
			fd = openat(dir->fd, name, flags, mode);
		if (fd < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	if (err == 0) {
		err = do_lookup(&o, dir, name, &e);
		if (err != 0)
			close(fd);
	}
	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	fi->fh = (uint64_t)fd;
	set_cache_mode(&o, fi);
	finish(&o, 0);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		close(fd); /* The caller was interrupted; no release will come. */
}

static int is_write_open(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static void ff_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	bool exec_open = (fi->flags & FF_FMODE_EXEC) != 0;
	uint64_t ops = FF_OP_OPEN | (exec_open ? FF_OP_EXEC : 0) |
	               (is_write_open(fi->flags) ? FF_OP_OPEN_WRITE : 0);
	int flags = (fi->flags & ~(FF_FMODE_EXEC | O_NOFOLLOW)) | O_CLOEXEC;
	struct ff_identity id;
	char procname[64];
	int fd = -1;
	int err = begin2(&o, req, exec_open ? "exec" : "open", ops, in, NULL, NULL, NULL, exec_open);

	proc_path(procname, sizeof(procname), in->fd);
	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		/* execve needs execute permission, not read permission: check
		 * X_OK as the caller, then open as the daemon so a 0111 script
		 * runs for its owner just as on a real filesystem. */
		if (exec_open && id.switched) {
			if (faccessat(AT_FDCWD, procname, X_OK, AT_EACCESS) < 0)
				err = errno;
			ff_caller_restore(&id);
		}
		if (err == 0) {
			fd = open(procname, writeback_flags(o.fs, flags));
			if (fd < 0 && errno == EACCES && writeback_flags(o.fs, flags) != flags)
				fd = open(procname, flags); /* write-only for this caller */
			if (fd < 0)
				err = errno;
		}
		ff_caller_restore(&id);
	}
	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	fi->fh = (uint64_t)fd;
	set_cache_mode(&o, fi);
	finish(&o, 0);
	if (fuse_reply_open(req, fi) == -ENOENT)
		close(fd);
}

/* Points a one-buffer vector at the backing file, at most short= bytes of
 * it when a rule asked for short transfers. */
static void file_buf(struct op *o, struct fuse_bufvec *b, int fd, off_t off)
{
	if (o->fired && o->v.short_len != 0 && o->v.short_len < b->buf[0].size)
		b->buf[0].size = o->v.short_len;
	b->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	b->buf[0].fd = fd;
	b->buf[0].pos = off;
}

static void ff_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int err = begin(&o, req, "read", FF_OP_READ, in, NULL);

	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	file_buf(&o, &buf, (int)fi->fh, off);
	finish(&o, 0);
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void ff_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
                         struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	size_t size = fuse_buf_size(in_buf);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);
	ssize_t n;
	int err = begin(&o, req, "write", FF_OP_WRITE, in, NULL);

	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	file_buf(&o, &out, (int)fi->fh, off);
	n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0) {
		reply_err(&o, req, (int)-n);
		return;
	}
	finish(&o, 0);
	fuse_reply_write(req, (size_t)n);
}

static void ff_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	int err = begin(&o, req, "flush", FF_OP_FLUSH, in, NULL);

	/* close() of a duplicate reports the errors close() of the file
	 * would, without closing the handle the kernel still uses. */
	if (err == 0 && close(dup((int)fi->fh)) < 0)
		err = errno;
	reply_err(&o, req, err);
}

static void ff_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);

	/* The kernel ignores release's answer, so a rule can delay it or
	 * trace it, but the descriptor is always closed. */
	begin(&o, req, "release", FF_OP_RELEASE, in, NULL);
	close((int)fi->fh);
	reply_err(&o, req, 0);
}

static void ff_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	int fd = (int)fi->fh;
	int err = begin(&o, req, "fsync", FF_OP_FSYNC, in, NULL);

	if (err == 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		err = errno;
	reply_err(&o, req, err);
}

static void ff_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	int err = begin(&o, req, "fallocate", FF_OP_FALLOCATE, in, NULL);

	if (err == 0 && fallocate((int)fi->fh, mode, off, len) < 0)
		err = errno;
	reply_err(&o, req, err);
}

static void ff_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	fuse_reply_err(req, flock((int)fi->fh, op) < 0 ? errno : 0);
}

static void ff_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t res = lseek((int)fi->fh, off, whence);

	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}

static void ff_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
                               fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out,
                               size_t len, int flags)
{
	struct op o;
	struct ff_fs *fs = fs_of(req);
	ssize_t n;
	int err = begin2(&o, req, "write", FF_OP_READ | FF_OP_WRITE, ff_ino(&fs->itable, ino_out), NULL,
	                 ff_ino(&fs->itable, ino_in), NULL, false);

	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	if (o.fired && o.v.short_len != 0 && o.v.short_len < len)
		len = o.v.short_len;
	n = copy_file_range((int)fi_in->fh, &off_in, (int)fi_out->fh, &off_out, len, (unsigned)flags);
	if (n < 0) {
		reply_err(&o, req, errno);
		return;
	}
	finish(&o, 0);
	fuse_reply_write(req, (size_t)n);
}

/* ------------------------------------------------------------------ directories */

struct ff_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
};

static void ff_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	struct ff_identity id;
	struct ff_dir *d = NULL;
	int fd = -1;
	int err = begin(&o, req, "opendir", FF_OP_READDIR, in, NULL);

	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		fd = openat(in->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	if (err == 0) {
		d = calloc(1, sizeof(*d));
		if (d == NULL || (d->dp = fdopendir(fd)) == NULL) {
			err = d == NULL ? ENOMEM : errno;
			free(d);
			close(fd);
		}
	}
	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	finish(&o, 0);
	if (fuse_reply_open(req, fi) == -ENOENT) {
		closedir(d->dp);
		free(d);
	}
}

static void ff_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	struct ff_dir *d = (struct ff_dir *)(uintptr_t)fi->fh;
	char *buf, *p;
	size_t rem = size;
	int err = begin(&o, req, "readdir", FF_OP_READDIR, in, NULL);

	if (err != 0) {
		reply_err(&o, req, err);
		return;
	}
	buf = malloc(size);
	if (buf == NULL) {
		reply_err(&o, req, ENOMEM);
		return;
	}
	p = buf;
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		struct stat st = { 0 };
		size_t n;

		if (d->entry == NULL) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (d->entry == NULL) {
				if (errno != 0 && rem == size)
					err = errno;
				break;
			}
		}
		st.st_ino = d->entry->d_ino;
		st.st_mode = (mode_t)d->entry->d_type << 12;
		n = fuse_add_direntry(req, p, rem, d->entry->d_name, &st, d->entry->d_off);
		if (n > rem)
			break;
		p += n;
		rem -= n;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	if (err != 0)
		reply_err(&o, req, err);
	else {
		finish(&o, 0);
		fuse_reply_buf(req, buf, size - rem);
	}
	free(buf);
}

static void ff_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ff_dir *d = (struct ff_dir *)(uintptr_t)fi->fh;

	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void ff_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	struct ff_dir *d = (struct ff_dir *)(uintptr_t)fi->fh;
	int fd = dirfd(d->dp);
	int err = begin(&o, req, "fsync", FF_OP_FSYNC, in, NULL);

	if (err == 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		err = errno;
	reply_err(&o, req, err);
}

/* ------------------------------------------------------------------ extended attributes */

/* xattrs go through /proc/self/fd, which follows to the object itself; a
 * symlink's own xattrs cannot be reached that way without races. */
/* getxattr (name given) and listxattr (name NULL): with size 0 the caller
 * asks how big the answer is, otherwise for the answer itself. */
static void xattr_read(fuse_req_t req, struct ff_inode *in, const char *name, size_t size)
{
	struct op o;
	struct ff_identity id;
	char procname[64];
	char *value = NULL;
	ssize_t n = 0;
	int err = begin(&o, req, name != NULL ? "getxattr" : "listxattr",
	                name != NULL ? FF_OP_GETXATTR : FF_OP_LISTXATTR, in, NULL);

	if (err == 0 && S_ISLNK(in->type))
		err = ENOTSUP;
	if (err == 0 && size != 0 && (value = malloc(size)) == NULL)
		err = ENOMEM;
	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		proc_path(procname, sizeof(procname), in->fd);
		n = name != NULL ? getxattr(procname, name, value, size) : listxattr(procname, value, size);
		if (n < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	if (err != 0) {
		reply_err(&o, req, err);
	} else {
		finish(&o, 0);
		if (size == 0)
			fuse_reply_xattr(req, (size_t)n);
		else
			fuse_reply_buf(req, value, (size_t)n);
	}
	free(value);
}

static void ff_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct ff_fs *fs = fs_of(req);

	if (ino == FUSE_ROOT_ID && strcmp(name, FF_CTL_XATTR) == 0) {
		/* Checked before the rules: no rule may cut off control. */
		size_t len = strlen(fs->ctl_name);

		if (size == 0)
			fuse_reply_xattr(req, len);
		else if (size < len)
			fuse_reply_err(req, ERANGE);
		else
			fuse_reply_buf(req, fs->ctl_name, len);
		return;
	}
	xattr_read(req, ff_ino(&fs->itable, ino), name, size);
}

static void ff_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xattr_read(req, ff_ino(&fs_of(req)->itable, ino), NULL, size);
}

static void ff_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	struct ff_identity id;
	char procname[64];
	int err = begin(&o, req, "setxattr", FF_OP_SETXATTR, in, NULL);

	if (err == 0 && ino == FUSE_ROOT_ID && strcmp(name, FF_CTL_XATTR) == 0)
		err = EPERM;
	if (err == 0 && S_ISLNK(in->type))
		err = ENOTSUP;
	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		proc_path(procname, sizeof(procname), in->fd);
		if (setxattr(procname, name, value, size, flags) < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	reply_err(&o, req, err);
}

static void ff_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct op o;
	struct ff_inode *in = ff_ino(&fs_of(req)->itable, ino);
	struct ff_identity id;
	char procname[64];
	int err = begin(&o, req, "removexattr", FF_OP_REMOVEXATTR, in, NULL);

	if (err == 0 && S_ISLNK(in->type))
		err = ENOTSUP;
	if (err == 0)
		err = -ff_caller_assume(&o.rc, &id);
	if (err == 0) {
		proc_path(procname, sizeof(procname), in->fd);
		if (removexattr(procname, name) < 0)
			err = errno;
		ff_caller_restore(&id);
	}
	reply_err(&o, req, err);
}

/* ------------------------------------------------------------------ cache invalidation */

size_t ff_fs_invalidate(struct ff_fs *fs)
{
	struct ff_inval *v;
	ssize_t n = ff_itable_snapshot(&fs->itable, &v);

	if (n < 0)
		return 0;
	/* Entries first, so the next path walk looks names up again and meets
	 * the new rules; then attributes and pages of everything we know. */
	for (ssize_t i = 0; i < n; i++)
		if (v[i].name != NULL)
			fuse_lowlevel_notify_inval_entry(fs->se, v[i].parent, v[i].name, strlen(v[i].name));
	for (ssize_t i = 0; i < n; i++) {
		fuse_lowlevel_notify_inval_inode(fs->se, v[i].ino, 0, 0);
		free(v[i].name);
	}
	free(v);
	atomic_fetch_add_explicit(&fs->stats.invalidations, 1, memory_order_relaxed);
	return (size_t)n;
}

void ff_fs_invalidate_children(struct ff_fs *fs, struct ff_inode *dir)
{
	struct ff_inval *v;
	ssize_t n = ff_itable_snapshot_children(&fs->itable, dir, &v);

	for (ssize_t i = 0; i < n; i++) {
		fuse_lowlevel_notify_inval_entry(fs->se, v[i].parent, v[i].name, strlen(v[i].name));
		free(v[i].name);
	}
	if (n >= 0)
		free(v);
}

const struct fuse_lowlevel_ops ff_ops = {
	.init = ff_init,
	.lookup = ff_lookup,
	.forget = ff_forget,
	.forget_multi = ff_forget_multi,
	.getattr = ff_getattr,
	.setattr = ff_setattr,
	.readlink = ff_readlink,
	.mknod = ff_mknod,
	.mkdir = ff_mkdir,
	.unlink = ff_unlink,
	.rmdir = ff_rmdir,
	.symlink = ff_symlink,
	.rename = ff_rename,
	.link = ff_link,
	.open = ff_open,
	.read = ff_read,
	.write_buf = ff_write_buf,
	.flush = ff_flush,
	.release = ff_release,
	.fsync = ff_fsync,
	.opendir = ff_opendir,
	.readdir = ff_readdir,
	.releasedir = ff_releasedir,
	.fsyncdir = ff_fsyncdir,
	.statfs = ff_statfs,
	.setxattr = ff_setxattr,
	.getxattr = ff_getxattr,
	.listxattr = ff_listxattr,
	.removexattr = ff_removexattr,
	.access = ff_access,
	.create = ff_create,
	.flock = ff_flock,
	.fallocate = ff_fallocate,
	.copy_file_range = ff_copy_file_range,
	.lseek = ff_lseek,
};
