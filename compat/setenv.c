/*
 * setenv.c: setenv() and unsetenv() from putenv(), for libcs that lack
 * them or whose unsetenv() returns void (glibc < 2.2.2, old BSDs).
 *
 * putenv() keeps the string it is given, so each one is allocated and
 * deliberately never freed (the environment owns it).  unsetenv() takes
 * the name out of environ itself, every occurrence of it.
 */
#include "compat.h"

#include <errno.h>
#include <stdlib.h>

extern char **environ;

static int
bad_name(const char *name)
{
	if (!name || !*name || strchr(name, '=')) {
		errno = EINVAL;
		return 1;
	}
	return 0;
}

int
compat_setenv(const char *name, const char *value, int overwrite)
{
	size_t nl, vl;
	char *s;

	if (bad_name(name))
		return -1;
	if (!overwrite && getenv(name))
		return 0;
	nl = strlen(name);
	vl = strlen(value);
	s = malloc(nl + vl + 2);
	if (!s) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(s, name, nl);
	s[nl] = '=';
	memcpy(s + nl + 1, value, vl + 1);
	return putenv(s) == 0 ? 0 : -1;
}

int
compat_unsetenv(const char *name)
{
	size_t nl;
	char **r, **w;

	if (bad_name(name))
		return -1;
	nl = strlen(name);
	for (r = w = environ; *r; r++)
		if (!(strncmp(*r, name, nl) == 0 && (*r)[nl] == '='))
			*w++ = *r;
	*w = NULL;
	return 0;
}
