/* backoff — how long to wait before trying again, with jitter.
 *
 * Pure: no clock, no I/O, no state of its own.  The caller counts its
 * attempts (or keeps its current delay) and asks for the next wait; the
 * randomness comes from one jitter source, arc4random_uniform (glibc 2.36),
 * which a test may replace with a function of its own to get exact figures.
 *
 * Two shapes, for the two kinds of caller:
 *  - full jitter (for many requests retrying against one server, so their
 *    retries spread out): retry n (1, 2, ...) waits a uniformly random delay
 *    in [0, min(cap, base * 2^(n-1))];
 *  - a delay that doubles up to a cap, each wait within +-20 % of it (for
 *    one connection reconnecting): backoff_double_ms() gives the next delay,
 *    backoff_around_ms() the wait.
 *
 * Ownership: none; every function works on values.
 */
#ifndef RACED_BACKOFF_H
#define RACED_BACKOFF_H

#include <stdint.h>

#define BACKOFF_DOUBLINGS_MAX 31   /* base * 2^31 exceeds any 32-bit cap */
#define BACKOFF_AROUND_DIVISOR 5   /* backoff_around_ms: +-1/5 = +-20 % */

/* A uniformly random number in [0, upper_bound) (0 when upper_bound is 0):
 * arc4random_uniform's contract. */
typedef uint32_t (*backoff_rand_fn)(uint32_t upper_bound);

/* The jitter source a NULL backoff_rand_fn stands for. */
uint32_t backoff_rand(uint32_t upper_bound);

/* min(cap_ms, base_ms * 2^(retry-1)) for retry >= 1; base_ms for retry 0. */
uint32_t backoff_ceiling_ms(uint32_t base_ms, uint32_t cap_ms, uint32_t retry);

/* Full jitter: uniform in [0, backoff_ceiling_ms(base_ms, cap_ms, retry)].
 * rand NULL: backoff_rand. */
uint32_t backoff_full_jitter_ms(uint32_t base_ms, uint32_t cap_ms, uint32_t retry,
                                backoff_rand_fn rand);

/* The delay after ms: twice ms, at most cap_ms. */
uint32_t backoff_double_ms(uint32_t ms, uint32_t cap_ms);

/* Uniform in [ms - ms/5, ms + ms/5]. rand NULL: backoff_rand. */
uint32_t backoff_around_ms(uint32_t ms, backoff_rand_fn rand);

#endif
