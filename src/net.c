/* Socket set-up shared by the TCP and UDP listeners. */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <unistd.h>

#include "echod.h"

/*
 * Make a non-blocking socket of the given type bound to a, and write the
 * bound address (with the port the kernel chose for port 0) into name.
 * Return the descriptor, or -1 with errno set.
 */
int
net_bind(int type, const struct addr *a, char *name, size_t namelen)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	int			 fd, on = 1, saved;

	fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return (-1);
	if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR,
	    &on, sizeof(on)) == -1)
		goto fail;
	/* Let [::]:7 and 0.0.0.0:7 be configured side by side. */
	if (a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
		goto fail;
	addr_format((struct sockaddr *)&ss, sslen, name, namelen);
	return (fd);
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return (-1);
}
