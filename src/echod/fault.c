/*
 * Faults on purpose, TCP's part: a connection of a group with a fault
 * profile (fault.h) takes this path instead of echo.c's, every byte
 * through its bufferevent.  What it reads waits in held, with the time
 * it is due (the delay, with jitter, never before the bytes ahead of it),
 * and fault_pump moves what is due to the output: whole, or with slice a
 * piece of random size at a time, each once the last is written (and
 * slice_gap has passed).  One timer per connection wakes it for the next
 * due time or gap.  Bandwidth is libevent's rate limiting, per connection
 * and per group (split evenly over the workers).
 *
 * Decided at accept with the worker's seeded generator, by their
 * probabilities: reset_after (after echoing that many bytes, stop reading,
 * wait until the client has acknowledged them, then close with a RST),
 * stall_after (after that many, read and echo nothing more, but keep the
 * connection until the client closes it) and close_after (that long after
 * accept, read nothing more, echo what was read, then our FIN).  What a
 * fault then refuses to read or discards is withheld on purpose, counted,
 * and outside the drain's promise; everything else is echoed as ever.
 *
 * Held bytes count with the output against buffer_limit and, in the
 * worker's buffered sum, against memory_limit.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "connpriv.h"
#include "fault.h"
#include "log.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "units.h"
#include "worker.h"

#define FAULT_QLEN	16		/* due times per connection, first */
#define FAULT_QMAX	1024		/* ... at most */
#define FAULT_MERGE_US	1000		/* reads this close share one */
#define FAULT_TICK_MS	100		/* bandwidth's bucket: 1/10 s */
#define FAULT_ACK_POLL_MS 10		/* reset: look for the last ACK, */
#define FAULT_ACK_MAX_MS 10000		/* at most this long */
#define FAULT_STALL_POLL_MS 1000	/* stalled: is the client gone? */
#define FAULT_LINGER_MS	10000		/* closed: the client's FIN, at most */

enum fault_state {
	FAULT_ECHO,		/* as any connection, with its faults */
	FAULT_RESET,		/* reset_after: echo the rest, then a RST */
	FAULT_STALL,		/* stall_after: nothing more, kept open */
	FAULT_CLOSE,		/* close_after: echo the rest, then a FIN */
	FAULT_CLOSED		/* close_after: FIN sent, wait for theirs */
};

struct conn_fault {
	struct fault_profile	 p;	/* the group's, at accept */
	struct evbuffer		*held;	/* read, not yet due */
	struct fault_due {
		uint64_t	 due_us;
		uint64_t	 first_us;	/* its first read's due time */
		size_t		 len;
	}			*q;		/* held's bytes, in order: */
	unsigned		 qhead, qlen, qcap;	/* a ring */
	uint64_t		 gap_until_us;	/* slice_gap: no write before */
	uint64_t		 taken;		/* bytes taken to echo */
	uint64_t		 budget;	/* reset or stall after this */
	int			 at_budget;	/* FAULT_RESET or FAULT_STALL */
	enum fault_state	 state;
	uint64_t		 since_ms;	/* in this state since */
	uint64_t		 wait_ms;	/* reset: the ACK awaited since */
	struct event		*timer;		/* the pump's, then the state's */
	struct event		*closer;	/* close_after */
	struct event		*poke;		/* TLS: OpenSSL holds plaintext */
	struct ev_token_bucket_cfg *rate;	/* bandwidth */
};

static int	fault_pump(struct conn *);
static int	fault_settle(struct conn *);
static int	fault_poke(struct conn *);

/* Copy a configured group's fault keys. */
void
fault_profile_set(struct fault_profile *p, const struct conf_group *g)
{
	memset(p, 0, sizeof(*p));
	p->delay_ms = g->delay_ms;
	p->jitter_ms = g->jitter_ms;
	if (g->proto == CONF_UDP) {
		p->loss_ppm = (uint32_t)g->loss_ppm;
		p->duplicate_ppm = (uint32_t)g->duplicate_ppm;
		return;
	}
	p->bandwidth = g->bandwidth;
	p->group_bandwidth = g->group_bandwidth;
	p->slice_min = g->slice[0];
	p->slice_max = g->slice[1];
	p->slice_gap_ms = g->slice_gap_ms;
	p->reset_after = g->reset_after;
	p->close_after_ms = g->close_after_ms;
	p->stall_after = g->stall_after;
	p->reset_ppm = (uint32_t)g->reset_ppm;
	p->close_ppm = (uint32_t)g->close_ppm;
	p->stall_ppm = (uint32_t)g->stall_ppm;
}

/* Tell whether a TCP group's connections have any fault to run. */
int
fault_tcp_any(const struct fault_profile *p)
{
	return (p->delay_ms > 0 || p->bandwidth > 0 ||
	    p->group_bandwidth > 0 || p->slice_min > 0 ||
	    (p->reset_after > 0 && p->reset_ppm > 0) ||
	    (p->close_after_ms > 0 && p->close_ppm > 0) ||
	    (p->stall_after > 0 && p->stall_ppm > 0));
}

/* Tell whether a UDP group has any fault. */
int
fault_udp_any(const struct fault_profile *p)
{
	return (p->delay_ms > 0 || p->loss_ppm > 0 || p->duplicate_ppm > 0);
}

/* The worker's next random number (splitmix64: seeded, repeatable). */
uint64_t
fault_random(struct worker *w)
{
	uint64_t	 z = (w->fault_rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* Tell whether an event of probability ppm (of CONF_PPM) happens. */
int
fault_chance(struct worker *w, uint32_t ppm)
{
	if (ppm >= CONF_PPM)
		return (1);
	if (ppm == 0)
		return (0);
	return (fault_random(w) % CONF_PPM < ppm);
}

/* A delay in us: delay_ms, give or take up to jitter_ms, uniformly. */
uint64_t
fault_jitter(struct worker *w, uint64_t delay_ms, uint64_t jitter_ms)
{
	uint64_t	 d = delay_ms * 1000, j = jitter_ms * 1000;

	if (j == 0)
		return (d);
	return (d - j + fault_random(w) % (2 * j + 1));
}

/* Arm the connection's timer for ms (at least 1) from now. */
static int
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
 * A worker's share of group slot's bandwidth (0: none), as the tokens of
 * one FAULT_TICK_MS: at least one.
 */
static uint64_t
fault_share(const struct worker *w, uint64_t bandwidth)
{
	uint64_t	 per_tick;

	if (bandwidth == 0)
		return (EV_RATE_LIMIT_MAX);
	per_tick = bandwidth / w->srv->nworkers / (1000 / FAULT_TICK_MS);
	return (per_tick > 0 ? per_tick : 1);
}

/*
 * Make, or set the rate of, the rate-limit group of slot on worker w: a
 * group of its base that every connection of the listener group on this
 * worker joins.  Return it, or NULL.
 */
static struct bufferevent_rate_limit_group *
fault_rate_set(struct worker *w, unsigned slot, uint64_t per_tick)
{
	struct fault_rl		*rl = &w->fault_rl[slot];
	struct ev_token_bucket_cfg *cfg;
	struct timeval		 tick = { 0, FAULT_TICK_MS * 1000 };

	if (rl->group != NULL && rl->per_tick == per_tick)
		return (rl->group);
	if ((cfg = ev_token_bucket_cfg_new(per_tick, per_tick, per_tick,
	    per_tick, &tick)) == NULL)
		return (NULL);
	if (rl->group == NULL)
		rl->group = bufferevent_rate_limit_group_new(w->base, cfg);
	else if (bufferevent_rate_limit_group_set_cfg(rl->group, cfg) == -1) {
		ev_token_bucket_cfg_free(cfg);
		return (NULL);
	}
	/* The group keeps a copy of cfg. */
	ev_token_bucket_cfg_free(cfg);
	if (rl->group != NULL)
		rl->per_tick = per_tick;
	return (rl->group);
}

/*
 * A reload: each group's bandwidth is shared, so a new value applies to
 * its connections on this worker at once, and none (0, or the group
 * gone) lifts the limit from those that joined.
 */
void
fault_worker_regroup(struct worker *w)
{
	unsigned	 slot;
	uint64_t	 bw;

	for (slot = 0; slot < GROUP_SLOTS; slot++) {
		if (w->fault_rl[slot].group == NULL)
			continue;
		bw = slot < w->groups->n && w->groups->v[slot].active ?
		    w->groups->v[slot].faults.group_bandwidth : 0;
		if (fault_rate_set(w, slot, fault_share(w, bw)) == NULL)
			log_warnx("worker %d: cannot set a group's bandwidth",
			    w->id);
	}
}

/* Free the worker's rate-limit groups, once its connections are gone. */
void
fault_worker_free(struct worker *w)
{
	unsigned	 i;

	for (i = 0; i < GROUP_SLOTS; i++)
		if (w->fault_rl[i].group != NULL) {
			bufferevent_rate_limit_group_free(w->fault_rl[i].group);
			w->fault_rl[i].group = NULL;
		}
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

/* close_after: read nothing more; echo what was read, then our FIN. */
static void
fault_closer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn		*c = arg;
	struct conn_fault	*f = c->fault;

	if (f->state != FAULT_ECHO)
		return;		/* reset or stalled first */
	STAT_ADD(c->st, fault_closes, 1);
	if (c->flags & (CONN_PROXY | CONN_HANDSHAKE)) {
		conn_free(c);	/* not yet echoing: closed as it is */
		return;
	}
	f->state = FAULT_CLOSE;
	f->since_ms = now_ms();
	log_debug("conn %d: close_after: closing",
	    (int)bufferevent_getfd(c->bev));
	if (bufferevent_disable(c->bev, EV_READ) == -1) {
		conn_free(c);
		return;
	}
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
	if (f->qlen > 0) {
		last = (f->qhead + f->qlen - 1) % f->qcap;
		if (due < f->q[last].due_us)
			due = f->q[last].due_us;
		/* Within FAULT_MERGE_US of the record's first read only:
		 * a steady stream would push one record on for good. */
		if (due - f->q[last].first_us <= FAULT_MERGE_US ||
		    (f->qlen == f->qcap && fault_grow(f) == -1)) {
			last = (f->qhead + f->qlen - 1) % f->qcap;
			if (evbuffer_remove_buffer(in, f->held, len) !=
			    (int)len)
				return (-1);
			f->q[last].len += len;
			f->q[last].due_us = due;
			STAT_ADD(c->w, buffered, len);
			return (0);
		}
	}
	if (evbuffer_remove_buffer(in, f->held, len) != (int)len)
		return (-1);
	last = (f->qhead + f->qlen) % f->qcap;
	f->q[last].due_us = f->q[last].first_us = due;
	f->q[last].len = len;
	f->qlen++;
	STAT_ADD(c->w, buffered, len);
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

/* reset: the client has acknowledged all its echo; reset it. */
static void
fault_reset(struct conn *c)
{
	struct linger	 l = { 1, 0 };

	log_debug("conn %d: reset_after: reset",
	    (int)bufferevent_getfd(c->bev));
	(void)setsockopt((int)bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER,
	    &l, sizeof(l));
	conn_free(c);
}

/*
 * close_after: our FIN (after TLS's close_notify: tls_notify); then read
 * and discard until the client's, for FAULT_LINGER_MS at most.
 */
static void
fault_fin(struct conn *c)
{
	struct conn_fault	*f = c->fault;

	f->state = FAULT_CLOSED;
	f->since_ms = now_ms();
	if (c->flags & CONN_EOF) {
		conn_free(c);	/* theirs came first */
		return;
	}
	if (shutdown((int)bufferevent_getfd(c->bev), SHUT_WR) == -1 ||
	    bufferevent_enable(c->bev, EV_READ) == -1 ||
	    fault_arm(c, FAULT_LINGER_MS * 1000) == -1) {
		conn_free(c);
		return;
	}
	c->flags |= CONN_FIN;
}

/*
 * With nothing held: what the state waits for once all is echoed and
 * written.  A reset waits for the client's ACK of the last byte (polled,
 * bounded), then resets; a stalled connection looks each second whether
 * the client has gone; a closing one sends its FIN (after TLS's
 * close_notify); a closed one ends at the client's EOF or its bound.
 * Return 0, or -1 if c is freed (or may be: tls_notify).
 */
static int
fault_settle(struct conn *c)
{
	struct conn_fault	*f = c->fault;
	struct tcp_info		 ti;
	socklen_t		 len = sizeof(ti);
	int			 fd = (int)bufferevent_getfd(c->bev), q;

	if (f->state == FAULT_ECHO || f->qlen > 0 ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return (0);
	switch (f->state) {
	case FAULT_RESET:
		/* Bounded from when all is written, not from the budget. */
		if (f->wait_ms == 0)
			f->wait_ms = now_ms();
		if (ioctl(fd, SIOCOUTQ, &q) == -1 || q == 0 ||
		    now_ms() - f->wait_ms >= FAULT_ACK_MAX_MS) {
			fault_reset(c);
			return (-1);
		}
		if (fault_arm(c, FAULT_ACK_POLL_MS * 1000) == -1)
			break;
		return (0);
	case FAULT_STALL:
		/* Draining: the drain's close, which waits for the ACK. */
		if (c->w->draining) {
			drain_close(c);
			return (-1);
		}
		/* Not reading, it learns of the client's end from TCP. */
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
		    ti.tcpi_state == TCP_CLOSE_WAIT ||
		    ti.tcpi_state == TCP_CLOSE)
			break;
		if (fault_arm(c, FAULT_STALL_POLL_MS * 1000) == -1)
			break;
		return (0);
	case FAULT_CLOSE:
		/* Draining: the drain's close, which waits for the ACK. */
		tls_notify(c, c->w->draining ? drain_close : fault_fin);
		return (-1);
	case FAULT_CLOSED:
		if (c->w->draining) {
			drain_close(c);
			return (-1);
		}
		if ((c->flags & CONN_EOF) ||
		    now_ms() - f->since_ms >= FAULT_LINGER_MS)
			break;
		/* libevent's clock may run behind ours: the time left. */
		if (fault_arm(c, (FAULT_LINGER_MS - (now_ms() - f->since_ms)) *
		    1000) == -1)
			break;
		return (0);
	default:
		return (0);
	}
	conn_free(c);
	return (-1);
}

/*
 * Stop taking the client's bytes: it has had its budget (reset_after,
 * stall_after).
 */
static int
fault_at_budget(struct conn *c)
{
	struct conn_fault	*f = c->fault;

	f->state = f->at_budget;
	f->since_ms = now_ms();
	if (f->state == FAULT_RESET)
		STAT_ADD(c->st, fault_resets, 1);
	else
		STAT_ADD(c->st, fault_stalls, 1);
	log_debug("conn %d: %s after %llu bytes", (int)bufferevent_getfd(
	    c->bev), f->state == FAULT_RESET ? "reset" : "stalled",
	    (unsigned long long)f->taken);
	return (bufferevent_disable(c->bev, EV_READ));
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

	if (c->flags & CONN_LINGER) {
		drain_late_bytes(c, len);
		evbuffer_drain(in, len);
		return;
	}
	STAT_ADD(c->st, tcp_bytes, len);
	if (c->w->draining)
		c->quiet_from_ms = now_ms();	/* drain_quiet_left */
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
	if (f->state == FAULT_ECHO) {
		/* Held bytes wait as output does: the same limits. */
		if (evbuffer_get_length(f->held) +
		    evbuffer_get_length(bufferevent_get_output(bev)) >=
		    conn_group(c)->buffer_limit) {
			if (bufferevent_disable(bev, EV_READ) == -1) {
				conn_free(c);
				return;
			}
			c->flags |= CONN_PAUSED;
			c->paused_ms = now_ms();
			STAT_ADD(c->st, backpressure_pauses, 1);
		} else if (memory_over(c->w->srv)) {
			if (bufferevent_disable(bev, EV_READ) == -1) {
				conn_free(c);
				return;
			}
			c->flags |= CONN_PAUSED;
			c->paused_ms = now_ms();
			STAT_ADD(c->st, memory_pauses, 1);
		}
	}
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
