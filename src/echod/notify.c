/* systemd's notification protocol and socket activation, via libsystemd. */
#include "config.h"

#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <event2/event.h>

#include "log.h"
#include "notify.h"
#include "os.h"
#include "server.h"
#include "worker.h"

/*
 * Send one notification ("READY=1", "STATUS=...") to the service manager,
 * if there is one.
 */
void
notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
	char	 msg[512];
	va_list	 ap;
	int	 rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((rc = sd_notify(0, msg)) < 0)
		log_debug("sd_notify: error %d", rc);
#else
	(void)fmt;
#endif
}

/* The watchdog interval systemd asks for, in microseconds; 0 for none. */
uint64_t
notify_watchdog_usec(void)
{
#ifdef HAVE_SYSTEMD
	uint64_t	 usec;

	if (sd_watchdog_enabled(0, &usec) > 0)
		return (usec);
#endif
	return (0);
}

/*
 * The sockets passed by socket activation: allocate an array of their
 * descriptors into *fds and return how many (0 for none, -1 on error).
 * The environment variables are unset so that nothing inherits them.
 */
int
notify_listen_fds(int **fds)
{
#ifdef HAVE_SYSTEMD
	int	 n, i;

	*fds = NULL;
	n = sd_listen_fds(1);
	if (n <= 0)
		return (n < 0 ? -1 : 0);
	if ((*fds = calloc((size_t)n, sizeof(**fds))) == NULL)
		return (-1);
	for (i = 0; i < n; i++)
		(*fds)[i] = SD_LISTEN_FDS_START + i;
	return (n);
#else
	*fds = NULL;
	return (0);
#endif
}

/*
 * SOCK_STREAM for a listening stream socket, SOCK_DGRAM for a datagram
 * socket, both of an IP family; -1 for anything else.
 */
int
notify_socket_type(int fd)
{
#ifdef HAVE_SYSTEMD
	if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0)
		return (SOCK_STREAM);
	if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_DGRAM, -1, 0) > 0)
		return (SOCK_DGRAM);
#else
	(void)fd;
#endif
	return (-1);
}

/* Timer callback: refresh systemd's STATUS= line. */
void
notify_status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	char		 buf[256];

	server_summary(srv, buf, sizeof(buf));
	notify("STATUS=%s%s", srv->draining ? "draining: " : "", buf);
}

/*
 * Timer callback: feed systemd's watchdog, but only if every worker's
 * loop has ticked since the last time.
 */
void
notify_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server	*srv = arg;
	uint64_t	 beat;
	unsigned	 i;
	int		 alive = 1;

	for (i = 0; i < srv->nworkers; i++) {
		if (!srv->workers[i].started || srv->workers[i].ended)
			continue;	/* ended after its drain */
		beat = atomic_load_explicit(&srv->workers[i].heartbeat,
		    memory_order_relaxed);
		if (beat == srv->heartbeats[i]) {
			log_warnx("worker %u is not responding", i);
			alive = 0;
		}
		srv->heartbeats[i] = beat;
	}
	if (alive)
		notify("WATCHDOG=1");
}
