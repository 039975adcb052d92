/*
 * tests/hostile.c: a hostile peer or local client for the regression tests
 * of the audit findings (issue 11).  It speaks just enough of the protocol
 * (see PROTOCOL) to reach each defect, and reports what it saw.
 *
 *   hostile SOCKET cancel-overflow GUEST
 *       as a control client: a call to GUEST (whose agent does not answer,
 *       so the call stays queued), its pending queue filled to the byte with
 *       stdin and acks so that the cancel is the frame that overflows it
 *       (tried for each length of the daemon's call id).  Exit 0 when the
 *       daemon still answers afterwards.
 *   hostile SOCKET long-in GUEST
 *       as a control client: `cat` on GUEST fed one stdin frame of exactly
 *       MAX_PAYLOAD bytes (the daemon's longer call id makes it longer);
 *       exit 0 when the same bytes come back and the call exits 0.
 *   hostile SOCKET flood SECONDS
 *       as a guest that never reads: hellos, requests and pings, written
 *       for SECONDS (or until the peer stops taking them for 2 s); prints
 *       the bytes written.
 *   hostile SOCKET noise SECONDS
 *       as a guest: a session, then malformed frames and error frames for
 *       SECONDS, each malformed one followed by a new hello; prints the
 *       frames written.
 *   hostile SOCKET serve FRAME
 *       as a fake daemon: listens on SOCKET, answers one client's hello
 *       with a sync, then sends FRAME (e.g. "fail 1 0") and waits for the
 *       client to leave.
 *
 * It builds with the project's flags and links the project's framing code.
 */
#include "negotiator.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PENDING_LIMIT (CALL_WINDOW + 8 * MAX_PAYLOAD)   /* daemon.c call_new */

static int sock;

static void
die(const char *what)
{
	fprintf(stderr, "hostile: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* blocking write of all of p; -1 if the peer is gone */
static int
put(const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		struct pollfd pf;
		ssize_t w = write(sock, c, n);

		if (w > 0) {
			c += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		pf.fd = sock;
		pf.events = POLLOUT;
		poll(&pf, 1, 1000);
	}
	return 0;
}

static char *frame_buf;

/* one frame: count, newline, payload; size of the frame in *len */
static size_t
frame(const char *head, const void *data, size_t dl)
{
	size_t hl = strlen(head);
	int cl;

	if (!frame_buf)
		frame_buf = xmalloc(MAX_PAYLOAD + 32);
	cl = sprintf(frame_buf, "%lu\n", (unsigned long)(hl + dl));
	memcpy(frame_buf + cl, head, hl);
	if (dl)
		memcpy(frame_buf + cl + hl, data, dl);
	return (size_t)cl + hl + dl;
}

static int
send_frame(const char *head, const void *data, size_t dl)
{
	size_t n = frame(head, data, dl);   /* first: it may allocate frame_buf */

	return put(frame_buf, n) == 0 ? 0 : -1;
}

/* bytes a frame of this payload length takes */
static size_t
framed(size_t plen)
{
	char n[16];

	return (size_t)sprintf(n, "%lu\n", (unsigned long)plen) + plen;
}

/* read frames until one whose payload starts with want (or any when NULL);
 * copies it to out; -1 at EOF or after ms */
static struct buf in;

static int
next_frame(char *out, size_t outlen, long ms)
{
	mtime_t end = now_ms() + (mtime_t)ms;

	for (;;) {
		const unsigned char *pl;
		size_t plen, used;
		struct pollfd pf;
		ssize_t n;

		if (frame_parse(buf_ptr(&in), buf_len(&in), &pl, &plen, &used) == FRAME_OK) {
			size_t k = plen < outlen - 1 ? plen : outlen - 1;

			memcpy(out, pl, k);
			out[k] = '\0';
			buf_consume(&in, used);
			return (int)plen;
		}
		if (!TIME_BEFORE(now_ms(), end))
			return -1;
		pf.fd = sock;
		pf.events = POLLIN;
		poll(&pf, 1, 100);
		n = buf_read_fd(&in, sock, 65536);
		if (n == 0)
			return -1;
	}
}

static void
connect_to(const char *path)
{
	sock = unix_connect(path);
	if (sock < 0)
		die(path);
	buf_init(&in, 4 * MAX_PAYLOAD);
}

/* a control session: hello, then wait for the daemon's sync */
static int
control_hello(void)
{
	char f[256], nonce[17];

	random_nonce(nonce);
	sprintf(f, "hello 1 %s", nonce);
	if (send_frame(f, NULL, 0) < 0)
		return -1;
	while (next_frame(f, sizeof f, 5000) >= 0)
		if (strncmp(f, "sync ", 5) == 0)
			return 0;
	return -1;
}

static int
exec_request(unsigned long id, const char *guest, const char *cmd)
{
	char head[64], data[600];

	sprintf(head, "exec %lu ", id);
	sprintf(data, "%lu:%s,%lu:%s,", (unsigned long)strlen(guest), guest,
	        (unsigned long)strlen(cmd), cmd);
	return send_frame(head, data, strlen(data));
}

/* ---- cancel-overflow ------------------------------------------------------------ */

static int
send_ack(unsigned long id, size_t d)
{
	char ack[64];
	unsigned long v = 1;

	while (--d > 0)
		v *= 10;
	sprintf(ack, "ack %lu %lu", id, v);
	return send_frame(ack, NULL, 0);
}

/* One try, assuming the daemon's id for the call has k digits: every
 * frame the daemon queues is ours rewritten with that id. */
static int
cancel_overflow_try(unsigned long id, const char *guest, size_t k)
{
	static char zeros[60000];
	size_t pending, cancel = framed(strlen("cancel ") + k), target;
	char head[64];
	int i;

	if (exec_request(id, guest, "true") < 0)
		return -1;
	/* the daemon queues "exec D 0:," + our words */
	pending = framed(strlen("exec ") + k + strlen(" 0:,") + strlen("4:true,"));
	target = PENDING_LIMIT - cancel + 1;   /* room left: one byte short */
	sprintf(head, "in %lu ", id);
	for (i = 0; i < 17; i++) {            /* 1,020,000 bytes: within the window */
		if (send_frame(head, zeros, sizeof zeros) < 0)
			return -1;
		pending += framed(strlen("in ") + k + 1 + sizeof zeros);
	}
	/* acks "ack D N" to the byte: N's digits d (1 to 9) give each frame
	 * one of nine sizes; the largest while far, then up to three exact */
	{
		size_t size[10], left = target - pending, d, a, b, c;
		int plan[3] = { 0, 0, 0 }, found = 0;

		for (d = 1; d <= 9; d++)
			size[d] = framed(strlen("ack ") + k + 1 + d);
		while (left > 3 * size[9]) {
			if (send_ack(id, 9) < 0)
				return -1;
			left -= size[9];
		}
		for (a = 0; a <= 9 && !found; a++)
			for (b = 0; b <= 9 && !found; b++)
				for (c = 0; c <= 9 && !found; c++)
					if ((a ? size[a] : 0) + (b ? size[b] : 0) + (c ? size[c] : 0) == left) {
						plan[0] = (int)a;
						plan[1] = (int)b;
						plan[2] = (int)c;
						found = 1;
					}
		if (!found)
			return 0;     /* cannot hit the byte with this k: skip */
		for (a = 0; a < 3; a++)
			if (plan[a] && send_ack(id, (size_t)plan[a]) < 0)
				return -1;
	}
	sprintf(head, "cancel %lu", id);
	return send_frame(head, NULL, 0);
}

static int
cancel_overflow(const char *path, const char *guest)
{
	char f[512];
	size_t k;

	connect_to(path);
	if (control_hello() < 0)
		die("no session with the daemon");
	for (k = 1; k <= 7; k++)
		if (cancel_overflow_try(10 + k, guest, k) < 0)
			break;
	/* does the daemon still answer this connection? */
	if (send_frame("guests 99", NULL, 0) < 0)
		return 1;
	while (next_frame(f, sizeof f, 10000) >= 0)
		if (strncmp(f, "exit 99 ", 8) == 0)
			return 0;
	fprintf(stderr, "hostile: the daemon no longer answers\n");
	return 1;
}

/* ---- long-in -------------------------------------------------------------------- */

static int
long_in(const char *path, const char *guest)
{
	static unsigned char data[MAX_PAYLOAD];
	size_t dl = MAX_PAYLOAD - strlen("in 1 "), got = 0, i;
	char *f = xmalloc(MAX_PAYLOAD + 1);
	int n, rc = 1;

	for (i = 0; i < dl; i++)
		data[i] = (unsigned char)(i * 31 + 7);
	connect_to(path);
	if (control_hello() < 0)
		die("no session with the daemon");
	if (exec_request(1, guest, "cat") < 0 || send_frame("in 1 ", data, dl) < 0 ||
	    send_frame("eof 1", NULL, 0) < 0)
		goto out;
	while ((n = next_frame(f, MAX_PAYLOAD + 1, 20000)) >= 0) {
		if (strncmp(f, "out 1 ", 6) == 0) {
			size_t m = (size_t)n - 6;
			char ack[40];

			if (got + m > dl || memcmp(f + 6, data + got, m) != 0) {
				fprintf(stderr, "hostile: output differs at byte %lu\n", (unsigned long)got);
				goto out;
			}
			got += m;
			sprintf(ack, "ack 1 %lu", (unsigned long)m);
			if (m)
				send_frame(ack, NULL, 0);
		} else if (strncmp(f, "exit 1 ", 7) == 0 || strncmp(f, "fail 1 ", 7) == 0) {
			printf("%s; %lu of %lu bytes back\n", f, (unsigned long)got, (unsigned long)dl);
			rc = strcmp(f, "exit 1 status 0") == 0 && got == dl ? 0 : 1;
			goto out;
		}
	}
	fprintf(stderr, "hostile: connection lost after %lu bytes\n", (unsigned long)got);
out:
	free(f);
	return rc;
}

/* ---- flood, noise --------------------------------------------------------------- */

static int
flood(const char *path, long seconds, int noise)
{
	mtime_t end = now_ms() + (mtime_t)seconds * 1000UL, stuck = 0;
	unsigned long id = 1, frames = 0, bytes = 0;
	char nonce[17], f[256], *batch = xmalloc(65536);
	size_t bl;

	connect_to(path);
	while (TIME_BEFORE(now_ms(), end)) {
		ssize_t w;
		size_t off = 0;

		bl = 0;
		while (bl < 60000) {
			size_t n;

			random_nonce(nonce);
			if (noise) {
				/* a session, a malformed frame, an error frame */
				sprintf(f, "hello 1 %s", nonce);
				n = frame(f, NULL, 0);
				memcpy(batch + bl, frame_buf, n);
				bl += n;
				memcpy(batch + bl, "5\nbogus", 7);
				bl += 7;
				sprintf(f, "hello 1 %s", nonce);
				n = frame(f, NULL, 0);
				memcpy(batch + bl, frame_buf, n);
				bl += n;
				n = frame("error noise from a hostile peer", NULL, 0);
			} else {
				switch (frames % 4) {
				case 0: sprintf(f, "hello 1 %s", nonce); break;
				case 1: sprintf(f, "exec %lu 0:,7:no-such,", id++); break;
				case 2: sprintf(f, "list %lu 0:,", id++); break;
				default: strcpy(f, "ping"); break;
				}
				n = frame(f, NULL, 0);
			}
			memcpy(batch + bl, frame_buf, n);
			bl += n;
			frames++;
		}
		while (off < bl && TIME_BEFORE(now_ms(), end)) {
			struct pollfd pf;

			w = write(sock, batch + off, bl - off);
			if (w > 0) {
				off += (size_t)w;
				bytes += (unsigned long)w;
				stuck = 0;
				continue;
			}
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				goto done;
			if (!stuck)
				stuck = now_ms();
			else if (!TIME_BEFORE(now_ms(), stuck + 2000))
				goto done;    /* the peer stopped reading us */
			pf.fd = sock;
			pf.events = POLLOUT;
			poll(&pf, 1, 100);
		}
	}
done:
	printf("%lu bytes, %lu frames\n", bytes, frames);
	free(batch);
	return 0;
}

/* ---- serve ---------------------------------------------------------------------- */

static int
serve(const char *path, const char *reply)
{
	int lfd = unix_listen(path, 0600);
	char f[256], nonce[17];

	if (lfd < 0)
		die(path);
	for (;;) {
		struct pollfd pf;

		pf.fd = lfd;
		pf.events = POLLIN;
		poll(&pf, 1, 1000);
		sock = accept(lfd, NULL, NULL);
		if (sock >= 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			die("accept");
	}
	set_nonblock(sock);
	buf_init(&in, 4 * MAX_PAYLOAD);
	random_nonce(nonce);
	while (next_frame(f, sizeof f, 10000) >= 0) {
		if (strncmp(f, "hello 1 ", 8) == 0) {
			char s[80];

			sprintf(s, "sync 1 %s %.16s", nonce, f + 8);
			send_frame(s, NULL, 0);
			send_frame(reply, NULL, 0);
		}
	}
	unlink(path);
	return 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	log_level = LOG_LVL_ERROR;
	if (argc == 4 && strcmp(argv[2], "cancel-overflow") == 0)
		return cancel_overflow(argv[1], argv[3]);
	if (argc == 4 && strcmp(argv[2], "long-in") == 0)
		return long_in(argv[1], argv[3]);
	if (argc == 4 && strcmp(argv[2], "flood") == 0)
		return flood(argv[1], atol(argv[3]), 0);
	if (argc == 4 && strcmp(argv[2], "noise") == 0)
		return flood(argv[1], atol(argv[3]), 1);
	if (argc == 4 && strcmp(argv[2], "serve") == 0)
		return serve(argv[1], argv[3]);
	fprintf(stderr, "usage: hostile SOCKET cancel-overflow|long-in GUEST\n"
	        "       hostile SOCKET flood|noise SECONDS\n"
	        "       hostile SOCKET serve FRAME\n");
	return 2;
}
