/*
 * tests/negbench.c: a persistent negotiator client for benchmarks: one
 * connection to a daemon's control socket, N sequential calls of COMMAND on
 * TARGET (a guest name through a host daemon, "" through a guest daemon).
 * Prints each call's latency in microseconds; exit 1 if a call fails.
 *
 *   negbench SOCKET TARGET N COMMAND [ARG...]
 *
 * It shows what the protocol costs without a client process per call.
 */
#include "negotiator.h"

#include <sys/time.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long
usec_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000000L + tv.tv_usec;
}

/* one call; 0 when it exited with status 0 */
static int
one_call(struct link *l, unsigned long id, const char *target, char **argv)
{
	struct buf b;
	char head[32];
	int hl, i, rc = -1;
	struct msg m;
	enum link_event ev;

	buf_init(&b, MAX_PAYLOAD);
	netstring_put(&b, target, strlen(target));
	for (i = 0; argv[i]; i++)
		netstring_put(&b, argv[i], strlen(argv[i]));
	hl = sprintf(head, "exec %lu ", id);
	link_send(l, head, (size_t)hl, buf_ptr(&b), buf_len(&b));
	link_sendf(l, "eof %lu", id);
	buf_free(&b);
	for (;;) {
		if (link_flush(l) < 0)
			return -1;
		while ((ev = link_next(l, &m)) != EV_NONE) {
			if (ev != EV_MSG || m.id != id)
				continue;
			if (m.type == M_OUT || m.type == M_ERR) {
				if (m.datalen)
					link_sendf(l, "ack %lu %lu", id, (unsigned long)m.datalen);
			} else if (m.type == M_EXIT) {
				return m.signaled || m.num ? 1 : 0;
			} else if (m.type == M_FAIL) {
				return 1;
			}
		}
		{
			struct fdset r, w;

			memset(&r, 0, sizeof r);
			memset(&w, 0, sizeof w);
			fdset_zero(&r, l->fd);
			fdset_zero(&w, l->fd);
			fdset_add(&r, l->fd);
			select_sets(l->fd + 1, &r, &w, 10000);
			fdset_free(&r);
			fdset_free(&w);
		}
		i = link_read(l);
		if (i == 0 || i < 0)
			return rc;
	}
}

int
main(int argc, char **argv)
{
	struct link l;
	int fd, n, i, bad = 0;

	if (argc < 5) {
		fprintf(stderr, "usage: negbench SOCKET TARGET N COMMAND [ARG...]\n");
		return 2;
	}
	log_level = LOG_LVL_ERROR;
	fd = unix_connect(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "negbench: unable to connect to %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	link_init(&l, LINK_CLIENT, fd, "negbench");
	n = atoi(argv[3]);
	for (i = 1; i <= n; i++) {
		long t0 = usec_now();

		if (one_call(&l, (unsigned long)i, argv[2], argv + 4) != 0)
			bad++;
		printf("%ld\n", usec_now() - t0);
	}
	return bad ? 1 : 0;
}
