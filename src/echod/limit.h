/*
 * Connection admission, shared by the workers: max_connections over the
 * whole server, the clients held waiting for a place, and the count of
 * open connections per client address within each group
 * (max_connections_per_ip).  Take a place with limit_take, give it back
 * with limit_put; the same for an address with limit_ip_take/put.
 */
#ifndef ECHOD_LIMIT_H
#define ECHOD_LIMIT_H

#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct limit_ip;

struct limit {
	_Atomic size_t		 max;		/* max_connections; 0: none */
	_Atomic size_t		 nconns;	/* open, over all workers */
	_Atomic unsigned	 nparked;	/* accepted, held for a place */
	_Atomic int		 full;		/* at max: logged once */
	pthread_mutex_t		 mu;		/* the per-address table */
	uint64_t		 seed;
	struct limit_ip		**buckets;
	size_t			 nbuckets;
};

int	limit_init(struct limit *);
void	limit_free(struct limit *);
int	limit_take(struct limit *, int);
void	limit_put(struct limit *);
int	limit_full(struct limit *);
int	limit_yield(struct limit *);
void	limit_park(struct limit *);
void	limit_unpark(struct limit *);
int	limit_ip_take(struct limit *, unsigned, const struct sockaddr *,
	    uint64_t);
void	limit_ip_put(struct limit *, unsigned, const struct sockaddr *);

struct lgroup;
struct stats;
int	limit_client(struct limit *, const struct lgroup *, unsigned,
	    const struct sockaddr *, struct stats *);

#endif
