/* Container detection; see detect.h.  The checks follow systemd's
 * detect_container() (src/basic/virt.c) in its order, reading each file
 * under a root directory, and add Kubernetes, which systemd does not know. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "detect.h"
#include "detect_i.h"
#include "errnames.h"

/* Files are read through openat2(RESOLVE_IN_ROOT) so that a crafted root
 * behaves like a chroot: an absolute symlink inside it cannot reach the
 * host's own markers (this build machine carries /.dockerenv itself). */
struct droot {
	int fd;
	const char *name;   /* the root as given, for messages */
};

/* Resolves abs inside the root the way RESOLVE_IN_ROOT does, for kernels
 * older than 5.6 and for valgrind, which know no openat2: ".." stops at the
 * root and an absolute symlink target starts again from it.  Returns 0 with
 * a malloc'd path relative to the root ("." for the root itself), or -errno. */
int detect_resolve_in_root(int rootfd, const char *abs, bool follow_last, char **out)
{
	char *todo = strdup(abs), *done = strdup(""), target[PATH_MAX];
	int links = 0, rc = 0;

	*out = NULL;
	if (!todo || !done) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		char *p = todo, *comp, *rest, *cand;
		size_t cl;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		cl = strcspn(p, "/");
		comp = strndup(p, cl);
		rest = strdup(p + cl);
		if (!comp || !rest) {
			free(comp);
			free(rest);
			rc = -ENOMEM;
			goto out;
		}
		free(todo);
		todo = rest;
		if (strcmp(comp, ".") == 0) {
			free(comp);
			continue;
		}
		if (strcmp(comp, "..") == 0) {
			char *slash = strrchr(done, '/');

			if (slash)
				*slash = '\0';
			else
				done[0] = '\0';
			free(comp);
			continue;
		}
		if (asprintf(&cand, "%s%s%s", done, *done ? "/" : "", comp) < 0) {
			free(comp);
			rc = -ENOMEM;
			goto out;
		}
		free(comp);
		free(done);
		done = cand;
		if (!follow_last && todo[strspn(todo, "/")] == '\0')
			break;
		ssize_t n = readlinkat(rootfd, done, target, sizeof(target) - 1);
		if (n < 0) {
			/* Not a link, or missing: the open reports what is. */
			if (errno == EINVAL || errno == ENOENT)
				continue;
			rc = -errno;
			goto out;
		}
		if (++links > 40) {
			rc = -ELOOP;
			goto out;
		}
		target[n] = '\0';
		if (target[0] == '/') {
			done[0] = '\0';
		} else {
			char *slash = strrchr(done, '/');

			if (slash)
				*slash = '\0';
			else
				done[0] = '\0';
		}
		if (asprintf(&rest, "%s/%s", target, todo) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		free(todo);
		todo = rest;
	}
	if (!*done) {
		free(done);
		done = strdup(".");
		if (!done) {
			rc = -ENOMEM;
			goto out;
		}
	}
	*out = done;
	done = NULL;
out:
	free(todo);
	free(done);
	return rc;
}

static int root_openat(const struct droot *r, const char *abs, int flags)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT,
	};
	const char *rel = abs;
	char *resolved;
	int fd, rc;

	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	fd = (int)syscall(SYS_openat2, r->fd, rel, &how, sizeof(how));
	if (fd >= 0)
		return fd;
	if (errno != ENOSYS)
		return -errno;
	rc = detect_resolve_in_root(r->fd, abs, !(flags & O_NOFOLLOW), &resolved);
	if (rc < 0)
		return rc;
	/* Every link is resolved already; following one now would mean the
	 * tree changed under us, and could leave the root. */
	fd = openat(r->fd, resolved, flags | O_CLOEXEC | O_NOFOLLOW);
	rc = fd < 0 ? -errno : fd;
	free(resolved);
	return rc;
}

/* Reads up to max bytes of the file at abs; returns the length or -errno.
 * *out is NUL terminated (the content may hold NULs of its own). */
static ssize_t root_read(const struct droot *r, const char *abs, size_t max,
			 char **out)
{
	char *buf;
	size_t len = 0;
	int fd;

	*out = NULL;
	fd = root_openat(r, abs, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	/* A FIFO or device put where a file belongs must not block us. */
	{
		struct stat st;

		if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			close(fd);
			return -EINVAL;
		}
	}
	buf = malloc(max + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < max) {
		ssize_t n = read(fd, buf + len, max - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	return (ssize_t)len;
}

/* 1 if abs exists, 0 if not (ENOENT or ENOTDIR), -errno otherwise. */
static int root_exists(const struct droot *r, const char *abs)
{
	int fd = root_openat(r, abs, O_PATH | O_NOFOLLOW);

	if (fd >= 0) {
		close(fd);
		return 1;
	}
	/* A dangling symlink: O_NOFOLLOW on a symlink with O_PATH opens the
	 * link itself, so getting here means the path is really missing. */
	if (fd == -ENOENT || fd == -ENOTDIR)
		return 0;
	return fd;
}

/* The target of the symlink at abs, or for a regular file its first line
 * (crafted roots may hold either).  Returns 0, or -errno. */
static int root_readlink(const struct droot *r, const char *abs, char **out)
{
	char *dir, *slash, buf[256];
	const char *base;
	int dfd;
	ssize_t n;

	*out = NULL;
	dir = strdup(abs);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	base = slash ? slash + 1 : dir;
	if (slash)
		*slash = '\0';
	dfd = root_openat(r, slash ? (*dir ? dir : "/") : "/", O_PATH | O_DIRECTORY);
	if (dfd < 0) {
		free(dir);
		return dfd;
	}
	n = readlinkat(dfd, base, buf, sizeof(buf) - 1);
	if (n < 0 && errno == EINVAL) {
		/* Not a symlink: a crafted root's regular file. */
		char *content = NULL;
		ssize_t len = root_read(r, abs, 255, &content);

		close(dfd);
		free(dir);
		if (len < 0)
			return (int)len;
		content[strcspn(content, "\n")] = '\0';
		*out = content;
		return 0;
	}
	close(dfd);
	free(dir);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*out = strdup(buf);
	return *out ? 0 : -ENOMEM;
}

static const char *const kind_names[] = {
	[CONTAINER_NONE] = "none",
	[CONTAINER_DOCKER] = "docker",
	[CONTAINER_PODMAN] = "podman",
	[CONTAINER_LXC] = "lxc",
	[CONTAINER_SYSTEMD_NSPAWN] = "systemd-nspawn",
	[CONTAINER_KUBERNETES] = "kubernetes",
	[CONTAINER_WSL] = "wsl",
	[CONTAINER_OPENVZ] = "openvz",
	[CONTAINER_OTHER] = "container-other",
};

const char *container_kind_name(enum container_kind k)
{
	if ((unsigned int)k >= sizeof(kind_names) / sizeof(kind_names[0]))
		return "container-other";
	return kind_names[k];
}

int container_kind_from_name(const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (strcmp(s, kind_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

enum container_kind container_kind_from_value(const char *v)
{
	/* systemd's container_from_string() table; lxc-libvirt is a kind of
	 * its own there, and an lxc container for our purposes.  "rkt",
	 * "proot", "pouch", "oci" and anything unknown are some container
	 * all the same.  "kubernetes" is our own extension. */
	static const struct {
		const char *v;
		enum container_kind k;
	} map[] = {
		{ "docker", CONTAINER_DOCKER },
		{ "podman", CONTAINER_PODMAN },
		{ "lxc", CONTAINER_LXC },
		{ "lxc-libvirt", CONTAINER_LXC },
		{ "systemd-nspawn", CONTAINER_SYSTEMD_NSPAWN },
		{ "wsl", CONTAINER_WSL },
		{ "openvz", CONTAINER_OPENVZ },
		{ "kubernetes", CONTAINER_KUBERNETES },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(v, map[i].v) == 0)
			return map[i].k;
	return CONTAINER_OTHER;
}

void detect_input_init(struct detect_input *in, const char *root,
		       char *const *env)
{
	memset(in, 0, sizeof(*in));
	in->root = root;
	in->env = env;
	in->env_is_pid1 = getpid() == 1 && (!root || !*root || strcmp(root, "/") == 0);
}

void detect_result_free(struct detect_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_evidence; i++) {
		free(r->evidence[i].source);
		free(r->evidence[i].text);
	}
	free(r->evidence);
	memset(r, 0, sizeof(*r));
	r->decided_by = -1;
}

/* Appends one finding; returns its index or -ENOMEM. */
static int __attribute__((format(printf, 4, 5)))
add_ev(struct detect_result *r, int kind, const char *source,
       const char *fmt, ...)
{
	struct detect_evidence *ne;
	char *text;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	ne = realloc(r->evidence, (r->n_evidence + 1) * sizeof(*ne));
	if (!ne) {
		free(text);
		return -ENOMEM;
	}
	r->evidence = ne;
	ne[r->n_evidence].source = strdup(source);
	if (!ne[r->n_evidence].source) {
		free(text);
		return -ENOMEM;
	}
	ne[r->n_evidence].text = text;
	ne[r->n_evidence].kind = kind;
	return (int)r->n_evidence++;
}

/* "Permission denied (EACCES)": the text for people, the name for grep. */
static int add_unreadable(struct detect_result *r, const char *source, int err)
{
	const char *name = errno_name(err);

	return add_ev(r, -1, source, "cannot read %s: %s%s%s%s", source,
		      strerror(err), name ? " (" : "", name ? name : "",
		      name ? ")" : "");
}

/* The first decision in systemd's order stands; later ones are evidence. */
static void decide(struct detect_result *r, int idx, enum container_kind k)
{
	if (r->decided_by < 0) {
		r->decided_by = idx;
		r->kind = k;
	}
}

static const char *env_get(char *const *env, const char *name)
{
	size_t nl = strlen(name);

	for (; env && *env; env++)
		if (strncmp(*env, name, nl) == 0 && (*env)[nl] == '=')
			return *env + nl + 1;
	return NULL;
}

/* Strips trailing newlines and blanks, as read_one_line_file() does. */
static void chomp(char *s)
{
	size_t l = strlen(s);

	while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == ' ' || s[l - 1] == '\t' ||
			 s[l - 1] == '\r'))
		s[--l] = '\0';
}

/* The marker files that refine "oci"; -1 when neither exists. */
struct markers {
	int containerenv;   /* root_exists results */
	int dockerenv;
};

static enum container_kind translate(const char *value, const struct markers *m)
{
	if (strcmp(value, "oci") == 0) {
		/* Some images hard-code container=oci, which names no
		 * manager; systemd then looks at the marker files. */
		if (m->containerenv == 1)
			return CONTAINER_PODMAN;
		if (m->dockerenv == 1)
			return CONTAINER_DOCKER;
		return CONTAINER_OTHER;
	}
	return container_kind_from_value(value);
}

/* A check that reads one line naming a manager. */
static int check_value_file(const struct droot *root, struct detect_result *r,
			    const char *path, const struct markers *m)
{
	char *content = NULL;
	ssize_t n = root_read(root, path, 4096, &content);
	int idx, rc = 0;

	if (n == -ENOENT || n == -ENOTDIR)
		return 0;
	if (n == -ENOMEM)
		return -ENOMEM;
	if (n < 0)
		return add_unreadable(r, path, (int)-n) < 0 ? -ENOMEM : 0;
	content[strcspn(content, "\n")] = '\0';
	chomp(content);
	if (!*content) {
		/* systemd ignores an empty file and goes on. */
		rc = add_ev(r, -1, path, "empty, ignored");
		goto out;
	}
	enum container_kind k = translate(content, m);
	idx = add_ev(r, (int)k, path, "content '%s'", content);
	if (idx < 0) {
		rc = -ENOMEM;
		goto out;
	}
	decide(r, idx, k);
out:
	free(content);
	return rc < 0 ? rc : 0;
}

static int check_pid1_environ(const struct droot *root, struct detect_result *r,
			      const struct markers *m)
{
	const char *path = "/proc/1/environ";
	char *content = NULL;
	ssize_t n = root_read(root, path, 1 << 20, &content);
	int rc = 0;

	if (n == -ENOENT || n == -ENOTDIR)
		return 0;
	if (n == -ENOMEM)
		return -ENOMEM;
	if (n < 0)
		return add_unreadable(r, path, (int)-n) < 0 ? -ENOMEM : 0;
	/* NUL-separated "NAME=value" strings; the last one may lack its NUL
	 * when the file was truncated or crafted by hand. */
	for (size_t off = 0; off < (size_t)n;) {
		const char *s = content + off;
		size_t sl = strnlen(s, (size_t)n - off);

		if (strncmp(s, "container=", 10) == 0 && sl > 10) {
			char *v = strndup(s + 10, sl - 10);
			int idx;

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			enum container_kind k = translate(v, m);
			idx = add_ev(r, (int)k, path, "container=%s", v);
			free(v);
			if (idx < 0) {
				rc = -ENOMEM;
				break;
			}
			decide(r, idx, k);
			break;
		}
		off += sl + 1;
	}
	free(content);
	return rc;
}

static int check_cgroupns(const struct droot *root, struct detect_result *r)
{
	char *self = NULL, *pid1 = NULL;
	int rs, r1, rc = 0;

	rs = root_readlink(root, "/proc/self/ns/cgroup", &self);
	r1 = root_readlink(root, "/proc/1/ns/cgroup", &pid1);
	if (rs == -ENOMEM || r1 == -ENOMEM) {
		rc = -ENOMEM;
		goto out;
	}
	/* A missing link says nothing (old kernel, or a crafted root that
	 * leaves it out); an unreadable one is listed. */
	if (rs < 0 && rs != -ENOENT && rs != -ENOTDIR &&
	    add_unreadable(r, "/proc/self/ns/cgroup", -rs) < 0)
		rc = -ENOMEM;
	if (r1 < 0 && r1 != -ENOENT && r1 != -ENOTDIR &&
	    add_unreadable(r, "/proc/1/ns/cgroup", -r1) < 0)
		rc = -ENOMEM;
	if (rc == 0 && rs == 0 && r1 == 0 && strcmp(self, pid1) != 0) {
		int idx = add_ev(r, CONTAINER_OTHER, "/proc/self/ns/cgroup",
				 "private cgroup namespace: %s, PID 1 has %s", self, pid1);
		if (idx < 0)
			rc = -ENOMEM;
		else
			decide(r, idx, CONTAINER_OTHER);
	}
out:
	free(self);
	free(pid1);
	return rc;
}

static int check_kubernetes(const struct droot *root, struct detect_result *r,
			    char *const *env, int *found)
{
	static const char *const files[] = { "/proc/1/cgroup", "/proc/self/cgroup" };
	const char *host = env_get(env, "KUBERNETES_SERVICE_HOST");

	*found = -1;
	if (host) {
		int idx = add_ev(r, CONTAINER_KUBERNETES, "$KUBERNETES_SERVICE_HOST",
				 "set to '%s'", host);
		if (idx < 0)
			return -ENOMEM;
		*found = idx;
	}
	for (size_t i = 0; i < 2; i++) {
		char *content = NULL;
		ssize_t n = root_read(root, files[i], 1 << 16, &content);

		if (n == -ENOMEM)
			return -ENOMEM;
		if (n == -ENOENT || n == -ENOTDIR)
			continue;
		if (n < 0) {
			if (add_unreadable(r, files[i], (int)-n) < 0)
				return -ENOMEM;
			continue;
		}
		/* memmem, not strstr: the content may hold stray NULs. */
		if (memmem(content, (size_t)n, "kubepods", 8)) {
			int idx = add_ev(r, CONTAINER_KUBERNETES, files[i],
					 "mentions kubepods");
			if (idx < 0) {
				free(content);
				return -ENOMEM;
			}
			if (*found < 0)
				*found = idx;
		}
		free(content);
	}
	return 0;
}

static int check_exists(const struct droot *root, struct detect_result *r,
			const char *path, int *res)
{
	*res = root_exists(root, path);
	if (*res < 0 && *res != -ENOMEM)
		return add_unreadable(r, path, -*res) < 0 ? -ENOMEM : 0;
	return *res == -ENOMEM ? -ENOMEM : 0;
}

int detect_container(const struct detect_input *in, struct detect_result *r)
{
	struct droot root = { -1, in->root && *in->root ? in->root : "/" };
	struct markers m;
	int rc, ex, k8s = -1;

	memset(r, 0, sizeof(*r));
	r->kind = CONTAINER_NONE;
	r->decided_by = -1;

	root.fd = open(root.name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root.fd < 0) {
		/* A root we cannot open is evidence like any other file. */
		rc = add_unreadable(r, root.name, errno);
		if (rc < 0)
			goto out_nomem;
		goto override;
	}

	/* The file markers refine "oci" values met earlier, so look first;
	 * their evidence is listed in their own place in the order below. */
	m.containerenv = root_exists(&root, "/run/.containerenv");
	m.dockerenv = root_exists(&root, "/.dockerenv");

	/* 1. OpenVZ: /proc/vz exists in containers and on hosts, /proc/bc
	 * only on hosts. */
	if ((rc = check_exists(&root, r, "/proc/vz", &ex)) < 0)
		goto out_nomem;
	if (ex == 1) {
		int bc;

		if ((rc = check_exists(&root, r, "/proc/bc", &bc)) < 0)
			goto out_nomem;
		if (bc == 0) {
			int idx = add_ev(r, CONTAINER_OPENVZ, "/proc/vz",
					 "exists and /proc/bc does not");
			if (idx < 0)
				goto out_nomem;
			decide(r, idx, CONTAINER_OPENVZ);
		} else if (bc == 1 && add_ev(r, -1, "/proc/vz",
					     "exists, but so does /proc/bc: an OpenVZ host") < 0) {
			goto out_nomem;
		}
	}

	/* 2. WSL names itself in the kernel release. */
	{
		char *rel = NULL;
		ssize_t n = root_read(&root, "/proc/sys/kernel/osrelease", 4096, &rel);

		if (n == -ENOMEM)
			goto out_nomem;
		if (n >= 0) {
			chomp(rel);
			if (strstr(rel, "Microsoft") || strstr(rel, "WSL")) {
				int idx = add_ev(r, CONTAINER_WSL,
						 "/proc/sys/kernel/osrelease",
						 "content '%s'", rel);
				if (idx < 0) {
					free(rel);
					goto out_nomem;
				}
				decide(r, idx, CONTAINER_WSL);
			}
			free(rel);
		} else if (n != -ENOENT && n != -ENOTDIR &&
			   add_unreadable(r, "/proc/sys/kernel/osrelease", (int)-n) < 0) {
			goto out_nomem;
		}
	}

	/* 3. The manager may say who it is under /run/host. */
	if (check_value_file(&root, r, "/run/host/container-manager", &m) < 0)
		goto out_nomem;

	/* 4. $container, which only PID 1 is given.  systemd stops here with
	 * "none" when PID 1 lacks it; we are no init system and may be PID 1
	 * of a Docker container that sets no $container, so go on. */
	if (in->env_is_pid1) {
		const char *v = env_get(in->env, "container");

		if (v && *v) {
			enum container_kind k = translate(v, &m);
			int idx = add_ev(r, (int)k, "$container", "set to '%s' for PID 1", v);

			if (idx < 0)
				goto out_nomem;
			decide(r, idx, k);
		}
	}

	/* 5. systemd as PID 1 leaves $container here for everyone. */
	if (check_value_file(&root, r, "/run/systemd/container", &m) < 0)
		goto out_nomem;

	/* 6. Another init: read PID 1's environment (needs privilege). */
	if (check_pid1_environ(&root, r, &m) < 0)
		goto out_nomem;

	/* 7 and 8. The marker files Podman and Docker leave. */
	if (m.containerenv == 1) {
		int idx = add_ev(r, CONTAINER_PODMAN, "/run/.containerenv", "exists");
		if (idx < 0)
			goto out_nomem;
		decide(r, idx, CONTAINER_PODMAN);
	} else if (m.containerenv < 0 && m.containerenv != -ENOMEM &&
		   add_unreadable(r, "/run/.containerenv", -m.containerenv) < 0) {
		goto out_nomem;
	}
	if (m.dockerenv == 1) {
		int idx = add_ev(r, CONTAINER_DOCKER, "/.dockerenv", "exists");
		if (idx < 0)
			goto out_nomem;
		decide(r, idx, CONTAINER_DOCKER);
	} else if (m.dockerenv < 0 && m.dockerenv != -ENOMEM &&
		   add_unreadable(r, "/.dockerenv", -m.dockerenv) < 0) {
		goto out_nomem;
	}

	/* 9. A cgroup namespace of our own. */
	if (check_cgroupns(&root, r) < 0)
		goto out_nomem;

	/* Kubernetes runs pods on a runtime that leaves its own markers (or
	 * none visible); the orchestrator is the more useful answer then.  A
	 * manager that names itself (lxc, nspawn, WSL, OpenVZ) still wins. */
	if (check_kubernetes(&root, r, in->env, &k8s) < 0)
		goto out_nomem;
	if (k8s >= 0 && (r->kind == CONTAINER_NONE || r->kind == CONTAINER_DOCKER ||
			 r->kind == CONTAINER_PODMAN || r->kind == CONTAINER_OTHER)) {
		r->kind = CONTAINER_KUBERNETES;
		r->decided_by = k8s;
	}

override:
	rc = 0;
	if (in->override && *in->override) {
		int k = container_kind_from_name(in->override);

		if (k < 0) {
			if (add_ev(r, -1, "$RUNNER_CONTAINER",
				   "'%s' is not a kind, ignored", in->override) < 0)
				goto out_nomem;
			rc = -EINVAL;
		} else {
			if (add_ev(r, k, "$RUNNER_CONTAINER", "override to '%s'",
				   in->override) < 0)
				goto out_nomem;
			r->kind = (enum container_kind)k;
			r->decided_by = -1;
			r->overridden = true;
		}
	}
	if (root.fd >= 0)
		close(root.fd);
	return rc;

out_nomem:
	if (root.fd >= 0)
		close(root.fd);
	detect_result_free(r);
	return -ENOMEM;
}

json_t *detect_result_to_json(const struct detect_result *r)
{
	json_t *ev = json_array();

	if (!ev)
		return NULL;
	for (size_t i = 0; i < r->n_evidence; i++) {
		const struct detect_evidence *e = &r->evidence[i];
		json_t *j = json_pack("{s:s, s:s, s:o}", "source", e->source,
				      "text", e->text, "kind",
				      e->kind >= 0 ? json_string(container_kind_name(e->kind))
						   : json_null());

		if (!j || json_array_append_new(ev, j) < 0)
			goto fail;
	}
	/* "o" hands ev over to the new object, on failure too. */
	return json_pack("{s:s, s:b, s:b, s:o, s:o}",
			 "kind", container_kind_name(r->kind),
			 "in_container", r->kind != CONTAINER_NONE,
			 "overridden", r->overridden,
			 "decided_by", r->decided_by >= 0 ?
				json_deep_copy(json_array_get(ev, (size_t)r->decided_by)) :
				json_null(),
			 "evidence", ev);
fail:
	json_decref(ev);
	return NULL;
}
