/* UDP's part of a listener (udp.c): the datagram echo. */
#ifndef ECHOD_UDP_H
#define ECHOD_UDP_H

/* Largest UDP payload: 65,507 bytes over IPv4, 65,527 over IPv6. */
#define UDP_BUFSIZE	65536

struct listener;
struct udp_batch;

struct udp_batch *udp_batch_new(void);
void	udp_batch_free(struct udp_batch *);
int	udp_listener_init(struct listener *, int);
void	udp_listener_fini(struct listener *);

#endif
