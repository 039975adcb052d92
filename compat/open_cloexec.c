/*
 * open_cloexec.c: open() with close-on-exec (and nonblocking) set.
 *
 * O_CLOEXEC is Linux >= 2.6.23 (older kernels ignore it silently, below
 * our 2.6.32 floor) and may be missing from old or minimal libc headers.
 */
#include "compat.h"

#include <fcntl.h>

int
open_fallback(const char *path, int flags, int cx)
{
	int fd;

	compat_used.open = "fallback";
	fd = open(path, flags);
	return fd < 0 ? -1 : fcntl_flags(fd, cx);
}

int
compat_open(const char *path, int flags, int cx)
{
#if HAVE_O_CLOEXEC
	compat_used.open = "O_CLOEXEC";
	return open(path, flags | (cx & CX_CLOEXEC ? O_CLOEXEC : 0) |
	                  (cx & CX_NONBLOCK ? O_NONBLOCK : 0));
#else
	return open_fallback(path, flags, cx);
#endif
}
