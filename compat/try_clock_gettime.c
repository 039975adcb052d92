/* probe: clock_gettime(CLOCK_MONOTONIC) is declared and links (probe.sh
 * tries it without and with -lrt) */
#include "features.h"
#include <time.h>

int
main(void)
{
	struct timespec ts;
	int (*volatile f)(clockid_t, struct timespec *) = clock_gettime;

	return f(CLOCK_MONOTONIC, &ts);
}
