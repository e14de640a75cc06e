#include "errnames.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "strparse.h"

struct errname { const char *name; int err; };

#define E(x) { #x, x }
/* Every errno a filesystem operation can plausibly return, and then some. */
static const struct errname errnames[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
	E(EFAULT), E(ENOTBLK), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV),
	E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY),
	E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK),
	E(EPIPE), E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK),
	E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENOMSG), E(EIDRM), E(ENODATA),
	E(ETIME), E(ENOLINK), E(EPROTO), E(EOVERFLOW), E(EBADFD), E(EILSEQ),
	E(EUSERS), E(ENOTSOCK), E(EOPNOTSUPP), E(ENOTSUP), E(ENOBUFS),
	E(ETIMEDOUT), E(ECONNREFUSED), E(EALREADY), E(EINPROGRESS), E(ESTALE),
	E(EDQUOT), E(ECANCELED), E(EOWNERDEAD), E(ENOTRECOVERABLE), E(ERFKILL),
	E(EHWPOISON), E(EWOULDBLOCK), E(EDEADLOCK), E(EKEYEXPIRED),
	E(EMEDIUMTYPE), E(ENOMEDIUM), E(EREMOTEIO), E(ENOKEY), E(EKEYREVOKED),
};
#undef E

int errno_from_name(const char *s)
{
	uint64_t n;

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (strcmp(s, errnames[i].name) == 0)
			return errnames[i].err;
	if (parse_u64(s, &n) == 0 && n >= 1 && n <= 4095)
		return (int)n;
	return -1;
}

const char *errno_name(int err)
{
	/* Aliases (EWOULDBLOCK, ENOTSUP, EDEADLOCK) come after their primary
	 * names, so the first hit is the name people expect to read. */
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	return NULL;
}
