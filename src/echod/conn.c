/*
 * One TCP client's life: accepted (conn_new), after its PROXY header
 * (preamble.c) or TLS handshake (tls.c) echoing (conn_begin; the echo path
 * is echo.c's), at its end flushed and closed (conn_free, drain.c).
 *
 * States, in the order a connection can take them:
 *   open      echo everything;
 *   CONN_PAUSED  output reached buffer_limit, or echo is pending with all
 *             connections over memory_limit: stop reading until it drains;
 *   CONN_EOF  the client shut down its side: flush the output, then free;
 *   CONN_NOTIFYING  (TLS) all echoed, and our close_notify waits for
 *             room in the socket (tls.c): then free, or linger (draining);
 *   CONN_LINGER  (server draining) all echoed and our FIN sent: wait for
 *             the client's FIN, so that closing never sends a RST that
 *             would destroy echo data still in flight; bytes that still
 *             arrive cannot be echoed and are counted as cut.
 *
 * Timeouts: with idle_timeout set, a read and a write timeout of that
 * length; while draining, the drain's quiet period instead (drain.c).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "connpriv.h"
#include "fault.h"
#include "log.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "tls.h"
#include "units.h"
#include "worker.h"

/* The settings of c's listener group, as its worker has them now. */
const struct lgroup *
conn_group(const struct conn *c)
{
	return (&c->w->groups->v[c->slot]);
}


/* Write callback: the output buffer is empty again. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	/* A faulty connection's held echo and fault states first. */
	if (c->fault != NULL && fault_written(c) != 0)
		return;
	if (c->flags & CONN_EOF) {
		log_debug("conn %d: all echoed after client EOF",
		    (int)bufferevent_getfd(bev));
		tls_notify(c, drain_close);
		return;
	}
	if ((c->flags & CONN_PAUSED) && echo_resume(c) == -1)
		conn_free(c);
}

/* Event callback: end of file or an error. */
static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	int		 fd = (int)bufferevent_getfd(bev);

	if (c->flags & CONN_PROXY) {
		preamble_event(c, what);
		return;
	}
	if (c->flags & CONN_HANDSHAKE) {
		tls_handshake_event(c, what);
		return;
	}
	/*
	 * libevent 2.1's OpenSSL bufferevent runs this callback on the
	 * client's close_notify (or FIN) before it commits the data read
	 * with it to the input, and it stops writing.  So decide nothing
	 * here: write again, and let a deferred read callback, which runs
	 * once that data is in the input, echo it and close when all is out
	 * (echo.c); read no more, so that nothing (a rate limit's refill,
	 * a resume) reads the end again.  But an end met while writing (the
	 * client reset: EPIPE, which dirty shutdowns report as EOF) ends
	 * it: writing again would fail again, on every turn of the loop.
	 */
	if ((what & BEV_EVENT_EOF) && (c->flags & CONN_TLS) &&
	    (what & BEV_EVENT_WRITING)) {
		log_debug("conn %d: closed while echoing", fd);
		conn_free(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && (c->flags & CONN_TLS) &&
	    !(c->flags & CONN_LINGER)) {
		c->flags |= CONN_EOF;
		if (bufferevent_disable(bev, EV_READ) == -1 ||
		    bufferevent_enable(bev, EV_WRITE) == -1) {
			conn_free(c);
			return;
		}
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
		    BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(c->flags & CONN_LINGER) &&
	    (evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
	    fault_held(c) > 0)) {
		/* Half-close: finish echoing, then conn_write_cb frees. */
		log_debug("conn %d: client EOF, flushing", fd);
		c->flags |= CONN_EOF;
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !c->w->draining) {
		/*
		 * A client that sent nothing for a while but is still taking
		 * its echo is not idle: read on, and let the write timeout
		 * catch one that stopped reading.
		 */
		if ((what & BEV_EVENT_READING) &&
		    (evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
		    fault_held(c) > 0)) {
			if (!(c->flags & (CONN_PAUSED | CONN_EOF)) &&
			    bufferevent_enable(bev, EV_READ) == -1)
				conn_free(c);
			return;
		}
		log_debug("conn %d: idle timeout", fd);
		STAT_ADD(c->st, idle_timeouts, 1);
		conn_free(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		/* A draining connection's timeout is its quiet period. */
		if (drain_quiet(c) == -1)
			return;
		/* The timeout disabled reading; carry on (not after a TLS
		 * client's end: conn.c reads no more then). */
		if (!(c->flags & (CONN_PAUSED | CONN_EOF)) &&
		    bufferevent_enable(bev, EV_READ) == -1)
			conn_free(c);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		log_debug("conn %d: %s", fd, strerror(EVUTIL_SOCKET_ERROR()));
		conn_free(c);
		return;
	}
	log_debug("conn %d: closed", fd);
	tls_notify(c, drain_close);
}

/*
 * Take over an accepted socket, already counted in the server's nconns
 * (and in its per-address table if perip), and start echoing.
 */
void
conn_new(struct worker *w, unsigned slot, int fd, const struct sockaddr *sa,
    socklen_t salen, int perip, int proxy)
{
	struct conn	*c;
	struct timeval	 tv;
	char		 peer[ADDR_STRLEN];
	int		 on = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warnx("conn %d: out of memory", fd);
		goto fail_close;
	}
	c->w = w;
	c->slot = slot;
	c->st = &w->stats[slot];
	if (perip) {
		memcpy(&c->peer, sa, salen < sizeof(c->peer) ? salen :
		    sizeof(c->peer));
		c->flags |= CONN_PERIP;
	}
	/* Echoes are small and latency-bound: never hold them for Nagle. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_debug("conn %d: TCP_NODELAY: %s", fd, strerror(errno));
	if (conn_group(c)->proto == CONF_TLS) {
		/* None in a group a reload removed: no new handshakes. */
		c->flags |= CONN_TLS | CONN_HANDSHAKE;
		c->bev = conn_group(c)->tls_ctx == NULL ? NULL :
		    tls_bufferevent(w->base, conn_group(c)->tls_ctx, fd);
	} else
		c->bev = bufferevent_socket_new(w->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("conn %d: cannot create bufferevent", fd);
		goto fail_free;
	}
	c->proxy = proxy;
	if (fault_conn_new(c) == -1) {
		log_warnx("conn %d: cannot set up its faults", fd);
		fault_conn_free(c);
		bufferevent_free(c->bev);
		free(c);
		goto fail_count;
	}
	bufferevent_setcb(c->bev, proxy ? preamble_read_cb : echo_path(c),
	    conn_write_cb, conn_event_cb, c);
	if ((c->flags & CONN_HANDSHAKE) &&
	    tls_deadline(c, conn_group(c)->handshake_timeout_ms) == -1) {
		if (c->deadline != NULL)
			event_free(c->deadline);
		fault_conn_free(c);
		bufferevent_free(c->bev);
		free(c);
		goto fail_count;
	}
	if (proxy) {
		c->flags |= CONN_PROXY;
		c->proxy_until_ms = now_ms() + conn_group(c)->proxy_timeout_ms;
		tv = units_timeval(conn_group(c)->proxy_timeout_ms);
		if (bufferevent_set_timeouts(c->bev, &tv, &tv) == -1) {
			log_warnx("conn %d: cannot set the PROXY timeout", fd);
			fault_conn_free(c);
			bufferevent_free(c->bev);
			free(c);
			goto fail_count;
		}
	}
	if (bufferevent_enable(c->bev, EV_READ) == -1) {
		log_warnx("conn %d: cannot enable reading", fd);
		fault_conn_free(c);
		bufferevent_free(c->bev);
		free(c);
		goto fail_count;
	}
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	w->nconns++;
	STAT_ADD(c->st, conns_active, 1);
	log_debug("conn %d: accepted from %s by worker %d for %s %s", fd,
	    addr_format(sa, salen, peer, sizeof(peer)), w->id,
	    conf_proto(SOCK_STREAM), conn_group(c)->name);
	if (!(c->flags & (CONN_PROXY | CONN_HANDSHAKE)))
		(void)conn_begin(c, sa, salen, NULL, 0);
	return;

fail_free:
	free(c);
fail_close:
	close(fd);
fail_count:
	limit_put(&w->srv->limit);
	if (perip)
		limit_ip_put(&w->srv->limit, slot, sa);
}

/*
 * Queue len bytes of data that are not echo (the banner) before the echo.
 * Return 0 or -1.
 */
int
conn_queue(struct conn *c, const void *data, size_t len)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	/* Counted as all output is: in memory_limit's sum, and once sent. */
	if (c->outcb == NULL &&
	    (c->outcb = evbuffer_add_cb(out, echo_output_cb, c)) == NULL)
		return (-1);
	return (evbuffer_add(out, data, len));
}

/*
 * Start echoing the client at addr (as the PROXY header named it, or as
 * accepted), after the header if there was one (via: the balancer it came
 * through, else NULL): the banner first if the group wants one.  Return
 * 0, or -1 if c is freed.
 */
int
conn_begin(struct conn *c, const struct sockaddr *addr, socklen_t addrlen,
    const struct sockaddr *via, socklen_t vialen)
{
	c->flags &= ~CONN_PROXY;
	STAT_ADD(c->st, conns_accepted, 1);
	bufferevent_setcb(c->bev, echo_path(c), conn_write_cb, conn_event_cb,
	    c);
	conn_set_idle_timeout(c);
	if (conn_group(c)->banner &&
	    preamble_banner(c, addr, addrlen, via, vialen) == -1) {
		conn_free(c);
		return (-1);
	}
	/* What came after a header: echoed from the loop, as any read. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		bufferevent_trigger(c->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
	return (0);
}

/*
 * Arm the idle timeout, or disarm it when idle_timeout is 0: no input for
 * that long while reading, or no output progress while echo is pending (a
 * client that stopped reading, whose reading we paused), closes the
 * connection.  Draining connections keep the drain's own timeouts.
 *
 * libevent re-arms the read timeout on every read.  A group's
 * connections share one duration, so it is a common timeout of the
 * worker's base: re-arming appends to one queue (O(1)) instead of moving
 * the connection in the timer heap (O(log n), 3% of the CPU per echo with
 * 1,000 connections).  Past libevent's 256 common timeouts per base (256
 * different values reloaded), a plain one.
 */
void
conn_set_idle_timeout(struct conn *c)
{
	uint64_t	 ms = conn_group(c)->idle_timeout_ms;
	struct timeval	 tv = units_timeval(ms);
	const struct timeval *common;

	/* Before the echo: the PROXY header's or handshake's own limits. */
	if (c->w->draining || (c->flags & (CONN_PROXY | CONN_HANDSHAKE)))
		return;
	if (ms > 0 && (common = event_base_init_common_timeout(c->w->base,
	    &tv)) != NULL)
		tv = *common;
	if (bufferevent_set_timeouts(c->bev, ms > 0 ? &tv : NULL,
	    ms > 0 ? &tv : NULL) == -1)
		log_warnx("conn %d: cannot set the idle timeout",
		    (int)bufferevent_getfd(c->bev));
}

/* Close the connection; the only place a conn and its bufferevent die. */
void
conn_free(struct conn *c)
{
	struct worker	*w = c->w;

	if (c->outcb != NULL) {
		/* What it held is released with it. */
		evbuffer_remove_cb_entry(bufferevent_get_output(c->bev),
		    c->outcb);
		STAT_ADD(c->w, buffered, -(uint64_t)evbuffer_get_length(
		    bufferevent_get_output(c->bev)));
	}
	if (c->ackwait != NULL)
		event_free(c->ackwait);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->notifywait != NULL)
		event_free(c->notifywait);
	fault_conn_free(c);
	TAILQ_REMOVE(&w->conns, c, entry);
	w->nconns--;
	STAT_ADD(c->st, conns_active, -1);
	limit_put(&w->srv->limit);
	if (c->flags & CONN_PERIP)
		limit_ip_put(&w->srv->limit, c->slot, &c->peer.sa);
	bufferevent_free(c->bev);
	free(c);
	worker_conn_gone(w);
}

/* After the worker took a new set of groups: new idle timeouts. */
void
conn_update_all(struct worker *w)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &w->conns, entry)
		conn_set_idle_timeout(c);
}

/* Close every connection of worker w (its loop is over). */
void
conn_free_all(struct worker *w)
{
	while (!TAILQ_EMPTY(&w->conns))
		conn_free(TAILQ_FIRST(&w->conns));
}
