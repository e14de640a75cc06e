/* Upload of a user script into the scripts directory.
 *
 * The file is written under a fresh uuid v4 name, mode 0640, through an
 * unnamed O_TMPFILE (or a hidden temporary name where the filesystem lacks
 * it), fsync'd, given its final name without replacing anything, and the
 * directory fsync'd; every step is relative to a directory descriptor opened
 * with O_NOFOLLOW.  A reader of the directory sees either no file or the
 * whole file, and a failure (EACCES, ENOSPC, EIO, ...) leaves nothing
 * behind.  The user's original file name is kept only as sanitised
 * metadata in the job store. */
#ifndef RUNNER_UPLOAD_H
#define RUNNER_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settings.h"
#include "store.h"

struct upload_request {
	const char *src;	/* the user's file; symlinks are followed */
	const char *name;	/* original name to record, NULL: basename of src */
	bool no_tmpfile;	/* use the named temporary file even where
				 * O_TMPFILE works (tests of that path) */
	bool input_error;	/* out: the failure is the caller's input (type,
				 * size, source file), not the environment */
};

/* Uploads and records the script.  id receives the uuid.  Returns 0, or
 * -errno with err holding one line that names the path and errno text,
 * and req->input_error telling the user's input (type, size, an unreadable
 * or irregular source) from a failure of the runner's own storage. */
int upload_script(const struct settings *s, struct store *st,
		  struct upload_request *req, char id[37],
		  char *err, size_t errlen);

/* Writes a random uuid v4 ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx") from
 * getrandom(2).  Returns 0 or -errno. */
int uuid_v4(char out[37]);

/* Reduces a user-supplied file name to something safe to store and show:
 * directories stripped, control characters and invalid UTF-8 dropped,
 * leading dots and blanks removed, at most maxlen bytes (cut on a
 * character boundary, the extension kept).  Never empty: "script" when
 * nothing is left.  out must hold maxlen + 1 bytes. */
void sanitize_name(const char *in, char *out, size_t maxlen);

/* Maximum length of a stored original name. */
#define UPLOAD_NAME_MAX 128

/* Language of an extension (".py" -> "python"); the bare extension without
 * the dot for others. */
const char *upload_lang(const char *ext);

#endif
