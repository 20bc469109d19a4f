/* TCP's part of a listener (tcp.c): accepting, and admission's pauses. */
#ifndef ECHOD_TCP_H
#define ECHOD_TCP_H

struct listener;

int	tcp_listener_init(struct listener *, int);
void	tcp_listener_fini(struct listener *);
void	tcp_accept_queued(struct listener *);
void	tcp_wake(struct listener *);

#endif
