/*
 * tests/scaleguests.c: many stand-in guests in one process, for
 * `make scale-bench` (tests/scale-bench.sh).  A negotiator-guest and a
 * tests/standin per guest are far too heavy for a thousand guests; this
 * plays QEMU's host-side sockets and a guest daemon behind each at once.
 *
 *   scaleguests [--pidfile PATH] [--prefix NAME] CHANNEL_DIR N
 *
 * For each guest PREFIX1 .. PREFIXN (default prefix "g") it listens on
 * CHANNEL_DIR/NAME.negotiator-host-to-guest.0 and
 * CHANNEL_DIR/NAME.negotiator-guest-to-host.0, the layout libvirt uses and
 * negotiator-host's scan finds (QEMU listens, the host daemon connects).
 * It accepts one connection per socket at a time (a new one replaces the
 * old, as after a host daemon restart) and speaks the native protocol
 * through the project's own session layer (link.c), as a guest daemon
 * would: on host-to-guest it serves (answers the host's probe, then every
 * exec at once with an empty out and "exit ID status 0", without running
 * anything; list with one name, "true"); on guest-to-host it is a caller
 * that never calls (its probe opens the session, then it stays silent).
 *
 * One poll() loop (select() cannot go past FD_SETSIZE), no timer wakeup
 * while every session is up.  RLIMIT_NOFILE is raised to the hard limit;
 * when 2 N descriptors and a few more do not fit, it says so and exits 1.
 * The pidfile (written by rename) appears once every socket listens.
 * SIGTERM or SIGINT removes the sockets and the pidfile.
 */
#include "negotiator.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPARE_FDS 16   /* stdio, the signal pipe, slack */

struct chan {
	char *path;
	int lfd;                /* listening socket */
	struct link link;       /* the accepted connection, fd -1 if none */
};

struct fguest {
	char name[64];
	struct chan ch[2];      /* 0: host-to-guest (we serve), 1: guest-to-host */
};

static struct fguest *guests;
static long nguests;
static struct pollfd *pfds;     /* 2 per guest, then the signal pipe */
static const char *pidfile;
static int pidfile_written;

static void
cleanup(void)
{
	long i;
	int k;

	for (i = 0; i < nguests; i++)
		for (k = 0; k < 2; k++)
			if (guests[i].ch[k].lfd >= 0)
				unlink(guests[i].ch[k].path);
	if (pidfile_written)
		unlink(pidfile);
}

static void
die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "scaleguests: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	cleanup();
	exit(1);
}

/* Raise the descriptor limit as far as allowed; die when n do not fit. */
static void
fd_limit(long n)
{
	struct rlimit rl;
	char need[64], have[64];

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)n > rl.rlim_cur) {
		sprintf(need, "%ld guests need about %ld", nguests, n);
		sprintf(have, "%lu", (unsigned long)rl.rlim_cur);
		die("%s descriptors, the limit here is %s", need, have);
	}
}

static char *
chan_path(const char *dir, const char *name, const char *port)
{
	char *p = xmalloc(strlen(dir) + strlen(name) + strlen(port) + 3);

	sprintf(p, "%s/%s.%s", dir, name, port);
	return p;
}

static void
setup(const char *dir, const char *prefix)
{
	long i;
	int k;

	guests = xcalloc((size_t)nguests, sizeof *guests);
	pfds = xcalloc((size_t)nguests * 2 + 1, sizeof *pfds);
	for (i = 0; i < nguests; i++) {
		struct fguest *g = &guests[i];

		g->ch[0].lfd = g->ch[1].lfd = -1;
		sprintf(g->name, "%.40s%ld", prefix, i + 1);
		if (!valid_guest_name(g->name, strlen(g->name)))
			die("invalid guest name %s%s", g->name, "");
	}
	for (i = 0; i < nguests; i++) {
		struct fguest *g = &guests[i];

		for (k = 0; k < 2; k++) {
			struct chan *c = &g->ch[k];
			char lname[96];

			c->path = chan_path(dir, g->name, k == 0 ? PORT_H2G : PORT_G2H);
			c->lfd = unix_listen(c->path, 0600);
			if (c->lfd < 0)
				die("unable to listen on %s: %s", c->path, strerror(errno));
			sprintf(lname, "%s %s", g->name, k == 0 ? "host-to-guest" : "guest-to-host");
			link_init(&c->link, LINK_CHANNEL, -1, lname);
			if (k == 0) {
				link_set_server(&c->link);
				c->link.serves = 1;
			} else {
				link_set_caller(&c->link);
			}
		}
	}
}

static void
write_pidfile(void)
{
	char tmp[4096];
	FILE *f;

	if (!pidfile)
		return;
	if (strlen(pidfile) + 5 > sizeof tmp)
		die("pidfile path too long: %s%s", pidfile, "");
	sprintf(tmp, "%s.tmp", pidfile);
	f = fopen(tmp, "w");
	if (!f)
		die("unable to write %s: %s", tmp, strerror(errno));
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, pidfile) != 0)
		die("unable to write %s: %s", pidfile, strerror(errno));
	pidfile_written = 1;
}

/* ---- the protocol -------------------------------------------------------- */

static void
serve(struct link *l, const struct msg *m)
{
	if (m->type == M_EXEC) {
		link_sendf(l, "out %lu ", m->id);
		link_sendf(l, "exit %lu status 0", m->id);
	} else if (m->type == M_LIST) {
		link_sendf(l, "out %lu true\n", m->id);
		link_sendf(l, "exit %lu status 0", m->id);
	}
	/* in, eof, ack, cancel: nothing runs, nothing to do */
}

static void
drop(struct chan *c)
{
	link_detach(&c->link);
	buf_init(&c->link.in, IN_BUF_SIZE);
	buf_init(&c->link.out, OUT_HARD_LIMIT);
}

static void
take(struct chan *c)
{
	int fd = accept(c->lfd, NULL, NULL);

	if (fd < 0)
		return;
	if (set_nonblock(fd) < 0 || set_cloexec(fd) < 0) {
		close(fd);
		return;
	}
	if (c->link.fd >= 0)
		drop(c);   /* a new host connection replaces the old one */
	link_attach(&c->link, fd);
}

static void
service(struct chan *c, short revents)
{
	struct link *l = &c->link;
	enum link_event ev;
	struct msg m;
	int rc;

	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		rc = link_read(l);
		if (rc == 0 || rc < 0) {
			drop(c);
			return;
		}
	}
	while ((ev = link_next(l, &m)) != EV_NONE)
		if (ev == EV_MSG && l->serves)
			serve(l, &m);
}

/* ---- the loop -------------------------------------------------------------- */

static long
build(void)
{
	mtime_t now = now_ms(), deadline = now + 3600000UL;
	long i, n = 0;
	int k;

	for (i = 0; i < nguests; i++)
		for (k = 0; k < 2; k++, n++) {
			struct chan *c = &guests[i].ch[k];
			struct link *l = &c->link;

			pfds[n].revents = 0;
			if (l->fd < 0) {
				pfds[n].fd = c->lfd;
				pfds[n].events = POLLIN;
				continue;
			}
			link_timers(l, now, 0);
			link_flush(l);
			pfds[n].fd = l->fd;
			pfds[n].events = POLLIN | (buf_len(&l->out) ? POLLOUT : 0);
			if (TIME_BEFORE(link_deadline(l, now, 0), deadline))
				deadline = link_deadline(l, now, 0);
		}
	pfds[n].fd = sig_fd();
	pfds[n].events = POLLIN;
	pfds[n].revents = 0;
	return TIME_BEFORE(now, deadline) ? (long)(deadline - now) : 0;
}

static void
run(void)
{
	long i, wait;
	int k;

	for (;;) {
		wait = build();
		if (poll(pfds, (unsigned long)nguests * 2 + 1, (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s%s", strerror(errno), "");
		}
		if (pfds[nguests * 2].revents && sig_next())
			return;   /* TERM or INT */
		for (i = 0; i < nguests; i++)
			for (k = 0; k < 2; k++) {
				struct chan *c = &guests[i].ch[k];
				short re = pfds[i * 2 + k].revents;

				if (!re)
					continue;
				if (c->link.fd < 0)
					take(c);
				else
					service(c, re);
				if (c->link.fd >= 0)
					link_flush(&c->link);
			}
	}
}

int
main(int argc, char **argv)
{
	static const int sigs[] = { SIGTERM, SIGINT, 0 };
	const char *prefix = "g";
	char *end;
	int i = 1;

	log_level = LOG_LVL_ERROR;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (strcmp(argv[i], "--pidfile") == 0)
			pidfile = argv[i + 1];
		else if (strcmp(argv[i], "--prefix") == 0)
			prefix = argv[i + 1];
		else
			break;
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: scaleguests [--pidfile PATH] [--prefix NAME] "
		        "CHANNEL_DIR N\n");
		return 2;
	}
	nguests = strtol(argv[i + 1], &end, 10);
	if (*end || nguests < 1 || nguests > 1000000L) {
		fprintf(stderr, "scaleguests: bad guest count: %s\n", argv[i + 1]);
		return 2;
	}
	fd_limit(nguests * 4 + SPARE_FDS);
	sig_setup(sigs);
	setup(argv[i], prefix);
	write_pidfile();
	run();
	cleanup();
	return 0;
}
