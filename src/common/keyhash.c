/*
 * A keyed hash of an address, so that a client cannot aim at a slot of a
 * table it fills, and random seeds for it.
 */
#include "config.h"

#include <sys/random.h>
#include <stdint.h>
#include <string.h>

#include "keyhash.h"

/* A random 64-bit seed. */
uint64_t
keyhash_seed(void)
{
	uint64_t	 s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ULL;
	return (s);
}

/* A keyed hash of an address key. */
uint64_t
keyhash(uint64_t seed, const unsigned char key[16], int family)
{
	uint64_t	 a, b, h = seed ^ (uint64_t)family;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	h = (h ^ a) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	h = (h ^ b) * 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (h);
}
