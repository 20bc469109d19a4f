/*
 * Reload on SIGHUP, as OpenBSD's rad does it: parse the file into a fresh
 * configuration, switch to it only if it is valid, then tell the workers;
 * it is done once they have all applied it.
 */
#include "config.h"

#include <sys/socket.h>
#include <stdatomic.h>
#include <string.h>

#include <event2/event.h>

#include "listen.h"
#include "log.h"
#include "notify.h"
#include "os.h"
#include "reload.h"
#include "server.h"
#include "worker.h"

#define RELOAD_POLL_MS	2	/* look whether workers applied it */
#define RELOAD_WAIT_MS	5000	/* ... for at most this long */

/* Tell whether two address lists hold the same addresses in order. */
static int
reload_same_addrs(const struct addr_list *a, const struct addr_list *b)
{
	size_t	 i;

	if (a->n != b->n)
		return (0);
	for (i = 0; i < a->n; i++)
		if (!addr_equal(&a->v[i], &b->v[i]))
			return (0);
	return (1);
}

/*
 * Tell whether conf still (or already) has address a of group g: in any
 * group of its socket type, or for port 0, which binds a new port each
 * time, in the group of g's name.
 */
static int
reload_has(const struct conf *conf, const struct conf_group *g,
    const struct addr *a)
{
	const struct conf_group	*o = conf_group_of(conf, g->type, a);
	size_t			 i, j;

	if (addr_port(a) != 0)
		return (o != NULL);
	for (i = 0; i < conf->ngroups; i++) {
		o = &conf->groups[i];
		if (o->proto != g->proto || strcmp(o->name, g->name) != 0)
			continue;
		for (j = 0; j < o->listen.n; j++)
			if (addr_equal(&o->listen.v[j], a))
				return (1);
	}
	return (0);
}

/*
 * Reload: close the listeners of addresses no longer configured and bind
 * the new ones, leaving every connection alone; an address that moves to
 * another group stays bound (its workers look up its group again).  An
 * address that cannot be bound is logged and left out of its group's
 * list, so the next reload tries it again.
 */
static void
reload_relisten(struct server *srv, const struct conf *old, struct conf *new)
{
	struct worker_cmd	 cmd;
	struct conf_group	*g;
	const struct conf_group	*og;
	char			 name[ADDR_STRLEN];
	size_t			 i, j;
	unsigned		 k;

	for (i = 0; i < old->ngroups; i++) {
		og = &old->groups[i];
		for (j = 0; j < og->listen.n; j++) {
			if (reload_has(new, og, &og->listen.v[j]))
				continue;
			memset(&cmd, 0, sizeof(cmd));
			cmd.op = WORKER_CMD_DEL;
			cmd.fd = -1;
			cmd.type = og->type;
			cmd.addr = og->listen.v[j];
			snprintf(cmd.group, sizeof(cmd.group), "%s", og->name);
			for (k = 0; k < srv->nworkers; k++)
				worker_send(&srv->workers[k], &cmd);
			log_notice("no longer listening on %s %s",
			    conf_group_proto(og), addr_name(&og->listen.v[j],
			    name, sizeof(name)));
		}
	}
	for (i = 0; i < new->ngroups; i++) {
		g = &new->groups[i];
		for (j = 0; j < g->listen.n; ) {
			if (reload_has(old, g, &g->listen.v[j]) ||
			    listen_addr(srv, g, &g->listen.v[j], 1) == 0) {
				j++;
				continue;
			}
			memmove(&g->listen.v[j], &g->listen.v[j + 1],
			    (g->listen.n - j - 1) * sizeof(g->listen.v[0]));
			g->listen.n--;
		}
	}
}

/*
 * Free the retired sets of groups that no worker can still read: those
 * older than the oldest one a worker says it uses.  Commands in flight
 * carry only newer ones.
 */
static void
reload_retire_groups(struct server *srv)
{
	struct groups	*gs, *keep = srv->groups;
	unsigned	 i;

	for (gs = srv->groups; gs != NULL; gs = gs->older)
		for (i = 0; i < srv->nworkers; i++)
			if (atomic_load(&srv->workers[i].groups_seen) == gs)
				keep = gs;
	groups_free(keep->older);
	keep->older = NULL;
}

/*
 * SIGHUP: parse the file into a fresh configuration and switch to it only
 * if it is valid; otherwise log why and keep running as before.
 */
void
reload_start(struct server *srv)
{
	struct conf	 old, nc;
	struct groups	*gs;
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
	if ((gs = groups_new(&nc, srv->conf_path, srv->groups, err,
	    sizeof(err))) == NULL) {
		log_msg(LOG_ERR, "reload failed, keeping the running "
		    "configuration: %s", err);
		conf_free(&nc);
		notify("READY=1");
		return;
	}
	/* Workers may still read the old set: retired, freed later. */
	reload_retire_groups(srv);
	gs->older = srv->groups;
	srv->groups = gs;
	if (nc.workers != srv->conf.workers)
		log_warnx("reload: a new number of workers takes a restart");
	if (strcmp(nc.user, srv->conf.user) != 0)
		log_warnx("reload: a new user takes a restart");
	if (!reload_same_addrs(&nc.metrics_listen, &srv->conf.metrics_listen))
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
		log_info("reload: the sockets come from systemd; listen "
		    "addresses only choose their groups");
	else
		reload_relisten(srv, &old, &srv->conf);
	conf_free(&old);
	srv->reload_gen++;
	srv->reload_started = now_ms();
	server_tell(srv, WORKER_CMD_RELOAD);
	reload_wait_cb(-1, 0, srv);
}

/*
 * Timer callback: a reload is done once every running worker has applied
 * it, listeners added and removed included; only then say so (the log,
 * and READY=1 for systemd).  A worker that takes longer than
 * RELOAD_WAIT_MS is named and not waited for.
 */
void
reload_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	struct timeval	 tv = { 0, RELOAD_POLL_MS * 1000 };
	unsigned	 i, late = 0;
	int		 waited_out;

	waited_out = now_ms() - srv->reload_started >= RELOAD_WAIT_MS;
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
	notify_status_cb(-1, 0, srv);
}
