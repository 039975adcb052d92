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

/* 64-bit off_t, ino_t and readdir on 32-bit glibc: without it stat() and
 * readdir() fail with EOVERFLOW on file systems with 64-bit inode numbers or
 * directory offsets (ext4's hashed d_off as a 64-bit kernel reports it to a
 * 32-bit program under qemu-user, XFS inode64, btrfs, overlayfs), and the
 * commands directory then looks empty.  Only where long is 32 bits: on
 * 64-bit systems it changes nothing but would make glibc >= 2.28 headers
 * bind fcntl to fcntl64@GLIBC_2.28.  musl ignores it. */
#if !defined(_FILE_OFFSET_BITS) && defined(__SIZEOF_LONG__)
#if __SIZEOF_LONG__ < 8
#define _FILE_OFFSET_BITS 64
#endif
#endif

#endif
