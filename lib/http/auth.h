/* auth — what a provider's requests carry besides the URL: its credentials
 * (`auth` in raced.conf) and its static header lines (`header`).
 *
 * Methods:
 *   none    nothing;
 *   bearer  "Authorization: Bearer <token>";
 *   basic   libcurl's user name and password (CURLOPT_USERNAME/PASSWORD,
 *           CURLAUTH_BASIC): libcurl sends them to the first host of a
 *           redirect chain only;
 *   header  "<auth_header>: <token>";
 *   query   <auth_param>=<token> in the query of every request, the
 *           parameter's earlier values in the URL replaced.
 * A secret goes only to the provider's origin (fetch.h): header and query
 * secrets are put on a request's URL (auth_url_apply) and in its header
 * list (auth_header_list with_secret) hop by hop by the fetcher, which
 * follows those providers' redirects itself (auth_follows_redirects), as
 * libcurl would send a custom header to any host.
 *
 * Static headers are "Name: value" lines (auth_header_check): a name of
 * RFC 9110 token characters, a value of visible characters, spaces and
 * tabs.  Accept and User-Agent replace raced's own lines; a header raced
 * sets itself or that libcurl derives from the request (Host,
 * Content-Length, Transfer-Encoding, Connection, Accept-Encoding,
 * If-None-Match, If-Modified-Since), Authorization when the method sets
 * it, and the method's own header are refused.
 *
 * Ownership: auth_new() copies everything it keeps (the secrets wiped with
 * explicit_bzero in auth_free()); the conf is the caller's.  Header lists
 * are the caller's to free (curl_slist_free_all), as are URLs returned.
 * Nothing here logs or does I/O.
 */
#ifndef RACED_AUTH_H
#define RACED_AUTH_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define AUTH_HEADERS_MAX 32       /* static header lines per provider */
#define AUTH_HEADER_LINE_MAX 1024 /* longest static header line, and auth_header name + token */
#define AUTH_NAME_MAX 64          /* longest auth_header or auth_param name */

/* In raced.conf's order of the `auth` values: see auth_kind_names. */
enum auth_kind { AUTH_NONE, AUTH_BEARER, AUTH_BASIC, AUTH_HEADER, AUTH_QUERY };
extern const char *const auth_kind_names[]; /* "none", "bearer", ...; NULL-terminated */

struct auth_conf {
	enum auth_kind kind;
	const char *secret;          /* bearer, header, query: the token; basic: the password */
	const char *username;        /* basic */
	const char *name;            /* header: the header's name; query: the parameter's */
	const char *const *headers;  /* static "Name: value" lines */
	size_t n_headers;
};

struct auth;

/* 0, or -1 with msg (n bytes) saying what is wrong with line as a static
 * header of a provider authenticating by kind (header: named name) and
 * what to write instead.  Never quotes a value. */
int auth_header_check(const char *line, enum auth_kind kind, const char *name, char *msg, size_t n);

/* 0, or -1 with msg: name as an auth_header (kind header, an RFC 9110
 * token that is not a header raced sets) or an auth_param (kind query:
 * letters, digits, '_', '-', '.'). */
int auth_name_check(enum auth_kind kind, const char *name, char *msg, size_t n);

/* The whole conf (names, secrets without line breaks, lines, duplicates),
 * msg naming the setting at fault.  auth_new() calls it. */
int auth_conf_check(const struct auth_conf *c, char *msg, size_t n);

RACED_MUST_CHECK struct auth *auth_new(const struct auth_conf *c, char *err);
void auth_free(struct auth *a);

enum auth_kind auth_kind(const struct auth *a);
/* Whether requests carry a secret (kind other than none). */
bool auth_has_secret(const struct auth *a);
/* Whether the fetcher must follow redirects itself (header, query). */
bool auth_follows_redirects(const struct auth *a);

/* The header lines of a request: `defaults` less those a static header
 * replaces (same name), then the static headers, then (with_secret) the
 * method's own line (bearer, header).  Appended to *out; -1 when memory
 * runs out (*out then holds what was appended, the caller's to free). */
int auth_header_list(const struct auth *a, const char *const *defaults, size_t n_defaults,
                     bool with_secret, struct curl_slist **out);

/* Basic: the user name and password on the easy handle. */
CURLcode auth_easy_setopt(const struct auth *a, CURL *e);

/* Whether auth_url_strip may have something to take out of url (kind
 * query and url has a query); when not, url is its own stripped form. */
bool auth_url_has_param(const struct auth *a, const char *url);
/* url (absolute) without the query parameter (kind query; other kinds: a
 * copy), malloc'd; NULL when out of memory. */
char *auth_url_strip(const struct auth *a, const char *url);

/* u gets the query parameter (kind query; others: unchanged). */
CURLUcode auth_url_apply(const struct auth *a, CURLU *u);

/* What to check when the provider (named provider) answers status: 401
 * or 403, its credentials, naming the settings of its method; 406, its
 * header lines.  "; ..." in buf (n bytes), or "" for other statuses. */
void auth_refusal_hint(const struct auth *a, long status, const char *provider, char *buf, size_t n);

/* Masks the secrets of a wherever they appear in buf (size bytes), as
 * redact_literal does, and what redact_buf masks. */
void auth_mask(const struct auth *a, char *buf, size_t size);

#endif
