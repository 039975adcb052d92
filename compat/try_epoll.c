/* the host daemon's faster event-loop backend (Linux 2.6) */
#include <sys/epoll.h>

int
main(void)
{
	struct epoll_event ev[1];
	int fd = epoll_create(1);

	ev[0].events = EPOLLIN;
	ev[0].data.fd = 0;
	return epoll_ctl(fd, EPOLL_CTL_ADD, 0, ev) + epoll_wait(fd, ev, 1, 0);
}
