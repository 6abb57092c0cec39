/* store_views — see store_views.h. */
#include "store_views.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; failed sticks. */
struct sb {
	char *p;
	size_t len, cap;
	bool failed;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static long find(const struct store_table_sql *tables, size_t n, const char *name)
{
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(tables[i].name, name) == 0)
			return (long)i;
	return -1;
}

static bool is_leaf(const struct store_table_sql *tables, size_t n, size_t i)
{
	for (size_t k = 0; k < n; k++)
		if (tables[k].parent && strcmp(tables[k].parent, tables[i].name) == 0)
			return false;
	return true;
}

/* The stages from the root down to i, comma-separated, in b; their count
 * (0: a cycle or a parent not among the tables). */
static size_t path_of(const struct store_table_sql *tables, size_t n, size_t i, struct sb *b)
{
	size_t chain[64], depth = 0;
	long at = (long)i;
	while (at >= 0 && depth < sizeof chain / sizeof chain[0]) {
		chain[depth++] = (size_t)at;
		if (!tables[at].parent)
			break;
		at = find(tables, n, tables[at].parent);
		if (at < 0)
			return 0;
	}
	if (depth == sizeof chain / sizeof chain[0])
		return 0;
	for (size_t d = depth; d-- > 0;)
		sb_add(b, "%s%s", tables[chain[d]].name, d ? "," : "");
	return depth;
}

void store_views_names(const struct store_table_sql *tables, size_t n, size_t i,
                       char current[STORE_VIEW_NAME_MAX], char path[STORE_VIEW_NAME_MAX])
{
	snprintf(current, STORE_VIEW_NAME_MAX, "%s_current", tables[i].name);
	path[0] = '\0';
	if (!tables[i].parent || !is_leaf(tables, n, i))
		return;
	struct sb b = { 0 };
	size_t depth = path_of(tables, n, i, &b);
	if (depth >= 2 && !b.failed) {
		for (char *c = b.p; *c; c++)
			if (*c == ',')
				*c = '_';
		/* PostgreSQL would cut a longer name: the leaf's name then. */
		if (strlen(b.p) < STORE_VIEW_NAME_MAX)
			snprintf(path, STORE_VIEW_NAME_MAX, "%s", b.p);
		else
			snprintf(path, STORE_VIEW_NAME_MAX, "%s_path", tables[i].name);
	}
	free(b.p);
}

/* The comments on a stage table's columns, and on its link table. */
static void comments(struct sb *b, const struct store_table_sql *t, bool *first)
{
	const char *n = t->name;
#define ROW(rel, col, ...) do { \
		sb_add(b, "%s('%s', %s%s%s, '", *first ? "" : ",\n ", rel, col ? "'" : "", \
		       col ? col : "NULL", col ? "'" : ""); \
		sb_add(b, __VA_ARGS__); \
		sb_add(b, "')"); \
		*first = false; \
	} while (0)
	if (t->parent && t->dedupe)
		ROW(n, NULL, "raced stage %s: one row per item, its key unique; items of stage %s "
		    "lead to it, through the link table %s (a URL is fetched once an import); "
		    "rows are kept, removed_import marks those no longer served", n, t->parent,
		    t->link_name);
	else if (t->parent)
		ROW(n, NULL, "raced stage %s: one row per item, its key unique; parent_key is the key "
		    "of the item of stage %s that led to it; rows are kept, removed_import marks "
		    "those no longer served", n, t->parent);
	else
		ROW(n, NULL, "raced stage %s: one row per item, its key unique; rows are kept, "
		    "removed_import marks those no longer served", n);
	ROW(n, "key", "the item key: the value at the stage key pointer, as text");
	if (t->dedupe)
		ROW(n, "parent_key", "NULL: the stage has dedupe = yes, its parents are in %s",
		    t->link_name);
	else if (t->parent)
		ROW(n, "parent_key", "the key of the item of stage %s whose URL listed this item "
		    "(the edge)", t->parent);
	else
		ROW(n, "parent_key", "NULL: the root stage has no parent");
	ROW(n, "payload", "the item as the provider sent it (jsonb)");
	ROW(n, "first_import", "import_runs.id of the import that added the row");
	ROW(n, "last_import", "import_runs.id of the last import that wrote the row "
	    "(added it, or changed its payload or parent)");
	ROW(n, "updated_at", "when the payload last changed");
	ROW(n, "removed_import", "import_runs.id of the succeeded import that no longer saw the "
	    "item; NULL while it is current");
	if (!t->link_name)
		return;
	ROW(t->link_name, NULL, "raced edges of stage %s: one row per item of stage %s and item "
	    "of stage %s its URL led to, kept current by every import", n,
	    t->parent ? t->parent : "(parent)", n);
	ROW(t->link_name, "parent_key", "the key of the parent item (stage %s)",
	    t->parent ? t->parent : "(parent)");
	ROW(t->link_name, "key", "the key of the item of stage %s", n);
#undef ROW
}

/* The plpgsql that writes the comments listed in c(rel, col, txt) where
 * they differ (after the VALUES listing them). */
static const char comment_sql[] =
	") AS c(rel, col, txt) LOOP\n"
	" rel := format('%I', r.rel)::regclass;\n"
	" IF r.col IS NULL THEN\n"
	"  IF obj_description(rel, 'pg_class') IS DISTINCT FROM r.txt THEN\n"
	"   EXECUTE format('COMMENT ON TABLE %I IS %L', r.rel, r.txt); END IF;\n"
	" ELSIF col_description(rel, (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = rel\n"
	"   AND a.attname = r.col)) IS DISTINCT FROM r.txt THEN\n"
	"  EXECUTE format('COMMENT ON COLUMN %I.%I IS %L', r.rel, r.col, r.txt);\n"
	" END IF;\n"
	"END LOOP;\n";

/* The plpgsql that makes the views vn (kind vk, stages vp) where they
 * changed, then drops raced's views not among them. */
static const char views_sql[] =
	"FOR i IN 1 .. coalesce(cardinality(vn), 0) LOOP\n"
	" stages := string_to_array(vp[i], ',');\n"
	" ccol := '{}'; ctxt := '{}';\n"
	" IF vk[i] = 'current' THEN\n"
	"  SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),\n"
	"   array_agg(a.attname::text ORDER BY a.attnum),\n"
	"   array_agg(coalesce(col_description(a.attrelid, a.attnum),\n"
	"    format('column %s of stage %s', a.attname, stages[1])) ORDER BY a.attnum)\n"
	"   INTO cols, ccol, ctxt\n"
	"   FROM pg_attribute a WHERE a.attrelid = format('%I', stages[1])::regclass\n"
	"   AND a.attnum > 0 AND NOT a.attisdropped;\n"
	"  def := format('SELECT %s FROM %I WHERE removed_import IS NULL', cols, stages[1]);\n"
	"  what := format('the current items of stage %s (removed_import IS NULL), every column',\n"
	"   stages[1]);\n"
	" ELSE\n"
	"  cols := ''; src := ''; cond := '';\n"
	"  FOR j IN 1 .. cardinality(stages) LOOP\n"
	"   s := stages[j];\n"
	"   cols := cols || CASE WHEN j > 1 THEN ', ' ELSE '' END\n"
	"    || format('t%s.key AS %I, t%s.payload AS %I', j, s || '_key', j, s || '_payload');\n"
	"   ccol := ccol || ARRAY[s || '_key', s || '_payload'];\n"
	"   ctxt := ctxt || ARRAY[format('the key of the item of stage %s', s),\n"
	"    format('the payload of the item of stage %s', s)];\n"
	"   FOR cv IN SELECT at.attname, at.attnum FROM pg_attribute at\n"
	"    WHERE at.attrelid = format('%I', s)::regclass AND at.attnum > 0 AND NOT at.attisdropped\n"
	"    AND NOT at.attname = ANY(own) ORDER BY at.attnum LOOP\n"
	"    IF length(s || '_' || cv.attname) > 63 THEN\n"
	"     RAISE EXCEPTION 'raced: view %: column %.% would be named %_% (over 63 bytes): rename "
	"the column or the stage', vn[i], s, cv.attname, s, cv.attname;\n"
	"    END IF;\n"
	"    cols := cols || format(', t%s.%I AS %I', j, cv.attname, s || '_' || cv.attname);\n"
	"    ccol := ccol || (s || '_' || cv.attname);\n"
	"    ctxt := ctxt || coalesce(col_description(format('%I', s)::regclass, cv.attnum),\n"
	"     format('column %s of stage %s', cv.attname, s));\n"
	"   END LOOP;\n"
	"   IF j = 1 THEN\n"
	"    src := format('%I t1', s);\n"
	"   ELSIF dd[array_position(st, s)] THEN\n"
	"    src := src || format(' JOIN %I l%s ON l%s.parent_key = t%s.key JOIN %I t%s ON t%s.key = l%s.key',\n"
	"     s || '_parents', j, j, j - 1, s, j, j, j);\n"
	"   ELSE\n"
	"    src := src || format(' JOIN %I t%s ON t%s.parent_key = t%s.key', s, j, j, j - 1);\n"
	"   END IF;\n"
	"   cond := cond || CASE WHEN j > 1 THEN ' AND ' ELSE '' END\n"
	"    || format('t%s.removed_import IS NULL', j);\n"
	"  END LOOP;\n"
	"  def := 'SELECT ' || cols || ' FROM ' || src || ' WHERE ' || cond;\n"
	"  what := format('the path %s joined by their edges, current items only',\n"
	"   array_to_string(stages, ' -> '));\n"
	" END IF;\n"
	" h := md5(def || array_to_string(ctxt, '|'));\n"
	" SELECT c.relkind, obj_description(c.oid, 'pg_class') INTO kind, cmt FROM pg_class c\n"
	"  WHERE c.relname = vn[i] AND c.relnamespace = ns;\n"
	" IF FOUND AND (kind <> 'v' OR cmt IS NULL OR cmt NOT LIKE 'raced: %') THEN\n"
	"  RAISE EXCEPTION 'raced: %.% exists and raced did not make it: rename or drop it, or "
	"rename the stage', current_schema(), vn[i];\n"
	" ELSIF NOT FOUND OR cmt NOT LIKE '%[' || h || ']' THEN\n"
	"  BEGIN\n"
	"   EXECUTE format('DROP VIEW IF EXISTS %I', vn[i]);\n"
	"   EXECUTE format('CREATE VIEW %I AS %s', vn[i], def);\n"
	"   EXECUTE format('COMMENT ON VIEW %I IS %L', vn[i], 'raced: ' || what || ' [' || h || ']');\n"
	"   FOR j IN 1 .. coalesce(cardinality(ccol), 0) LOOP\n"
	"    EXECUTE format('COMMENT ON COLUMN %I.%I IS %L', vn[i], ccol[j], ctxt[j]);\n"
	"   END LOOP;\n"
	"  EXCEPTION WHEN dependent_objects_still_exist THEN\n"
	"   RAISE WARNING 'raced: view % is out of date and other objects depend on it: drop them "
	"and raced makes it again at its next connect (%)', vn[i], SQLERRM;\n"
	"  END;\n"
	" END IF;\n"
	"END LOOP;\n"
	"FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = ns AND c.relkind = 'v'\n"
	"  AND obj_description(c.oid, 'pg_class') LIKE 'raced: %'\n"
	"  AND NOT c.relname = ANY(coalesce(vn, '{}')) LOOP\n"
	" BEGIN\n"
	"  EXECUTE format('DROP VIEW %I', r.relname);\n"
	" EXCEPTION WHEN dependent_objects_still_exist THEN\n"
	"  RAISE WARNING 'raced: view % is no longer configured and other objects depend on it: "
	"left as it is', r.relname;\n"
	" END;\n"
	"END LOOP;\n";

/* ARRAY[...]::TYPE[] of the strings (NULL as NULL). */
static void array_of(struct sb *b, const char *const *v, size_t n, const char *type)
{
	sb_add(b, "ARRAY[");
	for (size_t i = 0; i < n; i++)
		sb_add(b, "%s%s%s%s", i ? ", " : "", v[i] ? "'" : "", v[i] ? v[i] : "NULL",
		       v[i] ? "'" : "");
	sb_add(b, "]::%s[]", type);
}

char *store_views_sql(const struct store_table_sql *tables, size_t n)
{
	struct sb b = { 0 };
	size_t nv = 0;
	const char **st = calloc(n + 1, sizeof *st), **dd = calloc(n + 1, sizeof *dd);
	const char **vn = calloc(2 * n + 1, sizeof *vn), **vk = calloc(2 * n + 1, sizeof *vk);
	char **vp = calloc(2 * n + 1, sizeof *vp);
	char (*names)[STORE_VIEW_NAME_MAX] = calloc(2 * n + 1, sizeof *names);
	if (!st || !dd || !vn || !vk || !vp || !names)
		b.failed = true;
	for (size_t i = 0; !b.failed && i < n; i++) {
		st[i] = tables[i].name;
		dd[i] = tables[i].dedupe ? "true" : "false";
		char *cur = names[nv], *path = names[nv + 1];
		store_views_names(tables, n, i, cur, path);
		vn[nv] = cur;
		vk[nv] = "current";
		vp[nv] = strdup(tables[i].name);
		b.failed |= !vp[nv++];
		if (path[0]) {
			struct sb p = { 0 };
			path_of(tables, n, i, &p);
			vn[nv] = path;
			vk[nv] = "path";
			vp[nv] = p.p;
			b.failed |= p.failed || !vp[nv++];
		}
	}
	sb_add(&b, "DO $raced$\nDECLARE\n"
	           " own constant text[] := ARRAY['key', 'parent_key', 'payload', 'first_import',"
	           " 'last_import', 'updated_at', 'removed_import'];\n st text[] := ");
	array_of(&b, st, n, "text");
	sb_add(&b, ";\n dd boolean[] := ");
	array_of(&b, dd, n, "boolean");
	sb_add(&b, ";\n vn text[] := ");
	array_of(&b, vn, nv, "text");
	sb_add(&b, ";\n vk text[] := ");
	array_of(&b, vk, nv, "text");
	sb_add(&b, ";\n vp text[] := ");
	array_of(&b, (const char *const *)vp, nv, "text");
	sb_add(&b, ";\n ns oid := (SELECT oid FROM pg_namespace WHERE nspname = current_schema());\n"
	           " r record; cv record; rel regclass; stages text[]; s text; cols text; src text;"
	           " cond text; def text; what text; h text; kind \"char\"; cmt text;"
	           " ccol text[]; ctxt text[];\nBEGIN\n");
	if (n > 0) {
		sb_add(&b, "FOR r IN SELECT * FROM (VALUES ");
		bool first = true;
		for (size_t i = 0; i < n; i++)
			comments(&b, &tables[i], &first);
		sb_add(&b, "%s", comment_sql);
	}
	sb_add(&b, "%s", views_sql);
	sb_add(&b, "END $raced$");
	for (size_t i = 0; vp && i < nv; i++)
		free(vp[i]);
	free(st);
	free(dd);
	free(vn);
	free(vk);
	free(vp);
	free(names);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
