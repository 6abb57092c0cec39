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
 * both; neither writes an unchanged link. */
#define LINK_WRITE_FMT \
	"WITH x AS (SELECT DISTINCT x.p, x.u" \
	"  FROM unnest($1::text[], $2::text[]) AS x(p, u)" \
	"  JOIN raced_pages f ON f.stage = '%s' AND f.url = x.u AND f.done_import = $3::bigint)," \
	" want AS (SELECT DISTINCT x.p, k.k FROM x" \
	"  JOIN raced_pages r ON r.stage = '%s' AND r.input = x.u AND r.seen_import = $3::bigint" \
	"  CROSS JOIN LATERAL unnest(r.keys) AS k(k))," \
	" gone AS (DELETE FROM \"%s_parents\" l USING x WHERE l.parent_key = x.p" \
	"  AND NOT EXISTS (SELECT 1 FROM want w WHERE w.p = l.parent_key AND w.k = l.key))" \
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
	rc |= FORMAT(&t->link_write_sql, LINK_WRITE_FMT, n, n, n, n);
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
