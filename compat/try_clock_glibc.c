/* probe: clock_gettime@GLIBC_2.2.5 links (x86_64 glibc, dynamic) */
#define HAVE_CLOCK_GETTIME_GLIBC_2_2_5 1
#include "glibc_symbols.h"
#include "try_clock_gettime.c"
