/*
 * proto.c: the wire format.  Frames are an ASCII decimal byte count, "\n",
 * then exactly that many payload bytes (python-negotiator's framing).  Our
 * payloads start with a lowercase message word; see PROTOCOL.
 *
 * Everything here is pure: bytes in, verdicts out, no I/O, so the unit
 * tests can throw truncated, oversized and garbage input at it.
 */
#include "negotiator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SYNC_PAYLOAD 64   /* hello and sync frames are short */

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

int
frame_parse(const unsigned char *p, size_t len, const unsigned char **payload,
            size_t *plen, size_t *used)
{
	size_t i, n = 0;

	for (i = 0; i < len && is_digit(p[i]); i++) {
		if (i == MAX_LEN_DIGITS)
			return FRAME_BAD;
		n = n * 10 + (size_t)(p[i] - '0');
	}
	if (i == len)
		return FRAME_MORE;          /* still reading the count */
	if (i == 0 || p[i] != '\n' || p[0] == '0')
		return FRAME_BAD;           /* no count, junk, or leading zero */
	if (n > MAX_PAYLOAD)
		return FRAME_BAD;           /* checked before anything waits for it */
	if (len - i - 1 < n)
		return FRAME_MORE;
	*payload = p + i + 1;
	*plen = n;
	*used = i + 1 + n;
	return FRAME_OK;
}

int
py_frame_parse(const unsigned char *p, size_t len, size_t max, const unsigned char **payload,
               size_t *plen, size_t *used)
{
	size_t i, n = 0, digits = 0, after = 0;

	for (i = 0; i < len && p[i] != '\n'; i++) {
		if (i == 32)
			return FRAME_BAD;           /* no count line is that long */
		if (is_digit(p[i]) && !after) {
			if (++digits > 12)
				return FRAME_BAD;
			n = n * 10 + (size_t)(p[i] - '0');
		} else if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r') {
			after = digits > 0;
		} else {
			return FRAME_BAD;
		}
	}
	if (i == len)
		return FRAME_MORE;
	if (digits == 0 || n == 0 || n > max)
		return FRAME_BAD;
	if (len - i - 1 < n)
		return FRAME_MORE;
	*payload = p + i + 1;
	*plen = n;
	*used = i + 1 + n;
	return FRAME_OK;
}

/* Could the bytes at q (have bytes present, frame of n bytes) be the start
 * of a hello or sync payload? */
static int
sync_prefix(const unsigned char *q, size_t have, size_t n)
{
	static const char *const words[] = { "hello ", "sync " };
	size_t w, k;

	if (n > MAX_SYNC_PAYLOAD)
		return 0;
	for (w = 0; w < 2; w++) {
		size_t wl = strlen(words[w]);

		k = have < wl ? have : wl;
		if (memcmp(q, words[w], k) == 0)
			return 1;
	}
	return 0;
}

size_t
sync_scan(const unsigned char *p, size_t len, int *found)
{
	size_t i, tail;

	*found = 0;
	for (i = 0; i < len; i++) {
		const unsigned char *pl;
		size_t plen, used, j;
		int rc;
		struct msg m;
		const char *why;

		/* every digit may start a count: garbage can end in digits */
		if (!is_digit(p[i]))
			continue;
		rc = frame_parse(p + i, len - i, &pl, &plen, &used);
		if (rc == FRAME_BAD)
			continue;
		if (rc == FRAME_MORE) {
			/* keep an incomplete candidate if it can still match */
			for (j = i; j < len && is_digit(p[j]); j++)
				;
			if (j == len)
				return i;   /* a count still arriving */
			{
				size_t n = 0, k;

				for (k = i; k < j; k++)
					n = n * 10 + (size_t)(p[k] - '0');
				if (sync_prefix(p + j + 1, len - j - 1, n))
					return i;
			}
			continue;
		}
		if (!sync_prefix(pl, plen, plen))
			continue;
		if (msg_parse(pl, plen, &m, &why) == 0 &&
		    (m.type == M_HELLO || m.type == M_SYNC)) {
			*found = 1;
			return i;
		}
	}
	/* nothing yet: keep a trailing run of digits, it may be a count */
	for (tail = len; tail > 0 && is_digit(p[tail - 1]); tail--)
		;
	return tail;
}

/* The JSON counterpart of sync_scan, for streams that probe or serve
 * probes: where a JSON frame (COUNT "\n" "{" ... "}") starts.  Every digit
 * counts as a possible start, as there: the bytes before may be a frame cut
 * short that ends in digits (an ack's "... 32768"), which then run into the
 * next count.  A complete frame whose payload ends in "}" is found (*found
 * = 1), the first one; else the first that may still become one (at most
 * MAX_PAYLOAD: a probe, its answer, or python's first request, all short)
 * is kept; else len.  A count over PY_MAX_FRAME counts only at the very
 * start (python's request, too big: the caller refuses it). */
size_t
json_sync_scan(const unsigned char *p, size_t len, int at_start, int *found)
{
	size_t i, keep = len;

	*found = 0;
	for (i = 0; i < len; i++) {
		size_t j, n = 0, end;

		if (!is_digit(p[i]) || p[i] == '0')
			continue;
		for (j = i; j < len && is_digit(p[j]) && j - i < 12; j++)
			n = n * 10 + (size_t)(p[j] - '0');
		if (j == len) {               /* a count still arriving */
			if (keep == len)
				keep = i;
			continue;
		}
		if (p[j] != '\n' || n < 2)
			continue;
		if (n > PY_MAX_FRAME) {
			/* python's oversized request, to be refused: only where the
			 * stream starts, never after garbage */
			if (at_start && i == 0 && (j + 1 == len || p[j + 1] == '{')) {
				*found = j + 1 < len;
				return 0;
			}
			continue;
		}
		if (j + 1 == len || (p[j + 1] == '{' && len - j - 1 < n)) {
			if (keep == len && n <= MAX_PAYLOAD)
				keep = i;          /* may still become one */
			continue;
		}
		if (p[j + 1] != '{')
			continue;
		for (end = j + n; end > j + 1 && (p[end] == ' ' || p[end] == '\n' ||
		                                  p[end] == '\r' || p[end] == '\t'); end--)
			;
		if (p[end] == '}') {
			*found = 1;
			return i;
		}
	}
	return keep;
}

/* ---- message parsing ----------------------------------------------------- */

struct cursor {
	const unsigned char *p, *end;
};

static int
get_word(struct cursor *c, const char **w, size_t *n)
{
	const unsigned char *s = c->p;

	while (c->p < c->end && *c->p != ' ')
		c->p++;
	*w = (const char *)s;
	*n = (size_t)(c->p - s);
	return *n ? 0 : -1;
}

/* a single space between fields; nothing else */
static int
get_space(struct cursor *c)
{
	if (c->p < c->end && *c->p == ' ') {
		c->p++;
		return 0;
	}
	return -1;
}

static int
get_number(struct cursor *c, unsigned long *v)
{
	const char *w;
	size_t n, i;
	unsigned long x = 0;

	if (get_word(c, &w, &n) < 0 || n > 10 || (n > 1 && w[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		unsigned long d;

		if (!is_digit((unsigned char)w[i]))
			return -1;
		d = (unsigned long)(w[i] - '0');
		if (x > (4294967295UL - d) / 10)
			return -1;   /* 32-bit safe on every CPU */
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static int
at_end(const struct cursor *c)
{
	return c->p == c->end;
}

static int
get_nonce(struct cursor *c, const char **w)
{
	size_t n, i;

	if (get_word(c, w, &n) < 0 || n != 16)
		return -1;
	for (i = 0; i < n; i++) {
		char x = (*w)[i];

		if (!is_digit((unsigned char)x) && !(x >= 'a' && x <= 'f'))
			return -1;
	}
	return 0;
}

static const struct {
	const char *word;
	enum msg_type type;
} msg_words[] = {
	{ "hello", M_HELLO }, { "sync", M_SYNC }, { "ping", M_PING },
	{ "pong", M_PONG }, { "exec", M_EXEC }, { "list", M_LIST },
	{ "guests", M_GUESTS }, { "in", M_IN }, { "out", M_OUT },
	{ "err", M_ERR }, { "eof", M_EOF }, { "ack", M_ACK },
	{ "exit", M_EXIT }, { "fail", M_FAIL }, { "cancel", M_CANCEL },
	{ "error", M_ERROR }, { "status", M_STATUS }
};

const char *
msg_name(enum msg_type t)
{
	size_t i;

	for (i = 0; i < sizeof msg_words / sizeof msg_words[0]; i++)
		if (msg_words[i].type == t)
			return msg_words[i].word;
	return "?";
}

static void
rest_as_data(struct cursor *c, struct msg *m)
{
	m->data = c->p;
	m->datalen = (size_t)(c->end - c->p);
	c->p = c->end;
}

static int
parse_body(struct cursor *c, struct msg *m)
{
	const char *w;
	size_t n;

	switch (m->type) {
	case M_HELLO:
		return get_space(c) || get_number(c, &m->num) || get_space(c) ||
		       get_nonce(c, &m->word1) || !at_end(c) ? -1 : 0;
	case M_SYNC:
		return get_space(c) || get_number(c, &m->num) || get_space(c) ||
		       get_nonce(c, &m->word1) || get_space(c) ||
		       get_nonce(c, &m->word2) || !at_end(c) ? -1 : 0;
	case M_PING:
	case M_PONG:
		return at_end(c) ? 0 : -1;
	case M_ERROR:
		if (get_space(c))
			return -1;
		rest_as_data(c, m);
		return 0;
	default:
		break;
	}
	if (get_space(c) || get_number(c, &m->id) || m->id == 0)
		return -1;
	switch (m->type) {
	case M_GUESTS:
	case M_EOF:
	case M_CANCEL:
		return at_end(c) ? 0 : -1;
	case M_ACK:
		return get_space(c) || get_number(c, &m->num) || m->num == 0 ||
		       !at_end(c) ? -1 : 0;
	case M_EXIT:
		if (get_space(c) || get_word(c, &w, &n))
			return -1;
		if (n == 6 && memcmp(w, "status", 6) == 0)
			m->signaled = 0;
		else if (n == 6 && memcmp(w, "signal", 6) == 0)
			m->signaled = 1;
		else
			return -1;
		/* status 0-255; signal 1-127, so that 128 + signal is a status */
		return get_space(c) || get_number(c, &m->num) ||
		       (m->signaled ? m->num == 0 || m->num > 127 : m->num > 255) ||
		       !at_end(c) ? -1 : 0;
	case M_FAIL:
		/* a failure is never a success: code 1-255 */
		if (get_space(c) || get_number(c, &m->num) || m->num == 0 || m->num > 255 ||
		    get_space(c))
			return -1;
		rest_as_data(c, m);
		return 0;
	default:   /* exec, list, in, out, err: a space, then bytes */
		if (get_space(c))
			return -1;
		rest_as_data(c, m);
		return 0;
	}
}

int
msg_parse(const unsigned char *payload, size_t len, struct msg *m, const char **why)
{
	struct cursor c;
	const char *w;
	size_t n, i;

	memset(m, 0, sizeof *m);
	c.p = payload;
	c.end = payload + len;
	*why = "empty message";
	if (get_word(&c, &w, &n) < 0)
		return -1;
	*why = "unknown message type";
	for (i = 0; i < sizeof msg_words / sizeof msg_words[0]; i++)
		if (strlen(msg_words[i].word) == n && memcmp(msg_words[i].word, w, n) == 0)
			m->type = msg_words[i].type;
	if (m->type == M_NONE)
		return -1;
	*why = "malformed message";
	return parse_body(&c, m);
}

int
msg_exit_status(const struct msg *m)
{
	return m->signaled ? 128 + (int)m->num : (int)m->num;
}

/* ---- netstrings ------------------------------------------------------------- */

int
netstring_put(struct buf *b, const void *p, size_t n)
{
	char head[24];
	int hl = snprintf(head, sizeof head, "%lu:", (unsigned long)n);

	if (buf_append(b, head, (size_t)hl) < 0 || buf_append(b, p, n) < 0 ||
	    buf_append(b, ",", 1) < 0)
		return -1;
	return 0;
}

int
netstring_get(const unsigned char **pp, const unsigned char *end,
              const unsigned char **s, size_t *n)
{
	const unsigned char *p = *pp;
	size_t len = 0, digits = 0;

	if (p == end)
		return 1;
	while (p < end && is_digit(*p)) {
		if (++digits > MAX_LEN_DIGITS)
			return -1;
		len = len * 10 + (size_t)(*p - '0');
		p++;
	}
	if (digits == 0 || (digits > 1 && **pp == '0') || p == end || *p != ':')
		return -1;
	p++;
	if ((size_t)(end - p) < len + 1 || p[len] != ',')
		return -1;
	*s = p;
	*n = len;
	*pp = p + len + 1;
	return 0;
}

void
trace_from_env(void)
{
	const char *t = getenv("NEGOTIATOR_TRACE");

	if (t && *t && strcmp(t, "0") != 0)
		log_level = LOG_LVL_TRACE;
}

/* git's GIT_TRACE_PACKET, for us: NEGOTIATOR_TRACE=1 or -vv shows frames */
void
trace_frame(const char *dir, const char *who, const unsigned char *p, size_t n)
{
	char text[200];

	if (log_level < LOG_LVL_TRACE)
		return;
	trace("%s %s %lu: %s", who, dir, (unsigned long)n,
	      escape_text(text, sizeof text, p, n > 120 ? 120 : n));
}
