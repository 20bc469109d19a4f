/*
 * Numbers, sizes and durations written as text, for the configuration
 * file and echoload's options.  A pure leaf: no sockets, no logging.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/*
 * Parse a size: a decimal number of bytes, optionally followed by k, m or g
 * (binary multiples).  Return -1 on anything else or on overflow.
 */
int
units_size(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	uint64_t		 mult = 1;
	char			*end;

	if (*s < '0' || *s > '9')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return (-1);
	if (strcasecmp(end, "k") == 0)
		mult = 1024;
	else if (strcasecmp(end, "m") == 0)
		mult = 1024 * 1024;
	else if (strcasecmp(end, "g") == 0)
		mult = 1024 * 1024 * 1024;
	else if (*end != '\0')
		return (-1);
	if (v > UINT64_MAX / mult)
		return (-1);
	*out = v * mult;
	return (0);
}

/*
 * Parse a duration into milliseconds: a decimal number followed by ms, s,
 * m or h; a bare number is seconds.  Return -1 on anything else.
 */
int
units_duration(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	uint64_t		 mult;
	char			*end;

	if (*s < '0' || *s > '9')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return (-1);
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return (-1);
	if (v > UINT64_MAX / mult)
		return (-1);
	*out = v * mult;
	return (0);
}
