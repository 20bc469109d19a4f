/*
 * A worker (worker.c): one thread, one event_base, its own listeners and
 * connections; the main thread talks to it only through commands.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "conn.h"
#include "group.h"
#include "listener.h"
#include "ratelimit.h"
#include "stats.h"

struct bufferevent_rate_limit_group;
struct udp_delay;

struct event;
struct event_base;
struct server;
struct udp_batch;

/* Commands queued for a worker whose pipe is full, at most (but DRAIN, CUT). */
#define WORKER_QUEUE_MAX	4096

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
	char		group[CONF_GROUP_NAMELEN + 1]; /* ADD, DEL: whose */
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
	uint64_t		 tls_logged_ms;	/* last handshake failure logged */
	uint64_t		 fault_rng;	/* fault.c's generator */
	struct udp_delay	*udelay;	/* UDP echoes waiting their delay */
	size_t			 delay_cap;	/* ... at most this many */
	struct fault_rl {
		struct bufferevent_rate_limit_group *group;
		uint64_t	 per_tick;
	}			 fault_rl[GROUP_SLOTS];	/* group_bandwidth */
};

int	worker_init(struct worker *, struct server *, int);
int	worker_start(struct worker *);
void	worker_join(struct worker *);
int	worker_send(struct worker *, const struct worker_cmd *);
void	worker_conn_gone(struct worker *);
void	worker_free(struct worker *);
void	worker_apply(struct worker *, const struct groups *);

#endif
