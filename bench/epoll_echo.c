/*
 * The reference: a minimal single-threaded epoll echo server, the
 * practical ceiling for one thread.  Level-triggered; per readable event
 * one read and one write (a remainder the socket did not take waits for
 * EPOLLOUT).  TCP and UDP on the same port.  Not part of echod.
 *
 * usage: epoll_echo PORT
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXEV	256
#define BUFSZ	65536

struct pend {
	char	*buf;
	size_t	 len, off;
};

static struct pend	*pends;
static int		 npends;

static void
closefd(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	if (fd < npends) {
		free(pends[fd].buf);
		memset(&pends[fd], 0, sizeof(pends[fd]));
	}
	close(fd);
}

int
main(int argc, char *argv[])
{
	static char		 buf[BUFSZ];
	struct epoll_event	 ev, evs[MAXEV];
	struct sockaddr_in	 sin;
	struct sockaddr_storage	 ss;
	socklen_t		 sl;
	int			 ep, lfd, ufd, fd, n, i, on = 1;
	ssize_t			 r, w;

	if (argc != 2)
		return (64);
	signal(SIGPIPE, SIG_IGN);
	npends = 1 << 16;
	pends = calloc((size_t)npends, sizeof(*pends));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (pends == NULL || bind(lfd, (struct sockaddr *)&sin,
	    sizeof(sin)) == -1 || listen(lfd, 4096) == -1 ||
	    bind(ufd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("epoll_echo");
		return (71);
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	ev.data.fd = ufd;
	epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
	fprintf(stderr, "epoll_echo: ready on %s\n", argv[1]);
	for (;;) {
		n = epoll_wait(ep, evs, MAXEV, -1);
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd == lfd) {
				while ((fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK)) != -1) {
					if (fd >= npends) {
						close(fd);
						continue;
					}
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &on, sizeof(on));
					ev.events = EPOLLIN;
					ev.data.fd = fd;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (fd == ufd) {
				sl = sizeof(ss);
				r = recvfrom(ufd, buf, BUFSZ, 0,
				    (struct sockaddr *)&ss, &sl);
				if (r >= 0)
					sendto(ufd, buf, (size_t)r, 0,
					    (struct sockaddr *)&ss, sl);
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				struct pend *p = &pends[fd];

				w = write(fd, p->buf + p->off, p->len - p->off);
				if (w < 0 && errno != EAGAIN) {
					closefd(ep, fd);
					continue;
				}
				if (w > 0)
					p->off += (size_t)w;
				if (p->off == p->len) {
					free(p->buf);
					memset(p, 0, sizeof(*p));
					ev.events = EPOLLIN;
					ev.data.fd = fd;
					epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
				}
				continue;
			}
			r = read(fd, buf, BUFSZ);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				closefd(ep, fd);
				continue;
			}
			w = write(fd, buf, (size_t)r);
			if (w < 0 && errno != EAGAIN) {
				closefd(ep, fd);
				continue;
			}
			if (w < 0)
				w = 0;
			if (w < r) {
				/* Keep the rest; stop reading until it is out. */
				struct pend *p = &pends[fd];

				p->buf = malloc((size_t)(r - w));
				memcpy(p->buf, buf + w, (size_t)(r - w));
				p->len = (size_t)(r - w);
				p->off = 0;
				ev.events = EPOLLOUT;
				ev.data.fd = fd;
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
			}
		}
	}
}
