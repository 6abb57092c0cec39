/* auth — see auth.h.  Header names compare case-insensitively (RFC 9110),
 * query parameter names exactly (a server reads them so). */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redact.h"

const char *const auth_kind_names[] = {"none", "bearer", "basic", "header", "query", NULL};

struct auth {
	enum auth_kind kind;
	char *secret, *username, *name;
	char **headers;
	size_t n_headers;
};

/* Headers raced writes itself or libcurl derives from the request. */
static const char *const reserved[] = {"Host", "Content-Length", "Transfer-Encoding", "Connection",
                                       "Accept-Encoding", "If-None-Match", "If-Modified-Since"};

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_param_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '.';
}

/* Whether the name of line (up to ':') is name. */
static bool line_names(const char *line, const char *name)
{
	size_t len = strlen(name);
	return strncasecmp(line, name, len) == 0 && line[len] == ':';
}

/* Why a header of this name may not be static, or NULL. */
static const char *reserved_why(const char *line, enum auth_kind kind, const char *name)
{
	for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
		if (line_names(line, reserved[i]))
			return "raced or libcurl sets it for every request";
	if ((kind == AUTH_BEARER || kind == AUTH_BASIC) && line_names(line, "Authorization"))
		return "auth sets it";
	if (kind == AUTH_HEADER && name && line_names(line, name))
		return "it is auth_header, which auth = header sets";
	return NULL;
}

int auth_header_check(const char *line, enum auth_kind kind, const char *name, char *msg, size_t n)
{
	size_t len = strlen(line), nlen = 0;
	while (is_tchar(line[nlen]))
		nlen++;
	if (len > AUTH_HEADER_LINE_MAX) {
		snprintf(msg, n, "longer than %d bytes", AUTH_HEADER_LINE_MAX);
		return -1;
	}
	if (nlen == 0 || line[nlen] != ':') {
		snprintf(msg, n, "'%.*s' is not a header name followed by ':' (expected e.g. header = Accept: "
		         "application/vnd.api+json; a name is letters, digits and !#$%%&'*+-.^_`|~)",
		         (int)(nlen < 64 ? nlen + 1 : 64), line);
		return -1;
	}
	const char *v = line + nlen + 1;
	v += strspn(v, " \t");
	if (!*v) {
		snprintf(msg, n, "header %.*s has no value (libcurl would take an empty one as \"do not send\")",
		         (int)nlen, line);
		return -1;
	}
	for (const char *p = v; *p; p++)
		if (*p == '\r' || *p == '\n' || ((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
			snprintf(msg, n, "the value of header %.*s holds a line break or a control character",
			         (int)nlen, line);
			return -1;
		}
	const char *why = reserved_why(line, kind, name);
	if (why) {
		snprintf(msg, n, "header %.*s cannot be set here: %s (remove this line)", (int)nlen, line, why);
		return -1;
	}
	return 0;
}

int auth_name_check(enum auth_kind kind, const char *name, char *msg, size_t n)
{
	const char *what = kind == AUTH_HEADER ? "auth_header" : "auth_param";
	bool (*ok)(char) = kind == AUTH_HEADER ? is_tchar : is_param_char;
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len >= AUTH_NAME_MAX) {
		snprintf(msg, n, "%s must be a name of 1 to %d characters", what, AUTH_NAME_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if (!ok(name[i])) {
			snprintf(msg, n, "%s '%s' is not a valid name (%s)", what, name,
			         kind == AUTH_HEADER ? "a header name is letters, digits and !#$%&'*+-.^_`|~, e.g. "
			                               "X-Api-Key"
			                             : "letters, digits, '_', '-' and '.', e.g. api_key");
			return -1;
		}
	if (kind == AUTH_HEADER) {
		char line[AUTH_NAME_MAX + 2];
		snprintf(line, sizeof line, "%s:", name);
		const char *why = reserved_why(line, AUTH_NONE, NULL);
		if (why || strcasecmp(name, "Authorization") == 0) {
			snprintf(msg, n, "auth_header %s cannot be used: %s", name,
			         why ? why : "use auth = bearer or basic for it");
			return -1;
		}
	}
	return 0;
}

static int secret_check(const char *s, const char *what, char *msg, size_t n)
{
	if (!s || !*s) {
		snprintf(msg, n, "no %s", what);
		return -1;
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(msg, n, "the %s holds a line break or a control character", what);
			return -1;
		}
	return 0;
}

int auth_conf_check(const struct auth_conf *c, char *msg, size_t n)
{
	switch (c->kind) {
	case AUTH_NONE:
		break;
	case AUTH_BEARER:
		if (secret_check(c->secret, "token", msg, n) < 0)
			return -1;
		break;
	case AUTH_BASIC:
		if (!c->username || !*c->username || strchr(c->username, ':') ||
		    secret_check(c->username, "username", msg, n) < 0) {
			snprintf(msg, n, "username must be set, without ':' or control characters");
			return -1;
		}
		if (secret_check(c->secret, "password", msg, n) < 0)
			return -1;
		break;
	case AUTH_HEADER:
	case AUTH_QUERY:
		if (auth_name_check(c->kind, c->name, msg, n) < 0 || secret_check(c->secret, "token", msg, n) < 0)
			return -1;
		if (c->kind == AUTH_HEADER && strlen(c->name) + strlen(c->secret) + 2 > AUTH_HEADER_LINE_MAX) {
			snprintf(msg, n, "auth_header and its token are longer than %d bytes", AUTH_HEADER_LINE_MAX);
			return -1;
		}
		break;
	}
	if (c->n_headers > AUTH_HEADERS_MAX) {
		snprintf(msg, n, "more than %d header lines", AUTH_HEADERS_MAX);
		return -1;
	}
	for (size_t i = 0; i < c->n_headers; i++) {
		if (auth_header_check(c->headers[i], c->kind, c->name, msg, n) < 0)
			return -1;
		size_t len = strcspn(c->headers[i], ":");
		for (size_t j = 0; j < i; j++)
			if (strncasecmp(c->headers[j], c->headers[i], len) == 0 && c->headers[j][len] == ':') {
				snprintf(msg, n, "header %.*s is set twice (keep one line)", (int)len, c->headers[i]);
				return -1;
			}
	}
	return 0;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	if (a->secret)
		explicit_bzero(a->secret, strlen(a->secret));
	free(a->secret);
	free(a->username);
	free(a->name);
	for (size_t i = 0; i < a->n_headers; i++)
		free(a->headers[i]);
	free(a->headers);
	free(a);
}

static bool dup_opt(const char *s, char **out)
{
	*out = s ? strdup(s) : NULL;
	return !s || *out;
}

struct auth *auth_new(const struct auth_conf *c, char *err)
{
	char msg[ERR_MAX];
	if (auth_conf_check(c, msg, sizeof msg) < 0) {
		err_set(err, "%s", msg);
		return NULL;
	}
	if (c->kind == AUTH_QUERY && redact_add_param(c->name) < 0) {
		err_set(err, "auth_param %s: more than %d secret query parameters in all", c->name,
		        REDACT_PARAMS_MAX);
		return NULL;
	}
	struct auth *a = calloc(1, sizeof *a);
	bool ok = a && (a->headers = calloc(c->n_headers + 1, sizeof *a->headers));
	if (ok) {
		a->kind = c->kind;
		ok = dup_opt(c->kind == AUTH_NONE ? NULL : c->secret, &a->secret) && dup_opt(c->username, &a->username) &&
		     dup_opt(c->name, &a->name);
		for (; ok && a->n_headers < c->n_headers; a->n_headers++)
			ok = (a->headers[a->n_headers] = strdup(c->headers[a->n_headers])) != NULL;
	}
	if (!ok) {
		auth_free(a);
		err_set(err, "out of memory");
		return NULL;
	}
	return a;
}

enum auth_kind auth_kind(const struct auth *a)
{
	return a->kind;
}

bool auth_has_secret(const struct auth *a)
{
	return a->kind != AUTH_NONE;
}

bool auth_follows_redirects(const struct auth *a)
{
	return a->kind == AUTH_HEADER || a->kind == AUTH_QUERY;
}

static int append(struct curl_slist **out, const char *line)
{
	struct curl_slist *h = curl_slist_append(*out, line);
	if (!h)
		return -1;
	*out = h;
	return 0;
}

static bool replaced(const struct auth *a, const char *line)
{
	size_t len = strcspn(line, ":");
	for (size_t i = 0; i < a->n_headers; i++)
		if (strncasecmp(a->headers[i], line, len) == 0 && a->headers[i][len] == ':')
			return true;
	return false;
}

int auth_header_list(const struct auth *a, const char *const *defaults, size_t n_defaults,
                     bool with_secret, struct curl_slist **out)
{
	for (size_t i = 0; i < n_defaults; i++)
		if (!replaced(a, defaults[i]) && append(out, defaults[i]) < 0)
			return -1;
	for (size_t i = 0; i < a->n_headers; i++)
		if (append(out, a->headers[i]) < 0)
			return -1;
	if (!with_secret || (a->kind != AUTH_BEARER && a->kind != AUTH_HEADER))
		return 0;
	char line[AUTH_HEADER_LINE_MAX + sizeof "Authorization: Bearer "];
	if (a->kind == AUTH_BEARER)
		snprintf(line, sizeof line, "Authorization: Bearer %s", a->secret);
	else
		snprintf(line, sizeof line, "%s: %s", a->name, a->secret);
	int rc = append(out, line);
	explicit_bzero(line, sizeof line);
	return rc;
}

CURLcode auth_easy_setopt(const struct auth *a, CURL *e)
{
	if (a->kind != AUTH_BASIC)
		return CURLE_OK;
	CURLcode c = curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	if (c == CURLE_OK)
		c = curl_easy_setopt(e, CURLOPT_USERNAME, a->username);
	if (c == CURLE_OK)
		c = curl_easy_setopt(e, CURLOPT_PASSWORD, a->secret);
	return c;
}

bool auth_url_has_param(const struct auth *a, const char *url)
{
	return a->kind == AUTH_QUERY && strchr(url, '?');
}

char *auth_url_strip(const struct auth *a, const char *url)
{
	const char *q = strchr(url, '?');
	if (a->kind != AUTH_QUERY || !q)
		return strdup(url);
	size_t frag = strcspn(q, "#"), nlen = strlen(a->name);
	char *out = malloc(strlen(url) + 1);
	if (!out)
		return NULL;
	size_t len = (size_t)(q - url);
	memcpy(out, url, len);
	/* Each pair of the query, kept unless it is name or name=... */
	for (const char *p = q + 1, *end = q + frag; p <= end;) {
		size_t plen = strcspn(p, "&#");
		if (p + plen > end)
			plen = (size_t)(end - p);
		bool drop = plen >= nlen && strncmp(p, a->name, nlen) == 0 && (plen == nlen || p[nlen] == '=');
		if (!drop && plen) {
			char sep = len == (size_t)(q - url) ? '?' : '&';
			out[len++] = sep;
			memcpy(out + len, p, plen);
			len += plen;
		}
		p += plen + 1;
	}
	strcpy(out + len, q + frag);
	return out;
}

CURLUcode auth_url_apply(const struct auth *a, CURLU *u)
{
	if (a->kind != AUTH_QUERY)
		return CURLUE_OK;
	size_t n = strlen(a->name) + strlen(a->secret) + 2;
	char *pair = malloc(n);
	if (!pair)
		return CURLUE_OUT_OF_MEMORY;
	snprintf(pair, n, "%s=%s", a->name, a->secret);
	CURLUcode uc = curl_url_set(u, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE);
	explicit_bzero(pair, n);
	free(pair);
	return uc;
}

void auth_mask(const struct auth *a, char *buf, size_t size)
{
	redact_buf(buf, size);
	if (a && a->kind != AUTH_NONE)
		redact_literal(buf, size, a->secret);
}

void auth_refusal_hint(const struct auth *a, long status, const char *provider, char *buf, size_t n)
{
	/* Each method's settings, around the provider's name in its credential. */
	static const struct {
		const char *pre, *post;
	} settings[] = {
		[AUTH_NONE] = {"it sends none: set 'auth'", NULL},
		[AUTH_BEARER] = {"auth = bearer: the token of 'token_file' or the credential ", ".token"},
		[AUTH_BASIC] = {"auth = basic: 'username' and the password of 'password_file' or the credential ",
		                ".password"},
		[AUTH_HEADER] = {"auth = header: 'auth_header' and the token of 'token_file' or the credential ", ".token"},
		[AUTH_QUERY] = {"auth = query: 'auth_param' and the token of 'token_file' or the credential ", ".token"},
	};
	const char *post = settings[a->kind].post;
	if (n)
		buf[0] = '\0';
	if (status == 401 || status == 403)
		snprintf(buf, n, "; check the credentials of [provider %s] (%s%s%s)", provider, settings[a->kind].pre,
		         post ? provider : "", post ? post : "");
	else if (status == 406)
		snprintf(buf, n, "; [provider %s] may need another Accept (or other) header line: setting 'header'",
		         provider);
}
