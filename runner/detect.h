/* Container detection, in the order of systemd's detect_container(), plus
 * Kubernetes.  Every file is read relative to a root directory so that tests
 * and scenarios can present any container's marker files without being in
 * one; the environment is passed in for the same reason. */
#ifndef RUNNER_DETECT_H
#define RUNNER_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

enum container_kind {
	CONTAINER_NONE = 0,
	CONTAINER_DOCKER,
	CONTAINER_PODMAN,
	CONTAINER_LXC,
	CONTAINER_SYSTEMD_NSPAWN,
	CONTAINER_KUBERNETES,
	CONTAINER_WSL,
	CONTAINER_OPENVZ,
	CONTAINER_OTHER,
};

struct detect_input {
	/* Root directory to read from; NULL or "" means "/". */
	const char *root;
	/* The environment to inspect (NULL-terminated "NAME=value" strings),
	 * for KUBERNETES_SERVICE_HOST and, when env_is_pid1, $container.
	 * NULL means an empty environment. */
	char *const *env;
	/* Treat env as PID 1's environment, as systemd does when it runs as
	 * PID 1.  detect_input_init sets it to getpid() == 1 && root is "/". */
	bool env_is_pid1;
	/* Value of RUNNER_CONTAINER: a kind name or "none" that overrides the
	 * detection (the evidence is still gathered and listed).  NULL: none. */
	const char *override;
};

/* One finding.  kind is the container it points to, or -1 for a finding
 * that points nowhere (an unreadable file, an unknown value). */
struct detect_evidence {
	char *source;   /* the check: a path under the root, or "$NAME" */
	char *text;     /* e.g. "exists", "content 'docker'", "cannot read: ..." */
	int kind;
};

struct detect_result {
	enum container_kind kind;
	/* Index in evidence of the finding that decided the kind, or -1 for
	 * none found or decided by the override. */
	int decided_by;
	bool overridden;
	struct detect_evidence *evidence;
	size_t n_evidence;
};

void detect_input_init(struct detect_input *in, const char *root,
		       char *const *env);

/* Runs every check and lists all evidence found; the first check in
 * systemd's order that names a container decides.  Kubernetes markers
 * take over a decision of docker, podman, container-other or none (the
 * pod's runtime leaves those markers too).  Unreadable files become
 * evidence, never errors.  Returns 0, -ENOMEM, or -EINVAL for an override
 * that is not a kind name (r->kind is then still the detected kind). */
int detect_container(const struct detect_input *in, struct detect_result *r);

void detect_result_free(struct detect_result *r);

/* "docker", "podman", "lxc", "systemd-nspawn", "kubernetes", "wsl",
 * "openvz", "container-other", "none". */
const char *container_kind_name(enum container_kind k);

/* Parses one of the names above.  Returns the kind or -EINVAL. */
int container_kind_from_name(const char *s);

/* Maps a $container / container-manager value as systemd does ("docker",
 * "podman", "lxc", "lxc-libvirt" -> lxc, "systemd-nspawn", "wsl", "oci"
 * and anything unknown -> container-other).  "oci" is refined by the marker
 * files in detect_container itself. */
enum container_kind container_kind_from_value(const char *v);

/* {"kind": "...", "overridden": bool, "decided_by": {...} | null,
 *  "evidence": [{"source":..., "text":..., "kind": "..." | null}, ...]} */
json_t *detect_result_to_json(const struct detect_result *r);

#endif
