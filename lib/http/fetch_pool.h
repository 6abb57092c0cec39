/* fetch_pool — the fetcher's idle libcurl easy handles and body buffers,
 * kept for reuse in two small bounded free lists (FETCH_EASY_POOL_MAX
 * each), so that a request neither creates a handle nor grows a buffer
 * from nothing; and the memory of finished requests (struct fetch, about
 * 1.2 KiB: past glibc's per-thread cache, so each malloc and free of one
 * took the slower path), up to FETCH_REQUEST_POOL_MAX.
 *
 * An idle easy handle keeps the options of the owner (a provider) it last
 * served, so that the next request of that owner sets only what differs
 * per request; a handle going to another owner is reset first.
 *
 * Ownership: the pool owns what is in it; fetch_pool_easy_get and
 * fetch_pool_body_get hand ownership to the caller, the puts take it back
 * (or free what does not fit).  A request's memory is handed back as
 * it was left: the caller initialises it.  Body buffers are charged to the memory
 * budget (membudget.h) while a request holds them, not while pooled: the
 * caller charges and releases.  fetch_pool_clear frees everything.
 */
#ifndef RACED_FETCH_POOL_H
#define RACED_FETCH_POOL_H

#include "fetch.h"

#include <curl/curl.h>

#include <stdbool.h>
#include <stddef.h>

struct fetch_pool {
	struct pooled_easy {
		CURL *e;
		const void *owner; /* whose options it still has, or NULL */
	} easy[FETCH_EASY_POOL_MAX];
	size_t n_easy;
	struct pooled_body {
		char *buf;
		size_t cap;
	} bodies[FETCH_EASY_POOL_MAX];
	size_t n_bodies;
	void *requests[FETCH_REQUEST_POOL_MAX];
	size_t n_requests;
};

/* An easy handle, *configured when it still has owner's options; a new
 * one when the pool is empty; NULL when out of memory. */
CURL *fetch_pool_easy_get(struct fetch_pool *pl, const void *owner, bool *configured);
/* e back (NULL: nothing); owner: whose options it still has, or NULL to
 * reset it.  The per-request options (URL, header list) are cleared. */
void fetch_pool_easy_put(struct fetch_pool *pl, CURL *e, const void *owner);
/* The pooled handles of owner forget its options (they changed). */
void fetch_pool_easy_forget(struct fetch_pool *pl, const void *owner);
/* A pooled body buffer in *buf, *cap; false (nothing changed) when none. */
bool fetch_pool_body_get(struct fetch_pool *pl, char **buf, size_t *cap);
/* Keeps buf for the next request unless it is larger than
 * FETCH_BODY_POOL_KEEP_MAX or the list is full; then it is freed. */
void fetch_pool_body_put(struct fetch_pool *pl, char *buf, size_t cap);
/* The memory of a request freed earlier, or NULL when none is kept (the
 * caller allocates one); its contents are stale. */
void *fetch_pool_request_get(struct fetch_pool *pl);
/* Keeps req's memory for the next request, or frees it when the list is
 * full (NULL: nothing). */
void fetch_pool_request_put(struct fetch_pool *pl, void *req);
void fetch_pool_clear(struct fetch_pool *pl);

#endif
