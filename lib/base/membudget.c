/* membudget — see membudget.h. */
#include "membudget.h"

#include <malloc.h>

static struct {
	size_t limit, charged, peak;
	uint64_t released;
} budget = {.limit = MEMBUDGET_UNLIMITED};

void membudget_set_limit(size_t limit)
{
	budget.limit = limit;
}

size_t membudget_limit(void)
{
	return budget.limit;
}

void membudget_charge(size_t n)
{
	budget.charged = n > SIZE_MAX - budget.charged ? SIZE_MAX : budget.charged + n;
	if (budget.charged > budget.peak)
		budget.peak = budget.charged;
}

void membudget_release(size_t n)
{
	budget.charged -= n < budget.charged ? n : budget.charged;
	budget.released += n;
}

size_t membudget_charged(void)
{
	return budget.charged;
}

size_t membudget_peak(void)
{
	return budget.peak;
}

void membudget_peak_reset(void)
{
	budget.peak = budget.charged;
}

uint64_t membudget_released_total(void)
{
	return budget.released;
}

bool membudget_fits(size_t n)
{
	return n <= budget.limit && budget.charged <= budget.limit - n;
}

bool membudget_admits_start(void)
{
	return budget.charged <= budget.limit / 2;
}

static void (*give_back_fn)(void);

void membudget_set_give_back(void (*fn)(void))
{
	give_back_fn = fn;
}

void membudget_give_back(void)
{
	if (give_back_fn)
		give_back_fn();
	else
		malloc_trim(0);
}
