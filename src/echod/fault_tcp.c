/*
 * Faults on purpose, a TCP connection's: one of a group with a fault
 * profile (fault.h) takes this path instead of echo.c's, every byte
 * through its bufferevent.  What it reads waits in held, with the time
 * it is due (the delay, with jitter, never before the bytes ahead of it),
 * and fault_pump moves what is due to the output: whole, or with slice a
 * piece of random size at a time, each once the last is written (and
 * slice_gap has passed).  One timer per connection wakes it for the next
 * due time or gap.  Bandwidth is libevent's rate limiting, per connection
 * and per group (fault.c).  The faults that end a connection (reset,
 * stall, close) are fault_end.c's; they are decided here, at accept.
 *
 * Held bytes count with the output against buffer_limit and, in the
 * worker's buffered sum, against memory_limit.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "connpriv.h"
#include "fault.h"
#include "faultpriv.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "units.h"
#include "worker.h"

static int	fault_pump(struct conn *);
static int	fault_poke(struct conn *);

/* Arm the connection's timer for us microseconds (a millisecond at least). */
int
fault_arm(struct conn *c, uint64_t us)
{
	struct timeval	 tv;

	if (us < 1000)
		us = 1000;	/* libevent's clock: never early, rounded up */
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return (evtimer_add(c->fault->timer, &tv));
}

/*
 * Timer: the next held bytes are due, a slice gap is over, or the state
 * waits for something (fault_settle).
 */
static void
fault_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	if (c->fault->qlen > 0)
		(void)fault_pump(c);
	else
		(void)fault_settle(c);
}

/*
 * Make the fault state of a new connection of a faulty group, and decide
 * its faults.  Return 0, or -1 (c is not freed).
 */
int
fault_conn_new(struct conn *c)
{
	const struct fault_profile *p = &conn_group(c)->faults;
	struct bufferevent_rate_limit_group *g;
	struct conn_fault	*f;
	struct timeval		 tv, tick = { 0, FAULT_TICK_MS * 1000 };
	uint64_t		 per_tick;
	int			 reset, stall;

	if (!fault_tcp_any(p))
		return (0);
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return (-1);
	c->fault = f;
	f->p = *p;
	f->budget = UINT64_MAX;
	f->qcap = FAULT_QLEN;
	if ((f->q = calloc(f->qcap, sizeof(*f->q))) == NULL ||
	    (f->held = evbuffer_new()) == NULL ||
	    (f->timer = evtimer_new(c->w->base, fault_timer_cb, c)) == NULL)
		return (-1);
	reset = p->reset_after > 0 && fault_chance(c->w, p->reset_ppm);
	stall = p->stall_after > 0 && fault_chance(c->w, p->stall_ppm);
	if (reset && (!stall || p->reset_after <= p->stall_after)) {
		f->budget = p->reset_after;
		f->at_budget = FAULT_RESET;
	} else if (stall) {
		f->budget = p->stall_after;
		f->at_budget = FAULT_STALL;
	}
	if (p->close_after_ms > 0 && fault_chance(c->w, p->close_ppm)) {
		tv = units_timeval(p->close_after_ms);
		if ((f->closer = evtimer_new(c->w->base, fault_closer_cb,
		    c)) == NULL || evtimer_add(f->closer, &tv) == -1)
			return (-1);
	}
	if (p->bandwidth > 0) {
		per_tick = p->bandwidth / (1000 / FAULT_TICK_MS);
		if (per_tick == 0)
			per_tick = 1;
		if ((f->rate = ev_token_bucket_cfg_new(per_tick, per_tick,
		    per_tick, per_tick, &tick)) == NULL ||
		    bufferevent_set_rate_limit(c->bev, f->rate) == -1)
			return (-1);
	}
	if (p->group_bandwidth > 0 &&
	    ((g = fault_rate_set(c->w, c->slot, fault_share(c->w,
	    p->group_bandwidth))) == NULL ||
	    bufferevent_add_to_rate_limit_group(c->bev, g) == -1))
		return (-1);
	if (p->bandwidth > 0 || p->group_bandwidth > 0)
		STAT_ADD(c->st, fault_limited, 1);
	return (0);
}

/*
 * Free a connection's fault state, before its bufferevent: what was held
 * goes with it.
 */
void
fault_conn_free(struct conn *c)
{
	struct conn_fault	*f = c->fault;

	if (f == NULL)
		return;
	if (f->held != NULL) {
		STAT_ADD(c->w, buffered,
		    -(uint64_t)evbuffer_get_length(f->held));
		evbuffer_free(f->held);
	}
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->closer != NULL)
		event_free(f->closer);
	if (f->poke != NULL)
		event_free(f->poke);
	if (c->bev != NULL) {
		(void)bufferevent_remove_from_rate_limit_group(c->bev);
		(void)bufferevent_set_rate_limit(c->bev, NULL);
	}
	if (f->rate != NULL)
		ev_token_bucket_cfg_free(f->rate);
	free(f->q);
	free(f);
	c->fault = NULL;
}

/* The bytes a connection holds back for later: the delay's. */
size_t
fault_held(const struct conn *c)
{
	return (c->fault == NULL ? 0 : evbuffer_get_length(c->fault->held));
}

/*
 * Tell whether a fault withholds the rest of the connection on purpose
 * (stalled, closed) with all it took echoed and written: the drain does
 * not wait for it.  Until then it does, as for any echo; a reset goes its
 * own way (the client's ACK, bounded, then the RST).
 */
int
fault_withholds(const struct conn *c)
{
	return (c->fault != NULL && (c->fault->state == FAULT_STALL ||
	    c->fault->state == FAULT_CLOSED) && c->fault->qlen == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0);
}

/* Double the ring of due times, up to FAULT_QMAX.  Return 0 or -1. */
static int
fault_grow(struct conn_fault *f)
{
	struct fault_due	*q;
	unsigned		 i;

	if (f->qcap >= FAULT_QMAX ||
	    (q = calloc(f->qcap * 2, sizeof(*q))) == NULL)
		return (-1);
	for (i = 0; i < f->qlen; i++)
		q[i] = f->q[(f->qhead + i) % f->qcap];
	free(f->q);
	f->q = q;
	f->qhead = 0;
	f->qcap *= 2;
	return (0);
}

/*
 * Take len bytes of the input to echo at their due time: after the
 * delay, and never before the bytes ahead of them.  A read due within
 * FAULT_MERGE_US of the last record's first shares its due time (the
 * later: at most FAULT_MERGE_US late); past
 * FAULT_QMAX due times (or out of memory), every read does, and the
 * earlier bytes of the last wait longer than their delay.
 */
static int
fault_hold(struct conn *c, struct evbuffer *in, size_t len)
{
	struct conn_fault	*f = c->fault;
	uint64_t		 due;
	unsigned		 last;

	due = now_us() + fault_jitter(c->w, f->p.delay_ms,
	    f->p.jitter_ms);
	if (evbuffer_remove_buffer(in, f->held, len) != (int)len)
		return (-1);
	STAT_ADD(c->w, buffered, len);
	if (f->qlen > 0) {
		last = (f->qhead + f->qlen - 1) % f->qcap;
		if (due < f->q[last].due_us)
			due = f->q[last].due_us;
		/* Within FAULT_MERGE_US of the record's first read only:
		 * a steady stream would push one record on for good. */
		if (due - f->q[last].first_us <= FAULT_MERGE_US ||
		    (f->qlen == f->qcap && fault_grow(f) == -1)) {
			f->q[last].len += len;
			f->q[last].due_us = due;
			return (0);
		}
	}
	last = (f->qhead + f->qlen) % f->qcap;
	f->q[last].due_us = f->q[last].first_us = due;
	f->q[last].len = len;
	f->qlen++;
	if (f->p.delay_ms > 0)
		STAT_ADD(c->st, fault_delayed, 1);
	return (0);
}

/* Move n held bytes to the output; the head record's. */
static int
fault_release(struct conn *c, size_t n)
{
	struct conn_fault	*f = c->fault;
	struct evbuffer		*out = bufferevent_get_output(c->bev);

	/* Counted as all output is: memory_limit's sum, once sent. */
	if (c->outcb == NULL &&
	    (c->outcb = evbuffer_add_cb(out, echo_output_cb, c)) == NULL)
		return (-1);
	if (evbuffer_remove_buffer(f->held, out, n) != (int)n)
		return (-1);
	STAT_ADD(c->w, buffered, -(uint64_t)n);
	f->q[f->qhead].len -= n;
	if (f->q[f->qhead].len == 0) {
		f->qhead = (f->qhead + 1) % f->qcap;
		f->qlen--;
	}
	return (0);
}

/*
 * Move what is due from held to the output: all of it, or with slice one
 * piece once the output is empty and the gap over; arm the timer for the
 * next.  Return 0, or -1 if c is freed (an error, or its fault's end).
 */
static int
fault_pump(struct conn *c)
{
	struct conn_fault	*f = c->fault;
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	uint64_t		 now = now_us(), n, span;

	while (f->qlen > 0) {
		if (f->q[f->qhead].due_us > now) {
			if (fault_arm(c, f->q[f->qhead].due_us - now) == -1)
				goto fail;
			return (0);
		}
		if (f->p.slice_min == 0) {
			if (fault_release(c, f->q[f->qhead].len) == -1)
				goto fail;
			continue;
		}
		/* Sliced: one piece at a time; the write callback calls. */
		if (evbuffer_get_length(out) > 0)
			return (0);
		if (f->gap_until_us > now) {
			if (fault_arm(c, f->gap_until_us - now) == -1)
				goto fail;
			return (0);
		}
		span = f->p.slice_max - f->p.slice_min + 1;
		n = f->p.slice_min + (span > 1 ? fault_random(c->w) % span : 0);
		if (n > f->q[f->qhead].len)
			n = f->q[f->qhead].len;
		if (fault_release(c, (size_t)n) == -1)
			goto fail;
		STAT_ADD(c->st, fault_slices, 1);
		if (f->p.slice_gap_ms > 0)
			f->gap_until_us = now + f->p.slice_gap_ms * 1000;
		return (0);
	}
	return (fault_settle(c));
fail:
	conn_free(c);
	return (-1);
}

/*
 * TLS and a bandwidth: a read the rate limit cut mid-record left the
 * record's rest decrypted inside OpenSSL, where libevent would leave it
 * until the socket has more (tls_take_pending); take it, and echo it as
 * a read.
 */
static void
fault_poke_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	ssize_t		 n;

	if (c->fault->state != FAULT_ECHO || (c->flags & CONN_PAUSED))
		return;
	if ((n = tls_take_pending(c)) == -1) {
		conn_free(c);
		return;
	}
	if (n > 0)
		fault_read_cb(c->bev, c);
}

/* After a read: look for what OpenSSL holds back, from the next turn. */
static int
fault_poke(struct conn *c)
{
	struct conn_fault	*f = c->fault;
	struct timeval		 tv = { 0, 0 };

	if (!(c->flags & CONN_TLS) || f->state != FAULT_ECHO ||
	    (c->flags & CONN_PAUSED) || (f->p.bandwidth == 0 &&
	    f->p.group_bandwidth == 0) || !tls_pending(c))
		return (0);
	if (f->poke == NULL &&
	    (f->poke = evtimer_new(c->w->base, fault_poke_cb, c)) == NULL)
		return (-1);
	return (evtimer_add(f->poke, &tv));
}

/*
 * Read callback of a faulty connection: take what the budget allows to
 * echo when due, withhold the rest, and stop reading at the limits.
 */
void
fault_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct conn_fault	*f = c->fault;
	struct evbuffer		*in = bufferevent_get_input(bev);
	size_t			 len = evbuffer_get_length(in), take;

	if (echo_arrived(c, in, len) == -1)
		return;
	take = f->state != FAULT_ECHO ? 0 : f->budget - f->taken < len ?
	    (size_t)(f->budget - f->taken) : len;
	if (take > 0) {
		if (fault_hold(c, in, take) == -1) {
			conn_free(c);
			return;
		}
		f->taken += take;
	}
	if (len > take) {
		STAT_ADD(c->st, fault_withheld, len - take);
		evbuffer_drain(in, len - take);
	}
	if (f->state == FAULT_ECHO && f->taken >= f->budget &&
	    fault_at_budget(c) == -1) {
		conn_free(c);
		return;
	}
	/* Held bytes wait as output does: the same limits. */
	if (f->state == FAULT_ECHO)
		echo_limit(c, evbuffer_get_length(f->held) +
		    evbuffer_get_length(bufferevent_get_output(bev)));
	/* After TLS's close_notify (conn.c): all out, we close. */
	if ((c->flags & CONN_EOF) && f->state == FAULT_ECHO && f->qlen == 0 &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		tls_notify(c, drain_close);
		return;
	}
	if (fault_poke(c) == -1) {
		conn_free(c);
		return;
	}
	(void)fault_pump(c);
}

/*
 * The output was written out (conn_write_cb): the next slice, resuming
 * a pause once held and output are under the limits, and the states'
 * next step.  Return 0 for the caller to go on as for any connection
 * (nothing held: a client EOF closes, a pause resumes), 1 if it is taken
 * care of, -1 if c is freed.
 */
int
fault_written(struct conn *c)
{
	struct conn_fault	*f = c->fault;

	if (f->qlen > 0 && fault_pump(c) == -1)
		return (-1);
	if (f->state != FAULT_ECHO)
		return (fault_settle(c) == -1 ? -1 : 1);
	/* Resume a pause once held and output are under the limits. */
	if ((c->flags & CONN_PAUSED) && evbuffer_get_length(f->held) +
	    evbuffer_get_length(bufferevent_get_output(c->bev)) <
	    conn_group(c)->buffer_limit && !memory_over(c->w->srv) &&
	    (echo_resume(c) == -1 || fault_poke(c) == -1)) {
		conn_free(c);
		return (-1);
	}
	if (f->qlen > 0 || evbuffer_get_length(bufferevent_get_output(
	    c->bev)) > 0)
		return (1);	/* echo still to go */
	return (0);
}
