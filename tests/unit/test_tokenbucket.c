/* tokenbucket as a specification: a driven clock, exact waits. */
#include "check.h"
#include "tokenbucket.h"

static void test_bucket_starts_full_and_the_next_token_waits_one_interval(void)
{
	struct tokenbucket b;
	tokenbucket_init(&b, 4.0, 1.0, 100.0);
	CHECK_EQ(tokenbucket_wait_us(&b, 100.0), 0);
	CHECK(tokenbucket_take(&b, 100.0));
	CHECK(!tokenbucket_take(&b, 100.0));
	CHECK_EQ(tokenbucket_wait_us(&b, 100.0), 250000);
	CHECK_EQ(tokenbucket_wait_us(&b, 100.125), 125000);
	CHECK(!tokenbucket_take(&b, 100.125));
	CHECK(tokenbucket_take(&b, 100.25));
}

static void test_idle_time_never_saves_more_than_burst_tokens(void)
{
	struct tokenbucket b;
	tokenbucket_init(&b, 4.0, 1.0, 0.0);
	CHECK(tokenbucket_take(&b, 0.0));
	CHECK(tokenbucket_take(&b, 60.0));   /* a minute idle: one token, not 240 */
	CHECK(!tokenbucket_take(&b, 60.0));
	CHECK_EQ(tokenbucket_wait_us(&b, 60.0), 250000);

	tokenbucket_init(&b, 4.0, 3.0, 0.0);
	CHECK(tokenbucket_take(&b, 0.0));
	CHECK(tokenbucket_take(&b, 0.0));
	CHECK(tokenbucket_take(&b, 0.0));
	CHECK(!tokenbucket_take(&b, 0.0));
}

static void test_starts_are_evenly_spaced_at_the_rate(void)
{
	struct tokenbucket b;
	double now = 5.0;
	int taken = 0;
	tokenbucket_init(&b, 4.0, 1.0, now);
	/* Take whenever allowed, advancing by the wait: 41 starts in 10 s. */
	while (now <= 15.0) {
		if (tokenbucket_take(&b, now)) {
			taken++;
			continue;
		}
		now += (double)tokenbucket_wait_us(&b, now) / 1e6;
	}
	CHECK_EQ(taken, 41);
	CHECK(now > 15.0 && now <= 15.25);
}

static void test_a_wait_rounded_to_microseconds_is_always_enough(void)
{
	struct tokenbucket b;
	tokenbucket_init(&b, 3.0, 1.0, 0.0);
	CHECK(tokenbucket_take(&b, 0.0));
	uint64_t us = tokenbucket_wait_us(&b, 0.0);
	CHECK_EQ(us, 333334);
	CHECK(tokenbucket_take(&b, (double)us / 1e6));
}

static void test_rate_zero_is_unlimited(void)
{
	struct tokenbucket b;
	tokenbucket_init(&b, 0.0, 1.0, 0.0);
	for (int i = 0; i < 1000; i++)
		CHECK(tokenbucket_take(&b, 0.0));
	CHECK_EQ(tokenbucket_wait_us(&b, 0.0), 0);
}

static void test_a_new_rate_keeps_what_was_gathered_and_spaces_at_the_new_one(void)
{
	struct tokenbucket b;
	tokenbucket_init(&b, 1.0, 1.0, 0.0);
	CHECK(tokenbucket_take(&b, 0.0));
	tokenbucket_set_rate(&b, 4.0, 0.5);       /* half a token gathered at 1/s */
	CHECK_EQ(tokenbucket_wait_us(&b, 0.5), 125000); /* the other half at 4/s */
	CHECK(tokenbucket_take(&b, 0.625));
	CHECK_EQ(tokenbucket_wait_us(&b, 0.625), 250000);
	tokenbucket_set_rate(&b, 0.0, 0.625);     /* unlimited */
	CHECK(tokenbucket_take(&b, 0.625));
	CHECK(tokenbucket_take(&b, 0.625));
	tokenbucket_set_rate(&b, 2.0, 1.0);       /* from unlimited: full, as a new bucket */
	CHECK(tokenbucket_take(&b, 1.0));
	CHECK_EQ(tokenbucket_wait_us(&b, 1.0), 500000);
}

int main(void)
{
	RUN(test_bucket_starts_full_and_the_next_token_waits_one_interval);
	RUN(test_idle_time_never_saves_more_than_burst_tokens);
	RUN(test_starts_are_evenly_spaced_at_the_rate);
	RUN(test_a_wait_rounded_to_microseconds_is_always_enough);
	RUN(test_rate_zero_is_unlimited);
	RUN(test_a_new_rate_keeps_what_was_gathered_and_spaces_at_the_new_one);
	return CHECK_DONE();
}
