/* /proc walks: start times, descendants and environment markers. */
#include "proctree.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PF_KTHREAD 0x00200000u	/* linux/sched.h: a kernel thread */

/* Reads /proc/PID/stat and returns the state, ppid, flags and start time.
 * The command name in parentheses may hold anything, ')' included, so the
 * fields are counted from the last ')'. */
static int read_stat(pid_t pid, char *state, pid_t *ppid, unsigned *flags, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	unsigned long flags_v = 0;
	int fd, field, ppid_v = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 || errno == ESRCH ? -ENOENT : -errno;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -EIO;
	p += 2;
	/* p is at field 3 (state). */
	if (state)
		*state = *p;
	for (field = 3; field < 22 && *p; field++) {
		if (field == 4)
			ppid_v = atoi(p);
		else if (field == 9)
			flags_v = strtoul(p, NULL, 10);
		p = strchr(p, ' ');
		if (p == NULL)
			return -EIO;
		p++;
	}
	if (field != 22 || sscanf(p, "%llu", &st) != 1)
		return -EIO;
	if (ppid)
		*ppid = ppid_v;
	if (flags)
		*flags = (unsigned)flags_v;
	if (start)
		*start = st;
	return 0;
}

int proc_start_time(pid_t pid, uint64_t *start)
{
	return read_stat(pid, NULL, NULL, NULL, start);
}

int proc_alive(pid_t pid, uint64_t start)
{
	uint64_t st;
	char state;

	if (pid <= 0 || read_stat(pid, &state, NULL, NULL, &st) < 0)
		return 0;
	if (state == 'Z' || state == 'X')
		return 0;
	return start == 0 || st == start;
}

/* Whether /proc/PID/environ holds marker as a whole entry. */
static bool has_marker(pid_t pid, const char *marker)
{
	char path[64], buf[8192];
	size_t ml = strlen(marker), carry = 0;
	bool found = false;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* Entries are NUL-separated; one may straddle two reads, so keep the
	 * unfinished tail in front of the next read. */
	while (!found && (n = read(fd, buf + carry, sizeof(buf) - carry)) > 0) {
		size_t len = carry + (size_t)n, off = 0;

		while (off < len) {
			char *z = memchr(buf + off, '\0', len - off);
			size_t el;

			if (z == NULL)
				break;
			el = (size_t)(z - (buf + off));
			if (el == ml && memcmp(buf + off, marker, ml) == 0) {
				found = true;
				break;
			}
			off += el + 1;
		}
		carry = len - off;
		if (carry == sizeof(buf))
			carry = 0;	/* an entry longer than buf: not ours */
		else
			memmove(buf, buf + off, carry);
	}
	close(fd);
	return found;
}

struct proc_ent {
	pid_t pid, ppid;
};

/* Snapshot of pid and ppid of every live process, kernel threads left out
 * (they have no environment to carry a marker, and never descend from a
 * run). */
static int snapshot(struct proc_ent **out, size_t *n_out)
{
	struct proc_ent *v = NULL, *nv;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		pid_t pid, ppid;
		unsigned flags;
		char state;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = (pid_t)atoi(de->d_name);
		if (read_stat(pid, &state, &ppid, &flags, NULL) < 0 || state == 'Z' || state == 'X' ||
		    (flags & PF_KTHREAD))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n].pid = pid;
		v[n].ppid = ppid;
		n++;
	}
	closedir(d);
	*out = v;
	*n_out = n;
	return 0;
}

static bool in_list(pid_t p, const pid_t *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == p)
			return true;
	return false;
}

int proc_signal_tree(pid_t root, const pid_t *skip, size_t n_skip, const char *marker, int sig)
{
	struct proc_ent *v;
	size_t n, i, n_in;
	bool *in, grew;
	pid_t self = getpid();
	int ret, count = 0;

	ret = snapshot(&v, &n);
	if (ret < 0)
		return ret;
	in = calloc(n ? n : 1, sizeof(*in));
	if (in == NULL) {
		free(v);
		return -ENOMEM;
	}
	/* Mark the descendants of root: repeat until no new child of a
	 * marked process appears (the snapshot is not in tree order). */
	n_in = 0;
	do {
		grew = false;
		for (i = 0; i < n; i++) {
			if (in[i] || v[i].pid == self || in_list(v[i].pid, skip, n_skip))
				continue;
			if (root > 0 && v[i].ppid == root) {
				in[i] = grew = true;
				n_in++;
				continue;
			}
			for (size_t j = 0; j < n; j++) {
				if (in[j] && v[j].pid == v[i].ppid) {
					in[i] = grew = true;
					n_in++;
					break;
				}
			}
		}
	} while (grew);
	for (i = 0; i < n; i++) {
		if (!in[i] && marker && v[i].pid != self && !in_list(v[i].pid, skip, n_skip) &&
		    has_marker(v[i].pid, marker))
			in[i] = true;
		if (!in[i])
			continue;
		if (kill(v[i].pid, sig) == 0) {
			count++;
			if (sig == SIGTERM)
				kill(v[i].pid, SIGCONT);
		}
	}
	(void)n_in;
	free(in);
	free(v);
	return count;
}

int proc_count_marked(const char *marker)
{
	struct proc_ent *v;
	size_t n, i;
	int ret, count = 0;

	ret = snapshot(&v, &n);
	if (ret < 0)
		return ret;
	for (i = 0; i < n; i++)
		if (v[i].pid != getpid() && has_marker(v[i].pid, marker))
			count++;
	free(v);
	return count;
}
