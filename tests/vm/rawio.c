/*
 * tests/vm/rawio.c: plain bytes through a virtio port, no agent: the
 * physical limit that `make bench` compares negotiator with.  Runs in the
 * test guest (built static with the guest binary).
 *
 *   rawio out PORT BYTES   write BYTES zero bytes, 32 KiB per write()
 *   rawio in PORT BYTES    read BYTES bytes (the host is writing)
 *   rawio tee PORT BYTES   the same, each read written on to stdout (a
 *                          pipe: the plain copier of host->guest); the
 *                          timing goes to stderr
 *   rawio pipe PORT BYTES  copy BYTES bytes from stdin (a pipe, grown to
 *                          1 MiB as negotiator-guest grows a command's) into
 *                          PORT: the best any agent fed by a pipe can do
 *
 * Prints "BYTES MICROSECONDS": for `in`, from the first byte to the last.
 */
#define _GNU_SOURCE 1   /* F_SETPIPE_SZ */
#define _XOPEN_SOURCE 600
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* stdin -> port: read up to 256 KiB, write it out 32 KiB at a time */
static int
copy_in(const char *port, double total)
{
	static char buf[262144];
	double t0 = now_us(), done = 0;
	ssize_t n, w, off;
	int fd;

#ifdef F_SETPIPE_SZ
	fcntl(0, F_SETPIPE_SZ, 1048576);
#endif
	if ((fd = open(port, O_WRONLY)) < 0) {
		fprintf(stderr, "rawio: unable to open %s: %s\n", port, strerror(errno));
		return 1;
	}
	while (done < total && (n = read(0, buf, sizeof buf)) > 0) {
		for (off = 0; off < n; off += w) {
			w = write(fd, buf + off, (size_t)(n - off < 32768 ? n - off : 32768));
			if (w <= 0) {
				fprintf(stderr, "rawio: write: %s\n", strerror(errno));
				return 1;
			}
		}
		done += (double)n;
	}
	printf("%.0f %.0f\n", done, now_us() - t0);
	return 0;
}

/* all of it, to a blocking descriptor */
static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static char buf[65536];
	double t0 = 0, total, done = 0;
	int fd, out, pipe_in, tee;
	size_t held = 0;    /* tee: read, not yet written on */
	ssize_t n;

	if (argc != 4 || (strcmp(argv[1], "in") != 0 && strcmp(argv[1], "out") != 0 &&
	                  strcmp(argv[1], "pipe") != 0 && strcmp(argv[1], "tee") != 0)) {
		fprintf(stderr, "usage: rawio in|out|pipe|tee PORT BYTES\n");
		return 2;
	}
	pipe_in = argv[1][0] == 'p';
	tee = argv[1][0] == 't';
	out = argv[1][0] == 'o';
	if (pipe_in)
		return copy_in(argv[2], atof(argv[3]));
	total = atof(argv[3]);
	if ((fd = open(argv[2], out ? O_WRONLY : O_RDONLY)) < 0) {
		fprintf(stderr, "rawio: unable to open %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (out)
		t0 = now_us();
	while (done < total) {
		size_t want = out ? 32768 : sizeof buf - held;

		if (want > total - done)
			want = (size_t)(total - done);
		n = out ? write(fd, buf, want) : read(fd, buf + held, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "rawio: %s stopped after %.0f bytes: %s\n", argv[1], done,
			        n < 0 ? strerror(errno) : "end of file");
			return 1;
		}
		if (!out && done == 0)
			t0 = now_us();
		done += (double)n;
		if (tee) {
			/* a port gives 4 KiB a read: pass them on 32 KiB at a
			 * time, as a copier that batches would */
			held += (size_t)n;
			if ((held >= 32768 || done >= total) && write_all(1, buf, held) < 0) {
				fprintf(stderr, "rawio: tee: write: %s\n", strerror(errno));
				return 1;
			}
			if (held >= 32768 || done >= total)
				held = 0;
		}
	}
	fprintf(tee ? stderr : stdout, "%.0f %.0f\n", done, now_us() - t0);
	return 0;
}
