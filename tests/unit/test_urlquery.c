/* Unit tests for urlquery: one query parameter read or set, every other
 * part of the URL kept as it was, values percent-encoded. */
#include "check.h"
#include "urlquery.h"

#include <errno.h>

static char *set(const char *url, const char *name, const char *value)
{
	char err[ERR_MAX], *out = NULL;
	if (urlquery_set(url, name, value, &out, err) < 0)
		return NULL;
	return out;
}

static void check_set(const char *url, const char *name, const char *value, const char *want)
{
	char *got = set(url, name, value);
	CHECK_STR(got, want);
	free(got);
}

static void test_set_appends_replaces_and_keeps_the_rest(void)
{
	check_set("https://x/r", "page", "2", "https://x/r?page=2");
	check_set("https://x/r?", "page", "2", "https://x/r?page=2");
	check_set("https://x/r?a=1", "page", "2", "https://x/r?a=1&page=2");
	check_set("https://x/r?page=1&a=1", "page", "2", "https://x/r?page=2&a=1");
	check_set("https://x/r?a=1&page=1&b&page=7", "page", "2", "https://x/r?a=1&page=2&b");
	check_set("https://x/r?a=1&&b=2#frag?page=1", "page", "2", "https://x/r?a=1&&b=2&page=2#frag?page=1");
	check_set("https://x/r#f", "page", "2", "https://x/r?page=2#f");
	check_set("/races?pagex=1&xpage=2", "page", "3", "/races?pagex=1&xpage=2&page=3");
	/* a name matches encoded or not */
	check_set("/r?page%5Bnumber%5D=1", "page[number]", "2", "/r?page[number]=2");
	check_set("/r?page=", "page", "2", "/r?page=2");
}

static void test_values_are_percent_encoded(void)
{
	check_set("/r", "cursor", "a+b/c=d e&f%~._-", "/r?cursor=a%2Bb%2Fc%3Dd%20e%26f%25~._-");
	check_set("/r", "c", "\xc3\xa9", "/r?c=%C3%A9");
	check_set("/r", "c", "", "/r?c=");
}

static void test_get_decodes_the_last_value(void)
{
	char err[ERR_MAX], *v;
	CHECK_EQ(urlquery_get("/r?offset=10&x=2#offset=5", "offset", &v, err), 0);
	CHECK_STR(v, "10");
	free(v);
	CHECK_EQ(urlquery_get("/r?c=a%2Bb&c=z%20y", "c", &v, err), 0);
	CHECK_STR(v, "z y");
	free(v);
	CHECK_EQ(urlquery_get("/r?c=a+b", "c", &v, err), 0);
	CHECK_STR(v, "a+b");
	free(v);
	CHECK_EQ(urlquery_get("/r?cc=1", "c", &v, err), 0);
	CHECK(v == NULL);
	CHECK_EQ(urlquery_get("/r", "c", &v, err), 0);
	CHECK(v == NULL);
	CHECK_EQ(urlquery_get("/r?c", "c", &v, err), 0);
	CHECK_STR(v, "");
	free(v);
	CHECK_EQ(urlquery_get("/r?c=%2", "c", &v, err), -EINVAL);
	CHECK_EQ(urlquery_get("/r?c=a%00b", "c", &v, err), -EINVAL);
	CHECK_STR(err, "the query parameter 'c' has a bad %-escape or an encoded NUL");
}

static void test_round_trip(void)
{
	char err[ERR_MAX], *v;
	char *u = set("/r?a=1", "cursor", "eyJpZCI6IDF9+/=?&#");
	CHECK_EQ(urlquery_get(u, "cursor", &v, err), 0);
	CHECK_STR(v, "eyJpZCI6IDF9+/=?&#");
	free(v);
	free(u);
}

static void test_parameter_names(void)
{
	CHECK(urlquery_name_valid("page"));
	CHECK(urlquery_name_valid("page[number]"));
	CHECK(urlquery_name_valid("a.b-c_d~"));
	CHECK(!urlquery_name_valid(""));
	CHECK(!urlquery_name_valid("a b"));
	CHECK(!urlquery_name_valid("a=b"));
	CHECK(!urlquery_name_valid("a&b"));
	CHECK(!urlquery_name_valid("a%20"));
}

int main(void)
{
	RUN(test_set_appends_replaces_and_keeps_the_rest);
	RUN(test_values_are_percent_encoded);
	RUN(test_get_decodes_the_last_value);
	RUN(test_round_trip);
	RUN(test_parameter_names);
	return CHECK_DONE();
}
