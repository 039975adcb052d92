/* probe: the libc has strlcpy() */
#include "features.h"
#include <string.h>

int
main(int argc, char **argv)
{
	char d[4];
	size_t (*volatile f)(char *, const char *, size_t) = strlcpy;

	return (int)f(d, argv[0], sizeof d) + argc;
}
