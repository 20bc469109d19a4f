/*
 * A UDP client: a connected socket whose datagrams each start with their
 * sequence number, then a slice of the pattern chosen by that number, so
 * that an echo is matched to what it echoes and checked wherever it comes.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "echoload.h"
#include "client.h"
#include "meter.h"
#include "pattern.h"

#define UDP_STRIDE	4093	/* pattern offset per sequence number */
#define UDP_READS	64	/* most datagrams read per callback */

/* Send message m as one datagram. */
void
client_udp_send(struct client *c, struct msg *m)
{
	struct iovec	 iov[2];
	size_t		 avail;

	m->seq = c->seq++;
	iov[0].iov_base = &m->seq;
	iov[0].iov_len = UDP_SEQ_LEN;
	iov[1].iov_base = (void *)pattern_at(c->ctx->pat,
	    c->base + m->seq * UDP_STRIDE, &avail);
	iov[1].iov_len = m->size - UDP_SEQ_LEN;
	if (writev(c->fd, iov, 2) == -1) {
		/* A full socket buffer is a datagram the network dropped. */
		METER_ADD(c->ctx->meter, udp_lost, 1);
		return;
	}
	c->qlen++;
	c->inflight++;
	METER_ADD(c->ctx->meter, udp_sent, 1);
	METER_ADD(c->ctx->meter, bytes_sent, m->size);
}

/*
 * Complete the message that datagram number seq, of len bytes in rbuf,
 * echoes.  Return 0 if no message waits for it.
 */
static int
client_udp_match(struct client *c, uint64_t seq, size_t len, uint64_t now)
{
	struct client_ctx	*ctx = c->ctx;
	struct msg		*m;
	size_t			 plen = len - UDP_SEQ_LEN;
	unsigned		 j;

	for (j = 0; j < c->qlen; j++) {
		m = &c->q[(c->qhead + j) % QUEUE_CAP];
		if (m->seq != seq || m->got)
			continue;
		if (len != m->size || pattern_check(ctx->pat, c->base +
		    seq * UDP_STRIDE, ctx->rbuf + UDP_SEQ_LEN, plen) != plen)
			METER_ADD(ctx->meter, mismatches, 1);
		else
			meter_record(ctx->meter, now > m->t_us ?
			    now - m->t_us : 0, m->size);
		m->got = 1;
		c->inflight--;
		return (1);
	}
	return (0);
}

/* UDP read callback: match each datagram to the one it echoes. */
static void
client_udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client		*c = arg;
	struct client_ctx	*ctx = c->ctx;
	uint64_t		 seq, now = now_us();
	ssize_t			 n;
	unsigned		 k;
	int			 found;

	for (k = 0; k < UDP_READS; k++) {
		n = recv((int)fd, ctx->rbuf, CLIENT_RBUF_LEN, 0);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				METER_ADD(ctx->meter, resets, 1);
			break;
		}
		if (n < UDP_SEQ_LEN) {
			METER_ADD(ctx->meter, mismatches, 1);
			continue;
		}
		memcpy(&seq, ctx->rbuf, UDP_SEQ_LEN);
		if (!(found = client_udp_match(c, seq, (size_t)n, now)))
			METER_ADD(ctx->meter, udp_late, 1);
		while (c->qlen > 0 && c->q[c->qhead].got)
			client_pop(c);
		if (found && opt.rate == 0 && !ctx->stopping)
			client_send(c, now);
	}
}

/* Count messages past the timeout as lost; closed loop sends anew. */
void
client_udp_expire(struct client *c, uint64_t now)
{
	struct msg	*m;

	while (c->qlen > 0 && ((m = &c->q[c->qhead])->got ||
	    now - m->t_us >= opt.timeout_ms * 1000)) {
		if (!m->got) {
			METER_ADD(c->ctx->meter, udp_lost, 1);
			c->inflight--;
			if (opt.rate == 0 && !c->ctx->stopping)
				client_send(c, now);
		}
		client_pop(c);
	}
}

/* Connect the socket, and start sending. */
void
client_udp_open(struct client *c)
{
	const struct addr	*a = &c->tgt->a;

	c->fd = socket(a->ss.ss_family,
	    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1 || connect(c->fd, (const struct sockaddr *)&a->ss,
	    a->len) == -1)
		goto fail;
	c->ev = event_new(c->ctx->base, c->fd, EV_READ | EV_PERSIST,
	    client_udp_read_cb, c);
	if (c->ev == NULL || event_add(c->ev, NULL) == -1)
		goto fail;
	client_up(c);
	return;
fail:
	METER_ADD(c->ctx->meter, connect_fail, 1);
	client_close(c);
}
