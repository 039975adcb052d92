/* probe: open() knows O_CLOEXEC */
#include "features.h"
#include <fcntl.h>

int
main(void)
{
	return open("/", O_RDONLY | O_CLOEXEC) < 0;
}
