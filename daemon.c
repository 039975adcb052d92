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
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUEUE_WAIT 5000    /* ms a relayed call waits for its channel's session */
/* what one call may have queued toward a local client: its window, in
 * frames of at least 44 data bytes (a frame's count and head take at most
 * 22 more) */
#define CALL_ROOM (CALL_WINDOW + CALL_WINDOW / 2)

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
	/* where the output waited (said at -v when the call ends): times its
	 * reading stopped on a full window (the consumer's acks are late) or on
	 * a full link queue (the channel or the client is slower) */
	unsigned long out_bytes, stalls_window, stalls_queue;
	int out_paused;
	struct buf text;            /* CALL_TEXT: the whole output */
	/* relayed calls */
	struct link *down;
	unsigned long down_id;
	int sent;                   /* request went out on down */
	struct buf pending;         /* frames for down until it is sent */
	mtime_t queued_at;
	unsigned long up_unacked;   /* data sent toward up, not acked */
	unsigned long down_unacked; /* data sent toward down, not acked */
	/* python-negotiator peers (see "python streams" below) */
	int py;                     /* served for, or relayed to, a python peer */
	char **argv;                /* the command (request or messages) */
	int list;                   /* relayed: list_commands */
	unsigned long seq;          /* relayed: order of arrival */
	struct buf errtext;         /* CALL_TEXT: after text, this as stderr, */
	int text_code;              /* ... then this exit status */
	/* where the loop finds it: lists, lookups, its deadline */
	struct call *prev;                  /* all calls */
	struct call *prev_on[2], *next_on[2];  /* the calls of up [ON_UP] and those
	                                          relayed over down [ON_DOWN] */
	struct call *hnext[3];              /* hash chains: by up id, down id, pid */
	struct todo touch;                  /* in the list of calls to look at */
	int by_pid;                         /* in the pid index */
	struct timer queue_timer;           /* relayed: waiting for its channel */
};

struct link *links;
static struct call *calls;
static int listen_fd = -1;
static void fail_calls_on(struct link *l, const char *why);
static void relay_end(struct call *c, int code, const char *why);
static const char *listen_path;
static const struct daemon_hooks *hooks;
static int stopping;
const char *daemon_event_loop;   /* the backend: NULL for select */

/* ---- what the loop looks at -------------------------------------------------- */

/*
 * The loop does constant work per event: nothing walks every link or every
 * call.  What may have something to do is "touched" (put on a list): a link
 * that was read, written to or given frames, a call whose descriptors woke
 * or whose peer said something.  Before each wait the touched ones are
 * settled: their input processed, output flushed, interest given to the
 * loop backend and deadline to the timer heap.
 */
struct todo_list {
	struct todo *head, **tail;
};
static struct todo_list touched_links = { NULL, &touched_links.head };
static struct todo_list touched_calls = { NULL, &touched_calls.head };
static struct link *throttled;   /* control links a channel may be holding back */

/* what the struct todo t is the member touch of */
#define TODO_OWNER(t, type) ((type *)(void *)((char *)(t) - offsetof(type, touch)))

/* at the end of the list, unless it is on it already */
static void
todo_add(struct todo_list *list, struct todo *t)
{
	if (t->queued)
		return;
	t->queued = 1;
	t->next = NULL;
	*list->tail = t;
	list->tail = &t->next;
}

static void
todo_remove(struct todo_list *list, struct todo *t)
{
	struct todo **pp;

	if (!t->queued)
		return;
	for (pp = &list->head; *pp != t; pp = &(*pp)->next)
		;
	*pp = t->next;
	if (list->tail == &t->next)
		list->tail = pp;
	t->queued = 0;
}

/* the first on the list, taken off it; NULL when it is empty */
static struct todo *
todo_take(struct todo_list *list)
{
	struct todo *t = list->head;

	if (t) {
		list->head = t->next;
		if (!list->head)
			list->tail = &list->head;
		t->queued = 0;
	}
	return t;
}

void
daemon_touch_link(struct link *l)
{
	if (l->in_daemon)
		todo_add(&touched_links, &l->touch);
}

static void
touch_call(struct call *c)
{
	todo_add(&touched_calls, &c->touch);
}

/* ---- descriptors: who owns each one ------------------------------------------ */

enum { W_NONE, W_SIGNAL, W_LISTEN, W_LINK, W_CALL, W_OTHER };
struct watcher { int kind; void *obj; daemon_fd_fn fn; };
static struct watcher *watchers;
static int nwatchers;

static void
watch(int fd, int kind, void *obj, int mask)
{
	if (fd < 0)
		return;
	if (fd >= nwatchers) {
		int n = fd + 256;

		watchers = xrealloc(watchers, (size_t)n * sizeof *watchers);
		memset(watchers + nwatchers, 0, (size_t)(n - nwatchers) * sizeof *watchers);
		nwatchers = n;
	}
	watchers[fd].kind = kind;
	watchers[fd].obj = obj;
	watchers[fd].fn = NULL;
	loop_watch(fd, mask);
}

/* before fd is closed */
static void
unwatch(int fd)
{
	if (fd < 0 || fd >= nwatchers)
		return;
	loop_watch(fd, 0);
	watchers[fd].kind = W_NONE;
	watchers[fd].obj = NULL;
}

/* A descriptor of the caller's (the host's discovery), in the same loop:
 * fn(fd, mask, arg) when it is ready; mask 0 stops watching it. */
void
daemon_watch_fd(int fd, int mask, daemon_fd_fn fn, void *arg)
{
	if (!mask) {
		unwatch(fd);
		return;
	}
	watch(fd, W_OTHER, arg, mask);
	watchers[fd].fn = fn;
}

static void
link_closing(struct link *l)
{
	if (l->watched_fd >= 0)
		unwatch(l->watched_fd);
	l->watched_fd = -1;
}

static void link_timer_fired(struct timer *t, mtime_t now);

void
daemon_add_link(struct link *l)
{
	l->in_daemon = 1;
	l->watched_fd = -1;
	l->up_calls = l->down_calls = NULL;
	l->touch.queued = l->throttled = 0;
	timer_init(&l->timer, link_timer_fired, l);
	l->prev = NULL;
	l->next = links;
	if (links)
		links->prev = l;
	links = l;
	daemon_touch_link(l);
}

static void
unlink_link(struct link *l)
{
	struct link **pp;

	if (l->prev)
		l->prev->next = l->next;
	else
		links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->next = l->prev = NULL;
	todo_remove(&touched_links, &l->touch);
	timer_stop(&l->timer);
	link_closing(l);
	if (l->throttled)
		for (pp = &throttled; *pp; pp = &(*pp)->throttled_next)
			if (*pp == l) {
				*pp = l->throttled_next;
				break;
			}
	for (pp = &throttled; *pp; pp = &(*pp)->throttled_next)
		if ((*pp)->throttle == l)
			(*pp)->throttle = NULL;
	l->in_daemon = 0;
}

static struct call *first_down_call(struct link *l);

/* why: for the calls that waited on it; NULL: "LINK: channel removed" */
void
daemon_remove_link(struct link *l, const char *why)
{
	struct call *c;
	char reason[400];

	fail_calls_on(l, "channel removed");
	/* and the relayed calls still waiting for its session: the link may be
	 * freed next, and nothing may point to it then */
	while ((c = first_down_call(l)) != NULL) {
		if (why)
			strlcpy(reason, why, sizeof reason);
		else
			snprintf(reason, sizeof reason, "%s: channel removed", l->name);
		relay_end(c, EXIT_AGENT, reason);
	}
	unlink_link(l);
	link_detach(l);
}

/* Who may use the control socket: root, our own user and, when the mode
 * lets the socket's group in, that group's members (accept_client asks
 * every client).  The mode's bits for others let nobody else in. */
static int group_may;
static gid_t socket_gid;

void
daemon_listen(const char *path, int mode, const char *group)
{
	struct group *gr = NULL;
	struct stat st;
	char who[96];
	int fd;

	if (group && !(gr = getgrnam(group)))
		fatal("unable to use --control-group %s: no such group", group);
	/* in /tmp anyone can make our socket first: never talk to another
	 * user's socket, nor try to replace it */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid != geteuid()) {
		user_label((unsigned long)st.st_uid, who, sizeof who);
		fatal("unable to listen on %s: a socket of %s is in the way (another user may "
		      "have made it to block or impersonate this daemon); have it removed (by "
		      "its owner or root), or give --control-socket PATH", path, who);
	}
	fd = unix_connect(path);
	if (fd >= 0) {
		close(fd);
		fatal("unable to listen on %s: another daemon is running there", path);
	}
	listen_fd = unix_listen(path, mode);
	if (listen_fd < 0)
		fatal("unable to listen on %s: %s", path,
		      errno == EEXIST ? "a file that is not a socket is in the way" :
		      errno == EPERM ? "another user's socket is in the way" : strerror(errno));
	if (gr && chown(path, (uid_t)-1, gr->gr_gid) < 0)
		fatal("unable to give %s to group %s: %s", path, group, strerror(errno));
	if ((mode & 020) && stat(path, &st) == 0) {
		group_may = 1;
		socket_gid = st.st_gid;
	}
	listen_path = path;
	logit("listening for local clients on %s (mode %03o%s%s)", path, mode,
	      group ? ", group " : "", group ? group : "");
	if (mode & 002)
		warn("--control-mode %03o: its bits for others let nobody in; only root, this "
		     "daemon's user%s may connect", mode, group_may ? " and the socket's group" : "");
	pgids_start(path);
}

/* ---- call bookkeeping ------------------------------------------------------- */

/* Calls are found by (link, id) on either side, and by pid, in three
 * chained hash tables that double as they fill. */
enum { BY_UP, BY_DOWN, BY_PID };
struct call_index {
	struct call **slot;
	unsigned long mask;          /* slots - 1 */
	unsigned long n;
};
static struct call_index index_of[3];

static unsigned long
key_hash(const void *l, unsigned long id)
{
	unsigned long h = (unsigned long)(size_t)l / sizeof(void *);

	h ^= id * 2654435761UL;
	h ^= h >> 15;
	return h * 40503UL;
}

static const void *
key_link(const struct call *c, int which)
{
	return which == BY_UP ? (const void *)c->up : which == BY_DOWN ? (const void *)c->down
	                                                                : NULL;
}

static unsigned long
key_id(const struct call *c, int which)
{
	return which == BY_UP ? c->up_id : which == BY_DOWN ? c->down_id
	                                                    : (unsigned long)c->child.pid;
}

static void index_add(struct call *c, int which);

static void
index_grow(struct call_index *x, int which)
{
	struct call **old = x->slot;
	unsigned long i, size = x->slot ? x->mask + 1 : 0;

	x->mask = size ? 2 * size - 1 : 63;
	x->slot = xcalloc(x->mask + 1, sizeof *x->slot);
	x->n = 0;
	for (i = 0; i < size; i++)
		while (old[i]) {
			struct call *c = old[i];

			old[i] = c->hnext[which];
			index_add(c, which);
		}
	free(old);
}

static void
index_add(struct call *c, int which)
{
	struct call_index *x = &index_of[which];
	unsigned long h;

	if (!x->slot || x->n > x->mask)
		index_grow(x, which);
	h = key_hash(key_link(c, which), key_id(c, which)) & x->mask;
	c->hnext[which] = x->slot[h];
	x->slot[h] = c;
	x->n++;
}

static void
index_remove(struct call *c, int which)
{
	struct call_index *x = &index_of[which];
	struct call **pp;

	if (!x->slot)
		return;
	pp = &x->slot[key_hash(key_link(c, which), key_id(c, which)) & x->mask];
	for (; *pp; pp = &(*pp)->hnext[which])
		if (*pp == c) {
			*pp = c->hnext[which];
			x->n--;
			return;
		}
}

static struct call *
index_find(int which, const void *l, unsigned long id)
{
	struct call_index *x = &index_of[which];
	struct call *c;

	if (!x->slot)
		return NULL;
	for (c = x->slot[key_hash(l, id) & x->mask]; c; c = c->hnext[which])
		if (key_link(c, which) == l && key_id(c, which) == id)
			return c;
	return NULL;
}

/* The calls a link carries, in order of arrival: those its peer asked for
 * (ON_UP: c->up is the link) and those relayed over it (ON_DOWN: c->down).
 * A list's head keeps the tail as its prev. */
enum { ON_UP, ON_DOWN };

static void **
list_head(struct call *c, int side)
{
	return side == ON_UP ? &c->up->up_calls : &c->down->down_calls;
}

static void
list_add(struct call *c, int side)
{
	void **hp = list_head(c, side);
	struct call *head = *hp;

	c->next_on[side] = NULL;
	if (!head) {
		c->prev_on[side] = c;
		*hp = c;
		return;
	}
	c->prev_on[side] = head->prev_on[side];
	head->prev_on[side]->next_on[side] = c;
	head->prev_on[side] = c;
}

static void
list_remove(struct call *c, int side)
{
	void **hp = list_head(c, side);
	struct call *head = *hp;

	if (c == head)
		*hp = c->next_on[side];
	else
		c->prev_on[side]->next_on[side] = c->next_on[side];
	if (c->next_on[side])
		c->next_on[side]->prev_on[side] = c->prev_on[side];
	else if (c != head)
		((struct call *)*hp)->prev_on[side] = c->prev_on[side];
}

static struct call *
first_down_call(struct link *l)
{
	return l->down_calls;
}

/* A local client's answers are its calls' output, each call's bounded by
 * its window; the channels are read whether or not the client reads (one
 * client must not stall the others' calls), so while it does not read
 * (stopped with ^Z, or busy) its queue may hold a window for each of its
 * calls.  A client with many calls in flight (negotiator-host -e CMD
 * --all) would otherwise be cut off at OUT_HARD_LIMIT by a pause of a
 * second.  The limit goes down only once the queue is empty: the output
 * of calls that ended may still wait in it.  It never passes
 * OUT_HARD_LIMIT + MAX_CALLS * CALL_ROOM: a control link has at most
 * MAX_CALLS calls. */
static void
control_out_limit(struct link *l)
{
	size_t want = OUT_HARD_LIMIT + (size_t)l->ncalls * CALL_ROOM;

	if (l->kind == LINK_CONTROL && (want > l->out.limit || buf_len(&l->out) == 0))
		l->out.limit = want;
}

static void queue_timer_fired(struct timer *t, mtime_t now);

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
	buf_init(&c->errtext, (size_t)-1);
	timer_init(&c->queue_timer, queue_timer_fired, c);
	c->prev = NULL;
	c->next = calls;
	if (calls)
		calls->prev = c;
	calls = c;
	list_add(c, ON_UP);
	index_add(c, BY_UP);
	up->ncalls++;
	control_out_limit(up);
	daemon_touch_link(up);
	touch_call(c);
	return c;
}

/* a relayed call's far side */
static void
call_set_down(struct call *c, struct link *d, unsigned long id)
{
	c->down = d;
	c->down_id = id;
	d->ncalls++;
	list_add(c, ON_DOWN);
	index_add(c, BY_DOWN);
	daemon_touch_link(d);
}

static void
call_clear_down(struct call *c)
{
	if (!c->down)
		return;
	index_remove(c, BY_DOWN);
	list_remove(c, ON_DOWN);
	c->down->ncalls--;
	if (c->down->py_call == c)
		c->down->py_call = NULL;   /* its answer will be dropped */
	daemon_touch_link(c->down);
	c->down = NULL;
}

/* a served call's command runs: its pipes go to the loop */
static void
call_watch_child(struct call *c)
{
	watch(c->child.in, W_CALL, c, 0);
	watch(c->child.out, W_CALL, c, 0);
	watch(c->child.err, W_CALL, c, 0);
	index_add(c, BY_PID);
	c->by_pid = 1;
	touch_call(c);
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		unwatch(*fd);
		close(*fd);
		*fd = -1;
	}
}

static void
call_free(struct call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	todo_remove(&touched_calls, &c->touch);
	timer_stop(&c->queue_timer);
	close_fd(&c->child.in);
	close_fd(&c->child.out);
	close_fd(&c->child.err);
	if (c->by_pid)
		index_remove(c, BY_PID);
	buf_free(&c->stdin_q);
	buf_free(&c->text);
	buf_free(&c->pending);
	buf_free(&c->errtext);
	free_argv(c->argv);
	if (c->py && c->kind == CALL_EXEC)
		c->up->hold = 0;            /* the next python request may be read */
	index_remove(c, BY_UP);
	list_remove(c, ON_UP);
	c->up->ncalls--;
	control_out_limit(c->up);
	daemon_touch_link(c->up);
	call_clear_down(c);
	free(c);
}

static struct call *
call_by_up(struct link *l, unsigned long id)
{
	return index_find(BY_UP, l, id);
}

static struct call *
call_by_down(struct link *l, unsigned long id)
{
	struct call *c = index_find(BY_DOWN, l, id);

	return c && c->sent ? c : NULL;
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

static void relay_end(struct call *c, int code, const char *why);

/* A session on l ended: everything in flight over it fails (relayed
 * calls still waiting for its session wait on). */
static void
fail_calls_on(struct link *l, const char *why)
{
	struct call *c, *next;
	char reason[300];

	while ((c = l->up_calls) != NULL) {
		if (c->kind == CALL_RELAY)
			relay_end(c, 0, NULL);   /* the asking side is gone */
		else
			call_kill(c);
	}
	for (c = l->down_calls; c; c = next) {
		next = c->next_on[ON_DOWN];
		if (c->sent) {
			snprintf(reason, sizeof reason, "%s: %s", l->name, why);
			c->sent = 0;   /* that session is over: nothing to cancel there */
			relay_end(c, EXIT_AGENT, reason);
		}
	}
}

void
daemon_link_lost(struct link *l, const char *why)
{
	daemon_touch_link(l);
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
	/* before the lookup: a refused guest learns nothing about what exists */
	if (hooks->allowed && !hooks->allowed(l, argv[0])) {
		snprintf(why, sizeof why, "command %s not allowed for guest %s", argv[0],
		         hooks->guest_of ? hooks->guest_of(l) : "?");
		warn("%s: call %lu refused: %s", l->name, m->id, why);
		send_fail(l, m->id, EXIT_NOEXEC, why);
		free_argv(argv);
		return;
	}
	rc = command_find(argv[0], path, sizeof path);
	if (rc) {
		command_find_failure(rc, argv[0], why, sizeof why);
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
		call_watch_child(c);
		link_log(l, LOG_LVL_DEBUG, "call %lu: running %s (pid %ld)", m->id, path,
		      (long)c->child.pid);
		/* an empty output frame: "it runs" (the caller can tell a silent
		 * command from an agent that does not answer) */
		link_sendf(l, "out %lu ", m->id);
	}
	free_argv(argv);
}

static void
serve_text(struct link *l, unsigned long id, struct buf *text)
{
	struct call *c = call_new(CALL_TEXT, l, id);

	c->text = *text;
}

/* The command list as the peer may see it: only what it may run. */
static void
allowed_commands(struct link *l, struct buf *text)
{
	struct buf all;
	unsigned char *p, *nl;

	buf_init(&all, (size_t)-1);
	commands_list(&all);
	while (buf_len(&all)) {
		p = buf_ptr(&all);
		nl = memchr(p, '\n', buf_len(&all));   /* every name ends with one */
		*nl = '\0';
		if (!hooks->allowed || hooks->allowed(l, (const char *)p)) {
			buf_append(text, p, (size_t)(nl - p));
			buf_append(text, "\n", 1);
		}
		buf_consume(&all, (size_t)(nl - p) + 1);
	}
	buf_free(&all);
}

static void
serve_list(struct link *l, unsigned long id)
{
	struct buf text;

	buf_init(&text, (size_t)-1);
	allowed_commands(l, &text);
	serve_text(l, id, &text);
}

/* The peer acknowledged n bytes: what it may really acknowledge of them
 * (never more than was sent, whatever it claims; a bogus ack dies here). */
static unsigned long
ack_amount(unsigned long *unacked, unsigned long n)
{
	if (n > *unacked)
		n = *unacked;
	*unacked -= n;
	return n;
}

static int
window_ok(unsigned long held, size_t more)
{
	return held + more <= CALL_WINDOW;
}

static void pump_stdin(struct call *c);

/* Stdin data for the command: straight into its pipe while the pipe takes
 * it and nothing waits before it (no copy, no extra round of the loop),
 * the rest queued. */
static void
stdin_put(struct call *c, const unsigned char *data, size_t len)
{
	ssize_t n = buf_write_or_queue(&c->stdin_q, c->child.in, data, len);

	if (n > 0)
		c->in_delivered += (unsigned long)n;
	else if (n == -1)
		pump_stdin(c);   /* the command closed its stdin: pump_stdin says so */
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
			stdin_put(c, m->data, m->datalen);
		break;
	case M_EOF:
		c->stdin_eof = 1;
		break;
	case M_ACK:
		ack_amount(&c->out_unacked, m->num);
		break;
	case M_CANCEL:
		link_log(c->up, LOG_LVL_DEBUG, "call %lu cancelled by the peer", c->up_id);
		call_kill(c);
		break;
	default:
		break;
	}
}

/* ---- relaying local clients' calls ----------------------------------------- */

/*
 * A relayed call has one owner, the function that ends it: relay_end().
 * Everything else only reports failure (-1) to its caller, which ends the
 * call and stops touching it.  Frames toward the far side ("down") wait in
 * the call until its request is out; the ids differ on each side, so a
 * frame can grow by the id rewrite: data is split, a request is refused.
 */

/* End a relayed call: the asking side learns why (code 0: it asked for
 * the end itself), the far side is told to stop if the request went out. */
static void
relay_end(struct call *c, int code, const char *why)
{
	if (code)
		send_fail(c->up, c->up_id, code, why);
	if (c->sent && c->down->up)
		link_sendf(c->down, "cancel %lu", c->down_id);
	call_free(c);
}

/* Frames kept in the call until its request is out; -1 when over the
 * call's limit */
static int
relay_queue(struct call *c, const char *head, size_t hl, const void *data, size_t dl)
{
	const unsigned char *d = data;
	char count[16];

	do {
		size_t n = hl + dl > MAX_PAYLOAD ? MAX_PAYLOAD - hl : dl;
		int cl = snprintf(count, sizeof count, "%lu\n", (unsigned long)(hl + n));

		if (buf_len(&c->pending) + (size_t)cl + hl + n > c->pending.limit)
			return -1;
		buf_append(&c->pending, count, (size_t)cl);
		buf_append(&c->pending, head, hl);
		buf_append(&c->pending, d, n);
		if (n)
			d += n;   /* d may be NULL (no data): NULL + 0 is undefined */
		dl -= n;
	} while (dl > 0);
	return 0;
}

/* toward the far side; -1: no room for it (the caller ends the call) */
static int
relay_down(struct call *c, const char *head, size_t hl, const void *data, size_t dl)
{
	return c->sent ? link_send_data(c->down, head, hl, data, dl)
	               : relay_queue(c, head, hl, data, dl);
}

static void py_adopt(struct call *c);
static void py_next(struct link *d);

static void
relay_send_request(struct call *c)
{
	struct link *d = c->down;

	if (d->mode == LM_PYTHON) {   /* the far side turned out to be python */
		py_adopt(c);
		py_next(d);
		return;
	}
	if (c->py) {   /* its frames were given up for python's request */
		relay_end(c, EXIT_AGENT, "the peer changed from python-negotiator to negotiator "
		          "while the call waited; try again");
		return;
	}
	if (buf_append(&d->out, buf_ptr(&c->pending), buf_len(&c->pending)) < 0) {
		relay_end(c, EXIT_AGENT, "channel output queue full");
		return;
	}
	trace_frame("<-", d->name, buf_ptr(&c->pending), buf_len(&c->pending));
	buf_free(&c->pending);
	c->sent = 1;
	timer_stop(&c->queue_timer);
	daemon_touch_link(d);
}

static unsigned long relay_seq;

static void
relay_start(struct link *l, const struct msg *m)
{
	char target[MAX_NAME + 1], why[400], head[40];
	const char *reason;
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
	/* same request, our id, and no target: the channel has one peer */
	hl = snprintf(head, sizeof head, "%s %lu 0:,", msg_name(m->type), d->next_id);
	if ((size_t)hl + (size_t)(end - p) > MAX_PAYLOAD) {
		snprintf(why, sizeof why, "request too long: %lu bytes on the channel, at most %lu",
		         (unsigned long)hl + (unsigned long)(end - p), MAX_PAYLOAD);
		send_fail(l, m->id, EXIT_USAGE, why);
		return;
	}
	c = call_new(CALL_RELAY, l, m->id);
	call_set_down(c, d, d->next_id++);
	if (d->next_id > 4000000000UL)
		d->next_id = 1;
	c->queued_at = now_ms();
	timer_set(&c->queue_timer, c->queued_at + QUEUE_WAIT);
	/* what a python server would need instead of our frames */
	c->list = m->type == M_LIST;
	if (!c->list)
		c->argv = request_argv(m, target, sizeof target, &reason);
	c->seq = ++relay_seq;
	relay_queue(c, head, (size_t)hl, p, (size_t)(end - p));
	if (d->up)
		relay_send_request(c);
}

/* A local client writes stdin into the channel: while the channel's queue
 * is over its high water mark, that client is not read (see
 * link_wants_read), so local clients cannot pile data up in a channel. */
static void
throttle_client(struct call *c)
{
	struct link *l = c->up;

	if (buf_len(&c->down->out) < OUT_HIGH_WATER)
		return;
	l->throttle = c->down;
	if (!l->throttled) {
		l->throttled = 1;
		l->throttled_next = throttled;
		throttled = l;
	}
}

/* Counts more data bytes relayed against its window (*unacked); over it,
 * ends the relay saying why, and returns -1. */
static int
relay_window(struct call *c, unsigned long *unacked, size_t more, const char *why)
{
	if (!window_ok(*unacked, more)) {
		relay_end(c, EXIT_AGENT, why);
		return -1;
	}
	*unacked += more;
	return 0;
}

static void py_from_up(struct call *c, const struct msg *m);

static void
relay_from_up(struct call *c, const struct msg *m)
{
	char head[48];
	unsigned long n;
	int hl;

	if (c->py) {
		py_from_up(c, m);
		return;
	}
	switch (m->type) {
	case M_IN:
		if (relay_window(c, &c->down_unacked, m->datalen,
		                 "client overran the stdin window") < 0)
			return;
		hl = snprintf(head, sizeof head, "in %lu ", c->down_id);
		if (relay_down(c, head, (size_t)hl, m->data, m->datalen) < 0) {
			relay_end(c, EXIT_AGENT, "no room for the stdin toward the channel");
			return;
		}
		throttle_client(c);
		break;
	case M_EOF:
		hl = snprintf(head, sizeof head, "eof %lu", c->down_id);
		if (relay_down(c, head, (size_t)hl, NULL, 0) < 0)
			relay_end(c, EXIT_AGENT, "no room for the end of stdin toward the channel");
		break;
	case M_CANCEL:
		/* the far side sends nothing more for this call */
		relay_end(c, 0, NULL);
		break;
	case M_ACK:
		if ((n = ack_amount(&c->up_unacked, m->num)) == 0)
			break;
		hl = snprintf(head, sizeof head, "ack %lu %lu", c->down_id, n);
		if (relay_down(c, head, (size_t)hl, NULL, 0) < 0)
			relay_end(c, EXIT_AGENT, "no room for acknowledgements toward the channel");
		break;
	default:
		break;
	}
}

static void
relay_from_down(struct call *c, const struct msg *m)
{
	char head[48];
	unsigned long n;
	int hl;

	switch (m->type) {
	case M_OUT:
	case M_ERR:
		if (relay_window(c, &c->up_unacked, m->datalen,
		                 "peer overran the output window") < 0)
			return;
		hl = snprintf(head, sizeof head, "%s %lu ", msg_name(m->type), c->up_id);
		link_send_data(c->up, head, (size_t)hl, m->data, m->datalen);
		break;
	case M_ACK:
		if ((n = ack_amount(&c->down_unacked, m->num)) != 0)
			link_sendf(c->up, "ack %lu %lu", c->up_id, n);
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

static void py_answer(struct link *d, const struct msg *m);
static void py_serve(struct link *l, const struct msg *m);

/* "status ID NS(target)" on the control socket: what we know of target */
static void
serve_status(struct link *l, const struct msg *m)
{
	const unsigned char *p = m->data, *end = m->data + m->datalen, *s;
	char target[MAX_NAME + 1];
	struct buf text;
	size_t n;

	if (netstring_get(&p, end, &s, &n) != 0 || p != end || n > MAX_NAME || memchr(s, 0, n)) {
		send_fail(l, m->id, EXIT_AGENT, "malformed request");
		return;
	}
	if (!hooks->status) {
		send_fail(l, m->id, EXIT_AGENT, "this daemon keeps no status");
		return;
	}
	memcpy(target, s, n);
	target[n] = '\0';
	buf_init(&text, (size_t)-1);
	hooks->status(target, &text);
	serve_text(l, m->id, &text);
}

static void
on_request(struct link *l, const struct msg *m)
{
	struct buf text;

	if (call_by_up(l, m->id)) {
		link_sendf(l, "error duplicate call id %lu", m->id);
		return;
	}
	if (l->kind == LINK_CONTROL && l->ncalls >= MAX_CALLS) {
		send_fail(l, m->id, EXIT_AGENT, "too many calls in flight on this connection");
		return;
	}
	if (l->kind == LINK_CONTROL) {
		if (m->type == M_GUESTS) {
			buf_init(&text, (size_t)-1);
			if (hooks->targets)
				hooks->targets(&text);
			serve_text(l, m->id, &text);
		} else if (m->type == M_STATUS) {
			serve_status(l, m);
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
		serve_list(l, m->id);
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
	case M_STATUS:
		on_request(l, m);
		return;
	case M_JSON:
		if (l->quiet)
			py_serve(l, m);
		else
			py_answer(l, m);
		return;
	default:
		break;
	}
	if ((c = call_by_up(l, m->id)) != NULL) {
		touch_call(c);
		if (c->kind == CALL_RELAY)
			relay_from_up(c, m);
		else
			served_msg(c, m);
	} else if ((c = call_by_down(l, m->id)) != NULL) {
		touch_call(c);
		relay_from_down(c, m);
	} else {
		link_log(l, LOG_LVL_DEBUG, "%s for unknown call %lu ignored", msg_name(m->type), m->id);
	}
}

static void
send_queued_requests(struct link *l)
{
	struct call *c, *next;

	for (c = l->down_calls; c; c = next) {
		next = c->next_on[ON_DOWN];
		if (!c->sent)
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
				link_log(l, LOG_LVL_WARN, "peer session changed; failing calls in flight");
			fail_calls_on(l, "session with the peer was reset");
		} else if (ev == EV_UP) {
			if (l->kind == LINK_CONTROL) {
				link_log(l, LOG_LVL_DEBUG, "session up");
				l->sync_held = buf_len(&l->out);   /* our sync, just queued */
			}
			else
				link_log(l, LOG_LVL_INFO, "connected");
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
		c->out_bytes += (unsigned long)n;
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

/* Acks are batched, one per quarter window: the sender waits only with a
 * whole window unacknowledged, so none is ever held back by this, and
 * each ack is a frame both daemons and the client handle. */
static void
served_acks(struct call *c)
{
	if (c->in_delivered >= CALL_WINDOW / 4) {
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

/* ---- python streams ----------------------------------------------------------- */

/*
 * A channel in python mode (link.c found a python-negotiator peer) carries
 * one JSON request and then its answer, in lockstep, and nothing else.
 *
 * Relayed calls toward a python server: the call's stdin is collected (and
 * acknowledged to the local client at once) until it ends; then the call
 * waits its turn (oldest first) for the one request in flight.  The answer
 * turns the call into a CALL_TEXT, which hands stdout, the error text and
 * the exit status to the client as a native agent would.  A call given up
 * (cancel, timeout) cannot be stopped over there: python has no cancel.  Its
 * answer is awaited and dropped before the next request goes out.
 *
 * Calls served for a python client: the request runs like a native one, but
 * stdout is collected (stderr goes nowhere, as with python) and answered in
 * one frame, with python's texts for failures.  The link reads no further
 * request until then (l->hold).
 */

/* Native frames queued for the far side before it turned out to be python:
 * stdin is kept for the request, and the client's stdin is acked. */
static void
py_adopt(struct call *c)
{
	const unsigned char *p, *payload;
	size_t plen, used;
	struct msg m;
	const char *why;
	int first = 1;

	if (c->py)
		return;
	c->py = 1;
	c->stdin_q.limit = PY_MAX_FRAME;
	c->stdin_eof = c->list;
	p = buf_ptr(&c->pending);
	while (frame_parse(p, buf_len(&c->pending) - (size_t)(p - buf_ptr(&c->pending)),
	                   &payload, &plen, &used) == FRAME_OK) {
		p += used;
		if (first || msg_parse(payload, plen, &m, &why) < 0) {
			first = 0;    /* the request itself */
			continue;
		}
		if (m.type == M_IN)
			buf_append(&c->stdin_q, m.data, m.datalen);
		else if (m.type == M_EOF)
			c->stdin_eof = 1;
	}
	buf_free(&c->pending);
	if (c->down_unacked)
		link_sendf(c->up, "ack %lu %lu", c->up_id, c->down_unacked);
	c->down_unacked = 0;
}

/* The next call's request, if none is in flight on d. */
static void
py_next(struct link *d)
{
	struct call *c, *best;
	struct buf req;
	char why[200];

	while (!d->py_inflight && d->up && d->mode == LM_PYTHON) {
		for (best = NULL, c = d->down_calls; c; c = c->next_on[ON_DOWN])
			if (c->kind == CALL_RELAY && c->py && !c->sent &&
			    c->stdin_eof && (!best || c->seq < best->seq))
				best = c;
		if (!best)
			return;
		if (!best->list && (!best->argv || !best->argv[0])) {
			relay_end(best, EXIT_AGENT, "malformed request");
			continue;
		}
		buf_init(&req, (size_t)-1);
		if (best->list)
			py_request_list(&req);
		else
			py_request_exec(&req, best->argv, buf_ptr(&best->stdin_q),
			                buf_len(&best->stdin_q), buf_len(&best->stdin_q) > 0);
		buf_free(&best->stdin_q);
		if (buf_len(&req) > PY_MAX_FRAME) {
			snprintf(why, sizeof why, "request too long for a python-negotiator peer: "
			         "%lu bytes of JSON, at most %lu", (unsigned long)buf_len(&req),
			         PY_MAX_FRAME);
			buf_free(&req);
			relay_end(best, EXIT_USAGE, why);
			continue;
		}
		if (link_send_json(d, buf_ptr(&req), buf_len(&req)) < 0) {
			buf_free(&req);
			relay_end(best, EXIT_AGENT, "channel output queue full");
			continue;
		}
		buf_free(&req);
		best->sent = 1;
		d->py_inflight = 1;
		d->py_call = best;
		/* "the agent has it": a timeout is then the command's, not a dead agent's */
		link_sendf(best->up, "out %lu ", best->up_id);
	}
}

static void
py_from_up(struct call *c, const struct msg *m)
{
	char why[200];

	switch (m->type) {
	case M_IN:
		if (c->sent || c->stdin_eof)
			break;
		if (buf_append(&c->stdin_q, m->data, m->datalen) < 0) {
			snprintf(why, sizeof why, "stdin too long for a python-negotiator peer "
			         "(it takes all of it in one frame, at most %lu bytes)", PY_MAX_FRAME);
			relay_end(c, EXIT_USAGE, why);
			return;
		}
		link_sendf(c->up, "ack %lu %lu", c->up_id, (unsigned long)m->datalen);
		break;
	case M_EOF:
		c->stdin_eof = 1;
		py_next(c->down);
		break;
	case M_CANCEL:
		if (c->sent)
			link_log(c->down, LOG_LVL_INFO, "a call was given up, but python-negotiator "
			         "cannot cancel: its answer will be dropped");
		relay_end(c, 0, NULL);
		break;
	default:
		break;
	}
}

/* A python server's answer: the call in flight becomes a CALL_TEXT. */
static void
py_answer(struct link *d, const struct msg *m)
{
	struct call *c = d->py_call;
	const char *why = NULL;
	char text[200];

	if (!d->py_inflight) {
		link_log(d, LOG_LVL_WARN, "an answer nobody asked for: ignored");
		return;
	}
	d->py_inflight = 0;
	d->py_call = NULL;
	if (c) {
		if (m->datalen == 0) {
			snprintf(text, sizeof text, "the python agent's answer is %lu bytes, over the "
			         "limit of %lu\n", m->num, PY_MAX_FRAME);
			buf_append(&c->errtext, text, strlen(text));
			c->text_code = EXIT_AGENT;
		} else {
			c->text_code = py_parse_answer(m->data, m->datalen, c->list, &c->text,
			                               &c->errtext, &why);
			if (why) {
				buf_clear(&c->text);
				snprintf(text, sizeof text, "malformed answer from the python agent: %s\n",
				         why);
				buf_append(&c->errtext, text, strlen(text));
				c->text_code = EXIT_AGENT;
			}
		}
		c->kind = CALL_TEXT;
		c->out_unacked = 0;
		call_clear_down(c);
		touch_call(c);
	}
	py_next(d);
}

static void
py_send_answer(struct link *l, struct buf *json)
{
	struct buf e;
	char text[200];

	if (buf_len(json) > PY_MAX_FRAME) {
		snprintf(text, sizeof text, "answer too long for python-negotiator's protocol: "
		         "%lu bytes of JSON, at most %lu", (unsigned long)buf_len(json), PY_MAX_FRAME);
		buf_init(&e, (size_t)-1);
		py_answer_error(&e, text, strlen(text));
		link_send_json(l, buf_ptr(&e), buf_len(&e));
		buf_free(&e);
	} else {
		link_send_json(l, buf_ptr(json), buf_len(json));
	}
}

static void
py_fail_n(struct link *l, const void *text, size_t n)
{
	struct buf b;

	buf_init(&b, (size_t)-1);
	py_answer_error(&b, text, n);
	py_send_answer(l, &b);
	buf_free(&b);
}

static void
py_fail(struct link *l, const char *text)
{
	py_fail_n(l, text, strlen(text));
}

/* A python client's request, served. */
static void
py_serve(struct link *l, const struct msg *m)
{
	char path[4096], why[600], text[300], *name, *slash;
	struct buf input, b, ans;
	char **argv = NULL;
	struct call *c;
	int rc, has_input;

	if (!l->serves) {
		py_fail(l, "this channel does not accept requests");
		return;
	}
	if (m->datalen == 0) {
		snprintf(why, sizeof why, "request of %lu bytes is over the limit of %lu", m->num,
		         PY_MAX_FRAME);
		py_fail(l, why);
		return;
	}
	buf_init(&input, (size_t)-1);
	rc = py_parse_request(m->data, m->datalen, &argv, &input, &has_input, why, sizeof why);
	if (rc == PY_BAD) {
		link_log(l, LOG_LVL_INFO, "python request refused: %s", why);
		py_fail(l, why);
		goto out;
	}
	if (rc == PY_LIST) {
		buf_init(&b, (size_t)-1);
		buf_init(&ans, (size_t)-1);
		allowed_commands(l, &b);
		py_answer_list(&ans, buf_ptr(&b), buf_len(&b));
		py_send_answer(l, &ans);
		buf_free(&b);
		buf_free(&ans);
		goto out;
	}
	/* python runs basename(args[0]) */
	name = argv[0];
	while ((slash = strrchr(name, '/')) != NULL && slash[1] == '\0')
		*slash = '\0';
	if ((slash = strrchr(name, '/')) != NULL)
		memmove(name, slash + 1, strlen(slash + 1) + 1);
	if (!valid_command_name(name, strlen(name))) {
		snprintf(why, sizeof why, "External command isn't available!\n\nCommand:\n%s",
		         escape_text(text, sizeof text, name, strlen(name)));
		py_fail(l, why);
		goto out;
	}
	if (hooks->allowed && !hooks->allowed(l, name)) {
		snprintf(why, sizeof why, "command %s not allowed for guest %s", name,
		         hooks->guest_of ? hooks->guest_of(l) : "?");
		warn("%s: python call refused: %s", l->name, why);
		py_fail(l, why);
		goto out;
	}
	rc = command_find(name, path, sizeof path);
	if (rc) {
		buf_init(&b, (size_t)-1);
		if (rc == EXIT_NOTFOUND) {
			py_exit_message(&b, 0, EXIT_NOTFOUND, argv, NULL, 0);
		} else {
			snprintf(why, sizeof why, "[Errno 13] Permission denied: '%s'", path);
			buf_append(&b, why, strlen(why));
		}
		py_fail_n(l, buf_ptr(&b), buf_len(&b));
		buf_free(&b);
		goto out;
	}
	c = call_new(CALL_EXEC, l, 0);
	c->py = 1;
	c->argv = argv;
	argv = NULL;
	rc = child_spawn(&c->child, path, c->argv, hooks->guest_of ? hooks->guest_of(l) : NULL,
	                 why, sizeof why);
	if (rc) {
		py_fail(l, why);
		call_free(c);
		goto out;
	}
	call_watch_child(c);
	link_log(l, LOG_LVL_DEBUG, "python call: running %s (pid %ld)", path, (long)c->child.pid);
	c->stdin_q.limit = (size_t)-1;
	c->text.limit = PY_MAX_FRAME;
	if (has_input)
		buf_append(&c->stdin_q, buf_ptr(&input), buf_len(&input));
	c->stdin_eof = 1;
	l->hold = 1;
out:
	buf_free(&input);
	free_argv(argv);
}

/* A served python call's output: stdout kept for the answer, stderr
 * dropped (python sends it to its log); beyond the limit, counted only. */
static void
py_pump(struct call *c, int *fd, int keep)
{
	char chunk[65536];
	ssize_t n;

	do
		n = read(*fd, chunk, sizeof chunk);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		if (keep && buf_append(&c->text, chunk, (size_t)n) < 0)
			c->text_code = 1;   /* over the limit */
	} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
		close_fd(fd);
	}
}

/* The command is over: its answer, then the next request may be read. */
static void
py_served(struct call *c)
{
	struct link *l = c->up;
	struct buf b;
	char text[200];
	int sig, code = exit_code_of(c->child.status, &sig);

	buf_init(&b, (size_t)-1);
	if (c->text_code) {
		snprintf(text, sizeof text, "output too long for python-negotiator's protocol "
		         "(at most %lu bytes)", PY_MAX_FRAME);
		py_answer_error(&b, text, strlen(text));
	} else if (code == 0 && !sig) {
		py_answer_output(&b, buf_ptr(&c->text), buf_len(&c->text));
	} else {
		struct buf t;

		buf_init(&t, (size_t)-1);
		py_exit_message(&t, sig, code, c->argv, buf_ptr(&c->text), buf_len(&c->text));
		py_answer_error(&b, (const char *)buf_ptr(&t), buf_len(&t));
		buf_free(&t);
	}
	py_send_answer(l, &b);
	buf_free(&b);
	link_log(l, LOG_LVL_DEBUG, "python call finished (%s %d)", sig ? "signal" : "status", code);
	call_free(c);   /* lets go of l->hold */
	process_link(l);   /* a request that came meanwhile */
}

/* Returns 1 when the call finished and was freed. */
static int
served_progress(struct call *c)
{
	char head[40];
	int hl, sig, code;

	if (c->kind == CALL_TEXT) {
		/* the text as stdout, then errtext as stderr, then the status */
		struct buf *t = buf_len(&c->text) ? &c->text : &c->errtext;

		while (buf_len(t) && c->out_unacked < CALL_WINDOW && link_out_room(c->up)) {
			size_t n = buf_len(t);

			if (n > DATA_CHUNK)
				n = DATA_CHUNK;
			hl = snprintf(head, sizeof head, "%s %lu ", t == &c->text ? "out" : "err",
			              c->up_id);
			link_send(c->up, head, (size_t)hl, buf_ptr(t), n);
			buf_consume(t, n);
			c->out_unacked += n;
			if (!buf_len(t))
				t = &c->errtext;
		}
		if (buf_len(&c->text) || buf_len(&c->errtext))
			return 0;
		link_sendf(c->up, "exit %lu status %d", c->up_id, c->text_code);
		call_free(c);
		return 1;
	}
	if (c->py) {
		if (!c->child.reaped || c->child.out >= 0 || c->child.err >= 0)
			return 0;
		py_served(c);
		return 1;
	}
	served_acks(c);
	if (!c->child.reaped || c->child.out >= 0 || c->child.err >= 0)
		return 0;
	code = exit_code_of(c->child.status, &sig);
	link_sendf(c->up, "exit %lu %s %d", c->up_id, sig ? "signal" : "status", code);
	link_log(c->up, LOG_LVL_DEBUG, "call %lu finished (%s %d); output %lu bytes, paused "
	         "%lu times on a full window, %lu on a full queue", c->up_id,
	         sig ? "signal" : "status", code, c->out_bytes, c->stalls_window, c->stalls_queue);
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
		pgids_remove(pid);
		if ((c = index_find(BY_PID, NULL, (unsigned long)pid)) != NULL &&
		    c->kind == CALL_EXEC) {
			index_remove(c, BY_PID);   /* the number may be given again */
			c->by_pid = 0;
			c->child.reaped = 1;
			c->child.status = status;
			touch_call(c);
		}
	}
}

/* Relayed calls whose channel never came up fail instead of hanging; one
 * waiting its turn on a python stream that is up waits on. */
static void
queue_timer_fired(struct timer *t, mtime_t now)
{
	struct call *c = t->arg;
	char why[300];

	if (c->sent)
		return;
	if (c->down->up) {
		timer_set(t, now + 1000);
		return;
	}
	snprintf(why, sizeof why, "%s: no agent answered within %d seconds", c->down->name,
	         QUEUE_WAIT / 1000);
	relay_end(c, EXIT_AGENT, why);
}

/* ---- the loop ------------------------------------------------------------------- */

/* Is uid (whose current group is gid) a member of group g?  By its
 * effective group, its primary group and the group database; groups the
 * process gained otherwise (newgrp) are not seen. */
static int
in_group(uid_t uid, gid_t gid, gid_t g)
{
	struct passwd *pw;
	struct group *gr;
	char name[256], **m;

	if (gid == g)
		return 1;
	if (!(pw = getpwuid(uid)) || !pw->pw_name)
		return 0;
	if (pw->pw_gid == g)
		return 1;
	strncpy(name, pw->pw_name, sizeof name - 1);
	name[sizeof name - 1] = '\0';
	if (!(gr = getgrgid(g)))
		return 0;
	for (m = gr->gr_mem; m && *m; m++)
		if (strcmp(*m, name) == 0)
			return 1;
	return 0;
}

/* The connected peer's user must be root, ours, or (when the socket's
 * mode lets its group in) in that group.  The socket file's mode is one
 * more gate, not the only one: a socket made 0666 lets nobody else in.
 * Without SO_PEERCRED or getpeereid() the file's mode is all there is. */
static int
client_allowed(int fd, char *why, size_t whylen)
{
	char who[96], me[96];
	struct group *gr;
	uid_t uid;
	gid_t gid;

	if (compat_peer_ids(fd, &uid, &gid) < 0) {
		if (errno == ENOSYS)
			return 1;
		snprintf(why, whylen, "unable to tell who it is: %s", strerror(errno));
		return 0;
	}
	if (uid == 0 || uid == geteuid() || (group_may && in_group(uid, gid, socket_gid)))
		return 1;
	user_label((unsigned long)uid, who, sizeof who);
	me[0] = '\0';
	if (geteuid() != 0) {
		strcpy(me, ", ");
		user_label((unsigned long)geteuid(), me + 2, sizeof me - 2);
	}
	gr = group_may ? getgrgid(socket_gid) : NULL;
	if (gr)
		snprintf(why, whylen, "%s may not use the daemon on %s: only root%s and group %s "
		         "may (usermod -a -G %s USER, then log in again)", who, listen_path, me,
		         gr->gr_name, gr->gr_name);
	else
		snprintf(why, whylen, "%s may not use the daemon on %s: only root%s may (the "
		         "daemon's --control-mode 0660 --control-group GROUP lets a group in)",
		         who, listen_path, me);
	return 0;
}

/* A refused client gets a session and the failure of call 1 (the id a
 * command-line client uses), so that it can tell its user why; then the
 * connection is closed at once, before anything it sent is read. */
static void
refuse_client(int fd, const char *why)
{
	char nonce[17], hello[40], fail[800], frames[900];
	int hl, fl, n;

	warn("refused a local client: %s", why);
	random_nonce(nonce);
	hl = snprintf(hello, sizeof hello, "hello %d %s", PROTOCOL_VERSION, nonce);
	fl = snprintf(fail, sizeof fail, "fail 1 %d permission denied: %s", EXIT_AGENT, why);
	if (fl >= (int)sizeof fail)
		fl = (int)sizeof fail - 1;
	n = snprintf(frames, sizeof frames, "%d\n%s%d\n%.*s", hl, hello, fl, fl, fail);
	if (n > 0 && n < (int)sizeof frames && write(fd, frames, (size_t)n) < 0)
		debug("unable to tell the refused client why: %s", strerror(errno));
	close(fd);
}

static void link_ready(struct link *l, int mask);

/* One connection per call: a few at a time (a burst of CLI calls costs
 * fewer wakeups), but one when the backend's wakeups are cheap (epoll)
 * and an accept() that fails costs as much as one. */
static void
accept_clients(void)
{
	struct link *l;
	char name[64], why[700];
	static unsigned long serial;
	int fd, n;

	for (n = strcmp(loop_name(), "epoll") == 0 ? 63 : 0; n < 64; n++) {
		fd = compat_accept4(listen_fd, CX_CLOEXEC | CX_NONBLOCK);
		if (fd < 0)
			return;
		if (!client_allowed(fd, why, sizeof why)) {
			refuse_client(fd, why);
			continue;
		}
		l = xmalloc(sizeof *l);
		snprintf(name, sizeof name, "client %lu", ++serial);
		link_init(l, LINK_CONTROL, fd, name);
		l->socket = 1;
		daemon_add_link(l);
		debug("%s: connected", name);
		/* a client asks as soon as it connects: its request is most
		 * likely there already, and a wait for it would cost a wakeup */
		link_ready(l, LOOP_READ);
	}
}

/* A local client that went away (or spoke garbage): its calls end, its
 * link is freed. */
static void
drop_client(struct link *l)
{
	fail_calls_on(l, "client went away");
	unlink_link(l);
	link_detach(l);
	free(l);
}

/* Backpressure: a peer whose answers pile up unread is not read either, so
 * what one link holds stays bounded (OUT_READ_STOP + the answers to one
 * buffer of requests).  Local clients stop earlier, at the high water mark,
 * and also while the channel their stdin goes to is that full. */
static int
link_wants_read(struct link *l)
{
	if (l->fd < 0 || l->paused || l->dead || l->hold)
		return 0;
	if (l->kind != LINK_CONTROL)
		return buf_len(&l->out) < OUT_READ_STOP;
	if (l->throttle && buf_len(&l->throttle->out) < OUT_HIGH_WATER)
		l->throttle = NULL;
	return !l->throttle && link_out_room(l);
}

static int
link_wants_write(const struct link *l)
{
	if (l->fd < 0 || l->dead || l->sync_held)
		return 0;
	return l->paused ? l->pause_wake : buf_len(&l->out) > 0;
}

/* l's output queue went below its high water mark: what it held back may
 * go on (its commands' output, clients sending stdin into it) */
static void
room_again(struct link *l)
{
	struct call *c;
	struct link **pp, *t;

	for (c = l->up_calls; c; c = c->next_on[ON_UP])
		touch_call(c);
	for (pp = &throttled; (t = *pp) != NULL;) {
		if (t->throttle == l)
			t->throttle = NULL;
		if (t->throttle) {
			pp = &t->throttled_next;
			continue;
		}
		*pp = t->throttled_next;   /* no longer held back */
		t->throttled = 0;
		daemon_touch_link(t);
	}
}

/* A command-line client sends its request with its hello, and needs our
 * sync for nothing until the call's first frame: they go together, one
 * write and one wakeup of the client less per call. */
static int
sync_waits(struct link *l)
{
	if (l->sync_held && (l->ncalls == 0 || buf_len(&l->out) != l->sync_held))
		l->sync_held = 0;
	return l->sync_held > 0;
}

static void
flush_link(struct link *l)
{
	size_t before = buf_len(&l->out);

	if (l->fd < 0 || l->paused || l->dead || !before || sync_waits(l))
		return;
	if (link_flush(l) < 0) {
		daemon_link_lost(l, strerror(errno));
		return;
	}
	if (!buf_len(&l->out))
		control_out_limit(l);
	if (before >= OUT_HIGH_WATER && buf_len(&l->out) < OUT_HIGH_WATER)
		room_again(l);
}

static void
link_timer_fired(struct timer *t, mtime_t now)
{
	(void)now;
	daemon_touch_link(t->arg);
}

/* What a touched link has to do: timers, frames read, output; then what
 * it waits for (descriptor, deadline) is told to the loop. */
static void
settle_link(struct link *l, mtime_t now)
{
	mtime_t d;
	int mask;

	if (l->kind == LINK_CONTROL && l->dead) {
		drop_client(l);
		return;
	}
	link_timers(l, now, l->ncalls > 0);
	if (l->fd >= 0 && !l->paused && !l->dead)
		process_link(l);
	if (l->kind == LINK_CONTROL && l->dead) {
		drop_client(l);
		return;
	}
	flush_link(l);
	if (l->ncalls == 0) {   /* an idle link holds no buffers */
		buf_release(&l->in);
		buf_release(&l->out);
	}
	if (l->fd != l->watched_fd)
		link_closing(l);
	mask = (link_wants_read(l) ? LOOP_READ : 0) | (link_wants_write(l) ? LOOP_WRITE : 0);
	if (l->fd >= 0) {
		watch(l->fd, W_LINK, l, mask);
		l->watched_fd = l->fd;
	}
	d = link_deadline(l, now, l->ncalls > 0);
	if (TIME_BEFORE(d, now + 3600000UL))
		timer_set(&l->timer, d);
	else
		timer_stop(&l->timer);
}

/* What a touched call has to do; then what its pipes wait for. */
static void
settle_call(struct call *c)
{
	int room;

	if (c->kind == CALL_RELAY)
		return;
	if (c->kind == CALL_EXEC && c->py && c->stdin_eof && buf_len(&c->stdin_q) == 0)
		close_fd(&c->child.in);
	if (served_progress(c))
		return;    /* over and freed */
	if (c->kind != CALL_EXEC)
		return;
	room = c->py || (c->up->up && link_out_room(c->up) && c->out_unacked < CALL_WINDOW);
	if (!room && !c->out_paused && c->up->up) {
		if (c->out_unacked >= CALL_WINDOW)
			c->stalls_window++;
		else
			c->stalls_queue++;
	}
	c->out_paused = !room;
	loop_watch(c->child.out, room ? LOOP_READ : 0);
	loop_watch(c->child.err, room ? LOOP_READ : 0);
	loop_watch(c->child.in, buf_len(&c->stdin_q) ? LOOP_WRITE : 0);
}

static void
settle(void)
{
	mtime_t now = now_ms();
	struct todo *t;

	for (;;) {
		if ((t = todo_take(&touched_links)) != NULL)
			settle_link(TODO_OWNER(t, struct link), now);
		else if ((t = todo_take(&touched_calls)) != NULL)
			settle_call(TODO_OWNER(t, struct call));
		else
			return;
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
		} else {
			if (sig == SIGHUP)
				log_reopen();   /* first: what the hook logs goes there */
			if (hooks->signal)
				hooks->signal(sig);
		}
	}
}

static void
link_ready(struct link *l, int mask)
{
	int rc;

	daemon_touch_link(l);
	if (mask & LOOP_WRITE) {
		if (l->paused && l->pause_wake)
			l->woke = 1;     /* the tick hook looks at the port */
		else
			flush_link(l);
	}
	/* asked again: links served earlier in this round may have filled
	 * what this one would write to */
	if ((mask & LOOP_READ) && link_wants_read(l)) {
		rc = link_read(l);
		if (rc == 0)
			daemon_link_lost(l, "connection closed");
		else if (rc < 0)
			daemon_link_lost(l, strerror(errno));
	}
}

static void
call_ready(struct call *c, int fd, int mask)
{
	touch_call(c);
	if (c->kind != CALL_EXEC)
		return;
	if ((mask & LOOP_READ) && fd == c->child.out) {
		if (c->py)
			py_pump(c, &c->child.out, 1);
		else if (c->up->up && link_out_room(c->up))
			pump_output(c, &c->child.out, "out");
	} else if ((mask & LOOP_READ) && fd == c->child.err) {
		if (c->py)
			py_pump(c, &c->child.err, 0);
		else if (c->up->up && link_out_room(c->up))
			pump_output(c, &c->child.err, "err");
	} else if ((mask & LOOP_WRITE) && fd == c->child.in) {
		pump_stdin(c);
	}
}

/* every ready descriptor to its owner */
static void
dispatch(int n)
{
	int i, fd, mask;

	for (i = 0; i < n; i++) {
		fd = loop_ready(i, &mask);
		if (!mask || fd >= nwatchers)
			continue;    /* unwatched since the wait */
		switch (watchers[fd].kind) {
		case W_SIGNAL:
			handle_signals();
			break;
		case W_LISTEN:
			if (!stopping)
				accept_clients();
			break;
		case W_LINK:
			link_ready(watchers[fd].obj, mask);
			break;
		case W_CALL:
			call_ready(watchers[fd].obj, fd, mask);
			break;
		case W_OTHER:
			watchers[fd].fn(fd, mask, watchers[fd].obj);
			break;
		default:
			break;
		}
	}
}

/* --pid-file: written once the control socket listens (so that an init
 * script that waits for it knows the daemon is up), through a temporary
 * file and rename() (a reader never sees it half written); removed at a
 * clean exit while it still names this process. */
const char *daemon_pid_file;
static int pid_file_written;

static void
pid_file_write(void)
{
	char line[32], *tmp;
	int fd, n, ok, err;

	if (!daemon_pid_file)
		return;
	tmp = xmalloc(strlen(daemon_pid_file) + 5);
	strcpy(tmp, daemon_pid_file);
	strcat(tmp, ".new");
	n = sprintf(line, "%ld\n", (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY, 0644);
	ok = fd >= 0 && write(fd, line, (size_t)n) == n;
	err = ok ? 0 : (errno ? errno : EIO);   /* before close() can change it */
	if (fd >= 0 && close(fd) < 0 && ok) {
		ok = 0;
		err = errno;
	}
	if (ok && rename(tmp, daemon_pid_file) < 0) {
		ok = 0;
		err = errno;
	}
	if (!ok) {
		error("unable to write the pid file %s: %s", daemon_pid_file, strerror(err));
		unlink(tmp);
		if (listen_path)
			unlink(listen_path);
		free(tmp);
		exit(EXIT_AGENT);
	}
	free(tmp);
	pid_file_written = 1;
}

static void
pid_file_remove(void)
{
	char line[32];
	FILE *f;
	int ours = 0;

	if (!pid_file_written)
		return;
	f = fopen(daemon_pid_file, "r");
	if (f) {
		ours = fgets(line, sizeof line, f) && atol(line) == (long)getpid();
		fclose(f);
	}
	if (ours)
		unlink(daemon_pid_file);
	pid_file_written = 0;
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
	pid_file_remove();
	pgids_stop();
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

/* Once, before the first daemon_step(). */
void
daemon_init(const struct daemon_hooks *h)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGIO, SIGUSR1, 0 };

	hooks = h;
	raise_fd_limit();
	sig_setup(sigs);
	if (loop_open(daemon_event_loop) < 0)
		fatal("unable to start the %s event loop: %s",
		      daemon_event_loop ? daemon_event_loop : "select",
		      errno == EINVAL ? "not built into this binary" : strerror(errno));
	debug("event loop: %s", loop_name());
	link_touch_hook = daemon_touch_link;
	link_closing_hook = link_closing;
	watch(sig_fd(), W_SIGNAL, NULL, LOOP_READ);
	if (listen_fd >= 0)
		watch(listen_fd, W_LISTEN, NULL, LOOP_READ);
}

/* One round of the loop: due timers, the touched links and calls settled,
 * one wait of at most max_wait ms (no limit but the timers' when
 * negative), the I/O it found, settled too.  Returns 0 once the daemon is
 * stopping (SIGTERM or SIGINT). */
int
daemon_step(long max_wait)
{
	mtime_t now = now_ms(), deadline = hooks->tick(now);
	long wait;
	int n;

	deadline = timers_run(now, deadline);
	settle();
	if (stopping)
		return 0;
	now = now_ms();
	wait = TIME_BEFORE(now, deadline) ? (long)(deadline - now) : 0;
	if (max_wait >= 0 && wait > max_wait)
		wait = max_wait;
	n = loop_wait(wait);
	if (n < 0) {
		if (errno != EINTR)
			fatal("%s: %s", loop_name(), strerror(errno));
		return !stopping;
	}
	dispatch(n);
	settle();
	return !stopping;
}

/* The end: running commands are killed, every call and every local
 * client's link is freed (channel links belong to the caller; they are
 * left marked dead).  The event loop stays: a caller that goes on (the
 * fuzzer, one input after another) goes on with it.  Returns how many
 * calls were still there. */
int
daemon_fini(void)
{
	struct link *l, *next;
	int n = 0;

	shutdown_all();
	while (calls) {
		call_kill(calls);
		n++;
	}
	for (l = links; l; l = next) {
		next = l->next;
		if (l->kind == LINK_CONTROL)
			drop_client(l);
	}
	return n;
}

int
daemon_run(const struct daemon_hooks *h)
{
	daemon_init(h);
	pid_file_write();
	while (daemon_step(-1))
		;
	daemon_fini();
	return 0;
}
