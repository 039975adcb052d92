/* probe: prctl(PR_SET_PDEATHSIG) (Linux >= 2.1.57): a command gets a
 * signal when the daemon that started it dies */
#include "features.h"
#include <sys/prctl.h>
#include <signal.h>

int
main(void)
{
	return prctl(PR_SET_PDEATHSIG, (unsigned long)SIGKILL);
}
