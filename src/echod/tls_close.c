/*
 * Our close_notify at the end of a TLS connection (tls_notify, for conn.c,
 * echo.c and drain.c): it goes straight to the socket once the output is
 * empty.  When the socket has no room for it (a slow reader left the
 * kernel's send buffer full: SSL_shutdown wants to write), the connection
 * waits, its bufferevent stopped, until the socket is writable, for as
 * long as the client goes on taking data (its socket queue shrinks,
 * looked at every second) and tls_notify_ms after it stops; then it
 * closes as before, past that time without a close_notify,
 * which leaves the client unable to tell the end from a truncation.  A
 * drain leaves it to that wait; a cut frees it as any other.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#ifdef HAVE_OPENSSL
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#include "connpriv.h"
#include "log.h"
#include "os.h"
#include "units.h"
#include "worker.h"

#ifdef HAVE_OPENSSL

#define TLS_NOTIFY_LOOK_MS	1000	/* how often the queue is looked at */

/*
 * How long our close_notify may wait for room while the client reads
 * nothing: the group's idle_timeout, which already bounds a client that
 * does not read its echo (each time the socket's queue has shrunk, the
 * wait starts again, as a write of echo does after each write); when
 * that is 0 (never), handshake_timeout, its bound on TLS's own messages,
 * so that a client that never reads cannot hold its place for ever.  Not
 * shutdown_timeout: it bounds a drain, whose cut ends this wait anyway,
 * and only the main thread may read it.
 */
static uint64_t
tls_notify_ms(const struct conn *c)
{
	const struct lgroup	*g = conn_group(c);

	return (g->idle_timeout_ms > 0 ? g->idle_timeout_ms :
	    g->handshake_timeout_ms);
}

/*
 * Write our close_notify, or what the socket did not take of it.  Return
 * 1 if it wants room, else 0: sent, or never to be (an error, or a wish to
 * read, which SSL_shutdown should not have before its close_notify is out).
 */
static int
tls_shutdown(struct conn *c)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(c->bev);
	int	 r;

	ERR_clear_error();
	if ((r = SSL_shutdown(ssl)) >= 0)
		return (0);
	r = SSL_get_error(ssl, r);
	ERR_clear_error();
	return (r == SSL_ERROR_WANT_WRITE);
}

static void	tls_notify_cb(evutil_socket_t, short, void *);

/*
 * Look at the socket's queue: if the client has taken some of it since
 * the last look, give it another tls_notify_ms from now.  (The socket
 * says it is writable only once a third of its buffer is free, which a
 * slow reader of a large buffer takes long to reach; the queue shrinks
 * as the client's kernel acknowledges, which stops once the client's own
 * buffer is full and it does not read.)  Return 1 if it shrank, else 0.
 */
static int
tls_notify_progress(struct conn *c)
{
	int	 n;

	if (ioctl(bufferevent_getfd(c->bev), SIOCOUTQ, &n) == -1 ||
	    n >= c->notify_outq)
		return (0);
	c->notify_outq = n;
	c->notify_until_ms = now_ms() + tls_notify_ms(c);
	return (1);
}

/*
 * Wait until the socket is writable, or the next look at its queue (at
 * most TLS_NOTIFY_LOOK_MS away, and never past notify_until_ms).  Return
 * 0, or -1 if that time has come or the wait cannot be set.
 */
static int
tls_notify_wait(struct conn *c)
{
	struct timeval	 tv;
	uint64_t	 now = now_ms(), left;

	if (now >= c->notify_until_ms)
		return (-1);
	left = c->notify_until_ms - now;
	tv = units_timeval(left < TLS_NOTIFY_LOOK_MS ? left :
	    TLS_NOTIFY_LOOK_MS);
	if (c->notifywait == NULL && (c->notifywait = event_new(c->w->base,
	    bufferevent_getfd(c->bev), EV_WRITE, tls_notify_cb, c)) == NULL)
		return (-1);
	return (event_add(c->notifywait, &tv));
}

/*
 * Event callback: room in the socket for our close_notify, or a look at
 * its queue.  A small write may go in before the socket says writable, so
 * each time the client has taken some, try again.
 */
static void
tls_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	if ((what & EV_TIMEOUT) && !tls_notify_progress(c)) {
		if (tls_notify_wait(c) == 0)
			return;		/* not yet its time */
		log_debug("conn %d: no room for close_notify in time, closing "
		    "without it", (int)fd);
	} else if (tls_shutdown(c) == 1 && tls_notify_wait(c) == 0)
		return;
	c->flags &= ~CONN_NOTIFYING;
	c->notified(c);
}

/*
 * Send our close_notify, once, after all the echo, then hand c to then
 * (drain_close, or the drain's FIN), which takes it over: at once, or
 * when the socket had no room, once it is out or its time is up
 * (tls_notify_cb).  A call while c waits (CONN_NOTIFYING), from a callback
 * already due, leaves c to that wait.
 */
void
tls_notify(struct conn *c, void (*then)(struct conn *))
{
	if (c->flags & CONN_NOTIFYING)
		return;
	if (!(c->flags & CONN_TLS) || (c->flags & CONN_NOTIFIED) ||
	    bufferevent_openssl_get_ssl(c->bev) == NULL) {
		then(c);
		return;
	}
	c->flags |= CONN_NOTIFIED;
	if (tls_shutdown(c) == 0) {
		then(c);
		return;
	}
	/* OpenSSL's own reads and writes wait too, with their timeouts. */
	c->notified = then;
	c->notify_until_ms = now_ms() + tls_notify_ms(c);
	if (ioctl(bufferevent_getfd(c->bev), SIOCOUTQ, &c->notify_outq) == -1)
		c->notify_outq = 0;	/* no progress to be seen */
	if (bufferevent_disable(c->bev, EV_READ | EV_WRITE) == -1 ||
	    tls_notify_wait(c) == -1) {
		then(c);
		return;
	}
	c->flags |= CONN_NOTIFYING;
}

#else	/* !HAVE_OPENSSL */

void
tls_notify(struct conn *c, void (*then)(struct conn *))
{
	then(c);
}

#endif
