/* tls — a provider's TLS and HTTP-version settings (raced.conf's ca_file
 * and http_version) as libcurl options, the fetcher's TLS session cache,
 * and the checks --check-config makes of both.
 *
 * Peers are always verified: certificate chain and host name
 * (CURLOPT_SSL_VERIFYPEER and _VERIFYHOST stay at libcurl's defaults,
 * which are on); there is no setting to turn that off.  A ca_file is
 * trusted instead of the system's CAs (the bundle and the directory), so
 * that a provider behind a private CA trusts only that CA.
 *
 * http_version: TLS_HTTP_AUTO offers HTTP/2 over TLS (ALPN) and speaks
 * HTTP/1.1 otherwise and over plain http; TLS_HTTP_1_1 never offers
 * HTTP/2; TLS_HTTP_2 speaks HTTP/2 over plain http too (prior knowledge,
 * h2c: the server must take it; refused with a libcurl that fails it,
 * tls_http_version_check).  Where HTTP/2 may be spoken (over https,
 * or with TLS_HTTP_2) a new transfer waits for a connection that can carry
 * it as one more stream (CURLOPT_PIPEWAIT) rather than open another: with
 * the fetcher's CURLMOPT_PIPELINING = CURLPIPE_MULTIPLEX, requests share
 * connections.  Not over plain http with TLS_HTTP_AUTO: there libcurl
 * learns that a connection is HTTP/1.1 only from its first answer, and a
 * waiting transfer would wait for that answer (a slow one holds back every
 * request behind it).
 *
 * TLS sessions: one share handle per fetcher (tls_share_new) holds the
 * TLS session cache of all its easy handles (CURL_LOCK_DATA_SSL_SESSION),
 * so that a connection opened by any handle resumes a session another
 * handle negotiated instead of making a full handshake.  libcurl's own
 * cache is per easy handle, and the fetcher's handles come and go from a
 * pool.  The fetcher runs on one thread: the share needs no locks.
 *
 * Ownership: struct tls_conf borrows its ca_file string (the caller's, for
 * as long as the handles it was applied to live: libcurl copies it);
 * tls_share_new's handle is the caller's, freed with tls_share_free()
 * after every easy handle using it is cleaned up.
 */
#ifndef RACED_TLS_H
#define RACED_TLS_H

#include "error.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#define TLS_CA_FILE_MAX (8u << 20) /* a ca_file read by the check: at most this many bytes */

enum tls_http_version { TLS_HTTP_AUTO, TLS_HTTP_1_1, TLS_HTTP_2 };
/* raced.conf's spelling of each, indexed by the enum; NULL-terminated (KT_CHOICE). */
extern const char *const tls_http_version_names[];

struct tls_conf {
	const char *ca_file;               /* PEM CA certificates to trust instead of the
	                                      system's, or NULL */
	enum tls_http_version http_version;
};

/* Sets c's options on e (a handle fresh or reset) for a provider whose
 * base URL is https or not.  CURLE_OK, or the first option libcurl
 * refused. */
CURLcode tls_easy_setopt(const struct tls_conf *c, CURL *e, bool https);
/* Whether requests wait for a connection to multiplex on (CURLOPT_PIPEWAIT). */
bool tls_may_multiplex(const struct tls_conf *c, bool https);

/* A share handle holding TLS sessions, or NULL when out of memory. */
CURLSH *tls_share_new(void);
void tls_share_free(CURLSH *sh);

/* libcurl before 8.0.0 fails every HTTP/2 request after the first on a
 * connection of prior knowledge, without TLS ("Error in the HTTP2 framing
 * layer", curl issue 10634, fixed in 8.0.0); over https it is fine. */
#define TLS_H2C_MIN_LIBCURL 0x080000
/* Whether the libcurl running speaks v to base_url (an http or https URL):
 * 0, or -1 with msg (n bytes) saying why not and the fix. */
RACED_MUST_CHECK int tls_http_version_check(enum tls_http_version v, const char *base_url, char *msg, size_t n);

/* Whether path is a readable file holding at least one PEM certificate:
 * 0, or -1 with msg (n bytes) saying what is wrong with it and the fix,
 * e.g. "cannot open /etc/raced/ca.pem: No such file or directory". */
RACED_MUST_CHECK int tls_ca_file_check(const char *path, char *msg, size_t n);

#endif
