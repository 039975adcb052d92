/* probe: glibc's __xstat family links, on x86_64 where its version
 * argument is 1 (other CPUs and libcs: no, on purpose) */
#include "features.h"
#include <sys/stat.h>

#if !defined(__GLIBC__) || !defined(__x86_64__) || defined(__ILP32__)
#error "the __xstat shim is for glibc on x86_64"
#endif

extern int __xstat(int, const char *, struct stat *);
extern int __lxstat(int, const char *, struct stat *);
extern int __fxstat(int, int, struct stat *);

int
main(void)
{
	struct stat st;

	return __xstat(1, "/", &st) + __lxstat(1, "/", &st) + __fxstat(1, 0, &st);
}
