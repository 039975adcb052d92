/*
 * glibc_symbols.h: bind memcpy and clock_gettime to their oldest x86_64
 * glibc versions, so a binary built on a new glibc runs on glibc 2.11.
 *
 * New glibcs give memcpy@GLIBC_2.14 (it may no longer overlap, which we
 * never do) and clock_gettime@GLIBC_2.17 (moved from librt to libc) as the
 * defaults, and keep the GLIBC_2.2.5 versions for old binaries.  The probe
 * turns these on only when a test program links with them: glibc on
 * x86_64, dynamically.  Elsewhere (musl, static, other CPUs) nothing here
 * is used.  A top-level .symver directive applies to every reference in
 * its translation unit, including the memcpy calls the compiler emits for
 * structure copies, which is why it sits in a header every file includes.
 */
#ifndef NEGOTIATOR_GLIBC_SYMBOLS_H
#define NEGOTIATOR_GLIBC_SYMBOLS_H

#if HAVE_MEMCPY_GLIBC_2_2_5
__asm__(".symver memcpy,memcpy@GLIBC_2.2.5");
#endif

/* needs librt.so.1 loaded on glibc < 2.17, where clock_gettime lives
 * there: the probe adds it to the link (compat/config.libs) */
#if HAVE_CLOCK_GETTIME_GLIBC_2_2_5
__asm__(".symver clock_gettime,clock_gettime@GLIBC_2.2.5");
#endif

#endif
