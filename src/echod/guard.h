/*
 * Hostile-input guards of a listener group: access lists, the UDP
 * reflection guard and the per-source UDP rate limit (ratelimit.c).
 */
#ifndef ECHOD_GUARD_H
#define ECHOD_GUARD_H

#include <sys/socket.h>
#include <stdint.h>

#include "addr.h"
#include "group.h"
#include "ratelimit.h"

int		 guard_allowed(const struct lgroup *, const struct sockaddr *);

#define GUARD_PASS		0
#define GUARD_REFLECTOR		1
#define GUARD_RATE		2
#define GUARD_DENIED		3
int		 guard_udp(const struct lgroup *, unsigned, struct ratelimit *,
		    const struct sockaddr *, uint32_t);

#endif
