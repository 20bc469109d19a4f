/* How much memory echod may use, and giving it back after a load. */
#ifndef ECHOD_MEMORY_H
#define ECHOD_MEMORY_H

#include <stdint.h>

struct server;

/* Trim once the footprint has fallen this far from its peak. */
#define MEMORY_TRIM_STEP	(32 * 1024 * 1024)

/* ... and no more often than this. */
#define MEMORY_TRIM_EVERY_MS	2000

struct memory_trim {
	uint64_t	peak;		/* footprint's peak since the last trim */
	uint64_t	last_ms;	/* when it last trimmed */
};

uint64_t	memory_available(const char **);
int		memory_trim(struct memory_trim *, uint64_t, uint64_t,
		    uint64_t);
int		memory_tcp_pressure(int);
int		memory_over(struct server *);
uint64_t	memory_buffered(struct server *);
void		memory_cb(int, short, void *);

#endif
