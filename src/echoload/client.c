/*
 * Clients: what TCP and UDP clients share, and the calls a load thread
 * makes, which go on to client_tcp.c or client_udp.c by protocol.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "echoload.h"
#include "client.h"
#include "meter.h"

static void	client_settle(struct client *);

/* A message size from the configured range. */
uint32_t
client_size(struct client_ctx *ctx)
{
	uint64_t	 span = opt.size_max - opt.size_min + 1;

	if (span == 1)
		return ((uint32_t)opt.size_min);
	ctx->rng ^= ctx->rng << 13;
	ctx->rng ^= ctx->rng >> 7;
	ctx->rng ^= ctx->rng << 17;
	return ((uint32_t)(opt.size_min + ctx->rng % span));
}

/* A new client, number n of all, not yet open; NULL if out of memory. */
struct client *
client_new(struct client_ctx *ctx, unsigned n)
{
	struct client	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return (NULL);
	if ((c->q = calloc(QUEUE_CAP, sizeof(*c->q))) == NULL) {
		free(c);
		return (NULL);
	}
	c->ctx = ctx;
	c->fd = -1;
	c->tgt = &opt.targets[n % opt.ntargets];
	c->base = (uint64_t)n * 7919 * 64;
	return (c);
}

/* Close a client and free it. */
void
client_free(struct client *c)
{
	client_close(c);
	client_tls_free(c);
	free(c->q);
	free(c);
}

/* Open the client: connect, and start sending once connected. */
void
client_open(struct client *c)
{
	if (opt.udp)
		client_udp_open(c);
	else
		client_tcp_open(c);
}

/* Tell whether the client is up and can send. */
int
client_ready(const struct client *c)
{
	return (!c->dead && c->up);
}

/* Tell whether a churn client has no connection going, open or not. */
int
client_idle(const struct client *c)
{
	return (c->fd == -1);
}

/* Churn, open loop: start a connection on an idle client, due at t_us. */
void
client_churn_start(struct client *c, uint64_t t_us)
{
	client_tcp_restart(c);
	c->t_start = t_us;
}

/* Send one message, stamped t_us. */
void
client_send(struct client *c, uint64_t t_us)
{
	struct msg	*m;

	if (c->dead || !c->up)
		return;
	if (c->qlen == QUEUE_CAP) {
		METER_ADD(c->ctx->meter, overloaded, 1);
		return;
	}
	m = &c->q[(c->qhead + c->qlen) % QUEUE_CAP];
	m->t_us = t_us;
	m->size = client_size(c->ctx);
	m->got = 0;
	if (opt.udp)
		client_udp_send(c, m);
	else
		client_tcp_send(c, m);
}

/*
 * Deal with what is older than the timeout: a connect or TLS handshake
 * (failed), or messages (lost, or the end of a TCP connection).
 */
void
client_expire(struct client *c, uint64_t now)
{
	struct msg	*m;

	if (c->dead || c->fd == -1)
		return;		/* ended, or never opened (open-loop churn) */
	if (!c->up) {
		/* Connecting, or in the TLS handshake, for too long. */
		if (c->t_open > now || now - c->t_open < opt.timeout_ms * 1000)
			return;
		if (c->tls_hs)
			METER_ADD(c->ctx->meter, tls_failed, 1);
		else
			METER_ADD(c->ctx->meter, connect_fail, 1);
		client_close(c);
		return;
	}
	if (c->qlen == 0)
		return;
	m = &c->q[c->qhead];
	if (now - m->t_us < opt.timeout_ms * 1000 || m->t_us > now)
		return;
	if (opt.udp) {
		client_udp_expire(c, now);
		return;
	}
	client_fault(c, CLIENT_STALLED);
}

/* Tell whether some echo is still due back on the client. */
int
client_pending(const struct client *c)
{
	if (c->dead)
		return (0);
	if (opt.mode == MODE_STREAM)
		return (c->recvd < c->sent);
	return (opt.udp ? c->inflight > 0 : c->qlen > 0);
}

/* At the end: count what did not come back, and close. */
void
client_finish(struct client *c)
{
	/* One still coming up at the end (churn) never sent. */
	if (!c->dead && !c->up) {
		client_close(c);
		return;
	}
	client_expire(c, UINT64_MAX / 2);
	if (c->dead)
		return;
	if (opt.udp)
		METER_ADD(c->ctx->meter, udp_lost, c->inflight);
	else if ((c->qlen > 0 || (opt.mode == MODE_STREAM &&
	    c->recvd < c->sent)) && opt.expect_faults)
		METER_ADD(c->ctx->meter, fault_stalls, 1);
	else if (c->qlen > 0 || (opt.mode == MODE_STREAM &&
	    c->recvd < c->sent))
		METER_ADD(c->ctx->meter, timeouts, 1);
	client_close(c);
}

/* The client is connected: count it, and in closed loop start sending. */
void
client_up(struct client *c)
{
	unsigned	 i, n = opt.mode == MODE_PIPELINE ? opt.depth : 1;

	c->up = 1;
	METER_ADD(c->ctx->meter, conns_up, 1);
	client_settle(c);
	/* Open loop paces messages, but a churn connection's rate. */
	if (opt.mode == MODE_STREAM || (opt.rate > 0 &&
	    opt.mode != MODE_CHURN))
		return;
	for (i = 0; i < n && !c->dead; i++)
		client_send(c, now_us());
}

/* Drop the oldest message of the queue. */
void
client_pop(struct client *c)
{
	c->qhead = (c->qhead + 1) % QUEUE_CAP;
	c->qlen--;
}

/*
 * Count the client as through its ramp: up, or failed, for the first
 * time (in churn mode it comes up many times; the ramp counts once).
 */
static void
client_settle(struct client *c)
{
	if (c->settled)
		return;
	c->settled = 1;
	METER_ADD(c->ctx->meter, clients_settled, 1);
}

/* Close the client's socket for good. */
void
client_close(struct client *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	client_settle(c);
	client_tls_end(c, 0);
	/* Nothing of this connection's TLS may carry over to the next. */
	c->tls_hs = 0;
	c->tls_want = 0;
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
