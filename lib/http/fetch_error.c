/* fetch_error — see fetch_error.h. */
#include "fetch_error.h"

#include <stdio.h>

const char *fetch_error_reason(long status)
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

bool fetch_error_status_transient(long status)
{
	return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

/* libcurl errors that another attempt cannot fix. */
bool fetch_error_curl_permanent(CURLcode rc)
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
unsigned fetch_error_header_limit(CURLcode rc, long status, const struct fetch *r)
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

/* msg (ERR_MAX) without secrets: a URL's password, libcurl's text about
 * it, a query auth parameter, and the provider's token or password should
 * a server echo it (a reason phrase). */
void fetch_error_mask(const struct fetch_provider *p, char *msg)
{
	auth_mask(p->auth, msg, ERR_MAX);
}

void fetch_error_describe_curl(struct fetch *r, CURLcode rc, curl_off_t connect_us)
{
	const struct fetch_provider *p = r->p;
	const char *detail = r->curl_err[0] ? r->curl_err : curl_easy_strerror(rc);
	const char *ca = p->tls.ca_file ? p->tls.ca_file : "unset, the system's CAs";

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
	case CURLE_PEER_FAILED_VERIFICATION:
		/* an unknown CA, an expired certificate, a host name it does not
		 * name: the usual fix is the CA to trust */
		snprintf(r->msg, sizeof r->msg,
		         "GET %s: the server's certificate was refused: %s; if a private CA signed it, set "
		         "'ca_file' of [provider %s] to that CA's certificate (now: %s); not retried",
		         r->url, detail, p->name, ca);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(r->msg, sizeof r->msg,
		         "GET %s: %s; set 'ca_file' of [provider %s] (now: %s) to a readable PEM file of CA "
		         "certificates; not retried",
		         r->url, detail, p->name, ca);
		break;
	case CURLE_WRITE_ERROR:
		if (r->no_memory) {
			snprintf(r->msg, sizeof r->msg, "GET %s: out of memory storing the body", r->url);
			break;
		}
		/* fall through */
	default:
		snprintf(r->msg, sizeof r->msg, "GET %s: %s%s", r->url, detail,
		         fetch_error_curl_permanent(rc) ? "; not retried" : "");
		break;
	}
}

