/* What every command of the runner's command line shares: the exit codes
 * of the contract, one-line errors and JSON output. */
#ifndef RUNNER_CLI_H
#define RUNNER_CLI_H

#include <jansson.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* Prints "runner: " and the formatted message as one line on stderr. */
void errline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints j indented on stdout and releases it; EXIT_OK, or EXIT_FAILED
 * when j is NULL (out of memory) or cannot be written. */
int print_json(json_t *j);

#endif
