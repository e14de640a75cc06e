/* covflush.h - write coverage counters before _exit().
 *
 * A forked child that ends with _exit() skips the atexit handler where a
 * coverage build (-fprofile-arcs, gcov) writes its counters, so everything
 * such a child ran — a detached run's supervisor, the watchdog, a
 * scenario's worker — would be missing from the coverage report.  In a
 * coverage build the gcov runtime defines __gcov_dump(); elsewhere the weak
 * reference stays null and this does nothing.
 */
#ifndef FIELDRIG_COVFLUSH_H
#define FIELDRIG_COVFLUSH_H

extern void __gcov_dump(void) __attribute__((weak));

/* Call right before _exit() in a child that ran project code. */
static inline void cov_flush(void)
{
	if (__gcov_dump)
		__gcov_dump();
}

#endif
