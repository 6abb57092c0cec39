/* fetch_retry — a transient failure with retries left waits, then queues
 * for admission again: a uniformly random delay in [0, min(cap, base *
 * 2^(n-1))] ("full jitter", backoff.h), or the response's Retry-After
 * when longer (quota_retry_delay_ms); fetch.h gives the bounds.
 *
 * Ownership: the request stays the fetcher's; while FS_BACKOFF it is on
 * its own `backoff` evtimer and counted in the provider's `waiting`.
 */
#ifndef RACED_FETCH_RETRY_H
#define RACED_FETCH_RETRY_H

#include "fetch_int.h"

/* retry_after_ms: the response's Retry-After, -1 if none. */
void fetch_retry_schedule(struct fetch *r, int64_t retry_after_ms);
/* The backoff evtimer's callback (arg: the request): back to the queue. */
void fetch_retry_backoff_cb(evutil_socket_t fd, short what, void *arg);

#endif
