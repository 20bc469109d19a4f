/* Socket addresses written as text: "127.0.0.1:7", "[::1]:7". */
#ifndef ECHOD_ADDR_H
#define ECHOD_ADDR_H

#include <sys/socket.h>
#include <stddef.h>

/* Room for "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%ifname]:65535". */
#define ADDR_STRLEN 80

struct addr {
	struct sockaddr_storage	ss;
	socklen_t		len;
};

int		 addr_parse(const char *, struct addr *, const char **);
int		 addr_equal(const struct addr *, const struct addr *);
const char	*addr_format(const struct sockaddr *, socklen_t, char *, size_t);

#endif
