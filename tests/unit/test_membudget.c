/* membudget as a specification: the charge, its peak, what fits and when
 * a new request may start, with exact figures.  The budget is one a
 * process, so each test leaves it empty and unlimited. */
#include "check.h"
#include "membudget.h"

static void reset(void)
{
	membudget_release(membudget_charged());
	membudget_peak_reset();
	membudget_set_limit(MEMBUDGET_UNLIMITED);
}

static void test_unlimited_until_a_limit_is_set(void)
{
	CHECK(membudget_limit() == MEMBUDGET_UNLIMITED);
	membudget_charge(1u << 30);
	CHECK(membudget_fits(1u << 30));
	CHECK(membudget_admits_start());
	reset();
}

static void test_charge_and_release_add_up_and_stop_at_zero(void)
{
	membudget_charge(1000);
	membudget_charge(24);
	CHECK_EQ(membudget_charged(), 1024);
	membudget_release(1000);
	CHECK_EQ(membudget_charged(), 24);
	membudget_release(100); /* a caller's bug: the charge stops at zero */
	CHECK_EQ(membudget_charged(), 0);
	reset();
}

static void test_peak_is_the_highest_charge_since_its_reset(void)
{
	membudget_charge(300);
	membudget_release(200);
	membudget_charge(50);
	CHECK_EQ(membudget_peak(), 300);
	membudget_peak_reset();
	CHECK_EQ(membudget_peak(), 150);
	reset();
}

static void test_released_total_counts_every_release(void)
{
	uint64_t before = membudget_released_total();
	membudget_charge(70);
	membudget_release(30);
	membudget_release(40);
	CHECK_EQ(membudget_released_total() - before, 70);
	reset();
}

static void test_fits_up_to_the_limit_inclusive(void)
{
	membudget_set_limit(1000);
	membudget_charge(600);
	CHECK(membudget_fits(400));
	CHECK(!membudget_fits(401));
	CHECK(!membudget_fits(SIZE_MAX));
	membudget_charge(500); /* over: nothing more fits, not even 0 */
	CHECK(!membudget_fits(0));
	reset();
}

static void test_new_requests_start_within_half_the_limit(void)
{
	membudget_set_limit(1000);
	membudget_charge(500);
	CHECK(membudget_admits_start());
	membudget_charge(1);
	CHECK(!membudget_admits_start());
	reset();
}

static int gave_back;
static void count_give_back(void)
{
	gave_back++;
}

/* The allocator's own give-back once set (the daemon on mimalloc), and
 * glibc's malloc_trim again once unset: the figures stay as they were. */
static void test_give_back_calls_what_was_set(void)
{
	size_t charged = membudget_charged();
	membudget_give_back(); /* malloc_trim: nothing to see but no crash */
	membudget_set_give_back(count_give_back);
	membudget_give_back();
	membudget_give_back();
	CHECK_EQ(gave_back, 2);
	membudget_set_give_back(NULL);
	membudget_give_back();
	CHECK_EQ(gave_back, 2);
	CHECK_EQ(membudget_charged(), charged);
}

int main(void)
{
	RUN(test_unlimited_until_a_limit_is_set);
	RUN(test_charge_and_release_add_up_and_stop_at_zero);
	RUN(test_peak_is_the_highest_charge_since_its_reset);
	RUN(test_released_total_counts_every_release);
	RUN(test_fits_up_to_the_limit_inclusive);
	RUN(test_new_requests_start_within_half_the_limit);
	RUN(test_give_back_calls_what_was_set);
	return CHECK_DONE();
}
