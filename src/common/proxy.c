/*
 * PROXY protocol headers (proxy.h), as doc/proxy-protocol.txt of HAProxy
 * defines them.  The parser works on what has arrived so far and says
 * whether to read more, so a caller never reads past the header: what
 * follows it is the client's own data.  It is strict where the text is
 * (one space between fields, CRLF, no leading zeros in ports) and bounded:
 * a v1 line is at most 107 bytes, a v2 header at most PROXY_V2_MAX.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"

static const unsigned char proxy_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define V2_LOCAL	0x20	/* version 2, command LOCAL */
#define V2_PROXY	0x21	/* version 2, command PROXY */
#define V2_UNSPEC	0x0
#define V2_INET		0x1
#define V2_INET6	0x2
#define V2_UNIX		0x3
#define V2_STREAM	0x1
#define V2_DGRAM	0x2

/* Tell whether the n bytes of p start like the first len bytes of want. */
static int
proxy_prefix(const unsigned char *p, size_t n, const void *want, size_t len)
{
	return (memcmp(p, want, n < len ? n : len) == 0);
}

/* Store an address and port in ss; return its length. */
static socklen_t
proxy_sockaddr(struct sockaddr_storage *ss, int family, const void *addr,
    uint16_t port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addr, 4);
		sin->sin_port = htons(port);
		return (sizeof(*sin));
	}
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	sin6->sin6_port = htons(port);
	return (sizeof(*sin6));
}

/* A v1 port: 0, or 1-65535 without a leading zero.  Return it or -1. */
static long
proxy_v1_port(const char *s, size_t len)
{
	long	 v = 0;
	size_t	 i;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	return (v <= 65535 ? v : -1);
}

/*
 * Read the fields of a v1 line after "PROXY " (s, len bytes, no CRLF):
 * "TCP4|TCP6 SRC DST SPORT DPORT", or "UNKNOWN" and anything.
 */
static int
proxy_v1_fields(const char *s, size_t len, struct proxy_hdr *h)
{
	const char	*f[5];
	size_t		 fl[5], i, nf = 0, start = 0;
	char		 a[2][INET6_ADDRSTRLEN];
	unsigned char	 bin[2][16];
	long		 port[2];
	int		 family, k;

	if (len >= 7 && memcmp(s, "UNKNOWN", 7) == 0 &&
	    (len == 7 || s[7] == ' ')) {
		h->local = 1;
		return (PROXY_DONE);
	}
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (nf == 5 || i == start)
			return (PROXY_MALFORMED);	/* too many, or "  " */
		f[nf] = s + start;
		fl[nf++] = i - start;
		start = i + 1;
	}
	if (nf != 5 || fl[0] != 4)
		return (PROXY_MALFORMED);
	if (memcmp(f[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (memcmp(f[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return (PROXY_MALFORMED);
	for (k = 0; k < 2; k++) {
		if (fl[1 + k] >= sizeof(a[k]))
			return (PROXY_MALFORMED);
		memcpy(a[k], f[1 + k], fl[1 + k]);
		a[k][fl[1 + k]] = '\0';
		if (inet_pton(family, a[k], bin[k]) != 1 ||
		    (port[k] = proxy_v1_port(f[3 + k], fl[3 + k])) == -1)
			return (PROXY_MALFORMED);
	}
	h->srclen = proxy_sockaddr(&h->src, family, bin[0], (uint16_t)port[0]);
	h->dstlen = proxy_sockaddr(&h->dst, family, bin[1], (uint16_t)port[1]);
	return (PROXY_DONE);
}

/* Version 1: "PROXY ...\r\n", at most PROXY_V1_MAX bytes. */
static int
proxy_v1(const unsigned char *p, size_t n, struct proxy_hdr *h)
{
	const unsigned char	*lf;
	size_t			 i, len, lim;

	if (!proxy_prefix(p, n, "PROXY ", 6))
		return (PROXY_MISSING);
	lim = n < PROXY_V1_MAX ? n : PROXY_V1_MAX;
	/* Up to the LF, or all there is: printable, but for the CR. */
	lf = memchr(p, '\n', lim);
	len = lf != NULL ? (size_t)(lf - p) : lim;
	for (i = 0; i < len; i++)
		if ((p[i] < ' ' || p[i] > '~') &&
		    !(p[i] == '\r' && i + 1 == len))
			return (PROXY_MALFORMED);
	if (lf == NULL)
		return (lim < PROXY_V1_MAX ? PROXY_MORE : PROXY_MALFORMED);
	if (p[len - 1] != '\r')
		return (PROXY_MALFORMED);	/* a bare LF */
	h->version = 1;
	h->len = len + 1;
	return (proxy_v1_fields((const char *)p + 6, len - 7, h));
}

/* Check that the TLVs of a v2 header (p, n bytes) fill it exactly. */
static int
proxy_v2_tlvs(const unsigned char *p, size_t n)
{
	size_t	 off = 0, len;

	while (off < n) {
		if (n - off < 3)
			return (PROXY_MALFORMED);
		len = (size_t)p[off + 1] << 8 | p[off + 2];
		if (n - off - 3 < len)
			return (PROXY_MALFORMED);
		off += 3 + len;
	}
	return (PROXY_DONE);
}

/* Version 2: the signature, then a binary header. */
static int
proxy_v2(const unsigned char *p, size_t n, struct proxy_hdr *h)
{
	size_t	 len, alen;
	int	 fam, tr;

	if (!proxy_prefix(p, n, proxy_sig, sizeof(proxy_sig)))
		return (PROXY_MISSING);
	if (n < PROXY_V2_FIXED)
		return (PROXY_MORE);
	if (p[12] != V2_LOCAL && p[12] != V2_PROXY)
		return (PROXY_MALFORMED);	/* another version or command */
	len = (size_t)p[14] << 8 | p[15];
	if (PROXY_V2_FIXED + len > PROXY_V2_MAX)
		return (PROXY_MALFORMED);
	if (n < PROXY_V2_FIXED + len)
		return (PROXY_MORE);
	h->version = 2;
	h->len = PROXY_V2_FIXED + len;
	if (p[12] == V2_LOCAL || p[13] == 0x00) {
		/* Health checks, UNSPEC: no addresses to believe. */
		h->local = 1;
		return (PROXY_DONE);
	}
	fam = p[13] >> 4;
	tr = p[13] & 0xf;
	if (fam < V2_INET || fam > V2_UNIX || tr < V2_STREAM || tr > V2_DGRAM)
		return (PROXY_MALFORMED);	/* the spec: reject as invalid */
	if (fam == V2_UNIX || tr == V2_DGRAM)
		return (PROXY_UNSUPPORTED);	/* valid, but not TCP/IP */
	alen = fam == V2_INET ? 12 : 36;
	if (len < alen)
		return (PROXY_MALFORMED);
	p += PROXY_V2_FIXED;
	if (fam == V2_INET) {
		h->srclen = proxy_sockaddr(&h->src, AF_INET, p,
		    (uint16_t)(p[8] << 8 | p[9]));
		h->dstlen = proxy_sockaddr(&h->dst, AF_INET, p + 4,
		    (uint16_t)(p[10] << 8 | p[11]));
	} else {
		h->srclen = proxy_sockaddr(&h->src, AF_INET6, p,
		    (uint16_t)(p[32] << 8 | p[33]));
		h->dstlen = proxy_sockaddr(&h->dst, AF_INET6, p + 16,
		    (uint16_t)(p[34] << 8 | p[35]));
	}
	return (proxy_v2_tlvs(p + alen, len - alen));
}

/*
 * Read a PROXY header of a version in accept (PROXY_V1, PROXY_V2, or
 * both) from the n bytes at p, all that has arrived.  Return PROXY_DONE
 * with h filled (h->len bytes are the header), PROXY_MORE if the bytes
 * so far begin one, or why not (PROXY_MISSING, PROXY_MALFORMED,
 * PROXY_UNSUPPORTED).
 */
int
proxy_parse(const unsigned char *p, size_t n, int accept,
    struct proxy_hdr *h)
{
	int	 rc;

	memset(h, 0, sizeof(*h));
	if (n == 0)
		return (PROXY_MORE);
	if ((accept & PROXY_V2) && (rc = proxy_v2(p, n, h)) != PROXY_MISSING)
		return (rc);
	if ((accept & PROXY_V1) && (rc = proxy_v1(p, n, h)) != PROXY_MISSING)
		return (rc);
	return (PROXY_MISSING);
}

/*
 * Write a header of version 1 or 2 saying a client at src connected to
 * dst (both IPv4 or both IPv6) into buf.  Return its length, or 0 if it
 * cannot be written.
 */
size_t
proxy_build(int version, const struct sockaddr *src,
    const struct sockaddr *dst, unsigned char *buf, size_t size)
{
	const struct sockaddr_in	*s4 = (const void *)src, *d4 = (const void *)dst;
	const struct sockaddr_in6	*s6 = (const void *)src, *d6 = (const void *)dst;
	char				 a[2][INET6_ADDRSTRLEN];
	int				 v4 = src->sa_family == AF_INET, n;
	size_t				 alen = v4 ? 12 : 36;

	if (src->sa_family != dst->sa_family ||
	    (src->sa_family != AF_INET && src->sa_family != AF_INET6))
		return (0);
	if (version == 1) {
		if (inet_ntop(src->sa_family, v4 ? (const void *)&s4->sin_addr :
		    (const void *)&s6->sin6_addr, a[0], sizeof(a[0])) == NULL ||
		    inet_ntop(dst->sa_family, v4 ? (const void *)&d4->sin_addr :
		    (const void *)&d6->sin6_addr, a[1], sizeof(a[1])) == NULL)
			return (0);
		n = snprintf((char *)buf, size, "PROXY %s %s %s %u %u\r\n",
		    v4 ? "TCP4" : "TCP6", a[0], a[1],
		    ntohs(v4 ? s4->sin_port : s6->sin6_port),
		    ntohs(v4 ? d4->sin_port : d6->sin6_port));
		return (n > 0 && (size_t)n < size ? (size_t)n : 0);
	}
	if (version != 2 || size < PROXY_V2_FIXED + alen)
		return (0);
	memcpy(buf, proxy_sig, sizeof(proxy_sig));
	buf[12] = V2_PROXY;
	buf[13] = (unsigned char)((v4 ? V2_INET : V2_INET6) << 4 | V2_STREAM);
	buf[14] = 0;
	buf[15] = (unsigned char)alen;
	if (v4) {
		memcpy(buf + 16, &s4->sin_addr, 4);
		memcpy(buf + 20, &d4->sin_addr, 4);
		memcpy(buf + 24, &s4->sin_port, 2);
		memcpy(buf + 26, &d4->sin_port, 2);
	} else {
		memcpy(buf + 16, &s6->sin6_addr, 16);
		memcpy(buf + 32, &d6->sin6_addr, 16);
		memcpy(buf + 48, &s6->sin6_port, 2);
		memcpy(buf + 50, &d6->sin6_port, 2);
	}
	return (PROXY_V2_FIXED + alen);
}

/* A name for a result of proxy_parse, for messages and metrics. */
const char *
proxy_result_name(int rc)
{
	switch (rc) {
	case PROXY_MORE:
		return ("incomplete");
	case PROXY_DONE:
		return ("ok");
	case PROXY_MISSING:
		return ("missing");
	case PROXY_MALFORMED:
		return ("malformed");
	default:
		return ("unsupported");
	}
}
