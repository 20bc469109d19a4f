/*
 * The PROXY protocol header (HAProxy's doc/proxy-protocol.txt), versions 1
 * (text) and 2 (binary): reading one, as echod does behind a balancer, and
 * writing one, as echoload does to test it.  Pure functions: no sockets,
 * no allocation.
 */
#ifndef ECHOD_PROXY_H
#define ECHOD_PROXY_H

#include <sys/socket.h>
#include <stddef.h>

#define PROXY_V1		0x1	/* versions to accept (proxy_parse) */
#define PROXY_V2		0x2
#define PROXY_V1_MAX		107	/* a v1 line, CRLF included */
#define PROXY_V2_FIXED		16	/* signature, command, family, length */
/* A v2 header, addresses and TLVs, at most: UNIX's addresses and 1 KiB. */
#define PROXY_V2_MAX		(PROXY_V2_FIXED + 216 + 1024)
#define PROXY_MAX		PROXY_V2_MAX

/* What proxy_parse made of the bytes so far. */
#define PROXY_MORE		0	/* a header so far: read more */
#define PROXY_DONE		1	/* a whole header, of h->len bytes */
#define PROXY_MISSING		-1	/* not a PROXY header at all */
#define PROXY_MALFORMED		-2	/* a broken or oversized header */
#define PROXY_UNSUPPORTED	-3	/* valid, but not TCP over IPv4/IPv6 */

struct proxy_hdr {
	int			 version;	/* 1 or 2 */
	int			 local;		/* no addresses: v2 LOCAL, v1
						   UNKNOWN, v2 UNSPEC */
	struct sockaddr_storage	 src, dst;	/* unless local */
	socklen_t		 srclen, dstlen;
	size_t			 len;		/* bytes of the header */
};

int	 proxy_parse(const unsigned char *, size_t, int, struct proxy_hdr *);
size_t	 proxy_build(int, const struct sockaddr *, const struct sockaddr *,
	    unsigned char *, size_t);
const char *proxy_result_name(int);

#endif
