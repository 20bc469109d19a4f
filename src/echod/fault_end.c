/*
 * Faults on purpose that end a TCP connection, decided at accept by
 * their probabilities (fault_tcp.c): reset_after (after echoing that many
 * bytes, stop reading, wait until the client has acknowledged them, then
 * close with a RST), stall_after (after that many, read and echo nothing
 * more, but keep the connection until the client closes it) and
 * close_after (that long after accept, read nothing more, echo what was
 * read, then our FIN).  What a fault then refuses to read or discards is
 * withheld on purpose, counted, and outside the drain's promise;
 * everything else is echoed as ever.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "connpriv.h"
#include "fault.h"
#include "faultpriv.h"
#include "log.h"
#include "os.h"
#include "worker.h"

/* close_after: read nothing more; echo what was read, then our FIN. */
void
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
int
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
		/* Draining: the drain's close (after TLS's close_notify). */
		if (c->w->draining) {
			tls_notify(c, drain_close);
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
			tls_notify(c, drain_close);	/* sent: at once */
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
int
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
