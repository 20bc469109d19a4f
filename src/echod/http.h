/* The metrics endpoint (http.c): its listeners and connections. */
#ifndef ECHOD_HTTP_H
#define ECHOD_HTTP_H

struct addr_list;
struct http;
struct server;

struct http *http_start(struct server *, const struct addr_list *);
void	http_free(struct http *);

#endif
