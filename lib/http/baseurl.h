/* baseurl — a provider's base URL and the request URLs resolved under it.
 *
 * Rules (what fetch_start() requests):
 *  - an absolute URL is used as it is;
 *  - a URL beginning with one '/' is a path under the base: base_url
 *    "https://api.example.com/v1" and "/races?page=2" give
 *    "https://api.example.com/v1/races?page=2" (the base path is treated as
 *    a directory; "../" segments are then removed as RFC 3986 says);
 *  - any other reference ("races", "?page=2", "//host/x") is resolved by
 *    RFC 3986 against the base as a directory ("https://api.example.com/v1/").
 * baseurl_resolve() is plain RFC 3986 against any URL: how a page's own
 * relative links are meant.  A base must be http or https, without query or
 * fragment.
 *
 * Every URL is what libcurl's curl_url makes of it.  Under a base that
 * curl_url gives back unchanged, "/x" and absolute URLs of the base's
 * origin whose rest passes baseurl_tail_is_plain() are joined by
 * concatenation instead: the same string, without parsing (test_fetch
 * holds the two to the same output over 96,000 URLs).
 *
 * Error texts quote the URL with its password masked (redact.h).
 *
 * Ownership: the caller owns the struct baseurl (embedded, set up by
 * baseurl_init, emptied by baseurl_free); every URL returned in *out is
 * malloc'd and the caller's to free().
 */
#ifndef RACED_BASEURL_H
#define RACED_BASEURL_H

#include "error.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

struct baseurl {
	char *dir;          /* the base in directory form: its path ends in '/' */
	size_t len;         /* strlen(dir) */
	size_t origin_len;  /* "scheme://authority/", a prefix of dir */
	bool plain;         /* URLs under it may be joined by concatenation */
	CURLU *cu;          /* dir parsed, when plain */
	char *origin;       /* "scheme://host:port", lowercase */
};

/* name: the provider's, for messages.  -1 with err (b left empty) when
 * base_url is not an http(s) URL without query and fragment. */
RACED_MUST_CHECK
int baseurl_init(struct baseurl *b, const char *name, const char *base_url,
                 char *err) RACED_MUST_CHECK;
void baseurl_free(struct baseurl *b);

/* The absolute URL a request for url means (the rules above), in *out;
 * -1 with err when it is not a valid URL or memory runs out. */
RACED_MUST_CHECK
int baseurl_request_url(const struct baseurl *b, const char *url, char **out,
                        char *err) RACED_MUST_CHECK;

/* Resolve ref against base with curl_url, RFC 3986 (ref may be absolute,
 * "../x", "?page=2"; percent-encoding is kept as it is; a fragment is
 * dropped) into *out.  -1 with err when base or ref is not a valid URL. */
int baseurl_resolve(const char *base, const char *ref, char **out, char *err) RACED_MUST_CHECK;

/* Whether url (absolute, as baseurl_request_url makes them) has the base's
 * scheme, host and port. */
bool baseurl_on_origin(const struct baseurl *b, const char *url);

/* url (absolute, as baseurl_request_url makes them) parsed for
 * CURLOPT_CURLU, so that libcurl does not parse the string again for every
 * transfer; *out is the caller's to curl_url_cleanup(). */
CURLUcode baseurl_curlu(const struct baseurl *b, const char *url, CURLU **out) RACED_MUST_CHECK;

/* Whether tail, appended to a URL that curl_url gives back unchanged and
 * that ends in '/', is kept as it is: only letters, digits,
 * "-._~!$&'()*+,;=:@/?" and %XX (not %2E), no segment starting with '.', no
 * empty query at the end. */
bool baseurl_tail_is_plain(const char *tail);

#endif
