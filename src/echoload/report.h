/* What echoload prints: the progress line and the final report. */
#ifndef ECHOD_REPORT_H
#define ECHOD_REPORT_H

#include "hist.h"
#include "meter.h"

/* What a run measured. */
struct report {
	struct tally	s;		/* messages and bytes echoed in the
					   window; the rest of the whole run */
	struct hist	lat;		/* latencies in the window */
	double		secs;		/* the window */
	double		ramp_secs;	/* the ramp-up before it */
};

void	report_progress(double, double, const struct tally *,
	    const struct tally *, const struct hist *);
void	report_progress_end(void);
int	report_print(const struct report *);

#endif
