/* store_pages — see store_pages.h. */
#include "store_pages.h"

#include "store_batch.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- page records ------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *failed)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

static void rec_clear(struct store_page_rec *r)
{
	free(r->url);
	free(r->input);
	free(r->etag);
	free(r->last_modified);
	free(r->next_url);
	for (size_t i = 0; r->keys && i < r->n_keys; i++)
		free(r->keys[i]);
	free(r->keys);
	free(r->hashes);
	free(r->fields);
	memset(r, 0, sizeof *r);
}

int store_page_rec_set(struct store_page_rec *r, const struct store_page *pg)
{
	bool failed = false;
	memset(r, 0, sizeof *r);
	r->url = dup_or_null(pg->url, &failed);
	r->page_no = pg->page_no;
	r->input_done = pg->input_done;
	r->reached_only = pg->reached_only;
	/* A record reached only writes no page row: the reach names its url
	 * (and its input when it completes it), nothing else is read; an
	 * unchanged re-import's records are nearly all such. */
	if (pg->reached_only) {
		if (pg->input_done)
			r->input = dup_or_null(pg->input, &failed);
		if (failed)
			rec_clear(r);
		return failed ? -1 : 0;
	}
	r->input = dup_or_null(pg->input, &failed);
	r->etag = dup_or_null(pg->etag, &failed);
	r->last_modified = dup_or_null(pg->last_modified, &failed);
	r->next_url = dup_or_null(pg->next_url, &failed);
	r->fetched = pg->fetched;
	r->content = pg->content;
	/* Keys and hashes matter only with content (a record without content
	 * keeps the stored ones). */
	if (pg->content && pg->n_keys > 0) {
		r->keys = calloc(pg->n_keys, sizeof *r->keys);
		r->hashes = malloc(pg->n_keys * sizeof *r->hashes);
		if (!r->keys || !r->hashes)
			failed = true;
		else {
			r->n_keys = pg->n_keys;
			memcpy(r->hashes, pg->hashes, pg->n_keys * sizeof *r->hashes);
			for (size_t i = 0; i < pg->n_keys; i++)
				r->keys[i] = dup_or_null(pg->keys[i] ? pg->keys[i] : "", &failed);
		}
	}
	if (pg->fields) {
		if (!(r->fields = malloc(pg->fields_len ? pg->fields_len : 1)))
			failed = true;
		else {
			memcpy(r->fields, pg->fields, pg->fields_len);
			r->fields_len = pg->fields_len;
		}
	}
	if (failed) {
		rec_clear(r);
		return -1;
	}
	return 0;
}

void store_page_recs_free(struct store_page_rec *recs, size_t n)
{
	for (size_t i = 0; recs && i < n; i++)
		rec_clear(&recs[i]);
	free(recs);
}

/* --- the write ---------------------------------------------------------- */

/* The batch's reach first: one row of raced_reached holding every
 * record's url ($15) and every input a record completed ($16), the
 * record of "reached in import N" that the removals, the clean-up, the
 * links and a resume read (docs/architecture.md, "Import state across
 * runs").  A page row is written only for records that change it (not
 * reached_only).
 *
 * Those are one row per url, made so by store_pages_encode (the later
 * record of a url wins), so one INSERT ... ON CONFLICT writes them all:
 * each row finds its stored row through the primary key's arbiter probe,
 * never through a plan.  (A join or `url = ANY` depends on the planner:
 * the statement is prepared once per connection, often while raced_pages
 * is empty or has no statistics, and that plan scanned every row of the
 * stage for each batch, an import of 40,000 athlete pages taking minutes
 * in PostgreSQL: docs/performance.md, "Incremental re-imports".)
 *
 * A row with content replaces the stored one (keys and hashes only when
 * they differ, so an unchanged page's keys are not copied).  A row
 * without content (a 304 with new validators, a page of a tainted input)
 * changes only seen_import, fetched_at (fetched) and the validators
 * given; its proposed row says so by seen_import -1 and an epoch
 * fetched_at (not fetched).  If no row is stored, the proposed one stays
 * as a placeholder: seen_import < 0, no keys, no validators, and every
 * read of raced_pages takes it as no row (store_pages_inputs_sql, the
 * removals' join); a finish that decides removals deletes it.  A
 * placeholder meeting a row with content becomes that page; meeting
 * another without content it stays a placeholder.  A row without content
 * may bring fields: the values of the stored keys' rows as read back
 * (import.c, fields_backfill), written into a stored page row of its
 * page_no (a placeholder's are never read). */
#define PAGE_RECORD "excluded.seen_import >= 0"
const char store_pages_write_sql[] =
	"WITH reach AS (INSERT INTO raced_reached (import_id, stage, urls, done)"
	"  VALUES ($2::bigint, $1::text, $15::text[], $16::text[]))"
	" INSERT INTO raced_pages AS p (stage, url, input, page_no, etag, last_modified, next_url,"
	"  keys, hashes, fetched_at, seen_import, fields)"
	" SELECT $1::text, r.url, r.input, r.page_no, r.etag, r.lm,"
	"  CASE WHEN r.content THEN r.next END,"
	"  CASE WHEN r.content THEN coalesce(($13::text[])[r.off + 1 : r.off + r.n], '{}')"
	"   ELSE '{}'::text[] END,"
	"  CASE WHEN r.content THEN r.hashes ELSE '\\x'::bytea END,"
	"  CASE WHEN r.content OR r.fetched THEN now() ELSE 'epoch'::timestamptz END,"
	"  CASE WHEN r.content THEN $2::bigint ELSE -1 END,"
	"  r.fields"
	" FROM unnest($3::text[], $4::text[], $5::integer[], $6::boolean[], $7::boolean[],"
	"  $8::text[], $9::text[], $10::text[], $11::integer[], $12::integer[], $14::bytea[],"
	"  $17::bytea[])"
	"  AS r(url, input, page_no, fetched, content, etag, lm, next, off, n, hashes, fields)"
	" ON CONFLICT (stage, url) DO UPDATE SET"
	"  input = CASE WHEN " PAGE_RECORD " THEN excluded.input ELSE p.input END,"
	"  page_no = CASE WHEN " PAGE_RECORD " THEN excluded.page_no ELSE p.page_no END,"
	"  etag = CASE WHEN " PAGE_RECORD " THEN excluded.etag ELSE coalesce(excluded.etag, p.etag) END,"
	"  last_modified = CASE WHEN " PAGE_RECORD " THEN excluded.last_modified"
	"   ELSE coalesce(excluded.last_modified, p.last_modified) END,"
	"  next_url = CASE WHEN " PAGE_RECORD " THEN excluded.next_url ELSE p.next_url END,"
	"  keys = CASE WHEN " PAGE_RECORD " AND p.keys IS DISTINCT FROM excluded.keys"
	"   THEN excluded.keys ELSE p.keys END,"
	"  hashes = CASE WHEN " PAGE_RECORD " AND p.hashes IS DISTINCT FROM excluded.hashes"
	"   THEN excluded.hashes ELSE p.hashes END,"
	"  fields = CASE WHEN " PAGE_RECORD " AND p.fields IS DISTINCT FROM excluded.fields"
	"   THEN excluded.fields WHEN NOT " PAGE_RECORD " AND excluded.fields IS NOT NULL"
	"   AND p.seen_import >= 0 AND p.page_no = excluded.page_no THEN excluded.fields"
	"   ELSE p.fields END,"
	"  fetched_at = CASE WHEN " PAGE_RECORD " OR excluded.fetched_at > 'epoch'::timestamptz"
	"   THEN excluded.fetched_at ELSE p.fetched_at END,"
	"  seen_import = CASE WHEN " PAGE_RECORD " THEN excluded.seen_import"
	"   WHEN p.seen_import < 0 THEN p.seen_import ELSE $2::bigint END";

/* A batch whose records all are reached_only writes no page row: its
 * reach alone, without the upsert's executor set-up (an unchanged
 * re-import's batches are nearly all such: docs/performance.md, "The
 * unchanged re-import's transactions").  $1 the stage, $2 the import,
 * $3 the urls, $4 the inputs completed. */
const char store_reach_write_sql[] =
	"INSERT INTO raced_reached (import_id, stage, urls, done)"
	" VALUES ($2::bigint, $1::text, $3::text[], $4::text[])";

enum {
	P_STAGE, P_IMPORT, P_URL, P_INPUT, P_PAGE_NO, P_FETCHED, P_CONTENT, P_ETAG, P_LM, P_NEXT,
	P_OFF, P_NKEYS, P_KEYS, P_HASHES, P_REACHED, P_DONE, P_FIELDS,
};

static int rec_cmp(const void *a, const void *b)
{
	const struct store_page_rec *const *x = a, *const *y = b;
	int c = strcmp((*x)->url, (*y)->url);
	if (c)
		return c;
	return *x < *y ? -1 : *x > *y;   /* the batch's order: the array's */
}

/* The page rows of n records: those not reached_only, one per url (the
 * later record), sorted by url so the statement's inserts take the
 * primary key's order.  *n_rows set; NULL when out of memory. */
static const struct store_page_rec **page_rows(const struct store_page_rec *recs, size_t n,
                                               size_t *n_rows)
{
	const struct store_page_rec **rows = calloc(n + 1, sizeof *rows);
	if (!rows)
		return NULL;
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!recs[i].reached_only)
			rows[m++] = &recs[i];
	qsort(rows, m, sizeof *rows, rec_cmp);
	size_t k = 0;
	for (size_t i = 0; i < m; i++) {
		if (i + 1 < m && strcmp(rows[i]->url, rows[i + 1]->url) == 0)
			continue; /* a later record of the url follows */
		rows[k++] = rows[i];
	}
	*n_rows = k;
	return rows;
}

static void array_int4(struct store_buf *b, uint32_t v)
{
	store_buf_be32(b, 4);
	store_buf_be32(b, v);
}

static void array_bool(struct store_buf *b, bool v)
{
	char c = v ? 1 : 0;
	store_buf_be32(b, 1);
	store_buf_add(b, &c, 1);
}

static void array_text(struct store_buf *b, const char *v)
{
	store_buf_array_bytes(b, v, v ? strlen(v) : 0);
}

static bool any_null(const struct store_page_rec *const *rows, size_t n, size_t field)
{
	for (size_t i = 0; i < n; i++) {
		const struct store_page_rec *r = rows[i];
		const char *v = field == P_ETAG ? r->etag : field == P_LM ? r->last_modified
		                : r->next_url;
		if (!v)
			return true;
	}
	return false;
}

/* Whether the reach's urls list r's url: not when r completes an input
 * whose first page it is (url == input), which done lists; every reader
 * takes urls || done as the pages reached (an input done was reached at
 * its first page).  An unchanged re-import's records are nearly all such
 * (an athlete's one page): half the reach's elements, each an
 * array_recv in the backend. */
static bool reach_lists(const struct store_page_rec *r)
{
	return !(r->input_done && r->input && strcmp(r->url, r->input) == 0);
}

static size_t reach_count(const struct store_page_rec *recs, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += reach_lists(&recs[i]);
	return k;
}

bool store_pages_reach_only(const struct store_page_rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!recs[i].reached_only)
			return false;
	return true;
}

int store_reach_encode(const struct store_page_rec *recs, size_t n, const char *stage,
                       int64_t import_id, struct store_pages_params *out)
{
	static const int binary[STORE_REACH_PARAMS] = { 1, 1, 1, 1 };
	struct store_buf b[STORE_REACH_PARAMS] = { { 0 } };
	size_t n_done = 0;
	for (size_t i = 0; i < n; i++)
		n_done += recs[i].input_done;
	store_buf_add(&b[0], stage, strlen(stage));
	store_buf_be64(&b[1], (uint64_t)import_id);
	store_buf_array_header(&b[2], PG_TYPE_TEXT, reach_count(recs, n), false);
	store_buf_array_header(&b[3], PG_TYPE_TEXT, n_done, false);
	for (size_t i = 0; i < n; i++) {
		if (reach_lists(&recs[i]))
			array_text(&b[2], recs[i].url);
		if (recs[i].input_done)
			array_text(&b[3], recs[i].input);
	}
	bool failed = false;
	for (size_t k = 0; k < STORE_REACH_PARAMS; k++)
		failed |= b[k].failed;
	for (size_t k = 0; k < STORE_PAGES_PARAMS; k++) {
		out->values[k] = NULL;
		out->lengths[k] = 0;
		if (k >= STORE_REACH_PARAMS)
			continue;
		if (failed) {
			free(b[k].p);
			continue;
		}
		out->values[k] = b[k].p;
		out->lengths[k] = (int)b[k].len;
	}
	if (failed)
		return -1;
	out->formats = binary;
	return 0;
}

int store_pages_encode(const struct store_page_rec *recs, size_t n, const char *stage,
                       int64_t import_id, struct store_pages_params *out)
{
	static const int binary[STORE_PAGES_PARAMS] = {
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	};
	struct store_buf b[STORE_PAGES_PARAMS] = { { 0 } };
	size_t n_rows = 0, n_keys = 0, n_done = 0;
	const struct store_page_rec **rows = page_rows(recs, n, &n_rows);
	if (!rows)
		return -1;
	for (size_t i = 0; i < n_rows; i++)
		n_keys += rows[i]->n_keys;
	for (size_t i = 0; i < n; i++)
		n_done += recs[i].input_done;
	store_buf_add(&b[P_STAGE], stage, strlen(stage));
	store_buf_be64(&b[P_IMPORT], (uint64_t)import_id);
	store_buf_array_header(&b[P_URL], PG_TYPE_TEXT, n_rows, false);
	store_buf_array_header(&b[P_INPUT], PG_TYPE_TEXT, n_rows, false);
	store_buf_array_header(&b[P_PAGE_NO], PG_TYPE_INT4, n_rows, false);
	store_buf_array_header(&b[P_FETCHED], PG_TYPE_BOOL, n_rows, false);
	store_buf_array_header(&b[P_CONTENT], PG_TYPE_BOOL, n_rows, false);
	store_buf_array_header(&b[P_ETAG], PG_TYPE_TEXT, n_rows, any_null(rows, n_rows, P_ETAG));
	store_buf_array_header(&b[P_LM], PG_TYPE_TEXT, n_rows, any_null(rows, n_rows, P_LM));
	store_buf_array_header(&b[P_NEXT], PG_TYPE_TEXT, n_rows, any_null(rows, n_rows, P_NEXT));
	store_buf_array_header(&b[P_OFF], PG_TYPE_INT4, n_rows, false);
	store_buf_array_header(&b[P_NKEYS], PG_TYPE_INT4, n_rows, false);
	store_buf_array_header(&b[P_KEYS], PG_TYPE_TEXT, n_keys, false);
	store_buf_array_header(&b[P_HASHES], PG_TYPE_BYTEA, n_rows, false);
	store_buf_array_header(&b[P_REACHED], PG_TYPE_TEXT, reach_count(recs, n), false);
	store_buf_array_header(&b[P_DONE], PG_TYPE_TEXT, n_done, false);
	bool no_fields = false;
	for (size_t i = 0; i < n_rows; i++)
		no_fields |= !rows[i]->fields;
	store_buf_array_header(&b[P_FIELDS], PG_TYPE_BYTEA, n_rows, no_fields);
	for (size_t i = 0; i < n; i++) {
		if (reach_lists(&recs[i]))
			array_text(&b[P_REACHED], recs[i].url);
		if (recs[i].input_done)
			array_text(&b[P_DONE], recs[i].input);
	}
	size_t off = 0;
	if (n_keys > INT32_MAX)
		b[P_OFF].failed = true;
	for (size_t i = 0; i < n_rows; i++) {
		const struct store_page_rec *r = rows[i];
		size_t nk = r->n_keys;
		array_text(&b[P_URL], r->url);
		array_text(&b[P_INPUT], r->input);
		array_int4(&b[P_PAGE_NO], r->page_no);
		array_bool(&b[P_FETCHED], r->fetched);
		array_bool(&b[P_CONTENT], r->content);
		array_text(&b[P_ETAG], r->etag);
		array_text(&b[P_LM], r->last_modified);
		array_text(&b[P_NEXT], r->next_url);
		array_int4(&b[P_OFF], (uint32_t)off);
		if (nk > INT32_MAX)
			b[P_NKEYS].failed = true;
		array_int4(&b[P_NKEYS], (uint32_t)nk);
		/* the hashes big-endian, 8 bytes each */
		if (nk > INT32_MAX / 8)
			b[P_HASHES].failed = true;
		store_buf_be32(&b[P_HASHES], (uint32_t)(nk * 8));
		for (size_t k = 0; k < nk; k++) {
			array_text(&b[P_KEYS], r->keys[k]);
			store_buf_be64(&b[P_HASHES], r->hashes[k]);
		}
		store_buf_array_bytes(&b[P_FIELDS], r->fields, r->fields_len);   /* or NULL */
		off += nk;
	}
	free(rows);
	bool failed = false;
	for (size_t k = 0; k < STORE_PAGES_PARAMS; k++)
		failed |= b[k].failed;
	for (size_t k = 0; k < STORE_PAGES_PARAMS; k++) {
		if (failed) {
			free(b[k].p);
			out->values[k] = NULL;
			continue;
		}
		/* an empty stage cannot happen (names are checked); a buffer
		 * never grown is NULL, and libpq takes NULL as SQL NULL */
		out->values[k] = b[k].p;
		out->lengths[k] = (int)b[k].len;
	}
	if (failed)
		return -1;
	out->formats = binary;
	return 0;
}

void store_pages_params_free(struct store_pages_params *p)
{
	for (size_t k = 0; k < STORE_PAGES_PARAMS; k++) {
		free(p->values[k]);
		p->values[k] = NULL;
	}
}

/* --- reading an input's pages ------------------------------------------- */

/* Each input's rows through the (stage, input) index: the LATERAL
 * subquery (OFFSET 0 keeps it one) is run per input with both columns
 * bound, so no plan can turn the read into a scan of the stage's pages,
 * whatever raced_pages' statistics say.  Placeholders (seen_import < 0)
 * are no rows. */
const char store_pages_inputs_sql[] =
	"SELECT i.o, p.url, p.page_no, p.etag, p.last_modified, p.next_url, p.keys, p.hashes, p.ms,"
	" p.seen_import, p.done_import, encode(p.fields, 'hex')"
	" FROM unnest($2::text[]) WITH ORDINALITY AS i(input, o) CROSS JOIN LATERAL ("
	"  SELECT q.url, q.page_no, q.etag, q.last_modified, q.next_url,"
	"   array_to_json(q.keys)::text AS keys, encode(q.hashes, 'hex') AS hashes,"
	"   (extract(epoch FROM q.fetched_at) * 1000)::bigint AS ms, q.seen_import,"
	"   coalesce(q.done_import, 0) AS done_import, q.fields"
	"  FROM raced_pages q WHERE q.stage = $1::text AND q.input = i.input AND q.seen_import >= 0"
	"  OFFSET 0) p"
	" ORDER BY i.o, p.page_no, p.url";

static void page_state_clear(struct store_page_state *p)
{
	free(p->url);
	free(p->etag);
	free(p->last_modified);
	free(p->next_url);
	for (size_t i = 0; p->keys && i < p->n_keys; i++)
		free(p->keys[i]);
	free(p->keys);
	free(p->hashes);
	free(p->fields);
}

void store_input_state_free(struct store_input_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_pages; i++)
		page_state_clear(&st->pages[i]);
	free(st->pages);
	free(st);
}

static char *field(const PGresult *res, int row, int col, bool *failed)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return dup_or_null(PQgetvalue(res, row, col), failed);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int store_pages_keys_parse(struct store_page_state *p, const char *keys_json, const char *hex,
                           char *err)
{
	json_error_t je;
	json_t *a = json_loads(keys_json, 0, &je);
	if (!a || !json_is_array(a)) {
		json_decref(a);
		return err_set(err, "raced_pages.keys of %s unreadable: %s", p->url,
		               a ? "not an array" : je.text);
	}
	size_t n = json_array_size(a);
	size_t hex_len = strlen(hex);
	p->keys = calloc(n ? n : 1, sizeof *p->keys);
	p->hashes = calloc(n ? n : 1, sizeof *p->hashes);
	if (!p->keys || !p->hashes) {
		json_decref(a);
		return err_set(err, "out of memory reading the state of %s", p->url);
	}
	p->n_keys = n;
	bool failed = false;
	for (size_t i = 0; i < n; i++) {
		const char *k = json_string_value(json_array_get(a, i));
		p->keys[i] = dup_or_null(k ? k : "", &failed);
	}
	json_decref(a);
	if (failed)
		return err_set(err, "out of memory reading the state of %s", p->url);
	/* A hashes column that does not match the keys (written by hand) leaves
	 * the hashes 0: the page's items then count as changed, and are written. */
	if (hex_len != n * 16)
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = 0;
		for (size_t d = 0; d < 16; d++) {
			int v = hexval(hex[i * 16 + d]);
			if (v < 0)
				return err_set(err, "raced_pages.hashes of %s unreadable", p->url);
			h = h << 4 | (uint64_t)v;
		}
		p->hashes[i] = h;
	}
	return 0;
}

/* A page's stored fields from their hex: as if none when not hex (read
 * back then).  -1 when out of memory. */
static int fields_parse(struct store_page_state *p, const char *hex)
{
	size_t n = strlen(hex) / 2;
	if (strlen(hex) % 2)
		return 0;
	unsigned char *f = malloc(n ? n : 1);
	if (!f)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(f);
			return 0;
		}
		f[i] = (unsigned char)(hi << 4 | lo);
	}
	p->fields = f;
	p->fields_len = n;
	return 0;
}

/* Rows [from, to) of res (columns from 1: url ... done_import, fields) as one
 * input's state.  Returns 0, or -1 with err set. */
static int parse_state(const PGresult *res, int from, int to, struct store_input_state **out,
                       char *err)
{
	*out = NULL;
	int n = to - from;
	struct store_input_state *st = calloc(1, sizeof *st);
	if (!st || (n > 0 && !(st->pages = calloc((size_t)n, sizeof *st->pages)))) {
		free(st);
		return err_set(err, "out of memory reading an input's state");
	}
	for (int i = from; i < to; i++) {
		struct store_page_state *p = &st->pages[i - from];
		bool failed = false;
		st->n_pages++;
		p->url = field(res, i, 1, &failed);
		p->page_no = (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10);
		p->etag = field(res, i, 3, &failed);
		p->last_modified = field(res, i, 4, &failed);
		p->next_url = field(res, i, 5, &failed);
		p->fetched_at_ms = strtoll(PQgetvalue(res, i, 8), NULL, 10);
		p->seen_import = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		p->done_import = strtoll(PQgetvalue(res, i, 10), NULL, 10);
		if (failed || !p->url) {
			store_input_state_free(st);
			return err_set(err, "out of memory reading an input's state");
		}
		if (store_pages_keys_parse(p, PQgetvalue(res, i, 6), PQgetvalue(res, i, 7), err) != 0) {
			store_input_state_free(st);
			return -1;
		}
		if (!PQgetisnull(res, i, 11) && fields_parse(p, PQgetvalue(res, i, 11)) != 0) {
			store_input_state_free(st);
			return err_set(err, "out of memory reading an input's state");
		}
	}
	*out = st;
	return 0;
}

int store_pages_parse_inputs(const PGresult *res, size_t n, struct store_input_state **out,
                             char *err)
{
	int rows = res ? PQntuples(res) : 0;
	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (res && PQnfields(res) != 12 && rows > 0)
		return err_set(err, "reading raced_pages: unexpected result");
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		/* the rows of input i (ordinality i + 1) follow those of i - 1 */
		int from = r;
		while (r < rows && strtoull(PQgetvalue(res, r, 0), NULL, 10) == i + 1)
			r++;
		if (parse_state(res, from, r, &out[i], err) != 0) {
			for (size_t k = 0; k < i; k++) {
				store_input_state_free(out[k]);
				out[k] = NULL;
			}
			return -1;
		}
	}
	return 0;
}

/* --- reading stored rows ------------------------------------------------ */

int store_pages_encode_keys(const char *const *keys, size_t n, char **value, int *length)
{
	struct store_buf b = { 0 };
	store_buf_array_header(&b, PG_TYPE_TEXT, n, false);
	for (size_t i = 0; i < n; i++)
		array_text(&b, keys[i] ? keys[i] : "");
	if (b.failed) {
		free(b.p);
		return -1;
	}
	*value = b.p;
	*length = (int)b.len;
	return 0;
}

void store_items_free(struct store_items *it)
{
	if (!it)
		return;
	for (size_t i = 0; i < it->n; i++) {
		free(it->items[i].key);
		free(it->items[i].parent_key);
		free(it->items[i].payload);
	}
	free(it->items);
	free(it);
}

/* An answer of n rows to fill, or NULL when out of memory. */
static struct store_items *items_new(int n)
{
	struct store_items *it = calloc(1, sizeof *it);
	if (it && n > 0 && !(it->items = calloc((size_t)n, sizeof *it->items))) {
		free(it);
		return NULL;
	}
	return it;
}

int store_pages_parse_items(const PGresult *res, struct store_items **out, char *err)
{
	*out = NULL;
	int n = res ? PQntuples(res) : 0;
	struct store_items *it = items_new(n);
	if (!it)
		return err_set(err, "out of memory reading stored rows");
	for (int i = 0; i < n; i++) {
		struct store_item *x = &it->items[i];
		bool failed = false;
		it->n++;
		x->key = field(res, i, 0, &failed);
		x->parent_key = field(res, i, 1, &failed);
		x->payload = field(res, i, 2, &failed);
		if (failed || !x->key || !x->payload) {
			store_items_free(it);
			return err_set(err, "out of memory reading stored rows");
		}
		x->payload_len = (size_t)PQgetlength(res, i, 2);
	}
	*out = it;
	return 0;
}

int store_pages_parse_narrow(const PGresult *res, size_t n_fields, struct store_items **out,
                             char *err)
{
	*out = NULL;
	int n = res ? PQntuples(res) : 0;
	struct store_items *it = items_new(n);
	if (!it)
		return err_set(err, "out of memory reading stored rows");
	for (int i = 0; i < n; i++) {
		struct store_item *x = &it->items[i];
		bool failed = false;
		it->n++;
		x->key = field(res, i, 0, &failed);
		x->narrow = strcmp(PQgetvalue(res, i, 1), "t") == 0;
		if (!x->narrow) {
			x->payload = field(res, i, 2, &failed);
			x->payload_len = x->payload ? (size_t)PQgetlength(res, i, 2) : 0;
		} else {
			/* the values packed, NUL after each (none is NULL when narrow) */
			size_t len = 0;
			for (size_t f = 0; f < n_fields; f++)
				len += (size_t)PQgetlength(res, i, 3 + (int)f) + 1;
			/* and a NUL after all, as after a payload's text */
			if ((x->payload = malloc(len + 1))) {
				char *p = x->payload;
				for (size_t f = 0; f < n_fields; f++) {
					size_t l = (size_t)PQgetlength(res, i, 3 + (int)f);
					memcpy(p, PQgetvalue(res, i, 3 + (int)f), l);
					p[l] = '\0';
					p += l + 1;
				}
				*p = '\0';
				x->payload_len = len;
			}
		}
		if (failed || !x->key || !x->payload) {
			store_items_free(it);
			return err_set(err, "out of memory reading stored rows");
		}
	}
	*out = it;
	return 0;
}

/* --- read-backs by parent (store.c, parent_done) --- */

/* A slot of a key in a table of 2^bits slots (open addressing). */
static size_t key_slot(const char *key, unsigned bits)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h >> (64 - bits));
}

int store_pages_rows_in_order(struct store_items *it, const char *const *keys, size_t n_keys,
                              struct store_items **out)
{
	unsigned bits = 4;
	while (((size_t)1 << bits) < 2 * it->n + 2)
		bits++;
	size_t cap = (size_t)1 << bits;
	size_t *slot = malloc(cap * sizeof *slot);
	bool *used = calloc(it->n ? it->n : 1, sizeof *used);
	struct store_items *o = calloc(1, sizeof *o);
	int rc = slot && used && o &&
	         (o->items = calloc(n_keys ? n_keys : 1, sizeof *o->items)) ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < cap; i++)
		slot[i] = SIZE_MAX;
	for (size_t r = 0; rc == 0 && r < it->n; r++) {
		size_t i = key_slot(it->items[r].key, bits);
		while (slot[i] != SIZE_MAX)
			i = (i + 1) & (cap - 1);
		slot[i] = r;
	}
	for (size_t k = 0; rc == 0 && k < n_keys; k++) {
		size_t i = key_slot(keys[k], bits), r = SIZE_MAX;
		for (; slot[i] != SIZE_MAX; i = (i + 1) & (cap - 1))
			if (strcmp(it->items[slot[i]].key, keys[k]) == 0) {
				r = slot[i];
				break;
			}
		if (r == SIZE_MAX) {
			rc = 1;
			break;
		}
		struct store_item *x = &it->items[r], *y = &o->items[o->n];
		if (!used[r]) {
			/* moved: the row answers its first key */
			*y = *x;
			used[r] = true;
		} else {
			/* a key asked twice: a copy, as a read by key answers it */
			*y = (struct store_item){ .key = strdup(x->key), .payload = malloc(x->payload_len + 1),
			                          .payload_len = x->payload_len, .narrow = x->narrow };
			if (y->payload)
				memcpy(y->payload, x->payload, x->payload_len + 1);
			if (!y->key || !y->payload) {
				free(y->key);
				free(y->payload);
				rc = -1;
				break;
			}
		}
		o->n++;
	}
	/* the rows moved are o's (freed with it on failure); the rest go */
	for (size_t r = 0; r < it->n; r++)
		if (!used || !used[r]) {
			free(it->items[r].key);
			free(it->items[r].parent_key);
			free(it->items[r].payload);
		}
	it->n = 0;
	free(slot);
	free(used);
	if (rc != 0) {
		store_items_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

/* --- state of emptied tables -------------------------------------------- */

#define ORPHAN_PART_FMT \
	"SELECT '%s'::text AS stage, %zu AS ord WHERE NOT EXISTS (SELECT 1 FROM \"%s\")"
#define ORPHAN_FMT \
	"WITH e AS (%s)," \
	" d AS (DELETE FROM raced_pages p USING e WHERE p.stage = e.stage RETURNING p.stage)" \
	" SELECT coalesce(json_agg(e.stage ORDER BY e.ord), '[]')::text FROM e" \
	" WHERE e.stage IN (SELECT d.stage FROM d)"

char *store_pages_orphan_sql(const char *const *names, size_t n)
{
	if (n == 0)
		return strdup("SELECT '[]'");
	char *parts = strdup("");
	for (size_t k = 0; parts && k < n; k++) {
		char *next = NULL;
		if (asprintf(&next, "%s%s" ORPHAN_PART_FMT, parts, k ? " UNION ALL " : "", names[k], k,
		             names[k]) < 0)
			next = NULL;
		free(parts);
		parts = next;
	}
	char *sql = NULL;
	if (parts && asprintf(&sql, ORPHAN_FMT, parts) < 0)
		sql = NULL;
	free(parts);
	return sql;
}
