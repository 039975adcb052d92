/*
 * tests/fuzz/fuzz.h: what the libFuzzer harnesses share (C99, clang only;
 * never part of the product build): a CHECK that crashes with a message,
 * a clock the input drives, and an oracle for what a daemon or a link
 * writes to its peer.
 */
#ifndef NEGOTIATOR_FUZZ_H
#define NEGOTIATOR_FUZZ_H

#include "negotiator.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond, ...) do {                                                  \
	if (!(cond)) {                                                         \
		fprintf(stderr, "CHECK failed at %s:%d: %s: ", __FILE__,       \
		        __LINE__, #cond);                                      \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	}                                                                      \
} while (0)

/* ---- the input, read as a stream of small fields ------------------------- */
struct input {
	const uint8_t *p, *end;
};

static inline int in_left(const struct input *in) { return in->p < in->end; }

static inline unsigned
get8(struct input *in)
{
	return in->p < in->end ? *in->p++ : 0;
}

static inline unsigned
get16(struct input *in)
{
	unsigned v = get8(in);

	return v | get8(in) << 8;
}

/* up to n bytes of the input (fewer at its end) */
static inline size_t
get_bytes(struct input *in, size_t n, const uint8_t **out)
{
	size_t left = (size_t)(in->end - in->p);

	if (n > left)
		n = left;
	*out = in->p;
	in->p += n;
	return n;
}

/* ---- the clock: link.c and daemon.c are built with -Dnow_ms=fuzz_now_ms --- */
static mtime_t fuzz_clock;

mtime_t
fuzz_now_ms(void)
{
	return fuzz_clock;
}

/* ---- the peer's view of a stream we write -------------------------------- */
/*
 * Everything a link sends must be well-formed frames carrying messages that
 * parse.  The one allowed exception: a link that starts a new session
 * (resync) drops what it had queued, perhaps in the middle of a frame, and
 * sends hello with its new nonce; from then on the peer skips to that hello.
 */
struct peer {
	int fd;                 /* our end of the stream, -1 when closed */
	struct buf in;          /* read, not yet parsed */
	struct buf out;         /* to write */
	char nonce[17];         /* the link's nonce when last looked at */
	int lossy;              /* skipping to the hello with that nonce */
	unsigned long frames;   /* frames checked */
};

static void
peer_init(struct peer *p, int fd, const struct link *l)
{
	p->fd = fd;
	buf_init(&p->in, 4 * (MAX_PAYLOAD + 16));
	buf_init(&p->out, 64UL << 20);
	memcpy(p->nonce, l ? l->nonce : "", l ? 17 : 1);
	p->lossy = 0;
	p->frames = 0;
}

static void
peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	buf_free(&p->in);
	buf_free(&p->out);
}

/* write what is queued; the stream is nonblocking */
static void
peer_flush(struct peer *p)
{
	while (p->fd >= 0 && buf_len(&p->out)) {
		ssize_t n = buf_write_fd(&p->out, p->fd, buf_len(&p->out));

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				buf_clear(&p->out);   /* the link closed: nobody reads */
			return;
		}
	}
	buf_trim(&p->out);
}

/* check the frames in p->in; l is the link writing them (NULL: gone) */
static void
peer_check(struct peer *p, const struct link *l, const char *who)
{
	if (l && memcmp(p->nonce, l->nonce, 17) != 0) {
		memcpy(p->nonce, l->nonce, 17);
		p->lossy = 1;
	}
	for (;;) {
		const unsigned char *pl;
		size_t plen, used;
		struct msg m;
		const char *why;
		int rc;

		if (p->lossy) {
			int found;
			size_t skip = sync_scan(buf_ptr(&p->in), buf_len(&p->in), &found);

			buf_consume(&p->in, skip);
			if (!found)
				return;
			rc = frame_parse(buf_ptr(&p->in), buf_len(&p->in), &pl, &plen, &used);
			CHECK(rc == FRAME_OK, "sync_scan found a frame that does not parse");
			CHECK(msg_parse(pl, plen, &m, &why) == 0, "sync_scan found a bad message");
			if (m.type == M_HELLO && memcmp(m.word1, p->nonce, 16) == 0)
				p->lossy = 0;
			buf_consume(&p->in, used);
			continue;
		}
		rc = frame_parse(buf_ptr(&p->in), buf_len(&p->in), &pl, &plen, &used);
		if (rc == FRAME_MORE)
			return;
		if (rc == FRAME_BAD) {
			char text[200];

			CHECK(0, "%s sent a malformed frame: %s", who,
			      escape_text(text, sizeof text, buf_ptr(&p->in),
			                  buf_len(&p->in) < 40 ? buf_len(&p->in) : 40));
		}
		if (msg_parse(pl, plen, &m, &why) != 0) {
			char text[200];

			CHECK(0, "%s sent a message that does not parse (%s): %s", who, why,
			      escape_text(text, sizeof text, pl, plen < 60 ? plen : 60));
		}
		p->frames++;
		buf_consume(&p->in, used);
	}
}

/* read what the link wrote and check it */
static void
peer_drain(struct peer *p, const struct link *l, const char *who)
{
	for (;;) {
		ssize_t n;

		if (p->fd < 0)
			return;
		n = buf_read_fd(&p->in, p->fd, MAX_PAYLOAD);
		if (n > 0) {
			peer_check(p, l, who);
			continue;
		}
		if (n == -2) {   /* full of a frame that is still incomplete */
			CHECK(0, "%s: no frame in %lu bytes", who, (unsigned long)buf_len(&p->in));
		}
		return;
	}
}

/* queue one frame "COUNT\nPAYLOAD" for the link to read */
static void
peer_frame(struct peer *p, const void *head, size_t hl, const void *data, size_t dl)
{
	char count[24];
	int cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)(hl + dl));
	unsigned char *d = buf_reserve(&p->out, (size_t)cl + hl + dl);

	if (!d)
		return;   /* over the harness's own limit: not sent */
	memcpy(d, count, (size_t)cl);
	if (hl)
		memcpy(d + cl, head, hl);
	if (dl)
		memcpy(d + cl + hl, data, dl);
	buf_commit(&p->out, (size_t)cl + hl + dl);
}

#endif
