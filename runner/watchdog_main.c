/* runner-watchdog: the watchdog of one run, exec'd by its supervisor
 * (watchdog.h).  Not for people: it takes its arguments from the
 * supervisor and exits 2 for anything else. */
#include "watchdog.h"

int main(int argc, char **argv)
{
	return watchdog_exec_main(argc, argv);
}
