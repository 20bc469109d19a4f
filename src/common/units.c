/*
 * Numbers, sizes and durations written as text, for the configuration
 * file and echoload's options.  A pure leaf: no sockets, no logging.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

/* Parse a whole number from min to max; return -1 if it is not one. */
int
units_number(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long	 n;
	char			*end;

	if (*v < '0' || *v > '9')
		return (-1);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n < min || n > max)
		return (-1);
	*out = n;
	return (0);
}

/* A unit after a number, and what it multiplies by. */
struct units_suffix {
	const char	*name;
	uint64_t	 mult;
};

static const struct units_suffix units_sizes[] = {
	{ "", 1 }, { "k", 1024 }, { "K", 1024 }, { "m", 1024 * 1024 },
	{ "M", 1024 * 1024 }, { "g", 1024 * 1024 * 1024 },
	{ "G", 1024 * 1024 * 1024 }, { NULL, 0 }
};

/* A bare number of seconds: the unit is optional. */
static const struct units_suffix units_durations[] = {
	{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60 * 1000 },
	{ "h", 60 * 60 * 1000 }, { NULL, 0 }
};

/*
 * Parse a decimal number followed by one of the units in tab, into the
 * number times the unit.  Return -1 on anything else or on overflow.
 */
static int
units_scaled(const char *s, const struct units_suffix *tab, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return (-1);
	for (; tab->name != NULL; tab++) {
		if (strcmp(end, tab->name) != 0)
			continue;
		if (v > UINT64_MAX / tab->mult)
			return (-1);
		*out = v * tab->mult;
		return (0);
	}
	return (-1);
}

/*
 * Parse a size: a decimal number of bytes, optionally followed by k, m or g
 * (binary multiples, either case).  Return -1 on anything else or on
 * overflow.
 */
int
units_size(const char *s, uint64_t *out)
{
	return (units_scaled(s, units_sizes, out));
}

/*
 * Parse a duration into milliseconds: a decimal number followed by ms, s,
 * m or h; a bare number is seconds.  Return -1 on anything else.
 */
int
units_duration(const char *s, uint64_t *out)
{
	return (units_scaled(s, units_durations, out));
}

/* Milliseconds as a struct timeval, for libevent's timers. */
struct timeval
units_timeval(uint64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return (tv);
}
