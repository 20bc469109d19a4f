/*
 * Guards against hostile or broken clients: access lists, reflector
 * ports, the UDP rate limit (ratelimit.c) and the per-address TCP limit.
 * Every structure here is bounded: the per-address table holds one entry
 * per address with a connection open, and its hash is keyed with a random
 * seed, so a client cannot aim at a bucket.
 */
#include "config.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "guard.h"
#include "keyhash.h"

struct perip_entry {
	struct perip_entry	*next;
	unsigned char		 key[16];
	int			 family;
	size_t			 count;
};

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

/* Decide whether a datagram from sa may be echoed (GUARD_PASS) or why not. */
int
guard_udp(const struct guard *g, struct ratelimit *t,
    const struct sockaddr *sa, uint32_t now_ms)
{
	unsigned	 port;

	if (sa->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	else if (sa->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	else
		return (GUARD_DENIED);
	if (PORTSET_HAS(g->reflectors, port))
		return (GUARD_REFLECTOR);
	if (!guard_allowed(&g->udp_allow, &g->udp_deny, sa))
		return (GUARD_DENIED);
	if (g->rate > 0 && !ratelimit_take(t, g->rate, g->burst, sa, now_ms))
		return (GUARD_RATE);
	return (GUARD_PASS);
}

/* Set up the per-address table.  Return 0 or -1. */
int
perip_init(struct perip *p)
{
	p->seed = keyhash_seed();
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
	return (&p->buckets[keyhash(p->seed, key, *family) % p->nbuckets]);
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
