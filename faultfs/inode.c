/* The inode table: which backing objects the kernel knows, by (dev, ino),
 * and where each was last seen, so a request on an inode number can be
 * matched against path rules.
 *
 * The kernel's inode number is the address of our struct (as in libfuse's
 * passthrough_ll), so mapping it back costs nothing.  An inode lives while
 * the kernel holds lookups on it or a child still names it as its parent. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultfs_i.h"

#define INITIAL_BUCKETS 1024

static size_t hash_key(dev_t dev, ino_t ino, size_t nbuckets)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t)dev;

	return (size_t)(h ^ (h >> 29)) & (nbuckets - 1);
}

int ff_itable_init(struct ff_itable *t, const char *backing)
{
	struct stat st;

	memset(t, 0, sizeof(*t));
	t->root.fd = open(backing, O_PATH | O_DIRECTORY);
	if (t->root.fd < 0)
		return -errno;
	if (fstat(t->root.fd, &st) < 0) {
		int e = errno;

		close(t->root.fd);
		return -e;
	}
	t->root.dev = st.st_dev;
	t->root.ino = st.st_ino;
	t->root.type = S_IFDIR;
	t->root.nlookup = 2;
	t->nbuckets = INITIAL_BUCKETS;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		close(t->root.fd);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

static void bury(struct ff_inode *dead);

void ff_itable_destroy(struct ff_itable *t)
{
	/* Each bucket is a list chained by hnext, as bury() takes. */
	for (size_t i = 0; i < t->nbuckets; i++)
		bury(t->buckets[i]);
	free(t->buckets);
	if (t->root.fd >= 0)
		close(t->root.fd);
	pthread_mutex_destroy(&t->lock);
}

struct ff_inode *ff_ino(struct ff_itable *t, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &t->root;
	return (struct ff_inode *)(uintptr_t)ino;
}

fuse_ino_t ff_ino_id(struct ff_itable *t, struct ff_inode *in)
{
	return in == &t->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)in;
}

/* Doubles the bucket array when the table gets crowded; lock held. */
static void grow(struct ff_itable *t)
{
	size_t n = t->nbuckets * 2;
	struct ff_inode **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return; /* Longer chains are slower, not wrong. */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct ff_inode *in = t->buckets[i];

		while (in != NULL) {
			struct ff_inode *next = in->hnext;
			size_t h = hash_key(in->dev, in->ino, n);

			in->hnext = b[h];
			b[h] = in;
			in = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/* Points in->parent/name at a new place; lock held.  Takes a reference on
 * the new parent before dropping the old one, so moving within one
 * directory never frees it. */
static int set_place(struct ff_inode *in, struct ff_inode *parent, const char *name);
static struct ff_inode *unref(struct ff_itable *t, struct ff_inode *in, struct ff_inode *dead);

struct ff_inode *ff_itable_get(struct ff_itable *t, struct ff_inode *parent, const char *name,
                               int fd, const struct stat *st)
{
	struct ff_inode *in;
	size_t h;

	pthread_mutex_lock(&t->lock);
	/* A bind mount in the backing tree can lead back to the root; it gets
	 * an inode of its own (the root is never in the buckets), because the
	 * kernel refuses a lookup that answers with the root (EIO). */
	h = hash_key(st->st_dev, st->st_ino, t->nbuckets);
	for (in = t->buckets[h]; in != NULL; in = in->hnext)
		if (in->dev == st->st_dev && in->ino == st->st_ino)
			break;
	if (in != NULL) {
		struct ff_inode *dead = NULL;

		in->nlookup++;
		/* Remember the most recent name: for hard links and renames made
		 * behind our back, it is the one the caller is using. */
		if (in->parent != parent || strcmp(in->name, name) != 0) {
			struct ff_inode *was = in->parent;

			if (set_place(in, parent, name) == 0)
				dead = unref(t, was, dead);
		}
		pthread_mutex_unlock(&t->lock);
		bury(dead);
		close(fd);
		return in;
	}
	in = calloc(1, sizeof(*in));
	if (in == NULL || set_place(in, parent, name) < 0) {
		pthread_mutex_unlock(&t->lock);
		free(in);
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	in->fd = fd;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->type = st->st_mode & S_IFMT;
	in->nlookup = 1;
	in->hnext = t->buckets[h];
	t->buckets[h] = in;
	if (++t->count > t->nbuckets)
		grow(t);
	pthread_mutex_unlock(&t->lock);
	return in;
}

static int set_place(struct ff_inode *in, struct ff_inode *parent, const char *name)
{
	char *copy = strdup(name);
	struct ff_inode *old = in->parent;

	if (copy == NULL)
		return -1;
	parent->refs++;
	in->parent = parent;
	free(in->name);
	in->name = copy;
	if (old != NULL)
		old->refs--;
	/* The old parent may now be unreferenced; it is freed at its next
	 * forget, or here if the kernel already let go of it. */
	return 0;
}

/* Takes in out of the table if nothing references it any more, then walks
 * up; lock held.  What it takes out goes on the front of the list dead
 * (chained by hnext), for bury() once the lock is released: closing the
 * last descriptor of an unlinked file frees it on the backing file system
 * before close() returns, and every other request that needs the table
 * (lookups, and with rules every path) would wait for that. */
static struct ff_inode *unref(struct ff_itable *t, struct ff_inode *in, struct ff_inode *dead)
{
	while (in != NULL && in != &t->root && in->nlookup == 0 && in->refs == 0) {
		struct ff_inode *parent = in->parent;
		struct ff_inode **pp = &t->buckets[hash_key(in->dev, in->ino, t->nbuckets)];

		while (*pp != in)
			pp = &(*pp)->hnext;
		*pp = in->hnext;
		t->count--;
		in->hnext = dead;
		dead = in;
		if (parent != NULL)
			parent->refs--;
		in = parent;
	}
	return dead;
}

/* Closes and frees what unref() took out; lock not held. */
static void bury(struct ff_inode *dead)
{
	while (dead != NULL) {
		struct ff_inode *next = dead->hnext;

		close(dead->fd);
		free(dead->name);
		free(dead);
		dead = next;
	}
}

void ff_itable_forget(struct ff_itable *t, struct ff_inode *in, uint64_t n)
{
	struct ff_inode *dead;

	pthread_mutex_lock(&t->lock);
	in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
	dead = unref(t, in, NULL);
	pthread_mutex_unlock(&t->lock);
	bury(dead);
}

void ff_itable_hold(struct ff_itable *t, struct ff_inode *in)
{
	pthread_mutex_lock(&t->lock);
	in->refs++;
	pthread_mutex_unlock(&t->lock);
}

void ff_itable_drop(struct ff_itable *t, struct ff_inode *in)
{
	struct ff_inode *dead;

	pthread_mutex_lock(&t->lock);
	in->refs--;
	dead = unref(t, in, NULL);
	pthread_mutex_unlock(&t->lock);
	bury(dead);
}

void ff_itable_moved(struct ff_itable *t, struct ff_inode *oldparent, const char *oldname,
                     struct ff_inode *newparent, const char *newname)
{
	struct stat st;
	struct ff_inode *in, *dead = NULL;

	/* The kernel tells us names, not inodes; find the moved object by
	 * what now stands at the new name. */
	if (fstatat(newparent->fd, newname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	pthread_mutex_lock(&t->lock);
	for (in = t->buckets[hash_key(st.st_dev, st.st_ino, t->nbuckets)]; in != NULL; in = in->hnext)
		if (in->dev == st.st_dev && in->ino == st.st_ino)
			break;
	if (in != NULL && in->parent == oldparent && strcmp(in->name, oldname) == 0) {
		struct ff_inode *was = in->parent;

		if (set_place(in, newparent, newname) == 0)
			dead = unref(t, was, dead);
	}
	pthread_mutex_unlock(&t->lock);
	bury(dead);
}

int ff_itable_path(struct ff_itable *t, struct ff_inode *in, const char *name, char *buf, size_t len)
{
	size_t pos = len;
	int rc = 0;

	if (len == 0)
		return -1;
	buf[--pos] = '\0';
	/* Build from the leaf up, at the end of buf, then move to the front. */
	if (name != NULL) {
		size_t n = strlen(name);

		if (n + 1 > pos)
			return -1;
		pos -= n;
		memcpy(buf + pos, name, n);
		if (in != &t->root)
			buf[--pos] = '/';
	}
	pthread_mutex_lock(&t->lock);
	while (in != &t->root && in != NULL) {
		size_t n = strlen(in->name);

		if (n + 1 > pos) {
			rc = -1;
			break;
		}
		pos -= n;
		memcpy(buf + pos, in->name, n);
		in = in->parent;
		if (in != &t->root)
			buf[--pos] = '/';
	}
	pthread_mutex_unlock(&t->lock);
	if (rc == 0)
		memmove(buf, buf + pos, len - pos);
	return rc;
}

int ff_itable_parent(struct ff_itable *t, struct ff_inode *in, char *name, size_t len)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&t->lock);
	if (in->parent != NULL && strlen(in->name) < len) {
		strcpy(name, in->name);
		fd = fcntl(in->parent->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&t->lock);
	return fd;
}

/* Fills *out with the root (when dir is NULL) and every inode whose parent
 * is dir, or every inode when all is set; lock held by the caller. */
static ssize_t snapshot(struct ff_itable *t, struct ff_inode *dir, bool all, struct ff_inval **out)
{
	struct ff_inval *v = calloc(t->count + 1, sizeof(*v));
	size_t n = 0;

	if (v == NULL)
		return -1;
	if (all)
		v[n++] = (struct ff_inval){ .ino = FUSE_ROOT_ID };
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct ff_inode *in = t->buckets[i]; in != NULL; in = in->hnext) {
			if (!all && in->parent != dir)
				continue;
			v[n].ino = (fuse_ino_t)(uintptr_t)in;
			v[n].parent = ff_ino_id(t, in->parent);
			v[n].name = strdup(in->name);
			n++;
		}
	}
	*out = v;
	return (ssize_t)n;
}

ssize_t ff_itable_snapshot(struct ff_itable *t, struct ff_inval **out)
{
	ssize_t n;

	pthread_mutex_lock(&t->lock);
	n = snapshot(t, NULL, true, out);
	pthread_mutex_unlock(&t->lock);
	return n;
}

ssize_t ff_itable_snapshot_children(struct ff_itable *t, struct ff_inode *dir, struct ff_inval **out)
{
	ssize_t n;

	pthread_mutex_lock(&t->lock);
	n = snapshot(t, dir, false, out);
	pthread_mutex_unlock(&t->lock);
	return n;
}
