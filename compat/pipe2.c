/*
 * pipe2.c: a pipe with close-on-exec and nonblocking ends.
 *
 * pipe2() is in glibc >= 2.9 and Linux >= 2.6.27; a libc can know it
 * while the kernel does not (ENOSYS), so the answer is taken at run time
 * and remembered.
 */
#define _GNU_SOURCE 1   /* pipe2() in glibc's and musl's unistd.h */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int
pipe2_fallback(int fds[2], int cx)
{
	compat_used.pipe2 = "fallback";
	if (pipe(fds) < 0)
		return -1;
	if (fcntl_flags(fds[0], cx) < 0) {
		close(fds[1]);
		return -1;
	}
	if (fcntl_flags(fds[1], cx) < 0) {
		close(fds[0]);
		return -1;
	}
	return 0;
}

#if HAVE_PIPE2
static int pipe2_missing;   /* the kernel said ENOSYS once */
#endif

int
compat_pipe2(int fds[2], int cx)
{
#if HAVE_PIPE2
	if (!pipe2_missing) {
		compat_used.pipe2 = "pipe2";
		if (pipe2(fds, (cx & CX_CLOEXEC ? O_CLOEXEC : 0) |
		               (cx & CX_NONBLOCK ? O_NONBLOCK : 0)) == 0)
			return 0;
		if (errno != ENOSYS)
			return -1;
		pipe2_missing = 1;
	}
#endif
	return pipe2_fallback(fds, cx);
}
