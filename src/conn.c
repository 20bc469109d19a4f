/*
 * One TCP client.  Its bufferevent's read callback sends the input straight
 * back: when nothing is queued it writes to the socket at once (one writev
 * and no EPOLLOUT round trip), and only what the socket does not take goes
 * to the output buffer, which libevent then flushes in order.
 *
 * States, in the order a connection can take them:
 *   open      echo everything;
 *   CONN_PAUSED  output reached buffer_limit: stop reading until it drains;
 *   CONN_EOF  the client shut down its side: flush the output, then free;
 *   CONN_LINGER  (server draining) all echoed and our FIN sent: discard
 *             input until the client closes, so closing never sends a RST
 *             that would destroy echo data still in flight.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "echod.h"
#include "log.h"

static void	conn_drain_check(struct conn *);

/* Read callback: echo everything that arrived. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct evbuffer	*out = bufferevent_get_output(bev);
	size_t		 len = evbuffer_get_length(in);

	if (c->flags & CONN_LINGER) {
		evbuffer_drain(in, len);
		return;
	}
	c->srv->stats.tcp_bytes += len;
	if (evbuffer_get_length(out) == 0 &&
	    evbuffer_write(in, bufferevent_getfd(bev)) == -1 &&
	    errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		log_debug("conn %d: write: %s", (int)bufferevent_getfd(bev),
		    strerror(errno));
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(in) > 0 &&
	    bufferevent_write_buffer(bev, in) == -1) {
		log_warnx("conn %d: cannot queue output",
		    (int)bufferevent_getfd(bev));
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(out) >= c->srv->conf.tcp_buffer_limit) {
		bufferevent_disable(bev, EV_READ);
		c->flags |= CONN_PAUSED;
	}
	if (c->srv->draining)
		conn_drain_check(c);
}

/* Write callback: the output buffer is empty again. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->flags & CONN_EOF) {
		log_debug("conn %d: all echoed after client EOF",
		    (int)bufferevent_getfd(bev));
		conn_free(c);
		return;
	}
	if (c->flags & CONN_PAUSED) {
		c->flags &= ~CONN_PAUSED;
		if (bufferevent_enable(bev, EV_READ) == -1) {
			conn_free(c);
			return;
		}
	}
	if (c->srv->draining)
		conn_drain_check(c);
}

/* Event callback: end of file or an error. */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	int		 fd = (int)bufferevent_getfd(bev);

	if ((what & BEV_EVENT_EOF) && !(c->flags & CONN_LINGER) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		/* Half-close: finish echoing, then conn_write_cb frees. */
		log_debug("conn %d: client EOF, flushing", fd);
		c->flags |= CONN_EOF;
		return;
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("conn %d: %s", fd, strerror(EVUTIL_SOCKET_ERROR()));
	else
		log_debug("conn %d: closed", fd);
	conn_free(c);
}

/* Take over an accepted socket and start echoing. */
void
conn_new(struct server *srv, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	struct conn	*c;
	char		 peer[ADDR_STRLEN];
	int		 on = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("conn %d: out of memory", fd);
		close(fd);
		return;
	}
	c->srv = srv;
	/* Echoes are small and latency-bound: never hold them for Nagle. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_debug("conn %d: TCP_NODELAY: %s", fd, strerror(errno));
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("conn %d: cannot create bufferevent", fd);
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
	    c);
	if (bufferevent_enable(c->bev, EV_READ) == -1) {
		log_warnx("conn %d: cannot enable reading", fd);
		bufferevent_free(c->bev);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	srv->stats.conns_accepted++;
	log_debug("conn %d: accepted from %s", fd,
	    addr_format(sa, salen, peer, sizeof(peer)));
}

/*
 * While the server drains: once nothing is left to echo and nothing more
 * is waiting in the socket, send our FIN after the echoed data.  If the
 * peer has acknowledged everything, close now; otherwise linger until it
 * closes (or the shutdown timeout cuts it).
 */
static void
conn_drain_check(struct conn *c)
{
	int	 fd = (int)bufferevent_getfd(c->bev), n;

	if (c->flags & (CONN_LINGER | CONN_EOF) ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;
	if (ioctl(fd, FIONREAD, &n) == 0 && n > 0)
		return;		/* more to echo: the read callback comes */
	if (shutdown(fd, SHUT_WR) == -1 ||
	    (ioctl(fd, SIOCOUTQ, &n) == 0 && n == 0)) {
		conn_free(c);
		return;
	}
	c->flags |= CONN_LINGER;
	if (bufferevent_enable(c->bev, EV_READ) == -1)
		conn_free(c);
}

/* Start draining a connection for shutdown. */
void
conn_drain(struct conn *c)
{
	conn_drain_check(c);
}

/* Close the connection; the only place a conn and its bufferevent die. */
void
conn_free(struct conn *c)
{
	struct server	*srv = c->srv;

	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	bufferevent_free(c->bev);
	free(c);
	server_conn_gone(srv);
}
