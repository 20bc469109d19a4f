/* Unit tests for pattern.c: echoload's checking of echoed bytes. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pattern.h"

static unsigned char	*pat, *buf;

static int
setup(void **state)
{
	pat = malloc(PATTERN_LEN + PATTERN_MAX_MSG);
	buf = malloc(PATTERN_MAX_MSG);
	if (pat == NULL || buf == NULL)
		return (-1);
	pattern_init(pat, 42);
	return (0);
}

static int
teardown(void **state)
{
	free(pat);
	free(buf);
	return (0);
}

/* Copy len bytes of the stream from offset off into buf, byte by byte. */
static void
stream_bytes(uint64_t off, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		buf[i] = pat[(off + i) % PATTERN_LEN];
}

static void
test_slices_are_flat(void **state)
{
	const unsigned char	*p;
	size_t			 avail;
	uint64_t		 offs[] = { 0, 1, PATTERN_LEN - 1, PATTERN_LEN,
				    3ULL * PATTERN_LEN + 17, PATTERN_LEN - 5 };
	size_t			 i;

	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		p = pattern_at(pat, offs[i], &avail);
		assert_true(avail >= PATTERN_MAX_MSG);
		stream_bytes(offs[i], PATTERN_MAX_MSG);
		assert_memory_equal(p, buf, PATTERN_MAX_MSG);
	}
}

static void
test_check_accepts_the_stream(void **state)
{
	uint64_t	 off = 5ULL * PATTERN_LEN - 1000;

	stream_bytes(off, 300000);
	assert_int_equal(pattern_check(pat, off, buf, 300000), 300000);
	assert_int_equal(pattern_check(pat, off, buf, 0), 0);
}

static void
test_check_finds_corruption(void **state)
{
	uint64_t	 off = 12345;

	stream_bytes(off, 5000);
	buf[4321] ^= 0x01;
	assert_int_equal(pattern_check(pat, off, buf, 5000), 4321);
	buf[4321] ^= 0x01;
	buf[0] ^= 0x80;
	assert_int_equal(pattern_check(pat, off, buf, 5000), 0);
}

static void
test_check_finds_reordering(void **state)
{
	uint64_t	 off = 777;

	/* The right bytes from the wrong place are wrong. */
	stream_bytes(off + 64, 64);
	assert_true(pattern_check(pat, off, buf, 64) < 64);
	/* Two chunks swapped. */
	stream_bytes(off, 128);
	memcpy(buf + 128, buf, 64);
	memmove(buf, buf + 64, 64);
	memcpy(buf + 64, buf + 128, 64);
	assert_true(pattern_check(pat, off, buf, 128) < 128);
}

static void
test_seeds_differ(void **state)
{
	unsigned char	*other = malloc(PATTERN_LEN + PATTERN_MAX_MSG);

	assert_non_null(other);
	pattern_init(other, 43);
	assert_memory_not_equal(pat, other, 4096);
	free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slices_are_flat),
		cmocka_unit_test(test_check_accepts_the_stream),
		cmocka_unit_test(test_check_finds_corruption),
		cmocka_unit_test(test_check_finds_reordering),
		cmocka_unit_test(test_seeds_differ),
	};

	return (cmocka_run_group_tests(tests, setup, teardown));
}
