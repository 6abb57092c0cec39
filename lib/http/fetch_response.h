/* fetch_response — a response as libcurl hands it over: the status line
 * and reason, the header block's end (a 2xx body announced over max_body
 * is refused there), the body bytes into the request's buffer (charged to
 * membudget.h as it grows, bounded by max_body); and at an attempt's end
 * what its easy handle says (status, effective URL, sizes, the Link
 * "next", the validators, the header the caller asked for, Retry-After,
 * a Location raced follows itself).
 *
 * Ownership: writes only into the request (struct fetch): its body buffer
 * (which it owns) and its strings, freeing the previous attempt's.  The
 * header and write callbacks never call libcurl other than its header
 * store (curl_easy_header, allowed there).
 */
#ifndef RACED_FETCH_RESPONSE_H
#define RACED_FETCH_RESPONSE_H

#include "fetch_int.h"

/* Forget the response being received (a new attempt, or a redirect's). */
void fetch_response_reset(struct fetch *r);
/* The value of the last `name` header of r's response being received (or
 * received last), or NULL.  Valid until the next call.  A name the
 * response's header block did not have costs no search of libcurl's
 * store. */
const char *fetch_response_header_last(const struct fetch *r, const char *name);
/* CURLOPT_HEADERFUNCTION and CURLOPT_WRITEFUNCTION, userp the request. */
size_t fetch_response_header_cb(char *buf, size_t size, size_t nitems, void *userp);
size_t fetch_response_write_cb(char *data, size_t size, size_t nmemb, void *userp);
/* Read what the attempt's easy handle knows, account it (fetch_admit.h),
 * then let the handle go (fetch_attempt_release).  Returns the response's
 * Retry-After in ms (-1: none) unless it is a success, never retried. */
int64_t fetch_response_read(struct fetch *r, CURLcode rc, curl_off_t *connect_us);

#endif
