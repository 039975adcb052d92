/*
 * tests/jsoncheck.c: checks negotiator-host --json output for the tests,
 * without python.  Reads lines on stdin; each must be exactly one JSON
 * object (RFC 8259, strict: UTF-8 text, no raw control characters, valid
 * escapes, no duplicate keys) ended by a newline.  Lone surrogates are
 * allowed only as \udc80..\udcff, what PEP 383's surrogateescape gives an
 * undecodable byte; they decode back to that byte.
 *
 *   jsoncheck [-g GUEST] [-f FIELD | -k]
 *
 * -g GUEST   only the line whose "guest" is GUEST (there must be one)
 * -f FIELD   print FIELD's value of each line: a string decoded to its
 *            bytes, an array as its items one per line (strings decoded),
 *            anything else as its JSON text; no separator between lines
 * -k         print each line's keys, in order, joined by ","; one a line
 *
 * Exit status: 0 valid (and found), 1 invalid (why on stderr), 2 usage,
 * 3 no such field or guest.  Independent of json.c on purpose: it checks
 * that writer.  Strict C89.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE  (64UL * 1048576UL)
#define MAX_KEYS  64
#define MAX_DEPTH 64

struct member {
	const unsigned char *key, *value;   /* at their first byte */
	size_t keylen, valuelen;
};

struct parser {
	const unsigned char *p, *end;
	const char *why;
	int depth;
	struct member m[MAX_KEYS];          /* the top-level object's members */
	int nm;
};

static int value(struct parser *ps);

static void
skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' ||
	                           *ps->p == '\n'))
		ps->p++;
}

static int
fail(struct parser *ps, const char *why)
{
	if (!ps->why)
		ps->why = why;
	return -1;
}

static int
hex4(const unsigned char *p, unsigned long *u)
{
	int i;

	*u = 0;
	for (i = 0; i < 4; i++) {
		int c = p[i];

		if (c >= '0' && c <= '9')
			*u = *u * 16 + (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*u = *u * 16 + (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*u = *u * 16 + (unsigned long)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* length of the valid UTF-8 sequence at p (strict), 0 if none */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned long c = p[0], min;
	size_t k, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		k = 1, c &= 0x1F, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		k = 2, c &= 0x0F, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		k = 3, c &= 0x07, min = 0x10000;
	else
		return 0;
	if ((size_t)(end - p) <= k)
		return 0;
	for (i = 1; i <= k; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	return k + 1;
}

static void
put_utf8(FILE *out, unsigned long c)
{
	if (c < 0x80) {
		putc((int)c, out);
	} else if (c < 0x800) {
		putc((int)(0xC0 | (c >> 6)), out);
		putc((int)(0x80 | (c & 0x3F)), out);
	} else if (c < 0x10000) {
		putc((int)(0xE0 | (c >> 12)), out);
		putc((int)(0x80 | ((c >> 6) & 0x3F)), out);
		putc((int)(0x80 | (c & 0x3F)), out);
	} else {
		putc((int)(0xF0 | (c >> 18)), out);
		putc((int)(0x80 | ((c >> 12) & 0x3F)), out);
		putc((int)(0x80 | ((c >> 6) & 0x3F)), out);
		putc((int)(0x80 | (c & 0x3F)), out);
	}
}

/* The string at ps->p (its quote); decoded to out unless NULL. */
static int
string(struct parser *ps, FILE *out)
{
	ps->p++;
	for (;;) {
		unsigned long u, lo;
		size_t n;

		if (ps->p >= ps->end)
			return fail(ps, "unterminated string");
		if (*ps->p == '"') {
			ps->p++;
			return 0;
		}
		if (*ps->p < 0x20)
			return fail(ps, "raw control character in a string");
		if (*ps->p != '\\') {
			n = utf8_len(ps->p, ps->end);
			if (n == 0)
				return fail(ps, "invalid UTF-8 in a string");
			if (out)
				fwrite(ps->p, 1, n, out);
			ps->p += n;
			continue;
		}
		if (ps->end - ps->p < 2)
			return fail(ps, "unterminated escape");
		ps->p += 2;
		switch (ps->p[-1]) {
		case '"': case '\\': case '/':
			if (out)
				putc(ps->p[-1], out);
			continue;
		case 'b': if (out) putc('\b', out); continue;
		case 'f': if (out) putc('\f', out); continue;
		case 'n': if (out) putc('\n', out); continue;
		case 'r': if (out) putc('\r', out); continue;
		case 't': if (out) putc('\t', out); continue;
		case 'u': break;
		default: return fail(ps, "bad escape");
		}
		if (ps->end - ps->p < 4 || hex4(ps->p, &u) < 0)
			return fail(ps, "bad \\u escape");
		ps->p += 4;
		if (u >= 0xD800 && u <= 0xDBFF) {
			if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
			    hex4(ps->p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
				return fail(ps, "a high surrogate without its low one");
			ps->p += 6;
			u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
		} else if (u >= 0xDC00 && u <= 0xDFFF) {
			if (u < 0xDC80 || u > 0xDCFF)
				return fail(ps, "a lone surrogate that is no escaped byte");
			if (out)
				putc((int)(u - 0xDC00), out);   /* surrogateescape */
			continue;
		}
		if (out)
			put_utf8(out, u);
	}
}

static int
number(struct parser *ps)
{
	const unsigned char *s = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0')
		ps->p++;
	else if (ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9')
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	else
		return fail(ps, "bad number");
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad fraction");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad exponent");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	return ps->p > s ? 0 : -1;
}

static int
word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
		return fail(ps, "unexpected word");
	ps->p += n;
	return 0;
}

/* a member's key; on the top level, recorded, and never twice */
static int
key(struct parser *ps, int top)
{
	const unsigned char *k = ps->p + 1;
	int i;

	if (ps->p >= ps->end || *ps->p != '"')
		return fail(ps, "expected a key");
	if (string(ps, NULL) < 0)
		return -1;
	if (!top)
		return 0;
	if (ps->nm == MAX_KEYS)
		return fail(ps, "too many keys");
	ps->m[ps->nm].key = k;
	ps->m[ps->nm].keylen = (size_t)(ps->p - 1 - k);
	for (i = 0; i < ps->nm; i++)
		if (ps->m[i].keylen == ps->m[ps->nm].keylen &&
		    memcmp(ps->m[i].key, k, ps->m[i].keylen) == 0)
			return fail(ps, "a key twice");
	return 0;
}

static int
container(struct parser *ps, int object)
{
	int top = object && ps->depth == 0;
	char close = object ? '}' : ']';

	if (++ps->depth > MAX_DEPTH)
		return fail(ps, "nested too deeply");
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		skip_ws(ps);
		if (object) {
			if (key(ps, top) < 0)
				return -1;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return fail(ps, "expected ':'");
			ps->p++;
			skip_ws(ps);
			if (top)
				ps->m[ps->nm].value = ps->p;
		}
		if (value(ps) < 0)
			return -1;
		if (top)
			ps->m[ps->nm].valuelen = (size_t)(ps->p - ps->m[ps->nm].value), ps->nm++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			ps->depth--;
			return 0;
		}
		return fail(ps, "expected ',' or the end");
	}
}

static int
value(struct parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "unexpected end");
	switch (*ps->p) {
	case '{': return container(ps, 1);
	case '[': return container(ps, 0);
	case '"': return string(ps, NULL);
	case 't': return word(ps, "true");
	case 'f': return word(ps, "false");
	case 'n': return word(ps, "null");
	default: return number(ps);
	}
}

static const struct member *
member(const struct parser *ps, const char *name)
{
	int i;

	for (i = 0; i < ps->nm; i++)
		if (ps->m[i].keylen == strlen(name) && memcmp(ps->m[i].key, name, ps->m[i].keylen) == 0)
			return &ps->m[i];
	return NULL;
}

/* a value as the shell wants it: strings decoded, arrays one item a line */
static void
print_value(const struct member *m)
{
	struct parser ps;

	memset(&ps, 0, sizeof ps);
	ps.p = m->value;
	ps.end = m->value + m->valuelen;
	if (*ps.p == '"') {
		string(&ps, stdout);
	} else if (*ps.p == '[') {
		ps.p++;
		ps.depth = 1;
		for (skip_ws(&ps); ps.p < ps.end && *ps.p != ']'; skip_ws(&ps)) {
			const unsigned char *s = ps.p;

			if (*ps.p == '"')
				string(&ps, stdout);
			else if (value(&ps) == 0)
				fwrite(s, 1, (size_t)(ps.p - s), stdout);
			putchar('\n');
			skip_ws(&ps);
			if (ps.p < ps.end && *ps.p == ',')
				ps.p++;
		}
	} else {
		fwrite(m->value, 1, m->valuelen, stdout);
	}
}

/* is the "guest" of this line guest? */
static int
is_guest(const struct parser *ps, const char *guest)
{
	const struct member *m = member(ps, "guest");
	size_t n = strlen(guest);

	return m && m->valuelen == n + 2 && m->value[0] == '"' &&
	       memcmp(m->value + 1, guest, n) == 0;
}

static int
usage(void)
{
	fprintf(stderr, "usage: jsoncheck [-g GUEST] [-f FIELD | -k] < LINES\n");
	return 2;
}

static unsigned char *
read_all(size_t *n)
{
	unsigned char *b = malloc(MAX_LINE + 1);

	if (!b)
		return NULL;
	*n = fread(b, 1, MAX_LINE + 1, stdin);
	if (*n > MAX_LINE) {
		free(b);
		return NULL;
	}
	return b;
}

int
main(int argc, char **argv)
{
	const char *field = NULL, *guest = NULL;
	int keys = 0, i, found = 0, line = 0, rc = 0;
	unsigned char *all, *p, *end;
	size_t n;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
			field = argv[++i];
		else if (strcmp(argv[i], "-g") == 0 && i + 1 < argc)
			guest = argv[++i];
		else if (strcmp(argv[i], "-k") == 0)
			keys = 1;
		else
			return usage();
	}
	all = read_all(&n);
	if (!all) {
		fprintf(stderr, "jsoncheck: unable to read stdin (or over %lu bytes)\n", MAX_LINE);
		return 1;
	}
	for (p = all, end = all + n; p < end && rc == 0; p++) {
		struct parser ps;
		unsigned char *nl = memchr(p, '\n', (size_t)(end - p));

		line++;
		if (!nl) {
			fprintf(stderr, "jsoncheck: line %d: no newline at its end\n", line);
			rc = 1;
			break;
		}
		memset(&ps, 0, sizeof ps);
		ps.p = p;
		ps.end = nl;
		if (*p != '{')
			fail(&ps, "not an object");
		else if (container(&ps, 1) == 0 && ps.p != ps.end)
			fail(&ps, "bytes after the object");
		if (ps.why) {
			fprintf(stderr, "jsoncheck: line %d, byte %lu: %s\n", line,
			        (unsigned long)(ps.p - p), ps.why);
			rc = 1;
			break;
		}
		p = nl;
		if (guest && !is_guest(&ps, guest))
			continue;
		found++;
		if (keys) {
			for (i = 0; i < ps.nm; i++)
				printf("%s%.*s", i ? "," : "", (int)ps.m[i].keylen,
				       (const char *)ps.m[i].key);
			putchar('\n');
		} else if (field) {
			const struct member *m = member(&ps, field);

			if (m)
				print_value(m);
			else
				rc = 3;
		}
	}
	if (rc == 0 && guest && found != 1) {
		fprintf(stderr, "jsoncheck: %d lines of guest %s\n", found, guest);
		rc = 3;
	}
	free(all);
	return rc;
}
