/* conditional as a specification: the lines a conditional GET sends in
 * front of the provider's, and which validators of a response are kept. */
#include "check.h"
#include "conditional.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lines of h's list, then the shared ones, joined by '|'. */
static void lines(const struct curl_slist *l, char *out, size_t n)
{
	size_t len = 0;
	out[0] = '\0';
	for (; l; l = l->next)
		len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "|" : "", l->data);
}

static void test_validators_go_in_front_of_the_providers_lines_verbatim(void)
{
	struct curl_slist *shared = curl_slist_append(NULL, "Accept: application/json");
	struct conditional_headers h;
	char err[ERR_MAX], got[512];
	struct fetch_validators v = {.etag = "W/\"a, b\"", .last_modified = "Sun, 06 Nov 1994 08:49:37 GMT"};

	CHECK_EQ(conditional_headers(&v, shared, "http://h/x", &h, err), 0);
	CHECK(h.conditional);
	lines(h.head, got, sizeof got);
	CHECK_STR(got, "If-None-Match: W/\"a, b\"|If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT|"
	               "Accept: application/json");
	conditional_headers_free(&h);
	/* the shared list is left whole */
	lines(shared, got, sizeof got);
	CHECK_STR(got, "Accept: application/json");

	v = (struct fetch_validators){.last_modified = "Sun, 06 Nov 1994 08:49:37 GMT"};
	CHECK_EQ(conditional_headers(&v, shared, "http://h/x", &h, err), 0);
	lines(h.head, got, sizeof got);
	CHECK_STR(got, "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT|Accept: application/json");
	conditional_headers_free(&h);
	curl_slist_free_all(shared);
}

static void test_no_validator_adds_no_line(void)
{
	struct conditional_headers h;
	char err[ERR_MAX];
	struct fetch_validators empty = {.etag = "", .last_modified = NULL};
	CHECK_EQ(conditional_headers(NULL, NULL, "http://h/x", &h, err), 0);
	CHECK(h.head == NULL && !h.conditional);
	CHECK_EQ(conditional_headers(&empty, NULL, "http://h/x", &h, err), 0);
	CHECK(h.head == NULL && !h.conditional);
	conditional_headers_free(&h);
}

static void test_a_validator_that_cannot_go_on_a_line_is_refused(void)
{
	struct conditional_headers h;
	char err[ERR_MAX], big[FETCH_VALIDATOR_MAX + 1];
	struct fetch_validators v = {.etag = "\"ok\"", .last_modified = "Sun,\n06 Nov"};
	CHECK_EQ(conditional_headers(&v, NULL, "http://h/x", &h, err), -1);
	CHECK(strstr(err, "GET http://h/x: the If-Modified-Since to send") != NULL);
	CHECK(h.head == NULL); /* the ETag's line is freed with it */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0'; /* FETCH_VALIDATOR_MAX bytes: fits */
	v = (struct fetch_validators){.etag = big};
	CHECK_EQ(conditional_headers(&v, NULL, "http://h/x", &h, err), 0);
	conditional_headers_free(&h);
}

static void test_response_validators_kept(void)
{
	char *s;
	CHECK_STR((s = conditional_response_etag("W/\"x\"")), "W/\"x\"");
	free(s);
	CHECK(conditional_response_etag("") == NULL);
	CHECK(conditional_response_etag(NULL) == NULL);
	CHECK(conditional_response_etag("\"a\tb\"") == NULL);
	CHECK_STR((s = conditional_response_last_modified("Sun, 06 Nov 1994 08:49:37 GMT")),
	          "Sun, 06 Nov 1994 08:49:37 GMT");
	free(s);
	CHECK(conditional_response_last_modified("yesterday, around noon") == NULL);
	CHECK(conditional_response_last_modified("") == NULL);
}

/* Last-Modified is kept when libcurl's date parser takes it: an
 * IMF-fixdate is checked without it (conditional.c), the other forms go
 * to it; both must agree with curl_getdate on every case here. */
static void test_last_modified_is_kept_as_curl_reads_dates(void)
{
	static const char *const kept[] = {
		"Sun, 06 Nov 1994 08:49:37 GMT", "Mon, 01 Jan 2024 00:00:00 GMT",
		"Sat, 31 Dec 9999 23:59:60 GMT", "Wed, 15 Oct 1583 12:00:00 GMT",
		"Fri, 31 Feb 2025 10:00:00 GMT", /* curl does not check the month's length */
		"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",  /* RFC 850, asctime */
		"06 Nov 1994 08:49:37 GMT",
	};
	static const char *const refused[] = {
		"Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1582 08:49:37 GMT", "Sun, 06 Nov 1994 08:60:37 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT", "Sun, 06 Xyz 1994 08:49:37 GMT",
		"Sun, 0x Nov 1994 08:49:37 GMT", "Sun, 06 Nov 19a4 08:49:37 GMT",
	};
	for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
		char *s = conditional_response_last_modified(kept[i]);
		if (!s)
			fprintf(stderr, "  not kept: '%s'\n", kept[i]);
		CHECK(s != NULL && strcmp(s, kept[i]) == 0);
		CHECK(curl_getdate(kept[i], NULL) != -1);
		free(s);
	}
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		char *s = conditional_response_last_modified(refused[i]);
		if (s)
			fprintf(stderr, "  kept: '%s'\n", refused[i]);
		CHECK(s == NULL);
		CHECK_EQ(curl_getdate(refused[i], NULL), -1);
		free(s);
	}
}

int main(void)
{
	RUN(test_validators_go_in_front_of_the_providers_lines_verbatim);
	RUN(test_no_validator_adds_no_line);
	RUN(test_a_validator_that_cannot_go_on_a_line_is_refused);
	RUN(test_response_validators_kept);
	RUN(test_last_modified_is_kept_as_curl_reads_dates);
	return CHECK_DONE();
}
