/*
 * Listening: bind every configured address for every worker (a probe
 * first, then one SO_REUSEPORT socket each) and hand the sockets over, or
 * take the ones systemd passed.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>
#include <errno.h>
#include <sysexits.h>
#include <stdlib.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "server.h"
#include "worker.h"

/* Make a socket of the given type bound to a.  Return it or -1 (errno). */
static int
listen_socket(int type, const struct addr *a, int reuseport)
{
	struct sockaddr_in6	 sin6;
	const struct sockaddr	*sa = (const struct sockaddr *)&a->ss;
	int			 fd, on = 1, saved;

	/* A scope given by name: the interface's index, now. */
	if (a->ifname[0] != '\0' && a->ss.ss_family == AF_INET6) {
		memcpy(&sin6, &a->ss, sizeof(sin6));
		if ((sin6.sin6_scope_id = if_nametoindex(a->ifname)) == 0) {
			errno = ENODEV;
			return (-1);
		}
		sa = (const struct sockaddr *)&sin6;
	}

	fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (-1);
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
	    &on, sizeof(on)) == -1)
		goto fail;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on,
	    sizeof(on)) == -1)
		goto fail;
	/* Let [::]:7 and 0.0.0.0:7 be configured side by side. */
	if (a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	if (bind(fd, sa, a->len) == -1)
		goto fail;
	return (fd);
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return (-1);
}

/*
 * Make a non-blocking socket of the given type bound to a, with
 * SO_REUSEPORT if asked, and write the bound address into name.  Return
 * the descriptor, or -1 with errno set.
 */
int
listen_bind(int type, const struct addr *a, int reuseport, char *name,
    size_t namelen)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	int			 fd, saved;

	if ((fd = listen_socket(type, a, reuseport)) == -1)
		return (-1);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return (-1);
	}
	addr_format((struct sockaddr *)&ss, sslen, name, namelen);
	return (fd);
}

/*
 * Before the workers bind a with SO_REUSEPORT: bind it once without, which
 * fails if anything (another echod included) holds the address, and learn
 * the port the kernel picks for port 0, so that every worker binds the
 * same one.  Write the address to bind into out.  Return 0 or -1 (errno).
 */
static int
listen_probe(int type, const struct addr *a, struct addr *out)
{
	int	 fd, saved;

	if ((fd = listen_socket(type, a, 0)) == -1)
		return (-1);
	memset(out, 0, sizeof(*out));
	out->len = sizeof(out->ss);
	if (getsockname(fd, (struct sockaddr *)&out->ss, &out->len) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return (-1);
	}
	close(fd);
	return (0);
}

/*
 * Bind a for every worker of srv: one socket each, with SO_REUSEPORT when
 * there are several, after a probe that the address is free (which also
 * fixes port 0 to one port for all).  TCP sockets are made to listen.
 * Fill fds[0..nworkers-1] and name (as bound).  Return 0, or -1 with
 * every socket closed (logged, naming the address).
 */
static int
listen_all(struct server *srv, int type, const struct addr *a, int backlog,
    int *fds, char *name, size_t namelen)
{
	const char	*proto = conf_proto(type);
	struct addr	 b = *a;
	char		 want[ADDR_STRLEN];
	unsigned	 k, n;
	int		 reuse = srv->nworkers > 1;

	addr_name(a, want, sizeof(want));
	if (reuse && listen_probe(type, a, &b) == -1) {
		log_msg(LOG_ERR, "cannot bind %s %s: %s", proto, want,
		    strerror(errno));
		return (-1);
	}
	for (k = 0; k < srv->nworkers; k++) {
		fds[k] = listen_bind(type, &b, reuse, name, namelen);
		if (fds[k] == -1) {
			log_msg(LOG_ERR, "cannot bind %s %s: %s", proto, want,
			    strerror(errno));
			break;
		}
		if (type == SOCK_STREAM &&
		    listen(fds[k], backlog) == -1) {
			log_msg(LOG_ERR, "cannot listen on tcp %s: %s", want,
			    strerror(errno));
			close(fds[k]);
			break;
		}
	}
	if (k == srv->nworkers)
		return (0);
	for (n = 0; n < k; n++)
		close(fds[n]);
	return (-1);
}

/* " for group NAME" after an address of group name in the log, or "". */
static const char *
listen_group_note(const char *name, int proto, char *buf, size_t len)
{
	if (strcmp(name, proto == CONF_TLS ? CONF_TLS_GROUP :
	    CONF_DEFAULT_GROUP) == 0)
		return ("");
	snprintf(buf, len, " for group %s", name);
	return (buf);
}

/*
 * Bind a, an address of group g, for every worker and hand each its
 * socket: directly before the workers run, by command once they do.
 * Return 0 or -1 (logged).
 */
int
listen_addr(struct server *srv, const struct conf_group *g,
    const struct addr *a, int running)
{
	struct worker_cmd	 cmd;
	char			 name[ADDR_STRLEN], note[64];
	int			*fds, type = g->type;
	unsigned		 k;
	int			 rc = 0;

	if ((fds = calloc(srv->nworkers, sizeof(*fds))) == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return (-1);
	}
	if (listen_all(srv, type, a, (int)g->backlog, fds, name,
	    sizeof(name)) == -1) {
		free(fds);
		return (-1);
	}
	for (k = 0; k < srv->nworkers; k++) {
		if (!running) {
			if (listener_attach(&srv->workers[k], type, fds[k], a,
			    name, g->name, 0) == -1)
				rc = -1;
			continue;
		}
		memset(&cmd, 0, sizeof(cmd));
		cmd.op = WORKER_CMD_ADD;
		cmd.fd = fds[k];
		cmd.type = type;
		cmd.addr = *a;
		cmd.groups = srv->groups;
		snprintf(cmd.name, sizeof(cmd.name), "%s", name);
		snprintf(cmd.group, sizeof(cmd.group), "%s", g->name);
		if (worker_send(&srv->workers[k], &cmd) == -1)
			rc = -1;	/* it closed the socket */
	}
	free(fds);
	log_notice("listening on %s %s%s", conf_group_proto(g), name,
	    listen_group_note(g->name, g->proto, note, sizeof(note)));
	return (rc);
}

/* Bind every address of every configured group.  Return 0 or -1. */
int
listen_groups(struct server *srv)
{
	const struct conf_group	*g;
	size_t			 i, j;

	for (i = 0; i < srv->conf.ngroups; i++) {
		g = &srv->conf.groups[i];
		for (j = 0; j < g->listen.n; j++)
			if (listen_addr(srv, g, &g->listen.v[j], 0) == -1)
				return (-1);
	}
	return (0);
}

/*
 * Serve the sockets systemd passed: every worker gets its own duplicate
 * of each.  Return 0 or a sysexits code (logged).
 */
int
listen_adopt(struct server *srv, const int *fds, int n)
{
	const struct lgroup	*lg;
	struct addr	 a;
	char		 name[ADDR_STRLEN], note[64];
	unsigned	 k;
	int		 i, type, fd, fl;

	for (i = 0; i < n; i++) {
		if ((type = notify_socket_type(fds[i])) == -1) {
			log_msg(LOG_ERR, "socket %d passed by systemd is "
			    "neither a listening TCP socket nor a UDP socket",
			    fds[i]);
			return (EX_CONFIG);
		}
		memset(&a, 0, sizeof(a));
		a.len = sizeof(a.ss);
		if (getsockname(fds[i], (struct sockaddr *)&a.ss, &a.len) ==
		    -1 || (fl = fcntl(fds[i], F_GETFL)) == -1 ||
		    fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(fds[i], F_SETFD, FD_CLOEXEC) == -1) {
			log_msg(LOG_ERR, "socket %d passed by systemd: %s",
			    fds[i], strerror(errno));
			return (EX_OSERR);
		}
		addr_format((struct sockaddr *)&a.ss, a.len, name,
		    sizeof(name));
		for (k = 0; k < srv->nworkers; k++) {
			fd = k == 0 ? fds[i] : fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (fd == -1) {
				log_msg(LOG_ERR, "dup: %s", strerror(errno));
				return (EX_OSERR);
			}
			if (listener_attach(&srv->workers[k], type, fd, &a,
			    name, NULL, 1) == -1)
				return (EX_OSERR);
		}
		lg = &srv->groups->v[groups_slot(srv->groups, type, &a, NULL)];
		log_notice("listening on %s %s (from systemd)%s",
		    lg->proto == CONF_TLS ? "tls" : conf_proto(type), name,
		    listen_group_note(lg->name, lg->proto, note, sizeof(note)));
	}
	return (EX_OK);
}
