/* Numbers, sizes and durations written as text. */
#ifndef ECHOD_UNITS_H
#define ECHOD_UNITS_H

#include <sys/time.h>
#include <stdint.h>

int	 units_number(const char *, uint64_t, uint64_t, uint64_t *);
int	 units_size(const char *, uint64_t *);
int	 units_duration(const char *, uint64_t *);
struct timeval units_timeval(uint64_t);

#endif
