/* store_op — what the store sends: an op, a short list of statements sent
 * in libpq pipeline mode and closed by one sync, and FIFO lists of ops.
 * Internal to the store (store*.c).
 *
 * Without an explicit BEGIN the statements up to the sync are one implicit
 * transaction, so an op is committed exactly when its sync arrives; its
 * completion handler (`done`) then runs once, with the op's last rows and
 * its error.
 *
 * Ownership: an op owns its statements' parameters (copied by
 * store_op_stmt, or handed over by the batch encoder), its rows and page
 * records (a batch), its own SQL when sql_owned is set, and its last
 * result.  An op is on at most one list at a time; whoever
 * pops it owns it until it is pushed again or freed.  Statement SQL and
 * prepared-statement names are borrowed: static, or the store's tables',
 * which outlive every op.
 */
#ifndef RACED_STORE_OP_H
#define RACED_STORE_OP_H

#include "error.h"
#include "store.h"
#include "store_batch.h"
#include "store_links.h"
#include "store_pages.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum store_op_kind {
	STORE_OP_SETUP,          /* the connection's set-up chain (store_schema) */
	STORE_OP_BATCH,
	STORE_OP_BEGIN_IMPORT,
	STORE_OP_ADD_ERROR,
	STORE_OP_FINISH_IMPORT,
	STORE_OP_GET_RUNS,
	STORE_OP_GET_ERRORS,
	STORE_OP_MARK_STALE,
	STORE_OP_GET_RUN,
	STORE_OP_RESUME_IMPORT,
	STORE_OP_GET_CURSOR,
	STORE_OP_CLEAR_ORPHANS,
	STORE_OP_GET_INPUT,      /* answered through the sink (store.c) */
	STORE_OP_READ_ITEMS,     /* likewise */
	STORE_OP_READ_STAGE,     /* likewise (store_preload.h) */
	STORE_OP_PROBE_EMPTY,    /* which stage tables have no row, at a run's start */
	STORE_OP_BUILD_INDEX,    /* a secondary index a first import left to its finish */
	STORE_OP_ANALYZE_STATE,  /* raced_pages analyzed before the passes, when stale */
};

/* A set-up op's place in the chain the connection runs before READY. */
enum store_step {
	STORE_STEP_PROBE,        /* lock, version table, current version */
	STORE_STEP_MIGRATION,    /* one migration, in its own transaction */
	STORE_STEP_TABLES,       /* stage tables, their parent_key indexes */
	STORE_STEP_COLUMNS,      /* typed columns: the difference applied */
	STORE_STEP_PREPARE,      /* prepared upserts and page-record write */
	STORE_STEP_UNLOCK,
	STORE_STEP_READER,       /* the reader's whole set-up: its reads prepared */
	STORE_STEP_WARM,         /* the backend's malloc warm-up (store_schema_warm) */
};

struct store_stmt {
	const char *sql;     /* borrowed; with name: prepare it under that name */
	const char *name;    /* borrowed: a prepared statement (sql NULL: execute it) */
	int n_params;
	char **params;       /* owned; entries may be NULL (SQL NULL) */
	int *lengths;        /* owned; binary params only (else NULL) */
	const int *formats;  /* static; NULL: every param in text format */
	bool binary_result;  /* its rows in binary format (else text) */
};

struct store_op;
/* An op is done: res is its last PGRES_TUPLES_OK result (or NULL), err
 * NULL on success.  The caller frees the op afterwards. */
typedef void (*store_op_done_fn)(struct store_op *op, const PGresult *res, const char *err);

struct store_op {
	struct store_op *next;
	enum store_op_kind kind;
	struct store_stmt *stmts;
	size_t n_stmts;
	store_op_done_fn done;   /* user ops; set-up ops are the connection's */
	void *ctx;               /* for done */

	/* while sent */
	size_t cur;              /* statement whose results are being read */
	bool cur_seen;
	PGresult *res;           /* last PGRES_TUPLES_OK */
	char err[ERR_MAX];
	char sqlstate[6];        /* of err, when PostgreSQL gave one; else "" */
	bool failed;
	bool transient;          /* the moment's error, not the op's: send it again */

	/* STORE_OP_SETUP */
	enum store_step step;
	int version;             /* STORE_STEP_MIGRATION: the version it applies */

	/* STORE_OP_BATCH */
	size_t table;
	struct store_row *rows;
	size_t n_rows;
	size_t n_added;          /* rows and placeholders (before folding) this op acknowledges */
	struct store_page_rec *pages;   /* page records, written after the rows */
	size_t n_pages;
	struct store_link_rec *links;   /* link records, written after the pages */
	size_t n_links;
	int64_t import_id;
	size_t n_plain;          /* rows[0 .. n_plain) are known new: the plain INSERT
	                            (or the fill, when `fill`); the rest the upsert */
	bool fill;
	bool links_plain;        /* its fresh link records go by the plain INSERT
	                            (store_links.c, LINK_PLAIN_FMT) */
	uint64_t sink_gen;       /* the sink attached when its rows were added (or
	                            a read was asked) */
	uint64_t tag;            /* a read's: the caller's tag */
	size_t limit;            /* STORE_OP_READ_STAGE: the rows asked at most */
	/* STORE_OP_GET_INPUT: the inputs read (owned) and their tags; more
	 * join the op while it is the queue's last and not yet taken, and
	 * its statement is built when the backend takes it (sealed). */
	char **inputs;
	uint64_t *tags;
	size_t n_inputs, cap_inputs;
	bool sealed;
	bool counted;            /* in the store's reads_in_flight */
	char *sql_owned;         /* SQL built for this op only (freed with it) */
	/* A read-back by parent (store_read_committed_fields): the keys
	 * asked, whose rows the answer is put in the order of (one block). */
	char **keys;
	size_t n_keys;
	struct timespec taken;   /* when the backend last took it (CLOCK_MONOTONIC) */

	/* Several connections (store_pool.h): the connection that carries
	 * it (a batch's rows by table and key hash; everything else 0), and
	 * whether it waits until every op taken before it on the other
	 * connections is done (reads, runs, page records). */
	unsigned conn;
	bool barrier;
	/* With barrier: it waits for the ops before it that are not side ops
	 * themselves (a finish's counts and index builds: after the finish,
	 * at once with each other; store_finish_import). */
	bool side;
	/* A read of committed rows (store_read_committed): taken ahead of the
	 * queue, never a barrier, completed as soon as it is done. */
	bool unordered;
	/* while the pool holds it: its next in take order, and whether its
	 * connection is done with it (completed to the store in take order) */
	struct store_op *pool_next;
	bool pool_done;

	/* import_runs statements: the caller's callback */
	union {
		store_id_fn id;
		store_done_fn done;
		store_json_fn json;
	} reply;
	void *reply_arg;
};

struct store_op_list {
	struct store_op *head, *tail;
};

/* An op of n_stmts (may be 0: a sync alone) empty statements, or NULL
 * when out of memory. */
RACED_MUST_CHECK
struct store_op *store_op_new(enum store_op_kind kind, size_t n_stmts);
/* Frees op, its statements, its rows and its result; NULL is allowed. */
void store_op_free(struct store_op *op);
/* Give statement i its SQL (borrowed), without parameters. */
void store_op_sql(struct store_op *op, size_t i, const char *sql);
/* Give statement i its SQL (borrowed) and n text params (copied; NULL
 * entries are SQL NULL).  Returns 0, or -1 when out of memory. */
RACED_MUST_CHECK
int store_op_stmt(struct store_op *op, size_t i, const char *sql, int n,
                  const char *const *params);
/* Forget what a send left in op (results, error), to send it again. */
void store_op_reset(struct store_op *op);

void store_op_push(struct store_op_list *l, struct store_op *op);
/* Put the ops of `front` (in their order) before those of l; front ends empty. */
void store_op_push_front(struct store_op_list *l, struct store_op_list *front);
/* The head of l, unlinked, or NULL. */
struct store_op *store_op_pop(struct store_op_list *l);
/* Free every op of l. */
void store_op_list_free(struct store_op_list *l);
size_t store_op_list_len(const struct store_op_list *l);

#endif
