/*
 * The keys of echod.conf and how each value is read.  Numbers, sizes and
 * durations share one setter each, driven by the table's bounds; lists of
 * addresses, prefixes and ports add the words of a value to the list the
 * table points at.  conf.c does the rest: sections, lines, messages.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "confkey.h"
#include "units.h"

#define KEY_FIELD(obj, k)	((void *)((char *)(obj) + (k)->off))

static int	confkey_number(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_size(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_duration(const struct confkey *, void *,
		    const char *, int, char *, size_t);
static int	confkey_listen(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_cidrs(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_ports(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_log_level(const struct confkey *, void *,
		    const char *, int, char *, size_t);
static int	confkey_workers(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_user(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_memory_limit(const struct confkey *, void *,
		    const char *, int, char *, size_t);
static int	confkey_choice(const struct confkey *, void *, const char *,
		    int, char *, size_t);
static int	confkey_proxy_from(const struct confkey *, void *,
		    const char *, int, char *, size_t);


#define C(f)	offsetof(struct conf, f)
#define G(f)	offsetof(struct conf_group, f)
#define DAY_MS	(24ULL * 60 * 60 * 1000)
#define TIMEOUT	"must be at most 24h"
#define LIMIT	"must be a number from 0 (no limit) to 10000000"
#define GROUP	CONFKEY_GROUP
#define REPEAT	CONFKEY_REPEAT
#define LISTEN	(CONFKEY_GROUP | CONFKEY_REPEAT | CONFKEY_OWN)
#define CIDRS	(CONFKEY_GROUP | CONFKEY_REPEAT | CONFKEY_CIDRS)
#define PORTS	(CONFKEY_GROUP | CONFKEY_REPEAT | CONFKEY_PORTS)

static const struct confkey confkeys[] = {
	{ "server", "log_level", 0, confkey_log_level, 0, 0, 0, NULL },
	{ "server", "shutdown_timeout", 0, confkey_duration,
	    C(shutdown_timeout_ms), 0, DAY_MS, TIMEOUT },
	{ "server", "workers", 0, confkey_workers, C(workers), 1,
	    CONF_MAX_WORKERS, "must be auto or a number from 1 to 256" },
	{ "server", "user", 0, confkey_user, 0, 0, 0, NULL },
	{ "server", "memory_limit", 0, confkey_memory_limit, 0, 0, 0, NULL },
	{ "tcp", "listen", LISTEN, confkey_listen, G(listen), 0, 0,
	    NULL },
	{ "tcp", "buffer_limit", GROUP, confkey_size, G(buffer_limit), 1024,
	    1024 * 1024 * 1024, "must be from 1k to 1g" },
	{ "tcp", "max_connections", CONFKEY_UNNAMED, confkey_number,
	    C(max_connections), 0, 10000000, LIMIT },
	{ "tcp", "idle_timeout", GROUP, confkey_duration, G(idle_timeout_ms),
	    0, DAY_MS, TIMEOUT },
	{ "tcp", "backlog", GROUP, confkey_number, G(backlog), 1, 65535,
	    "must be a number from 1 to 65535" },
	{ "tcp", "allow", CIDRS, confkey_cidrs, G(allow), 0, 0, NULL },
	{ "tcp", "deny", CIDRS, confkey_cidrs, G(deny), 0, 0, NULL },
	{ "tcp", "max_connections_per_ip", GROUP, confkey_number,
	    G(max_per_ip), 0, 10000000, LIMIT },
	/* Words in the order of their values: PROXY_V1 is 1, PROXY_V2 2. */
	{ "tcp", "proxy_protocol", GROUP, confkey_choice, G(proxy), 0, 0,
	    "off v1 v2 any" },
	{ "tcp", "proxy_from", CIDRS, confkey_proxy_from, G(proxy_from), 0, 0,
	    NULL },
	{ "tcp", "proxy_timeout", GROUP, confkey_duration, G(proxy_timeout_ms),
	    100, 60 * 60 * 1000, "must be from 100ms to 1h" },
	{ "tcp", "banner", GROUP, confkey_choice, G(banner), 0, 0, "off on" },
	{ "udp", "listen", LISTEN, confkey_listen, G(listen), 0, 0,
	    NULL },
	{ "udp", "allow", CIDRS, confkey_cidrs, G(allow), 0, 0, NULL },
	{ "udp", "deny", CIDRS, confkey_cidrs, G(deny), 0, 0, NULL },
	{ "udp", "reflector_ports", PORTS, confkey_ports, G(reflectors), 0, 0,
	    NULL },
	{ "udp", "rate_limit", GROUP, confkey_number, G(rate_limit), 0,
	    10000000, "must be a number of datagrams per second from 0 (no "
	    "limit) to 10000000" },
	{ "udp", "burst", GROUP, confkey_number, G(burst), 0, 10000000,
	    "must be a number of datagrams from 0 (rate_limit's value) to "
	    "10000000" },
	{ "metrics", "listen", REPEAT, confkey_listen, C(metrics_listen), 0, 0,
	    NULL },
	{ "metrics", "max_connections", 0, confkey_number,
	    C(metrics_max_connections), 1, 1024,
	    "must be a number from 1 to 1024" },
	{ "metrics", "request_timeout", 0, confkey_duration,
	    C(metrics_timeout_ms), 10, 60 * 60 * 1000,
	    "must be from 10ms to 1h" },
};
#define CONFKEY_N	(sizeof(confkeys) / sizeof(confkeys[0]))
_Static_assert(CONFKEY_N <= CONFKEY_MAX, "raise CONFKEY_MAX");

static const char *confkey_levels[] = {
	[LOG_ERR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

/*
 * Source ports of services that answer UDP with as much as or more than
 * they get (echo, daytime, qotd, chargen, time, DNS, NTP, SNMP, CLDAP,
 * SSDP, memcached), and port 0, which no real client sends from: replying
 * to them turns echod into a reflector or starts an echo loop.
 */
static const unsigned confkey_reflectors[] = {
	0, 7, 13, 17, 19, 37, 53, 123, 161, 389, 1900, 11211
};

/* Find key name of section kind (tcp for [tcp web]); its index in *i. */
const struct confkey *
confkey_find(const char *section, const char *name, size_t *i)
{
	for (*i = 0; *i < CONFKEY_N; (*i)++)
		if (strcmp(confkeys[*i].section, section) == 0 &&
		    strcmp(confkeys[*i].name, name) == 0)
			return (&confkeys[*i]);
	return (NULL);
}

size_t
confkey_count(void)
{
	return (CONFKEY_N);
}

/* The defaults of a group's settings, which etc/echod.conf documents. */
void
confkey_group_defaults(struct conf_group *g)
{
	size_t	 i;

	g->buffer_limit = 256 * 1024;
	g->backlog = 4096;
	g->proxy_timeout_ms = 5000;
	for (i = 0; i < sizeof(confkey_reflectors) /
	    sizeof(confkey_reflectors[0]); i++)
		PORTSET_ADD(g->reflectors, confkey_reflectors[i]);
}

/*
 * Give dst key i's value from src, where dst did not set it: a list is
 * copied whole (a set list replaces the inherited one, never extends it);
 * listen is never inherited.  Return 0 or -1 (out of memory).
 */
int
confkey_inherit(size_t i, struct conf_group *dst, const struct conf_group *src)
{
	const struct confkey	*k = &confkeys[i];
	struct cidr_list	*dl;
	const struct cidr_list	*sl;

	if (!(k->flags & CONFKEY_GROUP) || (k->flags & CONFKEY_OWN) ||
	    strcmp(k->section, conf_proto(dst->type)) != 0)
		return (0);
	if (k->flags & CONFKEY_CIDRS) {
		dl = KEY_FIELD(dst, k);
		sl = KEY_FIELD(src, k);
		free(dl->v);
		dl->v = NULL;
		dl->n = 0;
		if (sl->n == 0)
			return (0);
		if ((dl->v = calloc(sl->n, sizeof(*dl->v))) == NULL)
			return (-1);
		memcpy(dl->v, sl->v, sl->n * sizeof(*dl->v));
		dl->n = sl->n;
	} else if (k->flags & CONFKEY_PORTS)
		memcpy(dst->reflectors, src->reflectors,
		    sizeof(dst->reflectors));
	else
		*(uint64_t *)KEY_FIELD(dst, k) = *(const uint64_t *)KEY_FIELD(src,
		    k);
	return (0);
}

/* Name of a log level, for messages. */
const char *
conf_log_level_name(int level)
{
	if (level < LOG_ERR || level > LOG_DEBUG)
		return ("unknown");
	return (confkey_levels[level]);
}

/* Write a reason into why; return -1 for the setter to pass on. */
static int
confkey_why(char *why, size_t len, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return (-1);
}

/* A number within the key's bounds. */
static int
confkey_number(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	if (units_number(v, k->min, k->max, KEY_FIELD(obj, k)) == -1)
		return (confkey_why(why, len, "'%s' %s", v, k->must));
	return (0);
}

/* A size (64k, 1m) within the key's bounds. */
static int
confkey_size(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	uint64_t	 n;

	if (units_size(v, &n) == -1)
		return (confkey_why(why, len, "'%s' not a size (like 64k or "
		    "1m)", v));
	if (n < k->min || n > k->max)
		return (confkey_why(why, len, "'%s' %s", v, k->must));
	*(uint64_t *)KEY_FIELD(obj, k) = n;
	return (0);
}

/* A duration (500ms, 10s, 2m) within the key's bounds, in milliseconds. */
static int
confkey_duration(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	uint64_t	 ms;

	if (units_duration(v, &ms) == -1)
		return (confkey_why(why, len, "'%s' not a duration (like 500ms, "
		    "10s or 2m)", v));
	if (ms < k->min || ms > k->max)
		return (confkey_why(why, len, "'%s' %s", v, k->must));
	*(uint64_t *)KEY_FIELD(obj, k) = ms;
	return (0);
}

/*
 * Find the next space-separated word of a list value: return 0 at the end
 * or at a ';' or '#' that starts a comment (inih strips inline comments
 * from the first line of a value, not from continuation lines).
 */
static int
confkey_next_word(const char **v, const char **word, size_t *len)
{
	*v += strspn(*v, " \t");
	if (**v == '\0' || **v == ';' || **v == '#')
		return (0);
	*word = *v;
	*len = strcspn(*v, " \t");
	*v += *len;
	return (1);
}

/*
 * Copy the next word of a list value into word (size bytes).  Return 1,
 * 0 at the end, or -1 with the reason in why for a word too long to be
 * what.
 */
static int
confkey_word(const char **v, char *word, size_t size, const char *what,
    char *why, size_t len)
{
	const char	*ws;
	size_t		 wl;

	if (!confkey_next_word(v, &ws, &wl))
		return (0);
	if (wl >= size)
		return (confkey_why(why, len, "'%.*s...' is too long for %s",
		    20, ws, what));
	memcpy(word, ws, wl);
	word[wl] = '\0';
	return (1);
}

/* Append item, of size sz, to the array *vp of *n.  Return 0 or -1. */
static int
confkey_append(void *vp, size_t *n, const void *item, size_t sz)
{
	void	**v = vp;
	char	 *nv;

	if ((nv = reallocarray(*v, *n + 1, sz)) == NULL)
		return (-1);
	memcpy(nv + *n * sz, item, sz);
	*v = nv;
	(*n)++;
	return (0);
}

/* Add the space-separated addresses in v to the key's list. */
static int
confkey_listen(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	struct addr_list	*list = KEY_FIELD(obj, k);
	char			 word[ADDR_STRLEN];
	struct addr		 a;
	const char		*why2;
	size_t			 i;
	int			 rc;

	while ((rc = confkey_word(&v, word, sizeof(word), "an address", why,
	    len)) == 1) {
		if (addr_parse(word, &a, &why2) == -1)
			return (confkey_why(why, len, "bad address '%s': %s",
			    word, why2));
		if (addr_is_v4mapped(&a))
			/* IPv6 sockets here are IPv6-only: it could not bind. */
			return (confkey_why(why, len, "'%s' is an IPv4-mapped "
			    "IPv6 address; write the IPv4 address (like "
			    "127.0.0.1:7)", word));
		for (i = 0; i < list->n; i++)
			if (addr_equal(&list->v[i], &a))
				return (confkey_why(why, len, "address '%s' given "
				    "twice", word));
		if (confkey_append(&list->v, &list->n, &a, sizeof(a)) == -1)
			return (confkey_why(why, len, "out of memory"));
	}
	return (rc);
}

/* Add the space-separated prefixes in v to the key's list. */
static int
confkey_cidrs(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	struct cidr_list	*list = KEY_FIELD(obj, k);
	char			 word[64];
	struct cidr		 c;
	const char		*why2;
	int			 rc;

	if (!again) {
		/* Set here: it replaces what the group would inherit. */
		free(list->v);
		list->v = NULL;
		list->n = 0;
	}
	while ((rc = confkey_word(&v, word, sizeof(word), "an address prefix",
	    why, len)) == 1) {
		if (cidr_parse(word, &c, &why2) == -1)
			return (confkey_why(why, len, "bad prefix '%s': %s", word,
			    why2));
		if (confkey_append(&list->v, &list->n, &c, sizeof(c)) == -1)
			return (confkey_why(why, len, "out of memory"));
	}
	return (rc);
}

/*
 * Source ports whose datagrams are dropped.  The first line replaces the
 * built-in list (so an empty value, or "none", drops none); more add.
 */
static int
confkey_ports(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	unsigned char	*bits = KEY_FIELD(obj, k);
	char		 word[16];
	const char	*ws;
	size_t		 wl;
	uint64_t	 port;

	if (!again)
		memset(bits, 0, 65536 / 8);
	if (strcmp(v, "none") == 0)
		return (0);
	while (confkey_next_word(&v, &ws, &wl)) {
		if (wl < sizeof(word)) {
			memcpy(word, ws, wl);
			word[wl] = '\0';
		}
		if (wl >= sizeof(word) ||
		    units_number(word, 0, 65535, &port) == -1)
			return (confkey_why(why, len, "'%.*s' is not a port "
			    "number (0 to 65535)", (int)(wl > 20 ? 20 : wl), ws));
		PORTSET_ADD(bits, port);
	}
	return (0);
}

/* One of the words in the key's must; its place is the value. */
static int
confkey_choice(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	const char	*w = k->must, *ws;
	size_t		 wl, i, n;

	for (i = 0; confkey_next_word(&w, &ws, &wl); i++)
		if (strlen(v) == wl && strncmp(v, ws, wl) == 0) {
			*(uint64_t *)KEY_FIELD(obj, k) = i;
			return (0);
		}
	n = (size_t)snprintf(why, len, "'%s' must be one of", v);
	w = k->must;
	for (i = 0; confkey_next_word(&w, &ws, &wl) && n < len; i++)
		n += (size_t)snprintf(why + n, len - n, "%s %.*s", i > 0 ? "," :
		    "", (int)wl, ws);
	return (-1);
}

/* The balancers whose PROXY headers are believed: never none. */
static int
confkey_proxy_from(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	struct cidr_list	*list = KEY_FIELD(obj, k);

	if (confkey_cidrs(k, obj, v, again, why, len) == -1)
		return (-1);
	if (list->n == 0)
		return (confkey_why(why, len, "is empty: it would believe no "
		    "balancer (unset, it is 127.0.0.0/8 ::1)"));
	return (0);
}

static int
confkey_log_level(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	struct conf	*c = obj;
	int		 i;

	for (i = LOG_ERR; i <= LOG_DEBUG; i++) {
		if (strcmp(v, confkey_levels[i]) == 0) {
			c->log_level = i;
			return (0);
		}
	}
	return (confkey_why(why, len, "'%s' must be one of error, warning, "
	    "notice, info, debug", v));
}

static int
confkey_workers(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	if (strcmp(v, "auto") == 0) {
		((struct conf *)obj)->workers = 0;
		return (0);
	}
	return (confkey_number(k, obj, v, again, why, len));
}

static int
confkey_user(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	struct conf	*c = obj;
	size_t		 n = strlen(v);

	/* A POSIX portable user name; whether it exists is checked later. */
	if (n >= sizeof(c->user) || *v == '-' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != n)
		return (confkey_why(why, len, "'%s' is not a user name", v));
	memcpy(c->user, v, n + 1);
	return (0);
}

/*
 * The most echo data held in buffers: a size, 0 for no limit, or auto (a
 * quarter of the memory echod may use, worked out at start-up).
 */
static int
confkey_memory_limit(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	struct conf	*c = obj;
	uint64_t	 n;

	if (strcmp(v, "auto") == 0) {
		c->memory_limit_auto = 1;
		c->memory_limit = 0;
		return (0);
	}
	if (units_size(v, &n) == -1)
		return (confkey_why(why, len, "'%s' must be auto, 0 (no limit) "
		    "or a size (like 512m or 2g)", v));
	if (n > 0 && n < 1024 * 1024)
		return (confkey_why(why, len, "'%s' must be 0 (no limit) or at "
		    "least 1m", v));
	c->memory_limit_auto = 0;
	c->memory_limit = n;
	return (0);
}
