/*
 * Hostile-input guards: access lists, the UDP reflection guard, per-source
 * UDP rate limits and per-address TCP connection limits.
 */
#ifndef ECHOD_GUARD_H
#define ECHOD_GUARD_H

#include <sys/socket.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "conf.h"
#include "ratelimit.h"

/* A worker's read-only view of the guard settings of one configuration. */
struct guard {
	struct cidr_list	 tcp_allow, tcp_deny;
	struct cidr_list	 udp_allow, udp_deny;
	size_t			 tcp_max_per_ip;
	unsigned char		 reflectors[65536 / 8];
	uint64_t		 rate, burst;
	struct guard		*older;		/* retired, freed at exit */
};

/* Open connections per client address, shared by the workers. */
struct perip_entry;
struct perip {
	pthread_mutex_t		 mu;
	uint64_t		 seed;
	struct perip_entry	**buckets;
	size_t			 nbuckets;
};

struct guard	*guard_new(const struct conf *);
void		 guard_free(struct guard *);
int		 guard_allowed(const struct cidr_list *,
		    const struct cidr_list *, const struct sockaddr *);

#define GUARD_PASS		0
#define GUARD_REFLECTOR		1
#define GUARD_RATE		2
#define GUARD_DENIED		3
int		 guard_udp(const struct guard *, struct ratelimit *,
		    const struct sockaddr *, uint32_t);

int		 perip_init(struct perip *);
void		 perip_free(struct perip *);
int		 perip_add(struct perip *, const struct sockaddr *, size_t);
void		 perip_del(struct perip *, const struct sockaddr *);

#endif
