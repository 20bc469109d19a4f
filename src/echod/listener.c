/*
 * Listeners: a worker's listening TCP sockets and bound UDP sockets, in
 * one list.  This file owns a listener's life, from the socket handed to
 * a worker to the one place it is freed; tcp.c and udp.c set up and
 * release their own part of it.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listener.h"
#include "tcp.h"
#include "udp.h"
#include "worker.h"
#include "log.h"

/*
 * Make worker w serve the socket fd of type (SOCK_STREAM: listening, or
 * SOCK_DGRAM: bound), which it then owns; a is the address as configured,
 * name as bound, inherited says it came from systemd.  Return 0, or -1
 * after closing fd (logged).
 */
int
listener_attach(struct worker *w, int type, int fd, const struct addr *a,
    const char *name, const char *group, int inherited)
{
	struct listener	*l;
	int		 rc;

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		log_msg(LOG_ERR, "%s %s: %s", type == SOCK_STREAM ? "tcp" :
		    "udp", name, strerror(errno));
		close(fd);
		return (-1);
	}
	l->w = w;
	l->type = type;
	l->addr = *a;
	l->inherited = inherited;
	l->slot = groups_slot(w->groups, type, a, group);
	snprintf(l->group, sizeof(l->group), "%s", w->groups->v[l->slot].name);
	snprintf(l->name, sizeof(l->name), "%s", name);
	if (type == SOCK_STREAM)
		rc = tcp_listener_init(l, fd);
	else
		rc = udp_listener_init(l, fd);
	if (rc == -1) {
		/* The protocol's part closed fd and released itself. */
		free(l);
		return (-1);
	}
	TAILQ_INSERT_TAIL(&w->listeners, l, entry);
	return (0);
}

/* A place or a descriptor is free: paused TCP listeners look again now. */
void
listener_wake_all(struct worker *w)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &w->listeners, entry)
		if (l->type == SOCK_STREAM)
			tcp_wake(l);
}

/* After the worker took a new set of groups: find each listener's. */
void
listener_regroup(struct worker *w)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &w->listeners, entry) {
		l->slot = groups_slot(w->groups, l->type, &l->addr, l->group);
		snprintf(l->group, sizeof(l->group), "%s",
		    w->groups->v[l->slot].name);
	}
}

/* The settings of l's listener group, as its worker has them now. */
const struct lgroup *
listener_group(const struct listener *l)
{
	return (&l->w->groups->v[l->slot]);
}

/* Stop listening on l, release its protocol's part and free it. */
void
listener_close(struct listener *l)
{
	if (l->type == SOCK_STREAM)
		tcp_listener_fini(l);
	else
		udp_listener_fini(l);
	TAILQ_REMOVE(&l->w->listeners, l, entry);
	free(l);
}

/*
 * Close worker w's own listeners of type on the configured address a (a
 * reload that drops it); a TCP one first accepts the clients waiting in
 * its backlog, which closing it would reset.
 */
void
listener_close_addr(struct worker *w, int type, const struct addr *a,
    const char *group)
{
	struct listener	*l, *next;

	for (l = TAILQ_FIRST(&w->listeners); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		if (l->type != type || l->inherited ||
		    !addr_equal(&l->addr, a) || strcmp(l->group, group) != 0)
			continue;
		if (l->type == SOCK_STREAM)
			tcp_accept_queued(l);
		listener_close(l);
	}
}

/*
 * Close every listener of worker w for a drain.  Clients the kernel has
 * already connected are ours to drain too: closing a listener resets what
 * waits in its backlog.  Not so for a socket systemd passed, which stays
 * open in systemd for the next echod to serve (tcp_accept_queued serves
 * only a client it had already accepted).
 */
void
listener_drain_all(struct worker *w)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &w->listeners, entry)
		if (l->type == SOCK_STREAM)
			tcp_accept_queued(l);
	listener_close_all(w);
}

/* Close every listener of worker w now. */
void
listener_close_all(struct worker *w)
{
	while (!TAILQ_EMPTY(&w->listeners))
		listener_close(TAILQ_FIRST(&w->listeners));
}
