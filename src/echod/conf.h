/*
 * The configuration file: a struct filled from INI text by inih, with
 * defaults and validation.  A pure leaf like addr.c: no sockets, no libevent,
 * no logging; errors come back as "FILE:LINE: message" strings.
 */
#ifndef ECHOD_CONF_H
#define ECHOD_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CONF_ERRLEN	512
#define CONF_ERR_OPEN	(-2)	/* conf_load: the file cannot be opened */

struct addr_list {
	struct addr	*v;
	size_t		 n;
};

#define CONF_MAX_WORKERS	256

struct conf {
	int			log_level;	/* syslog priority, LOG_ERR..LOG_DEBUG */
	uint64_t		shutdown_timeout_ms;
	unsigned		workers;	/* 0: one per CPU */
	char			user[64];	/* empty: stay who we are */
	struct addr_list	tcp_listen;
	size_t			tcp_buffer_limit;
	size_t			tcp_max_connections; /* 0: no limit of its own */
	uint64_t		tcp_idle_timeout_ms; /* 0: never */
	int			tcp_backlog;
	struct cidr_list	tcp_allow, tcp_deny;
	size_t			tcp_max_per_ip;	/* 0: no limit */
	struct addr_list	udp_listen;
	struct cidr_list	udp_allow, udp_deny;
	unsigned char		udp_reflectors[65536 / 8]; /* source ports */
	uint64_t		udp_rate_limit;	/* per source/s; 0: none */
	uint64_t		udp_burst;	/* 0: one second's worth */
	uint64_t		memory_limit;	/* bytes of echo held; 0: none */
	int			memory_limit_auto; /* a share of memory */
	struct addr_list	metrics_listen;	/* empty: no metrics */
	size_t			metrics_max_connections;
	uint64_t		metrics_timeout_ms; /* for a whole request */
};

#define CONF_METRICS_MAX_LISTEN	8

/* A set of ports as a bitmap of 65536 bits (reflector_ports). */
#define PORTSET_HAS(bits, port)	(((bits)[(port) / 8] >> ((port) % 8)) & 1)
#define PORTSET_ADD(bits, port)						\
	((bits)[(port) / 8] |= (unsigned char)(1u << ((port) % 8)))

void	 conf_init(struct conf *);
void	 conf_free(struct conf *);
int	 conf_parse_string(struct conf *, const char *, const char *, char *,
	    size_t);
int	 conf_load(struct conf *, const char *, char *, size_t);

const char *conf_log_level_name(int);

#endif
