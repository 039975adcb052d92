/* probe: getpeereid() is declared and links (the BSDs, macOS, some
 * libcs; not glibc) */
#include "features.h"
#include <sys/types.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(void)
{
	uid_t uid;
	gid_t gid;
	int (*volatile f)(int, uid_t *, gid_t *) = getpeereid;

	return f(0, &uid, &gid);
}
