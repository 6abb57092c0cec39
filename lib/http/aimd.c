/* aimd — see aimd.h.  The window rules follow Vector's controller
 * (src/sinks/util/adaptive_concurrency/controller.rs): grow only when the
 * limit was reached and the window was no slower than the baseline, cut on
 * back pressure or a rise past the baseline's deviation band. */
#include "aimd.h"

#include <math.h>
#include <stdio.h>

void aimd_init(struct aimd *a, uint32_t ceiling, double now)
{
	if (ceiling < 1)
		ceiling = 1;
	*a = (struct aimd){.ceiling = ceiling,
	                   .limit = AIMD_INITIAL < ceiling ? AIMD_INITIAL : ceiling,
	                   .pressure = AIMD_ANSWER,
	                   .change = AIMD_STARTED,
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
	a->rtt_sum = 0;
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
	a->change = why;
	a->changed_at = now;
	a->decreases++;
}

static void baseline_update(struct aimd *a, double rtt)
{
	if (!a->have_baseline) {
		a->have_baseline = true;
		a->mean = rtt;
		a->var = 0;
		return;
	}
	/* A rise is believed slowly: a baseline that followed the queue we
	 * build would never show it (the limit would ratchet up). */
	double diff = rtt - a->mean;
	double incr = (diff > 0 ? AIMD_EWMA_ALPHA_RISE : AIMD_EWMA_ALPHA) * diff;
	a->mean += incr;
	a->var = (1 - AIMD_EWMA_ALPHA) * (a->var + diff * incr);
}

/* The window is over: move the limit at most once. */
static void window_close(struct aimd *a, double now, double rtt_s)
{
	/* To the microsecond: a mean of equal RTTs may come out a rounding
	 * error above them (Vector rounds for the same reason). */
	double cur = a->rtt_n ? round(a->rtt_sum / (double)a->rtt_n * 1e6) / 1e6 : -1;
	double band = AIMD_RTT_DEVIATION_SCALE * sqrt(a->var);
	if (band < AIMD_RTT_RISE_MIN * a->mean)
		band = AIMD_RTT_RISE_MIN * a->mean;

	a->change_rtt = cur;
	a->change_baseline = a->mean;
	if (a->pressure != AIMD_ANSWER) {
		a->change_signal = a->pressure;
		cut(a, AIMD_BACKPRESSURE_DECREASE, AIMD_CUT_BACKPRESSURE, now);
	} else if (cur >= 0 && a->have_baseline && cur >= a->mean + band) {
		cut(a, AIMD_RTT_DECREASE, AIMD_CUT_RTT, now);
	} else if (cur >= 0 && a->reached && a->have_baseline && cur <= round(a->mean * 1e6) / 1e6 &&
	           a->limit < a->ceiling) {
		a->limit++;
		a->change = AIMD_GREW;
		a->changed_at = now;
		a->increases++;
	}
	if (cur >= 0)
		baseline_update(a, cur);
	/* A window is a round trip: the baseline's, or the one just seen. */
	window_reset(a, now, a->have_baseline ? a->mean : rtt_s);
}

void aimd_observe(struct aimd *a, double rtt_s, enum aimd_signal s, double now)
{
	switch (s) {
	case AIMD_ANSWER:
		a->rtt_sum += rtt_s;
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
	if (now >= a->window_end)
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
		snprintf(buf, n, "grew: limit reached, RTT %.0f ms at or below baseline %.0f ms", rtt_ms,
		         base_ms);
		break;
	case AIMD_CUT_RTT:
		snprintf(buf, n, "cut: RTT %.0f ms over baseline %.0f ms", rtt_ms, base_ms);
		break;
	case AIMD_CUT_BACKPRESSURE:
		snprintf(buf, n, "cut: %s", signal_name(a->change_signal));
		break;
	}
}
