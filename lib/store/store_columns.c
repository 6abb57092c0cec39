/* store_columns — see store_columns.h.
 *
 * The function works on one table (p_stage; the name resolves through the
 * connection's search_path, so [database] schema applies):
 *  1. drops raced's columns the configuration no longer has (their index
 *     goes with them) and forgets them in raced_columns;
 *  2. for each configured column: adds it (filled from the payload where
 *     the field is present), or retypes/refills it (ALTER COLUMN TYPE ...
 *     USING the payload) when the catalog's type or the recorded pointer
 *     differ; records it; creates or drops its index;
 *  3. on any error in 1-2 rolls the table's part back (the BEGIN ...
 *     EXCEPTION block is a subtransaction) and, for a cast, walks the
 *     table's rows in key order casting each value alone to name the
 *     first that does not fit (one subtransaction a row: only on this
 *     path, which changes nothing);
 *  4. answers which configured columns are in force.
 * A table with nothing to change takes no lock beyond reading the
 * catalog.
 */
#include "store_columns.h"

#include "log.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* raced's own views over the table (store_views.c remakes them after the
 * columns): ALTER COLUMN TYPE and DROP COLUMN refuse a column a view reads.
 * A user's view over raced's view still blocks it: the change is refused. */
#define DROP_RACED_VIEWS \
	"        FOR v IN SELECT DISTINCT vc.relname FROM pg_depend d" \
	" JOIN pg_rewrite rw ON rw.oid = d.objid JOIN pg_class vc ON vc.oid = rw.ev_class" \
	" WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = tbl AND vc.oid <> tbl" \
	" AND vc.relkind = 'v' AND obj_description(vc.oid, 'pg_class') LIKE 'raced: %' LOOP\n" \
	"          EXECUTE format('DROP VIEW IF EXISTS %I', v.relname);\n" \
	"        END LOOP;\n"

const char store_columns_function_sql[] =
	"CREATE OR REPLACE FUNCTION pg_temp.raced_columns(p_stage text, p_want jsonb)"
	" RETURNS jsonb LANGUAGE plpgsql AS $raced$\n"
	"DECLARE\n"
	"  tbl regclass := to_regclass(quote_ident(p_stage));\n"
	"  w record; h record; bad record; v record;\n"
	"  managed boolean; cur_type text; expr text;\n"
	"  changes text[] := '{}';\n"
	"  col text; col_type text; col_path text[];\n"
	"  msg text; refusal jsonb; eff jsonb;\n"
	"BEGIN\n"
	"  IF tbl IS NULL THEN\n"
	"    RETURN jsonb_build_object('refused', format('table %s does not exist', p_stage),"
	" 'columns', '[]'::jsonb);\n"
	"  END IF;\n"
	"  BEGIN\n"
	"    FOR h IN SELECT rc.name FROM raced_columns rc WHERE rc.stage = p_stage\n"
	"        AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_want) x"
	" WHERE x->>'name' = rc.name) ORDER BY rc.name LOOP\n"
	"      col := h.name; col_type := NULL;\n"
	"      IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl"
	" AND a.attname = h.name AND NOT a.attisdropped) THEN\n"
	DROP_RACED_VIEWS
	"        EXECUTE format('ALTER TABLE %s DROP COLUMN %I', tbl, h.name);\n"
	"      END IF;\n"
	"      DELETE FROM raced_columns rc WHERE rc.stage = p_stage AND rc.name = h.name;\n"
	"      changes := changes || format('dropped %s', h.name);\n"
	"    END LOOP;\n"
	"    FOR w IN SELECT x->>'name' AS name, x->>'type' AS type, x->>'pointer' AS pointer,"
	" x->>'index' AS idx,\n"
	"        ARRAY(SELECT replace(replace(e.tok, '~1', '/'), '~0', '~')"
	" FROM unnest(string_to_array(substr(x->>'pointer', 2), '/')) WITH ORDINALITY AS e(tok, o)"
	" ORDER BY e.o) AS path\n"
	"        FROM jsonb_array_elements(p_want) x LOOP\n"
	"      col := w.name; col_type := NULL; col_path := w.path;\n"
	"      expr := CASE WHEN w.type = 'jsonb' THEN format('(payload #> %L)', w.path)"
	" ELSE format('(payload #>> %L)::%s', w.path, w.type) END;\n"
	"      SELECT rc.type, rc.pointer, rc.index_name INTO h FROM raced_columns rc"
	" WHERE rc.stage = p_stage AND rc.name = w.name;\n"
	"      managed := FOUND;\n"
	"      cur_type := (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
	" WHERE a.attrelid = tbl AND a.attname = w.name AND NOT a.attisdropped);\n"
	"      IF cur_type IS NOT NULL AND NOT managed THEN\n"
	"        RAISE EXCEPTION 'column % of table % exists and was not added by raced:"
	" rename the configured column, or drop or rename the table''s', w.name, p_stage;\n"
	"      ELSIF cur_type IS NULL THEN\n"
	"        col_type := w.type;\n"
	"        EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', tbl, w.name, w.type);\n"
	"        EXECUTE format('UPDATE %s SET %I = %s WHERE payload #> %L IS NOT NULL', tbl,"
	" w.name, expr, w.path);\n"
	"        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, w.name, format("
	"'typed column: the item''s %s as %s (columns = in raced.conf)', w.pointer, w.type));\n"
	"        changes := changes || format('added %s %s %s', w.name, w.type, w.pointer);\n"
	"      ELSIF cur_type <> w.type OR h.pointer IS DISTINCT FROM w.pointer THEN\n"
	"        col_type := w.type;\n"
	DROP_RACED_VIEWS
	"        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %s', tbl, w.name,"
	" w.type, expr);\n"
	"        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', tbl, w.name, format("
	"'typed column: the item''s %s as %s (columns = in raced.conf)', w.pointer, w.type));\n"
	"        changes := changes || format('changed %s from %s %s to %s %s', w.name, cur_type,"
	" coalesce(h.pointer, '?'), w.type, w.pointer);\n"
	"      END IF;\n"
	"      col_type := NULL;\n"
	"      INSERT INTO raced_columns AS rc (stage, name, type, pointer, index_name)"
	" VALUES (p_stage, w.name, w.type, w.pointer, w.idx)"
	" ON CONFLICT (stage, name) DO UPDATE SET type = excluded.type,"
	" pointer = excluded.pointer, index_name = excluded.index_name;\n"
	"      IF w.idx IS NOT NULL AND to_regclass(quote_ident(w.idx)) IS NULL THEN\n"
	"        EXECUTE format('CREATE INDEX %I ON %s (%I)', w.idx, tbl, w.name);\n"
	"        changes := changes || format('indexed %s', w.name);\n"
	"      ELSIF w.idx IS NULL AND managed AND h.index_name IS NOT NULL"
	" AND to_regclass(quote_ident(h.index_name)) IS NOT NULL THEN\n"
	"        EXECUTE format('DROP INDEX %I', h.index_name);\n"
	"        changes := changes || format('dropped the index on %s', w.name);\n"
	"      END IF;\n"
	"    END LOOP;\n"
	"  EXCEPTION WHEN others THEN\n"
	"    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;\n"
	"    changes := '{}';\n"
	"    refusal := jsonb_build_object('refused', msg, 'column', col);\n"
	"    IF col_type IS NOT NULL AND col_type <> 'jsonb' THEN\n"
	"      FOR bad IN EXECUTE format('SELECT key, payload #>> %L AS v FROM %s"
	" WHERE payload #> %L IS NOT NULL ORDER BY key', col_path, tbl, col_path) LOOP\n"
	"        BEGIN\n"
	"          EXECUTE format('SELECT %L::%s', bad.v, col_type);\n"
	"        EXCEPTION WHEN others THEN\n"
	"          GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;\n"
	"          refusal := jsonb_build_object('refused', msg, 'column', col, 'type', col_type,"
	" 'key', bad.key, 'value', bad.v);\n"
	"          EXIT;\n"
	"        END;\n"
	"      END LOOP;\n"
	"    END IF;\n"
	"  END;\n"
	"  SELECT coalesce(jsonb_agg(x->>'name'), '[]') INTO eff FROM jsonb_array_elements(p_want) x"
	" JOIN raced_columns rc ON rc.stage = p_stage AND rc.name = x->>'name'"
	" AND rc.type = x->>'type' AND rc.pointer = x->>'pointer'"
	" JOIN pg_attribute a ON a.attrelid = tbl AND a.attname = rc.name AND NOT a.attisdropped"
	" AND format_type(a.atttypid, a.atttypmod) = rc.type;\n"
	"  RETURN jsonb_build_object('columns', eff, 'changes', to_jsonb(changes))"
	" || coalesce(refusal, '{}');\n"
	"END $raced$";

/* One statement: one transaction over every table. */
const char store_columns_apply_sql[] =
	"SELECT coalesce(jsonb_object_agg(w.key, pg_temp.raced_columns(w.key, w.value)), '{}')::text"
	" FROM jsonb_each($1::jsonb) AS w";

/* FNV-1a, 32 bits: only to keep long index names apart. */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

void store_columns_index_name(const char *table, const char *column, char out[64])
{
	char full[256];
	int n = snprintf(full, sizeof full, "%s_%s_idx", table, column);
	if (n >= 0 && n <= 63) {
		memcpy(out, full, (size_t)n + 1);
		return;
	}
	snprintf(out, 64, "%.54s_%08x", full, fnv1a(full));
}

void store_columns_free(struct store_table_sql *t)
{
	for (size_t i = 0; t->cols && i < t->n_cols; i++) {
		free((char *)t->cols[i].name);
		free((char *)t->cols[i].type);
		free((char *)t->cols[i].pointer);
		free(t->index_names ? t->index_names[i] : NULL);
	}
	free(t->cols);
	free(t->index_names);
	t->cols = NULL;
	t->index_names = NULL;
	t->n_cols = 0;
}

static bool col_name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > STORE_NAME_MAX || !((n[0] >= 'a' && n[0] <= 'z') || n[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return true;
}

int store_columns_init(struct store_table_sql *t, const struct store_columns *cols, char *err)
{
	if (!cols || cols->n == 0)
		return 0;
	if (cols->n > STORE_COLUMNS_MAX)
		return err_set(err, "store: table %s: %zu typed columns, at most %d", t->name, cols->n,
		               STORE_COLUMNS_MAX);
	t->cols = calloc(cols->n, sizeof *t->cols);
	t->index_names = calloc(cols->n, sizeof *t->index_names);
	if (!t->cols || !t->index_names)
		return err_set(err, "store: out of memory");
	t->n_cols = cols->n;
	for (size_t i = 0; i < cols->n; i++) {
		const struct store_column *c = &cols->cols[i];
		if (!c->name || !col_name_valid(c->name) || !c->type || !c->pointer)
			return err_set(err, "store: table %s: typed column %zu has no valid name, type "
			               "or pointer", t->name, i + 1);
		struct store_column *d = &t->cols[i];
		d->name = strdup(c->name);
		d->type = strdup(c->type);
		d->pointer = strdup(c->pointer);
		d->indexed = c->indexed;
		if (!d->name || !d->type || !d->pointer)
			return err_set(err, "store: out of memory");
		if (c->indexed) {
			char idx[64];
			store_columns_index_name(t->name, c->name, idx);
			if (!(t->index_names[i] = strdup(idx)))
				return err_set(err, "store: out of memory");
		}
	}
	return 0;
}

char *store_columns_want(const struct store_table_sql *tables, size_t n)
{
	json_t *want = json_object();
	bool ok = want != NULL;
	for (size_t i = 0; ok && i < n; i++) {
		json_t *arr = json_array();
		ok = arr && json_object_set_new(want, tables[i].name, arr) == 0;
		for (size_t c = 0; ok && c < tables[i].n_cols; c++) {
			const struct store_column *col = &tables[i].cols[c];
			const char *idx = tables[i].index_names[c];
			ok = json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", col->name,
			                                          "type", col->type, "pointer", col->pointer,
			                                          "index", idx ? json_string(idx) : json_null())) == 0;
		}
	}
	char *text = ok ? json_dumps(want, JSON_COMPACT) : NULL;
	json_decref(want);
	return text;
}

/* "a; b; c" of a JSON array of strings, into out (len bytes). */
static void join(const json_t *arr, char *out, size_t len)
{
	size_t used = 0;
	size_t i;
	json_t *v;
	out[0] = '\0';
	json_array_foreach(arr, i, v) {
		int w = snprintf(out + used, len - used, "%s%s", i ? "; " : "", json_string_value(v));
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

static void log_table(const struct store_table_sql *t, const json_t *r)
{
	char buf[1024];
	const json_t *changes = json_object_get(r, "changes");
	if (json_array_size(changes) > 0) {
		join(changes, buf, sizeof buf);
		log_notice("database: [stage %s] columns: %s", t->name, buf);
	}
	const char *refused = json_string_value(json_object_get(r, "refused"));
	if (!refused)
		return;
	const char *key = json_string_value(json_object_get(r, "key"));
	const char *col = json_string_value(json_object_get(r, "column"));
	const char *type = json_string_value(json_object_get(r, "type"));
	const char *value = json_string_value(json_object_get(r, "value"));
	join(json_object_get(r, "columns"), buf, sizeof buf);
	if (key)
		log_warn("database: [stage %s] columns: changing the table refused: the row with key "
		         "'%.64s' has %s = '%.64s', which is not %s (%s); table %s keeps its columns as "
		         "they were, and raced writes those still as configured (%s); fix the value at "
		         "the provider, choose a type it fits (e.g. text), or drop the column from the "
		         "table yourself", t->name, key, col ? col : "?", value ? value : "",
		         type ? type : "?", refused, t->name, buf[0] ? buf : "none");
	else
		log_warn("database: [stage %s] columns: changing the table refused%s%s: %s; table %s "
		         "keeps its columns as they were, and raced writes those still as configured (%s)",
		         t->name, col ? " at column " : "", col ? col : "", refused, t->name,
		         buf[0] ? buf : "none");
}

int store_columns_outcome(const PGresult *res, const struct store_table_sql *tables, size_t n,
                          bool *inforce, char *msg)
{
	memset(inforce, 0, n * STORE_COLUMNS_MAX * sizeof *inforce);
	if (!res || PQntuples(res) != 1)
		return err_set(msg, "typed columns: no answer from the database");
	json_error_t jerr;
	json_t *all = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	if (!json_is_object(all)) {
		json_decref(all);
		return err_set(msg, "typed columns: unreadable answer: %s", jerr.text);
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *r = json_object_get(all, tables[i].name);
		if (!r)
			continue;
		log_table(&tables[i], r);
		size_t k;
		json_t *v;
		json_array_foreach(json_object_get(r, "columns"), k, v)
			for (size_t c = 0; c < tables[i].n_cols && c < STORE_COLUMNS_MAX; c++)
				if (json_is_string(v) && strcmp(json_string_value(v), tables[i].cols[c].name) == 0)
					inforce[i * STORE_COLUMNS_MAX + c] = true;
	}
	json_decref(all);
	return 0;
}
