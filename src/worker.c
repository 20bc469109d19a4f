/*
 * A worker: one thread running one event_base with its own listeners and
 * connections.  Nothing on the echo path is shared between workers; the
 * main thread talks to a worker only through its command pipe, and the
 * worker says it has ended through the server's done pipe.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "echod.h"
#include "log.h"

/* Stop listening and drain every connection; end when none is left. */
static void
worker_drain(struct worker *w)
{
	struct conn	*c, *next;

	if (w->draining)
		return;
	w->draining = 1;
	while (!TAILQ_EMPTY(&w->tcps))
		tcp_close(TAILQ_FIRST(&w->tcps));
	while (!TAILQ_EMPTY(&w->udps))
		udp_close(TAILQ_FIRST(&w->udps));
	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		conn_drain(c);	/* may free c, never another */
	}
	if (w->nconns == 0)
		event_base_loopexit(w->base, NULL);
}

/* Close every connection now, counting what could not be echoed. */
static void
worker_cut(struct worker *w)
{
	struct conn	*c;

	w->draining = 1;
	while ((c = TAILQ_FIRST(&w->conns)) != NULL) {
		w->stats.cut_conns++;
		w->stats.cut_bytes +=
		    evbuffer_get_length(bufferevent_get_output(c->bev));
		conn_free(c);
	}
	event_base_loopexit(w->base, NULL);
}

/* Callback for the command pipe. */
static void
worker_cmd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	char		 cmds[16];
	ssize_t		 n, i;

	while ((n = read((int)fd, cmds, sizeof(cmds))) > 0) {
		for (i = 0; i < n; i++) {
			if (cmds[i] == WORKER_CMD_DRAIN)
				worker_drain(w);
			else if (cmds[i] == WORKER_CMD_CUT)
				worker_cut(w);
		}
	}
}

/* Send a command to a worker; callable from any thread. */
void
worker_send(struct worker *w, char cmd)
{
	ssize_t	 n;

	do
		n = write(w->cmd_pipe[1], &cmd, 1);
	while (n == -1 && errno == EINTR);
	if (n != 1)
		log_warnx("worker %d: cannot send command: %s", w->id,
		    n == -1 ? strerror(errno) : "short write");
}

/* Called by conn_free in this worker's thread. */
void
worker_conn_gone(struct worker *w)
{
	struct tcp_listener	*l;

	if (w->draining) {
		if (w->nconns == 0)
			event_base_loopexit(w->base, NULL);
		return;
	}
	/* A slot or a descriptor is free: paused listeners look again now. */
	TAILQ_FOREACH(l, &w->tcps, entry)
		if (l->paused)
			tcp_pause(l, 0);
}

/* Set up worker id of srv: its event base, command pipe and buffers. */
int
worker_init(struct worker *w, struct server *srv, int id)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->srv = srv;
	w->cmd_pipe[0] = w->cmd_pipe[1] = -1;
	TAILQ_INIT(&w->tcps);
	TAILQ_INIT(&w->udps);
	TAILQ_INIT(&w->conns);
	if ((w->base = event_base_new()) == NULL) {
		log_msg(LOG_ERR, "worker %d: cannot create event base", id);
		return (-1);
	}
	if (pipe2(w->cmd_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_msg(LOG_ERR, "worker %d: pipe: %s", id, strerror(errno));
		return (-1);
	}
	w->cmd_ev = event_new(w->base, w->cmd_pipe[0], EV_READ | EV_PERSIST,
	    worker_cmd_cb, w);
	if (w->cmd_ev == NULL || event_add(w->cmd_ev, NULL) == -1) {
		log_msg(LOG_ERR, "worker %d: cannot create event", id);
		return (-1);
	}
	if (srv->conf.udp_listen.n > 0 && (w->udp = udp_batch_new()) == NULL) {
		log_msg(LOG_ERR, "worker %d: out of memory", id);
		return (-1);
	}
	return (0);
}

/* The worker thread: run the loop, then tell the main thread. */
static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	char		 done = (char)w->id;
	ssize_t		 n;

	if (event_base_dispatch(w->base) == -1)
		log_msg(LOG_ERR, "worker %d: event loop failed", w->id);
	do
		n = write(w->srv->done_pipe[1], &done, 1);
	while (n == -1 && errno == EINTR);
	if (n != 1)
		log_msg(LOG_ERR, "worker %d: cannot report its end", w->id);
	return (NULL);
}

/* Start the worker's thread.  Return 0 or -1 (logged). */
int
worker_start(struct worker *w)
{
	int	 rc;

	if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		log_msg(LOG_ERR, "worker %d: cannot start thread: %s", w->id,
		    strerror(rc));
		return (-1);
	}
	w->started = 1;
	return (0);
}

/* Wait for the worker's thread to end. */
void
worker_join(struct worker *w)
{
	if (w->started && pthread_join(w->thread, NULL) == 0)
		w->started = 0;
}

/* Release the worker, whose thread must have ended or never started. */
void
worker_free(struct worker *w)
{
	while (!TAILQ_EMPTY(&w->tcps))
		tcp_close(TAILQ_FIRST(&w->tcps));
	while (!TAILQ_EMPTY(&w->udps))
		udp_close(TAILQ_FIRST(&w->udps));
	w->draining = 1;
	while (!TAILQ_EMPTY(&w->conns))
		conn_free(TAILQ_FIRST(&w->conns));
	if (w->cmd_ev != NULL)
		event_free(w->cmd_ev);
	if (w->base != NULL) {
		/* Let deferred frees finish before the base goes. */
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		event_base_free(w->base);
	}
	if (w->cmd_pipe[0] != -1)
		close(w->cmd_pipe[0]);
	if (w->cmd_pipe[1] != -1)
		close(w->cmd_pipe[1]);
	udp_batch_free(w->udp);
}
