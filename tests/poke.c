/*
 * tests/poke.c: connect to a UNIX socket, send stdin, print what comes back
 * until the other side closes or TIMEOUT seconds pass.  Lets the tests speak
 * raw (also malformed) protocol to the daemons without python or socat.
 *
 *   poke SOCKET [TIMEOUT]
 *
 * Exit: 0 the peer closed the connection, 1 timeout, 2 usage or connect error.
 */
#define _XOPEN_SOURCE 600
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un sa;
	char buf[65536];
	int fd, in_open = 1;
	long timeout = argc > 2 ? atol(argv[2]) : 5;
	time_t end;

	if (argc < 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: poke SOCKET [TIMEOUT]\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "poke: unable to connect to %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	end = time(NULL) + timeout;
	for (;;) {
		struct pollfd p[2];   /* poll(): no FD_SET, so no __fdelt_chk */
		ssize_t n;

		if (time(NULL) >= end)
			return 1;
		p[0].fd = fd;
		p[1].fd = in_open ? 0 : -1;   /* poll ignores negative descriptors */
		p[0].events = p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, 100) < 0)
			return 2;
		if (in_open && p[1].revents) {
			n = read(0, buf, sizeof buf);
			if (n <= 0)
				in_open = 0;
			else if (write(fd, buf, (size_t)n) != n)
				in_open = 0;
		}
		if (p[0].revents) {
			n = read(fd, buf, sizeof buf);
			if (n <= 0)
				return 0;
			if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
				return 2;
			fflush(stdout);
		}
	}

}
