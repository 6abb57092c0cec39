/* store_links — see store_links.h. */
#include "store_links.h"

#include "store_pages.h"
#include "store_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINK_CREATE_FMT \
	"CREATE TABLE IF NOT EXISTS \"%s_parents\" (" \
	" parent_key text NOT NULL," \
	" key text NOT NULL," \
	" PRIMARY KEY (parent_key, key))"

/* The other way round, a child's parents (an athlete's entries): the
 * index "<name>_parents_key" on (key, parent_key), made as the stage's
 * parent_key index is (store_schema_index_sql). */

/* The end of both writes below, once want (the parent's links as they
 * should be) and old (its links not in want) are known: old deleted, each
 * found by a probe of the primary key and then by its ctid, and want
 * inserted.  Three %s: the stage's name. */
#define LINK_REPLACE_TAIL \
	" gone AS (DELETE FROM \"%s_parents\" l USING (SELECT d.ctid FROM old CROSS JOIN LATERAL (" \
	"   SELECT l3.ctid FROM \"%s_parents\" l3 WHERE l3.parent_key = old.p AND l3.key = old.key" \
	"   OFFSET 0) d) g WHERE l.ctid = g.ctid)" \
	" INSERT INTO \"%s_parents\" (parent_key, key) SELECT p, k FROM want" \
	" ON CONFLICT DO NOTHING"

/* $1 parents, $2 inputs (text[]).  The import sends a link record only
 * for an input it completed in this import (its checkpoint is in the same
 * batch or an earlier one), so every record is exact: x, the records whose
 * input has a stored page 0 (not made distinct: a sort of the batch by
 * collation, 17 ms of 87 for 700 records, and pages' UNION and want's
 * DISTINCT drop a record sent twice); pages, the input's pages as this
 * import walked them, page 0 then each stored next_url (the walk is what the
 * page rows say after this import's records: a changed page was
 * rewritten, an unchanged one says what it said), UNION stopping a cycle;
 * a page of an older, longer walk is not on it.  want: their keys; old:
 * the parent's links EXCEPT want (a set operation, hashed or sorted: a
 * NOT IN over want cost 45 ms for a batch of 700 records whose links were
 * all there, 64 µs a link); gone deletes those, each found by a probe
 * of the primary key and then by its ctid (a join of the link table with
 * old was planned, under a generic plan, as a scan of the whole link table
 * a batch: 640,521 link rows read for 1,912 links in edges-plan when every
 * link changed).  The DELETE and the INSERT touch
 * disjoint rows, so one statement holds both; neither writes an unchanged
 * link.
 * The statement is prepared once per connection, often while the tables
 * are empty, and that plan is kept.  So every lookup is a LATERAL
 * subquery that cannot be pulled up (OFFSET 0), run once per record or
 * step, and each names two columns of both indexes that could serve it:
 * a page by (stage, input) and by (stage, url), a link by (parent_key),
 * a stale link by (parent_key, key).
 * A join here was planned as a scan of the stage's pages per batch (79 s
 * of a 2,000-race import), and a probe by url alone still took the index
 * on (stage, input) with stage as its only condition
 * (tests/integration/edges_plan.sh bounds the rows read). */
#define LINK_WRITE_FMT \
	"WITH RECURSIVE x AS (SELECT x.p, x.u" \
	"  FROM unnest($1::text[], $2::text[]) AS x(p, u) CROSS JOIN LATERAL (SELECT 1" \
	"   FROM raced_pages f WHERE f.stage = '%s' AND f.input = x.u AND f.url = x.u" \
	"   AND f.seen_import >= 0 OFFSET 0) f)," \
	" pages (p, u, nxt, keys) AS (SELECT x.p, x.u, f.next_url, f.keys FROM x CROSS JOIN LATERAL (" \
	"   SELECT f.next_url, f.keys FROM raced_pages f WHERE f.stage = '%s'" \
	"   AND f.input = x.u AND f.url = x.u AND f.seen_import >= 0 OFFSET 0) f" \
	"  UNION SELECT c.p, c.u, g.next_url, g.keys FROM pages c CROSS JOIN LATERAL (" \
	"   SELECT g.next_url, g.keys FROM raced_pages g WHERE g.stage = '%s'" \
	"   AND g.input = c.u AND g.url = c.nxt AND g.seen_import >= 0 OFFSET 0) g)," \
	" want AS (SELECT DISTINCT c.p, k.k FROM pages c CROSS JOIN LATERAL unnest(c.keys) AS k(k))," \
	" old AS (SELECT x.p, d.key FROM x CROSS JOIN LATERAL (SELECT l2.key" \
	"   FROM \"%s_parents\" l2 WHERE l2.parent_key = x.p OFFSET 0) d" \
	"  EXCEPT SELECT w.p, w.k FROM want w)," \
	LINK_REPLACE_TAIL

/* Records that carry their keys: $1 their parents, $2 and $3 the pairs
 * (parent, key) (text[] each).  The same as the write by URL once want is
 * known, without reading raced_pages: the import made the input's page
 * records, so it knew their keys (a statement per link record's probes of
 * raced_pages cost 37 us a link in a first import).  A parent twice, or a
 * pair twice, is harmless: EXCEPT makes old distinct, and a second insert
 * of a pair in one statement does nothing.  The link table's only lookup
 * is the LATERAL probe by parent_key, as above. */
#define LINK_KEYS_FMT \
	"WITH want AS (SELECT w.p, w.k FROM unnest($2::text[], $3::text[]) AS w(p, k))," \
	" old AS (SELECT x.p, d.key FROM unnest($1::text[]) AS x(p) CROSS JOIN LATERAL (" \
	"   SELECT l2.key FROM \"%s_parents\" l2 WHERE l2.parent_key = x.p OFFSET 0) d" \
	"  EXCEPT SELECT w.p, w.k FROM want w)," \
	LINK_REPLACE_TAIL

/* Records by keys of parents known to have no link (the link table was
 * empty when the run began, and no earlier record of the run had the
 * parent: store.c): $1 and $2 the pairs.  Nothing to delete, so only
 * the insert (ON CONFLICT: a batch sent again whose commit had landed
 * has its pairs there).  The stale-link lookups cost a first import
 * about a third of the write (4 of 13 us a link, measured alone). */
#define LINK_FRESH_FMT \
	"INSERT INTO \"%s_parents\" (parent_key, key)" \
	" SELECT w.p, w.k FROM unnest($1::text[], $2::text[]) AS w(p, k) ON CONFLICT DO NOTHING"
/* The same as a plain INSERT, while no batch of the run met a stored key
 * (store.c, "Rows known new"): ON CONFLICT's check of the primary key
 * before each pair cost a fifth to a third of the insert.  A pair stored
 * after all (a batch sent again whose commit had landed; a record listing
 * a key twice) is refused (23505), and the batch goes again by the one
 * above. */
#define LINK_PLAIN_FMT \
	"INSERT INTO \"%s_parents\" (parent_key, key)" \
	" SELECT w.p, w.k FROM unnest($1::text[], $2::text[]) AS w(p, k)"

/* Finishing a succeeded import $1 (after the parent stage's removals):
 * a parent it marked removed loses its links. */
/* Not when the finish kept the parent's removals: it marked none. */
#define UNLINK_FMT \
	"DELETE FROM \"%s_parents\" l USING \"%s\" p" \
	" WHERE p.key = l.parent_key AND p.removed_import = $1::bigint AND NOT " STORE_KEPT_FMT

#define FORMAT(out, ...) (asprintf(out, __VA_ARGS__) < 0 ? (*(out) = NULL, -1) : 0)

int store_links_sql_init(struct store_table_sql *t)
{
	const char *n = t->name;
	int rc = 0;
	rc |= FORMAT(&t->link_name, "%s_parents", n);
	rc |= FORMAT(&t->link_create_sql, LINK_CREATE_FMT, n);
	if (rc)
		return -1;
	rc |= store_schema_index_sql(&t->link_index_sql, t->link_name, "_key", t->link_name,
	                             "key, parent_key", true);
	rc |= store_schema_index_sql(&t->link_index_finish_sql, t->link_name, "_key", t->link_name,
	                             "key, parent_key", false);
	rc |= FORMAT(&t->link_write_name, "raced_links_%s", n);
	rc |= FORMAT(&t->link_write_sql, LINK_WRITE_FMT, n, n, n, n, n, n, n);
	rc |= FORMAT(&t->link_keys_name, "raced_link_keys_%s", n);
	rc |= FORMAT(&t->link_keys_sql, LINK_KEYS_FMT, n, n, n, n);
	rc |= FORMAT(&t->link_fresh_name, "raced_link_fresh_%s", n);
	rc |= FORMAT(&t->link_fresh_sql, LINK_FRESH_FMT, n);
	rc |= FORMAT(&t->link_plain_name, "raced_link_plain_%s", n);
	rc |= FORMAT(&t->link_plain_sql, LINK_PLAIN_FMT, n);
	rc |= t->parent ? FORMAT(&t->unlink_sql, UNLINK_FMT, n, t->parent, t->parent) : 0;
	return rc ? -1 : 0;
}

int store_link_rec_set(struct store_link_rec *r, const char *parent, const char *input)
{
	r->parent = strdup(parent);
	r->input = strdup(input);
	r->keys = NULL;
	r->n_keys = 0;
	r->fresh = false;
	if (!r->parent || !r->input) {
		free(r->parent);
		free(r->input);
		r->parent = r->input = NULL;
		return -1;
	}
	return 0;
}

int store_link_rec_set_keys(struct store_link_rec *r, const char *parent, const char *keys,
                            size_t len, size_t n)
{
	r->parent = strdup(parent);
	r->input = NULL;
	r->fresh = false;
	r->keys = len > 0 ? malloc(len) : NULL;
	r->n_keys = n;
	if (!r->parent || (len > 0 && !r->keys)) {
		free(r->parent);
		free(r->keys);
		r->parent = r->keys = NULL;
		r->n_keys = 0;
		return -1;
	}
	if (len > 0)
		memcpy(r->keys, keys, len);
	return 0;
}

void store_link_recs_free(struct store_link_rec *recs, size_t n)
{
	for (size_t i = 0; recs && i < n; i++) {
		free(recs[i].parent);
		free(recs[i].input);
		free(recs[i].keys);
	}
	free(recs);
}

void store_links_count(const struct store_link_rec *recs, size_t n, size_t *by_url,
                       size_t *by_keys, size_t *fresh)
{
	*by_url = *by_keys = *fresh = 0;
	for (size_t i = 0; i < n; i++)
		(recs[i].input ? by_url : recs[i].fresh ? fresh : by_keys)[0]++;
}

static const int link_formats[STORE_LINK_KEYS_PARAMS] = { 1, 1, 1 };

/* Encode the n text arrays cols[k] (rows each) into values[k]; the
 * pointer arrays are freed.  -1 (values all NULL) when out of memory. */
static int encode_columns(const char **cols[], size_t n, size_t rows, char **values,
                          int *lengths, const int **formats)
{
	int rc = 0;
	for (size_t k = 0; k < n; k++) {
		values[k] = NULL;
		if (rc == 0 && (!cols[k] || store_pages_encode_keys(cols[k], rows, &values[k],
		                                                    &lengths[k]) != 0))
			rc = -1;
	}
	for (size_t k = 0; k < n; k++)
		free(cols[k]);
	if (rc) {
		for (size_t k = 0; k < n; k++) {
			free(values[k]);
			values[k] = NULL;
		}
		return -1;
	}
	*formats = link_formats;
	return 0;
}

int store_links_encode(const struct store_link_rec *recs, size_t n, char **values, int *lengths,
                       const int **formats)
{
	size_t m, unused, fresh;
	store_links_count(recs, n, &m, &unused, &fresh);
	const char **cols[STORE_LINKS_PARAMS] = { calloc(m + 1, sizeof(char *)),
	                                          calloc(m + 1, sizeof(char *)) };
	for (size_t i = 0, j = 0; cols[0] && cols[1] && i < n; i++) {
		if (!recs[i].input)
			continue;
		cols[0][j] = recs[i].parent;
		cols[1][j++] = recs[i].input;
	}
	return encode_columns(cols, STORE_LINKS_PARAMS, m, values, lengths, formats);
}

int store_links_encode_keys(const struct store_link_rec *recs, size_t n, bool fresh,
                            char **values, int *lengths, const int **formats)
{
	size_t m = 0, pairs = 0;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].input || recs[i].fresh != fresh)
			continue;
		m++;
		pairs += recs[i].n_keys;
	}
	const char **parents = calloc(m + 1, sizeof(char *));
	const char **cols[2] = { calloc(pairs + 1, sizeof(char *)), calloc(pairs + 1, sizeof(char *)) };
	for (size_t i = 0, j = 0, q = 0; parents && cols[0] && cols[1] && i < n; i++) {
		if (recs[i].input || recs[i].fresh != fresh)
			continue;
		parents[j++] = recs[i].parent;
		const char *k = recs[i].keys;
		for (size_t x = 0; x < recs[i].n_keys; x++, q++) {
			cols[0][q] = recs[i].parent;
			cols[1][q] = k;
			k += strlen(k) + 1;
		}
	}
	if (fresh) {   /* the pairs only */
		free(parents);
		return encode_columns(cols, 2, pairs, values, lengths, formats);
	}
	const char **one[1] = { parents };
	if (encode_columns(one, 1, m, values, lengths, formats) != 0) {
		free(cols[0]);
		free(cols[1]);
		return -1;
	}
	if (encode_columns(cols, 2, pairs, values + 1, lengths + 1, formats) != 0) {
		free(values[0]);
		values[0] = NULL;
		return -1;
	}
	return 0;
}
