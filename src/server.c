/*
 * The daemon's lifecycle: one event_base, the listeners from the
 * configuration, the signals, and the graceful drain on SIGTERM or SIGINT.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "echod.h"
#include "log.h"

/* Close every connection now, counting what could not be echoed. */
static void
server_cut(struct server *srv, const char *why)
{
	struct conn	*c;
	size_t		 n = 0;
	uint64_t	 unsent = 0;

	while ((c = TAILQ_FIRST(&srv->conns)) != NULL) {
		unsent += evbuffer_get_length(bufferevent_get_output(c->bev));
		n++;
		conn_free(c);
	}
	if (n > 0)
		log_warnx("%s: cut %zu connections with %" PRIu64 " bytes "
		    "not yet echoed", why, n, unsent);
}

/* Timer callback: the drain took longer than shutdown_timeout. */
static void
server_shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	server_cut(srv, "shutdown timeout");
	event_base_loopexit(srv->base, NULL);
}

/* Stop accepting and start draining; a second signal cuts at once. */
static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server	*srv = arg;
	struct conn	*c, *next;
	struct timeval	 tv;
	uint64_t	 ms = srv->conf.shutdown_timeout_ms;

	if (srv->draining) {
		log_notice("signal %d again: stopping now", (int)sig);
		server_cut(srv, "second signal");
		event_base_loopexit(srv->base, NULL);
		return;
	}
	log_notice("signal %d: stopping; draining %zu connections for up "
	    "to %" PRIu64 " ms", (int)sig, srv->nconns, ms);
	srv->draining = 1;
	while (!TAILQ_EMPTY(&srv->tcps))
		tcp_close(TAILQ_FIRST(&srv->tcps));
	while (!TAILQ_EMPTY(&srv->udps))
		udp_close(TAILQ_FIRST(&srv->udps));

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	if (evtimer_add(srv->shutdown_timer, &tv) == -1) {
		server_cut(srv, "cannot arm shutdown timer");
		event_base_loopexit(srv->base, NULL);
		return;
	}
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		conn_drain(c);	/* may free c, never another */
	}
	/* conn_drain may have freed them all already. */
	if (srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
}

/* Called by conn_free: the last connection of a drain ends the loop. */
void
server_conn_gone(struct server *srv)
{
	if (srv->draining && srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
}

/*
 * Set up the event loop, signals and every listener from conf, whose
 * contents the server takes over.  Return 0, or -1 after logging why; then
 * server_free releases what was set up.
 */
int
server_init(struct server *srv, struct conf *conf)
{
	size_t	 i;

	memset(srv, 0, sizeof(*srv));
	srv->conf = *conf;
	memset(conf, 0, sizeof(*conf));
	TAILQ_INIT(&srv->tcps);
	TAILQ_INIT(&srv->udps);
	TAILQ_INIT(&srv->conns);

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_msg(LOG_ERR, "cannot ignore SIGPIPE: %s", strerror(errno));
		return (-1);
	}
	if ((srv->base = event_base_new()) == NULL) {
		log_msg(LOG_ERR, "cannot create event base");
		return (-1);
	}
	if ((srv->udp_buf = malloc(UDP_BUFSIZE)) == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return (-1);
	}
	srv->sigterm = evsignal_new(srv->base, SIGTERM, server_signal_cb, srv);
	srv->sigint = evsignal_new(srv->base, SIGINT, server_signal_cb, srv);
	srv->shutdown_timer = evtimer_new(srv->base,
	    server_shutdown_timeout_cb, srv);
	if (srv->sigterm == NULL || srv->sigint == NULL ||
	    srv->shutdown_timer == NULL ||
	    evsignal_add(srv->sigterm, NULL) == -1 ||
	    evsignal_add(srv->sigint, NULL) == -1) {
		log_msg(LOG_ERR, "cannot set up signal handling");
		return (-1);
	}
	for (i = 0; i < srv->conf.tcp_listen.n; i++)
		if (tcp_listen(srv, &srv->conf.tcp_listen.v[i]) == -1)
			return (-1);
	for (i = 0; i < srv->conf.udp_listen.n; i++)
		if (udp_listen(srv, &srv->conf.udp_listen.v[i]) == -1)
			return (-1);
	return (0);
}

/* Run until a signal's drain ends.  Return 0 or -1. */
int
server_run(struct server *srv)
{
	log_notice("echod %s ready (%s method)", PACKAGE_VERSION,
	    event_base_get_method(srv->base));
	if (event_base_dispatch(srv->base) == -1) {
		log_msg(LOG_ERR, "event loop failed");
		return (-1);
	}
	log_notice("stopped: %" PRIu64 " tcp connections served, %" PRIu64
	    " tcp bytes and %" PRIu64 " udp datagrams echoed, %" PRIu64
	    " udp replies dropped", srv->stats.conns_accepted,
	    srv->stats.tcp_bytes, srv->stats.udp_datagrams,
	    srv->stats.udp_dropped);
	return (0);
}

/* Release everything server_init set up, however far it got. */
void
server_free(struct server *srv)
{
	while (!TAILQ_EMPTY(&srv->tcps))
		tcp_close(TAILQ_FIRST(&srv->tcps));
	while (!TAILQ_EMPTY(&srv->udps))
		udp_close(TAILQ_FIRST(&srv->udps));
	srv->draining = 0;
	while (!TAILQ_EMPTY(&srv->conns))
		conn_free(TAILQ_FIRST(&srv->conns));
	if (srv->sigterm != NULL)
		event_free(srv->sigterm);
	if (srv->sigint != NULL)
		event_free(srv->sigint);
	if (srv->shutdown_timer != NULL)
		event_free(srv->shutdown_timer);
	if (srv->base != NULL) {
		/* Let deferred frees finish before the base goes. */
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
		event_base_free(srv->base);
	}
	free(srv->udp_buf);
	conf_free(&srv->conf);
}
