/*
 * Listener groups in echod.conf: adding [tcp NAME] and [udp NAME] as their
 * section lines come, keeping addresses in one group, and, once the whole
 * file is read, giving named groups what they inherit (confparse.h).
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "confkey.h"
#include "confparse.h"

/* Tell whether g is an unnamed group: [tcp], [udp] or [tls]. */
static int
confgroup_unnamed(const struct conf_group *g)
{
	return (strcmp(g->name, g->proto == CONF_TLS ? CONF_TLS_GROUP :
	    CONF_DEFAULT_GROUP) == 0);
}

/* A group's section as written: "[tcp]" or "[tcp web]". */
const char *
confgroup_label(const struct conf_group *g, char *buf, size_t len)
{
	if (confgroup_unnamed(g))
		snprintf(buf, len, "[%s]", conf_group_proto(g));
	else
		snprintf(buf, len, "[%s %s]", conf_group_proto(g), g->name);
	return (buf);
}

/* Add a group of proto named name, with the defaults.  Index or -1. */
int
confgroup_add(struct conf_parser *p, int proto, const char *name,
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
	g->proto = proto;
	g->type = proto == CONF_UDP ? SOCK_DGRAM : SOCK_STREAM;
	g->line = line;
	confkey_group_defaults(g);
	return ((int)c->ngroups++);
}

/*
 * The group of proto named name (namelen bytes; none: the unnamed one),
 * or -1.
 */
int
confgroup_find(const struct conf *c, int proto, const char *name,
    size_t namelen)
{
	size_t	 i;

	if (namelen == 0 && proto != CONF_TLS)
		return (proto == CONF_TCP ? 0 : 1);
	for (i = 2; i < c->ngroups; i++) {
		if (namelen == 0 ? c->groups[i].proto == CONF_TLS &&
		    confgroup_unnamed(&c->groups[i]) :
		    strlen(c->groups[i].name) == namelen &&
		    strncmp(c->groups[i].name, name, namelen) == 0)
			return (c->groups[i].proto == proto ? (int)i : -1);
	}
	return (-1);
}

/* Check a named group's section and add the group if it is new. */
void
confgroup_section(struct conf_parser *p, int proto, const char *name,
    size_t namelen)
{
	static const char *const protos[] = { "tcp", "udp", "tls" };
	const char	*reserved;
	char		 label[64];
	size_t		 i;

	if (namelen > CONF_GROUP_NAMELEN ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") < namelen) {
		conf_error(p, p->lineno, "[%s %.*s]: a group name is 1 to %d "
		    "characters of a-z, 0-9, _ and -", protos[proto],
		    (int)(namelen > 40 ? 40 : namelen), name, CONF_GROUP_NAMELEN);
		return;
	}
	reserved = namelen == strlen(CONF_DEFAULT_GROUP) &&
	    strncmp(name, CONF_DEFAULT_GROUP, namelen) == 0 ?
	    CONF_DEFAULT_GROUP : namelen == strlen(CONF_TLS_GROUP) &&
	    strncmp(name, CONF_TLS_GROUP, namelen) == 0 ? CONF_TLS_GROUP : NULL;
	if (reserved != NULL) {
		conf_error(p, p->lineno, "[%s %s]: '%s' names the unnamed "
		    "%s in metrics and logs; choose another name",
		    protos[proto], reserved, reserved, strcmp(reserved,
		    CONF_TLS_GROUP) == 0 ? "[tls]" : proto == CONF_TCP ? "[tcp]" :
		    proto == CONF_UDP ? "[udp]" : "[tcp] and [udp]");
		return;
	}
	if (confgroup_find(p->conf, proto, name, namelen) != -1)
		return;		/* more of a group seen before */
	/* Names are unique across protocols: they label the metrics. */
	for (i = 2; i < p->conf->ngroups; i++) {
		if (strlen(p->conf->groups[i].name) != namelen ||
		    strncmp(p->conf->groups[i].name, name, namelen) != 0)
			continue;
		conf_error(p, p->lineno, "[%s %.*s]: the name is taken by %s "
		    "at line %d", protos[proto], (int)namelen, name,
		    confgroup_label(&p->conf->groups[i], label, sizeof(label)),
		    p->conf->groups[i].line);
		return;
	}
	(void)confgroup_add(p, proto, name, namelen, p->lineno);
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
	p->listen_set[g->proto] = 1;
	for (j = 0; j < p->conf->ngroups; j++) {
		o = &p->conf->groups[j];
		if (o == g || o->type != g->type)
			continue;
		for (i = from; i < g->listen.n; i++)
			for (k = 0; k < o->listen.n; k++) {
				/* Port 0: a port of its own each time. */
				if (!addr_equal(&g->listen.v[i], &o->listen.v[k]) ||
				    addr_port(&g->listen.v[i]) == 0)
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

/* Give group gi what it did not set from group from.  Return 0 or -1. */
static int
confgroup_inherit(struct conf_parser *p, int gi, int from)
{
	struct conf_group	*g = &p->conf->groups[gi];
	const struct conf_group	*f = &p->conf->groups[from];
	size_t			 k;

	for (k = 0; k < confkey_count(); k++) {
		if (p->gseen[gi][k])
			continue;
		if (confkey_inherit(k, g, f) == -1) {
			conf_error(p, 0, "out of memory");
			return (-1);
		}
		g->lines[k] = f->lines[k];
	}
	return (0);
}

/*
 * A TLS group that listens needs a certificate and its key, and echod
 * built with OpenSSL; it reads no PROXY header (yet).  Return 0 or -1.
 */
static int
confgroup_check_tls(struct conf_parser *p, const struct conf_group *g)
{
	char	 label[64];

	if (g->proto != CONF_TLS || g->listen.n == 0)
		return (0);
	confgroup_label(g, label, sizeof(label));
#ifndef HAVE_OPENSSL
	conf_error(p, g->line, "%s: echod was built without OpenSSL "
	    "(configure --without-openssl): no TLS", label);
	return (-1);
#else
	if (g->certificate[0] == '\0' || g->key[0] == '\0') {
		conf_error(p, g->line, "%s: a TLS group needs a certificate "
		    "and a key", label);
		return (-1);
	}
	return (0);
#endif
}

/*
 * A fault profile's keys together: jitter within delay (an echo is never
 * due before it arrived), slice_gap only with slice, a probability only
 * with its fault.  Return 0 or -1.
 */
static int
confgroup_check_faults(struct conf_parser *p, const struct conf_group *g)
{
	static const struct {
		const char	*prob, *fault;
		size_t		 foff;
	} probs[] = {
		{ "reset_probability", "reset_after",
		    offsetof(struct conf_group, reset_after) },
		{ "close_probability", "close_after",
		    offsetof(struct conf_group, close_after_ms) },
		{ "stall_probability", "stall_after",
		    offsetof(struct conf_group, stall_after) },
	};
	const char	*sec = g->proto == CONF_UDP ? "udp" : "tcp";
	char		 label[64];
	size_t		 i;
	int		 line;

	confgroup_label(g, label, sizeof(label));
	if (g->jitter_ms > g->delay_ms) {
		conf_error(p, conf_group_line(g, sec, "jitter"), "%s jitter: "
		    "%llums is more than delay (%llums): an echo would be due "
		    "before its data came", label,
		    (unsigned long long)g->jitter_ms,
		    (unsigned long long)g->delay_ms);
		return (-1);
	}
	if (g->proto == CONF_UDP)
		return (0);
	if (g->slice_gap_ms > 0 && g->slice[0] == 0) {
		conf_error(p, conf_group_line(g, sec, "slice_gap"), "%s "
		    "slice_gap: needs slice", label);
		return (-1);
	}
	for (i = 0; i < sizeof(probs) / sizeof(probs[0]); i++) {
		line = conf_group_line(g, sec, probs[i].prob);
		if (line > 0 && *(const uint64_t *)((const char *)g +
		    probs[i].foff) == 0) {
			conf_error(p, line, "%s %s: needs %s", label,
			    probs[i].prob, probs[i].fault);
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
	int			 t, tls;
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
	/* The unnamed [tls] first: its TCP settings come from [tcp]. */
	tls = confgroup_find(c, CONF_TLS, "", 0);
	if (tls != -1 && confgroup_inherit(p, tls, 0) == -1)
		return;
	for (i = 2; i < c->ngroups; i++) {
		g = &c->groups[i];
		if ((int)i == tls)
			continue;
		if (g->listen.n == 0) {
			conf_error(p, g->line, "%s: no listen address; a named "
			    "group needs its own", confgroup_label(g, label,
			    sizeof(label)));
			return;
		}
		if (confgroup_inherit(p, (int)i, g->proto == CONF_UDP ? 1 :
		    g->proto == CONF_TLS && tls != -1 ? tls : 0) == -1)
			return;
	}
	for (i = 0; i < c->ngroups; i++)
		if (confgroup_check_tls(p, &c->groups[i]) == -1 ||
		    confgroup_check_faults(p, &c->groups[i]) == -1)
			return;
}

