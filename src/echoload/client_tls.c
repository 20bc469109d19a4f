/*
 * TLS for the TCP client (--tls): one SSL_CTX for all threads, made from
 * the options before any thread starts, and an SSL object per connection
 * on its non-blocking socket.  client_tcp.c calls these where it would
 * send and recv; they say "would block" the way the socket calls do, and
 * which way the connection must wait (c->tls_want).
 *
 * With --reconnect a client keeps the session of its last connection and
 * offers it on the next, so that the handshake is resumed (a ticket in
 * TLS 1.3) unless --no-resume.
 */
#include "config.h"

#include <sys/types.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/event.h>

#include "echoload.h"
#include "client.h"
#include "meter.h"

#ifdef HAVE_OPENSSL
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL_CTX		*tls_ctx;
static _Atomic int	 tls_said;	/* the first failure is printed */

/* Print what OpenSSL says went wrong with what; return -1. */
static int
tls_error(const char *what, const char *path)
{
	char	 buf[256];

	ERR_error_string_n(ERR_peek_last_error(), buf, sizeof(buf));
	fprintf(stderr, "echoload: %s %s: %s\n", what, path, buf);
	ERR_clear_error();
	return (-1);
}

/* Tell whether a file can be read; say why not.  Return 0 or -1. */
static int
tls_readable(const char *what, const char *path)
{
	if (access(path, R_OK) == 0)
		return (0);
	fprintf(stderr, "echoload: %s %s: %s\n", what, path,
	    strerror(errno));
	return (-1);
}

/* Load the client certificate and key (--tls-cert, --tls-key). */
static int
tls_setup_cert(void)
{
	if (tls_readable("--tls-cert", opt.tls_cert) == -1 ||
	    tls_readable("--tls-key", opt.tls_key) == -1)
		return (EX_NOINPUT);
	if (SSL_CTX_use_certificate_chain_file(tls_ctx, opt.tls_cert) != 1)
		return (tls_error("--tls-cert", opt.tls_cert), EX_DATAERR);
	if (SSL_CTX_use_PrivateKey_file(tls_ctx, opt.tls_key,
	    SSL_FILETYPE_PEM) != 1)
		return (tls_error("--tls-key", opt.tls_key), EX_DATAERR);
	if (SSL_CTX_check_private_key(tls_ctx) != 1)
		return (tls_error("--tls-key", opt.tls_key), EX_DATAERR);
	return (0);
}

/*
 * Make the one SSL_CTX from the options.  Return 0, or a sysexits code
 * after saying on standard error what is wrong.
 */
int
client_tls_setup(void)
{
	int	 v, rc;

	if (!opt.tls)
		return (0);
	if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return (tls_error("cannot make a TLS context", ""), EX_OSERR);
	v = opt.tls_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
	if (SSL_CTX_set_min_proto_version(tls_ctx, v) != 1 ||
	    SSL_CTX_set_max_proto_version(tls_ctx, opt.tls_version == 12 ?
	    TLS1_2_VERSION : 0) != 1)
		return (tls_error("cannot set the TLS version", ""),
		    EX_OSERR);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Sessions are kept per client, not in a cache. */
	SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
	if (opt.tls_cert != NULL && (rc = tls_setup_cert()) != 0)
		return (rc);
	if (opt.tls_no_verify)
		return (0);
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
	if (opt.tls_ca == NULL) {
		if (SSL_CTX_set_default_verify_paths(tls_ctx) != 1)
			return (tls_error("cannot load the system's CAs", ""),
			    EX_OSFILE);
		return (0);
	}
	if (tls_readable("--tls-ca", opt.tls_ca) == -1)
		return (EX_NOINPUT);
	if (SSL_CTX_load_verify_file(tls_ctx, opt.tls_ca) != 1)
		return (tls_error("--tls-ca", opt.tls_ca), EX_DATAERR);
	return (0);
}

/* Free the SSL_CTX at the end. */
void
client_tls_cleanup(void)
{
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

/* Start TLS on the client's connected socket.  Return 0 or -1. */
int
client_tls_start(struct client *c)
{
	unsigned char	 ip[16];
	SSL		*ssl;

	if ((ssl = SSL_new(tls_ctx)) == NULL)
		goto fail;
	c->ssl = ssl;
	if (SSL_set_fd(ssl, c->fd) != 1)
		goto fail;
	if (opt.tls_name != NULL) {
		/* SNI only for a name; an address is checked as one. */
		if (inet_pton(AF_INET, opt.tls_name, ip) != 1 &&
		    inet_pton(AF_INET6, opt.tls_name, ip) != 1 &&
		    SSL_set_tlsext_host_name(ssl, opt.tls_name) != 1)
			goto fail;
		if (!opt.tls_no_verify && SSL_set1_host(ssl, opt.tls_name) != 1)
			goto fail;
	}
	if (c->sess != NULL && SSL_set_session(ssl, c->sess) != 1)
		goto fail;
	SSL_set_connect_state(ssl);
	return (0);
fail:
	ERR_clear_error();
	return (-1);
}

/*
 * Map an SSL call's result r to the socket calls' way: r if it made
 * progress, else -1 with errno EAGAIN (c->tls_want says which way to
 * wait) or some other errno, and 0 for the peer's close_notify.
 */
static int
client_tls_result(struct client *c, int r)
{
	char	 buf[256];

	if (r > 0)
		return (r);
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->tls_want = EV_READ;
		errno = EAGAIN;
		return (-1);
	case SSL_ERROR_WANT_WRITE:
		c->tls_want = EV_WRITE;
		errno = EAGAIN;
		return (-1);
	case SSL_ERROR_ZERO_RETURN:
		return (0);
	case SSL_ERROR_SSL:
		if (atomic_exchange(&tls_said, 1) == 0) {
			ERR_error_string_n(ERR_peek_last_error(), buf,
			    sizeof(buf));
			fprintf(stderr, "echoload: TLS with %s: %s\n",
			    c->tgt->name, buf);
		}
		break;
	}
	ERR_clear_error();
	errno = ECONNRESET;
	return (-1);
}

/*
 * Go on with the handshake.  Return 1 when it is done (and counted), 0
 * while it waits (c->tls_want says for what), -1 if it failed.
 */
int
client_tls_handshake(struct client *c)
{
	int	 r;

	c->tls_want = 0;
	r = client_tls_result(c, SSL_do_handshake(c->ssl));
	if (r > 0) {
		METER_ADD(c->ctx->meter, tls_handshakes, 1);
		if (SSL_session_reused(c->ssl))
			METER_ADD(c->ctx->meter, tls_resumed, 1);
		return (1);
	}
	if (r == -1 && errno == EAGAIN)
		return (0);
	METER_ADD(c->ctx->meter, tls_failed, 1);
	return (-1);
}

/* SSL_write: as send(2), but 0 is never returned. */
ssize_t
client_tls_send(struct client *c, const void *p, size_t len)
{
	int	 r;

	c->tls_want = 0;
	if (len > INT_MAX)
		len = INT_MAX;
	r = client_tls_result(c, SSL_write(c->ssl, p, (int)len));
	if (r == 0) {
		errno = EPIPE;	/* the server's close_notify */
		return (-1);
	}
	return (r);
}

/* SSL_read: as recv(2); 0 for the server's close_notify. */
ssize_t
client_tls_recv(struct client *c, void *p, size_t len)
{
	c->tls_want = 0;
	return (client_tls_result(c, SSL_read(c->ssl, p, (int)len)));
}

/* Tell whether decrypted bytes wait inside the SSL object. */
int
client_tls_pending(const struct client *c)
{
	return (c->ssl != NULL && SSL_pending(c->ssl) > 0);
}

/*
 * Send our close_notify (--server-close), and read on.  Return 0 once
 * sent, -1 if not, with errno EAGAIN while it waits (c->tls_want).
 */
int
client_tls_shutdown(struct client *c)
{
	int	 r;

	c->tls_want = 0;
	if ((r = SSL_shutdown(c->ssl)) >= 0)
		return (0);
	return (client_tls_result(c, r) == -1 ? -1 : 0);
}

/* Keep the connection's session for the next, if it can be resumed. */
static void
client_tls_keep(struct client *c)
{
	SSL_SESSION	*s;

	if ((s = SSL_get1_session(c->ssl)) == NULL)
		return;
	if (!SSL_SESSION_is_resumable(s)) {
		SSL_SESSION_free(s);
		return;
	}
	SSL_SESSION_free(c->sess);
	c->sess = s;
}

/*
 * End TLS on the connection.  A clean end sends our close_notify and
 * keeps the session to offer on the next connection.
 */
void
client_tls_end(struct client *c, int clean)
{
	if (c->ssl == NULL)
		return;
	if (clean) {
		if (SSL_shutdown(c->ssl) < 0)
			ERR_clear_error();
		if (!opt.tls_no_resume)
			client_tls_keep(c);
	}
	SSL_free(c->ssl);
	c->ssl = NULL;
}

/* Free what the client keeps between connections. */
void
client_tls_free(struct client *c)
{
	client_tls_end(c, 0);
	SSL_SESSION_free(c->sess);
	c->sess = NULL;
}

#else	/* !HAVE_OPENSSL: main.c refuses --tls */

int
client_tls_setup(void)
{
	return (0);
}

void
client_tls_cleanup(void)
{
}

int
client_tls_start(struct client *c)
{
	return (-1);
}

int
client_tls_handshake(struct client *c)
{
	return (-1);
}

ssize_t
client_tls_send(struct client *c, const void *p, size_t len)
{
	errno = ENOTSUP;
	return (-1);
}

ssize_t
client_tls_recv(struct client *c, void *p, size_t len)
{
	errno = ENOTSUP;
	return (-1);
}

int
client_tls_pending(const struct client *c)
{
	return (0);
}

int
client_tls_shutdown(struct client *c)
{
	errno = ENOTSUP;
	return (-1);
}

void
client_tls_end(struct client *c, int clean)
{
}

void
client_tls_free(struct client *c)
{
}

#endif
