/* tokenbucket — a rate limit as a token bucket.
 *
 * Pure: the caller passes the time (monotonic seconds) to every call, so a
 * test drives the clock.  The bucket holds at most `burst` tokens, refills
 * at `rate` tokens a second and starts full; taking a token admits one
 * event.  With burst 1, events are at most 1/rate apart, evenly spaced,
 * never in bursts.  A rate of 0 means no limit: every take succeeds.
 *
 * A token counts as there when the bucket holds at least
 * 1 - TOKENBUCKET_EPSILON, so that the wait tokenbucket_wait_us() returns,
 * rounded to whole microseconds, is always enough.
 *
 * Ownership: the caller owns the struct (embed it); nothing is allocated.
 */
#ifndef RACED_TOKENBUCKET_H
#define RACED_TOKENBUCKET_H

#include <stdbool.h>
#include <stdint.h>

#define TOKENBUCKET_EPSILON 1e-6

struct tokenbucket {
	double rate;    /* tokens a second; 0 = unlimited */
	double burst;   /* depth */
	double tokens;
	double at;      /* when tokens was last brought up to date */
};

void tokenbucket_init(struct tokenbucket *b, double rate, double burst, double now);

/* Take a token if one is there at `now`: true if taken. */
bool tokenbucket_take(struct tokenbucket *b, double now);

/* A new rate from `now` on: what the bucket gathered at the old rate until
 * now stays; from an unlimited (0) rate it starts full, as a new one. */
void tokenbucket_set_rate(struct tokenbucket *b, double rate, double now);

/* Microseconds from `now` until a token is there (0: one is). */
uint64_t tokenbucket_wait_us(struct tokenbucket *b, double now);

#endif
