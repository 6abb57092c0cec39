/* redact: what counts as a secret and how it reads once masked. */
#include "redact.h"

#include <stdlib.h>

#include "check.h"

/* text masked, with room to grow. */
static const char *masked(const char *text)
{
	static char buf[1024];
	snprintf(buf, sizeof buf, "%s", text);
	redact_buf(buf, sizeof buf);
	return buf;
}

static const char *conninfo(const char *ci)
{
	static char buf[1024];
	char *s = redact_conninfo(ci);
	snprintf(buf, sizeof buf, "%s", s ? s : "(null)");
	free(s);
	return buf;
}

static void test_libpq_marks_password_and_sslpassword_secret(void)
{
	static const struct { const char *keyword; bool secret; } options[] = {
		{"password", true}, {"sslpassword", true}, {"SSLPassword", true},
		{"user", false}, {"host", false}, {"passfile", false} /* a path, not a secret */};
	for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
		CHECK_EQ(redact_is_secret_option(options[i].keyword), options[i].secret);
}

static void test_conninfo_keeps_every_option_but_masks_secret_values(void)
{
	CHECK_STR(conninfo("host=db port=5433 dbname=races user=raced password=hunter2 sslpassword=k3y"),
	          "user=raced password=*** dbname=races host=db port=5433 sslpassword=***");
}

static void test_conninfo_quoted_values_with_escapes_are_masked_whole(void)
{
	CHECK_STR(conninfo("dbname='my db' password='a b\\'c' application_name=x\\\\y"),
	          "password=*** dbname='my db' application_name='x\\\\y'");
}

static void test_conninfo_uri_userinfo_and_query_secrets_are_masked(void)
{
	CHECK_STR(conninfo("postgresql://raced:s3cret@db:5433/races?sslpassword=k3y&sslmode=require"),
	          "user=raced password=*** dbname=races host=db port=5433 sslmode=require sslpassword=***");
}

static void test_unparsable_conninfo_shows_nothing_of_it(void)
{
	CHECK_STR(conninfo("host=db password='unterminated"), "(unparsable conninfo)");
	CHECK_STR(conninfo("postgresql://u:pw@[::1/db"), "(unparsable conninfo)");
}

static void test_keyword_value_in_text_is_masked(void)
{
	CHECK_STR(masked("connecting to host=db password=hunter2 dbname=races"),
	          "connecting to host=db password=*** dbname=races");
	CHECK_STR(masked("sslpassword = 'a b\\'c' x=1"), "sslpassword = '***' x=1");
	CHECK_STR(masked("password=a\\ b user=x"), "password=*** user=x");
	/* Text is masked before it is encoded: a '"' is the value's, as libpq
	 * reads it. */
	CHECK_STR(masked("host=db sslpassword=k\"3y dbname=races"),
	          "host=db sslpassword=*** dbname=races");
}

static void test_a_sentence_keeps_its_punctuation(void)
{
	CHECK_STR(masked("connected to host=db password=hunter2, schema version 1"),
	          "connected to host=db password=***, schema version 1");
	CHECK_STR(masked("(sslpassword=k3y). password=,"), "(sslpassword=***). password=***");
	CHECK_STR(masked("connected to password=***, schema version 1"), "connected to password=***, schema version 1");
}

static void test_keyword_must_be_a_word_of_its_own(void)
{
	CHECK_STR(masked("mypassword=x password_file=y passfile=z"), "mypassword=x password_file=y passfile=z");
	CHECK_STR(masked("password authentication failed for user \"raced\""),
	          "password authentication failed for user \"raced\"");
}

static void test_uri_query_secret_ends_at_the_next_parameter(void)
{
	CHECK_STR(masked("postgresql://db/races?sslpassword=k3y&sslmode=require#x"),
	          "postgresql://db/races?sslpassword=***&sslmode=require#x");
	CHECK_STR(masked("http://h/p?a=1&PASSWORD=x y"), "http://h/p?a=1&PASSWORD=*** y");
}

static void test_url_password_is_masked_and_user_kept(void)
{
	CHECK_STR(masked("GET http://alice:s3cret@127.0.0.1:8080/races?page=2: HTTP 500"),
	          "GET http://alice:***@127.0.0.1:8080/races?page=2: HTTP 500");
	CHECK_STR(masked("base_url 'https://alice:s3cret@host' of [provider x]"),
	          "base_url 'https://alice:***@host' of [provider x]");
}

static void test_url_without_password_is_unchanged(void)
{
	CHECK_STR(masked("http://alice@host:8080/a@b http://host:8080/p?x=a:b@c"),
	          "http://alice@host:8080/a@b http://host:8080/p?x=a:b@c");
	CHECK_STR(masked("http://alice:@host/"), "http://alice:@host/");
}

static void test_percent_encoded_userinfo_is_masked_to_the_last_at(void)
{
	CHECK_STR(masked("http://al%40ice:p%3Ass%40w0rd@host/"), "http://al%40ice:***@host/");
	CHECK_STR(masked("http://alice:p@ss@host/x"), "http://alice:***@host/x");
}

static void test_every_secret_in_a_text_is_counted(void)
{
	char buf[128] = "password=a http://u:b@h/ sslpassword=c password=***";
	CHECK_EQ(redact_buf(buf, sizeof buf), 3);
	CHECK_STR(buf, "password=*** http://u:***@h/ sslpassword=*** password=***");
}

static void test_a_text_that_grows_past_its_buffer_is_cut_not_uncovered(void)
{
	/* "password=a b" needs 15 bytes masked; 13 hold "password=*** " */
	char buf[13] = "password=a b";
	CHECK_EQ(redact_buf(buf, sizeof buf), 1);
	CHECK_STR(buf, "password=***");
	char url[37] = "password=a password=b http://u:pw@/";  /* masks push the '@' out */
	CHECK_EQ(redact_buf(url, sizeof url), 3);
	CHECK_STR(url, "password=*** password=*** http://u:"); /* no room for a mask: "p" goes */
	char tiny[12] = "password=ab";
	CHECK_EQ(redact_buf(tiny, sizeof tiny), 1);
	CHECK_STR(tiny, "password="); /* the mask does not fit: the value goes */
}

static void test_a_url_cut_before_its_at_loses_all_after_the_colon(void)
{
	char room[24] = "GET http://alice:s3cre";  /* 22 of 23: not cut, a host:port */
	CHECK_EQ(redact_buf(room, sizeof room), 0);
	char cut[23] = "GET http://alice:s3cre";   /* fills it: maybe cut */
	CHECK_EQ(redact_buf(cut, sizeof cut), 1);
	CHECK_STR(cut, "GET http://alice:***");
}

static void test_a_known_secret_is_masked_wherever_it_appears(void)
{
	char buf[64] = "HTTP 401 bad token t0k3n (t0k3nt0k3n)";
	CHECK_EQ(redact_literal(buf, sizeof buf, "t0k3n"), 3);
	CHECK_STR(buf, "HTTP 401 bad token *** (******)");
	CHECK_EQ(redact_literal(buf, sizeof buf, ""), 0);
	CHECK_EQ(redact_literal(buf, sizeof buf, NULL), 0);
	char tight[6] = "ab ab";
	CHECK_EQ(redact_literal(tight, sizeof tight, "ab"), 1);
	CHECK_STR(tight, "*** "); /* the second does not fit: what is left of it goes */
	char cut[12] = "token: t0k";  /* cut by the caller, in a full buffer */
	CHECK_EQ(redact_literal(cut, 11, "t0k3n"), 0);
	CHECK_STR(cut, "token: ");
}

static void test_dup_and_take_return_masked_copies(void)
{
	char *d = redact_dup("password=a password=b");
	CHECK_STR(d, "password=*** password=***");
	free(d);
	char *t = redact_take(strdup("http://u:p@h/"));
	CHECK_STR(t, "http://u:***@h/");
	free(t);
	CHECK(redact_take(NULL) == NULL);
}

static void test_a_configured_query_parameter_is_masked_in_urls_and_text(void)
{
	CHECK_STR(masked("GET http://h/races?page=2&api_key=s3cr3t&x=1"), "GET http://h/races?page=2&api_key=s3cr3t&x=1");
	CHECK_EQ(redact_add_param("api_key"), 0);
	CHECK_EQ(redact_add_param("API_KEY"), 0); /* known: not added twice */
	CHECK_EQ(redact_add_param("x-api.key"), 0);
	CHECK_STR(masked("GET http://h/races?page=2&api_key=s3cr3t&x=1: HTTP 401"),
	          "GET http://h/races?page=2&api_key=***&x=1: HTTP 401");
	CHECK_STR(masked("http://h/r?Api_Key=s3cr3t#top"), "http://h/r?Api_Key=***#top");
	CHECK_STR(masked("http://h/r?x-api.key=s3cr3t"), "http://h/r?x-api.key=***");
	CHECK_STR(masked("sent api_key=s3cr3t, refused"), "sent api_key=***, refused");
	/* a name of its own: my_api_key is another parameter */
	CHECK_STR(masked("http://h/r?my_api_key=v&their-api_key=w"), "http://h/r?my_api_key=v&their-api_key=w");
	CHECK_EQ(redact_add_param(""), -1);
	CHECK_EQ(redact_add_param("a b"), -1);
	CHECK_EQ(redact_add_param("a=b"), -1);
}

/* redact_buf looks for a name only where a secret's first byte is, in
 * either case: names starting with a digit, '-' or '.', or in another
 * case than configured, are still found. */
static void test_a_secret_name_is_found_whatever_its_first_byte(void)
{
	CHECK_STR(masked("PASSWORD=a SslPassword = 'b c' pAsSwOrD=d"),
	          "PASSWORD=*** SslPassword = '***' pAsSwOrD=***");
	CHECK_EQ(redact_add_param("9tok"), 0);
	CHECK_EQ(redact_add_param("-sig"), 0);
	CHECK_EQ(redact_add_param(".dot"), 0);
	CHECK_EQ(redact_add_param("Zeta"), 0);
	CHECK_STR(masked("http://h/r?9TOK=a&-sig=b&.DOT=c&zETA=d&page=2"),
	          "http://h/r?9TOK=***&-sig=***&.DOT=***&zETA=***&page=2");
	/* still a name of its own */
	CHECK_STR(masked("http://h/r?x9tok=a&a-sig=b"), "http://h/r?x9tok=a&a-sig=b");
	CHECK_STR(masked("ftp://u:p@h x://v:q@h"), "ftp://u:***@h x://v:***@h");
	CHECK_STR(masked(""), "");
}

int main(void)
{
	RUN(test_libpq_marks_password_and_sslpassword_secret);
	RUN(test_conninfo_keeps_every_option_but_masks_secret_values);
	RUN(test_conninfo_quoted_values_with_escapes_are_masked_whole);
	RUN(test_conninfo_uri_userinfo_and_query_secrets_are_masked);
	RUN(test_unparsable_conninfo_shows_nothing_of_it);
	RUN(test_keyword_value_in_text_is_masked);
	RUN(test_a_sentence_keeps_its_punctuation);
	RUN(test_keyword_must_be_a_word_of_its_own);
	RUN(test_uri_query_secret_ends_at_the_next_parameter);
	RUN(test_url_password_is_masked_and_user_kept);
	RUN(test_url_without_password_is_unchanged);
	RUN(test_percent_encoded_userinfo_is_masked_to_the_last_at);
	RUN(test_every_secret_in_a_text_is_counted);
	RUN(test_a_text_that_grows_past_its_buffer_is_cut_not_uncovered);
	RUN(test_a_url_cut_before_its_at_loses_all_after_the_colon);
	RUN(test_a_known_secret_is_masked_wherever_it_appears);
	RUN(test_dup_and_take_return_masked_copies);
	RUN(test_a_configured_query_parameter_is_masked_in_urls_and_text);
	RUN(test_a_secret_name_is_found_whatever_its_first_byte);
	return CHECK_DONE();
}
