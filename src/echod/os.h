/* Operating system plumbing: the clock, CPUs, descriptors, privileges. */
#ifndef ECHOD_OS_H
#define ECHOD_OS_H

#include <stdint.h>
#include <time.h>

struct server;

/* A coarse monotonic clock in milliseconds, the same in every thread. */
static inline uint64_t
now_ms(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == -1)
		return (0);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* The precise monotonic clock in microseconds: the faults' delays. */
static inline uint64_t
now_us(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return (0);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

unsigned os_ncpus(void);
void	os_raise_nofile(struct server *);
int	os_drop_privileges(struct server *);

#endif
