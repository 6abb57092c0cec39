#include "check.h"
#include "jsonptr.h"

static json_t *doc(const char *text)
{
	json_error_t e;
	json_t *d = json_loads(text, 0, &e);
	if (!d) {
		fprintf(stderr, "bad test JSON: %s\n", e.text);
		exit(2);
	}
	return d;
}

static void test_empty_pointer_is_the_document(void)
{
	json_t *d = doc("{\"a\":1}");
	CHECK(jsonptr_get(d, "") == d);
	json_decref(d);
}

static void test_pointer_walks_objects_and_arrays(void)
{
	json_t *d = doc("{\"data\":[{\"id\":7},{\"id\":\"x\"}],\"meta\":{\"next\":\"p2\"}}");
	CHECK_EQ(json_integer_value(jsonptr_get(d, "/data/0/id")), 7);
	CHECK_STR(json_string_value(jsonptr_get(d, "/data/1/id")), "x");
	CHECK_STR(json_string_value(jsonptr_get(d, "/meta/next")), "p2");
	CHECK(json_is_array(jsonptr_get(d, "/data")));
	json_decref(d);
}

static void test_missing_members_and_bad_indexes_are_absent(void)
{
	json_t *d = doc("{\"data\":[1,2],\"s\":\"t\"}");
	CHECK(jsonptr_get(d, "/nope") == NULL);
	CHECK(jsonptr_get(d, "/data/2") == NULL);
	CHECK(jsonptr_get(d, "/data/01") == NULL);  /* leading zero: not an index */
	CHECK(jsonptr_get(d, "/data/-") == NULL);
	CHECK(jsonptr_get(d, "/s/0") == NULL);      /* strings have no members */
	CHECK(jsonptr_get(d, "data") == NULL);      /* not a pointer */
	CHECK(jsonptr_get(NULL, "/data") == NULL);
	json_decref(d);
}

static void test_escapes_name_tilde_and_slash(void)
{
	json_t *d = doc("{\"a/b\":1,\"m~n\":2,\"\":3}");
	CHECK_EQ(json_integer_value(jsonptr_get(d, "/a~1b")), 1);
	CHECK_EQ(json_integer_value(jsonptr_get(d, "/m~0n")), 2);
	CHECK_EQ(json_integer_value(jsonptr_get(d, "/")), 3);
	CHECK(jsonptr_get(d, "/m~2n") == NULL);
	json_decref(d);
}

static void test_validity(void)
{
	CHECK(jsonptr_valid(""));
	CHECK(jsonptr_valid("/data"));
	CHECK(jsonptr_valid("/a~0~1"));
	CHECK(!jsonptr_valid("data"));
	CHECK(!jsonptr_valid("/a~"));
	CHECK(!jsonptr_valid("/a~2"));
	CHECK(!jsonptr_valid(NULL));
}

int main(void)
{
	RUN(test_empty_pointer_is_the_document);
	RUN(test_pointer_walks_objects_and_arrays);
	RUN(test_missing_members_and_bad_indexes_are_absent);
	RUN(test_escapes_name_tilde_and_slash);
	RUN(test_validity);
	return CHECK_DONE();
}
