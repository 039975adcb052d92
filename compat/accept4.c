/*
 * accept4.c: accept a connection with close-on-exec and nonblocking set.
 *
 * accept4() is in glibc >= 2.10 and Linux >= 2.6.28 (later on some CPUs);
 * a kernel without it answers ENOSYS, or EINVAL for the flags: then we
 * remember it and use accept() and fcntl().
 */
#define _GNU_SOURCE 1   /* accept4() in glibc's and musl's sys/socket.h */
#include "compat.h"

#include <sys/socket.h>
#include <errno.h>
#include <unistd.h>

int
accept4_fallback(int fd, int cx)
{
	int c;

	compat_used.accept4 = "fallback";
	c = accept(fd, NULL, NULL);
	return c < 0 ? -1 : fcntl_flags(c, cx);
}

#if HAVE_ACCEPT4
static int accept4_missing;
#endif

int
compat_accept4(int fd, int cx)
{
#if HAVE_ACCEPT4
	if (!accept4_missing) {
		int c;

		compat_used.accept4 = "accept4";
		c = accept4(fd, NULL, NULL, (cx & CX_CLOEXEC ? SOCK_CLOEXEC : 0) |
		                            (cx & CX_NONBLOCK ? SOCK_NONBLOCK : 0));
		if (c >= 0 || (errno != ENOSYS && errno != EINVAL))
			return c;
		accept4_missing = 1;
	}
#endif
	return accept4_fallback(fd, cx);
}
