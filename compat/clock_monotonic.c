/*
 * clock_monotonic.c: milliseconds that never go backwards, for timers.
 *
 * clock_gettime(CLOCK_MONOTONIC) where the libc has it (in librt before
 * glibc 2.17: the probe adds -lrt then); a kernel without the clock
 * answers EINVAL, remembered.  The fallback is gettimeofday(), clamped so
 * that a wall clock set backwards stalls the timers instead of sending
 * them into the past (a step forward still fires them early).
 */
#include "compat.h"

#include <sys/time.h>
#include <time.h>

/* raw wall-clock milliseconds in, never-decreasing milliseconds out */
unsigned long
clock_never_back(unsigned long raw)
{
	static unsigned long last, offset;
	static int started;
	unsigned long t = raw + offset;

	if (started && (long)(t - last) < 0) {
		offset += last - t;   /* stepped back: absorb the step */
		t = last;
	}
	started = 1;
	last = t;
	return t;
}

unsigned long
clock_fallback_ms(void)
{
	struct timeval tv;

	compat_used.clock = "fallback";
	gettimeofday(&tv, NULL);
	return clock_never_back((unsigned long)tv.tv_sec * 1000UL +
	                        (unsigned long)(tv.tv_usec / 1000L));
}

#if HAVE_CLOCK_GETTIME
static int monotonic_refused;
#endif

unsigned long
clock_monotonic_ms(void)
{
#if HAVE_CLOCK_GETTIME
	struct timespec ts;

	if (!monotonic_refused) {
		compat_used.clock = "CLOCK_MONOTONIC";
		if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
			return (unsigned long)ts.tv_sec * 1000UL +
			       (unsigned long)(ts.tv_nsec / 1000000L);
		monotonic_refused = 1;
	}
#endif
	return clock_fallback_ms();
}
