/*
 * opts.c: GNU-style options in plain POSIX C: "-e CMD", "-eCMD", "-vq",
 * "--execute CMD", "--execute=CMD", a long name cut short where that is
 * unambiguous ("--exec", as python's getopt took), and "--" to end them.
 * getopt_long() is a GNU extension, so old and small libcs may not have it.
 * Also the one way both programs report a usage error.
 */
#include "negotiator.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
usage_error(const char *fmt, ...)
{
	char what[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	error("%s (try --help)", what);
	exit(EXIT_USAGE);
}

/* Operand k goes to argv[k + 1]: that slot was read already (an operand
 * takes at least one slot), so argv's slots hold any number of them
 * (negotiator-host -e CMD GUEST... may name hundreds of guests). */
static void
add_operand(struct opt_state *st, char *a)
{
	st->operands[st->noperands++] = a;
}

/* The option named name[0..len): its full name, else the only one that
 * begins so ("--list-c" for --list-commands); two or more is a usage error
 * that names them. */
static const struct opt_spec *
find_long(const struct opt_spec *specs, const char *name, size_t len)
{
	const struct opt_spec *o, *found = NULL;
	char names[400];
	int n = 0;

	names[0] = '\0';
	for (o = specs; o->name || o->key; o++) {
		if (!o->name || strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len)
			return o;
		if (n++ < 6 && strlen(names) + strlen(o->name) + 5 < sizeof names) {
			strcat(names, n > 1 ? ", --" : "--");
			strcat(names, o->name);
		}
		found = o;
	}
	if (n > 1)
		usage_error("ambiguous option --%.*s: it could be %s%s", (int)len, name, names,
		            n > 6 ? ", ..." : "");
	return found;
}

static const struct opt_spec *
find_short(const struct opt_spec *specs, int c)
{
	for (; specs->name || specs->key; specs++)
		if (specs->key == c)
			return specs;
	return NULL;
}

static int
long_option(int argc, char **argv, const struct opt_spec *specs, struct opt_state *st)
{
	const char *name = argv[st->ind++] + 2, *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct opt_spec *o = len ? find_long(specs, name, len) : NULL;

	if (!o)
		usage_error("unknown option --%s", name);
	st->arg = NULL;
	if (o->has_arg) {
		if (eq)
			st->arg = eq + 1;
		else if (st->ind < argc)
			st->arg = argv[st->ind++];
		else
			usage_error("option --%s needs an argument", o->name);
	} else if (eq) {
		usage_error("option --%s takes no argument", o->name);
	}
	return o->key;
}

int
opt_next(int argc, char **argv, const struct opt_spec *specs, struct opt_state *st)
{
	const struct opt_spec *o;
	char letter[2];

	if (st->ind == 0) {
		st->ind = 1;
		st->operands = argv + 1;
	}
	while (!st->bundle || !*st->bundle) {
		const char *a;

		st->bundle = NULL;
		if (st->ind >= argc)
			return 0;
		a = argv[st->ind];
		if (strcmp(a, "--") == 0) {
			while (++st->ind < argc)
				add_operand(st, argv[st->ind]);
			return 0;
		}
		if (a[0] != '-' || a[1] == '\0') {
			add_operand(st, argv[st->ind++]);
			continue;
		}
		if (a[1] == '-')
			return long_option(argc, argv, specs, st);
		st->bundle = a + 1;
		st->ind++;
		break;
	}
	letter[0] = *st->bundle++;
	letter[1] = '\0';
	o = find_short(specs, (unsigned char)letter[0]);
	if (!o || o->key >= 256)
		usage_error("unknown option -%s", letter);
	st->arg = NULL;
	if (o->has_arg) {
		if (*st->bundle)
			st->arg = st->bundle;
		else if (st->ind < argc)
			st->arg = argv[st->ind++];
		else
			usage_error("option -%s needs an argument", letter);
		st->bundle = NULL;
	}
	return o->key;
}
