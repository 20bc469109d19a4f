/*
 * Faults on purpose: a listener group's profile of misbehaviour (delay
 * and jitter, bandwidth, sliced writes, resets, closes and stalls after a
 * while; for UDP, delay, loss and duplicates), and its TCP part, which a
 * faulty group's connections run through (fault.c; UDP's is udp.c's).
 */
#ifndef ECHOD_FAULT_H
#define ECHOD_FAULT_H

#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct conf_group;
struct conn;
struct worker;

/* A group's faults, as the configuration set them; 0: that one is off. */
struct fault_profile {
	uint64_t	 delay_ms, jitter_ms;
	uint64_t	 bandwidth, group_bandwidth;	/* bytes/s */
	uint64_t	 slice_min, slice_max, slice_gap_ms;
	uint64_t	 reset_after, close_after_ms, stall_after;
	uint32_t	 reset_ppm, close_ppm, stall_ppm;	/* of CONF_PPM */
	uint32_t	 loss_ppm, duplicate_ppm;		/* UDP */
};

void	 fault_profile_set(struct fault_profile *, const struct conf_group *);
int	 fault_tcp_any(const struct fault_profile *);
int	 fault_udp_any(const struct fault_profile *);
uint64_t fault_random(struct worker *);
int	 fault_chance(struct worker *, uint32_t);
uint64_t fault_jitter(struct worker *, uint64_t, uint64_t);
void	 fault_worker_free(struct worker *);
void	 fault_worker_regroup(struct worker *);

/* fault.c: a TCP connection's faults, decided at accept. */
int	 fault_conn_new(struct conn *);
void	 fault_conn_free(struct conn *);
void	 fault_read_cb(struct bufferevent *, void *);
int	 fault_written(struct conn *);
size_t	 fault_held(const struct conn *);
int	 fault_withholds(const struct conn *);

#endif
