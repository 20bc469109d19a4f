/* Socket set-up shared by the TCP and UDP listeners. */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "echod.h"

/* Make a socket of the given type bound to a.  Return it or -1 (errno). */
static int
net_socket(int type, const struct addr *a, int reuseport)
{
	int	 fd, on = 1, saved;

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
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1)
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
net_bind(int type, const struct addr *a, int reuseport, char *name,
    size_t namelen)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	int			 fd, saved;

	if ((fd = net_socket(type, a, reuseport)) == -1)
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
int
net_probe(int type, const struct addr *a, struct addr *out)
{
	int	 fd, saved;

	if ((fd = net_socket(type, a, 0)) == -1)
		return (-1);
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
