/* fsbench: the timed workloads of ci/bench-faultfs.
 *
 * A workload runs on several targets at once -- a native directory and FUSE
 * mounts of the same file system -- interleaved in small chunks: chunk 1 on
 * every target, then chunk 2 on every target (the starting target rotated
 * each round), and so on.  On a shared, noisy machine a burst of someone
 * else's work then lands on all targets alike instead of on whichever one
 * happened to be running, so the per-target sums can be compared.  Each
 * chunk is timed with CLOCK_MONOTONIC; set-up and clean-up are not timed.
 *
 * A target is NAME:PID:DIR.  With PID > 0 (the FUSE daemon serving DIR) the
 * daemon's CPU time (user + system, all threads, /proc/PID/stat) is summed
 * over the same chunks as KEY.daemon_cpu.
 *
 * Output: one "NAME KEY SECONDS" line per target and measured quantity.
 * Every system call is checked: a failing workload prints a one-line error
 * on stderr and exits 1, so a broken file system never passes as a fast one.
 *
 *   fsbench prep DIR NFILES                  stat tree and exec script in DIR
 *   fsbench small NFILES SIZE CHUNK TARGET...
 *   fsbench seq MIB CHUNK_MIB TARGET...
 *   fsbench stat NFILES PASSES TARGET...
 *   fsbench exec N CHUNK TARGET...
 *
 * Exit status: 0 success, 1 a workload failed, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STAT_DIRS 10              /* the stat tree spreads its files over this many dirs */
#define EXEC_SCRIPT "bench-exec.sh"
#define SEQ_FILE "bench-seq.dat"
#define SEQ_BUF (1024 * 1024)
#define MAX_TARGETS 16

extern char **environ;

static const char *prog = "fsbench";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f, int code) __attribute__((noreturn));
static void usage(FILE *f, int code)
{
	fprintf(f,
		"usage: fsbench prep DIR NFILES\n"
		"       fsbench small NFILES SIZE CHUNK TARGET...\n"
		"       fsbench seq MIB CHUNK_MIB TARGET...\n"
		"       fsbench stat NFILES PASSES TARGET...\n"
		"       fsbench exec N CHUNK TARGET...\n"
		"\n"
		"Runs one file system workload on every TARGET (NAME:PID:DIR, PID 0 for none),\n"
		"interleaved chunk by chunk with the starting target rotated each round, and\n"
		"prints \"NAME KEY SECONDS\" lines: the time summed over the target's chunks,\n"
		"and with PID > 0 also KEY.daemon_cpu, that process's CPU time (user+system,\n"
		"all threads) over the same chunks.\n"
		"  prep   creates DIR/stat/dNN/fNNNNN (NFILES files over %d dirs) and DIR/%s\n"
		"  small  NFILES files in chunks of CHUNK, each chunk in a new DIR/small.XXXXXX\n"
		"         (mode 0755, made untimed and left behind empty); sync + drop_caches=3 (untimed;\n"
		"         needs root); per chunk: create, write SIZE bytes to and close its files\n"
		"         (small.create), then unlink them (small.unlink); small = both\n"
		"  seq    sync + drop_caches=3; writes MIB MiB to DIR/%s with 1 MiB writes,\n"
		"         CHUNK_MIB at a time, close included (seqwrite); fsync, one target after\n"
		"         the other (seqwrite.fsync); sync + drop_caches=3; reads the files back\n"
		"         with 1 MiB reads, CHUNK_MIB at a time (seqread); unlinks them\n"
		"  stat   one untimed warm-up pass, sync + drop_caches=2 (dentries and inodes),\n"
		"         then PASSES passes of stat() over the tree, one pass per chunk\n"
		"  exec   fork+execve+waitpid of DIR/%s (#!/bin/sh, exits 0) N times,\n"
		"         CHUNK at a time\n"
		"Exit status: 0 ok, 1 workload failed, 2 usage error.\n",
		STAT_DIRS, EXEC_SCRIPT, SEQ_FILE, EXEC_SCRIPT);
	exit(code);
}

static long parse_count(const char *s, const char *what, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "%s: %s: expected an integer in [%ld, %ld], got '%s'\n",
			prog, what, min, max, s);
		exit(2);
	}
	return v;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *join(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s/%s", a, b) < 0)
		die("out of memory");
	return p;
}

/* ------------------------------------------------------------------ targets */

struct target {
	const char *name;
	const char *dir;
	long pid;              /* FUSE daemon, or 0 */
	double t[4], cpu[4];   /* per measured quantity of the workload */
	/* per-workload state */
	char *sdir;
	char **paths;
	int fd;
	char *file;
};

static struct target targets[MAX_TARGETS];
static int ntargets;

static void parse_targets(int argc, char **argv)
{
	if (argc < 1)
		usage(stderr, 2);
	if (argc > MAX_TARGETS) {
		fprintf(stderr, "%s: at most %d targets\n", prog, MAX_TARGETS);
		exit(2);
	}
	for (int i = 0; i < argc; i++) {
		struct target *t = &targets[i];
		char *a = argv[i], *c1 = strchr(a, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c1 == NULL || c2 == NULL || c1 == a || c2[1] == '\0') {
			fprintf(stderr, "%s: target '%s': expected NAME:PID:DIR\n", prog, a);
			exit(2);
		}
		*c1 = *c2 = '\0';
		t->name = a;
		t->pid = parse_count(c1 + 1, "target PID", 0, 1L << 30);
		t->dir = c2 + 1;
		t->fd = -1;
		struct stat st;
		if (stat(t->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "%s: %s: not a directory\n", prog, t->dir);
			exit(2);
		}
	}
	ntargets = argc;
}

/* CPU time (user + system, all threads, exited ones included) of a target's
 * FUSE daemon in seconds, or 0 without one.  Clock-tick resolution (usually
 * 10 ms), so only sums over many chunks mean something. */
static double daemon_cpu(const struct target *t)
{
	static double tick;
	char path[64], buf[1024];

	if (t->pid <= 0)
		return 0;
	if (tick == 0)
		tick = (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof path, "/proc/%ld/stat", t->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s (daemon of %s gone?)", path, strerror(errno), t->name);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		die("read %s: %s", path, n < 0 ? strerror(errno) : "empty");
	buf[n] = '\0';
	/* Fields after "(comm)": state is field 3, utime 14, stime 15. */
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		die("%s: unexpected format", path);
	return (double)(ut + st) / tick;
}

/* Runs fn(target, chunk) for every chunk on every target: round r runs
 * chunk r on all targets, starting with target r % n.  The time and daemon
 * CPU of each call are added to the target's quantity q. */
static void interleave(long nchunks, int q, void (*fn)(struct target *, long))
{
	for (long c = 0; c < nchunks; c++) {
		for (int k = 0; k < ntargets; k++) {
			struct target *t = &targets[(c + k) % ntargets];
			double c0 = daemon_cpu(t), t0 = now();
			fn(t, c);
			double t1 = now(), c1 = daemon_cpu(t);
			t->t[q] += t1 - t0;
			t->cpu[q] += c1 - c0;
		}
	}
}

static void report(int q, const char *key)
{
	for (int i = 0; i < ntargets; i++) {
		printf("%s %s %.6f\n", targets[i].name, key, targets[i].t[q]);
		if (targets[i].pid > 0)
			printf("%s %s.daemon_cpu %.6f\n", targets[i].name, key, targets[i].cpu[q]);
	}
}

/* ------------------------------------------------------------------ helpers */

static void write_all(int fd, const char *buf, size_t len, const char *path)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write %s: %s", path, strerror(errno));
		}
		if (n == 0)
			die("write %s: wrote 0 bytes", path);
		buf += n;
		len -= (size_t)n;
	}
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		die("create %s: %s", path, strerror(errno));
	write_all(fd, data, len, path);
	if (fchmod(fd, mode) < 0)
		die("chmod %s: %s", path, strerror(errno));
	if (close(fd) < 0)
		die("close %s: %s", path, strerror(errno));
}

static void mkdir_p1(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
}

/* sync, then drop the page cache and/or dentries and inodes (what: 1, 2, 3).
 * Needs root. */
static void drop_caches(int what)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		die("open /proc/sys/vm/drop_caches: %s (run as root)", strerror(errno));
	char val[4];
	int len = snprintf(val, sizeof val, "%d\n", what);
	write_all(fd, val, (size_t)len, "/proc/sys/vm/drop_caches");
	close(fd);
}

static char **stat_paths(const char *dir, long nfiles)
{
	char **paths = calloc((size_t)nfiles, sizeof *paths);
	if (!paths)
		die("out of memory");
	for (long i = 0; i < nfiles; i++)
		if (asprintf(&paths[i], "%s/stat/d%02ld/f%05ld", dir, i % STAT_DIRS, i) < 0)
			die("out of memory");
	return paths;
}

static void free_paths(char **paths, long n)
{
	for (long i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* ------------------------------------------------------------------ prep */

static void cmd_prep(const char *dir, long nfiles)
{
	char *p = join(dir, "stat");
	mkdir_p1(p);
	for (int d = 0; d < STAT_DIRS; d++) {
		char *sub;
		if (asprintf(&sub, "%s/d%02d", p, d) < 0)
			die("out of memory");
		mkdir_p1(sub);
		free(sub);
	}
	free(p);
	char **paths = stat_paths(dir, nfiles);
	for (long i = 0; i < nfiles; i++)
		write_file(paths[i], "x\n", 2, 0644);
	free_paths(paths, nfiles);
	static const char script[] = "#!/bin/sh\nexit 0\n";
	p = join(dir, EXEC_SCRIPT);
	write_file(p, script, sizeof script - 1, 0755);
	free(p);
}

/* ------------------------------------------------------------------ small */

static long small_n, small_chunk;
static char *small_buf;
static size_t small_size;

/* One chunk: create, write and close its files, then unlink them.  Each
 * chunk has a directory of its own (see cmd_small), so the names stay
 * cached between create and unlink and no create scans freed inodes. */
static void small_chunk_run(struct target *t, long c)
{
	long begin = c * small_chunk;
	long end = begin + small_chunk < small_n ? begin + small_chunk : small_n;
	double c0 = daemon_cpu(t), t0 = now();
	for (long i = begin; i < end; i++) {
		int fd = open(t->paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create %s: %s", t->paths[i], strerror(errno));
		write_all(fd, small_buf, small_size, t->paths[i]);
		if (close(fd) < 0)
			die("close %s: %s", t->paths[i], strerror(errno));
	}
	double t1 = now(), c1 = daemon_cpu(t);
	for (long i = begin; i < end; i++)
		if (unlink(t->paths[i]) < 0)
			die("unlink %s: %s", t->paths[i], strerror(errno));
	double t2 = now(), c2 = daemon_cpu(t);
	t->t[0] += t1 - t0;
	t->t[1] += t2 - t1;
	t->cpu[0] += c1 - c0;
	t->cpu[1] += c2 - c1;
}

static void cmd_small(long nfiles, long size, long chunk)
{
	long nchunks = (nfiles + chunk - 1) / chunk;
	small_n = nfiles;
	small_size = (size_t)size;
	small_chunk = chunk;
	small_buf = malloc(small_size + 1);
	if (!small_buf)
		die("out of memory");
	memset(small_buf, 'a', small_size);
	for (int k = 0; k < ntargets; k++) {
		struct target *t = &targets[k];
		/* A new directory per chunk, made now (untimed) and left in place
		 * (empty) afterwards.  ext4 without a journal skips inodes freed
		 * in the last 60 s (5 min while their inode table block is dirty)
		 * as long as that block is cached ("recently_deleted" in
		 * fs/ext4/ialloc.c), rescanning them on every create in the same
		 * block group: 5000 creates after 5000 deletes cost 5x more.  With
		 * ext4's TOPDIR flag on DIR (chattr +T, set by ci/bench-faultfs)
		 * every new directory lands in a block group of its own, so no
		 * create pays for earlier deletes, whatever ran before. */
		t->paths = calloc((size_t)nfiles, sizeof *t->paths);
		if (!t->paths)
			die("out of memory");
		for (long ch = 0; ch < nchunks; ch++) {
			char *d = join(t->dir, "small.XXXXXX");
			if (!mkdtemp(d))
				die("mkdtemp %s: %s", d, strerror(errno));
			/* An ordinary 0755 directory, not mkdtemp's 0700: a file
			 * system may treat directories others cannot search
			 * differently (faultfs does not cache entries in them). */
			if (chmod(d, 0755) < 0)
				die("chmod %s: %s", d, strerror(errno));
			for (long i = ch * chunk; i < nfiles && i < (ch + 1) * chunk; i++)
				if (asprintf(&t->paths[i], "%s/s%05ld", d, i) < 0)
					die("out of memory");
			free(d);
		}
	}
	drop_caches(3);   /* clean, equal cache state for all */

	interleave(nchunks, 2, small_chunk_run);

	for (int k = 0; k < ntargets; k++) {
		struct target *t = &targets[k];
		t->t[2] = t->t[0] + t->t[1];
		t->cpu[2] = t->cpu[0] + t->cpu[1];
		free_paths(t->paths, nfiles);
	}
	report(2, "small");
	report(0, "small.create");
	report(1, "small.unlink");
	free(small_buf);
}

/* ------------------------------------------------------------------ seq */

static char *seq_buf;
static long seq_mib, seq_chunk;

static void seq_write(struct target *t, long c)
{
	long end = (c + 1) * seq_chunk < seq_mib ? (c + 1) * seq_chunk : seq_mib;
	if (c == 0) {
		t->fd = open(t->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (t->fd < 0)
			die("create %s: %s", t->file, strerror(errno));
	}
	for (long i = c * seq_chunk; i < end; i++)
		write_all(t->fd, seq_buf, SEQ_BUF, t->file);
	if (end == seq_mib) {
		if (close(t->fd) < 0)
			die("close %s: %s", t->file, strerror(errno));
		t->fd = -1;
	}
}

static void seq_fsync(struct target *t, long c)
{
	(void)c;
	int fd = open(t->file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		die("fsync %s: %s", t->file, strerror(errno));
	close(fd);
}

static void seq_read(struct target *t, long c)
{
	long want = ((c + 1) * seq_chunk < seq_mib ? (c + 1) * seq_chunk : seq_mib) - c * seq_chunk;
	if (c == 0) {
		t->fd = open(t->file, O_RDONLY | O_CLOEXEC);
		if (t->fd < 0)
			die("open %s: %s", t->file, strerror(errno));
	}
	for (long i = 0; i < want; i++) {
		size_t got = 0;
		while (got < SEQ_BUF) {
			ssize_t n = read(t->fd, seq_buf + got, SEQ_BUF - got);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				die("read %s: %s", t->file, strerror(errno));
			}
			if (n == 0)
				die("read %s: early end of file", t->file);
			got += (size_t)n;
		}
	}
	if ((c + 1) * seq_chunk >= seq_mib) {
		char extra;
		if (read(t->fd, &extra, 1) != 0)
			die("read %s: longer than written", t->file);
		close(t->fd);
		t->fd = -1;
	}
}

static void cmd_seq(long mib, long chunk)
{
	seq_mib = mib;
	seq_chunk = chunk;
	if (posix_memalign((void **)&seq_buf, 4096, SEQ_BUF))
		die("out of memory");
	for (size_t i = 0; i < SEQ_BUF; i++)
		seq_buf[i] = (char)('a' + i % 23);
	for (int k = 0; k < ntargets; k++)
		targets[k].file = join(targets[k].dir, SEQ_FILE);

	drop_caches(3);   /* no dirty data of earlier work flushes during the timing */
	long nchunks = (mib + chunk - 1) / chunk;
	/* Write: into the file system (the page cache for native, the daemon
	 * for FUSE), close included; the flush to disk is timed on its own. */
	interleave(nchunks, 0, seq_write);
	interleave(1, 1, seq_fsync);
	drop_caches(3);
	interleave(nchunks, 2, seq_read);

	for (int k = 0; k < ntargets; k++) {
		if (unlink(targets[k].file) < 0)
			die("unlink %s: %s", targets[k].file, strerror(errno));
		free(targets[k].file);
	}
	report(0, "seqwrite");
	report(1, "seqwrite.fsync");
	report(2, "seqread");
	free(seq_buf);
}

/* ------------------------------------------------------------------ stat */

static long stat_n;

static void stat_pass(struct target *t, long c)
{
	(void)c;
	struct stat st;
	for (long i = 0; i < stat_n; i++)
		if (stat(t->paths[i], &st) < 0)
			die("stat %s: %s", t->paths[i], strerror(errno));
}

static void cmd_stat(long nfiles, long passes)
{
	stat_n = nfiles;
	for (int k = 0; k < ntargets; k++) {
		struct target *t = &targets[k];
		struct stat st;
		t->paths = stat_paths(t->dir, nfiles);
		/* Warm-up: the on-disk inodes of the tree (native, or the
		 * daemon's backing files) into the page cache, so no target pays
		 * disk reads. */
		for (long i = 0; i < nfiles; i++)
			if (stat(t->paths[i], &st) < 0)
				die("stat %s: %s (run 'fsbench prep' first)", t->paths[i], strerror(errno));
	}
	/* Then forget every dentry and inode (not the page cache): the first
	 * pass looks every name up afresh -- for FUSE a LOOKUP per path
	 * component -- and later passes hit whatever the kernel may cache
	 * under the daemon's entry and attribute timeouts. */
	drop_caches(2);
	interleave(passes, 0, stat_pass);
	for (int k = 0; k < ntargets; k++)
		free_paths(targets[k].paths, nfiles);
	report(0, "stat");
}

/* ------------------------------------------------------------------ exec */

static long exec_n, exec_chunk;

static void exec_chunk_run(struct target *t, long c)
{
	long end = (c + 1) * exec_chunk < exec_n ? (c + 1) * exec_chunk : exec_n;
	char *argv[] = { t->file, NULL };
	for (long i = c * exec_chunk; i < end; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			execve(t->file, argv, environ);
			fprintf(stderr, "%s: execve %s: %s\n", prog, t->file, strerror(errno));
			_exit(127);
		}
		int status;
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				die("waitpid: %s", strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			die("exec %s: child status 0x%x", t->file, status);
	}
}

static void cmd_exec(long n, long chunk)
{
	exec_n = n;
	exec_chunk = chunk;
	for (int k = 0; k < ntargets; k++)
		targets[k].file = join(targets[k].dir, EXEC_SCRIPT);
	interleave((n + chunk - 1) / chunk, 0, exec_chunk_run);
	for (int k = 0; k < ntargets; k++)
		free(targets[k].file);
	report(0, "exec");
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		usage(stdout, 0);
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("fsbench %s\n", FIELDRIG_VERSION);
		return 0;
	}
	if (argc < 2)
		usage(stderr, 2);
	const char *cmd = argv[1];
	if (!strcmp(cmd, "prep") && argc == 4) {
		struct stat st;
		if (stat(argv[2], &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "%s: %s: not a directory\n", prog, argv[2]);
			return 2;
		}
		cmd_prep(argv[2], parse_count(argv[3], "NFILES", 1, 10000000));
	} else if (!strcmp(cmd, "small") && argc >= 6) {
		long n = parse_count(argv[2], "NFILES", 1, 10000000);
		long size = parse_count(argv[3], "SIZE", 0, 1 << 30);
		long chunk = parse_count(argv[4], "CHUNK", 1, 10000000);
		parse_targets(argc - 5, argv + 5);
		cmd_small(n, size, chunk);
	} else if (!strcmp(cmd, "seq") && argc >= 5) {
		long mib = parse_count(argv[2], "MIB", 1, 1 << 20);
		long chunk = parse_count(argv[3], "CHUNK_MIB", 1, 1 << 20);
		parse_targets(argc - 4, argv + 4);
		cmd_seq(mib, chunk);
	} else if (!strcmp(cmd, "stat") && argc >= 5) {
		long n = parse_count(argv[2], "NFILES", 1, 10000000);
		long passes = parse_count(argv[3], "PASSES", 1, 1000000);
		parse_targets(argc - 4, argv + 4);
		cmd_stat(n, passes);
	} else if (!strcmp(cmd, "exec") && argc >= 5) {
		long n = parse_count(argv[2], "N", 1, 10000000);
		long chunk = parse_count(argv[3], "CHUNK", 1, 10000000);
		parse_targets(argc - 4, argv + 4);
		cmd_exec(n, chunk);
	} else {
		usage(stderr, 2);
	}
	if (fflush(stdout) != 0)
		die("stdout: %s", strerror(errno));
	return 0;
}
