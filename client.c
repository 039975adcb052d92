/*
 * client.c: one call, from the command line, over a connected stream: the
 * local daemon's control socket, or a channel opened directly when no
 * daemon runs.  The same protocol either way.
 *
 * stdout/stderr of the remote command are written as they arrive and
 * acknowledged once written; local stdin (unless a terminal) is forwarded
 * within the call's window.  The call ends with the remote exit status.
 *
 * client_call does the same call but keeps what comes back in a struct
 * call_result (at most CAPTURE_MAX bytes a stream, the rest counted) and
 * prints nothing: its sinks capture instead of writing, and are
 * acknowledged as soon as they are kept.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <sys/time.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALL_ID 1UL
#define CANCEL_GRACE 1000   /* ms to get the cancel out after a timeout */

struct sink {
	int fd;                       /* -1: captured into the result */
	struct buf q;
	size_t max_write;   /* per select(): a pipe never blocks under PIPE_BUF */
};

struct client {
	struct link link;
	const struct client_req *req;
	int sent, done, code;
	int heard;                    /* the far side said anything about the call */
	int stdin_open;
	int py;                       /* the peer is python-negotiator */
	unsigned long in_unacked;     /* stdin bytes sent, not acked */
	unsigned long delivered;      /* written locally, ack pending */
	/* stdin: bytes sent, and the times its reading stopped on a full
	 * window (acks late) or a full queue (said at -v at the end) */
	unsigned long in_bytes, stalls_window, stalls_queue;
	int in_paused;
	struct sink out, err;
	char reason[600];
	const char *origin;           /* a failure of ours: "channel" or "agent" */
	int exited, exit_code, exit_signaled;   /* the command's own end */
	int eofs;                     /* virtio EOFs seen while waiting for the host */
	struct call_result *res;      /* client_call: where the output goes */
	double sent_ms;               /* wall clock when the request went out */
};

/* ms on the wall clock, with its fraction: for a call's round trip */
static double
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

/* A pipe or socket made nonblocking for the call, and its flags before
 * (restored when the call ends, and at exit should a fatal error come
 * first): -1 when none */
static int nonblock_fd = -1, nonblock_flags;

static void
sink_restore(void)
{
	if (nonblock_fd >= 0)
		fcntl(nonblock_fd, F_SETFL, nonblock_flags);
	nonblock_fd = -1;
}

static void
sink_init(struct sink *s, int fd)
{
	static int registered;
	struct stat st;
	int fl;

	s->fd = fd;
	buf_init(&s->q, CALL_WINDOW + MAX_PAYLOAD);
	s->max_write = PIPE_BUF;
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	/* files and devices such as /dev/null take any size at once */
	if (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(fd))) {
		s->max_write = CALL_WINDOW;
		return;
	}
	/* A blocking pipe may block past the PIPE_BUF that select() promises;
	 * PIPE_BUF a round is 256 rounds a MiB (`... | tar x` ran at a quarter
	 * of the speed).  So stdout, when a pipe or a socket, is made
	 * nonblocking for the call, as ssh does (stderr, when the same pipe,
	 * with it: log lines wait for room, see write_all_wait()).  Only one:
	 * the descriptions of stdout and stderr may be one.  A terminal stays
	 * as it is: the shell shares it. */
	if (fd != 1 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ||
	    (fl = fcntl(fd, F_GETFL)) < 0)
		return;
	if (!(fl & O_NONBLOCK)) {
		if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return;
		nonblock_fd = fd;
		nonblock_flags = fl;
		if (!registered++)
			atexit(sink_restore);
	}
	s->max_write = CALL_WINDOW;
}

static void
finish(struct client *c, int code, const char *reason)
{
	if (c->done)
		return;
	c->done = 1;
	c->code = code;
	if (reason)
		strlcpy(c->reason, reason, sizeof c->reason);
}

/* A failure we tell ourselves, and where it came from ("channel": the
 * guest could not be reached, "agent": anything else of ours). */
static void
finish_local(struct client *c, int code, const char *origin, const char *reason)
{
	if (!c->done)
		c->origin = origin;
	finish(c, code, reason);
}

/* The other end of our connection failed: a channel when we talk to it
 * directly, else the host daemon (the agent). */
static const char *
far_end(const struct client *c)
{
	return c->req->direct ? "channel" : "agent";
}

/* select() on one descriptor; 1 when it is ready */
static int
wait_fd(int fd, int rd, long ms)
{
	struct fdset r, w;
	int n;

	memset(&r, 0, sizeof r);
	memset(&w, 0, sizeof w);
	fdset_zero(&r, fd);
	fdset_zero(&w, fd);
	fdset_add(rd ? &r : &w, fd);
	n = select_sets(fd + 1, &r, &w, ms) > 0 && fdset_has(rd ? &r : &w, fd);
	fdset_free(&r);
	fdset_free(&w);
	return n;
}

/* Stdin read straight into the link's queue as "in" frames, up to the
 * window's room in one readv() (link_send_read: no copy, few rounds). */
static void
forward_stdin(struct client *c)
{
	unsigned long room = CALL_WINDOW - c->in_unacked;
	ssize_t n;
	char head[32];
	int hl;

	hl = snprintf(head, sizeof head, "in %lu ", CALL_ID);
	n = link_send_read(&c->link, head, (size_t)hl, 0, room);
	if (n == -2 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
		return;
	if (n <= 0) {
		c->stdin_open = 0;
		link_sendf(&c->link, "eof %lu", CALL_ID);
		return;
	}
	c->in_unacked += (unsigned long)n;
	c->in_bytes += (unsigned long)n;
}

static void
send_request(struct client *c)
{
	const struct client_req *r = c->req;
	struct buf b;
	char head[32];
	int hl, i;

	buf_init(&b, MAX_PAYLOAD);
	if (r->op == OP_GUESTS) {
		link_sendf(&c->link, "guests %lu", CALL_ID);
		c->sent = 1;
		return;
	}
	hl = snprintf(head, sizeof head, "%s %lu ", r->op == OP_EXEC ? "exec" :
	              r->op == OP_STATUS ? "status" : "list", CALL_ID);
	netstring_put(&b, r->target, strlen(r->target));
	for (i = 0; r->op == OP_EXEC && r->argv[i]; i++) {
		if (netstring_put(&b, r->argv[i], strlen(r->argv[i])) < 0 ||
		    buf_len(&b) + (size_t)hl > MAX_PAYLOAD) {
			finish_local(c, EXIT_USAGE, "agent", "command line too long for one request");
			buf_free(&b);
			return;
		}
	}
	link_send(&c->link, head, (size_t)hl, buf_ptr(&b), buf_len(&b));
	buf_free(&b);
	c->sent = 1;
	if (r->op == OP_EXEC && c->stdin_open && isatty(0)) {
		c->stdin_open = 0;
		link_sendf(&c->link, "eof %lu", CALL_ID);
	} else if (c->stdin_open && wait_fd(0, 1, 0)) {
		/* stdin already at hand (/dev/null, a file, a filled pipe) goes
		 * out with the request: one wakeup of the far side less */
		forward_stdin(c);
	}
}

/* A python-negotiator server takes the whole stdin in the request. */
static void
py_send_request(struct client *c)
{
	const struct client_req *r = c->req;
	unsigned char data[DATA_CHUNK];
	struct buf in, req;
	ssize_t n;

	c->py = c->sent = 1;
	buf_init(&in, PY_MAX_FRAME);
	buf_init(&req, (size_t)-1);
	if (r->op == OP_LIST) {
		py_request_list(&req);
	} else {
		while (c->stdin_open && !isatty(0)) {
			n = read(0, data, sizeof data);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				wait_fd(0, 1, -1);
				continue;
			}
			if (n <= 0)
				break;
			if (buf_append(&in, data, (size_t)n) < 0) {
				finish_local(c, EXIT_USAGE, "agent", "stdin too long for a "
				             "python-negotiator agent (it takes all of it in one "
				             "frame of at most 64 MiB)");
				goto out;
			}
		}
		c->stdin_open = 0;
		py_request_exec(&req, r->argv, buf_ptr(&in), buf_len(&in), buf_len(&in) > 0);
	}
	if (buf_len(&req) > PY_MAX_FRAME)
		finish_local(c, EXIT_USAGE, "agent", "request too long for a python-negotiator "
		             "agent (at most 64 MiB of JSON)");
	else
		link_send_json(&c->link, buf_ptr(&req), buf_len(&req));
out:
	buf_free(&in);
	buf_free(&req);
}

/* A python answer's status: its command's exit (py_error_status), or the
 * agent's failure, whose text (in err) is also the captured result's
 * message (a text mode call has it on stderr already). */
static void
py_result(struct client *c, int code)
{
	char text[600];

	if (code == 0 || (code != EXIT_AGENT && code != EXIT_NOEXEC && code != EXIT_NOTFOUND)) {
		c->exited = 1;
		c->exit_code = code > 128 ? code - 128 : code;
		c->exit_signaled = code > 128;
		finish(c, code, NULL);
	} else if (c->res) {
		size_t n = buf_len(&c->err.q);

		if (n && buf_ptr(&c->err.q)[n - 1] == '\n')
			n--;
		escape_text(text, sizeof text, buf_ptr(&c->err.q), n);
		finish_local(c, code, code == EXIT_AGENT ? "agent" : NULL, text);
	} else {
		finish(c, code, NULL);
	}
}

static void
py_on_answer(struct client *c, const struct msg *m)
{
	const char *why = NULL;
	char text[200];
	int code;

	c->heard = 1;
	if (m->datalen == 0) {
		snprintf(text, sizeof text, "the python agent's answer is %lu bytes, over the "
		         "limit of %lu", m->num, PY_MAX_FRAME);
		finish_local(c, EXIT_AGENT, "agent", text);
		return;
	}
	c->out.q.limit = c->err.q.limit = (size_t)-1;
	code = py_parse_answer(m->data, m->datalen, c->req->op == OP_LIST, &c->out.q, &c->err.q,
	                       &why);
	if (why) {
		buf_clear(&c->out.q);
		snprintf(text, sizeof text, "malformed answer from the python agent: %s", why);
		finish_local(c, EXIT_AGENT, "agent", text);
		return;
	}
	py_result(c, code);
}

/* Output data from the far side: written at once, from the frame, where
 * that cannot block and nothing is queued before it; what is left is
 * queued for select() to say when. */
static void
sink_put(struct client *c, struct sink *s, const unsigned char *data, size_t len)
{
	/* never blocks: a file, a device, or a pipe made nonblocking; an
	 * error stays queued, for drain_sink to report as it does */
	ssize_t n = s->fd >= 0 && s->max_write == CALL_WINDOW ?
	            buf_write_or_queue(&s->q, s->fd, data, len) :
	            (buf_append(&s->q, data, len) < 0 ? -2 : 0);

	if (n > 0)
		c->delivered += (unsigned long)n;
	else if (n == -2)
		finish_local(c, EXIT_AGENT, "agent", "peer overran the output window");
}

static void
on_message(struct client *c, const struct msg *m)
{
	char text[600];

	if (m->type == M_JSON) {
		if (c->py)
			py_on_answer(c, m);
		return;
	}
	if (m->id != CALL_ID)
		return;
	c->heard = 1;
	switch (m->type) {
	case M_OUT:
	case M_ERR:
		sink_put(c, m->type == M_OUT ? &c->out : &c->err, m->data, m->datalen);
		break;
	case M_ACK:
		c->in_unacked -= m->num > c->in_unacked ? c->in_unacked : m->num;
		break;
	case M_EXIT:
		if (!c->done) {
			c->exited = 1;
			c->exit_code = (int)m->num;
			c->exit_signaled = m->signaled;
		}
		finish(c, msg_exit_status(m), NULL);
		break;
	case M_FAIL:
		finish(c, (int)m->num, escape_text(text, sizeof text, m->data, m->datalen));
		break;
	default:
		break;
	}
}

static void
process(struct client *c)
{
	struct msg m;
	enum link_event ev;

	while (!c->done && (ev = link_next(&c->link, &m)) != EV_NONE) {
		if (ev == EV_RESET && c->sent)
			finish_local(c, EXIT_AGENT, far_end(c),
			             "the session was reset by the other side");
		else if (ev == EV_UP && !c->sent) {
			c->sent_ms = wall_ms();
			if (c->link.mode == LM_PYTHON)
				py_send_request(c);
			else
				send_request(c);
		}
		else if (ev == EV_MSG)
			on_message(c, &m);
	}
}

static int
drain_sink(struct client *c, struct sink *s)
{
	ssize_t n;

	if (s->fd < 0) {   /* captured: kept (or counted), and done with */
		call_result_capture(c->res, s == &c->err, buf_ptr(&s->q), buf_len(&s->q));
		c->delivered += (unsigned long)buf_len(&s->q);
		buf_clear(&s->q);
		return 0;
	}
	n = buf_write_fd(&s->q, s->fd, s->max_write);
	if (n > 0)
		c->delivered += (unsigned long)n;
	else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		/* nobody reads our output (`| head`): stop the call, as SIGPIPE
		 * would stop a local command */
		buf_clear(&s->q);
		if (c->sent && !c->done)
			link_sendf(&c->link, "cancel %lu", CALL_ID);
		finish_local(c, 128 + SIGPIPE, "agent", NULL);
		return -1;
	}
	return 0;
}

static void
send_acks(struct client *c)
{
	/* a quarter window at a time: the sender waits only with a whole
	 * window unacknowledged, so nothing is ever held back by this, and in
	 * an emulated guest each ack it reads is a wakeup */
	if (c->delivered && c->sent && c->delivered >= CALL_WINDOW / 4) {
		link_sendf(&c->link, "ack %lu %lu", CALL_ID, c->delivered);
		c->delivered = 0;
	}
}

static long
ms_until(mtime_t now, mtime_t t)
{
	return TIME_BEFORE(now, t) ? (long)(t - now) : 0;
}

static void
on_timeout(struct client *c)
{
	const char *s = c->req->timeout == 1 ? "" : "s";
	char why[200];

	if (c->sent && !c->heard && !c->py) {
		/* not even "it runs": the agent is not answering (stopped, frozen,
		 * or its session not up): that is 125, not a slow command */
		link_sendf(&c->link, "cancel %lu", CALL_ID);
		snprintf(why, sizeof why,
		         "timeout: the agent has not answered within %ld second%s (is it "
		         "running? frozen?); the call was cancelled", c->req->timeout, s);
		finish_local(c, EXIT_AGENT, "channel", why);
	} else if (c->sent) {
		if (!c->py)    /* python has no cancel */
			link_sendf(&c->link, "cancel %lu", CALL_ID);
		snprintf(why, sizeof why, "timeout: no result within %ld second%s; %s",
		         c->req->timeout, s, c->py ? "the python-negotiator agent cannot cancel: "
		         "the command may still run there" : "the call was cancelled");
		finish(c, EXIT_TIMEOUT, why);
	} else {
		snprintf(why, sizeof why, "timeout: no agent answered within %ld second%s",
		         c->req->timeout, s);
		finish_local(c, EXIT_AGENT, "channel", why);
	}
}

/* Wait until fd is writable (or readable, with rd), at most ms (-1: ever). */

/* Get what is queued (a cancel, acks) out before closing, briefly. */
static void
flush_before_exit(struct client *c)
{
	mtime_t end = now_ms() + CANCEL_GRACE;

	while (buf_len(&c->link.out) && c->link.fd >= 0) {
		mtime_t now = now_ms();

		if (!TIME_BEFORE(now, end) || link_flush(&c->link) < 0)
			break;
		if (buf_len(&c->link.out))
			wait_fd(c->link.fd, 0, ms_until(now, end));
	}
}

/* What remains after the end of the call is written in order, waiting. */
static void
flush_sinks(struct client *c)
{
	struct sink *s[2];
	int i;

	s[0] = &c->out;
	s[1] = &c->err;
	for (i = 0; i < 2; i++)
		while (buf_len(&s[i]->q) && drain_sink(c, s[i]) == 0)
			if (buf_len(&s[i]->q))
				wait_fd(s[i]->fd, 0, -1);
}

/* The descriptors to wait for; returns the highest. */
static int
build_sets(struct client *c, int fd, struct fdset *r, struct fdset *w)
{
	int maxfd = fd > 2 ? fd : 2;

	if (sig_fd() > maxfd)
		maxfd = sig_fd();
	fdset_zero(r, maxfd);
	fdset_zero(w, maxfd);
	fdset_add(r, sig_fd());
	if (!c->link.paused)
		fdset_add(r, fd);
	if (buf_len(&c->link.out))
		fdset_add(w, fd);
	if (c->sent && c->stdin_open) {
		int window = c->in_unacked < CALL_WINDOW, queue = link_out_room(&c->link);

		if (window && queue)
			fdset_add(r, 0);
		else if (!c->in_paused)
			++*(window ? &c->stalls_queue : &c->stalls_window);
		c->in_paused = !(window && queue);
	}
	if (buf_len(&c->out.q) && c->out.fd >= 0)
		fdset_add(w, c->out.fd);
	if (buf_len(&c->err.q) && c->err.fd >= 0)
		fdset_add(w, c->err.fd);
	return maxfd;
}

/* Our output: written where select() said it may be, kept when captured. */
static void
drain_sinks(struct client *c, const struct fdset *w)
{
	if (c->out.fd < 0 || fdset_has(w, c->out.fd))
		drain_sink(c, &c->out);
	if (c->err.fd < 0 || fdset_has(w, c->err.fd))
		drain_sink(c, &c->err);
}

/* The link had something to read: 0 to go on, -1 when the call is over. */
static int
read_link(struct client *c)
{
	int rc = link_read(&c->link);

	if (rc == 0 && c->req->direct && !c->link.up && c->req->eof_means_wait) {
		/* virtio: EOF means "host not connected"; wait for it */
		if (!c->eofs++)
			debug("host side not connected yet; waiting");
		c->link.paused = 1;
	} else if (rc <= 0) {
		finish_local(c, EXIT_AGENT, far_end(c), rc == 0 ?
		             "connection closed by the other side" : strerror(errno));
		return -1;
	}
	return 0;
}

/* The call, from the request to its end (c->done), over fd. */
static void
call_loop(struct client *c, int fd)
{
	const struct client_req *req = c->req;
	struct fdset r, w;
	mtime_t deadline = 0;

	memset(&r, 0, sizeof r);
	memset(&w, 0, sizeof w);
	if (req->timeout > 0)
		deadline = now_ms() + (mtime_t)req->timeout * 1000UL;
	while (!c->done) {
		mtime_t now = now_ms();
		mtime_t next = link_deadline(&c->link, now, 1);
		long wait;
		int rc;

		if (req->timeout > 0 && !TIME_BEFORE(now, deadline)) {
			on_timeout(c);
			break;
		}
		link_timers(&c->link, now, c->sent);
		process(c);
		if (c->done)
			break;
		if (req->timeout > 0 && TIME_BEFORE(deadline, next))
			next = deadline;
		wait = ms_until(now, next);
		if (c->link.paused && wait > 100)
			wait = 100;
		link_flush(&c->link);
		if (select_sets(build_sets(c, fd, &r, &w) + 1, &r, &w, wait) < 0) {
			if (errno == EINTR)
				continue;
			finish_local(c, EXIT_AGENT, "agent", strerror(errno));
			break;
		}
		if (fdset_has(&r, sig_fd()) && (rc = sig_next()) != 0) {
			char why[64], sn[24];

			if (c->sent)
				link_sendf(&c->link, "cancel %lu", CALL_ID);
			snprintf(why, sizeof why, "interrupted by %s; call cancelled",
			         signal_name(rc, sn));
			finish_local(c, 128 + rc, "agent", why);
			break;
		}
		if (c->link.paused) {
			/* guest port with no host: look again now and then */
			c->link.paused = 0;
		} else if (fdset_has(&r, fd) && read_link(c) < 0) {
			break;
		}
		if (fdset_has(&w, fd) && link_flush(&c->link) < 0) {
			int e = errno;

			process(c);   /* why the other side closed (a refusal), if it said */
			finish_local(c, EXIT_AGENT, far_end(c), strerror(e));
			break;
		}
		process(c);
		if (fdset_has(&r, 0) && c->stdin_open && !c->done)
			forward_stdin(c);
		drain_sinks(c, &w);
		send_acks(c);
	}
	flush_sinks(c);
	flush_before_exit(c);
	fdset_free(&r);
	fdset_free(&w);
}

/* Set up c for the call over fd; out and err: where its output goes (-1:
 * captured into c->res). */
static void
call_start(struct client *c, int fd, const struct client_req *req, int out, int err)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, 0 };

	c->req = req;
	c->stdin_open = req->op == OP_EXEC && !req->no_stdin;
	sig_setup(sigs);    /* SIGPIPE ignored before the first write */
	link_init(&c->link, LINK_CLIENT, -1, req->direct ? "channel" : "daemon");
	if (req->direct)
		link_set_caller(&c->link);   /* a channel: the peer may be python */
	c->link.socket = !req->direct;
	link_attach(&c->link, fd);
	/* a daemon's control socket starts clean: no need to wait for its sync
	 * before asking (saves a round trip); a channel must sync first.  Out
	 * at once, before the rest is set up: the daemon, woken by our
	 * connection, finds the request there and needs no second wakeup. */
	if (!req->direct) {
		c->sent_ms = wall_ms();
		send_request(c);
		link_flush(&c->link);
	}
	sink_init(&c->out, out);
	sink_init(&c->err, err);
}

static void
call_end(struct client *c)
{
	link_detach(&c->link);
	buf_free(&c->out.q);
	buf_free(&c->err.q);
}

int
client_run(int fd, const struct client_req *req)
{
	struct client c;

	memset(&c, 0, sizeof c);
	call_start(&c, fd, req, 1, 2);
	call_loop(&c, fd);
	sink_restore();
	if (c.in_bytes)
		debug("stdin: %lu bytes sent, paused %lu times on a full window, %lu on a full "
		      "queue", c.in_bytes, c.stalls_window, c.stalls_queue);
	if (c.reason[0]) {
		error("%s", c.reason);
	} else if (c.exited && c.exit_signaled) {
		char sn[24];

		error("remote command killed by %s", signal_name(c.exit_code, sn));
	}
	call_end(&c);
	return c.code;
}

/* The call's end into res: the command's exit status, or a failure. */
static void
call_result_set(struct client *c, struct call_result *res)
{
	const char *guest = c->req->guest ? c->req->guest : c->req->target;

	if (c->exited)
		call_result_exit(res, c->exit_code, c->exit_signaled);
	else
		call_result_fail(res, c->code, c->origin, c->reason, guest);
	if (c->sent_ms > 0)
		res->rtt_ms = wall_ms() - c->sent_ms;
	if (c->req->direct && c->link.up) {
		res->peer_mode = c->link.mode;
		strlcpy(res->peer_version, c->link.peer_version, sizeof res->peer_version);
	}
}

int
client_call(int fd, const struct client_req *req, struct call_result *res)
{
	struct client c;
	mtime_t start = now_ms();

	memset(&c, 0, sizeof c);
	call_result_init(res);
	res->list = req->op == OP_LIST;
	c.res = res;
	call_start(&c, fd, req, -1, -1);
	call_loop(&c, fd);
	call_result_set(&c, res);
	res->elapsed_ms = (unsigned long)(now_ms() - start);
	call_end(&c);
	return c.code;
}

/* The daemon at path must be ours or root's: anyone may create a socket
 * in /tmp first, to read our requests, forge the answers or keep our own
 * daemon from starting there.  So the file must be a socket (not a
 * symbolic link) owned by us or root, and the process that listens on it
 * must run as us or root (SO_PEERCRED or getpeereid(), where the system
 * has one; elsewhere the file's owner is all we know).  Anything else is
 * an error (125), never a reason to bypass the daemon. */
static void
refuse(const char *path, const char *what, uid_t uid, const char *prep)
{
	char who[96], me[64];

	user_label((unsigned long)uid, who, sizeof who);
	if (geteuid() == 0)
		snprintf(me, sizeof me, "root (you)");
	else
		snprintf(me, sizeof me, "you (uid %lu) or root", (unsigned long)geteuid());
	error("refusing the daemon socket %s: %s %s, not %s %s; if nobody else should be "
	      "there, have it removed (by its owner or root), or give --control-socket PATH",
	      path, what, who, prep, me);
	exit(EXIT_AGENT);
}

static const char *
file_kind(mode_t m)
{
	return S_ISLNK(m) ? "a symbolic link" : S_ISDIR(m) ? "a directory" :
	       S_ISREG(m) ? "a regular file" : "another kind of file";
}

/* fd, or -1 when no daemon listens there (no socket, or a stale one) */
static int
control_try(const char *path, int *denied, const char **where)
{
	struct stat st;
	uid_t me = geteuid(), uid;
	gid_t gid;
	int fd;

	if (lstat(path, &st) < 0) {
		fd = -1;
	} else if (!S_ISSOCK(st.st_mode)) {
		error("refusing the daemon socket %s: it is not a socket but %s; if no "
		      "daemon should be there, remove it, or give --control-socket PATH",
		      path, file_kind(st.st_mode));
		exit(EXIT_AGENT);
	} else if (st.st_uid != me && st.st_uid != 0) {
		refuse(path, "it belongs to", st.st_uid, "to");
	} else if ((fd = unix_connect(path)) >= 0) {
		if (compat_peer_ids(fd, &uid, &gid) == 0) {
			if (uid != me && uid != 0)
				refuse(path, "the daemon on it runs as", uid, "as");
		} else if (errno != ENOSYS) {
			error("refusing the daemon socket %s: unable to tell who runs the daemon "
			      "on it: %s", path, strerror(errno));
			exit(EXIT_AGENT);
		}
		return fd;
	}
	if ((errno == EACCES || errno == EPERM) && !*denied) {
		*denied = errno;
		*where = path;
	}
	debug("no daemon at %s (%s)", path, strerror(errno));
	return -1;
}

/* "permission denied" on a daemon's socket: whose it is, and what grants
 * access (the group that the daemon's --control-group gave it, or root) */
static void
control_denied(const char *which, const char *path, int err)
{
	char hint[600];
	struct group *gr;
	struct stat st;

	access_hint(path, hint, sizeof hint);
	if (strncmp(hint, "directory ", 10) == 0)
		error("unable to connect to the %s daemon at %s: %s (%s); run as root, or give "
		      "the daemon a --control-socket in a directory this user may search", which,
		      path, strerror(err), hint);
	else if (stat(path, &st) == 0 && (st.st_mode & 0060) == 0060 && st.st_gid != 0 &&
	    (gr = getgrgid(st.st_gid)) != NULL)
		error("unable to connect to the %s daemon at %s: %s (%s); its group may: have "
		      "this user added to group %s (usermod -a -G %s USER, then log in again), "
		      "or run as root", which, path, strerror(err), hint, gr->gr_name,
		      gr->gr_name);
	else
		error("unable to connect to the %s daemon at %s: %s (%s); run as root, or "
		      "start the daemon with --control-mode 0660 --control-group GROUP to let "
		      "a group in", which, path, strerror(err), hint);
	exit(EXIT_AGENT);
}

/* The daemon's socket: the one given, else the system-wide one, else (not
 * root) the user's own.  No daemon: -1, and the caller opens the channel.
 * A daemon we may not use is an error: the channel is its, not ours. */
int
control_connect(const char *given, const char *which)
{
	char sys[64], user[96];
	const char *where = NULL;
	int fd, denied = 0;

	snprintf(sys, sizeof sys, "/var/run/negotiator-%s.sock", which);
	snprintf(user, sizeof user, "/tmp/negotiator-%s-%lu.sock", which, (unsigned long)geteuid());
	if (given)
		fd = control_try(given, &denied, &where);
	else if ((fd = control_try(sys, &denied, &where)) < 0 && geteuid() != 0)
		fd = control_try(user, &denied, &where);
	if (fd < 0 && denied)
		control_denied(which, where, denied);
	if (fd < 0)
		debug("no daemon: using the channel directly");
	return fd;
}

/* After a direct attempt failed: why no daemon served the call, and how to
 * start one ("host" or "guest"), as one line on stderr. */
void
control_missing(const char *given, const char *which)
{
	char sys[64], user[96];
	const char *path = given;
	struct stat sb;

	snprintf(sys, sizeof sys, "/var/run/negotiator-%s.sock", which);
	snprintf(user, sizeof user, "/tmp/negotiator-%s-%lu.sock", which, (unsigned long)geteuid());
	if (!path)
		path = geteuid() != 0 && lstat(sys, &sb) < 0 ? user : sys;
	error("the %s daemon is not running: %s %s; start it (negotiator-%s -d%s%s, or its "
	      "service), or see negotiator-%s --check", which,
	      lstat(path, &sb) < 0 ? "no socket at" : "nobody listens on the stale socket", path,
	      which, given ? " --control-socket " : "", given ? given : "", which);
}

const char *
default_control_path(const char *which)
{
	static char path[128];

	if (geteuid() == 0)
		snprintf(path, sizeof path, "/var/run/negotiator-%s.sock", which);
	else
		snprintf(path, sizeof path, "/tmp/negotiator-%s-%lu.sock", which,
		         (unsigned long)geteuid());
	return path;
}
