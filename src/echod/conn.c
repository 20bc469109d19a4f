/*
 * One TCP client.  Its bufferevent's read callback sends the input straight
 * back: when nothing is queued it writes to the socket at once (one writev
 * and no EPOLLOUT round trip), and only what the socket does not take goes
 * to the output buffer, which libevent then flushes in order.
 *
 * States, in the order a connection can take them:
 *   open      echo everything;
 *   CONN_PAUSED  output reached buffer_limit, or echo is pending with all
 *             connections over memory_limit: stop reading until it drains;
 *   CONN_EOF  the client shut down its side: flush the output, then free;
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
#include "log.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "units.h"
#include "worker.h"

#define CONN_LIBEVENT_READ	4096	/* what libevent 2.1 reads at most */
#define CONN_EXTRA_READ		(60 * 1024)

/*
 * conn_read_more relies on a private rule of libevent 2.1's
 * bufferevent_sock.c (it freezes the end of the input buffer between its
 * own reads, and reads EVBUFFER_MAX_READ, 4096 bytes, at most).  2.2 lets
 * the read size be set instead (evbuffer_set_max_read); until echod is
 * built and measured against it, refuse to build rather than guess.
 */
#if LIBEVENT_VERSION_NUMBER < 0x02010000 || LIBEVENT_VERSION_NUMBER >= 0x02020000
#error "conn_read_more is written for libevent 2.1 only: see the comment"
#endif
#define CONN_HOLD_MAX_MS	30000	/* longest backoff a drain waits out */

/* The settings of c's listener group, as its worker has them now. */
static const struct lgroup *
conn_group(const struct conn *c)
{
	return (&c->w->groups->v[c->slot]);
}


/*
 * Output buffer callback: count the bytes libevent wrote for us, and the
 * echo data held, for memory_limit and the metrics.
 */
static void
conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct conn	*c = arg;

	if (info->n_deleted > 0)
		STAT_ADD(c->st, tcp_bytes_out, info->n_deleted);
	if (info->n_added != info->n_deleted)
		STAT_ADD(c->w, buffered,
		    (uint64_t)info->n_added - (uint64_t)info->n_deleted);
}

/*
 * libevent 2.1 reads at most 4 KiB per wake-up (EVBUFFER_MAX_READ; 2.2
 * makes it settable).  When it read that much, more is likely waiting: read
 * up to CONN_EXTRA_READ more into the input buffer in one go, so a stream
 * costs one readv, one ioctl, one more read and one writev per 64 KiB, not
 * per 4 KiB.  Return the number of bytes added.
 */
static size_t
conn_read_more(struct conn *c, struct evbuffer *in, struct evbuffer *out)
{
	struct evbuffer_iovec	 v[2];
	struct iovec		 iov[2];
	ssize_t			 n;
	size_t			 left, limit, queued, room;
	int			 nv, i;

	/*
	 * Never read past what buffer_limit leaves room for, nor anything
	 * more over memory_limit.
	 */
	limit = conn_group(c)->buffer_limit;
	queued = evbuffer_get_length(in) + evbuffer_get_length(out);
	if (queued >= limit || memory_over(c->w->srv))
		return (0);
	room = limit - queued < CONN_EXTRA_READ ? limit - queued :
	    CONN_EXTRA_READ;

	/*
	 * The bufferevent keeps the end of its input frozen between its own
	 * reads, as bufferevent_sock.c does around evbuffer_read; thaw it for
	 * ours, in its read callback on its own thread.
	 */
	if (evbuffer_unfreeze(in, 0) == -1)
		return (0);
	nv = evbuffer_reserve_space(in, (ev_ssize_t)room, v, 2);
	if (nv <= 0) {
		evbuffer_freeze(in, 0);
		return (0);
	}
	for (i = 0, left = room; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len < left ? v[i].iov_len : left;
		left -= iov[i].iov_len;
	}
	n = readv((int)bufferevent_getfd(c->bev), iov, nv);
	if (n <= 0) {
		/* EOF and errors come to the bufferevent's next read. */
		evbuffer_commit_space(in, v, 0);
		evbuffer_freeze(in, 0);
		return (0);
	}
	for (i = 0, left = (size_t)n; i < nv; i++) {
		if (v[i].iov_len > left)
			v[i].iov_len = left;
		left -= v[i].iov_len;
	}
	if (evbuffer_commit_space(in, v, nv) == -1)
		n = 0;
	evbuffer_freeze(in, 0);
	return ((size_t)n);
}

/* Stop reading until the output buffer is empty (conn_write_cb). */
static void
conn_pause(struct conn *c)
{
	if (bufferevent_disable(c->bev, EV_READ) == 0) {
		c->flags |= CONN_PAUSED;
		c->paused_ms = now_ms();
	}
}

/*
 * Read again after a pause.  While it lasted our receive window may have
 * closed, and the client then probes for it with an exponential backoff
 * that the pause's length bounds: its data can come that much later, so
 * a drain must not take it for quiet before then (drain_quiet_left).
 */
static int
conn_resume(struct conn *c)
{
	uint64_t	 now = now_ms(), len = now - c->paused_ms;

	c->flags &= ~CONN_PAUSED;
	if (len > CONN_HOLD_MAX_MS)
		len = CONN_HOLD_MAX_MS;
	c->hold_ms = now + len;
	return (bufferevent_enable(c->bev, EV_READ));
}

/* Read callback: echo everything that arrived. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct evbuffer	*out = bufferevent_get_output(bev);
	size_t		 len = evbuffer_get_length(in);
	int		 n;

	if (c->flags & CONN_LINGER) {
		drain_late_bytes(c, len);
		evbuffer_drain(in, len);
		return;
	}
	if (len >= CONN_LIBEVENT_READ)
		len += conn_read_more(c, in, out);
	STAT_ADD(c->st, tcp_bytes, len);
	if (c->w->draining)
		c->quiet_from_ms = now_ms();	/* drain_quiet_left */
	if (evbuffer_get_length(out) == 0) {
		n = evbuffer_write(in, bufferevent_getfd(bev));
		if (n > 0)
			STAT_ADD(c->st, tcp_bytes_out, (uint64_t)n);
		else if (n == -1 && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != EINTR) {
			log_debug("conn %d: write: %s",
			    (int)bufferevent_getfd(bev), strerror(errno));
			conn_free(c);
			return;
		}
	}
	if (evbuffer_get_length(in) > 0) {
		/* Count what the output holds and libevent writes for us. */
		if (c->outcb == NULL &&
		    (c->outcb = evbuffer_add_cb(out, conn_output_cb, c)) ==
		    NULL) {
			log_warnx("conn %d: cannot watch output",
			    (int)bufferevent_getfd(bev));
			conn_free(c);
			return;
		}
		if (bufferevent_write_buffer(bev, in) == -1) {
			log_warnx("conn %d: cannot queue output",
			    (int)bufferevent_getfd(bev));
			conn_free(c);
			return;
		}
	}
	if ((len = evbuffer_get_length(out)) == 0)
		return;
	if (len >= conn_group(c)->buffer_limit) {
		conn_pause(c);
		STAT_ADD(c->st, backpressure_pauses, 1);
	} else if (memory_over(c->w->srv)) {
		/* Over memory_limit: add no more until this echo is out. */
		conn_pause(c);
		STAT_ADD(c->st, memory_pauses, 1);
	}
}

/*
 * The echo path, chosen once per connection, at accept, from its group:
 * the one decision between the plain path (conn_read_cb: straight to the
 * socket when nothing is queued, and reading ahead) and, for a feature
 * that must see every byte in the bufferevent (TLS, libevent's rate
 * limits, injected delays), a path through the bufferevent alone.  Every
 * group takes the plain path today, after a PROXY header if it wants one.
 */
static bufferevent_data_cb
conn_path(const struct conn *c)
{
	/* With proxy_protocol, the header first (conn_begin then). */
	return (c->proxy ? preamble_read_cb : conn_read_cb);
}

/* Write callback: the output buffer is empty again. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->flags & CONN_EOF) {
		log_debug("conn %d: all echoed after client EOF",
		    (int)bufferevent_getfd(bev));
		drain_close(c);
		return;
	}
	if ((c->flags & CONN_PAUSED) && conn_resume(c) == -1)
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
	if ((what & BEV_EVENT_EOF) && !(c->flags & CONN_LINGER) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
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
		    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
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
		/* The timeout disabled reading; carry on. */
		if (!(c->flags & CONN_PAUSED) &&
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
	drain_close(c);
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
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("conn %d: cannot create bufferevent", fd);
		goto fail_free;
	}
	c->proxy = proxy;
	bufferevent_setcb(c->bev, conn_path(c), conn_write_cb, conn_event_cb,
	    c);
	if (proxy) {
		c->flags |= CONN_PROXY;
		c->proxy_until_ms = now_ms() + conn_group(c)->proxy_timeout_ms;
		tv = units_timeval(conn_group(c)->proxy_timeout_ms);
		if (bufferevent_set_timeouts(c->bev, &tv, &tv) == -1) {
			log_warnx("conn %d: cannot set the PROXY timeout", fd);
			bufferevent_free(c->bev);
			free(c);
			goto fail_count;
		}
	}
	if (bufferevent_enable(c->bev, EV_READ) == -1) {
		log_warnx("conn %d: cannot enable reading", fd);
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
	if (!(c->flags & CONN_PROXY))
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
	    (c->outcb = evbuffer_add_cb(out, conn_output_cb, c)) == NULL)
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
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
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

	if (c->w->draining || (c->flags & CONN_PROXY))
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
