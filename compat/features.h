/*
 * features.h: the feature macros every file compiles with.
 *
 * They live in a header, not in CFLAGS, so that a build passing its own
 * CFLAGS (buildroot, distro packaging) still gets them, and so that the
 * feature probes (compat/try_*.c) see the same declarations as the code.
 */
#ifndef NEGOTIATOR_FEATURES_H
#define NEGOTIATOR_FEATURES_H

#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 600
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#ifndef _BSD_SOURCE
#define _BSD_SOURCE 1
#endif

#endif
