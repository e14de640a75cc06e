/* fsbench: the timed workloads of ci/bench-faultfs.
 *
 * Each command runs one workload inside DIR (a native directory or a FUSE
 * mount) and prints one "KEY SECONDS" line per measured quantity on stdout,
 * timed with CLOCK_MONOTONIC around the workload only (set-up and clean-up
 * are not timed).  Every system call is checked: a workload that fails
 * prints a one-line error on stderr and exits 1, so a broken filesystem can
 * never pass as a fast one.
 *
 *   fsbench prep DIR NFILES           create the stat tree and the exec script
 *   fsbench small DIR NFILES SIZE     create+write+close NFILES files, then unlink them
 *   fsbench seq DIR MIB               sequential write, sync + drop_caches, sequential read
 *   fsbench stat DIR NFILES PASSES    stat() every file of the tree, PASSES times
 *   fsbench exec DIR N                fork+execve+waitpid the exec script N times
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
		"       fsbench small DIR NFILES SIZE\n"
		"       fsbench seq DIR MIB\n"
		"       fsbench stat DIR NFILES PASSES\n"
		"       fsbench exec DIR N\n"
		"\n"
		"Runs one timed file system workload in DIR and prints \"KEY SECONDS\" lines.\n"
		"  prep   creates DIR/stat/dNN/fNNNNN (NFILES files over %d dirs) and DIR/%s\n"
		"  small  sync + drop_caches=3 (untimed; needs root), then creates, writes SIZE\n"
		"         bytes to and closes NFILES files in a new DIR/small.XXXXXX, then unlinks\n"
		"         them (the empty directory is left behind)\n"
		"         (keys: small, small.create, small.unlink)\n"
		"  seq    sync + drop_caches=3 (untimed), writes MIB MiB to a new file with 1 MiB\n"
		"         writes and closes it (seqwrite), fsyncs it (seqwrite.fsync, the flush\n"
		"         alone), sync + drop_caches=3 (untimed), reads it back with 1 MiB reads\n"
		"         (seqread), unlinks it\n"
		"  stat   one untimed warm-up pass, sync + drop_caches=2 (dentries and inodes),\n"
		"         then PASSES timed passes of stat() over the tree\n"
		"  exec   fork+execve+waitpid of DIR/%s (a #!/bin/sh script that exits 0) N times\n"
		"With FSBENCH_DAEMON_PID set, also prints KEY.daemon_cpu: that process's CPU\n"
		"time (user+system, all threads) during each timed section.\n"
		"Exit status: 0 ok, 1 workload failed, 2 usage error.\n",
		STAT_DIRS, EXEC_SCRIPT, EXEC_SCRIPT);
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

/* CPU time (user + system, all threads, exited ones included) of the FUSE
 * daemon named by FSBENCH_DAEMON_PID, in seconds; -1 when unset.  Less
 * sensitive to a busy machine than wall time: it is what the daemon itself
 * spends per workload.  Clock-tick resolution (usually 10 ms). */
static double daemon_cpu(void)
{
	static long pid = -1;
	static double tick;
	char path[64], buf[1024];

	if (pid == -1) {
		const char *e = getenv("FSBENCH_DAEMON_PID");
		pid = (e != NULL && *e != '\0') ? strtol(e, NULL, 10) : 0;
		tick = (double)sysconf(_SC_CLK_TCK);
	}
	if (pid <= 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s (FSBENCH_DAEMON_PID)", path, strerror(errno));
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

static void print_cpu(const char *key, double c0, double c1)
{
	if (c0 >= 0)
		printf("%s.daemon_cpu %.6f\n", key, c1 - c0);
}

static char *join(const char *a, const char *b)
{
	char *p;
	if (asprintf(&p, "%s/%s", a, b) < 0)
		die("out of memory");
	return p;
}

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
	for (long i = 0; i < nfiles; i++) {
		write_file(paths[i], "x\n", 2, 0644);
		free(paths[i]);
	}
	free(paths);
	static const char script[] = "#!/bin/sh\nexit 0\n";
	p = join(dir, EXEC_SCRIPT);
	write_file(p, script, sizeof script - 1, 0755);
	free(p);
}

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

static void cmd_small(const char *dir, long nfiles, long size)
{
	/* A new directory per run, left in place (empty) afterwards: when DIR
	 * carries ext4's TOPDIR flag (chattr +T, set by ci/bench-faultfs), each
	 * new one lands in a block group without the inodes freed by earlier
	 * runs -- see drop_caches() below for why that matters. */
	char *sdir = join(dir, "small.XXXXXX");
	if (!mkdtemp(sdir))
		die("mkdtemp %s: %s", sdir, strerror(errno));
	char **paths = calloc((size_t)nfiles, sizeof *paths);
	char *buf = malloc((size_t)size + 1);
	if (!paths || !buf)
		die("out of memory");
	memset(buf, 'a', (size_t)size);
	for (long i = 0; i < nfiles; i++)
		if (asprintf(&paths[i], "%s/s%05ld", sdir, i) < 0)
			die("out of memory");

	/* ext4 without a journal skips inodes freed in the last 60 s (5 min
	 * while their inode table block is dirty and cached; "recently_deleted"
	 * in fs/ext4/ialloc.c), rescanning them on every create: 5000 creates
	 * after 5000 deletes cost 5x more.  A fresh block group (above) and
	 * clean, dropped caches give every variant the same allocator state. */
	drop_caches(3);

	double c0 = daemon_cpu();
	double t0 = now();
	for (long i = 0; i < nfiles; i++) {
		int fd = open(paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create %s: %s", paths[i], strerror(errno));
		write_all(fd, buf, (size_t)size, paths[i]);
		if (close(fd) < 0)
			die("close %s: %s", paths[i], strerror(errno));
	}
	double t1 = now();
	for (long i = 0; i < nfiles; i++)
		if (unlink(paths[i]) < 0)
			die("unlink %s: %s", paths[i], strerror(errno));
	double t2 = now();
	double c1 = daemon_cpu();

	printf("small %.6f\nsmall.create %.6f\nsmall.unlink %.6f\n", t2 - t0, t1 - t0, t2 - t1);
	print_cpu("small", c0, c1);
	for (long i = 0; i < nfiles; i++)
		free(paths[i]);
	free(paths);
	free(buf);
	free(sdir);
}

static void cmd_seq(const char *dir, long mib)
{
	char *path = join(dir, SEQ_FILE);
	char *buf = NULL;
	if (posix_memalign((void **)&buf, 4096, SEQ_BUF))
		die("out of memory");
	for (size_t i = 0; i < SEQ_BUF; i++)
		buf[i] = (char)('a' + i % 23);

	drop_caches(3);   /* no dirty data of earlier workloads flushes during the timing */

	/* Write: data into the file system (the page cache for native, the daemon
	 * for FUSE), timed to close; the flush to disk is timed on its own. */
	double c0 = daemon_cpu();
	double t0 = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("create %s: %s", path, strerror(errno));
	for (long i = 0; i < mib; i++)
		write_all(fd, buf, SEQ_BUF, path);
	if (close(fd) < 0)
		die("close %s: %s", path, strerror(errno));
	double t1 = now();
	double c1 = daemon_cpu();
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		die("fsync %s: %s", path, strerror(errno));
	close(fd);
	double t2 = now();

	drop_caches(3);

	double c3 = daemon_cpu();
	double t3 = now();
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	long long total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, SEQ_BUF);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read %s: %s", path, strerror(errno));
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	double t4 = now();
	double c4 = daemon_cpu();
	if (total != (long long)mib * SEQ_BUF)
		die("read %s: got %lld bytes, wrote %lld", path, total, (long long)mib * SEQ_BUF);
	if (unlink(path) < 0)
		die("unlink %s: %s", path, strerror(errno));

	printf("seqwrite %.6f\nseqwrite.fsync %.6f\nseqread %.6f\n", t1 - t0, t2 - t1, t4 - t3);
	print_cpu("seqwrite", c0, c1);
	print_cpu("seqread", c3, c4);
	free(buf);
	free(path);
}

static void cmd_stat(const char *dir, long nfiles, long passes)
{
	char **paths = stat_paths(dir, nfiles);
	struct stat st;
	/* Warm-up: the on-disk inodes of the tree (native, or the daemon's
	 * backing files) into the page cache, so no variant pays disk reads. */
	for (long i = 0; i < nfiles; i++)
		if (stat(paths[i], &st) < 0)
			die("stat %s: %s (run 'fsbench prep' first)", paths[i], strerror(errno));
	/* Then forget every dentry and inode (not the page cache): the first
	 * timed pass looks every name up afresh -- for FUSE a LOOKUP per path
	 * component -- and the later passes hit whatever the kernel may cache
	 * under the daemon's entry and attribute timeouts. */
	drop_caches(2);
	double c0 = daemon_cpu();
	double t0 = now();
	for (long p = 0; p < passes; p++)
		for (long i = 0; i < nfiles; i++)
			if (stat(paths[i], &st) < 0)
				die("stat %s: %s", paths[i], strerror(errno));
	double t1 = now();
	double c1 = daemon_cpu();
	printf("stat %.6f\n", t1 - t0);
	print_cpu("stat", c0, c1);
	for (long i = 0; i < nfiles; i++)
		free(paths[i]);
	free(paths);
}

static void cmd_exec(const char *dir, long n)
{
	char *path = join(dir, EXEC_SCRIPT);
	char *argv[] = { path, NULL };
	double c0 = daemon_cpu();
	double t0 = now();
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			execve(path, argv, environ);
			fprintf(stderr, "%s: execve %s: %s\n", prog, path, strerror(errno));
			_exit(127);
		}
		int status;
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				die("waitpid: %s", strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			die("exec %s: child status 0x%x", path, status);
	}
	double t1 = now();
	double c1 = daemon_cpu();
	printf("exec %.6f\n", t1 - t0);
	print_cpu("exec", c0, c1);
	free(path);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		usage(stdout, 0);
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("fsbench %s\n", FIELDRIG_VERSION);
		return 0;
	}
	if (argc < 3)
		usage(stderr, 2);
	const char *cmd = argv[1], *dir = argv[2];
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: %s: not a directory\n", prog, dir);
		return 2;
	}
	if (!strcmp(cmd, "prep") && argc == 4)
		cmd_prep(dir, parse_count(argv[3], "NFILES", 1, 10000000));
	else if (!strcmp(cmd, "small") && argc == 5)
		cmd_small(dir, parse_count(argv[3], "NFILES", 1, 10000000),
			  parse_count(argv[4], "SIZE", 0, 1 << 30));
	else if (!strcmp(cmd, "seq") && argc == 4)
		cmd_seq(dir, parse_count(argv[3], "MIB", 1, 1 << 20));
	else if (!strcmp(cmd, "stat") && argc == 5)
		cmd_stat(dir, parse_count(argv[3], "NFILES", 1, 10000000),
			 parse_count(argv[4], "PASSES", 1, 1000000));
	else if (!strcmp(cmd, "exec") && argc == 4)
		cmd_exec(dir, parse_count(argv[3], "N", 1, 10000000));
	else
		usage(stderr, 2);
	if (fflush(stdout) != 0)
		die("stdout: %s", strerror(errno));
	return 0;
}
