/*
 * Unit tests for worker.c's command channel: the main thread never blocks
 * on a worker that does not read, commands arrive whole and in order, and
 * sockets in commands that will never be read are closed.
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "server.h"
#include "worker.h"

/* A server with one worker whose thread never runs: it reads nothing. */
static void
setup(struct server *srv, struct worker *w)
{
	memset(srv, 0, sizeof(*srv));
	assert_non_null(srv->base = event_base_new());
	assert_int_equal(worker_init(w, srv, 0), 0);
}

/* Read the commands in the worker's pipe; return how many, checking order. */
static int
drain_pipe(struct worker *w, int *next)
{
	struct worker_cmd	 cmd;
	int			 n = 0;

	while (read(w->cmd_pipe[0], &cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd)) {
		assert_int_equal(cmd.gen, (uint64_t)*next);
		(*next)++;
		n++;
	}
	return (n);
}

static void
test_send_never_blocks(void **state)
{
	struct server		 srv;
	struct worker		 w;
	struct worker_cmd	 cmd;
	int			 i, next = 0, got, loops;

	setup(&srv, &w);
	memset(&cmd, 0, sizeof(cmd));
	cmd.fd = -1;
	/*
	 * Far more than a pipe holds: it used to block for good here.  DEL
	 * commands (never merged), numbered in gen to check their order.
	 */
	cmd.op = WORKER_CMD_DEL;
	for (i = 0; i < 2000; i++) {
		cmd.gen = (uint64_t)i;
		assert_int_equal(worker_send(&w, &cmd), 0);
	}
	assert_true(w.nqueued > 0);
	/* As the worker reads, the queue follows, whole and in order. */
	got = drain_pipe(&w, &next);
	for (loops = 0; w.nqueued > 0 && loops < 1000; loops++) {
		/* 1: no event left once the last one ran. */
		assert_int_not_equal(event_base_loop(srv.base,
		    EVLOOP_NONBLOCK), -1);
		got += drain_pipe(&w, &next);
	}
	got += drain_pipe(&w, &next);
	assert_int_equal(w.nqueued, 0);
	assert_int_equal(got, 2000);
	worker_free(&w);
	event_base_free(srv.base);
}

/* Reloads queued back to back become one: the newest. */
static void
test_reloads_merge(void **state)
{
	struct server		 srv;
	struct worker		 w;
	struct worker_cmd	 cmd, back;
	size_t			 before;

	setup(&srv, &w);
	memset(&cmd, 0, sizeof(cmd));
	cmd.fd = -1;
	cmd.op = WORKER_CMD_DEL;
	while (w.nqueued == 0)			/* fill the pipe */
		assert_int_equal(worker_send(&w, &cmd), 0);
	before = w.nqueued;
	cmd.op = WORKER_CMD_RELOAD;
	cmd.gen = 1;
	assert_int_equal(worker_send(&w, &cmd), 0);
	cmd.gen = 2;
	assert_int_equal(worker_send(&w, &cmd), 0);
	assert_int_equal(w.nqueued, before + 1);
	back = w.queue[w.nqueued - 1];
	assert_int_equal(back.op, WORKER_CMD_RELOAD);
	assert_int_equal(back.gen, 2);
	worker_free(&w);
	event_base_free(srv.base);
}

/* Sockets in ADD commands the worker never read, queued or in its pipe. */
static void
test_unread_sockets_are_closed(void **state)
{
	struct server		 srv;
	struct worker		 w;
	struct worker_cmd	 cmd;
	int			 inpipe[2], queued[2];

	setup(&srv, &w);
	memset(&cmd, 0, sizeof(cmd));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, inpipe), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, queued), 0);
	cmd.op = WORKER_CMD_ADD;
	cmd.fd = inpipe[0];
	assert_int_equal(worker_send(&w, &cmd), 0);
	assert_int_equal(w.nqueued, 0);		/* it went into the pipe */
	cmd.op = WORKER_CMD_DEL;
	cmd.fd = -1;
	while (w.nqueued == 0)			/* fill the pipe */
		assert_int_equal(worker_send(&w, &cmd), 0);
	cmd.op = WORKER_CMD_ADD;
	cmd.fd = queued[0];
	assert_int_equal(worker_send(&w, &cmd), 0);
	assert_int_not_equal(fcntl(inpipe[0], F_GETFD), -1);
	assert_int_not_equal(fcntl(queued[0], F_GETFD), -1);
	/* The worker ended without reading them: freeing closes both. */
	worker_free(&w);
	assert_int_equal(fcntl(inpipe[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(fcntl(queued[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(inpipe[1]);
	close(queued[1]);
	event_base_free(srv.base);
}

/* A stuck worker's queue is bounded; a DRAIN and a CUT still go in. */
static void
test_queue_bounded(void **state)
{
	struct server		 srv;
	struct worker		 w;
	struct worker_cmd	 cmd;
	int			 fds[2];

	setup(&srv, &w);
	memset(&cmd, 0, sizeof(cmd));
	cmd.fd = -1;
	cmd.op = WORKER_CMD_DEL;
	while (w.nqueued < WORKER_QUEUE_MAX)
		assert_int_equal(worker_send(&w, &cmd), 0);
	assert_int_equal(worker_send(&w, &cmd), -1);
	assert_int_equal(w.nqueued, WORKER_QUEUE_MAX);
	/* The socket of an ADD that cannot be queued is closed. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	cmd.op = WORKER_CMD_ADD;
	cmd.fd = fds[0];
	assert_int_equal(worker_send(&w, &cmd), -1);
	assert_int_equal(fcntl(fds[0], F_GETFD), -1);
	close(fds[1]);
	cmd.fd = -1;
	cmd.op = WORKER_CMD_DRAIN;
	assert_int_equal(worker_send(&w, &cmd), 0);
	cmd.op = WORKER_CMD_CUT;
	assert_int_equal(worker_send(&w, &cmd), 0);
	assert_int_equal(w.nqueued, WORKER_QUEUE_MAX + 2);
	assert_int_equal(w.queue[w.nqueued - 1].op, WORKER_CMD_CUT);
	worker_free(&w);
	event_base_free(srv.base);
}

static void
test_ended_worker_gets_nothing(void **state)
{
	struct server		 srv;
	struct worker		 w;
	struct worker_cmd	 cmd;
	int			 fds[2];

	setup(&srv, &w);
	w.ended = 1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	memset(&cmd, 0, sizeof(cmd));
	cmd.op = WORKER_CMD_ADD;
	cmd.fd = fds[0];
	assert_int_equal(worker_send(&w, &cmd), -1);
	assert_int_equal(fcntl(fds[0], F_GETFD), -1);
	close(fds[1]);
	worker_free(&w);
	event_base_free(srv.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_never_blocks),
		cmocka_unit_test(test_reloads_merge),
		cmocka_unit_test(test_unread_sockets_are_closed),
		cmocka_unit_test(test_ended_worker_gets_nothing),
		cmocka_unit_test(test_queue_bounded),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
