/*
 * A client: one TCP (or TLS) connection or connected UDP socket that sends
 * messages and checks every byte that comes back.  A load thread owns
 * its clients and drives them with the first group of functions; the
 * rest is shared by client.c, client_tcp.c and client_udp.c alone.
 */
#ifndef ECHOD_CLIENT_H
#define ECHOD_CLIENT_H

#include <sys/types.h>
#include <stdint.h>

#define CLIENT_RBUF_LEN	65536		/* one read, and any datagram */

struct event;
struct event_base;
struct meter;
struct target;

/* What the clients of one thread share; only that thread uses it. */
struct client_ctx {
	struct event_base	*base;
	const unsigned char	*pat;		/* the pattern (pattern.h) */
	unsigned char		*rbuf;		/* CLIENT_RBUF_LEN bytes */
	struct meter		*meter;
	uint64_t		 rng;		/* for message sizes */
	int			 stopping;	/* send no new messages */
};

struct client	*client_new(struct client_ctx *, unsigned);
void		 client_free(struct client *);
void		 client_open(struct client *);
int		 client_ready(const struct client *);
int		 client_idle(const struct client *);
void		 client_churn_start(struct client *, uint64_t);
void		 client_send(struct client *, uint64_t);
void		 client_expire(struct client *, uint64_t);
int		 client_pending(const struct client *);
void		 client_finish(struct client *);

/* The rest is for the client files only. */
struct msg {
	uint64_t	t_us;		/* when sent, or due (open loop) */
	uint64_t	seq;		/* UDP only */
	uint32_t	size;
	uint32_t	got;		/* TCP: bytes back; UDP: 1 when back */
};

struct client {
	struct client_ctx	*ctx;
	const struct target	*tgt;
	int			 fd;
	struct event		*ev;		/* readable */
	struct event		*wev;		/* TCP: writable, when needed */
	int			 wev_on;
	uint64_t		 base;		/* pattern offset of stream */
	uint64_t		 sent, written, recvd;	/* TCP stream offsets */
	uint64_t		 seq;		/* UDP: next sequence number */
	struct msg		*q;		/* a ring of QUEUE_CAP */
	unsigned		 qhead, qlen;
	unsigned		 inflight;	/* UDP: not yet back nor lost */
	int			 up, dead;
	int			 settled;	/* came up, or failed, once */
	unsigned		 gen;		/* connections opened */
	uint64_t		 t_open;	/* when the last was opened */
	uint64_t		 t_start;	/* churn: when it was due */
	int			 shut;		/* --server-close: our side is */
	int			 reopening;	/* --expect-faults: soon */
	void			*ssl;		/* --tls: SSL, while open */
	void			*sess;		/* --tls: SSL_SESSION to offer */
	int			 tls_hs;	/* --tls: handshake going on */
	short			 tls_want;	/* --tls: EV_READ or EV_WRITE */
};

uint32_t	 client_size(struct client_ctx *);
void		 client_up(struct client *);
void		 client_pop(struct client *);
void		 client_close(struct client *);
void		 client_tcp_open(struct client *);
void		 client_tcp_restart(struct client *);
void		 client_fault(struct client *, int);
#define CLIENT_RESET	1	/* client_fault: reset, or a send failed */
#define CLIENT_CLOSED	2	/* ... the server closed first */
#define CLIENT_STALLED	3	/* ... no echo within --timeout */
void		 client_tcp_send(struct client *, struct msg *);
void		 client_udp_open(struct client *);
void		 client_udp_send(struct client *, struct msg *);
void		 client_udp_expire(struct client *, uint64_t);

/* client_tls.c */
int		 client_tls_setup(void);
void		 client_tls_cleanup(void);
int		 client_tls_start(struct client *);
int		 client_tls_handshake(struct client *);
ssize_t		 client_tls_send(struct client *, const void *, size_t);
ssize_t		 client_tls_recv(struct client *, void *, size_t);
int		 client_tls_pending(const struct client *);
int		 client_tls_shutdown(struct client *);
void		 client_tls_end(struct client *, int);
void		 client_tls_free(struct client *);

#endif
