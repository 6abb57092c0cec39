/* baseurl — see baseurl.h.
 *
 * Everything goes through curl_url (RFC 3986, as libcurl will read the URL)
 * except the concatenation fast path below, which makes the same string
 * without parsing for the URLs of nearly every request: without it a
 * fetch-only import runs 15-23 % more instructions (docs/performance.md). */
#include "baseurl.h"
#include "error.h"
#include "redact.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int url_error(char *err, const char *what, const char *url, CURLUcode uc)
{
	return err_set(err, "%s '%s': %s", what, url, curl_url_strerror(uc));
}

/* The whole URL u holds, as a malloc'd string in *out. */
static int url_take(CURLU *u, const char *what, const char *ref, char **out, char *err)
{
	char *s = NULL;
	CURLUcode uc = curl_url_get(u, CURLUPART_URL, &s, 0);
	if (uc) {
		url_error(err, what, ref, uc);
		return -1;
	}
	*out = strdup(s);
	curl_free(s);
	if (!*out)
		return err_set(err, "out of memory");
	return 0;
}

/* url parsed into a new *u (NULL only when curl_url() itself fails); the
 * caller cleans *u up whatever the result. */
static CURLUcode url_parse(const char *url, CURLU **u)
{
	if (!(*u = curl_url()))
		return CURLUE_OUT_OF_MEMORY;
	return curl_url_set(*u, CURLUPART_URL, url, 0);
}

int baseurl_resolve(const char *base, const char *ref, char **out, char *err)
{
	CURLU *u;
	CURLUcode uc = url_parse(base, &u);
	int rc = -1;

	*out = NULL;
	if (!u)
		return err_set(err, "out of memory");
	if (uc) {
		url_error(err, "invalid base URL", base, uc);
		goto done;
	}
	/* "#x" is the base itself (RFC 3986 5.2.2); libcurl 7.88 makes it the
	 * base's directory. */
	uc = ref == base || ref[0] == '#' ? CURLUE_OK : curl_url_set(u, CURLUPART_URL, ref, 0);
	if (uc) {
		err_set(err, "cannot resolve URL '%s' against '%s': %s", ref, base,
		        curl_url_strerror(uc));
		goto done;
	}
	/* A fragment is never sent: without it, links that differ only there
	 * are one URL to pagination's cycle check and to dedupe. */
	curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	rc = url_take(u, "cannot build URL from", ref, out, err);
done:
	curl_url_cleanup(u);
	if (rc < 0)
		redact_buf(err, ERR_MAX); /* a link from a body may carry a password */
	return rc;
}

/* The provider's base URL in directory form (path ending in '/'). */
static int base_url_directory(const char *name, const char *base, char **out, char *err)
{
	CURLU *u;
	char *path = NULL, *query = NULL, *frag = NULL, *scheme = NULL;
	CURLUcode uc = url_parse(base, &u);
	int rc = -1;

	*out = NULL;
	if (!u)
		return err_set(err, "out of memory");
	if (uc) {
		err_set(err, "base_url '%s' of [provider %s] is not a valid URL: %s", base, name,
		        curl_url_strerror(uc));
		goto done;
	}
	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (!scheme || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
		err_set(err, "base_url '%s' of [provider %s] is not an http or https URL", base, name);
		goto done;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
		err_set(err, "base_url '%s' of [provider %s] has a query or fragment; "
		        "put them in the stage's url", base, name);
		goto done;
	}
	uc = curl_url_get(u, CURLUPART_PATH, &path, 0);
	if (uc == CURLUE_OK && path[0] && path[strlen(path) - 1] != '/') {
		size_t n = strlen(path) + 2;
		char *dir = malloc(n);
		if (!dir) {
			err_set(err, "out of memory");
			goto done;
		}
		snprintf(dir, n, "%s/", path);
		uc = curl_url_set(u, CURLUPART_PATH, dir, 0);
		free(dir);
		if (uc) {
			url_error(err, "cannot use base_url", base, uc);
			goto done;
		}
	}
	rc = url_take(u, "cannot use base_url", base, out, err);
done:
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

/* The concatenation fast path.  curl_url parses a URL into parts and
 * prints them back: the scheme and authority normalised, the path and query
 * as they were (without CURLU_URLENCODE nothing is encoded or decoded) once
 * dot segments are removed, an empty query or fragment dropped.  So when a
 * URL P is given back unchanged and ends with the '/' closing its authority
 * or path, P + tail is given back unchanged too as long as the tail holds
 * only characters no parser rewrites, starts no segment with '.', and does
 * not end in an empty query: the authority is delimited inside P, and the
 * rest is kept as it is.  baseurl_request_url uses it for "/x" under the
 * base and for absolute URLs of its origin, the URLs of nearly every request;
 * anything else goes through curl_url.  The unit tests hold the two paths
 * to the same output. */

#define URL_CONCAT_MAX 8192 /* longer URLs go through curl_url, which has
                               an input limit of its own */

static bool url_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool baseurl_tail_is_plain(const char *tail)
{
	const char *s = tail;
	for (; *s; s++) {
		char c = *s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '.') {
			if (s == tail || s[-1] == '/')
				return false; /* perhaps a dot segment */
		} else if (c == '%') {
			/* a percent-encoded byte other than '.' ("%2e" is a dot
			 * segment to some parsers) */
			if (!url_hex(s[1]) || !url_hex(s[2]) ||
			    (s[1] == '2' && (s[2] == 'e' || s[2] == 'E')))
				return false;
			s += 2;
		} else if (!strchr("-_~!$&'()*+,;=:@/?", c)) {
			return false;
		}
	}
	return s == tail || s[-1] != '?';
}

/* prefix + tail when that is what curl_url gives: 1 with *out, 0 if not. */
static int url_concat(const char *prefix, size_t prefix_len, const char *tail, char **out,
                      char *err)
{
	size_t n = strlen(tail);
	if (n > URL_CONCAT_MAX || !baseurl_tail_is_plain(tail))
		return 0;
	char *s = malloc(prefix_len + n + 1);
	if (!s)
		return err_set(err, "out of memory");
	memcpy(s, prefix, prefix_len);
	memcpy(s + prefix_len, tail, n + 1);
	*out = s;
	return 1;
}

/* Whether b->dir may be a concatenation prefix: curl_url gives it back as
 * it is, and its path is a plain tail.  If so, b->cu keeps it parsed. */
static int base_url_plainness(struct baseurl *b, char *err)
{
	char *again = NULL;
	const char *auth = strstr(b->dir, "://");
	const char *slash = auth ? strchr(auth + 3, '/') : NULL;
	CURLU *u;

	b->len = strlen(b->dir);
	b->plain = false;
	if (!slash)
		return 0;
	b->origin_len = (size_t)(slash + 1 - b->dir);
	if (b->len > URL_CONCAT_MAX || !baseurl_tail_is_plain(slash + 1))
		return 0;
	CURLUcode uc = url_parse(b->dir, &u);
	if (!u)
		return err_set(err, "out of memory");
	if (uc == CURLUE_OK && curl_url_get(u, CURLUPART_URL, &again, 0) == CURLUE_OK &&
	    strcmp(again, b->dir) == 0) {
		b->plain = true;
		b->cu = u;
		u = NULL;
	}
	curl_free(again);
	curl_url_cleanup(u);
	return 0;
}

/* "scheme://host:port" of url, lowercase, the port spelled out (80 for
 * http): two URLs of one origin give the same string.  -1 if curl_url
 * cannot parse it. */
static int url_origin(const char *url, char **out)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL;
	int rc = -1;
	*out = NULL;
	if (url_parse(url, &u) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    asprintf(out, "%s://%s:%s", scheme, host, port) >= 0) {
		for (char *c = *out; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		rc = 0;
	} else {
		*out = NULL;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

bool baseurl_on_origin(const struct baseurl *b, const char *url)
{
	if (b->origin_len && strncmp(url, b->dir, b->origin_len) == 0)
		return true;
	char *o;
	if (url_origin(url, &o) < 0)
		return false;
	bool same = strcmp(o, b->origin) == 0;
	free(o);
	return same;
}

int baseurl_request_url(const struct baseurl *b, const char *url, char **out, char *err)
{
	if (b->plain) {
		int rc = 0;
		if (url[0] == '/' && url[1] != '/')
			rc = url_concat(b->dir, b->len, url + 1, out, err);
		else if (strncmp(url, b->dir, b->origin_len) == 0)
			rc = url_concat(b->dir, b->origin_len, url + b->origin_len, out, err);
		if (rc)
			return rc < 0 ? -1 : 0;
	}
	if (url[0] == '/' && url[1] != '/') {
		size_t n = strlen(b->dir) + strlen(url);
		char *joined = malloc(n);
		if (!joined)
			return err_set(err, "out of memory");
		snprintf(joined, n, "%s%s", b->dir, url + 1);
		int rc = baseurl_resolve(joined, joined, out, err);
		free(joined);
		return rc;
	}
	return baseurl_resolve(b->dir, url, out, err);
}

/* A plain URL of the base's origin without '%' is the base's CURLU with its
 * path and query set: the very parts parsing it would give (setting a part
 * would lowercase %XX escapes, hence no '%'); any other URL is parsed. */
CURLUcode baseurl_curlu(const struct baseurl *b, const char *url, CURLU **out)
{
	CURLUcode uc;
	CURLU *u;

	if (b->cu && strncmp(url, b->dir, b->origin_len) == 0 &&
	    !strchr(url + b->origin_len, '%') &&
	    baseurl_tail_is_plain(url + b->origin_len)) {
		const char *path = url + b->origin_len - 1, *q = strchr(path, '?');
		u = curl_url_dup(b->cu);
		if (!u)
			return CURLUE_OUT_OF_MEMORY;
		if (q) {
			char *s = strndup(path, (size_t)(q - path));
			uc = s ? curl_url_set(u, CURLUPART_PATH, s, 0) : CURLUE_OUT_OF_MEMORY;
			free(s);
			if (uc == CURLUE_OK)
				uc = curl_url_set(u, CURLUPART_QUERY, q + 1, 0);
		} else {
			uc = curl_url_set(u, CURLUPART_PATH, path, 0);
		}
	} else {
		uc = url_parse(url, &u);
	}
	if (uc != CURLUE_OK) {
		curl_url_cleanup(u);
		return uc;
	}
	*out = u;
	return CURLUE_OK;
}

int baseurl_init(struct baseurl *b, const char *name, const char *base_url, char *err)
{
	*b = (struct baseurl){0};
	if (base_url_directory(name, base_url, &b->dir, err) < 0 || base_url_plainness(b, err) < 0)
		goto fail;
	if (url_origin(b->dir, &b->origin) < 0) {
		err_set(err, "[provider %s] base_url '%s' has no scheme, host and port", name, b->dir);
		goto fail;
	}
	return 0;
fail:
	redact_buf(err, ERR_MAX); /* base_url's userinfo is no one's to read */
	baseurl_free(b);
	return -1;
}

void baseurl_free(struct baseurl *b)
{
	curl_url_cleanup(b->cu);
	free(b->origin);
	free(b->dir);
	*b = (struct baseurl){0};
}
