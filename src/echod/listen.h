/* Binding the configured addresses, or taking systemd's (listen.c). */
#ifndef ECHOD_LISTEN_H
#define ECHOD_LISTEN_H

#include <stddef.h>

#include "addr.h"
#include "conf.h"

struct server;

int	listen_bind(int, const struct addr *, int, char *, size_t);
int	listen_addr(struct server *, const struct conf_group *,
	    const struct addr *, int);
int	listen_groups(struct server *);
int	listen_adopt(struct server *, const int *, int);

#endif
