/*
 * stat.c: stat(), lstat() and fstat() through glibc's __xstat family.
 *
 * Before glibc 2.33 stat() was a header inline calling __xstat(); since
 * then it is a real stat@GLIBC_2.33 that older glibcs lack, while
 * __xstat@GLIBC_2.2.5 is still exported.  The probe (try_xstat.c) turns
 * this on for glibc on x86_64 only, where the version argument is 1 and
 * the kernel's struct stat is glibc's.
 */
#include "compat.h"

#if HAVE_XSTAT

#define XSTAT_VER 1   /* _STAT_VER_LINUX on x86_64 */

extern int __xstat(int ver, const char *path, struct stat *st);
extern int __lxstat(int ver, const char *path, struct stat *st);
extern int __fxstat(int ver, int fd, struct stat *st);

int
compat_stat(const char *path, struct stat *st)
{
	return __xstat(XSTAT_VER, path, st);
}

int
compat_lstat(const char *path, struct stat *st)
{
	return __lxstat(XSTAT_VER, path, st);
}

int
compat_fstat(int fd, struct stat *st)
{
	return __fxstat(XSTAT_VER, fd, st);
}

#else
/* ISO C wants a translation unit to declare something */
typedef int compat_stat_unused;
#endif
