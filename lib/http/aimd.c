/* aimd — see aimd.h.  The window rules follow Vector's controller
 * (src/sinks/util/adaptive_concurrency/controller.rs): grow only when the
 * limit was reached and the window was no slower than the baseline, cut on
 * back pressure or a rise past the baseline's deviation band. */
#include "aimd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void aimd_init(struct aimd *a, uint32_t ceiling, double now)
{
	if (ceiling < 1)
		ceiling = 1;
	*a = (struct aimd){.ceiling = ceiling,
	                   .limit = AIMD_INITIAL < ceiling ? AIMD_INITIAL : ceiling,
	                   .pressure = AIMD_ANSWER,
	                   .change = AIMD_STARTED,
	                   .slow_start = true,
	                   .changed_at = now};
}

void aimd_started(struct aimd *a, uint32_t in_flight)
{
	if (in_flight >= a->limit)
		a->reached = true;
}

static void window_reset(struct aimd *a, double now, double length)
{
	a->window_end = now + length;
	a->rtt_n = 0;
	a->reached = false;
	a->pressure = AIMD_ANSWER;
}

static void cut(struct aimd *a, double ratio, enum aimd_change why, double now)
{
	uint32_t next = (uint32_t)((double)a->limit * ratio);
	if (next < 1)
		next = 1;
	if (next == a->limit)
		return;
	a->limit = next;
	a->slow_start = false;
	a->change = why;
	a->changed_at = now;
	a->decreases++;
}

/* The baseline and the noise after a window that ran at ran_at.  A
 * window's answers were sent a round trip before they came, in it or in
 * the window before (a window lasts at least a round trip): its RTT is
 * that of the limits of both, lo..hi. */
static void baseline_update(struct aimd *a, double rtt, uint32_t ran_at)
{
	uint32_t prev = a->ran[0] ? a->ran[0] : ran_at;
	uint32_t lo = prev < ran_at ? prev : ran_at, hi = prev > ran_at ? prev : ran_at;
	bool steady = a->ran[0] == ran_at && a->ran[1] == ran_at; /* this window's and the last one's answers all sent at ran_at */
	a->ran[1] = a->ran[0];
	a->ran[0] = ran_at;
	if (!a->have_baseline) {
		a->have_baseline = true;
		a->mean = a->last = rtt;
		a->spread = 0;
		a->base_limit = ran_at;
		return;
	}
	/* A fall is believed at once, and notes the lowest limit its answers
	 * were sent at (the window after slow start doubles the limit still
	 * sees answers sent at the old one: noting the new one let the
	 * baseline follow the queue it then built).  A rise only slowly, and
	 * only when all its answers were sent at or below that limit: a rise
	 * at a higher limit may be the queue raced itself builds, and a
	 * baseline that followed it would never show it (the limit would
	 * ratchet up). */
	double diff = rtt - a->mean;
	if (diff <= 0) {
		a->mean += AIMD_EWMA_ALPHA * diff;
		a->base_limit = lo;
	} else if (hi <= a->base_limit) {
		a->mean += AIMD_EWMA_ALPHA_RISE * diff;
	}
	/* The noise: how far one window's RTT is from the last one's, which a
	 * queue growing by one request a window barely moves (a spread measured
	 * from the lagging baseline would grow with the queue, and so would
	 * the band), and only between windows whose answers were all sent at
	 * one limit (a step of the limit moves the RTT a round trip later, by
	 * design, which is no noise: counted, each cut's own fall widened the
	 * band that the next cut had to pass). */
	if (steady)
		a->spread += AIMD_EWMA_ALPHA * (fabs(rtt - a->last) - a->spread);
	a->last = rtt;
}

/* The window's RTT: the mean of the samples kept, to the microsecond
 * (a mean of equal RTTs may come out a rounding error above them: Vector
 * rounds for the same reason); -1 when there are none. */
static double window_rtt(struct aimd *a)
{
	uint32_t n = a->rtt_n < AIMD_WINDOW_SAMPLES ? a->rtt_n : AIMD_WINDOW_SAMPLES;
	if (n == 0)
		return -1;
	/* The mean, not the median: past the provider's capacity only the
	 * requests over it wait, a minority while the limit is under twice the
	 * capacity, and the median would not show them (Little's law: the mean
	 * RTT grows with the requests in flight over the capacity). */
	double sum = 0;
	for (uint32_t i = 0; i < n; i++)
		sum += a->rtt[i];
	return round(sum / n * 1e6) / 1e6;
}

/* How far over the baseline a window may be and still let the limit grow:
 * AIMD_GROW_RISE_MAX of it, or the noise (the spread) if more.  The
 * baseline follows falls at once and rises slowly, so under noise it sits
 * near the lowest windows' RTT: in a model of a loaded machine
 * (test_aimd.c), windows at a limit without a queue were over a 2 % rise
 * most of the time, and the limit stalled far below the capacity.  The
 * spread is under half the band (which is AIMD_RTT_DEVIATION_SCALE times
 * it at least), so a queue the band would cut does not grow. */
static double grow_rise(const struct aimd *a)
{
	double rise = AIMD_GROW_RISE_MAX * a->mean;
	return a->spread > rise ? a->spread : rise;
}

/* The window is over: move the limit at most once. */
static void window_close(struct aimd *a, double now, double rtt_s)
{
	double cur = window_rtt(a); /* the mean: it follows the requests in flight smoothly */
	double band = AIMD_RTT_DEVIATION_SCALE * a->spread;
	if (band < AIMD_RTT_RISE_MIN * a->mean)
		band = AIMD_RTT_RISE_MIN * a->mean;

	uint32_t before = a->limit;
	/* The window after an RTT cut: did the cut bring the RTT down as a
	 * queue would (aimd.h)?  If not, that RTT is the baseline now. */
	bool settling = false;
	if (a->cut_rtt > 0 && (++a->cut_age == 1 || now < a->cut_at + a->cut_rtt))
		settling = true; /* its answers were sent at the old limit: wait a round trip as long as the cut one */
	else if (a->cut_rtt > 0 && cur >= 0 && a->pressure == AIMD_ANSWER && before < a->cut_from) {
		double queue_fall = a->cut_rtt * (1 - (double)before / a->cut_from);
		/* and still a clear rise: a cut that brought it back within the
		 * band was right, whatever the noise says about by how much */
		if (a->cut_rtt - cur >= AIMD_QUEUE_SHARE * queue_fall || cur < a->mean + band)
			a->not_queue = 0;
		else if (++a->not_queue >= AIMD_NOT_QUEUE_CUTS) {
			a->not_queue = 0;
			a->mean = cur;
			a->base_limit = before;
			if (band < AIMD_RTT_RISE_MIN * a->mean)
				band = AIMD_RTT_RISE_MIN * a->mean;
		}
	}
	if (!settling)
		a->cut_rtt = 0;
	if (a->pressure != AIMD_ANSWER) {
		a->change_signal = a->pressure;
		cut(a, AIMD_BACKPRESSURE_DECREASE, AIMD_CUT_BACKPRESSURE, now);
		a->not_queue = 0; /* the provider spoke: the RTT cuts before say nothing now */
	} else if (settling) {
		/* hold */
	} else if (cur >= 0 && a->have_baseline && cur >= a->mean + band) {
		cut(a, AIMD_RTT_DECREASE, AIMD_CUT_RTT, now);
		if (a->limit < before) {
			a->cut_rtt = cur;
			a->cut_from = before;
			a->cut_age = 0;
			a->cut_at = now;
		}
	} else if (cur >= 0 && a->reached && a->rtt_n >= a->limit && a->have_baseline && cur < a->mean + grow_rise(a) &&
	           a->limit < a->ceiling) {
		/* Slow start, as TCP's: double until the first cut, then +1. */
		uint32_t next = a->slow_start ? a->limit * 2 : a->limit + 1;
		a->limit = next < a->ceiling ? next : a->ceiling;
		a->change = AIMD_GREW;
		a->changed_at = now;
		a->increases++;
	}
	if (a->limit != before) {
		a->change_rtt = cur;
		a->change_baseline = a->mean;
	}
	a->windows++;
	a->window_rtt = cur;
	a->band = band;
	if (cur >= 0)
		baseline_update(a, cur, before);
	/* A window is a round trip: the baseline's, or the one just seen, if
	 * longer (a window shorter than the round trip of a queue sees its
	 * answers come in waves, and alternate between them). */
	double length = a->have_baseline ? a->mean : rtt_s;
	if (cur > length)
		length = cur;
	window_reset(a, now, length);
}

void aimd_observe(struct aimd *a, double rtt_s, enum aimd_signal s, double now)
{
	switch (s) {
	case AIMD_ANSWER:
		if (a->rtt_n < AIMD_WINDOW_SAMPLES)
			a->rtt[a->rtt_n] = rtt_s;
		a->rtt_n++;
		break;
	case AIMD_THROTTLED:
	case AIMD_UNAVAILABLE:
	case AIMD_TIMEOUT:
		if (a->pressure == AIMD_ANSWER)
			a->pressure = s;
		break;
	case AIMD_IGNORED:
		return;
	}
	if (now >= a->window_end && (a->rtt_n >= AIMD_WINDOW_MIN_ANSWERS || a->pressure != AIMD_ANSWER))
		window_close(a, now, rtt_s);
}

static const char *signal_name(enum aimd_signal s)
{
	switch (s) {
	case AIMD_THROTTLED: return "429 Too Many Requests";
	case AIMD_UNAVAILABLE: return "503 Service Unavailable";
	case AIMD_TIMEOUT: return "a timeout";
	default: return "back pressure";
	}
}

void aimd_describe(const struct aimd *a, char *buf, size_t n)
{
	double rtt_ms = a->change_rtt * 1000, base_ms = a->change_baseline * 1000;
	switch (a->change) {
	case AIMD_STARTED:
		snprintf(buf, n, "started at %u", a->limit);
		break;
	case AIMD_GREW:
		snprintf(buf, n, "grew%s: limit reached, RTT %.0f ms near baseline %.0f ms",
		         a->slow_start ? " (slow start)" : "", rtt_ms, base_ms);
		break;
	case AIMD_CUT_RTT:
		snprintf(buf, n, "cut: RTT %.0f ms over baseline %.0f ms", rtt_ms, base_ms);
		break;
	case AIMD_CUT_BACKPRESSURE:
		snprintf(buf, n, "cut: %s", signal_name(a->change_signal));
		break;
	}
}

void aimd_set_ceiling(struct aimd *a, uint32_t ceiling)
{
	a->ceiling = ceiling ? ceiling : 1;
	if (a->limit > a->ceiling)
		a->limit = a->ceiling;
}
