/* probe: socket() takes SOCK_CLOEXEC and SOCK_NONBLOCK in its type */
#include "features.h"
#include <sys/socket.h>

int
main(void)
{
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) < 0;
}
