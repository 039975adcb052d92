/*
 * daemon_fuzzer: the daemon core (daemon.c) driven in-process, with stub
 * hooks like host.c's, two local clients on the control side and two
 * channels, all over socketpairs, and a clock the input drives.
 *
 * Built with -Dnow_ms=fuzz_now_ms -Dchild_spawn=fuzz_child_spawn
 * -Dchild_kill=fuzz_child_kill for daemon.c and link.c: no command ever
 * runs.  A "command" is three pipes whose far ends this harness holds and
 * plays with (see fuzz_child_spawn), found by name in a temporary commands
 * directory of never-executed files, so exec.c's lookup and listing are the
 * real ones.
 *
 * Sides: 0 and 1 are local clients (control socket), 2 is a channel the
 * daemon serves ("guest-to-host"), 3 the channel it relays clients' calls
 * over ("host-to-guest", the route for target "vm1").  Channels come and go
 * like host.c's guests: lost (EOF: detached, reconnected 1 s later by the
 * tick hook), dropped (daemon_remove_link() and freed, like guest_drop()) and
 * found again.
 *
 * The input: byte 0 picks the clock's start (bit 7: just before it wraps)
 * and the id of the first call relayed over a channel (bits 5-6: 1, 9990,
 * 99990 or 3999999990, where ids wrap: a daemon that has run for long)
 * and whether a policy refuses some commands (bit 4, see h_allowed());
 * then operations, a byte each (op % 16) and their arguments:
 *   0 SIDE LEN16 BYTES      raw bytes from a side's peer
 *   1 SIDE LEN16 BYTES      one frame "LEN\n" BYTES
 *   2 SIDE WORD ID N16 FILL a data frame (in/out/err/ack/exit..) of N bytes
 *   3 SIDE COUNT16          the last frame built (1, 2, 13-15) again, COUNT % 4097
 *                           times
 *   4 MS                    the clock moves on (MS * 4 + SIDE) * 8 ms
 *   5 N                     N % 8 + 1 rounds of the loop (SIDE unused)
 *   6 SIDE                  the peer shuts down its writing side
 *   7 SIDE                  the peer closes its end
 *   8 SIDE                  a channel dropped, or found again
 *   9 SIDE                  a channel's connects refused, or allowed again
 *  10 SIDE                  a new local client in that slot, if it is free
 *  11 K KID N16 FILL ERR   a command writes N bytes to stdout (or stderr)
 *  12 K KID                 a command closes its stdout and stderr
 *                           (command number (KID * 4 + SIDE) % commands)
 *  13 SIDE NONCE            hello with one of four nonces
 *  14 SIDE NONCE            sync answering the daemon's current hello
 *  15 SIDE TYPE ID CMD ARGS [N16...] [LEN16]
 *                           a well-formed exec/list/guests request: ARGS % 5
 *                           numbers, and with bit 7 an argument of LEN bytes
 * What the daemon writes to every side is checked (fuzz.h); after the input
 * every link is removed (each must then have no call left) and
 * daemon_fini() must find no call either: nothing outlives its links, and
 * memory does not grow from one input to the next.
 *
 * Frames the harness builds go up to MAX_PAYLOAD, and an input writes at
 * most 2 MB: enough to overrun any window and a queued call's pending
 * buffer (1.5 MiB).  The seeds f1-*, f2-* and f3-* are regressions for the
 * relay bugs fixed on main ("F1": a cancel overflowing a queued call's
 * pending buffer freed the call twice; "F2": a frame relayed to a client
 * with a longer id went over MAX_PAYLOAD, a fatal error; "F3": a queued
 * exec that the id rewrite made too long went out on the channel).
 */
#include "fuzz.h"

#include <sys/socket.h>
#include <sys/stat.h>

enum { S_CLIENT1, S_CLIENT2, S_SERVE, S_CALL, NSIDES };
#define IS_CHANNEL(i) ((i) >= S_SERVE)

struct side {
	struct link *l;         /* the daemon's end, NULL when gone */
	struct peer peer;
	int refuse;             /* connecting fails */
};
static struct side sides[NSIDES];
static const char *const side_names[NSIDES] = {
	"client 1", "client 2", "guest vm1 guest-to-host", "guest vm1 host-to-guest"
};

static unsigned long first_id;  /* a channel's first call id */
static size_t budget;           /* bytes this input may still write */
static char cmddir[1024];

/* ---- commands that never run ------------------------------------------------- */

enum { K_DONE, K_CAT, K_SINK, K_BIG, K_HANG };
struct kid {
	int in_r, out_w, err_w;
	int mode;
	size_t big_left;
};
#define MAX_KIDS 32
static struct kid kids[MAX_KIDS];
static int nkids;

static const char *const commands[] = {
	"true", "echo", "exit3", "killed", "cat", "sink", "big", "hang", "noexec", "nofork",
	"plain", "missing", "../etc", ""
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
kid_end(struct kid *k)
{
	close_fd(&k->out_w);
	close_fd(&k->err_w);
	k->mode = K_DONE;
}

static void
kid_write(int fd, const void *p, size_t n)
{
	if (fd >= 0 && n && write(fd, p, n) < 0) {
		/* full or closed: the bytes are lost, as a killed command's are */
	}
}

int
fuzz_child_spawn(struct child *c, const char *path, char **argv, const char *guest,
                 char *why, size_t whylen)
{
	int in[2], out[2], err[2], i;
	struct kid *k;
	const char *name = argv[0];

	(void)path;
	(void)guest;
	if (nkids == MAX_KIDS || strcmp(name, "nofork") == 0) {
		snprintf(why, whylen, "unable to fork: %s", "no more children in the harness");
		return EXIT_AGENT;
	}
	if (make_pipe(in) < 0 || make_pipe(out) < 0 || make_pipe(err) < 0)
		abort();
	c->in = in[1];
	c->out = out[0];
	c->err = err[0];
	c->pid = 0;             /* nothing for child_kill() to signal */
	c->status = 0;
	c->reaped = 1;          /* "exited"; the call ends when its pipes close */
	k = &kids[nkids++];
	k->in_r = in[0];
	k->out_w = out[1];
	k->err_w = err[1];
	k->mode = K_DONE;
	k->big_left = 0;
	if (strcmp(name, "noexec") == 0) {
		/* like a failed execve(): the pipes exist, the call is refused */
		snprintf(why, whylen, "unable to execute %s: %s", name, "Permission denied");
		return EXIT_NOEXEC;
	}
	if (strcmp(name, "echo") == 0) {
		for (i = 1; argv[i]; i++) {
			kid_write(k->out_w, argv[i], strlen(argv[i]));
			kid_write(k->out_w, "\n", 1);
		}
	} else if (strcmp(name, "exit3") == 0) {
		kid_write(k->err_w, "about to fail\n", 14);
		c->status = 3 << 8;
	} else if (strcmp(name, "killed") == 0) {
		c->status = 9;          /* WIFSIGNALED, SIGKILL */
	} else if (strcmp(name, "cat") == 0) {
		k->mode = K_CAT;
	} else if (strcmp(name, "sink") == 0) {
		k->mode = K_SINK;
	} else if (strcmp(name, "big") == 0) {
		k->mode = K_BIG;
		k->big_left = argv[1] ? strtoul(argv[1], NULL, 10) % 3000000 : 100000;
	} else if (strcmp(name, "hang") == 0) {
		k->mode = K_HANG;
		c->reaped = 0;          /* never exits: only a kill ends the call */
	}
	if (k->mode == K_DONE) {
		close_fd(&k->in_r);
		kid_end(k);
	}
	return 0;
}

void
fuzz_child_kill(struct child *c, int sig)
{
	(void)sig;
	CHECK(c->pid == 0, "a real process would be signalled");
}

static void
kids_step(void)
{
	static char b[16384];
	int i;

	for (i = 0; i < nkids; i++) {
		struct kid *k = &kids[i];
		ssize_t n;

		if ((k->mode == K_CAT || k->mode == K_SINK) && k->in_r >= 0) {
			n = read(k->in_r, b, sizeof b);
			if (n > 0 && k->mode == K_CAT)
				kid_write(k->out_w, b, (size_t)n);
			if (n == 0) {   /* the daemon closed stdin: done */
				close_fd(&k->in_r);
				kid_end(k);
			}
		}
		if (k->mode == K_BIG && k->out_w >= 0) {
			size_t want = k->big_left < sizeof b ? k->big_left : sizeof b;

			memset(b, 'b', want);
			n = want ? write(k->out_w, b, want) : 0;
			if (n > 0)
				k->big_left -= (size_t)n;
			if (k->big_left == 0)
				kid_end(k);
		}
	}
}

static void
kids_close(void)
{
	int i;

	for (i = 0; i < nkids; i++) {
		close_fd(&kids[i].in_r);
		kid_end(&kids[i]);
	}
	nkids = 0;
}

/* ---- sides --------------------------------------------------------------------- */

static int
socket_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	set_nonblock(sv[0]);
	set_nonblock(sv[1]);
	set_cloexec(sv[0]);
	set_cloexec(sv[1]);
	return 0;
}

/* like host.c's try_connect(): a new connection, a new session */
static int
connect_side(int i)
{
	struct side *s = &sides[i];
	int sv[2];

	if (s->refuse) {
		s->l->retry_at = fuzz_clock + 1000;
		return -1;
	}
	socket_pair(sv);
	peer_close(&s->peer);
	link_attach(s->l, sv[0]);
	peer_init(&s->peer, sv[1], s->l);
	return 0;
}

/* like guest_found() */
static void
add_channel(int i)
{
	struct link *l = xmalloc(sizeof *l);

	link_init(l, LINK_CHANNEL, -1, side_names[i]);
	l->serves = i == S_SERVE;
	l->calls = i == S_CALL;
	l->next_id = first_id;  /* as if it had carried that many calls before */
	l->retry_at = fuzz_clock;
	daemon_add_link(l);
	sides[i].l = l;
	connect_side(i);
}

/* like guest_drop(): every call over it must be gone with it */
static void
drop_channel(int i)
{
	struct link *l = sides[i].l;

	daemon_remove_link(l, NULL);
	CHECK(l->ncalls == 0, "%s removed with %d call(s) still using it", l->name, l->ncalls);
	free(l);
	sides[i].l = NULL;
	peer_close(&sides[i].peer);
}

static void
add_client(int i)
{
	struct link *l = xmalloc(sizeof *l);
	int sv[2];

	socket_pair(sv);
	link_init(l, LINK_CONTROL, sv[0], side_names[i]);
	daemon_add_link(l);
	sides[i].l = l;
	peer_close(&sides[i].peer);
	peer_init(&sides[i].peer, sv[1], l);
}

static int
linked(const struct link *x)
{
	const struct link *l;

	for (l = links; l; l = l->next)
		if (l == x)
			return 1;
	return 0;
}

/* ---- the hooks, as host.c's ---------------------------------------------------- */

static mtime_t
h_tick(mtime_t now)
{
	int i;

	for (i = S_SERVE; i < NSIDES; i++)
		if (sides[i].l && sides[i].l->fd < 0 && !TIME_BEFORE(now, sides[i].l->retry_at))
			connect_side(i);
	return now + 3600000UL;
}

static void
h_lost(struct link *l)
{
	link_detach(l);
	l->retry_at = fuzz_clock + 1000;
}

static struct link *
h_route(const char *target, char *why, size_t whylen)
{
	struct link *l = sides[S_CALL].l;

	if (strcmp(target, "vm1") != 0 || !l) {
		snprintf(why, whylen, "no such guest: %.40s", target);
		return NULL;
	}
	if (l->fd < 0 && connect_side(S_CALL) < 0) {
		snprintf(why, whylen, "guest vm1: unable to connect");
		return NULL;
	}
	return l;
}

static void
h_targets(struct buf *out)
{
	buf_append(out, "vm1\n", 4);
}

static void
h_signal(int sig)
{
	(void)sig;
}

static const char *
h_guest_of(struct link *l)
{
	(void)l;
	return "vm1";
}

/* a policy, like host.c's: commands starting with "e" (echo, exit3) are
 * refused on the served channel when the input's byte 0 has bit 4 */
static int policy_on;

static int
h_allowed(struct link *l, const char *command)
{
	(void)l;
	return !policy_on || command[0] != 'e';
}

static const struct daemon_hooks hooks = {
	h_tick, h_lost, h_route, h_targets, h_signal, h_guest_of, h_allowed
};

/* ---- a round of the loop ------------------------------------------------------- */

static void
one_round(void)
{
	const struct link *l;
	int i;

	for (i = 0; i < NSIDES; i++)
		peer_flush(&sides[i].peer);
	daemon_step(0);
	kids_step();
	for (i = 0; i < NSIDES; i++) {
		if (!IS_CHANNEL(i) && sides[i].l && !linked(sides[i].l))
			sides[i].l = NULL;   /* a client link the daemon closed and freed */
		peer_drain(&sides[i].peer, sides[i].l, side_names[i]);
	}
	for (l = links; l; l = l->next)
		CHECK(l->ncalls >= 0 && l->ncalls <= 100000, "%s: %d calls", l->name, l->ncalls);
}

static int
pending_input(void)
{
	int i;

	for (i = 0; i < NSIDES; i++)
		if (sides[i].peer.fd >= 0 && buf_len(&sides[i].peer.out))
			return 1;
	return 0;
}

/* ---- building frames from the input -------------------------------------------- */

static struct buf last;         /* the last frame built, for REPEAT */

static size_t
cap_payload(size_t n)
{
	return n > MAX_PAYLOAD ? MAX_PAYLOAD : n;
}

static void
send_bytes(int i, const void *p, size_t n)
{
	if (n > budget)
		n = budget;
	budget -= n;
	buf_append(&sides[i].peer.out, p, n);
}

/* a frame from head and data (cut to fit), remembered for REPEAT */
static void
send_frame(int i, const void *head, size_t hl, const void *data, size_t dl)
{
	char count[16];
	int cl;

	if (hl > cap_payload(hl))
		hl = cap_payload(hl);
	dl = cap_payload(hl + dl) - hl;
	if (hl + dl == 0)
		return;
	cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)(hl + dl));
	buf_clear(&last);
	buf_append(&last, count, (size_t)cl);
	buf_append(&last, head, hl);
	buf_append(&last, data, dl);
	if (buf_len(&last) > budget)
		return;
	send_bytes(i, buf_ptr(&last), buf_len(&last));
}

static void
send_netstring(struct buf *b, const char *s)
{
	netstring_put(b, s, strlen(s));
}

static unsigned long
get_id(struct input *in)
{
	unsigned v = get8(in);

	return v == 255 ? 4294967295UL : v;   /* 0 is refused by the parser */
}

static void
op_request(struct input *in, int i)
{
	static const char *const words[] = { "exec", "list", "guests" };
	static const char *const targets[] = { "vm1", "", "vm2", "vm1\n" };
	static char big[MAX_PAYLOAD];
	unsigned type = get8(in) % 3, nargs, a, args;
	unsigned long id = get_id(in);
	unsigned cmd = get8(in);
	struct buf b;
	char head[64], arg[32];
	int hl;

	args = get8(in);
	nargs = args % 5;
	buf_init(&b, (size_t)-1);
	if (type != 2) {
		send_netstring(&b, IS_CHANNEL(i) ? (cmd & 0x80 ? "vm1" : "") : targets[(cmd >> 5) & 3]);
		if (type == 0) {
			send_netstring(&b, commands[(cmd & 0x1f) % NCOMMANDS]);
			for (a = 0; a < nargs; a++) {
				snprintf(arg, sizeof arg, "%u", get16(in) * 10);
				send_netstring(&b, arg);
			}
			if (args & 0x80) {   /* and a long one: requests near the limit */
				size_t n = get16(in);

				memset(big, 'a', n);
				netstring_put(&b, big, n);
			}
		}
	}
	hl = snprintf(head, sizeof head, type == 2 ? "%s %lu" : "%s %lu ", words[type], id);
	send_frame(i, head, (size_t)hl, buf_ptr(&b), buf_len(&b));
	buf_free(&b);
}

static void
op_data(struct input *in, int i)
{
	static const char *const words[] = {
		"in", "out", "err", "ack", "eof", "cancel", "exit", "fail"
	};
	static unsigned char fillbuf[MAX_PAYLOAD];
	static unsigned filled_with = 0;
	unsigned w = get8(in) % 8;
	unsigned long id = get_id(in);
	size_t n = (size_t)get16(in) * 2;
	unsigned fill = get8(in);
	char head[64];
	int hl;

	switch (w) {
	case 3:
		hl = snprintf(head, sizeof head, "ack %lu %lu", id, (unsigned long)n * 16 + fill);
		n = 0;
		break;
	case 4:
	case 5:
		hl = snprintf(head, sizeof head, "%s %lu", words[w], id);
		n = 0;
		break;
	case 6:
		hl = snprintf(head, sizeof head, "exit %lu %s %u", id, fill & 1 ? "signal" : "status",
		              (unsigned)(n % 300));
		n = 0;
		break;
	case 7:
		hl = snprintf(head, sizeof head, "fail %lu %u ", id, 125 + fill % 3);
		break;
	default:
		hl = snprintf(head, sizeof head, "%s %lu ", words[w], id);
		break;
	}
	if (n > sizeof fillbuf)
		n = sizeof fillbuf;
	if (fill != filled_with) {
		memset(fillbuf, (int)fill, sizeof fillbuf);
		filled_with = fill;
	}
	send_frame(i, head, (size_t)hl, fillbuf, n);
}

static void
op_repeat(struct input *in, int i)
{
	unsigned count = get16(in) % 4097;   /* a flood of small frames costs time, not depth */

	while (count-- && buf_len(&last) && buf_len(&last) <= budget)
		send_bytes(i, buf_ptr(&last), buf_len(&last));
}

static void
op_hello(struct input *in, int i, int sync)
{
	static const char *const nonces[] = {
		"0123456789abcdef", "fedcba9876543210", "0000000000000000", "a5a5a5a5a5a5a5a5"
	};
	const char *n = nonces[get8(in) & 3];
	char head[80];
	int hl;

	if (sync && sides[i].l)
		hl = snprintf(head, sizeof head, "sync 1 %s %s", n, sides[i].l->nonce);
	else
		hl = snprintf(head, sizeof head, "hello 1 %s", n);
	send_frame(i, head, (size_t)hl, NULL, 0);
}

/* ---- one input ----------------------------------------------------------------- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[1100];
	size_t i;

	(void)argc;
	(void)argv;
	log_level = -1;         /* quiet, but for fatal() */
	if (getenv("NEGOTIATOR_FUZZ_TRACE"))
		log_level = LOG_LVL_TRACE;   /* every frame, to follow a reproducer */
	snprintf(cmddir, sizeof cmddir, "%s/negotiator-fuzz-%ld",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
	if (strlen(cmddir) >= sizeof cmddir - 16 || mkdir(cmddir, 0700) < 0) {
		fprintf(stderr, "daemon_fuzzer: unable to create %s\n", cmddir);
		abort();
	}
	for (i = 0; i < NCOMMANDS; i++) {
		FILE *f;

		if (!valid_command_name(commands[i], strlen(commands[i])) ||
		    strcmp(commands[i], "missing") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", cmddir, commands[i]);
		f = fopen(path, "w");
		if (!f)
			abort();
		fputs("#!/bin/false\n", f);   /* never run: child_spawn is the harness's */
		fclose(f);
		chmod(path, strcmp(commands[i], "plain") == 0 ? 0644 : 0755);
	}
	commands_dir_add(cmddir);
	daemon_init(&hooks);
	buf_init(&last, 2 * MAX_PAYLOAD);
	return 0;
}

/* the commands directory goes when the fuzzer ends */
static void __attribute__((destructor))
remove_cmddir(void)
{
	char path[1100];
	size_t i;

	if (!cmddir[0])
		return;
	for (i = 0; i < NCOMMANDS; i++) {
		snprintf(path, sizeof path, "%s/%s", cmddir, commands[i]);
		unlink(path);
	}
	rmdir(cmddir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, data + size };
	unsigned cfg = get8(&in);
	int i, rounds = 0, n;

	static const unsigned long first_ids[] = { 1, 9990, 99990, 3999999990UL };

	fuzz_clock = cfg & 0x80 ? (mtime_t)-20000 : 1000000;
	first_id = first_ids[(cfg >> 5) & 3];
	policy_on = (cfg >> 4) & 1;
	budget = 2000000;
	for (i = 0; i < NSIDES; i++) {
		sides[i].peer.fd = -1;
		sides[i].refuse = 0;
	}
	add_client(S_CLIENT1);
	add_client(S_CLIENT2);
	add_channel(S_SERVE);
	add_channel(S_CALL);
	buf_clear(&last);

	while (in_left(&in) && rounds < 3000) {
		unsigned op = get8(&in) % 16, s = get8(&in) % NSIDES;
		const uint8_t *b;
		size_t len;

		switch (op) {
		case 0:
			len = get_bytes(&in, get16(&in), &b);
			send_bytes(s, b, len);
			break;
		case 1:
			len = get_bytes(&in, get16(&in), &b);
			send_frame(s, b, len, NULL, 0);
			break;
		case 2:
			op_data(&in, s);
			break;
		case 3:
			op_repeat(&in, s);
			break;
		case 4:
			fuzz_clock += (mtime_t)(s | get8(&in) << 2) * 8;
			break;
		case 5:
			for (n = get8(&in) % 8 + 1; n > 0; n--, rounds++)
				one_round();
			break;
		case 6:
			if (sides[s].peer.fd >= 0) {
				peer_flush(&sides[s].peer);
				shutdown(sides[s].peer.fd, SHUT_WR);
			}
			break;
		case 7:
			close_fd(&sides[s].peer.fd);
			break;
		case 8:
			if (IS_CHANNEL(s)) {
				if (sides[s].l)
					drop_channel(s);
				else
					add_channel(s);
			}
			break;
		case 9:
			sides[s].refuse = !sides[s].refuse;
			break;
		case 10:
			if (!IS_CHANNEL(s) && !sides[s].l)
				add_client(s);
			break;
		case 11:
			if (nkids) {
				static unsigned char kb[65536];
				struct kid *k = &kids[(s | get8(&in) << 2) % nkids];
				size_t kn = get16(&in);
				unsigned fill = get8(&in);

				memset(kb, (int)fill, kn);
				kid_write(get8(&in) & 1 ? k->err_w : k->out_w, kb, kn);
			}
			break;
		case 12:
			if (nkids)
				kid_end(&kids[(s | get8(&in) << 2) % nkids]);
			break;
		case 13:
			op_hello(&in, s, 0);
			break;
		case 14:
			op_hello(&in, s, 1);
			break;
		case 15:
			op_request(&in, s);
			break;
		}
	}
	/* what was written gets read, then a few rounds more */
	for (n = 0; n < 200 && pending_input(); n++)
		one_round();
	for (n = 0; n < 3; n++)
		one_round();

	/* everything goes: channels first, as when guests vanish */
	for (i = S_SERVE; i < NSIDES; i++)
		if (sides[i].l)
			drop_channel(i);
	for (i = 0; i < S_SERVE; i++) {
		struct link *l = sides[i].l;

		if (l && linked(l)) {
			daemon_remove_link(l, NULL);
			CHECK(l->ncalls == 0, "%s removed with %d call(s)", l->name, l->ncalls);
			free(l);
		}
		sides[i].l = NULL;
		peer_close(&sides[i].peer);
	}
	CHECK(links == NULL, "a link is left");
	n = daemon_fini();
	CHECK(n == 0, "%d call(s) outlived every link", n);
	kids_close();
	return 0;
}
