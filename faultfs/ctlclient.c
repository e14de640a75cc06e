/* `faultfs ctl MOUNTPOINT COMMAND [ARG]`: talks to a mounted instance.
 *
 *   add EXPR        add a rule at the end of the table; prints its id
 *   remove ID       remove a rule
 *   clear           remove every rule
 *   list            print the rules in order
 *   stats           print operation, fault and per-rule hit counts
 *   trace [--follow]  print the fault trace (JSON lines)
 *
 * --json prints the daemon's JSON answer as it is.  Exit codes: 0 success,
 * 1 the daemon refused (unknown id, permission), 2 usage or input error (a
 * bad rule expression) or no faultfs at MOUNTPOINT. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <jansson.h>

#include "faultfs_i.h"

static const char ctl_usage[] =
	"usage: faultfs ctl MOUNTPOINT add EXPR | remove ID | clear | list | stats | trace [--follow]\n"
	"       [--json]\n";

static int connect_to(const char *mountpoint)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char name[sizeof(addr.sun_path)];
	ssize_t n = getxattr(mountpoint, FF_CTL_XATTR, name, sizeof(name) - 2);
	int fd;

	if (n < 0) {
		if (errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP)
			fprintf(stderr, "faultfs ctl: %s: not a faultfs mount (no %s attribute)\n",
			        mountpoint, FF_CTL_XATTR);
		else
			fprintf(stderr, "faultfs ctl: %s: %s\n", mountpoint, strerror(errno));
		return -1;
	}
	memcpy(addr.sun_path + 1, name, (size_t)n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr,
	                      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) < 0) {
		fprintf(stderr, "faultfs ctl: %s: cannot reach the daemon: %s\n", mountpoint, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Prints a daemon answer for people. */
static void print_human(const char *cmd, json_t *ans)
{
	json_t *rules = json_object_get(ans, "rules");
	size_t i;
	json_t *r;

	if (strcmp(cmd, "add") == 0) {
		printf("%lld\n", (long long)json_integer_value(json_object_get(ans, "id")));
	} else if (strcmp(cmd, "list") == 0) {
		json_array_foreach(rules, i, r)
			printf("%lld\t%s\n", (long long)json_integer_value(json_object_get(r, "id")),
			       json_string_value(json_object_get(r, "expr")));
	} else if (strcmp(cmd, "stats") == 0) {
		printf("ops %lld\nfaults %lld\ninvalidations %lld\ntrace_lines %lld\n",
		       (long long)json_integer_value(json_object_get(ans, "ops")),
		       (long long)json_integer_value(json_object_get(ans, "faults")),
		       (long long)json_integer_value(json_object_get(ans, "invalidations")),
		       (long long)json_integer_value(json_object_get(ans, "trace_lines")));
		json_array_foreach(rules, i, r)
			printf("rule %lld\tmatched %lld\tfired %lld\t%s\n",
			       (long long)json_integer_value(json_object_get(r, "id")),
			       (long long)json_integer_value(json_object_get(r, "matched")),
			       (long long)json_integer_value(json_object_get(r, "fired")),
			       json_string_value(json_object_get(r, "expr")));
	}
}

int ff_ctl_client_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "follow", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, follow = false;
	const char *mountpoint, *cmd, *arg = NULL;
	char line[FF_CTL_LINE_MAX + 1];
	json_t *ans;
	json_error_t jerr;
	FILE *in;
	int fd, c, rc;

	/* "+" keeps getopt from reading a rule expression's dashes as flags
	 * once the command has started; flags come before or after it. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'f')
			follow = true;
		else if (c == 'h') {
			fputs(ctl_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "faultfs ctl: unknown option '%s'\n%s", argv[optind - 1], ctl_usage);
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "faultfs ctl: expected MOUNTPOINT and a command\n%s", ctl_usage);
		return 2;
	}
	mountpoint = argv[optind++];
	cmd = argv[optind++];
	for (; optind < argc; optind++) {
		if (strcmp(argv[optind], "--json") == 0)
			json = true;
		else if (strcmp(argv[optind], "--follow") == 0)
			follow = true;
		else if (arg == NULL)
			arg = argv[optind];
		else {
			fprintf(stderr, "faultfs ctl: unexpected argument '%s'\n%s", argv[optind], ctl_usage);
			return 2;
		}
	}
	if ((strcmp(cmd, "add") == 0 || strcmp(cmd, "remove") == 0) && arg == NULL) {
		fprintf(stderr, "faultfs ctl: %s needs an argument\n%s", cmd, ctl_usage);
		return 2;
	}
	if (strcmp(cmd, "add") != 0 && strcmp(cmd, "remove") != 0 && arg != NULL) {
		fprintf(stderr, "faultfs ctl: %s takes no argument\n%s", cmd, ctl_usage);
		return 2;
	}
	if (strcmp(cmd, "add") != 0 && strcmp(cmd, "remove") != 0 && strcmp(cmd, "clear") != 0 &&
	    strcmp(cmd, "list") != 0 && strcmp(cmd, "stats") != 0 && strcmp(cmd, "trace") != 0) {
		fprintf(stderr, "faultfs ctl: unknown command '%s'\n%s", cmd, ctl_usage);
		return 2;
	}
	if (follow && strcmp(cmd, "trace") != 0) {
		fprintf(stderr, "faultfs ctl: --follow applies to trace only\n");
		return 2;
	}
	if (strchr(arg != NULL ? arg : "", '\n') != NULL) {
		fprintf(stderr, "faultfs ctl: argument contains a newline\n");
		return 2;
	}
	if (strlen(cmd) + 1 + strlen(arg != NULL ? arg : " --follow") + 1 > FF_CTL_LINE_MAX) {
		fprintf(stderr, "faultfs ctl: %s: argument too long (%zu bytes; a command line holds at most %d)\n",
			cmd, strlen(arg != NULL ? arg : ""), FF_CTL_LINE_MAX);
		return 2;
	}
	fd = connect_to(mountpoint);
	if (fd < 0)
		return 2;
	snprintf(line, sizeof(line), "%s%s%s\n", cmd, arg != NULL ? " " : "",
	         arg != NULL ? arg : (follow ? " --follow" : ""));
	if (send_all(fd, line, strlen(line)) < 0) {
		fprintf(stderr, "faultfs ctl: %s: %s\n", mountpoint, strerror(errno));
		close(fd);
		return 2;
	}
	in = fdopen(fd, "r");
	if (in == NULL) {
		close(fd);
		return 2;
	}
	if (strcmp(cmd, "trace") == 0) {
		/* Line-buffered copy, so `ctl trace --follow | grep` is live. */
		setvbuf(stdout, NULL, _IOLBF, 0);
		while (fgets(line, sizeof(line), in) != NULL)
			fputs(line, stdout);
		fclose(in);
		return 0;
	}
	/* One JSON line, of any length: a table of a thousand rules is long. */
	ans = json_loadf(in, JSON_DISABLE_EOF_CHECK, &jerr);
	fclose(in);
	if (ans == NULL) {
		if (jerr.position == 0)
			fprintf(stderr, "faultfs ctl: %s: the daemon closed the connection without answering\n", mountpoint);
		else
			fprintf(stderr, "faultfs ctl: %s: unreadable answer: %s\n", mountpoint, jerr.text);
		return 2;
	}
	if (!json_is_true(json_object_get(ans, "ok"))) {
		fprintf(stderr, "faultfs ctl: %s\n", json_string_value(json_object_get(ans, "error")));
		/* A rule the daemon could not parse is bad input, like a bad
		 * --rule at mount time; a refusal (permission, unknown id) is a
		 * failed request. */
		rc = json_is_true(json_object_get(ans, "input")) ? 2 : 1;
	} else {
		if (json) {
			json_dumpf(ans, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
			putchar('\n');
		} else
			print_human(cmd, ans);
		rc = 0;
	}
	json_decref(ans);
	return rc;
}
