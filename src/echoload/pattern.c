/* echoload's byte pattern.  A pure leaf, tested from buffers. */
#include "config.h"

#include <string.h>

#include "pattern.h"

/* Fill pat (PATTERN_LEN + PATTERN_MAX_MSG bytes) from seed (splitmix64). */
void
pattern_init(unsigned char *pat, uint64_t seed)
{
	uint64_t	 z;
	size_t		 i;

	for (i = 0; i < PATTERN_LEN; i += 8) {
		seed += 0x9e3779b97f4a7c15ULL;
		z = seed;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(pat + i, &z, 8);
	}
	/* The tail repeats the head, so any slice up to a message is flat. */
	memcpy(pat + PATTERN_LEN, pat, PATTERN_MAX_MSG);
}

/*
 * The pattern from stream offset off, with the number of bytes up to the
 * end of the flat tail in *len.
 */
const unsigned char *
pattern_at(const unsigned char *pat, uint64_t off, size_t *len)
{
	size_t	 o = (size_t)(off % PATTERN_LEN);

	*len = PATTERN_LEN + PATTERN_MAX_MSG - o;
	return (pat + o);
}

/*
 * Check that data (len bytes) is the pattern from stream offset off.
 * Return len, or the index of the first byte that is wrong.
 */
size_t
pattern_check(const unsigned char *pat, uint64_t off,
    const unsigned char *data, size_t len)
{
	const unsigned char	*p;
	size_t			 done = 0, n, avail, i;

	while (done < len) {
		p = pattern_at(pat, off + done, &avail);
		n = len - done < avail ? len - done : avail;
		if (memcmp(p, data + done, n) != 0) {
			for (i = 0; p[i] == data[done + i]; i++)
				;
			return (done + i);
		}
		done += n;
	}
	return (len);
}
