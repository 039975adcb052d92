/* probe: getsockopt(SO_PEERCRED) and struct ucred (Linux; glibc and musl
 * declare struct ucred only with _GNU_SOURCE) */
#define _GNU_SOURCE 1
#include "features.h"
#include <sys/types.h>
#include <sys/socket.h>

int
main(void)
{
	struct ucred cr;
	socklen_t len = sizeof cr;

	return getsockopt(0, SOL_SOCKET, SO_PEERCRED, &cr, &len) + (int)cr.uid + (int)cr.gid;
}
