/*
 * The bytes echoload sends: a pseudo-random pattern that every connection
 * reads at its own offset, so that any echoed byte can be checked for
 * content and position with a memcmp.
 */
#ifndef ECHOD_PATTERN_H
#define ECHOD_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Longer than any message: a message is one contiguous slice of it. */
#define PATTERN_LEN	(2u * 1024 * 1024)
#define PATTERN_MAX_MSG	(1u * 1024 * 1024)

void	 pattern_init(unsigned char *, uint64_t);
size_t	 pattern_check(const unsigned char *, uint64_t, const unsigned char *,
	    size_t);
const unsigned char *pattern_at(const unsigned char *, uint64_t, size_t *);

#endif
