/* The Prometheus exposition (metrics.c); http.c serves it. */
#ifndef ECHOD_METRICS_H
#define ECHOD_METRICS_H

#include <stdint.h>

struct evbuffer;
struct server;

void	metrics_write(struct server *, struct evbuffer *);
void	metrics_head(struct evbuffer *, const char *, const char *,
	    const char *);
void	metrics_one(struct evbuffer *, const char *, const char *,
	    const char *, uint64_t);

#endif
