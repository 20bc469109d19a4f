/*
 * echoload: a load generator for echo servers.  Many connections (TCP or
 * UDP) spread over threads, each thread with its own event_base; closed-
 * loop ping-pong or pipelined messages, a continuous stream, or an open-
 * loop rate.  Every echoed byte is checked against what was sent, and
 * latencies go into log-bucketed histograms.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "units.h"
#include "hist.h"
#include "pattern.h"

#define QUEUE_CAP	4096		/* most messages in flight per conn */
#define STREAM_WINDOW	(256 * 1024)	/* unsent bytes kept per stream */
#define TICK_US		1000		/* the threads' clock */
#define RATE_TICK_US	100		/* ... in open-loop mode */
#define UDP_SEQ_LEN	8
#define RBUF_LEN	65536		/* one read, and any datagram */

enum mode { MODE_PINGPONG, MODE_PIPELINE, MODE_STREAM };
static const char *mode_names[] = { "pingpong", "pipeline", "stream" };

struct target {
	struct addr	a;
	char		name[ADDR_STRLEN];
};

static struct opts {
	struct target	*targets;
	size_t		 ntargets;
	unsigned	 threads;
	unsigned	 connections;
	uint64_t	 duration_ms;
	uint64_t	 timeout_ms;
	size_t		 size_min, size_max;
	enum mode	 mode;
	unsigned	 depth;
	double		 rate;		/* messages/s in all; 0: closed loop */
	double		 ramp;		/* new connections/s in all */
	int		 udp;
	int		 json;
	int		 progress;
	double		 max_loss;	/* UDP loss allowed, percent */
	uint64_t	 seed;
} opt;

/* Counters of one thread; the thread's mutex guards them. */
struct counters {
	uint64_t	msgs;
	uint64_t	bytes_sent;
	uint64_t	bytes_recv;
	uint64_t	mismatches;
	uint64_t	resets;
	uint64_t	timeouts;
	uint64_t	connect_fail;
	uint64_t	conns_up;
	uint64_t	udp_sent;
	uint64_t	udp_lost;
	uint64_t	udp_late;
	uint64_t	overloaded;
};

struct msg {
	uint64_t	t_us;		/* when sent, or due (open loop) */
	uint64_t	seq;		/* UDP only */
	uint32_t	size;
	uint32_t	got;		/* TCP: bytes back; UDP: 1 when back */
};

struct lthread;

struct lconn {
	struct lthread		*t;
	const struct target	*tgt;
	int			 fd;
	struct event		*ev;		/* readable */
	struct event		*wev;		/* TCP: writable, while needed */
	int			 wev_on;
	uint64_t		 base;		/* pattern offset of stream */
	uint64_t		 sent, written, recvd;	/* TCP stream offsets */
	uint64_t		 seq;		/* UDP: next sequence number */
	struct msg		*q;
	unsigned		 qhead, qlen;
	unsigned		 inflight;	/* UDP: sent, not back or lost */
	int			 up, dead;
};

struct lthread {
	int			 id;
	pthread_t		 th;
	struct event_base	*base;
	struct lconn		*conns;
	unsigned		 nconns, nopened, rr;
	struct event		*tick;
	double			 ramp_credit, rate_credit;
	uint64_t		 last_tick_us, last_check_us;
	uint64_t		 stop_deadline;
	int			 stopping;
	uint64_t		 rng;
	unsigned char		*rbuf;		/* RBUF_LEN bytes */
	pthread_mutex_t		 mu;
	struct counters		 c;
	struct hist		 cum, interval;
};

static unsigned char	*pat;
static _Atomic int	 stop_flag;
static _Atomic int	 measuring;

static void	conn_kill(struct lconn *);
static void	conn_send(struct lconn *, uint64_t);

/* Microseconds on the monotonic clock. */
static uint64_t
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

/* A message size from the configured range. */
static uint32_t
pick_size(struct lthread *t)
{
	uint64_t	 span = opt.size_max - opt.size_min + 1;

	if (span == 1)
		return ((uint32_t)opt.size_min);
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return ((uint32_t)(opt.size_min + t->rng % span));
}

/* Add n to one of the thread's counters. */
#define COUNT(t, field, n) do {						\
	pthread_mutex_lock(&(t)->mu);					\
	(t)->c.field += (n);						\
	pthread_mutex_unlock(&(t)->mu);					\
} while (0)

/* Record one echoed message and its latency. */
static void
record(struct lthread *t, uint64_t lat_us, size_t bytes)
{
	pthread_mutex_lock(&t->mu);
	t->c.msgs++;
	t->c.bytes_recv += bytes;
	if (atomic_load_explicit(&measuring, memory_order_relaxed)) {
		hist_add(&t->cum, lat_us);
		hist_add(&t->interval, lat_us);
	}
	pthread_mutex_unlock(&t->mu);
}

/* How many messages a closed-loop connection keeps in flight. */
static unsigned
want_inflight(void)
{
	return (opt.mode == MODE_PIPELINE ? opt.depth : 1);
}

/*
 * Write what is due on a TCP connection: the stream bytes from written to
 * sent, straight from the pattern (no copy), and watch for writability
 * only while some are left.  Return 0, or -1 if the connection is gone.
 */
static int
tcp_flush(struct lconn *c)
{
	const unsigned char	*p;
	size_t			 avail, len;
	ssize_t			 n;

	while (c->written < c->sent) {
		p = pattern_at(pat, c->base + c->written, &avail);
		len = c->sent - c->written;
		if (len > avail)
			len = avail;
		if (opt.mode == MODE_STREAM && len > opt.size_max)
			len = opt.size_max;
		n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			c->written += (uint64_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		COUNT(c->t, resets, 1);
		conn_kill(c);
		return (-1);
	}
	if (c->written < c->sent && !c->wev_on) {
		if (event_add(c->wev, NULL) == -1) {
			conn_kill(c);
			return (-1);
		}
		c->wev_on = 1;
	} else if (c->written == c->sent && c->wev_on) {
		event_del(c->wev);
		c->wev_on = 0;
	}
	return (0);
}

/* Top up a stream connection's output, then write what the socket takes. */
static void
stream_fill(struct lconn *c)
{
	uint32_t	 n;

	while (!c->t->stopping && c->sent - c->written < STREAM_WINDOW) {
		n = pick_size(c->t);
		c->sent += n;
		COUNT(c->t, bytes_sent, n);
	}
	tcp_flush(c);
}

/* The connection is up: start sending. */
static void
tcp_up(struct lconn *c)
{
	unsigned	 i;
	int		 on = 1;

	c->up = 1;
	COUNT(c->t, conns_up, 1);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (opt.mode == MODE_STREAM)
		stream_fill(c);
	else if (opt.rate == 0)
		for (i = 0; i < want_inflight() && !c->dead; i++)
			conn_send(c, now_us());
	if (!c->dead && c->written == c->sent && c->wev_on) {
		event_del(c->wev);
		c->wev_on = 0;
	}
}

/* TCP read callback: check the echo, complete messages, send more. */
static void
tcp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lconn		*c = arg;
	struct lthread		*t = c->t;
	struct msg		*m;
	uint64_t		 now;
	size_t			 len, off, take;
	ssize_t			 n;

	n = recv((int)fd, t->rbuf, RBUF_LEN, 0);
	if (n <= 0) {
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		COUNT(t, resets, 1);	/* closed or reset under us */
		conn_kill(c);
		return;
	}
	now = now_us();
	len = (size_t)n;
	if (c->recvd + len > c->sent ||
	    pattern_check(pat, c->base + c->recvd, t->rbuf, len) != len) {
		COUNT(t, mismatches, 1);
		conn_kill(c);
		return;
	}
	c->recvd += len;
	if (opt.mode == MODE_STREAM) {
		COUNT(t, bytes_recv, len);
		stream_fill(c);
		return;
	}
	for (off = 0; off < len; off += take) {
		m = &c->q[c->qhead];
		take = m->size - m->got;
		if (take > len - off)
			take = len - off;
		m->got += (uint32_t)take;
		if (m->got < m->size)
			break;
		record(t, now > m->t_us ? now - m->t_us : 0, m->size);
		c->qhead = (c->qhead + 1) % QUEUE_CAP;
		c->qlen--;
		if (opt.rate == 0 && !t->stopping) {
			conn_send(c, now);
			if (c->dead)
				return;
		}
	}
}

/* TCP write callback: the connect finished, or the socket takes more. */
static void
tcp_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lconn	*c = arg;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (!c->up) {
		if (getsockopt((int)fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			COUNT(c->t, connect_fail, 1);
			conn_kill(c);
			return;
		}
		tcp_up(c);
		return;
	}
	if (opt.mode == MODE_STREAM)
		stream_fill(c);
	else
		tcp_flush(c);
}

/* UDP read callback: match each datagram to the one it echoes. */
static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lconn	*c = arg;
	struct lthread	*t = c->t;
	uint64_t	 seq, now = now_us();
	struct msg	*m;
	ssize_t		 n;
	unsigned	 j, k;
	int		 found;

	for (k = 0; k < 64; k++) {
		n = recv((int)fd, t->rbuf, RBUF_LEN, 0);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				COUNT(t, resets, 1);
			break;
		}
		if (n < UDP_SEQ_LEN) {
			COUNT(t, mismatches, 1);
			continue;
		}
		memcpy(&seq, t->rbuf, UDP_SEQ_LEN);
		found = 0;
		for (j = 0; j < c->qlen; j++) {
			m = &c->q[(c->qhead + j) % QUEUE_CAP];
			if (m->seq != seq || m->got)
				continue;
			found = 1;
			if ((size_t)n != m->size || pattern_check(pat, c->base +
			    seq * 4093, t->rbuf + UDP_SEQ_LEN,
			    (size_t)n - UDP_SEQ_LEN) != (size_t)n - UDP_SEQ_LEN)
				COUNT(t, mismatches, 1);
			else
				record(t, now > m->t_us ? now - m->t_us : 0,
				    m->size);
			m->got = 1;
			c->inflight--;
			break;
		}
		if (!found)
			COUNT(t, udp_late, 1);
		while (c->qlen > 0 && c->q[c->qhead].got) {
			c->qhead = (c->qhead + 1) % QUEUE_CAP;
			c->qlen--;
		}
		if (found && opt.rate == 0 && !t->stopping)
			conn_send(c, now);
	}
}

/* Send one message on c, stamped t_us. */
static void
conn_send(struct lconn *c, uint64_t t_us)
{
	struct msg		*m;
	struct iovec		 iov[2];
	size_t			 avail;
	uint32_t		 size;

	if (c->dead || !c->up)
		return;
	if (c->qlen == QUEUE_CAP) {
		COUNT(c->t, overloaded, 1);
		return;
	}
	size = pick_size(c->t);
	m = &c->q[(c->qhead + c->qlen) % QUEUE_CAP];
	m->t_us = t_us;
	m->size = size;
	m->got = 0;
	if (!opt.udp) {
		/* The bytes are the pattern's next ones: write what is due. */
		c->sent += size;
		c->qlen++;
		COUNT(c->t, bytes_sent, size);
		tcp_flush(c);
		return;
	}
	m->seq = c->seq++;
	iov[0].iov_base = &m->seq;
	iov[0].iov_len = UDP_SEQ_LEN;
	iov[1].iov_base = (void *)pattern_at(pat, c->base + m->seq * 4093,
	    &avail);
	iov[1].iov_len = size - UDP_SEQ_LEN;
	if (writev(c->fd, iov, 2) == -1) {
		/* A full socket buffer is a datagram the network dropped. */
		COUNT(c->t, udp_lost, 1);
		return;
	}
	c->qlen++;
	c->inflight++;
	pthread_mutex_lock(&c->t->mu);
	c->t->c.udp_sent++;
	c->t->c.bytes_sent += size;
	pthread_mutex_unlock(&c->t->mu);
}

/* Close a connection for good. */
static void
conn_kill(struct lconn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (c->wev != NULL) {
		event_free(c->wev);
		c->wev = NULL;
	}
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
}

/* Open connection number i of thread t. */
static void
conn_open(struct lthread *t, unsigned i)
{
	struct lconn	*c = &t->conns[i];
	unsigned	 global = i * opt.threads + (unsigned)t->id;

	c->t = t;
	c->fd = -1;
	c->tgt = &opt.targets[global % opt.ntargets];
	c->base = (uint64_t)global * 7919 * 64;
	if (!opt.udp) {
		c->fd = socket(c->tgt->a.ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd == -1 || (connect(c->fd,
		    (struct sockaddr *)&c->tgt->a.ss, c->tgt->a.len) == -1 &&
		    errno != EINPROGRESS))
			goto fail;
		c->ev = event_new(t->base, c->fd, EV_READ | EV_PERSIST,
		    tcp_read_cb, c);
		c->wev = event_new(t->base, c->fd, EV_WRITE | EV_PERSIST,
		    tcp_write_cb, c);
		/* Writability says the connect finished. */
		if (c->ev == NULL || c->wev == NULL ||
		    event_add(c->ev, NULL) == -1 ||
		    event_add(c->wev, NULL) == -1)
			goto fail;
		c->wev_on = 1;
		return;
	}
	c->fd = socket(c->tgt->a.ss.ss_family,
	    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1 || connect(c->fd, (struct sockaddr *)&c->tgt->a.ss,
	    c->tgt->a.len) == -1)
		goto fail;
	c->ev = event_new(t->base, c->fd, EV_READ | EV_PERSIST, udp_read_cb,
	    c);
	if (c->ev == NULL || event_add(c->ev, NULL) == -1)
		goto fail;
	c->up = 1;
	COUNT(t, conns_up, 1);
	if (opt.rate == 0)
		for (i = 0; i < want_inflight(); i++)
			conn_send(c, now_us());
	return;
fail:
	COUNT(t, connect_fail, 1);
	conn_kill(c);
}

/* Expire messages older than the timeout. */
static void
check_timeouts(struct lthread *t, uint64_t now)
{
	struct lconn	*c;
	struct msg	*m;
	unsigned	 i;

	for (i = 0; i < t->nopened; i++) {
		c = &t->conns[i];
		if (c->dead || c->qlen == 0)
			continue;
		m = &c->q[c->qhead];
		if (now - m->t_us < opt.timeout_ms * 1000 || m->t_us > now)
			continue;
		if (!opt.udp) {
			COUNT(t, timeouts, 1);
			conn_kill(c);
			continue;
		}
		while (c->qlen > 0 && (m = &c->q[c->qhead]) != NULL &&
		    (m->got || now - m->t_us >= opt.timeout_ms * 1000)) {
			if (!m->got) {
				COUNT(t, udp_lost, 1);
				c->inflight--;
				if (opt.rate == 0 && !t->stopping)
					conn_send(c, now);
			}
			c->qhead = (c->qhead + 1) % QUEUE_CAP;
			c->qlen--;
		}
	}
}

/* Tell whether every connection has all its echo back. */
static int
all_back(struct lthread *t)
{
	unsigned	 i;
	struct lconn	*c;

	for (i = 0; i < t->nopened; i++) {
		c = &t->conns[i];
		if (c->dead)
			continue;
		if (opt.mode == MODE_STREAM ? c->recvd < c->sent :
		    (opt.udp ? c->inflight > 0 : c->qlen > 0))
			return (0);
	}
	return (1);
}

/* The thread's clock: ramp, open-loop sends, timeouts, the end. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lthread	*t = arg;
	uint64_t	 now = now_us(), dt = now - t->last_tick_us;
	double		 per_thread;
	unsigned	 i, n;
	struct lconn	*c;

	t->last_tick_us = now;
	if (t->nopened < t->nconns && !t->stopping) {
		t->ramp_credit += opt.ramp / opt.threads * (double)dt / 1e6;
		if (t->ramp_credit > t->nconns)
			t->ramp_credit = t->nconns;
		for (n = 0; t->ramp_credit >= 1 && t->nopened < t->nconns;
		    n++, t->ramp_credit -= 1)
			conn_open(t, t->nopened++);
	}
	if (opt.rate > 0 && !t->stopping && t->nopened > 0) {
		per_thread = opt.rate / opt.threads;
		t->rate_credit += per_thread * (double)dt / 1e6;
		/* Each due message keeps the time it was due. */
		while (t->rate_credit >= 1) {
			t->rate_credit -= 1;
			for (i = 0; i < t->nopened; i++) {
				c = &t->conns[t->rr++ % t->nopened];
				if (!c->dead && c->up)
					break;
			}
			if (i < t->nopened)
				conn_send(c, now - (uint64_t)(t->rate_credit /
				    per_thread * 1e6));
		}
	}
	if (now - t->last_check_us >= 100000) {
		t->last_check_us = now;
		check_timeouts(t, now);
	}
	if (!t->stopping && atomic_load(&stop_flag)) {
		t->stopping = 1;
		t->stop_deadline = now + opt.timeout_ms * 1000;
	}
	if (t->stopping && (all_back(t) || now >= t->stop_deadline)) {
		check_timeouts(t, UINT64_MAX / 2);
		for (i = 0; i < t->nopened; i++) {
			c = &t->conns[i];
			if (c->dead)
				continue;
			if (opt.mode == MODE_STREAM && c->recvd < c->sent)
				COUNT(t, timeouts, 1);
			else if (opt.udp)
				COUNT(t, udp_lost, c->inflight);
			else if (c->qlen > 0)
				COUNT(t, timeouts, 1);
			conn_kill(c);
		}
		event_base_loopexit(t->base, NULL);
	}
}

/* A load thread. */
static void *
thread_main(void *arg)
{
	struct lthread	*t = arg;

	event_base_dispatch(t->base);
	return (NULL);
}

/* Set up thread id with its share of the connections. */
static int
thread_init(struct lthread *t, int id)
{
	struct timeval		 tv = { 0, opt.rate > 0 ? RATE_TICK_US : TICK_US };
	struct event_config	*cfg;
	unsigned		 i;

	memset(t, 0, sizeof(*t));
	t->id = id;
	t->nconns = opt.connections / opt.threads +
	    ((unsigned)id < opt.connections % opt.threads);
	t->rng = opt.seed * 2654435761u + (uint64_t)id + 1;
	pthread_mutex_init(&t->mu, NULL);
	hist_init(&t->cum);
	hist_init(&t->interval);
	/* The open-loop clock needs better than the coarse 4 ms clock. */
	if ((cfg = event_config_new()) == NULL ||
	    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) == -1) {
		if (cfg != NULL)
			event_config_free(cfg);
		return (-1);
	}
	t->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (t->base == NULL ||
	    (t->conns = calloc(t->nconns ? t->nconns : 1,
	    sizeof(*t->conns))) == NULL ||
	    (t->rbuf = malloc(65536)) == NULL)
		return (-1);
	for (i = 0; i < t->nconns; i++) {
		t->conns[i].fd = -1;
		t->conns[i].dead = 1;
		if ((t->conns[i].q = calloc(QUEUE_CAP,
		    sizeof(struct msg))) == NULL)
			return (-1);
		t->conns[i].dead = 0;
	}
	t->tick = event_new(t->base, -1, EV_PERSIST, tick_cb, t);
	if (t->tick == NULL || event_add(t->tick, &tv) == -1)
		return (-1);
	t->last_tick_us = t->last_check_us = now_us();
	return (0);
}

/* Free a thread's state after it ended. */
static void
thread_free(struct lthread *t)
{
	unsigned	 i;

	for (i = 0; t->conns != NULL && i < t->nconns; i++) {
		conn_kill(&t->conns[i]);
		free(t->conns[i].q);
	}
	free(t->conns);
	if (t->tick != NULL)
		event_free(t->tick);
	if (t->base != NULL) {
		event_base_loop(t->base, EVLOOP_NONBLOCK);
		event_base_free(t->base);
	}
	free(t->rbuf);
	pthread_mutex_destroy(&t->mu);
}

/* Sum the threads' counters; with interval, also take their intervals. */
static void
collect(struct lthread *ts, struct counters *sum, struct hist *interval,
    struct hist *cum)
{
	unsigned	 i;

	memset(sum, 0, sizeof(*sum));
	for (i = 0; i < opt.threads; i++) {
		pthread_mutex_lock(&ts[i].mu);
#define ADD(f)	sum->f += ts[i].c.f
		ADD(msgs); ADD(bytes_sent); ADD(bytes_recv); ADD(mismatches);
		ADD(resets); ADD(timeouts); ADD(connect_fail); ADD(conns_up);
		ADD(udp_sent); ADD(udp_lost); ADD(udp_late); ADD(overloaded);
#undef ADD
		if (interval != NULL) {
			hist_merge(interval, &ts[i].interval);
			hist_init(&ts[i].interval);
		}
		if (cum != NULL)
			hist_merge(cum, &ts[i].cum);
		pthread_mutex_unlock(&ts[i].mu);
	}
}

/* Forget latencies recorded before the measurement began. */
static void
reset_hists(struct lthread *ts)
{
	unsigned	 i;

	for (i = 0; i < opt.threads; i++) {
		pthread_mutex_lock(&ts[i].mu);
		hist_init(&ts[i].cum);
		hist_init(&ts[i].interval);
		pthread_mutex_unlock(&ts[i].mu);
	}
	atomic_store(&measuring, 1);
}

static void __attribute__((noreturn))
usage(int ex)
{
	fprintf(ex == 0 ? stdout : stderr,
	    "usage: echoload [-uq] [--json] [-c connections] [-t threads] "
	    "[-d duration]\n"
	    "                [-s size[-max]] [-m pingpong|pipeline|stream] "
	    "[-k depth]\n"
	    "                [-r rate] [--ramp rate] [--timeout duration] "
	    "[--max-loss percent]\n"
	    "                [--seed n] [--progress] host:port ...\n");
	exit(ex);
}

/* Parse a whole number option, or exit with a usage error. */
static uint64_t
arg_number(const char *name, const char *v, uint64_t min, uint64_t max)
{
	uint64_t	 n;

	if (units_number(v, min, max, &n) == -1) {
		fprintf(stderr, "echoload: %s: '%s' must be a number from %"
		    PRIu64 " to %" PRIu64 "\n", name, v, min, max);
		usage(EX_USAGE);
	}
	return (n);
}

/* Parse a size or size range option ("64", "1k-64k"). */
static void
arg_sizes(const char *v)
{
	char		 buf[64], *dash;
	uint64_t	 lo, hi;

	snprintf(buf, sizeof(buf), "%s", v);
	if ((dash = strchr(buf, '-')) != NULL)
		*dash++ = '\0';
	if (units_size(buf, &lo) == -1 ||
	    (dash != NULL && units_size(dash, &hi) == -1)) {
		fprintf(stderr, "echoload: --size: '%s' is not a size or "
		    "range (like 64, 16k or 1-1k)\n", v);
		usage(EX_USAGE);
	}
	if (dash == NULL)
		hi = lo;
	if (lo < 1 || hi < lo || hi > PATTERN_MAX_MSG) {
		fprintf(stderr, "echoload: --size: '%s' must be from 1 to 1m, "
		    "smallest first\n", v);
		usage(EX_USAGE);
	}
	opt.size_min = lo;
	opt.size_max = hi;
}

/* Parse a duration option, or exit with a usage error. */
static uint64_t
arg_duration(const char *name, const char *v)
{
	uint64_t	 ms;

	if (units_duration(v, &ms) == -1 || ms == 0) {
		fprintf(stderr, "echoload: %s: '%s' is not a duration (like "
		    "500ms, 10s or 2m)\n", name, v);
		usage(EX_USAGE);
	}
	return (ms);
}

/* Parse a non-negative decimal option. */
static double
arg_real(const char *name, const char *v)
{
	double	 d;
	char	*end;

	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || *end != '\0' || end == v || !(d >= 0) ||
	    isinf(d)) {
		fprintf(stderr, "echoload: %s: '%s' is not a number\n", name,
		    v);
		usage(EX_USAGE);
	}
	return (d);
}

/* Print the final report, as text or JSON. */
static int
report(const struct counters *s, const struct hist *h, double secs,
    double ramp_secs)
{
	double		 loss = s->udp_sent > 0 ? 100.0 * (double)s->udp_lost /
			    (double)s->udp_sent : 0.0;
	const char	*why = NULL;
	size_t		 i;

	if (s->mismatches > 0)
		why = "echoed data did not match what was sent";
	else if (s->resets > 0)
		why = "connections were reset or closed";
	else if (s->connect_fail > 0)
		why = "connections failed";
	else if (s->timeouts > 0)
		why = "echoes did not come back in time";
	else if (opt.udp && loss > opt.max_loss)
		why = "UDP loss above --max-loss";
	else if (s->overloaded > 0)
		why = "more messages in flight than a connection can track";
	else if (s->msgs == 0 && s->bytes_recv == 0)
		why = "nothing was echoed";

	if (opt.json) {
		printf("{\"proto\":\"%s\",\"mode\":\"%s\",\"rate\":%.1f,"
		    "\"connections\":%u,\"threads\":%u,\"size_min\":%zu,"
		    "\"size_max\":%zu,\"seconds\":%.3f,\"ramp_seconds\":%.3f,"
		    "\"targets\":[", opt.udp ? "udp" : "tcp",
		    mode_names[opt.mode], opt.rate, opt.connections,
		    opt.threads, opt.size_min, opt.size_max, secs, ramp_secs);
		for (i = 0; i < opt.ntargets; i++)
			printf("%s\"%s\"", i ? "," : "", opt.targets[i].name);
		printf("],\"connections_up\":%" PRIu64 ",\"messages\":%"
		    PRIu64 ",\"messages_per_sec\":%.1f,\"bytes_sent\":%"
		    PRIu64 ",\"bytes_echoed\":%" PRIu64 ",\"mb_per_sec\":%.3f,"
		    "\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
		    ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
		    ",\"mean\":%.1f,\"count\":%" PRIu64 "},\"errors\":{"
		    "\"mismatched\":%" PRIu64 ",\"reset\":%" PRIu64
		    ",\"timed_out\":%" PRIu64 ",\"connect_failed\":%" PRIu64
		    ",\"overloaded\":%" PRIu64 "},\"udp\":{\"sent\":%" PRIu64
		    ",\"lost\":%" PRIu64 ",\"late\":%" PRIu64 ",\"loss_percent\""
		    ":%.4f},\"ok\":%s,\"failure\":%s%s%s}\n", s->conns_up,
		    s->msgs, (double)s->msgs / secs, s->bytes_sent,
		    s->bytes_recv, (double)s->bytes_recv / secs / 1e6,
		    hist_percentile(h, 50), hist_percentile(h, 90),
		    hist_percentile(h, 99), hist_percentile(h, 99.9),
		    h->count ? h->max : 0, hist_mean(h), h->count,
		    s->mismatches, s->resets, s->timeouts, s->connect_fail,
		    s->overloaded, s->udp_sent, s->udp_lost, s->udp_late, loss,
		    why == NULL ? "true" : "false", why == NULL ? "" : "\"",
		    why == NULL ? "null" : why, why == NULL ? "" : "\"");
	} else {
		printf("echoload: %s %s%s, %u connections, %u threads, size "
		    "%zu-%zu, %.2f s (ramp %.2f s)\n", opt.udp ? "udp" : "tcp",
		    mode_names[opt.mode], opt.rate > 0 ? " open-loop" : "",
		    opt.connections, opt.threads, opt.size_min, opt.size_max,
		    secs, ramp_secs);
		printf("connections: %" PRIu64 " up, %" PRIu64 " failed\n",
		    s->conns_up, s->connect_fail);
		printf("messages:    %" PRIu64 " (%.1f/s)\n", s->msgs,
		    (double)s->msgs / secs);
		printf("bytes:       %" PRIu64 " sent, %" PRIu64 " echoed "
		    "(%.2f MB/s)\n", s->bytes_sent, s->bytes_recv,
		    (double)s->bytes_recv / secs / 1e6);
		printf("latency us:  p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %"
		    PRIu64 "  p99.9 %" PRIu64 "  max %" PRIu64 "  mean %.1f\n",
		    hist_percentile(h, 50), hist_percentile(h, 90),
		    hist_percentile(h, 99), hist_percentile(h, 99.9),
		    h->count ? h->max : 0, hist_mean(h));
		printf("errors:      %" PRIu64 " mismatched, %" PRIu64 " reset, "
		    "%" PRIu64 " timed out, %" PRIu64 " overloaded\n",
		    s->mismatches, s->resets, s->timeouts, s->overloaded);
		if (opt.udp)
			printf("udp:         %" PRIu64 " sent, %" PRIu64 " lost "
			    "(%.3f%%), %" PRIu64 " late\n", s->udp_sent,
			    s->udp_lost, loss, s->udp_late);
		printf("result:      %s%s\n", why == NULL ? "OK" : "FAILED: ",
		    why == NULL ? "" : why);
	}
	fflush(stdout);
	return (why == NULL ? 0 : 1);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "depth", required_argument, NULL, 'k' },
		{ "rate", required_argument, NULL, 'r' },
		{ "udp", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'J' },
		{ "ramp", required_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "max-loss", required_argument, NULL, 'L' },
		{ "seed", required_argument, NULL, 'S' },
		{ "progress", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct lthread		*ts;
	struct counters		 s, prev;
	struct hist		 iv, cum;
	struct timespec		 tick = { 0, 100 * 1000 * 1000 };
	const char		*why;
	uint64_t		 t0, t_meas = 0, t_end = 0, now = 0, last_print;
	uint64_t		 base_msgs = 0, base_recv = 0;
	double			 secs, ramp_secs = 0;
	unsigned		 i;
	int			 ch, quiet = 0, rc;

	opt.threads = 1;
	opt.connections = 1;
	opt.duration_ms = 10000;
	opt.timeout_ms = 5000;
	opt.size_min = opt.size_max = 64;
	opt.depth = 8;
	opt.ramp = 10000;
	opt.seed = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:t:d:s:m:k:r:uqhV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt.connections = (unsigned)arg_number("--connections",
			    optarg, 1, 1000000);
			break;
		case 't':
			opt.threads = (unsigned)arg_number("--threads", optarg,
			    1, 256);
			break;
		case 'd':
			opt.duration_ms = arg_duration("--duration", optarg);
			break;
		case 's':
			arg_sizes(optarg);
			break;
		case 'm':
			for (i = 0; i < 3; i++)
				if (strcmp(optarg, mode_names[i]) == 0)
					break;
			if (i == 3) {
				fprintf(stderr, "echoload: --mode: '%s' must be "
				    "pingpong, pipeline or stream\n", optarg);
				usage(EX_USAGE);
			}
			opt.mode = (enum mode)i;
			break;
		case 'k':
			opt.depth = (unsigned)arg_number("--depth", optarg, 1,
			    QUEUE_CAP);
			break;
		case 'r':
			opt.rate = arg_real("--rate", optarg);
			break;
		case 'u':
			opt.udp = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'J':
			opt.json = 1;
			break;
		case 'R':
			opt.ramp = arg_real("--ramp", optarg);
			if (opt.ramp < 1) {
				fprintf(stderr, "echoload: --ramp must be at "
				    "least 1 connection/s\n");
				usage(EX_USAGE);
			}
			break;
		case 'T':
			opt.timeout_ms = arg_duration("--timeout", optarg);
			break;
		case 'L':
			opt.max_loss = arg_real("--max-loss", optarg);
			break;
		case 'S':
			opt.seed = arg_number("--seed", optarg, 0, UINT64_MAX);
			break;
		case 'P':
			opt.progress = 1;
			break;
		case 'h':
			usage(EX_OK);
		case 'V':
			printf("echoload %s\n", PACKAGE_VERSION);
			return (EX_OK);
		case ':':
			fprintf(stderr, "echoload: option '%s' needs an "
			    "argument\n", argv[optind - 1]);
			usage(EX_USAGE);
		default:
			fprintf(stderr, "echoload: unknown option '%s'\n",
			    argv[optind - 1]);
			usage(EX_USAGE);
		}
	}
	if (optind == argc) {
		fprintf(stderr, "echoload: no target given\n");
		usage(EX_USAGE);
	}
	if (opt.udp && opt.mode == MODE_STREAM) {
		fprintf(stderr, "echoload: UDP has no stream mode; use "
		    "pipeline or --rate\n");
		usage(EX_USAGE);
	}
	if (opt.udp && opt.size_min < UDP_SEQ_LEN) {
		fprintf(stderr, "echoload: UDP messages need at least %d bytes "
		    "for their sequence number\n", UDP_SEQ_LEN);
		usage(EX_USAGE);
	}
	if (opt.udp && opt.size_max > 65507) {
		fprintf(stderr, "echoload: UDP messages are at most 65507 "
		    "bytes\n");
		usage(EX_USAGE);
	}
	if (opt.mode == MODE_STREAM && opt.rate > 0) {
		fprintf(stderr, "echoload: --rate does not go with stream "
		    "mode\n");
		usage(EX_USAGE);
	}
	if (opt.threads > opt.connections)
		opt.threads = opt.connections;
	opt.ntargets = (size_t)(argc - optind);
	if ((opt.targets = calloc(opt.ntargets, sizeof(*opt.targets))) ==
	    NULL)
		return (EX_OSERR);
	for (i = 0; i < opt.ntargets; i++) {
		if (addr_parse(argv[optind + (int)i], &opt.targets[i].a, &why)
		    == -1) {
			fprintf(stderr, "echoload: bad target '%s': %s\n",
			    argv[optind + (int)i], why);
			usage(EX_USAGE);
		}
		snprintf(opt.targets[i].name, sizeof(opt.targets[i].name),
		    "%s", argv[optind + (int)i]);
	}
	if (!quiet && !opt.json && isatty(STDERR_FILENO))
		opt.progress = 1;
	if (quiet)
		opt.progress = 0;

	signal(SIGPIPE, SIG_IGN);
	if ((pat = malloc(PATTERN_LEN + PATTERN_MAX_MSG)) == NULL ||
	    (ts = calloc(opt.threads, sizeof(*ts))) == NULL)
		return (EX_OSERR);
	pattern_init(pat, opt.seed);
	for (i = 0; i < opt.threads; i++) {
		if (thread_init(&ts[i], (int)i) == -1) {
			fprintf(stderr, "echoload: cannot set up thread %u\n",
			    i);
			return (EX_OSERR);
		}
	}
	t0 = now_us();
	for (i = 0; i < opt.threads; i++) {
		if (pthread_create(&ts[i].th, NULL, thread_main, &ts[i]) != 0) {
			fprintf(stderr, "echoload: cannot start threads\n");
			return (EX_OSERR);
		}
	}

	/* Ramp up; measure from when every connection is up or failed. */
	memset(&prev, 0, sizeof(prev));
	last_print = t0;
	hist_init(&iv);
	for (;;) {
		nanosleep(&tick, NULL);
		now = now_us();
		collect(ts, &s, opt.progress ? &iv : NULL, NULL);
		if (t_meas == 0 && (s.conns_up + s.connect_fail >=
		    opt.connections || now - t0 > (uint64_t)(1e6 *
		    opt.connections / opt.ramp) + 10000000)) {
			t_meas = now;
			ramp_secs = (double)(now - t0) / 1e6;
			base_msgs = s.msgs;
			base_recv = s.bytes_recv;
			reset_hists(ts);
			t_end = now + opt.duration_ms * 1000;
		}
		if (opt.progress && now - last_print >= 1000000) {
			secs = (double)(now - last_print) / 1e6;
			fprintf(stderr, "\r[%5.1fs] conns %" PRIu64 "/%u  msgs/s "
			    "%.0f  MB/s %.2f  p50 %" PRIu64 "us  p99 %" PRIu64
			    "us  errors %" PRIu64 "   ", (double)(now - t0) / 1e6,
			    s.conns_up, opt.connections,
			    (double)(s.msgs - prev.msgs) / secs,
			    (double)(s.bytes_recv - prev.bytes_recv) / secs / 1e6,
			    hist_percentile(&iv, 50), hist_percentile(&iv, 99),
			    s.mismatches + s.resets + s.timeouts +
			    s.connect_fail);
			prev = s;
			last_print = now;
			hist_init(&iv);
		}
		if (t_meas != 0 && now >= t_end)
			break;
	}
	/* Throughput and latency count up to now; errors up to the end. */
	atomic_store(&measuring, 0);
	collect(ts, &prev, NULL, NULL);
	atomic_store(&stop_flag, 1);
	for (i = 0; i < opt.threads; i++)
		pthread_join(ts[i].th, NULL);
	if (opt.progress)
		fputc('\n', stderr);

	secs = (double)(now - t_meas) / 1e6;
	hist_init(&cum);
	collect(ts, &s, NULL, &cum);
	s.msgs = prev.msgs - base_msgs;
	s.bytes_recv = prev.bytes_recv - base_recv;
	rc = report(&s, &cum, secs, ramp_secs);
	for (i = 0; i < opt.threads; i++)
		thread_free(&ts[i]);
	free(ts);
	free(pat);
	free(opt.targets);
	return (rc);
}
