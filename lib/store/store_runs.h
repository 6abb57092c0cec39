/* store_runs — the import_runs and import_errors statements: each public
 * store_*_import / store_add_error / store_get_runs / store_get_errors /
 * store_mark_stale_runs call is one op built here, whose completion answers the caller's
 * callback.  Internal to the store: store.c queues the ops in order with
 * the batches.
 *
 * It also keeps the bound on queued import_errors rows: beyond
 * STORE_MAX_PENDING_ERRORS they are only counted per import, and that
 * import's final counts say how many ("errors_not_recorded").
 *
 * Resume (store_runs_resume) reopens a run whose `resumable` is set: that
 * test is in the UPDATE's WHERE, so two resumes cannot both win.  Runs
 * marked stale become resumable, and so do runs finished with
 * STORE_FINISH_RESUMABLE.  The finishing op also carries the removals and
 * clean-up of import state its flags ask for, in the same transaction.
 *
 * store_begin_import() and store_add_error() are plain inserts: if their
 * commit races a lost connection they may insert twice (a second 'running'
 * run is marked 'interrupted' by store_mark_stale_runs() at the next start).
 *
 * Killed runs: a batch carries the run's heartbeat (import_runs.heartbeat_at,
 * written by store.c in the batch's transaction, at most once per
 * STORE_HEARTBEAT_MS), so the last moment a run is known to have been
 * alive is durable with its rows.  store_runs_mark_stale() marks every run
 * found 'running' 'interrupted' with finished_at = that heartbeat (or
 * started_at if it never committed a batch) and counts
 * {stage: {"stored": n}}, n the rows of the stage table whose last_import
 * is the run: what its committed batches wrote.
 *
 * Ownership: struct store_runs is embedded in the store, which calls
 * store_runs_free().  Ops returned here are the caller's to queue or free;
 * they copy every string passed in and borrow `runs` until they complete.
 */
#ifndef RACED_STORE_RUNS_H
#define RACED_STORE_RUNS_H

#include "error.h"
#include "store.h"
#include "store_op.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_runs_dropped;

struct store_runs {
	size_t errors_queued;                 /* import_errors ops not yet done */
	uint64_t errors_dropped;              /* only counted, ever */
	struct store_runs_dropped *dropped;   /* per import: only counted */
	char *stale_sql;                      /* built by the first mark_stale */
};

struct store_table_sql;

void store_runs_free(struct store_runs *r);

/* Each returns the op to queue, or NULL when out of memory. */
RACED_MUST_CHECK
struct store_op *store_runs_begin(const struct store_run_begin *b, store_id_fn cb, void *arg);
/* What the store can tell of a table in a first import (store.c,
 * store_finish_import): the table was empty at the run's start and every
 * page record was a first one; records, the number of them, and keys,
 * the keys they listed; both -1 when not so. */
struct store_fresh {
	int64_t records;
	int64_t keys;
};

/* After a run's finishing op: one op a table (so that a table dropped
 * during the run costs only its own), making its counts exact from the
 * tables (store_schema.c, COUNTS_FMT); no_rows: the run sent the table no
 * row; fresh_keys: store_fresh.keys.  NULL when out of memory. */
struct store_op *store_runs_counts(const struct store_table_sql *t, int64_t import_id,
                                   bool no_rows, int64_t fresh_keys);
/* After the counts of a succeeded run: its reach (raced_reached) and that
 * of earlier runs that cannot be resumed are deleted.  NULL when out of
 * memory. */
struct store_op *store_runs_forget_reach(int64_t import_id);
/* After a run's finishing op: one of the secondary indexes a first
 * import left to its finish (sql, borrowed: a DO block of
 * store_schema_index_sql or store_pages_index_finish_sql), made where
 * missing, in a transaction of its own (its table's SHARE lock held for
 * its build only), with no statement_timeout and PostgreSQL's parallel
 * maintenance workers allowed at any table size past
 * STORE_INDEX_PARALLEL_MIN; an error is noted as the store's last,
 * logged naming table (borrowed: it outlives the op), and changes nothing
 * else: the next finish or connect tries again.  Unlike a batch's, a
 * build's error is not tried again on the spot unless its connection
 * went (store_conn.c): a lock another session holds past lock_timeout,
 * a cancel or a full disk would retry it for as long as they last, and
 * hold up everything queued after it, the import's end included.  NULL
 * when out of memory. */
struct store_op *store_runs_index(const char *sql, const char *table);
/* The table size from which a finish's index build may have parallel
 * workers (min_parallel_table_scan_size for its transaction): below
 * about a megabyte starting them costs more than they save. */
#define STORE_INDEX_PARALLEL_MIN "1MB"

/* See store_finish_import(): the removals and clean-up flags ask for run
 * over tables (the store's, in stage order), then the run's row.
 * keys_kept[t] (NULL: none): every page record the run sent table t kept
 * its page's keys, so that its removals may need no keys read
 * (store_runs.c, DECIDE_SQL); all_reached[t] (NULL: none): besides, the
 * run reached every page row of t's stage (store_pages_all_reached), so
 * that no page row need be looked for to delete; fresh[t] (NULL: none)
 * likewise for a table empty at the run's start. */
RACED_MUST_CHECK
struct store_op *store_runs_finish(struct store_runs *r, const struct store_table_sql *tables,
                                   size_t n_tables, int64_t import_id, const char *status,
                                   json_t *counts, unsigned flags, const bool *keys_kept,
                                   const bool *all_reached, const struct store_fresh *fresh,
                                   store_done_fn cb, void *arg);
/* See store_get_run(), store_resume_import(), store_get_cursor(). */
RACED_MUST_CHECK
struct store_op *store_runs_get_run(int64_t id, store_json_fn cb, void *arg);
RACED_MUST_CHECK
struct store_op *store_runs_resume(int64_t id, store_done_fn cb, void *arg);
RACED_MUST_CHECK
struct store_op *store_runs_cursor(const struct store_table_sql *table, const char *pointer,
                                   store_json_fn cb, void *arg);
/* One statement (sql borrowed) answering a JSON array as text; [] when
 * it ran nowhere (the null backend). */
RACED_MUST_CHECK
struct store_op *store_runs_list(enum store_op_kind kind, const char *sql, store_json_fn cb,
                                 void *arg);
RACED_MUST_CHECK
struct store_op *store_runs_get(int64_t id, uint32_t limit, store_json_fn cb, void *arg);
/* See store_get_errors() (store.h), where the grouping is specified. */
RACED_MUST_CHECK
struct store_op *store_runs_errors(int64_t id, uint32_t urls, store_json_fn cb, void *arg);
/* Mark the runs left 'running' 'interrupted' (see above), counting rows in
 * tables (the store's, in stage order; the same at every call: the SQL is
 * built once into r and borrowed by the op).  cb gets the runs marked as a
 * JSON array of {id, started_at, finished_at, counts}, oldest first, []
 * when there were none. */
RACED_MUST_CHECK
struct store_op *store_runs_mark_stale(struct store_runs *r, const struct store_table_sql *tables,
                                       size_t n_tables, store_json_fn cb, void *arg);
/* Returns 0 with *op the op to queue, or with *op NULL when the error is
 * only counted (the bound); -1 when out of memory. */
RACED_MUST_CHECK
int store_runs_error(struct store_runs *r, int64_t import_id, const char *stage, const char *url,
                     long http_status, uint32_t attempts, const char *message,
                     struct store_op **op);

/* A begin op's completion (its `done`): the id read from res, or err,
 * to its caller.  The store may wrap it to learn the id first, and what
 * the run before left (column 1: that run's counts as text when its links
 * may be trusted, else NULL; store_runs.c). */
void store_runs_begin_done(struct store_op *op, const PGresult *res, const char *err);
/* Answer a begin op's caller with id (the null backend hands out its own). */
void store_runs_answer_id(struct store_op *op, int64_t id, const char *err);
/* Answer a get op's caller with runs (borrowed for the call). */
void store_runs_answer_runs(struct store_op *op, json_t *runs, const char *err);

#endif
