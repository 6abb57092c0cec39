/* fetch_admit — admission per provider: a queued request goes on the wire
 * only when fewer than the provider's limit of its requests are there
 * (max_connections, or aimd.h's adaptive limit), its quota is not spent
 * (quota.h) and a rate-limit token is available (tokenbucket.h).  Also
 * what every attempt's end tells admission: the quota its headers
 * announce, its round-trip time and load signal for aimd, the counters.
 *
 * Ownership: reads and updates the provider's admission state (aimd,
 * quota, bucket, stats) and its `admit` evtimer; moves requests from the
 * provider's queue to the wire through fetch_handoff.  Keeps nothing.
 */
#ifndef RACED_FETCH_ADMIT_H
#define RACED_FETCH_ADMIT_H

#include "fetch_int.h"

/* Requests on the wire the provider allows now. */
uint32_t fetch_admit_limit(const struct fetch_provider *p);
/* Arm the admit timer for when the head of the queue may go. */
void fetch_admit_kick(struct fetch_provider *p);
/* The admit evtimer's callback (arg: the provider): hand off the queue's
 * head while it may go. */
void fetch_admit_cb(evutil_socket_t fd, short what, void *arg);
/* A request queued this long ago (the admit timer armed, not yet run) is
 * admitted by fetch_admit_now rather than left for a later turn of the
 * loop.  Well under this, as in a fetch-only import whose responses take
 * a few microseconds each, the timer's one admission a turn costs less
 * CPU (about 10 % of raced's there when every socket event admitted its
 * own, 5 % at 100 us, none measurable at 1 ms) and delays nothing that
 * matters; a turn of responses that each feed children work (304s read
 * back and handed on: about 85 us a page in the refresh re-import, turns
 * of several ms) holds the provider idle for milliseconds. */
#define FETCH_ADMIT_INLINE_AFTER_US 1000
/* Run the pending admission of every provider whose admit timer has waited
 * FETCH_ADMIT_INLINE_AFTER_US or more, now rather than on a later turn of
 * the loop (the timer is re-armed for what is left); true if a request
 * was handed to libcurl.  Not from a libcurl callback; never frees the
 * fetcher (a done callback may ask it: the caller's fetch_finish_dispatch
 * does). */
bool fetch_admit_now(struct fetcher *f);
/* An attempt ended (rc, status) and its easy handle is still r->easy. */
void fetch_admit_account(struct fetch *r, CURLcode rc, long status);

#endif
