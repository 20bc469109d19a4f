/*
 * The metrics endpoint: Prometheus metrics (metrics.c) over HTTP on the
 * main thread's loop, so a scrape never runs on a worker.
 *
 * The endpoint is a small HTTP/1.0 responder of echod's own, one request
 * per connection, not libevent's evhttp, because evhttp 2.1 cannot be
 * bounded: it goes on reading pipelined requests while it writes the
 * answers (a client that pipelined "GET /metrics" and never read grew
 * echod's RSS from 3 MB to 2.2 GB in 8 s), its timeout restarts on every
 * byte (one header byte every few seconds held a connection for good), and
 * it has no connection cap (1,700 slow clients under a 1,500 descriptor
 * limit starved the echo side).  Here instead:
 *   - at most max_connections are open: at the cap the listeners stop
 *     accepting and further clients wait in the backlog, so the endpoint
 *     costs at most max_connections + listeners descriptors;
 *   - request_timeout is a hard deadline for a whole connection, from
 *     accept to close, that no byte restarts;
 *   - at most HTTP_MAX_REQUEST bytes of a request are held (the read
 *     high watermark), nothing after the headers is read into memory, and
 *     a connection holds at most one answer.
 *
 * A connection goes through three states: reading the request line and
 * headers; writing the answer, with reading stopped; and lingering, our
 * FIN sent after the answer, discarding input until the client closes, so
 * that closing with unread data never sends a RST that would destroy the
 * answer in flight.  A lingering client that goes on sending is read and
 * dropped in bounded reads, never buffered.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "http.h"
#include "listen.h"
#include "httpreq.h"
#include "log.h"
#include "server.h"
#include "units.h"

#define HTTP_PAUSE_MS	250	/* wait after EMFILE, ENOBUFS, ... */
#define HTTP_MAX_REQUEST	8192	/* bytes of request line and headers */
#define HTTP_DISCARD		65536	/* bytes a lingering recv drops */
#define HTTP_DISCARD_READS	16	/* recvs per wake-up, at most */

/* One client of the endpoint. */
struct http_conn {
	TAILQ_ENTRY(http_conn)	 entry;
	struct http			*m;
	struct bufferevent		*bev;
	struct event			*deadline;	/* request_timeout */
	int				 fd;
	int				 state;
#define HTTP_READING	0	/* waiting for the end of the headers */
#define HTTP_WRITING	1	/* answer queued, reading stopped */
#define HTTP_LINGER	2	/* answer written and FIN sent: discard */
	size_t				 scanned; /* input up to the open line */
	int				 skipped; /* an empty line before it */
};

struct http {
	struct server		*srv;
	struct evconnlistener	*levs[CONF_METRICS_MAX_LISTEN];
	size_t			 nlevs;
	int			 accepting;	/* listeners enabled */
	struct event		*retry;		/* ends an accept pause */
	int			 paused;	/* out of descriptors: wait */
	int			 failing;	/* accept errors logged */
	/* cppcheck-suppress unusedStructMember ; used by the TAILQ macros */
	TAILQ_HEAD(, http_conn) conns;
	size_t			 nconns;
	struct httpreq_counts	 own;		/* the endpoint's own */
};

static void	http_close(struct http_conn *);

/*
 * Stop reading, drop any input (a body or pipelined requests are not
 * read), and queue the answer st, only its headers for HEAD; the write
 * callback takes over once it is out.  Return 0 or -1.
 */
static int
http_answer(struct http_conn *mc, enum httpreq_answer st, int head)
{
	struct http	*m = mc->m;
	struct evbuffer	*in = bufferevent_get_input(mc->bev);

	mc->state = HTTP_WRITING;
	if (bufferevent_disable(mc->bev, EV_READ) == -1 ||
	    evbuffer_drain(in, evbuffer_get_length(in)) == -1 ||
	    httpreq_answer(bufferevent_get_output(mc->bev), st, head, m->srv,
	    &m->own) == -1)
		return (-1);
	m->own.answered[st]++;
	log_debug("metrics %d: %d", mc->fd, httpreq_code(st));
	return (0);
}

/*
 * Discard what a lingering client sends: what the bufferevent read, and
 * a bounded amount more straight from the socket, which Linux drops
 * without copying it (MSG_TRUNC), so a client that floods us costs few
 * system calls.  Return 0, or -1 once the client closed or failed.
 */
static int
http_discard(struct http_conn *mc, struct evbuffer *in)
{
	static char	 junk[HTTP_DISCARD];
	ssize_t		 n;
	int		 i;

	if (evbuffer_drain(in, evbuffer_get_length(in)) == -1)
		return (-1);
	for (i = 0; i < HTTP_DISCARD_READS; i++) {
		n = recv(mc->fd, junk, sizeof(junk), MSG_TRUNC | MSG_DONTWAIT);
		if (n == 0)
			return (-1);
		if (n == -1)
			return (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR ? 0 : -1);
		if ((size_t)n < sizeof(junk))
			break;
	}
	return (0);
}

/*
 * Read callback: wait for the end of the headers, an empty line, and
 * answer; once answered, discard what comes (lingering).
 */
static void
http_read_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*mc = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	size_t			 len = evbuffer_get_length(in), n;
	enum httpreq_answer	 st;
	const char		*p, *eol;
	int			 head = 0;

	if (mc->state != HTTP_READING) {
		if (http_discard(mc, in) == -1)
			http_close(mc);
		return;
	}
	/* At most HTTP_MAX_REQUEST bytes, the read high watermark. */
	if (len == 0)
		return;
	if ((p = (const char *)evbuffer_pullup(in, -1)) == NULL) {
		http_close(mc);
		return;
	}
	while ((eol = memchr(p + mc->scanned, '\n', len - mc->scanned)) !=
	    NULL) {
		n = (size_t)(eol - (p + mc->scanned));
		if (mc->scanned == 0 && !mc->skipped &&
		    (n == 0 || (n == 1 && p[0] == '\r'))) {
			/* One empty line before the request is ignored. */
			mc->skipped = 1;
			if (evbuffer_drain(in, n + 1) == -1) {
				http_close(mc);
				return;
			}
			http_read_cb(bev, arg);
			return;
		}
		if (n == 0 || (n == 1 && p[mc->scanned] == '\r')) {
			st = httpreq_parse(p, mc->scanned, &head);
			goto answer;
		}
		mc->scanned += n + 1;
	}
	if (len < HTTP_MAX_REQUEST)
		return;
	st = HTTPREQ_TOO_LARGE;
answer:
	if (http_answer(mc, st, head) == -1)
		http_close(mc);
}

/*
 * Write callback: the answer is out.  Send our FIN and linger, reading
 * and discarding, until the client closes or the deadline.
 */
static void
http_write_cb(struct bufferevent *bev, void *arg)
{
	struct http_conn	*mc = arg;

	if (mc->state != HTTP_WRITING ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	mc->state = HTTP_LINGER;
	if (shutdown(mc->fd, SHUT_WR) == -1) {
		log_debug("metrics %d: shutdown: %s", mc->fd, strerror(errno));
		http_close(mc);
		return;
	}
	if (bufferevent_enable(bev, EV_READ) == -1)
		http_close(mc);
}

/* Event callback: the client closed, or an error. */
static void
http_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn	*mc = arg;

	if (what & BEV_EVENT_ERROR)
		log_debug("metrics %d: %s", mc->fd,
		    strerror(EVUTIL_SOCKET_ERROR()));
	else
		log_debug("metrics %d: closed", mc->fd);
	http_close(mc);
}

/* Timer callback: the connection's time is up, whatever it is doing. */
static void
http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*mc = arg;

	if (mc->state != HTTP_LINGER) {
		log_debug("metrics %d: request_timeout", mc->fd);
		mc->m->own.timeouts++;
	}
	http_close(mc);
}

/*
 * Accept on the metrics listeners, or not: not while paused for want of
 * descriptors, nor with max_connections open.
 */
static void
http_listen_update(struct http *m)
{
	size_t	 i;
	int	 on, rc;

	on = !m->paused && m->nconns < m->srv->conf.metrics_max_connections;
	if (on == m->accepting)
		return;
	m->accepting = on;
	if (!on && !m->paused)
		log_debug("metrics: max_connections (%zu) open; not accepting",
		    m->nconns);
	for (i = 0; i < m->nlevs; i++) {
		rc = on ? evconnlistener_enable(m->levs[i]) :
		    evconnlistener_disable(m->levs[i]);
		if (rc == -1)
			log_warnx("metrics: cannot %s accepting",
			    on ? "resume" : "pause");
	}
}

/* Close a connection and free it; accept again if that made room. */
static void
http_close(struct http_conn *mc)
{
	struct http	*m = mc->m;

	TAILQ_REMOVE(&m->conns, mc, entry);
	m->nconns--;
	event_free(mc->deadline);
	bufferevent_free(mc->bev);	/* and closes the socket */
	free(mc);
	http_listen_update(m);
}

/* Callback for a new client: read its request, under its deadline. */
static void
http_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct http		*m = arg;
	struct http_conn	*mc;
	uint64_t		 ms = m->srv->conf.metrics_timeout_ms;
	struct timeval		 tv = units_timeval(ms);
	char			 peer[ADDR_STRLEN];

	if (m->failing) {
		m->failing = 0;
		log_notice("metrics: accepting again");
	}
	if (m->nconns >= m->srv->conf.metrics_max_connections) {
		/* A reload lowered the cap, or libevent accepted past it. */
		close(fd);
		http_listen_update(m);
		return;
	}
	if ((mc = calloc(1, sizeof(*mc))) == NULL)
		goto fail_close;
	mc->m = m;
	mc->fd = fd;
	mc->state = HTTP_READING;
	if ((mc->deadline = evtimer_new(m->srv->base, http_deadline_cb,
	    mc)) == NULL)
		goto fail_free;
	mc->bev = bufferevent_socket_new(m->srv->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (mc->bev == NULL)
		goto fail_timer;
	bufferevent_setcb(mc->bev, http_read_cb, http_write_cb,
	    http_event_cb, mc);
	bufferevent_setwatermark(mc->bev, EV_READ, 0, HTTP_MAX_REQUEST);
	if (evtimer_add(mc->deadline, &tv) == -1 ||
	    bufferevent_enable(mc->bev, EV_READ) == -1) {
		bufferevent_free(mc->bev);	/* and closes fd */
		fd = -1;
		goto fail_timer;
	}
	TAILQ_INSERT_TAIL(&m->conns, mc, entry);
	m->nconns++;
	log_debug("metrics %d: accepted from %s", mc->fd,
	    addr_format(sa, (socklen_t)salen, peer, sizeof(peer)));
	http_listen_update(m);
	return;

fail_timer:
	event_free(mc->deadline);
fail_free:
	free(mc);
fail_close:
	if (fd != -1)
		close(fd);
	log_warnx("metrics: cannot take a client: out of memory or events");
}

/* Timer callback: the pause is over, accept again. */
static void
http_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http	*m = arg;

	m->paused = 0;
	http_listen_update(m);
}

/*
 * Callback for accept() errors that are not simply "try again".  Out of
 * descriptors or memory, the listeners would wake us on every loop and
 * spin, so pause them all for a moment, as tcp.c does for the echo
 * listeners; clients wait in the backlog meanwhile.  One line is logged
 * per episode, not per attempt.
 */
static void
http_error_cb(struct evconnlistener *lev, void *arg)
{
	struct http	*m = arg;
	struct timeval	 tv = { 0, HTTP_PAUSE_MS * 1000 };
	int		 err = EVUTIL_SOCKET_ERROR();

	if (!m->failing) {
		m->failing = 1;
		log_warnx("metrics: accept: %s; pausing for %d ms",
		    strerror(err), HTTP_PAUSE_MS);
	}
	m->paused = 1;
	http_listen_update(m);
	if (evtimer_add(m->retry, &tv) == -1) {
		log_warnx("metrics: cannot arm timer");
		m->paused = 0;
		http_listen_update(m);
	}
}

/*
 * Serve /metrics on every address of list from the main loop.  Return
 * the server, or NULL after logging why.
 */
struct http *
http_start(struct server *srv, const struct addr_list *list)
{
	struct http	*m;
	char		 name[ADDR_STRLEN], want[ADDR_STRLEN];
	size_t		 i;
	int		 fd;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		log_msg(LOG_ERR, "metrics: out of memory");
		return (NULL);
	}
	m->srv = srv;
	m->accepting = 1;
	TAILQ_INIT(&m->conns);
	if ((m->retry = evtimer_new(srv->base, http_retry_cb, m)) == NULL ||
	    list->n > CONF_METRICS_MAX_LISTEN) {
		log_msg(LOG_ERR, "metrics: %s",
		    list->n > CONF_METRICS_MAX_LISTEN ?
		    "at most 8 listen addresses" : "cannot create timer");
		http_free(m);
		return (NULL);
	}
	for (i = 0; i < list->n; i++) {
		addr_name(&list->v[i], want, sizeof(want));
		fd = listen_bind(SOCK_STREAM, &list->v[i], 0, name, sizeof(name));
		if (fd == -1 || listen(fd, 64) == -1) {
			log_msg(LOG_ERR, "cannot listen for metrics on %s: %s",
			    want, strerror(errno));
			if (fd != -1)
				close(fd);
			http_free(m);
			return (NULL);
		}
		/* Backlog 0: already listening; -1 would listen(fd, 128). */
		m->levs[m->nlevs] = evconnlistener_new(srv->base,
		    http_accept_cb, m, LEV_OPT_CLOSE_ON_FREE |
		    LEV_OPT_CLOSE_ON_EXEC, 0, fd);
		if (m->levs[m->nlevs] == NULL) {
			log_msg(LOG_ERR, "cannot listen for metrics on %s",
			    want);
			close(fd);
			http_free(m);
			return (NULL);
		}
		evconnlistener_set_error_cb(m->levs[m->nlevs++],
		    http_error_cb);
		log_notice("metrics on http://%s/metrics", name);
	}
	return (m);
}

/* Stop serving metrics: close the listeners and every connection. */
void
http_free(struct http *m)
{
	struct http_conn	*mc;
	size_t			 i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nlevs; i++)
		evconnlistener_free(m->levs[i]);
	m->nlevs = 0;
	while ((mc = TAILQ_FIRST(&m->conns)) != NULL)
		http_close(mc);
	if (m->retry != NULL)
		event_free(m->retry);
	free(m);
}
