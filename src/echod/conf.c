/*
 * Reading echod.conf.  inih splits the text into (section, key, value);
 * confkey.c's table maps each pair to a setter that checks and stores the
 * value.  inih reads lines through conf_reader, which counts them, so every
 * error names its line, and which also checks every [section] line (inih
 * never reports a section by itself, and would cut a long name silently).
 * Once the whole file is read, conf_resolve gives named groups what they
 * inherit and the unnamed ones their default addresses.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <ini.h>

#include "conf.h"
#include "confkey.h"
#include "confparse.h"

#define CONF_MAX_FILE		(1024 * 1024)
#define CONF_SECTION_MAX	49	/* inih's MAX_SECTION, less its NUL */

static const char *conf_kinds[] = {
	"server", "tcp", "udp", "metrics", "tls"
};
#define CONF_NKINDS	(sizeof(conf_kinds) / sizeof(conf_kinds[0]))

/* Fill in the server-wide defaults, which etc/echod.conf documents. */
void
conf_init(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOG_INFO;
	c->shutdown_timeout_ms = 10 * 1000;
	c->memory_limit_auto = 1;
	c->metrics_max_connections = 16;
	c->metrics_timeout_ms = 5 * 1000;
	c->delay_queue = 10000;
}

/* Release what conf_parse_string allocated. */
void
conf_free(struct conf *c)
{
	size_t	 i;

	for (i = 0; i < c->ngroups; i++) {
		free(c->groups[i].listen.v);
		free(c->groups[i].allow.v);
		free(c->groups[i].deny.v);
		free(c->groups[i].proxy_from.v);
	}
	free(c->groups);
	free(c->metrics_listen.v);
	c->groups = NULL;
	c->ngroups = 0;
	c->metrics_listen.v = NULL;
	c->metrics_listen.n = 0;
}

/* The unnamed [tcp] and [udp] groups (after conf_parse_string). */
struct conf_group *
conf_tcp(const struct conf *c)
{
	return (&c->groups[0]);
}

struct conf_group *
conf_udp(const struct conf *c)
{
	return (&c->groups[1]);
}

/* "tcp" or "udp", for a socket type. */
const char *
conf_proto(int type)
{
	return (type == SOCK_STREAM ? "tcp" : "udp");
}

/* The line where key of section (tcp, udp, tls) was set for g, or 0. */
int
conf_group_line(const struct conf_group *g, const char *section,
    const char *key)
{
	size_t	 i;

	if (confkey_find(section, key, &i) == NULL)
		return (0);
	return (g->lines[i]);
}

/* "tcp", "udp" or "tls": a group's section kind. */
const char *
conf_group_proto(const struct conf_group *g)
{
	return (g->proto == CONF_TLS ? "tls" : conf_proto(g->type));
}

/* The group of type that listens on a, or NULL. */
const struct conf_group *
conf_group_of(const struct conf *c, int type, const struct addr *a)
{
	size_t	 i, j;

	for (i = 0; i < c->ngroups; i++) {
		if (c->groups[i].type != type)
			continue;
		for (j = 0; j < c->groups[i].listen.n; j++)
			if (addr_equal(&c->groups[i].listen.v[j], a))
				return (&c->groups[i]);
	}
	return (NULL);
}

/* Record the first error, prefixed with file and line. */
void
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

/*
 * Split a section's text (len characters, no brackets) into its kind's
 * index in conf_kinds and a name (empty for none).  Return 0, or -1 for
 * an unknown kind.
 */
static int
conf_split(const char *s, size_t len, size_t *kind, const char **name,
    size_t *namelen)
{
	size_t	 klen;

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	for (klen = 0; klen < len && s[klen] != ' ' && s[klen] != '\t'; klen++)
		;
	for (*kind = 0; *kind < CONF_NKINDS; (*kind)++)
		if (strlen(conf_kinds[*kind]) == klen &&
		    strncmp(conf_kinds[*kind], s, klen) == 0)
			break;
	if (*kind == CONF_NKINDS)
		return (-1);
	*name = s + klen + strspn(s + klen, " \t");
	*namelen = len - (size_t)(*name - s);
	return (0);
}

/* The group protocol of a section kind, or -1 if it has no groups. */
static int
conf_kind_proto(size_t kind)
{
	return (kind == 1 ? CONF_TCP : kind == 2 ? CONF_UDP : kind == 4 ?
	    CONF_TLS : -1);
}

/* The group of a section's kind and name; index, or -1 if none. */
static int
conf_find(const struct conf *c, size_t kind, const char *name,
    size_t namelen)
{
	if (conf_kind_proto(kind) == -1)
		return (-1);
	return (confgroup_find(c, conf_kind_proto(kind), name, namelen));
}

/* Check a "[section]" line against the sections echod knows. */
static void
conf_check_section(struct conf_parser *p, const char *line)
{
	const char	*end, *name;
	size_t		 len, kind, namelen;
	int		 i;

	if (p->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	/*
	 * As inih reads it (its lskip is isspace): a line after a key that
	 * starts with white space continues its value.
	 */
	if (p->in_key && *line != '\n' && isspace((unsigned char)*line))
		return;
	while (isspace((unsigned char)*line))
		line++;
	if (*line != '[')
		return;
	p->in_key = 0;
	line++;
	end = strchr(line, ']');
	if (end == NULL)
		return;		/* inih reports the syntax error */
	len = (size_t)(end - line);
	if (conf_split(line, len, &kind, &name, &namelen) == -1) {
		conf_error(p, p->lineno, "unknown section [%.*s]",
		    (int)(len > 40 ? 40 : len), line);
		return;
	}
	if (len > CONF_SECTION_MAX) {
		conf_error(p, p->lineno, "section name too long (at most %d "
		    "characters)", CONF_SECTION_MAX);
		return;
	}
	if (namelen > 0 && conf_kind_proto(kind) == -1)
		conf_error(p, p->lineno, "[%s] takes no name", conf_kinds[kind]);
	else if (namelen > 0)
		confgroup_section(p, conf_kind_proto(kind), name, namelen);
	else if ((i = conf_find(p->conf, kind, "", 0)) != -1) {
		if (p->conf->groups[i].line == 0)
			p->conf->groups[i].line = p->lineno;
	} else if (conf_kind_proto(kind) == CONF_TLS)
		(void)confgroup_add(p, CONF_TLS, CONF_TLS_GROUP,
		    strlen(CONF_TLS_GROUP), p->lineno);
}

/* Store one key of section kind (and group gi, or -1). */
static int
conf_set_key(struct conf_parser *p, size_t kind, int gi, const char *name,
    const char *value)
{
	const struct confkey	*k;
	struct conf_group	*g = gi >= 0 ? &p->conf->groups[gi] : NULL;
	unsigned char		*seen;
	char			 label[64], why[CONF_ERRLEN];
	size_t			 i, n = g != NULL ? g->listen.n : 0;

	if (g != NULL)
		confgroup_label(g, label, sizeof(label));
	else
		snprintf(label, sizeof(label), "[%s]", conf_kinds[kind]);
	/* A TLS group takes the TCP keys too. */
	if ((k = confkey_find(conf_kinds[kind], name, &i)) == NULL &&
	    (conf_kind_proto(kind) != CONF_TLS ||
	    (k = confkey_find("tcp", name, &i)) == NULL)) {
		conf_error(p, p->lineno, "unknown key '%s' in %s", name, label);
		return (-1);
	}
	if (conf_kind_proto(kind) == CONF_TLS &&
	    strncmp(name, "proxy_", 6) == 0) {
		conf_error(p, p->lineno, "%s %s: the PROXY protocol is not "
		    "served in TLS groups yet", label, name);
		return (-1);
	}
	if ((k->flags & CONFKEY_UNNAMED) && gi > 1) {
		conf_error(p, p->lineno, "%s %s: server-wide; set it in [%s]",
		    label, name, k->section);
		return (-1);
	}
	seen = (k->flags & CONFKEY_GROUP) ? &p->gseen[gi][i] : &p->seen[i];
	if (*seen && !(k->flags & CONFKEY_REPEAT)) {
		conf_error(p, p->lineno, "%s %s: given twice", label, name);
		return (-1);
	}
	if (k->set(k, (k->flags & CONFKEY_GROUP) ? (void *)g :
	    (void *)p->conf, value, *seen, why, sizeof(why)) == -1) {
		conf_error(p, p->lineno, "%s %s: %s", label, name, why);
		return (-1);
	}
	*seen = 1;
	if (g != NULL)
		g->lines[i] = p->lineno;
	if (k->flags & CONFKEY_OWN)
		return (confgroup_listen(p, gi, n));
	if (kind == 3 && strcmp(name, "listen") == 0)
		p->metrics_line = p->lineno;
	return (0);
}

/* inih's callback: dispatch one key to its setter. */
static int
conf_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct conf_parser	*p = arg;
	const char		*gname;
	size_t			 kind, glen;
	int			 gi;

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
	/*
	 * conf_check_section saw this section and added its group; if inih
	 * read a line differently, refuse it rather than guess.
	 */
	if (conf_split(section, strlen(section), &kind, &gname, &glen) == -1 ||
	    ((gi = conf_find(p->conf, kind, gname, glen)) == -1 &&
	    conf_kind_proto(kind) != -1)) {
		conf_error(p, p->lineno, "unknown section [%.40s]", section);
		return (0);
	}
	return (conf_set_key(p, kind, gi, name, value) == 0);
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
	const struct conf	*c = p->conf;
	size_t			 i, n = 0;

	for (i = 0; i < c->ngroups; i++)
		n += c->groups[i].listen.n;
	if (n == 0)
		conf_error(p, p->listen_line, "no listener: [tcp] listen and "
		    "[udp] listen are both empty");
	if (c->metrics_listen.n > CONF_METRICS_MAX_LISTEN)
		conf_error(p, p->metrics_line, "[metrics] listen: %zu "
		    "addresses; at most %d", c->metrics_listen.n,
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
	struct conf_parser	*p;
	int			 rc, failed;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return (-1);
	}
	p->conf = c;
	p->name = name;
	p->pos = text;
	p->err = err;
	p->errlen = errlen;

	if (c->ngroups == 0 &&
	    (confgroup_add(p, CONF_TCP, CONF_DEFAULT_GROUP,
	    strlen(CONF_DEFAULT_GROUP), 0) == -1 ||
	    confgroup_add(p, CONF_UDP, CONF_DEFAULT_GROUP,
	    strlen(CONF_DEFAULT_GROUP), 0) == -1)) {
		free(p);
		return (-1);
	}
	rc = ini_parse_stream(conf_reader, p, conf_handler, p);
	if (rc > 0 && (!p->err_set || rc < p->err_line)) {
		p->err_set = 0;
		conf_error(p, rc, "syntax error: expected [section], "
		    "key = value or a comment");
	} else if (rc < 0 && !p->err_set)
		conf_error(p, 0, "cannot parse: out of memory");
	if (!p->err_set)
		confgroup_resolve(p);
	if (!p->err_set)
		conf_validate(p);
	failed = p->err_set;
	free(p);
	return (failed ? -1 : 0);
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
