/*
 * A TCP client: one connection whose bytes are the pattern from the
 * client's own offset on, so that every echoed byte is checked against
 * its place in the stream.  Messages are slices of that stream.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdint.h>

#include <event2/event.h>

#include "echoload.h"
#include "proxy.h"
#include "client.h"
#include "meter.h"
#include "pattern.h"

#define STREAM_WINDOW	(256 * 1024)	/* unsent bytes kept per stream */
#define TLS_READS	4		/* most records read per callback */

static void	client_tcp_read_cb(evutil_socket_t, short, void *);

/*
 * Watch for writability exactly while some bytes are unsent, or while TLS
 * waits to write (c->tls_want).
 */
static int
client_tcp_watch(struct client *c)
{
	int	 want;

	want = c->tls_want == EV_WRITE ||
	    (c->tls_want != EV_READ && c->written < c->sent);
	if (want && !c->wev_on) {
		if (event_add(c->wev, NULL) == -1)
			return (-1);
		c->wev_on = 1;
	} else if (!want && c->wev_on) {
		if (event_del(c->wev) == -1)
			return (-1);
		c->wev_on = 0;
	}
	return (0);
}

/* send(2), or SSL_write with --tls. */
static ssize_t
client_tcp_io_send(struct client *c, const void *p, size_t len)
{
	if (c->ssl != NULL)
		return (client_tls_send(c, p, len));
	return (send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL));
}

/*
 * --server-close: the message is written, so shut our side (TLS's
 * close_notify first, then a FIN either way): the server echoes the rest
 * and closes.
 */
static int
client_tcp_shut(struct client *c)
{
	int	 on = 1;

	/*
	 * Corked, the close_notify waits for the FIN and leaves with it:
	 * else the server could see it, echo, close and send its own FIN
	 * before ours was out, and keep the TIME_WAIT.
	 */
	if (c->ssl != NULL && (setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on,
	    sizeof(on)) == -1 || client_tls_shutdown(c) == -1))
		return (errno == EAGAIN ? 0 : -1);  /* again: c->tls_want */
	c->shut = 1;
	return (shutdown(c->fd, SHUT_WR));
}

/*
 * Write what is due: the stream bytes from written to sent, straight
 * from the pattern (no copy); close the client if it fails.
 */
static void
client_tcp_flush(struct client *c)
{
	const unsigned char	*p;
	size_t			 avail, len;
	ssize_t			 n;

	while (c->written < c->sent) {
		p = pattern_at(c->ctx->pat, c->base + c->written, &avail);
		len = c->sent - c->written;
		if (len > avail)
			len = avail;
		if (opt.mode == MODE_STREAM && len > opt.size_max)
			len = opt.size_max;
		n = client_tcp_io_send(c, p, len);
		if (n > 0) {
			c->written += (uint64_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		client_fault(c, CLIENT_RESET);
		return;
	}
	if (opt.server_close && !c->shut && c->sent > 0 &&
	    c->written == c->sent && client_tcp_shut(c) == -1) {
		client_fault(c, CLIENT_RESET);
		return;
	}
	if (client_tcp_watch(c) == -1)
		client_close(c);
}

/* Top up a stream's output, then write what the socket takes. */
static void
client_tcp_fill(struct client *c)
{
	uint32_t	 n;

	while (!c->ctx->stopping && c->sent - c->written < STREAM_WINDOW) {
		n = client_size(c->ctx);
		c->sent += n;
		METER_ADD(c->ctx->meter, bytes_sent, n);
	}
	client_tcp_flush(c);
}

/* Queue message m, whose bytes are the stream's next, and write. */
void
client_tcp_send(struct client *c, struct msg *m)
{
	c->sent += m->size;
	c->qlen++;
	METER_ADD(c->ctx->meter, bytes_sent, m->size);
	client_tcp_flush(c);
}

/*
 * Send the PROXY header (--proxy-v1, --proxy-v2) on a fresh connection,
 * whose empty socket buffer takes it whole.  Return 0 or -1.
 */
static int
client_tcp_proxy(struct client *c)
{
	unsigned char	 b[PROXY_MAX];
	size_t		 n;

	n = proxy_build(opt.proxy, (const struct sockaddr *)&opt.proxy_src.ss,
	    (const struct sockaddr *)&c->tgt->a.ss, b, sizeof(b));
	return (n > 0 && send(c->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)n ? 0 : -1);
}

/* The connection (and its TLS handshake) is up: start sending. */
static void
client_tcp_up(struct client *c)
{
	if (opt.mode == MODE_CHURN)
		meter_record_phase(c->ctx->meter, PHASE_CONNECT,
		    now_us() - c->t_start);
	client_up(c);
	if (opt.mode == MODE_STREAM)
		client_tcp_fill(c);
	if (!c->dead && client_tcp_watch(c) == -1)
		client_close(c);
}

/* Go on with the TLS handshake; once done, start sending. */
static void
client_tcp_handshake(struct client *c)
{
	switch (client_tls_handshake(c)) {
	case 1:
		c->tls_hs = 0;
		client_tcp_up(c);
		return;
	case 0:
		if (client_tcp_watch(c) == -1)
			client_close(c);
		return;
	default:
		client_close(c);
	}
}

/* The TCP connect finished: send the PROXY header, start TLS or sending. */
static void
client_tcp_connected(struct client *c)
{
	int	 on = 1;

	if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on,
	    sizeof(on)) == -1 || (opt.proxy && client_tcp_proxy(c) == -1) ||
	    (opt.tls && client_tls_start(c) == -1)) {
		METER_ADD(c->ctx->meter, connect_fail, 1);
		client_close(c);
		return;
	}
	if (!opt.tls) {
		client_tcp_up(c);
		return;
	}
	c->tls_hs = 1;
	client_tcp_handshake(c);
}

/* --expect-faults: open the client's next connection, unless ending. */
static void
client_tcp_reopen_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client	*c = arg;

	c->reopening = 0;
	if (!c->ctx->stopping)
		client_tcp_restart(c);
}

/*
 * The server reset or closed the connection, or its echo did not come
 * back in time.  An error, counted as such; with --expect-faults a fault
 * of the server's, counted as one, and the client goes on with a new
 * connection from the next turn of the loop (or, in open-loop churn, when
 * the pace next starts one).
 */
void
client_fault(struct client *c, int kind)
{
	struct timeval	 now = { 0, 0 };

	if (!opt.expect_faults) {
		if (kind == CLIENT_STALLED)
			METER_ADD(c->ctx->meter, timeouts, 1);
		else
			METER_ADD(c->ctx->meter, resets, 1);
		client_close(c);
		return;
	}
	if (kind == CLIENT_RESET)
		METER_ADD(c->ctx->meter, fault_resets, 1);
	else if (kind == CLIENT_CLOSED)
		METER_ADD(c->ctx->meter, fault_closes, 1);
	else
		METER_ADD(c->ctx->meter, fault_stalls, 1);
	client_close(c);
	if (c->ctx->stopping || c->reopening ||
	    (opt.mode == MODE_CHURN && opt.rate > 0))
		return;
	if (event_base_once(c->ctx->base, -1, EV_TIMEOUT, client_tcp_reopen_cb,
	    c, &now) == 0)
		c->reopening = 1;
}

/* Churn: open the client's next connection, from a clean slate. */
void
client_tcp_restart(struct client *c)
{
	client_close(c);
	c->dead = c->up = c->shut = 0;
	c->sent = c->written = c->recvd = 0;
	c->qhead = c->qlen = 0;
	client_tcp_open(c);
}

/*
 * Churn: the whole echo is back (and, with --server-close, the server's
 * close), so count the connection, end it cleanly and, in closed loop,
 * open the next unless the run is ending; in open loop the pace does.
 */
static void
client_tcp_churned(struct client *c, uint64_t now)
{
	const struct msg	*m = &c->q[c->qhead];

	meter_record(c->ctx->meter, now > c->t_start ? now - c->t_start : 0,
	    m->size);
	client_pop(c);
	client_tls_end(c, 1);
	client_close(c);
	if (opt.rate == 0 && !c->ctx->stopping)
		client_tcp_restart(c);
}

/* Complete the messages that len more echoed bytes finish at now. */
static void
client_tcp_complete(struct client *c, size_t len, uint64_t now)
{
	struct msg	*m;
	size_t		 off, take;

	for (off = 0; off < len; off += take) {
		m = &c->q[c->qhead];
		take = m->size - m->got;
		if (take > len - off)
			take = len - off;
		m->got += (uint32_t)take;
		if (m->got < m->size)
			break;
		if (opt.mode == MODE_CHURN) {
			/* --server-close: the server's close is to come. */
			if (!opt.server_close)
				client_tcp_churned(c, now);
			return;
		}
		meter_record(c->ctx->meter, now > m->t_us ? now - m->t_us : 0,
		    m->size);
		client_pop(c);
		if (opt.rate == 0 && !c->ctx->stopping) {
			client_send(c, now);
			if (c->dead)
				return;
		}
	}
}

/* recv(2), or SSL_read with --tls. */
static ssize_t
client_tcp_io_recv(struct client *c, void *p, size_t len)
{
	if (c->ssl != NULL)
		return (client_tls_recv(c, p, len));
	return (recv(c->fd, p, len, 0));
}

/*
 * Take one read's worth of echo: check it, complete messages, send more.
 * Return 1 if it took some, 0 if none was there, -1 if the client closed.
 */
static int
client_tcp_take(struct client *c)
{
	struct client_ctx	*ctx = c->ctx;
	uint64_t		 now;
	size_t			 len;
	ssize_t			 n;

	n = client_tcp_io_recv(c, ctx->rbuf, CLIENT_RBUF_LEN);
	if (n == 0 && c->shut && c->qlen > 0 && c->recvd == c->sent) {
		/* --server-close: the whole echo, then the server's close. */
		client_tcp_churned(c, now_us());
		return (-1);
	}
	if (n <= 0) {
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return (0);
		/* Closed or reset under us. */
		client_fault(c, n == 0 ? CLIENT_CLOSED : CLIENT_RESET);
		return (-1);
	}
	now = now_us();
	len = (size_t)n;
	if (opt.mode == MODE_CHURN && c->recvd == 0)
		meter_record_phase(ctx->meter, PHASE_FIRST_BYTE,
		    now - c->t_start);
	if (c->recvd + len > c->sent || pattern_check(ctx->pat,
	    c->base + c->recvd, ctx->rbuf, len) != len) {
		METER_ADD(ctx->meter, mismatches, 1);
		client_close(c);
		return (-1);
	}
	c->recvd += len;
	if (opt.mode == MODE_STREAM) {
		METER_ADD(ctx->meter, bytes_recv, len);
		client_tcp_fill(c);
	} else
		client_tcp_complete(c, len, now);
	return (1);
}

/*
 * Read callback: take the echo.  TLS reads a record at a time and may
 * hold decrypted bytes that the socket no longer shows, so it reads on
 * while there is more (a few records, then another turn of the loop);
 * then a write that waited for reading goes on.
 */
static void
client_tcp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client	*c = arg;
	unsigned	 gen = c->gen, i;
	int		 r = 0;

	if (c->tls_hs) {
		client_tcp_handshake(c);
		return;
	}
	if (c->ssl == NULL) {
		(void)client_tcp_take(c);
		return;
	}
	for (i = 0; i < TLS_READS; i++) {
		r = client_tcp_take(c);
		if (c->dead || c->gen != gen)
			return;		/* closed, or a new connection */
		if (r == 0)
			break;
	}
	if (r == 1 && client_tls_pending(c))
		event_active(c->ev, EV_READ, 1);
	client_tcp_flush(c);
}

/* TCP write callback: the connect finished, or the socket takes more. */
static void
client_tcp_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client	*c = arg;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (c->tls_hs) {
		client_tcp_handshake(c);
		return;
	}
	if (c->ssl != NULL && c->written == c->sent) {
		/* Nothing to write: it is a read that waits to write. */
		client_tcp_read_cb(fd, EV_READ, c);
		return;
	}
	if (!c->up) {
		if (getsockopt((int)fd, SOL_SOCKET, SO_ERROR, &err,
		    &len) == -1 || err != 0) {
			METER_ADD(c->ctx->meter, connect_fail, 1);
			client_close(c);
			return;
		}
		client_tcp_connected(c);
		return;
	}
	if (opt.mode == MODE_STREAM)
		client_tcp_fill(c);
	else
		client_tcp_flush(c);
}

/* Start connecting; writability will say when the connect finished. */
void
client_tcp_open(struct client *c)
{
	struct client_ctx	*ctx = c->ctx;
	const struct addr	*a = &c->tgt->a;

	c->gen++;
	c->t_open = c->t_start = now_us();
	c->fd = socket(a->ss.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd == -1 || (connect(c->fd, (const struct sockaddr *)&a->ss,
	    a->len) == -1 && errno != EINPROGRESS))
		goto fail;
	c->ev = event_new(ctx->base, c->fd, EV_READ | EV_PERSIST,
	    client_tcp_read_cb, c);
	c->wev = event_new(ctx->base, c->fd, EV_WRITE | EV_PERSIST,
	    client_tcp_write_cb, c);
	if (c->ev == NULL || c->wev == NULL ||
	    event_add(c->ev, NULL) == -1 || event_add(c->wev, NULL) == -1)
		goto fail;
	c->wev_on = 1;
	return;
fail:
	METER_ADD(ctx->meter, connect_fail, 1);
	client_close(c);
}
