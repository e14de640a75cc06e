/* The Python virtual environment used for user scripts.  Outside a
 * container it is created with `python -m venv DIR`, checked and recreated
 * when broken; recreation survives a busy directory (a mountpoint, where
 * rmdir and rename give EBUSY) by emptying it in place.  Inside a container
 * no venv is made: the system interpreter is used and only the package
 * cache file is kept - the field report's fix. */
#ifndef RUNNER_VENV_H
#define RUNNER_VENV_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct venv_options {
	const char *dir;            /* the venv directory */
	const char *python;         /* the interpreter that creates the venv
				     * outside a container, and the one used
				     * inside a container */
	const char *package_cache;  /* JSON package cache file, or NULL */
	bool in_container;
	int timeout_ms;             /* for `python -m venv`; 0 means 300 s */
};

struct venv_status {
	char *dir;
	bool in_container;
	bool exists;        /* the venv directory exists; in a container,
			     * where no venv is used, always false */
	bool healthy;
	bool pip_present;
	char *python;   /* interpreter to run scripts with: DIR/bin/python, or
			 * the system one in a container */
	char *reason;   /* one line: why healthy or not, or what failed */
	char *action;   /* what ensure/recreate did ("created", "recreated",
			 * "recreated in place: DIR is busy (mountpoint)",
			 * "none"), NULL for status */
};

/* Default locations under the state directory (never /tmp); malloc'd. */
char *venv_default_dir(const char *state_dir);
char *venv_default_package_cache(const char *state_dir);

/* Inspects without changing anything.  Returns 0 or -ENOMEM; the
 * verdict is in st. */
int venv_status(const struct venv_options *o, struct venv_status *st);

/* Makes sure a healthy venv exists: creates it when missing, recreates it
 * when broken.  In a container: no venv, package cache created if missing.
 * Returns 0, or -errno with st->reason naming the path and errno text. */
int venv_ensure(const struct venv_options *o, struct venv_status *st);

/* Rebuilds the venv from nothing, even when it is healthy.  The old one is
 * renamed aside and removed; if the directory cannot be renamed (EBUSY,
 * EXDEV, EPERM) it is emptied in place and rebuilt there.  In a container
 * this only makes sure the package cache exists. */
int venv_recreate(const struct venv_options *o, struct venv_status *st);

void venv_status_free(struct venv_status *st);

/* {"dir","in_container","exists","healthy","pip_present","python",
 *  "reason","action"} */
json_t *venv_status_to_json(const struct venv_status *st);

/* Removes everything inside dir but not dir itself, without following
 * symlinks (openat/unlinkat relative to directory descriptors).  Returns 0
 * or -errno of the first failure; err gets "unlink PATH: strerror". */
int venv_empty_dir(const char *dir, char *err, size_t errlen);

/* Creates the package cache {"packages": {}, "last_cleanup": ISO-8601}
 * if it is missing (through a temporary file and rename); a valid existing
 * file is kept as it is.  Returns 0 or -errno (-EINVAL for a file that is
 * not such JSON, with err saying why). */
int venv_package_cache_ensure(const char *path, char *err, size_t errlen);

/* Runs argv (argv[0] a path, no PATH search) with stdin from /dev/null,
 * collecting up to outlen-1 bytes of its stdout and stderr into out (NUL
 * terminated; may be NULL).  Kills it after timeout_ms (0: no limit).
 * Returns 0 with *wstatus set, -ETIMEDOUT, or -errno when it could not be
 * started (the exec errno: -ENOENT, -EACCES, ...). */
int venv_run(char *const argv[], int timeout_ms, int *wstatus,
	     char *out, size_t outlen);

#endif
