/*
 * compat.h: what a libc or kernel may lack, declared in one place.
 *
 * Each shim lives in its own file in this directory, named after what it
 * provides, and is compiled in only when the feature probe (see Makefile)
 * did not find the real thing.
 */
#ifndef NEGOTIATOR_COMPAT_H
#define NEGOTIATOR_COMPAT_H

#ifndef O_CLOEXEC_FALLBACK
#define O_CLOEXEC_FALLBACK 0
#endif

#endif
