/* auth: which static headers a provider may send, what each method puts
 * on the wire, and the query secret kept off the URLs raced shows. */
#include "auth.h"

#include <stdlib.h>

#include "check.h"

static char msg[ERR_MAX];

static int header_ok(const char *line, enum auth_kind kind, const char *name)
{
	return auth_header_check(line, kind, name, msg, sizeof msg);
}

static void test_a_static_header_is_a_token_name_and_a_visible_value(void)
{
	CHECK_EQ(header_ok("Accept: application/vnd.x+json", AUTH_NONE, NULL), 0);
	CHECK_EQ(header_ok("X-Api-Version:2024-01-01", AUTH_NONE, NULL), 0);
	CHECK_EQ(header_ok("Accept application/json", AUTH_NONE, NULL), -1);
	CHECK(strstr(msg, "not a header name followed by ':'"));
	CHECK_EQ(header_ok("Bad Name: x", AUTH_NONE, NULL), -1);
	CHECK_EQ(header_ok(": x", AUTH_NONE, NULL), -1);
	CHECK_EQ(header_ok("X-Empty:  ", AUTH_NONE, NULL), -1);
	CHECK(strstr(msg, "has no value"));
	CHECK_EQ(header_ok("X-A: b\r\nX-Injected: 1", AUTH_NONE, NULL), -1);
	CHECK(strstr(msg, "line break"));
	CHECK(!strstr(msg, "Injected")); /* the value is never quoted */
	CHECK_EQ(header_ok("X-A: b\x01", AUTH_NONE, NULL), -1);
	CHECK_EQ(header_ok("X-A: tab\there", AUTH_NONE, NULL), 0);
}

static void test_headers_raced_sets_are_refused(void)
{
	CHECK_EQ(header_ok("Host: other", AUTH_NONE, NULL), -1);
	CHECK_EQ(header_ok("if-none-match: \"x\"", AUTH_NONE, NULL), -1);
	CHECK_EQ(header_ok("Accept-Encoding: br", AUTH_NONE, NULL), -1);
	CHECK_EQ(header_ok("Authorization: Token x", AUTH_NONE, NULL), 0);
	CHECK_EQ(header_ok("Authorization: Token x", AUTH_BEARER, NULL), -1);
	CHECK(strstr(msg, "auth sets it"));
	CHECK_EQ(header_ok("authorization: x", AUTH_BASIC, NULL), -1);
	CHECK_EQ(header_ok("X-Api-Key: x", AUTH_HEADER, "x-api-key"), -1);
	CHECK_EQ(header_ok("X-Api-Key: x", AUTH_QUERY, "api_key"), 0);
	/* Accept and User-Agent replace raced's own */
	CHECK_EQ(header_ok("User-Agent: mine/1", AUTH_BEARER, NULL), 0);
}

static void test_auth_names_are_checked_by_method(void)
{
	CHECK_EQ(auth_name_check(AUTH_HEADER, "X-Api-Key", msg, sizeof msg), 0);
	CHECK_EQ(auth_name_check(AUTH_HEADER, "X Api", msg, sizeof msg), -1);
	CHECK_EQ(auth_name_check(AUTH_HEADER, "Authorization", msg, sizeof msg), -1);
	CHECK_EQ(auth_name_check(AUTH_HEADER, "Host", msg, sizeof msg), -1);
	CHECK_EQ(auth_name_check(AUTH_QUERY, "api_key", msg, sizeof msg), 0);
	CHECK_EQ(auth_name_check(AUTH_QUERY, "api key", msg, sizeof msg), -1);
	CHECK_EQ(auth_name_check(AUTH_QUERY, "a=b", msg, sizeof msg), -1);
	CHECK_EQ(auth_name_check(AUTH_QUERY, "", msg, sizeof msg), -1);
}

static void test_conf_check_names_the_setting_and_never_the_secret(void)
{
	const char *two[] = {"Accept: a/b", "accept: c/d"};
	struct auth_conf c = {.kind = AUTH_NONE, .headers = two, .n_headers = 2};
	CHECK_EQ(auth_conf_check(&c, msg, sizeof msg), -1);
	CHECK(strstr(msg, "set twice"));
	c = (struct auth_conf){.kind = AUTH_BASIC, .secret = "pw"};
	CHECK_EQ(auth_conf_check(&c, msg, sizeof msg), -1);
	CHECK(strstr(msg, "username"));
	c = (struct auth_conf){.kind = AUTH_BASIC, .username = "u", .secret = "p\nw"};
	CHECK_EQ(auth_conf_check(&c, msg, sizeof msg), -1);
	CHECK(!strstr(msg, "p\nw"));
	c = (struct auth_conf){.kind = AUTH_HEADER, .name = "X-Key"};
	CHECK_EQ(auth_conf_check(&c, msg, sizeof msg), -1);
	CHECK(strstr(msg, "no token"));
	c = (struct auth_conf){.kind = AUTH_QUERY, .name = "api_key", .secret = "s3"};
	CHECK_EQ(auth_conf_check(&c, msg, sizeof msg), 0);
}

static char *joined(struct curl_slist *l)
{
	static char buf[1024];
	buf[0] = '\0';
	for (; l; l = l->next)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s|", l->data);
	return buf;
}

static void test_each_method_adds_its_line_after_the_static_headers(void)
{
	const char *defaults[] = {"User-Agent: raced/x", "Accept: application/json"};
	const char *statics[] = {"Accept: application/vnd.x+json", "X-Api-Version: 2"};
	struct auth_conf c = {.kind = AUTH_BEARER, .secret = "t0k", .headers = statics, .n_headers = 2};
	struct auth *a = auth_new(&c, msg);
	CHECK(a);
	struct curl_slist *l = NULL;
	CHECK_EQ(auth_header_list(a, defaults, 2, true, &l), 0);
	CHECK_STR(joined(l), "User-Agent: raced/x|Accept: application/vnd.x+json|X-Api-Version: 2|"
	                     "Authorization: Bearer t0k|");
	curl_slist_free_all(l);
	l = NULL;
	CHECK_EQ(auth_header_list(a, defaults, 2, false, &l), 0);
	CHECK_STR(joined(l), "User-Agent: raced/x|Accept: application/vnd.x+json|X-Api-Version: 2|");
	curl_slist_free_all(l);
	auth_free(a);

	c = (struct auth_conf){.kind = AUTH_HEADER, .name = "X-Api-Key", .secret = "k3y"};
	a = auth_new(&c, msg);
	l = NULL;
	CHECK_EQ(auth_header_list(a, defaults, 2, true, &l), 0);
	CHECK_STR(joined(l), "User-Agent: raced/x|Accept: application/json|X-Api-Key: k3y|");
	CHECK(auth_follows_redirects(a));
	curl_slist_free_all(l);
	auth_free(a);

	c = (struct auth_conf){.kind = AUTH_BASIC, .username = "u", .secret = "pw"};
	a = auth_new(&c, msg);
	l = NULL;
	CHECK_EQ(auth_header_list(a, defaults, 2, true, &l), 0);
	CHECK_STR(joined(l), "User-Agent: raced/x|Accept: application/json|"); /* libcurl's options */
	CHECK(!auth_follows_redirects(a));
	curl_slist_free_all(l);
	auth_free(a);
}

static void test_query_secret_replaces_any_in_the_url_and_is_masked(void)
{
	struct auth_conf c = {.kind = AUTH_QUERY, .name = "api_key", .secret = "s e&cret"};
	struct auth *a = auth_new(&c, msg);
	CHECK(a);
	char *s = auth_url_strip(a, "http://h/r?api_key=old&page=2&api_key&x=api_key#f");
	CHECK_STR(s, "http://h/r?page=2&x=api_key#f");
	free(s);
	s = auth_url_strip(a, "http://h/r?api_key=old");
	CHECK_STR(s, "http://h/r");
	free(s);
	s = auth_url_strip(a, "http://h/r?my_api_key=1");
	CHECK_STR(s, "http://h/r?my_api_key=1");
	free(s);

	CURLU *u = curl_url();
	CHECK_EQ(curl_url_set(u, CURLUPART_URL, "http://h/r?page=2", 0), CURLUE_OK);
	CHECK_EQ(auth_url_apply(a, u), CURLUE_OK);
	char *full = NULL;
	CHECK_EQ(curl_url_get(u, CURLUPART_URL, &full, 0), CURLUE_OK);
	CHECK_STR(full, "http://h/r?page=2&api_key=s+e%26cret");
	curl_free(full);
	curl_url_cleanup(u);

	char text[256] = "GET http://h/r?page=2&api_key=s+e%26cret: HTTP 401, you sent s e&cret";
	auth_mask(a, text, sizeof text);
	CHECK_STR(text, "GET http://h/r?page=2&api_key=*** HTTP 401, you sent ***"); /* a value runs to white space */
	auth_free(a);
}

static void test_a_refusal_names_the_provider_and_the_settings(void)
{
	char hint[256];
	struct auth_conf c = {.kind = AUTH_BASIC, .username = "u", .secret = "pw"};
	struct auth *a = auth_new(&c, msg);
	auth_refusal_hint(a, 401, "main", hint, sizeof hint);
	CHECK_STR(hint, "; check the credentials of [provider main] (auth = basic: 'username' and the password of "
	                "'password_file' or the credential main.password)");
	auth_refusal_hint(a, 406, "main", hint, sizeof hint);
	CHECK_STR(hint, "; [provider main] may need another Accept (or other) header line: setting 'header'");
	auth_refusal_hint(a, 404, "main", hint, sizeof hint);
	CHECK_STR(hint, "");
	auth_free(a);
	c = (struct auth_conf){.kind = AUTH_NONE};
	a = auth_new(&c, msg);
	auth_refusal_hint(a, 403, "open", hint, sizeof hint);
	CHECK_STR(hint, "; check the credentials of [provider open] (it sends none: set 'auth')");
	auth_free(a);
}

int main(void)
{
	RUN(test_a_static_header_is_a_token_name_and_a_visible_value);
	RUN(test_headers_raced_sets_are_refused);
	RUN(test_auth_names_are_checked_by_method);
	RUN(test_conf_check_names_the_setting_and_never_the_secret);
	RUN(test_each_method_adds_its_line_after_the_static_headers);
	RUN(test_query_secret_replaces_any_in_the_url_and_is_masked);
	RUN(test_a_refusal_names_the_provider_and_the_settings);
	return CHECK_DONE();
}
