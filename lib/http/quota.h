/* quota — a provider's published request quota, read from its response
 * headers, and the admission rule that keeps raced inside it.
 *
 * Providers announce what is left of a quota window in one of three forms:
 *  - the IETF RateLimit fields, draft 6 and earlier: RateLimit-Remaining and
 *    RateLimit-Reset (delta seconds);
 *  - the combined field of later drafts: RateLimit: limit=100, remaining=50,
 *    reset=30 (or the structured form "name";r=50;t=30);
 *  - the common X-RateLimit-Remaining / X-RateLimit-Reset (GitHub, Twitter
 *    and others), whose reset is delta seconds or, when it is at least
 *    QUOTA_EPOCH_MIN, a Unix time.
 * The first form found, in that order, is taken.
 *
 * The rule: a reading gives the requests raced may still start before the
 * reset (its budget): remaining, less QUOTA_RESERVE, less the other
 * requests that were on the wire when the answer came (the provider may not
 * have counted them yet).  Every start spends one.  While the budget is
 * spent, new requests wait until the reset, instead of collecting 429s; at
 * the reset the reading is forgotten and the next answer brings a new one.
 * Readings of one window (resets within QUOTA_SAME_WINDOW_S) only ever
 * lower the budget, since answers arrive out of order; a reading whose
 * reset is earlier than that is stale and ignored; a later one opens a new
 * window.  A remaining without a reset holds for QUOTA_UNKNOWN_RESET_S;
 * a reset further off than QUOTA_RESET_MAX_S is taken as that.
 *
 * Retry-After is clamped here too (quota_retry_delay_ms): "0" would retry
 * at once and a day would stall the import, so it is kept inside the
 * backoff range the caller gives.
 *
 * Pure: the caller passes the time (monotonic seconds, and the wall clock
 * for epoch resets) and reads the headers for it (quota_read's callback).
 * Ownership: the caller owns the struct (embed it); nothing is allocated.
 */
#ifndef RACED_QUOTA_H
#define RACED_QUOTA_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define QUOTA_RESERVE 1              /* requests of a window left unused */
#define QUOTA_EPOCH_MIN 1000000000LL /* a reset this large is a Unix time (2001 on) */
#define QUOTA_RESET_MAX_S 300.0      /* a farther reset is believed up to this */
#define QUOTA_UNKNOWN_RESET_S 1.0    /* a remaining without a reset holds this long */
#define QUOTA_SAME_WINDOW_S 1.5      /* resets this close are one window (whole seconds, rounded) */
#define QUOTA_VALUE_MAX 64           /* longer header values are not read */

/* One response's reading. */
struct quota_reading {
	int64_t remaining;  /* requests left in the window */
	double reset_s;     /* seconds from now until the window resets; < 0: not given */
};

/* The value of response header `name` (last one if repeated), or NULL;
 * need only stay valid until the next call. */
typedef const char *(*quota_header_fn)(void *ctx, const char *name);

/* The names quota_read asks for, in its order. */
extern const char *const quota_header_names[];

/* Reads a response's quota headers: true with *out filled when one of the
 * forms gives a remaining; false when none does (or it is unreadable). */
bool quota_read(quota_header_fn get, void *ctx, time_t wall_now, struct quota_reading *out);

struct quota {
	bool known;         /* a reading is in force */
	int64_t budget;     /* starts left before reset_at */
	double reset_at;    /* monotonic seconds */
	int64_t remaining;  /* as last read (for stats) */
	uint64_t holds;     /* times admission began waiting for a reset */
	bool holding;
};

void quota_init(struct quota *q);

/* An answer's reading, with `others` requests still on the wire. */
void quota_observe(struct quota *q, const struct quota_reading *r, uint32_t others, double now);

/* A request started (spends one of the budget). */
void quota_started(struct quota *q);

/* Whether a request may start at `now`; when not, *until is the reset
 * (monotonic seconds). */
bool quota_may_start(struct quota *q, double now, double *until);

/* The delay before a retry: `backoff_ms` (the jittered backoff), or the
 * response's Retry-After (retry_after_ms >= 0) clamped to [lo_ms, hi_ms]
 * when that is longer. */
uint64_t quota_retry_delay_ms(int64_t retry_after_ms, uint64_t backoff_ms, uint64_t lo_ms,
                              uint64_t hi_ms);

#endif
