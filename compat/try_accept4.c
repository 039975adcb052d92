/* probe: accept4() is declared and links (taking its address makes a
 * missing declaration an error, not a warning) */
#define _GNU_SOURCE 1
#include "features.h"
#include <sys/socket.h>

int
main(void)
{
	(void)&accept4;
	return accept4(0, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK);
}
