/*
 * echoload's command line: the options into opt (echoload.h), over the
 * defaults, checked alone and together, and the targets; any error exits
 * with a one-line reason and the usage (EX_USAGE).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "addr.h"
#include "units.h"
#include "echoload.h"
#include "options.h"
#include "pattern.h"

#define UDP_MAX_MSG	65507		/* the largest UDP payload */

/* Options with no short form. */
enum {
	OPT_RECONNECT = 256, OPT_TLS, OPT_TLS_CA, OPT_TLS_CERT, OPT_TLS_KEY,
	OPT_TLS_NAME, OPT_TLS_NO_VERIFY, OPT_TLS_NO_RESUME, OPT_TLS_VERSION,
	OPT_HGRM, OPT_TIMELINE, OPT_SERVER_CLOSE, OPT_EXPECT_FAULTS
};

static int	 main_reconnect;	/* --reconnect: -m churn's old name */

/* Print the usage lines and exit with the given code. */
static void __attribute__((noreturn))
usage(int ex)
{
	fprintf(ex == 0 ? stdout : stderr,
	    "usage: echoload [-uq] [--json] [-c connections] [-t threads] "
	    "[-d duration]\n"
	    "                [-s size[-max]] [-m pingpong|pipeline|stream|churn] "
	    "[-k depth]\n"
	    "                [-r rate] [--ramp rate] [--timeout duration] "
	    "[--max-loss percent]\n"
	    "                [--seed n] [--progress] [--hgrm file] "
	    "[--timeline file]\n"
	    "                [--server-close] [--expect-faults]\n"
	    "                [--proxy-v1 | --proxy-v2 address]\n"
	    "                [--tls [--tls-ca file | --tls-no-verify] "
	    "[--tls-cert file --tls-key file]\n"
	    "                [--tls-name name] [--tls-version 1.2|1.3] "
	    "[--tls-no-resume]] host:port ...\n");
	exit(ex);
}

/* Say what is wrong with the command line, then exit with the usage. */
static void __attribute__((noreturn, format(printf, 1, 2)))
main_usage_error(const char *fmt, ...)
{
	va_list	 ap;

	fputs("echoload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(EX_USAGE);
}

/* Parse a whole number option, or exit with a usage error. */
static uint64_t
main_number(const char *name, const char *v, uint64_t min, uint64_t max)
{
	uint64_t	 n;

	if (units_number(v, min, max, &n) == -1)
		main_usage_error("%s: '%s' must be a number from %" PRIu64
		    " to %" PRIu64, name, v, min, max);
	return (n);
}

/* Parse a size or size range option ("64", "1k-64k"). */
static void
main_sizes(const char *v)
{
	char		 buf[64], *dash;
	uint64_t	 lo, hi;
	int		 n;

	n = snprintf(buf, sizeof(buf), "%s", v);
	if (n < 0 || (size_t)n >= sizeof(buf))
		buf[0] = '\0';		/* too long to be a size */
	if ((dash = strchr(buf, '-')) != NULL)
		*dash++ = '\0';
	if (units_size(buf, &lo) == -1 ||
	    (dash != NULL && units_size(dash, &hi) == -1))
		main_usage_error("--size: '%s' is not a size or range (like "
		    "64, 16k or 1-1k)", v);
	if (dash == NULL)
		hi = lo;
	if (lo < 1 || hi < lo || hi > PATTERN_MAX_MSG)
		main_usage_error("--size: '%s' must be from 1 to 1m, smallest "
		    "first", v);
	opt.size_min = lo;
	opt.size_max = hi;
}

/* Parse a duration option, or exit with a usage error. */
static uint64_t
main_duration(const char *name, const char *v)
{
	uint64_t	 ms;

	if (units_duration(v, &ms) == -1 || ms == 0)
		main_usage_error("%s: '%s' is not a duration (like 500ms, 10s "
		    "or 2m)", name, v);
	return (ms);
}

/* Parse a non-negative decimal option. */
static double
main_real(const char *name, const char *v)
{
	double	 d;
	char	*end;

	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || *end != '\0' || end == v || !(d >= 0) ||
	    isinf(d))
		main_usage_error("%s: '%s' is not a number", name, v);
	return (d);
}

/* Parse the --mode option. */
static enum mode
main_mode(const char *v)
{
	unsigned	 i;

	for (i = 0; i < MODE_COUNT; i++)
		if (strcmp(v, mode_names[i]) == 0)
			return ((enum mode)i);
	main_usage_error("--mode: '%s' must be pingpong, pipeline, stream or "
	    "churn", v);
}

/* Parse the --ramp option. */
static double
main_ramp(const char *v)
{
	double	 d = main_real("--ramp", v);

	if (d < 1)
		main_usage_error("--ramp must be at least 1 connection/s");
	return (d);
}

static void	main_option_long(int, char *[]);

/* Apply option ch from getopt_long; -q goes to *quiet. */
static void
main_option(int ch, char *argv[], int *quiet)
{
	const char	*why;

	switch (ch) {
	case 'c':
		opt.connections = (unsigned)main_number("--connections",
		    optarg, 1, 1000000);
		break;
	case 't':
		opt.threads = (unsigned)main_number("--threads", optarg, 1,
		    256);
		break;
	case 'd':
		opt.duration_ms = main_duration("--duration", optarg);
		break;
	case 's':
		main_sizes(optarg);
		break;
	case 'm':
		opt.mode = main_mode(optarg);
		break;
	case 'k':
		opt.depth = (unsigned)main_number("--depth", optarg, 1,
		    QUEUE_CAP);
		break;
	case 'r':
		opt.rate = main_real("--rate", optarg);
		break;
	case 'u':
		opt.udp = 1;
		break;
	case 'q':
		*quiet = 1;
		break;
	case 'J':
		opt.json = 1;
		break;
	case 'R':
		opt.ramp = main_ramp(optarg);
		break;
	case 'T':
		opt.timeout_ms = main_duration("--timeout", optarg);
		break;
	case 'L':
		opt.max_loss = main_real("--max-loss", optarg);
		break;
	case 'S':
		opt.seed = main_number("--seed", optarg, 0, UINT64_MAX);
		break;
	case 'P':
		opt.progress = 1;
		break;
	case '1':
	case '2':
		if (opt.proxy != 0)
			main_usage_error("--proxy-v1 and --proxy-v2 are "
			    "alternatives; give one, once");
		opt.proxy = ch - '0';
		if (addr_parse(optarg, &opt.proxy_src, &why) == -1)
			main_usage_error("bad --proxy-v%c address '%s': %s", ch,
			    optarg, why);
		break;
	case 'h':
		usage(EX_OK);
	default:
		main_option_long(ch, argv);
	}
}

/* Apply a long option with no short form, or say it is unknown. */
static void
main_option_long(int ch, char *argv[])
{
	switch (ch) {
	case OPT_RECONNECT:
		main_reconnect = 1;
		break;
	case OPT_SERVER_CLOSE:
		opt.server_close = 1;
		break;
	case OPT_EXPECT_FAULTS:
		opt.expect_faults = 1;
		break;
	case OPT_HGRM:
		opt.hgrm = optarg;
		break;
	case OPT_TIMELINE:
		opt.timeline = optarg;
		break;
	case OPT_TLS:
		opt.tls = 1;
		break;
	case OPT_TLS_CA:
		opt.tls_ca = optarg;
		break;
	case OPT_TLS_CERT:
		opt.tls_cert = optarg;
		break;
	case OPT_TLS_KEY:
		opt.tls_key = optarg;
		break;
	case OPT_TLS_NAME:
		opt.tls_name = optarg;
		break;
	case OPT_TLS_NO_VERIFY:
		opt.tls_no_verify = 1;
		break;
	case OPT_TLS_NO_RESUME:
		opt.tls_no_resume = 1;
		break;
	case OPT_TLS_VERSION:
		if (strcmp(optarg, "1.2") == 0)
			opt.tls_version = 12;
		else if (strcmp(optarg, "1.3") == 0)
			opt.tls_version = 13;
		else
			main_usage_error("--tls-version: '%s' must be 1.2 or "
			    "1.3", optarg);
		break;
	case 'V':
		printf("echoload %s\n", PACKAGE_VERSION);
		exit(EX_OK);
	case ':':
		main_usage_error("option '%s' needs an argument",
		    argv[optind - 1]);
	default:
		main_usage_error("unknown option '%s'", argv[optind - 1]);
	}
}

/* Read the options into opt, over the defaults; return whether -q. */
static int
main_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "depth", required_argument, NULL, 'k' },
		{ "rate", required_argument, NULL, 'r' },
		{ "udp", no_argument, NULL, 'u' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'J' },
		{ "ramp", required_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "max-loss", required_argument, NULL, 'L' },
		{ "seed", required_argument, NULL, 'S' },
		{ "progress", no_argument, NULL, 'P' },
		{ "proxy-v1", required_argument, NULL, '1' },
		{ "proxy-v2", required_argument, NULL, '2' },
		{ "reconnect", no_argument, NULL, OPT_RECONNECT },
		{ "server-close", no_argument, NULL, OPT_SERVER_CLOSE },
		{ "expect-faults", no_argument, NULL, OPT_EXPECT_FAULTS },
		{ "hgrm", required_argument, NULL, OPT_HGRM },
		{ "timeline", required_argument, NULL, OPT_TIMELINE },
		{ "tls", no_argument, NULL, OPT_TLS },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-name", required_argument, NULL, OPT_TLS_NAME },
		{ "tls-no-verify", no_argument, NULL, OPT_TLS_NO_VERIFY },
		{ "tls-no-resume", no_argument, NULL, OPT_TLS_NO_RESUME },
		{ "tls-version", required_argument, NULL, OPT_TLS_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int	 ch, quiet = 0;

	opt.threads = 1;
	opt.connections = 1;
	opt.duration_ms = 10000;
	opt.timeout_ms = 5000;
	opt.size_min = opt.size_max = 64;
	opt.depth = 8;
	opt.ramp = 10000;
	opt.seed = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:t:d:s:m:k:r:uqhV", longopts,
	    NULL)) != -1)
		main_option(ch, argv, &quiet);
	return (quiet);
}

/* The TLS options: only with --tls, and in pairs where they go so. */
static void
main_check_tls(void)
{
	if (!opt.tls) {
		if (opt.tls_ca != NULL || opt.tls_cert != NULL ||
		    opt.tls_key != NULL || opt.tls_name != NULL ||
		    opt.tls_no_verify || opt.tls_no_resume ||
		    opt.tls_version != 0)
			main_usage_error("the --tls-* options need --tls");
		return;
	}
#ifndef HAVE_OPENSSL
	main_usage_error("--tls: echoload was built without OpenSSL");
#endif
	if (opt.udp)
		main_usage_error("--tls is for TCP; DTLS is not supported");
	if ((opt.tls_cert == NULL) != (opt.tls_key == NULL))
		main_usage_error("--tls-cert and --tls-key go together");
	if (opt.tls_no_verify && opt.tls_ca != NULL)
		main_usage_error("--tls-ca and --tls-no-verify are "
		    "alternatives");
}

/* Exit with a usage error where options do not go together. */
static void
main_check(int argc)
{
	if (optind == argc)
		main_usage_error("no target given");
	if (opt.udp && opt.mode == MODE_STREAM)
		main_usage_error("UDP has no stream mode; use pipeline or "
		    "--rate");
	if (opt.udp && opt.size_min < UDP_SEQ_LEN)
		main_usage_error("UDP messages need at least %d bytes for "
		    "their sequence number", UDP_SEQ_LEN);
	if (opt.udp && opt.size_max > UDP_MAX_MSG)
		main_usage_error("UDP messages are at most %d bytes",
		    UDP_MAX_MSG);
	if (opt.mode == MODE_STREAM && opt.rate > 0)
		main_usage_error("--rate does not go with stream mode");
	if (opt.udp && opt.proxy)
		main_usage_error("a PROXY header is for TCP only");
	if (main_reconnect) {
		if (opt.mode != MODE_PINGPONG && opt.mode != MODE_CHURN)
			main_usage_error("--reconnect is -m churn's old name; "
			    "it does not go with -m %s", mode_names[opt.mode]);
		opt.mode = MODE_CHURN;
	}
	if (opt.mode == MODE_CHURN && opt.udp)
		main_usage_error("churn mode is for TCP (a connection per "
		    "message)");
	if (opt.server_close && opt.mode != MODE_CHURN)
		main_usage_error("--server-close is for churn mode");
	if (opt.expect_faults && opt.udp)
		main_usage_error("--expect-faults is for TCP (UDP: --max-loss; "
		    "duplicates count as late)");
	main_check_tls();
	if (opt.threads > opt.connections)
		opt.threads = opt.connections;
}

/* Parse the n targets in args into opt, or exit. */
static void
main_targets(int n, char *args[])
{
	const char	*why;
	size_t		 i;

	opt.ntargets = (size_t)n;
	if ((opt.targets = calloc(opt.ntargets, sizeof(*opt.targets))) ==
	    NULL) {
		fprintf(stderr, "echoload: out of memory\n");
		exit(EX_OSERR);
	}
	for (i = 0; i < opt.ntargets; i++) {
		if (addr_parse(args[i], &opt.targets[i].a, &why) == -1)
			main_usage_error("bad target '%s': %s", args[i], why);
		if (opt.proxy && opt.targets[i].a.ss.ss_family !=
		    opt.proxy_src.ss.ss_family)
			main_usage_error("target '%s' and the --proxy-v%d "
			    "address are not of one family", args[i], opt.proxy);
		opt.targets[i].name = args[i];
	}
}

/*
 * Read the whole command line into opt, or exit.  Return whether -q was
 * given.
 */
int
options_read(int argc, char *argv[])
{
	int	 quiet;

	quiet = main_options(argc, argv);
	main_check(argc);
	main_targets(argc - optind, argv + optind);
	return (quiet);
}
