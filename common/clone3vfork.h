/* clone3vfork.h - vfork() with clone3's arguments (x86_64 Linux).
 *
 * fr_clone3_vfork(&ca, sizeof(ca)) with CLONE_VM | CLONE_VFORK in ca.flags
 * and no stack: the child runs on the caller's stack as after vfork(), and
 * the caller resumes once the child has exec'd or exited.  With
 * CLONE_INTO_CGROUP the child is born in a cgroup without copying the
 * caller's page tables (no fork) and without a migration (no write to
 * cgroup.procs).  Returns the pid in the parent, 0 in the child, -errno on
 * failure (ENOSYS before Linux 5.3 and under valgrind).
 *
 * The rules of vfork hold: call it from the function that handles the
 * child, never from a helper the child would return from (the child's
 * calls overwrite the stack below the caller's frame); in the child make
 * system calls, write nothing the parent keeps, and exec or _exit.
 * FR_HAVE_CLONE3_VFORK says whether it exists here. */
#ifndef FIELDRIG_CLONE3VFORK_H
#define FIELDRIG_CLONE3VFORK_H

#include <stddef.h>
#include <sys/syscall.h>
#include <linux/sched.h>

#if defined(__x86_64__) && defined(SYS_clone3)
#define FR_HAVE_CLONE3_VFORK 1
long fr_clone3_vfork(struct clone_args *ca, size_t size) __attribute__((returns_twice));
#endif

#endif
