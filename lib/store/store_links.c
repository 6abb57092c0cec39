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

/* The other way round: a child's parents (an athlete's entries). */
#define LINK_INDEX_FMT \
	"CREATE INDEX IF NOT EXISTS \"%s_parents_key\" ON \"%s_parents\" (key, parent_key)"

/* $1 parents, $2 inputs (text[]), $3 the import.  x: the records whose
 * input this import checkpointed (page 0's done_import); want: the keys
 * its pages reached in this import list; gone: the parent's other links.
 * The DELETE and the INSERT touch disjoint rows, so one statement holds
 * both; neither writes an unchanged link.
 * The statement is prepared while the tables are empty, and its plan is
 * kept: a join the planner may reorder was once planned as "read the
 * stage's pages, filter by url", so every batch read every page row of
 * the stage (quadratic: 62 ms a batch, 79 s in a 2,000-race import).  So
 * each lookup is a LATERAL subquery that cannot be pulled up (LIMIT,
 * OFFSET 0): once per record, through the index on (stage, input) or
 * (parent_key, key); and gone deletes only when old found a link to drop,
 * by both keys (the common case finds none).  The input's first page is
 * found by (stage, input, page_no 0), not by its url (the same string):
 * on (stage, url) a plan may still pick the other index on stage alone,
 * as it did under force_generic_plan (tests/integration/edges_plan.sh). */
#define LINK_WRITE_FMT \
	"WITH x AS (SELECT DISTINCT x.p, x.u" \
	"  FROM unnest($1::text[], $2::text[]) AS x(p, u)" \
	"  CROSS JOIN LATERAL (SELECT 1 FROM raced_pages f WHERE f.stage = '%s'" \
	"   AND f.input = x.u AND f.page_no = 0 AND f.done_import = $3::bigint LIMIT 1) f)," \
	" want AS (SELECT DISTINCT x.p, k.k FROM x" \
	"  CROSS JOIN LATERAL (SELECT r.keys FROM raced_pages r WHERE r.stage = '%s'" \
	"   AND r.input = x.u AND r.seen_import = $3::bigint OFFSET 0) r" \
	"  CROSS JOIN LATERAL unnest(r.keys) AS k(k))," \
	" old AS (SELECT x.p, d.key FROM x CROSS JOIN LATERAL (SELECT l2.key" \
	"   FROM \"%s_parents\" l2 WHERE l2.parent_key = x.p OFFSET 0) d" \
	"  WHERE NOT EXISTS (SELECT 1 FROM want w WHERE w.p = x.p AND w.k = d.key))," \
	" gone AS (DELETE FROM \"%s_parents\" l USING old" \
	"  WHERE EXISTS (SELECT 1 FROM old) AND l.parent_key = old.p AND l.key = old.key)" \
	" INSERT INTO \"%s_parents\" (parent_key, key) SELECT p, k FROM want" \
	" ON CONFLICT DO NOTHING"

/* Finishing a succeeded import $1 (after the parent stage's removals):
 * a parent it marked removed loses its links. */
#define UNLINK_FMT \
	"DELETE FROM \"%s_parents\" l USING \"%s\" p" \
	" WHERE p.key = l.parent_key AND p.removed_import = $1::bigint"

#define FORMAT(out, ...) (asprintf(out, __VA_ARGS__) < 0 ? (*(out) = NULL, -1) : 0)

int store_links_sql_init(struct store_table_sql *t)
{
	const char *n = t->name;
	int rc = 0;
	rc |= FORMAT(&t->link_name, "%s_parents", n);
	rc |= FORMAT(&t->link_create_sql, LINK_CREATE_FMT, n);
	rc |= FORMAT(&t->link_index_sql, LINK_INDEX_FMT, n, n);
	rc |= FORMAT(&t->link_write_name, "raced_links_%s", n);
	rc |= FORMAT(&t->link_write_sql, LINK_WRITE_FMT, n, n, n, n, n);
	rc |= t->parent ? FORMAT(&t->unlink_sql, UNLINK_FMT, n, t->parent) : 0;
	return rc ? -1 : 0;
}

int store_link_rec_set(struct store_link_rec *r, const char *parent, const char *input)
{
	r->parent = strdup(parent);
	r->input = strdup(input);
	if (!r->parent || !r->input) {
		free(r->parent);
		free(r->input);
		r->parent = r->input = NULL;
		return -1;
	}
	return 0;
}

void store_link_recs_free(struct store_link_rec *recs, size_t n)
{
	for (size_t i = 0; recs && i < n; i++) {
		free(recs[i].parent);
		free(recs[i].input);
	}
	free(recs);
}

static const int link_formats[STORE_LINKS_PARAMS] = { 1, 1, 0 };

int store_links_encode(const struct store_link_rec *recs, size_t n, int64_t import_id,
                       char **values, int *lengths, const int **formats)
{
	const char **p = calloc(n, sizeof *p), **u = calloc(n, sizeof *u);
	int rc = p && u ? 0 : -1;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		p[i] = recs[i].parent;
		u[i] = recs[i].input;
	}
	values[0] = values[1] = values[2] = NULL;
	if (rc == 0 && (store_pages_encode_keys(p, n, &values[0], &lengths[0]) != 0 ||
	                store_pages_encode_keys(u, n, &values[1], &lengths[1]) != 0 ||
	                asprintf(&values[2], "%lld", (long long)import_id) < 0)) {
		values[2] = NULL;
		rc = -1;
	}
	if (rc == 0)
		lengths[2] = (int)strlen(values[2]);
	free(p);
	free(u);
	if (rc) {
		for (size_t k = 0; k < STORE_LINKS_PARAMS; k++) {
			free(values[k]);
			values[k] = NULL;
		}
		return -1;
	}
	*formats = link_formats;
	return 0;
}
