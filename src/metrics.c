/*
 * Prometheus metrics over HTTP, served by libevent's evhttp on the main
 * thread's loop, so a scrape never runs on a worker.  Counters are summed
 * over the workers at scrape time from their lock-free counters.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "echod.h"
#include "log.h"

#define METRICS_MAX_LISTEN	8
#define METRICS_PAUSE_MS	250

struct metrics {
	struct server		*srv;
	struct evhttp		*http;
	struct evconnlistener	*levs[METRICS_MAX_LISTEN];
	size_t			 nlevs;
	struct event		*retry;
	int			 failing;
};

/* The one metrics server: evhttp hands its own argument to error callbacks. */
static struct metrics	*metrics_self;

/* Append one metric's HELP and TYPE lines. */
static void
metrics_head(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* Append a metric with no labels. */
static void
metrics_one(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_head(b, name, type, help);
	evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* Write the whole exposition into b. */
static void
metrics_write(struct server *srv, struct evbuffer *b)
{
	struct totals	 t;
	unsigned	 i;

	server_totals(srv, &t);
	metrics_head(b, "echod_build_info", "gauge",
	    "Always 1; the version echod was built from.");
	evbuffer_add_printf(b, "echod_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	metrics_one(b, "echod_uptime_seconds", "gauge",
	    "Seconds since echod started.",
	    (uint64_t)(time(NULL) - srv->started));
	metrics_one(b, "echod_workers", "gauge", "Worker threads.",
	    srv->nworkers);

	metrics_one(b, "echod_connections_active", "gauge",
	    "TCP connections open now.", t.conns_active);
	metrics_head(b, "echod_worker_connections", "gauge",
	    "TCP connections open now, per worker.");
	for (i = 0; i < srv->nworkers; i++)
		evbuffer_add_printf(b, "echod_worker_connections{worker=\"%u\"}"
		    " %" PRIu64 "\n", i, STAT_GET(&srv->workers[i].stats,
		    conns_active));
	metrics_one(b, "echod_connections_accepted_total", "counter",
	    "TCP connections accepted and served.", t.conns_accepted);
	metrics_head(b, "echod_connections_rejected_total", "counter",
	    "TCP connections not served, by reason: over max_connections "
	    "(closed at once), over max_connections_per_ip, denied by the "
	    "access list, or accept() out of descriptors or memory (each "
	    "failed accept).");
	evbuffer_add_printf(b,
	    "echod_connections_rejected_total{reason=\"limit\"} %" PRIu64 "\n"
	    "echod_connections_rejected_total{reason=\"per_ip\"} %" PRIu64 "\n"
	    "echod_connections_rejected_total{reason=\"access\"} %" PRIu64 "\n"
	    "echod_connections_rejected_total{reason=\"descriptors\"} %" PRIu64
	    "\n", t.limit_refused, t.perip_refused, t.tcp_denied,
	    t.accept_errors);

	metrics_head(b, "echod_received_bytes_total", "counter",
	    "Bytes received from clients, by protocol.");
	evbuffer_add_printf(b,
	    "echod_received_bytes_total{proto=\"tcp\"} %" PRIu64 "\n"
	    "echod_received_bytes_total{proto=\"udp\"} %" PRIu64 "\n",
	    t.tcp_bytes, t.udp_bytes);
	metrics_head(b, "echod_sent_bytes_total", "counter",
	    "Bytes written back to clients, by protocol.");
	evbuffer_add_printf(b,
	    "echod_sent_bytes_total{proto=\"tcp\"} %" PRIu64 "\n"
	    "echod_sent_bytes_total{proto=\"udp\"} %" PRIu64 "\n",
	    t.tcp_bytes_out, t.udp_bytes_out);
	metrics_head(b, "echod_received_messages_total", "counter",
	    "Messages received, by protocol: UDP datagrams (TCP is a byte "
	    "stream and has none).");
	evbuffer_add_printf(b, "echod_received_messages_total{proto=\"udp\"} %"
	    PRIu64 "\n", t.udp_datagrams);
	metrics_head(b, "echod_sent_messages_total", "counter",
	    "Messages sent back, by protocol: UDP datagrams.");
	evbuffer_add_printf(b, "echod_sent_messages_total{proto=\"udp\"} %"
	    PRIu64 "\n", t.udp_sent);
	metrics_head(b, "echod_udp_dropped_total", "counter",
	    "UDP datagrams not echoed, by reason: from a reflector port, over "
	    "the source's rate limit, denied by the access list, or a reply "
	    "the socket would not take.");
	evbuffer_add_printf(b,
	    "echod_udp_dropped_total{reason=\"reflection\"} %" PRIu64 "\n"
	    "echod_udp_dropped_total{reason=\"rate_limit\"} %" PRIu64 "\n"
	    "echod_udp_dropped_total{reason=\"access\"} %" PRIu64 "\n"
	    "echod_udp_dropped_total{reason=\"send_failure\"} %" PRIu64 "\n",
	    t.udp_reflection, t.udp_rate_limited, t.udp_denied,
	    t.udp_dropped);
	metrics_one(b, "echod_backpressure_pauses_total", "counter",
	    "Times echod stopped reading from a client whose unsent echo "
	    "reached buffer_limit.", t.backpressure_pauses);
	metrics_one(b, "echod_idle_timeouts_total", "counter",
	    "TCP connections closed by idle_timeout.", t.idle_timeouts);
}

/* HTTP callback: /metrics, and 404 for anything else. */
static void
metrics_request_cb(struct evhttp_request *req, void *arg)
{
	struct metrics	*m = arg;
	struct evbuffer	*b;

	if (strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	metrics_write(m->srv, b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

/* Timer callback: accept scrapes again. */
static void
metrics_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metrics	*m = arg;
	size_t		 i;

	m->failing = 0;
	for (i = 0; i < m->nlevs; i++)
		evconnlistener_enable(m->levs[i]);
}

/*
 * Callback for accept errors on a metrics listener: out of descriptors,
 * evhttp would retry on every loop and spin, so pause them all for a
 * moment, as tcp.c does for the echo listeners.
 */
static void
metrics_error_cb(struct evconnlistener *lev, void *arg)
{
	struct metrics	*m = metrics_self;
	struct timeval	 tv = { 0, METRICS_PAUSE_MS * 1000 };
	size_t		 i;

	if (m == NULL)
		return;
	if (!m->failing++)
		log_warnx("metrics: accept: %s; pausing for %d ms",
		    strerror(EVUTIL_SOCKET_ERROR()), METRICS_PAUSE_MS);
	for (i = 0; i < m->nlevs; i++)
		evconnlistener_disable(m->levs[i]);
	evtimer_add(m->retry, &tv);
}

/*
 * Serve /metrics on every address of list from the main loop.  Return
 * the server, or NULL after logging why.
 */
struct metrics *
metrics_start(struct server *srv, const struct addr_list *list)
{
	struct metrics	*m;
	char		 name[ADDR_STRLEN], want[ADDR_STRLEN];
	size_t		 i;
	int		 fd;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->http = evhttp_new(srv->base)) == NULL) {
		log_msg(LOG_ERR, "metrics: cannot create HTTP server");
		free(m);
		return (NULL);
	}
	m->srv = srv;
	/* A scraper needs little: keep every request small and short. */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_timeout(m->http, 10);
	evhttp_set_gencb(m->http, metrics_request_cb, m);
	if ((m->retry = evtimer_new(srv->base, metrics_retry_cb, m)) == NULL ||
	    list->n > METRICS_MAX_LISTEN) {
		log_msg(LOG_ERR, "metrics: %s", list->n > METRICS_MAX_LISTEN ?
		    "at most 8 listen addresses" : "cannot create timer");
		metrics_free(m);
		return (NULL);
	}
	for (i = 0; i < list->n; i++) {
		addr_format((const struct sockaddr *)&list->v[i].ss,
		    list->v[i].len, want, sizeof(want));
		fd = net_bind(SOCK_STREAM, &list->v[i], 0, name, sizeof(name));
		if (fd == -1 || listen(fd, 64) == -1) {
			log_msg(LOG_ERR, "cannot listen for metrics on %s: %s",
			    want, strerror(errno));
			if (fd != -1)
				close(fd);
			metrics_free(m);
			return (NULL);
		}
		/* Our own listener, so accept errors get metrics_error_cb. */
		m->levs[m->nlevs] = evconnlistener_new(srv->base, NULL, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (m->levs[m->nlevs] == NULL ||
		    evhttp_bind_listener(m->http, m->levs[m->nlevs]) == NULL) {
			log_msg(LOG_ERR, "cannot listen for metrics on %s",
			    want);
			if (m->levs[m->nlevs] == NULL)
				close(fd);
			else
				evconnlistener_free(m->levs[m->nlevs]);
			metrics_free(m);
			return (NULL);
		}
		evconnlistener_set_error_cb(m->levs[m->nlevs++],
		    metrics_error_cb);
		log_notice("metrics on http://%s/metrics", name);
	}
	metrics_self = m;
	return (m);
}

/* Stop serving metrics. */
void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	if (m == metrics_self)
		metrics_self = NULL;
	if (m->retry != NULL)
		event_free(m->retry);
	evhttp_free(m->http);	/* and the listeners bound to it */
	free(m);
}
