/* Unit tests for import_preload and the packing of a stage's read
 * (store_preload): answers made as libpq results by hand, parsed into
 * whole inputs (the last of a full keyset answer left out; a scan's rows
 * of one input brought together, its sentinel skipped), held, taken
 * once, a URL absent from a complete pass known to have no row, the bound
 * and the other stops leaving UNKNOWN, a scan by blocks to the table's
 * end or on by keyset for a stage of few rows, an input read twice
 * dropped, import_ahead_fill, and membudget back to where it was. */
#include "import_preload.h"

#include "check.h"
#include "import_ahead.h"
#include "membudget.h"
#include "store.h"
#include "store_preload.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLS 12
#define SCAN_COLS 15

/* One page row as the pass reads it. */
struct row {
	const char *input, *url;
	uint32_t page_no;
	const char *etag;
	const char *keys[3];
	size_t n_keys;
	uint64_t hashes[3];
	const char *fields;   /* raced_pages.fields (bytes as text here), or NULL */
};

/* n inputs of one page and one key, urls[i] "PREFIX/%05d" (16 bytes each). */
static void one_key_rows(char (*urls)[16], struct row *rows, int n, const char *prefix)
{
	for (int i = 0; i < n; i++) {
		snprintf(urls[i], sizeof urls[i], "%s/%05d", prefix, i);
		rows[i] = (struct row){ urls[i], urls[i], 0, NULL, { "k" }, 1, { 9 }, NULL };
	}
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* A result of n rows in the binary format the pass asks for: by keyset
 * (blocks < 0), or by blocks, each row then carrying the table's blocks
 * and the stage's share (< 0: NULL); a row of input NULL is a scan's
 * sentinel. */
static PGresult *result_of(const struct row *rows, int n, int64_t blocks, int share,
                           int64_t listed)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att[SCAN_COLS];
	static char name[] = "c";
	int cols = blocks < 0 ? COLS : SCAN_COLS;
	memset(att, 0, sizeof att);
	for (int c = 0; c < cols; c++) {
		att[c].name = name;
		att[c].format = 1;
		att[c].atttypmod = -1;
	}
	CHECK(PQsetResultAttrs(res, cols, att));
	for (int r = 0; r < n; r++) {
		const struct row *x = &rows[r];
		if (cols == SCAN_COLS) {
			unsigned char b[8], sh[4], li[8];
			int64_t all = 0;
			for (int k = 0; k < n; k++)
				all += rows[k].input != NULL;
			put_be(b, (uint64_t)blocks, 8);
			put_be(sh, (uint64_t)share, 4);
			put_be(li, (uint64_t)(listed < 0 ? all : listed), 8);
			CHECK(PQsetvalue(res, r, 12, (char *)b, 8));
			CHECK(PQsetvalue(res, r, 13, (char *)sh, share < 0 ? -1 : 4));
			CHECK(PQsetvalue(res, r, 14, (char *)li, 8));
		}
		if (!x->input) {
			for (int c = 0; c < COLS; c++)
				CHECK(PQsetvalue(res, r, c, NULL, -1));
			continue;
		}
		unsigned char no[4], arr[256], hs[24], ts[8], seen[8];
		size_t len = 0;
		put_be(no, x->page_no, 4);
		/* text[]: ndim, flags, element type, then dim size and lower bound */
		put_be(arr, x->n_keys ? 1 : 0, 4);
		put_be(arr + 4, 0, 4);
		put_be(arr + 8, 25, 4);
		len = 12;
		if (x->n_keys) {
			put_be(arr + 12, x->n_keys, 4);
			put_be(arr + 16, 1, 4);
			len = 20;
		}
		for (size_t k = 0; k < x->n_keys; k++) {
			size_t l = strlen(x->keys[k]);
			put_be(arr + len, l, 4);
			memcpy(arr + len + 4, x->keys[k], l);
			len += 4 + l;
			put_be(hs + 8 * k, x->hashes[k], 8);
		}
		/* 2023-11-14 22:13:20 UTC: 1700000000000 ms */
		put_be(ts, (uint64_t)((INT64_C(1700000000000) - INT64_C(946684800000)) * 1000), 8);
		put_be(seen, 4, 8);
		CHECK(PQsetvalue(res, r, 0, (char *)x->input, (int)strlen(x->input)));
		CHECK(PQsetvalue(res, r, 1, (char *)x->url, (int)strlen(x->url)));
		CHECK(PQsetvalue(res, r, 2, (char *)no, 4));
		CHECK(PQsetvalue(res, r, 3, (char *)x->etag, x->etag ? (int)strlen(x->etag) : -1));
		CHECK(PQsetvalue(res, r, 4, NULL, -1));
		CHECK(PQsetvalue(res, r, 5, NULL, -1));
		CHECK(PQsetvalue(res, r, 6, (char *)arr, (int)len));
		CHECK(PQsetvalue(res, r, 7, (char *)hs, (int)(8 * x->n_keys)));
		CHECK(PQsetvalue(res, r, 8, (char *)ts, 8));
		CHECK(PQsetvalue(res, r, 9, (char *)seen, 8));
		CHECK(PQsetvalue(res, r, 10, NULL, -1));
		CHECK(PQsetvalue(res, r, 11, (char *)x->fields, x->fields ? (int)strlen(x->fields) : -1));
	}
	return res;
}

static PGresult *result(const struct row *rows, int n)
{
	return result_of(rows, n, -1, -1, -1);
}

/* An answer by blocks: the table's size in blocks, the stage's share;
 * the stage's rows in the blocks those answered, or listed. */
static struct store_stage_chunk *parse_scan_listed(const struct row *rows, int n, int64_t blocks,
                                                   int share, int64_t listed)
{
	PGresult *res = result_of(rows, n, blocks, share, listed);
	struct store_stage_chunk *c = NULL;
	char err[ERR_MAX] = "";
	CHECK_EQ(store_preload_parse(res, 0, &c, err), 0);
	PQclear(res);
	return c;
}

/* The next statement's place, as the import asks it. */
static struct store_stage_chunk *parse_scan(const struct row *rows, int n, int64_t blocks,
                                            int share)
{
	return parse_scan_listed(rows, n, blocks, share, -1);
}

static struct store_stage_at next_at(struct import_preload *p)
{
	struct store_stage_at at;
	if (!import_preload_next(p, &at))
		at = (struct store_stage_at){ 0 };
	return at;
}

/* By keyset: where the next statement starts (NULL: none), and the rows
 * it asks. */
static const char *from_of(struct import_preload *p)
{
	return next_at(p).input;
}

static uint32_t rows_asked(struct import_preload *p)
{
	return next_at(p).limit;
}

static struct store_stage_chunk *parse(const struct row *rows, int n, size_t limit)
{
	PGresult *res = result(rows, n);
	struct store_stage_chunk *c = NULL;
	char err[ERR_MAX] = "";
	CHECK_EQ(store_preload_parse(res, limit, &c, err), 0);
	PQclear(res);
	return c;
}

static const struct row rows3[] = {
	{ "u/1", "u/1", 0, "\"e1\"", { "a" }, 1, { 1 }, NULL },
	{ "u/2", "u/2?p=1", 1, NULL, { "c", "d" }, 2, { 3, 4 }, "kept values" },
	{ "u/2", "u/2", 0, "\"e2\"", { "b" }, 1, { UINT64_MAX }, NULL },
	{ "u/3", "u/3", 0, NULL, { NULL }, 0, { 0 }, NULL },
};

static void test_parse_whole_inputs(void)
{
	/* not full: every input, u/2's pages in page order */
	struct store_stage_chunk *c = parse(rows3, 4, 10);
	CHECK(c && c->n == 3 && c->rows == 4 && c->from == NULL);
	if (c && c->n == 3) {
		CHECK_STR(store_stage_input_url(c->inputs[1]), "u/2");
		struct store_input_state *st = NULL;
		char err[ERR_MAX] = "";
		CHECK_EQ(store_stage_input_unpack(c->inputs[1], &st, err), 0);
		CHECK(st && st->n_pages == 2);
		if (st && st->n_pages == 2) {
			CHECK_STR(st->pages[0].url, "u/2");
			CHECK_EQ(st->pages[0].page_no, 0);
			CHECK_STR(st->pages[0].etag, "\"e2\"");
			CHECK(st->pages[0].hashes[0] == UINT64_MAX);
			CHECK_STR(st->pages[1].url, "u/2?p=1");
			CHECK(st->pages[1].etag == NULL);
			CHECK_EQ(st->pages[1].n_keys, 2);
			CHECK_STR(st->pages[1].keys[1], "d");
			CHECK(st->pages[1].hashes[1] == 4);
			/* the kept values come as stored; none where NULL */
			CHECK(st->pages[0].fields == NULL);
			CHECK_EQ(st->pages[1].fields_len, 11);
			CHECK(st->pages[1].fields && memcmp(st->pages[1].fields, "kept values", 11) == 0);
			CHECK_EQ(st->pages[0].fetched_at_ms, 1700000000000);
			CHECK_EQ(st->pages[0].seen_import, 4);
		}
		store_input_state_free(st);
	}
	store_stage_chunk_free(c);
	/* full (limit 4): the last input (u/3) left for the next answer */
	c = parse(rows3, 4, 4);
	CHECK(c && c->n == 2 && c->rows == 3 && c->from && strcmp(c->from, "u/3") == 0);
	store_stage_chunk_free(c);
	/* full of one input: none, from it */
	c = parse(rows3 + 1, 2, 2);
	CHECK(c && c->n == 0 && c->from && strcmp(c->from, "u/2") == 0);
	store_stage_chunk_free(c);
	/* a number column of another length (a column's type changed by
	 * hand): 0, not its bytes and the ones after them */
	PGresult *res = result(rows3, 1);
	CHECK(PQsetvalue(res, 0, 9, (char *)"\x7f\x7f", 2));   /* seen_import */
	struct store_stage_chunk *odd = NULL;
	char oerr[ERR_MAX] = "";
	CHECK_EQ(store_preload_parse(res, 10, &odd, oerr), 0);
	PQclear(res);
	CHECK(odd && odd->n == 1);
	if (odd && odd->n == 1) {
		struct store_input_state *st = NULL;
		CHECK_EQ(store_stage_input_unpack(odd->inputs[0], &st, oerr), 0);
		CHECK(st && st->n_pages == 1 && st->pages[0].seen_import == 0);
		store_input_state_free(st);
	}
	store_stage_chunk_free(odd);
	/* the null backend: nothing, the end */
	struct store_stage_chunk *e = NULL;
	char err[ERR_MAX];
	CHECK_EQ(store_preload_parse(NULL, 5, &e, err), 0);
	CHECK(e && e->n == 0 && e->from == NULL);
	store_stage_chunk_free(e);
}

/* While the pass reads on, an input a chunk held whole answers at once
 * (and once); one the chunk cut, or one absent so far, is UNKNOWN until
 * the pass is done. */
static void test_reading_answers_what_is_held(void)
{
	size_t before = membudget_charged();
	struct import_preload *p = import_preload_new(0, false);
	struct store_input_state *st = NULL;
	CHECK_EQ(import_preload_add(p, parse(rows3, 4, 4)), IMPORT_PRELOAD_READING);
	CHECK_EQ(import_preload_take(p, "u/2", &st), IMPORT_PRELOAD_FOUND);
	CHECK(st && st->n_pages == 2);
	store_input_state_free(st);
	CHECK(!import_preload_knows(p, "u/2")); /* spent */
	CHECK_EQ(import_preload_take(p, "u/2", &st), IMPORT_PRELOAD_UNKNOWN);
	CHECK_EQ(import_preload_take(p, "u/3", &st), IMPORT_PRELOAD_UNKNOWN);
	CHECK(st == NULL);
	CHECK_EQ(import_preload_take_known(p, "u/404", &st), IMPORT_PRELOAD_UNKNOWN);
	CHECK(st == NULL);
	/* the rest: u/3 whole, then the end; u/2 stays spent */
	CHECK_EQ(import_preload_add(p, parse(rows3 + 3, 1, 4)), IMPORT_PRELOAD_COMPLETE);
	CHECK(!import_preload_knows(p, "u/2"));
	CHECK_EQ(import_preload_take(p, "u/3", &st), IMPORT_PRELOAD_FOUND);
	CHECK(st && st->n_pages == 1);
	store_input_state_free(st);
	CHECK_EQ(import_preload_take(p, "u/404", &st), IMPORT_PRELOAD_NO_ROW);
	store_input_state_free(st);
	CHECK_EQ(import_preload_take(p, "u/1", &st), IMPORT_PRELOAD_FOUND);
	store_input_state_free(st);
	struct import_preload_stats s;
	import_preload_get_stats(p, &s);
	CHECK_EQ(s.found, 3);
	CHECK_EQ(s.absent, 1);
	CHECK_EQ(s.unknown, 2); /* take_known's is not counted */
	import_preload_free(p);
	CHECK_EQ(membudget_charged(), before);
}

static void test_complete_pass_answers_once(void)
{
	size_t before = membudget_charged();
	struct import_preload *p = import_preload_new(0, false);
	CHECK_EQ(import_preload_phase(p), IMPORT_PRELOAD_READING);
	CHECK_STR(from_of(p), "");
	struct store_input_state *st = NULL;
	/* before the first chunk nothing is known */
	CHECK_EQ(import_preload_take(p, "u/1", &st), IMPORT_PRELOAD_UNKNOWN);
	CHECK(st == NULL);
	/* u/1, u/2 then (from u/3) u/3 and the end */
	CHECK_EQ(import_preload_add(p, parse(rows3, 4, 4)), IMPORT_PRELOAD_READING);
	CHECK_STR(from_of(p), "u/3");
	/* held already; u/3 cut, left out; absence not known yet */
	CHECK(import_preload_knows(p, "u/1"));
	CHECK(!import_preload_knows(p, "u/3"));
	CHECK(!import_preload_knows(p, "u/404"));
	CHECK_EQ(import_preload_add(p, parse(rows3 + 3, 1, 4)), IMPORT_PRELOAD_COMPLETE);
	CHECK(from_of(p) == NULL);
	CHECK(membudget_charged() > before);
	CHECK(import_preload_knows(p, "u/1"));
	CHECK(import_preload_knows(p, "u/404")); /* absent from a complete pass */

	CHECK_EQ(import_preload_take(p, "u/2", &st), IMPORT_PRELOAD_FOUND);
	CHECK(st && st->n_pages == 2);
	store_input_state_free(st);
	/* once: the second take reads */
	CHECK(!import_preload_knows(p, "u/2"));
	CHECK_EQ(import_preload_take(p, "u/2", &st), IMPORT_PRELOAD_UNKNOWN);
	CHECK(st == NULL);
	CHECK_EQ(import_preload_take(p, "u/3", &st), IMPORT_PRELOAD_FOUND);
	CHECK(st && st->n_pages == 1 && st->pages[0].n_keys == 0);
	store_input_state_free(st);
	/* no row: an empty state, every time, nothing held for it */
	size_t held = membudget_charged();
	CHECK_EQ(import_preload_take(p, "u/404", &st), IMPORT_PRELOAD_NO_ROW);
	CHECK(st && st->n_pages == 0);
	store_input_state_free(st);
	CHECK_EQ(import_preload_take(p, "u/404", &st), IMPORT_PRELOAD_NO_ROW);
	store_input_state_free(st);
	CHECK_EQ(membudget_charged(), held);
	/* taken only if known: a spent URL answers UNKNOWN, not counted */
	CHECK_EQ(import_preload_take_known(p, "u/2", &st), IMPORT_PRELOAD_UNKNOWN);
	CHECK(st == NULL);
	CHECK_EQ(import_preload_take_known(p, "u/1", &st), IMPORT_PRELOAD_FOUND);
	CHECK(st && st->n_pages == 1);
	store_input_state_free(st);
	struct import_preload_stats s;
	import_preload_get_stats(p, &s);
	CHECK_EQ(s.chunks, 2);
	CHECK_EQ(s.inputs, 3);
	CHECK_EQ(s.rows, 4);
	CHECK_EQ(s.found, 3);
	CHECK_EQ(s.absent, 2);
	CHECK_EQ(s.unknown, 2);
	CHECK(s.peak_bytes >= s.bytes && s.bytes > 0);
	import_preload_free(p);
	CHECK_EQ(membudget_charged(), before);
}

/* Many inputs: the table grows, every one found by its URL. */
static void test_many_inputs(void)
{
	size_t before = membudget_charged();
	enum { N = 5000 };
	static char urls[N][16];
	static struct row rows[N];
	one_key_rows(urls, rows, N, "m");
	struct import_preload *p = import_preload_new(0, false);
	CHECK_EQ(import_preload_add(p, parse(rows, N, N + 1)), IMPORT_PRELOAD_COMPLETE);
	int found = 0;
	for (int i = N - 1; i >= 0; i--) {
		struct store_input_state *st = NULL;
		found += import_preload_take(p, urls[i], &st) == IMPORT_PRELOAD_FOUND;
		store_input_state_free(st);
	}
	CHECK_EQ(found, N);
	import_preload_free(p);
	CHECK_EQ(membudget_charged(), before);
}

static void test_stops_leave_unknown(void)
{
	size_t before = membudget_charged();
	/* bound: the table's first buckets and about one input */
	size_t bound = 1024 * sizeof(void *) + 150;
	struct import_preload *p = import_preload_new(bound, false);
	CHECK_EQ(import_preload_add(p, parse(rows3, 4, 10)), IMPORT_PRELOAD_PARTIAL);
	struct import_preload_stats s;
	import_preload_get_stats(p, &s);
	CHECK(s.inputs == 1);
	CHECK(s.bytes <= bound);
	struct store_input_state *st = NULL;
	CHECK(!import_preload_knows(p, "u/3"));
	CHECK(!import_preload_knows(p, "u/404"));  /* not read to the end: unknown */
	CHECK_EQ(import_preload_take(p, "u/404", &st), IMPORT_PRELOAD_UNKNOWN);
	if (s.inputs == 1) {
		CHECK_EQ(import_preload_take(p, "u/1", &st), IMPORT_PRELOAD_FOUND);
		store_input_state_free(st);
	}
	/* an answer after the stop is freed */
	CHECK_EQ(import_preload_add(p, parse(rows3, 4, 10)), IMPORT_PRELOAD_PARTIAL);
	import_preload_free(p);
	/* a failed read; one input larger than a chunk */
	p = import_preload_new(0, false);
	CHECK_EQ(import_preload_add(p, NULL), IMPORT_PRELOAD_PARTIAL);
	import_preload_free(p);
	p = import_preload_new(0, false);
	CHECK_EQ(import_preload_add(p, parse(rows3 + 1, 2, 2)), IMPORT_PRELOAD_PARTIAL);
	import_preload_stop(p);
	CHECK_EQ(import_preload_phase(p), IMPORT_PRELOAD_PARTIAL);
	import_preload_free(p);
	/* stopped before any answer */
	p = import_preload_new(0, false);
	import_preload_stop(p);
	CHECK(from_of(p) == NULL);
	CHECK_EQ(import_preload_take(p, "u/1", &st), IMPORT_PRELOAD_UNKNOWN);
	import_preload_free(p);
	import_preload_free(NULL);
	CHECK_EQ(membudget_charged(), before);
}

/* How many rows each statement of the pass asks: few at first, then what
 * the bytes left under the bound hold at the size seen so far; a chunk
 * that held no whole input (a long input) is asked again once at the most
 * a chunk may hold. */
static void test_next_rows_follow_the_bound(void)
{
	size_t before = membudget_charged();
	struct import_preload *p = import_preload_new(0, false);
	CHECK_EQ(rows_asked(p), IMPORT_PRELOAD_FIRST_CHUNK);
	CHECK_EQ(import_preload_add(p, parse(rows3, 4, 10)), IMPORT_PRELOAD_COMPLETE);
	import_preload_free(p);
	/* small inputs and a large bound: a whole chunk */
	p = import_preload_new(0, false);
	CHECK_EQ(rows_asked(p), IMPORT_PRELOAD_FIRST_CHUNK);
	CHECK_EQ(import_preload_add(p, parse(rows3, 2, 1)), IMPORT_PRELOAD_READING);
	CHECK_EQ(rows_asked(p), IMPORT_PRELOAD_CHUNK);
	import_preload_free(p);
	/* a bound of about ten such inputs: about ten rows asked, not a chunk */
	size_t bound = 1024 * sizeof(void *) + 10 * 120;
	p = import_preload_new(bound, false);
	(void)rows_asked(p);
	CHECK_EQ(import_preload_add(p, parse(rows3, 2, 1)), IMPORT_PRELOAD_READING);
	uint32_t n = rows_asked(p);
	CHECK(n >= 1 && n <= 20);
	import_preload_free(p);
	/* u/2's two pages cut by a limit of one: asked again at a chunk's
	 * rows, and only a second cut at that size stops the pass */
	p = import_preload_new(0, false);
	(void)rows_asked(p);
	CHECK_EQ(import_preload_add(p, parse(rows3 + 1, 2, 1)), IMPORT_PRELOAD_READING);
	CHECK_EQ(rows_asked(p), IMPORT_PRELOAD_CHUNK);
	CHECK_EQ(import_preload_add(p, parse(rows3 + 1, 2, 1)), IMPORT_PRELOAD_PARTIAL);
	import_preload_free(p);
	CHECK_EQ(membudget_charged(), before);
}

/* A scan's answer: rows in the order stored, an input's later page after
 * other inputs (found by its page 0), brought together in page order; the
 * sentinel skipped; the table's blocks and the stage's share read. */
static void test_parse_scan(void)
{
	static const struct row stored[] = {
		{ "u/2", "u/2", 0, "\"e2\"", { "b" }, 1, { 7 }, NULL },
		{ "u/1", "u/1", 0, NULL, { "a" }, 1, { 1 }, NULL },
		{ "u/2", "u/2?p=1", 1, NULL, { "c", "d" }, 2, { 3, 4 }, NULL },
	};
	struct store_stage_chunk *c = parse_scan(stored, 3, 120, 925);
	CHECK(c && c->n == 2 && c->rows == 3 && c->from == NULL);
	CHECK(c && c->rel_blocks == 120 && c->share == 925 && c->listed == 3);
	for (size_t i = 0; c && i < c->n; i++) {
		if (strcmp(store_stage_input_url(c->inputs[i]), "u/2") != 0)
			continue;
		struct store_input_state *st = NULL;
		char err[ERR_MAX] = "";
		CHECK_EQ(store_stage_input_unpack(c->inputs[i], &st, err), 0);
		CHECK(st && st->n_pages == 2);
		if (st && st->n_pages == 2) {
			CHECK_EQ(st->pages[0].page_no, 0);
			CHECK_STR(st->pages[1].url, "u/2?p=1");
			CHECK_STR(st->pages[1].keys[1], "d");
		}
		store_input_state_free(st);
	}
	store_stage_chunk_free(c);
	/* none of the stage's rows in those blocks: the sentinel alone; a
	 * share not known */
	static const struct row sentinel[] = { { NULL, NULL, 0, NULL, { NULL }, 0, { 0 }, NULL } };
	c = parse_scan(sentinel, 1, 7, -1);
	CHECK(c && c->n == 0 && c->rows == 0 && c->rel_blocks == 7 && c->share == -1);
	store_stage_chunk_free(c);
	/* the null backend: no block */
	char err[ERR_MAX];
	CHECK_EQ(store_preload_parse(NULL, 0, &c, err), 0);
	CHECK(c && c->n == 0 && c->rel_blocks == 0);
	store_stage_chunk_free(c);
}

/* By blocks: the first statement asks few blocks and the share, the next
 * ones more (at most four times the last, as many as a chunk's rows take
 * at the density read), never past the table's end as first answered;
 * there the pass is complete. */
static void test_scan_reads_to_the_end(void)
{
	size_t before = membudget_charged();
	struct import_preload *p = import_preload_new(0, true);
	struct store_stage_at at = next_at(p);
	CHECK(at.blocks == IMPORT_PRELOAD_FIRST_BLOCKS && at.block == 0 && at.want_share);
	CHECK(at.input == NULL);
	/* two inputs in 4 blocks, of a table of 50 blocks, 90 % the stage's */
	CHECK_EQ(import_preload_add(p, parse_scan(rows3, 3, 50, 900)), IMPORT_PRELOAD_READING);
	CHECK(import_preload_knows(p, "u/2"));
	CHECK(!import_preload_knows(p, "u/404")); /* not read to the end yet */
	at = next_at(p);
	CHECK(at.block == 4 && at.blocks == 4 * IMPORT_PRELOAD_FIRST_BLOCKS && !at.want_share);
	static const struct row none[] = { { NULL, NULL, 0, NULL, { NULL }, 0, { 0 }, NULL } };
	CHECK_EQ(import_preload_add(p, parse_scan(none, 1, 60, -1)), IMPORT_PRELOAD_READING);
	at = next_at(p);
	CHECK(at.block == 20 && at.blocks == 30); /* the rest of the 50 first answered */
	CHECK_EQ(import_preload_add(p, parse_scan(rows3 + 3, 1, 60, -1)), IMPORT_PRELOAD_COMPLETE);
	CHECK(!import_preload_next(p, &at));
	CHECK(import_preload_knows(p, "u/3"));
	CHECK(import_preload_knows(p, "u/404")); /* absent from a complete pass */
	struct import_preload_stats s;
	import_preload_get_stats(p, &s);
	CHECK(!s.by_keyset && s.chunks == 3 && s.inputs == 3 && s.again == 0);
	CHECK_EQ(s.listed, s.rows); /* every row found is held */
	import_preload_free(p);
	/* a page row found in the blocks but not held (not reachable from
	 * its input's first row): found more than held */
	p = import_preload_new(0, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan_listed(rows3, 4, 3, 900, 5)),
	         IMPORT_PRELOAD_COMPLETE);
	import_preload_get_stats(p, &s);
	CHECK(s.listed == 5 && s.rows == 4);
	import_preload_free(p);
	/* an empty table (or the null backend): complete at once */
	p = import_preload_new(0, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan(none, 1, 0, -1)), IMPORT_PRELOAD_COMPLETE);
	import_preload_free(p);
	/* dense blocks: a chunk's rows at that density, not four times more */
	enum { N = 1000 };
	static char urls[N][16];
	static struct row many[N];
	one_key_rows(urls, many, N, "d");
	p = import_preload_new(0, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan(many, N, 100000, 990)), IMPORT_PRELOAD_READING);
	at = next_at(p); /* 250 rows a block: a chunk of IMPORT_PRELOAD_CHUNK rows */
	CHECK_EQ(at.blocks, IMPORT_PRELOAD_CHUNK / 250);
	import_preload_free(p);
	CHECK_EQ(membudget_charged(), before);
}

/* By blocks, less left under the bound than a block holds at the density
 * read so far: the pass stops there (not a block a statement to the end,
 * the inputs it does not hold waiting on it). */
static void test_scan_stops_at_its_bound(void)
{
	size_t before = membudget_charged();
	enum { N = 40 };
	static char urls[N][16];
	static struct row rows[N];
	one_key_rows(urls, rows, N, "b");
	/* what 40 inputs in the first 4 blocks hold */
	struct import_preload *p = import_preload_new(0, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan(rows, N, 100000, 900)), IMPORT_PRELOAD_READING);
	struct import_preload_stats s;
	import_preload_get_stats(p, &s);
	import_preload_free(p);
	/* a bound of that and a fifth of a block's worth: stopped, not a
	 * block a statement */
	p = import_preload_new(s.bytes + s.bytes / 4 / 5, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan(rows, N, 100000, 900)), IMPORT_PRELOAD_READING);
	struct store_stage_at at;
	CHECK(!import_preload_next(p, &at));
	CHECK_EQ(import_preload_phase(p), IMPORT_PRELOAD_PARTIAL);
	CHECK(import_preload_knows(p, "b/00007"));
	CHECK(!import_preload_knows(p, "u/404")); /* not read to the end */
	import_preload_free(p);
	/* two blocks' worth left: on */
	p = import_preload_new(s.bytes + s.bytes / 2, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan(rows, N, 100000, 900)), IMPORT_PRELOAD_READING);
	CHECK(import_preload_next(p, &at) && at.blocks >= 1);
	import_preload_free(p);
	CHECK_EQ(membudget_charged(), before);
}

/* A stage of few of the table's rows (or none known) goes on by keyset
 * after the first blocks; what those held, read again, is dropped, and an
 * input taken before stays taken. */
static void test_scan_goes_on_by_keyset(void)
{
	size_t before = membudget_charged();
	struct import_preload *p = import_preload_new(0, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan(rows3, 3, 50, 120)), IMPORT_PRELOAD_READING);
	struct store_input_state *st = NULL;
	CHECK_EQ(import_preload_take(p, "u/1", &st), IMPORT_PRELOAD_FOUND);
	store_input_state_free(st);
	struct store_stage_at at = next_at(p);
	CHECK(at.blocks == 0 && at.input && strcmp(at.input, "") == 0);
	CHECK_EQ(at.limit, IMPORT_PRELOAD_CHUNK);
	CHECK_EQ(import_preload_add(p, parse(rows3, 4, 10)), IMPORT_PRELOAD_COMPLETE);
	CHECK_EQ(import_preload_take(p, "u/1", &st), IMPORT_PRELOAD_UNKNOWN); /* spent */
	CHECK_EQ(import_preload_take(p, "u/3", &st), IMPORT_PRELOAD_FOUND);
	store_input_state_free(st);
	struct import_preload_stats s;
	import_preload_get_stats(p, &s);
	CHECK(s.by_keyset);
	CHECK_EQ(s.again, 2);
	CHECK_EQ(s.inputs, 3);
	CHECK_EQ(s.listed, 4); /* by keyset from the switch on: each row once */
	CHECK_EQ(s.rows, 4);
	import_preload_free(p);
	/* no share known: by keyset too */
	p = import_preload_new(0, true);
	(void)next_at(p);
	CHECK_EQ(import_preload_add(p, parse_scan(rows3, 3, 50, -1)), IMPORT_PRELOAD_READING);
	CHECK(next_at(p).blocks == 0);
	import_preload_free(p);
	CHECK_EQ(membudget_charged(), before);
}

/* A queued input's entry filled from the pass: answered without a read. */
static void test_ahead_fill(void)
{
	size_t before = membudget_charged();
	struct import_ahead *a = import_ahead_new();
	struct import_ahead_entry *e = import_ahead_ask(a, "u/1");
	struct store_input_state *st = calloc(1, sizeof *st);
	CHECK(import_ahead_fill(a, e, st));
	CHECK_EQ(import_ahead_unsent(a), 0);
	CHECK_EQ(import_ahead_status(e), IMPORT_AHEAD_ANSWERED);
	CHECK(import_ahead_state(e) == st);
	struct store_input_state *other = calloc(1, sizeof *other);
	CHECK(!import_ahead_fill(a, e, other)); /* not UNSENT: still ours */
	free(other);
	struct store_input_state *took = import_ahead_take(a, e);
	CHECK(took == st);
	store_input_state_free(took);
	import_ahead_drop(a, e);
	import_ahead_free(a);
	CHECK_EQ(membudget_charged(), before);
}

int main(void)
{
	RUN(test_parse_whole_inputs);
	RUN(test_complete_pass_answers_once);
	RUN(test_reading_answers_what_is_held);
	RUN(test_many_inputs);
	RUN(test_stops_leave_unknown);
	RUN(test_ahead_fill);
	RUN(test_next_rows_follow_the_bound);
	RUN(test_parse_scan);
	RUN(test_scan_reads_to_the_end);
	RUN(test_scan_goes_on_by_keyset);
	RUN(test_scan_stops_at_its_bound);
	return CHECK_DONE();
}
