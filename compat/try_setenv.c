/* probe: setenv() and an unsetenv() that returns int (old libcs: void,
 * which makes the return statement below an error) */
#include "features.h"
#include <stdlib.h>

int
main(void)
{
	int (*volatile f)(const char *, const char *, int) = setenv;
	int (*volatile g)(const char *) = unsetenv;

	if (f("A", "b", 1) || g("A"))
		return 1;
	return unsetenv("A");
}
