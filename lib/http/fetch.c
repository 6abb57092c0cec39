/* fetch — see fetch.h: the public API and a request's life (hand-off to
 * libcurl, completion, the redirects raced follows itself, the callback).
 *
 * Design notes
 *
 * The fetcher is split by job (fetch_int.h lists the modules and holds
 * their shared types): fetch_loop (libcurl multi on libevent),
 * fetch_admit (admission per provider), fetch_retry (backoff),
 * fetch_response (headers and body bytes as they arrive, what a finished
 * attempt's handle says), fetch_body (reading a 2xx body within
 * memory_limit), fetch_error (classifying failures, their messages),
 * fetch_pool (idle easy handles and body buffers).  What is not glue lives
 * in pure modules: backoff (the retry delays and their one jitter source),
 * tokenbucket (the rate limit), quota, aimd, linkheader (RFC 8288 "next"),
 * conditional.
 *
 * Three structs, as in curl's hiperfifo example: the fetcher (one multi
 * handle, one replaceable one-shot evtimer for CURLMOPT_TIMERFUNCTION), a
 * request (struct fetch, found from its easy handle by CURLOPT_PRIVATE) and
 * a socket (struct fetch_sock, fetch_loop.h).  libcurl is only ever driven
 * by curl_multi_socket_action() from a libevent callback, never from
 * inside one of its own callbacks; the timer callback only arms or deletes
 * the evtimer, and the header callback only reads libcurl's header store
 * (curl_easy_header, which its manual allows there).
 *
 * Response headers come from libcurl's store: Link and Retry-After of the
 * final response once the attempt is done, Content-Length and
 * Content-Encoding where a header block ends, ETag and Last-Modified of a
 * final 2xx or 304 (conditional.h says what is kept).  A request with
 * validators sends its own header list: their lines chained in front of
 * the provider's (conditional.h), set at every attempt since a pooled easy
 * handle keeps the list it last sent.
 *
 * A request moves QUEUED -> ACTIVE -> (BACKOFF -> QUEUED -> ACTIVE)* -> DONE
 * (and ACTIVE -> PARKED -> ACTIVE while its body waits for memory).
 *  - QUEUED: in its provider's admission queue (FIFO), waiting for a free
 *    connection slot, an unspent quota and a rate-limit token
 *    (fetch_admit.h, the one place admission reads its limits).  The
 *    provider's `admit` evtimer is armed for the moment all may hold; a
 *    socket event handled FETCH_ADMIT_INLINE_AFTER_US or more after its
 *    arming runs that admission itself (fetch_admit_now).
 *  - ACTIVE: its easy handle is in the multi handle.  The attempt's timeout
 *    starts here, so it measures the request, not the wait.
 *  - BACKOFF: a transient failure with retries left; its own evtimer puts
 *    it back at the tail of the queue (fetch_retry.h).
 *  - DONE: its done callback is running.
 * Completed transfers are read with curl_multi_info_read() in fetch_loop
 * only; that is where an attempt's ownership of its easy handle ends
 * (fetch_response_read takes what it needs from the handle, then the
 * handle goes back to the pool before the callback runs).  fetch_cancel()
 * and a failed multi handle end an attempt early through the same
 * fetch_attempt_release().
 *
 * Re-entrancy: a done callback runs outside any libcurl call and after the
 * request is off every list; it may start and cancel other requests and
 * even call fetcher_free(), which then cancels everything and defers the
 * actual free to the libevent callback that is unwinding (dispatching > 0).
 */
#include "fetch.h"
#include "fetch_int.h"
#include "fetch_admit.h"
#include "fetch_body.h"
#include "fetch_error.h"
#include "fetch_loop.h"
#include "fetch_pool.h"
#include "fetch_response.h"
#include "fetch_retry.h"
#include "jsondoc.h"
#include "membudget.h"
#include "raced_version.h"
#include "redact.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(FETCH_LIMIT_REASON_MAX == AIMD_REASON_MAX, "fetch.h and aimd.h disagree on the reason's length");

_Static_assert(offsetof(struct fetch, msg) == offsetof(struct fetch, curl_err) + CURL_ERROR_SIZE &&
               offsetof(struct fetch, msg) + ERR_MAX == sizeof(struct fetch),
               "struct fetch's message buffers must come last (fetch_start_if zeroes what is before)");

static void fetcher_destroy(struct fetcher *f);

/* An attempt's easy handle leaves the multi handle and goes back to the
 * free list; its connection slot is free again.  A handle libcurl would
 * not take off is closed instead (curl_easy_cleanup removes it itself). */
void fetch_attempt_release(struct fetch *r)
{
	struct fetch_provider *p = r->p;
	if (curl_multi_remove_handle(p->f->multi, r->easy) == CURLM_OK)
		fetch_pool_easy_put(&p->f->pool, r->easy, p);
	else
		curl_easy_cleanup(r->easy);
	r->easy = NULL;
	p->stats.in_flight--;
	fetch_admit_kick(p);
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

/* Configure r's easy handle for one attempt and hand it to the multi. */

int fetch_handoff(struct fetch *r)
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
	CURL *e = fetch_pool_easy_get(&f->pool, p, &configured);
	if (!e)
		return err_set(r->msg, "GET %s: cannot start the transfer: out of memory", r->url);
	if (!r->body && fetch_pool_body_get(&f->pool, &r->body, &r->body_cap))
		membudget_charge(r->body_cap);
	fetch_response_reset(r);
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
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_ERRORBUFFER, r->curl_err);
	SET(CURLOPT_HTTPHEADER, !on_origin ? p->headers_public : r->cond.head ? r->cond.head : p->headers);
	/* What follows is the same for every request of p: a pooled handle
	 * that served p last still has it (fetch_pool.h). */
	if (configured)
		goto options_set;
	SET(CURLOPT_WRITEFUNCTION, fetch_response_write_cb);
	SET(CURLOPT_HEADERFUNCTION, fetch_response_header_cb);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_FOLLOWLOCATION, auth_follows_redirects(p->auth) ? 0L : 1L);
	if (c == CURLE_OK)
		c = auth_easy_setopt(p->auth, e);
	SET(CURLOPT_MAXREDIRS, (long)p->max_redirects);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	if (c == CURLE_OK)
		c = tls_easy_setopt(&p->tls, e, p->https);
	SET(CURLOPT_SHARE, f->share);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_MAXCONNECTS, (long)p->max_connections); /* the ceiling when adaptive */
	SET(CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
	SET(CURLOPT_OPENSOCKETFUNCTION, fetch_loop_open_socket);
	SET(CURLOPT_OPENSOCKETDATA, f);
	SET(CURLOPT_CLOSESOCKETFUNCTION, fetch_loop_close_socket);
	SET(CURLOPT_CLOSESOCKETDATA, f);
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
		fetch_pool_easy_put(&f->pool, e, NULL);
		return err_set(r->msg, "GET %s: cannot start the transfer: %s", r->url,
		               curl_easy_strerror(c));
	}
	CURLMcode mc = curl_multi_add_handle(f->multi, e);
	if (mc != CURLM_OK) {
		fetch_pool_easy_put(&f->pool, e, p);
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
	fetch_pool_body_put(&r->p->f->pool, r->body, r->body_cap);
	free(r->link_ref);
	free(r->want_header);
	free(r->header_value);
	free(r->location);
	fetch_pool_request_put(&r->p->f->pool, r);
}

void fetch_finish(struct fetch *r, enum fetch_outcome o, struct jsondoc *doc)
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
		fetch_error_mask(p, r->msg);
	bool not_modified = o == FETCH_OK && r->status == 304;
	p->stats.not_modified += not_modified;
	struct fetch_result res = {
		.outcome = o,
		.url = r->url,
		.effective_url = r->effective_url ? r->effective_url : r->url,
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
	fetch_body_doc_put(f, doc);
	free(next);
	request_free(r);
}

/* A 3xx of a provider whose redirects raced follows (auth.h): the next
 * hop queues for admission as a new attempt of the same request (a hop is
 * no retry), with the secret only if it is on the origin (fetch_handoff). */
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
		fetch_finish(r, FETCH_HTTP, NULL);
		return;
	}
	char *hop = auth_url_strip(p->auth, loc);
	char *eff = hop ? strdup(hop) : NULL;
	free(loc);
	if (!eff) {
		free(hop);
		snprintf(r->msg, sizeof r->msg, "GET %s: out of memory following a redirect", r->url);
		fetch_finish(r, FETCH_TRANSIENT, NULL);
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
	fetch_admit_kick(p);
}

/* One attempt ended (its CURLMSG_DONE was read): classify, then retry or finish. */
void fetch_attempt_done(struct fetch *r, CURLcode rc)
{
	struct fetch_provider *p = r->p;
	curl_off_t connect_us = 0;
	int64_t retry_after_ms = fetch_response_read(r, rc, &connect_us);
	long status = r->status;

	enum fetch_outcome o;
	bool retryable = false;
	unsigned limit;

	if (rc == CURLE_OK && status >= 200 && status < 300) {
		fetch_body_ready(r);
		return;
	} else if (rc == CURLE_OK && status == 304) {
		fetch_finish(r, FETCH_OK, NULL); /* Not Modified: no body, nothing to retry */
		return;
	} else if (rc == CURLE_OK && r->location) {
		follow_redirect(r);
		return;
	} else if (rc == CURLE_OK) {
		const char *reason = r->reason[0] ? r->reason : fetch_error_reason(status);
		retryable = fetch_error_status_transient(status);
		o = retryable ? FETCH_TRANSIENT : FETCH_HTTP;
		char hint[256];
		auth_refusal_hint(p->auth, status, p->name, hint, sizeof hint);
		snprintf(r->msg, sizeof r->msg, "GET %s: HTTP %ld%s%s%s%s", r->url, status,
		         reason[0] ? " " : "", reason, retryable ? "" : " (not retried)", hint);
	} else if ((limit = fetch_error_header_limit(rc, status, r)) != 0) {
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
		retryable = !fetch_error_curl_permanent(rc);
		o = retryable ? FETCH_TRANSIENT : FETCH_HTTP;
		fetch_error_describe_curl(r, rc, connect_us);
	}

	if (retryable && r->attempts <= p->max_retries) {
		fetch_retry_schedule(r, retry_after_ms);
		return;
	}
	if (o == FETCH_TRANSIENT) {
		size_t len = strlen(r->msg);
		snprintf(r->msg + len, sizeof r->msg - len, "; gave up after %u attempt%s",
		         r->attempts, r->attempts == 1 ? "" : "s");
	}
	fetch_finish(r, o, NULL);
}

/* After a libevent callback: free the fetcher if a done callback asked to. */
void fetch_finish_dispatch(struct fetcher *f)
{
	if (f->free_pending && f->dispatching == 0)
		fetcher_destroy(f);
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
	f->share = tls_share_new();
	f->doc = jsondoc_new();
	TAILQ_INIT(&f->parked);
	f->park_timer = evtimer_new(base, fetch_body_park_timer_cb, f);
	if (!f->share || !f->doc || !f->park_timer) {
		err_set(err, "out of memory");
		fetcher_destroy(f);
		return NULL;
	}
	if (fetch_loop_init(f, err) < 0) {
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
	free((char *)p->tls.ca_file);
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
	p->admit = evtimer_new(f->base, fetch_admit_cb, p);
	p->tls.http_version = c->tls.http_version;
	if (c->tls.ca_file && !(p->tls.ca_file = strdup(c->tls.ca_file)))
		goto oom;
	if (!p->name || !p->admit)
		goto oom;
	if (baseurl_init(&p->base, name, c->base_url, err) < 0)
		goto fail;
	p->https = strncmp(p->base.origin, "https:", 6) == 0; /* origin is lowercase */
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
	fetch_pool_easy_forget(&f->pool, p);
	fetch_admit_kick(p);
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
	struct fetch *r = fetch_pool_request_get(&p->f->pool);
	if (!r && !(r = malloc(sizeof *r))) {
		err_set(err, "out of memory");
		return NULL;
	}
	/* All but the two message buffers (1 KiB of the 1.2) start zeroed;
	 * those start empty. */
	memset(r, 0, offsetof(struct fetch, curl_err));
	r->curl_err[0] = r->msg[0] = '\0';
	char *full;
	if (fetch_provider_url(p, url, &full, err) < 0) {
		free(r);
		return NULL;
	}
	if (auth_url_has_param(p->auth, full)) {
		r->url = auth_url_strip(p->auth, full);
		free(full);
	} else {
		r->url = full; /* nothing to strip: no copy */
	}
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
		fetch_error_mask(p, err);
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
	evtimer_assign(&r->backoff, p->f->base, fetch_retry_backoff_cb, r);
	TAILQ_INSERT_TAIL(&p->all, r, all_link);
	TAILQ_INSERT_TAIL(&p->queue, r, queue_link);
	p->stats.waiting++;
	fetch_admit_kick(p);
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
		fetch_attempt_release(r);
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
	fetch_pool_clear(&f->pool);
	fetch_loop_free(f);
	tls_share_free(f->share); /* after every easy handle */
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
	out->limit = fetch_admit_limit(p);
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

