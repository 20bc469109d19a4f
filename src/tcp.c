/*
 * TCP listeners: each worker has one per address and hands what it accepts
 * to conn.c.  Accepting pauses (and the clients wait in the backlog) when
 * max_connections is reached or descriptors or memory run out.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "echod.h"
#include "log.h"

#define TCP_LIMIT_POLL_MS	100	/* look again at max_connections */
#define TCP_ERROR_PAUSE_MS	250	/* wait after EMFILE, ENOBUFS, ... */

/* Tell whether max_connections leaves no room. */
static int
tcp_at_limit(struct server *srv)
{
	size_t	 max = atomic_load_explicit(&srv->live.max_connections,
		    memory_order_relaxed);

	return (max > 0 && atomic_load(&srv->nconns) >= max);
}

/* Stop accepting on l and look again after ms milliseconds. */
void
tcp_pause(struct tcp_listener *l, unsigned ms)
{
	struct timeval	 tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

	if (!l->paused && evconnlistener_disable(l->lev) == -1)
		log_warnx("tcp %s: cannot pause accepting", l->name);
	l->paused = 1;
	if (evtimer_add(l->retry, &tv) == -1)
		log_warnx("tcp %s: cannot arm timer", l->name);
}

/* Timer callback: accept again, unless still at the connection limit. */
static void
tcp_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_listener	*l = arg;
	struct server		*srv = l->w->srv;

	if (tcp_at_limit(srv)) {
		tcp_pause(l, TCP_LIMIT_POLL_MS);
		return;
	}
	if (atomic_exchange(&srv->at_limit, 0))
		log_notice("below max_connections again: accepting");
	l->paused = 0;
	if (evconnlistener_enable(l->lev) == -1)
		log_warnx("tcp %s: cannot resume accepting", l->name);
}

/* Callback for a new connection on a listener. */
static void
tcp_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct tcp_listener	*l = arg;
	struct worker		*w = l->w;
	struct server		*srv = w->srv;
	size_t			 max, n;
	struct tcp_listener	*each;
	int			 counted = 0;

	max = atomic_load_explicit(&srv->live.max_connections,
	    memory_order_relaxed);
	if (l->failing) {
		l->failing = 0;
		log_notice("tcp %s: accepting again", l->name);
	}
	if (!guard_allowed(&w->guard->tcp_allow, &w->guard->tcp_deny, sa)) {
		STAT_ADD(&w->stats, tcp_denied, 1);
		close(fd);
		return;
	}
	if (w->guard->tcp_max_per_ip > 0) {
		if (perip_add(&srv->perip, sa, w->guard->tcp_max_per_ip) ==
		    -1) {
			STAT_ADD(&w->stats, perip_refused, 1);
			close(fd);
			return;
		}
		counted = 1;
	}
	n = atomic_fetch_add(&srv->nconns, 1) + 1;
	if (max > 0 && n > max) {
		/* Another worker took the last slot in the same instant. */
		atomic_fetch_sub(&srv->nconns, 1);
		if (counted)
			perip_del(&srv->perip, sa);
		close(fd);
		STAT_ADD(&w->stats, limit_refused, 1);
		tcp_pause(l, TCP_LIMIT_POLL_MS);
		return;
	}
	conn_new(w, fd, sa, (socklen_t)salen, counted);
	if (max > 0 && n == max) {
		if (!atomic_exchange(&srv->at_limit, 1))
			log_warnx("max_connections (%zu) reached: not "
			    "accepting until a connection closes", max);
		TAILQ_FOREACH(each, &w->tcps, entry)
			tcp_pause(each, TCP_LIMIT_POLL_MS);
	}
}

/*
 * Callback for accept() errors that are not simply "try again".  Running
 * out of descriptors or memory would wake us on every loop, so stop
 * accepting for a moment; clients wait in the backlog meanwhile.  One
 * line is logged per episode, not per attempt.
 */
static void
tcp_error_cb(struct evconnlistener *lev, void *arg)
{
	struct tcp_listener	*l = arg;
	int			 err = EVUTIL_SOCKET_ERROR();

	STAT_ADD(&l->w->stats, accept_errors, 1);
	if (!l->failing) {
		l->failing = 1;
		log_warnx("tcp %s: accept: %s; retrying every %d ms", l->name,
		    strerror(err), TCP_ERROR_PAUSE_MS);
	}
	tcp_pause(l, TCP_ERROR_PAUSE_MS);
}

/*
 * Make worker w accept on the listening socket fd, which it then owns;
 * a is the address as configured, name as bound.  Return 0, or -1 after
 * closing fd (logged).
 */
int
tcp_attach(struct worker *w, int fd, const struct addr *a, const char *name,
    int inherited)
{
	struct tcp_listener	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		log_msg(LOG_ERR, "tcp %s: %s", name, strerror(errno));
		close(fd);
		return (-1);
	}
	l->w = w;
	l->addr = *a;
	l->inherited = inherited;
	snprintf(l->name, sizeof(l->name), "%s", name);
	if ((l->retry = evtimer_new(w->base, tcp_retry_cb, l)) == NULL) {
		log_msg(LOG_ERR, "tcp %s: cannot create timer", name);
		close(fd);
		free(l);
		return (-1);
	}
	/* Backlog 0: already listening; -1 would listen(fd, 128) again. */
	l->lev = evconnlistener_new(w->base, tcp_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l->lev == NULL) {
		log_msg(LOG_ERR, "tcp %s: cannot create listener", name);
		close(fd);
		event_free(l->retry);
		free(l);
		return (-1);
	}
	evconnlistener_set_error_cb(l->lev, tcp_error_cb);
	TAILQ_INSERT_TAIL(&w->tcps, l, entry);
	return (0);
}

/* Stop listening and free the listener. */
void
tcp_close(struct tcp_listener *l)
{
	TAILQ_REMOVE(&l->w->tcps, l, entry);
	evconnlistener_free(l->lev);
	event_free(l->retry);
	free(l);
}
