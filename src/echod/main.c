/*
 * echod: a TCP and UDP echo daemon (RFC 862).  This file reads the command
 * line and the configuration, then hands over to server.c.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "log.h"
#include "tls.h"
#include "server.h"

#ifndef ECHOD_CONF_PATH
#define ECHOD_CONF_PATH	"/etc/echod.conf"
#endif

static const char usage_text[] =
    "usage: echod [-htV] [-c file]\n";

/* Print the usage line and exit with the given code. */
static void __attribute__((noreturn))
usage(int ex)
{
	FILE	*f = ex == 0 ? stdout : stderr;

	fputs(usage_text, f);
	if (ex == 0)
		fputs("\n"
		    "  -c, --config FILE   configuration file (default "
		    ECHOD_CONF_PATH ")\n"
		    "  -t, --check-config  check the configuration and exit\n"
		    "  -V, --version       print the version and exit\n"
		    "  -h, --help          print this help and exit\n", f);
	exit(ex);
}

/*
 * Load every TLS group's certificate, key and client CAs once, so that a
 * bad one stops echod (and --check-config) with its FILE:LINE.  Return 0
 * or -1 (said on standard error).
 */
static int
main_check_tls(const struct conf *c, const char *path)
{
	char	 err[CONF_ERRLEN + CONF_PATHLEN];
	void	*ctx;
	size_t	 i;

	for (i = 0; i < c->ngroups; i++) {
		if (c->groups[i].proto != CONF_TLS ||
		    c->groups[i].listen.n == 0)
			continue;
		if ((ctx = tls_ctx_new(path, &c->groups[i], err,
		    sizeof(err))) == NULL) {
			fprintf(stderr, "echod: %s\n", err);
			return (-1);
		}
		tls_ctx_free(ctx);
	}
	return (0);
}

/* For --check-config: each listener group and where it listens. */
static void
main_print_groups(const struct conf *c)
{
	const struct conf_group	*g;
	char			 name[ADDR_STRLEN];
	size_t			 i, j;

	for (i = 0; i < c->ngroups; i++) {
		g = &c->groups[i];
		printf("%s group %s:", conf_group_proto(g), g->name);
		for (j = 0; j < g->listen.n; j++)
			printf(" %s", addr_name(&g->listen.v[j], name,
			    sizeof(name)));
		printf("%s\n", g->listen.n == 0 ? " (no listen address)" : "");
	}
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*path = ECHOD_CONF_PATH;
	struct conf	 conf;
	struct server	 srv;
	char		 err[CONF_ERRLEN];
	sigset_t	 late;
	int		 ch, check = 0, rc;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:htV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("echod %s\n", PACKAGE_VERSION);
			return (EX_OK);
		case 'h':
			usage(EX_OK);
		case ':':
			fprintf(stderr, "echod: option '%s' needs an "
			    "argument\n", argv[optind - 1]);
			usage(EX_USAGE);
		default:
			if (optopt != 0)
				fprintf(stderr, "echod: unknown option "
				    "'-%c'\n", optopt);
			else
				fprintf(stderr, "echod: unknown option "
				    "'%s'\n", argv[optind - 1]);
			usage(EX_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "echod: unexpected argument '%s'\n",
		    argv[optind]);
		usage(EX_USAGE);
	}

	conf_init(&conf);
	if ((rc = conf_load(&conf, path, err, sizeof(err))) != 0) {
		fprintf(stderr, "echod: %s\n", err);
		conf_free(&conf);
		return (rc == CONF_ERR_OPEN ? EX_NOINPUT : EX_CONFIG);
	}
	if (main_check_tls(&conf, path) == -1) {
		conf_free(&conf);
		return (EX_CONFIG);
	}
	if (check) {
		printf("echod: %s: configuration OK\n", path);
		main_print_groups(&conf);
		conf_free(&conf);
		return (EX_OK);
	}

	log_init(conf.log_level);
	rc = server_init(&srv, &conf, path);
	if (rc == EX_OK && server_run(&srv) == -1)
		rc = EX_SOFTWARE;
	/*
	 * Freeing the signal events restores the default actions; a late
	 * SIGTERM must not turn a clean exit into death by signal.
	 */
	sigemptyset(&late);
	sigaddset(&late, SIGTERM);
	sigaddset(&late, SIGINT);
	sigprocmask(SIG_BLOCK, &late, NULL);
	server_free(&srv);
	return (rc);
}
