/* conditional — the validator headers of a conditional GET (RFC 9110
 * §13.1.1-2, If-None-Match and If-Modified-Since) and the validators read
 * off a response (ETag, Last-Modified), for fetch.c.  No I/O.
 *
 * What is sent: an ETag exactly as given (a weak one with its W/, a list
 * as it is), a Last-Modified exactly as given; an empty string counts as
 * none.  A validator with a control character (a line break would end the
 * header) or longer than FETCH_VALIDATOR_MAX is refused, naming it.
 *
 * What is kept of a response: its ETag as received, when it is at most
 * FETCH_VALIDATOR_MAX bytes of visible characters (else none: the next
 * request goes without it); its Last-Modified only when curl_getdate
 * reads it as a date (a value that is not an HTTP date is ignored, RFC
 * 9110 §13.1.3 asks a server to ignore such a date too).
 *
 * Ownership: a conditional_headers owns the (at most two) lines it adds in
 * front of the provider's list it was given; that list stays its
 * owner's, and must outlive it.  conditional_headers_free() detaches it
 * before freeing the lines.  The strings conditional_response_*() return
 * are malloc'd and the caller's. */
#ifndef RACED_CONDITIONAL_H
#define RACED_CONDITIONAL_H

#include "error.h"
#include "fetch.h"

#include <curl/curl.h>
#include <stdbool.h>

struct conditional_headers {
	struct curl_slist *head;   /* the request's header list, or NULL: none added */
	struct curl_slist *joint;  /* our last line, whose next is the shared list */
	bool conditional;          /* a validator is among the lines */
};

/* The header list of a request: v's lines, then `shared` (the
 * provider's).  With no validator, out->head stays NULL and the caller
 * sends `shared` as it is.  -1 with err (naming url) for a validator
 * refused or memory run out. */
int conditional_headers(const struct fetch_validators *v, struct curl_slist *shared,
                        const char *url, struct conditional_headers *out,
                        char *err) RACED_MUST_CHECK;
void conditional_headers_free(struct conditional_headers *h);

/* A response's ETag value (as curl_easy_header gives it) kept as said
 * above, malloc'd, or NULL. */
char *conditional_response_etag(const char *value);
/* Its Last-Modified, malloc'd, only when it reads as an HTTP date. */
char *conditional_response_last_modified(const char *value);

#endif
