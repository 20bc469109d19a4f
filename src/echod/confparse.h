/*
 * The parser's state, shared by conf.c (lines, sections, keys) and
 * confgroup.c (listener groups); private to the two.
 */
#ifndef ECHOD_CONFPARSE_H
#define ECHOD_CONFPARSE_H

#include <stddef.h>

#include "conf.h"
#include "confkey.h"

struct conf_parser {
	struct conf	*conf;
	const char	*name;		/* file name used in messages */
	const char	*pos;		/* next unread character */
	int		 lineno;	/* line last handed to inih */
	int		 err_line;	/* line of the first error, or 0 */
	int		 err_set;	/* an error message was recorded */
	char		*err;
	size_t		 errlen;
	int		 in_key;	/* a key was seen since the last [section] */
	int		 listen_line;	/* last line with a tcp or udp listen */
	int		 metrics_line;	/* last line with [metrics] listen */
	int		 listen_set[CONF_NPROTOS]; /* some listen in the file */
	unsigned char	 seen[CONFKEY_MAX]; /* per key: given ([server] ...) */
	unsigned char	 gseen[CONF_MAX_GROUPS][CONFKEY_MAX]; /* per group */
};

void	 conf_error(struct conf_parser *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));

const char *confgroup_label(const struct conf_group *, char *, size_t);
int	 confgroup_add(struct conf_parser *, int, const char *, size_t, int);
int	 confgroup_find(const struct conf *, int, const char *, size_t);
void	 confgroup_section(struct conf_parser *, int, const char *, size_t);
int	 confgroup_listen(struct conf_parser *, int, size_t);
void	 confgroup_resolve(struct conf_parser *);

#endif
