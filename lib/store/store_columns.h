/* store_columns — a stage table's typed columns kept as the configuration
 * says (docs/data-model.md).  Internal to the store.
 *
 * At connect, after the stage tables exist, one statement compares the
 * catalog (pg_attribute, and raced_columns: which columns raced added,
 * from which pointer, with which index) with the configuration and applies
 * the difference: ALTER TABLE ... ADD COLUMN (existing rows filled from
 * their payload), ALTER COLUMN ... TYPE ... USING (refilled from the
 * payload), DROP COLUMN, CREATE INDEX / DROP INDEX of raced's own named
 * indexes.  The statement is one transaction; each table's changes are a
 * subtransaction of it, so a change a table's rows cannot take (a value
 * that does not cast) leaves that table exactly as it was and is reported
 * with the first offending key (in key order), its value and the column.
 * The function doing it is created in pg_temp on each connection (nothing
 * of it outlives the session).  A column raced did not add (not in
 * raced_columns) is never altered or dropped: a configured column of
 * that name is refused.
 *
 * The answer says, per table, which configured columns are in force (in
 * the catalog with the configured type and pointer): the upsert prepared
 * for this connection writes only those (store_schema_upsert_sql), so a
 * refused change leaves raced running on the old schema, writing the
 * columns that still match.
 *
 * Ownership: a struct store_table_sql owns the copies store_columns_init
 * makes; store_columns_want() and the upserts are the caller's to free.
 */
#ifndef RACED_STORE_COLUMNS_H
#define RACED_STORE_COLUMNS_H

#include "error.h"
#include "store.h"
#include "store_schema.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

/* Copy cols into t (names, types, pointers) and name their indexes.
 * 0, or -1 with err: too many, a bad name, or out of memory. */
RACED_MUST_CHECK
int store_columns_init(struct store_table_sql *t, const struct store_columns *cols, char *err);
void store_columns_free(struct store_table_sql *t);

/* The index raced keeps on a column: "<table>_<column>_idx", or, when
 * that is longer than PostgreSQL's 63 bytes, its first 54 bytes, '_' and
 * 8 hex digits of a hash of the whole.  out: 64 bytes. */
void store_columns_index_name(const char *table, const char *column, char out[64]);

/* The function (CREATE OR REPLACE FUNCTION pg_temp.raced_columns) and the
 * statement applying it to every table: $1 the JSON of
 * store_columns_want(); its one row is a JSON object per table:
 * {"columns": [names in force], "changes": [what it did], "refused":
 * why, "key", "column", "value" (a refusal)}. */
extern const char store_columns_function_sql[];
extern const char store_columns_apply_sql[];

/* {"table": [{name, type, pointer, index (name or null)}], ...} for every
 * table (one without columns drops raced's).  NULL when out of memory. */
char *store_columns_want(const struct store_table_sql *tables, size_t n);

/* Read the apply statement's answer into inforce[t * STORE_COLUMNS_MAX
 * + c] (true: column c of table t is in force) and log what changed and
 * what was refused (log.h), naming [stage NAME] columns.  -1 with msg
 * when the answer cannot be read (every column then counts as not in
 * force). */
int store_columns_outcome(const PGresult *res, const struct store_table_sql *tables, size_t n,
                          bool *inforce, char *msg);

#endif
