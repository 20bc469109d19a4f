/*
 * The daemon's lifecycle.  The main thread binds every address for every
 * worker (or takes the sockets systemd passed), drops privileges, starts
 * the workers, and then runs a loop of its own for signals and timers
 * only: SIGTERM and SIGINT drain, SIGHUP reloads, SIGUSR1 logs a summary;
 * it talks to systemd (readiness, status, watchdog).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "echod.h"
#include "log.h"
#include "memory.h"
#include "notify.h"

/* Descriptors kept aside for listeners, pipes, logging and the like. */
#define SERVER_FD_RESERVE	64
#define SERVER_STATUS_SECONDS	5
#define SERVER_MEMORY_MS	250	/* how often to look at memory */
#define SERVER_HOLD_MAX_MS	30000	/* longest backoff a drain waits out */
#define SERVER_HOLD_MARGIN_MS	1000
#define SERVER_RELOAD_POLL_MS	2	/* look whether workers applied it */
#define SERVER_RELOAD_WAIT_MS	5000	/* ... for at most this long */

static void	server_reload_wait_cb(evutil_socket_t, short, void *);

/* Tell every worker the same simple command. */
static void
server_tell(struct server *srv, int op)
{
	struct worker_cmd	 cmd;
	unsigned		 i;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = op;
	cmd.fd = -1;
	cmd.guard = srv->guard;
	cmd.gen = srv->reload_gen;
	for (i = 0; i < srv->nworkers; i++)
		worker_send(&srv->workers[i], &cmd);
}

/* Sum the workers' counters. */
void
server_totals(struct server *srv, struct totals *t)
{
	struct stats	*s;
	unsigned	 i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < srv->nworkers; i++) {
		s = &srv->workers[i].stats;
#define STATS_SUM(f)	t->f += STAT_GET(s, f);
		STATS_FIELDS(STATS_SUM)
#undef STATS_SUM
	}
}

/*
 * Tell whether the echo data held by all workers has reached memory_limit.
 * Called by the workers, on their slow path only (echo left over).
 */
int
server_memory_over(struct server *srv)
{
	uint64_t	 limit, sum = 0;
	unsigned	 i;

	limit = atomic_load_explicit(&srv->live.memory_limit,
	    memory_order_relaxed);
	if (limit == 0)
		return (0);
	for (i = 0; i < srv->nworkers; i++)
		sum += STAT_GET(&srv->workers[i].stats, buffered);
	return (sum >= limit);
}

/*
 * Follow the kernel's TCP memory pressure for the drain.  Under pressure
 * the kernel drops what it receives and senders back off exponentially, so
 * a client's last data can arrive seconds after the previous byte, later
 * than any quiet period based on the connection's own timers.  A backoff
 * cannot have grown beyond the pressure episode that caused it, so no
 * connection gets its FIN before the episode's length (at most
 * SERVER_HOLD_MAX_MS) plus a margin has passed since it ended.
 */
static void
server_pressure(struct server *srv)
{
	uint64_t	 now = now_ms(), len;
	int		 p = memory_tcp_pressure(srv->pressure_since != 0);

	if (p == 1 && srv->pressure_since == 0)
		srv->pressure_since = now;
	if (srv->pressure_since == 0)
		return;
	len = now - srv->pressure_since;
	if (len > SERVER_HOLD_MAX_MS)
		len = SERVER_HOLD_MAX_MS;
	atomic_store_explicit(&srv->drain_hold_ms, now + len +
	    SERVER_HOLD_MARGIN_MS, memory_order_relaxed);
	if (srv->draining && !srv->pressure_logged) {
		srv->pressure_logged = 1;
		log_notice("TCP memory is under pressure: the drain waits for "
		    "clients' retransmissions until it has been over for as "
		    "long as it lasted");
	}
	if (p != 1)
		srv->pressure_since = 0;	/* the episode is over */
}

/* Timer callback: memory pressure, and memory back after a load. */
static void
server_memory_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct totals	 t;

	server_pressure(srv);
	server_totals(srv, &t);
	if (memory_trim(&srv->trim, t.buffered, t.conns_active, now_ms()))
		log_debug("gave freed memory back to the system in %" PRIu64
		    " ms", now_ms() - srv->trim.last_ms);
}

/* One line that sums up the counters, for the log and for systemd. */
static void
server_summary(struct server *srv, char *buf, size_t len)
{
	struct totals	 t;

	server_totals(srv, &t);
	snprintf(buf, len, "%" PRIu64 " connections open, %" PRIu64
	    " served; %" PRIu64 " tcp bytes and %" PRIu64 " udp datagrams "
	    "echoed; %" PRIu64 " udp replies dropped", t.conns_active,
	    t.conns_accepted, t.tcp_bytes, t.udp_datagrams, t.udp_dropped);
}

/* Timer callback: refresh systemd's STATUS= line. */
static void
server_status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	char		 buf[256];

	server_summary(srv, buf, sizeof(buf));
	notify("STATUS=%s%s", srv->draining ? "draining: " : "", buf);
}

/*
 * Timer callback: feed systemd's watchdog, but only if every worker's
 * loop has ticked since the last time.
 */
static void
server_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	uint64_t	 beat;
	unsigned	 i;
	int		 alive = 1;

	for (i = 0; i < srv->nworkers; i++) {
		if (!srv->workers[i].started || srv->workers[i].ended)
			continue;	/* ended after its drain */
		beat = atomic_load_explicit(&srv->workers[i].heartbeat,
		    memory_order_relaxed);
		if (beat == srv->heartbeats[i]) {
			log_warnx("worker %u is not responding", i);
			alive = 0;
		}
		srv->heartbeats[i] = beat;
	}
	if (alive)
		notify("WATCHDOG=1");
}

/* Timer callback: the drain took longer than shutdown_timeout. */
static void
server_shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;

	srv->cut_reason = "shutdown timeout";
	server_tell(srv, WORKER_CMD_CUT);
}

/*
 * Bind a for every worker and hand each its socket: directly before the
 * workers run, by command once they do.  Return 0 or -1 (logged).
 */
static int
server_listen(struct server *srv, int type, const struct addr *a,
    int running)
{
	struct worker_cmd	 cmd;
	char			 name[ADDR_STRLEN];
	int			*fds;
	unsigned		 k;
	int			 rc = 0;

	if ((fds = calloc(srv->nworkers, sizeof(*fds))) == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return (-1);
	}
	if (net_listen_all(srv, type, a, fds, name, sizeof(name)) == -1) {
		free(fds);
		return (-1);
	}
	for (k = 0; k < srv->nworkers; k++) {
		if (!running) {
			if ((type == SOCK_STREAM ? tcp_attach : udp_attach)(
			    &srv->workers[k], fds[k], a, name, 0) == -1)
				rc = -1;
			continue;
		}
		memset(&cmd, 0, sizeof(cmd));
		cmd.op = WORKER_CMD_ADD;
		cmd.fd = fds[k];
		cmd.type = type;
		cmd.addr = *a;
		snprintf(cmd.name, sizeof(cmd.name), "%s", name);
		if (worker_send(&srv->workers[k], &cmd) == -1)
			rc = -1;	/* it closed the socket */
	}
	free(fds);
	log_notice("listening on %s %s", type == SOCK_STREAM ? "tcp" : "udp",
	    name);
	return (rc);
}

/*
 * Serve the sockets systemd passed: every worker gets its own duplicate
 * of each.  Return 0 or a sysexits code (logged).
 */
static int
server_adopt(struct server *srv, const int *fds, int n)
{
	struct addr	 a;
	char		 name[ADDR_STRLEN];
	unsigned	 k;
	int		 i, type, fd, fl;

	for (i = 0; i < n; i++) {
		if ((type = notify_socket_type(fds[i])) == -1) {
			log_msg(LOG_ERR, "socket %d passed by systemd is "
			    "neither a listening TCP socket nor a UDP socket",
			    fds[i]);
			return (EX_CONFIG);
		}
		a.len = sizeof(a.ss);
		if (getsockname(fds[i], (struct sockaddr *)&a.ss, &a.len) ==
		    -1 || (fl = fcntl(fds[i], F_GETFL)) == -1 ||
		    fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(fds[i], F_SETFD, FD_CLOEXEC) == -1) {
			log_msg(LOG_ERR, "socket %d passed by systemd: %s",
			    fds[i], strerror(errno));
			return (EX_OSERR);
		}
		addr_format((struct sockaddr *)&a.ss, a.len, name,
		    sizeof(name));
		for (k = 0; k < srv->nworkers; k++) {
			fd = k == 0 ? fds[i] : fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (fd == -1) {
				log_msg(LOG_ERR, "dup: %s", strerror(errno));
				return (EX_OSERR);
			}
			if ((type == SOCK_STREAM ? tcp_attach : udp_attach)(
			    &srv->workers[k], fd, &a, name, 1) == -1)
				return (EX_OSERR);
		}
		log_notice("listening on %s %s (from systemd)",
		    type == SOCK_STREAM ? "tcp" : "udp", name);
	}
	return (EX_OK);
}

/*
 * Reload: close the listeners of addresses no longer configured and bind
 * the new ones, leaving every connection alone.  An address that cannot
 * be bound is logged and left out of the list, so the next reload tries
 * it again.
 */
static void
server_relisten(struct server *srv, int type, const struct addr_list *old,
    struct addr_list *new)
{
	struct worker_cmd	 cmd;
	char			 name[ADDR_STRLEN];
	size_t			 i, j;
	unsigned		 k;

	for (i = 0; i < old->n; i++) {
		for (j = 0; j < new->n; j++)
			if (addr_equal(&old->v[i], &new->v[j]))
				break;
		if (j < new->n)
			continue;
		memset(&cmd, 0, sizeof(cmd));
		cmd.op = WORKER_CMD_DEL;
		cmd.fd = -1;
		cmd.type = type;
		cmd.addr = old->v[i];
		for (k = 0; k < srv->nworkers; k++)
			worker_send(&srv->workers[k], &cmd);
		log_notice("no longer listening on %s %s",
		    type == SOCK_STREAM ? "tcp" : "udp",
		    addr_name(&old->v[i], name, sizeof(name)));
	}
	for (j = 0; j < new->n; ) {
		for (i = 0; i < old->n; i++)
			if (addr_equal(&old->v[i], &new->v[j]))
				break;
		if (i < old->n || server_listen(srv, type, &new->v[j], 1) == 0) {
			j++;
			continue;
		}
		memmove(&new->v[j], &new->v[j + 1],
		    (new->n - j - 1) * sizeof(new->v[0]));
		new->n--;
	}
}

/* Tell whether two address lists hold the same addresses in order. */
static int
server_same_addrs(const struct addr_list *a, const struct addr_list *b)
{
	size_t	 i;

	if (a->n != b->n)
		return (0);
	for (i = 0; i < a->n; i++)
		if (!addr_equal(&a->v[i], &b->v[i]))
			return (0);
	return (1);
}

/* Set the settings workers read while they run. */
static void
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
	atomic_store(&srv->live.buffer_limit, srv->conf.tcp_buffer_limit);
	atomic_store(&srv->live.max_connections,
	    srv->conf.tcp_max_connections);
	atomic_store(&srv->live.idle_timeout_ms,
	    srv->conf.tcp_idle_timeout_ms);
}

/*
 * Free the retired guard settings that no worker can still read: those
 * older than the oldest one a worker says it uses.  Commands in flight
 * carry only newer ones.
 */
static void
server_retire_guards(struct server *srv)
{
	struct guard	*g, *keep = srv->guard;
	unsigned	 i;

	for (g = srv->guard; g != NULL; g = g->older)
		for (i = 0; i < srv->nworkers; i++)
			if (atomic_load(&srv->workers[i].guard_seen) == g)
				keep = g;
	guard_free(keep->older);
	keep->older = NULL;
}

/*
 * SIGHUP: parse the file into a fresh configuration and switch to it only
 * if it is valid; otherwise log why and keep running as before.
 */
static void
server_reload(struct server *srv)
{
	struct conf	 old, nc;
	struct guard	*g;
	char		 err[CONF_ERRLEN];

	notify("RELOADING=1");
	log_notice("SIGHUP: reloading %s", srv->conf_path);
	conf_init(&nc);
	if (conf_load(&nc, srv->conf_path, err, sizeof(err)) != 0) {
		log_msg(LOG_ERR, "reload failed, keeping the running "
		    "configuration: %s", err);
		conf_free(&nc);
		notify("READY=1");
		return;
	}
	if ((g = guard_new(&nc)) == NULL) {
		log_msg(LOG_ERR, "reload failed, keeping the running "
		    "configuration: out of memory");
		conf_free(&nc);
		notify("READY=1");
		return;
	}
	/* Workers may still read the old one: retired, freed later. */
	server_retire_guards(srv);
	g->older = srv->guard;
	srv->guard = g;
	if (nc.workers != srv->conf.workers)
		log_warnx("reload: a new number of workers takes a restart");
	if (strcmp(nc.user, srv->conf.user) != 0)
		log_warnx("reload: a new user takes a restart");
	if (!server_same_addrs(&nc.metrics_listen, &srv->conf.metrics_listen))
		log_warnx("reload: new [metrics] listen addresses take a "
		    "restart");
	old = srv->conf;
	srv->conf = nc;
	/* What needs the start-up state stays as it is. */
	srv->conf.workers = old.workers;
	memcpy(srv->conf.user, old.user, sizeof(srv->conf.user));
	srv->conf.metrics_listen = old.metrics_listen;
	old.metrics_listen = nc.metrics_listen;
	log_setlevel(srv->conf.log_level);
	server_set_live(srv);
	if (srv->activated)
		log_info("reload: listen addresses come from systemd; "
		    "[tcp] listen and [udp] listen are not used");
	else {
		server_relisten(srv, SOCK_STREAM, &old.tcp_listen,
		    &srv->conf.tcp_listen);
		server_relisten(srv, SOCK_DGRAM, &old.udp_listen,
		    &srv->conf.udp_listen);
	}
	conf_free(&old);
	srv->reload_gen++;
	srv->reload_started = now_ms();
	server_tell(srv, WORKER_CMD_RELOAD);
	server_reload_wait_cb(-1, 0, srv);
}

/*
 * Timer callback: a reload is done once every running worker has applied
 * it, listeners added and removed included; only then say so (the log,
 * and READY=1 for systemd).  A worker that takes longer than
 * SERVER_RELOAD_WAIT_MS is named and not waited for.
 */
static void
server_reload_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct timeval	 tv = { 0, SERVER_RELOAD_POLL_MS * 1000 };
	unsigned	 i, late = 0;
	int		 waited_out;

	waited_out = now_ms() - srv->reload_started >= SERVER_RELOAD_WAIT_MS;
	for (i = 0; i < srv->nworkers; i++) {
		if (!srv->workers[i].started || srv->workers[i].ended ||
		    atomic_load(&srv->workers[i].reload_gen) == srv->reload_gen)
			continue;
		late++;
		if (waited_out)
			log_warnx("reload: worker %u has not applied it yet", i);
	}
	if (late > 0 && !waited_out) {
		if (evtimer_add(srv->reload_timer, &tv) == 0)
			return;
		log_warnx("reload: cannot arm timer; not waiting for workers");
	}
	log_notice("reloaded %s", srv->conf_path);
	notify("READY=1");
	server_status_cb(-1, 0, srv);
}

/* Signal callback: stop, reload, or log a summary. */
static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server	*srv = arg;
	uint64_t	 ms = srv->conf.shutdown_timeout_ms;
	struct timeval	 tv = { (time_t)(ms / 1000),
			    (suseconds_t)(ms % 1000) * 1000 };
	char		 buf[256];

	if (sig == SIGHUP) {
		if (!srv->draining)
			server_reload(srv);
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
	    "to %" PRIu64 " ms", (int)sig, atomic_load(&srv->nconns), ms);
	notify("STOPPING=1");
	srv->draining = 1;
	server_status_cb(-1, 0, srv);
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
	rlim_t		 reserve = SERVER_FD_RESERVE;

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
	/* The metrics endpoint never holds more than its own cap. */
	if (srv->conf.metrics_listen.n > 0)
		reserve += srv->conf.metrics_max_connections +
		    srv->conf.metrics_listen.n;
	if (max > 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)max + reserve > rl.rlim_cur)
		log_warnx("max_connections %zu does not fit the descriptor "
		    "limit of %llu; connections beyond about %llu will wait",
		    max, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)(rl.rlim_cur > reserve ?
		    rl.rlim_cur - reserve : 0));
	log_info("descriptor limit %llu", (unsigned long long)rl.rlim_cur);
}

/*
 * With user set and started as root: become that user, and its group, for
 * good, now that the sockets are bound.  Return 0 or a sysexits code.
 */
static int
server_drop_privileges(struct server *srv)
{
	const char	*user = srv->conf.user;
	struct passwd	*pw;

	if (*user == '\0')
		return (EX_OK);
	if (geteuid() != 0) {
		log_warnx("user = %s is ignored: echod was not started as root",
		    user);
		return (EX_OK);
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		log_msg(LOG_ERR, "user %s: %s", user,
		    errno != 0 ? strerror(errno) : "no such user");
		return (EX_NOUSER);
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		log_msg(LOG_ERR, "cannot become user %s: %s", user,
		    strerror(errno));
		return (EX_OSERR);
	}
	if (pw->pw_uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		log_msg(LOG_ERR, "could become root again after dropping to "
		    "%s", user);
		return (EX_OSERR);
	}
	log_info("running as user %s (uid %u, gid %u)", user,
	    (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return (EX_OK);
}

/* Create the main loop's signal and timer events.  Return 0 or -1. */
static int
server_events(struct server *srv)
{
	struct timeval	 tv = { SERVER_STATUS_SECONDS, 0 };
	struct timeval	 mem = { SERVER_MEMORY_MS / 1000,
			    SERVER_MEMORY_MS % 1000 * 1000 };

	srv->sigterm = evsignal_new(srv->base, SIGTERM, server_signal_cb, srv);
	srv->sigint = evsignal_new(srv->base, SIGINT, server_signal_cb, srv);
	srv->sighup = evsignal_new(srv->base, SIGHUP, server_signal_cb, srv);
	srv->sigusr1 = evsignal_new(srv->base, SIGUSR1, server_signal_cb, srv);
	srv->shutdown_timer = evtimer_new(srv->base,
	    server_shutdown_timeout_cb, srv);
	srv->status_timer = event_new(srv->base, -1, EV_PERSIST,
	    server_status_cb, srv);
	srv->done_ev = event_new(srv->base, srv->done_pipe[0],
	    EV_READ | EV_PERSIST, server_done_cb, srv);
	srv->memory_timer = event_new(srv->base, -1, EV_PERSIST,
	    server_memory_cb, srv);
	srv->reload_timer = evtimer_new(srv->base, server_reload_wait_cb, srv);
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
		    server_watchdog_cb, srv);
		srv->heartbeats = calloc(srv->nworkers,
		    sizeof(*srv->heartbeats));
		if (srv->watchdog_timer == NULL || srv->heartbeats == NULL ||
		    event_add(srv->watchdog_timer, &tv) == -1)
			return (-1);
	}
	return (0);
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
	int		*fds = NULL;
	unsigned	 i;
	size_t		 j;
	int		 n, rc;

	memset(srv, 0, sizeof(*srv));
	srv->conf = *conf;
	memset(conf, 0, sizeof(*conf));
	srv->conf_path = path;
	srv->started = time(NULL);
	srv->done_pipe[0] = srv->done_pipe[1] = -1;
	srv->nworkers = srv->conf.workers > 0 ? srv->conf.workers :
	    server_ncpus();
	if (srv->nworkers > CONF_MAX_WORKERS)
		srv->nworkers = CONF_MAX_WORKERS;
	server_set_live(srv);
	srv->watchdog_usec = notify_watchdog_usec();

	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		log_msg(LOG_ERR, "cannot ignore SIGPIPE: %s", strerror(errno));
		return (EX_OSERR);
	}
	server_raise_nofile(srv);
	if ((srv->base = event_base_new()) == NULL ||
	    pipe2(srv->done_pipe, O_NONBLOCK | O_CLOEXEC) == -1 ||
	    server_events(srv) == -1) {
		log_msg(LOG_ERR, "cannot set up the main event loop");
		return (EX_OSERR);
	}
	if ((srv->guard = guard_new(&srv->conf)) == NULL ||
	    perip_init(&srv->perip) == -1 ||
	    (srv->workers = calloc(srv->nworkers, sizeof(*srv->workers))) ==
	    NULL) {
		log_msg(LOG_ERR, "out of memory");
		return (EX_OSERR);
	}
	for (i = 0; i < srv->nworkers; i++)
		srv->workers[i].cmd_pipe[0] = srv->workers[i].cmd_pipe[1] = -1;
	for (i = 0; i < srv->nworkers; i++)
		if (worker_init(&srv->workers[i], srv, (int)i) == -1)
			return (EX_OSERR);

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
		log_info("socket activation: %d sockets from systemd; [tcp] "
		    "listen and [udp] listen are not used", n);
		rc = server_adopt(srv, fds, n);
		free(fds);
		if (rc != EX_OK)
			return (rc);
	} else {
		for (j = 0; j < srv->conf.tcp_listen.n; j++)
			if (server_listen(srv, SOCK_STREAM,
			    &srv->conf.tcp_listen.v[j], 0) == -1)
				return (EX_UNAVAILABLE);
		for (j = 0; j < srv->conf.udp_listen.n; j++)
			if (server_listen(srv, SOCK_DGRAM,
			    &srv->conf.udp_listen.v[j], 0) == -1)
				return (EX_UNAVAILABLE);
	}
	return (server_drop_privileges(srv));
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
	guard_free(srv->guard);
	perip_free(&srv->perip);
	conf_free(&srv->conf);
}
