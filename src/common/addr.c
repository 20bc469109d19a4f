/*
 * Parsing and printing of numeric socket addresses.  A pure leaf: no
 * sockets are opened and nothing is logged, so it can be tested from strings.
 */
#include "config.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "units.h"

/* Parse a decimal port number, 0 to 65535. */
static int
addr_parse_port(const char *s, in_port_t *port)
{
	uint64_t	 v;

	if (units_number(s, 0, 65535, &v) == -1)
		return (-1);
	*port = htons((in_port_t)v);
	return (0);
}

/*
 * Parse the scope of a link-local IPv6 address, the part after '%': an
 * interface index, or a name kept in a->ifname for listen.c to look up when
 * binding (so that parsing needs no interface of this host).  Return 0,
 * or -1 with a reason in *why.
 */
static int
addr_parse_scope(const char *s, struct addr *a, const char **why)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a->ss;
	uint64_t		 v;
	size_t			 len = strlen(s);

	*why = "scope must be an interface name or index";
	if (*s >= '0' && *s <= '9') {
		if (units_number(s, 1, UINT32_MAX, &v) == -1)
			return (-1);
		sin6->sin6_scope_id = (uint32_t)v;
		return (0);
	}
	if (len == 0 || len >= sizeof(a->ifname) ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-@") != len)
		return (-1);
	memcpy(a->ifname, s, len + 1);
	return (0);
}

/*
 * Parse "HOST:PORT" where HOST is a dotted IPv4 address or a bracketed IPv6
 * address, which may carry a scope ("[fe80::1%eth0]:7") if link-local.  On
 * failure return -1 and point *why at a short reason.
 */
int
addr_parse(const char *s, struct addr *a, const char **why)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a->ss;
	char			 host[INET6_ADDRSTRLEN + 16];
	char			*pct = NULL;
	const char		*colon, *hs;
	size_t			 hl;
	in_port_t		 port;

	memset(a, 0, sizeof(*a));
	if (*s == '[') {
		hs = s + 1;
		colon = strchr(hs, ']');
		if (colon == NULL) {
			*why = "missing ']' after IPv6 address";
			return (-1);
		}
		hl = (size_t)(colon - hs);
		colon++;
		if (*colon != ':') {
			*why = "missing ':PORT' after ']'";
			return (-1);
		}
	} else {
		hs = s;
		colon = strrchr(s, ':');
		if (colon == NULL) {
			*why = "missing ':PORT'";
			return (-1);
		}
		hl = (size_t)(colon - hs);
		if (memchr(hs, ':', hl) != NULL) {
			*why = "IPv6 addresses must be written as [ADDRESS]:PORT";
			return (-1);
		}
	}
	if (hl == 0 || hl >= sizeof(host)) {
		*why = hl == 0 ? "missing host" : "host too long";
		return (-1);
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (addr_parse_port(colon + 1, &port) == -1) {
		*why = "port must be a number from 0 to 65535";
		return (-1);
	}

	if (*s == '[') {
		if ((pct = strchr(host, '%')) != NULL) {
			*pct++ = '\0';
			if (addr_parse_scope(pct, a, why) == -1)
				return (-1);
		}
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = "not a numeric IPv6 address";
			return (-1);
		}
		if (pct != NULL && !IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr) &&
		    !IN6_IS_ADDR_MC_LINKLOCAL(&sin6->sin6_addr)) {
			*why = "a scope (%IF) is only for link-local addresses";
			return (-1);
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		a->len = sizeof(*sin6);
	} else {
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*why = "not a numeric IPv4 address";
			return (-1);
		}
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		a->len = sizeof(*sin);
	}
	return (0);
}

/* Tell whether two parsed addresses are the same address and port. */
int
addr_equal(const struct addr *a, const struct addr *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->ss.ss_family != b->ss.ss_family)
		return (0);
	if (a->ss.ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)&a->ss;
		b4 = (const struct sockaddr_in *)&b->ss;
		return (a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr);
	}
	a6 = (const struct sockaddr_in6 *)&a->ss;
	b6 = (const struct sockaddr_in6 *)&b->ss;
	return (a6->sin6_port == b6->sin6_port &&
	    a6->sin6_scope_id == b6->sin6_scope_id &&
	    strcmp(a->ifname, b->ifname) == 0 &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0);
}

/* Tell whether a is an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
int
addr_is_v4mapped(const struct addr *a)
{
	return (a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(
	    &((const struct sockaddr_in6 *)&a->ss)->sin6_addr));
}

/* Write an address as "1.2.3.4:5" or "[::1]:5" into buf and return buf. */
const char *
addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)sa;
	char				 host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET && len >= sizeof(*sin) &&
	    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) != NULL)
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
	else if (sa->sa_family == AF_INET6 && len >= sizeof(*sin6) &&
	    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) != NULL) {
		if (sin6->sin6_scope_id != 0)
			snprintf(buf, size, "[%s%%%u]:%u", host,
			    (unsigned)sin6->sin6_scope_id,
			    ntohs(sin6->sin6_port));
		else
			snprintf(buf, size, "[%s]:%u", host,
			    ntohs(sin6->sin6_port));
	}
	else
		snprintf(buf, size, "(unknown address family %d)",
		    (int)sa->sa_family);
	return (buf);
}

/* Write a parsed address as it was configured, scope name included. */
const char *
addr_name(const struct addr *a, char *buf, size_t size)
{
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)&a->ss;
	char				 host[INET6_ADDRSTRLEN];

	if (a->ifname[0] == '\0' || a->ss.ss_family != AF_INET6 ||
	    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) == NULL)
		return (addr_format((const struct sockaddr *)&a->ss, a->len,
		    buf, size));
	snprintf(buf, size, "[%s%%%s]:%u", host, a->ifname,
	    ntohs(sin6->sin6_port));
	return (buf);
}

/*
 * Parse "ADDRESS/BITS" or a lone address (all bits), IPv4 or IPv6 (no
 * brackets).  Host bits beyond the prefix must be zero, so that
 * "10.1.2.3/8" is caught as a likely mistake.  Return 0, or -1 with a
 * reason in *why.
 */
int
cidr_parse(const char *s, struct cidr *c, const char **why)
{
	char		 host[INET6_ADDRSTRLEN];
	const char	*slash = strchr(s, '/');
	size_t		 hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t	 bits;
	unsigned	 i, max;

	memset(c, 0, sizeof(*c));
	if (hl == 0 || hl >= sizeof(host)) {
		*why = hl == 0 ? "missing address" : "address too long";
		return (-1);
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, c->bytes) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c->bytes) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		*why = "not a numeric IPv4 or IPv6 address";
		return (-1);
	}
	c->prefix = max;
	if (slash != NULL) {
		if (units_number(slash + 1, 0, max, &bits) == -1) {
			*why = max == 32 ? "prefix length must be 0 to 32" :
			    "prefix length must be 0 to 128";
			return (-1);
		}
		c->prefix = (unsigned)bits;
	}
	for (i = c->prefix; i < max; i++) {
		if (c->bytes[i / 8] & (0x80 >> (i % 8))) {
			*why = "address has bits set beyond the prefix length";
			return (-1);
		}
	}
	return (0);
}

/* The port of an IPv4 or IPv6 address (0: the kernel picks one). */
unsigned
addr_port(const struct addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return (ntohs(((const struct sockaddr_in *)&a->ss)->sin_port));
	if (a->ss.ss_family == AF_INET6)
		return (ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port));
	return (0);
}

/*
 * The bytes of sa's address in key, zero-padded; return its family, or -1
 * for a family other than IPv4 and IPv6.
 */
int
addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return (AF_INET);
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return (AF_INET6);
	}
	return (-1);
}

/* Tell whether sa's address lies within the prefix c. */
int
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	unsigned char	 key[16];
	unsigned	 full = c->prefix / 8, rest = c->prefix % 8;

	if (addr_key(sa, key) != c->family)
		return (0);
	if (memcmp(key, c->bytes, full) != 0)
		return (0);
	return (rest == 0 ||
	    ((key[full] ^ c->bytes[full]) & (0xff << (8 - rest)) & 0xff) == 0);
}

/* Tell whether sa's address lies within any prefix of the list. */
int
cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		if (cidr_match(&l->v[i], sa))
			return (1);
	return (0);
}
