/* tls — see tls.h. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const tls_http_version_names[] = {"auto", "1.1", "2", NULL};

#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"

CURLcode tls_easy_setopt(const struct tls_conf *c, CURL *e, bool https)
{
	long v = c->http_version == TLS_HTTP_1_1 ? (long)CURL_HTTP_VERSION_1_1
	         : c->http_version == TLS_HTTP_2 ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
	                                         : (long)CURL_HTTP_VERSION_2TLS;
	CURLcode rc = curl_easy_setopt(e, CURLOPT_HTTP_VERSION, v);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(e, CURLOPT_PIPEWAIT, tls_may_multiplex(c, https) ? 1L : 0L);
	if (rc == CURLE_OK && c->ca_file) {
		rc = curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(e, CURLOPT_CAPATH, NULL); /* only the ca_file */
	}
	return rc;
}

bool tls_may_multiplex(const struct tls_conf *c, bool https)
{
	return c->http_version == TLS_HTTP_2 || (c->http_version == TLS_HTTP_AUTO && https);
}

CURLSH *tls_share_new(void)
{
	CURLSH *sh = curl_share_init();
	if (sh && curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		curl_share_cleanup(sh);
		return NULL;
	}
	return sh;
}

void tls_share_free(CURLSH *sh)
{
	if (sh)
		(void)curl_share_cleanup(sh); /* fails only while a handle still uses it */
}

int tls_http_version_check(enum tls_http_version v, const char *base_url, char *msg, size_t n)
{
	const curl_version_info_data *ci = curl_version_info(CURLVERSION_NOW);
	if (v != TLS_HTTP_2 || !base_url || strncasecmp(base_url, "http://", 7) != 0 ||
	    ci->version_num >= TLS_H2C_MIN_LIBCURL)
		return 0;
	/* base_url is not repeated: it may hold a password */
	snprintf(msg, n,
	         "2 over plain http (an http base_url) needs libcurl 8.0.0 or later: this libcurl, %s, fails "
	         "every request after the first on an HTTP/2 connection without TLS (curl issue 10634); set "
	         "http_version = auto (HTTP/2 over https, HTTP/1.1 over http) or 1.1",
	         ci->version);
	return -1;
}

int tls_ca_file_check(const char *path, char *msg, size_t n)
{
	static const char fix[] = "; set ca_file to a readable PEM file of the CA certificates to trust";
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(msg, n, "cannot open %s: %s%s", path, strerror(errno), fix);
		return -1;
	}
	struct stat st;
	char *buf = NULL;
	int rc = -1;
	if (fstat(fd, &st) < 0) {
		snprintf(msg, n, "cannot read %s: %s%s", path, strerror(errno), fix);
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(msg, n, "%s is not a regular file%s", path, fix);
	} else if ((unsigned long long)st.st_size > TLS_CA_FILE_MAX) {
		snprintf(msg, n, "%s is larger than %u MiB: not a file of CA certificates%s", path,
		         TLS_CA_FILE_MAX >> 20, fix);
	} else if (!(buf = malloc((size_t)st.st_size + 1))) {
		snprintf(msg, n, "out of memory reading %s", path);
	} else {
		size_t len = 0, want = (size_t)st.st_size;
		ssize_t got = 1;
		while (len < want && (got = read(fd, buf + len, want - len)) > 0)
			len += (size_t)got;
		buf[len] = '\0';
		if (got < 0)
			snprintf(msg, n, "cannot read %s: %s%s", path, strerror(errno), fix);
		else if (!memmem(buf, len, PEM_CERT_BEGIN, strlen(PEM_CERT_BEGIN)))
			snprintf(msg, n, "%s holds no PEM certificate (no \"" PEM_CERT_BEGIN "\" line)%s", path, fix);
		else
			rc = 0;
	}
	free(buf);
	close(fd);
	return rc;
}
