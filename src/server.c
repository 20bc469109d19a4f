/*
 * The daemon's lifecycle.  The main thread binds every address for every
 * worker, starts the workers, and then runs a loop of its own for the
 * signals and the shutdown timer only; on SIGTERM or SIGINT it tells the
 * workers to drain and waits for each to end.
 */
#include "config.h"

#include <sys/resource.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "echod.h"
#include "log.h"

/* Descriptors kept aside for listeners, pipes, logging and the like. */
#define SERVER_FD_RESERVE	64

/* Tell every worker the same command. */
static void
server_tell(struct server *srv, char cmd)
{
	unsigned	 i;

	for (i = 0; i < srv->nworkers; i++)
		worker_send(&srv->workers[i], cmd);
}

/* Timer callback: the drain took longer than shutdown_timeout. */
static void
server_shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	srv->cut_reason = "shutdown timeout";
	server_tell(srv, WORKER_CMD_CUT);
}

/* Stop accepting and start draining; a second signal cuts at once. */
static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server	*srv = arg;
	uint64_t	 ms = srv->conf.shutdown_timeout_ms;
	struct timeval	 tv = { (time_t)(ms / 1000),
			    (suseconds_t)(ms % 1000) * 1000 };

	if (srv->draining) {
		log_notice("signal %d again: stopping now", (int)sig);
		srv->cut_reason = "second signal";
		server_tell(srv, WORKER_CMD_CUT);
		return;
	}
	log_notice("signal %d: stopping; draining %zu connections for up "
	    "to %" PRIu64 " ms", (int)sig, atomic_load(&srv->nconns), ms);
	srv->draining = 1;
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
	char		 ids[64];
	ssize_t		 n;

	while ((n = read((int)fd, ids, sizeof(ids))) > 0)
		srv->ndone += (unsigned)n;
	if (!srv->draining && srv->ndone > 0) {
		log_msg(LOG_ERR, "a worker stopped unexpectedly; stopping");
		srv->draining = 1;
		srv->cut_reason = "worker failure";
		server_tell(srv, WORKER_CMD_CUT);
	}
	if (srv->ndone >= srv->nworkers)
		event_base_loopexit(srv->base, NULL);
}

/* How many workers "auto" means: the CPUs this process may run on. */
static unsigned
server_ncpus(void)
{
	cpu_set_t	 set;
	long		 n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    CPU_COUNT(&set) > 0)
		return ((unsigned)CPU_COUNT(&set));
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return (n > 0 ? (unsigned)n : 1);
}

/*
 * Raise the soft descriptor limit to the hard one, and warn if
 * max_connections cannot fit under it.
 */
static void
server_raise_nofile(struct server *srv)
{
	struct rlimit	 rl;
	size_t		 max = srv->conf.tcp_max_connections;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("cannot raise the descriptor limit");
		else if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return;
	}
	if (max > 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)max + SERVER_FD_RESERVE > rl.rlim_cur)
		log_warnx("max_connections %zu does not fit the descriptor "
		    "limit of %llu; connections beyond about %llu will wait",
		    max, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur > SERVER_FD_RESERVE ?
		    rl.rlim_cur - SERVER_FD_RESERVE : 0));
	log_info("descriptor limit %llu", (unsigned long long)rl.rlim_cur);
}

/*
 * Bind every address of one protocol for every worker.  With more than
 * one worker each binds its own socket with SO_REUSEPORT, after a probe
 * that the address is free and that fixes the port when it is 0.
 */
static int
server_bind(struct server *srv, int type, const struct addr_list *list)
{
	struct addr	 a;
	char		 name[ADDR_STRLEN];
	size_t		 i;
	unsigned	 k;
	int		 reuse = srv->nworkers > 1;

	for (i = 0; i < list->n; i++) {
		a = list->v[i];
		if (reuse && net_probe(type, &list->v[i], &a) == -1) {
			log_msg(LOG_ERR, "cannot bind %s %s: %s",
			    type == SOCK_STREAM ? "tcp" : "udp",
			    addr_format((struct sockaddr *)&list->v[i].ss,
			    list->v[i].len, name, sizeof(name)),
			    strerror(errno));
			return (-1);
		}
		for (k = 0; k < srv->nworkers; k++) {
			if (type == SOCK_STREAM &&
			    tcp_listen(&srv->workers[k], &a, reuse) == -1)
				return (-1);
			if (type == SOCK_DGRAM &&
			    udp_listen(&srv->workers[k], &a, reuse) == -1)
				return (-1);
		}
	}
	return (0);
}

/*
 * Set up the main loop, the signals, the workers and every listener from
 * conf, whose contents the server takes over.  Return 0, or -1 after
 * logging why; then server_free releases what was set up.
 */
int
server_init(struct server *srv, struct conf *conf)
{
	unsigned	 i;

	memset(srv, 0, sizeof(*srv));
	srv->conf = *conf;
	memset(conf, 0, sizeof(*conf));
	srv->done_pipe[0] = srv->done_pipe[1] = -1;
	srv->nworkers = srv->conf.workers > 0 ? srv->conf.workers :
	    server_ncpus();
	if (srv->nworkers > CONF_MAX_WORKERS)
		srv->nworkers = CONF_MAX_WORKERS;

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_msg(LOG_ERR, "cannot ignore SIGPIPE: %s", strerror(errno));
		return (-1);
	}
	server_raise_nofile(srv);
	if ((srv->base = event_base_new()) == NULL) {
		log_msg(LOG_ERR, "cannot create event base");
		return (-1);
	}
	if (pipe2(srv->done_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_msg(LOG_ERR, "pipe: %s", strerror(errno));
		return (-1);
	}
	srv->sigterm = evsignal_new(srv->base, SIGTERM, server_signal_cb, srv);
	srv->sigint = evsignal_new(srv->base, SIGINT, server_signal_cb, srv);
	srv->shutdown_timer = evtimer_new(srv->base,
	    server_shutdown_timeout_cb, srv);
	srv->done_ev = event_new(srv->base, srv->done_pipe[0],
	    EV_READ | EV_PERSIST, server_done_cb, srv);
	if (srv->sigterm == NULL || srv->sigint == NULL ||
	    srv->shutdown_timer == NULL || srv->done_ev == NULL ||
	    evsignal_add(srv->sigterm, NULL) == -1 ||
	    evsignal_add(srv->sigint, NULL) == -1 ||
	    event_add(srv->done_ev, NULL) == -1) {
		log_msg(LOG_ERR, "cannot set up signal handling");
		return (-1);
	}

	if ((srv->workers = calloc(srv->nworkers, sizeof(*srv->workers))) ==
	    NULL) {
		log_msg(LOG_ERR, "out of memory");
		return (-1);
	}
	for (i = 0; i < srv->nworkers; i++)
		if (worker_init(&srv->workers[i], srv, (int)i) == -1)
			return (-1);
	if (server_bind(srv, SOCK_STREAM, &srv->conf.tcp_listen) == -1 ||
	    server_bind(srv, SOCK_DGRAM, &srv->conf.udp_listen) == -1)
		return (-1);
	return (0);
}

/* Start the workers and run until they have all ended.  Return 0 or -1. */
int
server_run(struct server *srv)
{
	struct stats	 sum;
	sigset_t	 all, old;
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
	} else
		log_notice("echod %s ready: %u workers (%s)", PACKAGE_VERSION,
		    srv->nworkers, event_base_get_method(srv->base));

	if (rc == 0 && event_base_dispatch(srv->base) == -1) {
		log_msg(LOG_ERR, "event loop failed");
		rc = -1;
		server_tell(srv, WORKER_CMD_CUT);
	}
	memset(&sum, 0, sizeof(sum));
	for (i = 0; i < srv->nworkers; i++) {
		struct stats	*s = &srv->workers[i].stats;

		worker_join(&srv->workers[i]);
		sum.conns_accepted += s->conns_accepted;
		sum.tcp_bytes += s->tcp_bytes;
		sum.udp_datagrams += s->udp_datagrams;
		sum.udp_dropped += s->udp_dropped;
		sum.cut_conns += s->cut_conns;
		sum.cut_bytes += s->cut_bytes;
	}
	if (sum.cut_conns > 0)
		log_warnx("%s: cut %" PRIu64 " connections with %" PRIu64
		    " bytes not yet echoed", srv->cut_reason != NULL ?
		    srv->cut_reason : "stop", sum.cut_conns, sum.cut_bytes);
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
	if (srv->shutdown_timer != NULL)
		event_free(srv->shutdown_timer);
	if (srv->done_ev != NULL)
		event_free(srv->done_ev);
	if (srv->base != NULL) {
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
		event_base_free(srv->base);
	}
	if (srv->done_pipe[0] != -1)
		close(srv->done_pipe[0]);
	if (srv->done_pipe[1] != -1)
		close(srv->done_pipe[1]);
	conf_free(&srv->conf);
}
