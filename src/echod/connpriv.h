/*
 * One TCP client's state, private to the files of its life: conn.c (its
 * start, callbacks and free), echo.c (the echo path), preamble.c (the
 * PROXY header and banner), tls.c and tls_close.c (TLS) and drain.c (its
 * end at shutdown); everything else sees struct conn as opaque (conn.h,
 * drain.h).
 */
#ifndef ECHOD_CONNPRIV_H
#define ECHOD_CONNPRIV_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <stdint.h>

#include "conn.h"
#include "group.h"
#include "stats.h"

struct bufferevent;
struct conn_fault;
struct evbuffer_cb_entry;
struct event;

/* One accepted TCP client. */
struct conn {
	/*
	 * What every echo reads (echo_direct_cb) first: w, st, flags and
	 * slot in the first 24 bytes, on one cache line unless an allocation
	 * starts in the last 24 bytes of one (they were 128 bytes apart).
	 */
	struct worker		*w;
	struct stats		*st;		/* its group's, on its worker */
	unsigned		 flags;
#define CONN_EOF	0x1	/* client shut down its side; flush, then free */
#define CONN_PAUSED	0x2	/* reading stopped: output over buffer_limit */
#define CONN_LINGER	0x4	/* echo done and FIN sent: discard until EOF */
#define CONN_PERIP	0x10	/* counted in the server's per-address table */
#define CONN_CUT	0x20	/* counted in cut_conns */
#define CONN_FIN	0x40	/* our FIN is sent (draining) */
#define CONN_PROXY	0x80	/* waiting for its PROXY header (preamble.c) */
#define CONN_TLS	0x100	/* on an OpenSSL bufferevent (tls.c) */
#define CONN_HANDSHAKE	0x200	/* TLS: handshake not yet done */
#define CONN_NOTIFIED	0x400	/* TLS: our close_notify is under way */
#define CONN_NOTIFYING	0x800	/* TLS: it waits for room in the socket */
	unsigned		 slot;		/* its listener group's */
	TAILQ_ENTRY(conn)	 entry;
	struct bufferevent	*bev;
	struct evbuffer_cb_entry *outcb;	/* counts the output buffer */
	struct event		*ackwait;	/* closing: waits for the ACK */
	uint64_t		 paused_ms;	/* when reading last paused */
	uint64_t		 hold_ms;	/* quiet not before (drain) */
	uint64_t		 quiet_from_ms;	/* drain: last byte we read */
	unsigned		 ackpoll_ms;	/* closing: next look after */
	int			 proxy;		/* CONN_PROXY: versions taken */
	uint64_t		 proxy_until_ms; /* CONN_PROXY: the deadline */
	struct event		*deadline;	/* CONN_HANDSHAKE: its end */
	struct event		*notifywait;	/* CONN_NOTIFYING: for room, */
	uint64_t		 notify_until_ms; /* until then, */
	int			 notify_outq;	/* its queue at the last look, */
	void			(*notified)(struct conn *); /* then this */
	struct conn_fault	*fault;		/* a faulty group's (fault.c) */
	union {
		struct sockaddr		sa;
		struct sockaddr_in	in;
		struct sockaddr_in6	in6;
	}			 peer;		/* only with CONN_PERIP */
};

void	conn_set_idle_timeout(struct conn *);
const struct lgroup *conn_group(const struct conn *);
int	conn_begin(struct conn *, const struct sockaddr *, socklen_t,
	    const struct sockaddr *, socklen_t);
int	conn_queue(struct conn *, const void *, size_t);
void	conn_free(struct conn *);

/* echo.c */
struct evbuffer;
struct evbuffer_cb_info;
void	echo_output_cb(struct evbuffer *, const struct evbuffer_cb_info *,
	    void *);
int	echo_resume(struct conn *);
void	echo_limit(struct conn *, size_t);
int	echo_arrived(struct conn *, struct evbuffer *, size_t);
int	echo_queue(struct conn *);
void	(*echo_path(const struct conn *))(struct bufferevent *, void *);

/* preamble.c */
void	preamble_read_cb(struct bufferevent *, void *);
void	preamble_event(struct conn *, short);
void	preamble_cut(struct conn *);

/* tls.c */
void	tls_handshake_event(struct conn *, short);
int	tls_deadline(struct conn *, uint64_t);
ssize_t	tls_take_pending(struct conn *);
int	tls_pending(const struct conn *);

/* tls_close.c */
void	tls_notify(struct conn *, void (*)(struct conn *));
int	preamble_banner(struct conn *, const struct sockaddr *, socklen_t,
	    const struct sockaddr *, socklen_t);

/* drain.c */
void	drain_conn(struct conn *);
int	drain_quiet(struct conn *);
void	drain_close(struct conn *);
void	drain_late_bytes(struct conn *, size_t);
void	drain_cut(struct conn *);

#endif
