/* UDP's part of a listener (udp.c): the datagram echo. */
#ifndef ECHOD_UDP_H
#define ECHOD_UDP_H

#include <sys/socket.h>
#include <netinet/in.h>

/* Largest UDP payload: 65,507 bytes over IPv4, 65,527 over IPv6. */
#define UDP_BUFSIZE	65536
/* The control data a datagram comes with: where it came to. */
#define UDP_CTLSIZE	CMSG_SPACE(sizeof(struct in6_pktinfo))

struct listener;
struct udp_batch;
struct worker;

struct udp_batch *udp_batch_new(void);
void	udp_batch_free(struct udp_batch *);
int	udp_listener_init(struct listener *, int);
void	udp_listener_fini(struct listener *);

/* udp_delay.c: delayed echoes (a group's delay and jitter) */
int	udp_delay_add(struct listener *, const struct msghdr *, size_t);
void	udp_delay_forget(struct listener *);
void	udp_delay_free(struct worker *);

#endif
