/*
 * echoload's measurements, and how two threads share them without a lock
 * on the echo path.
 *
 * Each load thread is the only writer of its meter.  Its counters are
 * _Atomic, and it adds to them with a relaxed load and a relaxed store
 * (METER_ADD: no lock, no read-modify-write instruction); the main thread
 * reads them with relaxed loads (meter_sum) for the progress line and the
 * report, which is free of data races and needs no ordering, as every
 * counter only grows and each is read on its own.
 *
 * A histogram is too large to read that way, so each thread keeps its
 * own: cum, every latency of the measurement window, and in churn mode
 * phase[], the times to connect and to the first echoed byte, which the
 * main thread reads only after joining the thread; and, when there is a
 * progress line, interval, which the thread hands over at its tick, at
 * most every METER_HAND_US, by merging it into handed under the meter's
 * mutex; the main thread takes handed under the same mutex.  So the
 * mutex is taken about a hundred times a second, never per message.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hist.h"
#include "meter.h"

#define METER_HAND_US	10000

/* Whether latencies count now: set between ramp-up and the end. */
static _Atomic int	 meter_measuring;

/* Set up an empty meter; with keep_interval, also for a progress line. */
int
meter_init(struct meter *m, int keep_interval)
{
	unsigned	 i;

#define METER_ZERO(f)	atomic_init(&m->f, 0);
	METER_FIELDS(METER_ZERO)
#undef METER_ZERO
	m->keep_interval = keep_interval;
	m->handed_us = 0;
	hist_init(&m->cum);
	for (i = 0; i < PHASE_COUNT; i++)
		hist_init(&m->phase[i]);
	hist_init(&m->interval);
	hist_init(&m->handed);
	if (pthread_mutex_init(&m->mu, NULL) != 0)
		return (-1);
	return (0);
}

/* Free what meter_init set up. */
void
meter_free(struct meter *m)
{
	pthread_mutex_destroy(&m->mu);
}

/* Open (1) or close (0) the measurement window for every meter. */
void
meter_window(int on)
{
	atomic_store(&meter_measuring, on);
}

/* Thread: count one echoed message, and its latency while measuring. */
void
meter_record(struct meter *m, uint64_t lat_us, size_t bytes)
{
	METER_ADD(m, msgs, 1);
	METER_ADD(m, bytes_recv, bytes);
	if (!atomic_load_explicit(&meter_measuring, memory_order_relaxed))
		return;
	hist_add(&m->cum, lat_us);
	if (m->keep_interval)
		hist_add(&m->interval, lat_us);
}

/*
 * Thread: the time a churn connection took to reach phase p, while
 * measuring.
 */
void
meter_record_phase(struct meter *m, enum phase p, uint64_t lat_us)
{
	if (atomic_load_explicit(&meter_measuring, memory_order_relaxed))
		hist_add(&m->phase[p], lat_us);
}

/* Thread: hand the latest latencies over for the progress line. */
void
meter_hand_over(struct meter *m, uint64_t now)
{
	if (m->interval.count == 0 || now - m->handed_us < METER_HAND_US)
		return;
	m->handed_us = now;
	pthread_mutex_lock(&m->mu);
	hist_merge(&m->handed, &m->interval);
	pthread_mutex_unlock(&m->mu);
	hist_init(&m->interval);
}

/* Add a meter's counters to s. */
void
meter_sum(const struct meter *m, struct tally *s)
{
#define METER_SUM(f)							\
	s->f += atomic_load_explicit(&m->f, memory_order_relaxed);
	METER_FIELDS(METER_SUM)
#undef METER_SUM
}

/* Move the latencies handed over since the last call into h. */
void
meter_take_interval(struct meter *m, struct hist *h)
{
	pthread_mutex_lock(&m->mu);
	hist_merge(h, &m->handed);
	hist_init(&m->handed);
	pthread_mutex_unlock(&m->mu);
}

/*
 * Once the thread has ended: move the latencies it had not handed over
 * yet, and those handed over, into h.
 */
void
meter_take_rest(struct meter *m, struct hist *h)
{
	meter_take_interval(m, h);
	hist_merge(h, &m->interval);
	hist_init(&m->interval);
}

/* Add every latency of the window to h, once the thread has ended. */
void
meter_merge_all(const struct meter *m, struct hist *h)
{
	hist_merge(h, &m->cum);
}

/* Add the times to phase p of the window to h, once the thread has ended. */
void
meter_merge_phase(const struct meter *m, enum phase p, struct hist *h)
{
	hist_merge(h, &m->phase[p]);
}
