/*
 * peercred.c: who is at the other end of a connected UNIX socket.
 *
 * SO_PEERCRED (Linux >= 2.2) gives the user and group the peer had when
 * it called connect() (or listen(), seen from a client); getpeereid() is
 * the same where the libc has it (the BSDs, macOS).  Without either the
 * answer is -1 with ENOSYS: the callers then rely on the socket file's
 * owner and mode, and say so in their documentation.
 */
#define _GNU_SOURCE 1   /* struct ucred in glibc's and musl's sys/socket.h */
#include "compat.h"

#include <sys/socket.h>
#include <errno.h>
#include <unistd.h>

int
compat_peer_ids(int fd, uid_t *uid, gid_t *gid)
{
#if HAVE_SO_PEERCRED
	struct ucred cr;
	socklen_t len = sizeof cr;

	compat_used.peercred = "SO_PEERCRED";
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -1;
	if (len != sizeof cr) {
		errno = EINVAL;
		return -1;
	}
	*uid = cr.uid;
	*gid = cr.gid;
	return 0;
#elif HAVE_GETPEEREID
	compat_used.peercred = "getpeereid";
	return getpeereid(fd, uid, gid);
#else
	compat_used.peercred = "none";
	(void)fd;
	(void)uid;
	(void)gid;
	errno = ENOSYS;
	return -1;
#endif
}
