/*
 * The metrics endpoint's requests and answers (httpreq.h): a request line
 * and headers are checked strictly, and anything but "GET /metrics" or
 * "HEAD /metrics" over HTTP/1.x gets its error status.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include <event2/buffer.h>

#include "httpreq.h"
#include "metrics.h"

static const struct {
	int		 code;
	const char	*reason;
	const char	*body;		/* for all but 200 */
} httpreq_status[HTTPREQ_NANSWERS] = {
	{ 200, "OK", NULL },
	{ 400, "Bad Request", "bad request" },
	{ 404, "Not Found", "not found: try /metrics" },
	{ 405, "Method Not Allowed", "only GET and HEAD" },
	{ 431, "Request Header Fields Too Large", "request headers over 8 KiB" }
};

/*
 * Append the endpoint's own counters, which only the main thread keeps.
 * Return 0 or -1.
 */
static int
httpreq_write_own(const struct httpreq_counts *own, struct evbuffer *b)
{
	size_t	 i;

	metrics_head(b, "echod_metrics_requests_total", "counter",
	    "Requests to this endpoint answered, by status code; a scrape "
	    "counts once answered, so not in its own figures.");
	for (i = 0; i < HTTPREQ_NANSWERS; i++)
		if (evbuffer_add_printf(b, "echod_metrics_requests_total"
		    "{code=\"%d\"} %" PRIu64 "\n", httpreq_status[i].code,
		    own->answered[i]) == -1)
			return (-1);
	metrics_head(b, "echod_metrics_timeouts_total", "counter",
	    "Connections to this endpoint closed at request_timeout before "
	    "their answer was written.");
	if (evbuffer_add_printf(b, "echod_metrics_timeouts_total %" PRIu64
	    "\n", own->timeouts) == -1)
		return (-1);
	return (0);
}

/* Tell whether c may be in a token: a method or a header name. */
static int
httpreq_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	    (c >= 'a' && c <= 'z'))
		return (1);
	return (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * Read a request line, "METHOD SP PATH SP HTTP/1.x" (s, n bytes, without
 * its line end), and choose the answer; *head tells whether it is HEAD.
 */
static enum httpreq_answer
httpreq_request_line(const char *s, size_t n, int *head)
{
	size_t	 i, method, path, pathlen;

	for (i = 0; i < n && httpreq_tchar((unsigned char)s[i]); i++)
		;
	method = i;
	if (method == 0 || i == n || s[i] != ' ')
		return (HTTPREQ_BAD_REQUEST);
	path = ++i;
	while (i < n && (unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7f)
		i++;
	pathlen = i - path;
	if (pathlen == 0 || i == n || s[i] != ' ')
		return (HTTPREQ_BAD_REQUEST);
	i++;
	if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 ||
	    s[i + 7] < '0' || s[i + 7] > '9')
		return (HTTPREQ_BAD_REQUEST);

	*head = method == 4 && memcmp(s, "HEAD", 4) == 0;
	if (!*head && !(method == 3 && memcmp(s, "GET", 3) == 0))
		return (HTTPREQ_BAD_METHOD);
	if (pathlen != 8 || memcmp(s + path, "/metrics", 8) != 0)
		return (HTTPREQ_NOT_FOUND);
	return (HTTPREQ_OK);
}

/* Tell whether a header line (s, n bytes, no line end) is "name: value". */
static int
httpreq_header_ok(const char *s, size_t n)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; i < n && httpreq_tchar((unsigned char)s[i]); i++)
		;
	if (i == 0 || i == n || s[i] != ':')
		return (0);
	for (i++; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c < ' ' && c != '\t') || c == 0x7f)
			return (0);
	}
	return (1);
}

/*
 * Choose the answer to a request: p holds its request line and headers,
 * len bytes, every line ended by "\n" or "\r\n", without the empty line
 * after them.  *head tells whether the method was HEAD.
 */
enum httpreq_answer
httpreq_parse(const char *p, size_t len, int *head)
{
	enum httpreq_answer	 st = HTTPREQ_BAD_REQUEST;
	const char		*eol;
	size_t			 off, n;

	*head = 0;
	for (off = 0; off < len; off += n + 1) {
		if ((eol = memchr(p + off, '\n', len - off)) == NULL)
			return (HTTPREQ_BAD_REQUEST);
		n = (size_t)(eol - (p + off));
		if (off == 0)
			st = httpreq_request_line(p, n > 0 && p[n - 1] == '\r' ?
			    n - 1 : n, head);
		else if (!httpreq_header_ok(p + off, n > 0 &&
		    p[off + n - 1] == '\r' ? n - 1 : n))
			return (HTTPREQ_BAD_REQUEST);
	}
	return (st);
}

/* The status code of an answer, for the log. */
int
httpreq_code(enum httpreq_answer st)
{
	return (httpreq_status[st].code);
}

/*
 * Write the answer st to out: the metrics of srv and the endpoint's own
 * counts for 200, a line saying what is wrong otherwise; only the
 * headers for HEAD.  Return 0 or -1.
 */
int
httpreq_answer(struct evbuffer *out, enum httpreq_answer st, int head,
    struct server *srv, const struct httpreq_counts *own)
{
	struct evbuffer	*body;
	int		 rc = -1;

	if ((body = evbuffer_new()) == NULL)
		return (-1);
	if (st == HTTPREQ_OK) {
		metrics_write(srv, body);
		if (httpreq_write_own(own, body) == -1)
			goto done;
	} else if (evbuffer_add_printf(body, "%s\n",
	    httpreq_status[st].body) == -1)
		goto done;
	if (evbuffer_add_printf(out, "HTTP/1.0 %d %s\r\n"
	    "Content-Type: text/plain; %scharset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "%s"
	    "Connection: close\r\n\r\n", httpreq_status[st].code,
	    httpreq_status[st].reason, st == HTTPREQ_OK ? "version=0.0.4; " :
	    "", evbuffer_get_length(body), st == HTTPREQ_BAD_METHOD ?
	    "Allow: GET, HEAD\r\n" : "") == -1)
		goto done;
	if (!head && evbuffer_add_buffer(out, body) == -1)
		goto done;
	rc = 0;
done:
	evbuffer_free(body);
	return (rc);
}
