/*
 * link.c: the session layer over one byte stream (a virtio port, a QEMU
 * socket, a control socket).
 *
 * A connection carries sessions.  Each side names its session with a
 * random nonce in "hello"; the other side answers "sync" echoing it.  A
 * receiver that sees garbage, or a connection that may start mid-frame,
 * discards bytes until a valid hello/sync frame.  A new peer nonce means
 * the peer restarted or lost data: every call of the old session fails.
 */
#include "negotiator.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void
link_init(struct link *l, enum link_kind kind, int fd, const char *name)
{
	memset(l, 0, sizeof *l);
	l->kind = kind;
	l->fd = -1;
	l->next_id = 1;
	strncpy(l->name, name, sizeof l->name - 1);
	buf_init(&l->in, IN_BUF_SIZE);
	buf_init(&l->out, OUT_HARD_LIMIT);
	l->initiates = kind != LINK_CONTROL;
	if (fd >= 0)
		link_attach(l, fd);
}

static void
new_session(struct link *l)
{
	l->partial = 0;
	random_nonce(l->nonce);
	l->up = 0;
	/* a local client starts cleanly with hello: no resync, garbage ends it */
	l->syncing = l->kind != LINK_CONTROL;
	l->peer[0] = '\0';
	l->ping_sent = 0;
	l->last_rx = now_ms();
	l->next_hello = l->last_rx;
	l->consumed = 0;
}

void
link_attach(struct link *l, int fd)
{
	l->fd = fd;
	l->paused = l->pause_wake = l->woke = 0;
	buf_clear(&l->in);
	buf_clear(&l->out);
	new_session(l);
	if (l->initiates)
		link_send_hello(l);
}

void
link_detach(struct link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->up = 0;
	l->paused = l->pause_wake = l->woke = 0;
	buf_free(&l->in);
	buf_free(&l->out);
	l->consumed = 0;
}

/* Say how many lines were held back, once their second is over. */
static void
log_summary(struct link *l, mtime_t now)
{
	if (l->log_held && !TIME_BEFORE(now, l->log_since + 1000)) {
		warn("%s: %lu more messages about this peer held back (at most %d a second)",
		     l->name, l->log_held, LOG_PER_SECOND);
		l->log_held = 0;
	}
}

void
link_log(struct link *l, int level, const char *fmt, ...)
{
	char line[900];
	mtime_t now;
	va_list ap;

	if (level > log_level)
		return;
	now = now_ms();
	log_summary(l, now);
	if (!TIME_BEFORE(now, l->log_since + 1000)) {
		l->log_since = now;
		l->log_lines = 0;
	}
	if (l->log_lines++ >= LOG_PER_SECOND) {
		l->log_held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log_at(level, "%s: %s", l->name, line);
}

/* Drop what was queued, start a new session: the peer will answer our new
 * hello and both sides fail the calls of the old one. */
static void
resync(struct link *l, const char *why)
{
	link_log(l, LOG_LVL_WARN, "%s; resynchronizing", why);
	if (l->up)
		l->session_lost = 1;
	buf_clear(&l->out);
	new_session(l);
	if (l->kind == LINK_CONTROL) {
		l->dead = 1;   /* a local client speaking garbage is just dropped */
		return;
	}
	link_send_hello(l);
}

int
link_send(struct link *l, const char *head, size_t headlen, const void *data,
          size_t datalen)
{
	char count[16];
	int cl;
	unsigned char *d;

	if (l->fd < 0 || l->dead)
		return -1;
	if (headlen + datalen > MAX_PAYLOAD || headlen + datalen == 0) {
		/* a bug of ours, never a reason to stop serving everyone else */
		error("%s: internal error: refusing a frame of %lu bytes", l->name,
		      (unsigned long)(headlen + datalen));
		return -1;
	}
	cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)(headlen + datalen));
	d = buf_reserve(&l->out, (size_t)cl + headlen + datalen);
	if (!d) {
		/* the peer has not read for too long: fail closed */
		resync(l, "output queue over its limit (peer not reading)");
		return -1;
	}
	memcpy(d, count, (size_t)cl);
	memcpy(d + cl, head, headlen);
	if (datalen)
		memcpy(d + cl + headlen, data, datalen);
	trace_frame("<-", l->name, d + cl, headlen + datalen);
	buf_commit(&l->out, (size_t)cl + headlen + datalen);
	return 0;
}

/* Data under one head ("out 7 "), in as many frames as it takes. */
int
link_send_data(struct link *l, const char *head, size_t headlen, const void *data,
               size_t datalen)
{
	const unsigned char *d = data;

	do {
		size_t n = headlen + datalen > MAX_PAYLOAD ? MAX_PAYLOAD - headlen : datalen;

		if (link_send(l, head, headlen, d, n) < 0)
			return -1;
		if (n)
			d += n;   /* d may be NULL (no data): NULL + 0 is undefined */
		datalen -= n;
	} while (datalen > 0);
	return 0;
}

/*
 * Data frames read straight from fd into the output queue, up to
 * READ_FRAMES frames of DATA_CHUNK bytes with one readv().  Compared with
 * read() into a buffer + link_send() per frame, this saves a copy and, more
 * important under emulation, most wakeups: a command blocked on a full pipe
 * is woken once per readv() instead of once per frame, and each wakeup is a
 * pair of context switches.  Each slot leaves room for a count of
 * MAX_LEN_DIGITS digits, exact for a full frame; a short last frame is moved
 * down to meet its shorter count.  Returns readv()'s result (-1 and errno,
 * also EAGAIN; 0 at EOF; or bytes framed), or -2 when the queue is full.
 */
ssize_t
link_send_read(struct link *l, const char *head, size_t headlen, int fd, size_t max)
{
	size_t room = MAX_LEN_DIGITS + 1 + headlen, left, got, len, total;
	struct iovec iov[READ_FRAMES];
	unsigned char *d, *q;
	char count[16];
	int k, i, cl;
	ssize_t n;

	if (max > READ_FRAMES * DATA_CHUNK)
		max = READ_FRAMES * DATA_CHUNK;
	if (l->fd < 0 || l->dead || max == 0)
		return -2;
	if (headlen + DATA_CHUNK > MAX_PAYLOAD)
		fatal("internal error: frame head of %lu bytes", (unsigned long)headlen);
	k = (int)((max + DATA_CHUNK - 1) / DATA_CHUNK);
	if (!(d = buf_reserve(&l->out, (size_t)k * room + max)))
		return -2;
	for (i = 0, q = d, left = max; i < k; i++, left -= len) {
		len = left < DATA_CHUNK ? left : DATA_CHUNK;
		iov[i].iov_base = (void *)(q + room);
		iov[i].iov_len = len;
		q += room + len;
	}
	do
		n = readv(fd, iov, k);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	for (i = 0, q = d, got = (size_t)n; got > 0; i++, got -= len) {
		len = got < iov[i].iov_len ? got : iov[i].iov_len;
		total = headlen + len;
		cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)total);
		if (q + cl + headlen != iov[i].iov_base)   /* only a short last frame */
			memmove(q + cl + headlen, iov[i].iov_base, len);
		memcpy(q, count, (size_t)cl);
		memcpy(q + cl, head, headlen);
		trace_frame("<-", l->name, q + cl, total);
		q += (size_t)cl + total;
	}
	buf_commit(&l->out, (size_t)(q - d));
	return n;
}

int
link_sendf(struct link *l, const char *fmt, ...)
{
	char head[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof head)
		n = (int)strlen(head);
	return link_send(l, head, (size_t)n, NULL, 0);
}

void
link_send_hello(struct link *l)
{
	link_sendf(l, "hello %d %s", PROTOCOL_VERSION, l->nonce);
}

/* Reads until the descriptor is drained, the buffer is full or
 * READS_PER_WAKEUP reads were done: a virtio port returns at most 4 KiB per
 * read(), and one select() round per 4 KiB costs more than the read.  EOF or
 * an error after some data is reported on the next call (both persist). */
int
link_read(struct link *l)
{
	ssize_t n;
	int k, got = 0;

	if (l->consumed) {
		buf_consume(&l->in, l->consumed);
		l->consumed = 0;
	}
	for (k = 0; k < READS_PER_WAKEUP; k++) {
		n = buf_read_fd(&l->in, l->fd, IN_BUF_SIZE - buf_len(&l->in));
		if (n <= 0)
			break;
		got = 1;
	}
	if (got) {
		l->last_rx = now_ms();
		l->ping_sent = 0;
		return 1;
	}
	if (n == 0)
		return 0;
	if (n == -2 || errno == EAGAIN || errno == EWOULDBLOCK)
		return 2;   /* nothing now */
	return -1;
}

int
link_flush(struct link *l)
{
	while (buf_len(&l->out) > 0) {
		ssize_t n = buf_write_fd(&l->out, l->fd, buf_len(&l->out));

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		if (n == 0)
			return 0;
	}
	return 0;
}

int
link_out_room(const struct link *l)
{
	return buf_len(&l->out) < OUT_HIGH_WATER;
}

/* A hello or sync naming a peer session; returns the event it causes. */
static enum link_event
peer_session(struct link *l, const char *peer_nonce)
{
	int had = l->up;

	if (l->up && memcmp(l->peer, peer_nonce, 16) == 0)
		return EV_NONE;            /* same session, nothing changes */
	memcpy(l->peer, peer_nonce, 16);
	l->peer[16] = '\0';
	l->up = 1;
	link_log(l, LOG_LVL_DEBUG, "session %s up with peer %s", l->nonce, l->peer);
	if (had) {
		l->pending_up = 1;         /* report the loss first, then the new session */
		return EV_RESET;
	}
	return EV_UP;
}

static enum link_event
session_msg(struct link *l, struct msg *m)
{
	char text[200];

	switch (m->type) {
	case M_HELLO:
		if (m->num != PROTOCOL_VERSION) {
			link_sendf(l, "error unsupported protocol version %lu", m->num);
			return EV_NONE;
		}
		link_sendf(l, "sync %d %s %.16s", PROTOCOL_VERSION, l->nonce, m->word1);
		return peer_session(l, m->word1);
	case M_SYNC:
		if (m->num != PROTOCOL_VERSION || memcmp(m->word2, l->nonce, 16) != 0)
			return EV_NONE;            /* answers an older hello of ours */
		return peer_session(l, m->word1);
	case M_PING:
		link_sendf(l, "pong");
		return EV_NONE;
	case M_PONG:
		return EV_NONE;
	case M_ERROR:
		link_log(l, LOG_LVL_WARN, "peer reports: %s",
		     escape_text(text, sizeof text, m->data, m->datalen));
		return EV_NONE;
	default:
		return EV_MSG;
	}
}

enum link_event
link_next(struct link *l, struct msg *m)
{
	for (;;) {
		const unsigned char *payload;
		size_t plen, used;
		const char *why;
		enum link_event ev;
		int rc;

		if (l->session_lost) {
			l->session_lost = 0;
			return EV_RESET;
		}
		if (l->pending_up) {
			l->pending_up = 0;
			return EV_UP;
		}
		if (l->consumed) {
			buf_consume(&l->in, l->consumed);
			l->consumed = 0;
		}
		if (l->dead || l->fd < 0)
			return EV_NONE;
		if (l->syncing) {
			int found;
			size_t skip = sync_scan(buf_ptr(&l->in), buf_len(&l->in), &found);

			if (skip)
				link_log(l, LOG_LVL_DEBUG, "skipped %lu bytes while synchronizing",
				      (unsigned long)skip);
			buf_consume(&l->in, skip);
			if (!found)
				return EV_NONE;
			l->syncing = 0;
		}
		rc = frame_parse(buf_ptr(&l->in), buf_len(&l->in), &payload, &plen, &used);
		if (rc == FRAME_MORE) {
			if (buf_len(&l->in) && !l->partial) {
				l->partial = 1;
				l->partial_at = now_ms();
			}
			return EV_NONE;
		}
		l->partial = 0;
		if (rc == FRAME_BAD) {
			resync(l, "malformed frame");
			continue;
		}
		/* the payload stays valid until the next call consumes it */
		l->consumed = used;
		trace_frame("->", l->name, payload, plen);
		if (msg_parse(payload, plen, m, &why) < 0) {
			resync(l, why);
			continue;
		}
		ev = session_msg(l, m);
		if (ev == EV_MSG && !l->up) {
			link_log(l, LOG_LVL_DEBUG, "%s outside a session, ignored", msg_name(m->type));
			continue;
		}
		if (ev != EV_NONE)
			return ev;
	}
}

/* Hellos while no session; keepalive pings while calls are in flight, and
 * a session that stays silent too long is over (the host cannot see a
 * guest process die: only silence tells). */
/* A peer writes whole frames; one that stays incomplete on a channel (which
 * we always read) means the stream lost bytes where the peer restarted: the
 * old peer died mid-frame and the new one's hello went into that frame (a
 * 2.6.35 guest does not even see the host go when it reconnects at once).
 * Resynchronizing finds the next hello.  Not for local clients: we stop
 * reading those while they do not read us. */
static int
frame_stalled(const struct link *l, mtime_t now)
{
	return l->partial && l->kind != LINK_CONTROL &&
	       !TIME_BEFORE(now, l->partial_at + FRAME_STALL);
}

void
link_timers(struct link *l, mtime_t now, int active)
{
	if (l->fd < 0 || l->paused || l->dead)
		return;
	log_summary(l, now);
	if (frame_stalled(l, now)) {
		resync(l, "a frame stayed incomplete (the peer restarted in the middle of one?)");
		return;
	}
	if (!l->up) {
		if (l->initiates && !TIME_BEFORE(now, l->next_hello)) {
			if (buf_len(&l->out) == 0)
				link_send_hello(l);
			l->next_hello = now + HELLO_INTERVAL;
		}
		return;
	}
	if (!active || l->kind == LINK_CONTROL) {
		l->active = 0;
		return;
	}
	if (!l->active) {
		/* silence is counted from the first call on an idle link: a ping
		 * right behind the call's first frame would only put a round trip
		 * into its way (measurable in an emulated guest) */
		l->active = 1;
		if (!l->ping_sent)
			l->last_rx = now;
	}
	if (!l->ping_sent && !TIME_BEFORE(now, l->last_rx + PING_INTERVAL)) {
		link_sendf(l, "ping");
		l->ping_sent = 1;
		l->ping_at = now;
	} else if (l->ping_sent && !TIME_BEFORE(now, l->ping_at + PEER_DEAD_AFTER)) {
		l->last_rx = now;
		resync(l, "peer silent for too long");
	}
}

mtime_t
link_deadline(const struct link *l, mtime_t now, int active)
{
	mtime_t far = now + 3600000UL, d = far;

	if (l->fd < 0 || l->paused || l->dead)
		return far;
	if (!l->up)
		d = l->initiates ? l->next_hello : far;
	else if (active && l->kind != LINK_CONTROL)
		d = l->ping_sent ? l->ping_at + PEER_DEAD_AFTER : l->last_rx + PING_INTERVAL;
	if (l->partial && l->kind != LINK_CONTROL && TIME_BEFORE(l->partial_at + FRAME_STALL, d))
		d = l->partial_at + FRAME_STALL;
	if (l->log_held && TIME_BEFORE(l->log_since + 1000, d))
		d = l->log_since + 1000;
	return d;
}
