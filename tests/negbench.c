/*
 * tests/negbench.c: timing for `make bench`, so that no shell $(date) runs
 * (and no fork happens) inside a timed interval.  Every mode times with the
 * same clock and prints microseconds.
 *
 *   negbench SOCKET TARGET N COMMAND [ARG...]
 *       a persistent client: one connection to a daemon's control socket, N
 *       sequential calls of COMMAND on TARGET (a guest name through a host
 *       daemon, "" through a guest daemon); each call's latency on a line.
 *       It shows what the protocol costs without a client process per call.
 *       TARGET may be a comma-separated list, taken in turn call by call.
 *   negbench run N TIMES PROGRAM [ARG...]
 *       runs PROGRAM N times (stdin, stdout, stderr inherited) and appends
 *       each run's latency, fork to exit, to the file TIMES: the CLI rows,
 *       measured the same way as the persistent client's.
 *   negbench recv SOCKET BYTES
 *       connects to SOCKET, reads BYTES bytes, prints "BYTES MICROSECONDS"
 *       from the first byte to the last (a raw channel's guest->host rate).
 * Exit 1 if a call, a run or the read fails.
 */
#include "negotiator.h"

#include <sys/time.h>
#include <sys/wait.h>
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

static int
run_program(int n, const char *times, char **argv)
{
	FILE *f = fopen(times, "a");
	int i, status, bad = 0;

	if (!f) {
		fprintf(stderr, "negbench: unable to open %s: %s\n", times, strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
		long t0 = usec_now(), t1;
		pid_t pid = fork();

		if (pid == 0) {
			execvp(argv[0], argv);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid) {
			fprintf(stderr, "negbench: unable to run %s\n", argv[0]);
			return 1;
		}
		t1 = usec_now();
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
		fprintf(f, "%ld\n", t1 - t0);
	}
	fclose(f);
	return bad ? 1 : 0;
}

static int
receive(const char *path, double total)
{
	static char buf[65536];
	double done = 0;
	long t0 = 0;
	int idle = 0;
	ssize_t n;
	int fd = unix_connect(path);

	if (fd < 0) {
		fprintf(stderr, "negbench: unable to connect to %s: %s\n", path, strerror(errno));
		return 1;
	}
	while (done < total) {
		n = read(fd, buf, sizeof buf);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct fdset r, w;

			memset(&r, 0, sizeof r);
			memset(&w, 0, sizeof w);
			fdset_zero(&r, fd);
			fdset_zero(&w, fd);
			fdset_add(&r, fd);
			if (select_sets(fd + 1, &r, &w, 1000) == 0 && ++idle == 30)
				break;   /* 30 s without a byte: give up */
			fdset_free(&r);
			fdset_free(&w);
			continue;
		}
		idle = 0;
		if (n <= 0)
			break;
		if (done == 0)
			t0 = usec_now();
		done += (double)n;
	}
	printf("%.0f %ld\n", done, usec_now() - t0);
	return done < total;
}

/* "a,b,c": the i-th name (0-based, cycling) into out */
static void
nth_target(const char *list, int i, char *out, size_t outlen)
{
	const char *p = list, *comma;
	int k, count = 1;
	size_t len;

	for (comma = list; (comma = strchr(comma, ',')) != NULL; comma++)
		count++;
	for (k = i % count; k > 0; k--)
		p = strchr(p, ',') + 1;
	len = strcspn(p, ",");
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, p, len);
	out[len] = '\0';
}

int
main(int argc, char **argv)
{
	struct link l;
	char target[MAX_NAME + 1];
	int fd, n, i, bad = 0;

	log_level = LOG_LVL_ERROR;
	if (argc >= 5 && strcmp(argv[1], "run") == 0)
		return run_program(atoi(argv[2]), argv[3], argv + 4);
	if (argc == 4 && strcmp(argv[1], "recv") == 0)
		return receive(argv[2], atof(argv[3]));
	if (argc < 5) {
		fprintf(stderr, "usage: negbench SOCKET TARGET N COMMAND [ARG...]\n"
		        "       negbench run N TIMES PROGRAM [ARG...]\n"
		        "       negbench recv SOCKET BYTES\n");
		return 2;
	}
	fd = unix_connect(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "negbench: unable to connect to %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	link_init(&l, LINK_CLIENT, fd, "negbench");
	n = atoi(argv[3]);
	for (i = 1; i <= n; i++) {
		long t0 = usec_now();

		nth_target(argv[2], i - 1, target, sizeof target);
		if (one_call(&l, (unsigned long)i, target, argv + 4) != 0)
			bad++;
		printf("%ld\n", usec_now() - t0);
	}
	link_detach(&l);   /* closes, frees the buffers (make sanitize: no leak) */
	return bad ? 1 : 0;
}
