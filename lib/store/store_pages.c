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
	memset(r, 0, sizeof *r);
}

int store_page_rec_set(struct store_page_rec *r, const struct store_page *pg)
{
	bool failed = false;
	memset(r, 0, sizeof *r);
	r->url = dup_or_null(pg->url, &failed);
	r->input = dup_or_null(pg->input, &failed);
	r->etag = dup_or_null(pg->etag, &failed);
	r->last_modified = dup_or_null(pg->last_modified, &failed);
	r->next_url = dup_or_null(pg->next_url, &failed);
	r->page_no = pg->page_no;
	r->fetched = pg->fetched;
	r->content = pg->content;
	r->input_done = pg->input_done;
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

/* One record per url (the later wins: DISTINCT ON over the ordinality,
 * descending), each record's keys sliced out of the flattened $13 by the
 * running sum of the counts $12.  `done`: the record's url is the input of
 * a record that completes its input.
 * The two UPDATEs name their urls as `url = ANY (ARRAY(...))`, an index
 * condition on the primary key, and not only as a join or IN: the plan is
 * prepared once per connection, while raced_pages has no statistics (a
 * new table, one import), and the planner then joined by scanning every
 * row of the stage for each batch; an import of 35,000 athlete pages took
 * minutes in PostgreSQL (docs/performance.md, "Incremental re-imports"). */
const char store_pages_write_sql[] =
	"WITH v AS ("
	" SELECT r.*, (sum(r.n) OVER (ORDER BY r.o) - r.n)::integer AS off"
	" FROM unnest($3::text[], $4::text[], $5::integer[], $6::boolean[], $7::boolean[],"
	"  $8::boolean[], $9::text[], $10::text[], $11::text[], $12::integer[], $14::bytea[])"
	"  WITH ORDINALITY AS r(url, input, page_no, fetched, content, done, etag, lm, next, n,"
	"  hashes, o)),"
	" u AS ("
	" SELECT DISTINCT ON (v.url) v.url, v.input, v.page_no, v.fetched, v.content, v.etag, v.lm,"
	"  v.next, coalesce(($13::text[])[v.off + 1 : v.off + v.n], '{}') AS keys, v.hashes,"
	"  v.url IN (SELECT d.input FROM v d WHERE d.done) AS done"
	" FROM v ORDER BY v.url, v.o DESC),"
	" kept AS ("
	" UPDATE raced_pages p SET seen_import = $2::bigint,"
	"  fetched_at = CASE WHEN u.fetched THEN now() ELSE p.fetched_at END,"
	"  etag = coalesce(u.etag, p.etag), last_modified = coalesce(u.lm, p.last_modified),"
	"  done_import = CASE WHEN u.done THEN $2::bigint ELSE p.done_import END"
	" FROM u WHERE NOT u.content AND p.stage = $1::text AND p.url = u.url"
	"  AND p.url = ANY (ARRAY(SELECT u2.url FROM u u2 WHERE NOT u2.content)) RETURNING 1),"
	" checked AS ("
	" UPDATE raced_pages p SET done_import = $2::bigint"
	" WHERE p.stage = $1::text AND p.url = ANY (ARRAY(SELECT d.input FROM v d WHERE d.done))"
	"  AND p.url NOT IN (SELECT u.url FROM u) RETURNING 1)"
	" INSERT INTO raced_pages AS p (stage, url, input, page_no, etag, last_modified, next_url,"
	"  keys, hashes, fetched_at, seen_import, done_import)"
	" SELECT $1::text, u.url, u.input, u.page_no, u.etag, u.lm, u.next, u.keys, u.hashes, now(),"
	"  $2::bigint, CASE WHEN u.done THEN $2::bigint END"
	" FROM u WHERE u.content"
	" ON CONFLICT (stage, url) DO UPDATE SET input = excluded.input, page_no = excluded.page_no,"
	"  etag = excluded.etag, last_modified = excluded.last_modified,"
	"  next_url = excluded.next_url,"
	"  keys = CASE WHEN p.keys IS DISTINCT FROM excluded.keys THEN excluded.keys ELSE p.keys END,"
	"  hashes = CASE WHEN p.hashes IS DISTINCT FROM excluded.hashes"
	"   THEN excluded.hashes ELSE p.hashes END,"
	"  fetched_at = excluded.fetched_at, seen_import = excluded.seen_import,"
	"  done_import = coalesce(excluded.done_import, p.done_import)";

enum {
	P_STAGE, P_IMPORT, P_URL, P_INPUT, P_PAGE_NO, P_FETCHED, P_CONTENT, P_DONE, P_ETAG,
	P_LM, P_NEXT, P_NKEYS, P_KEYS, P_HASHES,
};

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

static bool any_null(const struct store_page_rec *recs, size_t n, size_t field)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = field == P_ETAG ? recs[i].etag :
		                field == P_LM ? recs[i].last_modified : recs[i].next_url;
		if (!v)
			return true;
	}
	return false;
}

int store_pages_encode(const struct store_page_rec *recs, size_t n, const char *stage,
                       int64_t import_id, struct store_pages_params *out)
{
	static const int binary[STORE_PAGES_PARAMS] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	struct store_buf b[STORE_PAGES_PARAMS] = { { 0 } };
	size_t n_keys = 0;
	for (size_t i = 0; i < n; i++)
		n_keys += recs[i].n_keys;
	store_buf_add(&b[P_STAGE], stage, strlen(stage));
	store_buf_be64(&b[P_IMPORT], (uint64_t)import_id);
	store_buf_array_header(&b[P_URL], PG_TYPE_TEXT, n, false);
	store_buf_array_header(&b[P_INPUT], PG_TYPE_TEXT, n, false);
	store_buf_array_header(&b[P_PAGE_NO], PG_TYPE_INT4, n, false);
	store_buf_array_header(&b[P_FETCHED], PG_TYPE_BOOL, n, false);
	store_buf_array_header(&b[P_CONTENT], PG_TYPE_BOOL, n, false);
	store_buf_array_header(&b[P_DONE], PG_TYPE_BOOL, n, false);
	store_buf_array_header(&b[P_ETAG], PG_TYPE_TEXT, n, any_null(recs, n, P_ETAG));
	store_buf_array_header(&b[P_LM], PG_TYPE_TEXT, n, any_null(recs, n, P_LM));
	store_buf_array_header(&b[P_NEXT], PG_TYPE_TEXT, n, any_null(recs, n, P_NEXT));
	store_buf_array_header(&b[P_NKEYS], PG_TYPE_INT4, n, false);
	store_buf_array_header(&b[P_KEYS], PG_TYPE_TEXT, n_keys, false);
	store_buf_array_header(&b[P_HASHES], PG_TYPE_BYTEA, n, false);
	for (size_t i = 0; i < n; i++) {
		const struct store_page_rec *r = &recs[i];
		array_text(&b[P_URL], r->url);
		array_text(&b[P_INPUT], r->input);
		array_int4(&b[P_PAGE_NO], r->page_no);
		array_bool(&b[P_FETCHED], r->fetched);
		array_bool(&b[P_CONTENT], r->content);
		array_bool(&b[P_DONE], r->input_done);
		array_text(&b[P_ETAG], r->etag);
		array_text(&b[P_LM], r->last_modified);
		array_text(&b[P_NEXT], r->next_url);
		if (r->n_keys > INT32_MAX)
			b[P_NKEYS].failed = true;
		array_int4(&b[P_NKEYS], (uint32_t)r->n_keys);
		/* the hashes big-endian, 8 bytes each */
		if (r->n_keys > INT32_MAX / 8)
			b[P_HASHES].failed = true;
		store_buf_be32(&b[P_HASHES], (uint32_t)(r->n_keys * 8));
		for (size_t k = 0; k < r->n_keys; k++) {
			array_text(&b[P_KEYS], r->keys[k]);
			store_buf_be64(&b[P_HASHES], r->hashes[k]);
		}
	}
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

const char store_pages_input_sql[] =
	"SELECT url, page_no, etag, last_modified, next_url, array_to_json(keys)::text,"
	" encode(hashes, 'hex'), (extract(epoch FROM fetched_at) * 1000)::bigint, seen_import,"
	" coalesce(done_import, 0)"
	" FROM raced_pages WHERE stage = $1 AND input = $2 ORDER BY page_no, url";

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

/* Keys (a JSON array of strings) and hashes (hex, 16 digits each) of one
 * row into p.  Returns 0, or -1 with err set. */
static int page_keys(struct store_page_state *p, const char *keys_json, const char *hex,
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

int store_pages_parse_input(const PGresult *res, struct store_input_state **out, char *err)
{
	*out = NULL;
	struct store_input_state *st = calloc(1, sizeof *st);
	int n = res ? PQntuples(res) : 0;
	if (!st || (n > 0 && !(st->pages = calloc((size_t)n, sizeof *st->pages)))) {
		free(st);
		return err_set(err, "out of memory reading an input's state");
	}
	if (res && PQnfields(res) != 10 && n > 0) {
		store_input_state_free(st);
		return err_set(err, "reading raced_pages: unexpected result");
	}
	for (int i = 0; i < n; i++) {
		struct store_page_state *p = &st->pages[i];
		bool failed = false;
		st->n_pages++;
		p->url = field(res, i, 0, &failed);
		p->page_no = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
		p->etag = field(res, i, 2, &failed);
		p->last_modified = field(res, i, 3, &failed);
		p->next_url = field(res, i, 4, &failed);
		p->fetched_at_ms = strtoll(PQgetvalue(res, i, 7), NULL, 10);
		p->seen_import = strtoll(PQgetvalue(res, i, 8), NULL, 10);
		p->done_import = strtoll(PQgetvalue(res, i, 9), NULL, 10);
		if (failed || !p->url) {
			store_input_state_free(st);
			return err_set(err, "out of memory reading an input's state");
		}
		if (page_keys(p, PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), err) != 0) {
			store_input_state_free(st);
			return -1;
		}
	}
	*out = st;
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

int store_pages_parse_items(const PGresult *res, struct store_items **out, char *err)
{
	*out = NULL;
	struct store_items *it = calloc(1, sizeof *it);
	int n = res ? PQntuples(res) : 0;
	if (!it || (n > 0 && !(it->items = calloc((size_t)n, sizeof *it->items)))) {
		free(it);
		return err_set(err, "out of memory reading stored rows");
	}
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
