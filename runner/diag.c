/* Path diagnostics; see diag.h.  The hint rules turn the common failures of
 * the field reports into plain words: noexec mounts, directories someone
 * else owns, full or read-only filesystems and busy mountpoints. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "diag.h"
#include "errnames.h"

void diag_options_init(struct diag_options *o)
{
	memset(o, 0, sizeof(*o));
	o->uid = geteuid();
	o->gid = getegid();
}

void diag_report_free(struct diag_report *r)
{
	if (!r)
		return;
	free(r->op);
	free(r->path);
	free(r->examined);
	free(r->owner);
	free(r->group);
	free(r->mount_point);
	free(r->fs_type);
	free(r->source);
	free(r->mount_options);
	free(r->super_options);
	free(r->hint);
	memset(r, 0, sizeof(*r));
}

static char *user_name(uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096], *s;

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		return strdup(res->pw_name);
	if (asprintf(&s, "%u", (unsigned int)uid) < 0)
		return NULL;
	return s;
}

static char *group_name(gid_t gid)
{
	struct group gr, *res = NULL;
	char buf[4096], *s;

	if (getgrgid_r(gid, &gr, buf, sizeof(buf), &res) == 0 && res)
		return strdup(res->gr_name);
	if (asprintf(&s, "%u", (unsigned int)gid) < 0)
		return NULL;
	return s;
}

/* The path itself if lstat works, else its nearest existing parent, found
 * lexically ("a/b/c" -> "a/b" -> "a" -> "."). */
static char *nearest_existing(const char *path, struct stat *st)
{
	char *p = strdup(path);

	if (!p)
		return NULL;
	for (;;) {
		if (lstat(p, st) == 0)
			return p;
		char *slash = strrchr(p, '/');
		while (slash && slash > p && slash[1] == '\0') {
			*slash = '\0';
			slash = strrchr(p, '/');
		}
		if (!slash) {
			free(p);
			p = strdup(".");
		} else if (slash == p) {
			p[1] = '\0';
		} else {
			*slash = '\0';
		}
		if (!p)
			return NULL;
		if ((strcmp(p, ".") == 0 || strcmp(p, "/") == 0) && lstat(p, st) != 0) {
			free(p);
			return NULL;
		}
	}
}

/* Whether uid/gid may create entries in a directory with this stat: write
 * and search permission, the way the kernel checks it (root bypasses). */
static bool may_write_dir(const struct stat *st, uid_t uid, gid_t gid)
{
	mode_t need_u = S_IWUSR | S_IXUSR, need_g = S_IWGRP | S_IXGRP,
	       need_o = S_IWOTH | S_IXOTH;

	if (uid == 0)
		return true;
	if (st->st_uid == uid)
		return (st->st_mode & need_u) == need_u;
	if (st->st_gid == gid)
		return (st->st_mode & need_g) == need_g;
	return (st->st_mode & need_o) == need_o;
}

/* Whether uid/gid may search (walk through) a directory with this stat. */
static bool may_search_dir(const struct stat *st, uid_t uid, gid_t gid)
{
	if (uid == 0)
		return true;
	if (st->st_uid == uid)
		return st->st_mode & S_IXUSR;
	if (st->st_gid == gid)
		return st->st_mode & S_IXGRP;
	return st->st_mode & S_IXOTH;
}

/* The first directory on the way to path, from the root down, that uid/gid
 * cannot search (the kernel refuses the walk there, before the path's own
 * mode counts): a pyenv shim under /root (0700) run as nobody.  Relative
 * paths are walked from the working directory.  Returns a malloc'd path
 * with its stat in *st, or NULL. */
static char *unsearchable_parent(const char *path, uid_t uid, gid_t gid, struct stat *st)
{
	char *p, *slash;

	if (uid == 0 || (p = strdup(path)) == NULL)
		return NULL;
	for (slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (slash > p && slash[-1] != '/' && stat(p, st) == 0 && S_ISDIR(st->st_mode) &&
		    !may_search_dir(st, uid, gid))
			return p;
		*slash = '/';
	}
	free(p);
	return NULL;
}

static bool is_exec_op(const char *op)
{
	return strcmp(op, "exec") == 0 || strcmp(op, "execve") == 0 ||
	       strcmp(op, "run") == 0;
}

static int __attribute__((format(printf, 2, 3)))
append(char **s, const char *fmt, ...)
{
	char *add, *n;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&add, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -ENOMEM;
	if (!*s) {
		*s = add;
		return 0;
	}
	rc = asprintf(&n, "%s; %s", *s, add);
	free(add);
	if (rc < 0)
		return -ENOMEM;
	free(*s);
	*s = n;
	return 0;
}

static int noexec_hint(struct diag_report *r)
{
	return append(&r->hint, "%s is on a noexec mount (%s); interpreter mode is "
		      "unaffected, direct mode cannot work here",
		      r->path, r->mount_point);
}

static int make_hint(struct diag_report *r, const struct diag_options *o)
{
	bool noexec = r->have_mount && (r->mount_flags & MOUNT_F_NOEXEC);
	bool ro = r->have_mount && (r->mount_flags & MOUNT_F_RO);
	bool self = r->examined && strcmp(r->examined, r->path) == 0;
	bool said_noexec = false;
	char *blocker;
	struct stat bst;
	int rc = 0;

	switch (r->err) {
	case 0:
		break;
	case ENOSPC:
		rc = append(&r->hint, "filesystem is full%s%s", r->have_mount ? ": " : "",
			    r->have_mount ? r->mount_point : "");
		break;
	case EDQUOT:
		rc = append(&r->hint, "disk quota of uid %u exceeded", (unsigned int)o->uid);
		break;
	case EROFS:
		rc = append(&r->hint, "read-only filesystem%s%s", r->have_mount ?
			    ": mounted ro at " : "", r->have_mount ? r->mount_point : "");
		break;
	case EBUSY:
		if (self && r->is_mountpoint)
			rc = append(&r->hint, "directory is a mountpoint (EBUSY): "
				    "empty it in place instead of removing it");
		else
			rc = append(&r->hint, "in use by a process or a mount (EBUSY)");
		break;
	case EACCES:
	case EPERM:
		blocker = r->err == EACCES ? unsearchable_parent(r->path, o->uid, o->gid, &bst) : NULL;
		if (blocker) {
			rc = append(&r->hint, "%s cannot be searched by uid %u (mode %04o owner "
				    "%u:%u): nothing under it is reachable for that user",
				    blocker, (unsigned int)o->uid, (unsigned int)(bst.st_mode & 07777),
				    (unsigned int)bst.st_uid, (unsigned int)bst.st_gid);
			free(blocker);
		} else if (ro) {
			rc = append(&r->hint, "read-only filesystem: mounted ro at %s",
				    r->mount_point);
		} else if (is_exec_op(r->op) && noexec) {
			rc = noexec_hint(r);
			said_noexec = true;
		} else if (is_exec_op(r->op) && r->have_stat && S_ISREG(r->mode) &&
			   !(r->mode & 0111)) {
			rc = append(&r->hint, "%s has no execute bit (mode %04o); run it "
				    "through its interpreter", r->path,
				    (unsigned int)(r->mode & 07777));
		} else if (is_exec_op(r->op) && r->have_stat && S_ISREG(r->mode) && self) {
			/* Mode and mount allow it, yet exec is refused: a FUSE
			 * filesystem's own policy, an LSM or an ACL. */
			rc = append(&r->hint, "exec refused although %s has execute bits "
				    "and its mount allows exec (filesystem policy, LSM or "
				    "ACL)%s", r->path, o->runner_dir ?
				    "; interpreter mode is unaffected, direct mode cannot "
				    "work here" : "");
			said_noexec = true;
		} else if (r->have_stat && S_ISDIR(r->mode) &&
			   !may_write_dir(&(struct stat){ .st_mode = r->mode,
							  .st_uid = r->uid,
							  .st_gid = r->gid },
					  o->uid, o->gid)) {
			rc = append(&r->hint, "directory not writable by uid %u (mode %04o "
				    "owner %s)", (unsigned int)o->uid,
				    (unsigned int)(r->mode & 07777), r->owner);
		} else if (r->err == EPERM && r->have_stat && S_ISDIR(r->mode) &&
			   (r->mode & S_ISVTX)) {
			rc = append(&r->hint, "sticky directory: only the owner may "
				    "remove or rename its entries");
		} else if (r->have_stat) {
			rc = append(&r->hint, "permission denied for uid %u (mode %04o owner "
				    "%s:%s)", (unsigned int)o->uid,
				    (unsigned int)(r->mode & 07777), r->owner, r->group);
		}
		break;
	case ENOENT:
		if (!self && r->examined)
			rc = append(&r->hint, "does not exist; nearest existing parent is %s",
				    r->examined);
		break;
	case ENOTDIR:
		rc = append(&r->hint, "a component of the path is not a directory");
		break;
	case ELOOP:
		rc = append(&r->hint, "a symlink where none is allowed, or a symlink loop");
		break;
	case EXDEV:
		rc = append(&r->hint, "source and target are on different mounts");
		break;
	case EIO:
		rc = append(&r->hint, "I/O error from the filesystem%s%s%s%s",
			    r->have_mount ? " (" : "", r->have_mount ? r->fs_type : "",
			    r->have_mount ? " at " : "", r->have_mount ? r->mount_point : "");
		if (rc == 0 && r->have_mount)
			rc = append(&r->hint, "check the device or the FUSE daemon");
		break;
	default:
		break;
	}
	if (rc == 0 && o->runner_dir && noexec && !said_noexec)
		rc = noexec_hint(r);
	return rc;
}

int diag_path(const char *op, const char *path, int err,
	      const struct diag_options *opt, struct diag_report *r)
{
	struct diag_options defaults;
	struct mount_table own = { NULL, 0 };
	const struct mount_table *mt;
	const struct mount_entry *me = NULL;
	struct stat st;
	int rc = -ENOMEM;

	memset(r, 0, sizeof(*r));
	if (!opt) {
		diag_options_init(&defaults);
		opt = &defaults;
	}
	r->err = err < 0 ? -err : err;
	r->op = strdup(op ? op : "access");
	r->path = strdup(path ? path : "");
	if (!r->op || !r->path)
		goto out_free;

	r->examined = nearest_existing(r->path[0] ? r->path : ".", &st);
	if (r->examined) {
		r->have_stat = true;
		r->uid = st.st_uid;
		r->gid = st.st_gid;
		r->mode = st.st_mode;
		r->owner = user_name(st.st_uid);
		r->group = group_name(st.st_gid);
		if (!r->owner || !r->group)
			goto out_free;
	}

	mt = opt->mounts;
	if (!mt) {
		/* Without mountinfo the report is thinner, not an error. */
		if (mount_table_load(opt->mountinfo_path, &own, NULL, 0) == 0)
			mt = &own;
	}
	if (mt && r->examined) {
		char *canon = realpath(r->examined, NULL);

		me = mount_table_find(mt, r->examined);
		if (me && canon && strcmp(canon, me->mount_point) == 0)
			r->is_mountpoint = true;
		free(canon);
	}
	if (me) {
		r->have_mount = true;
		r->mount_flags = me->flags;
		r->mount_point = strdup(me->mount_point);
		r->fs_type = strdup(me->fs_type);
		r->source = strdup(me->source);
		r->mount_options = strdup(me->mount_options);
		r->super_options = strdup(me->super_options);
		if (!r->mount_point || !r->fs_type || !r->source ||
		    !r->mount_options || !r->super_options)
			goto out_free;
	}
	if (make_hint(r, opt) < 0)
		goto out_free;
	rc = 0;
	goto out;

out_free:
	diag_report_free(r);
out:
	mount_table_free(&own);
	return rc;
}

char *diag_format_line(const struct diag_report *r)
{
	char *s = NULL;
	int rc;

	if (r->err) {
		const char *name = errno_name(r->err);

		rc = asprintf(&s, "%s %s: %s%s%s%s", r->op, r->path, strerror(r->err),
			      name ? " (" : "", name ? name : "", name ? ")" : "");
	} else {
		rc = asprintf(&s, "%s %s", r->op, r->path);
	}
	if (rc < 0)
		return NULL;
	if (r->have_stat &&
	    append(&s, "%s: owner %s:%s mode %04o", r->examined, r->owner, r->group,
		   (unsigned int)(r->mode & 07777)) < 0)
		goto fail;
	if (r->have_mount &&
	    append(&s, "mount %s (%s, %s)", r->mount_point, r->fs_type,
		   r->mount_options) < 0)
		goto fail;
	if (r->hint && append(&s, "hint: %s", r->hint) < 0)
		goto fail;
	return s;
fail:
	free(s);
	return NULL;
}

static const char *file_type(mode_t m)
{
	if (S_ISDIR(m))
		return "directory";
	if (S_ISREG(m))
		return "file";
	if (S_ISLNK(m))
		return "symlink";
	if (S_ISFIFO(m))
		return "fifo";
	if (S_ISSOCK(m))
		return "socket";
	return "device";
}

json_t *diag_report_to_json(const struct diag_report *r)
{
	json_t *o, *mount = json_null();
	char mode[8];

	if (r->have_mount) {
		mount = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b}",
				  "point", r->mount_point, "fs_type", r->fs_type,
				  "source", r->source, "options", r->mount_options,
				  "super_options", r->super_options,
				  "noexec", !!(r->mount_flags & MOUNT_F_NOEXEC),
				  "ro", !!(r->mount_flags & MOUNT_F_RO),
				  "nosuid", !!(r->mount_flags & MOUNT_F_NOSUID),
				  "nodev", !!(r->mount_flags & MOUNT_F_NODEV));
		if (!mount)
			return NULL;
	}
	snprintf(mode, sizeof(mode), "%04o", (unsigned int)(r->mode & 07777));
	o = json_pack("{s:s, s:s, s:i, s:o, s:o, s:o, s:o}",
		      "op", r->op, "path", r->path, "errno", r->err,
		      "error", r->err ? json_string(strerror(r->err)) : json_null(),
		      "errno_name", r->err && errno_name(r->err) ?
				json_string(errno_name(r->err)) : json_null(),
		      "mount", mount,
		      "hint", r->hint ? json_string(r->hint) : json_null());
	if (!o)
		return NULL;
	if (r->have_stat) {
		json_t *st = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:b}",
				       "examined", r->examined, "owner", r->owner,
				       "group", r->group, "uid", (json_int_t)r->uid,
				       "gid", (json_int_t)r->gid, "mode", mode,
				       "type", file_type(r->mode),
				       "is_mountpoint", r->is_mountpoint);

		if (!st || json_object_update(o, st) < 0) {
			json_decref(st);
			json_decref(o);
			return NULL;
		}
		json_decref(st);
	}
	return o;
}

char *diag_line(const char *op, const char *path, int err)
{
	struct diag_report r;
	char *s;

	if (diag_path(op, path, err, NULL, &r) < 0)
		return NULL;
	s = diag_format_line(&r);
	diag_report_free(&r);
	return s;
}
