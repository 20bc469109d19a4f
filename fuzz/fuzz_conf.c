/*
 * libFuzzer target for the configuration parser: any text must give
 * either a configuration or an error message naming a line, never a crash,
 * a leak or undefined behaviour.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf	 c;
	char		 err[CONF_ERRLEN], *text;

	if (memchr(data, '\0', size) != NULL)
		return (0);	/* conf_load rejects NUL bytes before parsing */
	if ((text = malloc(size + 1)) == NULL)
		return (0);
	memcpy(text, data, size);
	text[size] = '\0';
	conf_init(&c);
	err[0] = '\0';
	if (conf_parse_string(&c, text, "fuzz.conf", err, sizeof(err)) == -1) {
		/* Every error names the file. */
		if (strncmp(err, "fuzz.conf", 9) != 0)
			abort();
	} else if (c.ngroups < 2 || (conf_tcp(&c)->listen.n == 0 &&
	    conf_udp(&c)->listen.n == 0 && c.ngroups == 2))
		abort();	/* validation must have caught it */
	else {
		/* A named group always has an address of its own. */
		for (size_t i = 2; i < c.ngroups; i++)
			if (c.groups[i].listen.n == 0)
				abort();
	}
	conf_free(&c);
	free(text);
	return (0);
}
