/*
 * Guards against hostile or broken clients.  Every structure here is
 * bounded: the rate table has a fixed number of slots whatever the number
 * of sources (a new source takes over the slot it hashes to), and the
 * per-address table holds one entry per address with a connection open.
 * The hashes are keyed with random seeds, so a client cannot aim at a slot.
 */
#include "config.h"

#include <sys/random.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"

struct perip_entry {
	struct perip_entry	*next;
	unsigned char		 key[16];
	int			 family;
	size_t			 count;
};

/* A random 64-bit seed. */
static uint64_t
guard_seed(void)
{
	uint64_t	 s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ULL;
	return (s);
}

/* A keyed hash of an address key. */
static uint64_t
guard_hash(uint64_t seed, const unsigned char key[16], int family)
{
	uint64_t	 a, b, h = seed ^ (uint64_t)family;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	h = (h ^ a) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	h = (h ^ b) * 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (h);
}

/* Copy a prefix list.  Return 0 or -1. */
static int
guard_copy_list(struct cidr_list *dst, const struct cidr_list *src)
{
	dst->n = 0;
	dst->v = NULL;
	if (src->n == 0)
		return (0);
	if ((dst->v = calloc(src->n, sizeof(*dst->v))) == NULL)
		return (-1);
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = src->n;
	return (0);
}

/* The guard settings of conf, as a worker reads them.  NULL if no memory. */
struct guard *
guard_new(const struct conf *conf)
{
	struct guard	*g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return (NULL);
	if (guard_copy_list(&g->tcp_allow, &conf->tcp_allow) == -1 ||
	    guard_copy_list(&g->tcp_deny, &conf->tcp_deny) == -1 ||
	    guard_copy_list(&g->udp_allow, &conf->udp_allow) == -1 ||
	    guard_copy_list(&g->udp_deny, &conf->udp_deny) == -1) {
		guard_free(g);
		return (NULL);
	}
	g->tcp_max_per_ip = conf->tcp_max_per_ip;
	memcpy(g->reflectors, conf->udp_reflectors, sizeof(g->reflectors));
	g->rate = conf->udp_rate_limit;
	g->burst = conf->udp_burst > 0 ? conf->udp_burst : conf->udp_rate_limit;
	return (g);
}

/* Free a guard and every older one retired behind it. */
void
guard_free(struct guard *g)
{
	struct guard	*older;

	for (; g != NULL; g = older) {
		older = g->older;
		free(g->tcp_allow.v);
		free(g->tcp_deny.v);
		free(g->udp_allow.v);
		free(g->udp_deny.v);
		free(g);
	}
}

/*
 * Tell whether an access list lets sa in: not in deny, and in allow if
 * allow is not empty.
 */
int
guard_allowed(const struct cidr_list *allow, const struct cidr_list *deny,
    const struct sockaddr *sa)
{
	if (cidr_list_match(deny, sa))
		return (0);
	return (allow->n == 0 || cidr_list_match(allow, sa));
}

/* Set up an empty rate table; its slots come on first use. */
int
rate_table_init(struct rate_table *t)
{
	t->seed = guard_seed();
	t->slots = NULL;
	return (0);
}

/* Free a rate table. */
void
rate_table_free(struct rate_table *t)
{
	free(t->slots);
	t->slots = NULL;
}

/*
 * Take a token from the bucket of sa's address at time now_ms.  Return
 * 1 if there was one, 0 if the source is over its rate.
 */
static int
rate_take(const struct guard *g, struct rate_table *t,
    const struct sockaddr *sa, uint32_t now_ms)
{
	struct rate_slot	*s;
	unsigned char		 key[16];
	int			 family = addr_key(sa, key);
	float			 tokens;

	if (t->slots == NULL &&
	    (t->slots = calloc(RATE_SLOTS, sizeof(*t->slots))) == NULL)
		return (1);	/* fail open rather than drop everyone */
	s = &t->slots[guard_hash(t->seed, key, family) % RATE_SLOTS];
	if (s->family != (unsigned char)family ||
	    memcmp(s->key, key, sizeof(key)) != 0) {
		/* A new source, or one that took this slot over. */
		memcpy(s->key, key, sizeof(key));
		s->family = (unsigned char)family;
		s->tokens = (float)g->burst;
		s->last_ms = now_ms;
	}
	tokens = s->tokens + (float)(now_ms - s->last_ms) * (float)g->rate /
	    1000.0f;
	s->last_ms = now_ms;
	if (tokens > (float)g->burst)
		tokens = (float)g->burst;
	if (tokens < 1.0f) {
		s->tokens = tokens;
		return (0);
	}
	s->tokens = tokens - 1.0f;
	return (1);
}

/* Decide whether a datagram from sa may be echoed (GUARD_PASS) or why not. */
int
guard_udp(const struct guard *g, struct rate_table *t,
    const struct sockaddr *sa, uint32_t now_ms)
{
	unsigned	 port;

	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	else
		return (GUARD_DENIED);
	if ((g->reflectors[port / 8] >> (port % 8)) & 1)
		return (GUARD_REFLECTOR);
	if (!guard_allowed(&g->udp_allow, &g->udp_deny, sa))
		return (GUARD_DENIED);
	if (g->rate > 0 && !rate_take(g, t, sa, now_ms))
		return (GUARD_RATE);
	return (GUARD_PASS);
}

/* Set up the per-address table.  Return 0 or -1. */
int
perip_init(struct perip *p)
{
	p->seed = guard_seed();
	p->nbuckets = 4096;
	if ((p->buckets = calloc(p->nbuckets, sizeof(*p->buckets))) == NULL)
		return (-1);
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p->buckets);
		p->buckets = NULL;
		return (-1);
	}
	return (0);
}

/* Free the per-address table. */
void
perip_free(struct perip *p)
{
	struct perip_entry	*e, *next;
	size_t			 i;

	if (p->buckets == NULL)
		return;
	for (i = 0; i < p->nbuckets; i++)
		for (e = p->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(p->buckets);
	p->buckets = NULL;
	pthread_mutex_destroy(&p->mu);
}

/* The bucket of sa's address and its key. */
static struct perip_entry **
perip_bucket(struct perip *p, const struct sockaddr *sa,
    unsigned char key[16], int *family)
{
	*family = addr_key(sa, key);
	return (&p->buckets[guard_hash(p->seed, key, *family) % p->nbuckets]);
}

/*
 * Count one more connection from sa's address, unless it already has max.
 * Return 0 if counted, -1 if at the limit (or out of memory).
 */
int
perip_add(struct perip *p, const struct sockaddr *sa, size_t max)
{
	struct perip_entry	**b, *e;
	unsigned char		 key[16];
	int			 family, rc = 0;

	pthread_mutex_lock(&p->mu);
	b = perip_bucket(p, sa, key, &family);
	for (e = *b; e != NULL; e = e->next)
		if (e->family == family && memcmp(e->key, key, 16) == 0)
			break;
	if (e == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			rc = -1;
		else {
			memcpy(e->key, key, 16);
			e->family = family;
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
	pthread_mutex_unlock(&p->mu);
	return (rc);
}

/* Count one connection from sa's address less. */
void
perip_del(struct perip *p, const struct sockaddr *sa)
{
	struct perip_entry	**b, **pe, *e;
	unsigned char		 key[16];
	int			 family;

	pthread_mutex_lock(&p->mu);
	b = perip_bucket(p, sa, key, &family);
	for (pe = b; (e = *pe) != NULL; pe = &e->next) {
		if (e->family != family || memcmp(e->key, key, 16) != 0)
			continue;
		if (--e->count == 0) {
			*pe = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&p->mu);
}
