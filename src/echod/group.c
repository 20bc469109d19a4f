/*
 * Building a set of listener groups from a configuration (group.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "tls.h"

/* Copy n elements of size sz from src to *dst.  Return 0 or -1. */
static int
group_copy(void *dst, const void *src, size_t n, size_t sz)
{
	void	*v = NULL;

	if (n > 0) {
		if ((v = calloc(n, sz)) == NULL)
			return (-1);
		memcpy(v, src, n * sz);
	}
	*(void **)dst = v;
	return (0);
}

/* Balancers believed when proxy_from is not set: this host. */
static const char *const group_loopback[] = { "127.0.0.0/8", "::1/128" };

/* Set the default proxy_from.  Return 0 or -1. */
static int
group_proxy_default(struct cidr_list *l)
{
	const char	*why;
	size_t		 i;

	if ((l->v = calloc(2, sizeof(*l->v))) == NULL)
		return (-1);
	for (i = 0; i < 2; i++)
		if (cidr_parse(group_loopback[i], &l->v[i], &why) == -1)
			abort();	/* they are valid */
	l->n = 2;
	return (0);
}

/*
 * Fill g from the configured group cg (of file).  Return 0, or -1 with the
 * reason in err.
 */
static int
group_set(struct lgroup *g, const struct conf_group *cg, const char *file,
    char *err, size_t errlen)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", cg->name);
	g->proto = cg->proto;
	g->type = cg->type;
	g->handshake_timeout_ms = cg->handshake_timeout_ms;
	/* A new context each time: a reload reads the files again. */
	if (cg->proto == CONF_TLS && cg->listen.n > 0 &&
	    (g->tls_ctx = tls_ctx_new(file, cg, err, errlen)) == NULL)
		return (-1);
	snprintf(err, errlen, "out of memory");
	g->active = 1;
	g->buffer_limit = cg->buffer_limit;
	g->idle_timeout_ms = cg->idle_timeout_ms;
	g->max_per_ip = cg->max_per_ip;
	g->rate = cg->rate_limit;
	g->burst = cg->burst > 0 ? cg->burst : cg->rate_limit;
	g->proxy = (int)cg->proxy;
	g->proxy_timeout_ms = cg->proxy_timeout_ms;
	g->banner = (int)cg->banner;
	fault_profile_set(&g->faults, cg);
	g->proxy_from.n = cg->proxy_from.n;
	memcpy(g->reflectors, cg->reflectors, sizeof(g->reflectors));
	g->listen.n = cg->listen.n;
	g->allow.n = cg->allow.n;
	g->deny.n = cg->deny.n;
	if (group_copy(&g->listen.v, cg->listen.v, cg->listen.n,
	    sizeof(*cg->listen.v)) == -1 ||
	    group_copy(&g->allow.v, cg->allow.v, cg->allow.n,
	    sizeof(*cg->allow.v)) == -1 ||
	    group_copy(&g->deny.v, cg->deny.v, cg->deny.n,
	    sizeof(*cg->deny.v)) == -1 ||
	    group_copy(&g->proxy_from.v, cg->proxy_from.v, cg->proxy_from.n,
	    sizeof(*cg->proxy_from.v)) == -1)
		return (-1);
	if (g->proxy_from.n == 0)
		return (group_proxy_default(&g->proxy_from));
	return (0);
}

/* Keep g, dropped from the configuration, for its open connections. */
static int
group_keep(struct lgroup *g, const struct lgroup *old)
{
	*g = *old;
	g->active = 0;
	g->tls_ctx = NULL;	/* no new handshakes; the SSLs hold theirs */
	g->listen.v = NULL;
	g->listen.n = 0;
	g->allow.v = g->deny.v = g->proxy_from.v = NULL;
	if (group_copy(&g->allow.v, old->allow.v, old->allow.n,
	    sizeof(*old->allow.v)) == -1 ||
	    group_copy(&g->deny.v, old->deny.v, old->deny.n,
	    sizeof(*old->deny.v)) == -1 ||
	    group_copy(&g->proxy_from.v, old->proxy_from.v, old->proxy_from.n,
	    sizeof(*old->proxy_from.v)) == -1)
		return (-1);
	return (0);
}

/* The slot of the group of type named name in gs, or -1. */
static int
groups_find(const struct groups *gs, int type, const char *name)
{
	unsigned	 i;

	for (i = 0; gs != NULL && i < gs->n; i++)
		if (gs->v[i].type == type && strcmp(gs->v[i].name, name) == 0)
			return ((int)i);
	return (-1);
}

/*
 * The groups of conf, each in the slot it had in prev (NULL at start-up),
 * new ones in new slots, and prev's other groups kept inactive.  Return
 * the set, or NULL with the reason in err.
 */
struct groups *
groups_new(const struct conf *conf, const char *file,
    const struct groups *prev, char *err, size_t errlen)
{
	struct groups	*gs;
	const struct conf_group *cg;
	unsigned	 i, n = prev != NULL ? prev->n : 0, total = n;
	int		 slot;

	for (i = 0; i < conf->ngroups; i++)
		if (groups_find(prev, conf->groups[i].type,
		    conf->groups[i].name) == -1)
			total++;
	if (total > GROUP_SLOTS) {
		snprintf(err, errlen, "more than %d groups since echod started; "
		    "restart it to use new group names", GROUP_SLOTS);
		return (NULL);
	}
	if ((gs = calloc(1, sizeof(*gs))) == NULL ||
	    (gs->v = calloc(total, sizeof(*gs->v))) == NULL)
		goto nomem;
	gs->n = n;
	for (i = 0; i < conf->ngroups; i++) {
		cg = &conf->groups[i];
		if ((slot = groups_find(prev, cg->type, cg->name)) == -1)
			slot = (int)gs->n++;
		if (group_set(&gs->v[slot], cg, file, err, errlen) == -1) {
			groups_free(gs);
			return (NULL);
		}
	}
	for (i = 0; i < n; i++)
		if (!gs->v[i].active && group_keep(&gs->v[i], &prev->v[i]) == -1)
			goto nomem;
	return (gs);
nomem:
	snprintf(err, errlen, "out of memory");
	groups_free(gs);
	return (NULL);
}

/* Free a set and every older one retired behind it. */
void
groups_free(struct groups *gs)
{
	struct groups	*older;
	unsigned	 i;

	for (; gs != NULL; gs = older) {
		older = gs->older;
		for (i = 0; gs->v != NULL && i < gs->n; i++) {
			free(gs->v[i].listen.v);
			free(gs->v[i].allow.v);
			free(gs->v[i].deny.v);
			free(gs->v[i].proxy_from.v);
			tls_ctx_free(gs->v[i].tls_ctx);
		}
		free(gs->v);
		free(gs);
	}
}

/*
 * The slot of the group of type that listens on a, the one named prefer
 * (or NULL) if several do (port 0); for an address no group names (a
 * socket from systemd), the unnamed group of type.
 */
unsigned
groups_slot(const struct groups *gs, int type, const struct addr *a,
    const char *prefer)
{
	unsigned	 i, found = gs->n;
	size_t		 j;

	for (i = 0; i < gs->n; i++) {
		if (gs->v[i].type != type || !gs->v[i].active)
			continue;
		for (j = 0; j < gs->v[i].listen.n; j++) {
			if (!addr_equal(&gs->v[i].listen.v[j], a))
				continue;
			if (prefer == NULL || strcmp(gs->v[i].name, prefer) == 0)
				return (i);
			if (found == gs->n)
				found = i;
		}
	}
	if (found < gs->n)
		return (found);
	/* Every set has both unnamed groups, in slots 0 and 1. */
	if (groups_find(gs, type, CONF_DEFAULT_GROUP) == -1)
		abort();
	return ((unsigned)groups_find(gs, type, CONF_DEFAULT_GROUP));
}
