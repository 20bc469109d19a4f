/*
 * The daemon (server.c): the main thread's loop for signals and timers,
 * the workers, and what the main thread's modules share: reload.c,
 * listen.c, notify.c, memory.c, os.c and the metrics endpoint.
 * Dependencies point one way: main -> server -> worker -> listener ->
 * tcp, udp -> conn, with conf, log, group, limit and src/common as leaves.
 */
#ifndef ECHOD_SERVER_H
#define ECHOD_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "group.h"
#include "limit.h"
#include "memory.h"
#include "stats.h"

struct event;
struct event_base;
struct http;
struct worker;

/*
 * Settings a reload changes while the workers run, besides the groups':
 * the main thread stores them, workers load them (relaxed atomics).
 */
struct live {
	_Atomic uint64_t	memory_limit;	/* 0: none */
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
	char			 hostname[256];	/* for the banner */
	int			 done_pipe[2];	/* a byte from each worker that ends */
	struct event		*done_ev;
	unsigned		 ndone;
	int			 draining;
	const char		*cut_reason;
};

int	server_init(struct server *, struct conf *, const char *);
int	server_run(struct server *);
void	server_free(struct server *);
void	server_totals(struct server *, struct totals *);
void	server_group_totals(struct server *, unsigned, struct totals *);
void	server_tell(struct server *, int);
void	server_set_live(struct server *);
void	server_summary(struct server *, char *, size_t);

#endif
