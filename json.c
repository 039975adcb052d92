/*
 * json.c: the JSON python-negotiator speaks (see PROTOCOL, "python peers").
 *
 * Writing: ASCII only, everything else as \uXXXX escapes (surrogate pairs
 * above U+FFFF), because a Python 3 peer counts a frame in characters and
 * must see exactly as many as there are bytes.  Bytes that are not UTF-8
 * become U+FFFD: the answer is always valid JSON.
 *
 * json_put_bytes is the other writer, for negotiator-host --json: UTF-8
 * passes through as it is, and every byte that is not part of valid UTF-8
 * becomes a lone surrogate \udc80..\udcff (PEP 383, "surrogateescape"), so
 * that the exact bytes can be had back.  Never sent to a python peer.
 *
 * Reading: a small tree of values, strings decoded to UTF-8 (they may hold
 * NUL bytes: their length is kept).  Bounded: nesting depth, and the tree
 * never has more nodes than the text has bytes.  Whitespace and key order
 * are free, as Python 2 sends keys in any order.
 */
#include "negotiator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 32

/* ---- writing ------------------------------------------------------------------ */

static void
put_u(struct buf *b, unsigned long u)
{
	char e[8];

	snprintf(e, sizeof e, "\\u%04lx", u);
	buf_append(b, e, 6);
}

#define UTF8_BAD 0x110000UL    /* not a code point: a byte that is not UTF-8 */

/* next code point of UTF-8 text, or UTF8_BAD for a byte that does not start
 * a valid sequence (then one byte is used).  Valid means what Python's
 * strict decoder takes: shortest form, no surrogates, at most U+10FFFF. */
static unsigned long
utf8_next(const unsigned char *s, size_t n, size_t *used)
{
	unsigned long c = s[0], min;
	size_t k, i;

	*used = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xC2 && c <= 0xDF)
		k = 1, c &= 0x1F, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		k = 2, c &= 0x0F, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		k = 3, c &= 0x07, min = 0x10000;
	else
		return UTF8_BAD;
	if (k >= n)
		return UTF8_BAD;
	for (i = 1; i <= k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return UTF8_BAD;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return UTF8_BAD;
	*used = k + 1;
	return c;
}

/* Writes s[0..n) as a JSON string: each run of text that plain() measures
 * goes in one piece (answers and outputs may be many MiB), and where it
 * stops, escape() writes what it finds and says how many bytes it used. */
static void
put_quoted(struct buf *b, const unsigned char *s, size_t n,
           size_t (*plain)(const unsigned char *s, size_t n),
           size_t (*escape)(struct buf *b, const unsigned char *s, size_t n))
{
	size_t i = 0, used;

	buf_append(b, "\"", 1);
	while (i < n) {
		used = plain(s + i, n - i);
		if (used)
			buf_append(b, s + i, used);
		else
			used = escape(b, s + i, n - i);
		i += used;
	}
	buf_append(b, "\"", 1);
}

/* json_put_string's plain text: printable ASCII but '"' and '\\' */
static size_t
ascii_run(const unsigned char *s, size_t n)
{
	size_t k = 0;

	while (k < n && s[k] >= 0x20 && s[k] < 0x7F && s[k] != '"' && s[k] != '\\')
		k++;
	return k;
}

/* json_put_string's other text: one code point (U+FFFD for a byte that is
 * not UTF-8) as an escape */
static size_t
put_code_point(struct buf *b, const unsigned char *s, size_t n)
{
	size_t used;
	unsigned long c = utf8_next(s, n, &used);

	if (c == UTF8_BAD)
		c = 0xFFFD;
	if (c == '"' || c == '\\') {
		char e[2];

		e[0] = '\\';
		e[1] = (char)c;
		buf_append(b, e, 2);
	} else if (c == '\n') {
		buf_append(b, "\\n", 2);
	} else if (c == '\t') {
		buf_append(b, "\\t", 2);
	} else if (c >= 0x20 && c < 0x7F) {
		char ch = (char)c;

		buf_append(b, &ch, 1);
	} else if (c < 0x10000) {
		put_u(b, c);
	} else {
		c -= 0x10000;
		put_u(b, 0xD800 + (c >> 10));
		put_u(b, 0xDC00 + (c & 0x3FF));
	}
	return used;
}

void
json_put_string(struct buf *b, const void *text, size_t n)
{
	put_quoted(b, text, n, ascii_run, put_code_point);
}

/* json_put_bytes's plain text: ASCII but control characters, '"' and
 * '\\', and valid UTF-8 */
static size_t
utf8_run(const unsigned char *s, size_t n)
{
	size_t k = 0, used;

	while (k < n && s[k] >= 0x20 && s[k] != '"' && s[k] != '\\') {
		if (s[k] < 0x80)
			k++;
		else if (utf8_next(s + k, n - k, &used) != UTF8_BAD)
			k += used;
		else
			break;
	}
	return k;
}

/* json_put_bytes's other bytes, one at a time: ASCII escaped, a byte that
 * is not part of valid UTF-8 (0x80..0xFF) as \udc80..\udcff */
static size_t
put_byte(struct buf *b, const unsigned char *s, size_t n)
{
	char e[2];

	(void)n;
	if (s[0] >= 0x80) {
		put_u(b, 0xDC00UL + s[0]);
		return 1;
	}
	e[0] = '\\';
	switch (s[0]) {
	case '"': case '\\': e[1] = (char)s[0]; break;
	case '\n': e[1] = 'n'; break;
	case '\t': e[1] = 't'; break;
	case '\r': e[1] = 'r'; break;
	case '\b': e[1] = 'b'; break;
	case '\f': e[1] = 'f'; break;
	default: put_u(b, s[0]); return 1;
	}
	buf_append(b, e, 2);
	return 1;
}

void
json_put_bytes(struct buf *b, const void *text, size_t n)
{
	put_quoted(b, text, n, utf8_run, put_byte);
}

/* ---- reading ------------------------------------------------------------------ */

struct reader {
	const unsigned char *p, *end;
	const char *why;
	int depth;
};

static void
skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static struct json *
node(enum json_type t)
{
	struct json *j = xcalloc(1, sizeof *j);

	j->type = t;
	return j;
}

static int
hex4(const unsigned char *p, unsigned long *out)
{
	int i;

	*out = 0;
	for (i = 0; i < 4; i++) {
		int c = p[i], v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return -1;
		*out = *out * 16 + (unsigned long)v;
	}
	return 0;
}

static void
put_utf8(struct buf *b, unsigned long c)
{
	unsigned char u[4];
	size_t n;

	if (c < 0x80) {
		u[0] = (unsigned char)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (unsigned char)(0xC0 | (c >> 6));
		u[1] = (unsigned char)(0x80 | (c & 0x3F));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (c >> 12));
		u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (c & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (c >> 18));
		u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (c & 0x3F));
		n = 4;
	}
	buf_append(b, u, n);
}

/* a string at r->p (its opening quote); decoded into *s (NUL-terminated,
 * *n bytes without it); -1 on error */
static int
read_string(struct reader *r, char **s, size_t *n)
{
	struct buf b;

	buf_init(&b, (size_t)-1);
	r->p++;
	for (;;) {
		const unsigned char *q = r->p;
		unsigned long c, lo;

		while (q < r->end && *q != '"' && *q != '\\' && *q >= 0x20)
			q++;
		buf_append(&b, r->p, (size_t)(q - r->p));
		r->p = q;
		if (r->p >= r->end || *r->p < 0x20) {
			r->why = r->p >= r->end ? "unterminated string" : "control character in a string";
			buf_free(&b);
			return -1;
		}
		if (*r->p++ == '"')
			break;
		if (r->p >= r->end) {
			r->why = "unterminated escape";
			buf_free(&b);
			return -1;
		}
		switch (*r->p++) {
		case '"': buf_append(&b, "\"", 1); break;
		case '\\': buf_append(&b, "\\", 1); break;
		case '/': buf_append(&b, "/", 1); break;
		case 'b': buf_append(&b, "\b", 1); break;
		case 'f': buf_append(&b, "\f", 1); break;
		case 'n': buf_append(&b, "\n", 1); break;
		case 'r': buf_append(&b, "\r", 1); break;
		case 't': buf_append(&b, "\t", 1); break;
		case 'u':
			if (r->end - r->p < 4 || hex4(r->p, &c) < 0) {
				r->why = "bad \\u escape";
				buf_free(&b);
				return -1;
			}
			r->p += 4;
			if (c >= 0xD800 && c <= 0xDBFF && r->end - r->p >= 6 && r->p[0] == '\\' &&
			    r->p[1] == 'u' && hex4(r->p + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
				c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
				r->p += 6;
			} else if (c >= 0xD800 && c <= 0xDFFF) {
				c = 0xFFFD;   /* a lone surrogate */
			}
			put_utf8(&b, c);
			break;
		default:
			r->why = "bad escape";
			buf_free(&b);
			return -1;
		}
	}
	buf_append(&b, "", 1);
	*n = buf_len(&b) - 1;
	*s = xmalloc(buf_len(&b));
	memcpy(*s, buf_ptr(&b), buf_len(&b));
	buf_free(&b);
	return 0;
}

static struct json *read_value(struct reader *r);

static int
word(struct reader *r, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return 0;
	r->p += n;
	return 1;
}

static struct json *
read_number(struct reader *r)
{
	const unsigned char *s = r->p;
	struct json *j;

	if (r->p < r->end && *r->p == '-')
		r->p++;
	while (r->p < r->end && ((*r->p >= '0' && *r->p <= '9') || *r->p == '.' ||
	                         *r->p == 'e' || *r->p == 'E' || *r->p == '+' || *r->p == '-'))
		r->p++;
	if (r->p == s || (r->p == s + 1 && *s == '-') || r->p - s > 64) {
		r->why = "bad number";
		return NULL;
	}
	j = node(J_NUMBER);
	j->len = (size_t)(r->p - s);
	j->str = xmalloc(j->len + 1);
	memcpy(j->str, s, j->len);
	j->str[j->len] = '\0';
	return j;
}

/* items of an array or members of an object, after its opening bracket */
static struct json *
read_container(struct reader *r, int object)
{
	struct json *j = node(object ? J_OBJECT : J_ARRAY), **tail = &j->child;
	char close = object ? '}' : ']';

	if (++r->depth > JSON_MAX_DEPTH) {
		r->why = "nested too deeply";
		json_free(j);
		return NULL;
	}
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		r->depth--;
		return j;
	}
	for (;;) {
		char *key = NULL;
		size_t keylen = 0;
		struct json *v;

		skip_ws(r);
		if (object) {
			if (r->p >= r->end || *r->p != '"' || read_string(r, &key, &keylen) < 0) {
				if (!r->why)
					r->why = "expected a key";
				json_free(j);
				return NULL;
			}
			skip_ws(r);
			if (r->p >= r->end || *r->p != ':') {
				r->why = "expected ':'";
				free(key);
				json_free(j);
				return NULL;
			}
			r->p++;
		}
		v = read_value(r);
		if (!v) {
			free(key);
			json_free(j);
			return NULL;
		}
		v->key = key;
		v->keylen = keylen;
		*tail = v;
		tail = &v->next;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == close) {
			r->p++;
			r->depth--;
			return j;
		}
		r->why = object ? "expected ',' or '}'" : "expected ',' or ']'";
		json_free(j);
		return NULL;
	}
}

static struct json *
read_value(struct reader *r)
{
	struct json *j;

	skip_ws(r);
	if (r->p >= r->end) {
		r->why = "unexpected end";
		return NULL;
	}
	switch (*r->p) {
	case '{':
		return read_container(r, 1);
	case '[':
		return read_container(r, 0);
	case '"':
		j = node(J_STRING);
		if (read_string(r, &j->str, &j->len) < 0) {
			free(j);
			return NULL;
		}
		return j;
	case 't':
		if (word(r, "true"))
			return node(J_TRUE);
		break;
	case 'f':
		if (word(r, "false"))
			return node(J_FALSE);
		break;
	case 'n':
		if (word(r, "null"))
			return node(J_NULL);
		break;
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return read_number(r);
		break;
	}
	r->why = "unexpected character";
	return NULL;
}

struct json *
json_parse(const void *text, size_t n, const char **why)
{
	struct reader r;
	struct json *j;

	r.p = text;
	r.end = r.p + n;
	r.why = NULL;
	r.depth = 0;
	j = read_value(&r);
	if (j) {
		skip_ws(&r);
		if (r.p != r.end) {
			r.why = "trailing bytes after the value";
			json_free(j);
			j = NULL;
		}
	}
	if (!j && why)
		*why = r.why ? r.why : "malformed";
	return j;
}

void
json_free(struct json *j)
{
	while (j) {
		struct json *next = j->next;

		json_free(j->child);
		free(j->str);
		free(j->key);
		free(j);
		j = next;
	}
}

const struct json *
json_get(const struct json *obj, const char *key)
{
	const struct json *m;
	size_t n = strlen(key);

	if (!obj || obj->type != J_OBJECT)
		return NULL;
	for (m = obj->child; m; m = m->next)
		if (m->keylen == n && memcmp(m->key, key, n) == 0)
			return m;
	return NULL;
}

int
json_truthy(const struct json *j)
{
	if (!j)
		return 0;
	switch (j->type) {
	case J_NULL: case J_FALSE: return 0;
	case J_TRUE: return 1;
	case J_NUMBER: return strspn(j->str, "-0.eE+") != j->len;
	case J_STRING: return j->len > 0;
	default: return j->child != NULL;
	}
}
