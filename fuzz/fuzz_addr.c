/*
 * libFuzzer target for the address and prefix parsers: whatever parses
 * must print back (addr_name) to text that parses to the same address.
 */
#include "config.h"

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr	 a, b;
	struct cidr	 c;
	const char	*why;
	char		 s[128], out[ADDR_STRLEN];

	if (size >= sizeof(s))
		return (0);
	memcpy(s, data, size);
	s[size] = '\0';
	if (addr_parse(s, &a, &why) == 0) {
		/* As configured: a scope given by name keeps its name. */
		addr_name(&a, out, sizeof(out));
		if (addr_parse(out, &b, &why) != 0 || !addr_equal(&a, &b))
			abort();
		if (!cidr_match(&(struct cidr){ .family = a.ss.ss_family,
		    .prefix = 0 }, (struct sockaddr *)&a.ss))
			abort();	/* a /0 of the family holds everything */
	} else if (why == NULL)
		abort();
	if (cidr_parse(s, &c, &why) == 0) {
		if (c.prefix > (c.family == AF_INET ? 32u : 128u))
			abort();
	} else if (why == NULL)
		abort();
	return (0);
}
