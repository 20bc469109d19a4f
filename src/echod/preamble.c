/*
 * What comes before the echo on a TCP connection: the PROXY header, in a
 * group with proxy_protocol set, and the banner, in a group with banner
 * on.  A connection waiting for its header (CONN_PROXY) has taken its
 * place under max_connections but not yet been judged: the access lists
 * and max_connections_per_ip look at the client the header names, once
 * it is whole; the header itself is never echoed.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "addr.h"
#include "connpriv.h"
#include "log.h"
#include "os.h"
#include "proxy.h"
#include "server.h"
#include "units.h"
#include "worker.h"

#define PREAMBLE_TIMEOUT	(-100)	/* beside proxy.h's results */

/* The group of c, as its worker has it now. */
static const struct lgroup *
preamble_group(const struct conn *c)
{
	return (&c->w->groups->v[c->slot]);
}

/* Count a connection whose header failed, and close it. */
static void
preamble_fail(struct conn *c, int why)
{
	switch (why) {
	case PROXY_MISSING:
		STAT_ADD(c->st, proxy_missing, 1);
		break;
	case PROXY_MALFORMED:
		STAT_ADD(c->st, proxy_malformed, 1);
		break;
	case PROXY_UNSUPPORTED:
		STAT_ADD(c->st, proxy_unsupported, 1);
		break;
	case PREAMBLE_TIMEOUT:
		STAT_ADD(c->st, proxy_timeout, 1);
		break;
	}
	log_debug("conn %d: no valid PROXY header: %s",
	    (int)bufferevent_getfd(c->bev), why == PREAMBLE_TIMEOUT ?
	    "timeout" : proxy_result_name(why));
	conn_free(c);
}

/*
 * Admit the client at sa, which the header named: the group's access
 * lists and max_connections_per_ip.  Return 0, or -1 with c freed.
 */
static int
preamble_admit(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
	struct limit		*lim = &c->w->srv->limit;
	int			 rc;

	/* Never counted before its header, but never count one twice. */
	if (c->flags & CONN_PERIP) {
		limit_ip_put(lim, c->slot, &c->peer.sa);
		c->flags &= ~CONN_PERIP;
	}
	if ((rc = limit_client(lim, preamble_group(c), c->slot, sa,
	    c->st)) == -1) {
		conn_free(c);
		return (-1);
	}
	if (rc == 1) {
		memset(&c->peer, 0, sizeof(c->peer));
		memcpy(&c->peer, sa, len < sizeof(c->peer) ? len :
		    sizeof(c->peer));
		c->flags |= CONN_PERIP;
	}
	return (0);
}

/*
 * Read callback while the header is awaited: whole, it is removed from
 * the input and the client it names admitted; then the echo begins with
 * what followed it.
 */
void
preamble_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct sockaddr_storage	 via;
	socklen_t		 vialen = sizeof(via);
	struct proxy_hdr	 h;
	struct timeval		 tv;
	const unsigned char	*p;
	char			 a[ADDR_STRLEN], b[ADDR_STRLEN];
	size_t			 n = evbuffer_get_length(in);
	uint64_t		 now;
	int			 rc, fd = (int)bufferevent_getfd(bev);

	if (n > PROXY_MAX)
		n = PROXY_MAX;
	if ((p = evbuffer_pullup(in, (ev_ssize_t)n)) == NULL) {
		preamble_fail(c, PROXY_MALFORMED);
		return;
	}
	/* The versions taken at accept, whatever a reload did since. */
	if ((rc = proxy_parse(p, n, c->proxy, &h)) == PROXY_MORE) {
		/*
		 * libevent restarts the read timeout on every read: set it
		 * to what is left, so that proxy_timeout bounds the whole
		 * header, not the gaps between its bytes.
		 */
		if ((now = now_ms()) >= c->proxy_until_ms) {
			preamble_fail(c, PREAMBLE_TIMEOUT);
			return;
		}
		tv = units_timeval(c->proxy_until_ms - now);
		if (bufferevent_set_timeouts(bev, &tv, &tv) == -1)
			preamble_fail(c, PREAMBLE_TIMEOUT);
		return;
	}
	if (rc != PROXY_DONE) {
		preamble_fail(c, rc);
		return;
	}
	if (evbuffer_drain(in, h.len) == -1 ||
	    getpeername(fd, (struct sockaddr *)&via, &vialen) == -1) {
		preamble_fail(c, PROXY_MISSING);	/* gone already */
		return;
	}
	if (h.local) {
		/* A health check: the balancer speaks for itself. */
		STAT_ADD(c->st, proxy_local, 1);
		h.src = via;
		h.srclen = vialen;
	} else
		STAT_ADD(c->st, proxy_headers, 1);
	if (preamble_admit(c, (struct sockaddr *)&h.src, h.srclen) == -1)
		return;
	log_debug("conn %d: PROXY v%d: client %s via %s", fd, h.version,
	    addr_format((struct sockaddr *)&h.src, h.srclen, a, sizeof(a)),
	    addr_format((struct sockaddr *)&via, vialen, b, sizeof(b)));
	if (conn_begin(c, (struct sockaddr *)&h.src, h.srclen,
	    (struct sockaddr *)&via, vialen) == -1)
		return;
	if (c->w->draining)
		drain_conn(c);	/* it came in as the drain began */
}

/*
 * Event callback while the header is awaited: a timeout, or the end of
 * the connection (EOF or an error) with a header cut short or none.
 */
void
preamble_event(struct conn *c, short what)
{
	if (what & BEV_EVENT_TIMEOUT)
		preamble_fail(c, PREAMBLE_TIMEOUT);
	else
		preamble_fail(c, evbuffer_get_length(bufferevent_get_input(
		    c->bev)) > 0 ? PROXY_MALFORMED : PROXY_MISSING);
}

/*
 * Close c, still waiting for its header, at the shutdown timeout or a
 * second signal: counted as a header not had in time, not as echo cut.
 */
void
preamble_cut(struct conn *c)
{
	preamble_fail(c, PREAMBLE_TIMEOUT);
}

/*
 * Queue the banner, one line before the echo (echod.conf(5) gives its
 * format): who answers, and the client it sees, and the balancer it came
 * through (via, or NULL).  Return 0 or -1.
 */
int
preamble_banner(struct conn *c, const struct sockaddr *client,
    socklen_t clientlen, const struct sockaddr *via, socklen_t vialen)
{
	char	 line[512], a[ADDR_STRLEN], b[ADDR_STRLEN];
	int	 n;

	n = snprintf(line, sizeof(line), "echod %s worker %d group %s client "
	    "%s%s%s\n", c->w->srv->hostname, c->w->id,
	    preamble_group(c)->name, addr_format(client, clientlen, a,
	    sizeof(a)), via != NULL ? " via " : "", via != NULL ?
	    addr_format(via, vialen, b, sizeof(b)) : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		return (-1);
	return (conn_queue(c, line, (size_t)n));
}
