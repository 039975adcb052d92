/*
 * link_fuzzer: the session layer (link.c) fed arbitrary bytes over a
 * socketpair, with a clock the input drives.
 *
 * Byte 0 configures the link: its kind (channel, control socket, client)
 * and whether it serves and calls.  Then operations, each a byte and its
 * arguments:
 *   0 LEN16 BYTES   raw bytes to the link
 *   1 LEN16 BYTES   one frame: "LEN\n" BYTES
 *   2 MS16          the clock moves on MS16 * 8 ms
 *   3               a round: read, every event, timers, flush
 *   4               the peer shuts down its writing side (EOF)
 * Each event is answered like a daemon would (exec and list: out and exit;
 * in: ack); pings and sessions are the link's own business.  Everything the
 * link writes is checked (fuzz.h: frames and messages well-formed, except
 * what a resynchronisation drops).  After each round: events only inside a
 * session, no session-level message handed out, a control link that saw
 * garbage is dead.
 */
#include "fuzz.h"

#include <sys/socket.h>
#include <signal.h>

static struct link lk;
static struct peer peer;

static void
answer(struct link *l, const struct msg *m)
{
	switch (m->type) {
	case M_EXEC:
	case M_LIST:
		link_sendf(l, "out %lu %.*s", m->id, (int)(m->datalen > 100 ? 100 : m->datalen),
		           (const char *)m->data);
		link_sendf(l, "exit %lu status 0", m->id);
		break;
	case M_IN:
		if (m->datalen)
			link_sendf(l, "ack %lu %lu", m->id, (unsigned long)m->datalen);
		break;
	case M_OUT:
	case M_ERR:
		if (m->datalen)
			link_sendf(l, "ack %lu %lu", m->id, (unsigned long)m->datalen);
		break;
	default:
		break;
	}
}

static void
round_trip(struct link *l)
{
	struct msg m;
	enum link_event ev;
	int rc, guard = 0;

	peer_flush(&peer);
	if (l->fd >= 0 && !l->dead) {
		rc = link_read(l);
		if (rc == 0 || rc < 0) {
			link_detach(l);
			return;
		}
	}
	while ((ev = link_next(l, &m)) != EV_NONE) {
		CHECK(++guard < 100000, "link_next does not stop");
		if (ev == EV_MSG) {
			CHECK(l->up, "a message handed out outside a session");
			CHECK(m.type != M_HELLO && m.type != M_SYNC && m.type != M_PING &&
			      m.type != M_PONG && m.type != M_ERROR, "session message %s handed out",
			      msg_name(m.type));
			answer(l, &m);
		} else if (ev == EV_UP) {
			CHECK(l->up, "EV_UP without a session");
		}
	}
	link_timers(l, fuzz_clock, l->calls);
	while ((ev = link_next(l, &m)) != EV_NONE)
		CHECK(++guard < 100000, "link_next does not stop");
	if (l->fd >= 0 && !l->dead && link_flush(l) < 0)
		link_detach(l);
	peer_drain(&peer, l, l->name);
	(void)link_deadline(l, fuzz_clock, l->calls);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_level = -1;              /* quiet, but for fatal() */
	if (getenv("NEGOTIATOR_FUZZ_TRACE"))
		log_level = LOG_LVL_TRACE;   /* every frame, to follow a reproducer */
	signal(SIGPIPE, SIG_IGN);    /* as every program of ours: EPIPE instead */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, data + size };
	unsigned cfg = get8(&in);
	int sv[2], rounds = 0;

	fuzz_clock = cfg & 0x80 ? (mtime_t)-30000 : 1000000;   /* also across a wrap */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	set_nonblock(sv[0]);
	set_nonblock(sv[1]);
	link_init(&lk, (enum link_kind)(cfg % 3), sv[0], "link");
	lk.serves = (cfg >> 2) & 1;
	lk.calls = (cfg >> 3) & 1;
	peer_init(&peer, sv[1], &lk);
	while (in_left(&in) && rounds < 2000) {
		const uint8_t *b;
		size_t n;

		switch (get8(&in) % 5) {
		case 0:
			n = get_bytes(&in, get16(&in), &b);
			buf_append(&peer.out, b, n);
			break;
		case 1:
			n = get_bytes(&in, get16(&in), &b);
			peer_frame(&peer, b, n, NULL, 0);
			break;
		case 2:
			fuzz_clock += (mtime_t)get16(&in) * 8;
			break;
		case 3:
			round_trip(&lk);
			rounds++;
			break;
		case 4:
			peer_flush(&peer);
			shutdown(peer.fd, SHUT_WR);
			break;
		}
	}
	round_trip(&lk);
	round_trip(&lk);
	if (lk.kind == LINK_CONTROL && lk.dead)
		CHECK(!lk.up, "a dead control link with a session");
	link_detach(&lk);
	peer_close(&peer);
	return 0;
}
