/* store_schema — the database schema raced writes: the migrations
 * (raced_schema_version, one transaction each), one table per stage with
 * its parent_key index and its prepared upsert (and for a dedupe stage its
 * link table, store_links.h), and the chain of set-up ops a connection
 * runs before it is READY.  Internal to the store.
 *
 * The chain: a probe op sets synchronous_commit, lifts statement_timeout
 * for the set-up, takes an advisory lock (migrations are serialised
 * between daemons sharing a database), creates raced_schema_version if
 * needed and reads the current version; from that version
 * store_schema_chain() builds the rest: one op per migration not yet
 * applied, one op creating the stage and link tables, preparing their
 * writes and making the comments and views (store_views.h), and one
 * releasing the lock and resetting statement_timeout.  The connection sends them and handles each
 * result by its step (store_op.h).  Building ops is this module's job;
 * sending them and reacting to their results is the connection's.
 *
 * Identifiers: table names are the stage names, checked here against
 * [a-z_][a-z0-9_]{0,47} (config restricts them already; the store does not
 * rely on it) and written double-quoted in every statement, so a reserved
 * word ("user", "order") is a valid stage name.  (PQescapeIdentifier needs
 * a connection; the statements are built once, in store_new.)
 *
 * Unchanged rows: the upsert's DO UPDATE runs only when the row was marked
 * removed or its parent_key or payload differ (tested in that order: the
 * jsonb comparison is the costly one).  updated_at and the payload column
 * change only when the payload did; last_import becomes the import that
 * wrote the row and removed_import is cleared.  An unchanged row is not
 * touched (no new tuple), so neither a re-import nor a retried batch
 * writes it.
 *
 * Per table the store also keeps the SQL of its reads and removals
 * (store_pages, store_runs use it): written here, beside the table's
 * definition, so that a column's name lives in one file.
 *
 * Ownership: a struct store_table_sql owns its strings; ops built here
 * borrow them (and static SQL), so the tables must outlive the ops.
 */
#ifndef RACED_STORE_SCHEMA_H
#define RACED_STORE_SCHEMA_H

#include "error.h"
#include "store_op.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct store_read_fields;

#define STORE_NAME_MAX 48

/* A succeeded finish that finds a stage's removals already decided (no
 * page's keys changed, every page row reached, nothing ran since the last
 * such finish: store_runs.c) sets this session setting, suffixed by the
 * stage's name, to the import's id; the marking, unmarking, unlinking and
 * counts of that stage test it (STORE_KEPT_FMT) and read no keys.  Session,
 * not transaction: the counts run after the finish's commit; on another
 * connection they find no setting and count as before. */
#define STORE_KEEP_SETTING "raced.keep_"
/* The SQL test that the finish of import $1 kept stage %s's removals. */
#define STORE_KEPT_FMT \
	"coalesce(current_setting('" STORE_KEEP_SETTING "%s', true), '') = $1::bigint::text"

struct store_table_sql {
	char *name;
	char *parent;        /* the parent stage's table; NULL: the root (or not known) */
	bool dedupe;         /* its edges are in a link table (store_links.h) */
	char *upsert_name;   /* the upsert, prepared on each connection */
	char *upsert_sql;
	char *insert_name;   /* the plain INSERT (no ON CONFLICT) for rows known new */
	char *fill_name;     /* the same with ON CONFLICT DO NOTHING (store.c) */
	char *create_sql;
	char *index_sql;       /* at connect: the parent_key index, if missing and the table has rows */
	char *index_finish_sql;  /* at an import's finish: the same, if missing */
	char *column_sql;    /* adds removed_import to a table of before migration 3 */
	char *read_name;     /* rows by key (store_read_items), prepared on each connection */
	char *read_sql;
	/* Narrow read-backs (store_read_committed_fields), or all NULL/0:
	 * the fields (copied), the statement returning their values. */
	char **fields;
	size_t n_fields;
	char *read_fields_name;  /* prepared on each connection */
	char *read_fields_sql;
	/* The same by parent_key ranges (a stage without dedupe), or NULL. */
	char *read_parent_name;
	char *read_parent_sql;
	char *mark_sql;      /* removals: mark, $1 the import (STORE_FINISH_REMOVALS) */
	char *unmark_sql;    /* removals: unmark */
	char *cursor_sql;    /* store_get_cursor, $1 the JSON pointer or NULL */
	char *counts_sql;    /* finishing: the stage's stored and shared_keys, $1 the import,
	                        $2 true when the run sent the table no row */
	/* Typed columns (store_columns.h), copied; index_names[i] NULL when
	 * column i has no index. */
	struct store_column *cols;
	char **index_names;
	size_t n_cols;
	/* dedupe stages only (else NULL): the link table (store_links.h) */
	char *link_name;       /* "<name>_parents" */
	char *link_create_sql;
	char *link_index_sql;  /* (key, parent_key), as index_sql */
	char *link_index_finish_sql;
	char *link_write_name; /* the link records' write, prepared on each connection */
	char *link_write_sql;
	char *link_keys_name;  /* the write of link records that carry their keys */
	char *link_keys_sql;
	char *link_fresh_name; /* ... of parents known to have no link yet */
	char *link_fresh_sql;
	char *link_plain_name; /* ... the same without ON CONFLICT (store.c) */
	char *link_plain_sql;
	char *unlink_sql;      /* finishing: the links of parents removed by $1 */
};

/* raced_pages' index on (stage, input), made as store_schema_index_sql
 * makes the tables': at connect when raced_pages holds a row, and at each
 * import's finish when missing. */
extern const char store_pages_index_sql[];
extern const char store_pages_index_finish_sql[];

/* A DO block making the index "<base><suffix>" on table (columns) when it
 * is missing, and with only_with_rows when the table also holds a row
 * (store_schema.c, "Secondary indexes after a first import"); names
 * validated by the caller.  0, or -1 out of memory (*out NULL). */
RACED_MUST_CHECK
int store_schema_index_sql(char **out, const char *base, const char *suffix, const char *table,
                           const char *columns, bool only_with_rows);

/* Check name and build its statements; parent (NULL: the root, or not
 * known) and dedupe say how its items are linked to their parents.
 * Returns 0, or -1 with err set (the name cannot be a table's, or out of
 * memory); free t either way. */
RACED_MUST_CHECK
int store_table_sql_init(struct store_table_sql *t, const char *name, const char *parent,
                         bool dedupe, char *err);
void store_table_sql_free(struct store_table_sql *t);
/* The narrow read of rf's fields (NULL: none) for t, built when every
 * field is one the SQL reads exactly as the import would (store.h,
 * store_read_fields_of); else t keeps none and the reads stay whole.
 * 0, or -1 with err when out of memory. */
RACED_MUST_CHECK
int store_read_fields_init(struct store_table_sql *t, const struct store_read_fields *rf,
                           char *err);

/* The schema version this raced writes (its last migration's). */
int store_schema_version(void);

/* The chain's first op (step STORE_STEP_PROBE): it sets synchronous_commit
 * (NULL: "on") before anything else, then, under the lock, creates schema
 * (NULL: none) if missing and makes it the search_path.  NULL when out of
 * memory. */
RACED_MUST_CHECK
struct store_op *store_schema_probe(const char *synchronous_commit, const char *schema);
/* A statement that allocates and frees one 16 MiB block in the backend.
 * glibc's malloc maps a block above its mmap threshold (128 KiB at
 * first) afresh each time and unmaps it when freed, and trims the heap
 * above twice that: decoding a batch's arrays then faults its megabytes
 * in anew every batch (0.8 page faults a row, the backend's CPU a row
 * doubled; docs/performance.md).  Freeing one mapped block raises both
 * thresholds to its size for the backend's life.  A write connection
 * sends it just before its first batch that carries rows (store_conn.c):
 * one that writes none (an unchanged re-import) never pays for it. */
extern const char store_schema_warm_sql[];
/* It as an op of its own (STORE_STEP_WARM, one sync: its failure, a
 * statement_timeout say, touches no batch); NULL when out of memory. */
struct store_op *store_schema_warm(void);
/* The whole set-up of the pool's reader (store_pool.h), which starts once
 * the schema is current and only reads stored rows: the search_path when
 * a schema is configured, and the reads of rows by key prepared.  No
 * lock, no DDL: a table someone holds locked does not hold it up.  NULL
 * when out of memory. */
struct store_op *store_schema_reader(const char *schema, const struct store_table_sql *tables,
                                     size_t n_tables);
/* The version the probe read (res and err: its result).  Returns 0, or -1
 * with msg (ERR_MAX) set: no version read, or one newer than this raced. */
RACED_MUST_CHECK
int store_schema_read_version(const PGresult *res, const char *err, int *version, char *msg);
/* Append to out the chain after version `current` up to the typed
 * columns (step STORE_STEP_COLUMNS, its result store_columns_outcome's):
 * migrations, stage tables, columns.  want: store_columns_want(), copied.
 * Returns 0, or -1 when out of memory (out then holds what was built:
 * free it). */
RACED_MUST_CHECK
int store_schema_chain(int current, const struct store_table_sql *tables, size_t n_tables,
                       const char *want, struct store_op_list *out);
/* The ways a stage table's rows are written, each prepared per table
 * under its name: the upsert (upsert_name); the plain INSERT, no ON
 * CONFLICT, for rows known new (insert_name: a key already stored fails
 * it with 23505); the fill, ON CONFLICT DO NOTHING (fill_name). */
#define STORE_WRITE_UPSERT 0
#define STORE_WRITE_PLAIN  1
#define STORE_WRITE_FILL   2
#define STORE_WRITES       3
/* The chain's end, once the columns in force are known: each table's
 * writes prepared from writes[mode][i] (borrowed: keep them until the ops
 * are done), the page records' write, the unlock. */
RACED_MUST_CHECK
int store_schema_chain_end(const struct store_table_sql *tables, size_t n_tables,
                           char *const *const *writes, struct store_op_list *out);
/* Table t's write of mode (STORE_WRITE_*) of the typed columns in force
 * (inforce[c], or NULL: none); the statement always takes every
 * configured column's array ($5 on), so batches do not depend on what is
 * in force.  NULL when out of memory. */
char *store_schema_upsert_sql(const struct store_table_sql *t, const bool *inforce, int mode);
/* One statement answering one text of 4n characters: at i, 't' where
 * tables[i] has no row, else 'f'; at n + i, 't' where tables[i] has a
 * link table and it has no row, else 'f'; at 2n + i, 't' where
 * raced_pages holds no record of tables[i]'s stage, else 'f'; at 3n + i,
 * 't' where tables[i] is read back by parent and its parent_key index
 * is there, else 'f' (the probe
 * at a run's start, store.c); it fails if a table is missing.  NULL when
 * out of memory. */
char *store_schema_empty_sql(const struct store_table_sql *tables, size_t n);

#endif
