/*
 * The values of echod.conf's keys (confkey.h): one setter per kind of
 * value, which checks it and stores it where the key's table entry says.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "confkey.h"
#include "units.h"

/* Write a reason into why; return -1 for the setter to pass on. */
static int
confval_why(char *why, size_t len, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return (-1);
}

/* A number within the key's bounds. */
int
confval_number(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	if (units_number(v, k->min, k->max, KEY_FIELD(obj, k)) == -1)
		return (confval_why(why, len, "'%s' %s", v, k->must));
	return (0);
}

/* A size (64k, 1m) within the key's bounds. */
int
confval_size(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	uint64_t	 n;

	if (units_size(v, &n) == -1)
		return (confval_why(why, len, "'%s' not a size (like 64k or "
		    "1m)", v));
	if (n < k->min || n > k->max)
		return (confval_why(why, len, "'%s' %s", v, k->must));
	*(uint64_t *)KEY_FIELD(obj, k) = n;
	return (0);
}

/* A duration (500ms, 10s, 2m) within the key's bounds, in milliseconds. */
int
confval_duration(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	uint64_t	 ms;

	if (units_duration(v, &ms) == -1)
		return (confval_why(why, len, "'%s' not a duration (like 500ms, "
		    "10s or 2m)", v));
	if (ms < k->min || ms > k->max)
		return (confval_why(why, len, "'%s' %s", v, k->must));
	*(uint64_t *)KEY_FIELD(obj, k) = ms;
	return (0);
}

/*
 * Find the next space-separated word of a list value: return 0 at the end
 * or at a ';' or '#' that starts a comment (inih strips inline comments
 * from the first line of a value, not from continuation lines).
 */
static int
confval_next_word(const char **v, const char **word, size_t *len)
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
confval_word(const char **v, char *word, size_t size, const char *what,
    char *why, size_t len)
{
	const char	*ws;
	size_t		 wl;

	if (!confval_next_word(v, &ws, &wl))
		return (0);
	if (wl >= size)
		return (confval_why(why, len, "'%.*s...' is too long for %s",
		    20, ws, what));
	memcpy(word, ws, wl);
	word[wl] = '\0';
	return (1);
}

/* Append item, of size sz, to the array *vp of *n.  Return 0 or -1. */
static int
confval_append(void *vp, size_t *n, const void *item, size_t sz)
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
int
confval_listen(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	struct addr_list	*list = KEY_FIELD(obj, k);
	char			 word[ADDR_STRLEN];
	struct addr		 a;
	const char		*why2;
	size_t			 i;
	int			 rc;

	while ((rc = confval_word(&v, word, sizeof(word), "an address", why,
	    len)) == 1) {
		if (addr_parse(word, &a, &why2) == -1)
			return (confval_why(why, len, "bad address '%s': %s",
			    word, why2));
		if (addr_is_v4mapped(&a))
			/* IPv6 sockets here are IPv6-only: it could not bind. */
			return (confval_why(why, len, "'%s' is an IPv4-mapped "
			    "IPv6 address; write the IPv4 address (like "
			    "127.0.0.1:7)", word));
		for (i = 0; i < list->n; i++)
			if (addr_equal(&list->v[i], &a))
				return (confval_why(why, len, "address '%s' given "
				    "twice", word));
		if (confval_append(&list->v, &list->n, &a, sizeof(a)) == -1)
			return (confval_why(why, len, "out of memory"));
	}
	return (rc);
}

/* Add the space-separated prefixes in v to the key's list. */
int
confval_cidrs(const struct confkey *k, void *obj, const char *v, int again,
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
	while ((rc = confval_word(&v, word, sizeof(word), "an address prefix",
	    why, len)) == 1) {
		if (cidr_parse(word, &c, &why2) == -1)
			return (confval_why(why, len, "bad prefix '%s': %s", word,
			    why2));
		if (confval_append(&list->v, &list->n, &c, sizeof(c)) == -1)
			return (confval_why(why, len, "out of memory"));
	}
	return (rc);
}

/*
 * Source ports whose datagrams are dropped.  The first line replaces the
 * built-in list (so an empty value, or "none", drops none); more add.
 */
int
confval_ports(const struct confkey *k, void *obj, const char *v, int again,
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
	while (confval_next_word(&v, &ws, &wl)) {
		if (wl < sizeof(word)) {
			memcpy(word, ws, wl);
			word[wl] = '\0';
		}
		if (wl >= sizeof(word) ||
		    units_number(word, 0, 65535, &port) == -1)
			return (confval_why(why, len, "'%.*s' is not a port "
			    "number (0 to 65535)", (int)(wl > 20 ? 20 : wl), ws));
		PORTSET_ADD(bits, port);
	}
	return (0);
}

/* One of the words in the key's must; its place is the value. */
int
confval_choice(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	const char	*w = k->must, *ws;
	size_t		 wl, i, n;

	for (i = 0; confval_next_word(&w, &ws, &wl); i++)
		if (strlen(v) == wl && strncmp(v, ws, wl) == 0) {
			*(uint64_t *)KEY_FIELD(obj, k) = i;
			return (0);
		}
	n = (size_t)snprintf(why, len, "'%s' must be one of", v);
	w = k->must;
	for (i = 0; confval_next_word(&w, &ws, &wl) && n < len; i++)
		n += (size_t)snprintf(why + n, len - n, "%s %.*s", i > 0 ? "," :
		    "", (int)wl, ws);
	return (-1);
}

/* A string (a path, a cipher list) of fewer than k->max bytes. */
int
confval_string(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	size_t	 n = strlen(v);

	if (n == 0)
		return (confval_why(why, len, "is empty"));
	if (n >= k->max)
		return (confval_why(why, len, "'%.20s...' is too long (at most "
		    "%llu characters)", v, (unsigned long long)k->max - 1));
	memcpy(KEY_FIELD(obj, k), v, n + 1);
	return (0);
}

/* TLS versions: TLSv1.2, TLSv1.3 or both. */
int
confval_protocols(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	const char	*w = v, *ws;
	size_t		 wl;
	uint64_t	 mask = 0;

	while (confval_next_word(&w, &ws, &wl)) {
		if (wl == 7 && strncmp(ws, "TLSv1.2", 7) == 0)
			mask |= CONF_TLS12;
		else if (wl == 7 && strncmp(ws, "TLSv1.3", 7) == 0)
			mask |= CONF_TLS13;
		else
			return (confval_why(why, len, "'%.*s' is not one of "
			    "TLSv1.2, TLSv1.3", (int)(wl > 20 ? 20 : wl), ws));
	}
	if (mask == 0)
		return (confval_why(why, len, "is empty"));
	*(uint64_t *)KEY_FIELD(obj, k) = mask;
	return (0);
}

/* The balancers whose PROXY headers are believed: never none. */
int
confval_proxy_from(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	struct cidr_list	*list = KEY_FIELD(obj, k);

	if (confval_cidrs(k, obj, v, again, why, len) == -1)
		return (-1);
	if (list->n == 0)
		return (confval_why(why, len, "is empty: it would believe no "
		    "balancer (unset, it is 127.0.0.0/8 ::1)"));
	return (0);
}

int
confval_log_level(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	struct conf	*c = obj;
	int		 i;

	for (i = LOG_ERR; i <= LOG_DEBUG; i++) {
		if (strcmp(v, conf_log_level_name(i)) == 0) {
			c->log_level = i;
			return (0);
		}
	}
	return (confval_why(why, len, "'%s' must be one of error, warning, "
	    "notice, info, debug", v));
}

int
confval_workers(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	if (strcmp(v, "auto") == 0) {
		((struct conf *)obj)->workers = 0;
		return (0);
	}
	return (confval_number(k, obj, v, again, why, len));
}

int
confval_user(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	struct conf	*c = obj;
	size_t		 n = strlen(v);

	/* A POSIX portable user name; whether it exists is checked later. */
	if (n >= sizeof(c->user) || *v == '-' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != n)
		return (confval_why(why, len, "'%s' is not a user name", v));
	memcpy(c->user, v, n + 1);
	return (0);
}

/*
 * The most echo data held in buffers: a size, 0 for no limit, or auto (a
 * quarter of the memory echod may use, worked out at start-up).
 */
int
confval_memory_limit(const struct confkey *k, void *obj, const char *v,
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
		return (confval_why(why, len, "'%s' must be auto, 0 (no limit) "
		    "or a size (like 512m or 2g)", v));
	if (n > 0 && n < 1024 * 1024)
		return (confval_why(why, len, "'%s' must be 0 (no limit) or at "
		    "least 1m", v));
	c->memory_limit_auto = 0;
	c->memory_limit = n;
	return (0);
}

/*
 * A probability from 0 to 1, as a decimal ("0.01", "1", ".5"), stored in
 * millionths (CONF_PPM is 1): finer than that is refused, not rounded.
 */
int
confval_probability(const struct confkey *k, void *obj, const char *v,
    int again, char *why, size_t len)
{
	const char	*p = v;
	uint64_t	 ppm = 0, scale = CONF_PPM;
	int		 digits = 0;

	if (*p == '0' || *p == '1') {
		ppm = (uint64_t)(*p - '0') * CONF_PPM;
		p++;
		digits++;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9' && scale > 1; p++, digits++) {
			scale /= 10;
			ppm += (uint64_t)(*p - '0') * scale;
		}
		while (*p == '0')
			p++;		/* trailing zeros past millionths */
	}
	if (*p != '\0' || digits == 0 || ppm > CONF_PPM)
		return (confval_why(why, len, "'%s' must be a probability from "
		    "0 to 1, in steps of 0.000001 at the finest", v));
	*(uint64_t *)KEY_FIELD(obj, k) = ppm;
	return (0);
}

/*
 * A size or a range of sizes ("64", "1-64", "1k-16k") within the key's
 * bounds, smallest first, into a uint64_t[2].
 */
int
confval_range(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	uint64_t	*r = KEY_FIELD(obj, k);
	char		 buf[64], *dash;
	int		 n;

	if (strcmp(v, "0") == 0) {
		r[0] = r[1] = 0;	/* off: a named group's, say */
		return (0);
	}
	n = snprintf(buf, sizeof(buf), "%s", v);
	if (n < 0 || (size_t)n >= sizeof(buf))
		buf[0] = '\0';		/* too long to be one */
	if ((dash = strchr(buf, '-')) != NULL)
		*dash++ = '\0';
	if (units_size(buf, &r[0]) == -1)
		r[0] = r[1] = 0;
	else if (dash == NULL)
		r[1] = r[0];
	else if (units_size(dash, &r[1]) == -1)
		r[0] = r[1] = 0;
	if (r[0] < k->min || r[1] > k->max || r[1] < r[0]) {
		r[0] = r[1] = 0;
		return (confval_why(why, len, "'%s' %s", v, k->must));
	}
	return (0);
}

/* The faults' seed: a number, which then replaces the clock's. */
int
confval_seed(const struct confkey *k, void *obj, const char *v, int again,
    char *why, size_t len)
{
	struct conf	*c = obj;

	if (units_number(v, 0, UINT64_MAX, &c->fault_seed) == -1)
		return (confval_why(why, len, "'%s' must be a number from 0 to "
		    "18446744073709551615", v));
	c->fault_seed_set = 1;
	return (0);
}
