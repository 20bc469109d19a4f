/*
 * The load: threads that each run an event_base with their share of the
 * clients and a clock, the tick, that opens clients at the ramp rate,
 * paces open-loop sends, expires late echoes and ends the thread; and
 * the main thread's side of it: the ramp-up, the measurement window, the
 * progress line and the stop.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <event2/event.h>

#include "echoload.h"
#include "client.h"
#include "hist.h"
#include "load.h"
#include "meter.h"
#include "pattern.h"
#include "report.h"

#define TICK_US		1000		/* the threads' clock */
#define RATE_TICK_US	100		/* ... in open-loop mode */
#define EXPIRE_US	100000		/* how often timeouts are checked */
#define SAMPLE_NS	100000000L	/* the main thread's clock */

/* A load thread; once it runs, only the meter is read by others. */
struct load_thread {
	unsigned		 id;
	pthread_t		 th;
	int			 running;	/* started, not yet joined */
	struct event_base	*base;
	struct event		*tick;
	struct client_ctx	 ctx;
	struct meter		 meter;
	struct client		**clients;
	unsigned		 nclients, nopened, rr;
	double			 ramp_credit, rate_credit;
	uint64_t		 last_tick_us, last_check_us;
	uint64_t		 stop_deadline;
};

/* The main thread's view of the run. */
struct load_window {
	uint64_t	 t0;		/* when the threads started */
	uint64_t	 t_meas;	/* when measuring began; 0: not yet */
	uint64_t	 t_end;		/* when it ends */
	uint64_t	 now;		/* the last sample */
	uint64_t	 base_msgs;	/* echoed before measuring began */
	uint64_t	 base_recv;
	double		 ramp_secs;
};

/* --timeline: a row a second of the window. */
struct load_timeline {
	FILE		*f;
	uint64_t	 t_row;		/* when the last row ended */
	uint64_t	 next;		/* when the next is due */
	struct tally	 prev;		/* the counters then */
	struct hist	 iv;		/* the latencies since */
	int		 err;		/* the first failed write's errno */
};

static struct load_thread	*load_threads;
static unsigned			 load_nready;	/* threads set up */
static unsigned char		*load_pat;
static uint64_t			 load_t0;
static _Atomic int		 load_stopping;

/* Open as many new clients as the ramp rate allows after dt us. */
static void
load_ramp(struct load_thread *t, uint64_t dt)
{
	t->ramp_credit += opt.ramp / opt.threads * (double)dt / 1e6;
	if (t->ramp_credit > t->nclients)
		t->ramp_credit = t->nclients;
	for (; t->ramp_credit >= 1 && t->nopened < t->nclients;
	    t->ramp_credit -= 1)
		client_open(t->clients[t->nopened++]);
}

/*
 * Open loop: send what came due in dt us, round robin, as of when due;
 * in churn mode, start a connection on an idle client, and count those
 * due when every client is busy as overloaded.
 */
static void
load_pace(struct load_thread *t, uint64_t now, uint64_t dt)
{
	struct client	*c = NULL;
	double		 per_thread = opt.rate / opt.threads;
	uint64_t	 due;
	unsigned	 i;
	int		 churn = opt.mode == MODE_CHURN;

	t->rate_credit += per_thread * (double)dt / 1e6;
	while (t->rate_credit >= 1) {
		t->rate_credit -= 1;
		for (i = 0; i < t->nopened; i++) {
			c = t->clients[t->rr++ % t->nopened];
			if (churn ? client_idle(c) : client_ready(c))
				break;
		}
		due = now - (uint64_t)(t->rate_credit / per_thread * 1e6);
		if (i == t->nopened) {
			if (churn) {
				/* None will be free before the next tick. */
				METER_ADD(&t->meter, overloaded,
				    1 + (uint64_t)t->rate_credit);
				t->rate_credit -= (uint64_t)t->rate_credit;
			}
		} else if (churn)
			client_churn_start(c, due);
		else
			client_send(c, due);
	}
}

/* Tell whether every client has all its echo back. */
static int
load_all_back(const struct load_thread *t)
{
	unsigned	 i;

	for (i = 0; i < t->nopened; i++)
		if (client_pending(t->clients[i]))
			return (0);
	return (1);
}

/* End the thread: count what is still out, close every client. */
static void
load_end(struct load_thread *t)
{
	unsigned	 i;

	for (i = 0; i < t->nopened; i++)
		client_finish(t->clients[i]);
	(void)event_base_loopbreak(t->base);	/* fails only without a base */
}

/* The thread's clock: ramp, open-loop sends, timeouts, the end. */
static void
load_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct load_thread	*t = arg;
	uint64_t		 now = now_us(), dt = now - t->last_tick_us;
	unsigned		 i;

	t->last_tick_us = now;
	if (t->nopened < t->nclients && !t->ctx.stopping)
		load_ramp(t, dt);
	if (opt.rate > 0 && !t->ctx.stopping && t->nopened > 0)
		load_pace(t, now, dt);
	if (now - t->last_check_us >= EXPIRE_US) {
		t->last_check_us = now;
		for (i = 0; i < t->nopened; i++)
			client_expire(t->clients[i], now);
	}
	meter_hand_over(&t->meter, now);
	if (!t->ctx.stopping && atomic_load(&load_stopping)) {
		t->ctx.stopping = 1;
		t->stop_deadline = now + opt.timeout_ms * 1000;
	}
	if (t->ctx.stopping && (load_all_back(t) || now >= t->stop_deadline))
		load_end(t);
}

/* A load thread: run its event loop until the tick ends it. */
static void *
load_thread_main(void *arg)
{
	struct load_thread	*t = arg;

	if (event_base_dispatch(t->base) == -1)
		fprintf(stderr, "echoload: thread %u: event loop failed\n",
		    t->id);
	return (NULL);
}

/* Free what load_thread_init set up, all of it or part. */
static void
load_thread_free(struct load_thread *t)
{
	unsigned	 i;

	if (t->tick != NULL)
		event_free(t->tick);
	for (i = 0; t->clients != NULL && i < t->nclients; i++)
		if (t->clients[i] != NULL)
			client_free(t->clients[i]);
	free(t->clients);
	free(t->ctx.rbuf);
	if (t->base != NULL)
		event_base_free(t->base);
	meter_free(&t->meter);
}

/* Set up thread id with its share of the clients, not yet open. */
static int
load_thread_init(struct load_thread *t, unsigned id)
{
	struct timeval		 tv = { 0, TICK_US };
	struct event_config	*cfg;
	unsigned		 i;

	if (opt.rate > 0)
		tv.tv_usec = RATE_TICK_US;
	t->id = id;
	t->nclients = opt.connections / opt.threads +
	    (id < opt.connections % opt.threads);
	if (meter_init(&t->meter, opt.progress || opt.timeline != NULL) == -1)
		return (-1);
	/* Open-loop churn: the pace, not the ramp, starts connections. */
	if (opt.mode == MODE_CHURN && opt.rate > 0)
		t->nopened = t->nclients;
	/* The open-loop clock needs better than the coarse 4 ms clock. */
	if ((cfg = event_config_new()) == NULL)
		goto fail;
	if (event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) == 0)
		t->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (t->base == NULL || (t->ctx.rbuf = malloc(CLIENT_RBUF_LEN)) == NULL)
		goto fail;
	t->ctx.base = t->base;
	t->ctx.pat = load_pat;
	t->ctx.meter = &t->meter;
	t->ctx.rng = opt.seed * 2654435761u + (uint64_t)id + 1;
	if ((t->clients = calloc(t->nclients, sizeof(*t->clients))) == NULL)
		goto fail;
	for (i = 0; i < t->nclients; i++)
		if ((t->clients[i] = client_new(&t->ctx,
		    i * opt.threads + id)) == NULL)
			goto fail;
	t->tick = event_new(t->base, -1, EV_PERSIST, load_tick_cb, t);
	if (t->tick == NULL || event_add(t->tick, &tv) == -1)
		goto fail;
	t->last_tick_us = t->last_check_us = now_us();
	return (0);
fail:
	load_thread_free(t);
	return (-1);
}

/* Sum the threads' counters into s; with iv, take their latencies too. */
static void
load_collect(struct tally *s, struct hist *iv)
{
	unsigned	 i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < opt.threads; i++) {
		meter_sum(&load_threads[i].meter, s);
		if (iv != NULL)
			meter_take_interval(&load_threads[i].meter, iv);
	}
}

/* Make the pattern, set up the threads and start them. */
int
load_start(void)
{
	struct load_thread	*t;
	unsigned		 i;

	if ((load_pat = malloc(PATTERN_LEN + PATTERN_MAX_MSG)) == NULL ||
	    (load_threads = calloc(opt.threads, sizeof(*load_threads))) ==
	    NULL) {
		fprintf(stderr, "echoload: out of memory\n");
		return (-1);
	}
	pattern_init(load_pat, opt.seed);
	for (i = 0; i < opt.threads; i++) {
		if (load_thread_init(&load_threads[i], i) == -1) {
			fprintf(stderr, "echoload: cannot set up thread %u\n",
			    i);
			return (-1);
		}
		load_nready++;
	}
	load_t0 = now_us();
	for (i = 0; i < opt.threads; i++) {
		t = &load_threads[i];
		if (pthread_create(&t->th, NULL, load_thread_main, t) != 0) {
			fprintf(stderr, "echoload: cannot start threads\n");
			return (-1);
		}
		t->running = 1;
	}
	return (0);
}

/* Sleep for ns nanoseconds, signals or not. */
static void
load_sleep(long ns)
{
	struct timespec	 ts = { 0, ns };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Open the window once every client has come up or failed (once: in
 * churn mode, many times), or after a while; at once for open-loop
 * churn, which has no ramp.
 */
static void
load_ramped(struct load_window *w, const struct tally *s)
{
	if (!(opt.mode == MODE_CHURN && opt.rate > 0) &&
	    s->clients_settled < opt.connections &&
	    w->now - w->t0 <= (uint64_t)(1e6 * opt.connections / opt.ramp) +
	    10000000)
		return;
	w->t_meas = w->now;
	w->ramp_secs = (double)(w->now - w->t0) / 1e6;
	w->base_msgs = s->msgs;
	w->base_recv = s->bytes_recv;
	meter_window(1);
	w->t_end = w->now + opt.duration_ms * 1000;
}

/* Write a timeline row: the counters s, up to now. */
static void
load_timeline_row(const struct load_window *w, struct load_timeline *tl,
    const struct tally *s)
{
	if (report_timeline_row(tl->f, (double)(w->now - w->t_meas) / 1e6,
	    (double)(w->now - tl->t_row) / 1e6, s, &tl->prev, &tl->iv) == -1 &&
	    tl->err == 0)
		tl->err = errno != 0 ? errno : EIO;
	tl->prev = *s;
	tl->t_row = w->now;
	hist_init(&tl->iv);
}

/*
 * Sample the threads until the window has lasted the duration; the
 * progress line and the timeline (tl, if not NULL) as it goes.
 */
static void
load_measure(struct load_window *w, struct load_timeline *tl)
{
	struct tally	 s, prev;
	struct hist	 iv, taken;
	uint64_t	 last_print = w->t0;

	memset(&prev, 0, sizeof(prev));
	hist_init(&iv);
	hist_init(&taken);
	for (;;) {
		load_sleep(SAMPLE_NS);
		w->now = now_us();
		load_collect(&s, opt.progress || tl != NULL ? &taken : NULL);
		if (opt.progress)
			hist_merge(&iv, &taken);
		if (tl != NULL)
			hist_merge(&tl->iv, &taken);
		hist_init(&taken);
		if (w->t_meas == 0) {
			load_ramped(w, &s);
			if (w->t_meas != 0 && tl != NULL) {
				tl->t_row = w->t_meas;
				tl->next = w->t_meas + 1000000;
				tl->prev = s;
				hist_init(&tl->iv);
			}
		}
		if (opt.progress && w->now - last_print >= 1000000) {
			report_progress((double)(w->now - w->t0) / 1e6,
			    (double)(w->now - last_print) / 1e6, &s, &prev,
			    &iv);
			prev = s;
			last_print = w->now;
			hist_init(&iv);
		}
		if (w->t_meas != 0 && w->now >= w->t_end)
			break;
		if (tl != NULL && w->t_meas != 0 && w->now >= tl->next) {
			load_timeline_row(w, tl, &s);
			while (tl->next <= w->now)
				tl->next += 1000000;
		}
	}
}

/* Tell the threads to stop, and wait until they have. */
static void
load_join(void)
{
	unsigned	 i;

	atomic_store(&load_stopping, 1);
	for (i = 0; i < load_nready; i++) {
		if (!load_threads[i].running)
			continue;
		if (pthread_join(load_threads[i].th, NULL) != 0) {
			fprintf(stderr, "echoload: cannot join thread %u\n", i);
			exit(EX_SOFTWARE);
		}
		load_threads[i].running = 0;
	}
}

/*
 * Ramp up, measure, stop; what was measured goes into r, and with a
 * timeline file, a row a second into it (the last row ends where the
 * window does, so that the rows add up to the report).
 */
void
load_run(struct report *r, FILE *timeline)
{
	static struct load_timeline	 tl;
	struct load_window		 w;
	struct tally			 end;
	unsigned			 i, p;

	memset(&w, 0, sizeof(w));
	w.t0 = load_t0;
	tl.f = timeline;
	hist_init(&tl.iv);
	load_measure(&w, timeline != NULL ? &tl : NULL);
	/* Throughput and latency count up to now; errors up to the end. */
	meter_window(0);
	w.now = now_us();
	load_collect(&end, timeline != NULL ? &tl.iv : NULL);
	load_join();
	if (timeline != NULL) {
		/* The last row's latencies: what the threads had not handed. */
		for (i = 0; i < opt.threads; i++)
			meter_take_rest(&load_threads[i].meter, &tl.iv);
		load_timeline_row(&w, &tl, &end);
		r->timeline_errno = tl.err;
	}
	if (opt.progress)
		report_progress_end();
	r->secs = (double)(w.now - w.t_meas) / 1e6;
	r->ramp_secs = w.ramp_secs;
	load_collect(&r->s, NULL);
	r->s.msgs = end.msgs - w.base_msgs;
	r->s.bytes_recv = end.bytes_recv - w.base_recv;
	hist_init(&r->lat);
	for (p = 0; p < PHASE_COUNT; p++)
		hist_init(&r->phase[p]);
	for (i = 0; i < opt.threads; i++) {
		meter_merge_all(&load_threads[i].meter, &r->lat);
		for (p = 0; p < PHASE_COUNT; p++)
			meter_merge_phase(&load_threads[i].meter, p,
			    &r->phase[p]);
	}
}

/* Stop any thread still running, and free everything load_start made. */
void
load_free(void)
{
	unsigned	 i;

	load_join();
	for (i = 0; i < load_nready; i++)
		load_thread_free(&load_threads[i]);
	free(load_threads);
	free(load_pat);
}
