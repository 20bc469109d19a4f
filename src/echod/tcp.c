/*
 * TCP's part of a listener (listener.c): each worker has one per address
 * and hands what it accepts to conn.c.  Accepting pauses (and the clients wait in the backlog) when
 * max_connections is reached or descriptors or memory run out.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "os.h"
#include "server.h"
#include "tcp.h"
#include "units.h"
#include "worker.h"

#define TCP_LIMIT_POLL_MS	100	/* look again at max_connections */
#define TCP_ERROR_PAUSE_MS	250	/* wait after EMFILE, ENOBUFS, ... */
#define TCP_DRAIN_ACCEPTS	65536	/* at most a full backlog's worth */

static int	tcp_unpark(struct listener *, int);

/* Stop accepting on l and look again after ms milliseconds. */
static void
tcp_pause(struct listener *l, unsigned ms)
{
	struct timeval	 tv = units_timeval(ms);

	if (!l->tcp.paused && evconnlistener_disable(l->tcp.lev) == -1)
		log_warnx("tcp %s: cannot pause accepting", l->name);
	l->tcp.paused = 1;
	if (evtimer_add(l->tcp.retry, &tv) == -1)
		log_warnx("tcp %s: cannot arm timer", l->name);
}

/* If accepting on l is paused, look again now. */
void
tcp_wake(struct listener *l)
{
	if (l->tcp.paused)
		tcp_pause(l, 0);
}

/* Timer callback: accept again, unless still at the connection limit. */
static void
tcp_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener		*l = arg;
	struct server		*srv = l->w->srv;

	/* A parked client first: it has waited longest. */
	if (tcp_unpark(l, 0) != 0 || limit_full(&srv->limit)) {
		tcp_pause(l, TCP_LIMIT_POLL_MS);
		return;
	}
	if (atomic_exchange(&srv->limit.full, 0))
		log_notice("below max_connections again: accepting");
	l->tcp.paused = 0;
	if (evconnlistener_enable(l->tcp.lev) == -1)
		log_warnx("tcp %s: cannot resume accepting", l->name);
}

/*
 * Hold a client accepted when no slot was free, unserved, until one is
 * (tcp_unpark): the other workers accept one each before they learn of
 * the limit, and closing it would turn a client that should wait into one
 * refused.  The listener then pauses, so it holds one at most.
 */
static void
tcp_park(struct listener *l, int fd, const struct sockaddr *sa,
    socklen_t salen, int counted, int proxy)
{
	struct listener_tcp	*t = &l->tcp;

	t->parked_fd = fd;
	memcpy(&t->parked_sa, sa, salen < sizeof(t->parked_sa) ? salen :
	    sizeof(t->parked_sa));
	t->parked_len = salen;
	t->parked_counted = counted;
	t->parked_slot = l->slot;
	t->parked_proxy = proxy;
	limit_park(&l->w->srv->limit);
	STAT_ADD(&l->w->stats[l->slot], limit_waits, 1);
}

/*
 * Serve l's parked client if a slot is free (any while draining).  Return
 * -1 if it must wait on, 1 if it took the last slot, else 0.
 */
static int
tcp_unpark(struct listener *l, int draining)
{
	struct listener_tcp	*t = &l->tcp;
	int			 slot;

	if (t->parked_fd == -1)
		return (0);
	if ((slot = limit_take(&l->w->srv->limit, draining)) == -1)
		return (-1);
	/* As admitted, whatever a reload changed meanwhile. */
	conn_new(l->w, t->parked_slot, t->parked_fd,
	    (struct sockaddr *)&t->parked_sa, t->parked_len, t->parked_counted,
	    t->parked_proxy);
	t->parked_fd = -1;
	limit_unpark(&l->w->srv->limit);
	return (slot);
}

/*
 * Admit a client accepted on l, or close it: the access list and the
 * per-address limit; past max_connections (unless draining) it is parked.
 * Return 1 if the listeners must pause (the last slot is taken), else 0.
 */
static int
tcp_admit(struct listener *l, int fd, struct sockaddr *sa,
    socklen_t salen, int draining)
{
	struct worker		*w = l->w;
	struct limit		*lim = &w->srv->limit;
	const struct lgroup	*g = listener_group(l);
	int			 counted = 0, slot = 0;

	if (g->proxy) {
		/*
		 * Only a balancer may speak for its clients; the access lists
		 * and per-address counts wait for the client it names
		 * (preamble.c).
		 */
		if (!cidr_list_match(&g->proxy_from, sa)) {
			STAT_ADD(&w->stats[l->slot], proxy_untrusted, 1);
			close(fd);
			return (0);
		}
	} else if ((counted = limit_client(lim, g, l->slot, sa,
	    &w->stats[l->slot])) == -1) {
		close(fd);
		return (0);
	}
	/*
	 * Clients parked on any worker come first: a newcomer waits too
	 * when the places left are no more than they need, or the worker
	 * where places free up would keep them for its own.
	 */
	if (l->tcp.parked_fd == -1 && ((!draining && limit_yield(lim)) ||
	    (slot = limit_take(lim, draining)) == -1)) {
		tcp_park(l, fd, sa, salen, counted, g->proxy);
		return (1);
	}
	if (l->tcp.parked_fd != -1 && (slot = limit_take(lim, draining)) ==
	    -1) {
		/* Not reached: a listener pauses as soon as it parks. */
		close(fd);
		if (counted)
			limit_ip_put(lim, l->slot, sa);
		return (1);
	}
	conn_new(w, l->slot, fd, sa, salen, counted, g->proxy);
	return (slot);
}

/* Stop accepting on all of a worker's listeners: max_connections. */
static void
tcp_pause_all(struct worker *w)
{
	struct listener		*each;
	struct server		*srv = w->srv;

	if (!atomic_exchange(&srv->limit.full, 1))
		log_warnx("max_connections (%zu) reached: not accepting until "
		    "a connection closes", atomic_load_explicit(
		    &srv->limit.max, memory_order_relaxed));
	TAILQ_FOREACH(each, &w->listeners, entry)
		if (each->type == SOCK_STREAM)
			tcp_pause(each, TCP_LIMIT_POLL_MS);
}

/* Callback for a new connection on a listener. */
static void
tcp_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener	*l = arg;

	if (l->tcp.failing) {
		l->tcp.failing = 0;
		log_notice("tcp %s: accepting again", l->name);
	}
	if (tcp_admit(l, (int)fd, sa, (socklen_t)salen, 0))
		tcp_pause_all(l->w);
}

/*
 * Before l closes (a drain, or a reload that drops its address): serve its
 * parked client and accept every client waiting in its backlog, past
 * max_connections too, since closing the listener would reset them and
 * lose what they sent.
 */
void
tcp_accept_queued(struct listener *l)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 fd, lfd;
	unsigned		 n, i;

	lfd = (int)evconnlistener_get_fd(l->tcp.lev);
	/* Accepted already: ours, whoever owns the listening socket. */
	(void)tcp_unpark(l, 1);
	if (l->inherited)
		return;		/* systemd keeps its backlog for the next one */
	for (i = n = 0; i < TCP_DRAIN_ACCEPTS; i++) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				STAT_ADD(&l->w->stats[l->slot], accept_errors,
				    1);
				log_warnx("tcp %s: accepting the backlog "
				    "before closing: %s; clients still queued "
				    "are reset", l->name, strerror(errno));
			}
			break;
		}
		tcp_admit(l, fd, (struct sockaddr *)&ss, len, 1);
		n++;
	}
	if (n > 0)
		log_info("tcp %s: accepted %u queued connections to drain them",
		    l->name, n);
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
	struct listener		*l = arg;
	int			 err = EVUTIL_SOCKET_ERROR();

	STAT_ADD(&l->w->stats[l->slot], accept_errors, 1);
	if (!l->tcp.failing) {
		l->tcp.failing = 1;
		log_warnx("tcp %s: accept: %s; retrying every %d ms", l->name,
		    strerror(err), TCP_ERROR_PAUSE_MS);
	}
	tcp_pause(l, TCP_ERROR_PAUSE_MS);
}

/*
 * Set up the TCP part of l: accept on the listening socket fd, which l
 * then owns.  Return 0, or -1 after closing fd (logged).
 */
int
tcp_listener_init(struct listener *l, int fd)
{
	struct listener_tcp	*t = &l->tcp;

	t->parked_fd = -1;
	if ((t->retry = evtimer_new(l->w->base, tcp_retry_cb, l)) == NULL) {
		log_msg(LOG_ERR, "tcp %s: cannot create timer", l->name);
		goto close_fd;
	}
	/* Backlog 0: already listening; -1 would listen(fd, 128) again. */
	t->lev = evconnlistener_new(l->w->base, tcp_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (t->lev == NULL) {
		log_msg(LOG_ERR, "tcp %s: cannot create listener", l->name);
		goto free_retry;
	}
	evconnlistener_set_error_cb(t->lev, tcp_error_cb);
	return (0);

free_retry:
	event_free(t->retry);
close_fd:
	close(fd);
	return (-1);
}

/* Stop listening: release the TCP part of l (listener_close frees l). */
void
tcp_listener_fini(struct listener *l)
{
	struct listener_tcp	*t = &l->tcp;

	/* Still parked: the worker is being freed (tcp_accept_queued). */
	if (t->parked_fd != -1) {
		close(t->parked_fd);
		if (t->parked_counted)
			limit_ip_put(&l->w->srv->limit, t->parked_slot,
			    (struct sockaddr *)&t->parked_sa);
		limit_unpark(&l->w->srv->limit);
	}
	evconnlistener_free(t->lev);
	event_free(t->retry);
}
