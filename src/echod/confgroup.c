/*
 * Listener groups in echod.conf: adding [tcp NAME] and [udp NAME] as their
 * section lines come, keeping addresses in one group, and, once the whole
 * file is read, giving named groups what they inherit (confparse.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "confkey.h"
#include "confparse.h"

/* A group's section as written: "[tcp]" or "[tcp web]". */
const char *
confgroup_label(const struct conf_group *g, char *buf, size_t len)
{
	if (strcmp(g->name, CONF_DEFAULT_GROUP) == 0)
		snprintf(buf, len, "[%s]", conf_proto(g->type));
	else
		snprintf(buf, len, "[%s %s]", conf_proto(g->type), g->name);
	return (buf);
}

/* Add a group of type named name, with the defaults.  Index or -1. */
int
confgroup_add(struct conf_parser *p, int type, const char *name,
    size_t namelen, int line)
{
	struct conf		*c = p->conf;
	struct conf_group	*nv, *g;

	if (c->ngroups >= CONF_MAX_GROUPS) {
		conf_error(p, line, "too many groups (at most %d)",
		    CONF_MAX_GROUPS);
		return (-1);
	}
	nv = reallocarray(c->groups, c->ngroups + 1, sizeof(*nv));
	if (nv == NULL) {
		conf_error(p, line, "out of memory");
		return (-1);
	}
	c->groups = nv;
	g = &c->groups[c->ngroups];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%.*s", (int)namelen, name);
	g->type = type;
	g->line = line;
	confkey_group_defaults(g);
	return ((int)c->ngroups++);
}

/* The group of type named name (namelen bytes; none: unnamed), or -1. */
int
confgroup_find(const struct conf *c, int type, const char *name,
    size_t namelen)
{
	size_t	 i;

	if (namelen == 0)
		return (type == SOCK_STREAM ? 0 : 1);
	for (i = 2; i < c->ngroups; i++)
		if (strlen(c->groups[i].name) == namelen &&
		    strncmp(c->groups[i].name, name, namelen) == 0)
			return (c->groups[i].type == type ? (int)i : -1);
	return (-1);
}

/* Check a named group's section and add the group if it is new. */
void
confgroup_section(struct conf_parser *p, int type, const char *name,
    size_t namelen)
{
	const char	*proto = conf_proto(type);
	int		 other = type == SOCK_STREAM ? SOCK_DGRAM : SOCK_STREAM;
	char		 label[64];
	int		 i;

	if (namelen > CONF_GROUP_NAMELEN ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") < namelen) {
		conf_error(p, p->lineno, "[%s %.*s]: a group name is 1 to %d "
		    "characters of a-z, 0-9, _ and -", proto,
		    (int)(namelen > 40 ? 40 : namelen), name, CONF_GROUP_NAMELEN);
		return;
	}
	if (namelen == strlen(CONF_DEFAULT_GROUP) &&
	    strncmp(name, CONF_DEFAULT_GROUP, namelen) == 0) {
		conf_error(p, p->lineno, "[%s %s]: '%s' names the unnamed "
		    "[%s] in metrics and logs; choose another name", proto,
		    CONF_DEFAULT_GROUP, CONF_DEFAULT_GROUP, proto);
		return;
	}
	if (confgroup_find(p->conf, type, name, namelen) != -1)
		return;		/* more of a group seen before */
	/* Names are unique across protocols: they label the metrics. */
	if ((i = confgroup_find(p->conf, other, name, namelen)) != -1) {
		conf_error(p, p->lineno, "[%s %.*s]: the name is taken by %s "
		    "at line %d", proto, (int)namelen, name,
		    confgroup_label(&p->conf->groups[i], label, sizeof(label)),
		    p->conf->groups[i].line);
		return;
	}
	(void)confgroup_add(p, type, name, namelen, p->lineno);
}

/*
 * After a listen line of group gi: no address may be in two groups of a
 * protocol (the kernel would let both bind with SO_REUSEPORT).
 */
int
confgroup_listen(struct conf_parser *p, int gi, size_t from)
{
	const struct conf_group	*g = &p->conf->groups[gi], *o;
	char			 label[64], other[64], name[ADDR_STRLEN];
	size_t			 i, j, k;

	p->listen_line = p->lineno;
	p->listen_set[g->type == SOCK_STREAM ? 0 : 1] = 1;
	for (j = 0; j < p->conf->ngroups; j++) {
		o = &p->conf->groups[j];
		if (o == g || o->type != g->type)
			continue;
		for (i = from; i < g->listen.n; i++)
			for (k = 0; k < o->listen.n; k++) {
				if (!addr_equal(&g->listen.v[i], &o->listen.v[k]))
					continue;
				conf_error(p, p->lineno, "%s listen: address "
				    "'%s' is in %s too", confgroup_label(g, label,
				    sizeof(label)), addr_name(&g->listen.v[i],
				    name, sizeof(name)), confgroup_label(o, other,
				    sizeof(other)));
				return (-1);
			}
	}
	return (0);
}

/*
 * Once the whole file is read: an unnamed section with no listen takes the
 * loopback default, unless the file listens on that protocol elsewhere;
 * a named group takes what it does not set from its unnamed section.
 */
void
confgroup_resolve(struct conf_parser *p)
{
	struct conf		*c = p->conf;
	struct conf_group	*g;
	const char		*why;
	char			 label[64];
	size_t			 i, k;
	int			 t;
	static const char	*defaults[] = { "127.0.0.1:7", "[::1]:7" };

	for (t = 0; t < 2; t++) {
		g = &c->groups[t];
		if (p->listen_set[t])
			continue;
		if ((g->listen.v = calloc(2, sizeof(*g->listen.v))) == NULL) {
			conf_error(p, 0, "out of memory");
			return;
		}
		for (k = 0; k < 2; k++)
			if (addr_parse(defaults[k], &g->listen.v[k], &why) == -1)
				abort();	/* they are valid */
		g->listen.n = 2;
	}
	for (i = 2; i < c->ngroups; i++) {
		g = &c->groups[i];
		if (g->listen.n == 0) {
			conf_error(p, g->line, "%s: no listen address; a named "
			    "group needs its own", confgroup_label(g, label,
			    sizeof(label)));
			return;
		}
		for (k = 0; k < confkey_count(); k++)
			if (!p->gseen[i][k] && confkey_inherit(k, g,
			    &c->groups[g->type == SOCK_STREAM ? 0 : 1]) == -1) {
				conf_error(p, 0, "out of memory");
				return;
			}
	}
}

