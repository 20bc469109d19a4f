/*
 * What all of echoload reads: the options, which main.c sets before any
 * thread starts and nobody changes after, and the clock.
 */
#ifndef ECHOD_ECHOLOAD_H
#define ECHOD_ECHOLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "addr.h"

#define QUEUE_CAP	4096		/* most messages in flight per client */
#define UDP_SEQ_LEN	8		/* a datagram starts with its number */

enum mode { MODE_PINGPONG, MODE_PIPELINE, MODE_STREAM, MODE_CHURN };
#define MODE_COUNT	4
extern const char *const mode_names[MODE_COUNT];

struct target {
	struct addr	a;
	const char	*name;		/* as given */
};

struct opts {
	struct target	*targets;
	size_t		 ntargets;
	unsigned	 threads;
	unsigned	 connections;
	uint64_t	 duration_ms;
	uint64_t	 timeout_ms;
	size_t		 size_min, size_max;
	enum mode	 mode;
	unsigned	 depth;
	double		 rate;		/* messages (churn: connections)/s in
					   all; 0: closed loop */
	double		 ramp;		/* new connections/s in all */
	int		 udp;
	int		 json;
	int		 progress;
	double		 max_loss;	/* UDP loss allowed, percent */
	uint64_t	 seed;
	int		 proxy;		/* PROXY header version; 0: none */
	struct addr	 proxy_src;	/* the client it names */
	int		 server_close;	/* churn: the server closes first */
	int		 expect_faults;	/* resets, closes, stalls: counted */
	const char	*hgrm;		/* --hgrm: the latencies' file */
	const char	*timeline;	/* --timeline: a CSV row a second */
	int		 tls;
	int		 tls_version;	/* 12, 13; 0: either */
	int		 tls_no_verify;
	int		 tls_no_resume;
	const char	*tls_ca, *tls_cert, *tls_key, *tls_name;
};
extern struct opts opt;

/* Microseconds on the monotonic clock. */
static inline uint64_t
now_us(void)
{
	struct timespec	 ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		abort();	/* only for a clock the system lacks */
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

#endif
