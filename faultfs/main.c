/* faultfs: a FUSE 3 passthrough filesystem that injects the faults script
 * runners meet in the field, by rules that can change while it is mounted.
 *
 *   faultfs BACKING MOUNTPOINT [options]   mount (see --help)
 *   faultfs ctl MOUNTPOINT COMMAND …        change or read a mounted instance
 *   fusermount3 -u MOUNTPOINT               unmount
 *
 * Exit codes: 0 after a clean unmount, 1 when mounting or serving failed, 2
 * for usage errors and bad rules. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultfs_i.h"
#include "strparse.h"

#ifndef FAULTFS_PROFILE_DIRS
#define FAULTFS_PROFILE_DIRS ""
#endif

static const char usage[] =
	"usage: faultfs BACKING MOUNTPOINT [options]\n"
	"       faultfs ctl MOUNTPOINT add EXPR | remove ID | clear | list | stats | trace [--follow]\n"
	"\n"
	"Mounts BACKING at MOUNTPOINT as a passthrough filesystem that injects faults\n"
	"chosen by rules.  Rules are checked in order; the first rule whose op, path\n"
	"and conditions all hold decides what happens.\n"
	"\n"
	"options:\n"
	"  --rule EXPR       add a rule, e.g. 'op=rmdir|rename,path=venv,error=EBUSY' (repeatable)\n"
	"  --rules FILE      add the rules of a YAML file (repeatable)\n"
	"  --profile NAME    add a built-in profile: noexec-tmp, docker-venv-busy, no-exec-bits,\n"
	"                    read-only, disk-full, slow-disk (repeatable)\n"
	"  --trace FILE      append one JSON line per injected fault to FILE\n"
	"  --trace-all       trace every operation, not only faults\n"
	"  --timeout SECS    kernel cache timeout for paths no rule matches (default 1)\n"
	"  -f                stay in the foreground\n"
	"  -d                debug: foreground, print every FUSE request\n"
	"  -s                single-threaded\n"
	"  -o OPT[,OPT…]     FUSE mount options, e.g. -o noexec (whole mount, also blocks\n"
	"                    mmap(PROT_EXEC)), -o ro, -o allow_other; -o writeback_cache\n"
	"                    lets the kernel cache writes (faster; write faults then show\n"
	"                    at fsync/close, except on paths a rule matched at open)\n"
	"  -h, --help        this help\n"
	"  -V, --version     print the version\n"
	"\n"
	"rule keys: op=NAME[|NAME…] path=GLOB error=ERRNO delay=DUR mode_clear=OCTAL short=N\n"
	"           nth=N after=N count=N prob=P seed=S uid=N gid=N comm=NAME\n"
	"ops: lookup getattr(stat) readdir open open_write create read write flush fsync release\n"
	"     mkdir rmdir unlink rename link symlink readlink chmod chown truncate utimens access\n"
	"     statfs getxattr setxattr listxattr removexattr fallocate mknod exec all\n";

/* libfuse reports its own errors (an unknown -o option, a failed mount)
 * through this, sometimes one message in several pieces; whole lines are
 * printed with our prefix, and counting them lets faultfs say one line, not
 * two.  The log callback has no user data, hence this file-scope state,
 * touched only by the main thread before the session starts serving. */
static unsigned libfuse_errors;
static char libfuse_line[512];
/* With -d, libfuse's debug lines (one per request, from every serving
 * thread) go straight to stderr, unprefixed and unbuffered here. */
static bool libfuse_debug;

static void log_libfuse(enum fuse_log_level level, const char *fmt, va_list ap)
{
	size_t n = strlen(libfuse_line);

	if (level > FUSE_LOG_NOTICE) {
		if (libfuse_debug)
			vfprintf(stderr, fmt, ap);
		return;
	}
	vsnprintf(libfuse_line + n, sizeof(libfuse_line) - n, fmt, ap);
	n = strlen(libfuse_line);
	if (n == 0 || (libfuse_line[n - 1] != '\n' && n < sizeof(libfuse_line) - 1))
		return;
	while (n > 0 && libfuse_line[n - 1] == '\n')
		libfuse_line[--n] = '\0';
	if (level <= FUSE_LOG_ERR)
		libfuse_errors++;
	fprintf(stderr, "faultfs: %s\n", libfuse_line);
	libfuse_line[0] = '\0';
}

struct options {
	const char *backing;
	const char *mountpoint;
	const char *trace_file;
	bool foreground;
	bool debug;
	bool single;
	bool trace_all;
	bool writeback;             /* -o writeback_cache: ours, not the kernel's */
	double timeout;
	char *fuse_opts;            /* comma-joined -o options */
};

/* Adds the comma-separated options of one -o to those passed to libfuse,
 * keeping back writeback_cache, which faultfs asks the kernel for itself
 * (libfuse 3.14's lowlevel session does not know the option). */
static int append_opts(struct options *o, const char *opts)
{
	size_t old = o->fuse_opts != NULL ? strlen(o->fuse_opts) : 0;
	char *p = realloc(o->fuse_opts, old + strlen(opts) + 2);
	const char *s = opts;

	if (p == NULL)
		return -1;
	o->fuse_opts = p;
	while (*s != '\0') {
		size_t n = strcspn(s, ",");

		if (n == strlen("writeback_cache") && strncmp(s, "writeback_cache", n) == 0) {
			o->writeback = true;
		} else if (n == strlen("no_writeback_cache") && strncmp(s, "no_writeback_cache", n) == 0) {
			o->writeback = false;
		} else if (n != 0) {
			if (old != 0)
				p[old++] = ',';
			memcpy(p + old, s, n);
			old += n;
		}
		s += n;
		if (*s == ',')
			s++;
	}
	p[old] = '\0';
	return 0;
}

/* Finds profiles/NAME.yaml in the directories compiled in, or the one in
 * FAULTFS_PROFILE_DIR. */
static int find_profile(const char *name, char *out, size_t len)
{
	const char *env = getenv("FAULTFS_PROFILE_DIR");
	char dirs[PATH_MAX * 3];
	char *save = NULL;

	if (strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0')
		return -1;
	snprintf(dirs, sizeof(dirs), "%s:%s", env != NULL ? env : "", FAULTFS_PROFILE_DIRS);
	for (char *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s.yaml", d, name);
		if (access(out, R_OK) == 0)
			return 0;
	}
	return -1;
}

static int add_expr(struct ff_rules *rules, const char *expr)
{
	char err[512];
	struct ff_rule *r = ff_rule_parse(expr, err, sizeof(err));

	if (r == NULL) {
		fprintf(stderr, "faultfs: --rule '%s': %s\n", expr, err);
		return -1;
	}
	ff_rules_add(rules, r);
	return 0;
}

static int add_file(struct ff_rules *rules, const char *file)
{
	char err[1024];

	if (ff_rules_load_file(rules, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "faultfs: %s\n", err);
		return -1;
	}
	return 0;
}

enum { OPT_RULE = 256, OPT_RULES, OPT_PROFILE, OPT_TRACE, OPT_TRACE_ALL, OPT_TIMEOUT };

/* Parses the command line into o and rules.  Returns -1 to exit 0 (help,
 * version), 0 to mount, 2 on a usage error (already reported). */
static int parse_args(int argc, char **argv, struct options *o, struct ff_rules *rules)
{
	static const struct option longopts[] = {
		{ "rule", required_argument, NULL, OPT_RULE },
		{ "rules", required_argument, NULL, OPT_RULES },
		{ "profile", required_argument, NULL, OPT_PROFILE },
		{ "trace", required_argument, NULL, OPT_TRACE },
		{ "trace-all", no_argument, NULL, OPT_TRACE_ALL },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char path[PATH_MAX + 64];
	uint64_t ns;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fdso:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->foreground = true; break;
		case 'd': o->debug = o->foreground = true; break;
		case 's': o->single = true; break;
		case 'o':
			if (append_opts(o, optarg) < 0)
				return 2;
			break;
		case OPT_RULE:
			if (add_expr(rules, optarg) < 0)
				return 2;
			break;
		case OPT_RULES:
			if (add_file(rules, optarg) < 0)
				return 2;
			break;
		case OPT_PROFILE:
			if (find_profile(optarg, path, sizeof(path)) < 0) {
				fprintf(stderr, "faultfs: --profile '%s': no such profile (known: noexec-tmp, "
				        "docker-venv-busy, no-exec-bits, read-only, disk-full, slow-disk)\n", optarg);
				return 2;
			}
			if (add_file(rules, path) < 0)
				return 2;
			break;
		case OPT_TRACE: o->trace_file = optarg; break;
		case OPT_TRACE_ALL: o->trace_all = true; break;
		case OPT_TIMEOUT:
			if (parse_duration_ns(optarg, 1000000000ULL, &ns) < 0) {
				fprintf(stderr, "faultfs: --timeout '%s': expected seconds or a duration like 500ms\n", optarg);
				return 2;
			}
			o->timeout = (double)ns / 1e9;
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		case 'V':
			printf("faultfs %s (libfuse %s)\n", FIELDRIG_VERSION, fuse_pkgversion());
			return -1;
		case ':':
			fprintf(stderr, "faultfs: option '%s' needs a value (see faultfs --help)\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "faultfs: unknown option '%s' (see faultfs --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "faultfs: expected BACKING and MOUNTPOINT, got %d argument%s (see faultfs --help)\n",
		        argc - optind, argc - optind == 1 ? "" : "s");
		return 2;
	}
	o->backing = argv[optind];
	o->mountpoint = argv[optind + 1];
	return 0;
}

static int check_dir(const char *what, const char *path, char **abs)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "faultfs: %s %s: %s\n", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "faultfs: %s %s: not a directory\n", what, path);
		return -1;
	}
	*abs = realpath(path, NULL);
	if (*abs == NULL) {
		fprintf(stderr, "faultfs: %s %s: %s\n", what, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Mounts and serves until unmounted or signalled.  Returns the exit code. */
static int serve(struct ff_fs *fs, struct options *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char base[PATH_MAX * 2 + 64];
	char err[512];
	struct fuse_loop_config *cfg = NULL;
	struct ff_ctl *ctl = NULL;
	uint32_t rnd = 0;
	int rc = 1;

	/* A root daemon lets every user in and checks each caller's rights
	 * itself (caller.c); an ordinary user's mount is for that user. */
	snprintf(base, sizeof(base), "fsname=faultfs:%s,subtype=faultfs%s", fs->backing,
	         fs->impersonate ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "faultfs") < 0 || fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, base) < 0 ||
	    (o->fuse_opts != NULL && o->fuse_opts[0] != '\0' && (fuse_opt_add_arg(&args, "-o") < 0 || fuse_opt_add_arg(&args, o->fuse_opts) < 0)) ||
	    (o->debug && fuse_opt_add_arg(&args, "-d") < 0))
		goto out_args;
	fs->se = fuse_session_new(&args, &ff_ops, sizeof(ff_ops), fs);
	if (fs->se == NULL) {
		if (libfuse_errors == 0)
			fprintf(stderr, "faultfs: cannot set up the FUSE session\n");
		rc = 2;
		goto out_args;
	}
	if (fuse_set_signal_handlers(fs->se) != 0)
		goto out_destroy;
	if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
		if (libfuse_errors == 0)
			fprintf(stderr, "faultfs: cannot mount on %s\n", fs->mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(o->foreground) != 0)
		goto out_unmount;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)getpid() * 2654435761u;
	snprintf(fs->ctl_name, sizeof(fs->ctl_name), "faultfs.%d.%08x", (int)getpid(), rnd);
	ctl = ff_ctl_start(fs, err, sizeof(err));
	if (ctl == NULL) {
		fprintf(stderr, "faultfs: %s\n", err);
		goto out_unmount;
	}
	if (o->single) {
		rc = fuse_session_loop(fs->se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (cfg == NULL)
			goto out_ctl;
		fuse_loop_cfg_set_clone_fd(cfg, 1);
		fuse_loop_cfg_set_idle_threads(cfg, 8);
		rc = fuse_session_loop_mt(fs->se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	/* A signal ends the loop with its number; that is a clean stop. */
	rc = rc < 0 ? 1 : 0;
out_ctl:
	ff_ctl_stop(ctl);
out_unmount:
	fuse_session_unmount(fs->se);
out_signals:
	fuse_remove_signal_handlers(fs->se);
out_destroy:
	fuse_session_destroy(fs->se);
	fs->se = NULL;
out_args:
	fuse_opt_free_args(&args);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = { .timeout = 1.0 };
	struct ff_fs fs = { 0 };
	char err[512];
	int rc;

	if (argc >= 2 && strcmp(argv[1], "ctl") == 0)
		return ff_ctl_client_main(argc - 1, argv + 1);
	fuse_set_log_func(log_libfuse);
	fs.rules = ff_rules_new();
	if (fs.rules == NULL) {
		fprintf(stderr, "faultfs: out of memory\n");
		return 1;
	}
	rc = parse_args(argc, argv, &o, fs.rules);
	if (rc != 0) {
		rc = rc < 0 ? 0 : rc;
		goto out_rules;
	}
	rc = 2;
	if (check_dir("backing directory", o.backing, &fs.backing) < 0 ||
	    check_dir("mountpoint", o.mountpoint, &fs.mountpoint) < 0)
		goto out_paths;
	fs.trace = ff_trace_new(o.trace_file, 10000, err, sizeof(err));
	if (fs.trace == NULL) {
		fprintf(stderr, "faultfs: %s\n", err);
		goto out_paths;
	}
	rc = ff_itable_init(&fs.itable, fs.backing);
	if (rc < 0) {
		fprintf(stderr, "faultfs: backing directory %s: %s\n", fs.backing, strerror(-rc));
		rc = 2;
		goto out_trace;
	}
	fs.timeout = o.timeout;
	fs.trace_all = o.trace_all;
	fs.writeback = o.writeback;
	fs.debug = o.debug;
	libfuse_debug = o.debug;
	fs.owner = getuid();
	fs.impersonate = geteuid() == 0;
	fs.ngroups = getgroups(64, fs.groups);
	if (fs.ngroups < 0)
		fs.ngroups = 0;
	/* The kernel has already applied each caller's umask to the modes it
	 * sends; ours must not take bits away a second time. */
	umask(0);
	rc = serve(&fs, &o);
	ff_itable_destroy(&fs.itable);
out_trace:
	ff_trace_free(fs.trace);
out_paths:
	free(fs.backing);
	free(fs.mountpoint);
out_rules:
	ff_rules_free(fs.rules);
	free(o.fuse_opts);
	return rc;
}
