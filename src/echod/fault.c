/*
 * Faults on purpose: a listener group's fault profile (fault.h), read
 * from its configuration; the workers' seeded generator; and the
 * per-worker rate-limit groups of group_bandwidth.  A TCP connection's
 * faults are fault_tcp.c's and fault_end.c's, UDP's udp.c's and
 * udp_delay.c's.
 */
#include "config.h"

#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "fault.h"
#include "faultpriv.h"
#include "log.h"
#include "server.h"
#include "worker.h"

/* Copy a configured group's fault keys. */
void
fault_profile_set(struct fault_profile *p, const struct conf_group *g)
{
	memset(p, 0, sizeof(*p));
	p->delay_ms = g->delay_ms;
	p->jitter_ms = g->jitter_ms;
	if (g->proto == CONF_UDP) {
		p->loss_ppm = (uint32_t)g->loss_ppm;
		p->duplicate_ppm = (uint32_t)g->duplicate_ppm;
		return;
	}
	p->bandwidth = g->bandwidth;
	p->group_bandwidth = g->group_bandwidth;
	p->slice_min = g->slice[0];
	p->slice_max = g->slice[1];
	p->slice_gap_ms = g->slice_gap_ms;
	p->reset_after = g->reset_after;
	p->close_after_ms = g->close_after_ms;
	p->stall_after = g->stall_after;
	p->reset_ppm = (uint32_t)g->reset_ppm;
	p->close_ppm = (uint32_t)g->close_ppm;
	p->stall_ppm = (uint32_t)g->stall_ppm;
}

/* Tell whether a TCP group's connections have any fault to run. */
int
fault_tcp_any(const struct fault_profile *p)
{
	return (p->delay_ms > 0 || p->bandwidth > 0 ||
	    p->group_bandwidth > 0 || p->slice_min > 0 ||
	    (p->reset_after > 0 && p->reset_ppm > 0) ||
	    (p->close_after_ms > 0 && p->close_ppm > 0) ||
	    (p->stall_after > 0 && p->stall_ppm > 0));
}

/* Tell whether a UDP group has any fault. */
int
fault_udp_any(const struct fault_profile *p)
{
	return (p->delay_ms > 0 || p->loss_ppm > 0 || p->duplicate_ppm > 0);
}

/* The worker's next random number (splitmix64: seeded, repeatable). */
uint64_t
fault_random(struct worker *w)
{
	uint64_t	 z = (w->fault_rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* Tell whether an event of probability ppm (of CONF_PPM) happens. */
int
fault_chance(struct worker *w, uint32_t ppm)
{
	if (ppm >= CONF_PPM)
		return (1);
	if (ppm == 0)
		return (0);
	return (fault_random(w) % CONF_PPM < ppm);
}

/* A delay in us: delay_ms, give or take up to jitter_ms, uniformly. */
uint64_t
fault_jitter(struct worker *w, uint64_t delay_ms, uint64_t jitter_ms)
{
	uint64_t	 d = delay_ms * 1000, j = jitter_ms * 1000;

	if (j == 0)
		return (d);
	return (d - j + fault_random(w) % (2 * j + 1));
}

/*
 * A worker's share of group slot's bandwidth (0: none), as the tokens of
 * one FAULT_TICK_MS: at least one.
 */
uint64_t
fault_share(const struct worker *w, uint64_t bandwidth)
{
	uint64_t	 per_tick;

	if (bandwidth == 0)
		return (EV_RATE_LIMIT_MAX);
	per_tick = bandwidth / w->srv->nworkers / (1000 / FAULT_TICK_MS);
	return (per_tick > 0 ? per_tick : 1);
}

/*
 * Make, or set the rate of, the rate-limit group of slot on worker w: a
 * group of its base that every connection of the listener group on this
 * worker joins.  Return it, or NULL.
 */
struct bufferevent_rate_limit_group *
fault_rate_set(struct worker *w, unsigned slot, uint64_t per_tick)
{
	struct fault_rl		*rl = &w->fault_rl[slot];
	struct ev_token_bucket_cfg *cfg;
	struct timeval		 tick = { 0, FAULT_TICK_MS * 1000 };

	if (rl->group != NULL && rl->per_tick == per_tick)
		return (rl->group);
	if ((cfg = ev_token_bucket_cfg_new(per_tick, per_tick, per_tick,
	    per_tick, &tick)) == NULL)
		return (NULL);
	if (rl->group == NULL)
		rl->group = bufferevent_rate_limit_group_new(w->base, cfg);
	else if (bufferevent_rate_limit_group_set_cfg(rl->group, cfg) == -1) {
		ev_token_bucket_cfg_free(cfg);
		return (NULL);
	}
	/* The group keeps a copy of cfg. */
	ev_token_bucket_cfg_free(cfg);
	if (rl->group != NULL)
		rl->per_tick = per_tick;
	return (rl->group);
}

/*
 * A reload: each group's bandwidth is shared, so a new value applies to
 * its connections on this worker at once, and none (0, or the group
 * gone) lifts the limit from those that joined.
 */
void
fault_worker_regroup(struct worker *w)
{
	unsigned	 slot;
	uint64_t	 bw;

	for (slot = 0; slot < GROUP_SLOTS; slot++) {
		if (w->fault_rl[slot].group == NULL)
			continue;
		bw = slot < w->groups->n && w->groups->v[slot].active ?
		    w->groups->v[slot].faults.group_bandwidth : 0;
		if (fault_rate_set(w, slot, fault_share(w, bw)) == NULL)
			log_warnx("worker %d: cannot set a group's bandwidth",
			    w->id);
	}
}

/* Free the worker's rate-limit groups, once its connections are gone. */
void
fault_worker_free(struct worker *w)
{
	unsigned	 i;

	for (i = 0; i < GROUP_SLOTS; i++)
		if (w->fault_rl[i].group != NULL) {
			bufferevent_rate_limit_group_free(w->fault_rl[i].group);
			w->fault_rl[i].group = NULL;
		}
}
