/* store_schema — see store_schema.h. */
#include "store_schema.h"

#include "store_columns.h"
#include "store_links.h"
#include "store_pages.h"
#include "store_preload.h"
#include "store_views.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_ADVISORY_LOCK  "7261636564" /* "raced" */
/* Bytes of the block each write connection's backend allocates and frees
 * before its first batch of rows (store_schema_warm_sql): 16 MiB, half
 * glibc's largest dynamic mmap threshold, above the largest block a batch
 * of STORE_BATCH_SIZE_MAX rows allocates (PostgreSQL's blocks stop
 * doubling at 8 MiB). */
#define STORE_BACKEND_MALLOC_WARM "16777216"
/* The block is made as 4 KiB repeated and measured by octet_length:
 * repeat copies its string once per count, and length() walks every byte
 * for characters, so 16 Mi copies of one byte and a character count cost
 * the backend 50 ms, a sixth of an unchanged re-import's PostgreSQL CPU
 * (docs/performance.md, "The unchanged re-import's transactions"); this
 * way the block is written once (about 15 ms, its pages faulted in). */
const char store_schema_warm_sql[] =
	"SELECT octet_length(repeat(repeat('x', 4096), " STORE_BACKEND_MALLOC_WARM " / 4096))";

struct migration {
	int version;
	const char *description;
	const char *const *stmts;
};

static const char *const migration_1[] = {
	"CREATE TABLE import_runs ("
	" id bigserial PRIMARY KEY,"
	" started_at timestamptz NOT NULL DEFAULT now(),"
	" finished_at timestamptz,"
	" status text NOT NULL DEFAULT 'running' CHECK (status IN"
	"  ('running', 'succeeded', 'partial', 'failed', 'cancelled', 'interrupted')),"
	" requested_by text,"
	" counts jsonb)",
	"CREATE TABLE import_errors ("
	" id bigserial PRIMARY KEY,"
	" import_id bigint NOT NULL,"
	" stage text NOT NULL,"
	" url text,"
	" http_status integer,"
	" attempts integer NOT NULL DEFAULT 0,"
	" message text,"
	" at timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX import_errors_import_id ON import_errors (import_id)",
	NULL,
};

/* The last moment a run is known to have been alive: written with a batch
 * (store.c), read when a run found 'running' at start is marked
 * 'interrupted' (store_runs.c).  No index: it is only read by id. */
static const char *const migration_2[] = {
	"ALTER TABLE import_runs ADD COLUMN heartbeat_at timestamptz",
	NULL,
};

/* Import state across runs (docs/architecture.md): one row per page an
 * import reached, updated in the transaction of the batch it rides.  No
 * indexed column changes on an update (fillfactor leaves room for HOT
 * updates).  lease_owner and lease_until are reserved for sharing an
 * import between instances (not built).  The stage tables' removed_import
 * column is added with the tables (store_table_sql), as they are created
 * there too. */
static const char *const migration_3[] = {
	"CREATE TABLE raced_pages ("
	" stage text NOT NULL,"
	" url text NOT NULL,"
	" input text NOT NULL,"
	" page_no integer NOT NULL,"
	" etag text,"
	" last_modified text,"
	" next_url text,"
	" keys text[] NOT NULL,"
	" hashes bytea NOT NULL,"
	" fetched_at timestamptz NOT NULL,"
	" seen_import bigint NOT NULL,"
	" done_import bigint,"
	" lease_owner text,"
	" lease_until timestamptz,"
	" PRIMARY KEY (stage, url)"
	") WITH (fillfactor = 80)",
	"CREATE INDEX raced_pages_input ON raced_pages (stage, input)",
	"ALTER TABLE import_runs"
	" ADD COLUMN resumes integer NOT NULL DEFAULT 0,"
	" ADD COLUMN resumed_at timestamptz,"
	" ADD COLUMN resumable boolean NOT NULL DEFAULT false,"
	" ADD COLUMN full_import boolean NOT NULL DEFAULT false,"
	" ADD COLUMN root_url text,"
	" ADD COLUMN pipeline jsonb",
	NULL,
};

/* Typed columns (store_columns.c): the ones raced added to a stage table,
 * from which pointer, with which index, so that raced alters and drops
 * only its own columns and notices a changed pointer. */
static const char *const migration_4[] = {
	"CREATE TABLE raced_columns ("
	" stage text NOT NULL,"
	" name text NOT NULL,"
	" type text NOT NULL,"          /* as format_type() writes it */
	" pointer text NOT NULL,"       /* the JSON pointer it is filled from */
	" index_name text,"             /* raced's index on it, or NULL */
	" PRIMARY KEY (stage, name))",
	NULL,
};

/* (5) What each of raced's own tables and columns is (docs/data-model.md):
 * COMMENT ON, so that psql's \d+ tells a data team.  The stage and link
 * tables, made at connect, get theirs there (store_views.c). */
static const char *const migration_5[] = {
	"COMMENT ON TABLE raced_schema_version IS 'raced: the migrations applied to this database,"
	" one row each'",
	"COMMENT ON COLUMN raced_schema_version.version IS 'the migration number'",
	"COMMENT ON COLUMN raced_schema_version.description IS 'what it changed'",
	"COMMENT ON COLUMN raced_schema_version.applied_at IS 'when it was applied'",
	"COMMENT ON TABLE import_runs IS 'raced: one row per import run'",
	"COMMENT ON COLUMN import_runs.id IS 'the import number: first_import, last_import and"
	" removed_import of the stage tables name it'",
	"COMMENT ON COLUMN import_runs.started_at IS 'when the run started'",
	"COMMENT ON COLUMN import_runs.finished_at IS 'when it ended; NULL while running'",
	"COMMENT ON COLUMN import_runs.status IS 'running, succeeded, partial (some requests failed),"
	" failed, cancelled or interrupted'",
	"COMMENT ON COLUMN import_runs.requested_by IS 'who started it (control client, timer, --once)'",
	"COMMENT ON COLUMN import_runs.counts IS 'per stage: requests, items, rows stored, errors ...'",
	"COMMENT ON COLUMN import_runs.heartbeat_at IS 'the last moment the run was known alive'",
	"COMMENT ON COLUMN import_runs.resumes IS 'how many times the run was resumed'",
	"COMMENT ON COLUMN import_runs.resumed_at IS 'when it was last resumed'",
	"COMMENT ON COLUMN import_runs.resumable IS 'whether start-import --resume may continue it'",
	"COMMENT ON COLUMN import_runs.full_import IS 'started with --full: no conditional requests'",
	"COMMENT ON COLUMN import_runs.root_url IS 'the root stage''s first URL as requested'",
	"COMMENT ON COLUMN import_runs.pipeline IS 'the stages as configured, compared on resume'",
	"COMMENT ON TABLE import_errors IS 'raced: requests and items an import could not take,"
	" one row per failure (or per group of alike failures)'",
	"COMMENT ON COLUMN import_errors.id IS 'row number'",
	"COMMENT ON COLUMN import_errors.import_id IS 'import_runs.id of the run'",
	"COMMENT ON COLUMN import_errors.stage IS 'the stage whose request or item failed'",
	"COMMENT ON COLUMN import_errors.url IS 'the URL requested, secrets masked'",
	"COMMENT ON COLUMN import_errors.http_status IS 'the last response''s status; NULL: none'",
	"COMMENT ON COLUMN import_errors.attempts IS 'requests made for it, retries included'",
	"COMMENT ON COLUMN import_errors.message IS 'what went wrong and the fix'",
	"COMMENT ON COLUMN import_errors.at IS 'when it was recorded'",
	"COMMENT ON TABLE raced_pages IS 'raced: the import state, one row per page an import"
	" reached (validators, its items'' keys and hashes, checkpoints)'",
	"COMMENT ON COLUMN raced_pages.stage IS 'the stage'",
	"COMMENT ON COLUMN raced_pages.url IS 'the page''s URL as requested, secrets masked'",
	"COMMENT ON COLUMN raced_pages.input IS 'the URL of its input''s first page'",
	"COMMENT ON COLUMN raced_pages.page_no IS '0 for the input''s first page'",
	"COMMENT ON COLUMN raced_pages.etag IS 'the ETag last received'",
	"COMMENT ON COLUMN raced_pages.last_modified IS 'the Last-Modified last received'",
	"COMMENT ON COLUMN raced_pages.next_url IS 'the next page as found on it; NULL: the last page'",
	"COMMENT ON COLUMN raced_pages.keys IS 'its items'' keys, in page order'",
	"COMMENT ON COLUMN raced_pages.hashes IS 'each item''s 64-bit hash, 8 bytes per key'",
	"COMMENT ON COLUMN raced_pages.fetched_at IS 'its last 2xx or 304'",
	"COMMENT ON COLUMN raced_pages.seen_import IS 'the last import that reached it'",
	"COMMENT ON COLUMN raced_pages.done_import IS 'page 0: the import in which the whole input"
	" completed (the checkpoint)'",
	"COMMENT ON COLUMN raced_pages.lease_owner IS 'reserved for sharing an import'",
	"COMMENT ON COLUMN raced_pages.lease_until IS 'reserved for sharing an import'",
	"COMMENT ON TABLE raced_columns IS 'raced: the typed columns raced added to stage tables (columns =), one row each'",
	"COMMENT ON COLUMN raced_columns.stage IS 'the stage whose table has the column'",
	"COMMENT ON COLUMN raced_columns.name IS 'the column''s name'",
	"COMMENT ON COLUMN raced_columns.type IS 'its type, as format_type() writes it'",
	"COMMENT ON COLUMN raced_columns.pointer IS 'the JSON pointer into payload it is filled from'",
	"COMMENT ON COLUMN raced_columns.index_name IS 'raced''s index on it, or NULL'",
	NULL,
};

/* (6) "Reached in import N" without a write per page row: one row per
 * batch of page records, in its transaction (store_pages.c), naming the
 * pages the batch reached and the inputs it completed.  Read by the
 * removals, the clean-up and the links of N, and by a resume of N
 * (store_runs.c); deleted by the next succeeded finish.  No primary key:
 * rows are only read and deleted by import (and stage).  raced_pages'
 * fillfactor is lowered so the page updates that remain (changed pages)
 * find room on their own page (HOT); it applies to pages filled from
 * now on. */
static const char *const migration_6[] = {
	"CREATE TABLE raced_reached ("
	" import_id bigint NOT NULL,"
	" stage text NOT NULL,"
	" urls text[] NOT NULL,"
	" done text[] NOT NULL)",
	"CREATE INDEX raced_reached_import ON raced_reached (import_id, stage)",
	"ALTER TABLE raced_pages SET (fillfactor = 50)",
	"COMMENT ON TABLE raced_reached IS 'raced: what an import reached, one row per batch of page"
	" records; deleted by the next succeeded import''s finish'",
	"COMMENT ON COLUMN raced_reached.import_id IS 'import_runs.id of the import'",
	"COMMENT ON COLUMN raced_reached.stage IS 'the stage'",
	"COMMENT ON COLUMN raced_reached.urls IS 'the pages it reached (raced_pages.url)'",
	"COMMENT ON COLUMN raced_reached.done IS 'the inputs it completed (the checkpoints:"
	" raced_pages.input of page 0)'",
	"COMMENT ON COLUMN raced_pages.seen_import IS 'the last import that wrote the row"
	" (what an import reached is in raced_reached)'",
	"COMMENT ON COLUMN raced_pages.done_import IS 'page 0: set by a resume from raced_reached, for"
	" the inputs its run completed before it stopped'",
	NULL,
};

/* (7) The import state's text keys compared bytewise: a page record's
 * two index inserts (the primary key and (stage, input)) compare long
 * URLs, and under a linguistic collation each compare is a strcoll;
 * COLLATE "C" makes it a memcmp (docs/performance.md, "PostgreSQL's CPU
 * per stored row in a first import").  raced_reached's urls and done are
 * joined with them, so they take the same collation.  Only the collation
 * changes: the rows stay as they are, the indexes are rebuilt (in this
 * migration's transaction).  raced_pages.keys keeps the database's
 * collation: its keys are compared with the stage tables' keys.  The
 * index on (stage, input) is dropped here and made again by the set-up
 * that follows when raced_pages holds a row, else by the first import's
 * finish (store_pages_index_sql): a first import reads no page state. */
/* A view (or rule) of the user's over either table would make the ALTER
 * fail ("cannot alter type of a column used by a view"), and raced would
 * never get past its migrations; the collation is only a matter of speed,
 * so then both tables keep the database's, with a warning in the server's
 * log (docs/data-model.md, "Upgrading"). */
static const char *const migration_7[] = {
	"DROP INDEX IF EXISTS raced_pages_input",
	"DO $raced$ BEGIN"
	" IF EXISTS (SELECT 1 FROM pg_depend d JOIN pg_rewrite w"
	"  ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid"
	"  WHERE d.refclassid = 'pg_class'::regclass"
	"  AND d.refobjid IN ('raced_pages'::regclass, 'raced_reached'::regclass)"
	"  AND w.ev_class NOT IN ('raced_pages'::regclass, 'raced_reached'::regclass)) THEN"
	"  RAISE WARNING 'raced migration 7: raced_pages and raced_reached keep the database''s"
	" collation, as views depend on them; drop those views before raced''s next upgrade"
	" to have their URLs compared bytewise';"
	" ELSE"
	"  ALTER TABLE raced_pages"
	"   ALTER COLUMN stage TYPE text COLLATE \"C\","
	"   ALTER COLUMN url TYPE text COLLATE \"C\","
	"   ALTER COLUMN input TYPE text COLLATE \"C\";"
	"  ALTER TABLE raced_reached"
	"   ALTER COLUMN stage TYPE text COLLATE \"C\","
	"   ALTER COLUMN urls TYPE text[] COLLATE \"C\","
	"   ALTER COLUMN done TYPE text[] COLLATE \"C\";"
	" END IF; END $raced$",
	NULL,
};

/* (8) What a 304 feeds the children without a read-back: a page row
 * keeps the values its items' descendants' URLs take of them (fields,
 * raced's packing: import_fields.h), written with the page's keys.  A
 * read-back also noticed rows deleted behind raced's back (fewer rows
 * than keys: the page is fetched again); without one, raced_stage_deletes
 * counts the statements that deleted from or truncated a stage table
 * (raced_stage_deleted(), a statement trigger the set-up puts on each),
 * and an import trusts a stage's stored fields only while the count is
 * what the previous succeeded import found at its start
 * (docs/architecture.md, "Children of a 304 without a read-back"). */
static const char *const migration_8[] = {
	"ALTER TABLE raced_pages ADD COLUMN fields bytea",
	"CREATE TABLE raced_stage_deletes ("
	" stage text COLLATE \"C\" PRIMARY KEY,"
	" deletes bigint NOT NULL)",
	/* SECURITY DEFINER: whoever deletes needs no privilege on raced's
	 * table; the search_path as the migration ran, so a session with
	 * another path still finds it. */
	"CREATE FUNCTION raced_stage_deleted() RETURNS trigger LANGUAGE plpgsql"
	" SECURITY DEFINER SET search_path FROM CURRENT AS $raced$"
	" BEGIN"
	"  INSERT INTO raced_stage_deletes AS d (stage, deletes) VALUES (TG_ARGV[0], 1)"
	"   ON CONFLICT (stage) DO UPDATE SET deletes = d.deletes + 1;"
	"  RETURN NULL;"
	" END $raced$",
	"COMMENT ON COLUMN raced_pages.fields IS 'the values of its items'' fields that the"
	" children''s URLs take, in raced''s packing; NULL: read back from the stage table'",
	"COMMENT ON TABLE raced_stage_deletes IS 'raced: statements that deleted from or truncated"
	" a stage table; an import trusts raced_pages.fields only while this is unchanged'",
	"COMMENT ON COLUMN raced_stage_deletes.stage IS 'the stage (its table''s name)'",
	"COMMENT ON COLUMN raced_stage_deletes.deletes IS 'how many such statements, ever'",
	"COMMENT ON FUNCTION raced_stage_deleted() IS 'raced: the trigger on each stage table that"
	" counts its DELETE and TRUNCATE statements in raced_stage_deletes'",
	NULL,
};

/* (9) raced_stage_deleted() searches raced's schema, then pg_temp last.
 * Made SECURITY DEFINER with the search_path of migration 8, pg_temp came
 * first, as it does for any path not naming it: a role that may delete
 * from a stage table could make a temporary raced_stage_deletes (and a
 * trigger on it) that the function wrote into as raced's role, its
 * delete uncounted and its trigger run with raced's privileges.  The
 * schema is the one the table is in (where migration 8 made both). */
static const char *const migration_9[] = {
	"DO $raced$ DECLARE ns text := (SELECT n.nspname FROM pg_class c"
	" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'raced_stage_deletes'::regclass);"
	" BEGIN EXECUTE format('ALTER FUNCTION %I.raced_stage_deleted() SET search_path = %I, pg_temp',"
	" ns, ns); END $raced$",
	/* the trigger also counts a change of key (the set-up makes it so) */
	"COMMENT ON TABLE raced_stage_deletes IS 'raced: statements that deleted from, truncated or"
	" changed keys of a stage table; an import trusts raced_pages.fields only while this is"
	" unchanged'",
	"COMMENT ON COLUMN raced_stage_deletes.deletes IS 'how many such statements, ever'",
	/* and what the reach lists (store_pages.c, reach_lists) */
	"COMMENT ON COLUMN raced_reached.urls IS 'the pages it reached (raced_pages.url), but an"
	" input''s first page that completes it: done lists it (the pages reached are urls || done)'",
	"COMMENT ON FUNCTION raced_stage_deleted() IS 'raced: the trigger on each stage table that"
	" counts its DELETE, TRUNCATE and UPDATE OF key statements in raced_stage_deletes'",
	NULL,
};

static const struct migration migrations[] = {
	{ 1, "import_runs and import_errors", migration_1 },
	{ 2, "import_runs.heartbeat_at", migration_2 },
	{ 3, "raced_pages; import_runs resume and incremental columns", migration_3 },
	{ 4, "raced_columns: typed columns of stage tables", migration_4 },
	{ 5, "comments on raced's tables and columns", migration_5 },
	{ 6, "raced_reached: what an import reached, per batch; raced_pages fillfactor 50",
	  migration_6 },
	{ 7, "raced_pages and raced_reached: stage, urls and inputs COLLATE \"C\"", migration_7 },
	{ 8, "raced_pages.fields; raced_stage_deletes and its trigger function", migration_8 },
	{ 9, "raced_stage_deleted(): its own schema, then pg_temp; comments", migration_9 },
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

int store_schema_version(void)
{
	return migrations[N_MIGRATIONS - 1].version;
}

/* --- stage tables ------------------------------------------------------- */

static bool name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > STORE_NAME_MAX)
		return false;
	if (!((n[0] >= 'a' && n[0] <= 'z') || n[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	return strcmp(n, "import_runs") != 0 && strcmp(n, "import_errors") != 0 &&
	       strcmp(n, "raced_schema_version") != 0 && strcmp(n, "raced_pages") != 0 &&
	       strcmp(n, "raced_columns") != 0 && strcmp(n, "raced_reached") != 0 &&
	       strcmp(n, "raced_stage_deletes") != 0;
}

#define CREATE_FMT \
	"CREATE TABLE IF NOT EXISTS \"%s\" (" \
	" key text PRIMARY KEY," \
	" parent_key text," \
	" payload jsonb NOT NULL," \
	" first_import bigint," \
	" last_import bigint," \
	" updated_at timestamptz NOT NULL DEFAULT now()," \
	" removed_import bigint)"

/* A table created before migration 3 gains removed_import, and every
 * stage table the statement trigger that counts its DELETE, TRUNCATE and
 * UPDATE OF key statements (raced_stage_deleted, migration 8: a stage's
 * stored fields are trusted only while no row could have gone behind
 * raced's back; a row whose key is changed is gone under the key its
 * page lists, and raced's own writes never set key, so never fire it).
 * A trigger made without UPDATE (before it was counted) is made again.
 * Both looked up in the catalog first: ALTER TABLE and CREATE TRIGGER
 * would lock the table at every connect, queueing behind any long reader
 * of it. */
#define REMOVED_COLUMN_FMT \
	"DO $raced$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute" \
	" WHERE attrelid = '\"%s\"'::regclass AND attname = 'removed_import'" \
	" AND NOT attisdropped) THEN" \
	" ALTER TABLE \"%s\" ADD COLUMN removed_import bigint; END IF;" \
	" IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '\"%s\"'::regclass" \
	" AND tgname = 'raced_deleted' AND (tgtype & 16) <> 0) THEN" \
	" DROP TRIGGER IF EXISTS raced_deleted ON \"%s\";" \
	" CREATE TRIGGER raced_deleted AFTER DELETE OR TRUNCATE OR UPDATE OF key ON \"%s\"" \
	" FOR EACH STATEMENT EXECUTE FUNCTION raced_stage_deleted('%s'); END IF; END $raced$"

/* The plain INSERT and the fill (STORE_WRITE_PLAIN, STORE_WRITE_FILL)
 * are the upsert's first part, the fill with ON CONFLICT DO NOTHING: the
 * same parameters, so a batch switches from one to another by the
 * prepared statement's name alone.
 *
 * A conflicting row is written only when it changed (parent_key, then
 * payload: the jsonb comparison is the costly one) or was marked
 * removed; the payload and updated_at are kept as they are (the TOASTed
 * value not copied) when only the parent or the removal changed. */
/* The typed columns in force (store_schema_upsert_sql) add their names,
 * casts, arrays and assignments at the four %s after the table's name. */
#define INSERT_FMT \
	"INSERT INTO \"%s\" AS t (key, parent_key, payload, first_import, last_import, updated_at%s)" \
	" SELECT u.k, u.p, u.j, $4::bigint, $4::bigint, now()%s" \
	" FROM unnest($1::text[], $2::text[], $3::jsonb[]%s) AS u(k, p, j%s)"
#define FILL_FMT INSERT_FMT " ON CONFLICT (key) DO NOTHING"
#define UPSERT_FMT INSERT_FMT \
	" ON CONFLICT (key) DO UPDATE SET" \
	"  payload = CASE WHEN t.payload IS DISTINCT FROM excluded.payload" \
	"   THEN excluded.payload ELSE t.payload END," \
	"  updated_at = CASE WHEN t.payload IS DISTINCT FROM excluded.payload" \
	"   THEN now() ELSE t.updated_at END," \
	"  parent_key = excluded.parent_key," \
	"  last_import = excluded.last_import," \
	"  removed_import = NULL%s" \
	" WHERE t.removed_import IS NOT NULL" \
	"  OR t.parent_key IS DISTINCT FROM excluded.parent_key" \
	"  OR t.payload IS DISTINCT FROM excluded.payload"

/* Stored rows by key ($1, a text[]), in the order of the keys.  Prepared
 * once per connection: each key is a LATERAL probe (OFFSET 0 keeps it
 * one), so that no plan, made whatever the table's size then, turns the
 * read into a scan of the table. */
#define READ_FMT \
	"SELECT t.key, t.parent_key, t.payload::text" \
	" FROM unnest($1::text[]) WITH ORDINALITY AS k(key, o) CROSS JOIN LATERAL (" \
	"  SELECT r.key, r.parent_key, r.payload FROM \"%s\" r WHERE r.key = k.key OFFSET 0) t" \
	" ORDER BY k.o"

/* Narrow read-backs (store_read_committed_fields): rows by key as
 * READ_FMT, with the text of each field the children's URLs read (the
 * four %s: the fields' values' columns in the answer and in the probe,
 * the test that every one is a value, the table).  A row whose fields are
 * not all values shorter than value_max comes whole (its payload),
 * so that the import's error about it is the one the whole row gives. */
#define READ_FIELDS_FMT \
	"SELECT t.key, t.ok, CASE WHEN t.ok THEN NULL ELSE t.payload::text END%s" \
	" FROM unnest($1::text[]) WITH ORDINALITY AS k(key, o) CROSS JOIN LATERAL (" \
	"  SELECT r.key, r.payload%s, %s AS ok FROM \"%s\" r WHERE r.key = k.key OFFSET 0) t" \
	" ORDER BY k.o"

/* The same rows by their parents ($1, a text[] of parent keys, each
 * once): one range of the parent_key index a parent, a third of the
 * buffers of a probe a key (docs/performance.md).  Every current row of
 * those parents comes, in no order: the store keeps those of the keys
 * asked (store.c, parent_done; a key on a page is current, and one that
 * is not is read again by key).  Used only while the index is there (the
 * probe at a run's start): without it each range would scan the table. */
#define READ_PARENT_FMT \
	"SELECT t.key, t.ok, CASE WHEN t.ok THEN NULL ELSE t.payload::text END%s" \
	" FROM unnest($1::text[]) AS k(pk) CROSS JOIN LATERAL (" \
	"  SELECT r.key, r.payload%s, %s AS ok FROM \"%s\" r" \
	"  WHERE r.parent_key = k.pk AND r.removed_import IS NULL OFFSET 0) t"

/* The keys of the pages import $1 reached in stage S: what it saw.  The
 * urls are made distinct first (a page reached twice, by a resume, counts
 * once), then each finds its page row by the primary key. */
#define SEEN_KEYS_FMT \
	"SELECT k.k FROM (SELECT DISTINCT u.u FROM raced_reached r, unnest(r.urls || r.done) AS u(u)" \
	"  WHERE r.import_id = $1::bigint AND r.stage = '%s') s" \
	" JOIN raced_pages p ON p.stage = '%s' AND p.url = s.u AND p.seen_import >= 0," \
	" unnest(p.keys) AS k(k)"

/* Removals (STORE_FINISH_REMOVALS), set-based.  Marking is an anti-join
 * against the keys seen, duplicates and all (a hash of them; no sort to
 * make them distinct).  Unmarking runs only when the table has a row
 * marked removed (the uncommon case: the EXISTS is a one-time filter
 * ahead of the join, so an import that removed nothing before does not
 * read the keys a second time).  Neither runs when the finish kept the
 * stage's removals (STORE_KEPT_FMT, also a one-time filter): it would
 * find nothing to do. */
#define MARK_FMT \
	"UPDATE \"%s\" t SET removed_import = $1::bigint" \
	" WHERE NOT " STORE_KEPT_FMT " AND t.removed_import IS NULL" \
	"  AND NOT EXISTS (SELECT 1 FROM (" SEEN_KEYS_FMT ") x WHERE x.k = t.key)"
#define UNMARK_FMT \
	"WITH s AS (SELECT DISTINCT x.k FROM (" SEEN_KEYS_FMT ") x)" \
	" UPDATE \"%s\" t SET removed_import = NULL FROM s" \
	" WHERE t.removed_import IS NOT NULL AND t.key = s.k AND NOT " STORE_KEPT_FMT \
	"  AND EXISTS (SELECT 1 FROM \"%s\" r WHERE r.removed_import IS NOT NULL)"

/* The cursor (store_get_cursor): the latest succeeded run's start, and the
 * largest value at JSON pointer $1 (NULL: not asked; its tokens
 * unescaped, ~1 then ~0) among the rows succeeded runs wrote. */
#define CURSOR_FMT \
	"SELECT json_build_object('last_success', (SELECT to_char(r.started_at AT TIME ZONE 'UTC'," \
	"  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM import_runs r WHERE r.status = 'succeeded'" \
	"  ORDER BY r.id DESC LIMIT 1)," \
	" 'max', CASE WHEN $1::text IS NOT NULL THEN (SELECT x.v FROM (" \
	"  SELECT t.payload #> ARRAY(SELECT replace(replace(e.tok, '~1', '/'), '~0', '~')" \
	"   FROM unnest(string_to_array(substr($1::text, 2), '/')) WITH ORDINALITY AS e(tok, o)" \
	"   ORDER BY e.o) AS v" \
	"  FROM \"%s\" t WHERE t.last_import IN" \
	"   (SELECT r.id FROM import_runs r WHERE r.status = 'succeeded')) x" \
	"  WHERE x.v IS NOT NULL AND x.v <> 'null'::jsonb ORDER BY x.v DESC LIMIT 1) END)::text"

/* A finished run's counts of the stage, exact from the tables: "stored"
 * the rows the run wrote (last_import, across its resumes), not the
 * items it sent (two items of one key are one row); "shared_keys" the
 * items on the pages it reached whose key another item there had too
 * (a `key =` that is not unique shows here).
 *
 * Each is read without a scan when it is known: no row has last_import
 * = $1 when the run sent the table none ($2) and is its import's only
 * run; when the finish kept the stage's removals (STORE_KEPT_FMT) the
 * pages reached are the previous run's with the same keys, so its
 * shared_keys stand; when it kept them as a first import ($3, the keys
 * its page records listed, from the store: store_runs.c,
 * FIRST_DECIDED_SQL), each row it wrote is one distinct key of those
 * listed.  COALESCE and CASE run the scans only when needed. */
#define COUNTS_FMT \
	"UPDATE import_runs SET counts = coalesce(counts, '{}'::jsonb) || jsonb_build_object('%s'," \
	" coalesce(counts->'%s', '{}'::jsonb) || jsonb_build_object(" \
	"  'stored', CASE WHEN $2::boolean AND resumes = 0 THEN 0" \
	"   ELSE (SELECT count(*) FROM \"%s\" WHERE last_import = $1::bigint) END," \
	"  'shared_keys', coalesce(CASE WHEN " STORE_KEPT_FMT " AND $3::bigint IS NOT NULL" \
	"    THEN $3::bigint - (SELECT count(*) FROM \"%s\" WHERE last_import = $1::bigint) END," \
	"   CASE WHEN " STORE_KEPT_FMT " AND $3::bigint IS NULL THEN (SELECT" \
	"    CASE WHEN jsonb_typeof(p.counts->'%s'->'shared_keys') = 'number'" \
	"     THEN (p.counts->'%s'->>'shared_keys')::bigint END" \
	"    FROM import_runs p WHERE p.id < $1::bigint ORDER BY p.id DESC LIMIT 1) END," \
	"   (SELECT count(*) - count(DISTINCT x.k) FROM (" SEEN_KEYS_FMT ") x))))" \
	" WHERE id = $1::bigint AND coalesce(jsonb_typeof(counts->'%s'), 'object') = 'object'"

/* asprintf that leaves *out NULL on failure: 0 or -1. */
#define FORMAT(out, ...) (asprintf(out, __VA_ARGS__) < 0 ? (*(out) = NULL, -1) : 0)

/* Secondary indexes after a first import: a table's index that raced's
 * own statements never use (the stage's parent_key, the link table's
 * (key, parent_key): they serve readers, "a race's entries", "an
 * athlete's entries") costs a first import a btree insert a row, about a
 * sixth of PostgreSQL's CPU in all (16 %, docs/performance.md, "PostgreSQL's
 * CPU per stored row in a first import").  So at connect it is made only
 * when missing and the table holds a row, and the finish of every import
 * makes it when missing (one sorted build, after the rows).  The catalog
 * is read first: CREATE INDEX IF NOT EXISTS locks the table even when the
 * index is there. */
/* A build another connection has under way is invisible to to_regclass
 * and to IF NOT EXISTS: this one then waits for it and fails on the
 * catalog's unique index (23505) when it commits.  The index is then
 * there, which is all either wanted (with [database] connections > 1 a
 * finish's builds run on every connection, and a connection that
 * reconnects meanwhile makes the same ones at its set-up). */
#define INDEX_RACE_LOST " EXCEPTION WHEN unique_violation OR duplicate_table THEN NULL;"
#define SECONDARY_INDEX_FMT \
	"DO $raced$ BEGIN IF to_regclass('\"%s%s\"') IS NULL THEN%s" \
	" BEGIN CREATE INDEX IF NOT EXISTS \"%s%s\" ON \"%s\" (%s);" INDEX_RACE_LOST " END;" \
	"%s END IF; END $raced$"

/* raced_pages' index on (stage, input), as the tables' above: what an
 * import reads of an input (store_pages_inputs_sql) and the link records
 * by URL go through it; a first import does neither for its own pages
 * (store_state_empty; the by-URL statement also names the primary key). */
#define PAGES_INDEX_HEAD "DO $raced$ BEGIN IF to_regclass('raced_pages_input') IS NULL THEN"
#define PAGES_INDEX_CREATE \
	" BEGIN CREATE INDEX IF NOT EXISTS raced_pages_input ON raced_pages (stage, input);" INDEX_RACE_LOST " END;"
const char store_pages_index_sql[] =
	PAGES_INDEX_HEAD " IF EXISTS (SELECT 1 FROM raced_pages) THEN" PAGES_INDEX_CREATE
	" END IF; END IF; END $raced$";
const char store_pages_index_finish_sql[] =
	PAGES_INDEX_HEAD PAGES_INDEX_CREATE " END IF; END $raced$";

int store_schema_index_sql(char **out, const char *base, const char *suffix, const char *table,
                           const char *columns, bool only_with_rows)
{
	const char *with_rows = only_with_rows ? " IF EXISTS (SELECT 1 FROM \"" : "";
	char *cond = NULL;
	*out = NULL;
	if (only_with_rows && FORMAT(&cond, "%s%s\") THEN", with_rows, table) != 0)
		return -1;
	int rc = FORMAT(out, SECONDARY_INDEX_FMT, base, suffix, cond ? cond : "", base, suffix, table,
	                columns, only_with_rows ? " END IF;" : "");
	free(cond);
	return rc;
}

int store_table_sql_init(struct store_table_sql *t, const char *name, const char *parent,
                         bool dedupe, char *err)
{
	if (!name_valid(name))
		return err_set(err, "store: stage name '%s' cannot be a table name: use 1 to %d of "
		               "[a-z0-9_], starting with a letter or '_', other than import_runs, "
		               "import_errors, raced_schema_version, raced_pages, raced_columns, "
		               "raced_reached", name, STORE_NAME_MAX);
	/* Validated above to [a-z0-9_]: double quotes make it an identifier
	 * even when it is a reserved word ("user", "order"). */
	int rc = 0;
	t->name = strdup(name);
	rc |= t->name ? 0 : -1;
	rc |= FORMAT(&t->create_sql, CREATE_FMT, name);
	rc |= store_schema_index_sql(&t->index_sql, name, "_parent_key", name, "parent_key", true);
	rc |= store_schema_index_sql(&t->index_finish_sql, name, "_parent_key", name, "parent_key",
	                             false);
	rc |= FORMAT(&t->upsert_name, "raced_upsert_%s", name);
	rc |= FORMAT(&t->upsert_sql, UPSERT_FMT, name, "", "", "", "", "");
	rc |= FORMAT(&t->insert_name, "raced_insert_%s", name);
	rc |= FORMAT(&t->fill_name, "raced_fill_%s", name);
	rc |= FORMAT(&t->column_sql, REMOVED_COLUMN_FMT, name, name, name, name, name, name);
	rc |= FORMAT(&t->read_name, "raced_read_%s", name);
	rc |= FORMAT(&t->read_sql, READ_FMT, name);
	rc |= FORMAT(&t->counts_sql, COUNTS_FMT, name, name, name, name, name, name, name, name,
	             name, name, name);
	rc |= FORMAT(&t->mark_sql, MARK_FMT, name, name, name, name);
	rc |= FORMAT(&t->unmark_sql, UNMARK_FMT, name, name, name, name, name);
	rc |= FORMAT(&t->cursor_sql, CURSOR_FMT, name);
	if (parent && !name_valid(parent))
		return err_set(err, "store: parent stage name '%s' of '%s' cannot be a table name",
		               parent, name);
	t->dedupe = dedupe;
	if (parent)
		rc |= (t->parent = strdup(parent)) ? 0 : -1;
	if (rc == 0 && dedupe)
		rc |= store_links_sql_init(t);
	if (rc)
		return err_set(err, "store: out of memory");
	return 0;
}

/* A token read exactly alike by jsondoc (as the import looks a field up)
 * and by jsonb's #> (text-array paths): plain characters only, so that
 * it needs no escaping in the SQL either, and a number only as an array
 * index is written (jsonb would also take "01", "-1", "+1"). */
static bool token_plain(const char *t, size_t len, bool member)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	if (t[0] == '-' || (t[0] >= '0' && t[0] <= '9')) {
		/* a member name is never an index (jsonb would index an array) */
		if (member || (t[0] == '0' && len > 1) || t[0] == '-')
			return false;
		for (size_t i = 0; i < len; i++)
			if (t[i] < '0' || t[i] > '9')
				return false;
	}
	return true;
}

/* The field's path as a text[] literal ('{"a","b"}'), or NULL: not plain,
 * or out of memory (*oom). */
static char *field_path(const char *f, bool *oom)
{
	bool member = f[0] != '/';
	const char *p = member ? f : f + 1;
	char *out = strdup("'{");
	while (out) {
		size_t len = member ? strlen(p) : strcspn(p, "/");
		if (!token_plain(p, len, member)) {
			free(out);
			return NULL;
		}
		char *next = NULL;
		if (asprintf(&next, "%s%s\"%.*s\"", out, out[2] ? "," : "", (int)len, p) < 0)
			next = NULL;
		free(out);
		out = next;
		p += len;
		if (!*p || member)
			break;
		p++;
	}
	char *lit = NULL;
	if (out && member && asprintf(&lit, "'%s'::text", f) < 0)
		lit = NULL;
	else if (out && !member && asprintf(&lit, "%s}'::text[]", out) < 0)
		lit = NULL;
	free(out);
	*oom = !lit;
	return lit;
}

int store_read_fields_init(struct store_table_sql *t, const struct store_read_fields *rf,
                           char *err)
{
	if (!rf || rf->n > STORE_READ_FIELDS_MAX)
		return 0;
	char *paths[STORE_READ_FIELDS_MAX];
	size_t np = 0;
	bool oom = false;
	for (; np < rf->n; np++)
		if (!(paths[np] = field_path(rf->fields[np], &oom)))
			break;
	char *cols = strdup(""), *vals = strdup(""), *ok = strdup(rf->n ? "" : "true");
	for (size_t i = 0; np == rf->n && cols && vals && ok && i < rf->n; i++) {
		char *c = NULL, *v = NULL, *o = NULL;
		if (asprintf(&c, "%s, t.v%zu", cols, i) < 0)
			c = NULL;
		/* a member name by -> (cheaper than a path) */
		const char *op = rf->fields[i][0] == '/' ? "#>" : "->";
		if (asprintf(&v, "%s, r.payload %s> %s AS v%zu", vals, op, paths[i], i) < 0)
			v = NULL;
		/* jsonb_typeof of a missing field is NULL: not narrow */
		if (asprintf(&o, "%s%scoalesce(jsonb_typeof(r.payload %s %s) IN ('string', 'number',"
		             " 'boolean') AND octet_length(r.payload %s> %s) < %zu, false)", ok,
		             i ? " AND " : "", op, paths[i], op, paths[i], rf->value_max) < 0)
			o = NULL;
		free(cols);
		free(vals);
		free(ok);
		cols = c;
		vals = v;
		ok = o;
	}
	int rc = 0;
	if (np == rf->n) {
		rc |= cols && vals && ok ? 0 : -1;
		rc |= rc == 0 && FORMAT(&t->read_fields_sql, READ_FIELDS_FMT, cols, vals, ok, t->name) == 0
		      ? 0 : -1;
		/* short names: PostgreSQL keeps a prepared statement's name to 63
		 * bytes, and a stage's name may have 48 */
		rc |= rc == 0 && FORMAT(&t->read_fields_name, "raced_readf_%s", t->name) == 0
		      ? 0 : -1;
		if (rc == 0 && t->parent && !t->dedupe) {
			rc |= FORMAT(&t->read_parent_sql, READ_PARENT_FMT, cols, vals, ok, t->name);
			rc |= FORMAT(&t->read_parent_name, "raced_readp_%s", t->name);
		}
		t->fields = rc == 0 ? calloc(rf->n ? rf->n : 1, sizeof *t->fields) : NULL;
		rc |= t->fields ? 0 : -1;
		for (size_t i = 0; rc == 0 && i < rf->n; i++, t->n_fields++)
			rc |= (t->fields[i] = strdup(rf->fields[i])) ? 0 : -1;
	} else if (oom) {
		rc = -1;
	}
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	free(cols);
	free(vals);
	free(ok);
	if (rc)
		return err_set(err, "store: out of memory");
	return 0;
}

void store_table_sql_free(struct store_table_sql *t)
{
	for (size_t i = 0; i < t->n_fields; i++)
		free(t->fields[i]);
	free(t->fields);
	free(t->read_fields_name);
	free(t->read_fields_sql);
	free(t->read_parent_name);
	free(t->read_parent_sql);
	free(t->name);
	free(t->upsert_name);
	free(t->upsert_sql);
	free(t->insert_name);
	free(t->fill_name);
	free(t->create_sql);
	free(t->index_sql);
	free(t->index_finish_sql);
	free(t->column_sql);
	free(t->read_name);
	free(t->read_sql);
	free(t->counts_sql);
	free(t->mark_sql);
	free(t->unmark_sql);
	free(t->cursor_sql);
	free(t->parent);
	free(t->link_name);
	free(t->link_create_sql);
	free(t->link_index_sql);
	free(t->link_index_finish_sql);
	free(t->link_write_name);
	free(t->link_write_sql);
	free(t->link_keys_name);
	free(t->link_keys_sql);
	free(t->link_fresh_name);
	free(t->link_fresh_sql);
	free(t->link_plain_name);
	free(t->link_plain_sql);
	free(t->unlink_sql);
	store_columns_free(t);
}

/* Append printf-style to *sb (NULL once out of memory). */
__attribute__((format(printf, 2, 3)))
static void sb_add(char **sb, const char *fmt, ...)
{
	if (!*sb)
		return;
	char *piece = NULL, *next = NULL;
	va_list ap;
	va_start(ap, fmt);
	int rc = vasprintf(&piece, fmt, ap);
	va_end(ap);
	if (rc < 0 || asprintf(&next, "%s%s", *sb, piece) < 0)
		next = NULL;
	free(piece);
	free(*sb);
	*sb = next;
}

char *store_schema_upsert_sql(const struct store_table_sql *t, const bool *inforce, int mode)
{
	char *names = strdup(""), *casts = strdup(""), *arrays = strdup(""), *alias = strdup("");
	char *sets = strdup(""), *sql = NULL;
	for (size_t c = 0; c < t->n_cols; c++) {
		/* every configured column's array is a parameter, used or not */
		sb_add(&arrays, ", $%zu::text[]", 5 + c);
		sb_add(&alias, ", c%zu", c);
		if (!inforce || !inforce[c])
			continue;
		sb_add(&names, ", \"%s\"", t->cols[c].name);
		sb_add(&casts, ", u.c%zu::%s", c, t->cols[c].type);
		sb_add(&sets, ", \"%s\" = excluded.\"%s\"", t->cols[c].name, t->cols[c].name);
	}
	if (names && casts && arrays && alias && sets &&
	    (mode == STORE_WRITE_PLAIN ? FORMAT(&sql, INSERT_FMT, t->name, names, casts, arrays, alias)
	     : mode == STORE_WRITE_FILL ? FORMAT(&sql, FILL_FMT, t->name, names, casts, arrays, alias)
	     : FORMAT(&sql, UPSERT_FMT, t->name, names, casts, arrays, alias, sets)) != 0)
		sql = NULL;
	free(names);
	free(casts);
	free(arrays);
	free(alias);
	free(sets);
	return sql;
}

/* --- the set-up chain --------------------------------------------------- */

static struct store_op *setup_op(enum store_step step, size_t n_stmts)
{
	struct store_op *op = store_op_new(STORE_OP_SETUP, n_stmts);
	if (op)
		op->step = step;
	return op;
}

/* name as a double-quoted identifier ("a""b"); NULL when out of memory. */
static char *quote_ident(const char *name)
{
	size_t n = 2;
	for (const char *p = name; *p; p++)
		n += *p == '"' ? 2 : 1;
	char *q = malloc(n + 1), *w = q;
	if (!q)
		return NULL;
	*w++ = '"';
	for (const char *p = name; *p; p++) {
		if (*p == '"')
			*w++ = '"';
		*w++ = *p;
	}
	*w++ = '"';
	*w = '\0';
	return q;
}

struct store_op *store_schema_warm(void)
{
	struct store_op *op = setup_op(STORE_STEP_WARM, 1);
	if (op)
		store_op_sql(op, 0, store_schema_warm_sql);
	return op;
}

/* Every connection's session runs without JIT.  raced's statements are
 * short index probes over arrays of up to a batch, but the planner's
 * estimates for unnest() and the link tables put several above
 * jit_above_cost: on a server with JIT (Debian's default), each of the
 * first five executions of a prepared link write (custom plans) spent
 * 160-340 ms compiling and 5-10 ms running, and a resume's first link
 * writes held every state read queued behind them for 2 s of its 5
 * (docs/performance.md, "Resume", 2026-12-07). */
#define STORE_SCHEMA_NO_JIT "SET jit = off"

struct store_op *store_schema_probe(const char *synchronous_commit, const char *schema)
{
	size_t k = schema ? 6 : 4;
	struct store_op *op = setup_op(STORE_STEP_PROBE, k + 2);
	const char *lock[] = { STORE_ADVISORY_LOCK };
	const char *sync[] = { synchronous_commit ? synchronous_commit : "on" };
	/* Before any statement is planned. */
	if (op)
		store_op_sql(op, 0, STORE_SCHEMA_NO_JIT);
	/* Then, whatever the server's default: raced reports a batch stored
	 * only once it is durable (issue 20: "off" lost committed rows). */
	if (!op || store_op_stmt(op, 1, "SELECT set_config('synchronous_commit', $1, false)", 1,
	                         sync) != 0 ||
	    store_op_stmt(op, 3, "SELECT pg_advisory_lock($1::bigint)", 1, lock) != 0) {
		store_op_free(op);
		return NULL;
	}
	/* The set-up's work is catalog reads, the views' DO block and, after
	 * a first import stopped before its finish or migration 7, an index
	 * build over a table: a statement_timeout meant for queries must not
	 * keep raced from ever getting ready on a loaded server.  The unlock
	 * op resets it. */
	store_op_sql(op, 2, "SET statement_timeout = 0");
	if (schema) {
		/* Under the lock (two daemons creating it at once), then the
		 * connection's only schema: every unqualified name raced
		 * writes or looks up (::regclass, to_regclass) is there. */
		char *q = quote_ident(schema);
		const char *path[] = { q };
		if (!q || FORMAT(&op->sql_owned, "CREATE SCHEMA IF NOT EXISTS %s", q) != 0 ||
		    store_op_stmt(op, 5, "SELECT set_config('search_path', $1, false)", 1, path) != 0) {
			free(q);
			store_op_free(op);
			return NULL;
		}
		free(q);
		store_op_sql(op, 4, op->sql_owned);
	}
	store_op_sql(op, k, "CREATE TABLE IF NOT EXISTS raced_schema_version ("
	                           " version integer PRIMARY KEY,"
	                           " description text NOT NULL,"
	                           " applied_at timestamptz NOT NULL DEFAULT now())");
	store_op_sql(op, k + 1, "SELECT coalesce(max(version), 0) FROM raced_schema_version");
	return op;
}

int store_schema_read_version(const PGresult *res, const char *err, int *version, char *msg)
{
	if (err || !res || PQntuples(res) != 1)
		return err_set(msg, "reading raced_schema_version failed: %s", err ? err : "no row");
	*version = atoi(PQgetvalue(res, 0, 0));
	if (*version > store_schema_version())
		return err_set(msg, "database schema version %d is newer than this raced knows (%d): "
		               "upgrade raced", *version, store_schema_version());
	return 0;
}

/* BEGIN, the migration's statements, its raced_schema_version row, COMMIT. */
static struct store_op *migration_op(const struct migration *m)
{
	size_t n = 0;
	while (m->stmts[n])
		n++;
	struct store_op *op = setup_op(STORE_STEP_MIGRATION, n + 3);
	if (!op)
		return NULL;
	op->version = m->version;
	char ver[16];
	snprintf(ver, sizeof ver, "%d", m->version);
	const char *p[] = { ver, m->description };
	if (store_op_stmt(op, n + 1, "INSERT INTO raced_schema_version (version, description)"
	                             " VALUES ($1, $2)", 2, p) != 0) {
		store_op_free(op);
		return NULL;
	}
	store_op_sql(op, 0, "BEGIN");
	for (size_t k = 0; k < n; k++)
		store_op_sql(op, k + 1, m->stmts[k]);
	store_op_sql(op, n + 2, "COMMIT");
	return op;
}

/* Each stage table, its removed_import column and its index, and for a
 * dedupe stage its link table and the link table's index; then SELECT 1,
 * so that the op has a result even with no tables. */
#define TABLE_STMTS 3
#define LINK_STMTS 2
static struct store_op *tables_op(const struct store_table_sql *tables, size_t n)
{
	size_t n_links = 0;
	for (size_t i = 0; i < n; i++)
		n_links += tables[i].link_name != NULL;
	struct store_op *op = setup_op(STORE_STEP_TABLES, 1 + TABLE_STMTS * n + LINK_STMTS * n_links + 1);
	if (!op)
		return NULL;
	size_t k = 0;
	store_op_sql(op, k++, store_pages_index_sql);
	for (size_t i = 0; i < n; i++) {
		store_op_sql(op, k++, tables[i].create_sql);
		store_op_sql(op, k++, tables[i].column_sql);
		store_op_sql(op, k++, tables[i].index_sql);
		if (!tables[i].link_name)
			continue;
		store_op_sql(op, k++, tables[i].link_create_sql);
		store_op_sql(op, k++, tables[i].link_index_sql);
	}
	store_op_sql(op, k, "SELECT 1");
	return op;
}

/* The typed columns' function, then its one statement over every table. */
static struct store_op *columns_op(const char *want)
{
	struct store_op *op = setup_op(STORE_STEP_COLUMNS, 2);
	const char *p[] = { want };
	if (op && store_op_stmt(op, 1, store_columns_apply_sql, 1, p) != 0) {
		store_op_free(op);
		return NULL;
	}
	if (op)
		store_op_sql(op, 0, store_columns_function_sql);
	return op;
}

/* A table's reads of stored rows (by key; narrow; by parent), named,
 * into op from statement k on: the next free statement. */
static size_t prepare_reads(struct store_op *op, size_t k, const struct store_table_sql *t)
{
	store_op_sql(op, k, t->read_sql);
	op->stmts[k++].name = t->read_name;
	if (t->read_fields_name) {
		store_op_sql(op, k, t->read_fields_sql);
		op->stmts[k++].name = t->read_fields_name;
	}
	if (t->read_parent_name) {
		store_op_sql(op, k, t->read_parent_sql);
		op->stmts[k++].name = t->read_parent_name;
	}
	return k;
}

/* Once the columns in force are known: each table's writes prepared
 * (writes[mode][i]), its read of rows by key and a dedupe stage's three
 * link writes, the page records' write and the read of inputs' pages, the
 * comments and views (store_views.h: a view reads the catalog's columns,
 * typed ones included, so it comes after them); SELECT 1.  The reads are
 * prepared because planning them cost about as much as running them
 * (docs/performance.md); their plans cannot scan: see their SQL. */
static struct store_op *prepare_op(const struct store_table_sql *tables, size_t n,
                                   char *const *const *writes)
{
	size_t n_links = 0;
	for (size_t i = 0; i < n; i++)
		n_links += tables[i].link_name != NULL;
	char *views = store_views_sql(tables, n);
	if (!views)
		return NULL;
	size_t n_narrow = 0;
	for (size_t i = 0; i < n; i++)
		n_narrow += (tables[i].read_fields_name != NULL) + (tables[i].read_parent_name != NULL);
	struct store_op *op = setup_op(STORE_STEP_PREPARE,
	                               (STORE_WRITES + 1) * n + n_narrow + 4 * n_links + 7);
	if (!op) {
		free(views);
		return NULL;
	}
	op->sql_owned = views;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *names[STORE_WRITES] = { tables[i].upsert_name, tables[i].insert_name,
		                                    tables[i].fill_name };
		for (int m = 0; m < STORE_WRITES; m++) {
			store_op_sql(op, k, writes[m][i]);
			op->stmts[k++].name = names[m];
		}
		k = prepare_reads(op, k, &tables[i]);
		if (!tables[i].link_name)
			continue;
		store_op_sql(op, k, tables[i].link_write_sql);
		op->stmts[k++].name = tables[i].link_write_name;
		store_op_sql(op, k, tables[i].link_keys_sql);
		op->stmts[k++].name = tables[i].link_keys_name;
		store_op_sql(op, k, tables[i].link_fresh_sql);
		op->stmts[k++].name = tables[i].link_fresh_name;
		store_op_sql(op, k, tables[i].link_plain_sql);
		op->stmts[k++].name = tables[i].link_plain_name;
	}
	store_op_sql(op, k, store_pages_write_sql);
	op->stmts[k++].name = STORE_PAGES_WRITE;
	store_op_sql(op, k, store_reach_write_sql);
	op->stmts[k++].name = STORE_REACH_WRITE;
	store_op_sql(op, k, store_pages_inputs_sql);
	op->stmts[k++].name = STORE_INPUTS_READ;
	store_op_sql(op, k, store_preload_sql);
	op->stmts[k++].name = STORE_STAGE_READ;
	store_op_sql(op, k, store_preload_scan_sql);
	op->stmts[k++].name = STORE_STAGE_SCAN;
	store_op_sql(op, k++, views);
	store_op_sql(op, k, "SELECT 1");
	return op;
}

static struct store_op *unlock_op(void)
{
	struct store_op *op = setup_op(STORE_STEP_UNLOCK, 2);
	const char *lock[] = { STORE_ADVISORY_LOCK };
	if (op && store_op_stmt(op, 0, "SELECT pg_advisory_unlock($1::bigint)", 1, lock) != 0) {
		store_op_free(op);
		return NULL;
	}
	if (op)
		store_op_sql(op, 1, "RESET statement_timeout");  /* the session's own again */
	return op;
}

/* Append op to out; false (and nothing appended) for NULL. */
static bool append(struct store_op_list *out, struct store_op *op)
{
	if (op)
		store_op_push(out, op);
	return op != NULL;
}

int store_schema_chain(int current, const struct store_table_sql *tables, size_t n_tables,
                       const char *want, struct store_op_list *out)
{
	for (size_t m = 0; m < N_MIGRATIONS; m++)
		if (migrations[m].version > current && !append(out, migration_op(&migrations[m])))
			return -1;
	if (!append(out, tables_op(tables, n_tables)) || !append(out, columns_op(want)))
		return -1;
	return 0;
}

struct store_op *store_schema_reader(const char *schema, const struct store_table_sql *tables,
                                     size_t n_tables)
{
	size_t k = schema ? 2 : 1, n_narrow = 0;
	for (size_t i = 0; i < n_tables; i++)
		n_narrow += (tables[i].read_fields_name != NULL) + (tables[i].read_parent_name != NULL);
	struct store_op *op = setup_op(STORE_STEP_READER, k + n_tables + n_narrow + 1);
	if (!op)
		return NULL;
	store_op_sql(op, 0, STORE_SCHEMA_NO_JIT);
	if (schema) {
		char *q = quote_ident(schema);
		const char *path[] = { q };
		int rc = q ? store_op_stmt(op, 1, "SELECT set_config('search_path', $1, false)", 1, path)
		           : -1;
		free(q);
		if (rc != 0) {
			store_op_free(op);
			return NULL;
		}
	}
	for (size_t i = 0; i < n_tables; i++) {
		k = prepare_reads(op, k, &tables[i]);
	}
	store_op_sql(op, k, "SELECT 1");
	return op;
}

int store_schema_chain_end(const struct store_table_sql *tables, size_t n_tables,
                           char *const *const *writes, struct store_op_list *out)
{
	if (!append(out, prepare_op(tables, n_tables, writes)) || !append(out, unlock_op()))
		return -1;
	return 0;
}

char *store_schema_empty_sql(const struct store_table_sql *tables, size_t n)
{
	char *sql = strdup("SELECT ''");
	for (size_t i = 0; i < n; i++)
		sb_add(&sql, " || CASE WHEN EXISTS (SELECT 1 FROM \"%s\") THEN 'f' ELSE 't' END",
		       tables[i].name);
	for (size_t i = 0; i < n; i++) {
		if (tables[i].link_name)
			sb_add(&sql, " || CASE WHEN EXISTS (SELECT 1 FROM \"%s\") THEN 'f' ELSE 't' END",
			       tables[i].link_name);
		else
			sb_add(&sql, " || 'f'");
	}
	/* the names are checked identifiers: safe inside a literal */
	for (size_t i = 0; i < n; i++)
		sb_add(&sql, " || CASE WHEN EXISTS (SELECT 1 FROM raced_pages WHERE stage = '%s')"
		       " THEN 'f' ELSE 't' END", tables[i].name);
	/* whether the read-backs by parent have their index (READ_PARENT_FMT) */
	for (size_t i = 0; i < n; i++)
		if (tables[i].read_parent_name)
			sb_add(&sql, " || CASE WHEN to_regclass('\"%s_parent_key\"') IS NULL THEN 'f'"
			       " ELSE 't' END", tables[i].name);
		else
			sb_add(&sql, " || 'f'");
	/* Each table's oid, count of deleting statements and the oid of the
	 * trigger that counts them, NULL when it is missing or disabled
	 * (migration 8): whether its stored fields may be trusted
	 * (store_fields_trusted).  One row a table, not the arguments of one
	 * call: json_build_object takes at most 100 (50 tables), a pipeline
	 * has up to STAGE_MAX_STAGES. */
	if (n == 0) {
		sb_add(&sql, ", NULL::text");
		return sql;
	}
	sb_add(&sql, ", (SELECT json_object_agg(v.s, json_build_array(v.r::oid::bigint,"
	       " coalesce((SELECT d.deletes FROM raced_stage_deletes d WHERE d.stage = v.s), 0),"
	       " (SELECT g.oid::bigint FROM pg_trigger g WHERE g.tgrelid = v.r"
	       " AND g.tgname = 'raced_deleted' AND g.tgenabled IN ('O', 'A'))))"
	       " FROM (VALUES ");
	for (size_t i = 0; i < n; i++)
		sb_add(&sql, "%s('%s', '\"%s\"'::regclass)", i ? ", " : "", tables[i].name,
		       tables[i].name);
	sb_add(&sql, ") AS v(s, r))::text");
	return sql;
}
