/* Fuzz target for the mountinfo parser (runner/mountinfo.c): any input must
 * give a table or a one-line error, never a crash, and a parsed table must
 * hold what the parser promises (absolute, unescaped mount points). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mountinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mount_table t;
	char err[256];
	char *copy;

	if (mount_table_parse((const char *)data, size, &t, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < t.n; i++) {
			const struct mount_entry *e = &t.entries[i], *found;

			if (e->mount_point[0] != '/' || !e->root || !e->optional ||
			    !e->fs_type || !e->source || !e->super_options)
				abort();
			/* Every mount point finds a mount covering it. */
			found = mount_table_find_canonical(&t, e->mount_point);
			if (!found || strncmp(found->mount_point, e->mount_point,
					      strlen(found->mount_point)) != 0)
				abort();
			(void)mount_option_present(e->mount_options, "noexec");
			(void)mount_table_find_fstype(&t, e->fs_type);
		}
		(void)mount_table_find_canonical(&t, "/");
		(void)mount_table_find_canonical(&t, "/a/b/c");
		mount_table_free(&t);
	} else if (t.n != 0 || t.entries || !memchr(err, '\0', sizeof(err)) || !err[0]) {
		abort();
	}

	/* The option matcher and the unescaper take C strings. */
	copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	(void)mount_option_present(copy, "ro");
	(void)mountinfo_unescape(copy);
	free(copy);
	return 0;
}
