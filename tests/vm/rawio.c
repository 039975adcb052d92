/*
 * tests/vm/rawio.c: plain bytes through a virtio port, no agent: the
 * physical limit that `make bench` compares negotiator with.  Runs in the
 * test guest (built static with the guest binary).
 *
 *   rawio out PORT BYTES   write BYTES zero bytes, 32 KiB per write()
 *   rawio in PORT BYTES    read BYTES bytes (the host is writing)
 *
 * Prints "BYTES MICROSECONDS": for `in`, from the first byte to the last.
 */
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

int
main(int argc, char **argv)
{
	static char buf[65536];
	double t0 = 0, total, done = 0;
	int fd, out;
	ssize_t n;

	if (argc != 4 || (strcmp(argv[1], "in") != 0 && strcmp(argv[1], "out") != 0)) {
		fprintf(stderr, "usage: rawio in|out PORT BYTES\n");
		return 2;
	}
	out = argv[1][0] == 'o';
	total = atof(argv[3]);
	if ((fd = open(argv[2], out ? O_WRONLY : O_RDONLY)) < 0) {
		fprintf(stderr, "rawio: unable to open %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (out)
		t0 = now_us();
	while (done < total) {
		size_t want = out ? 32768 : sizeof buf;

		if (want > total - done)
			want = (size_t)(total - done);
		n = out ? write(fd, buf, want) : read(fd, buf, want);
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
	}
	printf("%.0f %.0f\n", done, now_us() - t0);
	return 0;
}
