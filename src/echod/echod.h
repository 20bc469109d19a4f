/*
 * The daemon's modules and the state they share.  Dependencies are meant
 * to point one way: main.c -> server.c (lifecycle, signals, drain) ->
 * worker.c (one thread and its loop) -> listener.c (a listener's life) ->
 * tcp.c and udp.c (accepting, echoing datagrams) -> conn.c (one TCP
 * client), with conf.c, log.c and src/common as leaves.
 */
#ifndef ECHOD_H
#define ECHOD_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "conf.h"
#include "group.h"
#include "guard.h"
#include "limit.h"
#include "memory.h"

struct event;
struct event_base;
struct evconnlistener;
struct bufferevent;
struct evbuffer;
struct evbuffer_cb_entry;
struct server;

/* A coarse monotonic clock in milliseconds, the same in every thread. */
static inline uint64_t
now_ms(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == -1)
		return (0);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* Largest UDP payload: 65,507 bytes over IPv4, 65,527 over IPv6. */
#define UDP_BUFSIZE	65536

/* One accepted TCP client. */
struct conn {
	TAILQ_ENTRY(conn)	 entry;
	struct worker		*w;
	struct stats		*st;		/* its group's, on its worker */
	struct bufferevent	*bev;
	struct evbuffer_cb_entry *outcb;	/* counts the output buffer */
	struct event		*ackwait;	/* closing: waits for the ACK */
	uint64_t		 paused_ms;	/* when reading last paused */
	uint64_t		 hold_ms;	/* quiet not before (drain) */
	uint64_t		 quiet_from_ms;	/* drain: last byte we read */
	unsigned		 ackpoll_ms;	/* closing: next look after */
	unsigned		 slot;		/* its listener group's */
	unsigned		 flags;
	union {
		struct sockaddr		sa;
		struct sockaddr_in	in;
		struct sockaddr_in6	in6;
	}			 peer;		/* only with CONN_PERIP */
#define CONN_EOF	0x1	/* client shut down its side; flush, then free */
#define CONN_PAUSED	0x2	/* reading stopped: output over buffer_limit */
#define CONN_LINGER	0x4	/* echo done and FIN sent: discard until EOF */
#define CONN_PERIP	0x10	/* counted in the server's per-address table */
#define CONN_CUT	0x20	/* counted in cut_conns */
#define CONN_FIN	0x40	/* our FIN is sent (draining) */
};
TAILQ_HEAD(conn_list, conn);

/* The TCP part of a listener (tcp.c's). */
struct listener_tcp {
	struct evconnlistener	*lev;
	struct event		*retry;		/* resume after a pause */
	int			 paused;
	int			 failing;	/* accept errors logged */
	int			 parked_fd;	/* accepted, waits for a slot */
	struct sockaddr_storage	 parked_sa;
	socklen_t		 parked_len;
	int			 parked_counted; /* by limit_ip_take */
	unsigned		 parked_slot;	/* the group it came to */
};

/* The UDP part of a listener (udp.c's). */
struct listener_udp {
	int			 fd;
	struct event		*ev;
};

/*
 * A listening TCP socket or bound UDP socket of one worker.  listener.c
 * owns its life; tcp.c and udp.c set up and release their own part.
 */
struct listener {
	TAILQ_ENTRY(listener)	 entry;
	struct worker		*w;
	int			 type;		/* SOCK_STREAM or SOCK_DGRAM */
	struct addr		 addr;		/* as configured */
	int			 inherited;	/* from systemd */
	unsigned		 slot;		/* its group's */
	char			 name[ADDR_STRLEN];
	union {
		struct listener_tcp	 tcp;	/* SOCK_STREAM */
		struct listener_udp	 udp;	/* SOCK_DGRAM */
	};
};
TAILQ_HEAD(listener_list, listener);

/*
 * Counters.  Each worker is the only writer of its own, with a relaxed
 * load and store (STAT_ADD: no lock, no read-modify-write instruction);
 * other threads read them with relaxed loads, so reading them is free of
 * data races.
 */
typedef _Atomic uint64_t counter_t;
#define STATS_FIELDS(X)							\
	X(conns_accepted)						\
	X(conns_active)							\
	X(tcp_bytes)		/* received */				\
	X(tcp_bytes_out)	/* written to the socket */		\
	X(udp_datagrams)	/* received */				\
	X(udp_bytes)							\
	X(udp_sent)		/* datagrams sent back */		\
	X(udp_bytes_out)						\
	X(udp_dropped)		/* replies the socket would not take */	\
	X(udp_reflection)	/* from a reflector port: dropped */	\
	X(udp_rate_limited)	/* over a source's rate: dropped */	\
	X(udp_denied)		/* by the access list: dropped */	\
	X(tcp_denied)		/* by the access list: closed */	\
	X(limit_waits)		/* max_connections: parked, then served */ \
	X(perip_refused)	/* max_connections_per_ip: closed */	\
	X(accept_errors)	/* accept() out of descriptors or memory */ \
	X(backpressure_pauses)						\
	X(memory_pauses)	/* reading paused over memory_limit */	\
	X(idle_timeouts)						\
	X(cut_conns)		/* cut at shutdown with echo pending */	\
	X(cut_bytes)
struct stats {
#define STATS_COUNTER(f)	counter_t f;
	STATS_FIELDS(STATS_COUNTER)
#undef STATS_COUNTER
};
#define STAT_ADD(st, field, n)						\
	atomic_store_explicit(&(st)->field, atomic_load_explicit(		\
	    &(st)->field, memory_order_relaxed) + (n), memory_order_relaxed)
#define STAT_GET(st, field)						\
	atomic_load_explicit(&(st)->field, memory_order_relaxed)

/* The same counters summed over the workers, as plain numbers. */
struct totals {
#define STATS_TOTAL(f)		uint64_t f;
	STATS_FIELDS(STATS_TOTAL)
#undef STATS_TOTAL
};

/*
 * Settings a reload changes while the workers run, besides the groups':
 * the main thread stores them, workers load them (relaxed atomics).
 */
struct live {
	_Atomic uint64_t	memory_limit;	/* 0: none */
};

/* Buffers for moving a batch of datagrams with recvmmsg and sendmmsg. */
struct udp_batch;

/* A command from the main thread, written whole to a worker's pipe. */
struct worker_cmd {
	int		op;
#define WORKER_CMD_DRAIN	1	/* stop listening, drain, then end */
#define WORKER_CMD_CUT		2	/* close everything now, then end */
#define WORKER_CMD_RELOAD	3	/* apply the live settings */
#define WORKER_CMD_ADD		4	/* serve the socket fd of type */
#define WORKER_CMD_DEL		5	/* close listeners of type on addr */
	int		fd;
	int		type;		/* SOCK_STREAM or SOCK_DGRAM */
	struct addr	addr;
	char		name[ADDR_STRLEN];
	const struct groups *groups;	/* RELOAD, ADD: the newest set */
	uint64_t	gen;		/* RELOAD: the reload's number */
};

/*
 * A worker: one thread, one event_base, its own listening sockets on every
 * address (SO_REUSEPORT spreads the clients), and the connections it
 * accepted, which stay with it for their whole life.
 */
struct worker {
	int			 id;
	struct server		*srv;
	pthread_t		 thread;
	int			 started;
	int			 ended;		/* main thread: its loop is over */
	struct event_base	*base;
	struct listener_list	 listeners;	/* TCP and UDP */
	struct conn_list	 conns;
	size_t			 nconns;
	struct stats		 stats[GROUP_SLOTS]; /* by group slot */
	counter_t		 buffered;	/* echo held in output buffers */
	int			 draining;
	int			 cmd_pipe[2];	/* commands from the main thread */
	struct event		*cmd_ev;
	struct event		*send_ev;	/* main: the pipe takes more */
	struct worker_cmd	*queue;		/* main: not yet sent */
	size_t			 nqueued, queuecap;
	struct event		*heartbeat_ev;	/* for systemd's watchdog */
	_Atomic uint64_t	 heartbeat;
	struct udp_batch	*udp;
	const struct groups	*groups;	/* this worker's current set */
	_Atomic(const struct groups *) groups_seen; /* the same, for main */
	_Atomic uint64_t	 reload_gen;	/* last reload applied */
	struct ratelimit	 rates;
};


/* The daemon: the main thread's loop (signals, shutdown) and the workers. */
struct server {
	struct event_base	*base;
	struct conf		 conf;		/* the main thread's */
	const char		*conf_path;
	struct live		 live;
	struct worker		*workers;
	unsigned		 nworkers;
	int			 activated;	/* sockets came from systemd */
	struct limit		 limit;		/* admission */
	struct event		*sigterm, *sigint, *sighup, *sigusr1;
	struct event		*shutdown_timer;
	struct event		*status_timer;
	struct event		*memory_timer;
	struct event		*reload_timer;	/* waits for the workers */
	uint64_t		 reload_gen;	/* reloads sent */
	uint64_t		 reload_started; /* now_ms of the last one */
	struct memory_trim	 trim;
	uint64_t		 pressure_since;  /* TCP memory pressure, ms */
	int			 pressure_logged;
	_Atomic uint64_t	 drain_hold_ms;	/* no FIN before this (now_ms) */
	struct event		*watchdog_timer;
	uint64_t		 watchdog_usec;	/* 0: no watchdog */
	struct http		*http;		/* the metrics endpoint */
	struct groups		*groups;	/* newest; older ones behind */
	uint64_t		*heartbeats;	/* last seen, per worker */
	time_t			 started;
	int			 done_pipe[2];	/* a byte from each worker that ends */
	struct event		*done_ev;
	unsigned		 ndone;
	int			 draining;
	const char		*cut_reason;
};

/* metrics.c: the exposition */
void	metrics_write(struct server *, struct evbuffer *);
void	metrics_head(struct evbuffer *, const char *, const char *,
	    const char *);
void	metrics_one(struct evbuffer *, const char *, const char *,
	    const char *, uint64_t);

/* http.c: the endpoint that serves it */
struct http;
struct http *http_start(struct server *, const struct addr_list *);
void	http_free(struct http *);

/* server.c */
int	server_init(struct server *, struct conf *, const char *);
int	server_run(struct server *);
void	server_free(struct server *);
void	server_totals(struct server *, struct totals *);
void	server_tell(struct server *, int);
void	server_set_live(struct server *);
void	server_summary(struct server *, char *, size_t);
void	server_group_totals(struct server *, unsigned, struct totals *);

/* worker.c */
int	worker_init(struct worker *, struct server *, int);
int	worker_start(struct worker *);
void	worker_join(struct worker *);
int	worker_send(struct worker *, const struct worker_cmd *);
void	worker_conn_gone(struct worker *);
void	worker_free(struct worker *);
void	worker_apply(struct worker *, const struct groups *);

/* listener.c */
int	listener_attach(struct worker *, int, int, const struct addr *,
	    const char *, int);
void	listener_close(struct listener *);
void	listener_close_addr(struct worker *, int, const struct addr *);
void	listener_drain_all(struct worker *);
void	listener_close_all(struct worker *);
const struct lgroup *listener_group(const struct listener *);

/* tcp.c */
int	tcp_listener_init(struct listener *, int);
void	tcp_listener_fini(struct listener *);
void	tcp_pause(struct listener *, unsigned);
void	tcp_accept_queued(struct listener *);

/* udp.c */
struct udp_batch *udp_batch_new(void);
void	udp_batch_free(struct udp_batch *);
int	udp_listener_init(struct listener *, int);
void	udp_listener_fini(struct listener *);

/* conn.c */
void	conn_new(struct worker *, unsigned, int, const struct sockaddr *,
	    socklen_t, int);
void	conn_set_idle_timeout(struct conn *);

/* drain.c */
void	drain_conn(struct conn *);
int	drain_quiet(struct conn *);
void	drain_close(struct conn *);
void	drain_late_bytes(struct conn *, size_t);
void	drain_cut(struct conn *);
void	conn_free(struct conn *);

/* memory.c, os.c */
int	memory_over(struct server *);
uint64_t memory_buffered(struct server *);
void	memory_cb(int, short, void *);
unsigned os_ncpus(void);
void	os_raise_nofile(struct server *);
int	os_drop_privileges(struct server *);

/* listen.c */
int	listen_bind(int, const struct addr *, int, char *, size_t);
int	listen_addr(struct server *, const struct conf_group *,
	    const struct addr *, int);
int	listen_groups(struct server *);
int	listen_adopt(struct server *, const int *, int);

/* reload.c */
void	reload_start(struct server *);
void	reload_wait_cb(int, short, void *);

/* notify.c: what echod tells systemd about itself */
void	notify_status_cb(int, short, void *);
void	notify_watchdog_cb(int, short, void *);

#endif
