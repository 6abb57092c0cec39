/* fetch — see fetch.h.
 *
 * Design notes
 *
 * Three structs, as in curl's hiperfifo example: the fetcher (one multi
 * handle, one replaceable one-shot evtimer for CURLMOPT_TIMERFUNCTION), a
 * request (struct fetch, found from its easy handle by CURLOPT_PRIVATE) and
 * a socket (struct fetch_sock, attached with curl_multi_assign).  libcurl is
 * only ever driven by curl_multi_socket_action() from a libevent callback,
 * never from inside one of its own callbacks; the timer callback only arms
 * or deletes the evtimer, and the header callback only reads libcurl's
 * header store (curl_easy_header, which its manual allows there).  A
 * failure of curl_multi_socket_action() other than an unknown socket ends
 * the attempts on the wire as transient failures (multi_failed).
 *
 * What is not glue lives in pure modules: backoff (the retry delays and
 * their one jitter source), tokenbucket (the rate limit), linkheader (RFC
 * 8288 "next").  Response headers come from libcurl's store: Link and
 * Retry-After of the final response once the attempt is done,
 * Content-Length and Content-Encoding where a header block ends, ETag and
 * Last-Modified of a final 2xx or 304 (conditional.h says what is kept).
 * A request with validators sends its own header list: their lines
 * chained in front of the provider's (conditional.h), set at every
 * attempt since a pooled easy handle keeps the list it last sent.
 *
 * A request moves QUEUED -> ACTIVE -> (BACKOFF -> QUEUED -> ACTIVE)* -> DONE.
 *  - QUEUED: in its provider's admission queue (FIFO), waiting for a free
 *    connection slot (in_flight < provider_limit()), an unspent quota and a
 *    rate-limit token.  The provider's `admit` evtimer is armed for the
 *    moment all may hold.  provider_limit() and provider_gate() are the one
 *    place admission reads its limits.
 *  - ACTIVE: its easy handle is in the multi handle.  The attempt's timeout
 *    starts here, so it measures the request, not the wait.
 *  - BACKOFF: a transient failure with retries left; its own evtimer puts
 *    it back at the tail of the queue.
 *  - DONE: its done callback is running.
 * Completed transfers are read with curl_multi_info_read() in drain() only;
 * that is where an attempt's ownership of its easy handle ends (attempt_read
 * takes what it needs from the handle, then the handle goes back to a small
 * free list before the callback runs).  fetch_cancel() and multi_failed()
 * end an attempt early through the same attempt_release().
 *
 * Re-entrancy: a done callback runs outside any libcurl call and after the
 * request is off every list; it may start and cancel other requests and
 * even call fetcher_free(), which then cancels everything and defers the
 * actual free to the libevent callback that is unwinding (dispatching > 0).
 */
#include "fetch.h"
#include "auth.h"
#include "aimd.h"
#include "backoff.h"
#include "baseurl.h"
#include "conditional.h"
#include "error.h"
#include "linkheader.h"
#include "log.h"
#include "membudget.h"
#include "quota.h"
#include "raced_version.h"
#include "redact.h"
#include "tokenbucket.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/queue.h>

#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

_Static_assert(FETCH_LIMIT_REASON_MAX == AIMD_REASON_MAX, "fetch.h and aimd.h disagree on the reason's length");

/* A token array grown past this by one huge page is given back after it. */
#define FETCH_DOC_KEEP_BYTES (1u << 20)

enum fetch_state { FS_QUEUED, FS_ACTIVE, FS_BACKOFF, FS_PARKED, FS_DONE };

struct fetch_sock {
	struct fetcher *f;
	struct event ev;
	bool armed;
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
	char *effective_url;
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
	long status;
	char reason[64];
	char *link_ref;                /* Link: rel="next" as sent, read at the end */
	char *want_header;             /* fetch_want_header()'s name, or NULL */
	char *header_value;            /* its value in the final 2xx response, or NULL */
	char *location;                /* a 3xx's target, when raced follows redirects itself */
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
	struct aimd aimd;
	struct quota quota;
	struct tokenbucket bucket;     /* rate_limit, FETCH_RATE_BURST deep */
	struct event *admit;
	struct fetch_list queue, all;
	struct fetch_provider_stats stats;
};

struct fetcher {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct fetch_provider *providers, **providers_tail;
	LIST_HEAD(, fetch_sock) socks;
	struct pooled_easy {
		CURL *e;
		const struct fetch_provider *p; /* whose options it still has */
	} pool[FETCH_EASY_POOL_MAX];
	size_t n_pool;
	struct pooled_body {
		char *buf;
		size_t cap;
	} bodies[FETCH_EASY_POOL_MAX];
	size_t n_bodies;
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

static void fetcher_destroy(struct fetcher *f);
static void finish_dispatch(struct fetcher *f);

/* ---- small things ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timeval tv_ms(uint64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
	                     .tv_usec = (suseconds_t)((ms % 1000) * 1000)};
	return tv;
}

static const char *reason_of(long status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 410: return "Gone";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "";
	}
}

static bool status_is_transient(long status)
{
	return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

/* libcurl errors that another attempt cannot fix. */
static bool curl_error_is_permanent(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_NOT_BUILT_IN:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return true;
	default:
		return false;
	}
}

/* libcurl's bound on all of a response's headers (MAX_HTTP_RESP_HEADER_SIZE,
 * not in its API). */
#define FETCH_CURL_HEADERS_MAX (300u << 10)

/* Which of libcurl's header limits a failed response ran into, in bytes,
 * or 0.  A header line longer than CURL_MAX_HTTP_HEADER (100 KiB): libcurl
 * 7.88 reports CURLE_OUT_OF_MEMORY, with no error text, after the status
 * line and before any body (8.6 and later: CURLE_TOO_LARGE).  Headers over
 * FETCH_CURL_HEADERS_MAX in all: CURLE_RECV_ERROR, which a reset also
 * gives, so only once the lines handed over leave no room for one more
 * line under the bound.  The same server sends the same headers again, so
 * neither is retried.  (A real allocation failure or a reset at that very
 * point would be taken for it: one URL failed, not a crash.) */
static unsigned header_limit_hit(CURLcode rc, long status, const struct fetch *r)
{
#if LIBCURL_VERSION_NUM >= 0x080600
	if (rc == CURLE_TOO_LARGE)
		return CURL_MAX_HTTP_HEADER;
#endif
	if (status <= 0 || r->body_len > 0)
		return 0;
	if (rc == CURLE_OUT_OF_MEMORY)
		return CURL_MAX_HTTP_HEADER;
	if (rc == CURLE_RECV_ERROR && r->header_bytes + CURL_MAX_HTTP_HEADER > FETCH_CURL_HEADERS_MAX)
		return FETCH_CURL_HEADERS_MAX;
	return 0;
}

/* ---- easy handles and body buffers: small bounded free lists ----
 *
 * An idle easy handle keeps the options of the provider it last served
 * (providers live as long as the fetcher), so that the next request of
 * that provider sets only what differs per request; a handle going to
 * another provider is reset first. */

static CURL *easy_get(struct fetcher *f, const struct fetch_provider *p, bool *configured)
{
	*configured = false;
	if (!f->n_pool)
		return curl_easy_init();
	for (size_t i = f->n_pool; i-- > 0;) {
		if (f->pool[i].p == p) {
			CURL *e = f->pool[i].e;
			f->pool[i] = f->pool[--f->n_pool];
			*configured = true;
			return e;
		}
	}
	struct pooled_easy pe = f->pool[--f->n_pool];
	if (pe.p)
		curl_easy_reset(pe.e);
	return pe.e;
}

/* p: the provider whose options e still has, or NULL to reset it. */
static void easy_put(struct fetcher *f, CURL *e, const struct fetch_provider *p)
{
	if (!e)
		return;
	curl_easy_setopt(e, CURLOPT_CURLU, NULL); /* the request's, freed with it */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL); /* may be the request's too; set again
	                                                  at every hand-off */
	if (f->n_pool < FETCH_EASY_POOL_MAX) {
		if (!p)
			curl_easy_reset(e);
		f->pool[f->n_pool++] = (struct pooled_easy){.e = e, .p = p};
	} else {
		curl_easy_cleanup(e);
	}
}

static void provider_kick(struct fetch_provider *p);

/* An attempt's easy handle leaves the multi handle and goes back to the
 * free list; its connection slot is free again.  A handle libcurl would
 * not take off is closed instead (curl_easy_cleanup removes it itself). */
static void attempt_release(struct fetch *r)
{
	struct fetch_provider *p = r->p;
	if (curl_multi_remove_handle(p->f->multi, r->easy) == CURLM_OK)
		easy_put(p->f, r->easy, p);
	else
		curl_easy_cleanup(r->easy);
	r->easy = NULL;
	p->stats.in_flight--;
	provider_kick(p);
}

static void body_get(struct fetcher *f, struct fetch *r)
{
	if (r->body || !f->n_bodies)
		return;
	f->n_bodies--;
	r->body = f->bodies[f->n_bodies].buf;
	r->body_cap = f->bodies[f->n_bodies].cap;
	membudget_charge(r->body_cap);
}

/* Keeps the buffer for the next request unless it is large or the list full. */
static void body_put(struct fetcher *f, char *buf, size_t cap)
{
	if (buf && cap <= FETCH_BODY_POOL_KEEP_MAX && f->n_bodies < FETCH_EASY_POOL_MAX)
		f->bodies[f->n_bodies++] = (struct pooled_body){.buf = buf, .cap = cap};
	else
		free(buf);
}



/* ---- URLs (baseurl.h) ---- */

int fetch_resolve_url(const char *base, const char *ref, char **out, char *err)
{
	return baseurl_resolve(base, ref, out, err);
}

int fetch_provider_url(const struct fetch_provider *p, const char *url, char **out, char *err)
{
	return baseurl_request_url(&p->base, url, out, err);
}

/* ---- response headers and body ---- */

static void response_reset(struct fetch *r)
{
	r->body_len = 0;
	r->header_bytes = 0;
	r->status = 0;
	r->reason[0] = '\0';
}

/* The value of the last `name` header of the response being received (or
 * received last), or NULL.  Valid until the next call. */
static const char *header_last(CURL *e, const char *name)
{
	struct curl_header *h;
	if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	if (h->amount > 1 &&
	    curl_easy_header(e, name, h->amount - 1, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	return h->value;
}

#define CONTENT_LENGTH_CHARS_MAX 31 /* a longer Content-Length is not read */

/* Whether a 2xx response's unencoded Content-Length says its body is over
 * max_body, so that it is refused before the body is read. */
static bool length_over_max_body(CURL *e, size_t max_body)
{
	const char *v = header_last(e, "Content-Encoding");
	if (v && strcasecmp(v, "identity") != 0)
		return false; /* max_body counts the decoded body */
	if (!(v = header_last(e, "Content-Length")) || strlen(v) > CONTENT_LENGTH_CHARS_MAX)
		return false;
	char *end;
	unsigned long long len = strtoull(v, &end, 10);
	return end != v && len > max_body;
}

/* The status line resets the response (a redirect's is forgotten); the
 * blank line ending a header block is where a body too large is refused.
 * Other headers are read from libcurl's store (curl_easy_header) when
 * needed. */
static size_t header_cb(char *buf, size_t size, size_t nitems, void *userp)
{
	struct fetch *r = userp;
	size_t n = size * nitems;
	const char *end = buf + n;

	while (end > buf && (end[-1] == '\r' || end[-1] == '\n'))
		end--;
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		response_reset(r);
		const char *s = memchr(buf, ' ', (size_t)(end - buf));
		if (s) {
			char *e;
			r->status = strtol(s + 1, &e, 10);
			for (s = e; s < end && (*s == ' ' || *s == '\t'); s++)
				;
			size_t len = (size_t)(end - s);
			if (len >= sizeof r->reason)
				len = sizeof r->reason - 1;
			memcpy(r->reason, s, len);
			r->reason[len] = '\0';
		}
	} else if (end == buf && r->status >= 200 && r->status < 300 &&
	           length_over_max_body(r->easy, r->p->max_body)) {
		r->too_big = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	r->header_bytes += n;
	return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct fetch *r = userp;
	size_t n = size * nmemb;
	size_t max = r->p->max_body;

	if (n > max - r->body_len) {
		r->too_big = true;
		return 0;
	}
	if (r->body_len + n > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap * 2 : 16384;
		if (cap < r->body_len + n)
			cap = r->body_len + n;
		if (cap > max)
			cap = max;
		char *b = realloc(r->body, cap);
		if (!b) {
			r->no_memory = true;
			return 0;
		}
		membudget_charge(cap - r->body_cap);
		r->body = b;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	return n;
}

/* ---- admission: connection slots, the quota and the token bucket ---- */

/* Requests on the wire the provider allows now. */
static uint32_t provider_limit(const struct fetch_provider *p)
{
	return p->adaptive ? aimd_limit(&p->aimd) : p->max_connections;
}

/* Whether the head of the queue may go now (a slot is free: the caller
 * checked); when not, *wait_us is how long until it may.  take: spend the
 * token and the quota when it may. */
static bool provider_gate(struct fetch_provider *p, bool take, uint64_t *wait_us)
{
	double until, now = 0;
	if (p->quota.known || p->rate_limit > 0)
		now = now_s(); /* (no clock read when neither limits) */
	*wait_us = 0;
	if (!quota_may_start(&p->quota, now, &until)) {
		*wait_us = (uint64_t)((until - now) * 1e6) + 1;
		return false;
	}
	if (p->rate_limit > 0) {
		bool ok = take ? tokenbucket_take(&p->bucket, now) : tokenbucket_wait_us(&p->bucket, now) == 0;
		if (!ok) {
			*wait_us = tokenbucket_wait_us(&p->bucket, now);
			return false;
		}
	}
	if (take)
		quota_started(&p->quota);
	return true;
}

/* Arm the admit timer for when the head of the queue may go. */
static void provider_kick(struct fetch_provider *p)
{
	uint64_t wait_us;
	if (TAILQ_EMPTY(&p->queue) || p->stats.in_flight >= provider_limit(p))
		return;
	(void)provider_gate(p, false, &wait_us);
	struct timeval tv = {.tv_sec = (time_t)(wait_us / 1000000),
	                     .tv_usec = (suseconds_t)(wait_us % 1000000)};
	evtimer_add(p->admit, &tv);
}

/* Configure r's easy handle for one attempt and hand it to the multi. */

/* libcurl's sockets, close-on-exec like every fd of raced's (libcurl
 * itself does not ask for it). */
static curl_socket_t open_socket_cloexec(void *arg, curlsocktype purpose,
                                         struct curl_sockaddr *a)
{
	(void)arg;
	(void)purpose;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* Best effort: a closed fd (EBADF) is left alone. */
static void fd_make_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0 && !(fl & FD_CLOEXEC))
		(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

static int handoff(struct fetch *r)
{
	struct fetch_provider *p = r->p;
	struct fetcher *f = p->f;
	bool configured;

	const char *url = r->hop ? r->hop : r->url;
	bool on_origin = !r->hop || baseurl_on_origin(&p->base, r->hop);
	if (!r->cu) {
		CURLUcode uc = baseurl_curlu(&p->base, url, &r->cu);
		if (uc == CURLUE_OK && on_origin)
			uc = auth_url_apply(p->auth, r->cu);
		if (uc != CURLUE_OK)
			return err_set(r->msg, "GET %s: cannot start the transfer: %s", url,
			               curl_url_strerror(uc));
	}
	CURL *e = easy_get(f, p, &configured);
	if (!e)
		return err_set(r->msg, "GET %s: cannot start the transfer: out of memory", r->url);
	body_get(f, r);
	response_reset(r);
	r->too_big = false;
	r->no_memory = false;
	r->curl_err[0] = '\0';

	CURLcode c = CURLE_OK;
#define SET(opt, val) if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val)
	/* The same URL twice: libcurl connects by the CURLU (which overrides
	 * CURLOPT_URL) and takes the string, when one is set, as the effective
	 * URL instead of printing the CURLU back. */
	SET(CURLOPT_URL, url);
	SET(CURLOPT_CURLU, r->cu);
	SET(CURLOPT_PRIVATE, r);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_ERRORBUFFER, r->curl_err);
	SET(CURLOPT_HTTPHEADER, !on_origin ? p->headers_public : r->cond.head ? r->cond.head : p->headers);
	if (configured)
		goto options_set;
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_FOLLOWLOCATION, auth_follows_redirects(p->auth) ? 0L : 1L);
	if (c == CURLE_OK)
		c = auth_easy_setopt(p->auth, e);
	SET(CURLOPT_MAXREDIRS, (long)p->max_redirects);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_MAXCONNECTS, (long)p->max_connections); /* the ceiling when adaptive */
	SET(CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket_cloexec);
	if (p->connect_timeout_ms)
		SET(CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_timeout_ms);
	if (!f->env_proxy) {
		/* "no proxy", which is what libcurl would find: it then reads no
		 * environment variables per transfer (see env_names_proxy). */
		SET(CURLOPT_PROXY, "");
		SET(CURLOPT_NOPROXY, "");
	}
options_set:
#undef SET
	if (c != CURLE_OK) {
		easy_put(f, e, NULL);
		return err_set(r->msg, "GET %s: cannot start the transfer: %s", r->url,
		               curl_easy_strerror(c));
	}
	CURLMcode mc = curl_multi_add_handle(f->multi, e);
	if (mc != CURLM_OK) {
		easy_put(f, e, p);
		return err_set(r->msg, "GET %s: cannot start the transfer: %s", r->url,
		               curl_multi_strerror(mc));
	}
	r->easy = e;
	r->state = FS_ACTIVE;
	r->attempts++;
	r->handed_at = now_s();
	p->stats.requests++;
	p->stats.in_flight++;
	if (p->adaptive)
		aimd_started(&p->aimd, p->stats.in_flight);
	return 0;
}

/* ---- completion ---- */

static void request_free(struct fetch *r)
{
	TAILQ_REMOVE(&r->p->all, r, all_link);
	free(r->url);
	free(r->hop);
	curl_url_cleanup(r->cu);
	free(r->effective_url);
	conditional_headers_free(&r->cond);
	free(r->etag);
	free(r->last_modified);
	membudget_release(r->body_cap + r->read_charge);
	body_put(r->p->f, r->body, r->body_cap);
	free(r->link_ref);
	free(r->want_header);
	free(r->header_value);
	free(r->location);
	free(r);
}

/* The end of a request: call back once, then free it. */
/* A JSON document for a body: the fetcher's own, unless a done callback
 * still reads that one (a request finishing inside another's callback). */
static struct jsondoc *doc_get(struct fetcher *f)
{
	return f->doc_busy ? jsondoc_new() : f->doc;
}

static void doc_put(struct fetcher *f, struct jsondoc *doc)
{
	if (doc && doc == f->doc) {
		f->doc_busy = false;
		jsondoc_trim(doc, FETCH_DOC_KEEP_BYTES);
	} else {
		jsondoc_free(doc);
	}
}

/* msg (ERR_MAX) without secrets: a URL's password, libcurl's text about
 * it, a query auth parameter, and the provider's token or password should
 * a server echo it (a reason phrase). */
static void mask_secrets(const struct fetch_provider *p, char *msg)
{
	auth_mask(p->auth, msg, ERR_MAX);
}

static void finish(struct fetch *r, enum fetch_outcome o, struct jsondoc *doc)
{
	struct fetch_provider *p = r->p;
	struct fetcher *f = p->f;
	char *next = NULL;
	char err[ERR_MAX];

	switch (o) {
	case FETCH_OK: p->stats.succeeded++; break;
	case FETCH_TRANSIENT: p->stats.failed_transient++; break;
	case FETCH_HTTP: p->stats.failed_http++; break;
	case FETCH_BODY: p->stats.failed_body++; break;
	}
	if (o == FETCH_OK && r->link_ref)
		if (baseurl_resolve(r->effective_url ? r->effective_url : r->url, r->link_ref, &next,
		                    err) < 0)
			next = NULL; /* a link that is not a URL is no link */
	if (o != FETCH_OK)
		mask_secrets(p, r->msg);
	bool not_modified = o == FETCH_OK && r->status == 304;
	p->stats.not_modified += not_modified;
	struct fetch_result res = {
		.outcome = o,
		.url = r->url,
		.effective_url = r->effective_url,
		.http_status = r->status,
		.attempts = r->attempts,
		.doc = doc,
		.body = doc ? r->body : NULL,
		.body_len = doc ? r->body_len : 0,
		.link_next = next,
		.header = o == FETCH_OK ? r->header_value : NULL,
		.not_modified = not_modified,
		.conditional = r->cond.conditional,
		.etag = o == FETCH_OK ? r->etag : NULL,
		.last_modified = o == FETCH_OK ? r->last_modified : NULL,
		.bytes = r->bytes,
		.error = o == FETCH_OK ? NULL : r->msg,
	};
	r->state = FS_DONE;
	if (doc == f->doc)
		f->doc_busy = true;
	f->dispatching++;
	r->done(r->arg, &res);
	f->dispatching--;
	doc_put(f, doc);
	free(next);
	request_free(r);
}

int64_t fetch_retry_after_ms(const char *v, time_t now)
{
	if (!v || !*v)
		return -1;
	if (isdigit((unsigned char)v[0])) {
		char *e;
		unsigned long long s = strtoull(v, &e, 10);
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e)
			return -1;
		return s > FETCH_RETRY_AFTER_MAX_MS / 1000 ? FETCH_RETRY_AFTER_MAX_MS : (int64_t)s * 1000;
	}
	time_t t = curl_getdate(v, NULL);
	if (t == -1)
		return -1;
	if (t <= now)
		return 0;
	int64_t ms = ((int64_t)t - (int64_t)now) * 1000;
	return ms > FETCH_RETRY_AFTER_MAX_MS ? FETCH_RETRY_AFTER_MAX_MS : ms;
}

/* retry_after_ms: the response's Retry-After, -1 if none. */
static void schedule_retry(struct fetch *r, int64_t retry_after_ms)
{
	struct fetch_provider *p = r->p;
	/* r->attempts is 1 for the first retry */
	uint64_t delay = quota_retry_delay_ms(retry_after_ms,
	                                      backoff_full_jitter_ms(FETCH_BACKOFF_BASE_MS, FETCH_BACKOFF_CAP_MS,
	                                                             r->attempts, NULL),
	                                      FETCH_BACKOFF_BASE_MS, FETCH_RETRY_AFTER_MAX_MS);
	r->state = FS_BACKOFF;
	p->stats.waiting++;
	p->stats.retries++;
	struct timeval tv = tv_ms(delay);
	evtimer_add(&r->backoff, &tv);
}

static void describe_curl_error(struct fetch *r, CURLcode rc, curl_off_t connect_us)
{
	const struct fetch_provider *p = r->p;
	const char *detail = r->curl_err[0] ? r->curl_err : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		if (connect_us == 0 && p->connect_timeout_ms && p->connect_timeout_ms < p->timeout_ms)
			snprintf(r->msg, sizeof r->msg, "GET %s: could not connect within %u ms", r->url,
			         p->connect_timeout_ms);
		else
			snprintf(r->msg, sizeof r->msg,
			         "GET %s: timed out after %u ms (setting 'timeout' of [provider %s])",
			         r->url, p->timeout_ms, p->name);
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		snprintf(r->msg, sizeof r->msg, "GET %s: cannot connect: %s", r->url, detail);
		break;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2_STREAM:
		snprintf(r->msg, sizeof r->msg, "GET %s: response cut short: %s", r->url, detail);
		break;
	case CURLE_TOO_MANY_REDIRECTS:
		snprintf(r->msg, sizeof r->msg,
		         "GET %s: more than %u redirects (setting 'max_redirects' of [provider %s]); not retried",
		         r->url, p->max_redirects, p->name);
		break;
	case CURLE_WRITE_ERROR:
		if (r->no_memory) {
			snprintf(r->msg, sizeof r->msg, "GET %s: out of memory storing the body", r->url);
			break;
		}
		/* fall through */
	default:
		snprintf(r->msg, sizeof r->msg, "GET %s: %s%s", r->url, detail,
		         curl_error_is_permanent(rc) ? "; not retried" : "");
		break;
	}
}

/* The target of the first Link header of the response that has a "next"
 * link, malloc'd, or NULL. */
static char *response_link_next(CURL *e)
{
	struct curl_header *h;
	size_t amount = 1;

	for (size_t i = 0; i < amount; i++) {
		if (curl_easy_header(e, "Link", i, CURLH_HEADER, -1, &h) != CURLHE_OK)
			return NULL;
		amount = h->amount;
		const char *target;
		size_t len;
		if (linkheader_next(h->value, strlen(h->value), &target, &len))
			return strndup(target, len);
	}
	return NULL;
}

static const char *quota_header(void *ctx, const char *name)
{
	return header_last(ctx, name);
}

/* What an attempt's end says about load (aimd.h). */
static enum aimd_signal load_signal(CURLcode rc, long status)
{
	if (rc == CURLE_OPERATION_TIMEDOUT || (rc == CURLE_OK && status == 504))
		return AIMD_TIMEOUT;
	if (rc != CURLE_OK)
		return AIMD_IGNORED; /* refused, reset, cut: not the provider's pace */
	return status == 429 ? AIMD_THROTTLED : status == 503 ? AIMD_UNAVAILABLE : AIMD_ANSWER;
}

/* Response accounting for admission: the quota the answer announces (the
 * other requests on the wire not yet counted by it), the attempt's RTT and
 * load signal for the adaptive limit, the counters. */
static void attempt_account(struct fetch *r, CURLcode rc, long status)
{
	struct fetch_provider *p = r->p;
	double now = now_s();
	struct quota_reading qr;

	if (rc == CURLE_OK && quota_read(quota_header, r->easy, time(NULL), &qr))
		quota_observe(&p->quota, &qr, p->stats.in_flight - 1, now);
	enum aimd_signal sig = load_signal(rc, status);
	p->stats.throttled += sig == AIMD_THROTTLED;
	p->stats.unavailable += sig == AIMD_UNAVAILABLE;
	p->stats.timeouts += rc == CURLE_OPERATION_TIMEDOUT;
	if (!p->adaptive)
		return;
	/* The provider's part of the round trip: from the request sent to its
	 * answer's first byte (libcurl's clocks), not from the hand-off to the
	 * completion read: that also counts the connect and the time raced's
	 * loop took to get to the transfer, which grow with raced's own
	 * request rate on a busy CPU, not with the provider's queue, and cut
	 * the limit far below what the provider takes (docs/performance.md,
	 * "Adaptive concurrency").  The hand-off time stands in when libcurl
	 * has no first byte (a timeout). */
	double rtt = now - r->handed_at;
	curl_off_t pre = 0, first = 0;
	if (rc == CURLE_OK && curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME_T, &pre) == CURLE_OK &&
	    curl_easy_getinfo(r->easy, CURLINFO_STARTTRANSFER_TIME_T, &first) == CURLE_OK && first > pre)
		rtt = (double)(first - pre) / 1e6;
	uint64_t windows = p->aimd.windows;
	aimd_observe(&p->aimd, rtt, sig, now);
	if (p->aimd.windows != windows && log_level() >= LOG_DEBUG) {
		char why[AIMD_REASON_MAX];
		aimd_describe(&p->aimd, why, sizeof why);
		log_write(LOG_DEBUG, "provider %s: window %llu: limit %u, RTT %.1f ms, baseline %.1f ms, band %.1f ms; last change: %s",
		          p->name, (unsigned long long)p->aimd.windows, aimd_limit(&p->aimd),
		          p->aimd.window_rtt * 1000, p->aimd.mean * 1000, p->aimd.band * 1000, why);
	}
}

/* Read what the attempt's easy handle knows, then let the handle go.
 * Returns the response's Retry-After in ms (-1: none) unless it is a
 * success, which is never retried. */
static int64_t attempt_read(struct fetch *r, CURLcode rc, curl_off_t *connect_us)
{
	struct fetch_provider *p = r->p;
	CURL *e = r->easy;
	long status = 0;
	char *eff = NULL;
	curl_off_t down = 0;
	int64_t retry_after_ms = -1;

	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
	curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &down);
	curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, connect_us);
	free(r->effective_url);
	r->effective_url = eff ? strdup(eff) : NULL;
	free(r->link_ref);
	r->link_ref = NULL;
	free(r->etag);
	free(r->last_modified);
	r->etag = r->last_modified = NULL;
	free(r->header_value);
	r->header_value = NULL;
	if (rc == CURLE_OK && ((status >= 200 && status < 300) || status == 304)) {
		if (status != 304)
			r->link_ref = response_link_next(e);
		if (status != 304 && r->want_header) {
			/* NULL when absent, or out of memory: the caller's "none" */
			const char *hv = header_last(e, r->want_header);
			r->header_value = hv ? strdup(hv) : NULL;
		}
		r->etag = conditional_response_etag(header_last(e, "ETag"));
		r->last_modified = conditional_response_last_modified(header_last(e, "Last-Modified"));
	} else {
		retry_after_ms = fetch_retry_after_ms(header_last(e, "Retry-After"), time(NULL));
	}
	free(r->location);
	r->location = NULL;
	char *loc = NULL;
	if (rc == CURLE_OK && status >= 300 && status < 400 && auth_follows_redirects(p->auth) &&
	    curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
		r->location = strdup(loc); /* out of memory: the 3xx is the answer */
	r->status = status;
	r->bytes += (uint64_t)down;
	p->stats.bytes += (uint64_t)down;
	attempt_account(r, rc, status);
	attempt_release(r);
	return retry_after_ms;
}

/* ---- reading a 2xx body within memory_limit (membudget.h) ----
 *
 * A body is read (jsondoc) only when its reckoned cost (fetch.h: its
 * tokens, then the items the caller makes of it) fits under the limit
 * besides everything charged; until then it is parked, and
 * the parked bodies are tried again every FETCH_PARK_POLL_MS.  The estimate
 * is charged from the read until the done callback returns (the items
 * charge for themselves by then).  A body that could not be read even with
 * nothing else charged fails for good.  So that raced cannot wait on
 * itself (the memory held may be waiting for this very page), the oldest
 * parked body is read anyway once nothing has been released for
 * FETCH_PARK_STALL_MS. */

static void read_body(struct fetch *r)
{
	struct fetcher *f = r->p->f;
	char perr[ERR_MAX];

	r->read_charge = r->read_cost;
	membudget_charge(r->read_charge);
	/* NULs in strings are allowed here: the one item holding one is
	 * refused by the import, not the whole page.  The token array is
	 * sized once (a doubling one holds up to twice what it needs); if
	 * that fails the parse grows it as usual. */
	struct jsondoc *doc = doc_get(f);
	if (doc)
		(void)jsondoc_reserve(doc, r->read_tokens);
	if (doc && jsondoc_parse(doc, r->body ? r->body : "", r->body_len, 0, perr) == 0) {
		finish(r, FETCH_OK, doc);
		return;
	}
	snprintf(r->msg, sizeof r->msg, "GET %s: body is not JSON: %.200s; not retried", r->url,
	         doc ? perr : "out of memory");
	doc_put(f, doc);
	finish(r, FETCH_BODY, NULL);
}

static void park(struct fetch *r)
{
	struct fetcher *f = r->p->f;
	if (TAILQ_EMPTY(&f->parked)) {
		f->park_released = membudget_released_total();
		f->park_moved_at = now_s();
	}
	r->state = FS_PARKED;
	TAILQ_INSERT_TAIL(&f->parked, r, queue_link);
	struct timeval tv = tv_ms(FETCH_PARK_POLL_MS);
	evtimer_add(f->park_timer, &tv);
}

/* What reading r's body will cost (fetch.h).  A small body is charged
 * the most any body could cost a byte, when that fits now: no census. */
static void reckon(struct fetch *r)
{
	struct jsondoc_census c;

	r->read_tokens = 0;
	r->read_cost = r->body_len * FETCH_READ_COST_MAX;
	if (r->body_len <= FETCH_CENSUS_MIN && membudget_fits(r->read_cost) &&
	    TAILQ_EMPTY(&r->p->f->parked))
		return;
	jsondoc_census(r->body, r->body_len, &c);
	/* Bodies are at most max_body (at most 1 GiB): no overflow. */
	r->read_tokens = c.tokens;
	r->read_cost = c.tokens * JSONDOC_TOKEN_BYTES + c.containers * FETCH_READ_ITEM_COST +
	               FETCH_READ_COPIES * r->body_len;
}

static void body_ready(struct fetch *r)
{
	size_t limit = membudget_limit();

	reckon(r);
	if (r->body_len > limit || r->read_cost > limit - r->body_len) {
		snprintf(r->msg, sizeof r->msg,
		         "GET %s: reading this body of %zu bytes takes about %zu bytes more, over "
		         "memory_limit (%zu bytes; setting 'memory_limit' of [daemon]); not retried",
		         r->url, r->body_len, r->read_cost, limit);
		finish(r, FETCH_BODY, NULL);
	} else if (membudget_fits(r->read_cost) && TAILQ_EMPTY(&r->p->f->parked)) {
		read_body(r);
	} else {
		park(r);
	}
}

/* Read every parked body that fits now, oldest first; the oldest anyway
 * once memory has stopped moving. */
static void park_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetcher *f = arg;
	(void)fd;
	(void)what;

	double now = now_s();
	if (membudget_released_total() != f->park_released) {
		f->park_released = membudget_released_total();
		f->park_moved_at = now;
	}
	bool stalled = now - f->park_moved_at >= FETCH_PARK_STALL_MS / 1000.0;
	struct fetch *r = TAILQ_FIRST(&f->parked);
	while (r && !f->free_pending) {
		if (!stalled && !membudget_fits(r->read_cost)) {
			r = TAILQ_NEXT(r, queue_link);
			continue;
		}
		stalled = false;
		f->park_moved_at = now;
		TAILQ_REMOVE(&f->parked, r, queue_link);
		r->state = FS_ACTIVE;
		read_body(r);
		r = TAILQ_FIRST(&f->parked); /* a callback may have cancelled any */
	}
	if (f->free_pending) {
		finish_dispatch(f);
		return;
	}
	if (!TAILQ_EMPTY(&f->parked)) {
		struct timeval tv = tv_ms(FETCH_PARK_POLL_MS);
		evtimer_add(f->park_timer, &tv);
	}
}

/* A 3xx of a provider whose redirects raced follows (auth.h): the next
 * hop queues for admission as a new attempt of the same request (a hop is
 * no retry), with the secret only if it is on the origin (handoff). */
static void follow_redirect(struct fetch *r)
{
	struct fetch_provider *p = r->p;
	char *loc = r->location;
	r->location = NULL;
	if (r->hops >= p->max_redirects) {
		free(loc);
		snprintf(r->msg, sizeof r->msg,
		         "GET %s: more than %u redirects (setting 'max_redirects' of [provider %s]); not retried",
		         r->url, p->max_redirects, p->name);
		finish(r, FETCH_HTTP, NULL);
		return;
	}
	char *hop = auth_url_strip(p->auth, loc);
	char *eff = hop ? strdup(hop) : NULL;
	free(loc);
	if (!eff) {
		free(hop);
		snprintf(r->msg, sizeof r->msg, "GET %s: out of memory following a redirect", r->url);
		finish(r, FETCH_TRANSIENT, NULL);
		return;
	}
	free(r->hop);
	r->hop = hop;
	free(r->effective_url);
	r->effective_url = eff;
	r->hops++;
	r->attempts--; /* handoff counts it again: one attempt, as libcurl's own redirects */
	curl_url_cleanup(r->cu);
	r->cu = NULL;
	r->state = FS_QUEUED;
	TAILQ_INSERT_HEAD(&p->queue, r, queue_link);
	p->stats.waiting++;
	provider_kick(p);
}

/* One attempt ended (its CURLMSG_DONE was read): classify, then retry or finish. */
static void attempt_done(struct fetch *r, CURLcode rc)
{
	struct fetch_provider *p = r->p;
	curl_off_t connect_us = 0;
	int64_t retry_after_ms = attempt_read(r, rc, &connect_us);
	long status = r->status;

	enum fetch_outcome o;
	bool retryable = false;
	unsigned limit;

	if (rc == CURLE_OK && status >= 200 && status < 300) {
		body_ready(r);
		return;
	} else if (rc == CURLE_OK && status == 304) {
		finish(r, FETCH_OK, NULL); /* Not Modified: no body, nothing to retry */
		return;
	} else if (rc == CURLE_OK && r->location) {
		follow_redirect(r);
		return;
	} else if (rc == CURLE_OK) {
		const char *reason = r->reason[0] ? r->reason : reason_of(status);
		retryable = status_is_transient(status);
		o = retryable ? FETCH_TRANSIENT : FETCH_HTTP;
		char hint[256];
		auth_refusal_hint(p->auth, status, p->name, hint, sizeof hint);
		snprintf(r->msg, sizeof r->msg, "GET %s: HTTP %ld%s%s%s%s", r->url, status,
		         reason[0] ? " " : "", reason, retryable ? "" : " (not retried)", hint);
	} else if ((limit = header_limit_hit(rc, status, r)) != 0) {
		o = FETCH_HTTP;
		snprintf(r->msg, sizeof r->msg, "GET %s: HTTP %ld with %s than %u KiB, libcurl's limit%s; "
		         "not retried", r->url, status,
		         limit == CURL_MAX_HTTP_HEADER ? "a header line longer" : "headers larger in all",
		         limit >> 10, limit == CURL_MAX_HTTP_HEADER ? " (CURL_MAX_HTTP_HEADER)" : "");
	} else if (r->too_big) {
		o = FETCH_BODY;
		snprintf(r->msg, sizeof r->msg,
		         "GET %s: body larger than max_body (%zu bytes; setting 'max_body' of [provider %s]); not retried",
		         r->url, p->max_body, p->name);
	} else {
		retryable = !curl_error_is_permanent(rc);
		o = retryable ? FETCH_TRANSIENT : FETCH_HTTP;
		describe_curl_error(r, rc, connect_us);
	}

	if (retryable && r->attempts <= p->max_retries) {
		schedule_retry(r, retry_after_ms);
		return;
	}
	if (o == FETCH_TRANSIENT) {
		size_t len = strlen(r->msg);
		snprintf(r->msg + len, sizeof r->msg - len, "; gave up after %u attempt%s",
		         r->attempts, r->attempts == 1 ? "" : "s");
	}
	finish(r, o, NULL);
}

/* The one place completed transfers are read. */
static void drain(struct fetcher *f)
{
	CURLMsg *m;
	int left;

	while (!f->free_pending && (m = curl_multi_info_read(f->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		struct fetch *r = NULL;
		char *priv = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		r = (struct fetch *)(void *)priv;
		if (r)
			attempt_done(r, rc);
	}
}

/* After a libevent callback: free the fetcher if a done callback asked to. */
static void finish_dispatch(struct fetcher *f)
{
	if (f->free_pending && f->dispatching == 0)
		fetcher_destroy(f);
}

/* ---- libevent callbacks ---- */

/* libcurl's multi handle failed as a whole (out of memory, an internal
 * error): every transfer on it ends as a transient failure of its attempt,
 * retried by the usual rules.  A done callback may cancel or start
 * requests, so the search starts over after each. */
static void multi_failed(struct fetcher *f, CURLMcode mc)
{
	struct fetch *r;
	do {
		r = NULL;
		for (struct fetch_provider *p = f->providers; p && !r; p = p->next) {
			for (r = TAILQ_FIRST(&p->all); r && r->state != FS_ACTIVE;)
				r = TAILQ_NEXT(r, all_link);
		}
		if (r) {
			snprintf(r->curl_err, sizeof r->curl_err, "libcurl's multi handle failed: %s",
			         curl_multi_strerror(mc));
			/* Always a transient code: CURLE_OUT_OF_MEMORY would read as
			 * an oversized header (header_limit_hit) and not be retried;
			 * the real cause is in curl_err. */
			attempt_done(r, CURLE_FAILED_INIT);
		}
	} while (r && !f->free_pending);
}

/* Drive libcurl on a socket event or its timeout, then read what ended. */
static void multi_act(struct fetcher *f, curl_socket_t s, int action)
{
	int running;
	CURLMcode mc = curl_multi_socket_action(f->multi, s, action, &running);

	drain(f);
	/* CURLM_BAD_SOCKET: an event for a socket libcurl has already let go
	 * of; nothing is lost. */
	if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET && !f->free_pending)
		multi_failed(f, mc);
	finish_dispatch(f);
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_sock *fs = arg;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	             ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	multi_act(fs->f, fd, action); /* fs may be gone after it */
}

static void curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	multi_act(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void admit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_provider *p = arg;
	struct fetcher *f = p->f;
	struct fetch *r;
	(void)fd;
	(void)what;

	uint64_t wait_us;
	while (!f->free_pending && (r = TAILQ_FIRST(&p->queue)) &&
	       p->stats.in_flight < provider_limit(p)) {
		if (!provider_gate(p, true, &wait_us))
			break;
		TAILQ_REMOVE(&p->queue, r, queue_link);
		p->stats.waiting--;
		if (handoff(r) < 0)
			finish(r, FETCH_TRANSIENT, NULL);
	}
	if (f->free_pending) {
		finish_dispatch(f);
		return;
	}
	provider_kick(p);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *r = arg;
	(void)fd;
	(void)what;
	r->state = FS_QUEUED; /* still counted in waiting */
	TAILQ_INSERT_TAIL(&r->p->queue, r, queue_link);
	provider_kick(r->p);
}

/* ---- libcurl callbacks: bookkeeping only, never call libcurl back ---- */

static void sock_free(struct fetch_sock *fs)
{
	if (fs->armed)
		event_del(&fs->ev);
	LIST_REMOVE(fs, link);
	free(fs);
}

static int socket_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct fetcher *f = userp;
	struct fetch_sock *fs = socketp;
	(void)e;

	if (what == CURL_POLL_REMOVE) {
		/* Possibly for a socket already closed, or never announced. */
		if (fs)
			sock_free(fs);
		return 0;
	}
	if (!fs) {
		fs = calloc(1, sizeof *fs);
		if (!fs)
			return -1;
		fs->f = f;
		LIST_INSERT_HEAD(&f->socks, fs, link);
		/* Not only our sockets (open_socket_cloexec) come here: the
		 * threaded resolver's socketpair, made without close-on-exec,
		 * is watched too. */
		fd_make_cloexec(s);
		if (curl_multi_assign(f->multi, s, fs) != CURLM_OK) {
			sock_free(fs);
			return -1;
		}
	}
	/* A re-announced socket may want other events: rearm from scratch. */
	if (fs->armed) {
		event_del(&fs->ev);
		fs->armed = false;
	}
	short events = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	                       ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (!events)
		return 0;
	event_assign(&fs->ev, f->base, s, (short)(events | EV_PERSIST), sock_event_cb, fs);
	if (event_add(&fs->ev, NULL) < 0)
		return -1;
	fs->armed = true;
	return 0;
}

static int timer_fn(CURLM *m, long timeout_ms, void *userp)
{
	struct fetcher *f = userp;
	(void)m;
	if (timeout_ms < 0) {
		evtimer_del(f->timer);
	} else {
		struct timeval tv = tv_ms((uint64_t)timeout_ms);
		evtimer_add(f->timer, &tv);
	}
	return 0;
}

/* ---- public API ---- */

/* Whether the environment names a proxy for http or https, as libcurl
 * reads it (http_proxy only in lower case, for the reason curl gives).
 * libcurl looks these and no_proxy up again for every transfer, about 1.6 %
 * of a fetch-only import's instructions; a daemon's environment does not
 * change, so when none is set the fetcher says "no proxy" once instead. */
static bool env_names_proxy(void)
{
	static const char *const vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
	                                   "ALL_PROXY"};
	for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return true;
	}
	return false;
}

/* libcurl's multi handle opens a socketpair (for curl_multi_wakeup)
 * without close-on-exec and offers no hook for it.  A new fd is the lowest
 * free one, so the fds curl_multi_init() opens are among the lowest free
 * ones before it: note those, then mark the ones it took.  (Its sockets
 * to servers are made close-on-exec by open_socket_cloexec.) */
#define FETCH_FDS_WATCHED 8

static size_t lowest_free_fds(int *fds)
{
	size_t n = 0;
	while (n < FETCH_FDS_WATCHED) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	return n;
}

static CURLM *multi_new_cloexec(void)
{
	int fds[FETCH_FDS_WATCHED];
	size_t n = lowest_free_fds(fds);
	CURLM *m = curl_multi_init();
	for (size_t i = 0; i < n; i++)
		fd_make_cloexec(fds[i]);
	return m;
}

struct fetcher *fetcher_new(struct event_base *base, char *err)
{
	struct fetcher *f = calloc(1, sizeof *f);
	if (!f) {
		err_set(err, "out of memory");
		return NULL;
	}
	f->base = base;
	f->env_proxy = env_names_proxy();
	f->providers_tail = &f->providers;
	LIST_INIT(&f->socks);
	f->multi = multi_new_cloexec();
	f->timer = evtimer_new(base, curl_timer_cb, f);
	f->doc = jsondoc_new();
	TAILQ_INIT(&f->parked);
	f->park_timer = evtimer_new(base, park_timer_cb, f);
	if (!f->multi || !f->timer || !f->doc || !f->park_timer) {
		err_set(err, "out of memory");
		fetcher_destroy(f);
		return NULL;
	}
	CURLMcode mc = CURLM_OK;
#define MSET(opt, val) if (mc == CURLM_OK) mc = curl_multi_setopt(f->multi, opt, val)
	MSET(CURLMOPT_SOCKETFUNCTION, socket_fn);
	MSET(CURLMOPT_SOCKETDATA, f);
	MSET(CURLMOPT_TIMERFUNCTION, timer_fn);
	MSET(CURLMOPT_TIMERDATA, f);
	MSET(CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
#undef MSET
	if (mc != CURLM_OK) {
		err_set(err, "cannot set up libcurl's multi handle: %s", curl_multi_strerror(mc));
		fetcher_destroy(f);
		return NULL;
	}
	return f;
}

/* The Accept-Encoding line libcurl writes for CURLOPT_ACCEPT_ENCODING "":
 * every encoding it decodes, in its order.  CURLOPT_ACCEPT_ENCODING stays
 * set, as that is what turns decoding on. */
static void accept_encoding_line(char *buf, size_t n)
{
	static const struct {
		int feature;
		const char *names;
	} decoders[] = {
		{CURL_VERSION_LIBZ, "deflate, gzip"},
		{CURL_VERSION_BROTLI, "br"},
		{CURL_VERSION_ZSTD, "zstd"},
	};
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	size_t len = (size_t)snprintf(buf, n, "Accept-Encoding: ");
	const char *sep = "";

	for (size_t i = 0; i < sizeof decoders / sizeof decoders[0]; i++) {
		if (v->features & decoders[i].feature) {
			len += (size_t)snprintf(buf + len, n - len, "%s%s", sep, decoders[i].names);
			sep = ", ";
		}
	}
	if (!*sep)
		snprintf(buf + len, n - len, "identity");
}

/* A provider and what it owns; any part may be missing (a failed set-up). */
static void provider_free(struct fetch_provider *p)
{
	if (p->admit)
		event_free(p->admit);
	curl_slist_free_all(p->headers);
	curl_slist_free_all(p->headers_public);
	auth_free(p->auth);
	baseurl_free(&p->base);
	free(p->name);
	free(p);
}

/* The settings fetcher_add_provider refuses; base_url is baseurl_init's. */
static int provider_conf_check(const struct fetch_provider_conf *c, const char *name, char *err)
{
	if (!c->base_url || !*c->base_url)
		return err_set(err, "[provider %s] has no base_url", name);
	if (c->max_connections < 1)
		return err_set(err, "max_connections of [provider %s] must be at least 1", name);
	if (!(c->rate_limit >= 0) || !isfinite(c->rate_limit))
		return err_set(err, "rate_limit of [provider %s] must be a number >= 0", name);
	if (c->max_body < 1)
		return err_set(err, "max_body of [provider %s] must be at least 1 byte", name);
	if (c->token && strpbrk(c->token, "\r\n"))
		return err_set(err, "the token of [provider %s] contains a line break", name);
	char msg[ERR_MAX];
	if (auth_conf_check(&c->auth, msg, sizeof msg) < 0)
		return err_set(err, "[provider %s]: %s", name, msg);
	return 0;
}

/* The header lines of every request of a provider, in *out; -1 when memory
 * runs out.  User-Agent and Accept-Encoding are lines of our own rather
 * than libcurl's (CURLOPT_USERAGENT, and CURLOPT_ACCEPT_ENCODING without a
 * line of ours), which it formats anew for every transfer; the request head
 * is the same, line for line.  (A proxy's CONNECT, which gets no custom
 * headers, now goes without User-Agent.) */
static int request_headers(struct fetch_provider *p)
{
	char accept_encoding[80];

	accept_encoding_line(accept_encoding, sizeof accept_encoding);
	const char *lines[] = {"User-Agent: raced/" RACED_VERSION, accept_encoding, "Accept: application/json"};
	size_t n = sizeof lines / sizeof *lines;
	if (auth_header_list(p->auth, lines, n, true, &p->headers) < 0)
		return -1;
	if (auth_follows_redirects(p->auth) && auth_header_list(p->auth, lines, n, false, &p->headers_public) < 0)
		return -1;
	return 0;
}

struct fetch_provider *fetcher_add_provider(struct fetcher *f,
                                            const struct fetch_provider_conf *c,
                                            char *err)
{
	const char *name = c->name ? c->name : "?";

	if (provider_conf_check(c, name, err) < 0)
		return NULL;
	struct fetch_provider *p = calloc(1, sizeof *p);
	if (!p) {
		err_set(err, "out of memory");
		return NULL;
	}
	p->f = f;
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->all);
	p->max_connections = c->max_connections;
	p->timeout_ms = c->timeout_ms;
	p->connect_timeout_ms = c->timeout_ms < FETCH_CONNECT_TIMEOUT_MAX_MS ? c->timeout_ms
	                                                                     : FETCH_CONNECT_TIMEOUT_MAX_MS;
	p->max_retries = c->max_retries;
	p->max_redirects = c->max_redirects;
	p->rate_limit = c->rate_limit;
	p->max_body = c->max_body;
	p->adaptive = c->adaptive;
	aimd_init(&p->aimd, c->max_connections, now_s());
	quota_init(&p->quota);
	tokenbucket_init(&p->bucket, c->rate_limit, FETCH_RATE_BURST, now_s());
	p->name = strdup(name);
	p->admit = evtimer_new(f->base, admit_cb, p);
	if (!p->name || !p->admit)
		goto oom;
	if (baseurl_init(&p->base, name, c->base_url, err) < 0)
		goto fail;
	struct auth_conf ac = c->auth;
	if (ac.kind == AUTH_NONE && c->token && *c->token) {
		ac.kind = AUTH_BEARER;
		ac.secret = c->token;
	}
	if (!(p->auth = auth_new(&ac, err))) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg, "%s", err);
		err_set(err, "[provider %s]: %s", name, msg);
		goto fail;
	}
	p->has_token = auth_has_secret(p->auth);
	if (request_headers(p) < 0)
		goto oom;

	long host_connections = f->host_connections + (long)c->max_connections;
	CURLMcode mc = curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host_connections);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, host_connections);
	if (mc != CURLM_OK) {
		err_set(err, "[provider %s]: cannot set libcurl's connection limits: %s", name,
		        curl_multi_strerror(mc));
		goto fail;
	}
	f->host_connections = host_connections;
	*f->providers_tail = p;
	f->providers_tail = &p->next;
	return p;
oom:
	err_set(err, "out of memory");
fail:
	provider_free(p);
	return NULL;
}

int fetch_provider_set_limits(struct fetch_provider *p, const struct fetch_provider_limits *l, char *err)
{
	struct fetcher *f = p->f;
	if (l->max_connections < 1)
		return err_set(err, "max_connections of [provider %s] must be at least 1", p->name);
	if (!(l->rate_limit >= 0) || !isfinite(l->rate_limit))
		return err_set(err, "rate_limit of [provider %s] must be a number >= 0", p->name);
	long host_connections = f->host_connections - (long)p->max_connections + (long)l->max_connections;
	CURLMcode mc = curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host_connections);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, host_connections);
	if (mc != CURLM_OK) {
		(void)curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, f->host_connections);
		(void)curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, f->host_connections);
		return err_set(err, "[provider %s]: cannot set libcurl's connection limits: %s", p->name,
		               curl_multi_strerror(mc));
	}
	f->host_connections = host_connections;
	p->max_connections = l->max_connections;
	if (l->adaptive && !p->adaptive)
		aimd_init(&p->aimd, l->max_connections, now_s());
	else if (l->adaptive)
		aimd_set_ceiling(&p->aimd, l->max_connections);
	p->adaptive = l->adaptive;
	p->timeout_ms = l->timeout_ms;
	p->connect_timeout_ms = l->timeout_ms < FETCH_CONNECT_TIMEOUT_MAX_MS ? l->timeout_ms
	                                                                     : FETCH_CONNECT_TIMEOUT_MAX_MS;
	p->max_retries = l->max_retries;
	if (p->rate_limit != l->rate_limit)
		tokenbucket_set_rate(&p->bucket, l->rate_limit, now_s());
	p->rate_limit = l->rate_limit;
	/* Pooled handles keep the old timeouts: they are set up again. */
	for (size_t i = 0; i < f->n_pool; i++)
		if (f->pool[i].p == p) {
			curl_easy_reset(f->pool[i].e);
			f->pool[i].p = NULL;
		}
	provider_kick(p);
	return 0;
}

struct fetch *fetch_start(struct fetch_provider *p, const char *url,
                          fetch_done_fn done, void *arg, char *err)
{
	return fetch_start_if(p, url, NULL, done, arg, err);
}

struct fetch *fetch_start_if(struct fetch_provider *p, const char *url,
                             const struct fetch_validators *v,
                             fetch_done_fn done, void *arg, char *err)
{
	if (!p || !url || !done) {
		err_set(err, "fetch_start: missing provider, URL or callback");
		return NULL;
	}
	if (p->f->free_pending) {
		err_set(err, "GET %s: the fetcher is shutting down", url);
		redact_buf(err, ERR_MAX);
		return NULL;
	}
	struct fetch *r = calloc(1, sizeof *r);
	if (!r) {
		err_set(err, "out of memory");
		return NULL;
	}
	char *full;
	if (fetch_provider_url(p, url, &full, err) < 0) {
		free(r);
		return NULL;
	}
	r->url = auth_url_strip(p->auth, full);
	free(full);
	if (!r->url) {
		err_set(err, "out of memory");
		free(r);
		return NULL;
	}
	if (p->has_token && !baseurl_on_origin(&p->base, r->url)) {
		/* A next link (or a page reached by a redirect) may name any
		 * host; the token is the provider's, not theirs. */
		enum auth_kind k = auth_kind(p->auth);
		err_set(err, "GET %s: refused: it is not on [provider %s]'s origin %s, and raced "
		        "sends that provider's %s%s%s only there", r->url, p->name, p->base.origin,
		        k == AUTH_BEARER ? "token (token_file)" : "credentials (auth = ",
		        k == AUTH_BEARER ? "" : auth_kind_names[k], k == AUTH_BEARER ? "" : ")");
		mask_secrets(p, err);
		free(r->url);
		free(r);
		return NULL;
	}
	if (conditional_headers(v, p->headers, r->url, &r->cond, err) < 0) {
		redact_buf(err, ERR_MAX);
		free(r->url);
		free(r);
		return NULL;
	}
	r->p = p;
	r->done = done;
	r->arg = arg;
	r->state = FS_QUEUED;
	evtimer_assign(&r->backoff, p->f->base, backoff_cb, r);
	TAILQ_INSERT_TAIL(&p->all, r, all_link);
	TAILQ_INSERT_TAIL(&p->queue, r, queue_link);
	p->stats.waiting++;
	provider_kick(p);
	return r;
}

int fetch_want_header(struct fetch *r, const char *name, char *err)
{
	free(r->want_header);
	if (!(r->want_header = strdup(name)))
		return err_set(err, "out of memory");
	return 0;
}

void fetch_cancel(struct fetch *r)
{
	if (!r || r->state == FS_DONE)
		return;
	struct fetch_provider *p = r->p;
	switch (r->state) {
	case FS_QUEUED:
		TAILQ_REMOVE(&p->queue, r, queue_link);
		p->stats.waiting--;
		break;
	case FS_BACKOFF:
		evtimer_del(&r->backoff);
		p->stats.waiting--;
		break;
	case FS_PARKED:
		TAILQ_REMOVE(&p->f->parked, r, queue_link);
		break;
	case FS_ACTIVE:
		attempt_release(r);
		break;
	case FS_DONE:
		break;
	}
	request_free(r);
}

static void fetcher_destroy(struct fetcher *f)
{
	struct fetch_provider *p, *pn;

	for (p = f->providers; p; p = pn) {
		pn = p->next;
		provider_free(p);
	}
	while (f->n_pool)
		curl_easy_cleanup(f->pool[--f->n_pool].e);
	while (f->n_bodies)
		free(f->bodies[--f->n_bodies].buf);
	if (f->multi)
		(void)curl_multi_cleanup(f->multi); /* may still announce CURL_POLL_REMOVE;
		                                       fails only for a bad handle */
	while (!LIST_EMPTY(&f->socks))
		sock_free(LIST_FIRST(&f->socks));
	if (f->timer)
		event_free(f->timer);
	if (f->park_timer)
		event_free(f->park_timer);
	jsondoc_free(f->doc);
	free(f);
}

void fetcher_free(struct fetcher *f)
{
	if (!f)
		return;
	for (struct fetch_provider *p = f->providers; p; p = p->next) {
		struct fetch *r, *rn;
		for (r = TAILQ_FIRST(&p->all); r; r = rn) {
			rn = TAILQ_NEXT(r, all_link);
			if (r->state != FS_DONE)
				fetch_cancel(r);
		}
	}
	if (f->dispatching) {
		f->free_pending = true; /* freed once the callback returns */
		return;
	}
	fetcher_destroy(f);
}

void fetch_provider_get_stats(const struct fetch_provider *p, struct fetch_provider_stats *out)
{
	*out = p->stats;
	out->limit = provider_limit(p);
	out->adaptive = p->adaptive;
	out->quota_remaining = p->quota.remaining;
	out->quota_holds = p->quota.holds;
	out->held_until = 0;
	if (p->quota.holding && p->quota.known) {
		double left = p->quota.reset_at - now_s();
		if (left > 0)
			out->held_until = time(NULL) + (time_t)ceil(left);
	}
	out->limit_increases = p->aimd.increases;
	out->limit_decreases = p->aimd.decreases;
	out->limit_reason[0] = '\0';
	if (p->adaptive)
		aimd_describe(&p->aimd, out->limit_reason, sizeof out->limit_reason);
}

const char *fetch_provider_name(const struct fetch_provider *p)
{
	return p->name;
}
