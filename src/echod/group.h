/*
 * Listener groups as the workers see them: the settings of every group of
 * one configuration, by slot.  A group keeps its slot for the life of the
 * process (its counters and per-address counts are kept by slot), so a
 * reload that drops a group keeps it, inactive, for the connections it
 * still has; a reload builds a new set and the workers switch to it.
 */
#ifndef ECHOD_GROUP_H
#define ECHOD_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "conf.h"
#include "fault.h"

#define GROUP_SLOTS	64	/* groups in one run of echod, reloads too */

struct lgroup {
	char			 name[CONF_GROUP_NAMELEN + 1];
	int			 proto;		/* CONF_TCP, CONF_UDP, CONF_TLS */
	int			 type;		/* SOCK_STREAM or SOCK_DGRAM */
	int			 active;	/* in the running configuration */
	struct addr_list	 listen;
	struct cidr_list	 allow, deny;
	uint64_t		 buffer_limit;
	uint64_t		 idle_timeout_ms;
	uint64_t		 max_per_ip;
	uint64_t		 rate, burst;	/* burst: rate when unset */
	int			 proxy;		/* PROXY_V1 | PROXY_V2; 0: off */
	struct cidr_list	 proxy_from;	/* balancers believed */
	uint64_t		 proxy_timeout_ms;
	int			 banner;	/* say who answers, first */
	void			*tls_ctx;	/* TLS, active: its SSL_CTX */
	uint64_t		 handshake_timeout_ms;
	struct fault_profile	 faults;	/* the group's misbehaviour */
	unsigned char		 reflectors[65536 / 8];
};

/* One configuration's groups; read-only once a worker may see it. */
struct groups {
	struct lgroup		*v;		/* by slot */
	unsigned		 n;
	struct groups		*older;		/* retired, freed later */
};

struct groups	*groups_new(const struct conf *, const char *,
		    const struct groups *, char *, size_t);
void		 groups_free(struct groups *);
unsigned	 groups_slot(const struct groups *, int, const struct addr *,
		    const char *);

#endif
