/* Unit tests for addr.c: parsing and printing socket addresses. */
#include "config.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"

/* Parse s, which must succeed, and print it back. */
static const char *
roundtrip(const char *s, char *buf, size_t len)
{
	struct addr	 a;
	const char	*why = NULL;

	assert_int_equal(addr_parse(s, &a, &why), 0);
	return (addr_format((struct sockaddr *)&a.ss, a.len, buf, len));
}

static void
test_ipv4(void **state)
{
	struct addr		 a;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&a.ss;
	const char		*why;
	char			 buf[ADDR_STRLEN];

	assert_int_equal(addr_parse("127.0.0.1:7", &a, &why), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 7);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_string_equal(roundtrip("0.0.0.0:65535", buf, sizeof(buf)),
	    "0.0.0.0:65535");
	assert_string_equal(roundtrip("10.1.2.3:0", buf, sizeof(buf)),
	    "10.1.2.3:0");
}

static void
test_ipv6(void **state)
{
	struct addr		 a;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a.ss;
	const char		*why;
	char			 buf[ADDR_STRLEN];

	assert_int_equal(addr_parse("[::1]:7007", &a, &why), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 7007);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_string_equal(roundtrip("[::]:7", buf, sizeof(buf)), "[::]:7");
	assert_string_equal(roundtrip("[2001:DB8::1]:1", buf, sizeof(buf)),
	    "[2001:db8::1]:1");
	assert_string_equal(roundtrip("[::ffff:1.2.3.4]:9", buf, sizeof(buf)),
	    "[::ffff:1.2.3.4]:9");
}

static void
test_errors(void **state)
{
	static const struct {
		const char	*in;
		const char	*why;
	} bad[] = {
		{ "127.0.0.1", "missing ':PORT'" },
		{ "127.0.0.1:", "port must be a number from 0 to 65535" },
		{ "127.0.0.1:65536", "port must be a number from 0 to 65535" },
		{ "127.0.0.1:-1", "port must be a number from 0 to 65535" },
		{ "127.0.0.1:7x", "port must be a number from 0 to 65535" },
		{ "127.0.0.1: 7", "port must be a number from 0 to 65535" },
		{ "127.0.0.1:99999999999999999999",
		    "port must be a number from 0 to 65535" },
		{ ":7", "missing host" },
		{ "localhost:7", "not a numeric IPv4 address" },
		{ "256.0.0.1:7", "not a numeric IPv4 address" },
		{ "::1:7", "IPv6 addresses must be written as [ADDRESS]:PORT" },
		{ "[::1]", "missing ':PORT' after ']'" },
		{ "[::1]7", "missing ':PORT' after ']'" },
		{ "[::1:7", "missing ']' after IPv6 address" },
		{ "[]:7", "missing host" },
		{ "[1.2.3.4]:7", "not a numeric IPv6 address" },
		{ "[::1%lo]:7", "a scope (%IF) is only for link-local addresses" },
		{ "[fe80::1%no/such]:7",
		    "scope must be an interface name or index" },
		{ "[fe80::1%]:7", "scope must be an interface name or index" },
		{ "[fe80::1%0]:7", "scope must be an interface name or index" },
		{ "[fe80::1%1x]:7", "scope must be an interface name or index" },
		{ "[fe80::1%abcdefghijklmnopq]:7",
		    "scope must be an interface name or index" },
		{ "[fe80::1%lo%lo]:7", "scope must be an interface name or index" },
		{ "[::ffff:127.0.0.1%lo]:7",
		    "a scope (%IF) is only for link-local addresses" },
		{ "", "missing ':PORT'" },
	};
	struct addr	 a;
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(addr_parse(bad[i].in, &a, &why), -1);
		assert_non_null(why);
		assert_string_equal(why, bad[i].why);
	}
}

/* Link-local IPv6 addresses with a scope: an interface name or index. */
static void
test_scope(void **state)
{
	struct addr		 a, b;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&a.ss;
	const char		*why = NULL;
	char			 buf[ADDR_STRLEN];

	/* A name is kept, to be looked up when binding. */
	assert_int_equal(addr_parse("[fe80::1%eth0]:7", &a, &why), 0);
	assert_int_equal(sin6->sin6_scope_id, 0);
	assert_string_equal(a.ifname, "eth0");
	assert_string_equal(addr_name(&a, buf, sizeof(buf)),
	    "[fe80::1%eth0]:7");
	assert_int_equal(addr_parse("[fe80::1%eth1]:7", &b, &why), 0);
	assert_false(addr_equal(&a, &b));
	assert_int_equal(addr_parse("[fe80::1%eth0]:7", &b, &why), 0);
	assert_true(addr_equal(&a, &b));
	assert_int_equal(addr_parse("[fe80::1]:7", &b, &why), 0);
	assert_false(addr_equal(&a, &b));
	/* An index is the scope itself. */
	assert_int_equal(addr_parse("[ff02::1%4000000]:7", &a, &why), 0);
	assert_int_equal(sin6->sin6_scope_id, 4000000);
	assert_string_equal(a.ifname, "");
	assert_string_equal(addr_format((struct sockaddr *)&a.ss, a.len, buf,
	    sizeof(buf)), "[ff02::1%4000000]:7");
	assert_string_equal(addr_name(&a, buf, sizeof(buf)),
	    "[ff02::1%4000000]:7");
	assert_false(addr_is_v4mapped(&a));
	assert_int_equal(addr_parse("[::ffff:127.0.0.1]:7", &a, &why), 0);
	assert_true(addr_is_v4mapped(&a));
	assert_int_equal(addr_parse("127.0.0.1:7", &a, &why), 0);
	assert_false(addr_is_v4mapped(&a));
	assert_string_equal(addr_name(&a, buf, sizeof(buf)), "127.0.0.1:7");
}

static void
test_equal(void **state)
{
	struct addr	 a, b;
	const char	*why;

	assert_int_equal(addr_parse("127.0.0.1:7", &a, &why), 0);
	assert_int_equal(addr_parse("127.0.0.1:7", &b, &why), 0);
	assert_true(addr_equal(&a, &b));
	assert_int_equal(addr_parse("127.0.0.1:8", &b, &why), 0);
	assert_false(addr_equal(&a, &b));
	assert_int_equal(addr_parse("127.0.0.2:7", &b, &why), 0);
	assert_false(addr_equal(&a, &b));
	assert_int_equal(addr_parse("[::ffff:127.0.0.1]:7", &b, &why), 0);
	assert_false(addr_equal(&a, &b));
	assert_int_equal(addr_parse("[::1]:7", &a, &why), 0);
	assert_int_equal(addr_parse("[0:0::1]:7", &b, &why), 0);
	assert_true(addr_equal(&a, &b));
}

static void
test_cidr(void **state)
{
	struct cidr	 c;
	struct addr	 a;
	const char	*why;

	assert_int_equal(cidr_parse("10.0.0.0/8", &c, &why), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_int_equal(addr_parse("10.200.3.4:1", &a, &why), 0);
	assert_true(cidr_match(&c, (struct sockaddr *)&a.ss));
	assert_int_equal(addr_parse("11.0.0.1:1", &a, &why), 0);
	assert_false(cidr_match(&c, (struct sockaddr *)&a.ss));
	assert_int_equal(addr_parse("[::ffff:10.0.0.1]:1", &a, &why), 0);
	assert_false(cidr_match(&c, (struct sockaddr *)&a.ss));

	assert_int_equal(cidr_parse("127.0.0.2", &c, &why), 0);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(addr_parse("127.0.0.2:9", &a, &why), 0);
	assert_true(cidr_match(&c, (struct sockaddr *)&a.ss));
	assert_int_equal(addr_parse("127.0.0.3:9", &a, &why), 0);
	assert_false(cidr_match(&c, (struct sockaddr *)&a.ss));

	assert_int_equal(cidr_parse("2001:db8::/33", &c, &why), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(addr_parse("[2001:db8:7fff::1]:1", &a, &why), 0);
	assert_true(cidr_match(&c, (struct sockaddr *)&a.ss));
	assert_int_equal(addr_parse("[2001:db8:8000::1]:1", &a, &why), 0);
	assert_false(cidr_match(&c, (struct sockaddr *)&a.ss));
	assert_int_equal(cidr_parse("::/0", &c, &why), 0);
	assert_true(cidr_match(&c, (struct sockaddr *)&a.ss));
	assert_int_equal(addr_parse("1.2.3.4:1", &a, &why), 0);
	assert_false(cidr_match(&c, (struct sockaddr *)&a.ss));

	assert_int_equal(cidr_parse("10.1.2.3/8", &c, &why), -1);
	assert_string_equal(why,
	    "address has bits set beyond the prefix length");
	assert_int_equal(cidr_parse("10.0.0.0/33", &c, &why), -1);
	assert_string_equal(why, "prefix length must be 0 to 32");
	assert_int_equal(cidr_parse("::/129", &c, &why), -1);
	assert_string_equal(why, "prefix length must be 0 to 128");
	assert_int_equal(cidr_parse("10.0.0.0/", &c, &why), -1);
	assert_int_equal(cidr_parse("10.0.0.0/-1", &c, &why), -1);
	assert_int_equal(cidr_parse("/8", &c, &why), -1);
	assert_string_equal(why, "missing address");
	assert_int_equal(cidr_parse("[::1]/128", &c, &why), -1);
	assert_string_equal(why, "not a numeric IPv4 or IPv6 address");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_cidr),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
