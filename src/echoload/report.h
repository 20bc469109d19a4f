/* What echoload prints: the progress line and the final report. */
#ifndef ECHOD_REPORT_H
#define ECHOD_REPORT_H

#include <stdio.h>

#include "hist.h"
#include "meter.h"

/* What a run measured. */
struct report {
	struct tally	s;		/* messages and bytes echoed in the
					   window; the rest of the whole run */
	struct hist	lat;		/* latencies in the window (churn:
					   each connection's whole time) */
	struct hist	phase[PHASE_COUNT];	/* churn: to connect, to
						   the first echoed byte */
	double		secs;		/* the window */
	double		ramp_secs;	/* the ramp-up before it */
	int		timeline_errno;	/* the first failed write's; 0 */
};

void	report_progress(double, double, const struct tally *,
	    const struct tally *, const struct hist *);
void	report_progress_end(void);
void	report_timeline_head(FILE *);
int	report_timeline_row(FILE *, double, double, const struct tally *,
	    const struct tally *, const struct hist *);
int	report_print(const struct report *);

#endif
