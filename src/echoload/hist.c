/* The latency histogram of echoload.  A pure leaf, tested from values. */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hist.h"

/* Empty the histogram. */
void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/* The bucket that holds value v. */
unsigned
hist_bucket(uint64_t v)
{
	unsigned	 e;

	if (v < HIST_SUB)
		return ((unsigned)v);
	e = 63 - (unsigned)__builtin_clzll(v);	/* floor(log2 v) >= 5 */
	return ((e - HIST_SUB_BITS + 1) * HIST_SUB +
	    (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1)));
}

/* The smallest value in bucket i. */
uint64_t
hist_bucket_low(unsigned i)
{
	unsigned	 e;

	if (i < HIST_SUB)
		return (i);
	e = i / HIST_SUB + HIST_SUB_BITS - 1;
	return ((uint64_t)(HIST_SUB + i % HIST_SUB) << (e - HIST_SUB_BITS));
}

/* The largest value in bucket i. */
uint64_t
hist_bucket_high(unsigned i)
{
	unsigned	 e;

	if (i < HIST_SUB)
		return (i);
	e = i / HIST_SUB + HIST_SUB_BITS - 1;
	return (hist_bucket_low(i) + ((uint64_t)1 << (e - HIST_SUB_BITS)) - 1);
}

/* Count one value. */
void
hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_bucket(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* Add the counts of src to dst. */
void
hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned	 i;

	for (i = 0; i < HIST_NBUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/*
 * The value at percentile p (0 to 100): the top of the bucket holding the
 * ceil(p% of count)-th smallest value, but never above the largest value
 * seen.  0 for an empty histogram.
 */
uint64_t
hist_percentile(const struct hist *h, double p)
{
	uint64_t	 rank, seen = 0, v;
	double		 r;
	unsigned	 i;

	if (h->count == 0)
		return (0);
	if (p <= 0)
		return (h->min);
	/* ceil(p% of count), forgiving the rounding of p / 100. */
	r = p / 100.0 * (double)h->count;
	rank = (uint64_t)r;
	if ((double)rank < r - r * 1e-12)
		rank++;
	if (rank == 0)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (i = 0; i < HIST_NBUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			v = hist_bucket_high(i);
			return (v > h->max ? h->max : v);
		}
	}
	return (h->max);
}

/* The mean of all values, 0 for none. */
double
hist_mean(const struct hist *h)
{
	return (h->count == 0 ? 0.0 : (double)h->sum / (double)h->count);
}

/*
 * Write the distribution in the text form of HdrHistogram's
 * outputPercentileDistribution, which HdrHistogram's plotter reads: a row
 * for each bucket that holds values (its top, never above the largest
 * value, in milliseconds; the share of values at or below it; their
 * count; 1/(1-share)), the largest value once more just short of 100%
 * (the plotter draws only four-column rows) and at 100%, then the mean,
 * the standard deviation (from the buckets' middles), the largest value,
 * the count and the histogram's shape in HdrHistogram's terms.  For a
 * percentile from 0 (exclusive) to 100, hist_percentile gives the value
 * of the first row whose count reaches its rank.  Return 0, or -1 if
 * writing failed.
 */
int
hist_write_hgrm(const struct hist *h, FILE *f)
{
	uint64_t	 seen = 0, v;
	double		 share, mid, var = 0, mean = hist_mean(h);
	unsigned	 i;

	fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile",
	    "TotalCount", "1/(1-Percentile)");
	for (i = 0; i < HIST_NBUCKETS; i++) {
		if (h->b[i] == 0)
			continue;
		seen += h->b[i];
		v = hist_bucket_high(i);
		if (v > h->max)
			v = h->max;
		mid = ((double)hist_bucket_low(i) + (double)v) / 2;
		var += (double)h->b[i] * (mid - mean) * (mid - mean);
		share = (double)seen / (double)h->count;
		if (seen == h->count) {
			/*
			 * The plotter draws only rows of four columns: the
			 * largest value once more just short of 100%.
			 */
			share = 1 - 0.5 / (double)h->count;
			fprintf(f, "%12.3f %2.12f %10" PRIu64 " %14.2f\n",
			    (double)v / 1000, share, seen, 1 / (1 - share));
			fprintf(f, "%12.3f %2.12f %10" PRIu64 "\n",
			    (double)v / 1000, 1.0, seen);
		} else
			fprintf(f, "%12.3f %2.12f %10" PRIu64 " %14.2f\n",
			    (double)v / 1000, share, seen, 1 / (1 - share));
	}
	fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n"
	    "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n"
	    "#[Buckets = %12u, SubBuckets     = %12u]\n", mean / 1000,
	    h->count ? sqrt(var / (double)h->count) / 1000 : 0.0,
	    (double)(h->count ? h->max : 0) / 1000, h->count,
	    HIST_NBUCKETS / HIST_SUB - 1, 2 * HIST_SUB);
	return (ferror(f) ? -1 : 0);
}
