/* tokenbucket — see tokenbucket.h. */
#include "tokenbucket.h"

#include <math.h>

void tokenbucket_init(struct tokenbucket *b, double rate, double burst, double now)
{
	*b = (struct tokenbucket){.rate = rate, .burst = burst, .tokens = burst, .at = now};
}

static void refill(struct tokenbucket *b, double now)
{
	b->tokens += (now - b->at) * b->rate;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->at = now;
}

bool tokenbucket_take(struct tokenbucket *b, double now)
{
	if (b->rate <= 0)
		return true;
	refill(b, now);
	if (b->tokens < 1.0 - TOKENBUCKET_EPSILON)
		return false;
	b->tokens -= 1.0;
	return true;
}

uint64_t tokenbucket_wait_us(struct tokenbucket *b, double now)
{
	if (b->rate <= 0)
		return 0;
	refill(b, now);
	if (b->tokens >= 1.0 - TOKENBUCKET_EPSILON)
		return 0;
	return (uint64_t)ceil((1.0 - b->tokens) / b->rate * 1e6);
}

void tokenbucket_set_rate(struct tokenbucket *b, double rate, double now)
{
	if (b->rate <= 0) {
		tokenbucket_init(b, rate, b->burst, now);
		return;
	}
	refill(b, now);
	b->rate = rate;
}
