/*
 * strlcpy.c: copy a string into a buffer of size bytes, always
 * terminated (when size > 0), and return strlen(src) so that the caller
 * can tell truncation: result >= size.  musl and glibc >= 2.38 have it.
 */
#include "compat.h"

size_t
compat_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}
