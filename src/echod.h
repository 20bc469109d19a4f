/*
 * The daemon's modules and the state they share.  Dependencies point one
 * way: echod.c (main) -> server.c (lifecycle, signals, drain) -> tcp.c and
 * udp.c (listeners) -> conn.c (one TCP client).
 */
#ifndef ECHOD_H
#define ECHOD_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "conf.h"

struct event;
struct event_base;
struct evconnlistener;
struct bufferevent;
struct server;

/* Largest UDP payload: 65,507 bytes over IPv4, 65,527 over IPv6. */
#define UDP_BUFSIZE	65536

/* One accepted TCP client. */
struct conn {
	TAILQ_ENTRY(conn)	 entry;
	struct server		*srv;
	struct bufferevent	*bev;
	unsigned		 flags;
#define CONN_EOF	0x1	/* client shut down its side; flush, then free */
#define CONN_PAUSED	0x2	/* reading stopped: output over buffer_limit */
#define CONN_LINGER	0x4	/* echo done and FIN sent: discard until EOF */
};
TAILQ_HEAD(conn_list, conn);

/* A listening TCP socket. */
struct tcp_listener {
	TAILQ_ENTRY(tcp_listener)	 entry;
	struct server			*srv;
	struct evconnlistener		*lev;
	struct event			*retry;	/* re-enable after EMFILE */
	char				 name[ADDR_STRLEN];
};
TAILQ_HEAD(tcp_list, tcp_listener);

/* A bound UDP socket. */
struct udp_listener {
	TAILQ_ENTRY(udp_listener)	 entry;
	struct server			*srv;
	int				 fd;
	struct event			*ev;
	char				 name[ADDR_STRLEN];
};
TAILQ_HEAD(udp_list, udp_listener);

/* Counters, written only by the loop that owns them. */
struct stats {
	uint64_t	conns_accepted;
	uint64_t	tcp_bytes;
	uint64_t	udp_datagrams;
	uint64_t	udp_bytes;
	uint64_t	udp_dropped;
};

/* The daemon: one event loop and everything it drives. */
struct server {
	struct event_base	*base;
	struct conf		 conf;
	struct tcp_list		 tcps;
	struct udp_list		 udps;
	struct conn_list	 conns;
	size_t			 nconns;
	struct stats		 stats;
	struct event		*sigterm, *sigint;
	struct event		*shutdown_timer;
	int			 draining;
	unsigned char		*udp_buf;	/* one datagram, shared by all */
};

/* server.c */
int	server_init(struct server *, struct conf *);
int	server_run(struct server *);
void	server_free(struct server *);
void	server_conn_gone(struct server *);

/* tcp.c */
int	tcp_listen(struct server *, const struct addr *);
void	tcp_close(struct tcp_listener *);

/* udp.c */
int	udp_listen(struct server *, const struct addr *);
void	udp_close(struct udp_listener *);

/* conn.c */
void	conn_new(struct server *, int, const struct sockaddr *, socklen_t);
void	conn_drain(struct conn *);
void	conn_free(struct conn *);

/* net.c */
int	net_bind(int, const struct addr *, char *, size_t);

#endif
