/* fetch_error — how the fetcher classifies a failed attempt (retried or
 * not) and the messages that name it: the URL, the reason, and where one
 * applies the setting; secrets masked.
 *
 * Ownership: none kept.  The messages are written into the request's own
 * r->msg (ERR_MAX); the functions only read the request and the provider
 * otherwise.
 */
#ifndef RACED_FETCH_ERROR_H
#define RACED_FETCH_ERROR_H

#include "fetch_int.h"

/* The standard reason phrase of a 4xx or 5xx status, or "". */
const char *fetch_error_reason(long status);
/* 408, 429 and 5xx: another attempt may succeed. */
bool fetch_error_status_transient(long status);
/* libcurl errors that another attempt cannot fix. */
bool fetch_error_curl_permanent(CURLcode rc);
/* Which of libcurl's header limits a failed response ran into, in bytes,
 * or 0 (not retried: the same server sends the same headers again). */
unsigned fetch_error_header_limit(CURLcode rc, long status, const struct fetch *r);
/* msg (ERR_MAX) without the provider's secrets (auth_mask). */
void fetch_error_mask(const struct fetch_provider *p, char *msg);
/* r->msg for a libcurl failure of the attempt. */
void fetch_error_describe_curl(struct fetch *r, CURLcode rc, curl_off_t connect_us);

#endif
