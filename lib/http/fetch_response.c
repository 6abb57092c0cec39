/* fetch_response — see fetch_response.h. */
#include "fetch_response.h"
#include "fetch_admit.h"
#include "linkheader.h"
#include "membudget.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- response headers and body ---- */

void fetch_response_reset(struct fetch *r)
{
	r->body_len = 0;
	r->header_bytes = 0;
	r->names_seen = 0;
	r->length_known = false;
	r->status = 0;
	r->reason[0] = '\0';
}

/* A header name's bit in names_seen, any case.  Each lookup in libcurl's
 * store (curl_easy_header) compares the name with every header it holds,
 * and raced looks up about 8 names a response, most of them absent (quota,
 * Link, validators): the header callback sets the bit of every name it
 * passes, and a name whose bit is clear is not looked up.  Two names
 * sharing a bit only cost the lookup.  The bit comes from the length and
 * three letters, not a hash of every byte: it is taken for every header
 * line and every lookup, and these multipliers give none of the names
 * raced looks up the bit of a header servers commonly send (Content-Type,
 * Date, Server, Connection, Vary, Cache-Control, ...; Content-Length's
 * own aside). */
static uint64_t name_bit(const char *name, size_t len)
{
	unsigned first = (unsigned char)name[0] | 0x20u, last = (unsigned char)name[len - 1] | 0x20u,
	         mid = (unsigned char)name[len / 2] | 0x20u;
	return (uint64_t)1 << ((len + first * 3u + last * 7u + mid * 5u) & 63u);
}

const char *fetch_response_header_last(const struct fetch *r, const char *name)
{
	struct curl_header *h;
	CURL *e = r->easy;
	size_t len = strlen(name);
	if (!len || !(r->names_seen & name_bit(name, len)))
		return NULL;
	if (curl_easy_header(e, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	if (h->amount > 1 &&
	    curl_easy_header(e, name, h->amount - 1, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return NULL;
	return h->value;
}

#define CONTENT_LENGTH_CHARS_MAX 31 /* a longer Content-Length is not read */

/* A Content-Length line's value into r (the last one counts), read as the
 * line passes rather than looked up in libcurl's store at the block's end:
 * every response has one, and the lookup was the dearest part of the
 * header callback.  Not a number, or longer than
 * CONTENT_LENGTH_CHARS_MAX: not known. */
static void note_content_length(struct fetch *r, const char *v, const char *end)
{
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	r->length_known = false;
	if (v == end || end - v > CONTENT_LENGTH_CHARS_MAX || *v < '0' || *v > '9')
		return;
	uint64_t n = 0;
	for (; v < end && *v >= '0' && *v <= '9'; v++)
		n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + (uint64_t)(*v - '0');
	r->length = n;
	r->length_known = true;
}

/* Whether a 2xx response's unencoded Content-Length says its body is over
 * max_body, so that it is refused before the body is read. */
static bool length_over_max_body(const struct fetch *r, size_t max_body)
{
	const char *v = fetch_response_header_last(r, "Content-Encoding");
	if (v && strcasecmp(v, "identity") != 0)
		return false; /* max_body counts the decoded body */
	return r->length_known && r->length > max_body;
}

/* The status line resets the response (a redirect's is forgotten); the
 * blank line ending a header block is where a body too large is refused.
 * Other headers are read from libcurl's store (curl_easy_header) when
 * needed. */
size_t fetch_response_header_cb(char *buf, size_t size, size_t nitems, void *userp)
{
	struct fetch *r = userp;
	size_t n = size * nitems;
	const char *end = buf + n;

	while (end > buf && (end[-1] == '\r' || end[-1] == '\n'))
		end--;
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		fetch_response_reset(r);
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
	           length_over_max_body(r, r->p->max_body)) {
		r->too_big = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	} else {
		const char *colon = memchr(buf, ':', (size_t)(end - buf));
		if (colon && colon > buf) {
			size_t len = (size_t)(colon - buf);
			r->names_seen |= name_bit(buf, len);
			if (len == 14 && strncasecmp(buf, "Content-Length", 14) == 0)
				note_content_length(r, colon + 1, end);
		}
	}
	r->header_bytes += n;
	return n;
}

size_t fetch_response_write_cb(char *data, size_t size, size_t nmemb, void *userp)
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

/* The target of the first Link header of the response that has a "next"
 * link, malloc'd, or NULL. */
static char *response_link_next(const struct fetch *r)
{
	struct curl_header *h;
	size_t amount = 1;
	CURL *e = r->easy;

	if (!fetch_response_header_last(r, "Link"))
		return NULL;
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

/* Read what the attempt's easy handle knows, then let the handle go.
 * Returns the response's Retry-After in ms (-1: none) unless it is a
 * success, which is never retried. */
int64_t fetch_response_read(struct fetch *r, CURLcode rc, curl_off_t *connect_us)
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
	long connects = 0, version = 0;
	if (curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		p->stats.connections += (uint64_t)connects;
	if (curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version) == CURLE_OK && version == CURL_HTTP_VERSION_2_0)
		p->stats.http2++;
	/* The URL asked for, as nearly always: no copy (NULL stands for
	 * r->url; a hop raced follows already holds its copy). */
	const char *asked = r->hop ? r->hop : r->url;
	bool same = eff && strcmp(eff, asked) == 0;
	if (!(same && r->hop && r->effective_url)) {
		free(r->effective_url);
		r->effective_url = !eff || (same && !r->hop) ? NULL : strdup(eff);
	}
	free(r->link_ref);
	r->link_ref = NULL;
	free(r->etag);
	free(r->last_modified);
	r->etag = r->last_modified = NULL;
	free(r->header_value);
	r->header_value = NULL;
	if (rc == CURLE_OK && ((status >= 200 && status < 300) || status == 304)) {
		if (status != 304)
			r->link_ref = response_link_next(r);
		if (status != 304 && r->want_header) {
			/* NULL when absent, or out of memory: the caller's "none" */
			const char *hv = fetch_response_header_last(r, r->want_header);
			r->header_value = hv ? strdup(hv) : NULL;
		}
		r->etag = conditional_response_etag(fetch_response_header_last(r, "ETag"));
		r->last_modified = conditional_response_last_modified(fetch_response_header_last(r, "Last-Modified"));
	} else {
		retry_after_ms = fetch_retry_after_ms(fetch_response_header_last(r, "Retry-After"), time(NULL));
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
	fetch_admit_account(r, rc, status);
	fetch_attempt_release(r);
	return retry_after_ms;
}

