/* quota as a specification: headers read in every form, a driven clock,
 * exact budgets. */
#include "check.h"
#include "quota.h"

#include <strings.h>

/* Headers as name/value pairs, NULL-terminated. */
static const char *lookup(void *ctx, const char *name)
{
	const char *const *h = ctx;
	for (; h[0]; h += 2)
		if (strcasecmp(h[0], name) == 0)
			return h[1];
	return NULL;
}

static bool read_of(const char *const *h, struct quota_reading *r)
{
	return quota_read(lookup, (void *)h, 1700000000, r);
}

static void test_ietf_fields_give_remaining_and_delta_reset(void)
{
	const char *h[] = {"RateLimit-Remaining", "7", "RateLimit-Reset", " 12 ", NULL};
	struct quota_reading r;
	CHECK(read_of(h, &r));
	CHECK_EQ(r.remaining, 7);
	CHECK_EQ(r.reset_s, 12);
}

static void test_combined_field_in_both_draft_forms(void)
{
	const char *h1[] = {"RateLimit", "limit=100, remaining=50, reset=30", NULL};
	const char *h2[] = {"RateLimit", "\"default\";r=0;t=4", NULL};
	struct quota_reading r;
	CHECK(read_of(h1, &r));
	CHECK_EQ(r.remaining, 50);
	CHECK_EQ(r.reset_s, 30);
	CHECK(read_of(h2, &r));
	CHECK_EQ(r.remaining, 0);
	CHECK_EQ(r.reset_s, 4);
}

static void test_x_ratelimit_reset_as_delta_or_epoch(void)
{
	const char *delta[] = {"X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "60", NULL};
	const char *epoch[] = {"X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "1700000045", NULL};
	const char *past[] = {"X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "1600000000", NULL};
	struct quota_reading r;
	CHECK(read_of(delta, &r));
	CHECK_EQ(r.reset_s, 60);
	CHECK(read_of(epoch, &r));
	CHECK_EQ(r.reset_s, 45);
	CHECK(read_of(past, &r));
	CHECK_EQ(r.reset_s, 0);
}

static void test_ietf_wins_and_garbage_is_no_reading(void)
{
	const char *both[] = {"X-RateLimit-Remaining", "90", "RateLimit-Remaining", "5", NULL};
	const char *bad[] = {"RateLimit-Remaining", "-1", "X-RateLimit-Remaining", "lots",
	                     "RateLimit", "limit=5", NULL};
	const char *noreset[] = {"RateLimit-Remaining", "5", "RateLimit-Reset", "soon", NULL};
	const char *none[] = {NULL};
	struct quota_reading r;
	CHECK(read_of(both, &r));
	CHECK_EQ(r.remaining, 5);
	CHECK(!read_of(bad, &r));
	CHECK(!read_of(none, &r));
	CHECK(read_of(noreset, &r));
	CHECK(r.reset_s < 0);
}

static void test_spent_budget_holds_until_the_reset(void)
{
	struct quota q;
	double until = 0;
	quota_init(&q);
	CHECK(quota_may_start(&q, 10.0, &until)); /* nothing known: go */
	/* 4 left, 1 kept in reserve, 1 other request still on the wire: 2 more. */
	quota_observe(&q, &(struct quota_reading){.remaining = 4, .reset_s = 3}, 1, 10.0);
	CHECK(quota_may_start(&q, 10.0, &until));
	quota_started(&q);
	CHECK(quota_may_start(&q, 10.1, &until));
	quota_started(&q);
	CHECK(!quota_may_start(&q, 10.2, &until));
	CHECK_EQ(until * 10, 130);
	CHECK_EQ(q.holds, 1);
	CHECK(!quota_may_start(&q, 12.9, &until));
	CHECK_EQ(q.holds, 1); /* one hold, however often asked */
	CHECK(quota_may_start(&q, 13.0, &until)); /* the window is over */
	CHECK(!q.known);
}

static void test_readings_of_one_window_only_lower_the_budget(void)
{
	struct quota q;
	quota_init(&q);
	quota_observe(&q, &(struct quota_reading){.remaining = 5, .reset_s = 10}, 0, 0.0);
	CHECK_EQ(q.budget, 4);
	/* an older answer, arriving late, with more left: not believed */
	quota_observe(&q, &(struct quota_reading){.remaining = 9, .reset_s = 10}, 0, 0.5);
	CHECK_EQ(q.budget, 4);
	quota_observe(&q, &(struct quota_reading){.remaining = 2, .reset_s = 9}, 0, 0.6);
	CHECK_EQ(q.budget, 1);
	/* stale: from a window over long ago */
	quota_observe(&q, &(struct quota_reading){.remaining = 50, .reset_s = 1}, 0, 0.7);
	CHECK_EQ(q.budget, 1);
	/* a later window */
	quota_observe(&q, &(struct quota_reading){.remaining = 50, .reset_s = 30}, 0, 0.8);
	CHECK_EQ(q.budget, 49);
}

static void test_missing_and_absurd_resets_are_bounded(void)
{
	struct quota q;
	double until = 0;
	quota_init(&q);
	quota_observe(&q, &(struct quota_reading){.remaining = 0, .reset_s = -1}, 0, 100.0);
	CHECK(!quota_may_start(&q, 100.0, &until));
	CHECK_EQ(until, 100.0 + QUOTA_UNKNOWN_RESET_S);
	quota_init(&q);
	quota_observe(&q, &(struct quota_reading){.remaining = 0, .reset_s = 86400}, 0, 100.0);
	CHECK(!quota_may_start(&q, 100.0, &until));
	CHECK_EQ(until, 100.0 + QUOTA_RESET_MAX_S);
}

static void test_retry_after_is_clamped_to_the_backoff_range(void)
{
	CHECK_EQ(quota_retry_delay_ms(-1, 37, 200, 300000), 37);      /* none: the backoff */
	CHECK_EQ(quota_retry_delay_ms(0, 37, 200, 300000), 200);      /* 0: at least the base */
	CHECK_EQ(quota_retry_delay_ms(0, 900, 200, 300000), 900);     /* never shorter than the backoff */
	CHECK_EQ(quota_retry_delay_ms(5000, 37, 200, 300000), 5000);
	CHECK_EQ(quota_retry_delay_ms(86400000, 37, 200, 300000), 300000);
}

int main(void)
{
	RUN(test_ietf_fields_give_remaining_and_delta_reset);
	RUN(test_combined_field_in_both_draft_forms);
	RUN(test_x_ratelimit_reset_as_delta_or_epoch);
	RUN(test_ietf_wins_and_garbage_is_no_reading);
	RUN(test_spent_budget_holds_until_the_reset);
	RUN(test_readings_of_one_window_only_lower_the_budget);
	RUN(test_missing_and_absurd_resets_are_bounded);
	RUN(test_retry_after_is_clamped_to_the_backoff_range);
	return CHECK_DONE();
}
