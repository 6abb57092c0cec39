/* fetch_admit — see fetch_admit.h. */
#include "fetch_admit.h"
#include "fetch_response.h"
#include "log.h"

/* ---- admission: connection slots, the quota and the token bucket ---- */

/* Requests on the wire the provider allows now. */
uint32_t fetch_admit_limit(const struct fetch_provider *p)
{
	return p->adaptive ? aimd_limit(&p->aimd) : p->max_connections;
}

/* Whether the head of the queue may go now (a slot is free: the caller
 * checked); when not, *wait_us is how long until it may.  take: spend the
 * token and the quota when it may. */
static bool provider_gate(struct fetch_provider *p, bool take, uint64_t *wait_us)
{
	double until, now = 0;
	if (p->quota.known || p->rate_limit > 0)
		now = now_s(); /* (no clock read when neither limits) */
	*wait_us = 0;
	if (!quota_may_start(&p->quota, now, &until)) {
		*wait_us = (uint64_t)((until - now) * 1e6) + 1;
		return false;
	}
	if (p->rate_limit > 0) {
		bool ok = take ? tokenbucket_take(&p->bucket, now) : tokenbucket_wait_us(&p->bucket, now) == 0;
		if (!ok) {
			*wait_us = tokenbucket_wait_us(&p->bucket, now);
			return false;
		}
	}
	if (take)
		quota_started(&p->quota);
	return true;
}

/* Arm the admit timer for when the head of the queue may go. */
void fetch_admit_kick(struct fetch_provider *p)
{
	uint64_t wait_us;
	if (TAILQ_EMPTY(&p->queue) || p->stats.in_flight >= fetch_admit_limit(p))
		return;
	(void)provider_gate(p, false, &wait_us);
	if (!evtimer_pending(p->admit, NULL))
		p->admit_armed_at = now_s();
	struct timeval tv = {.tv_sec = (time_t)(wait_us / 1000000),
	                     .tv_usec = (suseconds_t)(wait_us % 1000000)};
	evtimer_add(p->admit, &tv);
}

static const char *quota_header(void *ctx, const char *name)
{
	return fetch_response_header_last(ctx, name);
}

/* What an attempt's end says about load (aimd.h). */
static enum aimd_signal load_signal(CURLcode rc, long status)
{
	if (rc == CURLE_OPERATION_TIMEDOUT || (rc == CURLE_OK && status == 504))
		return AIMD_TIMEOUT;
	if (rc != CURLE_OK)
		return AIMD_IGNORED; /* refused, reset, cut: not the provider's pace */
	return status == 429 ? AIMD_THROTTLED : status == 503 ? AIMD_UNAVAILABLE : AIMD_ANSWER;
}

/* Response accounting for admission: the quota the answer announces (the
 * other requests on the wire not yet counted by it), the attempt's RTT and
 * load signal for the adaptive limit, the counters. */
void fetch_admit_account(struct fetch *r, CURLcode rc, long status)
{
	struct fetch_provider *p = r->p;
	double now = now_s();
	struct quota_reading qr;

	if (rc == CURLE_OK && quota_read(quota_header, r, time(NULL), &qr))
		quota_observe(&p->quota, &qr, p->stats.in_flight - 1, now);
	enum aimd_signal sig = load_signal(rc, status);
	p->stats.throttled += sig == AIMD_THROTTLED;
	p->stats.unavailable += sig == AIMD_UNAVAILABLE;
	p->stats.timeouts += rc == CURLE_OPERATION_TIMEDOUT;
	if (!p->adaptive)
		return;
	/* The provider's part of the round trip: from the request sent to its
	 * answer's first byte (libcurl's clocks), not from the hand-off to the
	 * completion read: that also counts the connect and the time raced's
	 * loop took to get to the transfer, which grow with raced's own
	 * request rate on a busy CPU, not with the provider's queue, and cut
	 * the limit far below what the provider takes (docs/performance.md,
	 * "Adaptive concurrency").  The hand-off time stands in when libcurl
	 * has no first byte (a timeout). */
	double rtt = now - r->handed_at;
	curl_off_t pre = 0, first = 0;
	if (rc == CURLE_OK && curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK &&
	    curl_easy_getinfo(r->easy, CURLINFO_STARTTRANSFER_TIME_T, &first) == CURLE_OK && first > pre)
		rtt = (double)(first - pre) / 1e6;
	uint64_t windows = p->aimd.windows;
	aimd_observe(&p->aimd, rtt, sig, now);
	if (p->aimd.windows != windows && log_level() >= LOG_DEBUG) {
		char why[AIMD_REASON_MAX];
		aimd_describe(&p->aimd, why, sizeof why);
		log_write(LOG_DEBUG, "provider %s: window %llu: limit %u, RTT %.1f ms, baseline %.1f ms, band %.1f ms; last change: %s",
		          p->name, (unsigned long long)p->aimd.windows, aimd_limit(&p->aimd),
		          p->aimd.window_rtt * 1000, p->aimd.mean * 1000, p->aimd.band * 1000, why);
	}
}

/* Hand off the queue's head while it may go; how many were handed off. */
static size_t admit_queue(struct fetch_provider *p)
{
	struct fetcher *f = p->f;
	struct fetch *r;
	uint64_t wait_us;
	size_t n = 0;
	while (!f->free_pending && (r = TAILQ_FIRST(&p->queue)) &&
	       p->stats.in_flight < fetch_admit_limit(p)) {
		if (!provider_gate(p, true, &wait_us))
			break;
		TAILQ_REMOVE(&p->queue, r, queue_link);
		p->stats.waiting--;
		if (fetch_handoff(r) < 0)
			fetch_finish(r, FETCH_TRANSIENT, NULL);
		else
			n++;
	}
	return n;
}

void fetch_admit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_provider *p = arg;
	struct fetcher *f = p->f;
	(void)fd;
	(void)what;

	(void)admit_queue(p);
	if (f->free_pending) {
		fetch_finish_dispatch(f);
		return;
	}
	fetch_admit_kick(p);
}

bool fetch_admit_now(struct fetcher *f)
{
	bool handed = false;
	double now = 0;
	for (struct fetch_provider *p = f->providers; p && !f->free_pending; p = p->next) {
		if (!evtimer_pending(p->admit, NULL))
			continue;
		if (now == 0)
			now = now_s();
		if (now - p->admit_armed_at < FETCH_ADMIT_INLINE_AFTER_US / 1e6)
			continue;
		event_del(p->admit);
		handed |= admit_queue(p) > 0;
		if (!f->free_pending)
			fetch_admit_kick(p);
	}
	return handed;
}

