/* probe: memcpy@GLIBC_2.2.5 links (x86_64 glibc, dynamic) */
#define HAVE_MEMCPY_GLIBC_2_2_5 1
#include "glibc_symbols.h"
#include "features.h"
#include <string.h>

int
main(int argc, char **argv)
{
	char d[8];
	void *(*volatile f)(void *, const void *, size_t) = memcpy;

	f(d, argv[0], 1);
	return d[0] == argc;
}
