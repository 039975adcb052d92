/*
 * compat.c: what the shims share: the record of which implementation
 * each one ran, and setting descriptor flags with fcntl() (the fallback
 * for atomic descriptor flags, and what the rest of the program uses on
 * descriptors it already has).
 */
#include "compat.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

struct compat_used compat_used = { "none", "none", "none", "none", "none", "none" };

/* ORs flag into the word that get reads and set writes: the descriptor
 * flags (F_GETFD, F_SETFD) or the file status flags (F_GETFL, F_SETFL) */
static int
fcntl_add(int fd, int get, int set, int flag)
{
	int fl = fcntl(fd, get);

	if (fl < 0 || fcntl(fd, set, fl | flag) < 0)
		return -1;
	return 0;
}

int
set_cloexec(int fd)
{
	return fcntl_add(fd, F_GETFD, F_SETFD, FD_CLOEXEC);
}

int
set_nonblock(int fd)
{
	return fcntl_add(fd, F_GETFL, F_SETFL, O_NONBLOCK);
}

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
