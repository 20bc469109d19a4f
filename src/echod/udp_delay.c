/*
 * UDP's delayed echoes (a group's delay and jitter): a worker's bounded
 * queue of datagram copies, a min-heap by due time with one timer for its
 * earliest.  Full (delay_queue datagrams), or with memory_limit reached
 * (the copies count in the worker's buffered bytes), a datagram is
 * dropped and counted.  Jitter may reorder datagrams, as a network does.
 * A listener that closes takes its queued datagrams with it, uncounted as
 * echoes (udp_delay_forget).
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "fault.h"
#include "listener.h"
#include "log.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "udp.h"
#include "worker.h"

struct udp_delayed {
	uint64_t		 due_us;
	struct listener		*u;	/* NULL: its listener is gone */
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;
	size_t			 ctllen;
	unsigned char		 ctl[UDP_CTLSIZE];	/* where it came to */
	size_t			 len;
	unsigned char		 data[];
};

struct udp_delay {
	struct udp_delayed	**heap;
	size_t			 n, cap;
	struct event		*timer;
};

static void	udp_delay_cb(evutil_socket_t, short, void *);

/* Free a worker's queue and what it holds. */
void
udp_delay_free(struct worker *w)
{
	struct udp_delay	*q = w->udelay;
	size_t			 i;

	if (q == NULL)
		return;
	for (i = 0; i < q->n; i++) {
		STAT_ADD(w, buffered, -(uint64_t)q->heap[i]->len);
		free(q->heap[i]);
	}
	if (q->timer != NULL)
		event_free(q->timer);
	free(q->heap);
	free(q);
	w->udelay = NULL;
}

/* Make room for more datagrams, up to max in all.  Return 0 or -1. */
static int
udp_delay_grow(struct udp_delay *q, size_t max)
{
	struct udp_delayed	**heap;
	size_t			 cap = q->cap == 0 ? 64 : q->cap * 2;

	if (q->cap >= max)
		return (-1);
	if (cap > max)
		cap = max;
	if ((heap = reallocarray(q->heap, cap, sizeof(*heap))) == NULL)
		return (-1);
	q->heap = heap;
	q->cap = cap;
	return (0);
}

/* Restore the heap property up from i. */
static void
udp_delay_up(struct udp_delay *q, size_t i)
{
	struct udp_delayed	*d = q->heap[i];

	while (i > 0 && q->heap[(i - 1) / 2]->due_us > d->due_us) {
		q->heap[i] = q->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	q->heap[i] = d;
}

/* Take the earliest datagram off the heap. */
static struct udp_delayed *
udp_delay_pop(struct udp_delay *q)
{
	struct udp_delayed	*top = q->heap[0], *d;
	size_t			 i = 0, c;

	d = q->heap[--q->n];
	for (;;) {
		c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->heap[c + 1]->due_us < q->heap[c]->due_us)
			c++;
		if (q->heap[c]->due_us >= d->due_us)
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	if (q->n > 0)
		q->heap[i] = d;
	return (top);
}

/* Arm the timer for the earliest datagram, if any.  Return 0 or -1. */
static int
udp_delay_arm(struct udp_delay *q)
{
	struct timeval	 tv;
	uint64_t	 now = now_us(), us;

	if (q->n == 0)
		return (0);
	us = q->heap[0]->due_us > now ? q->heap[0]->due_us - now : 0;
	if (us < 1000)
		us = 1000;	/* libevent's clock: never early */
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return (evtimer_add(q->timer, &tv));
}

/*
 * Queue a copy of the datagram mh (len bytes) that came to u, to be
 * echoed after the group's delay.  Return 0, or -1 if it was dropped
 * (counted).
 */
int
udp_delay_add(struct listener *u, const struct msghdr *mh, size_t len)
{
	struct worker		*w = u->w;
	const struct lgroup	*g = listener_group(u);
	struct udp_delay	*q = w->udelay;
	struct udp_delayed	*d;

	if (q == NULL) {
		if ((q = calloc(1, sizeof(*q))) == NULL)
			goto drop;
		if ((q->timer = evtimer_new(w->base, udp_delay_cb, w)) ==
		    NULL) {
			free(q);
			goto drop;
		}
		w->udelay = q;
	}
	/* The heap grows as it fills, up to delay_queue. */
	if (q->n == q->cap && udp_delay_grow(q, w->delay_cap) == -1)
		goto drop;
	if (memory_over(w->srv) || (d = malloc(sizeof(*d) + len)) == NULL)
		goto drop;
	d->due_us = now_us() + fault_jitter(w, g->faults.delay_ms,
	    g->faults.jitter_ms);
	d->u = u;
	memcpy(&d->peer, mh->msg_name, mh->msg_namelen);
	d->peerlen = mh->msg_namelen;
	d->ctllen = mh->msg_controllen <= sizeof(d->ctl) ?
	    mh->msg_controllen : 0;
	memcpy(d->ctl, mh->msg_control, d->ctllen);
	d->len = len;
	memcpy(d->data, mh->msg_iov[0].iov_base, len);
	q->heap[q->n++] = d;
	udp_delay_up(q, q->n - 1);
	STAT_ADD(w, buffered, len);
	if (q->heap[0] == d && udp_delay_arm(q) == -1)
		log_warnx("udp %s: cannot arm the delay timer", u->name);
	return (0);
drop:
	STAT_ADD(&w->stats[u->slot], udp_delay_full, 1);
	return (-1);
}

/* Timer: echo every datagram now due, then wait for the next. */
static void
udp_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct udp_delay	*q = w->udelay;
	struct udp_delayed	*d;
	struct stats		*st;
	struct msghdr		 mh;
	struct iovec		 iov;
	uint64_t		 now = now_us();

	while (q->n > 0 && q->heap[0]->due_us <= now) {
		d = udp_delay_pop(q);
		STAT_ADD(w, buffered, -(uint64_t)d->len);
		if (d->u != NULL) {
			st = &w->stats[d->u->slot];
			memset(&mh, 0, sizeof(mh));
			iov.iov_base = d->data;
			iov.iov_len = d->len;
			mh.msg_name = &d->peer;
			mh.msg_namelen = d->peerlen;
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = d->ctllen > 0 ? d->ctl : NULL;
			mh.msg_controllen = d->ctllen;
			if (sendmsg(d->u->udp.fd, &mh, MSG_DONTWAIT) == -1)
				STAT_ADD(st, udp_dropped, 1);
			else {
				STAT_ADD(st, udp_sent, 1);
				STAT_ADD(st, udp_bytes_out, d->len);
				STAT_ADD(st, udp_fault_delayed, 1);
			}
		}
		free(d);
	}
	if (udp_delay_arm(q) == -1)
		log_warnx("worker %d: cannot arm the UDP delay timer", w->id);
}

/* A listener closes: its queued datagrams will not be sent. */
void
udp_delay_forget(struct listener *u)
{
	struct udp_delay	*q = u->w->udelay;
	size_t			 i;

	if (q == NULL)
		return;
	for (i = 0; i < q->n; i++)
		if (q->heap[i]->u == u)
			q->heap[i]->u = NULL;
}
