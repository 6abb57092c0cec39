/* fetch_int — the fetcher's own types, shared by the modules that make
 * up fetch (fetch.h is the public API; nothing outside lib/http/fetch*.c
 * includes this header).
 *
 * The modules, one job each:
 *   fetch.c           the public API, a request's life (hand-off to libcurl,
 *                     completion, redirects raced follows, the callback)
 *   fetch_loop.c      libcurl's multi handle driven by libevent: sockets,
 *                     its timer, reading completed transfers
 *   fetch_admit.c     admission per provider: the connection limit (static
 *                     or aimd.h's), the quota (quota.h), the token bucket
 *   fetch_retry.c     retries: Retry-After, backoff with full jitter
 *   fetch_response.c  a response as it arrives: status line, headers,
 *                     body bytes; what an attempt's handle says at its end
 *   fetch_body.c      reading a 2xx body as JSON within memory_limit
 *   fetch_error.c     classifying failures and the messages that name them
 *   fetch_pool.c      idle easy handles and body buffers kept for reuse
 *
 * Ownership: the fetcher owns its providers, the multi handle, the pool
 * and every request (struct fetch); a request owns its easy handle while
 * FS_ACTIVE, its body buffer and strings until request_free.  A request
 * is on exactly one of: its provider's queue (FS_QUEUED), a backoff
 * evtimer (FS_BACKOFF), the multi handle (FS_ACTIVE), the fetcher's
 * parked list (FS_PARKED), or in its callback (FS_DONE); and on its
 * provider's `all` list for its whole life.  The design notes are at the
 * top of fetch.c.
 */
#ifndef RACED_FETCH_INT_H
#define RACED_FETCH_INT_H

#include "aimd.h"
#include "auth.h"
#include "baseurl.h"
#include "conditional.h"
#include "error.h"
#include "fetch.h"
#include "fetch_pool.h"
#include "quota.h"
#include "tls.h"
#include "tokenbucket.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/queue.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* A token array grown past this by one huge page is given back after it. */
#define FETCH_DOC_KEEP_BYTES (1u << 20)

enum fetch_state { FS_QUEUED, FS_ACTIVE, FS_BACKOFF, FS_PARKED, FS_DONE };

struct fetch_sock {
	struct fetcher *f;
	struct event ev;
	curl_socket_t fd;
	short events;                  /* what ev watches while armed */
	bool armed;
	bool ours;                     /* opened by fetch_loop_open_socket: raced sees its close */
	bool assigned;                 /* libcurl announced it and has not let go of it
	                                  (CURL_POLL_REMOVE); ours not assigned: a connection in
	                                  its cache, still watched, so that the next transfer on
	                                  it costs no epoll_ctl (fetch_loop.h) */
	bool closed;                   /* ours, closed while libcurl still had it assigned:
	                                  freed at its CURL_POLL_REMOVE */
	LIST_ENTRY(fetch_sock) link;
};

struct fetch {
	struct fetch_provider *p;
	enum fetch_state state;
	TAILQ_ENTRY(fetch) queue_link; /* p->queue while FS_QUEUED, f->parked while FS_PARKED */
	TAILQ_ENTRY(fetch) all_link;   /* p->all, for its whole life */
	char *url;                     /* absolute; never with a query auth parameter */
	char *hop;                     /* a redirect raced follows itself (auth.h): the URL
	                                  requested now, or NULL: url */
	uint32_t hops;                 /* redirects followed so far */
	CURLU *cu;                     /* the URL requested, parsed for CURLOPT_CURLU at the first
	                                  attempt (with the query auth parameter, on the origin) */
	fetch_done_fn done;
	void *arg;
	CURL *easy;                    /* while FS_ACTIVE */
	struct event backoff;          /* while FS_BACKOFF */
	uint32_t attempts;
	char *effective_url;           /* where the response came from, or NULL: url */
	struct conditional_headers cond; /* its validators' lines, if any */
	char *etag, *last_modified;    /* of the final 2xx or 304, as kept */
	uint64_t bytes;                /* body bytes on the wire, all attempts */
	double handed_at;              /* when the attempt went on the wire (its RTT) */

	/* The response being received (reset at every status line, so the
	 * bodies and headers of followed redirects are forgotten). */
	char *body;
	size_t body_len, body_cap;
	bool too_big, no_memory;
	size_t read_cost, read_tokens; /* reckoned for reading the body (a 2xx) */
	size_t read_charge;            /* charged for reading it, until the callback returns */
	size_t header_bytes;           /* header lines libcurl handed over */
	uint64_t names_seen;           /* the header block's names, hashed
	                                  (fetch_response_header_last) */
	uint64_t length;               /* Content-Length of the header block, when length_known */
	bool length_known;
	long status;
	char reason[64];
	char *link_ref;                /* Link: rel="next" as sent, read at the end */
	char *want_header;             /* fetch_want_header()'s name, or NULL */
	char *header_value;            /* its value in the final 2xx response, or NULL */
	char *location;                /* a 3xx's target, when raced follows redirects itself */
	/* Last, and not zeroed for a new request (fetch_start_if): */
	char curl_err[CURL_ERROR_SIZE];
	char msg[ERR_MAX];
};

TAILQ_HEAD(fetch_list, fetch);

struct fetch_provider {
	struct fetcher *f;
	struct fetch_provider *next;
	char *name;
	struct baseurl base;           /* base_url; request URLs resolve under it */
	struct auth *auth;             /* a secret: requests leave only for base.origin */
	bool has_token;                /* auth_has_secret(auth) */
	struct curl_slist *headers;    /* every request's lines, the secret's included */
	struct curl_slist *headers_public; /* without the secret: hops off the origin
	                                      (auth_follows_redirects only) */
	uint32_t max_connections, timeout_ms, connect_timeout_ms;
	uint32_t max_retries, max_redirects;
	double rate_limit;
	size_t max_body;
	bool adaptive;                 /* the limit is aimd's, max_connections its ceiling */
	struct tls_conf tls;           /* its ca_file owned */
	bool https;                    /* base_url is https (tls_easy_setopt) */
	struct aimd aimd;
	struct quota quota;
	struct tokenbucket bucket;     /* rate_limit, FETCH_RATE_BURST deep */
	struct event *admit;
	double admit_armed_at;         /* now_s() when admit was armed, not pending before */
	struct fetch_list queue, all;
	struct fetch_provider_stats stats;
};

struct fetcher {
	struct event_base *base;
	CURLM *multi;
	CURLSH *share;                 /* TLS sessions, for all its easy handles (tls.h) */
	struct event *timer;
	struct fetch_provider *providers, **providers_tail;
	LIST_HEAD(, fetch_sock) socks;
	struct fetch_sock **by_fd;     /* our open sockets by fd (fetch_loop.c), n_by_fd long */
	size_t n_by_fd;
	struct fetch_pool pool;        /* idle easy handles and body buffers */
	long host_connections;         /* sum of the providers' max_connections */
	struct jsondoc *doc;           /* bodies are read into it, reused */
	struct fetch_list parked;      /* 2xx bodies waiting for memory to read them */
	struct event *park_timer;      /* while any is parked */
	uint64_t park_released;        /* membudget_released_total() when last seen moving */
	double park_moved_at;          /* and when */
	bool doc_busy;                 /* a done callback is reading it */
	int dispatching;               /* done callbacks running */
	bool free_pending;
	bool env_proxy;                /* the environment named a proxy at start */
};

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline struct timeval tv_ms(uint64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
	                     .tv_usec = (suseconds_t)((ms % 1000) * 1000)};
	return tv;
}

/* fetch.c: a request's life. */
/* Configure r's easy handle for one attempt and hand it to the multi;
 * -1 with r->msg set when it cannot start. */
int fetch_handoff(struct fetch *r);
/* The attempt's easy handle leaves the multi (back to the pool); its
 * connection slot is free again. */
void fetch_attempt_release(struct fetch *r);
/* One attempt ended (its CURLMSG_DONE was read): classify, then retry or
 * finish. */
void fetch_attempt_done(struct fetch *r, CURLcode rc);
/* The end of a request: call back once (doc: the body read, or NULL),
 * then free it. */
void fetch_finish(struct fetch *r, enum fetch_outcome o, struct jsondoc *doc);
/* After a libevent callback: free the fetcher if a done callback asked to. */
void fetch_finish_dispatch(struct fetcher *f);

#endif
