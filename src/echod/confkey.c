/*
 * The keys of echod.conf: where each may stand, which setter reads its
 * value (confval.c: numbers, sizes and durations share one setter each,
 * driven by the table's bounds), and what a named group inherits.
 * conf.c does the rest: sections, lines, messages.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "confkey.h"
#include "units.h"

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
#define STRING	(CONFKEY_GROUP | CONFKEY_STRING)

static const struct confkey confkeys[] = {
	{ "server", "log_level", 0, confval_log_level, 0, 0, 0, NULL },
	{ "server", "shutdown_timeout", 0, confval_duration,
	    C(shutdown_timeout_ms), 0, DAY_MS, TIMEOUT },
	{ "server", "workers", 0, confval_workers, C(workers), 1,
	    CONF_MAX_WORKERS, "must be auto or a number from 1 to 256" },
	{ "server", "user", 0, confval_user, 0, 0, 0, NULL },
	{ "server", "memory_limit", 0, confval_memory_limit, 0, 0, 0, NULL },
	{ "server", "fault_seed", 0, confval_seed, 0, 0, 0, NULL },
	{ "tcp", "listen", LISTEN, confval_listen, G(listen), 0, 0,
	    NULL },
	{ "tcp", "buffer_limit", GROUP, confval_size, G(buffer_limit), 1024,
	    1024 * 1024 * 1024, "must be from 1k to 1g" },
	{ "tcp", "max_connections", CONFKEY_UNNAMED, confval_number,
	    C(max_connections), 0, 10000000, LIMIT },
	{ "tcp", "idle_timeout", GROUP, confval_duration, G(idle_timeout_ms),
	    0, DAY_MS, TIMEOUT },
	{ "tcp", "backlog", GROUP, confval_number, G(backlog), 1, 65535,
	    "must be a number from 1 to 65535" },
	{ "tcp", "allow", CIDRS, confval_cidrs, G(allow), 0, 0, NULL },
	{ "tcp", "deny", CIDRS, confval_cidrs, G(deny), 0, 0, NULL },
	{ "tcp", "max_connections_per_ip", GROUP, confval_number,
	    G(max_per_ip), 0, 10000000, LIMIT },
	/* Words in the order of their values: PROXY_V1 is 1, PROXY_V2 2. */
	{ "tcp", "proxy_protocol", GROUP, confval_choice, G(proxy), 0, 0,
	    "off v1 v2 any" },
	{ "tcp", "proxy_from", CIDRS, confval_proxy_from, G(proxy_from), 0, 0,
	    NULL },
	{ "tcp", "proxy_timeout", GROUP, confval_duration, G(proxy_timeout_ms),
	    100, 60 * 60 * 1000, "must be from 100ms to 1h" },
	{ "tcp", "banner", GROUP, confval_choice, G(banner), 0, 0, "off on" },
	/* The fault profile (fault.c): misbehaving on purpose. */
	{ "tcp", "delay", GROUP, confval_duration, G(delay_ms), 0,
	    60 * 60 * 1000, "must be at most 1h" },
	{ "tcp", "jitter", GROUP, confval_duration, G(jitter_ms), 0,
	    60 * 60 * 1000, "must be at most 1h" },
	{ "tcp", "bandwidth", GROUP, confval_size, G(bandwidth), 0,
	    1ULL << 40, "must be from 0 (no limit) to 1024g "
	    "bytes a second" },
	{ "tcp", "group_bandwidth", GROUP, confval_size, G(group_bandwidth),
	    0, 1ULL << 40, "must be from 0 (no limit) to 1024g "
	    "bytes a second" },
	{ "tcp", "slice", GROUP | CONFKEY_RANGE, confval_range, G(slice), 1,
	    64 * 1024, "must be 0 (off), or a size or range of sizes from 1 "
	    "to 64k (like 1-64)" },
	{ "tcp", "slice_gap", GROUP, confval_duration, G(slice_gap_ms), 0,
	    60 * 1000, "must be at most 1m" },
	{ "tcp", "reset_after", GROUP, confval_size, G(reset_after), 0,
	    1ULL << 50, "must be at most 1048576g" },
	{ "tcp", "reset_probability", GROUP, confval_probability,
	    G(reset_ppm), 0, CONF_PPM, NULL },
	{ "tcp", "close_after", GROUP, confval_duration, G(close_after_ms), 0,
	    DAY_MS, TIMEOUT },
	{ "tcp", "close_probability", GROUP, confval_probability,
	    G(close_ppm), 0, CONF_PPM, NULL },
	{ "tcp", "stall_after", GROUP, confval_size, G(stall_after), 0,
	    1ULL << 50, "must be at most 1048576g" },
	{ "tcp", "stall_probability", GROUP, confval_probability,
	    G(stall_ppm), 0, CONF_PPM, NULL },
	{ "tls", "certificate", STRING, confval_string, G(certificate), 0,
	    CONF_PATHLEN, NULL },
	{ "tls", "key", STRING, confval_string, G(key), 0, CONF_PATHLEN, NULL },
	{ "tls", "client_ca", STRING, confval_string, G(client_ca), 0,
	    CONF_PATHLEN, NULL },
	{ "tls", "protocols", GROUP, confval_protocols, G(protocols), 0, 0,
	    NULL },
	{ "tls", "ciphers", STRING, confval_string, G(ciphers), 0, 256, NULL },
	{ "tls", "ciphersuites", STRING, confval_string, G(ciphersuites), 0,
	    256, NULL },
	{ "tls", "handshake_timeout", GROUP, confval_duration,
	    G(handshake_timeout_ms), 100, 60 * 60 * 1000,
	    "must be from 100ms to 1h" },
	{ "udp", "listen", LISTEN, confval_listen, G(listen), 0, 0,
	    NULL },
	{ "udp", "allow", CIDRS, confval_cidrs, G(allow), 0, 0, NULL },
	{ "udp", "deny", CIDRS, confval_cidrs, G(deny), 0, 0, NULL },
	{ "udp", "reflector_ports", PORTS, confval_ports, G(reflectors), 0, 0,
	    NULL },
	{ "udp", "rate_limit", GROUP, confval_number, G(rate_limit), 0,
	    10000000, "must be a number of datagrams per second from 0 (no "
	    "limit) to 10000000" },
	{ "udp", "burst", GROUP, confval_number, G(burst), 0, 10000000,
	    "must be a number of datagrams from 0 (rate_limit's value) to "
	    "10000000" },
	{ "udp", "delay", GROUP, confval_duration, G(delay_ms), 0,
	    60 * 60 * 1000, "must be at most 1h" },
	{ "udp", "jitter", GROUP, confval_duration, G(jitter_ms), 0,
	    60 * 60 * 1000, "must be at most 1h" },
	{ "udp", "loss", GROUP, confval_probability, G(loss_ppm), 0,
	    CONF_PPM, NULL },
	{ "udp", "duplicate", GROUP, confval_probability, G(duplicate_ppm),
	    0, CONF_PPM, NULL },
	{ "udp", "delay_queue", CONFKEY_UNNAMED, confval_number,
	    C(delay_queue), 1, 10000000,
	    "must be a number of datagrams from 1 to 10000000" },
	{ "metrics", "listen", REPEAT, confval_listen, C(metrics_listen), 0, 0,
	    NULL },
	{ "metrics", "max_connections", 0, confval_number,
	    C(metrics_max_connections), 1, 1024,
	    "must be a number from 1 to 1024" },
	{ "metrics", "request_timeout", 0, confval_duration,
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

/* Tell whether key k is one of a group of proto: TLS has TCP's too. */
static int
confkey_applies(const struct confkey *k, int proto)
{
	/* Not the PROXY protocol: TLS groups do not read it (yet). */
	if (proto == CONF_TLS && strncmp(k->name, "proxy_", 6) == 0)
		return (0);
	return (strcmp(k->section, conf_proto(proto == CONF_UDP ? SOCK_DGRAM :
	    SOCK_STREAM)) == 0 || (proto == CONF_TLS &&
	    strcmp(k->section, "tls") == 0));
}

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
	g->protocols = CONF_TLS12 | CONF_TLS13;
	g->handshake_timeout_ms = 10000;
	g->reset_ppm = g->close_ppm = g->stall_ppm = CONF_PPM;
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
	    !confkey_applies(k, dst->proto))
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
	} else if (k->flags & CONFKEY_STRING)
		memcpy(KEY_FIELD(dst, k), KEY_FIELD(src, k), k->max);
	else if (k->flags & CONFKEY_RANGE)
		memcpy(KEY_FIELD(dst, k), KEY_FIELD(src, k), 2 * sizeof(uint64_t));
	else if (k->flags & CONFKEY_PORTS)
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

