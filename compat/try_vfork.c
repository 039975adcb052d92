/* probe: vfork() is declared and links (POSIX 2008 dropped it) */
#include "features.h"
#include <sys/types.h>
#include <unistd.h>

int
main(void)
{
	pid_t (*volatile f)(void) = vfork;

	return f == 0;
}
