/* aimd — a provider's adaptive concurrency limit (max_connections = auto),
 * in the manner of Vector's adaptive request concurrency: additive
 * increase, multiplicative decrease, driven by round-trip times.
 *
 * The limit starts at AIMD_INITIAL (or the ceiling, if lower) and moves at
 * most once per window, a window lasting one baseline round trip (or the
 * last window's RTT, if longer) and at
 * least AIMD_WINDOW_MIN_ANSWERS answers (or until back pressure).  A
 * window's RTT is the mean of its answers' (the first
 * AIMD_WINDOW_SAMPLES): past the provider's capacity only the requests
 * over it wait, a minority until the limit is twice the capacity, which a
 * median would not show (a quiet machine settled at 1.6 x the capacity
 * with it); the mean grows with them (Little's law).  At a window's end:
 *  - any back-pressure answer in it (429, 503, a timeout) cuts the limit to
 *    AIMD_BACKPRESSURE_DECREASE of itself: the provider said so;
 *  - else a window RTT at or above the baseline plus a band (the noise:
 *    AIMD_RTT_DEVIATION_SCALE times the spread between successive windows'
 *    RTTs whose answers were all sent at one limit, and at least
 *    AIMD_RTT_RISE_MIN of the baseline) cuts it to AIMD_RTT_DECREASE of
 *    itself: requests queue at the provider, so more of them only add
 *    latency;
 *  - else, when the limit was used in the window (a request started with
 *    the limit in flight, and the window, a baseline round trip long, saw
 *    at least the limit in answers: the limit in flight all along, not a
 *    burst that touched it once) and the window's RTT is within
 *    AIMD_GROW_RISE_MAX of the baseline or the spread, if more, it grows:
 *    by one, or doubles while in slow start (as TCP's: from the start
 *    until the first cut, so that a provider that takes 128 is not
 *    approached over 126 round trips).  Not used: no evidence that more
 *    would help.  Vector asks for at most the baseline, which noise makes
 *    true only half the time; the spread allows for the baseline sitting
 *    near the lowest windows (it follows falls at once).
 *  - between the two thresholds it holds.
 * After an RTT cut, the first window that closes a round trip (the cut
 * one's RTT) after it tells a queue from a slower machine (the answers
 * before were sent at the old limit, so it holds until then unless back
 * pressure comes): at
 * a provider that queues, the RTT is in proportion to the requests in
 * flight beyond its capacity, so cutting the limit by 10 % takes about
 * 10 % off the RTT (its mean: the median steps with a provider that
 * answers in waves).  If that window is still over the band and fell by
 * less than AIMD_QUEUE_SHARE of that, after AIMD_NOT_QUEUE_CUTS such cuts
 * in a row (one can be the noise), the rise was not the provider's queue (raced's
 * or the provider's CPU, the network): the baseline moves to it at once,
 * and the limit is free to grow again.  Without this a busy machine's delay
 * ratchets the limit down, 0.9 a window, each cut leaving the RTT as high
 * as before.
 * The baseline is an EWMA of the windows' RTTs: AIMD_EWMA_ALPHA when they
 * fall, AIMD_EWMA_ALPHA_RISE when they rise, and a rise only while the limit
 * is no higher than when the baseline last fell, so that it stays at the
 * round trip of the load that had it; one that followed the queue raced
 * itself builds would let the limit ratchet up (each step past the
 * provider's capacity adds 1/capacity to the RTT, less than the band).
 * A window's answers were sent a round trip before they came, at the limit
 * of this window or the last: a fall notes the lower of the two, a rise
 * needs both at or below the noted one.  (Noting the limit the window ran
 * at, the window after slow start doubled 16 to 32 showed 16's RTT as
 * 32's, the baseline followed the queue 32 then built, and the limit
 * settled at 21 against a capacity of 16.)
 * The limit never goes below 1 nor above the ceiling.
 * Only answers that say something about load count: a 2xx, 304 or 4xx
 * answer gives its RTT, a 429, 503 or timeout is back pressure, anything
 * else (a refused connection, a cut body) is ignored.
 *
 * Why two decreases: an explicit signal means the provider is refusing
 * work now, so halve at once; a latency rise over a queue of a few requests
 * needs only a trim (Vector's 0.9), or the limit would saw between half
 * and all of what the provider can take.
 *
 * Pure: the caller passes the time (monotonic seconds).
 * Ownership: the caller owns the struct (embed it); nothing is allocated.
 */
#ifndef RACED_AIMD_H
#define RACED_AIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIMD_INITIAL 2
#define AIMD_EWMA_ALPHA 0.4
#define AIMD_EWMA_ALPHA_RISE 0.05        /* the baseline follows a rise this slowly */
#define AIMD_RTT_DEVIATION_SCALE 2.5
#define AIMD_RTT_RISE_MIN 0.10          /* a rise under 10 % of the baseline is noise */
#define AIMD_GROW_RISE_MAX 0.02         /* grows only while the RTT is within 2 % of the baseline (or the spread) */
#define AIMD_RTT_DECREASE 0.9
#define AIMD_BACKPRESSURE_DECREASE 0.5
#define AIMD_REASON_MAX 96              /* aimd_describe's text */
#define AIMD_WINDOW_MIN_ANSWERS 4       /* a window closes with at least this many RTTs ... */
#define AIMD_WINDOW_SAMPLES 256         /* ... of which the first this many are kept */
#define AIMD_QUEUE_SHARE 0.5            /* a cut that brings back less than this share of a queue's fall: no queue */
#define AIMD_NOT_QUEUE_CUTS 2           /* ... this many times in a row: the baseline moves */

/* What an answer says about load. */
enum aimd_signal {
	AIMD_ANSWER,      /* an answer: its RTT counts */
	AIMD_THROTTLED,   /* 429 */
	AIMD_UNAVAILABLE, /* 503 */
	AIMD_TIMEOUT,     /* the attempt timed out */
	AIMD_IGNORED,     /* says nothing about load */
};

/* Why the limit last changed. */
enum aimd_change { AIMD_STARTED, AIMD_GREW, AIMD_CUT_RTT, AIMD_CUT_BACKPRESSURE };

struct aimd {
	uint32_t limit, ceiling;
	bool have_baseline;
	double mean;                   /* the baseline: EWMA of window RTTs, seconds */
	double spread;                 /* EWMA of |window RTT - the one before| */
	double last;                   /* the last window's RTT */
	uint32_t base_limit;           /* the lowest limit a window's answers were sent at when the baseline last fell */
	bool slow_start;               /* doubling, until the first cut */
	uint32_t ran[2];               /* the limits the last two windows ran at ([0] the last; 0: none) */
	double window_end;             /* when the current window closes */
	double rtt[AIMD_WINDOW_SAMPLES];
	uint32_t rtt_n;                /* answers in the window (may exceed the samples kept) */
	bool reached;                  /* the limit was reached in this window */
	enum aimd_signal pressure;     /* first back pressure in this window, or AIMD_ANSWER */
	enum aimd_change change;       /* the last change ... */
	enum aimd_signal change_signal; /* ... its back pressure, if that */
	double change_rtt, change_baseline; /* ... the window mean and baseline then */
	double changed_at;
	uint64_t increases, decreases;
	uint64_t windows;              /* windows closed, for the caller's log */
	double window_rtt, band;       /* the last closed window's RTT and band (-1: none) */
	double cut_rtt;                /* the mean RTT of the window that made the last RTT cut (0: none pending) */
	uint32_t cut_from;             /* ... and the limit it ran at */
	uint32_t cut_age;              /* windows closed since that cut */
	double cut_at;                 /* when it was made */
	uint32_t not_queue;            /* RTT cuts in a row that did not bring the RTT down */
};

void aimd_init(struct aimd *a, uint32_t ceiling, double now);
/* A reload's new ceiling: the limit is cut to it when above, else kept. */
void aimd_set_ceiling(struct aimd *a, uint32_t ceiling);

static inline uint32_t aimd_limit(const struct aimd *a)
{
	return a->limit;
}

/* A request started; in_flight counts it. */
void aimd_started(struct aimd *a, uint32_t in_flight);

/* An answer (or failure) after rtt_s seconds on the wire. */
void aimd_observe(struct aimd *a, double rtt_s, enum aimd_signal s, double now);

/* Why the limit last changed, for people: "grew: RTT 101 ms near baseline
 * 100 ms", "cut: 429", "cut: RTT 180 ms over baseline 100 ms". */
void aimd_describe(const struct aimd *a, char *buf, size_t n);

#endif
