/* fetch_retry — see fetch_retry.h (and fetch.h for fetch_retry_after_ms). */
#include "fetch_retry.h"
#include "fetch_admit.h"
#include "backoff.h"

#include <ctype.h>
#include <stdlib.h>

int64_t fetch_retry_after_ms(const char *v, time_t now)
{
	if (!v || !*v)
		return -1;
	if (isdigit((unsigned char)v[0])) {
		char *e;
		unsigned long long s = strtoull(v, &e, 10);
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e)
			return -1;
		return s > FETCH_RETRY_AFTER_MAX_MS / 1000 ? FETCH_RETRY_AFTER_MAX_MS : (int64_t)s * 1000;
	}
	time_t t = curl_getdate(v, NULL);
	if (t == -1)
		return -1;
	if (t <= now)
		return 0;
	int64_t ms = ((int64_t)t - (int64_t)now) * 1000;
	return ms > FETCH_RETRY_AFTER_MAX_MS ? FETCH_RETRY_AFTER_MAX_MS : ms;
}

/* retry_after_ms: the response's Retry-After, -1 if none. */
void fetch_retry_schedule(struct fetch *r, int64_t retry_after_ms)
{
	struct fetch_provider *p = r->p;
	/* r->attempts is 1 for the first retry */
	uint64_t delay = quota_retry_delay_ms(retry_after_ms,
	                                      backoff_full_jitter_ms(FETCH_BACKOFF_BASE_MS, FETCH_BACKOFF_CAP_MS,
	                                                             r->attempts, NULL),
	                                      FETCH_BACKOFF_BASE_MS, FETCH_RETRY_AFTER_MAX_MS);
	r->state = FS_BACKOFF;
	p->stats.waiting++;
	p->stats.retries++;
	struct timeval tv = tv_ms(delay);
	evtimer_add(&r->backoff, &tv);
}

void fetch_retry_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *r = arg;
	(void)fd;
	(void)what;
	r->state = FS_QUEUED; /* still counted in waiting */
	TAILQ_INSERT_TAIL(&r->p->queue, r, queue_link);
	fetch_admit_kick(r->p);
}

