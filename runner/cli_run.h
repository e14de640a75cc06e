/* The run commands of the command line: exec, status, logs, wait, cancel,
 * list, recover.  They parse their own options (main.c hands them the
 * command's argv after the global options and settings are resolved). */
#ifndef RUNNER_CLI_RUN_H
#define RUNNER_CLI_RUN_H

#include <stdbool.h>

#include "settings.h"

/* Whether name is one of the run commands. */
bool cli_run_known(const char *name);

/* Runs the command argv[0].  Returns the exit status (0, 1, 2). */
int cli_run(const struct settings *s, bool json, int argc, char **argv);

/* Usage lines for runner --help. */
extern const char cli_run_usage[];

#endif
