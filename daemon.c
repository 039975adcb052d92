/*
 * daemon.c: the event loop both daemons run, and the calls it carries.
 *
 * A call is either served here (a command runs as our child, its output
 * goes back over the link it came from) or relayed (a local client asked
 * through the control socket; we forward it over a channel, rewriting ids).
 *
 * Flow control is per call and end to end: a sender may have at most
 * CALL_WINDOW data bytes unacknowledged; the final consumer acknowledges
 * what it has delivered.  So a channel's reader never has to stop reading
 * (every call's share of the stream is bounded), one slow call never
 * stalls the others, and "acknowledged" means "delivered".
 */
#include "negotiator.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_WAIT 5000    /* ms a relayed call waits for its channel's session */

enum call_kind { CALL_EXEC, CALL_TEXT, CALL_RELAY };

struct call {
	struct call *next;
	enum call_kind kind;
	struct link *up;            /* the side that asked */
	unsigned long up_id;
	/* served calls */
	struct child child;
	struct buf stdin_q;         /* waiting to be written to the child */
	int stdin_eof;
	unsigned long in_held;      /* stdin bytes received, not yet acked */
	unsigned long in_delivered; /* of those, written (ack pending) */
	unsigned long out_unacked;  /* out/err bytes sent, not acked */
	struct buf text;            /* CALL_TEXT: the whole output */
	/* relayed calls */
	struct link *down;
	unsigned long down_id;
	int sent;                   /* request went out on down */
	struct buf pending;         /* frames for down until it is sent */
	mtime_t queued_at;
	unsigned long up_unacked;   /* data sent toward up, not acked */
	unsigned long down_unacked; /* data sent toward down, not acked */
};

struct link *links;
static struct call *calls;
static int listen_fd = -1;
static void fail_calls_on(struct link *l, const char *why);
static void call_free(struct call *c);
static void send_fail(struct link *l, unsigned long id, int code, const char *reason);
static const char *listen_path;
static const struct daemon_hooks *hooks;
static int stopping;

void
daemon_add_link(struct link *l)
{
	l->next = links;
	links = l;
}

void
daemon_remove_link(struct link *l)
{
	struct link **pp;
	struct call *c, *next;
	char reason[300];

	fail_calls_on(l, "channel removed");
	/* and the relayed calls still waiting for its session: the link may be
	 * freed next, and nothing may point to it then */
	for (c = calls; c; c = next) {
		next = c->next;
		if (c->down == l) {
			snprintf(reason, sizeof reason, "%s: channel removed", l->name);
			send_fail(c->up, c->up_id, EXIT_AGENT, reason);
			call_free(c);
		}
	}
	for (pp = &links; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	link_detach(l);
}

void
daemon_listen(const char *path, int mode, const char *group)
{
	int fd = unix_connect(path);
	struct group *gr = NULL;

	if (group && !(gr = getgrnam(group)))
		fatal("unable to use --control-group %s: no such group", group);

	if (fd >= 0) {
		close(fd);
		fatal("unable to listen on %s: another daemon is running there", path);
	}
	listen_fd = unix_listen(path, mode);
	if (listen_fd < 0)
		fatal("unable to listen on %s: %s", path,
		      errno == EEXIST ? "a file that is not a socket is in the way" : strerror(errno));
	if (gr && chown(path, (uid_t)-1, gr->gr_gid) < 0)
		fatal("unable to give %s to group %s: %s", path, group, strerror(errno));
	listen_path = path;
	logit("listening for local clients on %s (mode %03o%s%s)", path, mode,
	      group ? ", group " : "", group ? group : "");
}

/* ---- call bookkeeping ------------------------------------------------------- */

static struct call *
call_new(enum call_kind kind, struct link *up, unsigned long up_id)
{
	struct call *c = xcalloc(1, sizeof *c);

	c->kind = kind;
	c->up = up;
	c->up_id = up_id;
	c->child.in = c->child.out = c->child.err = -1;
	buf_init(&c->stdin_q, CALL_WINDOW);
	buf_init(&c->text, (size_t)-1);
	buf_init(&c->pending, CALL_WINDOW + 8 * MAX_PAYLOAD);
	c->next = calls;
	calls = c;
	up->ncalls++;
	return c;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
call_free(struct call *c)
{
	struct call **pp;

	for (pp = &calls; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	close_fd(&c->child.in);
	close_fd(&c->child.out);
	close_fd(&c->child.err);
	buf_free(&c->stdin_q);
	buf_free(&c->text);
	buf_free(&c->pending);
	c->up->ncalls--;
	if (c->down)
		c->down->ncalls--;
	free(c);
}

static struct call *
call_by_up(struct link *l, unsigned long id)
{
	struct call *c;

	for (c = calls; c; c = c->next)
		if (c->up == l && c->up_id == id)
			return c;
	return NULL;
}

static struct call *
call_by_down(struct link *l, unsigned long id)
{
	struct call *c;

	for (c = calls; c; c = c->next)
		if (c->down == l && c->down_id == id && c->sent)
			return c;
	return NULL;
}

static void
send_fail(struct link *l, unsigned long id, int code, const char *reason)
{
	link_sendf(l, "fail %lu %d %s", id, code, reason);
}

/* Stop a served call at once: its process group is killed. */
static void
call_kill(struct call *c)
{
	if (c->kind == CALL_EXEC && c->child.pid > 0 && !c->child.reaped)
		child_kill(&c->child, SIGKILL);
	call_free(c);
}

/* Tell the side a relayed call goes to that nobody waits for it anymore. */
static void
relay_cancel(struct call *c)
{
	if (c->sent && c->down->up)
		link_sendf(c->down, "cancel %lu", c->down_id);
	call_free(c);
}

/* A session on l ended: everything in flight over it fails. */
static void
fail_calls_on(struct link *l, const char *why)
{
	struct call *c, *next;
	char reason[300];

	for (c = calls; c; c = next) {
		next = c->next;
		if (c->up == l) {
			if (c->kind == CALL_RELAY)
				relay_cancel(c);
			else
				call_kill(c);
		} else if (c->down == l && c->sent) {
			snprintf(reason, sizeof reason, "%s: %s", l->name, why);
			send_fail(c->up, c->up_id, EXIT_AGENT, reason);
			call_free(c);
		}
	}
}

void
daemon_link_lost(struct link *l, const char *why)
{
	if (l->ncalls)
		warn("%s: %s; failing %d call(s)", l->name, why, l->ncalls);
	else
		debug("%s: %s", l->name, why);
	fail_calls_on(l, why);
	l->up = 0;
	if (l->kind == LINK_CONTROL) {
		l->dead = 1;
		return;
	}
	buf_clear(&l->in);
	buf_clear(&l->out);
	l->consumed = 0;
	if (hooks->lost)
		hooks->lost(l);
}

/* ---- serving calls from a channel ------------------------------------------ */

/* argv from netstrings: target (must be empty on a channel), then words */
static char **
request_argv(const struct msg *m, char *target, size_t targetlen, const char **why)
{
	const unsigned char *p = m->data, *end = m->data + m->datalen, *s;
	char **argv = xcalloc(MAX_ARGS + 1, sizeof(char *));
	int argc = 0;
	size_t n;

	*why = "malformed request";
	if (netstring_get(&p, end, &s, &n) != 0 || n >= targetlen || memchr(s, 0, n))
		goto bad;
	memcpy(target, s, n);
	target[n] = '\0';
	for (;;) {
		int rc = netstring_get(&p, end, &s, &n);

		if (rc == 1)
			break;
		if (rc < 0 || memchr(s, 0, n))
			goto bad;
		if (argc == MAX_ARGS) {
			*why = "too many arguments";
			goto bad;
		}
		argv[argc] = xmalloc(n + 1);
		memcpy(argv[argc], s, n);
		argv[argc++][n] = '\0';
	}
	return argv;
bad:
	free_argv(argv);
	return NULL;
}

static void
serve_exec(struct link *l, const struct msg *m)
{
	char target[MAX_NAME + 1], path[4096], why[512], text[300];
	const char *reason;
	char **argv = request_argv(m, target, sizeof target, &reason);
	struct call *c;
	int rc;

	if (!argv || !argv[0] || target[0]) {
		send_fail(l, m->id, EXIT_AGENT, argv ? "malformed request" : reason);
		free_argv(argv);
		return;
	}
	if (!valid_command_name(argv[0], strlen(argv[0]))) {
		snprintf(why, sizeof why, "invalid command name: %s",
		         escape_text(text, sizeof text, argv[0], strlen(argv[0])));
		send_fail(l, m->id, EXIT_NOTFOUND, why);
		free_argv(argv);
		return;
	}
	rc = command_find(argv[0], path, sizeof path);
	if (rc) {
		snprintf(why, sizeof why, rc == EXIT_NOTFOUND ? "command not found: %s"
		                                              : "command not executable: %s",
		         argv[0]);
		send_fail(l, m->id, rc, why);
		free_argv(argv);
		return;
	}
	c = call_new(CALL_EXEC, l, m->id);
	rc = child_spawn(&c->child, path, argv, hooks->guest_of ? hooks->guest_of(l) : NULL,
	                 why, sizeof why);
	if (rc) {
		send_fail(l, m->id, rc, why);
		call_free(c);
	} else {
		debug("%s: call %lu: running %s (pid %ld)", l->name, m->id, path,
		      (long)c->child.pid);
	}
	free_argv(argv);
}

static void
serve_text(struct link *l, unsigned long id, struct buf *text)
{
	struct call *c = call_new(CALL_TEXT, l, id);

	c->text = *text;
}

/* the peer acknowledged n bytes; never below zero whatever it claims */
static void
acked(unsigned long *unacked, unsigned long n)
{
	*unacked -= n > *unacked ? *unacked : n;
}

static int
window_ok(unsigned long held, size_t more)
{
	return held + more <= CALL_WINDOW;
}

static void
served_msg(struct call *c, const struct msg *m)
{
	switch (m->type) {
	case M_IN:
		if (!window_ok(c->in_held, m->datalen)) {
			send_fail(c->up, c->up_id, EXIT_AGENT, "peer overran the stdin window");
			call_kill(c);
			return;
		}
		c->in_held += m->datalen;
		if (c->child.in < 0 || c->stdin_eof)
			c->in_delivered += m->datalen;   /* nobody reads it: drop, ack */
		else
			buf_append(&c->stdin_q, m->data, m->datalen);
		break;
	case M_EOF:
		c->stdin_eof = 1;
		break;
	case M_ACK:
		acked(&c->out_unacked, m->num);
		break;
	case M_CANCEL:
		debug("%s: call %lu cancelled by the peer", c->up->name, c->up_id);
		call_kill(c);
		break;
	default:
		break;
	}
}

/* ---- relaying local clients' calls ----------------------------------------- */

/* Frames toward the far side wait in the call until its request is sent. */
static void
relay_down(struct call *c, const char *head, size_t hl, const void *data, size_t dl)
{
	if (c->sent) {
		link_send(c->down, head, hl, data, dl);
		return;
	}
	{
		char count[16];
		int cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)(hl + dl));

		if (buf_append(&c->pending, count, (size_t)cl) < 0 ||
		    buf_append(&c->pending, head, hl) < 0 ||
		    buf_append(&c->pending, data, dl) < 0) {
			send_fail(c->up, c->up_id, EXIT_AGENT, "client overran its window");
			call_free(c);
		}
	}
}

static void
relay_send_request(struct call *c)
{
	struct link *d = c->down;

	if (buf_append(&d->out, buf_ptr(&c->pending), buf_len(&c->pending)) < 0) {
		send_fail(c->up, c->up_id, EXIT_AGENT, "channel output queue full");
		call_free(c);
		return;
	}
	trace_frame("<-", d->name, buf_ptr(&c->pending), buf_len(&c->pending));
	buf_free(&c->pending);
	c->sent = 1;
}

static void
relay_start(struct link *l, const struct msg *m)
{
	char target[MAX_NAME + 1], why[400], head[40];
	const unsigned char *p = m->data, *end = m->data + m->datalen, *s;
	size_t n;
	struct link *d;
	struct call *c;
	int hl;

	if (netstring_get(&p, end, &s, &n) != 0 || n > MAX_NAME || memchr(s, 0, n)) {
		send_fail(l, m->id, EXIT_AGENT, "malformed request");
		return;
	}
	memcpy(target, s, n);
	target[n] = '\0';
	why[0] = '\0';
	d = hooks->route(target, why, sizeof why);
	if (!d) {
		send_fail(l, m->id, EXIT_AGENT, why[0] ? why : "no route");
		return;
	}
	if (d->ncalls >= MAX_CALLS) {
		send_fail(l, m->id, EXIT_AGENT, "too many calls in flight on this channel");
		return;
	}
	c = call_new(CALL_RELAY, l, m->id);
	c->down = d;
	c->down_id = d->next_id++;
	if (d->next_id > 4000000000UL)
		d->next_id = 1;
	d->ncalls++;
	c->queued_at = now_ms();
	/* same request, our id, and no target: the channel has one peer */
	hl = snprintf(head, sizeof head, "%s %lu 0:,", msg_name(m->type), c->down_id);
	relay_down(c, head, (size_t)hl, p, (size_t)(end - p));
	if (d->up)
		relay_send_request(c);
}

static void
relay_from_up(struct call *c, const struct msg *m)
{
	char head[48];
	int hl;

	switch (m->type) {
	case M_IN:
		if (!window_ok(c->down_unacked, m->datalen)) {
			send_fail(c->up, c->up_id, EXIT_AGENT, "client overran the stdin window");
			relay_cancel(c);
			return;
		}
		c->down_unacked += m->datalen;
		hl = snprintf(head, sizeof head, "in %lu ", c->down_id);
		relay_down(c, head, (size_t)hl, m->data, m->datalen);
		break;
	case M_EOF:
	case M_CANCEL:
		hl = snprintf(head, sizeof head, "%s %lu", msg_name(m->type), c->down_id);
		relay_down(c, head, (size_t)hl, NULL, 0);
		/* after a cancel the far side sends nothing more for this call */
		if (m->type == M_CANCEL)
			call_free(c);
		break;
	case M_ACK:
		acked(&c->up_unacked, m->num);
		hl = snprintf(head, sizeof head, "ack %lu %lu", c->down_id, m->num);
		relay_down(c, head, (size_t)hl, NULL, 0);
		break;
	default:
		break;
	}
}

static void
relay_from_down(struct call *c, const struct msg *m)
{
	char head[48];
	int hl;

	switch (m->type) {
	case M_OUT:
	case M_ERR:
		if (!window_ok(c->up_unacked, m->datalen)) {
			send_fail(c->up, c->up_id, EXIT_AGENT, "peer overran the output window");
			relay_cancel(c);
			return;
		}
		c->up_unacked += m->datalen;
		hl = snprintf(head, sizeof head, "%s %lu ", msg_name(m->type), c->up_id);
		link_send(c->up, head, (size_t)hl, m->data, m->datalen);
		break;
	case M_ACK:
		acked(&c->down_unacked, m->num);
		link_sendf(c->up, "ack %lu %lu", c->up_id, m->num);
		break;
	case M_EXIT:
		link_sendf(c->up, "exit %lu %s %lu", c->up_id,
		           m->signaled ? "signal" : "status", m->num);
		call_free(c);
		break;
	case M_FAIL:
		hl = snprintf(head, sizeof head, "fail %lu %lu ", c->up_id, m->num);
		link_send(c->up, head, (size_t)hl, m->data,
		          m->datalen > 1000 ? 1000 : m->datalen);
		call_free(c);
		break;
	default:
		break;
	}
}

/* ---- dispatch ------------------------------------------------------------------ */

static void
on_request(struct link *l, const struct msg *m)
{
	struct buf text;

	if (call_by_up(l, m->id)) {
		link_sendf(l, "error duplicate call id %lu", m->id);
		return;
	}
	if (l->kind == LINK_CONTROL) {
		if (m->type == M_GUESTS) {
			buf_init(&text, (size_t)-1);
			if (hooks->targets)
				hooks->targets(&text);
			serve_text(l, m->id, &text);
		} else {
			relay_start(l, m);
		}
		return;
	}
	if (!l->serves) {
		send_fail(l, m->id, EXIT_AGENT, "this channel does not accept requests");
		return;
	}
	if (l->ncalls >= MAX_CALLS) {
		send_fail(l, m->id, EXIT_AGENT, "too many calls in flight");
		return;
	}
	if (m->type == M_EXEC) {
		serve_exec(l, m);
	} else if (m->type == M_LIST) {
		buf_init(&text, (size_t)-1);
		commands_list(&text);
		serve_text(l, m->id, &text);
	} else {
		send_fail(l, m->id, EXIT_AGENT, "unsupported request");
	}
}

static void
on_message(struct link *l, const struct msg *m)
{
	struct call *c;

	switch (m->type) {
	case M_EXEC:
	case M_LIST:
	case M_GUESTS:
		on_request(l, m);
		return;
	default:
		break;
	}
	if ((c = call_by_up(l, m->id)) != NULL) {
		if (c->kind == CALL_RELAY)
			relay_from_up(c, m);
		else
			served_msg(c, m);
	} else if ((c = call_by_down(l, m->id)) != NULL) {
		relay_from_down(c, m);
	} else {
		debug("%s: %s for unknown call %lu ignored", l->name, msg_name(m->type), m->id);
	}
}

static void
send_queued_requests(struct link *l)
{
	struct call *c, *next;

	for (c = calls; c; c = next) {
		next = c->next;
		if (c->down == l && !c->sent)
			relay_send_request(c);
	}
}

static void
process_link(struct link *l)
{
	struct msg m;
	enum link_event ev;

	while ((ev = link_next(l, &m)) != EV_NONE) {
		if (ev == EV_RESET) {
			if (l->ncalls)
				warn("%s: peer session changed; failing calls in flight", l->name);
			fail_calls_on(l, "session with the peer was reset");
		} else if (ev == EV_UP) {
			if (l->kind == LINK_CONTROL)
				debug("%s: session up", l->name);
			else
				logit("%s: connected", l->name);
			send_queued_requests(l);
		} else {
			on_message(l, &m);
		}
		if (l->dead)
			break;
	}
}

/* ---- served call I/O ---------------------------------------------------------- */

/* frames from the command's pipe, as much as the window allows; bytes read,
 * 0 if none, -1 at EOF */
static int
pump_output(struct call *c, int *fd, const char *word)
{
	size_t want = CALL_WINDOW - c->out_unacked;
	char head[40];
	int hl;
	ssize_t n;

	if (want == 0)
		return 0;
	hl = snprintf(head, sizeof head, "%s %lu ", word, c->up_id);
	n = link_send_read(c->up, head, (size_t)hl, *fd, want);
	if (n > 0) {
		c->out_unacked += (unsigned long)n;
		return (int)n;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		close_fd(fd);
		return -1;
	}
	return 0;
}

static void
pump_stdin(struct call *c)
{
	ssize_t n = buf_write_fd(&c->stdin_q, c->child.in, buf_len(&c->stdin_q));

	if (n > 0) {
		c->in_delivered += (unsigned long)n;
	} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		/* the command closed its stdin: the rest counts as delivered */
		c->in_delivered += buf_len(&c->stdin_q);
		buf_clear(&c->stdin_q);
		close_fd(&c->child.in);
	}
}

/* Acks are batched: one per quarter window, or when the queue drained. */
static void
served_acks(struct call *c)
{
	if (c->in_delivered &&
	    (buf_len(&c->stdin_q) == 0 || c->in_delivered >= CALL_WINDOW / 4)) {
		link_sendf(c->up, "ack %lu %lu", c->up_id, c->in_delivered);
		c->in_held -= c->in_delivered;
		c->in_delivered = 0;
	}
	if (c->stdin_eof && buf_len(&c->stdin_q) == 0)
		close_fd(&c->child.in);
}

static int
exit_code_of(int status, int *signaled)
{
	*signaled = WIFSIGNALED(status);
	return *signaled ? WTERMSIG(status) : WEXITSTATUS(status);
}

/* Returns 1 when the call finished and was freed. */
static int
served_progress(struct call *c)
{
	char head[40];
	int hl, sig, code;

	if (c->kind == CALL_TEXT) {
		while (buf_len(&c->text) && c->out_unacked < CALL_WINDOW && link_out_room(c->up)) {
			size_t n = buf_len(&c->text);

			if (n > DATA_CHUNK)
				n = DATA_CHUNK;
			hl = snprintf(head, sizeof head, "out %lu ", c->up_id);
			link_send(c->up, head, (size_t)hl, buf_ptr(&c->text), n);
			buf_consume(&c->text, n);
			c->out_unacked += n;
		}
		if (buf_len(&c->text))
			return 0;
		link_sendf(c->up, "exit %lu status 0", c->up_id);
		call_free(c);
		return 1;
	}
	served_acks(c);
	if (!c->child.reaped || c->child.out >= 0 || c->child.err >= 0)
		return 0;
	code = exit_code_of(c->child.status, &sig);
	link_sendf(c->up, "exit %lu %s %d", c->up_id, sig ? "signal" : "status", code);
	debug("%s: call %lu finished (%s %d)", c->up->name, c->up_id,
	      sig ? "signal" : "status", code);
	call_free(c);
	return 1;
}

static void
reap_children(void)
{
	pid_t pid;
	int status;
	struct call *c;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (c = calls; c; c = c->next)
			if (c->kind == CALL_EXEC && c->child.pid == pid) {
				c->child.reaped = 1;
				c->child.status = status;
			}
	}
}

/* Relayed calls whose channel never came up fail instead of hanging. */
static void
expire_queued(mtime_t now)
{
	struct call *c, *next;
	char why[300];

	for (c = calls; c; c = next) {
		next = c->next;
		if (c->kind == CALL_RELAY && !c->sent &&
		    !TIME_BEFORE(now, c->queued_at + QUEUE_WAIT)) {
			snprintf(why, sizeof why, "%s: no agent answered within %d seconds",
			         c->down->name, QUEUE_WAIT / 1000);
			send_fail(c->up, c->up_id, EXIT_AGENT, why);
			call_free(c);
		}
	}
}

/* ---- the loop ------------------------------------------------------------------- */

static void
accept_client(void)
{
	int fd = compat_accept4(listen_fd, CX_CLOEXEC | CX_NONBLOCK);
	struct link *l;
	char name[64];
	static unsigned long serial;

	if (fd < 0)
		return;
	l = xmalloc(sizeof *l);
	snprintf(name, sizeof name, "client %lu", ++serial);
	link_init(l, LINK_CONTROL, fd, name);
	daemon_add_link(l);
	debug("%s: connected", name);
}

static void
remove_dead_links(void)
{
	struct link **pp = &links, *l;

	while ((l = *pp) != NULL) {
		if (l->kind == LINK_CONTROL && l->dead) {
			fail_calls_on(l, "client went away");
			*pp = l->next;
			link_detach(l);
			free(l);
		} else {
			pp = &l->next;
		}
	}
}

static int
link_wants_read(const struct link *l)
{
	if (l->fd < 0 || l->paused || l->dead)
		return 0;
	/* local clients that do not read their answers are not read either */
	return l->kind != LINK_CONTROL || link_out_room(l);
}

struct loop_sets {
	struct fdset r, w;
	int maxfd;
};

static void
want(struct loop_sets *s, int fd, int write)
{
	if (fd < 0)
		return;
	fdset_add(write ? &s->w : &s->r, fd);
	if (fd > s->maxfd)
		s->maxfd = fd;
}

static int
highest_fd(void)
{
	int m = sig_fd() > listen_fd ? sig_fd() : listen_fd;
	struct link *l;
	struct call *c;

	for (l = links; l; l = l->next)
		if (l->fd > m)
			m = l->fd;
	for (c = calls; c; c = c->next) {
		if (c->child.in > m) m = c->child.in;
		if (c->child.out > m) m = c->child.out;
		if (c->child.err > m) m = c->child.err;
	}
	return m;
}

static void
build_sets(struct loop_sets *s)
{
	int top = highest_fd();
	struct link *l;
	struct call *c;

	fdset_zero(&s->r, top);
	fdset_zero(&s->w, top);
	s->maxfd = -1;
	want(s, sig_fd(), 0);
	if (!stopping)
		want(s, listen_fd, 0);
	for (l = links; l; l = l->next) {
		if (link_wants_read(l))
			want(s, l->fd, 0);
		if (l->fd >= 0 && !l->paused && !l->dead && buf_len(&l->out))
			want(s, l->fd, 1);
		if (l->fd >= 0 && l->paused && l->pause_wake)
			want(s, l->fd, 1);
	}
	for (c = calls; c; c = c->next) {
		int room;

		if (c->kind != CALL_EXEC)
			continue;
		room = c->up->up && link_out_room(c->up) && c->out_unacked < CALL_WINDOW;
		if (room) {
			want(s, c->child.out, 0);
			want(s, c->child.err, 0);
		}
		if (buf_len(&c->stdin_q))
			want(s, c->child.in, 1);
	}
}

static void
handle_signals(void)
{
	int sig;

	while ((sig = sig_next()) != 0) {
		if (sig == SIGCHLD)
			reap_children();
		else if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping)
				logit("stopping on signal %d", sig);
			stopping = 1;
		} else if (hooks->signal)
			hooks->signal(sig);
	}
}

static void
service_links(struct loop_sets *s)
{
	struct link *l;

	for (l = links; l; l = l->next) {
		int rc;

		if (l->fd >= 0 && l->paused && l->pause_wake && fdset_has(&s->w, l->fd))
			l->woke = 1;     /* the tick hook looks at the port */
		if (l->fd < 0 || l->paused || l->dead)
			continue;
		if (fdset_has(&s->r, l->fd)) {
			rc = link_read(l);
			if (rc == 0)
				daemon_link_lost(l, "connection closed");
			else if (rc < 0)
				daemon_link_lost(l, strerror(errno));
		}
		if (l->fd >= 0 && !l->paused && !l->dead)
			process_link(l);
	}
}

static void
service_calls(struct loop_sets *s)
{
	struct call *c, *next;

	for (c = calls; c; c = next) {
		next = c->next;
		if (c->kind == CALL_EXEC) {
			if (fdset_has(&s->r, c->child.out) && c->up->up && link_out_room(c->up))
				pump_output(c, &c->child.out, "out");
			if (fdset_has(&s->r, c->child.err) && c->up->up)
				pump_output(c, &c->child.err, "err");
			if (fdset_has(&s->w, c->child.in))
				pump_stdin(c);
		}
		if (c->kind != CALL_RELAY)
			served_progress(c);
	}
}

static void
flush_links(void)
{
	struct link *l;

	for (l = links; l; l = l->next) {
		if (l->fd < 0 || l->paused || l->dead || !buf_len(&l->out))
			continue;
		if (link_flush(l) < 0)
			daemon_link_lost(l, strerror(errno));
	}
}

static void
shutdown_all(void)
{
	struct call *c;
	struct link *l;

	for (c = calls; c; c = c->next)
		if (c->kind == CALL_EXEC && c->child.pid > 0 && !c->child.reaped)
			child_kill(&c->child, SIGKILL);
	for (l = links; l; l = l->next)
		l->dead = 1;
	if (listen_path)
		unlink(listen_path);
}

/* Hundreds of guests need more descriptors than the usual soft limit. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct loop_sets sets;

/* Once, before the first daemon_step(). */
void
daemon_init(const struct daemon_hooks *h)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGIO, SIGUSR1, 0 };

	hooks = h;
	raise_fd_limit();
	sig_setup(sigs);
}

/* One round of the loop: timers, one select() of at most max_wait ms (no
 * limit but the timers' when negative), the I/O it found.  Returns 0 once
 * the daemon is stopping (SIGTERM or SIGINT). */
int
daemon_step(long max_wait)
{
	mtime_t now = now_ms(), deadline = hooks->tick(now);
	struct link *l;
	long wait;

	expire_queued(now);
	for (l = links; l; l = l->next) {
		mtime_t d;

		link_timers(l, now, l->ncalls > 0);
		process_link(l);    /* timers may have reset sessions */
		if (l->ncalls == 0) {
			buf_trim(&l->in);
			buf_trim(&l->out);
		}
		d = link_deadline(l, now, l->ncalls > 0);
		if (TIME_BEFORE(d, deadline))
			deadline = d;
	}
	if (calls && TIME_BEFORE(now + 1000, deadline))
		deadline = now + 1000;   /* queued-call expiry */
	flush_links();
	remove_dead_links();
	build_sets(&sets);
	wait = TIME_BEFORE(now, deadline) ? (long)(deadline - now) : 0;
	if (max_wait >= 0 && wait > max_wait)
		wait = max_wait;
	if (select_sets(sets.maxfd + 1, &sets.r, &sets.w, wait) < 0) {
		if (errno != EINTR)
			fatal("select: %s", strerror(errno));
		return !stopping;
	}
	if (fdset_has(&sets.r, sig_fd()))
		handle_signals();
	if (fdset_has(&sets.r, listen_fd))
		accept_client();
	service_links(&sets);
	service_calls(&sets);
	flush_links();
	return !stopping;
}

/* The end: running commands are killed, every call and every local
 * client's link is freed (channel links belong to the caller; they are
 * left marked dead).  Returns how many calls were still there. */
int
daemon_fini(void)
{
	int n = 0;

	shutdown_all();
	while (calls) {
		call_kill(calls);
		n++;
	}
	remove_dead_links();
	fdset_free(&sets.r);
	fdset_free(&sets.w);
	return n;
}

int
daemon_run(const struct daemon_hooks *h)
{
	daemon_init(h);
	while (daemon_step(-1))
		;
	daemon_fini();
	return 0;
}
