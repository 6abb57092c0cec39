/* fetch — HTTP GETs on the event loop: one libcurl multi handle driven by
 * libevent (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION /
 * curl_multi_socket_action), with raced's own admission control per
 * provider (connection cap, token-bucket rate limit), retries with
 * exponential backoff and full jitter, and JSON bodies parsed on completion.
 *
 * Ownership:
 *  - A fetcher owns the multi handle, its providers and every request.
 *  - A request (struct fetch) lives from fetch_start() until its done
 *    callback returns (called exactly once), or until fetch_cancel() (after
 *    which the callback is never called).  The result and everything it
 *    points to are valid only during the callback; json_incref() the
 *    document to keep it.
 *  - fetcher_free() cancels every request without calling back.
 */
#ifndef RACED_FETCH_H
#define RACED_FETCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fetcher;
struct fetch_provider;
struct fetch;

struct fetch_provider_conf {
	const char *name;          /* for messages and stats */
	const char *base_url;      /* relative request URLs resolve against it */
	const char *token;         /* bearer token, or NULL */
	uint32_t max_connections;  /* requests on the wire at once, >= 1 */
	double rate_limit;         /* requests started per second, 0 = unlimited */
	uint32_t timeout_ms;       /* one attempt, from hand-off to curl */
	uint32_t max_retries;      /* retries after the first attempt */
	size_t max_body;           /* bytes; larger bodies are a permanent error */
	uint32_t max_redirects;
};

enum fetch_outcome {
	FETCH_OK,
	FETCH_TRANSIENT,  /* connect error, timeout, 408, 429, 5xx, cut body: retries exhausted */
	FETCH_HTTP,       /* another 4xx: not retried */
	FETCH_BODY,       /* not JSON, or over max_body: not retried */
};

struct fetch_result {
	enum fetch_outcome outcome;
	const char *url;           /* the absolute URL requested */
	const char *effective_url; /* after redirects: base for relative links */
	long http_status;          /* 0 when no response arrived */
	uint32_t attempts;
	json_t *doc;               /* parsed body when FETCH_OK; borrowed */
	const char *link_next;     /* absolute URL of Link: rel="next", or NULL */
	const char *error;         /* readable reason when not FETCH_OK */
};

typedef void (*fetch_done_fn)(void *arg, const struct fetch_result *r);

struct fetcher *fetcher_new(struct event_base *base, char *err);
void fetcher_free(struct fetcher *f);

struct fetch_provider *fetcher_add_provider(struct fetcher *f,
                                            const struct fetch_provider_conf *c,
                                            char *err);

/* url is absolute, or relative to the provider's base_url.  Returns NULL
 * (with err) when the URL cannot be resolved or memory runs out. */
struct fetch *fetch_start(struct fetch_provider *p, const char *url,
                          fetch_done_fn done, void *arg, char *err);
void fetch_cancel(struct fetch *r);

/* Resolve ref against base with curl_url; *out is malloc'd. */
int fetch_resolve_url(const char *base, const char *ref, char **out, char *err);

struct fetch_provider_stats {
	uint64_t requests;         /* attempts handed to curl */
	uint64_t retries;
	uint64_t failed_transient;
	uint64_t failed_http;
	uint64_t failed_body;
	uint64_t succeeded;
	uint64_t bytes;            /* body bytes received */
	uint32_t in_flight;        /* on the wire now */
	uint32_t waiting;          /* queued for a connection, a token or a backoff */
};
void fetch_provider_get_stats(const struct fetch_provider *p, struct fetch_provider_stats *out);
const char *fetch_provider_name(const struct fetch_provider *p);

#endif
