/* fetch — HTTP GETs on the event loop: one libcurl multi handle driven by
 * libevent (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION /
 * curl_multi_socket_action), with raced's own admission control per
 * provider (connection cap, token-bucket rate limit), retries with
 * exponential backoff and full jitter, and JSON bodies read (jsondoc) on
 * completion.
 *
 * Ownership:
 *  - A fetcher owns the multi handle, its providers and every request.
 *  - A request (struct fetch) lives from fetch_start() until its done
 *    callback returns (called exactly once), or until fetch_cancel() (after
 *    which the callback is never called).  The result and everything it
 *    points to are valid only during the callback; copy what must outlive it.
 *  - fetcher_free() cancels every request without calling back.  It may be
 *    called from a done callback: the fetcher is then freed once that
 *    callback returns.
 *  - A done callback may start and cancel other requests.  fetch_start()
 *    never calls back synchronously; fetch_cancel() never calls back.
 *
 * Admission (per provider): a started request waits in the provider's FIFO
 * queue until fewer than the provider's limit of its requests are on the
 * wire AND its quota is not spent AND a rate-limit token is available; only
 * then is it handed to libcurl, so `timeout` measures the attempt, not the
 * wait.  The limit is max_connections, or with `adaptive` the one aimd.h
 * keeps (from 2 up to max_connections as a ceiling), fed every attempt's
 * round-trip time and outcome.  The quota is what the provider's last
 * answers said of it (quota.h: RateLimit-*, X-RateLimit-*): when it is
 * spent, requests wait for its reset rather than collect 429s.  The queue has no bound
 * of its own: its length is bounded by the callers (each stage's
 * `concurrency`), the sum of which is the number of live requests.
 *
 * Rate limit: a token bucket (tokenbucket.h) per provider refilled at
 * rate_limit tokens per second, FETCH_RATE_BURST (1) deep: requests start
 * at most 1/rate_limit apart, evenly spaced, never in bursts.  The bucket
 * starts full.
 *
 * Connections: libcurl's multi handle keeps the connection cache;
 * CURLMOPT_MAX_HOST_CONNECTIONS and CURLMOPT_MAXCONNECTS are the sum of the
 * providers' max_connections (a safety net that the admission queue keeps
 * from ever binding), so idle connections are kept for reuse.  HTTP/2 is
 * negotiated over TLS and multiplexed.  Easy handles are reused from a free
 * list of at most FETCH_EASY_POOL_MAX, keeping the options of the provider
 * they last served; body buffers up to FETCH_BODY_POOL_KEEP_MAX are reused
 * from a list as long.  Bodies may be gzip (Accept-Encoding
 * is every encoding libcurl decodes).  TLS and the HTTP version are the
 * provider's (tls.h: ca_file, http_version; peers always verified); TLS
 * sessions are shared by all the fetcher's handles (tls_share_new), so a
 * new connection resumes one.  The stats count connections opened and
 * answers over HTTP/2.
 *
 * Retries: connection errors, timeouts, HTTP 408, 429, 5xx and bodies cut
 * short are retried up to max_retries times.  Retry n (1, 2, ...) waits a
 * uniformly random delay in [0, min(FETCH_BACKOFF_CAP_MS,
 * FETCH_BACKOFF_BASE_MS * 2^(n-1))] ("full jitter", backoff.h), or the
 * response's Retry-After (delta seconds or an HTTP date) when that is
 * longer, kept within [FETCH_BACKOFF_BASE_MS, FETCH_RETRY_AFTER_MAX_MS]
 * (a "Retry-After: 0" waits the base; quota_retry_delay_ms); then it
 * queues again for admission.
 *
 * Limits: timeout_ms is CURLOPT_TIMEOUT_MS per attempt (0 = none), and
 * connecting may take at most min(timeout_ms, FETCH_CONNECT_TIMEOUT_MAX_MS).
 * A 2xx response whose Content-Length (of an unencoded body) is over
 * max_body is refused before its body is read; any body that grows past
 * max_body (counted after decoding) is aborted.
 *
 * Memory (membudget.h, [daemon] memory_limit): a body is charged as it
 * grows; a complete 2xx body is read only when its reckoned cost (below)
 * fits under the limit, and waits (parked, off the wire) until it does; a body that would not fit even alone is a permanent error
 * (FETCH_BODY) naming memory_limit.  Token arrays and body buffers larger
 * than FETCH_BODY_POOL_KEEP_MAX are given back after each request.
 *
 * Credentials (auth.h): a provider with a secret (any auth but none) sends
 * requests only to its base_url's origin; fetch_start refuses any other.
 * Query auth: the parameter is taken off the URL given (a next link may
 * carry it) and put on the request only, so that no URL a result shows
 * holds it.  Header and query auth: the fetcher follows redirects itself
 * (CURLOPT_FOLLOWLOCATION off), each hop an attempt that queues for
 * admission again, counted against max_redirects; a hop to the origin gets
 * the secret, a hop elsewhere goes without it (and without validators);
 * effective_url is the last hop.  Bearer and basic: libcurl follows and
 * drops the Authorization header and user/password off the first host.
 *
 * URLs (fetch_start) follow baseurl.h: absolute as it is, "/x" under the
 * provider's base_url path, anything else RFC 3986 against base_url as a
 * directory; base_url must be http or https, without query or fragment.
 * fetch_resolve_url() and link_next are plain RFC 3986 against
 * the page's URL: that is how a page's own relative "next" links are
 * meant.  link_next is the first Link header of the final response with a
 * "next" link (linkheader.h).
 *
 * Conditional requests (fetch_start_if, conditional.h): the validators
 * given are sent as If-None-Match (the ETag exactly as given, weak ones
 * with their W/) and If-Modified-Since, on every attempt.  A 304 answer is
 * FETCH_OK with not_modified set and no body; it is not retried, and it
 * is reported as such even to a request that sent no validator
 * (conditional false: the caller decides what that means).  On redirects
 * the validators go with every request of the chain, as libcurl sends
 * every custom header (only Authorization and Cookie stay on the first
 * host, and the provider's token never leaves its origin anyway): a
 * redirecting URL answers its 3xx regardless, and the URL it leads to
 * compares them, which is right when they were read off that URL's own
 * earlier answer (the final response's validators are the ones reported).
 * A result's etag and last_modified are the final response's (2xx or
 * 304), as conditional.h keeps them.
 *
 * libcurl: the program calls curl_global_init() once before its first
 * fetcher_new() (and curl_global_cleanup() after its last fetcher_free()),
 * as libcurl asks, while it is still single-threaded.
 */
#ifndef RACED_FETCH_H
#define RACED_FETCH_H

#include "auth.h"
#include "error.h"
#include "jsondoc.h"
#include "tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FETCH_RATE_BURST 1.0               /* token bucket depth */
#define FETCH_BACKOFF_BASE_MS 200
#define FETCH_BACKOFF_CAP_MS 30000
#define FETCH_RETRY_AFTER_MAX_MS 300000    /* Retry-After obeyed up to 5 min */
#define FETCH_CONNECT_TIMEOUT_MAX_MS 10000
#define FETCH_EASY_POOL_MAX 32             /* idle easy handles kept */
#define FETCH_BODY_POOL_KEEP_MAX (64u << 10) /* largest body buffer kept for reuse */
#define FETCH_REQUEST_POOL_MAX 64          /* finished requests' memory kept for reuse */
/* Memory (membudget.h): reading a body is reckoned to cost its tokens
 * (jsondoc_census), FETCH_READ_ITEM_COST for each object or array in it
 * (what the caller keeps of an item made of one: import_item.h's
 * IMPORT_ITEM_OVERHEAD and header) and FETCH_READ_COPIES copies of its
 * bytes (the item's text and the store's row); it waits until that fits. */
#define FETCH_READ_ITEM_COST 256u
#define FETCH_READ_COPIES 2u
/* No body costs more a byte than this ("[[],[],...": two tokens and an
 * item every 3 bytes); bodies up to FETCH_CENSUS_MIN are charged that
 * when it fits, and are spared the census. */
#define FETCH_READ_COST_MAX 100u
#define FETCH_CENSUS_MIN (64u << 10)
#define FETCH_PARK_POLL_MS 10      /* a waiting body tries again this often */
#define FETCH_PARK_STALL_MS 1000   /* and is read anyway when nothing was freed for this long */
/* Longest ETag or Last-Modified sent or kept (nginx's are ~20 bytes; a
 * longer one received is not kept, so the next request is unconditional). */
#define FETCH_VALIDATOR_MAX 512u
#define FETCH_LIMIT_REASON_MAX 96  /* aimd.h's AIMD_REASON_MAX */

struct event_base;
struct fetcher;
struct fetch_provider;
struct fetch;

struct fetch_provider_conf {
	const char *name;          /* for messages and stats */
	const char *base_url;      /* relative request URLs resolve against it */
	const char *token;         /* bearer token, or NULL: with auth.kind AUTH_NONE, the
	                              same as auth {AUTH_BEARER, token} */
	struct auth_conf auth;     /* credentials and static headers (auth.h); copied */
	uint32_t max_connections;  /* requests on the wire at once, >= 1; with
	                              adaptive, the ceiling of the limit */
	bool adaptive;             /* max_connections = auto: aimd.h sets the limit */
	double rate_limit;         /* requests started per second, 0 = unlimited */
	uint32_t timeout_ms;       /* one attempt, from hand-off to curl */
	uint32_t max_retries;      /* retries after the first attempt */
	size_t max_body;           /* bytes; larger bodies are a permanent error */
	uint32_t max_redirects;
	struct tls_conf tls;       /* ca_file and http_version (tls.h); ca_file copied */
};

enum fetch_outcome {
	FETCH_OK,
	FETCH_TRANSIENT,  /* connect error, timeout, 408, 429, 5xx, cut body: retries exhausted */
	FETCH_HTTP,       /* another 4xx or 3xx, or a request that cannot succeed as
	                     made (too many redirects, unsupported scheme, TLS
	                     certificate refused): not retried */
	FETCH_BODY,       /* not JSON, or over max_body: not retried */
};

struct fetch_result {
	enum fetch_outcome outcome;
	const char *url;           /* the absolute URL requested */
	const char *effective_url; /* after redirects: base for relative links */
	long http_status;          /* 0 when no response arrived */
	uint32_t attempts;
	const struct jsondoc *doc; /* the body read as JSON when FETCH_OK (its
	                              root is value 0); borrowed */
	const char *body;          /* the body as received when FETCH_OK (not
	                              NUL-terminated); borrowed */
	size_t body_len;
	const char *link_next;     /* absolute URL of Link: rel="next", or NULL */
	const char *header;        /* the header fetch_want_header() named, of a
	                              2xx final response (the last of that name),
	                              or NULL */
	bool not_modified;         /* HTTP 304: outcome FETCH_OK, doc NULL, body
	                              NULL, body_len 0 */
	bool conditional;          /* validators were sent */
	const char *etag;          /* the final response's ETag as received (weak
	                              included), or NULL */
	const char *last_modified; /* its Last-Modified, only when curl_getdate
	                              reads it as a date; else NULL */
	uint64_t bytes;            /* body bytes received for this request, all
	                              attempts (on the wire: compressed size) */
	const char *error;         /* readable reason when not FETCH_OK: names the
	                              URL, the reason and, where one applies, the
	                              setting; "(not retried)" or "gave up after N
	                              attempts"; secrets masked (redact.h) */
};

typedef void (*fetch_done_fn)(void *arg, const struct fetch_result *r);

struct fetcher *fetcher_new(struct event_base *base, char *err) RACED_MUST_CHECK;
void fetcher_free(struct fetcher *f);

struct fetch_provider *fetcher_add_provider(struct fetcher *f,
                                            const struct fetch_provider_conf *c,
                                            char *err) RACED_MUST_CHECK;

struct fetch_validators {
	const char *etag;          /* sent as If-None-Match exactly as given (W/"..." too), or NULL */
	const char *last_modified; /* sent as If-Modified-Since, or NULL */
};

/* url is absolute, or relative to the provider's base_url.  Returns NULL
 * (with err) when the URL cannot be resolved or memory runs out.  Same as
 * fetch_start_if(p, url, NULL, done, arg, err). */
struct fetch *fetch_start(struct fetch_provider *p, const char *url,
                          fetch_done_fn done, void *arg, char *err) RACED_MUST_CHECK;
/* fetch_start with validators (NULL or both NULL or empty: unconditional),
 * copied: the caller's strings need not outlive the call.  Also NULL with
 * err for a validator conditional.h refuses (a line break, too long). */
struct fetch *fetch_start_if(struct fetch_provider *p, const char *url,
                             const struct fetch_validators *v,
                             fetch_done_fn done, void *arg, char *err) RACED_MUST_CHECK;
void fetch_cancel(struct fetch *r);
/* Have the done callback's result carry the value of response header name
 * (copied) in result.header: for a caller that reads a header fetch does
 * not know (a paging cursor, paginate.h).  Call it on a request just
 * started, before control returns to the loop.  -1 with err when out of
 * memory (the request goes on without it). */
int fetch_want_header(struct fetch *r, const char *name, char *err) RACED_MUST_CHECK;

/* baseurl_resolve(): ref resolved against base (RFC 3986) in *out,
 * malloc'd; -1 with err when base or ref is not a valid URL. */
int fetch_resolve_url(const char *base, const char *ref, char **out, char *err) RACED_MUST_CHECK;

/* The absolute URL fetch_start(p, url, ...) would request
 * (baseurl_request_url), malloc'd in *out; -1 with err like fetch_start. */
int fetch_provider_url(const struct fetch_provider *p, const char *url, char **out,
                       char *err) RACED_MUST_CHECK;

/* A Retry-After value (delta seconds or an HTTP date, read with
 * curl_getdate) as milliseconds from `now`, capped at
 * FETCH_RETRY_AFTER_MAX_MS; 0 for a date in the past; -1 if unreadable or
 * NULL.  (libcurl 7.88's CURLINFO_RETRY_AFTER reads dates too, but takes
 * "5 s" as 5 s, an overflowing number as none, and keeps a redirect's
 * Retry-After for the response after it; this one takes only the final
 * response's header, read with curl_easy_header.) */
int64_t fetch_retry_after_ms(const char *value, time_t now);

struct fetch_provider_stats {
	uint64_t requests;         /* attempts handed to curl */
	uint64_t retries;
	uint64_t failed_transient;
	uint64_t failed_http;
	uint64_t failed_body;
	uint64_t succeeded;        /* FETCH_OK, 304s included */
	uint64_t not_modified;     /* of them, answered 304 */
	uint64_t bytes;            /* body bytes received on the wire, every
	                              attempt (compressed size when gzip) */
	uint32_t in_flight;        /* on the wire now */
	uint32_t waiting;          /* queued for a connection, a token, the quota or a backoff */
	/* Admission (added for issue 18): */
	uint32_t limit;            /* requests on the wire allowed now */
	bool adaptive;             /* the limit is aimd.h's (else max_connections) */
	time_t held_until;         /* the quota is spent: nothing starts before
	                              this (wall clock, seconds); 0 when not held */
	int64_t quota_remaining;   /* the provider's last word on its quota; -1: none */
	uint64_t quota_holds;      /* times admission waited for a quota's reset */
	uint64_t throttled;        /* 429 answers */
	uint64_t unavailable;      /* 503 answers */
	uint64_t timeouts;         /* attempts that timed out */
	uint64_t limit_increases, limit_decreases; /* adaptive limit moves */
	char limit_reason[FETCH_LIMIT_REASON_MAX]; /* why the adaptive limit last
	                              changed (aimd_describe), "" when static */
	/* Connections (issue 17): */
	uint64_t connections;      /* connections opened (CURLINFO_NUM_CONNECTS
	                              summed): TCP connects, and over https as
	                              many TLS handshakes */
	uint64_t http2;            /* attempts answered over HTTP/2 */
};
void fetch_provider_get_stats(const struct fetch_provider *p, struct fetch_provider_stats *out);

/* The limits a reload may change while requests run (raced.conf keys with
 * KF_LIVE): from now on, admission follows the new connection bound and
 * rate (a raised bound admits at once; a lowered one lets the requests on
 * the wire finish), new attempts get the new timeout, and a failed
 * request is retried up to the new max_retries.  0, or -1 with err when a
 * value is refused as fetcher_add_provider would, or libcurl refuses the
 * fetcher's new connection bounds (nothing changed then). */
struct fetch_provider_limits {
	uint32_t max_connections;  /* with adaptive, the ceiling (fetch_provider_conf) */
	bool adaptive;             /* max_connections = auto: turned on starts aimd afresh */
	double rate_limit;
	uint32_t timeout_ms;
	uint32_t max_retries;
};
RACED_MUST_CHECK int fetch_provider_set_limits(struct fetch_provider *p, const struct fetch_provider_limits *l,
                                               char *err);
const char *fetch_provider_name(const struct fetch_provider *p);

#endif
