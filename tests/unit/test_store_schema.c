/* Unit tests for store_schema: which stage names become tables, and the
 * chain of set-up ops a connection runs for a given schema version. */
#include "check.h"
#include "store_columns.h"
#include "store.h"
#include "store_pages.h"
#include "store_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_names_outside_the_identifier_rule_are_refused(void)
{
	const char *bad[] = { "Races; drop", "", "9lives", "a-b", "import_runs", "import_errors",
	                      "raced_schema_version", "raced_pages", "raced_columns", "raced_reached",
	                      "a23456789012345678901234567890123456789012345678x" /* 49 */ };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct store_table_sql t = { 0 };
		char err[ERR_MAX] = "";
		CHECK_EQ(store_table_sql_init(&t, bad[i], NULL, false, err), -1);
		CHECK(strstr(err, "cannot be a table name") != NULL);
		store_table_sql_free(&t);
	}
}

static void test_reserved_words_and_48_characters_are_names(void)
{
	const char *good[] = { "user", "_a", "order_2",
	                       "a23456789012345678901234567890123456789012345678" /* 48 */ };
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct store_table_sql t = { 0 };
		char err[ERR_MAX] = "";
		CHECK_EQ(store_table_sql_init(&t, good[i], NULL, false, err), 0);
		CHECK_STR(t.name, good[i]);
		store_table_sql_free(&t);
	}
}

static void test_every_statement_quotes_the_table_name(void)
{
	struct store_table_sql t = { 0 };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_table_sql_init(&t, "user", NULL, false, err), 0);
	CHECK(strncmp(t.create_sql, "CREATE TABLE IF NOT EXISTS \"user\" (", 35) == 0);
	CHECK_STR(t.index_sql, "DO $raced$ BEGIN IF to_regclass('\"user_parent_key\"') IS NULL THEN"
	          " IF EXISTS (SELECT 1 FROM \"user\") THEN"
	          " BEGIN CREATE INDEX IF NOT EXISTS \"user_parent_key\" ON \"user\" (parent_key);"
	          " EXCEPTION WHEN unique_violation OR duplicate_table THEN NULL; END; END IF;"
	          " END IF; END $raced$");
	CHECK_STR(t.index_finish_sql, "DO $raced$ BEGIN IF to_regclass('\"user_parent_key\"') IS NULL"
	          " THEN BEGIN CREATE INDEX IF NOT EXISTS \"user_parent_key\" ON \"user\" (parent_key);"
	          " EXCEPTION WHEN unique_violation OR duplicate_table THEN NULL; END;"
	          " END IF; END $raced$");
	CHECK(strncmp(t.upsert_sql, "INSERT INTO \"user\" AS t ", 24) == 0);
	CHECK_STR(t.upsert_name, "raced_upsert_user");
	store_table_sql_free(&t);
}

/* The steps of chain, in order, as a string of letters (M T U). */
static void steps_of(struct store_op_list *chain, char *out, size_t len)
{
	size_t n = 0;
	for (struct store_op *op = chain->head; op && n + 1 < len; op = op->next)
		out[n++] = op->step == STORE_STEP_MIGRATION ? 'M' : op->step == STORE_STEP_TABLES ? 'T'
		         : op->step == STORE_STEP_COLUMNS   ? 'C' : op->step == STORE_STEP_PREPARE ? 'P'
		         : op->step == STORE_STEP_UNLOCK    ? 'U' : '?';
	out[n] = '\0';
}

static void test_a_new_database_gets_every_migration_then_tables_then_unlock(void)
{
	struct store_table_sql t[2] = { { 0 } };
	char err[ERR_MAX] = "", steps[16];
	CHECK_EQ(store_table_sql_init(&t[0], "races", NULL, false, err), 0);
	CHECK_EQ(store_table_sql_init(&t[1], "entries", NULL, false, err), 0);
	struct store_op_list chain = { 0 };
	CHECK_EQ(store_schema_chain(0, t, 2, "{}", &chain), 0);
	steps_of(&chain, steps, sizeof steps);
	CHECK_STR(steps, "MMMMMMMMMTC");
	CHECK_EQ(store_schema_version(), 9);
	struct store_op *m = chain.head, *tables = m->next->next->next->next->next->next->next->next->next;
	CHECK_EQ(m->version, 1);
	CHECK_EQ(m->next->version, 2);
	CHECK_EQ(m->next->next->version, 3);
	CHECK_EQ(m->next->next->next->version, 4);
	CHECK_EQ(m->next->next->next->next->next->version, 6);
	CHECK_EQ(m->next->next->next->next->next->next->version, 7);
	CHECK_EQ(m->next->next->next->next->next->next->next->version, 8);
	CHECK_EQ(m->next->next->next->next->next->next->next->next->version, 9);
	CHECK_STR(m->stmts[0].sql, "BEGIN");
	CHECK_STR(m->stmts[m->n_stmts - 1].sql, "COMMIT");
	CHECK_STR(m->stmts[m->n_stmts - 2].params[0], "1");
	/* raced_pages' input index; per table: create, removed_import,
	 * index; SELECT 1 */
	CHECK_EQ(tables->n_stmts, 8);
	CHECK(tables->stmts[0].sql == store_pages_index_sql);
	CHECK(tables->stmts[2].sql == t[0].column_sql);
	CHECK(tables->stmts[3].sql == t[0].index_sql);
	CHECK_STR(tables->stmts[7].sql, "SELECT 1");
	/* the typed columns: the function, then one statement over all */
	CHECK_EQ(tables->next->n_stmts, 2);
	CHECK_STR(tables->next->stmts[1].params[0], "{}");
	store_op_list_free(&chain);
	/* once the columns in force are known: prepare each table's writes and
	 * read of rows, the page records' write and the read of inputs,
	 * SELECT 1; unlock */
	char *ups[2] = { t[0].upsert_sql, t[1].upsert_sql };
	char *ins[2] = { store_schema_upsert_sql(&t[0], NULL, STORE_WRITE_PLAIN),
	                 store_schema_upsert_sql(&t[1], NULL, STORE_WRITE_PLAIN) };
	char *fill[2] = { store_schema_upsert_sql(&t[0], NULL, STORE_WRITE_FILL),
	                  store_schema_upsert_sql(&t[1], NULL, STORE_WRITE_FILL) };
	CHECK(ins[0] && !strstr(ins[0], "ON CONFLICT") && strstr(ins[0], "INSERT INTO \"races\""));
	CHECK(fill[0] && strstr(fill[0], "ON CONFLICT (key) DO NOTHING"));
	char *const *writes[3] = { ups, ins, fill };
	CHECK_EQ(store_schema_chain_end(t, 2, writes, &chain), 0);
	steps_of(&chain, steps, sizeof steps);
	CHECK_STR(steps, "PU");
	struct store_op *p = chain.head;
	CHECK_EQ(p->n_stmts, 15);
	CHECK_STR(p->stmts[0].name, "raced_upsert_races");
	CHECK_STR(p->stmts[1].name, "raced_insert_races");
	CHECK(p->stmts[1].sql == ins[0]);
	CHECK_STR(p->stmts[2].name, "raced_fill_races");
	CHECK_STR(p->stmts[3].name, "raced_read_races");
	CHECK(p->stmts[3].sql == t[0].read_sql);
	CHECK_STR(p->stmts[4].name, "raced_upsert_entries");
	CHECK_STR(p->stmts[5].name, "raced_insert_entries");
	CHECK_STR(p->stmts[7].name, "raced_read_entries");
	CHECK_STR(p->stmts[8].name, "raced_pages_write");
	CHECK_STR(p->stmts[9].name, "raced_reach_write");
	CHECK_STR(p->stmts[10].name, "raced_inputs_read");
	CHECK_STR(p->stmts[11].name, "raced_stage_read");
	CHECK_STR(p->stmts[12].name, "raced_stage_scan");
	/* the comments and views, after the typed columns */
	CHECK(strncmp(p->stmts[13].sql, "DO $raced$", 10) == 0);
	CHECK(strstr(p->stmts[13].sql, "'races_current', 'entries_current'") != NULL);
	CHECK_STR(p->stmts[14].sql, "SELECT 1");
	store_op_list_free(&chain);
	for (int i = 0; i < 2; i++) {
		free(ins[i]);
		free(fill[i]);
	}
	store_table_sql_free(&t[0]);
	store_table_sql_free(&t[1]);
}

static void test_a_database_at_this_version_only_gets_tables_and_unlock(void)
{
	char steps[16];
	struct store_op_list chain = { 0 };
	CHECK_EQ(store_schema_chain(store_schema_version(), NULL, 0, "{}", &chain), 0);
	steps_of(&chain, steps, sizeof steps);
	CHECK_STR(steps, "TC");
	CHECK_EQ(chain.head->n_stmts, 2);   /* raced_pages' input index; SELECT 1 */
	store_op_list_free(&chain);
}

/* Migration 2 adds import_runs.heartbeat_at, in a transaction of its own. */
static void test_a_database_at_version_1_gets_the_heartbeat_column_only(void)
{
	char steps[16];
	struct store_op_list chain = { 0 };
	CHECK_EQ(store_schema_chain(1, NULL, 0, "{}", &chain), 0);
	steps_of(&chain, steps, sizeof steps);
	CHECK_STR(steps, "MMMMMMMMTC");
	struct store_op *m = chain.head;
	CHECK_EQ(m->version, 2);
	CHECK_EQ(m->n_stmts, 4);
	CHECK_STR(m->stmts[0].sql, "BEGIN");
	CHECK_STR(m->stmts[1].sql, "ALTER TABLE import_runs ADD COLUMN heartbeat_at timestamptz");
	CHECK_STR(m->stmts[2].params[0], "2");
	CHECK_STR(m->stmts[3].sql, "COMMIT");
	store_op_list_free(&chain);
}

/* A database at version `from`: the chain's steps are `steps`, and its
 * first migration, to from + 1, is one transaction whose first statement
 * begins with `create`. */
static void check_next_migration(int from, const char *want_steps, const char *create)
{
	char steps[16];
	struct store_op_list chain = { 0 };
	CHECK_EQ(store_schema_chain(from, NULL, 0, "{}", &chain), 0);
	steps_of(&chain, steps, sizeof steps);
	CHECK_STR(steps, want_steps);
	struct store_op *m = chain.head;
	CHECK_EQ(m->version, from + 1);
	CHECK_STR(m->stmts[0].sql, "BEGIN");
	CHECK(strncmp(m->stmts[1].sql, create, strlen(create)) == 0);
	CHECK_STR(m->stmts[m->n_stmts - 1].sql, "COMMIT");
	store_op_list_free(&chain);
}

/* Migration 3 (raced_pages, import_runs' resume columns) after 2. */
static void test_a_database_at_version_2_gets_the_import_state_only(void)
{
	check_next_migration(2, "MMMMMMMTC", "CREATE TABLE raced_pages (");
}

/* Migration 6 (raced_reached, what an import reached) after 5, in one
 * transaction. */
static void test_a_database_at_version_5_gets_the_reach_table_only(void)
{
	check_next_migration(5, "MMMMTC", "CREATE TABLE raced_reached (");
}

/* Migration 7 (COLLATE "C" on the import state's URLs) after 6. */
static void test_a_database_at_version_6_gets_the_bytewise_urls_only(void)
{
	check_next_migration(6, "MMMTC", "DROP INDEX IF EXISTS raced_pages_input");
}

/* Migration 8 (raced_pages.fields, raced_stage_deletes and its trigger
 * function) after 7; each stage table's set-up puts the trigger on it. */
static void test_a_database_at_version_7_gets_the_kept_fields_only(void)
{
	check_next_migration(7, "MMTC", "ALTER TABLE raced_pages ADD COLUMN fields bytea");
	struct store_table_sql t = { 0 };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_table_sql_init(&t, "races", NULL, false, err), 0);
	CHECK(strstr(t.column_sql, "CREATE TRIGGER raced_deleted AFTER DELETE OR TRUNCATE OR UPDATE OF key"
	             " ON \"races\" FOR EACH STATEMENT EXECUTE FUNCTION raced_stage_deleted('races')")
	      != NULL);
	store_table_sql_free(&t);
}

/* Migration 9 (raced_stage_deleted's search_path: its schema, pg_temp
 * last) after 8. */
static void test_a_database_at_version_8_gets_the_functions_path_only(void)
{
	check_next_migration(8, "MTC", "DO $raced$ DECLARE ns text");
}

/* jit off before anything is planned, synchronous_commit (NULL: on),
 * then the lock and the version. */
static void test_the_probe_sets_synchronous_commit_locks_then_reads_the_version(void)
{
	struct store_op *op = store_schema_probe(NULL, NULL);
	CHECK(op != NULL);
	if (!op)
		return;
	CHECK_EQ(op->kind, STORE_OP_SETUP);
	CHECK_EQ(op->step, STORE_STEP_PROBE);
	CHECK_EQ(op->n_stmts, 6);
	CHECK_STR(op->stmts[0].sql, "SET jit = off");
	CHECK_STR(op->stmts[1].sql, "SELECT set_config('synchronous_commit', $1, false)");
	CHECK_STR(op->stmts[1].params[0], "on");
	CHECK_STR(op->stmts[2].sql, "SET statement_timeout = 0");
	CHECK_STR(op->stmts[3].sql, "SELECT pg_advisory_lock($1::bigint)");
	CHECK_STR(op->stmts[3].params[0], "7261636564");
	/* no malloc warm-up here: it goes with the first batch of rows */
	CHECK_STR(op->stmts[5].sql, "SELECT coalesce(max(version), 0) FROM raced_schema_version");
	for (size_t i = 0; i < op->n_stmts; i++)
		CHECK(strstr(op->stmts[i].sql, "repeat") == NULL);
	CHECK_STR(store_schema_warm_sql,
	          "SELECT octet_length(repeat(repeat('x', 4096), 16777216 / 4096))");
	/* ... sent as an op of its own (its own sync) before a connection's
	 * first batch of rows */
	struct store_op *warm = store_schema_warm();
	CHECK(warm != NULL);
	if (warm) {
		CHECK_EQ(warm->kind, STORE_OP_SETUP);
		CHECK_EQ(warm->step, STORE_STEP_WARM);
		CHECK_EQ(warm->n_stmts, 1);
		CHECK(warm->stmts[0].sql == store_schema_warm_sql);
		store_op_free(warm);
	}
	store_op_free(op);
	op = store_schema_probe("remote_write", NULL);
	CHECK(op != NULL);
	if (op)
		CHECK_STR(op->stmts[1].params[0], "remote_write");
	store_op_free(op);
}

/* The reader's session too: jit off first, then its schema and its
 * prepared reads, then SELECT 1. */
static void test_the_reader_turns_jit_off_first(void)
{
	struct store_op *op = store_schema_reader(NULL, NULL, 0);
	CHECK(op != NULL);
	if (!op)
		return;
	CHECK_EQ(op->step, STORE_STEP_READER);
	CHECK_EQ(op->n_stmts, 2);
	CHECK_STR(op->stmts[0].sql, "SET jit = off");
	CHECK_STR(op->stmts[1].sql, "SELECT 1");
	store_op_free(op);
	op = store_schema_reader("s", NULL, 0);
	CHECK(op != NULL);
	if (!op)
		return;
	CHECK_EQ(op->n_stmts, 3);
	CHECK_STR(op->stmts[0].sql, "SET jit = off");
	CHECK_STR(op->stmts[1].sql, "SELECT set_config('search_path', $1, false)");
	CHECK_STR(op->stmts[2].sql, "SELECT 1");
	store_op_free(op);
}

/* [database] schema: created under the lock, quoted, then the only
 * schema of the search_path, before the version table. */
static void test_the_probe_creates_and_selects_the_schema_quoted(void)
{
	struct store_op *op = store_schema_probe(NULL, "my \"odd\" schema");
	CHECK(op != NULL);
	if (!op)
		return;
	CHECK_EQ(op->n_stmts, 8);
	CHECK_STR(op->stmts[4].sql, "CREATE SCHEMA IF NOT EXISTS \"my \"\"odd\"\" schema\"");
	CHECK_STR(op->stmts[5].sql, "SELECT set_config('search_path', $1, false)");
	CHECK_STR(op->stmts[5].params[0], "\"my \"\"odd\"\" schema\"");
	CHECK_STR(op->stmts[7].sql, "SELECT coalesce(max(version), 0) FROM raced_schema_version");
	store_op_free(op);
}

/* Typed columns: every configured column's array is a parameter; only
 * those in force are written, cast to their type. */
static void test_the_upsert_writes_the_typed_columns_in_force(void)
{
	struct store_table_sql t = { 0 };
	char err[ERR_MAX] = "";
	struct store_column cols[2] = { { "bib", "integer", "/bib", false },
	                                { "start_time", "timestamp with time zone", "/start", true } };
	struct store_columns sc = { cols, 2 };
	CHECK_EQ(store_table_sql_init(&t, "entries", NULL, false, err), 0);
	CHECK_EQ(store_columns_init(&t, &sc, err), 0);
	CHECK(t.index_names[0] == NULL);
	CHECK_STR(t.index_names[1], "entries_start_time_idx");
	bool inforce[2] = { false, true };
	char *sql = store_schema_upsert_sql(&t, inforce, STORE_WRITE_UPSERT);
	CHECK(sql != NULL);
	if (sql) {
		CHECK(strstr(sql, "updated_at, \"start_time\")") != NULL);
		CHECK(strstr(sql, "u.c1::timestamp with time zone") != NULL);
		CHECK(strstr(sql, "u.c0::") == NULL);
		CHECK(strstr(sql, "$5::text[], $6::text[]) AS u(k, p, j, c0, c1)") != NULL);
		CHECK(strstr(sql, "\"start_time\" = excluded.\"start_time\"") != NULL);
	}
	/* the plain INSERT: the same columns and parameters, no ON CONFLICT */
	char *plain = store_schema_upsert_sql(&t, inforce, STORE_WRITE_PLAIN);
	CHECK(plain != NULL);
	if (sql && plain) {
		CHECK(strstr(sql, plain) == sql);
		CHECK(strstr(plain, "ON CONFLICT") == NULL);
		CHECK(strstr(plain, "$5::text[], $6::text[]) AS u(k, p, j, c0, c1)") != NULL);
	}
	free(plain);
	free(sql);
	char idx[64];
	store_columns_index_name("a_table_name_of_forty_eight_characters_xxxxxxxxx",
	                         "a_column_name_long_enough", idx);
	CHECK_EQ(strlen(idx), 63u);
	store_table_sql_free(&t);
}

/* A dedupe stage gets its link table, its index and its three prepared
 * writes (by URL, by keys, by keys of parents without links) after its own statements; the path view joins through the link table. */
static void test_a_dedupe_stage_gets_a_link_table_and_the_leaf_a_path_view(void)
{
	struct store_table_sql t[3] = { { 0 } };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_table_sql_init(&t[0], "races", NULL, false, err), 0);
	CHECK_EQ(store_table_sql_init(&t[1], "entries", "races", false, err), 0);
	CHECK_EQ(store_table_sql_init(&t[2], "athletes", "entries", true, err), 0);
	CHECK(t[1].link_name == NULL);
	CHECK_STR(t[2].link_name, "athletes_parents");
	CHECK_STR(t[2].link_write_name, "raced_links_athletes");
	CHECK_STR(t[2].link_keys_name, "raced_link_keys_athletes");
	/* the write by keys never reads raced_pages */
	CHECK(strstr(t[2].link_keys_sql, "raced_pages") == NULL);
	CHECK(strstr(t[2].link_write_sql, "raced_pages") != NULL);
	CHECK(strstr(t[2].link_fresh_sql, "raced_pages") == NULL);
	CHECK(strstr(t[2].link_fresh_sql, "DELETE") == NULL);
	CHECK(strstr(t[2].unlink_sql, "USING \"entries\" p") != NULL);
	struct store_op_list chain = { 0 };
	CHECK_EQ(store_schema_chain(store_schema_version(), t, 3, "{}", &chain), 0);
	struct store_op *tables = chain.head;
	/* raced_pages' input index; per table: create, removed_import,
	 * index; the link table and its index; SELECT 1 */
	CHECK_EQ(tables->n_stmts, 1 + 3 * 3 + 2 + 1);
	CHECK(tables->stmts[10].sql == t[2].link_create_sql);
	CHECK(tables->stmts[11].sql == t[2].link_index_sql);
	store_op_list_free(&chain);
	/* then each table's writes and read and its four link writes
	 * prepared, the page write and insert, the reads of inputs and of a
	 * stage, the views, SELECT 1 */
	char *ups[3] = { t[0].upsert_sql, t[1].upsert_sql, t[2].upsert_sql };
	char *const *writes[3] = { ups, ups, ups };
	CHECK_EQ(store_schema_chain_end(t, 3, writes, &chain), 0);
	struct store_op *p = chain.head;
	CHECK_EQ(p->n_stmts, 3 * 4 + 4 + 7);
	CHECK_STR(p->stmts[11].name, "raced_read_athletes");
	CHECK_STR(p->stmts[12].name, "raced_links_athletes");
	CHECK_STR(p->stmts[13].name, "raced_link_keys_athletes");
	CHECK_STR(p->stmts[14].name, "raced_link_fresh_athletes");
	CHECK_STR(p->stmts[15].name, "raced_link_plain_athletes");
	CHECK_STR(p->stmts[16].name, "raced_pages_write");
	CHECK_STR(p->stmts[17].name, "raced_reach_write");
	CHECK_STR(p->stmts[18].name, "raced_inputs_read");
	CHECK_STR(p->stmts[19].name, "raced_stage_read");
	CHECK_STR(p->stmts[20].name, "raced_stage_scan");
	const char *views = p->stmts[21].sql;
	CHECK(strstr(views, "'races_entries_athletes'") != NULL);
	CHECK(strstr(views, "'races,entries,athletes'") != NULL);
	CHECK(strstr(views, "'entries_entries'") == NULL);
	store_op_list_free(&chain);
	for (int i = 0; i < 3; i++)
		store_table_sql_free(&t[i]);
}

/* Narrow read-backs' SQL: a member name by ->> and a pointer by #>>
 * with the value test on each; by parent only for a child stage without
 * dedupe; a field jsonb would read otherwise than the import (a token
 * that needs escaping, an index "01" or "-1", a member name that is a
 * number) leaves the table's reads whole. */
static void test_narrow_reads_only_of_plain_fields(void)
{
	char err[ERR_MAX] = "";
	const char *f1[] = { "athlete_id", "/a/0/b_c" };
	struct store_read_fields rf = { f1, 2, 100 };
	struct store_table_sql t = { 0 };
	CHECK_EQ(store_table_sql_init(&t, "entries", "races", false, err), 0);
	CHECK_EQ(store_read_fields_init(&t, &rf, err), 0);
	CHECK(t.read_fields_sql && strstr(t.read_fields_sql, "r.payload ->> 'athlete_id'::text AS v0"));
	CHECK(t.read_fields_sql && strstr(t.read_fields_sql, "r.payload #>> '{\"a\",\"0\",\"b_c\"}'::text[] AS v1"));
	CHECK(t.read_fields_sql && strstr(t.read_fields_sql, "< 100, false)"));
	CHECK(t.read_parent_sql && strstr(t.read_parent_sql, "r.parent_key = k.pk"));
	CHECK_EQ(t.n_fields, 2);
	store_table_sql_free(&t);
	/* a dedupe stage: narrow by key only */
	struct store_table_sql d = { 0 };
	CHECK_EQ(store_table_sql_init(&d, "athletes", "entries", true, err), 0);
	CHECK_EQ(store_read_fields_init(&d, &rf, err), 0);
	CHECK(d.read_fields_name != NULL);
	CHECK(d.read_parent_name == NULL);
	store_table_sql_free(&d);
	static const char *const bad[] = { "/a/01", "/a/-1", "/a~1b", "0", "a b", "/a/", "it's" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *f[] = { "id", bad[i] };
		struct store_read_fields b = { f, 2, 100 };
		struct store_table_sql x = { 0 };
		CHECK_EQ(store_table_sql_init(&x, "entries", "races", false, err), 0);
		CHECK_EQ(store_read_fields_init(&x, &b, err), 0);
		if (x.read_fields_name)
			fprintf(stderr, "narrow with field '%s'\n", bad[i]);
		CHECK(x.read_fields_name == NULL && x.read_parent_name == NULL && x.n_fields == 0);
		store_table_sql_free(&x);
	}
}

/* A read by parent's rows put in the order of the keys asked: a key
 * asked twice answered twice; a key with no row: 1 (read by key). */
static struct store_items *items_of(const char *const *keys, size_t n)
{
	struct store_items *it = calloc(1, sizeof *it);
	it->items = calloc(n, sizeof *it->items);
	for (size_t i = 0; i < n; i++, it->n++) {
		it->items[i].key = strdup(keys[i]);
		it->items[i].payload = strdup(keys[i]);
		it->items[i].payload_len = strlen(keys[i]);
		it->items[i].narrow = true;
	}
	return it;
}

static void test_rows_by_parent_in_the_keys_order(void)
{
	const char *rows[] = { "k1", "k2", "k3", "k4" };
	const char *asked[] = { "k3", "k1", "k3" };
	struct store_items *it = items_of(rows, 4), *out = NULL;
	CHECK_EQ(store_pages_rows_in_order(it, asked, 3, &out), 0);
	CHECK(out && out->n == 3);
	for (size_t i = 0; out && i < out->n; i++) {
		CHECK_STR(out->items[i].key, asked[i]);
		CHECK_STR(out->items[i].payload, asked[i]);
	}
	CHECK(out && out->items[0].payload != out->items[2].payload);
	CHECK_EQ(it->n, 0);
	store_items_free(out);
	store_items_free(it);
	const char *missing[] = { "k1", "k9" };
	it = items_of(rows, 4);
	out = NULL;
	CHECK_EQ(store_pages_rows_in_order(it, missing, 2, &out), 1);
	CHECK(out == NULL);
	CHECK_EQ(it->n, 0);
	store_items_free(it);
}

int main(void)
{
	RUN(test_names_outside_the_identifier_rule_are_refused);
	RUN(test_reserved_words_and_48_characters_are_names);
	RUN(test_every_statement_quotes_the_table_name);
	RUN(test_a_new_database_gets_every_migration_then_tables_then_unlock);
	RUN(test_the_probe_creates_and_selects_the_schema_quoted);
	RUN(test_the_reader_turns_jit_off_first);
	RUN(test_the_upsert_writes_the_typed_columns_in_force);
	RUN(test_a_database_at_this_version_only_gets_tables_and_unlock);
	RUN(test_a_database_at_version_1_gets_the_heartbeat_column_only);
	RUN(test_a_database_at_version_2_gets_the_import_state_only);
	RUN(test_a_database_at_version_5_gets_the_reach_table_only);
	RUN(test_a_database_at_version_6_gets_the_bytewise_urls_only);
	RUN(test_a_database_at_version_7_gets_the_kept_fields_only);
	RUN(test_a_database_at_version_8_gets_the_functions_path_only);
	RUN(test_a_dedupe_stage_gets_a_link_table_and_the_leaf_a_path_view);
	RUN(test_the_probe_sets_synchronous_commit_locks_then_reads_the_version);
	RUN(test_narrow_reads_only_of_plain_fields);
	RUN(test_rows_by_parent_in_the_keys_order);
	return CHECK_DONE();
}
