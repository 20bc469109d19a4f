/* TCP listeners: accept clients and hand each to conn.c. */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "echod.h"
#include "log.h"

#define TCP_BACKLOG		4096
#define TCP_RETRY_SECONDS	1

/* Callback for a new connection on a listener. */
static void
tcp_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct tcp_listener	*l = arg;

	conn_new(l->srv, fd, sa, (socklen_t)salen);
}

/* Timer callback: accept again after running out of descriptors. */
static void
tcp_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_listener	*l = arg;

	if (evconnlistener_enable(l->lev) == -1)
		log_warnx("tcp %s: cannot resume accepting", l->name);
}

/*
 * Callback for accept() errors that are not simply "try again".  Running
 * out of descriptors or memory would wake us on every loop, so stop
 * accepting for a moment; clients wait in the backlog meanwhile.
 */
static void
tcp_error_cb(struct evconnlistener *lev, void *arg)
{
	struct tcp_listener	*l = arg;
	struct timeval		 tv = { TCP_RETRY_SECONDS, 0 };
	int			 err = EVUTIL_SOCKET_ERROR();

	log_warnx("tcp %s: accept: %s; pausing for %d s", l->name,
	    strerror(err), TCP_RETRY_SECONDS);
	if (evconnlistener_disable(lev) == -1 ||
	    evtimer_add(l->retry, &tv) == -1)
		log_warnx("tcp %s: cannot pause accepting", l->name);
}

/* Bind and listen on a, and start accepting.  Return 0 or -1 (logged). */
int
tcp_listen(struct server *srv, const struct addr *a)
{
	struct tcp_listener	*l;
	char			 want[ADDR_STRLEN];
	int			 fd;

	addr_format((const struct sockaddr *)&a->ss, a->len, want,
	    sizeof(want));
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		log_msg(LOG_ERR, "tcp %s: %s", want, strerror(errno));
		return (-1);
	}
	l->srv = srv;
	if ((fd = net_bind(SOCK_STREAM, a, l->name, sizeof(l->name))) == -1) {
		log_msg(LOG_ERR, "cannot bind tcp %s: %s", want, strerror(errno));
		goto fail_free;
	}
	if (listen(fd, TCP_BACKLOG) == -1) {
		log_msg(LOG_ERR, "cannot listen on tcp %s: %s", want,
		    strerror(errno));
		close(fd);
		goto fail_free;
	}
	if ((l->retry = evtimer_new(srv->base, tcp_retry_cb, l)) == NULL) {
		log_warnx("tcp %s: cannot create timer", want);
		close(fd);
		goto fail_free;
	}
	l->lev = evconnlistener_new(srv->base, tcp_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (l->lev == NULL) {
		log_warnx("tcp %s: cannot create listener", want);
		close(fd);
		goto fail_timer;
	}
	evconnlistener_set_error_cb(l->lev, tcp_error_cb);
	TAILQ_INSERT_TAIL(&srv->tcps, l, entry);
	log_notice("listening on tcp %s", l->name);
	return (0);

fail_timer:
	event_free(l->retry);
fail_free:
	free(l);
	return (-1);
}

/* Stop listening and free the listener. */
void
tcp_close(struct tcp_listener *l)
{
	TAILQ_REMOVE(&l->srv->tcps, l, entry);
	evconnlistener_free(l->lev);
	event_free(l->retry);
	free(l);
}
