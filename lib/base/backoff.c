/* backoff — see backoff.h. */
#include "backoff.h"

#include <stdlib.h>

uint32_t backoff_rand(uint32_t upper_bound)
{
	/* arc4random_uniform(0) is 0 already; no modulo bias. */
	return arc4random_uniform(upper_bound);
}

uint32_t backoff_ceiling_ms(uint32_t base_ms, uint32_t cap_ms, uint32_t retry)
{
	uint32_t doublings = retry ? retry - 1 : 0;
	if (doublings > BACKOFF_DOUBLINGS_MAX)
		return cap_ms;
	uint64_t ceiling = (uint64_t)base_ms << doublings;
	return ceiling < cap_ms ? (uint32_t)ceiling : cap_ms;
}

uint32_t backoff_full_jitter_ms(uint32_t base_ms, uint32_t cap_ms, uint32_t retry,
                                backoff_rand_fn rand)
{
	uint32_t ceiling = backoff_ceiling_ms(base_ms, cap_ms, retry);
	if (ceiling == UINT32_MAX)
		ceiling--; /* the bound below must not wrap to 0 */
	return (rand ? rand : backoff_rand)(ceiling + 1);
}

uint32_t backoff_double_ms(uint32_t ms, uint32_t cap_ms)
{
	return ms > cap_ms / 2 ? cap_ms : ms * 2;
}

uint32_t backoff_around_ms(uint32_t ms, backoff_rand_fn rand)
{
	uint32_t span = ms / BACKOFF_AROUND_DIVISOR;
	if (span == 0)
		return ms;
	uint64_t wait = (uint64_t)ms - span + (rand ? rand : backoff_rand)(2 * span + 1);
	return wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
}
