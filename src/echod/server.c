/*
 * The daemon's lifecycle on the main thread: set up (listen.c binds, os.c
 * raises limits and drops root), start the workers, then run a loop of
 * its own for signals and timers only: SIGTERM and SIGINT drain, SIGHUP
 * reloads (reload.c), SIGUSR1 logs a summary; systemd hears of it all
 * (notify.c).
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "listen.h"
#include "log.h"
#include "memory.h"
#include "notify.h"
#include "os.h"
#include "reload.h"
#include "server.h"
#include "units.h"
#include "worker.h"

#define SERVER_STATUS_SECONDS	5
#define SERVER_MEMORY_MS	250	/* how often to look at memory */

/* Tell every worker the same simple command. */
void
server_tell(struct server *srv, int op)
{
	struct worker_cmd	 cmd;
	unsigned		 i;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = op;
	cmd.fd = -1;
	cmd.groups = srv->groups;
	cmd.gen = srv->reload_gen;
	for (i = 0; i < srv->nworkers; i++)
		worker_send(&srv->workers[i], &cmd);
}

/* Add the counters of group slot over the workers to t. */
static void
server_add_group(struct server *srv, unsigned slot, struct totals *t)
{
	struct stats	*s;
	unsigned	 i;

	for (i = 0; i < srv->nworkers; i++) {
		s = &srv->workers[i].stats[slot];
#define STATS_SUM(f)	t->f += STAT_GET(s, f);
		STATS_FIELDS(STATS_SUM)
#undef STATS_SUM
	}
}

/* Sum the counters of group slot over the workers. */
void
server_group_totals(struct server *srv, unsigned slot, struct totals *t)
{
	memset(t, 0, sizeof(*t));
	server_add_group(srv, slot, t);
}

/* Sum the workers' counters over every group. */
void
server_totals(struct server *srv, struct totals *t)
{
	unsigned	 slot;

	memset(t, 0, sizeof(*t));
	for (slot = 0; srv->groups != NULL && slot < srv->groups->n; slot++)
		server_add_group(srv, slot, t);
}

/* One line that sums up the counters, for the log and for systemd. */
void
server_summary(struct server *srv, char *buf, size_t len)
{
	struct totals	 t;

	server_totals(srv, &t);
	snprintf(buf, len, "%" PRIu64 " connections open, %" PRIu64
	    " served; %" PRIu64 " tcp bytes and %" PRIu64 " udp datagrams "
	    "echoed; %" PRIu64 " udp replies dropped", t.conns_active,
	    t.conns_accepted, t.tcp_bytes, t.udp_datagrams, t.udp_dropped);
}

/* Timer callback: the drain took longer than shutdown_timeout. */
static void
server_shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	srv->cut_reason = "shutdown timeout";
	server_tell(srv, WORKER_CMD_CUT);
}

/* Set the settings workers read while they run. */
void
server_set_live(struct server *srv)
{
	uint64_t	 mem = srv->conf.memory_limit;
	const char	*what;

	if (srv->conf.memory_limit_auto) {
		mem = memory_available(&what) / 4;
		log_info("memory_limit: %" PRIu64 " MiB, a quarter of %s",
		    mem >> 20, what);
	} else if (mem > 0)
		log_info("memory_limit: %" PRIu64 " MiB", mem >> 20);
	else
		log_info("memory_limit: none");
	atomic_store(&srv->live.memory_limit, mem);
	atomic_store(&srv->limit.max, (size_t)srv->conf.max_connections);
}

/* Signal callback: stop, reload, or log a summary. */
static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server	*srv = arg;
	uint64_t	 ms = srv->conf.shutdown_timeout_ms;
	struct timeval	 tv = units_timeval(ms);
	char		 buf[256];

	if (sig == SIGHUP) {
		if (!srv->draining)
			reload_start(srv);
		return;
	}
	if (sig == SIGUSR1) {
		server_summary(srv, buf, sizeof(buf));
		log_notice("%s", buf);
		return;
	}
	if (srv->draining) {
		log_notice("signal %d again: stopping now", (int)sig);
		srv->cut_reason = "second signal";
		server_tell(srv, WORKER_CMD_CUT);
		return;
	}
	log_notice("signal %d: stopping; draining %zu connections for up "
	    "to %" PRIu64 " ms", (int)sig, atomic_load(&srv->limit.nconns),
	    ms);
	notify("STOPPING=1");
	srv->draining = 1;
	notify_status_cb(-1, 0, srv);
	if (evtimer_add(srv->shutdown_timer, &tv) == -1) {
		srv->cut_reason = "no shutdown timer";
		server_tell(srv, WORKER_CMD_CUT);
		return;
	}
	server_tell(srv, WORKER_CMD_DRAIN);
}

/* Callback for the done pipe: the loop ends with the last worker. */
static void
server_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	unsigned char	 ids[64];
	ssize_t		 n, i;

	while ((n = read((int)fd, ids, sizeof(ids))) > 0) {
		for (i = 0; i < n; i++)
			if (ids[i] < srv->nworkers)
				srv->workers[ids[i]].ended = 1;
		srv->ndone += (unsigned)n;
	}
	if (!srv->draining && srv->ndone > 0) {
		log_msg(LOG_ERR, "a worker stopped unexpectedly; stopping");
		srv->draining = 1;
		srv->cut_reason = "worker failure";
		server_tell(srv, WORKER_CMD_CUT);
	}
	if (srv->ndone >= srv->nworkers)
		event_base_loopexit(srv->base, NULL);
}

/* Create the main loop's signal and timer events.  Return 0 or -1. */
static int
server_events(struct server *srv)
{
	struct timeval	 tv = { SERVER_STATUS_SECONDS, 0 };
	struct timeval	 mem = units_timeval(SERVER_MEMORY_MS);

	srv->sigterm = evsignal_new(srv->base, SIGTERM, server_signal_cb, srv);
	srv->sigint = evsignal_new(srv->base, SIGINT, server_signal_cb, srv);
	srv->sighup = evsignal_new(srv->base, SIGHUP, server_signal_cb, srv);
	srv->sigusr1 = evsignal_new(srv->base, SIGUSR1, server_signal_cb, srv);
	srv->shutdown_timer = evtimer_new(srv->base,
	    server_shutdown_timeout_cb, srv);
	srv->status_timer = event_new(srv->base, -1, EV_PERSIST,
	    notify_status_cb, srv);
	srv->done_ev = event_new(srv->base, srv->done_pipe[0],
	    EV_READ | EV_PERSIST, server_done_cb, srv);
	srv->memory_timer = event_new(srv->base, -1, EV_PERSIST,
	    memory_cb, srv);
	srv->reload_timer = evtimer_new(srv->base, reload_wait_cb, srv);
	if (srv->sigterm == NULL || srv->sigint == NULL ||
	    srv->sighup == NULL || srv->sigusr1 == NULL ||
	    srv->shutdown_timer == NULL || srv->status_timer == NULL ||
	    srv->done_ev == NULL || srv->memory_timer == NULL ||
	    srv->reload_timer == NULL ||
	    evsignal_add(srv->sigterm, NULL) == -1 ||
	    evsignal_add(srv->sigint, NULL) == -1 ||
	    evsignal_add(srv->sighup, NULL) == -1 ||
	    evsignal_add(srv->sigusr1, NULL) == -1 ||
	    event_add(srv->status_timer, &tv) == -1 ||
	    event_add(srv->done_ev, NULL) == -1 ||
	    event_add(srv->memory_timer, &mem) == -1)
		return (-1);
	if (srv->watchdog_usec > 0) {
		tv.tv_sec = (time_t)(srv->watchdog_usec / 2000000);
		tv.tv_usec = (suseconds_t)(srv->watchdog_usec / 2 % 1000000);
		srv->watchdog_timer = event_new(srv->base, -1, EV_PERSIST,
		    notify_watchdog_cb, srv);
		srv->heartbeats = calloc(srv->nworkers,
		    sizeof(*srv->heartbeats));
		if (srv->watchdog_timer == NULL || srv->heartbeats == NULL ||
		    event_add(srv->watchdog_timer, &tv) == -1)
			return (-1);
	}
	return (0);
}

/*
 * Seed the workers' fault generators (fault.c) from fault_seed, or the
 * clock, and say which: with it, a run's faults can be had again (the
 * same connections and datagrams in the same order on each worker).
 * Read at start only.
 */
static void
server_seed(struct server *srv)
{
	struct timespec	 ts;
	uint64_t	 seed = srv->conf.fault_seed;
	unsigned	 i;

	if (!srv->conf.fault_seed_set) {
		if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
			ts.tv_sec = ts.tv_nsec = 0;
		seed = ((uint64_t)ts.tv_sec * 1000000000ULL +
		    (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 32);
	}
	log_info("fault_seed %" PRIu64 "%s", seed, srv->conf.fault_seed_set ?
	    "" : " (from the clock)");
	for (i = 0; i < srv->nworkers; i++)
		srv->workers[i].fault_rng = seed ^
		    ((uint64_t)(i + 1) * 0xd1b54a32d192ed03ULL);
}

/*
 * Set up the main loop, the signals, the workers and every listener from
 * conf (read from path), whose contents the server takes over.  Return 0,
 * or a sysexits code after logging why; then server_free releases what
 * was set up.
 */
int
server_init(struct server *srv, struct conf *conf, const char *path)
{
	char		 err[CONF_ERRLEN];
	int		*fds = NULL;
	unsigned	 i;
	int		 n, rc;

	memset(srv, 0, sizeof(*srv));
	srv->conf = *conf;
	memset(conf, 0, sizeof(*conf));
	srv->conf_path = path;
	srv->started = time(NULL);
	if (gethostname(srv->hostname, sizeof(srv->hostname) - 1) == -1 ||
	    srv->hostname[0] == '\0')
		snprintf(srv->hostname, sizeof(srv->hostname), "unknown");
	srv->done_pipe[0] = srv->done_pipe[1] = -1;
	srv->nworkers = srv->conf.workers > 0 ? srv->conf.workers :
	    os_ncpus();
	if (srv->nworkers > CONF_MAX_WORKERS)
		srv->nworkers = CONF_MAX_WORKERS;
	if (limit_init(&srv->limit) == -1) {
		log_msg(LOG_ERR, "out of memory");
		return (EX_OSERR);
	}
	server_set_live(srv);
	srv->watchdog_usec = notify_watchdog_usec();

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_msg(LOG_ERR, "cannot ignore SIGPIPE: %s", strerror(errno));
		return (EX_OSERR);
	}
	os_raise_nofile(srv);
	if ((srv->base = event_base_new()) == NULL ||
	    pipe2(srv->done_pipe, O_NONBLOCK | O_CLOEXEC) == -1 ||
	    server_events(srv) == -1) {
		log_msg(LOG_ERR, "cannot set up the main event loop");
		return (EX_OSERR);
	}
	/* main.c checked the TLS files: what fails now is rare. */
	if ((srv->groups = groups_new(&srv->conf, srv->conf_path, NULL, err,
	    sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "%s", err);
		return (EX_CONFIG);
	}
	if ((srv->workers = calloc(srv->nworkers, sizeof(*srv->workers))) ==
	    NULL) {
		log_msg(LOG_ERR, "out of memory");
		return (EX_OSERR);
	}
	for (i = 0; i < srv->nworkers; i++)
		srv->workers[i].cmd_pipe[0] = srv->workers[i].cmd_pipe[1] = -1;
	for (i = 0; i < srv->nworkers; i++)
		if (worker_init(&srv->workers[i], srv, (int)i) == -1)
			return (EX_OSERR);
	server_seed(srv);

	if ((n = notify_listen_fds(&fds)) < 0) {
		log_msg(LOG_ERR, "cannot take the sockets systemd passed");
		return (EX_OSERR);
	}
	if (srv->conf.metrics_listen.n > 0 &&
	    (srv->http = http_start(srv, &srv->conf.metrics_listen)) ==
	    NULL) {
		free(fds);
		return (EX_UNAVAILABLE);
	}
	if (n > 0) {
		srv->activated = 1;
		log_info("socket activation: %d sockets from systemd; the "
		    "listen addresses in the file only choose their groups", n);
		rc = listen_adopt(srv, fds, n);
		free(fds);
		if (rc != EX_OK)
			return (rc);
	} else {
		if (listen_groups(srv) == -1)
			return (EX_UNAVAILABLE);
	}
	return (os_drop_privileges(srv));
}

/* Start the workers and run until they have all ended.  Return 0 or -1. */
int
server_run(struct server *srv)
{
	struct totals	 sum;
	sigset_t	 all, old;
	char		 buf[256];
	unsigned	 i;
	int		 rc = 0;

	/* Signals are the main thread's: workers start with them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < srv->nworkers && rc == 0; i++)
		rc = worker_start(&srv->workers[i]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == -1) {
		/* Stop the ones that did start, and report failure. */
		srv->draining = 1;
		server_tell(srv, WORKER_CMD_CUT);
	} else {
		log_notice("echod %s ready: %u workers (%s)", PACKAGE_VERSION,
		    srv->nworkers, event_base_get_method(srv->base));
		server_summary(srv, buf, sizeof(buf));
		notify("READY=1\nSTATUS=%s", buf);
	}

	if (rc == 0 && event_base_dispatch(srv->base) == -1) {
		log_msg(LOG_ERR, "event loop failed");
		rc = -1;
		server_tell(srv, WORKER_CMD_CUT);
	}
	for (i = 0; i < srv->nworkers; i++)
		worker_join(&srv->workers[i]);
	server_totals(srv, &sum);
	if (sum.cut_conns > 0)
		log_warnx("%s: cut %" PRIu64 " connections with %" PRIu64
		    " bytes not yet echoed", srv->cut_reason != NULL ?
		    srv->cut_reason : "drain", sum.cut_conns, sum.cut_bytes);
	if (rc == 0)
		log_notice("stopped: %" PRIu64 " tcp connections served, %"
		    PRIu64 " tcp bytes and %" PRIu64 " udp datagrams echoed, %"
		    PRIu64 " udp replies dropped", sum.conns_accepted,
		    sum.tcp_bytes, sum.udp_datagrams, sum.udp_dropped);
	return (rc);
}

/* Release everything server_init set up, however far it got. */
void
server_free(struct server *srv)
{
	unsigned	 i;

	http_free(srv->http);
	if (srv->workers != NULL) {
		for (i = 0; i < srv->nworkers; i++) {
			worker_join(&srv->workers[i]);
			worker_free(&srv->workers[i]);
		}
		free(srv->workers);
	}
	if (srv->sigterm != NULL)
		event_free(srv->sigterm);
	if (srv->sigint != NULL)
		event_free(srv->sigint);
	if (srv->sighup != NULL)
		event_free(srv->sighup);
	if (srv->sigusr1 != NULL)
		event_free(srv->sigusr1);
	if (srv->shutdown_timer != NULL)
		event_free(srv->shutdown_timer);
	if (srv->status_timer != NULL)
		event_free(srv->status_timer);
	if (srv->watchdog_timer != NULL)
		event_free(srv->watchdog_timer);
	if (srv->done_ev != NULL)
		event_free(srv->done_ev);
	if (srv->memory_timer != NULL)
		event_free(srv->memory_timer);
	if (srv->reload_timer != NULL)
		event_free(srv->reload_timer);
	if (srv->base != NULL) {
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
		event_base_free(srv->base);
	}
	if (srv->done_pipe[0] != -1)
		close(srv->done_pipe[0]);
	if (srv->done_pipe[1] != -1)
		close(srv->done_pipe[1]);
	free(srv->heartbeats);
	groups_free(srv->groups);
	limit_free(&srv->limit);
	conf_free(&srv->conf);
}
