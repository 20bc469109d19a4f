/*
 * The UDP rate limit: a token bucket per source address.  The table has a
 * fixed number of slots whatever the number of sources: a new source
 * takes over the slot it hashes to (keyed with a random seed, so a client
 * cannot aim at one).  Tokens are integers in thousandths, so no refill
 * is ever rounded away, however large the burst.
 */
#include "config.h"

#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "group.h"
#include "keyhash.h"
#include "ratelimit.h"

struct ratelimit_slot {
	struct bucket	b;		/* b.tag: ratelimit_tag, group and
					   family, in the bucket's padding */
	unsigned char	key[16];
};

/* 2 MiB a worker with RATELIMIT_SLOTS; test_guard.py counts on it. */
_Static_assert(sizeof(struct ratelimit_slot) == 32, "a slot is 32 bytes");

_Static_assert(GROUP_SLOTS <= 64, "ratelimit_tag holds 6 bits of slot");

/* Group slot (below 64) and address family in one byte; never 0. */
static unsigned char
ratelimit_tag(unsigned group, int family)
{
	return ((unsigned char)((group & 63) << 2 |
	    (family == AF_INET ? 1 : family == AF_INET6 ? 2 : 3)));
}

/* Fill a bucket to burst tokens at time now_ms. */
void
bucket_fill(struct bucket *b, uint64_t burst, uint32_t now_ms)
{
	b->milli = burst * BUCKET_UNIT;
	b->last_ms = now_ms;
}

/*
 * Refill a bucket at rate tokens a second up to burst, as of now_ms, and
 * take one token.  Return 1 if there was one, 0 if not.
 */
int
bucket_take(struct bucket *b, uint64_t rate, uint64_t burst, uint32_t now_ms)
{
	uint64_t	 cap = burst * BUCKET_UNIT;
	uint64_t	 add;

	/* Milliseconds times tokens a second: thousandths of tokens. */
	add = (uint64_t)(uint32_t)(now_ms - b->last_ms) * rate;
	b->last_ms = now_ms;
	if (b->milli >= cap || add >= cap - b->milli)
		b->milli = cap;
	else
		b->milli += add;
	if (b->milli < BUCKET_UNIT)
		return (0);
	b->milli -= BUCKET_UNIT;
	return (1);
}

/* Set up an empty table; its slots come on first use. */
void
ratelimit_init(struct ratelimit *t)
{
	t->seed = keyhash_seed();
	t->slots = NULL;
}

/* Free a table. */
void
ratelimit_free(struct ratelimit *t)
{
	free(t->slots);
	t->slots = NULL;
}

/*
 * Take a token from the bucket of sa's address in listener group slot
 * group at time now_ms (rate tokens a second, burst at most).  Return 1
 * if there was one, 0 if the source is over its rate.
 */
int
ratelimit_take(struct ratelimit *t, unsigned group, uint64_t rate,
    uint64_t burst, const struct sockaddr *sa, uint32_t now_ms)
{
	struct ratelimit_slot	*s;
	unsigned char		 key[16];
	int			 family = addr_key(sa, key);

	if (t->slots == NULL &&
	    (t->slots = calloc(RATELIMIT_SLOTS, sizeof(*t->slots))) == NULL)
		return (1);	/* fail open rather than drop everyone */
	s = &t->slots[keyhash(t->seed + group, key, family) %
	    RATELIMIT_SLOTS];
	if (s->b.tag != ratelimit_tag(group, family) ||
	    memcmp(s->key, key, sizeof(key)) != 0) {
		/* A new source, or one that took this slot over. */
		memcpy(s->key, key, sizeof(key));
		s->b.tag = ratelimit_tag(group, family);
		bucket_fill(&s->b, burst, now_ms);
	}
	return (bucket_take(&s->b, rate, burst, now_ms));
}
