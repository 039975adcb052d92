/*
 * socket_cloexec.c: a socket created close-on-exec (and nonblocking).
 *
 * SOCK_CLOEXEC and SOCK_NONBLOCK in the type are Linux >= 2.6.27; an
 * older kernel answers EINVAL, after which we use socket() and fcntl().
 */
#include "compat.h"

#include <sys/socket.h>
#include <errno.h>

int
socket_fallback(int domain, int type, int cx)
{
	int fd;

	compat_used.socket = "fallback";
	fd = socket(domain, type, 0);
	return fd < 0 ? -1 : fcntl_flags(fd, cx);
}

#if HAVE_SOCK_CLOEXEC
static int sock_flags_refused;
#endif

int
compat_socket(int domain, int type, int cx)
{
#if HAVE_SOCK_CLOEXEC
	if (!sock_flags_refused) {
		int fd;

		compat_used.socket = "SOCK_CLOEXEC";
		fd = socket(domain, type | (cx & CX_CLOEXEC ? SOCK_CLOEXEC : 0) |
		                    (cx & CX_NONBLOCK ? SOCK_NONBLOCK : 0), 0);
		if (fd >= 0 || errno != EINVAL)
			return fd;
		sock_flags_refused = 1;
	}
#endif
	return socket_fallback(domain, type, cx);
}
