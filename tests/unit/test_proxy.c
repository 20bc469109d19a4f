/* Unit tests for proxy.c: PROXY protocol headers, v1 and v2, read and written. */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "proxy.h"

#define BOTH	(PROXY_V1 | PROXY_V2)

/* Parse the n bytes at p with accept; every shorter prefix must say MORE. */
static int
parse_all(const void *p, size_t n, int accept, struct proxy_hdr *h)
{
	size_t	 i;
	int	 rc;

	rc = proxy_parse(p, n, accept, h);
	if (rc == PROXY_DONE)
		for (i = 0; i < h->len; i++)
			assert_int_equal(proxy_parse(p, i, accept, h), PROXY_MORE);
	return (rc == PROXY_DONE ? proxy_parse(p, n, accept, h) : rc);
}

/* The text of an address and port, as addr.c prints it. */
static const char *
show(const struct sockaddr_storage *ss, socklen_t len, char *buf)
{
	return (addr_format((const struct sockaddr *)ss, len, buf,
	    ADDR_STRLEN));
}

static void
test_v1(void **state)
{
	struct proxy_hdr	 h;
	char			 buf[ADDR_STRLEN];
	const char		*s;

	s = "PROXY TCP4 192.0.2.7 127.0.0.1 5544 7\r\nhello";
	assert_int_equal(parse_all(s, strlen(s), BOTH, &h), PROXY_DONE);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.local, 0);
	assert_int_equal(h.len, strlen(s) - 5);
	assert_string_equal(show(&h.src, h.srclen, buf), "192.0.2.7:5544");
	assert_string_equal(show(&h.dst, h.dstlen, buf), "127.0.0.1:7");

	s = "PROXY TCP6 2001:db8::7 ::1 65535 0\r\n";
	assert_int_equal(parse_all(s, strlen(s), PROXY_V1, &h), PROXY_DONE);
	assert_string_equal(show(&h.src, h.srclen, buf), "[2001:db8::7]:65535");
	assert_string_equal(show(&h.dst, h.dstlen, buf), "[::1]:0");

	s = "PROXY UNKNOWN\r\n";
	assert_int_equal(parse_all(s, strlen(s), BOTH, &h), PROXY_DONE);
	assert_int_equal(h.local, 1);
	assert_int_equal(h.len, 15);
	s = "PROXY UNKNOWN ffff::1 ::1 1 2\r\n";
	assert_int_equal(parse_all(s, strlen(s), BOTH, &h), PROXY_DONE);
	assert_int_equal(h.local, 1);

	/* The longest real line: 104 bytes, of the 107 the spec allows. */
	s = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	assert_int_equal(strlen(s), 104);
	assert_int_equal(parse_all(s, strlen(s), BOTH, &h), PROXY_DONE);
}

static void
test_v1_errors(void **state)
{
	static const char *bad[] = {
		"PROXY TCP4 192.0.2.7  127.0.0.1 1 2\r\n",	/* two spaces */
		"PROXY TCP4 192.0.2.7 127.0.0.1 01 2\r\n",	/* leading 0 */
		"PROXY TCP4 192.0.2.7 127.0.0.1 1 65536\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 1 2 \r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 1\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 1 2 3\r\n",
		"PROXY TCP4 ::1 127.0.0.1 1 2\r\n",		/* family */
		"PROXY TCP6 192.0.2.7 ::1 1 2\r\n",
		"PROXY TCP4 192.0.2.300 127.0.0.1 1 2\r\n",
		"PROXY TCP5 192.0.2.7 127.0.0.1 1 2\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\n",		/* no CR */
		"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\rx\n",
		"PROXY TCP4 192.0.2.7\t127.0.0.1 1 2\r\n",
		"PROXY UNKNOWNX\r\n",
		"PROXY \r\n",
	};
	struct proxy_hdr	 h;
	char			 line[200];
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(proxy_parse((const unsigned char *)bad[i],
		    strlen(bad[i]), BOTH, &h), PROXY_MALFORMED);
	/* 107 bytes and still no CRLF: never more to read. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	assert_int_equal(proxy_parse((unsigned char *)line, 106, BOTH, &h),
	    PROXY_MORE);
	assert_int_equal(proxy_parse((unsigned char *)line, 107, BOTH, &h),
	    PROXY_MALFORMED);
	assert_int_equal(proxy_parse((unsigned char *)line, 200, BOTH, &h),
	    PROXY_MALFORMED);
	/* CRLF as bytes 106 and 107: just fits; as 108 and 109: too long. */
	memcpy(line + 105, "\r\n", 2);
	assert_int_equal(proxy_parse((unsigned char *)line, 107, BOTH, &h),
	    PROXY_DONE);
	memcpy(line + 105, "xx\r\n", 4);
	assert_int_equal(proxy_parse((unsigned char *)line, 109, BOTH, &h),
	    PROXY_MALFORMED);
}

static void
test_missing(void **state)
{
	struct proxy_hdr	 h;
	unsigned char		 v2[64];
	struct sockaddr_in	 a;
	size_t			 n;

	assert_int_equal(proxy_parse((const unsigned char *)"G", 1, BOTH, &h),
	    PROXY_MISSING);
	assert_int_equal(proxy_parse((const unsigned char *)"PROXZ", 5, BOTH,
	    &h), PROXY_MISSING);
	assert_int_equal(proxy_parse((const unsigned char *)"PROX", 4, BOTH,
	    &h), PROXY_MORE);
	assert_int_equal(proxy_parse((const unsigned char *)"", 0, BOTH, &h),
	    PROXY_MORE);
	/* Only the versions asked for. */
	assert_int_equal(proxy_parse((const unsigned char *)"PROXY UNKNOWN\r\n",
	    15, PROXY_V2, &h), PROXY_MISSING);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	n = proxy_build(2, (struct sockaddr *)&a, (struct sockaddr *)&a, v2,
	    sizeof(v2));
	assert_int_equal(n, 28);
	assert_int_equal(proxy_parse(v2, n, PROXY_V1, &h), PROXY_MISSING);
	assert_int_equal(proxy_parse(v2, n, PROXY_V2, &h), PROXY_DONE);
}

static void
test_v2(void **state)
{
	struct proxy_hdr	 h;
	struct addr		 src, dst;
	unsigned char		 b[PROXY_MAX + 8];
	char			 buf[ADDR_STRLEN];
	const char		*why;
	size_t			 n;

	assert_int_equal(addr_parse("[2001:db8::9]:40000", &src, &why), 0);
	assert_int_equal(addr_parse("[::1]:7", &dst, &why), 0);
	n = proxy_build(2, (struct sockaddr *)&src.ss,
	    (struct sockaddr *)&dst.ss, b, sizeof(b));
	assert_int_equal(n, 52);
	memcpy(b + n, "data", 4);
	assert_int_equal(parse_all(b, n + 4, BOTH, &h), PROXY_DONE);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.len, 52);
	assert_string_equal(show(&h.src, h.srclen, buf), "[2001:db8::9]:40000");
	assert_string_equal(show(&h.dst, h.dstlen, buf), "[::1]:7");

	/* TLVs after the addresses: skipped, but they must fit. */
	b[15] = 36 + 3 + 5 + 3;
	memcpy(b + 52, "\x04\x00\x05xxxxx\x01\x00\x00", 11);
	assert_int_equal(parse_all(b, 63, BOTH, &h), PROXY_DONE);
	assert_int_equal(h.len, 63);
	b[15] = 36 + 2;
	assert_int_equal(proxy_parse(b, 54, BOTH, &h), PROXY_MALFORMED);
	b[15] = 36 + 4;
	memcpy(b + 52, "\x04\x00\x05x", 4);
	assert_int_equal(proxy_parse(b, 56, BOTH, &h), PROXY_MALFORMED);

	/* LOCAL (health checks) and UNSPEC: no addresses to believe. */
	b[15] = 36;
	b[12] = 0x20;
	assert_int_equal(parse_all(b, 52, BOTH, &h), PROXY_DONE);
	assert_int_equal(h.local, 1);
	b[12] = 0x21;
	b[13] = 0x00;
	assert_int_equal(parse_all(b, 52, BOTH, &h), PROXY_DONE);
	assert_int_equal(h.local, 1);
	/* UNIX sockets, UDP: valid headers echod does not serve. */
	b[13] = 0x31;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_UNSUPPORTED);
	b[13] = 0x22;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_UNSUPPORTED);
	/* Other family or transport values: invalid, says the spec. */
	b[13] = 0x01;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	b[13] = 0x10;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	b[13] = 0x13;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	b[13] = 0x1f;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	/* Broken: version, command, family, length. */
	b[13] = 0x21;
	b[15] = 11;	/* shorter than IPv4's addresses */
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	b[15] = 36;
	b[13] = 0x41;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	b[13] = 0x21;
	b[12] = 0x31;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	b[12] = 0x22;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
	b[12] = 0x21;
	/* The most it takes, and one byte more. */
	b[14] = (PROXY_V2_MAX - 16) >> 8;
	b[15] = (PROXY_V2_MAX - 16) & 0xff;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MORE);
	b[15]++;
	assert_int_equal(proxy_parse(b, 52, BOTH, &h), PROXY_MALFORMED);
}

static void
test_build(void **state)
{
	struct proxy_hdr	 h;
	struct addr		 a4, a6;
	unsigned char		 b[PROXY_MAX];
	char			 buf[ADDR_STRLEN];
	const char		*why;
	size_t			 n;

	assert_int_equal(addr_parse("198.51.100.1:1234", &a4, &why), 0);
	assert_int_equal(addr_parse("[::1]:7", &a6, &why), 0);
	n = proxy_build(1, (struct sockaddr *)&a4.ss, (struct sockaddr *)&a4.ss,
	    b, sizeof(b));
	assert_int_equal(n, strlen("PROXY TCP4 198.51.100.1 198.51.100.1 "
	    "1234 1234\r\n"));
	assert_memory_equal(b, "PROXY TCP4 198.51.100.1 198.51.100.1 1234 "
	    "1234\r\n", n);
	assert_int_equal(parse_all(b, n, BOTH, &h), PROXY_DONE);
	assert_string_equal(show(&h.src, h.srclen, buf), "198.51.100.1:1234");
	/* Families must agree; a buffer too small writes nothing. */
	assert_int_equal(proxy_build(1, (struct sockaddr *)&a4.ss,
	    (struct sockaddr *)&a6.ss, b, sizeof(b)), 0);
	assert_int_equal(proxy_build(2, (struct sockaddr *)&a6.ss,
	    (struct sockaddr *)&a6.ss, b, 51), 0);
	assert_int_equal(proxy_build(1, (struct sockaddr *)&a6.ss,
	    (struct sockaddr *)&a6.ss, b, 10), 0);
	assert_int_equal(proxy_build(3, (struct sockaddr *)&a6.ss,
	    (struct sockaddr *)&a6.ss, b, sizeof(b)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_errors),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_v2),
		cmocka_unit_test(test_build),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
