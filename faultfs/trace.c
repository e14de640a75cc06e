/* The fault trace: one JSON object per line for every injected fault (and,
 * with --trace-all, every operation), appended to the --trace file and kept
 * in a memory ring that `faultfs ctl trace [--follow]` reads.
 *
 * Lines are formatted with jansson so paths with quotes, control characters
 * or invalid UTF-8 still give valid JSON. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "faultfs_i.h"

struct ff_trace {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;                 /* --trace file, or -1 */
	char **ring;
	size_t ring_size;
	uint64_t next;          /* sequence number of the next line */
};

struct ff_trace *ff_trace_new(const char *file, size_t ring_size, char *err, size_t errlen)
{
	struct ff_trace *t = calloc(1, sizeof(*t));

	if (t == NULL)
		goto out_nomem;
	t->ring_size = ring_size != 0 ? ring_size : 1;
	t->ring = calloc(t->ring_size, sizeof(*t->ring));
	if (t->ring == NULL)
		goto out_free;
	t->fd = -1;
	if (file != NULL) {
		t->fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (t->fd < 0) {
			snprintf(err, errlen, "%s: cannot open trace file: %s", file, strerror(errno));
			free(t->ring);
			free(t);
			return NULL;
		}
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	return t;

out_free:
	free(t);
out_nomem:
	snprintf(err, errlen, "out of memory");
	return NULL;
}

void ff_trace_free(struct ff_trace *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ring_size; i++)
		free(t->ring[i]);
	free(t->ring);
	if (t->fd >= 0)
		close(t->fd);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

/* Paths are bytes, JSON strings are UTF-8: a path that is not valid UTF-8
 * is written with each byte above 0x7f shown as '?', so the line stays valid
 * JSON and still points at the right place. */
static json_t *path_string(const char *path)
{
	json_t *j = json_string(path);
	char *copy;

	if (j != NULL)
		return j;
	copy = strdup(path);
	if (copy == NULL)
		return json_string("?");
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void ff_trace_write(struct ff_trace *t, const struct ff_trace_event *ev)
{
	char when[64];
	const char *comm;
	json_t *o;
	char *line;
	size_t len;

	if (t == NULL)
		return;
	timestamp(when, sizeof(when));
	comm = ff_caller_comm(ev->caller);
	o = json_object();
	if (o == NULL)
		return;
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "op", json_string(ev->op));
	json_object_set_new(o, "path", path_string(ev->path));
	if (ev->path2 != NULL)
		json_object_set_new(o, "path2", path_string(ev->path2));
	json_object_set_new(o, "pid", json_integer(ev->caller->c.pid));
	json_object_set_new(o, "uid", json_integer(ev->caller->c.uid));
	json_object_set_new(o, "gid", json_integer(ev->caller->c.gid));
	json_object_set_new(o, "comm", comm != NULL ? json_string(comm) : json_null());
	json_object_set_new(o, "rule", ev->rule_id != 0 ? json_integer(ev->rule_id) : json_null());
	json_object_set_new(o, "result", json_string(ev->result));
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return;
	len = strlen(line);
	line[len] = '\n'; /* json_dumps leaves room only for the NUL: replace it */
	pthread_mutex_lock(&t->lock);
	if (t->fd >= 0 && write(t->fd, line, len + 1) < 0) {
		/* A full disk under the trace file must not fail the
		 * filesystem; the ring still has the line. */
	}
	line[len] = '\0';
	free(t->ring[t->next % t->ring_size]);
	t->ring[t->next % t->ring_size] = line;
	t->next++;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

uint64_t ff_trace_count(struct ff_trace *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->next;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void ff_trace_wake(struct ff_trace *t)
{
	pthread_mutex_lock(&t->lock);
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static int send_line(int fd, const char *line)
{
	size_t len = strlen(line), off = 0;

	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return send(fd, "\n", 1, MSG_NOSIGNAL) == 1 ? 0 : -EPIPE;
}

static bool peer_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

int ff_trace_stream(struct ff_trace *t, int fd, bool follow, atomic_bool *stop)
{
	uint64_t seq;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	seq = t->next > t->ring_size ? t->next - t->ring_size : 0;
	for (;;) {
		while (seq < t->next && rc == 0) {
			char *line = strdup(t->ring[seq % t->ring_size]);

			seq++;
			if (line == NULL)
				continue;
			/* Never hold the lock across a send to a slow reader:
			 * the filesystem would stall behind it. */
			pthread_mutex_unlock(&t->lock);
			rc = send_line(fd, line);
			free(line);
			pthread_mutex_lock(&t->lock);
			/* A reader that fell more than a ring behind skips
			 * what was overwritten. */
			if (t->next > t->ring_size && seq < t->next - t->ring_size)
				seq = t->next - t->ring_size;
		}
		if (rc != 0 || !follow || atomic_load(stop))
			break;
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 200 * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&t->cond, &t->lock, &until);
		}
		if (seq == t->next) {
			pthread_mutex_unlock(&t->lock);
			bool gone = peer_gone(fd);
			pthread_mutex_lock(&t->lock);
			if (gone)
				break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}
