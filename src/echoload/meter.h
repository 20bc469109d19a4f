/*
 * What one load thread measures: counters and latency histograms that
 * only that thread writes and the main thread reads, with no lock on the
 * echo path (meter.c says how).
 */
#ifndef ECHOD_METER_H
#define ECHOD_METER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define METER_FIELDS(X)							\
	X(msgs)								\
	X(bytes_sent)							\
	X(bytes_recv)							\
	X(mismatches)							\
	X(resets)							\
	X(timeouts)							\
	X(connect_fail)							\
	X(conns_up)							\
	X(udp_sent)							\
	X(udp_lost)							\
	X(udp_late)							\
	X(overloaded)							\
	X(tls_handshakes)						\
	X(tls_resumed)							\
	X(tls_failed)							\
	X(fault_resets)		/* --expect-faults: reset, reconnected */ \
	X(fault_closes)		/* ... closed by the server */		\
	X(fault_stalls)		/* ... no echo in --timeout */		\
	X(clients_settled)

/* The phases of a churn connection, timed from its start (meter.c). */
enum phase { PHASE_CONNECT, PHASE_FIRST_BYTE, PHASE_COUNT };

/* The counters summed over the threads, as plain numbers. */
struct tally {
#define METER_TALLY(f)		uint64_t f;
	METER_FIELDS(METER_TALLY)
#undef METER_TALLY
};

struct meter {
	/* The counters: METER_ADD by the thread, meter_sum by anyone. */
#define METER_COUNTER(f)	_Atomic uint64_t f;
	METER_FIELDS(METER_COUNTER)
#undef METER_COUNTER
	/* The latencies: meter.c's alone. */
	int			 keep_interval;
	uint64_t		 handed_us;
	struct hist		 cum;
	struct hist		 phase[PHASE_COUNT];	/* churn */
	struct hist		 interval;
	pthread_mutex_t		 mu;
	struct hist		 handed;
};

/* Add n to a counter; only the thread that owns the meter may. */
#define METER_ADD(m, field, n)						\
	atomic_store_explicit(&(m)->field,				\
	    atomic_load_explicit(&(m)->field, memory_order_relaxed) + (n), \
	    memory_order_relaxed)

int	meter_init(struct meter *, int);
void	meter_free(struct meter *);
void	meter_window(int);
void	meter_record(struct meter *, uint64_t, size_t);
void	meter_record_phase(struct meter *, enum phase, uint64_t);
void	meter_hand_over(struct meter *, uint64_t);
void	meter_sum(const struct meter *, struct tally *);
void	meter_take_interval(struct meter *, struct hist *);
void	meter_take_rest(struct meter *, struct hist *);
void	meter_merge_all(const struct meter *, struct hist *);
void	meter_merge_phase(const struct meter *, enum phase, struct hist *);

#endif
