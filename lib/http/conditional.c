/* conditional — see conditional.h.
 *
 * The request's list is our lines chained in front of the provider's
 * (the last of ours points at its first): no copy of the provider's lines,
 * the token among them, for each request. */
#include "conditional.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether s is at most FETCH_VALIDATOR_MAX bytes with no control
 * character (what may go on a header line and be stored). */
static bool validator_fits(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= FETCH_VALIDATOR_MAX || (unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return true;
}

static int add_line(struct conditional_headers *h, const char *name, const char *value,
                    const char *url, char *err)
{
	if (!value || !*value)
		return 0;
	if (!validator_fits(value))
		return err_set(err, "GET %s: the %s to send (%.40s...) is longer than %u bytes or "
		               "holds a control character; it was not sent", url, name, value,
		               FETCH_VALIDATOR_MAX);
	char line[FETCH_VALIDATOR_MAX + 32];
	snprintf(line, sizeof line, "%s: %s", name, value);
	struct curl_slist *n = curl_slist_append(NULL, line);
	if (!n)
		return err_set(err, "out of memory");
	if (h->joint)
		h->joint->next = n;
	else
		h->head = n;
	h->joint = n;
	h->conditional = true;
	return 0;
}

int conditional_headers(const struct fetch_validators *v, struct curl_slist *shared,
                        const char *url, struct conditional_headers *out, char *err)
{
	*out = (struct conditional_headers){0};
	if (!v)
		return 0;
	if (add_line(out, "If-None-Match", v->etag, url, err) < 0 ||
	    add_line(out, "If-Modified-Since", v->last_modified, url, err) < 0) {
		conditional_headers_free(out);
		return -1;
	}
	if (out->joint)
		out->joint->next = shared;
	return 0;
}

void conditional_headers_free(struct conditional_headers *h)
{
	if (h->joint)
		h->joint->next = NULL; /* the shared list is not ours */
	curl_slist_free_all(h->head);
	*h = (struct conditional_headers){0};
}

char *conditional_response_etag(const char *value)
{
	if (!value || !*value || !validator_fits(value))
		return NULL;
	return strdup(value);
}

/* The number of the n digits at s, or -1. */
static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Whether the three letters at s are one of names' (3 letters each). */
static bool name3(const char *s, const char *names)
{
	for (; *names; names += 3)
		if (memcmp(s, names, 3) == 0)
			return true;
	return false;
}

/* Whether s is an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110
 * 5.6.7: what servers send) whose fields libcurl's date parser takes (day
 * 1-31, year from 1583, hour < 24, minute < 60, second <= 60).  That
 * parser (curl_getdate) tries its formats with sscanf and cost about
 * 10,500 instructions a response against nginx, which sends Last-Modified
 * with every file: a tenth of raced's work a request.  Other forms (RFC
 * 850, asctime) still go to it. */
static bool imf_fixdate(const char *s)
{
	if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
	    s[19] != ':' || s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
		return false;
	int day = digits(s + 5, 2), year = digits(s + 12, 4), h = digits(s + 17, 2), m = digits(s + 20, 2),
	    sec = digits(s + 23, 2);
	return name3(s, "MonTueWedThuFriSatSun") && name3(s + 8, "JanFebMarAprMayJunJulAugSepOctNovDec") &&
	       day >= 1 && day <= 31 && year >= 1583 && h >= 0 && h <= 23 && m >= 0 && m <= 59 && sec >= 0 &&
	       sec <= 60;
}

char *conditional_response_last_modified(const char *value)
{
	if (!value || !*value || !validator_fits(value) ||
	    (!imf_fixdate(value) && curl_getdate(value, NULL) == -1))
		return NULL;
	return strdup(value);
}
