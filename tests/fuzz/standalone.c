/* A main() for fuzz targets built without libFuzzer: feeds every file named
 * on the command line, and every file in every directory named there (and
 * below it), to LLVMFuzzerTestOneInput(), once each, in name order.  Used to
 * replay a target's corpus as a regression test with gcc, valgrind or
 * coverage.  Arguments starting with '-' are libFuzzer options and are
 * ignored, so the same command line works with both builds.
 *
 * Each input is copied into a buffer of exactly its size, so a read past the
 * end is caught by ASan or valgrind just as under libFuzzer.
 *
 * Exit status: 0 when every input ran, 1 when an input could not be read or
 * no input was found (a wrong corpus path should not pass silently), and 2
 * for usage errors.  A crash in the target is a crash of this program.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

struct replay {
	const char *prog;
	unsigned long inputs;
	int failed;
};

static void run_file(struct replay *rp, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: %s: cannot open: %s\n", rp->prog, path, strerror(errno));
		rp->failed = 1;
		return;
	}
	for (;;) {
		size_t got;

		if (len == cap) {
			uint8_t *p = realloc(buf, cap ? cap * 2 : 4096);

			if (p == NULL) {
				fprintf(stderr, "%s: %s: out of memory\n", rp->prog, path);
				rp->failed = 1;
				goto out;
			}
			buf = p;
			cap = cap ? cap * 2 : 4096;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: %s: cannot read\n", rp->prog, path);
		rp->failed = 1;
		goto out;
	}
	/* Exactly-sized copy: the target must not read beyond `len`. */
	{
		uint8_t *exact = malloc(len ? len : 1);

		if (exact == NULL) {
			rp->failed = 1;
			goto out;
		}
		if (len > 0)
			memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	rp->inputs++;
out:
	free(buf);
	fclose(f);
}

static int skip_dots(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

static void run_path(struct replay *rp, const char *path)
{
	struct dirent **names;
	struct stat st;
	int n;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: %s: %s\n", rp->prog, path, strerror(errno));
		rp->failed = 1;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(rp, path);
		return;
	}
	n = scandir(path, &names, skip_dots, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s: cannot list: %s\n", rp->prog, path, strerror(errno));
		rp->failed = 1;
		return;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
		char *child = malloc(len);

		if (child != NULL) {
			snprintf(child, len, "%s/%s", path, names[i]->d_name);
			run_path(rp, child);
			free(child);
		} else {
			rp->failed = 1;
		}
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	struct replay rp = { .prog = argv[0] };
	int paths = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		run_path(&rp, argv[i]);
		paths++;
	}
	if (paths == 0) {
		fprintf(stderr, "usage: %s FILE-OR-DIR...\n", rp.prog);
		return 2;
	}
	if (rp.inputs == 0) {
		fprintf(stderr, "%s: no inputs found\n", rp.prog);
		return 1;
	}
	printf("%s: ran %lu inputs\n", rp.prog, rp.inputs);
	return rp.failed;
}
