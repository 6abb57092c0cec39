/* import_pagefields: a page's children's values packed and read back. */
#include "check.h"
#include "import_pagefields.h"

#include <string.h>

static struct import_carry val(const char *v)
{
	return (struct import_carry){ .state = IMPORT_CARRY_VALUE, .value = v, .len = strlen(v) };
}

static void test_values_come_back_in_order_for_the_same_fields(void)
{
	const char *names[] = { "id", "/athlete/id" };
	uint64_t sig = import_pagefields_sig(names, 2);
	struct import_pagefields_writer w;
	import_pagefields_begin(&w, sig, 2);
	struct import_carry a[] = { val("7"), val("a b") }, b[] = { val(""), val("x") };
	import_pagefields_add(&w, a);
	import_pagefields_add(&w, b);
	size_t len = 0;
	const unsigned char *p = import_pagefields_get(&w, &len);
	CHECK(p != NULL);
	CHECK_EQ(len, 8 + (4 + 1) + (4 + 3) + (4 + 0) + (4 + 1));
	struct import_pagefields_reader r;
	CHECK(import_pagefields_open(&r, p, len, sig, 2, 2));
	struct import_carry out[2];
	CHECK(import_pagefields_next(&r, out));
	CHECK_EQ(out[0].len, 1);
	CHECK(memcmp(out[0].value, "7", 1) == 0);
	CHECK_EQ(out[1].len, 3);
	CHECK(memcmp(out[1].value, "a b", 3) == 0);
	CHECK(import_pagefields_next(&r, out));
	CHECK_EQ(out[0].len, 0);
	CHECK_EQ(out[1].state, IMPORT_CARRY_VALUE);
	CHECK(memcmp(out[1].value, "x", 1) == 0);
	CHECK(!import_pagefields_next(&r, out));
	/* other fields (the children's URLs changed), or another count of
	 * items than the page's keys: not used */
	const char *other[] = { "id" };
	CHECK(!import_pagefields_open(&r, p, len, import_pagefields_sig(other, 1), 2, 2));
	CHECK(!import_pagefields_open(&r, p, len, sig, 2, 1));
	CHECK(!import_pagefields_open(&r, p, len, sig, 2, 3));
	CHECK(!import_pagefields_open(&r, p, len - 1, sig, 2, 2));
	CHECK(!import_pagefields_open(&r, p, 7, sig, 2, 0));
	CHECK(!import_pagefields_open(&r, NULL, 0, sig, 2, 0));
	import_pagefields_free(&w);
}

static void test_the_order_of_the_names_is_in_the_signature(void)
{
	const char *ab[] = { "a", "b" }, *ba[] = { "b", "a" }, *a_b[] = { "a\0b" }, *none[] = { NULL };
	CHECK(import_pagefields_sig(ab, 2) != import_pagefields_sig(ba, 2));
	CHECK(import_pagefields_sig(ab, 2) != import_pagefields_sig(a_b, 1));
	CHECK(import_pagefields_sig(ab, 1) != import_pagefields_sig(none, 0));
}

static void test_a_page_with_a_value_absent_or_too_long_keeps_none(void)
{
	const char *names[] = { "id" };
	uint64_t sig = import_pagefields_sig(names, 1);
	enum import_carry_state bad[] = { IMPORT_CARRY_ABSENT, IMPORT_CARRY_TOO_LONG };
	for (size_t i = 0; i < 2; i++) {
		struct import_pagefields_writer w;
		import_pagefields_begin(&w, sig, 1);
		struct import_carry ok[] = { val("1") }, no[] = { { .state = bad[i] } };
		import_pagefields_add(&w, ok);
		import_pagefields_add(&w, no);
		import_pagefields_add(&w, ok);
		size_t len = 0;
		CHECK(import_pagefields_get(&w, &len) == NULL);
		import_pagefields_free(&w);
	}
}

static void test_a_page_past_the_bound_keeps_none(void)
{
	const char *names[] = { "id" };
	static char big[8193];
	memset(big, 'x', sizeof big - 1);
	struct import_pagefields_writer w;
	import_pagefields_begin(&w, import_pagefields_sig(names, 1), 1);
	struct import_carry v[] = { val(big) };
	size_t n = 0;
	while (!w.unusable && n < 1000) {
		import_pagefields_add(&w, v);
		n++;
	}
	CHECK_EQ(n, IMPORT_PAGEFIELDS_MAX_BYTES / (4 + 8192) + 1);
	size_t len = 0;
	CHECK(import_pagefields_get(&w, &len) == NULL);
	import_pagefields_free(&w);
}

static void test_no_fields_is_a_signature_alone(void)
{
	struct import_pagefields_writer w;
	import_pagefields_begin(&w, import_pagefields_sig(NULL, 0), 0);
	import_pagefields_add(&w, NULL);
	import_pagefields_add(&w, NULL);
	size_t len = 0;
	const unsigned char *p = import_pagefields_get(&w, &len);
	CHECK(p != NULL);
	CHECK_EQ(len, 8);
	struct import_pagefields_reader r;
	CHECK(import_pagefields_open(&r, p, len, import_pagefields_sig(NULL, 0), 0, 2));
	import_pagefields_free(&w);
}

int main(void)
{
	RUN(test_values_come_back_in_order_for_the_same_fields);
	RUN(test_the_order_of_the_names_is_in_the_signature);
	RUN(test_a_page_with_a_value_absent_or_too_long_keeps_none);
	RUN(test_a_page_past_the_bound_keeps_none);
	RUN(test_no_fields_is_a_signature_alone);
	return CHECK_DONE();
}
