/*
 * One connection's drain at shutdown.  It goes on echoing until its client
 * has been quiet for a while with nothing left to echo (drain_quiet), then
 * gets our FIN and lingers until the client's FIN (CONN_LINGER), so that
 * closing never sends a RST that would destroy echo still in flight; one
 * whose client closed first is freed once the client has all its echo
 * (drain_close).  What cannot be echoed is counted as cut, never lost
 * silently (drain_late_bytes, drain_cut).
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <stdatomic.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "connpriv.h"
#include "drain.h"
#include "fault.h"
#include "log.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "units.h"
#include "worker.h"

#define DRAIN_QUIET_MS	1000	/* least quiet time before our FIN */
#define DRAIN_QUIET_RTOS	3	/* ... and retransmission timeouts */
#define DRAIN_CUT_READS		256	/* reads of unread input at a cut */
#define DRAIN_ACK_POLL_MS	20	/* closing: look for the last ACK, */
#define DRAIN_ACK_POLL_MAX_MS	500	/* backing off up to this */

static int	drain_quiet_left(struct conn *, uint64_t *);
static int	drain_idle(struct conn *);
static void	drain_finish(struct conn *);
static void	drain_linger(struct conn *);

/*
 * How long a draining connection must stay quiet before echod sends its
 * FIN: at least DRAIN_QUIET_MS and DRAIN_QUIET_RTOS of the
 * connection's retransmission timeouts, since a lost last segment of the
 * client's comes back only after a timeout.  Put in *left how much of it
 * is still to run, counted from the later of the last data received, the
 * last byte we read and the drain's start.  Return 0, or -1 if the kernel
 * cannot tell (then the whole period is left).
 */
static int
drain_quiet_left(struct conn *c, uint64_t *left)
{
	struct tcp_info	 ti;
	socklen_t	 len = sizeof(ti);
	uint64_t	 quiet = DRAIN_QUIET_MS, rto, hold, now, since;

	*left = quiet;
	if (getsockopt((int)bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_INFO,
	    &ti, &len) == -1)
		return (-1);
	rto = (uint64_t)ti.tcpi_rto / 1000 * DRAIN_QUIET_RTOS;
	if (rto > quiet)
		quiet = rto;
	/*
	 * Quiet since the later of the last segment's arrival and the last
	 * byte we read (or the drain's start): data that waited in our
	 * receive queue while we were paused arrived long ago, but the
	 * client's next data comes only after we read it and open the
	 * window again.
	 */
	now = now_ms();
	since = ti.tcpi_last_data_recv;
	if (now - c->quiet_from_ms < since)
		since = now - c->quiet_from_ms;
	*left = since >= quiet ? 0 : quiet - since;
	/*
	 * A pause of ours (echo_resume) and TCP memory pressure (memory.c)
	 * delay what the client still has in flight.
	 */
	hold = atomic_load_explicit(&c->w->srv->drain_hold_ms,
	    memory_order_relaxed);
	if (c->hold_ms > hold)
		hold = c->hold_ms;
	if (hold > now && hold - now > *left)
		*left = hold - now;
	return (0);
}

/* Arm a draining connection's read timeout to ms milliseconds. */
static int
drain_arm(struct conn *c, uint64_t ms)
{
	struct timeval	 tv = units_timeval(ms);

	return (bufferevent_set_timeouts(c->bev, &tv, NULL));
}

/*
 * A draining connection's read timeout: if it has been quiet for its whole
 * quiet period with nothing left to echo, send our FIN (drain_finish);
 * otherwise wait for the rest of the period.  Any byte restarts it.
 * Return 0 if the caller should go on reading as before, -1 if c is gone
 * or drain_finish has taken over.
 */
int
drain_quiet(struct conn *c)
{
	uint64_t	 left;

	/* Without TCP_INFO, a whole DRAIN_QUIET_MS has been quiet. */
	if ((drain_quiet_left(c, &left) == -1 || left == 0) && drain_idle(c)) {
		drain_finish(c);
		return (-1);
	}
	if (drain_arm(c, left > 0 ? left : DRAIN_QUIET_MS) == -1) {
		conn_free(c);
		return (-1);
	}
	return (0);
}

/* Tell whether nothing is waiting to be echoed, in either direction. */
static int
drain_idle(struct conn *c)
{
	int	 n;

	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
	    fault_held(c) > 0)
		return (0);
	if (ioctl((int)bufferevent_getfd(c->bev), FIONREAD, &n) == 0 && n > 0)
		return (0);
	return (1);
}

/* Count bytes that came after our FIN, which can no longer be echoed. */
void
drain_late_bytes(struct conn *c, size_t n)
{
	if (n == 0)
		return;
	if (!(c->flags & CONN_CUT)) {
		c->flags |= CONN_CUT;
		STAT_ADD(c->st, cut_conns, 1);
		/* Identical for every connection, so repeats are held back. */
		log_warnx("data arrived after the drain's FIN: not echoed, "
		    "counted as cut");
	}
	STAT_ADD(c->st, tcp_bytes, n);
	STAT_ADD(c->st, cut_bytes, n);
	log_debug("conn %d: %zu bytes after the drain's FIN",
	    (int)bufferevent_getfd(c->bev), n);
}

/*
 * Send our FIN after the echoed data (and a TLS connection's close_notify,
 * which may wait for room: tls_notify), then linger until the client's
 * own FIN (or the shutdown timeout): closing before it would answer
 * anything it still sends with a RST, which also destroys echo data still
 * in flight.  Whatever arrives meanwhile is counted as cut.
 */
static void
drain_finish(struct conn *c)
{
	tls_notify(c, drain_linger);
}

/* Send our FIN, and linger (drain_finish). */
static void
drain_linger(struct conn *c)
{
	if (shutdown((int)bufferevent_getfd(c->bev), SHUT_WR) == -1) {
		conn_free(c);
		return;
	}
	c->flags |= CONN_LINGER | CONN_FIN;
	if (bufferevent_set_timeouts(c->bev, NULL, NULL) == -1 ||
	    bufferevent_enable(c->bev, EV_READ) == -1)
		conn_free(c);
}

/*
 * Start draining a connection for shutdown.  It goes on echoing until the
 * client has been quiet for its quiet period with nothing left to echo
 * (drain_quiet): data the client sent before the signal may still be
 * in its own kernel's send queue, waiting for a window update or a
 * retransmission, so even a connection that looks idle now gets that
 * period.
 */
void
drain_conn(struct conn *c)
{
	uint64_t	 left;

	/*
	 * One waiting for its PROXY header or its TLS handshake is drained
	 * once it has it (or closed at its timeout); one whose close_notify
	 * waits for room goes on to close when it is out (tls_notify).
	 */
	if (c->flags & (CONN_LINGER | CONN_PROXY | CONN_HANDSHAKE |
	    CONN_NOTIFYING))
		return;
	/*
	 * What a fault withholds on purpose is not the drain's to keep; its
	 * echo in the socket is: closed once the client has acknowledged it.
	 */
	if (fault_withholds(c)) {
		tls_notify(c, drain_close);
		return;
	}
	if (c->flags & CONN_EOF) {
		/* It ends once flushed; only the shutdown timeout cuts it. */
		if (bufferevent_set_timeouts(c->bev, NULL, NULL) == -1)
			conn_free(c);
		return;
	}
	/* Even one that looks idle may have a segment on its way. */
	c->quiet_from_ms = now_ms();
	(void)drain_quiet_left(c, &left);
	if (drain_arm(c, left > 0 ? left : 1) == -1)
		conn_free(c);
}

/* Timer callback: look again whether the client has all of its echo. */
static void
drain_acked_cb(evutil_socket_t fd, short what, void *arg)
{
	drain_close(arg);
}

/*
 * Close a connection whose client has closed its side, all of its echo
 * (and a TLS connection's close_notify: tls_notify comes first) being in
 * our socket.  While draining, first wait (polling) until the client has
 * acknowledged all of it: echod may exit right after, and the kernel
 * resets an orphaned socket with data unacknowledged when TCP memory runs
 * short, which would lose that echo without a trace.  The shutdown
 * timeout bounds the wait.
 */
void
drain_close(struct conn *c)
{
	struct timeval	 tv;
	struct tcp_info	 ti;
	socklen_t	 len = sizeof(ti);
	int		 fd = (int)bufferevent_getfd(c->bev), n;

	/* A reset or timed-out socket keeps its queue count for good. */
	if (!c->w->draining || ioctl(fd, SIOCOUTQ, &n) == -1 || n == 0 ||
	    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
	    ti.tcpi_state == TCP_CLOSE) {
		conn_free(c);
		return;
	}
	/* Look again after 20 ms, then less and less often. */
	c->ackpoll_ms = c->ackpoll_ms == 0 ? DRAIN_ACK_POLL_MS :
	    c->ackpoll_ms * 2 > DRAIN_ACK_POLL_MAX_MS ? DRAIN_ACK_POLL_MAX_MS :
	    c->ackpoll_ms * 2;
	tv = units_timeval(c->ackpoll_ms);
	if (c->ackwait == NULL) {
		/* Our FIN now, so that the client sees the end at once. */
		if (!(c->flags & CONN_FIN) && shutdown(fd, SHUT_WR) == 0)
			c->flags |= CONN_FIN;
		if (bufferevent_disable(c->bev, EV_READ | EV_WRITE) == -1 ||
		    (c->ackwait = evtimer_new(c->w->base, drain_acked_cb, c)) ==
		    NULL) {
			conn_free(c);
			return;
		}
	}
	if (evtimer_add(c->ackwait, &tv) == -1)
		conn_free(c);
}

/*
 * Close a connection at the shutdown timeout or a second signal, counting
 * what it loses: its output, the echo in the socket not yet acknowledged
 * (a RST, as a client that goes on sending gets, destroys it), and input
 * not yet read, which is read first so that the close sends a FIN rather
 * than a RST.  A connection the drain had not finished counts as cut even
 * with nothing known to be lost: its client may still have data on the
 * way.
 */
void
drain_cut(struct conn *c)
{
	char		 buf[16384];
	size_t		 lost, in = 0;
	ssize_t		 n;
	int		 fd = (int)bufferevent_getfd(c->bev), i, q;

	if (c->flags & CONN_PROXY) {
		preamble_cut(c);	/* a header is not echo */
		return;
	}
	if (c->flags & CONN_HANDSHAKE) {
		STAT_ADD(c->st, tls_fail_timeout, 1);	/* nor a handshake */
		conn_free(c);
		return;
	}
	lost = evbuffer_get_length(bufferevent_get_input(c->bev)) +
	    evbuffer_get_length(bufferevent_get_output(c->bev)) +
	    fault_held(c);
	for (i = 0; i < DRAIN_CUT_READS; i++) {
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			break;
		in += (size_t)n;
	}
	/* Our FIN, if sent, counts one in the queue. */
	if (ioctl(fd, SIOCOUTQ, &q) == 0 && q > 0)
		lost += (size_t)q - ((c->flags & CONN_FIN) ? 1 : 0);
	lost += in;
	/* Over TLS what the socket held is ciphertext: not data echoed. */
	if (!(c->flags & CONN_TLS))
		STAT_ADD(c->st, tcp_bytes, in);
	if ((lost > 0 || !(c->flags & CONN_FIN)) &&
	    !(c->flags & CONN_CUT)) {
		c->flags |= CONN_CUT;
		STAT_ADD(c->st, cut_conns, 1);
	}
	STAT_ADD(c->st, cut_bytes, lost);
	conn_free(c);
}

/* Drain every connection of worker w (it stopped listening first). */
void
drain_all(struct worker *w)
{
	struct conn	*c, *next;

	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		drain_conn(c);	/* may free c, never another */
	}
}

/* Close every connection of worker w now, counting what is cut. */
void
drain_cut_all(struct worker *w)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&w->conns)) != NULL)
		drain_cut(c);
}
