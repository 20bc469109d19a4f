/*
 * Reading echod.conf.  inih splits the text into (section, key, value); a
 * table maps each pair to a setter that checks and stores the value.  inih
 * reads lines through conf_reader, which counts them, so every error names
 * its line, and which also rejects unknown [sections] (inih never reports a
 * section by itself) and lines too long for inih's buffer.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include <ini.h>

#include "conf.h"
#include "units.h"

#define CONF_MAX_FILE	(1024 * 1024)

struct conf_parser;

struct conf_key {
	const char	*section;
	const char	*name;
	int		 repeatable;
	int		(*set)(struct conf_parser *, const char *, const char **);
};

static int	conf_set_log_level(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_shutdown_timeout(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_tcp_listen(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_tcp_buffer_limit(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_udp_listen(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_workers(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_user(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_metrics_listen(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_tcp_allow(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_tcp_deny(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_tcp_max_per_ip(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_udp_allow(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_udp_deny(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_udp_reflector_ports(struct conf_parser *,
		    const char *, const char **);
static int	conf_set_udp_rate_limit(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_udp_burst(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_tcp_max_connections(struct conf_parser *,
		    const char *, const char **);
static int	conf_set_tcp_idle_timeout(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_tcp_backlog(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_memory_limit(struct conf_parser *, const char *,
		    const char **);
static int	conf_set_metrics_max_connections(struct conf_parser *,
		    const char *, const char **);
static int	conf_set_metrics_timeout(struct conf_parser *, const char *,
		    const char **);

static const struct conf_key conf_keys[] = {
	{ "server", "log_level", 0, conf_set_log_level },
	{ "server", "shutdown_timeout", 0, conf_set_shutdown_timeout },
	{ "server", "workers", 0, conf_set_workers },
	{ "server", "user", 0, conf_set_user },
	{ "server", "memory_limit", 0, conf_set_memory_limit },
	{ "tcp", "listen", 1, conf_set_tcp_listen },
	{ "tcp", "buffer_limit", 0, conf_set_tcp_buffer_limit },
	{ "tcp", "max_connections", 0, conf_set_tcp_max_connections },
	{ "tcp", "idle_timeout", 0, conf_set_tcp_idle_timeout },
	{ "tcp", "backlog", 0, conf_set_tcp_backlog },
	{ "tcp", "allow", 1, conf_set_tcp_allow },
	{ "tcp", "deny", 1, conf_set_tcp_deny },
	{ "tcp", "max_connections_per_ip", 0, conf_set_tcp_max_per_ip },
	{ "udp", "listen", 1, conf_set_udp_listen },
	{ "udp", "allow", 1, conf_set_udp_allow },
	{ "udp", "deny", 1, conf_set_udp_deny },
	{ "udp", "reflector_ports", 1, conf_set_udp_reflector_ports },
	{ "udp", "rate_limit", 0, conf_set_udp_rate_limit },
	{ "udp", "burst", 0, conf_set_udp_burst },
	{ "metrics", "listen", 1, conf_set_metrics_listen },
	{ "metrics", "max_connections", 0, conf_set_metrics_max_connections },
	{ "metrics", "request_timeout", 0, conf_set_metrics_timeout },
};
#define CONF_NKEYS	(sizeof(conf_keys) / sizeof(conf_keys[0]))

struct conf_parser {
	struct conf	*conf;
	const char	*name;		/* file name used in messages */
	const char	*pos;		/* next unread character */
	int		 lineno;	/* line last handed to inih */
	int		 err_line;	/* line of the first error, or 0 */
	int		 err_set;	/* an error message was recorded */
	char		*err;
	size_t		 errlen;
	unsigned char	 seen[CONF_NKEYS]; /* per key in conf_keys: given */
	int		 listen_line;	/* last line with a listen key */
	int		 metrics_line;	/* last line with [metrics] listen */
	int		 in_key;	/* a key was seen since the last [section] */
	int		 reflectors_set; /* reflector_ports replaced the default */
};

static const char *conf_sections[] = { "server", "tcp", "udp", "metrics" };
#define CONF_NSECTIONS	(sizeof(conf_sections) / sizeof(conf_sections[0]))

static const char *conf_level_names[] = {
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
static const unsigned conf_reflectors[] = {
	0, 7, 13, 17, 19, 37, 53, 123, 161, 389, 1900, 11211
};

/* Set the built-in reflector port list. */
static void
conf_default_reflectors(struct conf *c)
{
	size_t	 i;

	memset(c->udp_reflectors, 0, sizeof(c->udp_reflectors));
	for (i = 0; i < sizeof(conf_reflectors) / sizeof(conf_reflectors[0]);
	    i++)
		PORTSET_ADD(c->udp_reflectors, conf_reflectors[i]);
}

/* Fill in the defaults, which are also what etc/echod.conf documents. */
void
conf_init(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOG_INFO;
	c->shutdown_timeout_ms = 10 * 1000;
	c->tcp_buffer_limit = 256 * 1024;
	c->tcp_backlog = 4096;
	c->memory_limit_auto = 1;
	c->metrics_max_connections = 16;
	c->metrics_timeout_ms = 5 * 1000;
	conf_default_reflectors(c);
}

/* Release what conf_parse_string allocated. */
void
conf_free(struct conf *c)
{
	free(c->tcp_listen.v);
	free(c->udp_listen.v);
	free(c->metrics_listen.v);
	free(c->tcp_allow.v);
	free(c->tcp_deny.v);
	free(c->udp_allow.v);
	free(c->udp_deny.v);
	c->tcp_allow.v = c->tcp_deny.v = c->udp_allow.v = c->udp_deny.v = NULL;
	c->tcp_allow.n = c->tcp_deny.n = c->udp_allow.n = c->udp_deny.n = 0;
	c->tcp_listen.v = c->udp_listen.v = c->metrics_listen.v = NULL;
	c->tcp_listen.n = c->udp_listen.n = c->metrics_listen.n = 0;
}

/* Name of a log level, for messages. */
const char *
conf_log_level_name(int level)
{
	if (level < LOG_ERR || level > LOG_DEBUG)
		return ("unknown");
	return (conf_level_names[level]);
}

/* Record the first error, prefixed with file and line. */
static void
conf_error(struct conf_parser *p, int line, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (p->err_set)
		return;
	p->err_set = 1;
	p->err_line = line;
	if (line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->name);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int
conf_set_log_level(struct conf_parser *p, const char *v, const char **why)
{
	int	 i;

	for (i = LOG_ERR; i <= LOG_DEBUG; i++) {
		if (strcmp(v, conf_level_names[i]) == 0) {
			p->conf->log_level = i;
			return (0);
		}
	}
	*why = "must be one of error, warning, notice, info, debug";
	return (-1);
}

/* Parse a duration of at most a day, for the timeout keys. */
static int
conf_parse_timeout(const char *v, uint64_t *ms, const char **why)
{
	if (units_duration(v, ms) == -1) {
		*why = "not a duration (like 500ms, 10s or 2m)";
		return (-1);
	}
	if (*ms > 24 * 60 * 60 * 1000) {
		*why = "must be at most 24h";
		return (-1);
	}
	return (0);
}

static int
conf_set_shutdown_timeout(struct conf_parser *p, const char *v,
    const char **why)
{
	return (conf_parse_timeout(v, &p->conf->shutdown_timeout_ms, why));
}

static int
conf_set_tcp_buffer_limit(struct conf_parser *p, const char *v,
    const char **why)
{
	uint64_t	 n;

	if (units_size(v, &n) == -1) {
		*why = "not a size (like 64k or 1m)";
		return (-1);
	}
	if (n < 1024 || n > 1024 * 1024 * 1024) {
		*why = "must be from 1k to 1g";
		return (-1);
	}
	p->conf->tcp_buffer_limit = (size_t)n;
	return (0);
}

/*
 * Find the next space-separated word of a list value: return 0 at the end
 * or at a ';' or '#' that starts a comment (inih strips inline comments
 * from the first line of a value, not from continuation lines).
 */
static int
conf_next_word(const char **v, const char **word, size_t *len)
{
	*v += strspn(*v, " \t");
	if (**v == '\0' || **v == ';' || **v == '#')
		return (0);
	*word = *v;
	*len = strcspn(*v, " \t");
	*v += *len;
	return (1);
}

static int
conf_set_workers(struct conf_parser *p, const char *v, const char **why)
{
	uint64_t	 n;

	if (strcmp(v, "auto") == 0) {
		p->conf->workers = 0;
		return (0);
	}
	if (units_number(v, 1, CONF_MAX_WORKERS, &n) == -1) {
		*why = "must be auto or a number from 1 to 256";
		return (-1);
	}
	p->conf->workers = (unsigned)n;
	return (0);
}

static int
conf_set_user(struct conf_parser *p, const char *v, const char **why)
{
	size_t	 len = strlen(v);

	/* A POSIX portable user name; whether it exists is checked later. */
	if (len >= sizeof(p->conf->user) || *v == '-' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != len) {
		*why = "is not a user name";
		return (-1);
	}
	memcpy(p->conf->user, v, len + 1);
	return (0);
}

/* Parse a connection limit, 0 meaning none, into *out. */
static int
conf_parse_limit(const char *v, size_t *out, const char **why)
{
	uint64_t	 n;

	if (units_number(v, 0, 10000000, &n) == -1) {
		*why = "must be a number from 0 (no limit) to 10000000";
		return (-1);
	}
	*out = (size_t)n;
	return (0);
}

static int
conf_set_tcp_max_connections(struct conf_parser *p, const char *v,
    const char **why)
{
	return (conf_parse_limit(v, &p->conf->tcp_max_connections, why));
}

static int
conf_set_tcp_idle_timeout(struct conf_parser *p, const char *v,
    const char **why)
{
	return (conf_parse_timeout(v, &p->conf->tcp_idle_timeout_ms, why));
}

static int
conf_set_tcp_backlog(struct conf_parser *p, const char *v, const char **why)
{
	uint64_t	 n;

	if (units_number(v, 1, 65535, &n) == -1) {
		*why = "must be a number from 1 to 65535";
		return (-1);
	}
	p->conf->tcp_backlog = (int)n;
	return (0);
}

/*
 * Add the space-separated addresses in v to list.  The first listen line of
 * a file replaces the built-in default; later ones (and inih's indented
 * continuation lines) add to it, so an empty value turns the protocol off.
 */
static int
conf_set_listen(struct conf_parser *p, struct addr_list *list,
    const char *proto, const char *v, const char **why)
{
	char		 word[ADDR_STRLEN];
	struct addr	 a, *nv;
	const char	*ws, *why2;
	size_t		 len, i;

	(void)why;
	if (list != &p->conf->metrics_listen)
		p->listen_line = p->lineno;
	else
		p->metrics_line = p->lineno;
	while (conf_next_word(&v, &ws, &len)) {
		if (len >= sizeof(word)) {
			conf_error(p, p->lineno, "[%s] listen: '%.*s...' is too "
			    "long for an address", proto, 20, ws);
			return (-1);
		}
		memcpy(word, ws, len);
		word[len] = '\0';
		if (addr_parse(word, &a, &why2) == -1) {
			conf_error(p, p->lineno, "[%s] listen: bad address "
			    "'%s': %s", proto, word, why2);
			return (-1);
		}
		if (addr_is_v4mapped(&a)) {
			/* IPv6 sockets here are IPv6-only: it could not bind. */
			conf_error(p, p->lineno, "[%s] listen: '%s' is an "
			    "IPv4-mapped IPv6 address; write the IPv4 address "
			    "(like 127.0.0.1:7)", proto, word);
			return (-1);
		}
		for (i = 0; i < list->n; i++) {
			if (addr_equal(&list->v[i], &a)) {
				conf_error(p, p->lineno, "[%s] listen: address "
				    "'%s' given twice", proto, word);
				return (-1);
			}
		}
		nv = reallocarray(list->v, list->n + 1, sizeof(*nv));
		if (nv == NULL) {
			conf_error(p, p->lineno, "out of memory");
			return (-1);
		}
		list->v = nv;
		list->v[list->n++] = a;
	}
	return (0);
}

static int
conf_set_tcp_listen(struct conf_parser *p, const char *v, const char **why)
{
	return (conf_set_listen(p, &p->conf->tcp_listen, "tcp", v, why));
}

static int
conf_set_udp_listen(struct conf_parser *p, const char *v, const char **why)
{
	return (conf_set_listen(p, &p->conf->udp_listen, "udp", v, why));
}

/* Add the space-separated prefixes in v to list. */
static int
conf_set_cidrs(struct conf_parser *p, struct cidr_list *list,
    const char *where, const char *v)
{
	char		 word[64];
	struct cidr	 c, *nv;
	const char	*ws, *why;
	size_t		 len;

	while (conf_next_word(&v, &ws, &len)) {
		if (len >= sizeof(word)) {
			conf_error(p, p->lineno, "%s: '%.*s...' is too long for "
			    "an address prefix", where, 20, ws);
			return (-1);
		}
		memcpy(word, ws, len);
		word[len] = '\0';
		if (cidr_parse(word, &c, &why) == -1) {
			conf_error(p, p->lineno, "%s: bad prefix '%s': %s",
			    where, word, why);
			return (-1);
		}
		nv = reallocarray(list->v, list->n + 1, sizeof(*nv));
		if (nv == NULL) {
			conf_error(p, p->lineno, "out of memory");
			return (-1);
		}
		list->v = nv;
		list->v[list->n++] = c;
	}
	return (0);
}

static int
conf_set_tcp_allow(struct conf_parser *p, const char *v, const char **why)
{
	return (conf_set_cidrs(p, &p->conf->tcp_allow, "[tcp] allow", v));
}

static int
conf_set_tcp_deny(struct conf_parser *p, const char *v, const char **why)
{
	return (conf_set_cidrs(p, &p->conf->tcp_deny, "[tcp] deny", v));
}

static int
conf_set_udp_allow(struct conf_parser *p, const char *v, const char **why)
{
	return (conf_set_cidrs(p, &p->conf->udp_allow, "[udp] allow", v));
}

static int
conf_set_udp_deny(struct conf_parser *p, const char *v, const char **why)
{
	return (conf_set_cidrs(p, &p->conf->udp_deny, "[udp] deny", v));
}

static int
conf_set_tcp_max_per_ip(struct conf_parser *p, const char *v,
    const char **why)
{
	return (conf_parse_limit(v, &p->conf->tcp_max_per_ip, why));
}

/*
 * Source ports whose datagrams are dropped.  The first line replaces the
 * built-in list (so an empty value, or "none", drops none); more add.
 */
static int
conf_set_udp_reflector_ports(struct conf_parser *p, const char *v,
    const char **why)
{
	char		 word[16];
	const char	*ws;
	size_t		 len;
	uint64_t	 port;

	if (!p->reflectors_set) {
		memset(p->conf->udp_reflectors, 0,
		    sizeof(p->conf->udp_reflectors));
		p->reflectors_set = 1;
	}
	if (strcmp(v, "none") == 0)
		return (0);
	while (conf_next_word(&v, &ws, &len)) {
		if (len < sizeof(word)) {
			memcpy(word, ws, len);
			word[len] = '\0';
		}
		if (len >= sizeof(word) ||
		    units_number(word, 0, 65535, &port) == -1) {
			conf_error(p, p->lineno, "[udp] reflector_ports: "
			    "'%.*s' is not a port number (0 to 65535)",
			    (int)(len > 20 ? 20 : len), ws);
			return (-1);
		}
		PORTSET_ADD(p->conf->udp_reflectors, port);
	}
	(void)why;
	return (0);
}

static int
conf_set_udp_rate_limit(struct conf_parser *p, const char *v,
    const char **why)
{
	if (units_number(v, 0, 10000000, &p->conf->udp_rate_limit) ==
	    -1) {
		*why = "must be a number of datagrams per second from 0 (no "
		    "limit) to 10000000";
		return (-1);
	}
	return (0);
}

static int
conf_set_udp_burst(struct conf_parser *p, const char *v, const char **why)
{
	if (units_number(v, 0, 10000000, &p->conf->udp_burst) == -1) {
		*why = "must be a number of datagrams from 0 (rate_limit's "
		    "value) to 10000000";
		return (-1);
	}
	return (0);
}

static int
conf_set_metrics_listen(struct conf_parser *p, const char *v,
    const char **why)
{
	return (conf_set_listen(p, &p->conf->metrics_listen, "metrics", v,
	    why));
}

/*
 * The most echo data held in buffers: a size, 0 for no limit, or auto (a
 * quarter of the memory echod may use, worked out at start-up).
 */
static int
conf_set_memory_limit(struct conf_parser *p, const char *v, const char **why)
{
	uint64_t	 n;

	if (strcmp(v, "auto") == 0) {
		p->conf->memory_limit_auto = 1;
		p->conf->memory_limit = 0;
		return (0);
	}
	if (units_size(v, &n) == -1) {
		*why = "must be auto, 0 (no limit) or a size (like 512m or 2g)";
		return (-1);
	}
	if (n > 0 && n < 1024 * 1024) {
		*why = "must be 0 (no limit) or at least 1m";
		return (-1);
	}
	p->conf->memory_limit_auto = 0;
	p->conf->memory_limit = n;
	return (0);
}

static int
conf_set_metrics_max_connections(struct conf_parser *p, const char *v,
    const char **why)
{
	uint64_t	 n;

	if (units_number(v, 1, 1024, &n) == -1) {
		*why = "must be a number from 1 to 1024";
		return (-1);
	}
	p->conf->metrics_max_connections = (size_t)n;
	return (0);
}

static int
conf_set_metrics_timeout(struct conf_parser *p, const char *v,
    const char **why)
{
	uint64_t	 ms;

	if (units_duration(v, &ms) == -1) {
		*why = "not a duration (like 500ms, 10s or 2m)";
		return (-1);
	}
	if (ms < 10 || ms > 60 * 60 * 1000) {
		*why = "must be from 10ms to 1h";
		return (-1);
	}
	p->conf->metrics_timeout_ms = ms;
	return (0);
}

/* inih's callback: dispatch one key to its setter. */
static int
conf_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct conf_parser	*p = arg;
	const char		*why = NULL;
	size_t			 i;

	if (p->err_set)
		return (1);
	p->in_key = 1;
	if (*name == '\0') {
		conf_error(p, p->lineno, "missing key name before '='");
		return (0);
	}
	if (*section == '\0') {
		conf_error(p, p->lineno, "key '%s' is outside any [section]",
		    name);
		return (0);
	}
	for (i = 0; i < CONF_NKEYS; i++) {
		if (strcmp(conf_keys[i].section, section) != 0 ||
		    strcmp(conf_keys[i].name, name) != 0)
			continue;
		if (!conf_keys[i].repeatable && p->seen[i]) {
			conf_error(p, p->lineno, "[%s] %s: given twice",
			    section, name);
			return (0);
		}
		p->seen[i] = 1;
		if (conf_keys[i].set(p, value, &why) == -1) {
			if (why != NULL)
				conf_error(p, p->lineno, "[%s] %s: '%s' %s",
				    section, name, value, why);
			return (0);
		}
		return (1);
	}
	conf_error(p, p->lineno, "unknown key '%s' in [%s]", name, section);
	return (0);
}

/* Check a "[section]" line against the sections echod knows. */
static void
conf_check_section(struct conf_parser *p, const char *line)
{
	const char	*end;
	size_t		 len, i;

	if (p->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	/* Like inih: an indented line after a key continues its value. */
	if (p->in_key && (*line == ' ' || *line == '\t'))
		return;
	line += strspn(line, " \t\r");
	if (*line != '[')
		return;
	p->in_key = 0;
	line++;
	end = strchr(line, ']');
	if (end == NULL)
		return;		/* inih reports the syntax error */
	len = (size_t)(end - line);
	for (i = 0; i < CONF_NSECTIONS; i++) {
		if (strlen(conf_sections[i]) == len &&
		    strncmp(conf_sections[i], line, len) == 0)
			return;
	}
	conf_error(p, p->lineno, "unknown section [%.*s]", (int)len, line);
}

/* inih's line reader over an in-memory string; counts lines. */
static char *
conf_reader(char *buf, int size, void *arg)
{
	struct conf_parser	*p = arg;
	const char		*nl;
	size_t			 len;

	if (p->err_set || *p->pos == '\0')
		return (NULL);
	nl = strchr(p->pos, '\n');
	len = nl != NULL ? (size_t)(nl - p->pos) + 1 : strlen(p->pos);
	p->lineno++;
	if (size < 2 || len > (size_t)size - 1) {
		conf_error(p, p->lineno, "line too long (at most %d "
		    "characters)", size - 2);
		return (NULL);
	}
	memcpy(buf, p->pos, len);
	buf[len] = '\0';
	p->pos += len;
	conf_check_section(p, buf);
	if (p->err_set)
		return (NULL);
	return (buf);
}

/* Checks that need the whole file. */
static void
conf_validate(struct conf_parser *p)
{
	if (p->conf->tcp_listen.n == 0 && p->conf->udp_listen.n == 0)
		conf_error(p, p->listen_line, "no listener: [tcp] listen and "
		    "[udp] listen are both empty");
	if (p->conf->metrics_listen.n > CONF_METRICS_MAX_LISTEN)
		conf_error(p, p->metrics_line, "[metrics] listen: %zu "
		    "addresses; at most %d", p->conf->metrics_listen.n,
		    CONF_METRICS_MAX_LISTEN);
}

/*
 * Parse text (named name in messages) into c, which must have been set up
 * with conf_init.  Return 0, or -1 with "NAME:LINE: message" in err.
 */
int
conf_parse_string(struct conf *c, const char *text, const char *name,
    char *err, size_t errlen)
{
	struct conf_parser	 p;
	const char		*why;
	int			 rc;
	size_t			 i;
	static const char	*defaults[] = { "127.0.0.1:7", "[::1]:7" };

	memset(&p, 0, sizeof(p));
	p.conf = c;
	p.name = name;
	p.pos = text;
	p.err = err;
	p.errlen = errlen;

	rc = ini_parse_stream(conf_reader, &p, conf_handler, &p);
	if (rc > 0 && (!p.err_set || rc < p.err_line)) {
		p.err_set = 0;
		conf_error(&p, rc, "syntax error: expected [section], "
		    "key = value or a comment");
	} else if (rc < 0 && !p.err_set)
		conf_error(&p, 0, "cannot parse: out of memory");

	/* Unset listen keys take the loopback default. */
	for (i = 0; !p.err_set && i < CONF_NKEYS; i++) {
		if (conf_keys[i].set != conf_set_tcp_listen &&
		    conf_keys[i].set != conf_set_udp_listen)
			continue;
		if (p.seen[i])
			continue;
		if (conf_keys[i].set(&p, defaults[0], &why) == -1 ||
		    conf_keys[i].set(&p, defaults[1], &why) == -1)
			break;
	}
	if (!p.err_set)
		conf_validate(&p);
	return (p.err_set ? -1 : 0);
}

/*
 * Read and parse a file; messages name it by path.  Return 0, -1 for a bad
 * file, or CONF_ERR_OPEN when it cannot be opened at all.
 */
int
conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*text;
	size_t	 n;
	int	 rc;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (CONF_ERR_OPEN);
	}
	if ((text = malloc(CONF_MAX_FILE + 1)) == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return (-1);
	}
	n = fread(text, 1, CONF_MAX_FILE + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	} else if (n > CONF_MAX_FILE) {
		snprintf(err, errlen, "%s: file is larger than %d bytes", path,
		    CONF_MAX_FILE);
		rc = -1;
	} else if (memchr(text, '\0', n) != NULL) {
		snprintf(err, errlen, "%s: file contains a NUL byte", path);
		rc = -1;
	} else {
		text[n] = '\0';
		rc = conf_parse_string(c, text, path, err, errlen);
	}
	free(text);
	fclose(f);
	return (rc);
}
