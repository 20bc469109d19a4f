/*
 * UDP echo: a plain persistent read event per socket (bufferevents are
 * stream-only).  One wake-up takes up to UDP_BATCH datagrams with recvmmsg
 * and sends them back with sendmmsg, for a bounded number of rounds so a
 * flood on one socket cannot starve the rest of the worker.  A reply the
 * socket cannot take right now is dropped and counted, never queued.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "fault.h"
#include "guard.h"
#include "listener.h"
#include "log.h"
#include "udp.h"
#include "worker.h"

#define UDP_BATCH	32
#define UDP_ROUNDS	4

/* One worker's datagram buffers; memory is touched only as it is used. */
struct udp_batch {
	struct mmsghdr		msgs[UDP_BATCH];
	struct mmsghdr		out[2 * UDP_BATCH]; /* the replies let
						   through, duplicates too */
	struct iovec		iov[UDP_BATCH];
	struct sockaddr_storage	peers[UDP_BATCH];
	union {
		struct cmsghdr	align;
		unsigned char	buf[UDP_CTLSIZE];
	}			ctl[UDP_BATCH];	/* where each one came to */
	unsigned char		data[UDP_BATCH][UDP_BUFSIZE];
};

/* Allocate a worker's batch buffers. */
struct udp_batch *
udp_batch_new(void)
{
	return (malloc(sizeof(struct udp_batch)));
}

/* Free a worker's batch buffers. */
void
udp_batch_free(struct udp_batch *b)
{
	free(b);
}

/*
 * Make a reply leave from the address its datagram was sent to: on a
 * wildcard address the kernel would pick one, and a client (or a NAT)
 * expecting the reply from where it sent would drop it.  The received
 * IP_PKTINFO/IPV6_PKTINFO becomes the reply's, with no interface forced.
 * For IPv4 that is the kernel's own choice, ipi_spec_dst: the destination
 * of a unicast datagram, but for one sent to a broadcast or multicast
 * address the receiving interface's address, since a reply cannot come
 * from those; for IPv6 a multicast destination is left to the kernel.
 */
static void
udp_reply_from(struct msghdr *mh)
{
	struct cmsghdr		*cm;
	struct in_pktinfo	*pi;
	struct in6_pktinfo	*pi6;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP &&
		    cm->cmsg_type == IP_PKTINFO) {
			pi = (struct in_pktinfo *)CMSG_DATA(cm);
			pi->ipi_ifindex = 0;
		} else if (cm->cmsg_level == IPPROTO_IPV6 &&
		    cm->cmsg_type == IPV6_PKTINFO) {
			pi6 = (struct in6_pktinfo *)CMSG_DATA(cm);
			if (IN6_IS_ADDR_MULTICAST(&pi6->ipi6_addr))
				pi6->ipi6_addr = in6addr_any;
			pi6->ipi6_ifindex = 0;
		}
	}
}

/* Send back the n replies in b->out; drop and count what cannot go now. */
static void
udp_reply(struct listener *u, struct udp_batch *b, int n)
{
	struct stats	*st = &u->w->stats[u->slot];
	uint64_t	 bytes;
	int		 i = 0, sent, k;

	while (i < n) {
		sent = sendmmsg(u->udp.fd, &b->out[i], (unsigned)(n - i), 0);
		if (sent > 0) {
			for (k = i, bytes = 0; k < i + sent; k++)
				bytes += b->out[k].msg_hdr.msg_iov->iov_len;
			STAT_ADD(st, udp_sent, (uint64_t)sent);
			STAT_ADD(st, udp_bytes_out, bytes);
			i += sent;
			continue;
		}
		if (sent == -1 && errno == EINTR)
			continue;
		if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ENOBUFS)) {
			/* The socket is full: the rest would fail too. */
			STAT_ADD(st, udp_dropped, (uint64_t)(n - i));
			return;
		}
		/* This one cannot be sent (say, EACCES); skip it. */
		log_debug("udp %s: sendmmsg: %s", u->name, strerror(errno));
		STAT_ADD(st, udp_dropped, 1);
		i++;
	}
}

/*
 * A datagram i let through a faulty group: lost, delayed (udp_delay.c),
 * or echoed, perhaps twice; each decided on its own.  Return the replies
 * in b->out now, after those of this one (k before).
 */
static int
udp_fault(struct listener *u, struct udp_batch *b, int i, int k)
{
	const struct fault_profile *p = &listener_group(u)->faults;
	struct stats		*st = &u->w->stats[u->slot];
	int			 dup;

	if (fault_chance(u->w, p->loss_ppm)) {
		STAT_ADD(st, udp_fault_lost, 1);
		return (k);
	}
	dup = fault_chance(u->w, p->duplicate_ppm);
	if (p->delay_ms > 0) {
		if (udp_delay_add(u, &b->msgs[i].msg_hdr, b->iov[i].iov_len) ==
		    0 && dup && udp_delay_add(u, &b->msgs[i].msg_hdr,
		    b->iov[i].iov_len) == 0)
			STAT_ADD(st, udp_fault_duplicated, 1);
		return (k);
	}
	b->out[k++] = b->msgs[i];
	if (dup) {
		b->out[k++] = b->msgs[i];
		STAT_ADD(st, udp_fault_duplicated, 1);
	}
	return (k);
}

/* Read callback: send every waiting datagram back to its sender. */
static void
udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener		*u = arg;
	struct udp_batch	*b = u->w->udp;
	const struct lgroup	*g = listener_group(u);
	struct stats		*st = &u->w->stats[u->slot];
	struct timespec		 ts;
	uint64_t		 bytes;
	uint32_t		 ms_now;
	int			 i, k, n, round, faulty = fault_udp_any(&g->faults);

	for (round = 0; round < UDP_ROUNDS; round++) {
		for (i = 0; i < UDP_BATCH; i++) {
			b->iov[i].iov_base = b->data[i];
			b->iov[i].iov_len = UDP_BUFSIZE;
			memset(&b->msgs[i].msg_hdr, 0,
			    sizeof(b->msgs[i].msg_hdr));
			b->msgs[i].msg_hdr.msg_name = &b->peers[i];
			b->msgs[i].msg_hdr.msg_namelen = sizeof(b->peers[i]);
			b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
			b->msgs[i].msg_hdr.msg_iovlen = 1;
			b->msgs[i].msg_hdr.msg_control = b->ctl[i].buf;
			b->msgs[i].msg_hdr.msg_controllen = UDP_CTLSIZE;
		}
		n = recvmmsg((int)fd, b->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				/* ICMP errors from earlier replies land here. */
				log_debug("udp %s: recvmmsg: %s", u->name,
				    strerror(errno));
			return;
		}
		ms_now = 0;
		if (g->rate > 0 &&
		    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
			ms_now = (uint32_t)((uint64_t)ts.tv_sec * 1000 +
			    (uint64_t)ts.tv_nsec / 1000000);
		for (i = 0, k = 0, bytes = 0; i < n; i++) {
			bytes += b->msgs[i].msg_len;
			switch (guard_udp(g, u->slot, &u->w->rates,
			    (struct sockaddr *)&b->peers[i], ms_now)) {
			case GUARD_PASS:
				/* Exactly what came, to whom it came from. */
				b->iov[i].iov_len = b->msgs[i].msg_len;
				udp_reply_from(&b->msgs[i].msg_hdr);
				if (faulty)
					k = udp_fault(u, b, i, k);
				else
					b->out[k++] = b->msgs[i];
				break;
			case GUARD_REFLECTOR:
				STAT_ADD(st, udp_reflection, 1);
				break;
			case GUARD_RATE:
				STAT_ADD(st, udp_rate_limited, 1);
				break;
			default:
				STAT_ADD(st, udp_denied, 1);
				break;
			}
		}
		STAT_ADD(st, udp_bytes, bytes);
		STAT_ADD(st, udp_datagrams, (uint64_t)n);
		udp_reply(u, b, k);
		if (n < UDP_BATCH)
			return;
	}
}

/*
 * Set up the UDP part of u: echo on the bound socket fd, which u then
 * owns.  Return 0, or -1 after closing fd (logged).
 */
int
udp_listener_init(struct listener *u, int fd)
{
	int	 on = 1;

	u->udp.fd = fd;
	/* Learn each datagram's destination, to answer from it. */
	if (u->addr.ss.ss_family == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6,
	    IPV6_RECVPKTINFO, &on, sizeof(on)) : setsockopt(fd, IPPROTO_IP,
	    IP_PKTINFO, &on, sizeof(on))) {
		log_msg(LOG_ERR, "udp %s: pktinfo: %s", u->name,
		    strerror(errno));
		goto close_fd;
	}
	u->udp.ev = event_new(u->w->base, fd, EV_READ | EV_PERSIST,
	    udp_read_cb, u);
	if (u->udp.ev == NULL || event_add(u->udp.ev, NULL) == -1) {
		log_msg(LOG_ERR, "udp %s: cannot create event", u->name);
		goto free_ev;
	}
	return (0);

free_ev:
	if (u->udp.ev != NULL)
		event_free(u->udp.ev);
close_fd:
	close(fd);
	return (-1);
}

/* Stop echoing: release the UDP part of u (listener_close frees u). */
void
udp_listener_fini(struct listener *u)
{
	udp_delay_forget(u);
	event_free(u->udp.ev);
	close(u->udp.fd);
}
