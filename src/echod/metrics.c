/*
 * The Prometheus exposition: every metric, summed over the workers at
 * scrape time from their lock-free counters.  http.c serves it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <time.h>

#include <event2/buffer.h>

#include "echod.h"

static void	metrics_write_limits(struct server *, const struct totals *,
		    struct evbuffer *);

/* Append one metric's HELP and TYPE lines. */
void
metrics_head(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* Append a metric with no labels. */
void
metrics_one(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t v)
{
	metrics_head(b, name, type, help);
	evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* Write the whole exposition into b. */
void
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
	    "TCP connections not served, by reason: over "
	    "max_connections_per_ip, denied by the access list, or accept() "
	    "out of descriptors or memory (each failed accept).");
	evbuffer_add_printf(b,
	    "echod_connections_rejected_total{reason=\"per_ip\"} %" PRIu64 "\n"
	    "echod_connections_rejected_total{reason=\"access\"} %" PRIu64 "\n"
	    "echod_connections_rejected_total{reason=\"descriptors\"} %" PRIu64
	    "\n", t.perip_refused, t.tcp_denied, t.accept_errors);
	metrics_one(b, "echod_connections_waited_total", "counter",
	    "TCP connections a worker accepted at max_connections and held, "
	    "unserved, until a slot was free.", t.limit_waits);

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
	metrics_write_limits(srv, &t, b);
}

/* Append the metrics of backpressure, memory, timeouts and the drain. */
static void
metrics_write_limits(struct server *srv, const struct totals *t,
    struct evbuffer *b)
{
	metrics_one(b, "echod_backpressure_pauses_total", "counter",
	    "Times echod stopped reading from a client whose unsent echo "
	    "reached buffer_limit.", t->backpressure_pauses);
	metrics_one(b, "echod_memory_pauses_total", "counter",
	    "Times echod stopped reading from a client because the echo data "
	    "held over all connections had reached memory_limit.",
	    t->memory_pauses);
	metrics_one(b, "echod_buffered_bytes", "gauge",
	    "Echo data held now in echod's buffers, waiting for clients to "
	    "read it; what memory_limit bounds.", t->buffered);
	metrics_one(b, "echod_memory_limit_bytes", "gauge",
	    "The memory_limit in force, in bytes; 0 for none.",
	    atomic_load_explicit(&srv->live.memory_limit,
	    memory_order_relaxed));
	metrics_one(b, "echod_idle_timeouts_total", "counter",
	    "TCP connections closed by idle_timeout.", t->idle_timeouts);
	metrics_one(b, "echod_drain_cut_connections_total", "counter",
	    "TCP connections that lost data in a shutdown: cut at its timeout "
	    "or a second signal, or sent bytes after echod's FIN.",
	    t->cut_conns);
	metrics_one(b, "echod_drain_cut_bytes_total", "counter",
	    "Bytes those connections had sent and did not get back.",
	    t->cut_bytes);
}
