/* `runner doctor`; see doctor.h.  Each check is a function that appends one
 * result; none of them stops the others, so one run shows everything that
 * stands between this machine and a working deployment. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sqlite3.h>

#include "doctor.h"
#include "diag.h"
#include "mountinfo.h"
#include "venv.h"

#define MiB (1024ull * 1024ull)

void doctor_input_init(struct doctor_input *in)
{
	memset(in, 0, sizeof(*in));
	detect_input_init(&in->detect, NULL, NULL);
	in->disk_warn_bytes = 100 * MiB;
	in->disk_fail_bytes = 10 * MiB;
	in->interp_timeout_ms = 10000;
}

const char *doctor_level_name(enum doctor_level l)
{
	switch (l) {
	case DOCTOR_PASS:
		return "PASS";
	case DOCTOR_WARN:
		return "WARN";
	default:
		return "FAIL";
	}
}

void doctor_result_free(struct doctor_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n; i++) {
		free(res->checks[i].name);
		free(res->checks[i].reason);
		json_decref(res->checks[i].detail);
	}
	free(res->checks);
	res->checks = NULL;
	res->n = 0;
}

/* Appends a check; takes over detail.  Returns 0 or -ENOMEM. */
static int __attribute__((format(printf, 5, 6)))
add(struct doctor_result *res, const char *name, enum doctor_level l,
    json_t *detail, const char *fmt, ...)
{
	struct doctor_check *nc;
	char *reason;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&reason, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto fail;
	nc = realloc(res->checks, (res->n + 1) * sizeof(*nc));
	if (!nc) {
		free(reason);
		goto fail;
	}
	res->checks = nc;
	nc[res->n].name = strdup(name);
	if (!nc[res->n].name) {
		free(reason);
		goto fail;
	}
	nc[res->n].level = l;
	nc[res->n].reason = reason;
	nc[res->n].detail = detail;
	res->n++;
	return 0;
fail:
	json_decref(detail);
	return -ENOMEM;
}

/* Adds a FAIL carrying a path diagnosis as its reason and detail. */
static int add_diag(struct doctor_result *res, const char *name,
		    enum doctor_level l, const char *op, const char *path, int err,
		    const struct doctor_input *in, bool runner_dir)
{
	struct diag_options o;
	struct diag_report r;
	char *line;
	int rc;

	diag_options_init(&o);
	o.mountinfo_path = in->mountinfo_path;
	o.runner_dir = runner_dir;
	if (diag_path(op, path, err, &o, &r) < 0)
		return -ENOMEM;
	line = diag_format_line(&r);
	rc = line ? add(res, name, l, diag_report_to_json(&r), "%s", line) : -ENOMEM;
	free(line);
	diag_report_free(&r);
	return rc;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

/* A directory is usable when it exists (or can be made) and a file can
 * really be created in it: mode bits, ACLs, read-only and full mounts and
 * FUSE daemons all have their say, and only trying asks them all. */
static int check_dir(struct doctor_result *res, const char *name, const char *path,
		     mode_t mode, const struct doctor_input *in)
{
	bool created = false;
	struct stat st;
	char probe[64];
	int dfd, fd, rc;

	if (!path)
		return add(res, name, DOCTOR_FAIL, NULL, "not configured");
	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			return add_diag(res, name, DOCTOR_FAIL, "stat", path, errno, in, false);
		rc = mkdir_p(path, mode);
		if (rc == -ENOMEM)
			return rc;
		if (rc < 0)
			return add_diag(res, name, DOCTOR_FAIL, "mkdir", path, -rc, in, false);
		/* The same mode the runner gives it, whatever the umask: a
		 * directory made by doctor must not differ from one made by
		 * the runner (the runner dir's group needs rwx). */
		if (chmod(path, mode) < 0)
			return add_diag(res, name, DOCTOR_FAIL, "chmod", path, errno, in, false);
		created = true;
	} else if (!S_ISDIR(st.st_mode)) {
		return add_diag(res, name, DOCTOR_FAIL, "opendir", path, ENOTDIR, in, false);
	}
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return add_diag(res, name, DOCTOR_FAIL, "open", path, errno, in, false);
	snprintf(probe, sizeof(probe), ".doctor-probe-%ld", (long)getpid());
	fd = openat(dfd, probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = errno;
		close(dfd);
		return add_diag(res, name, DOCTOR_FAIL, "create a file in", path, rc, in, false);
	}
	if (write(fd, "x", 1) != 1 || fsync(fd) < 0) {
		rc = errno ? errno : EIO;
		close(fd);
		unlinkat(dfd, probe, 0);
		close(dfd);
		return add_diag(res, name, DOCTOR_FAIL, "write a file in", path, rc, in, false);
	}
	close(fd);
	if (unlinkat(dfd, probe, 0) < 0) {
		rc = errno;
		close(dfd);
		return add_diag(res, name, DOCTOR_FAIL, "remove a file in", path, rc, in, false);
	}
	close(dfd);
	return add(res, name, DOCTOR_PASS, NULL, "%s is writable%s", path,
		   created ? " (created)" : "");
}

static int check_interp(struct doctor_result *res, const struct doctor_interp *ip,
			const struct doctor_input *in)
{
	enum doctor_level bad = ip->required ? DOCTOR_FAIL : DOCTOR_WARN;
	char name[64], out[512];
	int status = 0, rc;

	snprintf(name, sizeof(name), "interpreter:%s", ip->lang ? ip->lang : "?");
	if (!ip->path)
		return add(res, name, bad, NULL, "no %s interpreter found%s%s",
			   ip->lang, ip->why ? ": " : "", ip->why ? ip->why : "");
	{
		char *argv[] = { (char *)ip->path, "--version", NULL };

		rc = venv_run(argv, in->interp_timeout_ms, &status, out, sizeof(out));
	}
	if (rc == -ENOMEM)
		return rc;
	if (rc == -ETIMEDOUT)
		return add(res, name, bad, NULL, "%s --version timed out after %d ms",
			   ip->path, in->interp_timeout_ms);
	if (rc < 0)
		return add_diag(res, name, bad, "exec", ip->path, -rc, in, false);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return add(res, name, bad, NULL, "%s --version failed (status %d)",
			   ip->path, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	out[strcspn(out, "\n")] = '\0';
	return add(res, name, DOCTOR_PASS, NULL, "%s runs (%s)%s%s", ip->path,
		   out[0] ? out : "no version printed", ip->why ? "; " : "",
		   ip->why ? ip->why : "");
}

/* Direct mode execs the runner script itself; interpreter mode only reads
 * it.  Mount options tell part of the story, a FUSE filesystem may refuse
 * exec per path, so direct mode is also tried for real. */
static int check_exec_mode(struct doctor_result *res, const struct doctor_input *in)
{
	const char *name = "exec_mode";
	struct diag_options o;
	struct diag_report r;
	char *probe = NULL;
	int rc, fd, status = 0;

	if (!in->runner_dir)
		return add(res, name, DOCTOR_FAIL, NULL, "runner dir not configured");
	diag_options_init(&o);
	o.mountinfo_path = in->mountinfo_path;
	o.runner_dir = true;
	if (diag_path("exec", in->runner_dir, 0, &o, &r) < 0)
		return -ENOMEM;
	bool noexec = r.have_mount && (r.mount_flags & MOUNT_F_NOEXEC);

	if (!in->exec_direct) {
		if (noexec)
			rc = add(res, name, DOCTOR_PASS, diag_report_to_json(&r),
				 "interpreter mode: scripts need no execute bit; %s", r.hint);
		else
			rc = add(res, name, DOCTOR_PASS, NULL, "interpreter mode: scripts "
				 "need no execute bit (%s allows exec too)", in->runner_dir);
		goto out;
	}
	if (noexec) {
		rc = add(res, name, DOCTOR_FAIL, diag_report_to_json(&r),
			 "direct mode: %s; mount %s (%s, %s); %s: owner %s:%s mode %04o",
			 r.hint, r.mount_point, r.fs_type, r.mount_options,
			 r.examined ? r.examined : in->runner_dir,
			 r.owner ? r.owner : "?", r.group ? r.group : "?",
			 (unsigned int)(r.mode & 07777));
		goto out;
	}
	if (asprintf(&probe, "%s/.doctor-exec-probe-%ld", in->runner_dir, (long)getpid()) < 0) {
		probe = NULL;
		rc = -ENOMEM;
		goto out;
	}
	fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0700);
	if (fd < 0) {
		rc = add(res, name, DOCTOR_WARN, NULL, "direct mode: cannot write an exec "
			 "probe in %s: %s; mount %s allows exec", in->runner_dir,
			 strerror(errno), r.have_mount ? r.mount_point : "?");
		free(probe);
		probe = NULL;
		goto out;
	}
	if (write(fd, "#!/bin/sh\nexit 0\n", 17) != 17) {
		close(fd);
		rc = add(res, name, DOCTOR_WARN, NULL, "direct mode: cannot write an exec "
			 "probe in %s: %s", in->runner_dir, strerror(errno));
		goto out;
	}
	close(fd);
	{
		char *argv[] = { probe, NULL };

		rc = venv_run(argv, 10000, &status, NULL, 0);
	}
	if (rc == -ENOMEM)
		goto out;
	if (rc < 0) {
		rc = add_diag(res, name, DOCTOR_FAIL, "exec", probe, -rc, in, true);
		goto out;
	}
	rc = add(res, name, DOCTOR_PASS, NULL, "direct mode: a script in %s can be "
		 "executed (mount %s)", in->runner_dir, r.have_mount ? r.mount_point : "?");
out:
	if (probe) {
		unlink(probe);
		free(probe);
	}
	diag_report_free(&r);
	return rc;
}

static int check_container(struct doctor_result *res, const struct doctor_input *in,
			   bool *in_container)
{
	struct detect_result dr;
	int rc = detect_container(&in->detect, &dr);
	enum doctor_level l = DOCTOR_PASS;
	const char *why = "no container markers";

	if (rc == -ENOMEM)
		return rc;
	if (rc == -EINVAL)
		l = DOCTOR_WARN;
	*in_container = dr.kind != CONTAINER_NONE;
	if (dr.overridden)
		why = "RUNNER_CONTAINER override";
	else if (dr.decided_by >= 0)
		why = dr.evidence[dr.decided_by].source;
	rc = add(res, "container", l, detect_result_to_json(&dr), "%s (%s%s%s)%s",
		 container_kind_name(dr.kind), why,
		 dr.decided_by >= 0 && !dr.overridden ? ": " : "",
		 dr.decided_by >= 0 && !dr.overridden ? dr.evidence[dr.decided_by].text : "",
		 l == DOCTOR_WARN ? "; RUNNER_CONTAINER is not a kind name, ignored" : "");
	detect_result_free(&dr);
	return rc;
}

static int check_venv(struct doctor_result *res, const struct doctor_input *in,
		      bool in_container)
{
	struct venv_options o = {
		.dir = in->venv_dir,
		.python = in->venv_python,
		.in_container = in_container,
	};
	struct venv_status st;
	int rc;

	if (in_container)
		return add(res, "venv", DOCTOR_PASS, NULL, "not used in a container: "
			   "the system interpreter runs scripts");
	if (!in->venv_dir)
		return add(res, "venv", DOCTOR_WARN, NULL, "no venv directory configured");
	rc = venv_status(&o, &st);
	if (rc < 0)
		return rc;
	if (st.healthy)
		rc = add(res, "venv", DOCTOR_PASS, venv_status_to_json(&st), "%s", st.reason);
	else if (!st.exists)
		rc = add(res, "venv", DOCTOR_WARN, venv_status_to_json(&st),
			 "%s; `runner venv ensure` creates it", st.reason);
	else
		rc = add(res, "venv", DOCTOR_WARN, venv_status_to_json(&st),
			 "%s; `runner venv recreate` rebuilds it", st.reason);
	venv_status_free(&st);
	return rc;
}

static int check_store(struct doctor_result *res, const struct doctor_input *in)
{
	const char *name = "job_store";
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	char *first = NULL;
	int rc, n = 0;

	if (!in->db_path)
		return add(res, name, DOCTOR_WARN, NULL, "no job store configured");
	if (access(in->db_path, F_OK) < 0) {
		if (errno == ENOENT)
			return add(res, name, DOCTOR_WARN, NULL, "%s does not exist yet "
				   "(created on first use)", in->db_path);
		return add_diag(res, name, DOCTOR_FAIL, "access", in->db_path, errno, in, false);
	}
	rc = sqlite3_open_v2(in->db_path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		rc = add(res, name, DOCTOR_FAIL, NULL, "cannot open %s: %s", in->db_path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL);
	if (rc != SQLITE_OK) {
		rc = add(res, name, DOCTOR_FAIL, NULL, "%s: integrity_check: %s",
			 in->db_path, sqlite3_errmsg(db));
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(stmt, 0);

		if (n++ == 0 && t) {
			first = strdup(t);
			if (!first) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	if (rc != SQLITE_DONE)
		rc = add(res, name, DOCTOR_FAIL, NULL, "%s: integrity_check: %s",
			 in->db_path, sqlite3_errmsg(db));
	else if (n == 1 && first && strcmp(first, "ok") == 0)
		rc = add(res, name, DOCTOR_PASS, NULL, "%s: integrity_check ok", in->db_path);
	else
		rc = add(res, name, DOCTOR_FAIL, NULL, "%s: integrity_check found %d "
			 "problem%s, first: %s", in->db_path, n, n == 1 ? "" : "s",
			 first ? first : "?");
out:
	free(first);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return rc;
}

/* Our cgroup v2 directory from /proc/self/cgroup's "0::PATH" line, made
 * absolute under the cgroup2 mount (whose root may be a subtree). */
static char *own_cgroup(const struct mount_entry *cg2, const char *proc_cgroup)
{
	FILE *f = fopen(proc_cgroup ? proc_cgroup : "/proc/self/cgroup", "re");
	char *line = NULL, *dir = NULL;
	size_t cap = 0;

	if (!f)
		return NULL;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		char *p = line + 3;
		size_t rl = strlen(cg2->root);

		p[strcspn(p, "\n")] = '\0';
		if (strcmp(cg2->root, "/") != 0 && strncmp(p, cg2->root, rl) == 0 &&
		    (p[rl] == '/' || p[rl] == '\0'))
			p += rl;
		if (asprintf(&dir, "%s%s", cg2->mount_point,
			     strcmp(p, "/") == 0 ? "" : p) < 0)
			dir = NULL;
		break;
	}
	free(line);
	fclose(f);
	return dir;
}

/* Tries to create and remove a probe cgroup under base; 0 or -errno. */
static int probe_cgroup(const char *base, bool *has_kill)
{
	char *probe = NULL, *kill = NULL;
	int rc = 0;

	if (asprintf(&probe, "%s/fieldrig-doctor-%ld", base, (long)getpid()) < 0)
		return -ENOMEM;
	if (mkdir(probe, 0755) < 0) {
		rc = -errno;
		goto out;
	}
	if (asprintf(&kill, "%s/cgroup.kill", probe) < 0) {
		kill = NULL;
		rc = -ENOMEM;
	} else {
		*has_kill = access(kill, W_OK) == 0;
	}
	if (rmdir(probe) < 0 && rc == 0)
		rc = -errno;
out:
	free(kill);
	free(probe);
	return rc;
}

static int check_cgroup(struct doctor_result *res, const struct doctor_input *in)
{
	const char *name = "cgroup";
	const char *fallback = "tree kills fall back to process group + subreaper";
	struct mount_table t;
	const struct mount_entry *cg2;
	char err[512] = "", *own = NULL, *tried = NULL;
	const char *cands[3];
	size_t nc = 0;
	int rc;

	rc = mount_table_load(in->mountinfo_path, &t, err, sizeof(err));
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0)
		return add(res, name, DOCTOR_WARN, NULL, "%s; %s", err, fallback);
	cg2 = mount_table_find_fstype(&t, "cgroup2");
	if (!cg2) {
		rc = add(res, name, DOCTOR_WARN, NULL, "no cgroup v2 mount; %s", fallback);
		goto out;
	}
	own = own_cgroup(cg2, in->proc_cgroup_path);
	if (in->cgroup_base)
		cands[nc++] = in->cgroup_base;
	if (own)
		cands[nc++] = own;
	if (!own || strcmp(own, cg2->mount_point) != 0)
		cands[nc++] = cg2->mount_point;
	for (size_t i = 0; i < nc; i++) {
		bool has_kill = false;
		int pr = probe_cgroup(cands[i], &has_kill);

		if (pr == -ENOMEM) {
			rc = pr;
			goto out;
		}
		if (pr == 0) {
			rc = add(res, name, DOCTOR_PASS, NULL, "per-run cgroups can be created "
				 "under %s (cgroup v2 at %s)%s", cands[i], cg2->mount_point,
				 has_kill ? ", cgroup.kill available" :
				 "; no cgroup.kill (kernel < 5.14): kills walk cgroup.procs");
			goto out;
		}
		char *n2;
		if (asprintf(&n2, "%s%s%s: %s", tried ? tried : "", tried ? "; " : "",
			     cands[i], strerror(-pr)) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		free(tried);
		tried = n2;
	}
	rc = add(res, name, DOCTOR_WARN, NULL, "cannot create a cgroup (%s); %s",
		 tried ? tried : "no candidate", fallback);
out:
	free(tried);
	free(own);
	mount_table_free(&t);
	return rc;
}

static void human(uint64_t b, char *buf, size_t len)
{
	if (b >= 1024 * MiB)
		snprintf(buf, len, "%.1f GiB", (double)b / (1024.0 * MiB));
	else
		snprintf(buf, len, "%.1f MiB", (double)b / MiB);
}

static int check_disk(struct doctor_result *res, const struct doctor_input *in)
{
	const char *name = "disk_space";
	struct statvfs sv;
	char have[32], warn[32], fail[32];
	uint64_t avail;

	if (!in->state_dir)
		return add(res, name, DOCTOR_WARN, NULL, "no state dir configured");
	if (statvfs(in->state_dir, &sv) < 0)
		return add_diag(res, name, DOCTOR_FAIL, "statvfs", in->state_dir, errno,
				in, false);
	avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	human(avail, have, sizeof(have));
	human(in->disk_warn_bytes, warn, sizeof(warn));
	human(in->disk_fail_bytes, fail, sizeof(fail));
	if (avail < in->disk_fail_bytes)
		return add(res, name, DOCTOR_FAIL, NULL, "%s free on %s, below %s",
			   have, in->state_dir, fail);
	if (avail < in->disk_warn_bytes)
		return add(res, name, DOCTOR_WARN, NULL, "%s free on %s, below %s",
			   have, in->state_dir, warn);
	return add(res, name, DOCTOR_PASS, NULL, "%s free on %s", have, in->state_dir);
}

int doctor_run(const struct doctor_input *in, struct doctor_result *res)
{
	bool in_container = false;
	int rc;

	res->checks = NULL;
	res->n = 0;
	if ((rc = check_dir(res, "state_dir", in->state_dir, 0750, in)) < 0 ||
	    (rc = check_dir(res, "scripts_dir", in->scripts_dir, 0750, in)) < 0 ||
	    (rc = check_dir(res, "runner_dir", in->runner_dir, 0770, in)) < 0)
		goto fail;
	for (size_t i = 0; i < in->n_interps; i++)
		if ((rc = check_interp(res, &in->interps[i], in)) < 0)
			goto fail;
	if ((rc = check_exec_mode(res, in)) < 0 ||
	    (rc = check_container(res, in, &in_container)) < 0 ||
	    (rc = check_venv(res, in, in_container)) < 0 ||
	    (rc = check_store(res, in)) < 0 ||
	    (rc = check_cgroup(res, in)) < 0 ||
	    (rc = check_disk(res, in)) < 0)
		goto fail;
	return 0;
fail:
	doctor_result_free(res);
	return rc;
}

int doctor_exit_code(const struct doctor_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		if (res->checks[i].level == DOCTOR_FAIL)
			return 1;
	return 0;
}

void doctor_print_text(FILE *f, const struct doctor_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		fprintf(f, "%s  %s: %s\n", doctor_level_name(res->checks[i].level),
			res->checks[i].name, res->checks[i].reason);
}

json_t *doctor_result_to_json(const struct doctor_result *res)
{
	json_t *arr = json_array();

	if (!arr)
		return NULL;
	for (size_t i = 0; i < res->n; i++) {
		const struct doctor_check *c = &res->checks[i];
		json_t *j = json_pack("{s:s, s:s, s:s}", "name", c->name,
				      "level", doctor_level_name(c->level),
				      "reason", c->reason);

		if (!j || (c->detail && json_object_set(j, "detail", c->detail) < 0)) {
			json_decref(j);
			json_decref(arr);
			return NULL;
		}
		/* append_new takes j over, on failure too. */
		if (json_array_append_new(arr, j) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return json_pack("{s:b, s:o}", "ok", doctor_exit_code(res) == 0, "checks", arr);
}
