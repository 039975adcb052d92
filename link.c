/*
 * link.c: the session layer over one byte stream (a virtio port, a QEMU
 * socket, a control socket).
 *
 * A connection carries sessions.  Each side names its session with a
 * random nonce in "hello"; the other side answers "sync" echoing it.  A
 * receiver that sees garbage, or a connection that may start mid-frame,
 * discards bytes until a valid hello/sync frame.  A new peer nonce means
 * the peer restarted or lost data: every call of the old session fails.
 *
 * The peer may also be python-negotiator, which knows no sessions and dies
 * of any frame that is not JSON.  So on a channel the caller opens every
 * stream with a JSON request python answers harmlessly (a "probe"), and
 * the server never speaks first: a native server answers the probe in
 * python's shape plus a marker, and both go native from there; a python
 * answer, or a plain python request, puts the stream in python mode (see
 * PROTOCOL, "python-negotiator peers").
 */
#include "negotiator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void (*link_touch_hook)(struct link *l);
void (*link_closing_hook)(struct link *l);

/* the daemon looks at the link again before it waits */
static void
touch(struct link *l)
{
	if (link_touch_hook)
		link_touch_hook(l);
}

/* This process's lifetime nonce: both channels of a daemon carry it in
 * their probes, so that the peer can tell a restart from a new stream. */
static const char *
instance(void)
{
	static char nonce[17];

	if (!nonce[0])
		random_nonce(nonce);
	return nonce;
}

/* python frames are far larger than ours: the buffers follow the mode */
static void
mode_limits(struct link *l)
{
	int native = l->mode == LM_NATIVE;

	l->in.limit = native ? IN_BUF_SIZE : PY_MAX_FRAME + 64;
	l->out.limit = native ? OUT_HARD_LIMIT : OUT_HARD_LIMIT + PY_MAX_FRAME + 64;
}

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
send_probe(struct link *l)
{
	char j[200];
	int n = snprintf(j, sizeof j, "{\"method\": \"list_commands\", \"args\": [], "
	                 "\"kw\": {\"negotiator\": \"hello %d %s %s\"}}", PROTOCOL_VERSION,
	                 l->nonce, instance());

	link_send_json(l, j, (size_t)n);
	/* soon again at first: a probe written while the peer's side was
	 * switching connections (virtio, a restart) can be lost, and the
	 * server never speaks first; then less and less often */
	l->next_hello = now_ms() + (mtime_t)l->probe_gap;
	l->probe_gap = l->probe_gap * 2 > HELLO_INTERVAL ? HELLO_INTERVAL : l->probe_gap * 2;
}

static void
new_session(struct link *l)
{
	l->partial = 0;
	l->hold = l->py_inflight = 0;
	l->py_call = NULL;
	l->py_skip = 0;
	l->mode = l->probe || l->quiet ? LM_UNKNOWN : LM_NATIVE;
	l->probed = 0;
	l->peer_instance[0] = '\0';
	mode_limits(l);
	random_nonce(l->nonce);
	l->up = 0;
	/* a local client starts cleanly with hello: no resync, garbage ends it */
	l->syncing = l->kind != LINK_CONTROL;
	l->sync_skipped = 0;
	l->peer[0] = '\0';
	l->ping_sent = 0;
	l->last_rx = now_ms();
	l->next_hello = l->last_rx;
	l->probe_gap = PROBE_FIRST_GAP;
}

void
link_attach(struct link *l, int fd)
{
	l->fd = fd;
	l->paused = l->pause_wake = l->woke = 0;
	buf_clear(&l->in);
	buf_clear(&l->out);
	l->consumed = 0;
	new_session(l);
	if (l->probe)
		send_probe(l);
	else if (l->initiates)
		link_send_hello(l);
	touch(l);
}

void
link_set_caller(struct link *l)
{
	l->probe = 1;
	l->quiet = l->initiates = 0;
}

void
link_set_server(struct link *l)
{
	l->quiet = 1;
	l->probe = l->initiates = 0;
}

/* A new session on a live stream, opened by a probe (the frames already
 * queued still go out first: the peer must not see a frame cut).  What is
 * left to read of the old session is skipped: when the peer process died,
 * it may end in a frame cut short, which would swallow the answer. */
void
link_restart(struct link *l)
{
	if (l->fd < 0 || l->paused || l->dead)
		return;
	link_log(l, LOG_LVL_DEBUG, "the peer's other channel restarted: a new session");
	if (l->up)
		l->session_lost = 1;
	l->pending_up = 0;
	new_session(l);
	if (l->probe)
		send_probe(l);
	touch(l);
}

void
link_detach(struct link *l)
{
	if (l->fd >= 0) {
		if (link_closing_hook)
			link_closing_hook(l);
		close(l->fd);
	}
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
	if (l->consumed) {   /* the frame that caused it is gone for good */
		buf_consume(&l->in, l->consumed);
		l->consumed = 0;
	}
	link_log(l, LOG_LVL_WARN, "%s; resynchronizing", why);
	if (l->up)
		l->session_lost = 1;
	buf_clear(&l->out);
	new_session(l);
	touch(l);
	if (l->kind == LINK_CONTROL) {
		l->dead = 1;   /* a local client speaking garbage is just dropped */
		return;
	}
	if (l->probe)
		send_probe(l);   /* the peer may be python: no hello out of the blue */
	else if (!l->quiet)
		link_send_hello(l);
}

/*
 * A data frame of DIRECT_MIN bytes or more, with nothing queued before it,
 * is written at once with writev() from where its pieces are: the payload
 * a relay took from another link's input, or a command's output, is not
 * copied into the queue first.  What the descriptor does not take is
 * queued as usual.  Under emulation a copy of every byte is a large share
 * of what a relay costs.
 */
#define DIRECT_MIN 8192

/* trace_frame() for a frame in two pieces */
static void
trace_pieces(const struct link *l, const char *head, size_t headlen, const void *data,
             size_t datalen)
{
	unsigned char t[120];
	char text[200];
	size_t n = headlen < sizeof t ? headlen : sizeof t;
	size_t m = datalen < sizeof t - n ? datalen : sizeof t - n;

	if (log_level < LOG_LVL_TRACE)
		return;
	memcpy(t, head, n);
	memcpy(t + n, data, m);
	trace("%s <- %lu: %s", l->name, (unsigned long)(headlen + datalen),
	      escape_text(text, sizeof text, t, n + m));
}

static size_t
direct_write(struct link *l, const char *count, size_t cl, const char *head, size_t headlen,
             const void *data, size_t datalen)
{
	struct iovec iov[3];
	ssize_t n;

	iov[0].iov_base = (void *)count;
	iov[0].iov_len = cl;
	iov[1].iov_base = (void *)head;
	iov[1].iov_len = headlen;
	iov[2].iov_base = (void *)data;
	iov[2].iov_len = datalen;
	do
		n = writev(l->fd, iov, 3);
	while (n < 0 && errno == EINTR);
	return n > 0 ? (size_t)n : 0;   /* an error: the flush finds it again */
}

/* The part of a frame direct_write() did not write, into the queue. */
static int
queue_rest(struct link *l, const char *count, size_t cl, const char *head, size_t headlen,
           const void *data, size_t datalen, size_t done)
{
	const unsigned char *piece[3];
	size_t len[3], left;
	unsigned char *d;
	int i;

	piece[0] = (const unsigned char *)count;
	len[0] = cl;
	piece[1] = (const unsigned char *)head;
	len[1] = headlen;
	piece[2] = data;
	len[2] = datalen;
	if (!(d = buf_reserve(&l->out, cl + headlen + datalen - done))) {
		resync(l, "output queue over its limit (peer not reading)");
		return -1;
	}
	for (i = 0, left = 0; i < 3; i++) {
		size_t skip = done > len[i] ? len[i] : done;

		done -= skip;
		memcpy(d + left, piece[i] + skip, len[i] - skip);
		left += len[i] - skip;
	}
	trace_pieces(l, head, headlen, data, datalen);
	buf_commit(&l->out, left);
	touch(l);
	return 0;
}

int
link_send(struct link *l, const char *head, size_t headlen, const void *data,
          size_t datalen)
{
	char count[16];
	int cl;
	unsigned char *d;

	if (l->fd < 0 || l->dead || l->mode != LM_NATIVE)
		return -1;   /* never a native frame toward a (maybe) python peer */
	if (headlen + datalen > MAX_PAYLOAD || headlen + datalen == 0) {
		/* a bug of ours, never a reason to stop serving everyone else */
		error("%s: internal error: refusing a frame of %lu bytes", l->name,
		      (unsigned long)(headlen + datalen));
		return -1;
	}
	cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)(headlen + datalen));
	if (datalen >= DIRECT_MIN && buf_len(&l->out) == 0 && !l->paused) {
		/* nothing queued before it: written at once, from where it is */
		size_t done = direct_write(l, count, (size_t)cl, head, headlen, data, datalen);

		if (done == (size_t)cl + headlen + datalen) {
			trace_pieces(l, head, headlen, data, datalen);
			return 0;
		}
		if (done > 0)
			return queue_rest(l, count, (size_t)cl, head, headlen, data, datalen, done);
	}
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
	touch(l);
	return 0;
}

int
link_send_json(struct link *l, const void *json, size_t n)
{
	char count[24];
	int cl;
	unsigned char *d;

	if (l->fd < 0 || l->dead)
		return -1;
	if (n == 0 || n > PY_MAX_FRAME) {
		error("%s: internal error: refusing a JSON frame of %lu bytes", l->name,
		      (unsigned long)n);
		return -1;
	}
	cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)n);
	if (!(d = buf_reserve(&l->out, (size_t)cl + n))) {
		link_log(l, LOG_LVL_WARN, "output queue full: a JSON frame of %lu bytes dropped",
		         (unsigned long)n);
		return -1;
	}
	memcpy(d, count, (size_t)cl);
	memcpy(d + cl, json, n);
	trace_frame("<-", l->name, d + cl, n);
	buf_commit(&l->out, (size_t)cl + n);
	touch(l);
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
	/* whole frames into the room at the end of the queue when at least one
	 * fits: more would slide what is queued down first (a copy) */
	left = buf_tail_room(&l->out) / (room + DATA_CHUNK);
	if (left > 0 && left * DATA_CHUNK < max)
		max = left * DATA_CHUNK;
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
	touch(l);
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
		/* at most IN_BUF_SIZE a read; the buffer's limit caps the total */
		size_t room = l->in.limit - buf_len(&l->in), tail = buf_tail_room(&l->in);
		size_t ask = room < IN_BUF_SIZE ? room : IN_BUF_SIZE;

		/* into the room at the end while there is a fair amount of it:
		 * asking for more would slide the unparsed rest of a frame down
		 * first, a copy per wakeup (a virtio port reads 4 KiB at most) */
		if (tail >= TAIL_READ_MIN && tail < ask)
			ask = tail;
		n = buf_read_fd(&l->in, l->fd, ask);
		if (n <= 0)
			break;
		got = 1;
		/* a stream socket read short is empty for now: the loop says
		 * when there is more (a virtio port may read short and hold more) */
		if (l->socket && (size_t)n < ask)
			break;
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

/* ---- python-negotiator peers, and probes ----------------------------------- */

static int
looks_json(const unsigned char *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++, n--;
	return n && *p == '{';
}

/* "hello 1 NONCE INSTANCE" / "sync 1 NONCE PEERNONCE INSTANCE": the words
 * of a probe or its answer, checked; NULL when it is not one */
static const char *
marker_word(const char *s, int i, size_t *len)
{
	while (i-- > 0) {
		s = strchr(s, ' ');
		if (!s)
			return NULL;
		s++;
	}
	*len = strcspn(s, " ");
	return s;
}

static int
nonce_ok(const char *w, size_t n)
{
	return n == 16 && strspn(w, "0123456789abcdef") >= 16;
}

/* A server's answer to a probe: python's shape (python callers never probe,
 * so only a native caller reads the marker) */
static void
answer_probe(struct link *l, const char *peer_nonce)
{
	char j[300];
	int n = snprintf(j, sizeof j, "{\"success\": false, \"error\": \"this is negotiator "
	                 "%s, speaking its own protocol\", \"negotiator\": \"sync %d %s %.16s %s\", "
	                 "\"version\": \"%s\"}", NEGOTIATOR_VERSION, PROTOCOL_VERSION, l->nonce,
	                 peer_nonce, instance(), NEGOTIATOR_VERSION);

	link_send_json(l, j, (size_t)n);
}

/* the other channel of this peer is up with another daemon: it restarted
 * (or we did not see it go): start that channel's session again too */
static void
sibling_check(struct link *l)
{
	struct link *s = l->sibling;

	if (s && s->up && s->mode == LM_NATIVE && s->probe &&
	    strcmp(s->peer_instance, l->peer_instance) != 0)
		link_restart(s);
}

/* python mode from now on (the stream's calls so far failed if it was a
 * native session) */
static void
go_python(struct link *l)
{
	if (l->mode == LM_NATIVE && l->up)
		l->session_lost = 1;
	l->mode = LM_PYTHON;
	mode_limits(l);
	l->up = 1;
	l->syncing = 0;
	l->sync_skipped = 0;
	strcpy(l->peer, "python");
	l->peer_instance[0] = '\0';
	/* news for a daemon's log; a command-line client just gets on with it */
	link_log(l, l->kind == LINK_CLIENT ? LOG_LVL_DEBUG : LOG_LVL_INFO,
	         "the peer speaks python-negotiator's protocol");
}

static enum link_event
native_from_json(struct link *l, const char *peer_nonce, const char *peer_instance, size_t pil)
{
	enum link_event ev;

	l->mode = LM_NATIVE;
	mode_limits(l);
	l->syncing = 0;
	l->sync_skipped = 0;
	ev = peer_session(l, peer_nonce);
	memcpy(l->peer_instance, peer_instance, pil);
	l->peer_instance[pil] = '\0';
	return ev;
}

/* A native server's version, from the answer to our probe (older ones
 * do not send it); printable ASCII only, for --status. */
static void
peer_version(struct link *l, const struct json *v)
{
	size_t i, n = 0;

	if (v && v->type == J_STRING)
		for (i = 0; v->str[i] && n < sizeof l->peer_version - 1; i++)
			if (v->str[i] > ' ' && v->str[i] < 0x7f)
				l->peer_version[n++] = v->str[i];
	l->peer_version[n] = '\0';
}

/* A JSON frame on a channel: a probe or its answer (native), a python
 * request or answer (EV_MSG with M_JSON), or nothing to report. */
static enum link_event
json_frame(struct link *l, const unsigned char *payload, size_t plen, struct msg *m)
{
	const char *why, *w, *n1, *n2, *in;
	struct json *j = json_parse(payload, plen, &why);
	const struct json *mk;
	enum link_event ev = EV_NONE;
	size_t wl, l1, l2, il;

	if (!j) {
		link_log(l, LOG_LVL_WARN, "malformed JSON from the peer (%s): ignored", why);
		return EV_NONE;
	}
	mk = l->quiet ? json_get(json_get(j, "kw"), "negotiator") : json_get(j, "negotiator");
	if (mk && mk->type == J_STRING && (w = marker_word(mk->str, 0, &wl)) != NULL &&
	    wl == (l->quiet ? 5u : 4u) && memcmp(w, l->quiet ? "hello" : "sync", wl) == 0 &&
	    (n1 = marker_word(mk->str, 2, &l1)) != NULL && nonce_ok(n1, l1) &&
	    (in = marker_word(mk->str, l->quiet ? 3 : 4, &il)) != NULL && nonce_ok(in, il) &&
	    (l->quiet || ((n2 = marker_word(mk->str, 3, &l2)) != NULL && l2 == 16 &&
	                  memcmp(n2, l->nonce, 16) == 0))) {
		/* a native peer: a probe (we serve) or the answer to ours */
		if (l->quiet) {
			answer_probe(l, n1);
			ev = native_from_json(l, n1, in, il);
			l->probed = 1;
			sibling_check(l);
		} else if (l->mode == LM_UNKNOWN) {
			ev = native_from_json(l, n1, in, il);
			peer_version(l, json_get(j, "version"));
		}
	} else if (mk && mk->type == J_STRING && (strncmp(mk->str, "hello ", 6) == 0 ||
	                                          strncmp(mk->str, "sync ", 5) == 0)) {
		/* a native peer's probe or answer for another session (an answer
		 * to a probe of ours that a resync replaced): never python */
		link_log(l, LOG_LVL_DEBUG, "a probe or answer of another session: ignored");
	} else if (l->quiet) {
		/* a python client's request */
		if (l->mode != LM_PYTHON)
			go_python(l);
		ev = EV_MSG;
	} else if (l->mode == LM_UNKNOWN) {
		go_python(l);       /* python answered our probe */
		ev = EV_UP;
	} else if (l->mode == LM_PYTHON) {
		/* an answer; one to a probe we repeated says so (python names the
		 * keyword it did not expect) and is not a call's */
		const struct json *e = json_get(j, "error");

		if (!(e && e->type == J_STRING && strstr(e->str, "'negotiator'")))
			ev = EV_MSG;
	}
	json_free(j);
	if (ev == EV_MSG) {
		m->type = M_JSON;
		m->id = 0;
		m->num = 0;
		m->data = payload;
		m->datalen = plen;
	}
	return ev;
}

/* the count of a frame whose count line is complete, or 0 */
static unsigned long
py_count(const struct link *l)
{
	const unsigned char *p = buf_ptr(&l->in), *nl = memchr(p, '\n', buf_len(&l->in));
	unsigned long n = 0;

	if (!nl)
		return 0;
	for (; p < nl; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n > 100000000000UL)
				return 0;
			n = n * 10 + (unsigned long)(*p - '0');
		} else if (*p != ' ' && *p != '\t' && *p != '\r') {
			return 0;
		}
	}
	return n;
}

static enum link_event
next_python(struct link *l, struct msg *m, int *native)
{
	const unsigned char *payload;
	enum link_event ev;
	size_t plen, used;
	unsigned long big;
	int rc = py_frame_parse(buf_ptr(&l->in), buf_len(&l->in), PY_MAX_FRAME, &payload,
	                        &plen, &used);

	*native = 0;
	if (rc == FRAME_MORE)
		return EV_NONE;
	if (rc == FRAME_BAD && (big = py_count(l)) > PY_MAX_FRAME) {
		/* JSON over our limit: the frame is skipped as it arrives, and the
		 * request or answer it was gets an error instead */
		const unsigned char *p = buf_ptr(&l->in);
		size_t nl = (size_t)((const unsigned char *)memchr(p, '\n', buf_len(&l->in)) - p);
		int unknown = l->mode == LM_UNKNOWN;

		if (nl + 1 == buf_len(&l->in))
			return EV_NONE;    /* is it JSON?  the next byte tells */
		if (looks_json(p + nl + 1, buf_len(&l->in) - nl - 1)) {
			if (l->mode != LM_PYTHON)
				go_python(l);
			link_log(l, LOG_LVL_WARN, "a JSON frame of %lu bytes is over the limit of %lu: "
			         "skipped", big, PY_MAX_FRAME);
			l->py_skip = big + nl + 1;
			if (unknown && !l->quiet)
				return EV_UP;   /* python's answer to our probe, or a late one */
			m->type = M_JSON;
			m->id = 0;
			m->num = big;
			m->data = NULL;
			m->datalen = 0;
			return EV_MSG;
		}
	}
	if (rc == FRAME_BAD || !looks_json(payload, plen)) {
		if (l->mode == LM_PYTHON)
			link_log(l, LOG_LVL_WARN, "not a python-negotiator frame: going native");
		/* a native peer after all (or garbage): the native path takes it */
		if (l->mode == LM_PYTHON && l->up)
			l->session_lost = 1;
		l->mode = LM_NATIVE;
		mode_limits(l);
		l->up = 0;
		l->syncing = rc == FRAME_BAD;
		if (rc == FRAME_BAD)
			buf_consume(&l->in, 1);   /* not a frame of either kind here:
			                           * never look at it again */
		if (l->quiet)
			link_send_hello(l);   /* the peer is native: speaking is safe */
		*native = 1;
		return EV_NONE;
	}
	trace_frame("->", l->name, payload, plen);
	ev = json_frame(l, payload, plen, m);
	if (ev == EV_MSG && l->session_lost)
		return EV_NONE;   /* the reset first; this frame is read again after it */
	l->consumed = used;
	return ev;
}

/* While synchronizing: skip to the first frame that may open a session, a
 * native hello or sync, or on a probing or served stream a JSON frame (a
 * probe, its answer, python).  1: one starts l->in; 0: more bytes needed. */
static int
skip_to_session(struct link *l)
{
	int found, jfound;
	size_t skip = sync_scan(buf_ptr(&l->in), buf_len(&l->in), &found);

	if (l->probe || l->quiet) {
		size_t js = json_sync_scan(buf_ptr(&l->in), buf_len(&l->in), !l->sync_skipped,
		                           &jfound);

		if (jfound && (js < skip || !found)) {
			buf_consume(&l->in, js);
			l->mode = LM_UNKNOWN;
			mode_limits(l);
			l->syncing = 0;
			l->sync_skipped = 0;
			return 1;
		}
		if (!found && js < skip)
			skip = js;    /* a JSON frame may still be arriving there */
	}
	if (skip) {
		/* mid-stream from here on: a stale stream's digits that happen to
		 * start the buffer are no python request (a host daemon restarted
		 * during a guest's output once took them for one, 279 MB long) */
		l->sync_skipped = 1;
		link_log(l, LOG_LVL_DEBUG, "skipped %lu bytes while synchronizing",
		         (unsigned long)skip);
	}
	buf_consume(&l->in, skip);
	if (!found)
		return 0;
	l->syncing = 0;
	l->sync_skipped = 0;
	return 1;
}

enum link_event
link_next(struct link *l, struct msg *m)
{
	for (;;) {
		const unsigned char *payload;
		size_t plen, used;
		const char *why;
		enum link_event ev;
		int rc, native;

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
		if (l->py_skip) {   /* an oversized python frame, as it arrives */
			size_t k = buf_len(&l->in) < l->py_skip ? buf_len(&l->in) : l->py_skip;

			buf_consume(&l->in, k);
			l->py_skip -= k;
			if (l->py_skip)
				return EV_NONE;
		}
		if (l->hold && l->mode == LM_PYTHON)
			return EV_NONE;   /* python lockstep: one request at a time */
		/* before any parsing: what the stream holds may start with the cut
		 * frame of a peer that died, which would swallow the new peer's
		 * answer while it waits to be complete */
		if (l->syncing && !skip_to_session(l))
			return EV_NONE;
		if (l->mode != LM_NATIVE) {
			ev = next_python(l, m, &native);
			if (ev != EV_NONE)
				return ev;
			if (!native) {
				if (l->consumed || l->session_lost)
					continue;    /* taken without an event: look further */
				return EV_NONE;
			}
		}
		if (l->syncing) {
			if (!skip_to_session(l))
				return EV_NONE;
			if (l->mode != LM_NATIVE)
				continue;    /* a JSON frame: the python path takes it */
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
		if (rc == FRAME_OK && (l->probe || l->quiet) && looks_json(payload, plen)) {
			/* JSON on a native stream: a new caller's probe (the old one went
			 * without our seeing it), or python after all */
			l->mode = LM_UNKNOWN;
			mode_limits(l);
			continue;
		}
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
			if (l->quiet && m->type != M_HELLO && m->type != M_SYNC)
				link_send_hello(l);   /* a native caller that missed our restart */
			continue;
		}
		if (ev != EV_NONE)
			return ev;
	}
}

/* A peer writes whole frames; one that stays incomplete on a channel (which
 * we always read) means the stream lost bytes where the peer restarted: the
 * old peer died mid-frame and the new one's hello went into that frame (a
 * 2.6.35 guest does not even see the host go when it reconnects at once).
 * Resynchronizing finds the next hello.  Not for local clients: we stop
 * reading those while they do not read us.  Not for python peers either:
 * their frames may be 64 MiB, and they have nothing to resynchronize. */
static int
frame_stalled(const struct link *l, mtime_t now)
{
	return l->partial && l->kind != LINK_CONTROL && l->mode == LM_NATIVE &&
	       !TIME_BEFORE(now, l->partial_at + FRAME_STALL);
}

/* Hellos (or probes) while no session; keepalive pings while calls are in
 * flight, and a session that stays silent too long is over (the host
 * cannot see a guest process die: only silence tells).  Nothing of this
 * on a python stream: python knows no such frames. */
void
link_timers(struct link *l, mtime_t now, int active)
{
	if (l->fd < 0 || l->paused || l->dead)
		return;
	log_summary(l, now);
	if (l->mode == LM_PYTHON)
		return;
	if (frame_stalled(l, now)) {
		resync(l, "a frame stayed incomplete (the peer restarted in the middle of one?)");
		return;
	}
	if (!l->up) {
		/* a probe lost to a port nobody had open: again, while no answer */
		if ((l->initiates || l->probe) && !TIME_BEFORE(now, l->next_hello)) {
			if (l->probe && buf_len(&l->out) == 0) {
				send_probe(l);    /* it sets the next time */
			} else {
				if (buf_len(&l->out) == 0)
					link_send_hello(l);
				l->next_hello = now + HELLO_INTERVAL;
			}
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
	if (l->mode == LM_PYTHON)
		d = far;
	else if (!l->up)
		d = l->initiates || l->probe ? l->next_hello : far;
	else if (active && l->kind != LINK_CONTROL)
		d = l->ping_sent ? l->ping_at + PEER_DEAD_AFTER : l->last_rx + PING_INTERVAL;
	if (l->partial && l->kind != LINK_CONTROL && l->mode == LM_NATIVE &&
	    TIME_BEFORE(l->partial_at + FRAME_STALL, d))
		d = l->partial_at + FRAME_STALL;
	if (l->log_held && TIME_BEFORE(l->log_since + 1000, d))
		d = l->log_since + 1000;
	return d;
}
