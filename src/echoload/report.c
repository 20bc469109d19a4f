/* What echoload prints: the progress line, the final report and why. */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "echoload.h"
#include "hist.h"
#include "meter.h"
#include "report.h"

/* The errors the progress line and the timeline count. */
static uint64_t
report_errors(const struct tally *s)
{
	return (s->mismatches + s->resets + s->timeouts + s->connect_fail +
	    s->tls_failed + s->overloaded);
}

/* Print the progress line over the last one, on standard error. */
void
report_progress(double elapsed, double secs, const struct tally *s,
    const struct tally *prev, const struct hist *iv)
{
	fprintf(stderr, "\r[%5.1fs] conns %" PRIu64 "/%u  msgs/s %.0f  MB/s "
	    "%.2f  p50 %" PRIu64 "us  p99 %" PRIu64 "us  errors %" PRIu64
	    "   ", elapsed, s->conns_up, opt.connections,
	    (double)(s->msgs - prev->msgs) / secs,
	    (double)(s->bytes_recv - prev->bytes_recv) / secs / 1e6,
	    hist_percentile(iv, 50), hist_percentile(iv, 99),
	    report_errors(s));
}

/* Write the timeline's header line. */
void
report_timeline_head(FILE *f)
{
	fputs("seconds,messages,messages_per_sec,mb_per_sec,p50_us,p99_us,"
	    "p999_us,errors\n", f);
}

/*
 * Write a timeline row: the window's first at seconds, the counters s
 * against prev, secs before, and their latencies iv (none: empty fields);
 * flushed, for those who watch the file grow.  Return 0, or -1 with errno
 * if it could not be written.
 */
int
report_timeline_row(FILE *f, double at, double secs, const struct tally *s,
    const struct tally *prev, const struct hist *iv)
{
	uint64_t	 msgs = s->msgs - prev->msgs;
	int		 n;

	if (secs <= 0)
		secs = 1e-6;
	if (iv->count > 0)
		n = fprintf(f, "%.3f,%" PRIu64 ",%.1f,%.3f,%" PRIu64 ",%" PRIu64
		    ",%" PRIu64 ",%" PRIu64 "\n", at, msgs, (double)msgs / secs,
		    (double)(s->bytes_recv - prev->bytes_recv) / secs / 1e6,
		    hist_percentile(iv, 50), hist_percentile(iv, 99),
		    hist_percentile(iv, 99.9),
		    report_errors(s) - report_errors(prev));
	else
		n = fprintf(f, "%.3f,%" PRIu64 ",%.1f,%.3f,,,,%" PRIu64 "\n",
		    at, msgs, (double)msgs / secs,
		    (double)(s->bytes_recv - prev->bytes_recv) / secs / 1e6,
		    report_errors(s) - report_errors(prev));
	return (n < 0 || fflush(f) == EOF ? -1 : 0);
}

/* End the progress line. */
void
report_progress_end(void)
{
	fputc('\n', stderr);
}

/* Why the run failed, the first reason that applies; NULL if it did not. */
static const char *
report_failure(const struct tally *s, double loss)
{
	if (s->mismatches > 0)
		return ("echoed data did not match what was sent");
	if (s->resets > 0)
		return ("connections were reset or closed");
	if (s->tls_failed > 0)
		return ("TLS handshakes failed");
	if (s->connect_fail > 0)
		return ("connections failed");
	if (s->timeouts > 0)
		return ("echoes did not come back in time");
	if (opt.udp && loss > opt.max_loss)
		return ("UDP loss above --max-loss");
	if (s->overloaded > 0 && opt.mode == MODE_CHURN)
		return ("connections came due while every client was busy");
	if (s->overloaded > 0)
		return ("more messages in flight than a connection can track");
	if (s->msgs == 0 && s->bytes_recv == 0)
		return ("nothing was echoed");
	return (NULL);
}

/*
 * The JSON report, described once: a line a key, in the order printed
 * (echoload(1) lists them so), with how its value is written: S a string,
 * U a whole number, F a number with p decimals, A the targets, B true or
 * false, N a string or null; O opens an object, E closes it.  The values
 * are expressions over r, s (the tally), h (the latencies), loss and why.
 * REPORT_HIST is a histogram's part.
 */
#define REPORT_HIST(U, F, h)						\
		U(p50, hist_percentile(h, 50))				\
		U(p90, hist_percentile(h, 90))				\
		U(p99, hist_percentile(h, 99))				\
		U(p999, hist_percentile(h, 99.9))			\
		U(max, (h)->count ? (h)->max : 0)			\
		F(mean, 1, hist_mean(h))				\
		U(count, (h)->count)
#define REPORT_JSON(S, U, F, A, B, N, O, E)				\
	S(proto, opt.udp ? "udp" : opt.tls ? "tls" : "tcp")		\
	S(mode, mode_names[opt.mode])					\
	F(rate, 1, opt.rate)						\
	U(connections, opt.connections)					\
	U(threads, opt.threads)						\
	U(size_min, opt.size_min)					\
	U(size_max, opt.size_max)					\
	F(seconds, 3, r->secs)						\
	F(ramp_seconds, 3, r->ramp_secs)				\
	A(targets)							\
	U(connections_up, s->conns_up)					\
	U(messages, s->msgs)						\
	F(messages_per_sec, 1, (double)s->msgs / r->secs)		\
	U(bytes_sent, s->bytes_sent)					\
	U(bytes_echoed, s->bytes_recv)					\
	F(mb_per_sec, 3, (double)s->bytes_recv / r->secs / 1e6)	\
	O(latency_us)							\
		REPORT_HIST(U, F, h)					\
	E()								\
	O(churn)							\
		U(connections, churn ? s->msgs : 0)			\
		F(connections_per_sec, 1, churn ?			\
		    (double)s->msgs / r->secs : 0.0)			\
		B(server_close, opt.server_close)			\
		O(connect_us)						\
			REPORT_HIST(U, F, &r->phase[PHASE_CONNECT])	\
		E()							\
		O(first_byte_us)					\
			REPORT_HIST(U, F, &r->phase[PHASE_FIRST_BYTE])	\
		E()							\
	E()								\
	O(errors)							\
		U(mismatched, s->mismatches)				\
		U(reset, s->resets)					\
		U(timed_out, s->timeouts)				\
		U(connect_failed, s->connect_fail)			\
		U(overloaded, s->overloaded)				\
	E()								\
	O(udp)								\
		U(sent, s->udp_sent)					\
		U(lost, s->udp_lost)					\
		U(late, s->udp_late)					\
		F(loss_percent, 4, loss)				\
	E()								\
	O(tls)								\
		U(handshakes, s->tls_handshakes)			\
		U(resumed, s->tls_resumed)				\
		U(failed, s->tls_failed)				\
	E()								\
	O(faults)							\
		B(expected, opt.expect_faults)				\
		U(reset, s->fault_resets)				\
		U(closed, s->fault_closes)				\
		U(stalled, s->fault_stalls)				\
	E()								\
	B(ok, why == NULL)						\
	N(failure, why)

/* Write the key of a member, after a comma unless it is the first. */
static void
json_key(int *first, const char *key)
{
	printf("%s\"%s\":", *first ? "" : ",", key);
	*first = 0;
}

/* Print the report as one JSON object on one line (REPORT_JSON). */
static void
report_json(const struct report *r, double loss, const char *why)
{
	const struct tally	*s = &r->s;
	const struct hist	*h = &r->lat;
	size_t			 i;
	int			 first = 1, churn = opt.mode == MODE_CHURN;

#define J_S(k, v)	json_key(&first, #k); printf("\"%s\"", (v));
#define J_U(k, v)	json_key(&first, #k); printf("%" PRIu64, (uint64_t)(v));
#define J_F(k, p, v)	json_key(&first, #k); printf("%.*f", (p), (double)(v));
#define J_A(k)		json_key(&first, #k); putchar('[');		\
	for (i = 0; i < opt.ntargets; i++)				\
		printf("%s\"%s\"", i ? "," : "", opt.targets[i].name);	\
	putchar(']');
#define J_B(k, v)	json_key(&first, #k); fputs((v) ? "true" : "false", \
	stdout);
#define J_N(k, v)	json_key(&first, #k); if ((v) == NULL)		\
	fputs("null", stdout); else printf("\"%s\"", (v));
#define J_O(k)		json_key(&first, #k); putchar('{'); first = 1;
#define J_E()		putchar('}'); first = 0;
	putchar('{');
	REPORT_JSON(J_S, J_U, J_F, J_A, J_B, J_N, J_O, J_E)
	fputs("}\n", stdout);
#undef J_S
#undef J_U
#undef J_F
#undef J_A
#undef J_B
#undef J_N
#undef J_O
#undef J_E
}

/* Print a line of latencies: what, then h's percentiles. */
static void
report_text_hist(const char *what, const struct hist *h)
{
	printf("%-12s p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64
	    "  p99.9 %" PRIu64 "  max %" PRIu64 "  mean %.1f\n", what,
	    hist_percentile(h, 50), hist_percentile(h, 90),
	    hist_percentile(h, 99), hist_percentile(h, 99.9),
	    h->count ? h->max : 0, hist_mean(h));
}

/* Print the report as text, a line a subject. */
static void
report_text(const struct report *r, double loss, const char *why)
{
	const struct tally	*s = &r->s;

	printf("echoload: %s %s%s, %u connections, %u threads, size "
	    "%zu-%zu, %.2f s (ramp %.2f s)\n", opt.udp ? "udp" : opt.tls ?
	    "tls" : "tcp", mode_names[opt.mode], opt.rate > 0 ?
	    " open-loop" : "",
	    opt.connections, opt.threads, opt.size_min, opt.size_max,
	    r->secs, r->ramp_secs);
	printf("connections: %" PRIu64 " up, %" PRIu64 " failed\n",
	    s->conns_up, s->connect_fail);
	printf("messages:    %" PRIu64 " (%.1f/s)\n", s->msgs,
	    (double)s->msgs / r->secs);
	printf("bytes:       %" PRIu64 " sent, %" PRIu64 " echoed "
	    "(%.2f MB/s)\n", s->bytes_sent, s->bytes_recv,
	    (double)s->bytes_recv / r->secs / 1e6);
	if (opt.mode == MODE_CHURN) {
		printf("churn:       %" PRIu64 " connections (%.1f/s), the %s "
		    "closes first\n", s->msgs, (double)s->msgs / r->secs,
		    opt.server_close ? "server" : "client");
		report_text_hist("connect us:", &r->phase[PHASE_CONNECT]);
		report_text_hist("1st byte us:",
		    &r->phase[PHASE_FIRST_BYTE]);
		report_text_hist("total us:", &r->lat);
	} else
		report_text_hist("latency us:", &r->lat);
	printf("errors:      %" PRIu64 " mismatched, %" PRIu64 " reset, "
	    "%" PRIu64 " timed out, %" PRIu64 " overloaded\n",
	    s->mismatches, s->resets, s->timeouts, s->overloaded);
	if (opt.expect_faults)
		printf("faults:      %" PRIu64 " reset, %" PRIu64 " closed, %"
		    PRIu64 " stalled (expected: the client reconnected)\n",
		    s->fault_resets, s->fault_closes, s->fault_stalls);
	if (opt.tls)
		printf("tls:         %" PRIu64 " handshakes (%" PRIu64
		    " resumed), %" PRIu64 " failed\n", s->tls_handshakes,
		    s->tls_resumed, s->tls_failed);
	if (opt.udp)
		printf("udp:         %" PRIu64 " sent, %" PRIu64 " lost "
		    "(%.3f%%), %" PRIu64 " late\n", s->udp_sent,
		    s->udp_lost, loss, s->udp_late);
	printf("result:      %s%s\n", why == NULL ? "OK" : "FAILED: ",
	    why == NULL ? "" : why);
}

/*
 * Print the final report on standard output, as text or JSON.  Return 0
 * if the run passed, 1 if it failed, -1 if the report could not be
 * written.
 */
int
report_print(const struct report *r)
{
	const struct tally	*s = &r->s;
	double			 loss = 0.0;
	const char		*why;

	if (s->udp_sent > 0)
		loss = 100.0 * (double)s->udp_lost / (double)s->udp_sent;
	why = report_failure(s, loss);
	if (opt.json)
		report_json(r, loss, why);
	else
		report_text(r, loss, why);
	if (fflush(stdout) == EOF || ferror(stdout))
		return (-1);
	return (why == NULL ? 0 : 1);
}
