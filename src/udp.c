/*
 * UDP echo: a plain persistent read event per socket (bufferevents are
 * stream-only).  Each wake-up handles a bounded batch of datagrams so that
 * a flood on one socket cannot starve the others; a reply the socket cannot
 * take right now is dropped and counted, never queued.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "echod.h"
#include "log.h"

#define UDP_BATCH	64

/* Read callback: send every waiting datagram back to its sender. */
static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udp_listener	*u = arg;
	struct server		*srv = u->srv;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	ssize_t			 n;
	int			 i;

	for (i = 0; i < UDP_BATCH; i++) {
		sslen = sizeof(ss);
		n = recvfrom(fd, srv->udp_buf, UDP_BUFSIZE, 0,
		    (struct sockaddr *)&ss, &sslen);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* ICMP errors from earlier replies land here. */
			log_debug("udp %s: recvfrom: %s", u->name,
			    strerror(errno));
			continue;
		}
		srv->stats.udp_datagrams++;
		srv->stats.udp_bytes += (uint64_t)n;
		if (sendto(fd, srv->udp_buf, (size_t)n, 0,
		    (struct sockaddr *)&ss, sslen) == -1) {
			srv->stats.udp_dropped++;
			log_debug("udp %s: sendto: %s", u->name,
			    strerror(errno));
		}
	}
}

/* Bind a and start echoing on it.  Return 0 or -1 (logged). */
int
udp_listen(struct server *srv, const struct addr *a)
{
	struct udp_listener	*u;
	char			 want[ADDR_STRLEN];

	addr_format((const struct sockaddr *)&a->ss, a->len, want,
	    sizeof(want));
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		log_msg(LOG_ERR, "udp %s: %s", want, strerror(errno));
		return (-1);
	}
	u->srv = srv;
	u->fd = net_bind(SOCK_DGRAM, a, u->name, sizeof(u->name));
	if (u->fd == -1) {
		log_msg(LOG_ERR, "cannot bind udp %s: %s", want,
		    strerror(errno));
		free(u);
		return (-1);
	}
	u->ev = event_new(srv->base, u->fd, EV_READ | EV_PERSIST, udp_read_cb,
	    u);
	if (u->ev == NULL || event_add(u->ev, NULL) == -1) {
		log_msg(LOG_ERR, "udp %s: cannot create event", want);
		if (u->ev != NULL)
			event_free(u->ev);
		close(u->fd);
		free(u);
		return (-1);
	}
	TAILQ_INSERT_TAIL(&srv->udps, u, entry);
	log_notice("listening on udp %s", u->name);
	return (0);
}

/* Stop echoing on the socket and free it. */
void
udp_close(struct udp_listener *u)
{
	TAILQ_REMOVE(&u->srv->udps, u, entry);
	event_free(u->ev);
	close(u->fd);
	free(u);
}
