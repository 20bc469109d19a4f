/*
 * systemd integration: readiness and status notifications, the watchdog,
 * and sockets passed by socket activation.  Without libsystemd (configure
 * --without-systemd) these do nothing and find no sockets.
 */
#ifndef ECHOD_NOTIFY_H
#define ECHOD_NOTIFY_H

#include <stdint.h>

void	 notify(const char *, ...) __attribute__((format(printf, 1, 2)));
uint64_t notify_watchdog_usec(void);
int	 notify_listen_fds(int **);
int	 notify_socket_type(int);
void	 notify_status_cb(int, short, void *);
void	 notify_watchdog_cb(int, short, void *);

#endif
