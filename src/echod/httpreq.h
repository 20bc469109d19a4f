/*
 * The metrics endpoint's requests and answers: reading a request line and
 * its headers, and writing the whole answer.  http.c does the connections.
 */
#ifndef ECHOD_HTTPREQ_H
#define ECHOD_HTTPREQ_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct server;

/* The answers the endpoint gives, in the order of their counters. */
enum httpreq_answer {
	HTTPREQ_OK,
	HTTPREQ_BAD_REQUEST,
	HTTPREQ_NOT_FOUND,
	HTTPREQ_BAD_METHOD,
	HTTPREQ_TOO_LARGE,
	HTTPREQ_NANSWERS
};

/* The endpoint's own counters, which only the main thread keeps. */
struct httpreq_counts {
	uint64_t	answered[HTTPREQ_NANSWERS];
	uint64_t	timeouts;	/* closed before answering */
};

enum httpreq_answer httpreq_parse(const char *, size_t, int *);
int	httpreq_answer(struct evbuffer *, enum httpreq_answer, int,
	    struct server *, const struct httpreq_counts *);
int	httpreq_code(enum httpreq_answer);

#endif
