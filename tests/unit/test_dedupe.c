#include "check.h"
#include "dedupe.h"

static void test_second_sighting_of_a_key_is_not_new(void)
{
	struct dedupe *d = dedupe_new(100);
	CHECK(dedupe_add(d, "a1", 2));
	CHECK(dedupe_add(d, "a2", 2));
	CHECK(!dedupe_add(d, "a1", 2));
	CHECK_EQ(dedupe_count(d), 2);
	dedupe_free(d);
}

static void test_set_grows_past_initial_capacity_and_remembers_all(void)
{
	struct dedupe *d = dedupe_new(100000);
	char key[32];
	for (int i = 0; i < 50000; i++) {
		int n = snprintf(key, sizeof key, "/athletes/a%d", i);
		CHECK(dedupe_add(d, key, (size_t)n));
	}
	size_t again = 0;
	for (int i = 0; i < 50000; i++) {
		int n = snprintf(key, sizeof key, "/athletes/a%d", i);
		again += dedupe_add(d, key, (size_t)n);
	}
	CHECK_EQ(again, 0);
	CHECK_EQ(dedupe_count(d), 50000);
	dedupe_free(d);
}

static void test_full_set_answers_new_without_growing(void)
{
	struct dedupe *d = dedupe_new(2);
	CHECK(dedupe_add(d, "x", 1));
	CHECK(dedupe_add(d, "y", 1));
	CHECK(dedupe_full(d));
	CHECK(dedupe_add(d, "z", 1));
	CHECK(dedupe_add(d, "z", 1)); /* not remembered: fetched again */
	CHECK(!dedupe_add(d, "x", 1));
	CHECK_EQ(dedupe_count(d), 2);
	dedupe_free(d);
}

int main(void)
{
	RUN(test_second_sighting_of_a_key_is_not_new);
	RUN(test_set_grows_past_initial_capacity_and_remembers_all);
	RUN(test_full_set_answers_new_without_growing);
	return CHECK_DONE();
}
