/*
 * The TCP faults' own (fault.c, fault_tcp.c, fault_end.c): a connection's
 * fault state and what the three files share of it.
 */
#ifndef ECHOD_FAULTPRIV_H
#define ECHOD_FAULTPRIV_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "fault.h"

struct bufferevent_rate_limit_group;
struct conn;
struct evbuffer;
struct event;
struct ev_token_bucket_cfg;
struct worker;

#define FAULT_QLEN	16		/* due times per connection, first */
#define FAULT_QMAX	1024		/* ... at most */
#define FAULT_MERGE_US	1000		/* reads this close share one */
#define FAULT_TICK_MS	100		/* bandwidth's bucket: 1/10 s */
#define FAULT_ACK_POLL_MS 10		/* reset: look for the last ACK, */
#define FAULT_ACK_MAX_MS 10000		/* at most this long */
#define FAULT_STALL_POLL_MS 1000	/* stalled: is the client gone? */
#define FAULT_LINGER_MS	10000		/* closed: the client's FIN, at most */

enum fault_state {
	FAULT_ECHO,		/* as any connection, with its faults */
	FAULT_RESET,		/* reset_after: echo the rest, then a RST */
	FAULT_STALL,		/* stall_after: nothing more, kept open */
	FAULT_CLOSE,		/* close_after: echo the rest, then a FIN */
	FAULT_CLOSED		/* close_after: FIN sent, wait for theirs */
};

struct conn_fault {
	struct fault_profile	 p;	/* the group's, at accept */
	struct evbuffer		*held;	/* read, not yet due */
	struct fault_due {
		uint64_t	 due_us;
		uint64_t	 first_us;	/* its first read's due time */
		size_t		 len;
	}			*q;		/* held's bytes, in order: */
	unsigned		 qhead, qlen, qcap;	/* a ring */
	uint64_t		 gap_until_us;	/* slice_gap: no write before */
	uint64_t		 taken;		/* bytes taken to echo */
	uint64_t		 budget;	/* reset or stall after this */
	int			 at_budget;	/* FAULT_RESET or FAULT_STALL */
	enum fault_state	 state;
	uint64_t		 since_ms;	/* in this state since */
	uint64_t		 wait_ms;	/* reset: the ACK awaited since */
	struct event		*timer;		/* the pump's, then the state's */
	struct event		*closer;	/* close_after */
	struct event		*poke;		/* TLS: OpenSSL holds plaintext */
	struct ev_token_bucket_cfg *rate;	/* bandwidth */
};

/* fault.c */
uint64_t fault_share(const struct worker *, uint64_t);
struct bufferevent_rate_limit_group *fault_rate_set(struct worker *,
	    unsigned, uint64_t);

/* fault_tcp.c */
int	 fault_arm(struct conn *, uint64_t);

/* fault_end.c */
void	 fault_closer_cb(evutil_socket_t, short, void *);
int	 fault_at_budget(struct conn *);
int	 fault_settle(struct conn *);

#endif
