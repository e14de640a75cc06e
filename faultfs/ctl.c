/* The control channel of a mounted faultfs: an abstract unix socket whose
 * name the mount root publishes in the user.faultfs.ctl extended attribute,
 * so `faultfs ctl MOUNTPOINT …` finds the instance from the mountpoint alone
 * and nothing is left on disk if the daemon dies.
 *
 * Protocol: the client sends one command line; the server answers one JSON
 * line ({"ok":true,…} or {"ok":false,"error":"…"}), except for trace, which
 * streams trace lines until the end of the ring (or, following, until the
 * client hangs up or the filesystem unmounts).  Changing rules needs the
 * peer to be root or the user who mounted; reading is open to all. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "faultfs_i.h"

struct ff_ctl {
	struct ff_fs *fs;
	int listen_fd;
	int wake_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int active;             /* connection threads still running */
	atomic_bool stop;
};

struct conn {
	struct ff_ctl *ctl;
	int fd;
	uid_t peer_uid;
};

static void send_json(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	if (s != NULL) {
		size_t len = strlen(s) + 1, off = 0;

		s[len - 1] = '\n';
		/* A long answer may go out in pieces; a client that went away
		 * ends the loop with an error, and there is no one to tell. */
		while (off < len) {
			ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(s);
	}
	json_decref(o);
}

static void send_error(int fd, const char *msg)
{
	send_json(fd, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

/* An error in what the client sent (a bad rule, a malformed id), which the
 * client reports with the usage-error exit code. */
static void send_input_error(int fd, const char *msg)
{
	send_json(fd, json_pack("{s:b, s:s, s:b}", "ok", 0, "error", msg, "input", 1));
}

static json_t *rules_json(struct ff_fs *fs, bool with_counts)
{
	struct ff_rule_info *info;
	int n = ff_rules_snapshot(fs->rules, &info);
	json_t *arr = json_array();

	for (int i = 0; i < n; i++) {
		json_t *r = json_pack("{s:I, s:s}", "id", (json_int_t)info[i].id, "expr", info[i].expr);

		if (with_counts) {
			json_object_set_new(r, "matched", json_integer((json_int_t)info[i].matched));
			json_object_set_new(r, "fired", json_integer((json_int_t)info[i].fired));
		}
		json_array_append_new(arr, r);
	}
	if (n > 0)
		ff_rules_info_free(info, n);
	return arr;
}

/* Runs one command.  Returns after answering. */
static void handle(struct conn *c, char *line)
{
	struct ff_fs *fs = c->ctl->fs;
	bool may_change = c->peer_uid == 0 || c->peer_uid == fs->owner;
	char err[512];
	char *arg = strchr(line, ' ');

	if (arg != NULL)
		*arg++ = '\0';
	if (strcmp(line, "add") == 0 || strcmp(line, "remove") == 0 || strcmp(line, "clear") == 0) {
		if (!may_change) {
			snprintf(err, sizeof(err), "permission denied: only uid %u (who mounted) and root may change rules",
			         (unsigned)fs->owner);
			send_error(c->fd, err);
			return;
		}
	}
	if (strcmp(line, "add") == 0) {
		struct ff_rule *r = ff_rule_parse(arg != NULL ? arg : "", err, sizeof(err));
		uint32_t id;

		if (r == NULL) {
			send_input_error(c->fd, err);
			return;
		}
		id = ff_rules_add(fs->rules, r);
		/* Answer only once the kernel has forgotten what the new rule
		 * could contradict: then the very next operation sees it. */
		ff_fs_invalidate(fs);
		send_json(c->fd, json_pack("{s:b, s:I}", "ok", 1, "id", (json_int_t)id));
	} else if (strcmp(line, "remove") == 0) {
		char *end = NULL;
		unsigned long id = arg != NULL ? strtoul(arg, &end, 10) : 0;

		if (arg == NULL || end == arg || *end != '\0' || id == 0 || id > UINT32_MAX) {
			send_input_error(c->fd, "remove: expected a rule id (see `faultfs ctl MOUNTPOINT list`)");
			return;
		}
		if (ff_rules_remove(fs->rules, (uint32_t)id) < 0) {
			snprintf(err, sizeof(err), "remove: no rule with id %lu", id);
			send_error(c->fd, err);
			return;
		}
		ff_fs_invalidate(fs);
		send_json(c->fd, json_pack("{s:b, s:I}", "ok", 1, "id", (json_int_t)id));
	} else if (strcmp(line, "clear") == 0) {
		ff_rules_clear(fs->rules);
		ff_fs_invalidate(fs);
		send_json(c->fd, json_pack("{s:b}", "ok", 1));
	} else if (strcmp(line, "list") == 0) {
		send_json(c->fd, json_pack("{s:b, s:o}", "ok", 1, "rules", rules_json(fs, false)));
	} else if (strcmp(line, "stats") == 0) {
		send_json(c->fd, json_pack("{s:b, s:I, s:I, s:I, s:I, s:o}", "ok", 1,
		          "ops", (json_int_t)atomic_load(&fs->stats.ops),
		          "faults", (json_int_t)atomic_load(&fs->stats.faults),
		          "invalidations", (json_int_t)atomic_load(&fs->stats.invalidations),
		          "trace_lines", (json_int_t)ff_trace_count(fs->trace),
		          "rules", rules_json(fs, true)));
	} else if (strcmp(line, "trace") == 0) {
		bool follow = arg != NULL && strcmp(arg, "--follow") == 0;

		ff_trace_stream(fs->trace, c->fd, follow, &c->ctl->stop);
	} else {
		snprintf(err, sizeof(err), "unknown command '%.64s'", line);
		send_input_error(c->fd, err);
	}
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct ff_ctl *ctl = c->ctl;
	char line[FF_CTL_LINE_MAX + 1];
	size_t len = 0;

	/* Read one line; a client that sends nothing for 5 s is dropped. */
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			goto out;
		n = recv(c->fd, line + len, sizeof(line) - 1 - len, 0);
		if (n <= 0)
			goto out;
		len += (size_t)n;
		line[len] = '\0';
		if (memchr(line, '\n', len) != NULL)
			break;
		if (len == sizeof(line) - 1) {
			send_error(c->fd, "command line too long");
			goto out;
		}
	}
	*strchr(line, '\n') = '\0';
	handle(c, line);
out:
	close(c->fd);
	free(c);
	pthread_mutex_lock(&ctl->lock);
	if (--ctl->active == 0)
		pthread_cond_broadcast(&ctl->idle);
	pthread_mutex_unlock(&ctl->lock);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct ff_ctl *ctl = arg;

	while (!atomic_load(&ctl->stop)) {
		struct pollfd p[2] = {
			{ .fd = ctl->listen_fd, .events = POLLIN },
			{ .fd = ctl->wake_fd, .events = POLLIN },
		};
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		struct conn *c;
		pthread_t t;
		int fd;

		if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
			continue;
		fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		c = calloc(1, sizeof(*c));
		if (c == NULL || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->ctl = ctl;
		c->fd = fd;
		c->peer_uid = cred.uid;
		pthread_mutex_lock(&ctl->lock);
		ctl->active++;
		pthread_mutex_unlock(&ctl->lock);
		if (pthread_create(&t, NULL, conn_main, c) != 0) {
			pthread_mutex_lock(&ctl->lock);
			ctl->active--;
			pthread_mutex_unlock(&ctl->lock);
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

struct ff_ctl *ff_ctl_start(struct ff_fs *fs, char *err, size_t errlen)
{
	struct ff_ctl *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	socklen_t alen;
	size_t nlen = strlen(fs->ctl_name);

	if (ctl == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ctl->fs = fs;
	ctl->wake_fd = -1;
	/* Abstract namespace: the first byte of sun_path is NUL. */
	memcpy(addr.sun_path + 1, fs->ctl_name, nlen);
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nlen);
	ctl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->listen_fd < 0 || bind(ctl->listen_fd, (struct sockaddr *)&addr, alen) < 0 ||
	    listen(ctl->listen_fd, 16) < 0) {
		snprintf(err, errlen, "control socket @%s: %s", fs->ctl_name, strerror(errno));
		goto out_close;
	}
	ctl->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (ctl->wake_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto out_close;
	}
	pthread_mutex_init(&ctl->lock, NULL);
	pthread_cond_init(&ctl->idle, NULL);
	if (pthread_create(&ctl->thread, NULL, accept_main, ctl) != 0) {
		snprintf(err, errlen, "cannot start control thread");
		goto out_destroy;
	}
	return ctl;

out_destroy:
	pthread_cond_destroy(&ctl->idle);
	pthread_mutex_destroy(&ctl->lock);
out_close:
	if (ctl->wake_fd >= 0)
		close(ctl->wake_fd);
	if (ctl->listen_fd >= 0)
		close(ctl->listen_fd);
	free(ctl);
	return NULL;
}

void ff_ctl_stop(struct ff_ctl *ctl)
{
	uint64_t one = 1;

	if (ctl == NULL)
		return;
	atomic_store(&ctl->stop, true);
	if (write(ctl->wake_fd, &one, sizeof(one)) < 0) {
		/* eventfd writes fail only on overflow; the flag suffices. */
	}
	pthread_join(ctl->thread, NULL);
	/* Followers of the trace notice the flag within one wait period. */
	ff_trace_wake(ctl->fs->trace);
	pthread_mutex_lock(&ctl->lock);
	while (ctl->active > 0)
		pthread_cond_wait(&ctl->idle, &ctl->lock);
	pthread_mutex_unlock(&ctl->lock);
	close(ctl->listen_fd);
	close(ctl->wake_fd);
	pthread_cond_destroy(&ctl->idle);
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}
