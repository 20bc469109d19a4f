/*
 * Connection admission (limit.h).  The per-address table holds one entry
 * per (group, address) with a connection open, so it is bounded by the
 * connections; its hash is keyed with a random seed, so a client cannot
 * aim at a bucket.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "guard.h"
#include "keyhash.h"
#include "limit.h"
#include "stats.h"

#define LIMIT_BUCKETS	4096

struct limit_ip {
	struct limit_ip		*next;
	unsigned char		 key[16];
	int			 family;
	unsigned		 slot;		/* the group's */
	size_t			 count;
};

/* Set up, with no limit until one is stored in max.  Return 0 or -1. */
int
limit_init(struct limit *l)
{
	memset(l, 0, sizeof(*l));
	l->seed = keyhash_seed();
	l->nbuckets = LIMIT_BUCKETS;
	if ((l->buckets = calloc(l->nbuckets, sizeof(*l->buckets))) == NULL)
		return (-1);
	if (pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l->buckets);
		l->buckets = NULL;
		return (-1);
	}
	return (0);
}

/* Free the per-address table. */
void
limit_free(struct limit *l)
{
	struct limit_ip	*e, *next;
	size_t		 i;

	if (l->buckets == NULL)
		return;
	for (i = 0; i < l->nbuckets; i++)
		for (e = l->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(l->buckets);
	l->buckets = NULL;
	pthread_mutex_destroy(&l->mu);
}

/*
 * Take a place under max_connections (any number while draining).  Return
 * 1 if it was the last one, 0 if another, -1 if none is free.
 */
int
limit_take(struct limit *l, int draining)
{
	size_t	 max, n;

	max = draining ? 0 : atomic_load_explicit(&l->max,
	    memory_order_relaxed);
	n = atomic_fetch_add(&l->nconns, 1) + 1;
	if (max > 0 && n > max) {
		/* Another worker took the last place in the same instant. */
		atomic_fetch_sub(&l->nconns, 1);
		return (-1);
	}
	return (max > 0 && n == max);
}

/* Give a place back. */
void
limit_put(struct limit *l)
{
	atomic_fetch_sub(&l->nconns, 1);
}

/* Tell whether max_connections leaves no place. */
int
limit_full(struct limit *l)
{
	size_t	 max = atomic_load_explicit(&l->max, memory_order_relaxed);

	return (max > 0 && atomic_load(&l->nconns) >= max);
}

/*
 * Tell whether a newcomer must leave the places that are free to the
 * clients held on the workers (limit_park).
 */
int
limit_yield(struct limit *l)
{
	size_t		 max;
	unsigned	 held;

	if ((held = atomic_load(&l->nparked)) == 0)
		return (0);
	max = atomic_load_explicit(&l->max, memory_order_relaxed);
	return (max > 0 && atomic_load(&l->nconns) + held >= max);
}

/* A client is held, accepted, until a place is free; or no longer. */
void
limit_park(struct limit *l)
{
	atomic_fetch_add(&l->nparked, 1);
}

void
limit_unpark(struct limit *l)
{
	atomic_fetch_sub(&l->nparked, 1);
}

/* The bucket of sa's address in group slot, and its key. */
static struct limit_ip **
limit_ip_bucket(struct limit *l, unsigned slot, const struct sockaddr *sa,
    unsigned char key[16], int *family)
{
	uint64_t	 h;

	*family = addr_key(sa, key);
	h = keyhash(l->seed + slot, key, *family);
	return (&l->buckets[h % l->nbuckets]);
}

/*
 * Count one more connection from sa's address in group slot, unless it
 * already has max.  Return 0 if counted, -1 if at the limit (or out of
 * memory).
 */
int
limit_ip_take(struct limit *l, unsigned slot, const struct sockaddr *sa,
    uint64_t max)
{
	struct limit_ip	**b, *e;
	unsigned char	 key[16];
	int		 family, rc = 0;

	pthread_mutex_lock(&l->mu);
	b = limit_ip_bucket(l, slot, sa, key, &family);
	for (e = *b; e != NULL; e = e->next)
		if (e->family == family && e->slot == slot &&
		    memcmp(e->key, key, 16) == 0)
			break;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			rc = -1;
		else {
			memcpy(e->key, key, 16);
			e->family = family;
			e->slot = slot;
			e->next = *b;
			*b = e;
		}
	}
	if (e != NULL) {
		if (e->count >= max)
			rc = -1;
		else
			e->count++;
	}
	pthread_mutex_unlock(&l->mu);
	return (rc);
}

/*
 * Admit a client at sa to group g (in slot): its access lists, then its
 * max_connections_per_ip.  Return 1 if admitted and counted (give the
 * count back with limit_ip_put), 0 if admitted, -1 if refused (counted in
 * st by reason).
 */
int
limit_client(struct limit *l, const struct lgroup *g, unsigned slot,
    const struct sockaddr *sa, struct stats *st)
{
	if (!guard_allowed(g, sa)) {
		STAT_ADD(st, tcp_denied, 1);
		return (-1);
	}
	if (g->max_per_ip == 0)
		return (0);
	if (limit_ip_take(l, slot, sa, g->max_per_ip) == -1) {
		STAT_ADD(st, perip_refused, 1);
		return (-1);
	}
	return (1);
}

/* Count one connection from sa's address in group slot less. */
void
limit_ip_put(struct limit *l, unsigned slot, const struct sockaddr *sa)
{
	struct limit_ip	**b, **pe, *e;
	unsigned char	 key[16];
	int		 family;

	pthread_mutex_lock(&l->mu);
	b = limit_ip_bucket(l, slot, sa, key, &family);
	for (pe = b; (e = *pe) != NULL; pe = &e->next) {
		if (e->family != family || e->slot != slot ||
		    memcmp(e->key, key, 16) != 0)
			continue;
		if (--e->count == 0) {
			*pe = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&l->mu);
}
