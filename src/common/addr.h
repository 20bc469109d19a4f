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
	char			ifname[16];	/* IPv6 scope by name, to
						   resolve when binding */
};

/* An address prefix, "10.0.0.0/8" or "2001:db8::/32". */
struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned	prefix;		/* bits that must match */
	unsigned char	bytes[16];	/* network byte order */
};

struct cidr_list {
	struct cidr	*v;
	size_t		 n;
};

int		 addr_parse(const char *, struct addr *, const char **);
int		 cidr_parse(const char *, struct cidr *, const char **);
int		 cidr_match(const struct cidr *, const struct sockaddr *);
int		 cidr_list_match(const struct cidr_list *,
		    const struct sockaddr *);
int		 addr_key(const struct sockaddr *, unsigned char[16]);
unsigned	 addr_port(const struct addr *);
int		 addr_equal(const struct addr *, const struct addr *);
int		 addr_is_v4mapped(const struct addr *);
const char	*addr_format(const struct sockaddr *, socklen_t, char *, size_t);
const char	*addr_name(const struct addr *, char *, size_t);

#endif
