/*
 * A worker's listeners (listener.c): listening TCP sockets and bound UDP
 * sockets in one list, each with its protocol's part (tcp.c, udp.c).
 */
#ifndef ECHOD_LISTENER_H
#define ECHOD_LISTENER_H

#include <sys/queue.h>
#include <sys/socket.h>

#include "addr.h"
#include "conf.h"
#include "group.h"

struct event;
struct evconnlistener;
struct worker;

/* The TCP part of a listener (tcp.c's). */
struct listener_tcp {
	struct evconnlistener	*lev;
	struct event		*retry;		/* resume after a pause */
	int			 paused;
	int			 failing;	/* accept errors logged */
	int			 parked_fd;	/* accepted, waits for a slot */
	struct sockaddr_storage	 parked_sa;
	socklen_t		 parked_len;
	int			 parked_counted; /* by limit_ip_take */
	unsigned		 parked_slot;	/* the group it came to */
	int			 parked_proxy;	/* its PROXY versions, or 0 */
};

/* The UDP part of a listener (udp.c's). */
struct listener_udp {
	int			 fd;
	struct event		*ev;
};

/*
 * A listening TCP socket or bound UDP socket of one worker.  listener.c
 * owns its life; tcp.c and udp.c set up and release their own part.
 */
struct listener {
	TAILQ_ENTRY(listener)	 entry;
	struct worker		*w;
	int			 type;		/* SOCK_STREAM or SOCK_DGRAM */
	struct addr		 addr;		/* as configured */
	int			 inherited;	/* from systemd */
	unsigned		 slot;		/* its group's */
	char			 group[CONF_GROUP_NAMELEN + 1]; /* its name */
	char			 name[ADDR_STRLEN];
	union {
		struct listener_tcp	 tcp;	/* SOCK_STREAM */
		struct listener_udp	 udp;	/* SOCK_DGRAM */
	};
};
TAILQ_HEAD(listener_list, listener);

int	listener_attach(struct worker *, int, int, const struct addr *,
	    const char *, const char *, int);
void	listener_close(struct listener *);
void	listener_close_addr(struct worker *, int, const struct addr *,
	    const char *);
void	listener_drain_all(struct worker *);
void	listener_close_all(struct worker *);
void	listener_regroup(struct worker *);
void	listener_wake_all(struct worker *);
const struct lgroup *listener_group(const struct listener *);

#endif
