/*
 * The Prometheus exposition: every metric, summed over the workers at
 * scrape time from their lock-free counters, one series per listener
 * group where the counter is a group's.  http.c serves it.
 */
#include "config.h"

#include <sys/socket.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdatomic.h>
#include <time.h>

#include <event2/buffer.h>

#include "memory.h"
#include "metrics.h"
#include "server.h"
#include "worker.h"


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

/* One metric's lines: one per group of type, with a label or two. */
struct metrics_series {
	struct server		*srv;
	struct evbuffer		*b;
	const struct totals	*gt;		/* by group slot */
};

/*
 * Append name{group="G"[,label]} for every group of type: the counter at
 * offset off in its totals.
 */
static void
metrics_by_group(const struct metrics_series *s, const char *name,
    int type, const char *label, size_t off)
{
	const struct groups	*gs = s->srv->groups;
	unsigned		 i;

	for (i = 0; i < gs->n; i++)
		if (gs->v[i].type == type)
			evbuffer_add_printf(s->b, "%s{group=\"%s\"%s%s} %"
			    PRIu64 "\n", name, gs->v[i].name,
			    label != NULL ? "," : "", label != NULL ? label : "",
			    *(const uint64_t *)(const void *)((const char *)
			    &s->gt[i] + off));
}

/* A metric with its HELP and TYPE, then its lines by group. */
static void
metrics_group_metric(const struct metrics_series *s, const char *name,
    const char *type, const char *help, int proto, size_t off)
{
	metrics_head(s->b, name, type, help);
	metrics_by_group(s, name, proto, NULL, off);
}

#define T(f)	offsetof(struct totals, f)

/* The groups, and what each one's TCP clients did. */
static void
metrics_write_tcp(const struct metrics_series *s)
{
	const struct groups	*gs = s->srv->groups;
	unsigned		 i;

	metrics_head(s->b, "echod_group_active", "gauge", "1 for a listener "
	    "group in the running configuration; 0 for one a reload removed, "
	    "kept for its counters and connections until echod restarts.");
	for (i = 0; i < gs->n; i++)
		evbuffer_add_printf(s->b, "echod_group_active{group=\"%s\","
		    "proto=\"%s\"} %d\n", gs->v[i].name,
		    conf_proto(gs->v[i].type), gs->v[i].active);
	metrics_group_metric(s, "echod_connections_active", "gauge",
	    "TCP connections open now.", SOCK_STREAM, T(conns_active));
	metrics_group_metric(s, "echod_connections_accepted_total", "counter",
	    "TCP connections accepted and served.", SOCK_STREAM,
	    T(conns_accepted));
	metrics_head(s->b, "echod_connections_rejected_total", "counter",
	    "TCP connections not served, by reason: over "
	    "max_connections_per_ip, denied by the access list, or accept() "
	    "out of descriptors or memory (each failed accept).");
	metrics_by_group(s, "echod_connections_rejected_total", SOCK_STREAM,
	    "reason=\"per_ip\"", T(perip_refused));
	metrics_by_group(s, "echod_connections_rejected_total", SOCK_STREAM,
	    "reason=\"access\"", T(tcp_denied));
	metrics_by_group(s, "echod_connections_rejected_total", SOCK_STREAM,
	    "reason=\"descriptors\"", T(accept_errors));
	metrics_group_metric(s, "echod_connections_waited_total", "counter",
	    "TCP connections a worker accepted at max_connections and held, "
	    "unserved, until a slot was free.", SOCK_STREAM, T(limit_waits));
}

/* Bytes and datagrams in and out, and UDP's drops. */
static void
metrics_write_traffic(const struct metrics_series *s)
{
	metrics_head(s->b, "echod_received_bytes_total", "counter",
	    "Bytes received from clients, by protocol.");
	metrics_by_group(s, "echod_received_bytes_total", SOCK_STREAM,
	    "proto=\"tcp\"", T(tcp_bytes));
	metrics_by_group(s, "echod_received_bytes_total", SOCK_DGRAM,
	    "proto=\"udp\"", T(udp_bytes));
	metrics_head(s->b, "echod_sent_bytes_total", "counter",
	    "Bytes written back to clients, by protocol.");
	metrics_by_group(s, "echod_sent_bytes_total", SOCK_STREAM,
	    "proto=\"tcp\"", T(tcp_bytes_out));
	metrics_by_group(s, "echod_sent_bytes_total", SOCK_DGRAM,
	    "proto=\"udp\"", T(udp_bytes_out));
	metrics_head(s->b, "echod_received_messages_total", "counter",
	    "Messages received, by protocol: UDP datagrams (TCP is a byte "
	    "stream and has none).");
	metrics_by_group(s, "echod_received_messages_total", SOCK_DGRAM,
	    "proto=\"udp\"", T(udp_datagrams));
	metrics_head(s->b, "echod_sent_messages_total", "counter",
	    "Messages sent back, by protocol: UDP datagrams.");
	metrics_by_group(s, "echod_sent_messages_total", SOCK_DGRAM,
	    "proto=\"udp\"", T(udp_sent));
	metrics_head(s->b, "echod_udp_dropped_total", "counter",
	    "UDP datagrams not echoed, by reason: from a reflector port, over "
	    "the source's rate limit, denied by the access list, or a reply "
	    "the socket would not take.");
	metrics_by_group(s, "echod_udp_dropped_total", SOCK_DGRAM,
	    "reason=\"reflection\"", T(udp_reflection));
	metrics_by_group(s, "echod_udp_dropped_total", SOCK_DGRAM,
	    "reason=\"rate_limit\"", T(udp_rate_limited));
	metrics_by_group(s, "echod_udp_dropped_total", SOCK_DGRAM,
	    "reason=\"access\"", T(udp_denied));
	metrics_by_group(s, "echod_udp_dropped_total", SOCK_DGRAM,
	    "reason=\"send_failure\"", T(udp_dropped));
}

/* Backpressure, memory, timeouts and the drain. */
static void
metrics_write_limits(const struct metrics_series *s)
{
	metrics_group_metric(s, "echod_backpressure_pauses_total", "counter",
	    "Times echod stopped reading from a client whose unsent echo "
	    "reached buffer_limit.", SOCK_STREAM, T(backpressure_pauses));
	metrics_group_metric(s, "echod_memory_pauses_total", "counter",
	    "Times echod stopped reading from a client because the echo data "
	    "held over all connections had reached memory_limit.", SOCK_STREAM,
	    T(memory_pauses));
	metrics_one(s->b, "echod_buffered_bytes", "gauge",
	    "Echo data held now in echod's buffers, waiting for clients to "
	    "read it; what memory_limit bounds.", memory_buffered(s->srv));
	metrics_one(s->b, "echod_memory_limit_bytes", "gauge",
	    "The memory_limit in force, in bytes; 0 for none.",
	    atomic_load_explicit(&s->srv->live.memory_limit,
	    memory_order_relaxed));
	metrics_group_metric(s, "echod_idle_timeouts_total", "counter",
	    "TCP connections closed by idle_timeout.", SOCK_STREAM,
	    T(idle_timeouts));
	metrics_group_metric(s, "echod_drain_cut_connections_total",
	    "counter", "TCP connections that lost data in a shutdown: cut at "
	    "its timeout or a second signal, or sent bytes after echod's FIN.",
	    SOCK_STREAM, T(cut_conns));
	metrics_group_metric(s, "echod_drain_cut_bytes_total", "counter",
	    "Bytes those connections had sent and did not get back.",
	    SOCK_STREAM, T(cut_bytes));
}

/* Write the whole exposition into b. */
void
metrics_write(struct server *srv, struct evbuffer *b)
{
	struct totals		 gt[GROUP_SLOTS];
	struct metrics_series	 s = { srv, b, gt };
	unsigned		 i, slot;
	uint64_t		 n;

	for (slot = 0; slot < srv->groups->n; slot++)
		server_group_totals(srv, slot, &gt[slot]);
	metrics_head(b, "echod_build_info", "gauge",
	    "Always 1; the version echod was built from.");
	evbuffer_add_printf(b, "echod_build_info{version=\"%s\"} 1\n",
	    PACKAGE_VERSION);
	metrics_one(b, "echod_uptime_seconds", "gauge",
	    "Seconds since echod started.",
	    (uint64_t)(time(NULL) - srv->started));
	metrics_one(b, "echod_workers", "gauge", "Worker threads.",
	    srv->nworkers);
	metrics_head(b, "echod_worker_connections", "gauge",
	    "TCP connections open now, per worker.");
	for (i = 0; i < srv->nworkers; i++) {
		for (slot = 0, n = 0; slot < srv->groups->n; slot++)
			n += STAT_GET(&srv->workers[i].stats[slot],
			    conns_active);
		evbuffer_add_printf(b, "echod_worker_connections{worker=\"%u\"}"
		    " %" PRIu64 "\n", i, n);
	}
	metrics_write_tcp(&s);
	metrics_write_traffic(&s);
	metrics_write_limits(&s);
}
