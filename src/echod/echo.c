/*
 * The echo path of a TCP connection (conn.c), chosen once at accept
 * (echo_path): direct, the read callback writes the input straight back
 * to the socket when nothing is queued (one writev and no EPOLLOUT round
 * trip) and reads ahead after a full libevent read; buffered (TLS), all
 * goes through the bufferevent, which alone may see the socket's bytes.
 * Either way only what the socket does not take waits in the output
 * buffer, and reading stops at buffer_limit or memory_limit.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "connpriv.h"
#include "fault.h"
#include "log.h"
#include "memory.h"
#include "os.h"
#include "server.h"
#include "worker.h"

static void	echo_limits(struct conn *);

#define ECHO_LIBEVENT_READ	4096	/* what libevent 2.1 reads at most */
#define ECHO_EXTRA_READ		(60 * 1024)

/*
 * echo_more relies on a private rule of libevent 2.1's
 * bufferevent_sock.c (it freezes the end of the input buffer between its
 * own reads, and reads EVBUFFER_MAX_READ, 4096 bytes, at most).  2.2 lets
 * the read size be set instead (evbuffer_set_max_read); until echod is
 * built and measured against it, refuse to build rather than guess.
 */
#if LIBEVENT_VERSION_NUMBER < 0x02010000 || LIBEVENT_VERSION_NUMBER >= 0x02020000
#error "echo_more is written for libevent 2.1 only: see the comment"
#endif
#define ECHO_HOLD_MAX_MS	30000	/* longest backoff a drain waits out */


/*
 * Output buffer callback: count the bytes libevent wrote for us, and the
 * echo data held, for memory_limit and the metrics.
 */
void
echo_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
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
 * up to ECHO_EXTRA_READ more into the input buffer in one go, so a stream
 * costs one readv, one ioctl, one more read and one writev per 64 KiB, not
 * per 4 KiB.  Return the number of bytes added.
 */
static size_t
echo_more(struct conn *c, struct evbuffer *in, struct evbuffer *out)
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
	room = limit - queued < ECHO_EXTRA_READ ? limit - queued :
	    ECHO_EXTRA_READ;

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
echo_pause(struct conn *c)
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
int
echo_resume(struct conn *c)
{
	uint64_t	 now = now_ms(), len = now - c->paused_ms;

	c->flags &= ~CONN_PAUSED;
	if (len > ECHO_HOLD_MAX_MS)
		len = ECHO_HOLD_MAX_MS;
	c->hold_ms = now + len;
	/* TLS after the client's end reads no more (conn.c). */
	if ((c->flags & (CONN_TLS | CONN_EOF)) == (CONN_TLS | CONN_EOF))
		return (0);
	return (bufferevent_enable(c->bev, EV_READ));
}

/* Read callback: echo everything that arrived. */
static void
echo_direct_cb(struct bufferevent *bev, void *arg)
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
	if (len >= ECHO_LIBEVENT_READ)
		len += echo_more(c, in, out);
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
	/*
	 * What the socket did not take waits in the output.  With nothing
	 * left there is nothing to limit: echo goes into the output only by
	 * echo_queue, which looks at the limits itself (the banner, a line,
	 * by conn_queue).
	 */
	if (evbuffer_get_length(in) > 0)
		(void)echo_queue(c);
}

/*
 * Move what the input holds to the output, for libevent to write, and
 * stop reading at the limits.  Return 0, or -1 with c freed.
 */
int
echo_queue(struct conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	/* Count what the output holds and libevent writes for us. */
	if ((c->outcb == NULL &&
	    (c->outcb = evbuffer_add_cb(out, echo_output_cb, c)) == NULL) ||
	    bufferevent_write_buffer(c->bev,
	    bufferevent_get_input(c->bev)) == -1) {
		log_warnx("conn %d: cannot queue output",
		    (int)bufferevent_getfd(c->bev));
		conn_free(c);
		return (-1);
	}
	echo_limits(c);
	return (0);
}

/*
 * With echo left in the output: stop reading at buffer_limit, or when
 * all connections together hold memory_limit.
 */
static void
echo_limits(struct conn *c)
{
	echo_limit(c, evbuffer_get_length(bufferevent_get_output(c->bev)));
}

/*
 * With len bytes of echo waiting (the output's, and a fault's held
 * ones): stop reading at buffer_limit, or when all connections together
 * hold memory_limit.
 */
void
echo_limit(struct conn *c, size_t len)
{
	if (len == 0 || (c->flags & CONN_PAUSED))
		return;
	if (len >= conn_group(c)->buffer_limit) {
		echo_pause(c);
		STAT_ADD(c->st, backpressure_pauses, 1);
	} else if (memory_over(c->w->srv)) {
		/* Over memory_limit: add no more until this echo is out. */
		echo_pause(c);
		STAT_ADD(c->st, memory_pauses, 1);
	}
}

/*
 * len bytes arrived in in, on a path through the bufferevent (TLS, a
 * fault profile): count them, or, once the drain's FIN is out, discard
 * them as cut.  Return 0 to echo them, -1 if they are gone.
 */
int
echo_arrived(struct conn *c, struct evbuffer *in, size_t len)
{
	if (c->flags & CONN_LINGER) {
		drain_late_bytes(c, len);
		evbuffer_drain(in, len);
		return (-1);
	}
	STAT_ADD(c->st, tcp_bytes, len);
	if (c->w->draining)
		c->quiet_from_ms = now_ms();	/* drain_quiet_left */
	return (0);
}

/*
 * Read callback of the buffered path (TLS): everything through the
 * bufferevent, which alone may see the bytes on the socket.
 */
static void
echo_buffered_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	size_t		 len = evbuffer_get_length(in);

	if (echo_arrived(c, in, len) == -1)
		return;
	if (len > 0 && echo_queue(c) == -1)
		return;
	/* After the client's close_notify (conn.c): all out, we close. */
	if ((c->flags & CONN_EOF) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		tls_notify(c, drain_close);
}

/*
 * The echo path, chosen once per connection, at accept, from its group:
 * the one decision between the plain path (echo_direct_cb: straight to the
 * socket when nothing is queued, and reading ahead) and, for a feature
 * that must see every byte in the bufferevent (TLS, libevent's rate
 * limits, injected delays), a path through the bufferevent alone: TLS
 * takes it, a group with faults fault.c's, every other group the plain
 * path.
 */
bufferevent_data_cb
echo_path(const struct conn *c)
{
	if (c->fault != NULL)
		return (fault_read_cb);
	return ((c->flags & CONN_TLS) ? echo_buffered_cb : echo_direct_cb);
}

