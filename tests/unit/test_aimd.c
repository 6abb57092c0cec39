/* aimd as a specification: synthetic RTT sequences on a driven clock. */
#include "aimd.h"
#include "check.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* A provider that serves `capacity` requests at once in `rtt` seconds and
 * queues the rest (Little's law: a window's RTT is rtt * max(1, n /
 * capacity)), driven saturated for `windows` round trips.  Returns the
 * limit at the end; *min and *max are the limits seen in the second half. */
/* Noise on each answer's RTT: uniform in [-noise, +noise] of it, from a
 * fixed LCG so that runs are alike. */
static double noise;
/* A delay on every answer that is not the provider's queue (raced's or the
 * provider's loop late on a busy CPU): it does not follow the limit. */
static double extra;
static uint64_t lcg = 42;

static double jitter(double r)
{
	lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
	double u = (double)(lcg >> 11) / 9007199254740992.0; /* [0, 1) */
	return r * (1 + noise * (2 * u - 1));
}

static uint32_t drive(struct aimd *a, double *now, double rtt, uint32_t capacity, int windows,
                      uint32_t *min, uint32_t *max)
{
	*min = UINT32_MAX;
	*max = 0;
	for (int w = 0; w < windows; w++) {
		uint32_t n = aimd_limit(a);
		double r = (n > capacity ? rtt * (double)n / (double)capacity : rtt) + extra;
		/* n answers spread over the round trip, each slot refilled at
		 * once (the caller has more work than the limit) */
		for (uint32_t i = 0; i < n; i++) {
			aimd_observe(a, jitter(r), AIMD_ANSWER, *now + r * (i + 1) / n);
			aimd_started(a, aimd_limit(a));
		}
		*now += r;
		if (w >= windows / 2) {
			if (aimd_limit(a) < *min)
				*min = aimd_limit(a);
			if (aimd_limit(a) > *max)
				*max = aimd_limit(a);
		}
	}
	return aimd_limit(a);
}

static void test_starts_low_and_never_leaves_one_to_ceiling(void)
{
	struct aimd a;
	aimd_init(&a, 128, 0);
	CHECK_EQ(aimd_limit(&a), AIMD_INITIAL);
	aimd_init(&a, 1, 0);
	CHECK_EQ(aimd_limit(&a), 1);
	for (int i = 0; i < 20; i++)
		aimd_observe(&a, 0.1, AIMD_THROTTLED, i);
	CHECK_EQ(aimd_limit(&a), 1);
}

static void test_steady_rtt_doubles_to_the_ceiling_then_adds_one_after_a_cut(void)
{
	struct aimd a;
	double now = 0;
	uint32_t lo, hi;
	aimd_init(&a, 32, now);
	/* slow start: 2, 4, 8, 16, 32 (two round trips a window while the
	 * limit is under AIMD_WINDOW_MIN_ANSWERS) */
	CHECK_EQ(drive(&a, &now, 0.05, UINT32_MAX, 10, &lo, &hi), 32);
	CHECK_EQ(a.decreases, 0);

	aimd_init(&a, 1000, now);
	drive(&a, &now, 0.05, UINT32_MAX, 8, &lo, &hi);
	uint32_t before = aimd_limit(&a);
	aimd_observe(&a, 0.05, AIMD_THROTTLED, now);
	aimd_observe(&a, 0.05, AIMD_THROTTLED, now + 1);
	CHECK_EQ(aimd_limit(&a), before / 2);
	CHECK(!a.slow_start);
	now += 1;
	/* then one a window */
	CHECK_EQ(drive(&a, &now, 0.05, UINT32_MAX, 10, &lo, &hi), before / 2 + 10);
}

static void test_queueing_provider_settles_near_its_capacity(void)
{
	uint32_t caps[] = {8, 16, 32, 128};
	for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
		struct aimd a;
		double now = 0;
		uint32_t lo, hi;
		aimd_init(&a, 256, now);
		drive(&a, &now, 0.1, caps[i], (int)caps[i] * 6, &lo, &hi);
		fprintf(stderr, "capacity %u: limit %u..%u\n", caps[i], lo, hi);
		/* within 20 % of the capacity all through the second half (and
		 * one request: with 8, one more is 12.5 % more) */
		CHECK(lo * 10 >= caps[i] * 8 - 10);
		CHECK(hi * 10 <= caps[i] * 12 + 10);
	}
}

static void test_noisy_rtts_still_settle_near_capacity_and_climb_without_one(void)
{
	/* (128 under this noise dips to half now and then: left to the
	 * benchmark, which measures the rate it costs) */
	uint32_t caps[] = {16, 32};
	noise = 0.10;
	for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
		struct aimd a;
		double now = 0;
		uint32_t lo, hi;
		aimd_init(&a, 256, now);
		drive(&a, &now, 0.1, caps[i], (int)caps[i] * 8, &lo, &hi);
		fprintf(stderr, "capacity %u, 10 %% noise: limit %u..%u\n", caps[i], lo, hi);
		/* within 30 % all through the second half */
		CHECK(lo * 10 >= caps[i] * 7);
		CHECK(hi * 10 <= caps[i] * 13);
	}
	struct aimd a;
	double now = 0;
	uint32_t lo, hi;
	aimd_init(&a, 64, now);
	drive(&a, &now, 0.1, UINT32_MAX, 400, &lo, &hi);
	/* noise cuts it now and then (x0.9): it stays within 20 % of the
	 * ceiling (the integration test climbs to it on real round trips) */
	CHECK(hi * 10 >= 64 * 8);
	noise = 0;
}

static void test_a_delay_that_does_not_follow_the_limit_moves_the_baseline(void)
{
	uint32_t caps[] = {32, 128};
	for (size_t i = 0; i < sizeof caps / sizeof *caps; i++) {
		struct aimd a;
		double now = 0;
		uint32_t lo, hi;
		aimd_init(&a, 256, now);
		drive(&a, &now, 0.2, caps[i], 100, &lo, &hi);
		/* the machine gets busy: 30 % more on every round trip, which
		 * cutting the limit does not take away (the old controller cut
		 * 0.9 a window, down to a fraction of the capacity) */
		extra = 0.06;
		drive(&a, &now, 0.2, caps[i], (int)caps[i] * 4, &lo, &hi);
		fprintf(stderr, "capacity %u, 60 ms not the provider's: limit %u..%u, %llu cuts\n", caps[i], lo, hi,
		        (unsigned long long)a.decreases);
		CHECK(lo * 10 >= caps[i] * 8);
		CHECK(hi * 10 <= caps[i] * 12 + 10);
		extra = 0;
	}
}

/* A closed loop, as raced runs it: a provider with `capacity` places, each
 * holding a request `hold` seconds, and a FIFO queue for the rest; the
 * caller keeps the limit in flight, and a request's answer comes a round
 * trip after it was sent, so a window sees the limit of the window before
 * (drive above applies a new limit at once).  Load noise: every answer
 * late by an exponential delay of mean `late` (raced's and the provider's
 * loops on a busy CPU), and one in ten by a stall of 20 ms and more.
 * Samples the limit every 0.4 s for 120 s, as import-adaptive does;
 * returns when it first held within `lo`..`hi` for 6 samples in a row (-1:
 * never), and *in_band the share of the samples after 60 s within them. */
#define LOOP_MAX 64
static double loop_exp(double mean)
{
	lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
	double u = ((double)(lcg >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
	return -mean * log(u);
}

static double drive_loop(uint32_t capacity, double hold, double late, double stalls, uint32_t lo, uint32_t hi,
                         double *in_band)
{
	struct aimd a;
	double place[LOOP_MAX] = {0}, sent[LOOP_MAX], answer[LOOP_MAX];
	uint32_t n = 0, samples = 0, within = 0, run = 0;
	double t = 0, next_sample = 1, settled = -1;
	aimd_init(&a, 128, t);
	for (;;) {
		while (n < aimd_limit(&a) && n < LOOP_MAX) { /* fill to the limit */
			uint32_t k = 0;
			for (uint32_t i = 1; i < capacity; i++)
				if (place[i] < place[k])
					k = i;
			place[k] = (t > place[k] ? t : place[k]) + hold; /* the first free place, FIFO */
			double d = loop_exp(late);
			if (loop_exp(1) < stalls)
				d += 0.02 + loop_exp(0.03);
			sent[n] = t;
			answer[n] = place[k] + d;
			n++;
			aimd_started(&a, n);
		}
		uint32_t k = 0; /* the next answer */
		for (uint32_t i = 1; i < n; i++)
			if (answer[i] < answer[k])
				k = i;
		t = answer[k];
		if (t >= 120)
			break;
		double rtt = t - sent[k];
		n--;
		sent[k] = sent[n];
		answer[k] = answer[n];
		for (; next_sample <= t; next_sample += 0.4) {
			bool ok = aimd_limit(&a) >= lo && aimd_limit(&a) <= hi;
			run = ok ? run + 1 : 0;
			if (run == 6 && settled < 0)
				settled = next_sample;
			if (next_sample >= 60) {
				samples++;
				within += ok;
			}
		}
		aimd_observe(&a, rtt, AIMD_ANSWER, t);
	}
	*in_band = samples ? (double)within / samples : 0;
	return settled;
}

static void test_a_closed_loop_under_load_noise_settles_within_20_percent(void)
{
	/* import-adaptive's provider: 16 places of 200 ms.  The controller
	 * before judged a window by the limit it ran at, though its answers
	 * were sent at the limit of the window before: the window after slow
	 * start doubled 16 to 32 showed 16's RTT as 32's, the baseline then
	 * followed the queue 32 built, and the limit settled at 21 (without
	 * noise, every time; with 2 to 5 ms, one run in five).  With the spread
	 * for a band and a 2 % rise to grow, 10 ms of noise and stalls left it
	 * at 9-12 now and then.  (Noise cuts, once in a while, still take it
	 * under 13 for a few seconds: 85 %, not all.  At 20 ms late a slot
	 * spends a tenth of its round trip outside the provider, and 18 to 19
	 * is what keeps 16 places full: left out.) */
	static const struct {
		double late, stalls;
	} load[] = {{0, 0}, {0.002, 0}, {0.005, 0}, {0.005, 0.1}, {0.010, 0.1}};
	for (size_t i = 0; i < sizeof load / sizeof *load; i++) {
		for (uint64_t seed = 1; seed <= 8; seed++) {
			lcg = seed;
			double in_band;
			double settled = drive_loop(16, 0.2, load[i].late, load[i].stalls, 13, 19, &in_band);
			if (seed == 1 || settled < 0 || settled > 90 || in_band < 0.95)
				fprintf(stderr, "late %.0f ms, stalls %.0f %%, seed %llu: settled at %.1f s, %.0f %% in band after 60 s\n",
				        load[i].late * 1000, load[i].stalls * 100, (unsigned long long)seed, settled, in_band * 100);
			CHECK(settled >= 0 && settled <= 90);
			CHECK(in_band >= 0.85);
		}
	}
	lcg = 42;
}

static void test_backpressure_halves_once_per_window(void)
{
	struct aimd a;
	double now = 0;
	uint32_t lo, hi;
	char why[AIMD_REASON_MAX];
	aimd_init(&a, 64, now);
	drive(&a, &now, 0.1, UINT32_MAX, 40, &lo, &hi);
	uint32_t before = aimd_limit(&a);
	/* a burst of 429s within one window: one cut, when the window ends */
	for (int i = 0; i < 10; i++)
		aimd_observe(&a, 0.01, AIMD_THROTTLED, now + i * 0.001);
	CHECK_EQ(aimd_limit(&a), before);
	aimd_observe(&a, 0.01, AIMD_THROTTLED, now + 0.15);
	CHECK_EQ(aimd_limit(&a), before / 2);
	aimd_describe(&a, why, sizeof why);
	CHECK_STR(why, "cut: 429 Too Many Requests");
	aimd_observe(&a, 30, AIMD_TIMEOUT, now + 0.35);
	CHECK_EQ(aimd_limit(&a), before / 4);
	aimd_describe(&a, why, sizeof why);
	CHECK_STR(why, "cut: a timeout");
}

static void test_clear_rtt_rise_trims_and_ignored_failures_do_not(void)
{
	struct aimd a;
	double now = 0;
	uint32_t lo, hi;
	char why[AIMD_REASON_MAX];
	aimd_init(&a, 64, now);
	drive(&a, &now, 0.1, UINT32_MAX, 20, &lo, &hi);
	uint32_t before = aimd_limit(&a);
	for (int i = 0; i < 50; i++)
		aimd_observe(&a, 0, AIMD_IGNORED, now + i);
	CHECK_EQ(aimd_limit(&a), before);
	for (int i = 0; i < AIMD_WINDOW_MIN_ANSWERS; i++)
		aimd_observe(&a, 0.3, AIMD_ANSWER, now + 0.3);
	CHECK_EQ(aimd_limit(&a), (uint32_t)(before * 0.9));
	aimd_describe(&a, why, sizeof why);
	CHECK(strncmp(why, "cut: RTT ", 9) == 0 && strstr(why, "ms over baseline 100 ms"));
}

static void test_no_growth_without_reaching_the_limit(void)
{
	struct aimd a;
	aimd_init(&a, 64, 0);
	for (int i = 0; i < 100; i++)
		aimd_observe(&a, 0.1, AIMD_ANSWER, i * 0.1); /* never started at the limit */
	CHECK_EQ(aimd_limit(&a), AIMD_INITIAL);
}

int main(void)
{
	RUN(test_starts_low_and_never_leaves_one_to_ceiling);
	RUN(test_steady_rtt_doubles_to_the_ceiling_then_adds_one_after_a_cut);
	RUN(test_queueing_provider_settles_near_its_capacity);
	RUN(test_noisy_rtts_still_settle_near_capacity_and_climb_without_one);
	RUN(test_a_delay_that_does_not_follow_the_limit_moves_the_baseline);
	RUN(test_a_closed_loop_under_load_noise_settles_within_20_percent);
	RUN(test_backpressure_halves_once_per_window);
	RUN(test_clear_rtt_rise_trims_and_ignored_failures_do_not);
	RUN(test_no_growth_without_reaching_the_limit);
	return CHECK_DONE();
}
