/*
 * frame_fuzzer: frame_parse() and sync_scan() on arbitrary bytes.
 *
 * Besides memory safety (the input is copied to a buffer of its exact size,
 * so ASan sees any read past it): a frame that parses is canonical (its
 * count is the payload's length in decimal, no leading zero), every shorter
 * prefix of it is FRAME_MORE, and a verdict never changes when more bytes
 * arrive; sync_scan() finds only hello/sync frames that parse, and finds the
 * same one whether the bytes come at once or in pieces, as link.c feeds
 * them (keeping from the offset it returned).
 */
#include "fuzz.h"

/* sync_scan as a link does it: pieces of the input, keeping from what it
 * returns; the absolute offset of the frame found, or -1 */
static long
scan_in_pieces(const unsigned char *p, size_t len, size_t a, size_t b)
{
	size_t cut[3], from = 0;
	int i;

	cut[0] = a;
	cut[1] = b;
	cut[2] = len;
	for (i = 0; i < 3; i++) {
		int found;
		size_t skip;

		if (cut[i] < from)
			continue;
		skip = sync_scan(p + from, cut[i] - from, &found);
		CHECK(skip <= cut[i] - from, "sync_scan skipped past its input");
		from += skip;
		if (found)
			return (long)from;
	}
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p = malloc(size ? size : 1);
	const unsigned char *pl;
	size_t plen = 0, used = 0, k, skip;
	int rc, found;
	long whole, pieces;

	memcpy(p, data, size);
	rc = frame_parse(p, size, &pl, &plen, &used);
	if (rc == FRAME_OK) {
		char count[16];
		int cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)plen);

		CHECK(plen >= 1 && plen <= MAX_PAYLOAD, "payload of %lu bytes", (unsigned long)plen);
		CHECK(used == (size_t)cl + plen && used <= size, "used %lu", (unsigned long)used);
		CHECK(pl == p + cl && memcmp(p, count, (size_t)cl) == 0, "count not canonical");
		for (k = 0; k < used; k++)
			CHECK(frame_parse(p, k, &pl, &plen, &used) == FRAME_MORE,
			      "a prefix of %lu bytes of a frame is not FRAME_MORE", (unsigned long)k);
	} else if (rc == FRAME_BAD) {
		/* the first verdict on a prefix is the verdict for good */
		for (k = 0; k <= size; k++) {
			int r = frame_parse(p, k, &pl, &plen, &used);

			if (r != FRAME_MORE) {
				CHECK(r == FRAME_BAD, "prefix of %lu bytes parses, the whole is bad",
				      (unsigned long)k);
				break;
			}
		}
	} else {
		CHECK(size <= MAX_LEN_DIGITS + 1 + MAX_PAYLOAD, "FRAME_MORE on %lu bytes",
		      (unsigned long)size);
	}

	skip = sync_scan(p, size, &found);
	CHECK(skip <= size, "sync_scan returned %lu of %lu", (unsigned long)skip, (unsigned long)size);
	if (found) {
		struct msg m;
		const char *why;

		CHECK(frame_parse(p + skip, size - skip, &pl, &plen, &used) == FRAME_OK,
		      "sync_scan found no frame");
		CHECK(msg_parse(pl, plen, &m, &why) == 0 && (m.type == M_HELLO || m.type == M_SYNC),
		      "sync_scan found no hello or sync");
	}
	whole = found ? (long)skip : -1;
	if (size > 0) {
		size_t a = (size_t)p[0] * size / 256, b = (size_t)p[size - 1] * size / 256;

		if (a > b) {
			size_t t = a;

			a = b;
			b = t;
		}
		pieces = scan_in_pieces(p, size, a, b);
		CHECK(pieces == whole, "sync_scan at once found %ld, in pieces (%lu, %lu) %ld",
		      whole, (unsigned long)a, (unsigned long)b, pieces);
	}
	free(p);
	return 0;
}
