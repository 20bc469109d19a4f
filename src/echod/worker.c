/*
 * A worker: one thread running one event_base with its own listeners and
 * connections.  Nothing on the echo path is shared between workers; the
 * main thread talks to a worker only through its command pipe, and the
 * worker says it has ended through the server's done pipe.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conn.h"
#include "drain.h"
#include "fault.h"
#include "listener.h"
#include "server.h"
#include "udp.h"
#include "worker.h"
#include "log.h"

/* Stop listening and drain every connection; end when none is left. */
static void
worker_drain(struct worker *w)
{
	if (w->draining)
		return;
	w->draining = 1;
	listener_drain_all(w);
	drain_all(w);
	if (w->nconns == 0)
		event_base_loopexit(w->base, NULL);
}

/* Close every connection now, counting what could not be echoed. */
static void
worker_cut(struct worker *w)
{
	w->draining = 1;
	drain_cut_all(w);
	event_base_loopexit(w->base, NULL);
}

/*
 * Switch to a newer set of listener groups: every listener looks up its
 * group again by its address, every connection takes its group's new
 * idle timeout.  The main thread frees the old set once no worker says
 * it reads it.
 */
void
worker_apply(struct worker *w, const struct groups *gs)
{
	if (gs == NULL || gs == w->groups)
		return;
	w->groups = gs;
	listener_regroup(w);
	conn_update_all(w);
	fault_worker_regroup(w);
	atomic_store(&w->groups_seen, gs);
}

/* Carry out one command from the main thread. */
static void
worker_do(struct worker *w, const struct worker_cmd *cmd)
{

	switch (cmd->op) {
	case WORKER_CMD_DRAIN:
		worker_drain(w);
		break;
	case WORKER_CMD_CUT:
		worker_cut(w);
		break;
	case WORKER_CMD_RELOAD:
		worker_apply(w, cmd->groups);
		/* After the listener commands before it: all applied. */
		atomic_store(&w->reload_gen, cmd->gen);
		break;
	case WORKER_CMD_ADD:
		/* A new address may be a new group's, or moved to another. */
		worker_apply(w, cmd->groups);
		if (w->draining)
			close(cmd->fd);
		else
			(void)listener_attach(w, cmd->type, cmd->fd,
			    &cmd->addr, cmd->name, cmd->group, 0);
		break;
	case WORKER_CMD_DEL:
		listener_close_addr(w, cmd->type, &cmd->addr, cmd->group);
		break;
	}
}

/* Callback for the command pipe: whole commands, one at a time. */
static void
worker_cmd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct worker_cmd	 cmd;

	/* Writes of a command are atomic (smaller than PIPE_BUF). */
	while (read((int)fd, &cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd))
		worker_do(w, &cmd);
}

/* Timer callback: show systemd's watchdog that this loop runs. */
static void
worker_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	atomic_fetch_add_explicit(&w->heartbeat, 1, memory_order_relaxed);
}

/* A command is written whole, so that the worker reads it whole. */
_Static_assert(sizeof(struct worker_cmd) <= PIPE_BUF,
    "a worker command must fit in one atomic pipe write");

/* Drop a command that will never be carried out: close what it carries. */
static void
worker_cmd_drop(const struct worker_cmd *cmd)
{
	if (cmd->op == WORKER_CMD_ADD && cmd->fd != -1)
		close(cmd->fd);
}

/*
 * Write the queued commands to the worker's pipe, in order, as far as it
 * takes them; return 0, or -1 if the pipe failed (the queue is dropped).
 */
static int
worker_flush(struct worker *w)
{
	ssize_t	 n;
	size_t	 i;

	for (i = 0; i < w->nqueued; i++) {
		do
			n = write(w->cmd_pipe[1], &w->queue[i],
			    sizeof(w->queue[i]));
		while (n == -1 && errno == EINTR);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n != (ssize_t)sizeof(w->queue[i])) {
			log_warnx("worker %d: cannot send command: %s", w->id,
			    n == -1 ? strerror(errno) : "short write");
			for (; i < w->nqueued; i++)
				worker_cmd_drop(&w->queue[i]);
			w->nqueued = 0;
			return (-1);
		}
	}
	if (i > 0) {
		memmove(w->queue, w->queue + i, (w->nqueued - i) *
		    sizeof(*w->queue));
		w->nqueued -= i;
	}
	if (w->nqueued > 0 && event_add(w->send_ev, NULL) == -1)
		log_warnx("worker %d: cannot wait to send commands", w->id);
	return (0);
}

/* Callback: the worker's pipe takes more; send what is queued. */
static void
worker_send_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)worker_flush(arg);
}

/*
 * Send a command to a worker, from the main thread, without ever blocking
 * on a worker that is slow or stuck: what its pipe does not take waits in
 * a queue, sent on, in order, as the pipe takes more.  A RELOAD replaces
 * one still queued last, which keeps the queue as short as the listener
 * changes in it; past WORKER_QUEUE_MAX (a worker stuck for many reloads)
 * a command is dropped, but never a DRAIN or CUT, which always arrive.
 * (A dropped DEL leaves that worker a listener the configuration no
 * longer has; a worker that stuck is cut at shutdown anyway.)
 * Return 0, or -1 (logged) if it cannot be sent; the socket of an ADD is
 * then closed.
 */
int
worker_send(struct worker *w, const struct worker_cmd *cmd)
{
	struct worker_cmd	*q;
	size_t			 cap;

	if (w->ended) {
		/* Nobody reads any more; a socket handed over would leak. */
		worker_cmd_drop(cmd);
		return (-1);
	}
	if (cmd->op == WORKER_CMD_RELOAD && w->nqueued > 0 &&
	    w->queue[w->nqueued - 1].op == WORKER_CMD_RELOAD) {
		w->queue[w->nqueued - 1] = *cmd;
		return (worker_flush(w));
	}
	if (w->nqueued >= WORKER_QUEUE_MAX && cmd->op != WORKER_CMD_DRAIN &&
	    cmd->op != WORKER_CMD_CUT) {
		log_warnx("worker %d takes no commands: %zu queued; one "
		    "dropped", w->id, w->nqueued);
		worker_cmd_drop(cmd);
		return (-1);
	}
	if (w->nqueued == w->queuecap) {
		cap = w->queuecap > 0 ? w->queuecap * 2 : 16;
		if ((q = reallocarray(w->queue, cap, sizeof(*q))) == NULL) {
			log_warnx("worker %d: out of memory for a command",
			    w->id);
			worker_cmd_drop(cmd);
			return (-1);
		}
		w->queue = q;
		w->queuecap = cap;
	}
	w->queue[w->nqueued++] = *cmd;
	return (worker_flush(w));
}

/* Called by conn_free in this worker's thread. */
void
worker_conn_gone(struct worker *w)
{
	if (w->draining) {
		if (w->nconns == 0)
			event_base_loopexit(w->base, NULL);
		return;
	}
	/* A slot or a descriptor is free: paused listeners look again now. */
	listener_wake_all(w);
}

/* Set up worker id of srv: its event base, command pipe and buffers. */
int
worker_init(struct worker *w, struct server *srv, int id)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->srv = srv;
	w->cmd_pipe[0] = w->cmd_pipe[1] = -1;
	w->delay_cap = (size_t)srv->conf.delay_queue;
	TAILQ_INIT(&w->listeners);
	TAILQ_INIT(&w->conns);
	if ((w->base = event_base_new()) == NULL) {
		log_msg(LOG_ERR, "worker %d: cannot create event base", id);
		return (-1);
	}
	/*
	 * Neither side blocks: the worker reads what there is, and the main
	 * thread queues what the pipe does not take (worker_send).
	 */
	if (pipe2(w->cmd_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_msg(LOG_ERR, "worker %d: pipe: %s", id, strerror(errno));
		return (-1);
	}
	w->send_ev = event_new(srv->base, w->cmd_pipe[1], EV_WRITE,
	    worker_send_cb, w);
	if (w->send_ev == NULL) {
		log_msg(LOG_ERR, "worker %d: cannot create event", id);
		return (-1);
	}
	w->cmd_ev = event_new(w->base, w->cmd_pipe[0], EV_READ | EV_PERSIST,
	    worker_cmd_cb, w);
	if (w->cmd_ev == NULL || event_add(w->cmd_ev, NULL) == -1) {
		log_msg(LOG_ERR, "worker %d: cannot create event", id);
		return (-1);
	}
	w->groups = srv->groups;
	atomic_store(&w->groups_seen, w->groups);
	ratelimit_init(&w->rates);
	/* Untouched pages cost nothing: a reload may add UDP later. */
	if ((w->udp = udp_batch_new()) == NULL) {
		log_msg(LOG_ERR, "worker %d: out of memory", id);
		return (-1);
	}
	if (srv->watchdog_usec > 0) {
		struct timeval	 tv = { (time_t)(srv->watchdog_usec / 4000000),
				    (suseconds_t)(srv->watchdog_usec / 4 %
				    1000000) };

		w->heartbeat_ev = event_new(w->base, -1, EV_PERSIST,
		    worker_heartbeat_cb, w);
		if (w->heartbeat_ev == NULL ||
		    event_add(w->heartbeat_ev, &tv) == -1) {
			log_msg(LOG_ERR, "worker %d: cannot create timer", id);
			return (-1);
		}
	}
	return (0);
}

/* The worker thread: run the loop, then tell the main thread. */
static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	unsigned char	 done = (unsigned char)w->id;	/* < 256 workers */
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

/*
 * Drop the commands the worker will never read, in its pipe or still
 * queued, closing the sockets ADD commands carry: a worker whose loop has
 * ended may have been sent some before the main thread knew.
 */
static void
worker_discard_cmds(struct worker *w)
{
	struct worker_cmd	 cmd;
	size_t			 i;

	if (w->cmd_pipe[0] != -1)
		while (read(w->cmd_pipe[0], &cmd, sizeof(cmd)) ==
		    (ssize_t)sizeof(cmd))
			worker_cmd_drop(&cmd);
	for (i = 0; i < w->nqueued; i++)
		worker_cmd_drop(&w->queue[i]);
	w->nqueued = 0;
	free(w->queue);
	w->queue = NULL;
	w->queuecap = 0;
}

/* Release the worker, whose thread must have ended or never started. */
void
worker_free(struct worker *w)
{
	listener_close_all(w);
	w->draining = 1;
	conn_free_all(w);
	fault_worker_free(w);
	udp_delay_free(w);
	if (w->cmd_ev != NULL)
		event_free(w->cmd_ev);
	if (w->send_ev != NULL)
		event_free(w->send_ev);
	worker_discard_cmds(w);
	if (w->heartbeat_ev != NULL)
		event_free(w->heartbeat_ev);
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
	ratelimit_free(&w->rates);
}
