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

/*
 * What a valid configuration promises: some address to listen on, every
 * named group with its own, and no address in two groups of a socket type
 * (port 0 aside: it binds a port of its own each time).
 */
static int
fuzz_groups_ok(const struct conf *c)
{
	const struct conf_group	*g, *o;
	size_t			 i, j, k, m, n = 0;

	for (i = 0; i < c->ngroups; i++) {
		g = &c->groups[i];
		n += g->listen.n;
		/* The unnamed [tls] may listen nowhere: a template. */
		if (i >= 2 && g->listen.n == 0 && !(g->proto == CONF_TLS &&
		    strcmp(g->name, CONF_TLS_GROUP) == 0))
			return (0);
		for (j = i + 1; j < c->ngroups; j++) {
			o = &c->groups[j];
			if (o->type != g->type)
				continue;
			for (k = 0; k < g->listen.n; k++)
				for (m = 0; m < o->listen.n; m++)
					if (addr_equal(&g->listen.v[k],
					    &o->listen.v[m]) &&
					    addr_port(&g->listen.v[k]) != 0)
						return (0);
		}
	}
	return (n > 0);
}

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
	} else if (c.ngroups < 2 || !fuzz_groups_ok(&c))
		abort();	/* validation must have caught it */
	conf_free(&c);
	free(text);
	return (0);
}
