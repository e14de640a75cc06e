/* Fuzz target: scenario files, as given to fieldrig run/check.
 *
 * Beyond "no crash", it checks the loader's promises: a refused file comes
 * with one line that starts with the file name and a line:column; an
 * accepted one has a name, at least one step, each step a kind and a
 * label, and every position it reports is inside the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scenario *sc = NULL;
	char err[1024];
	unsigned line, col;

	err[0] = '\0';
	if (scenario_load_buffer("fuzz.yaml", (const char *)data, size, &sc, err, sizeof(err)) < 0) {
		if (strncmp(err, "fuzz.yaml", 9) != 0 || strchr(err, '\n') != NULL)
			abort();	/* one line, naming the file */
		if (strncmp(err, "fuzz.yaml: out of memory", 24) != 0 &&
		    sscanf(err, "fuzz.yaml:%u:%u:", &line, &col) != 2)
			abort();	/* and the place */
		if (sc != NULL)
			abort();
		return 0;
	}
	if (sc == NULL || sc->name == NULL || sc->steps_count == 0)
		abort();
	for (unsigned i = 0; i < sc->steps_count; i++) {
		char path[64];
		struct sc_pos p;

		if (sc->steps[i].kind >= SK__N || sc->steps[i].arg == NULL || sc->steps[i].label[0] == '\0')
			abort();
		snprintf(path, sizeof(path), "steps.%u", i);
		p = scenario_pos(sc, path);
		if (p.line == 0 || p.line > size + 1)
			abort();
	}
	scenario_free(sc);
	return 0;
}
