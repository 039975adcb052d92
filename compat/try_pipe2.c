/* probe: pipe2() is declared and links (taking its address makes a
 * missing declaration an error, not a warning) */
#define _GNU_SOURCE 1
#include "features.h"
#include <fcntl.h>
#include <unistd.h>

int
main(void)
{
	int fds[2];
	int (*volatile f)(int *, int) = pipe2;

	return f(fds, O_CLOEXEC | O_NONBLOCK);
}
