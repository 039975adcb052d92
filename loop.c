/*
 * loop.c: the event loop's small interface, after redis's ae.c: say what
 * each descriptor waits for (loop_watch), wait (loop_wait), walk the ready
 * list (loop_ready); and timers in a binary heap.
 *
 * Two backends behind it.  select() is the portable one, the default
 * everywhere and the only one the guest uses: its sets are kept between
 * waits and changed one bit at a time, so a wait costs a copy and a scan
 * of the bitmaps, not a walk over every link.  epoll (Linux 2.6, found by
 * the compat probe) serves the host daemon: a wait costs what is ready,
 * whatever the number of guests.  Both are level-triggered: a descriptor
 * stays ready until it is served, and the interest stays as it was set.
 *
 * A descriptor must be unwatched (mask 0) before it is closed: epoll keeps
 * a registration for as long as any process holds the file (a child
 * between fork and exec does), and would report it under a number we may
 * have given to something else since.
 */
#include "negotiator.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if HAVE_EPOLL
#include <sys/epoll.h>
#endif

struct ready { int fd, mask; };

static int backend = -1;           /* 0 select, 1 epoll; -1 not open */
static unsigned char *interest;    /* per descriptor: what it waits for */
static int ninterest;
static struct ready *readyv;
static int nready, capready;

static int interest_of(int fd);
static void ready_add(int fd, int mask);

/* ---- select --------------------------------------------------------------- */

static struct fdset want_r, want_w, got_r, got_w;
static int top_fd = -1;            /* highest descriptor with an interest */

static void
sel_set(int fd, int mask)
{
	unsigned long bit = 1UL << (fd % (int)(8 * sizeof(unsigned long)));
	int word = fd / (int)(8 * sizeof(unsigned long));

	if (word >= want_r.words) {
		/* grow both, keeping what is set */
		int old = want_r.words, n = word + 1 + 16;

		want_r.bits = xrealloc(want_r.bits, (size_t)n * sizeof(unsigned long));
		want_w.bits = xrealloc(want_w.bits, (size_t)n * sizeof(unsigned long));
		memset(want_r.bits + old, 0, (size_t)(n - old) * sizeof(unsigned long));
		memset(want_w.bits + old, 0, (size_t)(n - old) * sizeof(unsigned long));
		want_r.words = want_w.words = n;
	}
	want_r.bits[word] = (mask & LOOP_READ) ? want_r.bits[word] | bit : want_r.bits[word] & ~bit;
	want_w.bits[word] = (mask & LOOP_WRITE) ? want_w.bits[word] | bit : want_w.bits[word] & ~bit;
	if (mask && fd > top_fd)
		top_fd = fd;
	while (top_fd >= 0 && !interest_of(top_fd))
		top_fd--;
}

static int
sel_wait(long ms)
{
	int words = top_fd / (int)(8 * sizeof(unsigned long)) + 1, w, n;

	fdset_zero(&got_r, top_fd < 0 ? 0 : top_fd);
	fdset_zero(&got_w, top_fd < 0 ? 0 : top_fd);
	if (top_fd >= 0) {
		memcpy(got_r.bits, want_r.bits, (size_t)words * sizeof(unsigned long));
		memcpy(got_w.bits, want_w.bits, (size_t)words * sizeof(unsigned long));
	}
	n = select_sets(top_fd + 1, &got_r, &got_w, ms);
	if (n <= 0)
		return n;
	for (w = 0; w < words; w++) {
		unsigned long any = got_r.bits[w] | got_w.bits[w];
		int b;

		for (b = 0; any; b++, any >>= 1) {
			int fd = w * (int)(8 * sizeof(unsigned long)) + b, mask;

			if (!(any & 1UL))
				continue;
			mask = (fdset_has(&got_r, fd) ? LOOP_READ : 0) |
			       (fdset_has(&got_w, fd) ? LOOP_WRITE : 0);
			ready_add(fd, mask);
		}
	}
	return nready;
}

/* ---- epoll ------------------------------------------------------------------ */

#if HAVE_EPOLL
static int epfd = -1;
static struct epoll_event *events;
static int capevents;

static int
ep_open(void)
{
	epfd = epoll_create(64);
	if (epfd < 0)
		return -1;
	set_cloexec(epfd);
	return 0;
}

static void
ep_set(int fd, int old, int mask)
{
	struct epoll_event ev;
	int op = !mask ? EPOLL_CTL_DEL : old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	memset(&ev, 0, sizeof ev);
	ev.events = ((mask & LOOP_READ) ? EPOLLIN : 0) | ((mask & LOOP_WRITE) ? EPOLLOUT : 0);
	ev.data.fd = fd;
	if (epoll_ctl(epfd, op, fd, &ev) == 0)
		return;
	/* a number reused behind our back: make it what we want */
	if (errno == ENOENT && op == EPOLL_CTL_MOD)
		op = EPOLL_CTL_ADD;
	else if (errno == EEXIST && op == EPOLL_CTL_ADD)
		op = EPOLL_CTL_MOD;
	else if (op == EPOLL_CTL_DEL && (errno == ENOENT || errno == EBADF))
		return;
	else
		fatal("epoll_ctl(fd %d): %s", fd, strerror(errno));
	if (epoll_ctl(epfd, op, fd, &ev) < 0)
		fatal("epoll_ctl(fd %d): %s", fd, strerror(errno));
}

static int
ep_wait(long ms)
{
	int n, i;

	if (capevents < 64) {
		capevents = 256;
		events = xrealloc(events, (size_t)capevents * sizeof *events);
	}
	n = epoll_wait(epfd, events, capevents, ms < 0 ? -1 : (int)ms);
	for (i = 0; i < n; i++) {
		int fd = events[i].data.fd, mask = 0;

		/* an error or a hang-up is served by reading (or writing) */
		if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			mask |= LOOP_READ;
		if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			mask |= LOOP_WRITE;
		mask &= interest_of(fd);
		if (mask)
			ready_add(fd, mask);
	}
	return n < 0 ? -1 : nready;
}
#endif

/* ---- the interface ------------------------------------------------------------- */

static int
interest_of(int fd)
{
	return fd >= 0 && fd < ninterest ? interest[fd] : 0;
}

static void
ready_add(int fd, int mask)
{
	if (nready == capready) {
		capready = capready ? capready * 2 : 64;
		readyv = xrealloc(readyv, (size_t)capready * sizeof *readyv);
	}
	readyv[nready].fd = fd;
	readyv[nready++].mask = mask;
}

int
loop_open(const char *name)
{
	if (!name || !*name)
		name = "select";
	if (strcmp(name, "select") == 0) {
		backend = 0;
		return 0;
	}
#if HAVE_EPOLL
	if (strcmp(name, "epoll") == 0 && ep_open() == 0) {
		backend = 1;
		return 0;
	}
	if (strcmp(name, "epoll") == 0)
		return -1;
#endif
	errno = EINVAL;
	return -1;
}

const char *
loop_name(void)
{
	return backend == 1 ? "epoll" : "select";
}

int
loop_has(const char *name)
{
	return strcmp(name, "select") == 0 || (HAVE_EPOLL && strcmp(name, "epoll") == 0);
}

void
loop_watch(int fd, int mask)
{
	int old = interest_of(fd);

	if (fd < 0 || old == mask)
		return;
	if (fd >= ninterest) {
		int n = fd + 64;

		interest = xrealloc(interest, (size_t)n);
		memset(interest + ninterest, 0, (size_t)(n - ninterest));
		ninterest = n;
	}
	interest[fd] = (unsigned char)mask;
#if HAVE_EPOLL
	if (backend == 1) {
		ep_set(fd, old, mask);
		return;
	}
#endif
	sel_set(fd, mask);
}

int
loop_wait(long ms)
{
	nready = 0;
#if HAVE_EPOLL
	if (backend == 1)
		return ep_wait(ms);
#endif
	return sel_wait(ms);
}

int
loop_ready(int i, int *mask)
{
	*mask = readyv[i].mask & interest_of(readyv[i].fd);
	return readyv[i].fd;
}

void
loop_close(void)
{
#if HAVE_EPOLL
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
	free(events);
	events = NULL;
	capevents = 0;
#endif
	fdset_free(&want_r);
	fdset_free(&want_w);
	fdset_free(&got_r);
	fdset_free(&got_w);
	free(interest);
	free(readyv);
	interest = NULL;
	readyv = NULL;
	ninterest = nready = capready = 0;
	top_fd = -1;
	backend = -1;
}

/* ---- timers: a binary heap ordered by deadline -------------------------------- */

static struct timer **heap;
static int nheap, capheap;

static int
earlier(int a, int b)
{
	return TIME_BEFORE(heap[a]->when, heap[b]->when);
}

static void
heap_put(int i, struct timer *t)
{
	heap[i] = t;
	t->slot = i;
}

static void
sift_up(int i)
{
	while (i > 0 && earlier(i, (i - 1) / 2)) {
		struct timer *t = heap[i];

		heap_put(i, heap[(i - 1) / 2]);
		heap_put((i - 1) / 2, t);
		i = (i - 1) / 2;
	}
}

static void
sift_down(int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		struct timer *t;

		if (l < nheap && earlier(l, m))
			m = l;
		if (r < nheap && earlier(r, m))
			m = r;
		if (m == i)
			return;
		t = heap[i];
		heap_put(i, heap[m]);
		heap_put(m, t);
		i = m;
	}
}

void
timer_init(struct timer *t, void (*fire)(struct timer *, mtime_t), void *arg)
{
	t->when = 0;
	t->slot = -1;
	t->fire = fire;
	t->arg = arg;
}

void
timer_stop(struct timer *t)
{
	int i = t->slot;

	if (i < 0)
		return;
	t->slot = -1;
	if (i == --nheap)
		return;
	t = heap[nheap];
	heap_put(i, t);
	sift_up(i);
	sift_down(t->slot);
}

void
timer_set(struct timer *t, mtime_t when)
{
	if (t->slot >= 0) {
		if (t->when == when)
			return;
		t->when = when;
		sift_up(t->slot);
		sift_down(t->slot);
		return;
	}
	if (nheap == capheap) {
		capheap = capheap ? capheap * 2 : 64;
		heap = xrealloc(heap, (size_t)capheap * sizeof *heap);
	}
	t->when = when;
	heap_put(nheap++, t);
	sift_up(nheap - 1);
}

int
timer_pending(const struct timer *t)
{
	return t->slot >= 0;
}

/* Fires what is due at now (each timer once: one that sets itself again
 * for now waits for the next round); returns the nearest deadline left,
 * or horizon when that is nearer. */
mtime_t
timers_run(mtime_t now, mtime_t horizon)
{
	int rounds = nheap;

	while (nheap && rounds-- > 0 && !TIME_BEFORE(now, heap[0]->when)) {
		struct timer *t = heap[0];

		timer_stop(t);
		t->fire(t, now);
	}
	if (nheap && TIME_BEFORE(heap[0]->when, horizon))
		return heap[0]->when;
	return horizon;
}
