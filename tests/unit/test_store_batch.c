/* Unit tests for store_batch: how a batch's rows are folded and how its
 * columns reach PostgreSQL (array_recv's binary format, byte for byte). */
#include "check.h"
#include "store_batch.h"

#include <stdbool.h>

/* rows[i] from "key=payload" or "key<parent=payload" specs. */
static struct store_row *rows_of(const char *const *spec, size_t n)
{
	struct store_row *rows = calloc(n, sizeof *rows);
	for (size_t i = 0; rows && i < n; i++) {
		char buf[64];
		snprintf(buf, sizeof buf, "%s", spec[i]);
		char *eq = strchr(buf, '='), *lt = strchr(buf, '<');
		*eq = '\0';
		if (lt)
			*lt = '\0';
		if (store_row_set(&rows[i], buf, lt ? lt + 1 : NULL, eq + 1, strlen(eq + 1)) != 0)
			return NULL;
	}
	return rows;
}

static uint32_t be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* The five header words of a one-dimensional array. */
static void check_header(const char *p, uint32_t has_nulls, uint32_t oid, uint32_t n)
{
	CHECK_EQ(be32(p), 1);           /* ndim */
	CHECK_EQ(be32(p + 4), has_nulls);
	CHECK_EQ(be32(p + 8), oid);
	CHECK_EQ(be32(p + 12), n);      /* dimension's length */
	CHECK_EQ(be32(p + 16), 1);      /* lower bound */
}

/* Encode the rows of spec as import id's batch into p; the rows, or NULL. */
static struct store_row *encoded(const char *const *spec, size_t n, int64_t id,
                                 struct store_batch_params *p)
{
	struct store_row *rows = rows_of(spec, n);
	CHECK(rows != NULL);
	if (!rows)
		return NULL;
	int rc = store_batch_encode(rows, n, id, 0, p);
	CHECK_EQ(rc, 0);
	if (rc == 0)
		return rows;
	store_rows_free(rows, n);
	return NULL;
}

static void test_fold_keeps_the_last_row_of_each_key_in_order(void)
{
	const char *spec[] = { "a=1", "b=1", "a=2", "c=1", "a=3" };
	struct store_row *rows = rows_of(spec, 5);
	CHECK(rows != NULL);
	if (!rows)
		return;
	CHECK_EQ(store_rows_fold(rows, 5), 3);
	CHECK_STR(rows[0].key, "b");
	CHECK_STR(rows[1].key, "c");
	CHECK_STR(rows[2].key, "a");
	CHECK_STR(rows[2].payload, "3");
	store_rows_free(rows, 3);
}

static void test_fold_leaves_distinct_keys_in_their_order(void)
{
	const char *spec[] = { "z=1", "a=2", "m=3" };
	struct store_row *rows = rows_of(spec, 3);
	CHECK(rows != NULL);
	if (!rows)
		return;
	CHECK_EQ(store_rows_fold(rows, 3), 3);
	CHECK_STR(rows[0].key, "z");
	CHECK_STR(rows[1].key, "a");
	CHECK_STR(rows[2].key, "m");
	store_rows_free(rows, 3);
}

static void test_fold_of_one_row_or_none_is_that_row(void)
{
	const char *spec[] = { "k=v" };
	struct store_row *rows = rows_of(spec, 1);
	CHECK(rows != NULL);
	if (!rows)
		return;
	CHECK_EQ(store_rows_fold(rows, 1), 1);
	CHECK_EQ(store_rows_fold(rows, 0), 0);
	CHECK_STR(rows[0].key, "k");
	store_rows_free(rows, 1);
}

static void test_fold_of_one_key_throughout_keeps_the_last(void)
{
	const char *spec[] = { "k=1", "k=2", "k=3", "k=4" };
	struct store_row *rows = rows_of(spec, 4);
	CHECK(rows != NULL);
	if (!rows)
		return;
	CHECK_EQ(store_rows_fold(rows, 4), 1);
	CHECK_STR(rows[0].payload, "4");
	store_rows_free(rows, 1);
}

/* Keys whose hashes are equal are still told apart by their bytes: the
 * fold's table compares keys, not only hashes. */
static void test_fold_tells_keys_of_equal_hashes_apart(void)
{
	const char *spec[] = { "a=1", "b=1", "a=2", "ab=1", "b=2" };
	struct store_row *rows = rows_of(spec, 5);
	CHECK(rows != NULL);
	if (!rows)
		return;
	for (size_t i = 0; i < 5; i++)
		rows[i].hash = 42;   /* every key collides */
	CHECK_EQ(store_rows_fold(rows, 5), 3);
	CHECK_STR(rows[0].key, "a");
	CHECK_STR(rows[0].payload, "2");
	CHECK_STR(rows[1].key, "ab");
	CHECK_STR(rows[2].key, "b");
	CHECK_STR(rows[2].payload, "2");
	store_rows_free(rows, 3);
}

/* A batch's worth of rows, every key twice (the second a later version)
 * and some three times: the last of each, in the order of the lasts. */
static void test_fold_of_a_large_batch_keeps_each_keys_last_row(void)
{
	enum { N = 3000 };
	struct store_row *rows = calloc(N, sizeof *rows);
	CHECK(rows != NULL);
	if (!rows)
		return;
	for (size_t i = 0; i < N; i++) {
		char key[16], payload[16];
		size_t k = i < 1000 ? i : i < 2000 ? i - 1000 : (i - 2000) * 2;  /* keys 0..999 */
		snprintf(key, sizeof key, "k%zu", k);
		int n = snprintf(payload, sizeof payload, "%zu", i);
		CHECK_EQ(store_row_set(&rows[i], key, NULL, payload, (size_t)n), 0);
	}
	/* keys 0..999 from rows 0..999, again from 1000..1999, the even
	 * keys 0..998 a third time from 2000..2499 and keys 1000..1998 new
	 * from 2500..2999 */
	CHECK_EQ(store_rows_fold(rows, N), 1500);
	CHECK_STR(rows[0].key, "k1");      /* row 1001: the odd keys' last */
	CHECK_STR(rows[0].payload, "1001");
	CHECK_STR(rows[499].key, "k999");
	CHECK_STR(rows[500].key, "k0");     /* row 2000 */
	CHECK_STR(rows[500].payload, "2000");
	CHECK_STR(rows[1499].key, "k1998"); /* row 2999 */
	store_rows_free(rows, 1500);
}

/* Against the plain definition (a row survives when no later row has its
 * key; survivors in their order), over seeded random batches of few
 * distinct keys, their hashes cut to 2 bits so that most unequal keys
 * collide too. */
static void test_fold_matches_the_definition_over_random_batches_with_collisions(void)
{
	enum { ROUNDS = 200, MAX_N = 64 };
	uint32_t seed = 12345;
	for (int round = 0; round < ROUNDS; round++) {
		seed = seed * 1103515245u + 12345u;
		size_t n = (seed >> 16) % MAX_N;
		struct store_row *rows = calloc(MAX_N, sizeof *rows);
		char want[MAX_N][24];
		size_t n_want = 0;
		CHECK(rows != NULL);
		if (!rows)
			return;
		for (size_t i = 0; i < n; i++) {
			char key[8], payload[24];
			seed = seed * 1103515245u + 12345u;
			snprintf(key, sizeof key, "%c%s", 'a' + (int)((seed >> 16) % 6), (seed >> 20) & 1 ? "x" : "");
			int len = snprintf(payload, sizeof payload, "\"%s %zu\"", key, i);
			CHECK_EQ(store_row_set(&rows[i], key, NULL, payload, (size_t)len), 0);
			rows[i].hash &= 3;
		}
		for (size_t i = 0; i < n; i++) {
			bool later = false;
			for (size_t j = i + 1; j < n && !later; j++)
				later = strcmp(rows[i].key, rows[j].key) == 0;
			if (!later)
				snprintf(want[n_want++], sizeof want[0], "%s", rows[i].payload);
		}
		long got = store_rows_fold(rows, n);
		CHECK_EQ(got, (long)n_want);
		for (size_t i = 0; got == (long)n_want && i < n_want; i++)
			CHECK_STR(rows[i].payload, want[i]);
		store_rows_free(rows, got < 0 ? n : (size_t)got);
	}
}

/* A row's strings and lengths as given, the parent absent or empty. */
static void test_a_row_holds_its_key_parent_and_payload_with_lengths(void)
{
	struct store_row r[2];
	CHECK_EQ(store_row_set(&r[0], "key", NULL, "{\"a\":1}xx", 7), 0);
	CHECK_EQ(store_row_set(&r[1], "", "", "", 0), 0);
	CHECK_STR(r[0].key, "key");
	CHECK_EQ(r[0].key_len, 3);
	CHECK(r[0].parent == NULL);
	CHECK_STR(r[0].payload, "{\"a\":1}");   /* payload_len bytes, NUL-ended */
	CHECK_EQ(r[0].payload_len, 7);
	CHECK_EQ(r[0].hash, store_key_hash("key", 3));
	CHECK(r[0].hash != store_key_hash("kez", 3));
	CHECK_STR(r[1].key, "");
	CHECK(r[1].parent != NULL);
	CHECK_STR(r[1].parent, "");
	CHECK_STR(r[1].payload, "");
	store_row_clear(&r[0]);
	store_row_clear(&r[1]);
	CHECK(r[0].key == NULL && r[0].payload == NULL);
}

static void test_keys_are_a_text_array_of_length_prefixed_elements(void)
{
	const char *spec[] = { "k<p=1", "ab<p=2" };
	struct store_batch_params p;
	struct store_row *rows = encoded(spec, 2, 7, &p);
	if (!rows)
		return;
	CHECK_EQ(p.lengths[0], 20 + 4 + 1 + 4 + 2);
	check_header(p.values[0], 0, PG_TYPE_TEXT, 2);
	CHECK_EQ(be32(p.values[0] + 20), 1);
	CHECK(memcmp(p.values[0] + 24, "k", 1) == 0);
	CHECK_EQ(be32(p.values[0] + 25), 2);
	CHECK(memcmp(p.values[0] + 29, "ab", 2) == 0);
	/* parents: no NULL among them */
	check_header(p.values[1], 0, PG_TYPE_TEXT, 2);
	CHECK_EQ(p.lengths[1], 20 + 2 * (4 + 1));
	for (size_t k = 0; k < STORE_BATCH_PARAMS; k++)
		CHECK_EQ(p.formats[k], 1);
	store_batch_params_free(&p);
	store_rows_free(rows, 2);
}

/* Typed columns: one text array each after the four, NULL for a value
 * not given (a row without values: all NULL). */
static void test_typed_columns_are_text_arrays_after_the_four(void)
{
	const char *spec[] = { "a=1", "b=2" };
	struct store_row *rows = rows_of(spec, 2);
	CHECK(rows != NULL);
	if (!rows)
		return;
	const char *vals[] = { "12", NULL };
	CHECK_EQ(store_row_set_cols(&rows[0], vals, 2), 0);
	struct store_batch_params p;
	CHECK_EQ(store_batch_encode(rows, 2, 7, 2, &p), 0);
	CHECK_EQ(p.n, STORE_BATCH_PARAMS + 2);
	check_header(p.values[4], 1, PG_TYPE_TEXT, 2);
	CHECK_EQ(p.lengths[4], 20 + 4 + 2 + 4 + 0);
	CHECK(memcmp(p.values[4] + 24, "12", 2) == 0);
	CHECK_EQ(be32(p.values[4] + 26), UINT32_MAX);   /* b: no values */
	check_header(p.values[5], 1, PG_TYPE_TEXT, 2);
	CHECK_EQ(p.lengths[5], 20 + 4 + 4);
	CHECK_EQ(p.formats[5], 1);
	store_batch_params_free(&p);
	CHECK_EQ(store_rows_fold(rows, 2), 2);
	store_rows_free(rows, 2);
}

static void test_a_missing_parent_is_a_null_element_and_flags_the_array(void)
{
	const char *spec[] = { "a<p=1", "b=2" };
	struct store_batch_params p;
	struct store_row *rows = encoded(spec, 2, 1, &p);
	if (!rows)
		return;
	check_header(p.values[1], 1, PG_TYPE_TEXT, 2);
	CHECK_EQ(p.lengths[1], 20 + 4 + 1 + 4);
	CHECK_EQ(be32(p.values[1] + 20), 1);
	CHECK_EQ(be32(p.values[1] + 25), UINT32_MAX);   /* -1: NULL, no bytes */
	store_batch_params_free(&p);
	store_rows_free(rows, 2);
}

/* Each array sized beforehand from the rows' lengths: an empty parent key
 * is an empty element (not NULL), an empty payload a lone version byte,
 * and the lengths add up exactly (no byte past them, none missing). */
static void test_empty_parent_and_payload_and_mixed_nulls_encode_exactly(void)
{
	const char *spec[] = { "a<=", "bb={\"x\":1}", "c<pp=[]" };
	struct store_batch_params p;
	struct store_row *rows = encoded(spec, 3, 1, &p);
	if (!rows)
		return;
	CHECK_EQ(p.lengths[0], 20 + (4 + 1) + (4 + 2) + (4 + 1));
	check_header(p.values[1], 1, PG_TYPE_TEXT, 3);
	CHECK_EQ(p.lengths[1], 20 + 4 + 4 + (4 + 2));
	CHECK_EQ(be32(p.values[1] + 20), 0);            /* "": no bytes, not NULL */
	CHECK_EQ(be32(p.values[1] + 24), UINT32_MAX);   /* bb: NULL */
	CHECK_EQ(be32(p.values[1] + 28), 2);
	CHECK(memcmp(p.values[1] + 32, "pp", 2) == 0);
	check_header(p.values[2], 0, PG_TYPE_JSONB, 3);
	CHECK_EQ(p.lengths[2], 20 + (4 + 1) + (4 + 1 + 7) + (4 + 1 + 2));
	CHECK_EQ(be32(p.values[2] + 20), 1);            /* the version byte alone */
	CHECK_EQ(p.values[2][24], PG_JSONB_VERSION);
	CHECK_EQ(be32(p.values[2] + 25), 8);
	CHECK_EQ(p.values[2][29], PG_JSONB_VERSION);
	CHECK(memcmp(p.values[2] + 30, "{\"x\":1}", 7) == 0);
	CHECK_EQ(be32(p.values[2] + 37), 3);
	CHECK(memcmp(p.values[2] + 42, "[]", 2) == 0);
	store_batch_params_free(&p);
	store_rows_free(rows, 3);
}

/* Folded rows' typed columns are freed with them (ASan), the survivor's kept. */
static void test_fold_frees_the_folded_rows_typed_columns(void)
{
	const char *spec[] = { "a=1", "a=2" };
	struct store_row *rows = rows_of(spec, 2);
	CHECK(rows != NULL);
	if (!rows)
		return;
	const char *v1[] = { "old", NULL }, *v2[] = { "new", "x" };
	CHECK_EQ(store_row_set_cols(&rows[0], v1, 2), 0);
	CHECK_EQ(store_row_set_cols(&rows[1], v2, 2), 0);
	CHECK_EQ(store_rows_fold(rows, 2), 1);
	CHECK_STR(rows[0].payload, "2");
	CHECK(rows[0].cols != NULL && rows[0].n_cols == 2);
	if (rows[0].cols)
		CHECK_STR(rows[0].cols[0], "new");
	store_rows_free(rows, 1);
}

static void test_payloads_are_jsonb_elements_after_a_version_byte(void)
{
	const char *spec[] = { "a={}" };
	struct store_batch_params p;
	struct store_row *rows = encoded(spec, 1, 1, &p);
	if (!rows)
		return;
	check_header(p.values[2], 0, PG_TYPE_JSONB, 1);
	CHECK_EQ(p.lengths[2], 20 + 4 + 3);
	CHECK_EQ(be32(p.values[2] + 20), 3);
	CHECK_EQ(p.values[2][24], PG_JSONB_VERSION);
	CHECK(memcmp(p.values[2] + 25, "{}", 2) == 0);
	store_batch_params_free(&p);
	store_rows_free(rows, 1);
}

static void test_the_import_id_is_one_big_endian_int64(void)
{
	const char *spec[] = { "a=1" };
	struct store_batch_params p;
	struct store_row *rows = encoded(spec, 1, 0x0102030405060708LL, &p);
	if (!rows)
		return;
	CHECK_EQ(p.lengths[3], 8);
	CHECK_EQ(be32(p.values[3]), 0x01020304u);
	CHECK_EQ(be32(p.values[3] + 4), 0x05060708u);
	store_batch_params_free(&p);
	CHECK_EQ(store_batch_encode(rows, 1, -2, 0, &p), 0);
	CHECK_EQ(be32(p.values[3]), 0xffffffffu);
	CHECK_EQ(be32(p.values[3] + 4), 0xfffffffeu);
	store_batch_params_free(&p);
	store_rows_free(rows, 1);
}

int main(void)
{
	RUN(test_fold_keeps_the_last_row_of_each_key_in_order);
	RUN(test_fold_leaves_distinct_keys_in_their_order);
	RUN(test_fold_of_one_row_or_none_is_that_row);
	RUN(test_fold_of_one_key_throughout_keeps_the_last);
	RUN(test_fold_tells_keys_of_equal_hashes_apart);
	RUN(test_fold_of_a_large_batch_keeps_each_keys_last_row);
	RUN(test_fold_matches_the_definition_over_random_batches_with_collisions);
	RUN(test_a_row_holds_its_key_parent_and_payload_with_lengths);
	RUN(test_keys_are_a_text_array_of_length_prefixed_elements);
	RUN(test_a_missing_parent_is_a_null_element_and_flags_the_array);
	RUN(test_typed_columns_are_text_arrays_after_the_four);
	RUN(test_empty_parent_and_payload_and_mixed_nulls_encode_exactly);
	RUN(test_fold_frees_the_folded_rows_typed_columns);
	RUN(test_payloads_are_jsonb_elements_after_a_version_byte);
	RUN(test_the_import_id_is_one_big_endian_int64);
	return CHECK_DONE();
}
