/*
 * TLS (tls.c, and tls_close.c for the close_notify): one SSL_CTX per TLS
 * listener group, shared by the workers (OpenSSL 3 allows it, and session
 * tickets then resume on any worker), and each connection's handshake and
 * close_notify on libevent's OpenSSL bufferevents.  Built without OpenSSL,
 * every function fails.
 */
#ifndef ECHOD_TLS_H
#define ECHOD_TLS_H

#include <stddef.h>

struct bufferevent;
struct conf_group;
struct conn;
struct event_base;

void	*tls_ctx_new(const char *, const struct conf_group *, char *,
	    size_t);
void	*tls_ctx_ref(void *);
void	 tls_ctx_free(void *);
struct bufferevent *tls_bufferevent(struct event_base *, void *, int);

#endif
