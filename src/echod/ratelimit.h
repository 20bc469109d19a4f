/* Per-source token buckets for the UDP rate limit. */
#ifndef ECHOD_RATELIMIT_H
#define ECHOD_RATELIMIT_H

#include <sys/socket.h>
#include <stdint.h>

/*
 * One token bucket, in thousandths of a token so that refills are exact
 * integers: elapsed milliseconds times the rate per second.
 */
#define BUCKET_UNIT	1000
struct bucket {
	uint64_t	milli;		/* tokens x BUCKET_UNIT */
	uint32_t	last_ms;	/* when it was last refilled */
	unsigned char	tag;		/* the owner's: ratelimit.c's slot tag,
					   in what would be padding */
};

void	 bucket_fill(struct bucket *, uint64_t, uint32_t);
int	 bucket_take(struct bucket *, uint64_t, uint64_t, uint32_t);

/* One worker's buckets, in a table of fixed size whatever the sources. */
#define RATELIMIT_SLOTS	65536
struct ratelimit_slot;
struct ratelimit {
	uint64_t		 seed;
	struct ratelimit_slot	*slots;	/* RATELIMIT_SLOTS, on first use */
};

void	 ratelimit_init(struct ratelimit *);
void	 ratelimit_free(struct ratelimit *);
int	 ratelimit_take(struct ratelimit *, unsigned, uint64_t, uint64_t,
	    const struct sockaddr *, uint32_t);

#endif
