/*
 * The configuration file: a struct filled from INI text by inih, with
 * defaults and validation.  A pure leaf like addr.c: no sockets, no libevent,
 * no logging; errors come back as "FILE:LINE: message" strings.
 *
 * Listeners come in groups: [tcp] and [udp] are the unnamed groups
 * (called "default" in metrics and logs), [tcp NAME] and [udp NAME] named
 * ones.  A named group takes every setting it does not set from its
 * protocol's unnamed section, except listen (conf.c: conf_resolve).
 */
#ifndef ECHOD_CONF_H
#define ECHOD_CONF_H

#include <sys/socket.h>
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
#define CONF_MAX_GROUPS		32	/* in one file, both unnamed ones too */
#define CONF_GROUP_NAMELEN	32	/* a group name's characters, at most */
#define CONF_DEFAULT_GROUP	"default"
#define CONF_TLS_GROUP		"tls"	/* the unnamed [tls], in metrics */
#define CONF_GROUP_KEYS		64	/* at least confkey.c's keys */
#define CONF_PPM		1000000	/* a probability of 1, in millionths */
#define CONF_PATHLEN		1024

/* A group's protocol: its section's kind. */
#define CONF_TCP		0
#define CONF_UDP		1
#define CONF_TLS		2	/* TCP with TLS: type SOCK_STREAM */
#define CONF_NPROTOS		3

/* TLS versions (protocols), a mask. */
#define CONF_TLS12		0x1
#define CONF_TLS13		0x2

/* One listener group: its addresses and per-listener settings. */
struct conf_group {
	char			 name[CONF_GROUP_NAMELEN + 1];
	int			 proto;		/* CONF_TCP, CONF_UDP, CONF_TLS */
	int			 type;		/* SOCK_STREAM or SOCK_DGRAM */
	int			 line;		/* its first [section]; 0: none */
	int			 lines[CONF_GROUP_KEYS]; /* per key: where set */
	struct addr_list	 listen;
	struct cidr_list	 allow, deny;
	uint64_t		 buffer_limit;	/* TCP */
	uint64_t		 idle_timeout_ms; /* TCP; 0: never */
	uint64_t		 backlog;	/* TCP */
	uint64_t		 max_per_ip;	/* TCP; 0: no limit */
	uint64_t		 rate_limit;	/* UDP, per source/s; 0: none */
	uint64_t		 burst;		/* UDP; 0: one second's worth */
	uint64_t		 proxy;		/* TCP; PROXY_V1 | PROXY_V2 */
	struct cidr_list	 proxy_from;	/* TCP; empty: loopback */
	uint64_t		 proxy_timeout_ms; /* TCP */
	uint64_t		 banner;	/* TCP; 1: say who answers */
	char			 certificate[CONF_PATHLEN]; /* TLS: PEM chain */
	char			 key[CONF_PATHLEN];	/* TLS */
	char			 client_ca[CONF_PATHLEN]; /* TLS; "": no mTLS */
	char			 ciphers[256];	/* TLS 1.2; "": OpenSSL's */
	char			 ciphersuites[256]; /* TLS 1.3; "": OpenSSL's */
	uint64_t		 protocols;	/* TLS; CONF_TLS12 | CONF_TLS13 */
	uint64_t		 handshake_timeout_ms; /* TLS */
	unsigned char		 reflectors[65536 / 8]; /* UDP source ports */
	/* The fault profile (fault.h); 0: that fault is off. */
	uint64_t		 delay_ms, jitter_ms;	/* TCP and UDP */
	uint64_t		 bandwidth;	/* TCP, bytes/s each way */
	uint64_t		 group_bandwidth; /* TCP, bytes/s, all */
	uint64_t		 slice[2];	/* TCP: write sizes, min-max */
	uint64_t		 slice_gap_ms;	/* TCP */
	uint64_t		 reset_after;	/* TCP: bytes echoed */
	uint64_t		 close_after_ms; /* TCP: time connected */
	uint64_t		 stall_after;	/* TCP: bytes echoed */
	uint64_t		 reset_ppm, close_ppm, stall_ppm; /* TCP */
	uint64_t		 loss_ppm, duplicate_ppm; /* UDP */
};

struct conf {
	int			 log_level;	/* LOG_ERR..LOG_DEBUG */
	uint64_t		 shutdown_timeout_ms;
	uint64_t		 workers;	/* 0: one per CPU */
	char			 user[64];	/* empty: stay who we are */
	uint64_t		 max_connections; /* [tcp]; 0: no limit */
	uint64_t		 memory_limit;	/* bytes of echo held; 0: none */
	int			 memory_limit_auto; /* a share of memory */
	struct addr_list	 metrics_listen; /* empty: no metrics */
	uint64_t		 metrics_max_connections;
	uint64_t		 metrics_timeout_ms; /* for a whole request */
	uint64_t		 fault_seed;	/* the faults' random numbers */
	int			 fault_seed_set; /* else from the clock */
	uint64_t		 delay_queue;	/* [udp]: delayed datagrams per
						   worker, at most */
	/* [0] is [tcp], [1] is [udp], then named groups in file order. */
	struct conf_group	*groups;
	size_t			 ngroups;
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

struct conf_group *conf_tcp(const struct conf *);
struct conf_group *conf_udp(const struct conf *);
const struct conf_group *conf_group_of(const struct conf *, int,
	    const struct addr *);
const char *conf_proto(int);
const char *conf_group_proto(const struct conf_group *);
int	 conf_group_line(const struct conf_group *, const char *,
	    const char *);

/* confkey.c: the keys, their setters, and log level names */
const char *conf_log_level_name(int);

#endif
