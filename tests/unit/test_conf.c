/* Unit tests for conf.c: every key, every unit, every error and its line. */
#include "config.h"

#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "units.h"

/* Parse text, which must be valid, into c. */
static void
parse_ok(struct conf *c, const char *text)
{
	char	 err[CONF_ERRLEN] = "";

	conf_init(c);
	if (conf_parse_string(c, text, "t.conf", err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
}

/* Parse text, which must fail with exactly the message want. */
static void
parse_err(const char *text, const char *want)
{
	struct conf	 c;
	char		 err[CONF_ERRLEN] = "";

	conf_init(&c);
	assert_int_equal(conf_parse_string(&c, text, "t.conf", err,
	    sizeof(err)), -1);
	assert_string_equal(err, want);
	conf_free(&c);
}

/* Print entry i of a listen list. */
static const char *
listen_at(const struct addr_list *l, size_t i, char *buf, size_t len)
{
	assert_true(i < l->n);
	return (addr_format((const struct sockaddr *)&l->v[i].ss, l->v[i].len,
	    buf, len));
}

static void
test_defaults(void **state)
{
	struct conf	 c;
	char		 buf[ADDR_STRLEN];

	parse_ok(&c, "");
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.shutdown_timeout_ms, 10000);
	assert_int_equal(conf_tcp(&c)->buffer_limit, 256 * 1024);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.max_connections, 0);
	assert_int_equal(conf_tcp(&c)->idle_timeout_ms, 0);
	assert_int_equal(conf_tcp(&c)->backlog, 4096);
	assert_int_equal(conf_tcp(&c)->listen.n, 2);
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 0, buf, sizeof(buf)),
	    "127.0.0.1:7");
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 1, buf, sizeof(buf)),
	    "[::1]:7");
	assert_int_equal(conf_udp(&c)->listen.n, 2);
	assert_string_equal(listen_at(&conf_udp(&c)->listen, 0, buf, sizeof(buf)),
	    "127.0.0.1:7");
	assert_string_equal(listen_at(&conf_udp(&c)->listen, 1, buf, sizeof(buf)),
	    "[::1]:7");
	conf_free(&c);
}

static void
test_every_key(void **state)
{
	struct conf	 c;
	char		 buf[ADDR_STRLEN];

	parse_ok(&c,
	    "; a comment\n"
	    "# another\n"
	    "[server]\n"
	    "log_level = debug\n"
	    "shutdown_timeout = 1500ms ; inline comment\n"
	    "workers = 3\n"
	    "[tcp]\n"
	    "listen = 0.0.0.0:7 [::]:7\n"
	    "buffer_limit = 64k\n"
	    "max_connections = 15000\n"
	    "idle_timeout = 5m\n"
	    "backlog = 128\n"
	    "[udp]\n"
	    "listen = 127.0.0.2:9\n");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.shutdown_timeout_ms, 1500);
	assert_int_equal(conf_tcp(&c)->buffer_limit, 64 * 1024);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.max_connections, 15000);
	assert_int_equal(conf_tcp(&c)->idle_timeout_ms, 300000);
	assert_int_equal(conf_tcp(&c)->backlog, 128);
	assert_int_equal(conf_tcp(&c)->listen.n, 2);
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 0, buf, sizeof(buf)),
	    "0.0.0.0:7");
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 1, buf, sizeof(buf)),
	    "[::]:7");
	assert_int_equal(conf_udp(&c)->listen.n, 1);
	assert_string_equal(listen_at(&conf_udp(&c)->listen, 0, buf, sizeof(buf)),
	    "127.0.0.2:9");
	conf_free(&c);
}

static void
test_log_levels(void **state)
{
	static const struct {
		const char	*name;
		int		 level;
	} levels[] = {
		{ "error", LOG_ERR }, { "warning", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	struct conf	 c;
	char		 text[128];
	size_t		 i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		snprintf(text, sizeof(text), "[server]\nlog_level = %s\n",
		    levels[i].name);
		parse_ok(&c, text);
		assert_int_equal(c.log_level, levels[i].level);
		assert_string_equal(conf_log_level_name(c.log_level),
		    levels[i].name);
		conf_free(&c);
	}
}

static void
test_sizes(void **state)
{
	uint64_t	 v;

	assert_int_equal(units_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(units_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(units_size("3k", &v), 0);
	assert_int_equal(v, 3 * 1024);
	assert_int_equal(units_size("3K", &v), 0);
	assert_int_equal(v, 3 * 1024);
	assert_int_equal(units_size("5m", &v), 0);
	assert_int_equal(v, 5 * 1024 * 1024);
	assert_int_equal(units_size("5M", &v), 0);
	assert_int_equal(v, 5 * 1024 * 1024);
	assert_int_equal(units_size("2g", &v), 0);
	assert_int_equal(v, 2ULL * 1024 * 1024 * 1024);
	assert_int_equal(units_size("", &v), -1);
	assert_int_equal(units_size("k", &v), -1);
	assert_int_equal(units_size("-1", &v), -1);
	assert_int_equal(units_size(" 1", &v), -1);
	assert_int_equal(units_size("1kb", &v), -1);
	assert_int_equal(units_size("1.5m", &v), -1);
	assert_int_equal(units_size("1 k", &v), -1);
	assert_int_equal(units_size("18446744073709551615", &v), 0);
	assert_int_equal(units_size("18446744073709551616", &v), -1);
	assert_int_equal(units_size("18014398509481984k", &v), -1);
}

static void
test_durations(void **state)
{
	uint64_t	 v;

	assert_int_equal(units_duration("250ms", &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(units_duration("3s", &v), 0);
	assert_int_equal(v, 3000);
	assert_int_equal(units_duration("3", &v), 0);
	assert_int_equal(v, 3000);
	assert_int_equal(units_duration("2m", &v), 0);
	assert_int_equal(v, 120000);
	assert_int_equal(units_duration("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(units_duration("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(units_duration("", &v), -1);
	assert_int_equal(units_duration("s", &v), -1);
	assert_int_equal(units_duration("1d", &v), -1);
	assert_int_equal(units_duration("1S", &v), -1);
	assert_int_equal(units_duration("1.5s", &v), -1);
	assert_int_equal(units_duration("-1s", &v), -1);
	assert_int_equal(units_duration("99999999999999999999ms", &v),
	    -1);
	assert_int_equal(units_duration("9999999999999999h", &v), -1);
}

static void
test_units_in_keys(void **state)
{
	struct conf	 c;

	parse_ok(&c, "[server]\nshutdown_timeout = 2m\n[tcp]\n"
	    "buffer_limit = 1m\n");
	assert_int_equal(c.shutdown_timeout_ms, 120000);
	assert_int_equal(conf_tcp(&c)->buffer_limit, 1024 * 1024);
	conf_free(&c);
	parse_ok(&c, "[server]\nshutdown_timeout = 0\n[tcp]\n"
	    "buffer_limit = 1k\n");
	assert_int_equal(c.shutdown_timeout_ms, 0);
	assert_int_equal(conf_tcp(&c)->buffer_limit, 1024);
	conf_free(&c);
	parse_ok(&c, "[server]\nshutdown_timeout = 24h\n[tcp]\n"
	    "buffer_limit = 1g\n");
	assert_int_equal(c.shutdown_timeout_ms, 24 * 3600 * 1000);
	assert_int_equal(conf_tcp(&c)->buffer_limit, 1024 * 1024 * 1024);
	conf_free(&c);
}

static void
test_workers_and_limits(void **state)
{
	struct conf	 c;

	parse_ok(&c, "[server]\nworkers = auto\n[tcp]\nidle_timeout = 0\n"
	    "max_connections = 0\nbacklog = 1\n");
	assert_int_equal(c.workers, 0);
	assert_int_equal(conf_tcp(&c)->idle_timeout_ms, 0);
	assert_int_equal(c.max_connections, 0);
	assert_int_equal(conf_tcp(&c)->backlog, 1);
	conf_free(&c);
	parse_ok(&c, "[server]\nworkers = 256\n[tcp]\nidle_timeout = 250ms\n"
	    "max_connections = 10000000\nbacklog = 65535\n");
	assert_int_equal(c.workers, 256);
	assert_int_equal(conf_tcp(&c)->idle_timeout_ms, 250);
	assert_int_equal(c.max_connections, 10000000);
	assert_int_equal(conf_tcp(&c)->backlog, 65535);
	conf_free(&c);

	parse_err("[server]\nworkers = 0\n",
	    "t.conf:2: [server] workers: '0' must be auto or a number from 1 "
	    "to 256");
	parse_err("[server]\nworkers = 257\n",
	    "t.conf:2: [server] workers: '257' must be auto or a number from "
	    "1 to 256");
	parse_err("[server]\nworkers = many\n",
	    "t.conf:2: [server] workers: 'many' must be auto or a number from "
	    "1 to 256");
	parse_err("[tcp]\nmax_connections = -1\n",
	    "t.conf:2: [tcp] max_connections: '-1' must be a number from 0 "
	    "(no limit) to 10000000");
	parse_err("[tcp]\nmax_connections = 10k\n",
	    "t.conf:2: [tcp] max_connections: '10k' must be a number from 0 "
	    "(no limit) to 10000000");
	parse_err("[tcp]\nidle_timeout = soon\n",
	    "t.conf:2: [tcp] idle_timeout: 'soon' not a duration (like 500ms, "
	    "10s or 2m)");
	parse_err("[tcp]\nidle_timeout = 2d\n",
	    "t.conf:2: [tcp] idle_timeout: '2d' not a duration (like 500ms, "
	    "10s or 2m)");
	parse_err("[tcp]\nidle_timeout = 1441m\n",
	    "t.conf:2: [tcp] idle_timeout: '1441m' must be at most 24h");
	parse_err("[tcp]\nbacklog = 0\n",
	    "t.conf:2: [tcp] backlog: '0' must be a number from 1 to 65535");
	parse_err("[tcp]\nbacklog = 65536\n",
	    "t.conf:2: [tcp] backlog: '65536' must be a number from 1 to "
	    "65535");
}

static void
test_user_and_metrics(void **state)
{
	struct conf	 c;
	char		 buf[ADDR_STRLEN];

	parse_ok(&c, "");
	assert_string_equal(c.user, "");
	assert_int_equal(c.metrics_listen.n, 0);
	conf_free(&c);
	parse_ok(&c, "[server]\nuser = _echod-1.x\n[metrics]\n"
	    "listen = 127.0.0.1:9107 [::1]:9107\n");
	assert_string_equal(c.user, "_echod-1.x");
	assert_int_equal(c.metrics_listen.n, 2);
	assert_string_equal(listen_at(&c.metrics_listen, 1, buf, sizeof(buf)),
	    "[::1]:9107");
	/* Metrics alone are no echo listener. */
	assert_int_equal(conf_tcp(&c)->listen.n, 2);
	conf_free(&c);

	parse_ok(&c, "[server]\nuser =\n");	/* empty: stay as started */
	assert_string_equal(c.user, "");
	conf_free(&c);
	parse_err("[server]\nuser = -root\n",
	    "t.conf:2: [server] user: '-root' is not a user name");
	parse_err("[server]\nuser = a b\n",
	    "t.conf:2: [server] user: 'a b' is not a user name");
	parse_err("[server]\nuser = "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    "t.conf:2: [server] user: "
	    "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' "
	    "is not a user name");
	parse_err("[metrics]\nlisten = 9107\n",
	    "t.conf:2: [metrics] listen: bad address '9107': missing ':PORT'");
	parse_err("[tcp]\nlisten =\n[udp]\nlisten =\n[metrics]\n"
	    "listen = 127.0.0.1:9107\n",
	    "t.conf:4: no listener: [tcp] listen and [udp] listen are both "
	    "empty");
}

static void
test_guards(void **state)
{
	struct conf	 c;

	parse_ok(&c, "");
	assert_int_equal(conf_tcp(&c)->allow.n + conf_tcp(&c)->deny.n + conf_udp(&c)->allow.n +
	    conf_udp(&c)->deny.n, 0);
	assert_int_equal(conf_tcp(&c)->max_per_ip, 0);
	assert_int_equal(conf_udp(&c)->rate_limit, 0);
	assert_int_equal(conf_udp(&c)->burst, 0);
	/* The built-in reflector ports, and only those. */
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 0));
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 7));
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 19));
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 53));
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 123));
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 11211));
	assert_false(PORTSET_HAS(conf_udp(&c)->reflectors, 8));
	assert_false(PORTSET_HAS(conf_udp(&c)->reflectors, 40000));
	conf_free(&c);

	parse_ok(&c, "[tcp]\nallow = 10.0.0.0/8 ::1\nallow = 192.0.2.0/24\n"
	    "deny = 10.9.0.0/16\nmax_connections_per_ip = 8\n"
	    "[udp]\nallow = ::/0\ndeny = 127.0.0.2 ; a comment\n"
	    "reflector_ports = 9\n  12345 ; more\nrate_limit = 500\n"
	    "burst = 50\n");
	assert_int_equal(conf_tcp(&c)->allow.n, 3);
	assert_int_equal(conf_tcp(&c)->allow.v[1].family, AF_INET6);
	assert_int_equal(conf_tcp(&c)->deny.n, 1);
	assert_int_equal(conf_tcp(&c)->deny.v[0].prefix, 16);
	assert_int_equal(conf_tcp(&c)->max_per_ip, 8);
	assert_int_equal(conf_udp(&c)->allow.n, 1);
	assert_int_equal(conf_udp(&c)->deny.n, 1);
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 9));
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 12345));
	assert_false(PORTSET_HAS(conf_udp(&c)->reflectors, 7));	/* the list was replaced */
	assert_false(PORTSET_HAS(conf_udp(&c)->reflectors, 0));
	assert_int_equal(conf_udp(&c)->rate_limit, 500);
	assert_int_equal(conf_udp(&c)->burst, 50);
	conf_free(&c);

	parse_ok(&c, "[udp]\nreflector_ports = none\n");
	assert_false(PORTSET_HAS(conf_udp(&c)->reflectors, 0));
	assert_false(PORTSET_HAS(conf_udp(&c)->reflectors, 19));
	conf_free(&c);

	parse_err("[tcp]\nallow = 10.1.2.3/8\n",
	    "t.conf:2: [tcp] allow: bad prefix '10.1.2.3/8': address has bits "
	    "set beyond the prefix length");
	parse_err("[udp]\n\ndeny = example.com\n",
	    "t.conf:3: [udp] deny: bad prefix 'example.com': not a numeric "
	    "IPv4 or IPv6 address");
	parse_err("[udp]\nreflector_ports = 7 chargen\n",
	    "t.conf:2: [udp] reflector_ports: 'chargen' is not a port number "
	    "(0 to 65535)");
	parse_err("[udp]\nreflector_ports = 65536\n",
	    "t.conf:2: [udp] reflector_ports: '65536' is not a port number "
	    "(0 to 65535)");
	parse_err("[udp]\nrate_limit = fast\n",
	    "t.conf:2: [udp] rate_limit: 'fast' must be a number of datagrams "
	    "per second from 0 (no limit) to 10000000");
	parse_err("[udp]\nburst = 1k\n",
	    "t.conf:2: [udp] burst: '1k' must be a number of datagrams from 0 "
	    "(rate_limit's value) to 10000000");
	parse_err("[tcp]\nmax_connections_per_ip = -3\n",
	    "t.conf:2: [tcp] max_connections_per_ip: '-3' must be a number "
	    "from 0 (no limit) to 10000000");
}

static void
test_listen_forms(void **state)
{
	struct conf	 c;
	char		 buf[ADDR_STRLEN];

	/* Empty turns one protocol off. */
	parse_ok(&c, "[tcp]\nlisten =\n");
	assert_int_equal(conf_tcp(&c)->listen.n, 0);
	assert_int_equal(conf_udp(&c)->listen.n, 2);
	conf_free(&c);
	parse_ok(&c, "[udp]\nlisten = \n");
	assert_int_equal(conf_udp(&c)->listen.n, 0);
	assert_int_equal(conf_tcp(&c)->listen.n, 2);
	conf_free(&c);

	/* Tabs separate addresses too. */
	parse_ok(&c, "[tcp]\nlisten = 127.0.0.1:1\t127.0.0.1:2\n");
	assert_int_equal(conf_tcp(&c)->listen.n, 2);
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 1, buf, sizeof(buf)),
	    "127.0.0.1:2");
	conf_free(&c);
}

static void
test_listen_append(void **state)
{
	struct conf	 c;
	char		 buf[ADDR_STRLEN];

	parse_ok(&c, "[tcp]\nlisten = 127.0.0.1:1\n"
	    "listen = 127.0.0.1:2   [::1]:3\n"
	    "  127.0.0.1:4\n"
	    "\t[::1]:5\n"
	    "[udp]\n"
	    "  [udp]\n"
	    "listen = 127.0.0.1:6\n");
	assert_int_equal(conf_tcp(&c)->listen.n, 5);
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 4, buf, sizeof(buf)),
	    "[::1]:5");
	assert_int_equal(conf_udp(&c)->listen.n, 1);
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 0, buf, sizeof(buf)),
	    "127.0.0.1:1");
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 1, buf, sizeof(buf)),
	    "127.0.0.1:2");
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 2, buf, sizeof(buf)),
	    "[::1]:3");
	assert_string_equal(listen_at(&conf_tcp(&c)->listen, 3, buf, sizeof(buf)),
	    "127.0.0.1:4");
	conf_free(&c);
}

static void
test_crlf_and_bom(void **state)
{
	struct conf	 c;

	parse_ok(&c, "\xEF\xBB\xBF[server]\r\nlog_level = error\r\n");
	assert_int_equal(c.log_level, LOG_ERR);
	conf_free(&c);
}

/* Every key that takes one value refuses a second, at the second's line. */
static void
test_every_key_once(void **state)
{
	static const char *keys[][3] = {
		{ "server", "log_level", "info" },
		{ "server", "shutdown_timeout", "1s" },
		{ "server", "workers", "1" },
		{ "server", "user", "nobody" },
		{ "server", "memory_limit", "0" },
		{ "tcp", "buffer_limit", "64k" },
		{ "tcp", "max_connections", "1" },
		{ "tcp", "idle_timeout", "1s" },
		{ "tcp", "backlog", "1" },
		{ "tcp", "max_connections_per_ip", "1" },
		{ "tcp", "proxy_protocol", "v1" },
		{ "tcp", "proxy_timeout", "1s" },
		{ "tcp", "banner", "on" },
		{ "udp", "rate_limit", "1" },
		{ "udp", "burst", "1" },
		{ "metrics", "max_connections", "1" },
		{ "metrics", "request_timeout", "1s" },
	};
	char	 text[256], want[256];
	size_t	 i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(text, sizeof(text), "[%s]\n%s = %s\n%s = %s\n",
		    keys[i][0], keys[i][1], keys[i][2], keys[i][1], keys[i][2]);
		snprintf(want, sizeof(want), "t.conf:3: [%s] %s: given twice",
		    keys[i][0], keys[i][1]);
		parse_err(text, want);
	}
}

/* Issue 11: the memory limit and the bounds of the metrics endpoint. */
static void
test_memory_and_metrics_limits(void **state)
{
	struct conf	 c;

	parse_ok(&c, "");
	assert_true(c.memory_limit_auto);
	assert_int_equal(c.memory_limit, 0);
	assert_int_equal(c.metrics_max_connections, 16);
	assert_int_equal(c.metrics_timeout_ms, 5000);
	conf_free(&c);
	parse_ok(&c, "[server]\nmemory_limit = 512m\n[metrics]\n"
	    "max_connections = 1\nrequest_timeout = 250ms\n");
	assert_false(c.memory_limit_auto);
	assert_int_equal(c.memory_limit, 512 * 1024 * 1024);
	assert_int_equal(c.metrics_max_connections, 1);
	assert_int_equal(c.metrics_timeout_ms, 250);
	conf_free(&c);
	parse_ok(&c, "[server]\nmemory_limit = 0\n");
	assert_false(c.memory_limit_auto);
	assert_int_equal(c.memory_limit, 0);
	conf_free(&c);
	parse_ok(&c, "[server]\nmemory_limit = auto\n");
	assert_true(c.memory_limit_auto);
	conf_free(&c);

	parse_err("[server]\nmemory_limit = 1000k\n",
	    "t.conf:2: [server] memory_limit: '1000k' must be 0 (no limit) or "
	    "at least 1m");
	parse_err("[server]\nmemory_limit = lots\n",
	    "t.conf:2: [server] memory_limit: 'lots' must be auto, 0 (no "
	    "limit) or a size (like 512m or 2g)");
	parse_err("[metrics]\nmax_connections = 0\n",
	    "t.conf:2: [metrics] max_connections: '0' must be a number from 1 "
	    "to 1024");
	parse_err("[metrics]\nmax_connections = 1025\n",
	    "t.conf:2: [metrics] max_connections: '1025' must be a number "
	    "from 1 to 1024");
	parse_err("[metrics]\nrequest_timeout = 5ms\n",
	    "t.conf:2: [metrics] request_timeout: '5ms' must be from 10ms to "
	    "1h");
	parse_err("[metrics]\nrequest_timeout = 2h\n",
	    "t.conf:2: [metrics] request_timeout: '2h' must be from 10ms to "
	    "1h");
	/* Nine addresses passed -t, then failed to start (exit 69). */
	parse_err("[metrics]\nlisten = 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3\n"
	    "listen = 127.0.0.1:4 127.0.0.1:5 127.0.0.1:6 127.0.0.1:7\n"
	    "listen = 127.0.0.1:8 127.0.0.1:9\n",
	    "t.conf:4: [metrics] listen: 9 addresses; at most 8");
	parse_ok(&c, "[metrics]\nlisten = 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3"
	    " 127.0.0.1:4 127.0.0.1:5 127.0.0.1:6 127.0.0.1:7 127.0.0.1:8\n");
	assert_int_equal(c.metrics_listen.n, 8);
	conf_free(&c);
	/* An IPv4-mapped address passed -t, then could not be bound. */
	parse_err("[tcp]\nlisten = [::ffff:127.0.0.1]:7\n",
	    "t.conf:2: [tcp] listen: '[::ffff:127.0.0.1]:7' is an IPv4-mapped "
	    "IPv6 address; write the IPv4 address (like 127.0.0.1:7)");
	parse_err("[udp]\nlisten = [::FFFF:7f00:1]:7\n",
	    "t.conf:2: [udp] listen: '[::FFFF:7f00:1]:7' is an IPv4-mapped "
	    "IPv6 address; write the IPv4 address (like 127.0.0.1:7)");
	parse_ok(&c, "[tcp]\nlisten = [fe80::1%lo]:7\n");
	assert_int_equal(conf_tcp(&c)->listen.n, 1);
	conf_free(&c);
	/* The interface is looked up when binding, not when parsing. */
	parse_ok(&c, "[tcp]\nlisten = [fe80::1%nosuchif9]:7\n");
	assert_string_equal(conf_tcp(&c)->listen.v[0].ifname, "nosuchif9");
	conf_free(&c);
	parse_err("[tcp]\nlisten = [fe80::1%a/b]:7\n",
	    "t.conf:2: [tcp] listen: bad address '[fe80::1%a/b]:7': scope must "
	    "be an interface name or index");
}

static void
test_errors(void **state)
{
	char	 longline[400];

	parse_err("[server]\nlog_level = loud\n",
	    "t.conf:2: [server] log_level: 'loud' must be one of error, "
	    "warning, notice, info, debug");
	parse_err("[server]\n\nshutdown_timeout = 10x\n",
	    "t.conf:3: [server] shutdown_timeout: '10x' not a duration "
	    "(like 500ms, 10s or 2m)");
	parse_err("[server]\nshutdown_timeout = 25h\n",
	    "t.conf:2: [server] shutdown_timeout: '25h' must be at most 24h");
	parse_err("[tcp]\nbuffer_limit = lots\n",
	    "t.conf:2: [tcp] buffer_limit: 'lots' not a size (like 64k or "
	    "1m)");
	parse_err("[tcp]\nbuffer_limit = 1023\n",
	    "t.conf:2: [tcp] buffer_limit: '1023' must be from 1k to 1g");
	parse_err("[tcp]\nbuffer_limit = 2g\n",
	    "t.conf:2: [tcp] buffer_limit: '2g' must be from 1k to 1g");
	parse_err("[tcp]\nlisten = 127.0.0.1:7 localhost:7\n",
	    "t.conf:2: [tcp] listen: bad address 'localhost:7': not a "
	    "numeric IPv4 address");
	parse_err("[udp]\n; c\nlisten = [::1]:70000\n",
	    "t.conf:3: [udp] listen: bad address '[::1]:70000': port must "
	    "be a number from 0 to 65535");
	parse_err("[tcp]\nlisten = 127.0.0.1:7\n  127.0.0.1:7\n",
	    "t.conf:3: [tcp] listen: address '127.0.0.1:7' given twice");
	parse_err("[tcp]\nlisten = [::1]:7 [0::1]:7\n",
	    "t.conf:2: [tcp] listen: address '[0::1]:7' given twice");
	parse_err("[server]\nlog_level = info\nlog_level = debug\n",
	    "t.conf:3: [server] log_level: given twice");
	parse_err("[server]\ncolour = blue\n",
	    "t.conf:2: unknown key 'colour' in [server]");
	parse_err("[udp]\nbuffer_limit = 1k\n",
	    "t.conf:2: unknown key 'buffer_limit' in [udp]");
	parse_err("[server]\n\n[sctp]\nlisten = 1.2.3.4:5\n",
	    "t.conf:3: unknown section [sctp]");
	parse_err("[server]\n[ssl]\n",
	    "t.conf:2: unknown section [ssl]");
	parse_err("log_level = info\n",
	    "t.conf:1: key 'log_level' is outside any [section]");
	parse_err("[server]\n = 1\n",
	    "t.conf:2: missing key name before '='");
	parse_err("[server]\nlog_level\n",
	    "t.conf:2: syntax error: expected [section], key = value or a "
	    "comment");
	parse_err("[server\nlog_level = info\n",
	    "t.conf:1: syntax error: expected [section], key = value or a "
	    "comment");
	/* A syntax error before a bad value is the one reported. */
	parse_err("[server]\nnonsense\nlog_level = loud\n",
	    "t.conf:2: syntax error: expected [section], key = value or a "
	    "comment");
	parse_err("[tcp]\nlisten =\n[udp]\nlisten =\n",
	    "t.conf:4: no listener: [tcp] listen and [udp] listen are both "
	    "empty");

	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	memcpy(longline, "[tcp]\nlisten = ", 15);
	parse_err(longline, "t.conf:2: line too long (at most 198 "
	    "characters)");
}

/* The group named name in c, which must be there. */
static const struct conf_group *
group_named(const struct conf *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].name, name) == 0)
			return (&c->groups[i]);
	fail_msg("no group %s", name);
	return (NULL);
}

/* Issue 12: named groups inherit from the unnamed section, wherever it is. */
static void
test_groups_inherit(void **state)
{
	struct conf		 c;
	const struct conf_group	*web, *api, *dns;
	char			 buf[ADDR_STRLEN];

	parse_ok(&c, "[tcp web]\nlisten = 127.0.0.1:8080\ndeny = 10.0.0.0/8\n"
	    "[tcp api]\nlisten = 127.0.0.1:8081\nbuffer_limit = 1m\n"
	    "allow = 192.168.0.0/16\nidle_timeout = 5s\n"
	    "[udp dns]\nlisten = 127.0.0.1:5353\nreflector_ports = 9\n"
	    "[tcp]\nbuffer_limit = 64k\nallow = 127.0.0.0/8 ::1/128\n"
	    "idle_timeout = 1m\nbacklog = 128\nmax_connections_per_ip = 3\n"
	    "max_connections = 100\n"
	    "[udp]\nrate_limit = 50\nburst = 70\n");
	assert_int_equal(c.ngroups, 5);
	web = group_named(&c, "web");
	api = group_named(&c, "api");
	dns = group_named(&c, "dns");
	assert_int_equal(web->type, SOCK_STREAM);
	assert_int_equal(web->line, 1);
	assert_int_equal(dns->type, SOCK_DGRAM);
	/* Unset: from [tcp], which comes later in the file. */
	assert_int_equal(web->buffer_limit, 64 * 1024);
	assert_int_equal(web->idle_timeout_ms, 60000);
	assert_int_equal(web->backlog, 128);
	assert_int_equal(web->max_per_ip, 3);
	assert_int_equal(web->allow.n, 2);
	assert_int_equal(web->deny.n, 1);
	/* Set: its own, and a set list replaces the inherited one. */
	assert_int_equal(api->buffer_limit, 1024 * 1024);
	assert_int_equal(api->idle_timeout_ms, 5000);
	assert_int_equal(api->allow.n, 1);
	assert_int_equal(api->allow.v[0].prefix, 16);
	assert_int_equal(api->deny.n, 0);
	assert_int_equal(c.max_connections, 100);
	/* UDP: the rate from [udp], its own reflector list. */
	assert_int_equal(dns->rate_limit, 50);
	assert_int_equal(dns->burst, 70);
	assert_true(PORTSET_HAS(dns->reflectors, 9));
	assert_false(PORTSET_HAS(dns->reflectors, 7));
	assert_true(PORTSET_HAS(conf_udp(&c)->reflectors, 7));
	/* listen never falls back, and the default goes once a group listens. */
	assert_int_equal(conf_tcp(&c)->listen.n, 0);
	assert_int_equal(conf_udp(&c)->listen.n, 0);
	assert_int_equal(web->listen.n, 1);
	assert_string_equal(listen_at(&web->listen, 0, buf, sizeof(buf)),
	    "127.0.0.1:8080");
	assert_ptr_equal(conf_group_of(&c, SOCK_STREAM, &api->listen.v[0]),
	    api);
	assert_null(conf_group_of(&c, SOCK_DGRAM, &api->listen.v[0]));
	conf_free(&c);

	/* A section given twice is one group; defaults when nothing is set. */
	parse_ok(&c, "[tcp a]\nlisten = 127.0.0.1:1\n[udp]\n[tcp a]\n"
	    "listen = 127.0.0.1:2\n");
	assert_int_equal(c.ngroups, 3);
	assert_int_equal(group_named(&c, "a")->listen.n, 2);
	assert_int_equal(group_named(&c, "a")->buffer_limit, 256 * 1024);
	assert_int_equal(group_named(&c, "a")->backlog, 4096);
	conf_free(&c);
}

/* Issue 14: the PROXY protocol and banner keys, inherited like the rest. */
static void
test_proxy_keys(void **state)
{
	struct conf	 c;

	parse_ok(&c, "[tcp]\nproxy_protocol = v2\nbanner = on\n"
	    "proxy_from = 10.0.0.0/8\n  192.0.2.1\n"
	    "[tcp lb]\nlisten = 127.0.0.1:1\nproxy_protocol = any\n"
	    "proxy_timeout = 250ms\n");
	assert_int_equal(conf_tcp(&c)->proxy, 2);
	assert_int_equal(conf_tcp(&c)->banner, 1);
	assert_int_equal(conf_tcp(&c)->proxy_from.n, 2);
	assert_int_equal(conf_tcp(&c)->proxy_timeout_ms, 5000);
	assert_int_equal(group_named(&c, "lb")->proxy, 3);
	assert_int_equal(group_named(&c, "lb")->proxy_timeout_ms, 250);
	assert_int_equal(group_named(&c, "lb")->banner, 1);
	assert_int_equal(group_named(&c, "lb")->proxy_from.n, 2);
	conf_free(&c);
	parse_ok(&c, "[tcp]\nproxy_protocol = v1\n");
	assert_int_equal(conf_tcp(&c)->proxy, 1);
	assert_int_equal(conf_tcp(&c)->proxy_from.n, 0);	/* loopback */
	conf_free(&c);

	parse_err("[tcp]\nproxy_protocol = yes\n",
	    "t.conf:2: [tcp] proxy_protocol: 'yes' must be one of off, v1, "
	    "v2, any");
	parse_err("[tcp]\nbanner = 1\n",
	    "t.conf:2: [tcp] banner: '1' must be one of off, on");
	parse_err("[tcp]\nproxy_from =\n",
	    "t.conf:2: [tcp] proxy_from: is empty: it would believe no "
	    "balancer (unset, it is 127.0.0.0/8 ::1)");
	parse_err("[tcp]\nproxy_timeout = 50ms\n",
	    "t.conf:2: [tcp] proxy_timeout: '50ms' must be from 100ms to 1h");
	parse_err("[udp]\nproxy_protocol = v1\n",
	    "t.conf:2: unknown key 'proxy_protocol' in [udp]");
}

/* Issue 13: [tls] groups take [tcp]'s settings, and [tls NAME] [tls]'s. */
static void
test_tls_groups(void **state)
{
	struct conf		 c;
	const struct conf_group	*tls, *web;

	(void)c;
	(void)tls;
	(void)web;
#ifdef HAVE_OPENSSL
	parse_ok(&c, "[tls web]\nlisten = 127.0.0.1:8443\n"
	    "[tcp]\nbuffer_limit = 64k\nlisten = 127.0.0.1:0\n"
	    "[tls]\ncertificate = /c.pem\nkey = /k.pem\n"
	    "protocols = TLSv1.3\nidle_timeout = 9s\nlisten = 127.0.0.1:0\n");
	assert_int_equal(c.ngroups, 4);
	web = group_named(&c, "web");
	tls = group_named(&c, CONF_TLS_GROUP);
	assert_int_equal(web->proto, CONF_TLS);
	assert_int_equal(web->type, SOCK_STREAM);
	assert_int_equal(tls->proto, CONF_TLS);
	assert_string_equal(web->certificate, "/c.pem");
	assert_string_equal(web->key, "/k.pem");
	assert_int_equal(web->protocols, CONF_TLS13);
	assert_int_equal(web->idle_timeout_ms, 9000);	/* from [tls] */
	assert_int_equal(web->buffer_limit, 64 * 1024);	/* from [tcp] */
	assert_int_equal(tls->buffer_limit, 64 * 1024);
	assert_int_equal(web->handshake_timeout_ms, 10000);
	assert_int_equal(tls->protocols, CONF_TLS13);
	assert_int_equal(conf_tcp(&c)->protocols, CONF_TLS12 | CONF_TLS13);
	/* The line of each setting, for the errors about its file. */
	assert_int_equal(conf_group_line(web, "tls", "certificate"), 7);
	assert_int_equal(conf_group_line(tls, "tls", "key"), 8);
	conf_free(&c);

	/* No [tls] at all: a named one takes [tcp]'s and the defaults. */
	parse_ok(&c, "[tcp]\nbacklog = 7\n[tls a]\nlisten = 127.0.0.1:1\n"
	    "certificate = x\nkey = y\n");
	assert_int_equal(group_named(&c, "a")->backlog, 7);
	assert_int_equal(group_named(&c, "a")->protocols,
	    CONF_TLS12 | CONF_TLS13);
	conf_free(&c);

	parse_err("[tls]\nlisten = 127.0.0.1:1\n",
	    "t.conf:1: [tls]: a TLS group needs a certificate and a key");
#else
	parse_err("[tls]\nlisten = 127.0.0.1:1\n",
	    "t.conf:1: [tls]: echod was built without OpenSSL (configure "
	    "--without-openssl): no TLS");
#endif
	parse_err("[tls]\nmax_connections = 5\n",
	    "t.conf:2: [tls] max_connections: server-wide; set it in [tcp]");
	parse_err("[tcp tls]\n",
	    "t.conf:1: [tcp tls]: 'tls' names the unnamed [tls] in metrics "
	    "and logs; choose another name");
	parse_err("[tls]\nprotocols = SSLv3\n",
	    "t.conf:2: [tls] protocols: 'SSLv3' is not one of TLSv1.2, "
	    "TLSv1.3");
	parse_err("[tls]\nproxy_protocol = v1\n",
	    "t.conf:2: [tls] proxy_protocol: the PROXY protocol is not served "
	    "in TLS groups yet");
	parse_err("[tls default]\n",
	    "t.conf:1: [tls default]: 'default' names the unnamed [tcp] and "
	    "[udp] in metrics and logs; choose another name");
	parse_err("[tls]\nreflector_ports = 7\n",
	    "t.conf:2: unknown key 'reflector_ports' in [tls]");
	parse_err("[tcp web]\nlisten = 127.0.0.1:1\n[tls web]\n",
	    "t.conf:3: [tls web]: the name is taken by [tcp web] at line 1");
	parse_err("[tcp]\nlisten = 127.0.0.1:443\n[tls]\n"
	    "listen = 127.0.0.1:443\n",
	    "t.conf:4: [tls] listen: address '127.0.0.1:443' is in [tcp] too");
}

/* Issue 12: every bad group is refused at its line. */
static void
test_groups_errors(void **state)
{
	struct conf	 c;
	char		 text[4096];
	size_t		 i, n;

	parse_err("[tcp web]\nbuffer_limit = 1m\n",
	    "t.conf:1: [tcp web]: no listen address; a named group needs its "
	    "own");
	parse_err("[tcp web]\nlisten =\n",
	    "t.conf:1: [tcp web]: no listen address; a named group needs its "
	    "own");
	parse_err("[tcp]\n[tcp Web]\nlisten = 127.0.0.1:1\n",
	    "t.conf:2: [tcp Web]: a group name is 1 to 32 characters of a-z, "
	    "0-9, _ and -");
	parse_err("[tcp a.b]\n",
	    "t.conf:1: [tcp a.b]: a group name is 1 to 32 characters of a-z, "
	    "0-9, _ and -");
	parse_err("[udp a b]\n",
	    "t.conf:1: [udp a b]: a group name is 1 to 32 characters of a-z, "
	    "0-9, _ and -");
	parse_err("[tcp abcdefghijklmnopqrstuvwxyz0123456]\n",
	    "t.conf:1: [tcp abcdefghijklmnopqrstuvwxyz0123456]: a group name "
	    "is 1 to 32 characters of a-z, 0-9, _ and -");
	parse_err("[tcp  abcdefghijklmnopqrstuvwxyz012345                  ]\n",
	    "t.conf:1: section name too long (at most 49 characters)");
	parse_err("[tcp default]\n",
	    "t.conf:1: [tcp default]: 'default' names the unnamed [tcp] in "
	    "metrics and logs; choose another name");
	parse_err("[server main]\n",
	    "t.conf:1: [server] takes no name");
	parse_err("[tcp x]\nlisten = 127.0.0.1:1\n\n[udp x]\n",
	    "t.conf:4: [udp x]: the name is taken by [tcp x] at line 1");
	parse_err("[tcp x]\nlisten = 127.0.0.1:1\nmax_connections = 5\n",
	    "t.conf:3: [tcp x] max_connections: server-wide; set it in [tcp]");
	parse_err("[tcp x]\nlisten = 127.0.0.1:1\nbacklog = 1\nbacklog = 2\n",
	    "t.conf:4: [tcp x] backlog: given twice");
	parse_err("[tcp x]\nlisten = 127.0.0.1:1\nbacklog = 0\n",
	    "t.conf:3: [tcp x] backlog: '0' must be a number from 1 to 65535");
	parse_err("[udp x]\nlisten = 127.0.0.1:1\nbuffer_limit = 1m\n",
	    "t.conf:3: unknown key 'buffer_limit' in [udp x]");
	parse_err("[tcp]\nlisten = 127.0.0.1:1\n[tcp x]\n"
	    "listen = 127.0.0.1:2 127.0.0.1:1\n",
	    "t.conf:4: [tcp x] listen: address '127.0.0.1:1' is in [tcp] too");
	/* In either order, named or unnamed first. */
	parse_err("[tcp web]\nlisten = 127.0.0.1:7007\n[tcp]\n"
	    "listen = 127.0.0.1:7007\n",
	    "t.conf:4: [tcp] listen: address '127.0.0.1:7007' is in [tcp web] "
	    "too");
	parse_err("[tcp api]\nlisten = 127.0.0.1:8\n[tcp web]\n"
	    "listen = 127.0.0.1:7\n[tcp api]\nlisten = 127.0.0.1:7\n",
	    "t.conf:6: [tcp api] listen: address '127.0.0.1:7' is in [tcp web] "
	    "too");
	parse_err("[tcp x]\nlisten = 127.0.0.1:1\n[udp y]\nlisten = "
	    "127.0.0.1:1\n[tcp y]\n",
	    "t.conf:5: [tcp y]: the name is taken by [udp y] at line 3");
	/* White space as inih skips it: a form feed before a section... */
	parse_ok(&c, "\f[tcp web]\nlisten = 127.0.0.1:1\n[udp]\n");
	assert_int_equal(c.ngroups, 3);
	assert_int_equal(group_named(&c, "web")->listen.n, 1);
	conf_free(&c);
	/* ... or a vertical tab after a key: a continuation line. */
	parse_err("[tcp]\nlisten = 127.0.0.1:1\n\v[tcp x]\n",
	    "t.conf:3: [tcp] listen: bad address '[tcp': missing ']' after "
	    "IPv6 address");
	/* At most CONF_MAX_GROUPS groups, both unnamed ones counted. */
	for (i = 0, n = 0; i < CONF_MAX_GROUPS - 1; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "[tcp g%zu]\nlisten = 127.0.0.1:%zu\n", i, i + 1);
	snprintf(text + n, sizeof(text) - n, "[udp]\n");
	parse_err(text, "t.conf:61: too many groups (at most 32)");
}

static void
test_load_file(void **state)
{
	struct conf	 c;
	char		 path[] = "/tmp/echod-test-conf.XXXXXX", err[CONF_ERRLEN];
	FILE		*f;
	int		 fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("[server]\nlog_level = warning\n[udp]\nlisten = 1:2\n", f);
	fclose(f);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":4: [udp] listen: bad address '1:2'"));
	assert_memory_equal(err, path, strlen(path));
	conf_free(&c);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[server]\nlog_level = warning\n", f);
	fclose(f);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), 0);
	assert_int_equal(c.log_level, LOG_WARNING);
	conf_free(&c);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("[server]\nlog_level = warning\0\n", f);
	fwrite("[server]\n\0\n", 1, 11, f);
	fclose(f);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL byte"));
	conf_free(&c);

	unlink(path);
	conf_init(&c);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)),
	    CONF_ERR_OPEN);
	assert_non_null(strstr(err, "No such file or directory"));
	conf_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_units_in_keys),
		cmocka_unit_test(test_workers_and_limits),
		cmocka_unit_test(test_user_and_metrics),
		cmocka_unit_test(test_guards),
		cmocka_unit_test(test_listen_forms),
		cmocka_unit_test(test_listen_append),
		cmocka_unit_test(test_crlf_and_bom),
		cmocka_unit_test(test_every_key_once),
		cmocka_unit_test(test_memory_and_metrics_limits),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_groups_inherit),
		cmocka_unit_test(test_groups_errors),
		cmocka_unit_test(test_proxy_keys),
		cmocka_unit_test(test_tls_groups),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
