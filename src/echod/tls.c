/*
 * TLS on libevent's OpenSSL bufferevents (tls.h).  A group's SSL_CTX is
 * made by the main thread from the files its configuration names, at
 * start and at every reload (so a reload reads new certificates; a
 * connection keeps the one it was accepted with), and shared read-only by
 * the workers.  On a connection: the handshake, under handshake_timeout,
 * counted full or resumed, or failed by reason; then the echo goes through
 * the bufferevent alone (conn.c's buffered path); at the end, our
 * close_notify (tls_close.c), and only then the close.
 *
 * libevent 2.1.12's OpenSSL bufferevent needs care, and this file and
 * conn.c take it: on the client's close_notify it stops reading and
 * writing (conn.c enables writing again to flush the echo); it has no call
 * that sends close_notify (tls_close.c's tls_notify calls SSL_shutdown
 * once the output is empty, and waits for room itself); and when data and
 * close_notify
 * come in one read, it reports EOF before the data reaches the read
 * callback (conn.c echoes what the input holds before it acts on EOF).
 */
#include "config.h"

#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#ifdef HAVE_OPENSSL
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>
#endif

#include "conf.h"
#include "connpriv.h"
#include "log.h"
#include "os.h"
#include "tls.h"
#include "units.h"
#include "worker.h"

#define TLS_LOG_EVERY_MS	1000	/* handshake failures: one line */

#ifdef HAVE_OPENSSL

/* Say what went wrong with one of g's files, naming its key's line. */
static void *
tls_fail(SSL_CTX *ctx, const char *file, const struct conf_group *g,
    const char *key, const char *what, char *err, size_t errlen)
{
	char	 label[64], ossl[256];
	int	 line = conf_group_line(g, "tls", key);
	unsigned long	 e = ERR_get_error();

	if (strcmp(g->name, CONF_TLS_GROUP) == 0)
		snprintf(label, sizeof(label), "[tls]");
	else
		snprintf(label, sizeof(label), "[tls %s]", g->name);
	if (e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	else
		snprintf(ossl, sizeof(ossl), "%s", strerror(errno));
	ERR_clear_error();
	snprintf(err, errlen, "%s:%d: %s %s: %s: %s", file, line, label, key,
	    what, ossl);
	SSL_CTX_free(ctx);
	return (NULL);
}

/* Tell whether path can be read; else errno says why. */
static int
tls_readable(const char *path)
{
	FILE	*f;

	if ((f = fopen(path, "r")) == NULL)
		return (0);
	fclose(f);
	return (1);
}

/*
 * Make the SSL_CTX of TLS group g, read from file: certificate chain and
 * key, client CAs for mTLS, versions and ciphers.  Return it, or NULL
 * with "FILE:LINE: [tls NAME] key: path: why" in err.
 */
void *
tls_ctx_new(const char *file, const struct conf_group *g, char *err,
    size_t errlen)
{
	SSL_CTX			*ctx;
	STACK_OF(X509_NAME)	*cas;
	char			 what[CONF_PATHLEN + 64];

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return (tls_fail(NULL, file, g, "certificate", "cannot make a "
		    "TLS context", err, errlen));
	if (!SSL_CTX_set_min_proto_version(ctx, g->protocols & CONF_TLS12 ?
	    TLS1_2_VERSION : TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, g->protocols & CONF_TLS13 ?
	    TLS1_3_VERSION : TLS1_2_VERSION))
		return (tls_fail(ctx, file, g, "protocols", "not available",
		    err, errlen));
	if (g->ciphers[0] != '\0' && !SSL_CTX_set_cipher_list(ctx, g->ciphers))
		return (tls_fail(ctx, file, g, "ciphers", "no usable cipher",
		    err, errlen));
	if (g->ciphersuites[0] != '\0' &&
	    !SSL_CTX_set_ciphersuites(ctx, g->ciphersuites))
		return (tls_fail(ctx, file, g, "ciphersuites", "no usable "
		    "cipher suite", err, errlen));
	snprintf(what, sizeof(what), "'%s'", g->certificate);
	if (!tls_readable(g->certificate) ||
	    !SSL_CTX_use_certificate_chain_file(ctx, g->certificate))
		return (tls_fail(ctx, file, g, "certificate", what, err, errlen));
	snprintf(what, sizeof(what), "'%s'", g->key);
	if (!tls_readable(g->key))
		return (tls_fail(ctx, file, g, "key", what, err, errlen));
	if (!SSL_CTX_use_PrivateKey_file(ctx, g->key, SSL_FILETYPE_PEM) &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
		return (tls_fail(ctx, file, g, "key", what, err, errlen));
	if (!SSL_CTX_check_private_key(ctx)) {
		snprintf(what, sizeof(what), "'%s' does not match the "
		    "certificate", g->key);
		return (tls_fail(ctx, file, g, "key", what, err, errlen));
	}
	if (g->client_ca[0] != '\0') {
		snprintf(what, sizeof(what), "'%s'", g->client_ca);
		if (!tls_readable(g->client_ca) ||
		    !SSL_CTX_load_verify_locations(ctx, g->client_ca, NULL) ||
		    (cas = SSL_load_client_CA_file(g->client_ca)) == NULL)
			return (tls_fail(ctx, file, g, "client_ca", what, err,
			    errlen));
		SSL_CTX_set_client_CA_list(ctx, cas);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	/* Resumption with client certificates needs a context id. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"echod", 5);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/*
	 * A FIN without close_notify ends the echo as EOF does.  OpenSSL 3
	 * makes it an error (and answers with an alert) unless told, and
	 * libevent 2.1's allow_dirty_shutdown cannot see past that.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle connections hold no read and write buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return (ctx);
}

/* Another reference to a context (a set of groups that keeps it). */
void *
tls_ctx_ref(void *ctx)
{
	if (ctx != NULL && !SSL_CTX_up_ref(ctx))
		return (NULL);
	return (ctx);
}

void
tls_ctx_free(void *ctx)
{
	SSL_CTX_free(ctx);
}

/* A bufferevent for accepted socket fd that does TLS with ctx. */
struct bufferevent *
tls_bufferevent(struct event_base *base, void *ctx, int fd)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return (NULL);
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return (NULL);
	}
	/* A FIN without close_notify ends the echo as EOF does, not error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return (bev);
}

/*
 * The counter for a handshake failure: the oldest OpenSSL error libevent
 * kept (it returns the newest first, and keeps SSL_get_error's bare code
 * too, which is no error of a library); none: the client went away.
 */
static const char *
tls_reason(struct conn *c)
{
	unsigned long	 e, first = 0;
	int		 r;

	while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
		if (ERR_GET_LIB(e) != 0)
			first = e;
	if ((e = first) == 0) {
		STAT_ADD(c->st, tls_fail_closed, 1);
		return ("closed by the client");
	}
	r = ERR_GET_REASON(e);
	if (r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
	    r == SSL_R_CERTIFICATE_VERIFY_FAILED ||
	    r == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
	    r == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
	    r == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN) {
		STAT_ADD(c->st, tls_fail_certificate, 1);
		return (ERR_reason_error_string(e));
	}
	if (r == SSL_R_NO_SHARED_CIPHER || r == SSL_R_UNSUPPORTED_PROTOCOL ||
	    r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_HTTP_REQUEST ||
	    r == SSL_R_VERSION_TOO_LOW || r == SSL_R_VERSION_TOO_HIGH ||
	    r == SSL_R_NO_PROTOCOLS_AVAILABLE || r == SSL_R_PACKET_LENGTH_TOO_LONG) {
		STAT_ADD(c->st, tls_fail_protocol, 1);
		return (ERR_reason_error_string(e));
	}
	STAT_ADD(c->st, tls_fail_other, 1);
	return (ERR_reason_error_string(e));
}

/*
 * Event callback during the handshake: done (the echo begins), or failed
 * (counted by reason, logged at most once a second per worker at info).
 */
void
tls_handshake_event(struct conn *c, short what)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	const char		*why;
	uint64_t		 now;
	SSL			*ssl = bufferevent_openssl_get_ssl(c->bev);

	if (what & BEV_EVENT_CONNECTED) {
		c->flags &= ~CONN_HANDSHAKE;
		event_free(c->deadline);
		c->deadline = NULL;
		if (ssl != NULL && SSL_session_reused(ssl))
			STAT_ADD(c->st, tls_resumed, 1);
		else
			STAT_ADD(c->st, tls_full, 1);
		if (getpeername((int)bufferevent_getfd(c->bev),
		    (struct sockaddr *)&ss, &len) == -1) {
			conn_free(c);
			return;
		}
		if (conn_begin(c, (struct sockaddr *)&ss, len, NULL, 0) == 0 &&
		    c->w->draining)
			drain_conn(c);	/* it finished as the drain began */
		return;
	}
	why = tls_reason(c);
	now = now_ms();
	if (now - c->w->tls_logged_ms >= TLS_LOG_EVERY_MS) {
		c->w->tls_logged_ms = now;
		log_info("tls: handshake failed: %s (at most one such line a "
		    "second per worker; see echod_tls_handshake_failures_total)",
		    why != NULL ? why : "unknown");
	}
	conn_free(c);
}

/* Timer callback: the handshake took longer than handshake_timeout. */
static void
tls_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	STAT_ADD(c->st, tls_fail_timeout, 1);
	log_debug("conn %d: TLS handshake timeout",
	    (int)bufferevent_getfd(c->bev));
	conn_free(c);
}

/*
 * Bound c's whole handshake by ms: a deadline of its own, which no byte
 * the client sends restarts (as libevent's handshake timeouts do).
 * Return 0 or -1.
 */
int
tls_deadline(struct conn *c, uint64_t ms)
{
	struct timeval	 tv = units_timeval(ms);

	if ((c->deadline = evtimer_new(c->w->base, tls_deadline_cb, c)) ==
	    NULL)
		return (-1);
	return (evtimer_add(c->deadline, &tv));
}

/*
 * Take the plaintext OpenSSL holds already decrypted into the input.  A
 * rate-limited read (bandwidth) may stop mid-record; libevent 2.1 then
 * reads the rest only when the socket is readable again, which it may
 * never be: the client waits for the echo of what it sent.  These bytes
 * came in as ciphertext already read and counted.  Return how many, or
 * -1.
 */
ssize_t
tls_take_pending(struct conn *c)
{
	SSL			*ssl = bufferevent_openssl_get_ssl(c->bev);
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct evbuffer_iovec	 v;
	int			 n, r;

	if (ssl == NULL || (n = SSL_pending(ssl)) <= 0)
		return (0);
	if (evbuffer_reserve_space(in, n, &v, 1) != 1)
		return (-1);
	if ((r = SSL_read(ssl, v.iov_base, n)) <= 0) {
		ERR_clear_error();
		return (-1);
	}
	v.iov_len = (size_t)r;
	if (evbuffer_commit_space(in, &v, 1) == -1)
		return (-1);
	return (r);
}

/* Tell whether OpenSSL holds decrypted bytes of the connection. */
int
tls_pending(const struct conn *c)
{
	SSL	*ssl;

	if (!(c->flags & CONN_TLS) ||
	    (ssl = bufferevent_openssl_get_ssl(c->bev)) == NULL)
		return (0);
	return (SSL_pending(ssl) > 0);
}

#else	/* !HAVE_OPENSSL */

void *
tls_ctx_new(const char *file, const struct conf_group *g, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "%s: built without OpenSSL", file);
	return (NULL);
}

void *
tls_ctx_ref(void *ctx)
{
	return (ctx);
}

void
tls_ctx_free(void *ctx)
{
}

struct bufferevent *
tls_bufferevent(struct event_base *base, void *ctx, int fd)
{
	return (NULL);
}

void
tls_handshake_event(struct conn *c, short what)
{
	conn_free(c);
}

int
tls_deadline(struct conn *c, uint64_t ms)
{
	return (-1);
}

ssize_t
tls_take_pending(struct conn *c)
{
	return (0);
}

int
tls_pending(const struct conn *c)
{
	return (0);
}

#endif
