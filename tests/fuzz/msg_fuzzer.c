/*
 * msg_fuzzer: msg_parse() and netstring_get() on arbitrary bytes.
 *
 * The first byte picks the parser.  Memory safety (exact-size copy), and
 * canonical forms: a message that parses, written out again by the rules
 * in PROTOCOL, gives back exactly the input (so no second spelling of a
 * message gets through: leading zeros, extra spaces, ids out of range); a
 * run of netstrings that parses, written again with netstring_put(), gives
 * back the bytes it was read from.
 */
#include "fuzz.h"

static size_t
write_msg(char *out, size_t cap, const struct msg *m)
{
	int n = 0;

	switch (m->type) {
	case M_HELLO:
		n = snprintf(out, cap, "hello %lu %.16s", m->num, m->word1);
		break;
	case M_SYNC:
		n = snprintf(out, cap, "sync %lu %.16s %.16s", m->num, m->word1, m->word2);
		break;
	case M_PING:
	case M_PONG:
		n = snprintf(out, cap, "%s", msg_name(m->type));
		break;
	case M_ERROR:
		n = snprintf(out, cap, "error ");
		break;
	case M_GUESTS:
	case M_EOF:
	case M_CANCEL:
		n = snprintf(out, cap, "%s %lu", msg_name(m->type), m->id);
		break;
	case M_ACK:
		n = snprintf(out, cap, "ack %lu %lu", m->id, m->num);
		break;
	case M_EXIT:
		n = snprintf(out, cap, "exit %lu %s %lu", m->id, m->signaled ? "signal" : "status",
		             m->num);
		break;
	case M_FAIL:
		n = snprintf(out, cap, "fail %lu %lu ", m->id, m->num);
		break;
	default:
		n = snprintf(out, cap, "%s %lu ", msg_name(m->type), m->id);
		break;
	}
	CHECK(n > 0 && (size_t)n + m->datalen <= cap, "message too long to write");
	if (m->datalen)
		memcpy(out + n, m->data, m->datalen);
	return (size_t)n + m->datalen;
}

static void
check_msg(const unsigned char *p, size_t size)
{
	struct msg m;
	const char *why = NULL;
	char *again;
	size_t n;

	if (msg_parse(p, size, &m, &why) != 0) {
		CHECK(why && *why, "no reason for a refused message");
		return;
	}
	CHECK(m.type > M_NONE && m.type <= M_ERROR, "type %d", (int)m.type);
	CHECK(m.id <= 4294967295UL && m.num <= 4294967295UL, "number out of range");
	if (m.datalen)
		CHECK(m.data >= p && m.data + m.datalen <= p + size, "data outside the payload");
	again = malloc(size + 64);
	n = write_msg(again, size + 64, &m);
	CHECK(n == size && memcmp(again, p, size) == 0, "message is not canonical: %.*s",
	      (int)(size > 80 ? 80 : size), (const char *)p);
	free(again);
}

static void
check_netstrings(const unsigned char *p, size_t size)
{
	const unsigned char *q = p, *end = p + size, *s, *from;
	struct buf b;
	size_t n;
	int rc;

	buf_init(&b, (size_t)-1);
	for (;;) {
		from = q;
		rc = netstring_get(&q, end, &s, &n);
		if (rc != 0) {
			CHECK(q == from, "netstring_get moved on failure or at the end");
			CHECK(rc != 1 || q == end, "end of input reported early");
			break;
		}
		CHECK(q > from && q <= end && s > from && s + n < q && n <= MAX_PAYLOAD,
		      "netstring bounds");
		buf_clear(&b);
		CHECK(netstring_put(&b, s, n) == 0, "netstring_put failed");
		CHECK(buf_len(&b) == (size_t)(q - from) && memcmp(buf_ptr(&b), from, buf_len(&b)) == 0,
		      "netstring is not canonical");
	}
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p;

	if (size == 0)
		return 0;
	p = malloc(size - 1 ? size - 1 : 1);
	memcpy(p, data + 1, size - 1);
	if (data[0] & 1)
		check_netstrings(p, size - 1);
	else
		check_msg(p, size - 1);
	free(p);
	return 0;
}
