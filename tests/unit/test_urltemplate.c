#include "check.h"
#include "error.h"
#include "urltemplate.h"

static char *expand(const char *tpl, const char *item_json, char *err)
{
	struct urltemplate *t = urltemplate_parse(tpl, err);
	if (!t)
		return NULL;
	struct jsondoc *d = NULL;
	if (item_json) {
		d = jsondoc_new();
		if (!d || jsondoc_parse(d, item_json, strlen(item_json), JSONDOC_ANY, err) < 0) {
			fprintf(stderr, "bad test JSON: %s\n", err);
			exit(2);
		}
	}
	char *out = NULL;
	if (urltemplate_expand(t, d, 0, &out, err) < 0)
		out = NULL;
	jsondoc_free(d);
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

/* A value must stay inside its segment: "." and ".." would be removed by
 * URL resolution (/races/../entries is /entries), and an empty value in
 * the path would name the collection (/athletes/).  In the query they are
 * plain values. */
static void test_dot_and_empty_values_cannot_change_the_path(void)
{
	static const struct {
		const char *tpl, *item, *want;
	} cases[] = {
		{"/races/{id}/entries", "{\"id\":\"..\"}", "/races/%2E%2E/entries"},
		{"/athletes/{id}", "{\"id\":\".\"}", "/athletes/%2E"},
		{"/athletes/{id}", "{\"id\":\"...\"}", "/athletes/..."},
		{"/athletes/{id}", "{\"id\":\".\\u0000\"}", "/athletes/.%00"},
		{"/athletes/{id}", "{\"id\":\"a.b\"}", "/athletes/a.b"},
		{"/athletes?id={id}&since={s}", "{\"id\":\"..\",\"s\":\"\"}", "/athletes?id=..&since="},
	};
	char err[ERR_MAX];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *u = expand(cases[i].tpl, cases[i].item, err);
		CHECK_STR(u, cases[i].want);
		free(u);
	}
	CHECK(expand("/athletes/{athlete_id}", "{\"athlete_id\":\"\"}", err) == NULL);
	CHECK_STR(err, "url '/athletes/{athlete_id}': the parent item's '{athlete_id}' is empty, "
	               "and an empty path segment would ask for another resource");
}

static void test_template_without_placeholders_needs_no_item(void)
{
	char err[ERR_MAX];
	struct urltemplate *t = urltemplate_parse("/races", err);
	CHECK(t != NULL);
	CHECK_EQ(urltemplate_placeholders(t), 0);
	char *u = NULL;
	CHECK_EQ(urltemplate_expand(t, NULL, 0, &u, err), 0);
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

/* A number as PostgreSQL's jsonb prints it (jsonnum.h): the URL made from
 * an item fetched is the one made from its row read back.  Strings are
 * not numbers, whatever they hold. */
static void test_numbers_are_written_as_postgresql_does_and_escapes_decoded(void)
{
	char err[ERR_MAX];
	char *u = expand("/r/{a}/{b}/{c}/{d}", "{\"a\":0.1,\"b\":-12,\"c\":1e3,\"d\":true}", err);
	CHECK_STR(u, "/r/0.1/-12/1000/true");
	free(u);
	u = expand("/r/{a}/{b}/{c}/{d}?e={e}&f={f}",
	           "{\"a\":1.50,\"b\":-0,\"c\":1E+2,\"d\":0.10e1,\"e\":-1.5e-3,\"f\":\"1e3\"}", err);
	CHECK_STR(u, "/r/1.50/0/100/1.0?e=-0.0015&f=1e3");
	free(u);
	u = expand("/r/{a}/{b}", "{\"a\":false,\"b\":18446744073709551616}", err);
	CHECK_STR(u, "/r/false/18446744073709551616");
	free(u);
	u = expand("/a/{k}", "{\"k\":\"x\\u0041\\n\\ud83d\\ude00~\"}", err);
	CHECK_STR(u, "/a/xA%0A%F0%9F%98%80~");
	free(u);
	u = expand("/a/{k}", "{\"k\":1,\"k\":2}", err); /* the last duplicate wins */
	CHECK_STR(u, "/a/2");
	free(u);
	CHECK(expand("/a/{k}", "{\"k\":null}", err) == NULL);
	CHECK_STR(err, "url '/a/{k}': the parent item has no string or number at '{k}'");
	CHECK(expand("/a/{k}", "[1]", err) == NULL);
	CHECK_STR(err, "url '/a/{k}': the parent item has no field at '{k}'");
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
	CHECK_STR(err, "url '/x/{v}': the parent item's value at '{v}' is 8192 bytes or longer, "
	               "which no URL can hold");
	free(big);
	/* a number short as written but not as PostgreSQL writes it */
	CHECK(expand("/x/{v}", "{\"v\":1e8191}", err) == NULL);
	CHECK_STR(err, "url '/x/{v}': the parent item's value at '{v}' is 8192 bytes or longer, "
	               "which no URL can hold");
	CHECK(expand("/x/{v}", "{\"v\":-1e-99999999999}", err) == NULL);
	CHECK(strstr(err, "'{v}' is 8192 bytes or longer") != NULL);
	/* one byte less fits a value; the URL as a whole still may not */
	char *u = expand("{v}", "{\"v\":1e8190}", err);
	CHECK(u != NULL && strlen(u) == 8191);
	free(u);
	CHECK(expand("/{v}", "{\"v\":1e8190}", err) == NULL);
	CHECK_STR(err, "url '/{v}': the expanded URL is longer than 8192 bytes");
}

/* urltemplate_value(): what a URL and an item's carried value take. */
static void test_value_text_is_the_urls(void)
{
	char err[ERR_MAX];
	struct jsondoc *d = jsondoc_new();
	const char *json = "[1e3, \"x\\u0041\", true, null, {}, 2e8191]";
	CHECK(d && jsondoc_parse(d, json, strlen(json), JSONDOC_ANY, err) == 0);
	uint32_t v = jsondoc_first(d, 0);
	char *out = NULL;
	size_t len = 0;
	CHECK_EQ(urltemplate_value(d, v, &out, &len), 0);
	CHECK_STR(out, "1000");
	CHECK_EQ(len, 4);
	free(out);
	v = jsondoc_next(d, 0, v);
	CHECK_EQ(urltemplate_value(d, v, &out, &len), 0);
	CHECK_STR(out, "xA");
	free(out);
	v = jsondoc_next(d, 0, v);
	CHECK_EQ(urltemplate_value(d, v, &out, &len), 0);
	CHECK_STR(out, "true");
	free(out);
	v = jsondoc_next(d, 0, v);
	CHECK_EQ(urltemplate_value(d, v, &out, &len), -1); /* null */
	CHECK(out == NULL);
	v = jsondoc_next(d, 0, v);
	CHECK_EQ(urltemplate_value(d, v, &out, &len), -1); /* an object */
	v = jsondoc_next(d, 0, v);
	CHECK_EQ(urltemplate_value(d, v, &out, &len), URLTEMPLATE_VALUE_TOO_LONG);
	CHECK(out == NULL);
	jsondoc_free(d);
}

/* The root has no parent: its {last_success} and {cursor} come as named
 * values, encoded as a field's would be. */
static void test_root_placeholders_are_filled_from_named_values(void)
{
	char err[ERR_MAX] = "";
	struct urltemplate *t = urltemplate_parse("/races?since={last_success}&after={cursor}", err);
	CHECK(t != NULL);
	const struct urltemplate_value v[] = {{"last_success", "2024-01-31T06:00:00Z"}, {"cursor", "17.5"}};
	char *u = NULL;
	CHECK_EQ(urltemplate_expand_named(t, v, 2, &u, err), 0);
	CHECK_STR(u, "/races?since=2024-01-31T06%3A00%3A00Z&after=17.5");
	free(u);
	urltemplate_free(t);

	t = urltemplate_parse("/changes/{cursor}", err);
	const struct urltemplate_value dots[] = {{"cursor", ".."}};
	CHECK_EQ(urltemplate_expand_named(t, dots, 1, &u, err), 0);
	CHECK_STR(u, "/changes/%2E%2E");
	free(u);
	const struct urltemplate_value empty[] = {{"cursor", ""}};
	CHECK(urltemplate_expand_named(t, empty, 1, &u, err) < 0);
	CHECK_STR(err, "url '/changes/{cursor}': the value of '{cursor}' is empty, and an empty path segment "
	               "would ask for another resource");
	urltemplate_free(t);
}

static void test_named_expansion_fails_for_a_placeholder_without_value(void)
{
	char err[ERR_MAX] = "";
	struct urltemplate *t = urltemplate_parse("/races?since={last_success}", err);
	char *u = NULL;
	const struct urltemplate_value other[] = {{"cursor", "1"}};
	CHECK(urltemplate_expand_named(t, other, 1, &u, err) < 0);
	CHECK_STR(err, "url '/races?since={last_success}': no value for '{last_success}'");
	const struct urltemplate_value unset[] = {{"last_success", NULL}};
	CHECK(urltemplate_expand_named(t, unset, 1, &u, err) < 0);
	CHECK_STR(err, "url '/races?since={last_success}': no value for '{last_success}'");
	CHECK(urltemplate_expand_named(t, NULL, 0, &u, err) < 0);
	CHECK(u == NULL);
	urltemplate_free(t);
	/* a template without placeholders needs no values */
	t = urltemplate_parse("/races", err);
	CHECK_EQ(urltemplate_expand_named(t, NULL, 0, &u, err), 0);
	CHECK_STR(u, "/races");
	free(u);
	urltemplate_free(t);
}

/* {stage.field}: the stage and the field apart; a pointer's dots are its
 * own ("{/a.b}" is the parent's field "a.b"). */
static void test_ancestor_placeholders_name_a_stage_and_a_field(void)
{
	char err[ERR_MAX];
	const char *stage;
	struct urltemplate *t = urltemplate_parse("/r/{races.id}/e/{id}/{entries./a/b}/{/m.n}", err);
	CHECK(t != NULL);
	CHECK_EQ(urltemplate_placeholders(t), 4);
	CHECK_EQ(urltemplate_scope(t, 0, &stage), 5);
	CHECK(strncmp(stage, "races", 5) == 0);
	CHECK_STR(urltemplate_field(t, 0), "id");
	CHECK_STR(urltemplate_placeholder(t, 0), "races.id");
	CHECK_EQ(urltemplate_scope(t, 1, &stage), 0);
	CHECK(stage == NULL);
	CHECK_STR(urltemplate_field(t, 1), "id");
	CHECK_EQ(urltemplate_scope(t, 2, &stage), 7);
	CHECK_STR(urltemplate_field(t, 2), "/a/b");
	CHECK_EQ(urltemplate_scope(t, 3, &stage), 0);
	CHECK_STR(urltemplate_field(t, 3), "/m.n");
	urltemplate_free(t);

	enum urltemplate_fault why;
	CHECK(urltemplate_parse_fault("/r/{.id}", &why, err) == NULL);
	CHECK_EQ(why, URLTEMPLATE_BAD_SCOPE);
	CHECK_STR(err, "url '/r/{.id}': '{.id}' names no stage (expected {stage.field} or {stage./json/pointer})");
	CHECK(urltemplate_parse_fault("/r/{races.}", &why, err) == NULL);
	CHECK_EQ(why, URLTEMPLATE_BAD_SCOPE);
	CHECK(urltemplate_parse_fault("/r/{races./a~2}", &why, err) == NULL);
	CHECK_EQ(why, URLTEMPLATE_BAD_POINTER);
}

/* urltemplate_expand_args: an ancestor's value as the caller gives it,
 * encoded as a field's is; a missing one fails naming the stage, and says
 * which placeholder lacked its field. */
static void test_ancestor_values_come_from_the_caller(void)
{
	char err[ERR_MAX];
	struct urltemplate *t = urltemplate_parse("/r/{races.id}/e/{id}/s", err);
	struct jsondoc *d = jsondoc_new();
	CHECK(t && d && jsondoc_parse(d, "{\"id\":\"e1\"}", 11, JSONDOC_ANY, err) == 0);
	struct urltemplate_arg args[2] = {
		{.kind = URLTEMPLATE_VALUE, .value = "a/\0b", .len = 4},
		{.kind = URLTEMPLATE_FROM_ITEM},
	};
	char *u = NULL;
	size_t missing = 7;
	CHECK_EQ(urltemplate_expand_args(t, d, 0, args, &u, &missing, err), 0);
	CHECK_STR(u, "/r/a%2F%00b/e/e1/s");
	free(u);
	args[0].value = "..";
	args[0].len = 2;
	CHECK_EQ(urltemplate_expand_args(t, d, 0, args, &u, &missing, err), 0);
	CHECK_STR(u, "/r/%2E%2E/e/e1/s");
	free(u);
	/* a value is its len bytes, not a string: read in place, never past
	 * them; only "." and ".." are whole segments to escape */
	static const struct { const char *v; size_t len; const char *url; } dots[] = {
		{"./x", 1, "/r/%2E/e/e1/s"}, {"..x", 2, "/r/%2E%2E/e/e1/s"}, {".a", 2, "/r/.a/e/e1/s"},
		{"a.", 2, "/r/a./e/e1/s"}, {".\0", 2, "/r/.%00/e/e1/s"}, {"...", 3, "/r/.../e/e1/s"},
	};
	for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++) {
		args[0].value = dots[i].v;
		args[0].len = dots[i].len;
		CHECK_EQ(urltemplate_expand_args(t, d, 0, args, &u, &missing, err), 0);
		CHECK_STR(u, dots[i].url);
		free(u);
	}
	args[0].kind = URLTEMPLATE_MISSING;
	CHECK(urltemplate_expand_args(t, d, 0, args, &u, &missing, err) < 0);
	CHECK_EQ(missing, 0);
	CHECK_STR(err, "url '/r/{races.id}/e/{id}/s': the races item has no string or number at '{races.id}'");
	args[0].kind = URLTEMPLATE_TOO_LONG;
	CHECK(urltemplate_expand_args(t, d, 0, args, &u, &missing, err) < 0);
	CHECK_EQ(missing, SIZE_MAX);
	args[0].kind = URLTEMPLATE_VALUE;
	CHECK(jsondoc_parse(d, "{\"idd\":1}", 9, JSONDOC_ANY, err) == 0);
	CHECK(urltemplate_expand_args(t, d, 0, args, &u, &missing, err) < 0);
	CHECK_EQ(missing, 1);
	CHECK(jsondoc_parse(d, "{\"id\":null}", 11, JSONDOC_ANY, err) == 0);
	CHECK(urltemplate_expand_args(t, d, 0, args, &u, &missing, err) < 0);
	CHECK_EQ(missing, SIZE_MAX); /* there, but not a value: not a typo */
	jsondoc_free(d);
	urltemplate_free(t);
}

/* The nearest field an item has, for the error about one it lacks. */
static void test_nearest_field_is_suggested(void)
{
	char err[ERR_MAX], near[64];
	struct jsondoc *d = jsondoc_new();
	const char *item = "{\"id\":1,\"athlete_id\":\"a1\",\"race\":{\"id\":2,\"name\":\"x\"}}";
	CHECK(d && jsondoc_parse(d, item, strlen(item), JSONDOC_ANY, err) == 0);
	CHECK_EQ(urltemplate_nearest(d, 0, "athleteid", near, sizeof near), 0);
	CHECK_STR(near, "athlete_id");
	CHECK_EQ(urltemplate_nearest(d, 0, "idd", near, sizeof near), 0);
	CHECK_STR(near, "id");
	CHECK_EQ(urltemplate_nearest(d, 0, "/race/nmae", near, sizeof near), 0);
	CHECK_STR(near, "name");
	CHECK(urltemplate_nearest(d, 0, "/nothing/x", near, sizeof near) < 0);
	CHECK(urltemplate_nearest(d, 0, "x", near, 3) == 0); /* only "id" fits */
	CHECK_STR(near, "id");
	CHECK(jsondoc_parse(d, "{}", 2, JSONDOC_ANY, err) == 0);
	CHECK(urltemplate_nearest(d, 0, "x", near, sizeof near) < 0);
	CHECK(urltemplate_nearest(NULL, 0, "x", near, sizeof near) < 0);
	jsondoc_free(d);
}

int main(void)
{
	RUN(test_ancestor_placeholders_name_a_stage_and_a_field);
	RUN(test_ancestor_values_come_from_the_caller);
	RUN(test_nearest_field_is_suggested);
	RUN(test_root_placeholders_are_filled_from_named_values);
	RUN(test_named_expansion_fails_for_a_placeholder_without_value);
	RUN(test_field_and_pointer_placeholders_are_filled);
	RUN(test_values_are_percent_encoded);
	RUN(test_dot_and_empty_values_cannot_change_the_path);
	RUN(test_template_without_placeholders_needs_no_item);
	RUN(test_placeholders_are_listed);
	RUN(test_malformed_templates_are_refused);
	RUN(test_numbers_are_written_as_postgresql_does_and_escapes_decoded);
	RUN(test_missing_or_structured_values_fail_with_the_field);
	RUN(test_overlong_expansion_is_refused);
	RUN(test_value_text_is_the_urls);
	return CHECK_DONE();
}
