/* The workers' counters, per listener group. */
#ifndef ECHOD_STATS_H
#define ECHOD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Counters.  Each worker is the only writer of its own, with a relaxed
 * load and store (STAT_ADD: no lock, no read-modify-write instruction);
 * other threads read them with relaxed loads, so reading them is free of
 * data races.
 */
typedef _Atomic uint64_t counter_t;
#define STATS_FIELDS(X)							\
	X(conns_accepted)						\
	X(conns_active)							\
	X(tcp_bytes)		/* received */				\
	X(tcp_bytes_out)	/* written to the socket */		\
	X(udp_datagrams)	/* received */				\
	X(udp_bytes)							\
	X(udp_sent)		/* datagrams sent back */		\
	X(udp_bytes_out)						\
	X(udp_dropped)		/* replies the socket would not take */	\
	X(udp_reflection)	/* from a reflector port: dropped */	\
	X(udp_rate_limited)	/* over a source's rate: dropped */	\
	X(udp_denied)		/* by the access list: dropped */	\
	X(tcp_denied)		/* by the access list: closed */	\
	X(limit_waits)		/* max_connections: parked, then served */ \
	X(perip_refused)	/* max_connections_per_ip: closed */	\
	X(accept_errors)	/* accept() out of descriptors or memory */ \
	X(backpressure_pauses)						\
	X(memory_pauses)	/* reading paused over memory_limit */	\
	X(proxy_headers)	/* PROXY headers taken, naming a client */ \
	X(proxy_local)		/* PROXY headers taken: LOCAL, UNKNOWN */ \
	X(proxy_untrusted)	/* not from proxy_from: closed */	\
	X(proxy_missing)	/* no PROXY header: closed */		\
	X(proxy_malformed)						\
	X(proxy_unsupported)	/* a family echod does not serve */	\
	X(proxy_timeout)	/* no whole header in proxy_timeout */	\
	X(tls_full)		/* TLS handshakes, full */		\
	X(tls_resumed)		/* TLS handshakes, resumed */		\
	X(tls_fail_protocol)	/* no shared version or cipher, not TLS */ \
	X(tls_fail_certificate)	/* mTLS: no or a bad client certificate */ \
	X(tls_fail_timeout)	/* not done within handshake_timeout */	\
	X(tls_fail_closed)	/* the client went away during it */	\
	X(tls_fail_other)						\
	X(idle_timeouts)						\
	X(cut_conns)		/* cut at shutdown with echo pending */	\
	X(cut_bytes)							\
	X(fault_delayed)	/* TCP reads held for their delay */	\
	X(fault_slices)		/* TCP writes of a slice */		\
	X(fault_limited)	/* TCP connections under a bandwidth */	\
	X(fault_resets)		/* reset_after: connections reset */	\
	X(fault_closes)		/* close_after: connections closed */	\
	X(fault_stalls)		/* stall_after: connections stalled */	\
	X(fault_withheld)	/* bytes read and not echoed, on purpose */ \
	X(udp_fault_delayed)	/* datagrams echoed after a delay */	\
	X(udp_fault_lost)	/* udp loss: dropped on purpose */	\
	X(udp_fault_duplicated)	/* udp duplicate: sent twice */		\
	X(udp_delay_full)	/* delay_queue full: dropped */
struct stats {
#define STATS_COUNTER(f)	counter_t f;
	STATS_FIELDS(STATS_COUNTER)
#undef STATS_COUNTER
};
#define STAT_ADD(st, field, n)						\
	atomic_store_explicit(&(st)->field, atomic_load_explicit(		\
	    &(st)->field, memory_order_relaxed) + (n), memory_order_relaxed)
#define STAT_GET(st, field)						\
	atomic_load_explicit(&(st)->field, memory_order_relaxed)

/* The same counters summed over the workers, as plain numbers. */
struct totals {
#define STATS_TOTAL(f)		uint64_t f;
	STATS_FIELDS(STATS_TOTAL)
#undef STATS_TOTAL
};

#endif
