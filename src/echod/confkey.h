/*
 * The keys of echod.conf (private to conf.c and confkey.c): one table
 * entry per key says where it may stand, how its value is read, and where
 * it is stored.
 */
#ifndef ECHOD_CONFKEY_H
#define ECHOD_CONFKEY_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define CONFKEY_MAX	CONF_GROUP_KEYS	/* keys in the table, at most */

#define CONFKEY_REPEAT	0x1	/* may be given again: each adds */
#define CONFKEY_GROUP	0x2	/* a group's own, inherited by named ones */
#define CONFKEY_UNNAMED	0x4	/* only in the unnamed section */
#define CONFKEY_OWN	0x8	/* a group's own, never inherited (listen) */
#define CONFKEY_CIDRS	0x10	/* the field is a struct cidr_list */
#define CONFKEY_PORTS	0x20	/* the field is a port bitmap */
#define CONFKEY_STRING	0x40	/* the field is a char[max] */
#define CONFKEY_RANGE	0x80	/* the field is a uint64_t[2] */

struct confkey {
	const char	*section;	/* "server", "tcp", "udp", "metrics" */
	const char	*name;
	int		 flags;
	/*
	 * Store v in obj (the conf, or the group with CONFKEY_GROUP); again
	 * says the key was given before in this section.  Return 0, or -1
	 * with the reason (after "[section] key: ") in why.
	 */
	int		(*set)(const struct confkey *, void *, const char *, int,
			    char *, size_t);
	size_t		 off;		/* of the field in obj */
	uint64_t	 min, max;	/* the numeric kinds */
	const char	*must;		/* "must be ..." for them; for
					   confkey_choice, its words */
};

#define KEY_FIELD(obj, k)	((void *)((char *)(obj) + (k)->off))

/* confval.c: the setters the table names. */
int	confval_number(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_size(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_duration(const struct confkey *, void *,
		    const char *, int, char *, size_t);
int	confval_listen(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_cidrs(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_ports(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_log_level(const struct confkey *, void *,
		    const char *, int, char *, size_t);
int	confval_workers(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_user(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_memory_limit(const struct confkey *, void *,
		    const char *, int, char *, size_t);
int	confval_choice(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_proxy_from(const struct confkey *, void *,
		    const char *, int, char *, size_t);
int	confval_string(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_protocols(const struct confkey *, void *,
		    const char *, int, char *, size_t);
int	confval_probability(const struct confkey *, void *,
		    const char *, int, char *, size_t);
int	confval_range(const struct confkey *, void *, const char *,
		    int, char *, size_t);
int	confval_seed(const struct confkey *, void *, const char *,
		    int, char *, size_t);



const struct confkey *confkey_find(const char *, const char *, size_t *);
size_t	 confkey_count(void);
int	 confkey_inherit(size_t, struct conf_group *,
	    const struct conf_group *);
void	 confkey_group_defaults(struct conf_group *);

#endif
