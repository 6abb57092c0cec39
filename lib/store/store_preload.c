/* store_preload — see store_preload.h. */
#include "store_preload.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Narrow columns only (no payload), as stored: the answer is asked in
 * binary (keys a text[], hashes a bytea, numbers as integers), so
 * PostgreSQL runs no output function but the types' send ones and
 * raced parses no text.  The order is the index's: inputs ascending, an
 * input's pages together; they are put in page order per input here, so
 * PostgreSQL sorts nothing. */
const char store_preload_sql[] =
	"SELECT q.input, q.url, q.page_no, q.etag, q.last_modified, q.next_url, q.keys, q.hashes,"
	" q.fetched_at, q.seen_import, q.done_import, q.fields"
	" FROM raced_pages q WHERE q.stage = $1::text AND q.input >= $2::text AND q.seen_import >= 0"
	" ORDER BY q.input LIMIT $3::integer";

/* The same columns, and the sentinel's two.  The page-0 rows come in the
 * order stored, which is the order the run that wrote them fetched them
 * in, and so about the order the next run's inputs come in: an input can
 * start as soon as the blocks holding it are read (the keyset order is
 * the URL's, unrelated to it).  An input is found by its first page row
 * (page 0; where page 0 has no row, its lowest page: one index probe for
 * each later page row in the blocks), and its later pages by that row
 * (one index probe, where the row names a next page, is a placeholder or
 * is not page 0), so an answer holds whole inputs, and a complete scan
 * every page row a walk from page 0 can reach.  The block
 * numbers go as text into a tid, which PostgreSQL 14 and later scan as a
 * range (before 14, each statement would scan the whole table: there the
 * share is NULL, and the pass goes on by keyset after the first); the
 * share is the planner's most-common-value frequency of the stage, in
 * thousandths (NULL: not among them, or never analyzed); listed, the
 * stage's page rows in the blocks, wherever their input's first row is:
 * more than the answer's rows over a pass when a row is not reachable
 * from its input's first (a page past the chain page 0 names now). */
#define SCAN_COLS(t)                                                                          \
	" " t ".input, " t ".url, " t ".page_no, " t ".etag, " t ".last_modified, " t ".next_url, " \
	t ".keys, " t ".hashes, " t ".fetched_at, " t ".seen_import, " t ".done_import, " t ".fields"
#define SCAN_BLOCKS(t)                                                               \
	" " t ".ctid >= ('(' || $2::bigint || ',0)')::tid"                           \
	" AND " t ".ctid < ('(' || $3::bigint || ',0)')::tid AND " t ".stage = $1::text"
#define SCAN_RANGE(t)                                                                \
	SCAN_BLOCKS(t) " AND (" t ".page_no = 0 OR NOT EXISTS (SELECT 1 FROM raced_pages z" \
	" WHERE z.stage = $1::text AND z.input = " t ".input AND z.page_no < " t ".page_no))"
const char store_preload_scan_sql[] =
	"SELECT" SCAN_COLS("r") ", z.blocks, z.share, z.listed"
	" FROM (SELECT pg_relation_size('raced_pages') / current_setting('block_size')::bigint AS blocks,"
	" (SELECT count(*) FROM raced_pages c WHERE" SCAN_BLOCKS("c") " AND c.seen_import >= 0) AS listed,"
	" CASE WHEN $4::boolean AND current_setting('server_version_num')::integer >= 140000"
	" THEN (SELECT (m.f * 1000)::integer FROM pg_stats s,"
	" unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(v, f)"
	" WHERE s.schemaname = (SELECT n.nspname FROM pg_class c JOIN pg_namespace n"
	" ON n.oid = c.relnamespace WHERE c.oid = 'raced_pages'::regclass)"
	" AND s.tablename = 'raced_pages' AND s.attname = 'stage' AND m.v = $1::text) END AS share) z"
	" LEFT JOIN (SELECT" SCAN_COLS("q") " FROM raced_pages q WHERE" SCAN_RANGE("q")
	" AND q.seen_import >= 0"
	" UNION ALL SELECT" SCAN_COLS("p") " FROM raced_pages a JOIN raced_pages p"
	" ON p.stage = $1::text AND p.input = a.input AND p.page_no > a.page_no AND p.seen_import >= 0"
	" WHERE" SCAN_RANGE("a")
	" AND (a.next_url IS NOT NULL OR a.seen_import < 0 OR a.page_no > 0)) r ON true";

enum { C_INPUT, C_URL, C_PAGE_NO, C_ETAG, C_LM, C_NEXT, C_KEYS, C_HASHES, C_FETCHED, C_SEEN,
       C_DONE, C_FIELDS, C_N, C_BLOCKS = C_N, C_SHARE, C_LISTED, C_SCAN_N };

/* PostgreSQL's timestamps count microseconds from 2000-01-01 UTC. */
#define PG_EPOCH_MS INT64_C(946684800000)

/* A packed page: its header, then url (unless F_URL_SAME), etag, last
 * modified, next url (each unless NULL), NUL-terminated; then its keys,
 * NUL-terminated, back to back; then its hashes, 8 bytes each (native);
 * then its fields' fields_len bytes (F_FIELDS). */
enum { F_URL_SAME = 1, F_ETAG = 2, F_LM = 4, F_NEXT = 8, F_HASHES = 16, F_FIELDS = 32 };
struct packed_page {
	uint32_t page_no, n_keys, fields_len;
	int64_t fetched_ms, seen, done;
	uint8_t flags;
};

void store_stage_chunk_free(struct store_stage_chunk *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->inputs[i]);
	free(c->inputs);
	free(c->from);
	free(c);
}

static uint32_t be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static uint64_t be64(const char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* A binary integer column (int4 or int8 by its length); NULL, or a value
 * of another length (a column whose type someone changed): 0, never a
 * read past the value. */
static int64_t int_col(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	const char *v = PQgetvalue(res, row, col);
	int len = PQgetlength(res, row, col);
	return len == 8 ? (int64_t)be64(v) : len == 4 ? (int32_t)be32(v) : 0;
}

/* A binary text[] of one dimension, no NULL element: *n elements and the
 * bytes their text takes NUL-terminated.  false: not such an array. */
static bool keys_measure(const char *v, int len, uint32_t *n, size_t *bytes)
{
	*n = 0;
	*bytes = 0;
	if (len < 12)
		return false;
	uint32_t ndim = be32(v);
	if (ndim == 0)
		return true;
	if (ndim != 1 || len < 20)
		return false;
	uint32_t count = be32(v + 12);
	const char *at = v + 20, *end = v + len;
	for (uint32_t i = 0; i < count; i++) {
		if (end - at < 4)
			return false;
		uint32_t l = be32(at);
		at += 4;
		if (l == UINT32_MAX || (size_t)(end - at) < l)
			return false;
		at += l;
		*bytes += l + 1;
	}
	*n = count;
	return true;
}

struct row_ref {
	int row;
	uint32_t page_no;
	const char *input, *url;
	uint32_t n_keys;
	size_t key_bytes;
};

static int row_cmp(const void *a, const void *b)
{
	const struct row_ref *x = a, *y = b;
	int by_input = strcmp(x->input, y->input);
	if (by_input != 0)
		return by_input;
	if (x->page_no != y->page_no)
		return x->page_no < y->page_no ? -1 : 1;
	return strcmp(x->url, y->url);
}

/* Bytes of an optional text column packed. */
static size_t opt_size(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : (size_t)PQgetlength(res, row, col) + 1;
}

static char *opt_put(char *at, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return at;
	size_t len = (size_t)PQgetlength(res, row, col);
	memcpy(at, PQgetvalue(res, row, col), len);
	at[len] = '\0';
	return at + len + 1;
}

/* Whether a row's hashes are 8 bytes a key (else they are left 0: the
 * page's items then count as changed, as store_get_input does). */
static bool hashes_fit(const PGresult *res, const struct row_ref *r)
{
	return !PQgetisnull(res, r->row, C_HASHES) &&
	       (size_t)PQgetlength(res, r->row, C_HASHES) == (size_t)r->n_keys * 8;
}

/* Bytes of the fields column packed (a bytea, binary: as stored). */
static size_t fields_size(const PGresult *res, int row)
{
	return PQgetisnull(res, row, C_FIELDS) ? 0 : (size_t)PQgetlength(res, row, C_FIELDS);
}

/* Rows refs[0 .. n) (one input, in page order) packed.  NULL: out of
 * memory. */
static struct store_stage_input *pack(const PGresult *res, const struct row_ref *refs, uint32_t n)
{
	const char *input = PQgetvalue(res, refs[0].row, C_INPUT);
	size_t in_len = strlen(input) + 1;
	size_t size = in_len + sizeof n;
	for (uint32_t i = 0; i < n; i++) {
		int row = refs[i].row;
		size += sizeof(struct packed_page) + opt_size(res, row, C_ETAG) +
		        opt_size(res, row, C_LM) + opt_size(res, row, C_NEXT) + refs[i].key_bytes +
		        (hashes_fit(res, &refs[i]) ? (size_t)refs[i].n_keys * 8 : 0) +
		        fields_size(res, row);
		if (strcmp(refs[i].url, input) != 0)
			size += strlen(refs[i].url) + 1;
	}
	struct store_stage_input *in = malloc(sizeof *in + size);
	if (!in)
		return NULL;
	in->next = NULL;
	in->hash = 0;
	in->size = size;
	char *at = in->data;
	memcpy(at, input, in_len);
	at += in_len;
	memcpy(at, &n, sizeof n);
	at += sizeof n;
	for (uint32_t i = 0; i < n; i++) {
		const struct row_ref *r = &refs[i];
		int row = r->row;
		bool fit = hashes_fit(res, r);
		int64_t us = int_col(res, row, C_FETCHED);
		struct packed_page pp = {
			.page_no = r->page_no, .n_keys = r->n_keys, .fields_len = (uint32_t)fields_size(res, row),
			.fetched_ms = us / 1000 + PG_EPOCH_MS,
			.seen = int_col(res, row, C_SEEN), .done = int_col(res, row, C_DONE),
			.flags = (uint8_t)((strcmp(r->url, input) == 0 ? F_URL_SAME : 0) |
			                   (PQgetisnull(res, row, C_ETAG) ? 0 : F_ETAG) |
			                   (PQgetisnull(res, row, C_LM) ? 0 : F_LM) |
			                   (PQgetisnull(res, row, C_NEXT) ? 0 : F_NEXT) |
			                   (fit ? F_HASHES : 0) |
			                   (PQgetisnull(res, row, C_FIELDS) ? 0 : F_FIELDS)),
		};
		memcpy(at, &pp, sizeof pp);
		at += sizeof pp;
		if (!(pp.flags & F_URL_SAME))
			at = opt_put(at, res, row, C_URL);
		at = opt_put(at, res, row, C_ETAG);
		at = opt_put(at, res, row, C_LM);
		at = opt_put(at, res, row, C_NEXT);
		const char *k = PQgetvalue(res, row, C_KEYS);
		for (uint32_t j = 0, off = 20; j < r->n_keys; j++) {
			uint32_t l = be32(k + off);
			memcpy(at, k + off + 4, l);
			at[l] = '\0';
			at += l + 1;
			off += 4 + l;
		}
		const char *h = PQgetvalue(res, row, C_HASHES);
		for (uint32_t j = 0; fit && j < r->n_keys; j++) {
			uint64_t v = be64(h + 8 * j);
			memcpy(at, &v, 8);
			at += 8;
		}
		if (pp.fields_len) {
			memcpy(at, PQgetvalue(res, row, C_FIELDS), pp.fields_len);
			at += pp.fields_len;
		}
	}
	return in;
}

int store_preload_parse(const PGresult *res, size_t limit, struct store_stage_chunk **out,
                        char *err)
{
	*out = NULL;
	struct store_stage_chunk *c = calloc(1, sizeof *c);
	int rows = res ? PQntuples(res) : 0;
	if (!c)
		return err_set(err, "out of memory reading a stage's state");
	c->share = -1;
	if (rows == 0) {
		*out = c;
		return 0;
	}
	bool scan = limit == 0;
	if (PQnfields(res) != (scan ? C_SCAN_N : C_N) || PQfformat(res, C_KEYS) != 1) {
		free(c);
		return err_set(err, "reading raced_pages: unexpected result");
	}
	if (scan) {
		c->rel_blocks = (uint64_t)int_col(res, 0, C_BLOCKS);
		c->share = PQgetisnull(res, 0, C_SHARE) ? -1 : (int)int_col(res, 0, C_SHARE);
		c->listed = (uint64_t)int_col(res, 0, C_LISTED);
	}
	/* Reached the limit: the last input may have more rows; it is read
	 * again from the start by the next chunk. */
	int end = rows;
	if (!scan && (size_t)rows >= limit) {
		const char *last = PQgetvalue(res, rows - 1, C_INPUT);
		while (end > 0 && strcmp(PQgetvalue(res, end - 1, C_INPUT), last) == 0)
			end--;
		if (!(c->from = strdup(last))) {
			free(c);
			return err_set(err, "out of memory reading a stage's state");
		}
	}
	struct row_ref *refs = end > 0 ? malloc((size_t)end * sizeof *refs) : NULL;
	if (end > 0 && !refs) {
		store_stage_chunk_free(c);
		return err_set(err, "out of memory reading a stage's state");
	}
	/* the rows of one input together, in page order (a scan's come in
	 * the order stored, its inputs' later pages after them): the answer
	 * is taken whole, so the order of its inputs does not matter */
	int n_refs = 0;
	for (int row = 0; row < end; row++) {
		if (PQgetisnull(res, row, C_INPUT))
			continue; /* the sentinel */
		struct row_ref *x = &refs[n_refs++];
		x->row = row;
		x->page_no = (uint32_t)int_col(res, row, C_PAGE_NO);
		x->input = PQgetvalue(res, row, C_INPUT);
		x->url = PQgetvalue(res, row, C_URL);
		if (PQgetisnull(res, row, C_KEYS) ||
		    !keys_measure(PQgetvalue(res, row, C_KEYS), PQgetlength(res, row, C_KEYS),
		                  &x->n_keys, &x->key_bytes)) {
			const char *url = x->url; /* res's */
			free(refs);
			store_stage_chunk_free(c);
			return err_set(err, "raced_pages.keys of %s unreadable", url);
		}
	}
	if (n_refs > 1)
		qsort(refs, (size_t)n_refs, sizeof *refs, row_cmp);
	size_t groups = 0;
	for (int r = 0; r < n_refs; r++)
		groups += r == 0 || strcmp(refs[r].input, refs[r - 1].input) != 0;
	c->inputs = groups ? calloc(groups, sizeof *c->inputs) : NULL;
	if (groups && !c->inputs) {
		free(refs);
		store_stage_chunk_free(c);
		return err_set(err, "out of memory reading a stage's state");
	}
	for (int r = 0; r < n_refs;) {
		uint32_t n = 1;
		while (r + (int)n < n_refs && strcmp(refs[r + (int)n].input, refs[r].input) == 0)
			n++;
		if (c->n == groups || !(c->inputs[c->n] = pack(res, &refs[r], n))) {
			free(refs);
			store_stage_chunk_free(c);
			return err_set(err, "out of memory reading a stage's state");
		}
		c->n++;
		c->rows += n;
		r += (int)n;
	}
	free(refs);
	*out = c;
	return 0;
}

/* The next NUL-terminated string at *at (before end); *at moves past it.
 * NULL: the data ends first. */
static const char *str_get(const char **at, const char *end)
{
	const char *nul = *at < end ? memchr(*at, '\0', (size_t)(end - *at)) : NULL;
	if (!nul)
		return NULL;
	const char *s = *at;
	*at = nul + 1;
	return s;
}

static char *dup_str(const char *v, bool *failed)
{
	if (!v)
		return NULL;
	char *d = strdup(v);
	if (!d)
		*failed = true;
	return d;
}

int store_stage_input_unpack(const struct store_stage_input *in, struct store_input_state **out,
                             char *err)
{
	*out = NULL;
	const char *at = in->data, *end = in->data + in->size;
	const char *input = str_get(&at, end);
	uint32_t n;
	if (!input || (size_t)(end - at) < sizeof n)
		return err_set(err, "a stage's state read ahead is unreadable");
	memcpy(&n, at, sizeof n);
	at += sizeof n;
	struct store_input_state *st = calloc(1, sizeof *st);
	if (!st || (n > 0 && !(st->pages = calloc(n, sizeof *st->pages)))) {
		free(st);
		return err_set(err, "out of memory reading the state of %s", input);
	}
	for (uint32_t i = 0; i < n; i++) {
		struct packed_page pp;
		struct store_page_state *p = &st->pages[i];
		bool bad = (size_t)(end - at) < sizeof pp, failed = false;
		if (!bad) {
			memcpy(&pp, at, sizeof pp);
			at += sizeof pp;
		}
		const char *url = bad ? NULL : pp.flags & F_URL_SAME ? input : str_get(&at, end);
		const char *etag = !bad && pp.flags & F_ETAG ? str_get(&at, end) : NULL;
		const char *lm = !bad && pp.flags & F_LM ? str_get(&at, end) : NULL;
		const char *next = !bad && pp.flags & F_NEXT ? str_get(&at, end) : NULL;
		bad = bad || !url || (pp.flags & F_ETAG && !etag) || (pp.flags & F_LM && !lm) ||
		      (pp.flags & F_NEXT && !next);
		st->n_pages += !bad;
		if (!bad) {
			p->url = dup_str(url, &failed);
			p->etag = dup_str(etag, &failed);
			p->last_modified = dup_str(lm, &failed);
			p->next_url = dup_str(next, &failed);
			p->page_no = pp.page_no;
			p->fetched_at_ms = pp.fetched_ms;
			p->seen_import = pp.seen;
			p->done_import = pp.done;
			p->keys = calloc(pp.n_keys ? pp.n_keys : 1, sizeof *p->keys);
			p->hashes = calloc(pp.n_keys ? pp.n_keys : 1, sizeof *p->hashes);
			failed = failed || !p->keys || !p->hashes;
		}
		for (uint32_t k = 0; !bad && !failed && k < pp.n_keys; k++) {
			const char *key = str_get(&at, end);
			bad = !key;
			if (key && !(p->keys[p->n_keys++] = strdup(key)))
				failed = true;
		}
		if (!bad && !failed && pp.flags & F_HASHES) {
			bad = (size_t)(end - at) < (size_t)pp.n_keys * 8;
			if (!bad)
				memcpy(p->hashes, at, (size_t)pp.n_keys * 8);
			at += bad ? 0 : (size_t)pp.n_keys * 8;
		}
		if (!bad && !failed && pp.flags & F_FIELDS) {
			bad = (size_t)(end - at) < pp.fields_len;
			if (!bad && !(p->fields = malloc(pp.fields_len ? pp.fields_len : 1)))
				failed = true;
			else if (!bad) {
				memcpy(p->fields, at, pp.fields_len);
				p->fields_len = pp.fields_len;
				at += pp.fields_len;
			}
		}
		if (bad || failed) {
			store_input_state_free(st);
			return bad ? err_set(err, "the state of %s read ahead is unreadable", input)
			           : err_set(err, "out of memory reading the state of %s", input);
		}
	}
	*out = st;
	return 0;
}
