/*
 * tests/fakehost.c: a fast fake host daemon for the fan-out tests: it
 * listens on a control socket and answers at once, for N guests that do not
 * exist (vm0001 ... vmN), so that the client's own cost shows.
 *
 *   fakehost SOCKET N [--delay MS] [--stats FILE] [--mute-list]
 *
 * "guests" lists vm0001 to vmN (4 digits at least); "list" answers "a\nb\n";
 * "exec" on a listed guest answers like echo-args ("[ARG]" a line for each
 * argument after the command), and exits with status 0, or with status K
 * for the command "exitn K"; "exec" of "silent" is never answered; an
 * unknown guest gets "fail ID 125 no such guest".  With --delay, each
 * answer's output comes MS milliseconds after its request, and its exit
 * 2 ms later, on its own (the client must not wait for more to happen
 * before it starts the next call).  When a client leaves,
 * --stats FILE gets "calls C max-in-flight M" (the most calls it had
 * waiting for an answer at once).  --mute-list: "guests" is never answered.  One client at a time; runs until killed.
 */
#include "negotiator.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PENDING 4096

struct pending {
	unsigned long id;
	mtime_t due;
	int code;
	int output_sent;
	struct buf out;
};

static struct pending pend[MAX_PENDING];
static int npend, inflight, max_inflight;
static unsigned long ncalls;
static int nguests;
static long delay_ms;
static int mute_list;

static int
guest_index(const unsigned char *s, size_t n)
{
	char name[16];
	int i;

	if (n < 3 || n > 10 || memcmp(s, "vm", 2) != 0)
		return -1;
	memcpy(name, s, n);
	name[n] = '\0';
	i = atoi(name + 2);
	return i >= 1 && i <= nguests ? i : -1;
}

/* 1 once the call is answered in full */
static int
answer(struct link *l, struct pending *p)
{
	char head[32];
	int hl = sprintf(head, "out %lu ", p->id);

	if (!p->output_sent) {
		link_send(l, head, (size_t)hl, NULL, 0);
		if (buf_len(&p->out))
			link_send_data(l, head, (size_t)hl, buf_ptr(&p->out), buf_len(&p->out));
		p->output_sent = 1;
		if (delay_ms) {
			p->due += 2;
			return 0;
		}
	}
	link_sendf(l, "exit %lu status %d", p->id, p->code);
	buf_free(&p->out);
	return 1;
}

static void
on_exec(struct link *l, const struct msg *m)
{
	const unsigned char *p = m->data, *end = m->data + m->datalen, *s;
	struct pending *q;
	size_t n;
	int k = 0;

	ncalls++;
	if (netstring_get(&p, end, &s, &n) != 0 || guest_index(s, n) < 0) {
		link_sendf(l, "fail %lu 125 no such guest", m->id);
		return;
	}
	if (npend == MAX_PENDING) {
		link_sendf(l, "fail %lu 125 too many calls", m->id);
		return;
	}
	q = &pend[npend++];
	q->id = m->id;
	q->due = now_ms() + (mtime_t)delay_ms;
	q->code = 0;
	q->output_sent = 0;
	buf_init(&q->out, MAX_PAYLOAD);
	while (netstring_get(&p, end, &s, &n) == 0) {
		if (k == 0 && n == 6 && memcmp(s, "silent", 6) == 0)
			q->due = now_ms() + 86400000UL;
		if (k == 1 && q->code == -1)
			q->code = atoi((const char *)s);
		if (k == 0 && n == 5 && memcmp(s, "exitn", 5) == 0)
			q->code = -1;
		if (k++ == 0)
			continue;
		buf_append(&q->out, "[", 1);
		buf_append(&q->out, s, n);
		buf_append(&q->out, "]\n", 2);
	}
	if (q->code < 0)
		q->code = 0;
	if (++inflight > max_inflight)
		max_inflight = inflight;
}

static void
on_guests(struct link *l, unsigned long id)
{
	struct buf b;
	char name[16], head[32];
	int i, hl = sprintf(head, "out %lu ", id);

	buf_init(&b, (size_t)-1);
	for (i = 1; i <= nguests; i++) {
		sprintf(name, "vm%04d\n", i);
		buf_append(&b, name, strlen(name));
	}
	link_send_data(l, head, (size_t)hl, buf_ptr(&b), buf_len(&b));
	link_sendf(l, "exit %lu status 0", id);
	buf_free(&b);
}

static void
drop(unsigned long id)
{
	int i;

	for (i = 0; i < npend; i++)
		if (pend[i].id == id) {
			buf_free(&pend[i].out);
			pend[i] = pend[--npend];
			inflight--;
			return;
		}
}

static void
on_message(struct link *l, const struct msg *m)
{
	char head[32];
	int hl;

	switch (m->type) {
	case M_GUESTS:
		if (!mute_list)
			on_guests(l, m->id);
		break;
	case M_LIST:
		hl = sprintf(head, "out %lu ", m->id);
		link_send(l, head, (size_t)hl, "a\nb\n", 4);
		link_sendf(l, "exit %lu status 0", m->id);
		break;
	case M_EXEC:
		on_exec(l, m);
		break;
	case M_CANCEL:
		drop(m->id);
		break;
	default:
		break;
	}
}

static mtime_t
answer_due(struct link *l, mtime_t now)
{
	mtime_t next = now + 1000;
	int i;

	for (i = 0; i < npend; i++) {
		if (!TIME_BEFORE(now, pend[i].due) && answer(l, &pend[i])) {
			pend[i--] = pend[--npend];
			inflight--;
		} else if (TIME_BEFORE(pend[i].due, next)) {
			next = pend[i].due;
		}
	}
	return next;
}

static void
serve(int fd, const char *stats)
{
	struct link l;
	struct msg m;
	struct fdset r, w;
	FILE *f;

	memset(&r, 0, sizeof r);
	memset(&w, 0, sizeof w);
	link_init(&l, LINK_CONTROL, fd, "client");
	for (;;) {
		mtime_t now = now_ms(), next;
		enum link_event ev;

		while ((ev = link_next(&l, &m)) != EV_NONE)
			if (ev == EV_MSG)
				on_message(&l, &m);
		next = answer_due(&l, now);
		if (link_flush(&l) < 0 || l.dead)
			break;
		fdset_zero(&r, fd);
		fdset_zero(&w, fd);
		fdset_add(&r, fd);
		if (buf_len(&l.out))
			fdset_add(&w, fd);
		if (select_sets(fd + 1, &r, &w, (long)(next - now)) < 0 && errno != EINTR)
			break;
		if (fdset_has(&r, fd) && link_read(&l) <= 0)
			break;
	}
	while (npend)
		drop(pend[0].id);
	if (stats && (f = fopen(stats, "w")) != NULL) {
		fprintf(f, "calls %lu max-in-flight %d\n", ncalls, max_inflight);
		fclose(f);
	}
	ncalls = 0;
	max_inflight = inflight = 0;
	fdset_free(&r);
	fdset_free(&w);
	link_detach(&l);
}

int
main(int argc, char **argv)
{
	const char *stats = NULL;
	int lfd, fd, i;

	log_open("fakehost", 0);
	if (argc < 3) {
		fprintf(stderr, "usage: fakehost SOCKET N [--delay MS] [--stats FILE] [--mute-list]\n");
		return 2;
	}
	nguests = atoi(argv[2]);
	for (i = 3; i < argc; i++)
		if (strcmp(argv[i], "--mute-list") == 0)
			mute_list = 1;
		else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc)
			delay_ms = atol(argv[++i]);
		else if (strcmp(argv[i], "--stats") == 0 && i + 1 < argc)
			stats = argv[++i];
	lfd = unix_listen(argv[1], 0600);
	if (lfd < 0) {
		fprintf(stderr, "fakehost: unable to listen on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
				struct fdset r, w;

				memset(&r, 0, sizeof r);
				memset(&w, 0, sizeof w);
				fdset_zero(&r, lfd);
				fdset_zero(&w, lfd);
				fdset_add(&r, lfd);
				select_sets(lfd + 1, &r, &w, -1);
				fdset_free(&r);
				fdset_free(&w);
				continue;
			}
			return 1;
		}
		set_nonblock(fd);
		serve(fd, stats);
	}
}
