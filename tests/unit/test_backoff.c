/* backoff as a specification: the delays for given attempts, with the
 * jitter source replaced by ones that always draw the lowest or the
 * highest value, and the real one held to its range. */
#include "backoff.h"
#include "check.h"

static uint32_t draw_lowest(uint32_t upper_bound)
{
	(void)upper_bound;
	return 0;
}

static uint32_t draw_highest(uint32_t upper_bound)
{
	return upper_bound ? upper_bound - 1 : 0;
}

static void test_ceiling_doubles_from_base_per_retry_up_to_the_cap(void)
{
	CHECK_EQ(backoff_ceiling_ms(200, 30000, 1), 200);
	CHECK_EQ(backoff_ceiling_ms(200, 30000, 2), 400);
	CHECK_EQ(backoff_ceiling_ms(200, 30000, 3), 800);
	CHECK_EQ(backoff_ceiling_ms(200, 30000, 8), 25600);
	CHECK_EQ(backoff_ceiling_ms(200, 30000, 9), 30000);
	CHECK_EQ(backoff_ceiling_ms(200, 30000, 40), 30000);
	CHECK_EQ(backoff_ceiling_ms(200, 30000, UINT32_MAX), 30000);
	CHECK_EQ(backoff_ceiling_ms(200, 30000, 0), 200);
}

static void test_full_jitter_spans_zero_to_the_ceiling_inclusive(void)
{
	CHECK_EQ(backoff_full_jitter_ms(200, 30000, 1, draw_lowest), 0);
	CHECK_EQ(backoff_full_jitter_ms(200, 30000, 1, draw_highest), 200);
	CHECK_EQ(backoff_full_jitter_ms(200, 30000, 3, draw_highest), 800);
	CHECK_EQ(backoff_full_jitter_ms(200, 30000, 12, draw_highest), 30000);
	CHECK_EQ(backoff_full_jitter_ms(0, 0, 5, draw_highest), 0);
	CHECK_EQ(backoff_full_jitter_ms(UINT32_MAX, UINT32_MAX, 1, draw_highest), UINT32_MAX - 1);
}

static void test_full_jitter_from_the_real_source_stays_in_range_and_varies(void)
{
	uint32_t lo = UINT32_MAX, hi = 0;
	for (int i = 0; i < 2000; i++) {
		uint32_t d = backoff_full_jitter_ms(200, 30000, 3, NULL);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	CHECK(hi <= 800);
	CHECK(lo < 100);  /* 2000 draws from 801 values: all > 100 has p < 1e-100 */
	CHECK(hi > 700);
}

static void test_doubling_stops_at_the_cap(void)
{
	CHECK_EQ(backoff_double_ms(100, 5000), 200);
	CHECK_EQ(backoff_double_ms(2000, 5000), 4000);
	CHECK_EQ(backoff_double_ms(2500, 5000), 5000);
	CHECK_EQ(backoff_double_ms(4000, 5000), 5000);
	CHECK_EQ(backoff_double_ms(5000, 5000), 5000);
	CHECK_EQ(backoff_double_ms(3, 5), 5);
	CHECK_EQ(backoff_double_ms(UINT32_MAX, UINT32_MAX), UINT32_MAX);
}

static void test_around_is_within_a_fifth_either_side(void)
{
	CHECK_EQ(backoff_around_ms(100, draw_lowest), 80);
	CHECK_EQ(backoff_around_ms(100, draw_highest), 120);
	CHECK_EQ(backoff_around_ms(5000, draw_lowest), 4000);
	CHECK_EQ(backoff_around_ms(5000, draw_highest), 6000);
	CHECK_EQ(backoff_around_ms(4, draw_highest), 4);     /* no fifth to spread */
	CHECK_EQ(backoff_around_ms(0, draw_highest), 0);
	CHECK_EQ(backoff_around_ms(UINT32_MAX, draw_highest), UINT32_MAX);
	for (int i = 0; i < 1000; i++) {
		uint32_t d = backoff_around_ms(1000, NULL);
		CHECK(d >= 800 && d <= 1200);
	}
}

int main(void)
{
	RUN(test_ceiling_doubles_from_base_per_retry_up_to_the_cap);
	RUN(test_full_jitter_spans_zero_to_the_ceiling_inclusive);
	RUN(test_full_jitter_from_the_real_source_stays_in_range_and_varies);
	RUN(test_doubling_stops_at_the_cap);
	RUN(test_around_is_within_a_fifth_either_side);
	return CHECK_DONE();
}
