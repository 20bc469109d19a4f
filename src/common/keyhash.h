/* A keyed hash of an address key (addr_key), and random seeds for it. */
#ifndef ECHOD_KEYHASH_H
#define ECHOD_KEYHASH_H

#include <stdint.h>

uint64_t	keyhash_seed(void);
uint64_t	keyhash(uint64_t, const unsigned char[16], int);

#endif
