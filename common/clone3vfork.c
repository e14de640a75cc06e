/* clone3vfork.c - see clone3vfork.h. */
#include "clone3vfork.h"

#ifdef FR_HAVE_CLONE3_VFORK
#define FR_STR2(x) #x
#define FR_STR(x) FR_STR2(x)

/* As glibc's vfork: the return address is kept in a register across the
 * system call, because the child's calls overwrite the stack where it
 * lay; both come back through the same two instructions. */
__asm__(".text\n"
	".globl fr_clone3_vfork\n"
	".type fr_clone3_vfork, @function\n"
	"fr_clone3_vfork:\n"
	"\tpopq %rdx\n"
	"\tmovl $" FR_STR(SYS_clone3) ", %eax\n"
	"\tsyscall\n"
	"\tpushq %rdx\n"
	"\tret\n"
	".size fr_clone3_vfork, .-fr_clone3_vfork\n");
#endif
