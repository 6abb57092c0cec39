#include "check.h"
#include "error.h"
#include "urltemplate.h"

static char *expand(const char *tpl, const char *item_json, char *err)
{
	struct urltemplate *t = urltemplate_parse(tpl, err);
	if (!t)
		return NULL;
	json_t *item = item_json ? json_loads(item_json, JSON_DECODE_ANY, NULL) : NULL;
	char *out = NULL;
	if (urltemplate_expand(t, item, &out, err) < 0)
		out = NULL;
	json_decref(item);
	urltemplate_free(t);
	return out;
}

static void test_field_and_pointer_placeholders_are_filled(void)
{
	char err[ERR_MAX];
	char *u = expand("/races/{id}/entries", "{\"id\":42}", err);
	CHECK_STR(u, "/races/42/entries");
	free(u);
	u = expand("/athletes/{athlete_id}?race={/race/id}", "{\"athlete_id\":\"a7\",\"race\":{\"id\":3}}", err);
	CHECK_STR(u, "/athletes/a7?race=3");
	free(u);
}

static void test_values_are_percent_encoded(void)
{
	char err[ERR_MAX];
	char *u = expand("/p/{name}", "{\"name\":\"Zo\\u00eb/2 ?&#\"}", err);
	CHECK_STR(u, "/p/Zo%C3%AB%2F2%20%3F%26%23");
	free(u);
}

static void test_template_without_placeholders_needs_no_item(void)
{
	char err[ERR_MAX];
	struct urltemplate *t = urltemplate_parse("/races", err);
	CHECK(t != NULL);
	CHECK_EQ(urltemplate_placeholders(t), 0);
	char *u = NULL;
	CHECK_EQ(urltemplate_expand(t, NULL, &u, err), 0);
	CHECK_STR(u, "/races");
	free(u);
	urltemplate_free(t);
}

static void test_placeholders_are_listed(void)
{
	char err[ERR_MAX];
	struct urltemplate *t = urltemplate_parse("/a/{x}/b/{/y/z}", err);
	CHECK_EQ(urltemplate_placeholders(t), 2);
	CHECK_STR(urltemplate_placeholder(t, 0), "x");
	CHECK_STR(urltemplate_placeholder(t, 1), "/y/z");
	CHECK(urltemplate_placeholder(t, 2) == NULL);
	urltemplate_free(t);
}

static void test_malformed_templates_are_refused(void)
{
	char err[ERR_MAX];
	CHECK(urltemplate_parse("/races/{id", err) == NULL);
	CHECK_STR(err, "url '/races/{id': '{' at column 8 is never closed");
	CHECK(urltemplate_parse("/races/{}/x", err) == NULL);
	CHECK_STR(err, "url '/races/{}/x': empty placeholder '{}' at column 8");
	CHECK(urltemplate_parse("/r/{a{b}", err) == NULL);
	CHECK(urltemplate_parse("/r/{/a~2}", err) == NULL);
}

static void test_missing_or_structured_values_fail_with_the_field(void)
{
	char err[ERR_MAX];
	CHECK(expand("/races/{id}/entries", "{\"name\":\"x\"}", err) == NULL);
	CHECK_STR(err, "url '/races/{id}/entries': the parent item has no field at '{id}'");
	CHECK(expand("/races/{id}/entries", "{\"id\":[1]}", err) == NULL);
	CHECK_STR(err, "url '/races/{id}/entries': the parent item has no string or number at '{id}'");
	CHECK(expand("/races/{id}", NULL, err) == NULL);
}

static void test_overlong_expansion_is_refused(void)
{
	char err[ERR_MAX];
	size_t n = URLTEMPLATE_MAX_URL;
	char *big = malloc(n + 32);
	snprintf(big, n + 32, "{\"v\":\"%0*d\"}", (int)n, 0);
	CHECK(expand("/x/{v}", big, err) == NULL);
	CHECK(strstr(err, "longer than") != NULL);
	free(big);
}

int main(void)
{
	RUN(test_field_and_pointer_placeholders_are_filled);
	RUN(test_values_are_percent_encoded);
	RUN(test_template_without_placeholders_needs_no_item);
	RUN(test_placeholders_are_listed);
	RUN(test_malformed_templates_are_refused);
	RUN(test_missing_or_structured_values_fail_with_the_field);
	RUN(test_overlong_expansion_is_refused);
	return CHECK_DONE();
}
