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
#include <string.h>
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

#define T(f)	offsetof(struct totals, f)
#define TCP	SOCK_STREAM
#define UDP	SOCK_DGRAM
#define TLS	(-1)	/* TLS groups only */

/*
 * The metrics counted per listener group: one line per group of the
 * protocol, of the counter at off in its totals.  A row without help adds
 * lines (another label) to the metric of the row before.
 */
static const struct metrics_series {
	const char	*name;
	const char	*type;
	const char	*help;
	int		 proto;
	const char	*label;		/* besides group, or NULL */
	size_t		 off;
} metrics_series[] = {
	{ "echod_connections_active", "gauge",
	    "TCP connections open now.", TCP, NULL, T(conns_active) },
	{ "echod_connections_accepted_total", "counter",
	    "TCP connections accepted and served (with proxy_protocol, once "
	    "the client its header names is let in).", TCP, NULL,
	    T(conns_accepted) },
	{ "echod_connections_rejected_total", "counter",
	    "TCP connections not served, by reason: over "
	    "max_connections_per_ip, denied by the access list, or accept() "
	    "out of descriptors or memory (each failed accept).", TCP,
	    "reason=\"per_ip\"", T(perip_refused) },
	{ "echod_connections_rejected_total", NULL, NULL, TCP,
	    "reason=\"access\"", T(tcp_denied) },
	{ "echod_connections_rejected_total", NULL, NULL, TCP,
	    "reason=\"descriptors\"", T(accept_errors) },
	{ "echod_connections_waited_total", "counter",
	    "TCP connections a worker accepted at max_connections and held, "
	    "unserved, until a slot was free.", TCP, NULL, T(limit_waits) },
	{ "echod_received_bytes_total", "counter",
	    "Bytes received from clients, by protocol.", TCP,
	    "proto=\"tcp\"", T(tcp_bytes) },
	{ "echod_received_bytes_total", NULL, NULL, UDP, "proto=\"udp\"",
	    T(udp_bytes) },
	{ "echod_sent_bytes_total", "counter",
	    "Bytes written back to clients, by protocol.", TCP,
	    "proto=\"tcp\"", T(tcp_bytes_out) },
	{ "echod_sent_bytes_total", NULL, NULL, UDP, "proto=\"udp\"",
	    T(udp_bytes_out) },
	{ "echod_received_messages_total", "counter",
	    "Messages received, by protocol: UDP datagrams (TCP is a byte "
	    "stream and has none).", UDP, "proto=\"udp\"", T(udp_datagrams) },
	{ "echod_sent_messages_total", "counter",
	    "Messages sent back, by protocol: UDP datagrams.", UDP,
	    "proto=\"udp\"", T(udp_sent) },
	{ "echod_udp_dropped_total", "counter",
	    "UDP datagrams not echoed, by reason: from a reflector port, over "
	    "the source's rate limit, denied by the access list, or a reply "
	    "the socket would not take.", UDP, "reason=\"reflection\"",
	    T(udp_reflection) },
	{ "echod_udp_dropped_total", NULL, NULL, UDP, "reason=\"rate_limit\"",
	    T(udp_rate_limited) },
	{ "echod_udp_dropped_total", NULL, NULL, UDP, "reason=\"access\"",
	    T(udp_denied) },
	{ "echod_udp_dropped_total", NULL, NULL, UDP,
	    "reason=\"send_failure\"", T(udp_dropped) },
	{ "echod_udp_dropped_total", NULL, NULL, UDP,
	    "reason=\"delay_queue\"", T(udp_delay_full) },
	{ "echod_proxy_headers_total", "counter",
	    "PROXY protocol headers taken, by command: proxy (naming a "
	    "client) or local (v2 LOCAL, a balancer's health check; v2 with "
	    "no address family; v1 UNKNOWN).",
	    TCP, "command=\"proxy\"", T(proxy_headers) },
	{ "echod_proxy_headers_total", NULL, NULL, TCP, "command=\"local\"",
	    T(proxy_local) },
	{ "echod_proxy_rejected_total", "counter",
	    "TCP connections closed for want of a PROXY header echod could "
	    "take, by reason: not from proxy_from, no header, a malformed "
	    "one, an address family echod does not serve, or none whole "
	    "within proxy_timeout.", TCP, "reason=\"untrusted\"",
	    T(proxy_untrusted) },
	{ "echod_proxy_rejected_total", NULL, NULL, TCP, "reason=\"missing\"",
	    T(proxy_missing) },
	{ "echod_proxy_rejected_total", NULL, NULL, TCP,
	    "reason=\"malformed\"", T(proxy_malformed) },
	{ "echod_proxy_rejected_total", NULL, NULL, TCP,
	    "reason=\"unsupported\"", T(proxy_unsupported) },
	{ "echod_proxy_rejected_total", NULL, NULL, TCP, "reason=\"timeout\"",
	    T(proxy_timeout) },
	{ "echod_tls_handshakes_total", "counter",
	    "TLS handshakes done, by kind: full, or resumed from a session "
	    "ticket or cache.", TLS, "kind=\"full\"", T(tls_full) },
	{ "echod_tls_handshakes_total", NULL, NULL, TLS, "kind=\"resumed\"",
	    T(tls_resumed) },
	{ "echod_tls_handshake_failures_total", "counter",
	    "TLS handshakes that failed, by reason: no shared version or "
	    "cipher or not TLS at all, a client certificate missing or not "
	    "trusted, handshake_timeout, the client gone, anything else.", TLS,
	    "reason=\"protocol\"", T(tls_fail_protocol) },
	{ "echod_tls_handshake_failures_total", NULL, NULL, TLS,
	    "reason=\"certificate\"", T(tls_fail_certificate) },
	{ "echod_tls_handshake_failures_total", NULL, NULL, TLS,
	    "reason=\"timeout\"", T(tls_fail_timeout) },
	{ "echod_tls_handshake_failures_total", NULL, NULL, TLS,
	    "reason=\"closed\"", T(tls_fail_closed) },
	{ "echod_tls_handshake_failures_total", NULL, NULL, TLS,
	    "reason=\"other\"", T(tls_fail_other) },
	{ "echod_backpressure_pauses_total", "counter",
	    "Times echod stopped reading from a client whose unsent echo "
	    "reached buffer_limit.", TCP, NULL, T(backpressure_pauses) },
	{ "echod_memory_pauses_total", "counter",
	    "Times echod stopped reading from a client because the echo data "
	    "held over all connections had reached memory_limit.", TCP, NULL,
	    T(memory_pauses) },
	{ "echod_idle_timeouts_total", "counter",
	    "TCP connections closed by idle_timeout.", TCP, NULL,
	    T(idle_timeouts) },
	{ "echod_drain_cut_connections_total", "counter",
	    "TCP connections that lost data in a shutdown: cut at its timeout "
	    "or a second signal, or sent bytes after echod's FIN.", TCP, NULL,
	    T(cut_conns) },
	{ "echod_drain_cut_bytes_total", "counter",
	    "Bytes those connections had sent and did not get back.", TCP,
	    NULL, T(cut_bytes) },
	{ "echod_faults_total", "counter",
	    "Faults made on purpose by the group's fault profile, by kind: "
	    "TCP reads held for their delay, writes of one slice, connections "
	    "under a bandwidth limit, connections reset, closed and stalled; "
	    "UDP datagrams echoed after their delay, lost and duplicated.",
	    TCP, "kind=\"delay\"",
	    T(fault_delayed) },
	{ "echod_faults_total", NULL, NULL, TCP, "kind=\"slice\"",
	    T(fault_slices) },
	{ "echod_faults_total", NULL, NULL, TCP, "kind=\"bandwidth\"",
	    T(fault_limited) },
	{ "echod_faults_total", NULL, NULL, TCP, "kind=\"reset\"",
	    T(fault_resets) },
	{ "echod_faults_total", NULL, NULL, TCP, "kind=\"close\"",
	    T(fault_closes) },
	{ "echod_faults_total", NULL, NULL, TCP, "kind=\"stall\"",
	    T(fault_stalls) },
	{ "echod_faults_total", NULL, NULL, UDP, "kind=\"delay\"",
	    T(udp_fault_delayed) },
	{ "echod_faults_total", NULL, NULL, UDP, "kind=\"loss\"",
	    T(udp_fault_lost) },
	{ "echod_faults_total", NULL, NULL, UDP, "kind=\"duplicate\"",
	    T(udp_fault_duplicated) },
	{ "echod_fault_withheld_bytes_total", "counter",
	    "Bytes TCP clients sent that a fault kept from being echoed on "
	    "purpose: read after a reset, stall or close began.", TCP, NULL,
	    T(fault_withheld) },
};

/* Append every per-group metric, from gt, the totals by group slot. */
static void
metrics_write_groups(struct server *srv, const struct totals *gt,
    struct evbuffer *b)
{
	const struct metrics_series	*m;
	const struct groups		*gs = srv->groups;
	const char			*label;
	size_t				 i;
	unsigned			 g;

	for (i = 0; i < sizeof(metrics_series) / sizeof(metrics_series[0]);
	    i++) {
		m = &metrics_series[i];
		if (m->help != NULL)
			metrics_head(b, m->name, m->type, m->help);
		for (g = 0; g < gs->n; g++) {
			if (m->proto == TLS ? gs->v[g].proto != CONF_TLS :
			    gs->v[g].type != m->proto)
				continue;
			/* A TLS group's bytes are its own protocol's. */
			label = m->label;
			if (label != NULL && gs->v[g].proto == CONF_TLS &&
			    strcmp(label, "proto=\"tcp\"") == 0)
				label = "proto=\"tls\"";
			evbuffer_add_printf(b, "%s{group=\"%s\"%s%s} %" PRIu64
			    "\n", m->name, gs->v[g].name,
			    label != NULL ? "," : "", label != NULL ? label : "",
			    *(const uint64_t *)(const void *)
			    ((const char *)&gt[g] + m->off));
		}
	}
}

/* The groups, and the gauges of the whole server. */
static void
metrics_write_server(struct server *srv, struct evbuffer *b)
{
	const struct groups	*gs = srv->groups;
	unsigned		 i, slot;
	uint64_t		 n;

	metrics_head(b, "echod_group_active", "gauge", "1 for a listener "
	    "group in the running configuration; 0 for one a reload removed, "
	    "kept for its counters and connections until echod restarts.");
	for (i = 0; i < gs->n; i++)
		evbuffer_add_printf(b, "echod_group_active{group=\"%s\","
		    "proto=\"%s\"} %d\n", gs->v[i].name, gs->v[i].proto ==
		    CONF_TLS ? "tls" : conf_proto(gs->v[i].type),
		    gs->v[i].active);
	metrics_head(b, "echod_worker_connections", "gauge",
	    "TCP connections open now, per worker.");
	for (i = 0; i < srv->nworkers; i++) {
		for (slot = 0, n = 0; slot < gs->n; slot++)
			n += STAT_GET(&srv->workers[i].stats[slot],
			    conns_active);
		evbuffer_add_printf(b, "echod_worker_connections{worker=\"%u\"}"
		    " %" PRIu64 "\n", i, n);
	}
	metrics_one(b, "echod_buffered_bytes", "gauge",
	    "Echo data held now in echod's buffers, waiting for clients to "
	    "read it; what memory_limit bounds.", memory_buffered(srv));
	metrics_one(b, "echod_memory_limit_bytes", "gauge",
	    "The memory_limit in force, in bytes; 0 for none.",
	    atomic_load_explicit(&srv->live.memory_limit,
	    memory_order_relaxed));
}

/* Write the whole exposition into b. */
void
metrics_write(struct server *srv, struct evbuffer *b)
{
	struct totals		 gt[GROUP_SLOTS];
	unsigned		 slot;

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
	metrics_write_server(srv, b);
	metrics_write_groups(srv, gt, b);
}
