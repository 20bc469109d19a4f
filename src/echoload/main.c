/*
 * echoload: a load generator for echo servers.  Many connections (TCP or
 * UDP) spread over threads, each thread with its own event_base; closed-
 * loop ping-pong or pipelined messages, a continuous stream, a connection
 * per message (churn), or an open-loop rate.  Every echoed byte is checked
 * against what was sent, and latencies go into log-bucketed histograms.
 *
 * This file has the command line read (options.c), starts the load
 * (load.c), has the report printed (report.c) and sets the exit status.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "echoload.h"
#include "client.h"
#include "load.h"
#include "options.h"
#include "report.h"

const char *const mode_names[MODE_COUNT] = { "pingpong", "pipeline", "stream",
    "churn" };
struct opts opt;

/* Read the command line, run the load, report; exit 0 only if it passed. */
int
main(int argc, char *argv[])
{
	struct report	 r;
	FILE		*hgrm, *timeline = NULL;
	int		 quiet, rc, werr;

	memset(&r, 0, sizeof(r));
	quiet = options_read(argc, argv);
	if (!quiet && !opt.json && isatty(STDERR_FILENO))
		opt.progress = 1;
	if (quiet)
		opt.progress = 0;
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "echoload: cannot ignore SIGPIPE\n");
		rc = EX_OSERR;
		goto targets;
	}
	/*
	 * Before the run, so that a file that cannot be made costs none; not
	 * emptied (append) until the report is there to go in it.
	 */
	if (opt.hgrm != NULL && ((hgrm = fopen(opt.hgrm, "a")) == NULL ||
	    fclose(hgrm) == EOF)) {
		fprintf(stderr, "echoload: --hgrm %s: %s\n", opt.hgrm,
		    strerror(errno));
		rc = EX_CANTCREAT;
		goto targets;
	}
	/* Written as the run goes, a row a second, for those who watch. */
	if (opt.timeline != NULL) {
		if ((timeline = fopen(opt.timeline, "w")) == NULL) {
			fprintf(stderr, "echoload: --timeline %s: %s\n",
			    opt.timeline, strerror(errno));
			rc = EX_CANTCREAT;
			goto targets;
		}
		report_timeline_head(timeline);
	}
	if ((rc = client_tls_setup()) != 0)
		goto tls;
	if (load_start() == -1) {
		rc = EX_OSERR;
		goto load;
	}
	load_run(&r, timeline);
	if ((rc = report_print(&r)) == -1) {
		fprintf(stderr, "echoload: cannot write the report: %s\n",
		    strerror(errno));
		rc = EX_IOERR;
	}
	/* A file not written exits 74, whatever the run's result. */
	if (opt.hgrm != NULL) {
		werr = (hgrm = fopen(opt.hgrm, "w")) == NULL ||
		    hist_write_hgrm(&r.lat, hgrm) == -1;
		if (hgrm != NULL && fclose(hgrm) == EOF)
			werr = 1;
		if (werr) {
			fprintf(stderr, "echoload: --hgrm %s: %s\n", opt.hgrm,
			    strerror(errno));
			rc = EX_IOERR;
		}
	}
load:
	load_free();
tls:
	client_tls_cleanup();
	/* As --hgrm: a file not written exits 74. */
	if (timeline != NULL) {
		werr = r.timeline_errno;
		if (werr == 0 && ferror(timeline))
			werr = EIO;
		if (fclose(timeline) == EOF && werr == 0)
			werr = errno;
		if (werr != 0) {
			fprintf(stderr, "echoload: --timeline %s: %s\n",
			    opt.timeline, strerror(werr));
			rc = EX_IOERR;
		}
	}
targets:
	free(opt.targets);
	return (rc);
}
