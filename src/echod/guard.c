/*
 * Guards against hostile or broken clients, per listener group: access
 * lists, reflector ports and the UDP rate limit (ratelimit.c).  The
 * per-address TCP limit is admission's (limit.c).
 */
#include "config.h"

#include <netinet/in.h>

#include "guard.h"

/*
 * Tell whether group g's access lists let sa in: not in deny, and in allow
 * if allow is not empty.
 */
int
guard_allowed(const struct lgroup *g, const struct sockaddr *sa)
{
	if (cidr_list_match(&g->deny, sa))
		return (0);
	return (g->allow.n == 0 || cidr_list_match(&g->allow, sa));
}

/*
 * Decide whether a datagram from sa to group g (in slot) may be echoed
 * (GUARD_PASS) or why not.
 */
int
guard_udp(const struct lgroup *g, unsigned slot, struct ratelimit *t,
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
	if (!guard_allowed(g, sa))
		return (GUARD_DENIED);
	if (g->rate > 0 &&
	    !ratelimit_take(t, slot, g->rate, g->burst, sa, now_ms))
		return (GUARD_RATE);
	return (GUARD_PASS);
}
