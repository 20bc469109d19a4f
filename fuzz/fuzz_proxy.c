/*
 * libFuzzer target for the PROXY header parser: it never reads past what
 * it was given, a header it takes is within the bounds and parses the
 * same from exactly its own bytes, every shorter prefix asks for more,
 * and what proxy_build writes from the addresses it found parses back.
 */
#include "config.h"

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr	 h, h2;
	unsigned char		 b[PROXY_MAX], *copy;
	size_t			 n;
	int			 rc, accept = size > 0 ? (data[0] & 3) : 3;

	if (size > 0) {
		data++;
		size--;
	}
	/* A copy of exactly size bytes, so ASan sees any read past it. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return (0);
	memcpy(copy, data, size);
	rc = proxy_parse(copy, size, accept, &h);
	if (rc == PROXY_MORE && size >= PROXY_MAX)
		abort();
	if (rc == PROXY_DONE) {
		if (h.len > size || h.len > PROXY_MAX ||
		    (h.version == 1 && h.len > PROXY_V1_MAX) ||
		    !(accept & h.version))
			abort();
		if (proxy_parse(copy, h.len, accept, &h2) != PROXY_DONE ||
		    h2.len != h.len ||
		    proxy_parse(copy, h.len - 1, accept, &h2) != PROXY_MORE ||
		    proxy_parse(copy, h.len / 2, accept, &h2) != PROXY_MORE ||
		    proxy_parse(copy, 1, accept, &h2) != PROXY_MORE)
			abort();
		if (!h.local) {
			n = proxy_build(h.version, (struct sockaddr *)&h.src,
			    (struct sockaddr *)&h.dst, b, sizeof(b));
			if (n == 0 || proxy_parse(b, n, accept, &h2) !=
			    PROXY_DONE || h2.srclen != h.srclen ||
			    memcmp(&h2.src, &h.src, h.srclen) != 0 ||
			    memcmp(&h2.dst, &h.dst, h.dstlen) != 0)
				abort();
		}
	}
	free(copy);
	return (0);
}
