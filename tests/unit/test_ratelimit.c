/* Unit tests for ratelimit.c: token buckets that never round a refill away. */
#include "config.h"

#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"

/* A full bucket gives burst tokens, then one per 1000/rate ms. */
static void
test_bucket_basic(void **state)
{
	struct bucket	 b;
	int		 i;

	bucket_fill(&b, 5, 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(bucket_take(&b, 10, 5, 0), 1);
	assert_int_equal(bucket_take(&b, 10, 5, 0), 0);
	assert_int_equal(bucket_take(&b, 10, 5, 99), 0);	/* 0.99 */
	assert_int_equal(bucket_take(&b, 10, 5, 100), 1);	/* 1.00 */
	assert_int_equal(bucket_take(&b, 10, 5, 100), 0);
	/* Never more than burst, however long it rested. */
	for (i = 0; i < 5; i++)
		assert_int_equal(bucket_take(&b, 10, 5, 1000000), 1);
	assert_int_equal(bucket_take(&b, 10, 5, 1000000), 0);
}

/*
 * With a large burst, small refills must still count: 0.5 token a
 * millisecond at about 9 million tokens is below a float's resolution
 * there, and the float buckets echod had lost every one of them.
 */
static void
test_bucket_large_burst_keeps_fractions(void **state)
{
	struct bucket	 b;
	uint64_t	 burst = 9000000, rate = 500;
	uint32_t	 t;
	int		 i;

	bucket_fill(&b, burst, 0);
	for (i = 0; i < 1000; i++)
		assert_int_equal(bucket_take(&b, rate, burst, 0), 1);
	/* 2,000 ms, one datagram each: +1,000 tokens, -2,000. */
	for (t = 1; t <= 2000; t++)
		assert_int_equal(bucket_take(&b, rate, burst, t), 1);
	assert_int_equal(b.milli, (burst - 1000 + 1000 - 2000) * BUCKET_UNIT);
}

/* The clock wraps after 49 days; elapsed time is still right. */
static void
test_bucket_clock_wraps(void **state)
{
	struct bucket	 b;

	bucket_fill(&b, 1, UINT32_MAX - 5);
	assert_int_equal(bucket_take(&b, 100, 1, UINT32_MAX - 5), 1);
	assert_int_equal(bucket_take(&b, 100, 1, UINT32_MAX), 0); /* 0.5 */
	assert_int_equal(bucket_take(&b, 100, 1, 4), 1);	/* +5 ms: 1.0 */
}

/* A table gives each source its own bucket. */
static void
test_table_per_source(void **state)
{
	struct ratelimit	 t;
	struct sockaddr_in	 a, b;
	int			 i;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(0x7f000001);
	b = a;
	b.sin_addr.s_addr = htonl(0x7f000002);
	ratelimit_init(&t);
	t.seed = 1;	/* these three buckets in three slots, every run */
	for (i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(&t, 0, 1, 3,
		    (struct sockaddr *)&a, 0), 1);
	assert_int_equal(ratelimit_take(&t, 0, 1, 3, (struct sockaddr *)&a, 0),
	    0);
	assert_int_equal(ratelimit_take(&t, 0, 1, 3, (struct sockaddr *)&b, 0),
	    1);
	/* Another listener group: the same source has a bucket of its own. */
	assert_int_equal(ratelimit_take(&t, 5, 1, 3, (struct sockaddr *)&a, 0),
	    1);
	assert_int_equal(ratelimit_take(&t, 0, 1, 3, (struct sockaddr *)&a, 0),
	    0);
	assert_int_equal(ratelimit_take(&t, 0, 1, 3, (struct sockaddr *)&a,
	    1000), 1);
	ratelimit_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_basic),
		cmocka_unit_test(test_bucket_large_burst_keeps_fractions),
		cmocka_unit_test(test_bucket_clock_wraps),
		cmocka_unit_test(test_table_per_source),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
