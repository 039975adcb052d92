/*
 * fanout.c: one command on many guests at once, from the command line
 * (negotiator-host -e CMD GUEST1 GUEST2 ..., or --all; -c likewise).
 *
 * One connection to the host daemon's control socket carries all the
 * calls, at most max_parallel at a time, each with its own call id (guest
 * i's is FIRST_ID + i); --all first asks the daemon for its guests on the
 * same connection.  A guest's call starts when a slot is free, and its -t
 * counts from then: a guest that does not answer holds one slot for at most
 * -t, never the others.
 *
 * Output is pdsh's: every line of a guest's stdout (stderr) goes to our
 * stdout (stderr) as "GUEST: LINE".  Each guest's bytes wait in their own
 * buffer until a line is complete, so lines of different guests never mix;
 * a last line without a newline gets one when the call ends, and a line
 * longer than LINE_CUT is cut into lines of LINE_CUT bytes.  Complete lines
 * go into one queue per stream, which takes more only while it holds less
 * than QUEUE_HIGH; bytes are acknowledged once written out, as client.c
 * does, so a guest gets at most a window ahead of our stdout and memory
 * stays bounded (max_parallel windows, plus the queues).
 *
 * With --json (req->json) a guest's output is captured instead, at most
 * CAPTURE_MAX bytes a stream (acknowledged as soon as it is kept), and one
 * JSON object per guest (result.c) goes to stdout when its call ends,
 * whole, as a queue's run: objects never mix either.
 *
 * stdin is not forwarded (each call gets an empty stdin, as with pdsh).
 * The exit status is the largest of the guests' (0 when all succeeded), and
 * one summary line on stderr says which guests failed and how.
 */
#include "negotiator.h"

#include <sys/stat.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GUESTS_ID    1UL                  /* --all: the daemon's guest list */
#define FIRST_ID     2UL                  /* guest i's call id: FIRST_ID + i */
#define LINE_CUT     65536UL              /* longer lines are cut */
#define QUEUE_HIGH   262144UL             /* an output queue takes lines below this */
#define NAMES_MAX    (16UL * 1048576UL)   /* the daemon's guest list */
#define CANCEL_GRACE 1000                 /* ms to get cancels out at the end */

enum tstate {
	T_WAITING,      /* not started yet */
	T_RUNNING,      /* the call is in flight */
	T_ENDED,        /* the call is over; lines of it still wait in part[] */
	T_DONE          /* all of it queued for output */
};

struct target {
	const char *name;
	enum tstate state;
	int heard;                   /* the daemon said anything about the call */
	int code;                    /* the exit status, once ended */
	mtime_t deadline;            /* -t, from the start of the call */
	unsigned long delivered;     /* written out, not yet acknowledged */
	unsigned long queued;        /* in an output queue, not yet written */
	struct buf part[2];          /* stdout, stderr: bytes not yet queued */
	size_t no_nl[2];             /* ... the first bytes of which have no newline */
	char *reason;                /* a failure's full text, for its error line */
	char how[96];                /* a failure in short, for the summary */
	mtime_t started;             /* when its call started (--json: elapsed_ms) */
	int exited;                  /* --json: the command's exit is in res */
	struct call_result res;      /* --json: the captured result */
};

/* a run of bytes in an output queue: of target t (-1: our own text), len
 * bytes of which data were that guest's own (the rest: prefixes) */
struct seg {
	int t;
	size_t len;
	unsigned long data;
};

struct outq {
	int fd;
	struct buf q;
	size_t max_write;            /* per select(): a pipe never blocks under PIPE_BUF */
	struct seg *segs;
	size_t head, nsegs, cap;     /* segs[head..nsegs) describe q */
	size_t head_written;         /* bytes of segs[head] already written */
	int broken;                  /* a write failed: what is left is dropped */
};

struct fanout {
	struct link link;
	const struct fanout_req *req;
	struct target *t;
	int nt;
	int *active;                 /* targets RUNNING or ENDED (the slots in use) */
	int nactive;
	int next;                    /* the next target to start */
	int rr;                      /* where moving lines starts (round robin) */
	int asking;                  /* --all: the guest list is on its way */
	mtime_t ask_deadline;        /* ... until then (-t) */
	int connected;               /* the connection to the daemon is usable */
	struct buf names;            /* --all: the daemon's answer */
	struct buf words;            /* -e: the command's netstrings, for every call */
	struct outq out[2];          /* our stdout, stderr */
	int stop;                    /* 128+N: a signal or a broken output ends it all */
	int list_code;               /* --all: the guest list failed with this */
};

/* ---- output queues ---------------------------------------------------------------- */

static void
outq_init(struct outq *o, int fd)
{
	struct stat st;

	memset(o, 0, sizeof *o);
	o->fd = fd;
	buf_init(&o->q, (size_t)-1);    /* bounded by QUEUE_HIGH and the slots */
	o->max_write = PIPE_BUF;
	if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(fd))))
		o->max_write = CALL_WINDOW;
}

static void
outq_free(struct outq *o)
{
	buf_free(&o->q);
	free(o->segs);
}

static void
outq_add(struct outq *o, int t, const void *p, size_t n, unsigned long data)
{
	struct seg *last = o->nsegs > o->head ? &o->segs[o->nsegs - 1] : NULL;

	if (o->broken || n == 0)
		return;
	buf_append(&o->q, p, n);
	if (last && last->t == t) {
		last->len += n;
		last->data += data;
		return;
	}
	if (o->head > 0 && o->head == o->nsegs)
		o->head = o->nsegs = 0;
	if (o->nsegs == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->segs = xrealloc(o->segs, o->cap * sizeof *o->segs);
	}
	o->segs[o->nsegs].t = t;
	o->segs[o->nsegs].len = n;
	o->segs[o->nsegs].data = data;
	o->nsegs++;
}

/* n bytes of the queue were written: whole runs count as delivered */
static void
outq_credit(struct fanout *f, struct outq *o, size_t n)
{
	while (n > 0 && o->head < o->nsegs) {
		struct seg *s = &o->segs[o->head];
		size_t left = s->len - o->head_written;

		if (n < left) {
			o->head_written += n;
			return;
		}
		n -= left;
		o->head_written = 0;
		o->head++;
		if (s->t >= 0) {
			f->t[s->t].delivered += s->data;
			f->t[s->t].queued -= s->data;
		}
	}
}

static void stop_all(struct fanout *f, int code, const char *why);

static void
outq_write(struct fanout *f, struct outq *o)
{
	ssize_t n = buf_write_fd(&o->q, o->fd, o->max_write);

	if (n > 0) {
		outq_credit(f, o, (size_t)n);
	} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		/* nobody reads our output (`| head`): stop, as SIGPIPE would */
		o->broken = 1;
		buf_clear(&o->q);
		o->head = o->nsegs = o->head_written = 0;
		stop_all(f, 128 + SIGPIPE, NULL);
	}
}

/* ---- lines ---------------------------------------------------------------------- */

/* "GUEST: " and n bytes of guest i's stream s, ending in a newline */
static void
queue_line(struct fanout *f, int i, int s, const unsigned char *p, size_t n)
{
	struct outq *o = &f->out[s];
	struct target *t = &f->t[i];

	outq_add(o, i, t->name, strlen(t->name), 0);
	outq_add(o, i, ": ", 2, 0);
	outq_add(o, i, p, n, (unsigned long)n);
	if (p[n - 1] != '\n')
		outq_add(o, i, "\n", 1, 0);
	t->queued += (unsigned long)n;
}

/* our own text on stderr, not a guest's */
static void
queue_text(struct fanout *f, const char *text)
{
	outq_add(&f->out[1], -1, text, strlen(text), 0);
}

/* The complete lines of guest i's stream s into its queue, while the
 * queue has room; once the call is over, the last line too. */
static void
move_lines(struct fanout *f, int i, int s)
{
	struct target *t = &f->t[i];
	struct buf *p = &t->part[s];
	size_t *seen = &t->no_nl[s];

	while (buf_len(p) && buf_len(&f->out[s].q) < QUEUE_HIGH) {
		const unsigned char *d = buf_ptr(p);
		const unsigned char *nl = memchr(d + *seen, '\n', buf_len(p) - *seen);
		size_t n;

		*seen = nl ? 0 : buf_len(p);   /* a long line is searched once */
		if (nl)
			n = (size_t)(nl - d) + 1;
		else if (buf_len(p) >= LINE_CUT)
			n = LINE_CUT;
		else if (t->state != T_RUNNING)
			n = buf_len(p);
		else
			break;
		queue_line(f, i, s, d, n);
		buf_consume(p, n);
		*seen = *seen > n ? *seen - n : 0;
	}
	if (!buf_len(p))
		buf_trim(p);
}

/* --json: guest i's object into the stdout queue, in one run, while the
 * queue has room; 0 when it must wait */
static int
queue_object(struct fanout *f, int i)
{
	struct target *t = &f->t[i];
	struct buf line;

	if (buf_len(&f->out[0].q) >= QUEUE_HIGH)
		return 0;
	buf_init(&line, (size_t)-1);
	call_result_json(t->name, &t->res, &line);
	outq_add(&f->out[0], -1, buf_ptr(&line), buf_len(&line), 0);
	buf_free(&line);
	call_result_free(&t->res);
	return 1;
}

/* ---- the guests' calls ------------------------------------------------------------ */

static void
slot_take(struct fanout *f, int i)
{
	f->active[f->nactive++] = i;
}

/* All of guest i is queued: its error line follows its output. */
static void
slot_release(struct fanout *f, int k)
{
	struct target *t = &f->t[f->active[k]];
	char line[1200];

	if (t->reason) {
		snprintf(line, sizeof line, "%s: error: %s: %s\n", progname, t->name, t->reason);
		queue_text(f, line);
	}
	t->state = T_DONE;
	buf_free(&t->part[0]);
	buf_free(&t->part[1]);
	f->active[k] = f->active[--f->nactive];
}

/* --json: the end of guest i's call into its result (a command's exit is
 * there already); origin and message as call_result_fail takes them. */
static void
target_result(struct fanout *f, int i, int code, const char *origin, const char *message)
{
	struct target *t = &f->t[i];

	if (!f->req->json)
		return;
	if (!t->exited)
		call_result_fail(&t->res, code, origin, message, t->name);
	t->res.elapsed_ms = t->started ? (unsigned long)(now_ms() - t->started) : 0;
}

/* The call of guest i is over: code, and for a failure, why (in full, and
 * short for the summary; NULL: no error line, as for a command's exit),
 * and where it came from (call_result_fail's origin). */
static void
target_end(struct fanout *f, int i, int code, const char *how, const char *reason,
           const char *origin)
{
	struct target *t = &f->t[i];

	if (t->state != T_RUNNING && t->state != T_WAITING)
		return;
	target_result(f, i, code, origin, reason ? reason : how);
	if (t->state == T_WAITING)
		slot_take(f, i);   /* never started: released at once, with its line */
	t->state = T_ENDED;
	t->code = code;
	if (how)
		strlcpy(t->how, how, sizeof t->how);
	if (reason)
		t->reason = xstrdup(reason);
}

static void
cancel(struct fanout *f, int i)
{
	if (f->connected)
		link_sendf(&f->link, "cancel %lu", FIRST_ID + (unsigned long)i);
}

static int
build_request(struct fanout *f, int i, struct buf *b, char *head, size_t headlen)
{
	const char *name = f->t[i].name;
	int hl = snprintf(head, headlen, "%s %lu ", f->req->op == OP_EXEC ? "exec" : "list",
	                  FIRST_ID + (unsigned long)i);

	if (netstring_put(b, name, strlen(name)) < 0 ||
	    buf_append(b, buf_ptr(&f->words), buf_len(&f->words)) < 0 ||
	    (size_t)hl + buf_len(b) > MAX_PAYLOAD)
		return -1;
	return hl;
}

static void
start_call(struct fanout *f, int i)
{
	struct target *t = &f->t[i];
	struct buf b;
	char head[40];
	int hl;

	buf_init(&b, MAX_PAYLOAD);
	hl = build_request(f, i, &b, head, sizeof head);
	if (hl < 0) {
		target_end(f, i, EXIT_USAGE, "2: command line too long",
		           "command line too long for one request", "agent");
	} else {
		slot_take(f, i);
		t->state = T_RUNNING;
		t->started = now_ms();
		link_send(&f->link, head, (size_t)hl, buf_ptr(&b), buf_len(&b));
		if (f->req->op == OP_EXEC)   /* no stdin in fan-out */
			link_sendf(&f->link, "eof %lu", FIRST_ID + (unsigned long)i);
		if (f->req->timeout > 0)
			t->deadline = now_ms() + (mtime_t)f->req->timeout * 1000UL;
	}
	buf_free(&b);
}

static void
start_calls(struct fanout *f)
{
	while (!f->stop && f->connected && f->next < f->nt &&
	       f->nactive < f->req->max_parallel && link_out_room(&f->link))
		start_call(f, f->next++);
}

static void
on_timeout(struct fanout *f, int i)
{
	struct target *t = &f->t[i];
	const char *s = f->req->timeout == 1 ? "" : "s";
	char why[200];

	cancel(f, i);
	if (!t->heard) {
		/* not even "it runs": the agent is not answering (client.c) */
		snprintf(why, sizeof why, "timeout: the agent has not answered within %ld "
		         "second%s (is it running? frozen?); the call was cancelled",
		         f->req->timeout, s);
		target_end(f, i, EXIT_AGENT, "125: no agent answered", why, "channel");
	} else {
		snprintf(why, sizeof why, "timeout: no result within %ld second%s; the call "
		         "was cancelled", f->req->timeout, s);
		target_end(f, i, EXIT_TIMEOUT, "124: timeout", why, NULL);
	}
}

static void list_failed(struct fanout *f, int code, const char *why);

static void
check_deadlines(struct fanout *f, mtime_t now)
{
	char why[100];
	int k;

	if (f->req->timeout <= 0)
		return;
	if (f->asking && !TIME_BEFORE(now, f->ask_deadline)) {
		link_sendf(&f->link, "cancel %lu", GUESTS_ID);
		snprintf(why, sizeof why, "timeout: the daemon has not listed its guests within "
		         "%ld second%s", f->req->timeout, f->req->timeout == 1 ? "" : "s");
		list_failed(f, EXIT_AGENT, why);
	}
	for (k = 0; k < f->nactive; k++) {
		int i = f->active[k];

		if (f->t[i].state == T_RUNNING && !TIME_BEFORE(now, f->t[i].deadline))
			on_timeout(f, i);
	}
}

static mtime_t
next_deadline(const struct fanout *f, mtime_t next)
{
	int k;

	if (f->req->timeout <= 0)
		return next;
	if (f->asking && TIME_BEFORE(f->ask_deadline, next))
		next = f->ask_deadline;
	for (k = 0; k < f->nactive; k++) {
		const struct target *t = &f->t[f->active[k]];

		if (t->state == T_RUNNING && TIME_BEFORE(t->deadline, next))
			next = t->deadline;
	}
	return next;
}

static int
running(const struct fanout *f)
{
	int k;

	for (k = 0; k < f->nactive; k++)
		if (f->t[f->active[k]].state == T_RUNNING)
			return 1;
	return 0;
}

/* Every call not over yet fails (the connection is gone, or a signal):
 * ours, not the guests' doing. */
static void
end_unfinished(struct fanout *f, int code, const char *how, const char *reason)
{
	char never[40];
	int i;

	snprintf(never, sizeof never, "%d: not started", code);
	for (i = 0; i < f->nt; i++) {
		if (f->t[i].state == T_RUNNING) {
			target_end(f, i, code, how, reason, "agent");
		} else if (f->t[i].state == T_WAITING) {
			target_end(f, i, code, never, NULL, "agent");
			target_result(f, i, code, "agent", "not started");
		}
	}
	f->next = f->nt;
}

static void
stop_all(struct fanout *f, int code, const char *why)
{
	char line[300];
	int k;

	if (f->stop)
		return;
	f->stop = code;
	for (k = 0; k < f->nactive; k++)
		if (f->t[f->active[k]].state == T_RUNNING)
			cancel(f, f->active[k]);
	end_unfinished(f, code, "stopped", NULL);   /* (no summary after a stop) */
	if (why) {
		snprintf(line, sizeof line, "%s: error: %s\n", progname, why);
		queue_text(f, line);
	}
}

static void
connection_lost(struct fanout *f, const char *why)
{
	char reason[300], line[400];

	if (!f->connected)
		return;
	f->connected = 0;
	snprintf(reason, sizeof reason, "the connection to the daemon was lost: %s", why);
	if (f->next < f->nt || f->asking) {
		snprintf(line, sizeof line, "%s: error: %s\n", progname, reason);
		queue_text(f, line);
	}
	if (f->asking) {
		f->asking = 0;
		f->list_code = EXIT_AGENT;   /* the line above said why */
	}
	end_unfinished(f, EXIT_AGENT, "125: connection to the daemon lost", reason);
}

/* ---- what the daemon says --------------------------------------------------------- */

static void
add_target(struct fanout *f, const char *name)
{
	struct target *t = &f->t[f->nt++];

	t->name = name;
	call_result_init(&t->res);
	t->res.list = f->req->op == OP_LIST;
	/* the window, and a frame beyond it: more is the peer's fault */
	buf_init(&t->part[0], CALL_WINDOW + MAX_PAYLOAD);
	buf_init(&t->part[1], CALL_WINDOW + MAX_PAYLOAD);
}

/* --all: the list, one name a line, becomes the targets */
static void
take_names(struct fanout *f)
{
	unsigned char *p = buf_ptr(&f->names), *end = p + buf_len(&f->names), *nl;
	int n = 0;

	for (nl = p; nl < end; nl++)
		n += *nl == '\n';
	f->t = xcalloc((size_t)n + 1, sizeof *f->t);
	f->active = xcalloc((size_t)n + 1, sizeof *f->active);
	for (; p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL; p = nl + 1) {
		*nl = '\0';
		if (valid_guest_name((const char *)p, (size_t)(nl - p)))
			add_target(f, (const char *)p);
		else if (nl > p)
			warn("the daemon's guest list has an unusable name: skipped");
	}
	if (f->nt == 0)
		warn("the daemon knows no guest with channels: nothing to do");
}

/* --all: no list, so nothing to run */
static void
list_failed(struct fanout *f, int code, const char *why)
{
	char line[700];

	f->asking = 0;
	f->list_code = code;
	snprintf(line, sizeof line, "%s: error: unable to list the guests: %s\n", progname, why);
	queue_text(f, line);
}

static void
on_guests_message(struct fanout *f, const struct msg *m)
{
	char text[600];

	switch (m->type) {
	case M_OUT:
		if (buf_append(&f->names, m->data, m->datalen) < 0) {
			link_sendf(&f->link, "cancel %lu", GUESTS_ID);
			list_failed(f, EXIT_AGENT, "the list is too long");
		} else if (m->datalen) {
			link_sendf(&f->link, "ack %lu %lu", GUESTS_ID, (unsigned long)m->datalen);
		}
		break;
	case M_EXIT:
		if (!m->signaled && m->num == 0) {
			f->asking = 0;
			take_names(f);
			break;
		}
		snprintf(text, sizeof text, "the daemon answered with %s %lu",
		         m->signaled ? "signal" : "exit status", m->num);
		list_failed(f, msg_exit_status(m), text);
		break;
	case M_FAIL:
		list_failed(f, (int)m->num, escape_text(text, sizeof text, m->data, m->datalen));
		break;
	default:
		break;
	}
}

static void
on_data(struct fanout *f, int i, const struct msg *m)
{
	struct target *t = &f->t[i];

	if (f->req->json) {   /* kept (or counted): as good as written out */
		call_result_capture(&t->res, m->type == M_ERR, m->data, m->datalen);
		t->delivered += (unsigned long)m->datalen;
		return;
	}
	if (buf_append(&t->part[m->type == M_ERR], m->data, m->datalen) < 0) {
		cancel(f, i);
		target_end(f, i, EXIT_AGENT, "125: protocol error", "peer overran the output window",
		           "agent");
	}
}

static void
on_call_message(struct fanout *f, int i, const struct msg *m)
{
	char text[600], how[96];
	int code;

	if (f->t[i].state != T_RUNNING)
		return;    /* over for us (a timeout): whatever follows is late */
	f->t[i].heard = 1;
	switch (m->type) {
	case M_OUT:
	case M_ERR:
		on_data(f, i, m);
		break;
	case M_EXIT:
		code = msg_exit_status(m);
		snprintf(how, sizeof how, "%s %lu", m->signaled ? "signal" : "exit", m->num);
		call_result_exit(&f->t[i].res, (int)m->num, m->signaled);
		f->t[i].exited = 1;
		target_end(f, i, code, code ? how : NULL, NULL, NULL);
		break;
	case M_FAIL:
		escape_text(text, sizeof text, m->data, m->datalen);
		snprintf(how, sizeof how, "%lu: %s", m->num, text);
		if (strlen(how) == sizeof how - 1)
			strcpy(how + sizeof how - 4, "...");
		target_end(f, i, (int)m->num, how, text, NULL);
		break;
	default:
		break;
	}
}

static void
on_message(struct fanout *f, const struct msg *m)
{
	if (m->type == M_JSON)
		return;
	if (m->id == GUESTS_ID && f->asking)
		on_guests_message(f, m);
	else if (m->id >= FIRST_ID && m->id - FIRST_ID < (unsigned long)f->nt)
		on_call_message(f, (int)(m->id - FIRST_ID), m);
}

static void
process(struct fanout *f)
{
	struct msg m;
	enum link_event ev;

	while (f->connected && (ev = link_next(&f->link, &m)) != EV_NONE) {
		if (ev == EV_RESET)
			connection_lost(f, "the session was reset by the other side");
		else if (ev == EV_MSG)
			on_message(f, &m);
	}
}

/* ---- the loop -------------------------------------------------------------------- */

/* Lines into the queues, a guest after another, starting with another one
 * each round; guests with all of their output queued leave their slot. */
static void
move_all(struct fanout *f)
{
	int k, n = f->nactive;

	for (k = 0; k < n; k++) {
		int i = f->active[(f->rr + k) % n];

		move_lines(f, i, 0);
		move_lines(f, i, 1);
	}
	if (n)
		f->rr = (f->rr + 1) % n;
	for (k = 0; k < f->nactive; k++) {
		struct target *t = &f->t[f->active[k]];

		if (t->state != T_ENDED || buf_len(&t->part[0]) || buf_len(&t->part[1]))
			continue;
		if (f->req->json && !queue_object(f, f->active[k]))
			continue;
		slot_release(f, k--);
	}
}

static void
send_acks(struct fanout *f)
{
	int k;

	if (!f->connected)
		return;
	for (k = 0; k < f->nactive; k++) {
		int i = f->active[k];
		struct target *t = &f->t[i];

		if (t->state == T_RUNNING && t->delivered &&
		    (t->queued == 0 || t->delivered >= CALL_WINDOW / 4)) {
			link_sendf(&f->link, "ack %lu %lu", FIRST_ID + (unsigned long)i, t->delivered);
			t->delivered = 0;
		}
	}
}

static int
finished(const struct fanout *f)
{
	return !f->asking && f->next >= f->nt && f->nactive == 0 &&
	       !buf_len(&f->out[0].q) && !buf_len(&f->out[1].q);
}

static long
ms_until(mtime_t now, mtime_t t)
{
	return TIME_BEFORE(now, t) ? (long)(t - now) : 0;
}

/* the descriptors to wait for; returns the highest */
static int
build_sets(struct fanout *f, struct fdset *r, struct fdset *w)
{
	int fd = f->connected ? f->link.fd : -1, maxfd = 2;

	if (fd > maxfd)
		maxfd = fd;
	if (sig_fd() > maxfd)
		maxfd = sig_fd();
	fdset_zero(r, maxfd);
	fdset_zero(w, maxfd);
	fdset_add(r, sig_fd());
	if (fd >= 0) {
		fdset_add(r, fd);
		if (buf_len(&f->link.out))
			fdset_add(w, fd);
	}
	if (buf_len(&f->out[0].q))
		fdset_add(w, 1);
	if (buf_len(&f->out[1].q))
		fdset_add(w, 2);
	return maxfd;
}

static void
read_link(struct fanout *f)
{
	int rc = link_read(&f->link);

	if (rc == 0)
		connection_lost(f, "connection closed by the daemon");
	else if (rc < 0)
		connection_lost(f, strerror(errno));
}

static void
on_signal(struct fanout *f, int sig)
{
	char why[80], sn[24];

	snprintf(why, sizeof why, "interrupted by %s; calls cancelled", signal_name(sig, sn));
	stop_all(f, 128 + sig, why);
}

/* One round: wait, then read, write and take in what arrived. */
static int
step(struct fanout *f, struct fdset *r, struct fdset *w)
{
	mtime_t now = now_ms();
	mtime_t next = f->connected ? link_deadline(&f->link, now, 1) : now + 3600000UL;
	int sig, maxfd, fd = f->link.fd;

	if (f->connected)
		link_flush(&f->link);
	maxfd = build_sets(f, r, w);
	if (select_sets(maxfd + 1, r, w, ms_until(now, next_deadline(f, next))) < 0) {
		if (errno == EINTR)
			return 0;
		stop_all(f, EXIT_AGENT, strerror(errno));
		return -1;
	}
	if (fdset_has(r, sig_fd()) && (sig = sig_next()) != 0)
		on_signal(f, sig);
	if (f->connected && fdset_has(r, fd))
		read_link(f);
	if (f->connected && fdset_has(w, fd) && link_flush(&f->link) < 0) {
		int e = errno;

		process(f);   /* why the daemon closed (a refusal), if it said */
		connection_lost(f, strerror(e));
	}
	process(f);
	if (fdset_has(w, 1))
		outq_write(f, &f->out[0]);
	if (fdset_has(w, 2))
		outq_write(f, &f->out[1]);
	return 0;
}

static void
loop(struct fanout *f)
{
	struct fdset r, w;

	memset(&r, 0, sizeof r);
	memset(&w, 0, sizeof w);
	for (;;) {
		mtime_t now = now_ms();

		check_deadlines(f, now);
		if (f->connected)
			link_timers(&f->link, now, running(f));
		process(f);
		move_all(f);        /* frees the slots of calls all written out, */
		start_calls(f);     /* ... for the next ones */
		send_acks(f);
		if (finished(f) || step(f, &r, &w) < 0)
			break;
	}
	fdset_free(&r);
	fdset_free(&w);
}

/* ---- before and after ---------------------------------------------------------------- */

/* Get what is queued (cancels, acks) out before closing, briefly. */
static void
flush_link(struct fanout *f)
{
	mtime_t end = now_ms() + CANCEL_GRACE;
	struct fdset r, w;

	memset(&r, 0, sizeof r);
	memset(&w, 0, sizeof w);
	while (f->connected && buf_len(&f->link.out)) {
		mtime_t now = now_ms();

		if (!TIME_BEFORE(now, end) || link_flush(&f->link) < 0)
			break;
		if (!buf_len(&f->link.out))
			break;
		fdset_zero(&r, f->link.fd);
		fdset_zero(&w, f->link.fd);
		fdset_add(&w, f->link.fd);
		select_sets(f->link.fd + 1, &r, &w, ms_until(now, end));
	}
	fdset_free(&r);
	fdset_free(&w);
}

/* What is left in the queues after a stop, in order, waiting for it. */
static void
flush_queues(struct fanout *f)
{
	struct fdset r, w;
	int s;

	memset(&r, 0, sizeof r);
	memset(&w, 0, sizeof w);
	for (s = 0; s < 2; s++)
		while (buf_len(&f->out[s].q) && !f->out[s].broken) {
			fdset_zero(&r, f->out[s].fd);
			fdset_zero(&w, f->out[s].fd);
			fdset_add(&w, f->out[s].fd);
			if (select_sets(f->out[s].fd + 1, &r, &w, -1) < 0 && errno != EINTR)
				break;
			outq_write(f, &f->out[s]);
		}
	fdset_free(&r);
	fdset_free(&w);
}

/* "N of M guests failed: vm3 (exit 1), vm4 (125: no agent answered)" */
static int
summary(struct fanout *f)
{
	struct buf line;
	int i, failed = 0, code = 0;

	buf_init(&line, (size_t)-1);
	for (i = 0; i < f->nt; i++) {
		struct target *t = &f->t[i];

		if (t->code == 0)
			continue;
		if (t->code > code)
			code = t->code;
		if (failed++)
			buf_append(&line, ", ", 2);
		buf_append(&line, t->name, strlen(t->name));
		buf_append(&line, " (", 2);
		buf_append(&line, t->how, strlen(t->how));
		buf_append(&line, ")", 1);
	}
	if (failed) {
		char head[200];

		snprintf(head, sizeof head, "%s: %d of %d guest%s failed: ", progname, failed,
		         f->nt, f->nt == 1 ? "" : "s");
		queue_text(f, head);
		outq_add(&f->out[1], -1, buf_ptr(&line), buf_len(&line), 0);
		queue_text(f, "\n");
	}
	buf_free(&line);
	return code;
}

static void
set_targets(struct fanout *f, const struct fanout_req *req)
{
	int i, j;

	f->t = xcalloc((size_t)req->nguests + 1, sizeof *f->t);
	f->active = xcalloc((size_t)req->nguests + 1, sizeof *f->active);
	for (i = 0; i < req->nguests; i++) {
		for (j = 0; j < f->nt; j++)
			if (strcmp(f->t[j].name, req->guests[i]) == 0)
				break;
		if (j == f->nt)   /* a guest named twice runs once */
			add_target(f, req->guests[i]);
	}
}

/* -1 when the command does not fit in a request */
static int
fanout_init(struct fanout *f, int fd, const struct fanout_req *req)
{
	int i;

	memset(f, 0, sizeof *f);
	f->req = req;
	buf_init(&f->words, MAX_PAYLOAD);
	for (i = 0; req->op == OP_EXEC && req->argv[i]; i++)
		if (netstring_put(&f->words, req->argv[i], strlen(req->argv[i])) < 0) {
			buf_free(&f->words);
			return -1;
		}
	outq_init(&f->out[0], 1);
	outq_init(&f->out[1], 2);
	buf_init(&f->names, NAMES_MAX);
	link_init(&f->link, LINK_CLIENT, -1, "daemon");
	f->link.socket = 1;   /* the control socket: a short read drained it */
	link_attach(&f->link, fd);
	f->connected = 1;
	return 0;
}

static void
fanout_free(struct fanout *f)
{
	int i;

	for (i = 0; i < f->nt; i++) {
		buf_free(&f->t[i].part[0]);
		buf_free(&f->t[i].part[1]);
		free(f->t[i].reason);
		call_result_free(&f->t[i].res);
	}
	free(f->t);
	free(f->active);
	buf_free(&f->names);
	buf_free(&f->words);
	outq_free(&f->out[0]);
	outq_free(&f->out[1]);
	link_detach(&f->link);
}

int
fanout_run(int fd, const struct fanout_req *req)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, 0 };
	struct fanout f;
	int code;

	if (fanout_init(&f, fd, req) < 0) {
		close(fd);
		error("command line too long for one request");
		return EXIT_USAGE;
	}
	sig_setup(sigs);
	/* a daemon's control socket starts clean: no need to wait for its sync
	 * before asking (as client.c) */
	if (req->guests) {
		set_targets(&f, req);
	} else {
		f.asking = 1;
		f.ask_deadline = now_ms() + (mtime_t)req->timeout * 1000UL;
		link_sendf(&f.link, "guests %lu", GUESTS_ID);
	}
	loop(&f);
	flush_link(&f);
	code = f.stop ? f.stop : f.list_code ? f.list_code : summary(&f);
	flush_queues(&f);
	fanout_free(&f);
	return code;
}
