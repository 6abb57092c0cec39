#include "check.h"
#include "dedupe.h"

#include <stdint.h>
#include <stdio.h>

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

/* Many keys land in every shard, each shard grows on its own several
 * times, and no new key is ever taken for one seen before. */
static void test_many_keys_across_growing_shards_are_all_remembered(void)
{
	enum { N = 300000 };
	struct dedupe *d = dedupe_new(N + 1);
	char key[32];
	size_t fresh = 0, again = 0;
	for (int i = 0; i < N; i++) {
		int n = snprintf(key, sizeof key, "/athletes/%d", i);
		fresh += dedupe_add(d, key, (size_t)n);
	}
	for (int i = 0; i < N; i++) {
		int n = snprintf(key, sizeof key, "/athletes/%d", i);
		again += dedupe_add(d, key, (size_t)n);
	}
	CHECK_EQ(fresh, N);
	CHECK_EQ(again, 0);
	CHECK_EQ(dedupe_count(d), N);
	CHECK(!dedupe_full(d));
	dedupe_free(d);
}

/* The arrays take at most 7 bytes a key (6-byte entries, growth by an
 * eighth), and one add never allocates more than a small share of the set:
 * growth never holds two copies of it. */
static void test_growth_is_one_shard_at_a_time_and_memory_per_key_bounded(void)
{
	enum { N = 400000 };
	struct dedupe *d = dedupe_new(N);
	char key[32];
	size_t worst_step = 0, steps_over = 0;
	for (int i = 0; i < N; i++) {
		int n = snprintf(key, sizeof key, "k%d", i);
		size_t before = dedupe_bytes(d);
		dedupe_add(d, key, (size_t)n);
		size_t step = dedupe_bytes(d) - before;
		if (step > worst_step)
			worst_step = step;
		if (before >= (1u << 20) && step * 64 > before)
			steps_over++;
		if (i + 1 >= 50000 && dedupe_bytes(d) > (size_t)(i + 1) * 7)
			steps_over++;
	}
	CHECK_EQ(steps_over, 0);
	CHECK(worst_step < (64u << 10));
	CHECK(dedupe_bytes(d) >= (size_t)N * 6); /* every key has its entry */
	dedupe_free(d);
}

/* Once max_keys are remembered the set stops growing: new keys are
 * answered "new" and not remembered, keys seen before still "seen". */
static void test_bound_holds_with_many_keys(void)
{
	enum { MAX = 20000, N = 60000 };
	struct dedupe *d = dedupe_new(MAX);
	char key[32];
	size_t fresh = 0, bytes_at_full = 0;
	for (int i = 0; i < N; i++) {
		int n = snprintf(key, sizeof key, "e%d", i);
		fresh += dedupe_add(d, key, (size_t)n);
		if (i + 1 == MAX)
			bytes_at_full = dedupe_bytes(d);
	}
	CHECK_EQ(fresh, N);
	CHECK_EQ(dedupe_count(d), MAX);
	CHECK(dedupe_full(d));
	CHECK_EQ(dedupe_bytes(d), bytes_at_full);
	size_t seen = 0;
	for (int i = 0; i < N; i++) {
		int n = snprintf(key, sizeof key, "e%d", i);
		seen += !dedupe_add(d, key, (size_t)n);
	}
	CHECK_EQ(seen, MAX); /* exactly the first MAX keys */
	dedupe_free(d);
}

/* Keys whose hashes share their top 12 bits (found by trying, as a hostile
 * provider could) all land in one shard: it stops remembering them at its
 * limit (16 x (its share + 64) = 1024 here) instead of moving an ever
 * larger array on every insert; what it remembered it still knows. */
static void test_keys_piled_into_one_shard_are_capped(void)
{
	enum { N = 1500, LIMIT = 1024 };
	static char keys[N][24];
	static int lens[N];
	uint64_t want = dedupe_hash("pile", 4) >> 52;
	unsigned long tries = 0;
	for (int found = 0; found < N; tries++) {
		int n = snprintf(keys[found], sizeof keys[found], "p%lu", tries);
		if (dedupe_hash(keys[found], (size_t)n) >> 52 == want)
			lens[found++] = n;
	}
	struct dedupe *d = dedupe_new(N * 10);
	size_t fresh = 0;
	for (int i = 0; i < N; i++)
		fresh += dedupe_add(d, keys[i], (size_t)lens[i]);
	CHECK_EQ(fresh, N);
	CHECK_EQ(dedupe_count(d), LIMIT);
	CHECK(!dedupe_full(d));
	CHECK(dedupe_bytes(d) < (size_t)LIMIT * 7);
	size_t seen = 0;
	for (int i = 0; i < N; i++)
		seen += !dedupe_add(d, keys[i], (size_t)lens[i]);
	CHECK_EQ(seen, LIMIT); /* exactly the first LIMIT keys */
	/* Keys elsewhere are still remembered. */
	CHECK(dedupe_add(d, "elsewhere", 9) || dedupe_hash("elsewhere", 9) >> 52 == want);
	CHECK(!dedupe_add(d, "elsewhere", 9) || dedupe_hash("elsewhere", 9) >> 52 == want);
	dedupe_free(d);
}

static void test_empty_set_allocates_no_tables(void)
{
	struct dedupe *d = dedupe_new(10);
	CHECK_EQ(dedupe_bytes(d), 0);
	CHECK_EQ(dedupe_count(d), 0);
	dedupe_free(d);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The hash (8 bytes a step): one byte changed anywhere, or one more byte
 * (a NUL too), changes it; and a million URLs that differ as inputs' do
 * keep distinct the 60 bits the set keeps (bits 48-51 are not). */
static void test_hash_tells_keys_apart(void)
{
	char a[48] = {0}, b[48] = {0};
	for (size_t len = 0; len <= 40; len++) {
		for (size_t i = 0; i < len; i++)
			a[i] = (char)('a' + i % 26);
		memcpy(b, a, len);
		CHECK(dedupe_hash(a, len) == dedupe_hash(b, len));
		CHECK(dedupe_hash(a, len) != 0);
		for (size_t i = 0; i < len; i++) {
			b[i] ^= 1;
			CHECK(dedupe_hash(a, len) != dedupe_hash(b, len));
			b[i] ^= 1;
		}
		a[len] = '\0';
		CHECK(dedupe_hash(a, len) != dedupe_hash(a, len + 1));
	}
	enum { N = 1000000 };
	uint64_t *h = malloc(N * sizeof *h);
	CHECK(h != NULL);
	if (!h)
		return;
	char key[64];
	for (int i = 0; i < N; i++) {
		int n = snprintf(key, sizeof key, "http://127.0.0.1:8080/athletes/A%07d?page=1", i);
		h[i] = dedupe_hash(key, (size_t)n) & ~(UINT64_C(0xf) << 48);
	}
	qsort(h, N, sizeof *h, cmp_u64);
	size_t same = 0;
	for (int i = 1; i < N; i++)
		same += h[i] == h[i - 1];
	CHECK_EQ(same, 0);
	free(h);
}

int main(void)
{
	RUN(test_hash_tells_keys_apart);
	RUN(test_second_sighting_of_a_key_is_not_new);
	RUN(test_set_grows_past_initial_capacity_and_remembers_all);
	RUN(test_full_set_answers_new_without_growing);
	RUN(test_many_keys_across_growing_shards_are_all_remembered);
	RUN(test_growth_is_one_shard_at_a_time_and_memory_per_key_bounded);
	RUN(test_bound_holds_with_many_keys);
	RUN(test_keys_piled_into_one_shard_are_capped);
	RUN(test_empty_set_allocates_no_tables);
	return CHECK_DONE();
}
