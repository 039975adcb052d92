/*
 * compat.c: what the shims share: the record of which implementation
 * each one ran, and the fcntl() fallback for atomic descriptor flags.
 */
#include "../negotiator.h"

#include <errno.h>
#include <unistd.h>

struct compat_used compat_used = { "none", "none", "none", "none", "none", "none" };

/* Closes fd when a flag cannot be set: the callers' contract is "a
 * descriptor with these flags, or -1". */
int
fcntl_flags(int fd, int cx)
{
	int saved;

	if (((cx & CX_CLOEXEC) && set_cloexec(fd) < 0) ||
	    ((cx & CX_NONBLOCK) && set_nonblock(fd) < 0)) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
