/* Unit tests for hist.c: buckets, percentiles, merging, the .hgrm form. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"

static struct hist	h, h2;

static void
test_buckets_cover_every_value(void **state)
{
	uint64_t	 v;
	unsigned	 i, b;

	/* Exact below 32 us. */
	for (v = 0; v < 32; v++) {
		assert_int_equal(hist_bucket(v), v);
		assert_int_equal(hist_bucket_low((unsigned)v), v);
		assert_int_equal(hist_bucket_high((unsigned)v), v);
	}
	/* Every bucket's bounds map back to it, and buckets tile. */
	for (i = 32; i < HIST_NBUCKETS; i++) {
		assert_int_equal(hist_bucket(hist_bucket_low(i)), i);
		assert_int_equal(hist_bucket(hist_bucket_high(i)), i);
		if (i + 1 < HIST_NBUCKETS)
			assert_int_equal(hist_bucket_high(i) + 1,
			    hist_bucket_low(i + 1));
	}
	assert_int_equal(hist_bucket(UINT64_MAX), HIST_NBUCKETS - 1);
	/* Relative width at most 1/32. */
	for (v = 32; v < (1ULL << 40); v = v * 3 + 1) {
		b = hist_bucket(v);
		assert_true(hist_bucket_low(b) <= v && v <= hist_bucket_high(b));
		assert_true((hist_bucket_high(b) - hist_bucket_low(b)) * 32 <=
		    hist_bucket_low(b));
	}
}

static void
test_percentiles(void **state)
{
	uint64_t	 v;

	hist_init(&h);
	assert_int_equal(hist_percentile(&h, 50), 0);
	assert_true(hist_mean(&h) == 0.0);
	for (v = 1; v <= 100; v++)
		hist_add(&h, v);
	assert_int_equal(h.count, 100);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 100);
	assert_true(hist_mean(&h) == 50.5);
	assert_int_equal(hist_percentile(&h, 0), 1);
	/* 1..31 exact; above, the top of a 1 us or 2 us bucket. */
	assert_int_equal(hist_percentile(&h, 10), 10);
	assert_int_equal(hist_percentile(&h, 31), 31);
	assert_int_equal(hist_percentile(&h, 50), 50);
	assert_int_equal(hist_percentile(&h, 90), 91);
	assert_int_equal(hist_percentile(&h, 99), 99);
	assert_int_equal(hist_percentile(&h, 100), 100);
	assert_int_equal(hist_percentile(&h, 99.9), 100);

	/* One slow outlier in 1000 shows at p99.9 and max only. */
	hist_init(&h);
	for (v = 0; v < 999; v++)
		hist_add(&h, 20);
	hist_add(&h, 1000000);
	assert_int_equal(hist_percentile(&h, 50), 20);
	assert_int_equal(hist_percentile(&h, 99), 20);
	assert_int_equal(hist_percentile(&h, 99.9), 20);
	assert_int_equal(hist_percentile(&h, 99.95), 1000000);
	assert_int_equal(hist_percentile(&h, 100), 1000000);
}

static void
test_merge(void **state)
{
	hist_init(&h);
	hist_init(&h2);
	hist_add(&h, 5);
	hist_add(&h, 7);
	hist_add(&h2, 3);
	hist_add(&h2, 5000);
	hist_merge(&h, &h2);
	assert_int_equal(h.count, 4);
	assert_int_equal(h.min, 3);
	assert_int_equal(h.max, 5000);
	assert_int_equal(h.sum, 5015);
	assert_int_equal(hist_percentile(&h, 25), 3);
	assert_int_equal(hist_percentile(&h, 75), 7);
	hist_init(&h2);
	hist_merge(&h, &h2);	/* merging nothing changes nothing */
	assert_int_equal(h.count, 4);
	assert_int_equal(h.min, 3);
}

/*
 * The .hgrm form: a row per bucket holding values, in milliseconds, with
 * the share and count at or below; the last row without 1/(1-share); a
 * footer with mean, largest value and count.
 */
static void
test_hgrm(void **state)
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*f;
	int	 i;

	hist_init(&h);
	for (i = 0; i < 2; i++)
		hist_add(&h, 10);	/* exact below 32 */
	hist_add(&h, 20);
	hist_add(&h, 1000);		/* in 992-1007: shown as the largest */
	assert_non_null(f = open_memstream(&text, &len));
	assert_int_equal(hist_write_hgrm(&h, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_string_equal(text,
	    "       Value     Percentile TotalCount 1/(1-Percentile)\n\n"
	    "       0.010 0.500000000000          2           2.00\n"
	    "       0.020 0.750000000000          3           4.00\n"
	    "       1.000 0.875000000000          4           8.00\n"
	    "       1.000 1.000000000000          4\n"
	    "#[Mean    =        0.260, StdDeviation   =        0.426]\n"
	    "#[Max     =        1.000, Total count    =            4]\n"
	    "#[Buckets =           59, SubBuckets     =           64]\n");
	free(text);
	/* None: the header and the footer alone. */
	hist_init(&h);
	text = NULL;
	assert_non_null(f = open_memstream(&text, &len));
	assert_int_equal(hist_write_hgrm(&h, f), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(text, "1/(1-Percentile)\n\n#[Mean    =        "
	    "0.000, StdDeviation   =        0.000]\n#[Max     =        0.000, "
	    "Total count    =            0]\n"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_cover_every_value),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_hgrm),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
