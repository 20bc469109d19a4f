/*
 * A log-bucketed latency histogram in microseconds: exact below 32 us,
 * then 32 buckets per power of two (at most about 3% relative error).
 */
#ifndef ECHOD_HIST_H
#define ECHOD_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS	5
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_NBUCKETS	((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t	count;
	uint64_t	sum;
	uint64_t	min;
	uint64_t	max;
	uint64_t	b[HIST_NBUCKETS];
};

void		hist_init(struct hist *);
void		hist_add(struct hist *, uint64_t);
void		hist_merge(struct hist *, const struct hist *);
uint64_t	hist_percentile(const struct hist *, double);
double		hist_mean(const struct hist *);
unsigned	hist_bucket(uint64_t);
uint64_t	hist_bucket_low(unsigned);
uint64_t	hist_bucket_high(unsigned);
int		hist_write_hgrm(const struct hist *, FILE *);

#endif
