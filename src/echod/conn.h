/*
 * TCP clients (conn.c): each accepted socket becomes a connection whose
 * bufferevent echoes what it reads.  Its state is conn.c's and drain.c's
 * alone (connpriv.h).
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <sys/queue.h>
#include <sys/socket.h>

struct conn;
struct worker;
TAILQ_HEAD(conn_list, conn);

void	conn_new(struct worker *, unsigned, int, const struct sockaddr *,
	    socklen_t, int, int);
void	conn_update_all(struct worker *);
void	conn_free_all(struct worker *);

#endif
