/* store — see store.h.
 *
 * Design notes
 *
 * The store is in parts, one job each:
 *   store.c         the public API: rows pending per table, batches formed
 *                   from them, the queue of ops in order, completions
 *                   reported to the attached sink, figures;
 *   store_op        an op (statements sent as one pipeline sync) and lists;
 *   store_batch     folding a batch's rows and encoding its columns (pure);
 *   store_schema    migrations, stage tables' SQL, the set-up chain;
 *   store_runs      import_runs and import_errors statements, resume,
 *                   the cursor, the finishing transaction's removals;
 *   store_pages     import state: page records encoded for their batch,
 *                   reads of an input's pages and of stored rows;
 *   store_conn      the PostgreSQL backend: connection, pipeline, backoff;
 *   store_null      the backend of [database] discard = yes.
 * The backend is chosen once, in store_new(); the rest of this file does
 * not know which one it has, except whether it needs the rows' contents
 * (the null backend only counts them).
 *
 * Everything the store sends is an op, queued here in order and taken by
 * the backend from the head.  A batch holds the rows, placeholders
 * (unchanged items: counted, not written) and page records of one table,
 * one import and one sink: an addition of another import (or after
 * another sink was attached) first sends the pending ones as a batch of
 * their own.  A batch's statements, one transaction: the upsert of its
 * rows, the write of its page records (after the rows: a page's state
 * never runs ahead of its rows; only the reach row when every record is
 * reached-only), the run's heartbeat.  (A connection's first batch with
 * rows is preceded by the backend's malloc warm-up: store_conn.c.)  Reads (an input's
 * pages, stored rows) are ops in the same queue, so they see every batch
 * queued before them; their answers go to the sink attached when they
 * were asked, if it is still attached.  Reads of inputs join the queue's
 * last op when it is such a read not yet taken, and that op waits while
 * another read is out (store_queue_take): one statement per round trip
 * reads the state of every input started meanwhile.
 *
 * A run's heartbeat rides its batches: a batch formed STORE_HEARTBEAT_MS or
 * more after the run's last one carries a second statement, an update of
 * the run's import_runs.heartbeat_at, in the batch's transaction (one
 * sync), so the last moment a killed run was alive is durable with its
 * rows and costs one row update a second, not one a batch.
 *
 * A batch's own error (not the connection's: see store_conn.c) splits a
 * batch of several rows into one-row batches at the head of the queue (so
 * one bad row does not sink 499 good ones), its page records following in
 * an op of their own; a one-row batch that still
 * fails is reported by the sink's rows_refused and then committed (its
 * credit must come back all the same).  An error that is the table's
 * (SQLSTATE class 42: dropped, altered) is not split, as every row would
 * fail alike: the batch goes to the sink's table_refused whole.
 *
 * Rows known new: the upsert's ON CONFLICT costs every row an index
 * lookup before its insert (docs/performance.md).  A table that has no
 * row when a run starts can only hold that run's rows: a probe op just
 * before the run's import_runs row reads which tables are empty, and the
 * run's id, when it comes back, marks them (struct table's plain_import).
 * Each batch of such a table puts first the rows whose key no earlier
 * batch of the run had (a Bloom filter of the run's keys: a false "had"
 * costs only the upsert) and writes them by a plain INSERT, the others
 * by the upsert, in one transaction.  A key stored after all (a batch
 * sent again after a lost connection whose commit had landed; someone
 * else writing the table) makes PostgreSQL refuse the batch with 23505:
 * the table falls back to the upsert for the rest of the run, and the
 * batch goes again with its new rows by the fill (ON CONFLICT DO
 * NOTHING), as do batches formed plain and taken after that: a stored
 * row with the key of a row known new is that very row (its commit
 * landed) or a later one of the key, which must win.  (Someone else's
 * row then stays as they wrote it.)
 *
 * The same probe asks whether raced_pages holds any record of each
 * stage: a run that finds none has no state to read (store_state_empty),
 * and its inputs skip the read that would have waited behind every batch
 * queued before it, only to answer nothing.
 */
#include "store.h"

#include "error.h"
#include "log.h"
#include "store_backend.h"
#include "store_batch.h"
#include "store_columns.h"
#include "store_op.h"
#include "store_pages.h"
#include "store_preload.h"
#include "store_runs.h"
#include "store_schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct table {
	size_t n_added;             /* rows added to the batch being formed */
	/* Its rows (folded or not): none when the backend needs no rows.
	 * Only pending[0 .. n_pending) are the table's: over several
	 * connections the array outlives a batch whose rows were copied out
	 * to the connections' ops (make_batch), and the entries past
	 * n_pending are stale copies of rows those ops own. */
	struct store_row *pending;
	size_t n_pending, cap;
	int64_t pending_import;     /* of the pending rows */
	uint64_t pending_gen;       /* sink_gen when they were added */
	struct store_page_rec *pages;  /* page records of the batch being formed */
	size_t n_pages, cap_pages;  /* (none kept when the backend needs no rows) */
	size_t n_page_recs;         /* page and link records added to it (kept or not) */
	struct store_link_rec *links;  /* link records of the batch being formed */
	size_t n_links, cap_links;
	/* Rows known new (the design note): the import whose rows may go by
	 * the plain INSERT (0: none), the keys its batches had so far (a
	 * Bloom filter of STORE_PLAIN_FILTER_BITS), and what the last probe
	 * found, until the run it precedes takes it. */
	int64_t plain_import;
	uint8_t *seen;
	bool probed_empty;
	/* Links known in place (store_links_trusted): what the last probe
	 * found of the link table, and what the run it preceded concluded. */
	bool probed_links_empty;
	bool links_trusted;
	/* No state to read (store_state_empty): what the last probe found of
	 * raced_pages, and what the run it preceded concluded. */
	bool probed_state_empty;
	bool state_empty;
	/* Stored fields (store_fields_trusted): the table's oid, count of
	 * deleting statements and the oid of the trigger counting them that
	 * the last probe found (probed_deletes_ok: the trigger there and
	 * enabled), and what the run it preceded concluded. */
	bool probed_deletes_ok;
	int64_t probed_oid, probed_deletes, probed_trigger;
	int64_t deletes_oid, deletes_seen, deletes_trigger;   /* -1: not known */
	bool fields_trusted;
	/* Read-backs by parent (store_read_committed_fields): the last probe
	 * found the table's parent_key index. */
	bool parent_indexed;
	size_t parent;              /* the parent stage's table; SIZE_MAX: none */
	/* What the finish of run `marks_import` may skip (store_finish_import):
	 * whether every page record of it in this table kept its page's keys
	 * (false until one came), and whether it sent the table any row. */
	int64_t marks_import;
	bool keys_kept;
	bool rows_sent;
	bool all_reached;           /* store_pages_all_reached() */
	/* And for a table empty at the run's start (plain_import): whether
	 * every page record was a first one with content (store_page.first),
	 * how many there were and how many keys they listed, and whether a
	 * row of the table was refused. */
	bool all_first;
	bool refused;
	int64_t n_records;
	int64_t n_keys;
	/* Likewise for a dedupe stage's link table: the import whose parents
	 * not yet in link_seen (the parents of its link records so far) have
	 * no link, so their records by keys go by the fresh insert. */
	int64_t link_fresh_import;
	uint8_t *link_seen;
	/* The import whose fresh link records go by the plain INSERT (0:
	 * none): that of link_fresh_import, until a batch of it is refused
	 * for a key stored after all (plain_refused). */
	int64_t link_plain_import;
	bool link_probed_empty;
	uint64_t uncommitted;       /* added, not yet acknowledged */
	uint64_t rows_committed;
	uint64_t batches_committed;
};

struct store {
	struct store_callbacks cb;
	struct store_sink sink;     /* valid while sink_attached */
	bool sink_attached;
	uint64_t sink_gen;          /* counts attaches and detaches */
	uint32_t batch_size;
	struct store_table_sql *sql;
	struct table *tables;
	size_t n_tables;
	struct store_backend *backend;
	unsigned n_conns;           /* [database] connections: rows routed by key hash */
	bool rows_needed;           /* false: the backend only counts rows */
	enum store_state state;
	struct store_op_list queued;  /* not yet taken by the backend */
	struct store_op_list reads;   /* reads of committed rows (store_read_committed),
	                                 not yet taken: they go ahead of `queued` */
	struct store_runs runs;
	int64_t beat_import;        /* the run whose heartbeat was sent last, */
	uint64_t beat_ms;           /* and when (monotonic) */
	struct store_stats stats;   /* the store's own figures */
	char *orphan_sql;           /* store_clear_orphan_state's, built at first use */
	char *empty_sql;            /* the probe of empty tables at a run's start */
	uint64_t down_since_ms;     /* monotonic: when it last left READY (or started) */
	size_t reads_in_flight;     /* input reads the backend took, not yet answered */
	char last_error[ERR_MAX];
};

const char *store_state_name(enum store_state st)
{
	switch (st) {
	case STORE_CONNECTING: return "connecting";
	case STORE_MIGRATING:  return "migrating";
	case STORE_READY:      return "ready";
	case STORE_BACKOFF:    return "backoff";
	}
	return "unknown";
}

enum store_state store_state(const struct store *s)
{
	return s->state;
}

/* --- what the backend sees (store_backend.h) ---------------------------- */

static struct store_op *take_sealed(struct store *s);

/* A read of inputs that is the queue's last op waits while another read
 * is out: the inputs asked until that one's answer join it, so an
 * import's reads take a statement per round trip, not one per input.
 * Nothing waits behind it (it is the last), and one with ops behind it,
 * which cannot grow any more, goes at once. */
struct store_op *store_queue_take(struct store *s)
{
	const struct store_op *head = s->queued.head;
	if (head && head == s->queued.tail && head->kind == STORE_OP_GET_INPUT && !head->sealed &&
	    s->reads_in_flight > 0)
		return NULL;
	struct store_op *op = take_sealed(s);
	if (op)
		clock_gettime(CLOCK_MONOTONIC, &op->taken);
	if (op && op->kind == STORE_OP_GET_INPUT && !op->counted) {
		op->counted = true;
		s->reads_in_flight++;
	}
	return op;
}

const struct store_op *store_queue_peek(const struct store *s)
{
	return s->queued.head;
}

void store_queue_return(struct store *s, struct store_op_list *ops)
{
	for (struct store_op *op = ops->head; op; op = op->next)
		if (op->counted) {
			op->counted = false;
			s->reads_in_flight--;
		}
	store_op_push_front(&s->queued, ops);
}

void store_queue_take_all(struct store *s, struct store_op_list *out)
{
	*out = s->reads;
	s->reads.head = s->reads.tail = NULL;
	struct store_op_list rest = s->queued;
	s->queued.head = s->queued.tail = NULL;
	/* the reads first, as a backend with connections would take them */
	if (rest.head) {
		store_op_push_front(&rest, out);
		*out = rest;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* the null backend runs no statement: nothing to build */
	for (struct store_op *op = out->head; op; op = op->next) {
		op->taken = now;
		op->sealed = true;
	}
}

bool store_queue_empty(const struct store *s)
{
	return s->queued.head == NULL && s->reads.head == NULL;
}

struct store_op *store_reads_take(struct store *s)
{
	struct store_op *op = store_op_pop(&s->reads);
	if (op)
		clock_gettime(CLOCK_MONOTONIC, &op->taken);
	return op;
}

bool store_reads_waiting(const struct store *s)
{
	return s->reads.head != NULL;
}

void store_note_error(struct store *s, const char *err)
{
	snprintf(s->last_error, sizeof s->last_error, "%s", err);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void store_set_state(struct store *s, enum store_state st, const char *why)
{
	if (s->state == STORE_READY && st != STORE_READY)
		s->down_since_ms = now_ms();
	s->state = st;
	if (s->cb.state_changed)
		s->cb.state_changed(s->cb.arg, st, why);
}

void store_op_completed(struct store *s, struct store_op *op, const PGresult *res,
                        const char *err)
{
	if (err)
		store_note_error(s, err);
	if (op->counted) {
		op->counted = false;
		s->reads_in_flight--;
	}
	op->done(op, res, err);
	store_op_free(op);
}

/* Several connections (store_pool.h): everything but a batch and a
 * finish's index build (enqueue_index_builds) goes on connection 0, and
 * waits there for the rows taken before it on the others (reads of
 * stored rows, runs and their finish), except what only meets connection
 * 0's own writes: reads of page records (written on connection 0 only)
 * and import_errors rows. */
static int enqueue(struct store *s, struct store_op *op)
{
	if (!op)
		return -1;
	if (op->kind != STORE_OP_BATCH)
		op->barrier = !op->unordered && op->kind != STORE_OP_GET_INPUT &&
		              op->kind != STORE_OP_READ_STAGE && op->kind != STORE_OP_ADD_ERROR;
	store_op_push(op->unordered ? &s->reads : &s->queued, op);
	s->backend->ops->kick(s->backend);
	return 0;
}

/* --- batches ------------------------------------------------------------ */

#define HEARTBEAT_SQL "UPDATE import_runs SET heartbeat_at = now() WHERE id = $1"

/* Whether a batch of import_id formed now carries the run's heartbeat. */
static bool heartbeat_due(struct store *s, int64_t import_id)
{
	uint64_t now = now_ms();
	if (!s->rows_needed || import_id <= 0 ||
	    (import_id == s->beat_import && now - s->beat_ms < STORE_HEARTBEAT_MS))
		return false;
	s->beat_import = import_id;
	s->beat_ms = now;
	return true;
}

/* Give op's statement i the run's heartbeat. */
static int heartbeat_stmt(struct store_op *op, size_t i)
{
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)op->import_id);
	const char *p[] = { id };
	return store_op_stmt(op, i, HEARTBEAT_SQL, 1, p);
}

static void batch_done(struct store_op *op, const PGresult *res, const char *err);

/* Give op's statement i the write `name` of n of its rows from `from`. */
static int batch_encode(struct store *s, struct store_op *op, size_t i, size_t from, size_t n,
                        const char *name)
{
	struct store_stmt *st = &op->stmts[i];
	struct store_batch_params p;
	st->params = calloc(STORE_BATCH_PARAMS_MAX, sizeof *st->params);
	st->lengths = calloc(STORE_BATCH_PARAMS_MAX, sizeof *st->lengths);
	if (!st->params || !st->lengths ||
	    store_batch_encode(op->rows + from, n, op->import_id, s->sql[op->table].n_cols,
	                       &p) != 0)
		return -1;
	st->name = name;
	st->n_params = (int)p.n;
	st->formats = p.formats;
	for (size_t k = 0; k < p.n; k++) {
		st->params[k] = p.values[k];
		st->lengths[k] = p.lengths[k];
	}
	return 0;
}

/* Give op's statement i the write of its page records. */
static int pages_encode(struct store *s, struct store_op *op, size_t i)
{
	struct store_stmt *st = &op->stmts[i];
	struct store_pages_params p;
	bool reach = store_pages_reach_only(op->pages, op->n_pages);
	st->params = calloc(STORE_PAGES_PARAMS, sizeof *st->params);
	st->lengths = calloc(STORE_PAGES_PARAMS, sizeof *st->lengths);
	if (!st->params || !st->lengths ||
	    (reach ? store_reach_encode(op->pages, op->n_pages, s->sql[op->table].name,
	                                op->import_id, &p)
	           : store_pages_encode(op->pages, op->n_pages, s->sql[op->table].name,
	                                op->import_id, &p)) != 0)
		return -1;
	st->name = reach ? STORE_REACH_WRITE : STORE_PAGES_WRITE;
	st->n_params = reach ? STORE_REACH_PARAMS : STORE_PAGES_PARAMS;
	st->formats = p.formats;
	for (size_t k = 0; k < STORE_PAGES_PARAMS; k++) {
		st->params[k] = p.values[k];
		st->lengths[k] = p.lengths[k];
	}
	return 0;
}

enum link_kind { LINKS_BY_URL, LINKS_BY_KEYS, LINKS_FRESH };

/* Give op's statement i the write of its link records of one kind. */
static int links_encode(struct store *s, struct store_op *op, size_t i, enum link_kind kind)
{
	struct store_stmt *st = &op->stmts[i];
	const struct store_table_sql *sql = &s->sql[op->table];
	size_t n = kind == LINKS_BY_URL ? STORE_LINKS_PARAMS
	         : kind == LINKS_BY_KEYS ? STORE_LINK_KEYS_PARAMS : STORE_LINK_FRESH_PARAMS;
	st->params = calloc(STORE_LINK_KEYS_PARAMS, sizeof *st->params);
	st->lengths = calloc(STORE_LINK_KEYS_PARAMS, sizeof *st->lengths);
	if (!st->params || !st->lengths)
		return -1;
	if ((kind == LINKS_BY_URL
	     ? store_links_encode(op->links, op->n_links, st->params, st->lengths, &st->formats)
	     : store_links_encode_keys(op->links, op->n_links, kind == LINKS_FRESH, st->params,
	                               st->lengths, &st->formats)) != 0)
		return -1;
	st->name = kind == LINKS_BY_URL ? sql->link_write_name
	         : kind == LINKS_BY_KEYS ? sql->link_keys_name
	         : op->links_plain ? sql->link_plain_name : sql->link_fresh_name;
	st->n_params = (int)n;
	return 0;
}

/* op's fresh links go by the insert that tolerates a stored pair. */
static void links_unplain(struct store *s, struct store_op *op)
{
	const struct store_table_sql *sql = &s->sql[op->table];
	for (size_t i = 0; i < op->n_stmts; i++)
		if (op->stmts[i].name == sql->link_plain_name)
			op->stmts[i].name = sql->link_fresh_name;
	op->links_plain = false;
}

/* What a batch carries; rows, pages and links are taken by batch_new on
 * success (none: the backend needs no rows or pages). */
struct batch_parts {
	size_t table;
	struct store_row *rows;
	size_t n_rows;
	struct store_page_rec *pages;
	size_t n_pages;
	struct store_link_rec *links;
	size_t n_links;
	size_t n_added;        /* rows and placeholders it acknowledges */
	size_t n_plain;        /* rows[0 .. n_plain) known new */
	bool fill;             /* ... written by the fill, not the plain INSERT */
	int64_t import_id;
	uint64_t sink_gen;
	bool beat;             /* carries the run's heartbeat */
	unsigned conn;         /* the connection that carries it */
};

/* op no longer owns its rows, page and link records (they moved, or
 * stay with their former owner). */
static void op_forget_parts(struct store_op *op)
{
	op->rows = NULL;
	op->n_rows = 0;
	op->pages = NULL;
	op->n_pages = 0;
	op->links = NULL;
	op->n_links = 0;
}

/* A batch of b's parts, statements in this order: the plain INSERT (or
 * the fill) of its rows known new, the upsert of the others, the write
 * of its page records, the write of its fresh link records (a parent's
 * first record in the run: any other record of it in the batch is a later
 * one, so it must be written after), that of its link records by URL
 * (after the pages they read), that of its link records by keys, the
 * heartbeat (each only if any); no
 * statement at all (placeholders only) is a sync alone, acknowledged in
 * order all the same.  NULL when out of memory (b's parts stay b's). */
static struct store_op *batch_new(struct store *s, const struct batch_parts *b)
{
	size_t by_url, by_keys, fresh;
	store_links_count(b->links, b->n_links, &by_url, &by_keys, &fresh);
	size_t n = (b->n_plain > 0) + (b->n_rows > b->n_plain) + (b->n_pages > 0) +
	           (by_url > 0) + (by_keys > 0) + (fresh > 0) + b->beat;
	struct store_op *op = store_op_new(STORE_OP_BATCH, n);
	if (!op)
		return NULL;
	op->done = batch_done;
	op->ctx = s;
	op->table = b->table;
	op->rows = b->rows;
	op->n_rows = b->n_rows;
	op->pages = b->pages;
	op->n_pages = b->n_pages;
	op->links = b->links;
	op->n_links = b->n_links;
	op->n_added = b->n_added;
	op->import_id = b->import_id;
	op->sink_gen = b->sink_gen;
	op->conn = b->conn;
	op->n_plain = b->n_plain;
	op->fill = b->fill;
	op->links_plain = fresh > 0 && !b->fill &&
	                  s->tables[b->table].link_plain_import == b->import_id;
	/* page and link records describe rows: after every row before them */
	op->barrier = b->n_pages > 0 || b->n_links > 0;
	const struct store_table_sql *sql = &s->sql[b->table];
	size_t i = 0;
	if ((b->n_plain > 0 &&
	     batch_encode(s, op, i++, 0, b->n_plain, b->fill ? sql->fill_name : sql->insert_name) != 0) ||
	    (b->n_rows > b->n_plain &&
	     batch_encode(s, op, i++, b->n_plain, b->n_rows - b->n_plain, sql->upsert_name) != 0) ||
	    (b->n_pages > 0 && pages_encode(s, op, i++) != 0) ||
	    (fresh > 0 && links_encode(s, op, i++, LINKS_FRESH) != 0) ||
	    (by_url > 0 && links_encode(s, op, i++, LINKS_BY_URL) != 0) ||
	    (by_keys > 0 && links_encode(s, op, i++, LINKS_BY_KEYS) != 0) ||
	    (b->beat && heartbeat_stmt(op, i++) != 0)) {
		op_forget_parts(op);
		store_op_free(op);
		return NULL;
	}
	return op;
}

/* Free ops built by batch_split, whose rows and pages are still the
 * refused batch's. */
static void pieces_free(struct store_op_list *l)
{
	struct store_op *one;
	while ((one = store_op_pop(l))) {
		free(one->rows);
		op_forget_parts(one);
		store_op_free(one);
	}
}

/* Replace a refused batch by one-row batches at the head of the queue,
 * then its page records in an op of their own (after every row, whichever
 * piece fails). */
static int batch_split(struct store *s, struct store_op *op)
{
	struct store_op_list ones = { 0 };
	struct batch_parts b = { .table = op->table, .import_id = op->import_id,
	                         .sink_gen = op->sink_gen, .conn = op->conn };
	for (size_t i = 0; i < op->n_rows; i++) {
		struct store_row *r = malloc(sizeof *r);
		struct store_op *one = NULL;
		if (r) {
			*r = op->rows[i];   /* the strings stay op's until all are built */
			b.rows = r;
			b.n_rows = 1;
			/* the first piece acknowledges the folded rows and placeholders too */
			b.n_added = i == 0 ? 1 + op->n_added - op->n_rows : 1;
			/* a row known new by the fill: a later row of its key may be in */
			b.n_plain = i < op->n_plain;
			b.fill = true;
			one = batch_new(s, &b);
		}
		if (!one) {
			free(r);
			pieces_free(&ones);
			return -1;
		}
		store_op_push(&ones, one);
	}
	if (op->n_pages > 0 || op->n_links > 0) {
		struct batch_parts pb = { .table = op->table, .pages = op->pages,
		                          .n_pages = op->n_pages, .links = op->links,
		                          .n_links = op->n_links, .import_id = op->import_id,
		                          .sink_gen = op->sink_gen };
		struct store_op *pages = batch_new(s, &pb);
		if (!pages) {
			pieces_free(&ones);
			return -1;
		}
		store_op_push(&ones, pages);
	}
	store_queue_return(s, &ones);
	free(op->rows);   /* the strings moved to the one-row batches */
	op_forget_parts(op);  /* the pages and links moved to the last op */
	s->stats.batches_split++;
	return 0;
}

/* Bucket bounds in seconds: a batch commits in milliseconds on a local
 * server; seconds mean a lock, a slow disk or a far server. */
static const double commit_bucket_le[STORE_COMMIT_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

double store_commit_bucket_le(size_t i)
{
	return i < STORE_COMMIT_BUCKETS ? commit_bucket_le[i] : 0;
}

/* A batch taken at `taken` committed now: into the latency histogram. */
static void commit_observe(struct store *s, const struct timespec *taken)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double sec = (double)(now.tv_sec - taken->tv_sec) + (double)(now.tv_nsec - taken->tv_nsec) / 1e9;
	if (sec < 0)
		sec = 0;
	s->stats.commit_seconds += sec;
	for (size_t i = 0; i < STORE_COMMIT_BUCKETS; i++) {
		if (sec <= commit_bucket_le[i]) {
			s->stats.commit_buckets[i]++;
			break;
		}
	}
}

/* SQLSTATE class 42 (syntax error or access rule violation) on a batch
 * whose statement was prepared at connect: the table changed under us
 * (dropped: 42P01; a column gone or retyped; a privilege revoked), so
 * every row would fail alike. */
static bool error_is_the_tables(const struct store_op *op)
{
	return strncmp(op->sqlstate, "42", 2) == 0;
}

/* What the sink hears when the table refused a batch: what happened and
 * the fix. */
static void table_error(const struct store *s, const struct store_op *op, const char *err,
                        char *out)
{
	const char *name = s->sql[op->table].name;
	if (strcmp(op->sqlstate, "42P01") == 0)
		snprintf(out, ERR_MAX, "table %s does not exist: was it dropped during the import? "
		         "raced creates its tables when it connects: restart raced to create it again",
		         name);
	else
		snprintf(out, ERR_MAX, "PostgreSQL refused writing table %s (SQLSTATE %s: %s): "
		         "was it altered or a privilege revoked during the import? Restore it, or "
		         "drop it and restart raced to create it again", name, op->sqlstate, err);
}

/* The batch's rows are done: tell the sink that owns them, if still attached. */
static void batch_acknowledge(struct store *s, const struct store_op *op, const char *err)
{
	struct table *t = &s->tables[op->table];
	bool owner = s->sink_attached && op->sink_gen == s->sink_gen;
	if (err) {
		s->stats.rows_failed += op->n_rows;
		if (t->marks_import == op->import_id)
			t->refused = true;
		if (owner && s->sink.table_refused && error_is_the_tables(op)) {
			char msg[ERR_MAX];
			table_error(s, op, err, msg);
			s->sink.table_refused(s->sink.arg, op->table, op->n_added, msg);
		} else if (owner && s->sink.rows_refused)
			s->sink.rows_refused(s->sink.arg, op->table, op->n_added,
			                     op->n_rows == 1 ? op->rows[0].key : NULL, err);
	} else {
		t->batches_committed++;
		s->stats.batches_committed++;
		s->stats.rows_committed += op->n_added;
		commit_observe(s, &op->taken);
	}
	t->uncommitted -= op->n_added;
	t->rows_committed += op->n_added;
	if (owner && s->sink.committed && op->n_added > 0)
		s->sink.committed(s->sink.arg, op->table, op->n_added);
}

/* Rows known new (the design note): a batch refused because a key of its
 * plain INSERT is stored already (23505) turns its table's plain path off
 * for the rest of the import and goes again at once, its new rows by the
 * fill.  True when it went again. */
static bool plain_refused(struct store *s, struct store_op *op, const char *err)
{
	if (!err || (op->n_plain == 0 && !op->links_plain) || op->fill ||
	    strcmp(op->sqlstate, "23505") != 0)
		return false;
	struct table *t = &s->tables[op->table];
	s->stats.plain_fallbacks++;
	if (t->plain_import == op->import_id) {
		t->plain_import = 0;
		free(t->seen);
		t->seen = NULL;
	}
	/* the rows' or the links' plain INSERT: both fall back */
	if (t->link_plain_import == op->import_id)
		t->link_plain_import = 0;
	struct batch_parts b = { .table = op->table, .rows = op->rows, .n_rows = op->n_rows,
	                         .pages = op->pages, .n_pages = op->n_pages,
	                         .links = op->links, .n_links = op->n_links,
	                         .n_added = op->n_added, .n_plain = op->n_plain, .fill = true,
	                         .import_id = op->import_id, .sink_gen = op->sink_gen,
	                         .conn = op->conn };
	struct store_op *again = batch_new(s, &b);
	if (!again)
		return false;   /* split: each row by the fill or the upsert */
	op_forget_parts(op);
	struct store_op_list l = { again, again };
	store_queue_return(s, &l);
	return true;
}

static void batch_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	(void)res;
	if (plain_refused(s, op, err))
		return;
	if (err && op->n_rows > 1 && !error_is_the_tables(op) && batch_split(s, op) == 0)
		return;
	if (!err && op->n_plain > 0 && !op->fill) {
		s->stats.batches_plain++;
		s->stats.rows_plain += op->n_plain;
	}
	if (!err && op->links_plain) {
		size_t by_url, by_keys, fresh;
		store_links_count(op->links, op->n_links, &by_url, &by_keys, &fresh);
		s->stats.links_plain += fresh;
	}
	batch_acknowledge(s, op, err);
}

static bool batch_forming(const struct table *t)
{
	return t->n_added > 0 || t->n_page_recs > 0;
}

/* Which connection carries a row of table: by the hash of its key (the
 * row's, computed once), mixed with the table's index. */
static unsigned row_conn(const struct store *s, size_t table, const struct store_row *r)
{
	uint64_t h = r->hash ^ ((uint64_t)table * 0x9e3779b97f4a7c15u);
	h ^= h >> 32;
	return (unsigned)(h % s->n_conns);
}

/* Queue b as one batch per connection: the rows of connection k (k > 0)
 * in batches of their own, queued first; connection 0's rows, the folded
 * rows' and placeholders' acknowledgement, the page and link records and
 * the heartbeat in the last (its page records wait, as a barrier, for the
 * others to commit).  The rows move to the ops' own arrays; b->rows, now
 * empty, stays the caller's (the next batch reuses it).  -1 with err: out
 * of memory, nothing taken (b's rows and records stay b's). */
static int batch_route(struct store *s, struct batch_parts *b, char *err)
{
	const char *name = s->sql[b->table].name;
	unsigned n = s->n_conns;
	struct store_row *part[STORE_CONNECTIONS_MAX] = { 0 };
	size_t cnt[STORE_CONNECTIONS_MAX] = { 0 }, plain[STORE_CONNECTIONS_MAX] = { 0 };
	unsigned char *dest = malloc(b->n_rows);
	int rc = 0;
	if (!dest)
		return err_set(err, "store: out of memory building a batch for table %s", name);
	for (size_t i = 0; i < b->n_rows; i++) {
		dest[i] = (unsigned char)row_conn(s, b->table, &b->rows[i]);
		cnt[dest[i]]++;
		plain[dest[i]] += i < b->n_plain;   /* the known new first, in each share too */
	}
	for (unsigned k = 0; k < n; k++)
		if (cnt[k] > 0 && !(part[k] = malloc(cnt[k] * sizeof *part[k])))
			rc = -1;
	if (rc == 0) {
		size_t at[STORE_CONNECTIONS_MAX] = { 0 };
		for (size_t i = 0; i < b->n_rows; i++)
			part[dest[i]][at[dest[i]]++] = b->rows[i];   /* strings still b's */
	}
	free(dest);
	struct store_op_list ops = { 0 };
	size_t others = 0;
	for (unsigned k = 1; rc == 0 && k < n; k++) {
		if (cnt[k] == 0)
			continue;
		struct batch_parts one = { .table = b->table, .rows = part[k], .n_rows = cnt[k],
		                           .n_added = cnt[k], .n_plain = plain[k],
		                           .import_id = b->import_id,
		                           .sink_gen = b->sink_gen, .conn = k };
		struct store_op *op = batch_new(s, &one);
		if (!op) {
			rc = -1;
			break;
		}
		part[k] = NULL;   /* the op's */
		others += cnt[k];
		store_op_push(&ops, op);
	}
	if (rc == 0) {
		struct batch_parts last = *b;
		last.rows = part[0];
		last.n_rows = cnt[0];
		last.n_plain = plain[0];
		last.n_added = b->n_added - others;
		last.conn = 0;
		struct store_op *op = NULL;
		if (last.n_rows > 0 || last.n_added > 0 || last.n_pages > 0 || last.n_links > 0 ||
		    last.beat) {
			if ((op = batch_new(s, &last)))
				part[0] = NULL;
			else
				rc = -1;
		}
		if (op)
			store_op_push(&ops, op);
	}
	for (unsigned k = 0; k < n; k++)
		free(part[k]);
	if (rc != 0) {
		pieces_free(&ops);   /* the rows and records stay b's */
		return err_set(err, "store: out of memory building a batch for table %s", name);
	}
	b->n_rows = 0;           /* the rows moved to the ops; the array stays b's */
	struct store_op *op;
	while ((op = store_op_pop(&ops)))
		(void)enqueue(s, op);   /* fails only for NULL */
	return 0;
}

/* The Bloom filter's bit positions of a key of hash h (store_key_hash:
 * FNV-1a; double hashing). */
static void seen_bits(uint64_t h, uint32_t bits[STORE_PLAIN_FILTER_HASHES])
{
	uint32_t h1 = (uint32_t)h, h2 = (uint32_t)(h >> 32) | 1u;
	for (uint32_t k = 0; k < STORE_PLAIN_FILTER_HASHES; k++)
		bits[k] = (h1 + k * h2) % STORE_PLAIN_FILTER_BITS;
}

/* Put the rows whose key no earlier batch of the import had first (they
 * are known new: the table was empty at the start) and count them; then
 * every key joins the filter.  A key the filter only seems to know goes
 * by the upsert: slower, never wrong. */
static size_t plain_partition(struct table *t, struct store_row *rows, size_t n)
{
	size_t n_new = 0;
	uint32_t bits[STORE_PLAIN_FILTER_HASHES];
	for (size_t i = 0; i < n; i++) {
		seen_bits(rows[i].hash, bits);
		bool known = true;
		for (size_t k = 0; k < STORE_PLAIN_FILTER_HASHES; k++)
			known &= (t->seen[bits[k] / 8] >> (bits[k] % 8)) & 1u;
		if (known)
			continue;
		struct store_row r = rows[n_new];
		rows[n_new++] = rows[i];
		rows[i] = r;
	}
	for (size_t i = 0; i < n; i++) {
		seen_bits(rows[i].hash, bits);
		for (size_t k = 0; k < STORE_PLAIN_FILTER_HASHES; k++)
			t->seen[bits[k] / 8] |= (uint8_t)(1u << (bits[k] % 8));
	}
	return n_new;
}

/* Mark the link records by keys whose parent no earlier record of the
 * import had as fresh (the link table was empty at the start: such a
 * parent has no link); then every record's parent joins the filter.  A
 * parent the filter only seems to know goes by the write by keys:
 * slower, never wrong. */
static size_t link_partition(struct table *t, struct store_link_rec *links, size_t n)
{
	uint32_t bits[STORE_PLAIN_FILTER_HASHES];
	size_t fresh = 0;
	for (size_t i = 0; i < n; i++) {
		seen_bits(store_key_hash(links[i].parent, strlen(links[i].parent)), bits);
		bool known = true;
		for (size_t k = 0; k < STORE_PLAIN_FILTER_HASHES; k++) {
			known &= (t->link_seen[bits[k] / 8] >> (bits[k] % 8)) & 1u;
			t->link_seen[bits[k] / 8] |= (uint8_t)(1u << (bits[k] % 8));
		}
		links[i].fresh = !known && !links[i].input;
		fresh += links[i].fresh;
	}
	return fresh;
}

/* Send the batch being formed for table. */
static int make_batch(struct store *s, size_t table, char *err)
{
	struct table *t = &s->tables[table];
	const char *name = s->sql[table].name;
	if (!batch_forming(t))
		return 0;
	if (s->rows_needed) {
		long n = store_rows_fold(t->pending, t->n_pending);
		if (n < 0)
			return err_set(err, "store: out of memory folding a batch for table %s", name);
		t->n_pending = (size_t)n;
	}
	size_t n_plain = t->seen && t->plain_import == t->pending_import ?
	                 plain_partition(t, t->pending, t->n_pending) : 0;
	if (t->link_seen && t->link_fresh_import == t->pending_import)
		s->stats.links_fresh += link_partition(t, t->links, t->n_links);
	struct batch_parts b = { .table = table, .rows = t->pending, .n_rows = t->n_pending,
	                         .n_plain = n_plain,
	                         .pages = t->pages, .n_pages = t->n_pages,
	                         .links = t->links, .n_links = t->n_links,
	                         .n_added = t->n_added, .import_id = t->pending_import,
	                         .sink_gen = t->pending_gen,
	                         .beat = heartbeat_due(s, t->pending_import) };
	struct store_op *op = NULL;
	bool routed = s->n_conns > 1 && b.n_rows > 0;
	if (routed) {
		if (batch_route(s, &b, err) != 0)
			return -1;
	} else if (!(op = batch_new(s, &b))) {
		return err_set(err, "store: out of memory building a batch for table %s", name);
	}
	if (s->rows_needed)
		s->stats.rows_folded += t->n_added - t->n_pending;
	if (!routed) {
		t->pending = NULL;   /* the op's */
		t->cap = 0;
	}   /* else the rows were copied out: the array, at its size, serves the next batch */
	t->n_added = t->n_pending = 0;
	t->pages = NULL;
	t->n_pages = t->cap_pages = t->n_page_recs = 0;
	t->links = NULL;
	t->n_links = t->cap_links = 0;
	return op ? enqueue(s, op) : 0;
}

/* --- rows --------------------------------------------------------------- */

/* Room for one more row in table's batch. */
static int pending_reserve(struct store *s, struct table *t)
{
	if (t->n_pending < t->cap)
		return 0;
	if (t->n_pending >= s->batch_size)
		return -1;   /* a full batch is sent before another row joins it */
	size_t cap = t->cap ? t->cap * 2 : (s->batch_size < 64 ? s->batch_size : 64);
	if (cap > s->batch_size)
		cap = s->batch_size;
	struct store_row *r = realloc(t->pending, cap * sizeof *r);
	if (!r)
		return -1;
	t->pending = r;
	t->cap = cap;
	return 0;
}

/* t's finish marks, for import_id from now on. */
static struct table *marks_for(struct table *t, int64_t import_id)
{
	if (t->marks_import != import_id) {
		t->marks_import = import_id;
		t->keys_kept = true;
		t->rows_sent = false;
		t->all_reached = false;
		t->all_first = true;
		t->refused = false;
		t->n_records = 0;
		t->n_keys = 0;
	}
	return t;
}

/* Make table's batch being formed one of import_id and the sink attached
 * now: a batch belongs to one import (its import id is one parameter) and
 * to the sink attached when its rows were added, so another one's is sent
 * first; and so is a full one (its sending ran out of memory before). */
static int batch_claim(struct store *s, size_t table, int64_t import_id, char *err)
{
	struct table *t = &s->tables[table];
	if (batch_forming(t) &&
	    (t->pending_import != import_id || t->pending_gen != s->sink_gen ||
	     t->n_added >= s->batch_size || t->n_page_recs >= s->batch_size) &&
	    make_batch(s, table, err) != 0)
		return -1;
	t->pending_import = import_id;
	t->pending_gen = s->sink_gen;
	return 0;
}

int store_add(struct store *s, size_t table, int64_t import_id, const char *key,
              const char *parent_key, const char *payload, size_t payload_len, char *err)
{
	return store_add_typed(s, table, import_id, key, parent_key, payload, payload_len, NULL,
	                       err);
}

int store_add_typed(struct store *s, size_t table, int64_t import_id, const char *key,
                    const char *parent_key, const char *payload, size_t payload_len,
                    const char *const *values, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	struct table *t = &s->tables[table];
	const char *name = s->sql[table].name;
	if (!key || !payload)
		return err_set(err, "store: row for table %s without %s", name, key ? "payload" : "key");
	if (memchr(payload, '\0', payload_len))
		return err_set(err, "store: payload for %s key '%s' contains a NUL byte", name, key);
	if (batch_claim(s, table, import_id, err) != 0)
		return -1;
	if (s->rows_needed) {
		struct store_row *r = pending_reserve(s, t) == 0 ? &t->pending[t->n_pending] : NULL;
		if (!r || store_row_set(r, key, parent_key, payload, payload_len) != 0)
			return err_set(err, "store: out of memory queueing a row for %s", name);
		if (store_row_set_cols(r, values, s->sql[table].n_cols) != 0) {
			store_row_clear(r);
			return err_set(err, "store: out of memory queueing a row for %s", name);
		}
		t->n_pending++;
	}
	t->pending_import = import_id;
	t->pending_gen = s->sink_gen;
	marks_for(t, import_id)->rows_sent = true;
	t->n_added++;
	t->uncommitted++;
	s->stats.rows_added++;
	/* The row is in either way: a batch that cannot be sent now (out of
	 * memory) stays pending, and the next add or flush sends it. */
	if (t->n_added >= s->batch_size)
		(void)make_batch(s, table, err);
	return 0;
}

int store_add_unchanged(struct store *s, size_t table, int64_t import_id, size_t n, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	struct table *t = &s->tables[table];
	while (n > 0) {
		if (batch_claim(s, table, import_id, err) != 0)
			return -1;
		/* placeholders fill batches as rows do */
		size_t room = t->n_added < s->batch_size ? s->batch_size - t->n_added : 0;
		size_t k = n < room ? n : room;
		if (k == 0)
			return -1;   /* a full batch could not be sent: err is set */
		t->n_added += k;
		t->uncommitted += k;
		n -= k;
		if (t->n_added >= s->batch_size)
			(void)make_batch(s, table, err);
	}
	return 0;
}

/* Room for one more page record in table's batch. */
static int pages_reserve(struct store *s, struct table *t)
{
	if (t->n_pages < t->cap_pages)
		return 0;
	/* a batch's array starts again each batch: at 256 records, not 16,
	 * it is grown twice to batch_size's 1,000, not six times */
	size_t cap = t->cap_pages ? t->cap_pages * 2 : 256;
	if (cap > s->batch_size)
		cap = s->batch_size;
	if (cap <= t->n_pages)
		return -1;
	struct store_page_rec *r = realloc(t->pages, cap * sizeof *r);
	if (!r)
		return -1;
	t->pages = r;
	t->cap_pages = cap;
	return 0;
}

void store_pages_all_reached(struct store *s, size_t table, int64_t import_id)
{
	if (table < s->n_tables)
		marks_for(&s->tables[table], import_id)->all_reached = true;
}

int store_add_page(struct store *s, size_t table, int64_t import_id,
                   const struct store_page *pg, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	struct table *t = &s->tables[table];
	const char *name = s->sql[table].name;
	if (!pg->url || !pg->input)
		return err_set(err, "store: page record for table %s without %s", name,
		               pg->url ? "input" : "url");
	if (pg->n_keys > 0 && pg->content && (!pg->keys || !pg->hashes))
		return err_set(err, "store: page record %s of table %s: %zu keys but no array",
		               pg->url, name, pg->n_keys);
	if (batch_claim(s, table, import_id, err) != 0)
		return -1;
	if (s->rows_needed) {
		if (pages_reserve(s, t) != 0 || store_page_rec_set(&t->pages[t->n_pages], pg) != 0)
			return err_set(err, "store: out of memory queueing page %s for %s", pg->url, name);
		t->n_pages++;
	}
	t->n_page_recs++;
	marks_for(t, import_id)->keys_kept &= pg->keys_same;
	t->all_first &= pg->first && pg->content && !pg->reached_only;
	t->n_records++;
	t->n_keys += (int64_t)pg->n_keys;
	/* Page records count towards a batch of their own bound: a run of
	 * skipped pages (no rows) still forms batches. */
	if (t->n_page_recs >= s->batch_size)
		(void)make_batch(s, table, err);
	return 0;
}

/* Add a link record of table's to its batch: by URL (input set) or by
 * the n keys packed in keys (len bytes). */
static int add_link(struct store *s, size_t table, int64_t import_id, const char *parent_key,
                    const char *input, const char *keys, size_t len, size_t n, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	struct table *t = &s->tables[table];
	const char *name = s->sql[table].name;
	if (!s->sql[table].link_name)
		return err_set(err, "store: link record for table %s, which has no link table", name);
	if (!parent_key || (!input && n > 0 && !keys))
		return err_set(err, "store: link record for table %s without %s", name,
		               parent_key ? "keys" : "parent key");
	if (batch_claim(s, table, import_id, err) != 0)
		return -1;
	if (s->rows_needed) {
		if (t->n_links == t->cap_links) {
			size_t cap = t->cap_links ? t->cap_links * 2 : 16;
			struct store_link_rec *r = realloc(t->links, cap * sizeof *r);
			if (!r)
				return err_set(err, "store: out of memory queueing a link for %s", name);
			t->links = r;
			t->cap_links = cap;
		}
		struct store_link_rec *r = &t->links[t->n_links];
		if ((input ? store_link_rec_set(r, parent_key, input)
		           : store_link_rec_set_keys(r, parent_key, keys, len, n)) != 0)
			return err_set(err, "store: out of memory queueing a link for %s", name);
		t->n_links++;
	}
	/* Bounded with the page records, a record by keys as its pairs: a
	 * run of deduped parents forms batches of its own, and a batch holds
	 * at most batch_size pairs more than its bound. */
	t->n_page_recs += n > 1 ? n : 1;
	if (t->n_page_recs >= s->batch_size)
		(void)make_batch(s, table, err);
	return 0;
}

int store_add_link(struct store *s, size_t table, int64_t import_id, const char *parent_key,
                   const char *input, char *err)
{
	if (!input)
		return err_set(err, "store: link record for table %zu without input", table);
	return add_link(s, table, import_id, parent_key, input, NULL, 0, 0, err);
}

int store_add_link_keys(struct store *s, size_t table, int64_t import_id,
                        const char *parent_key, const char *keys, size_t len, size_t n,
                        char *err)
{
	return add_link(s, table, import_id, parent_key, NULL, keys, len, n, err);
}

int store_flush(struct store *s, size_t table, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	return make_batch(s, table, err);
}

size_t store_pending(const struct store *s, size_t table)
{
	return table < s->n_tables ? (size_t)s->tables[table].uncommitted : 0;
}

size_t store_table_committed(const struct store *s, size_t table)
{
	return table < s->n_tables ? (size_t)s->tables[table].rows_committed : 0;
}

void store_attach_sink(struct store *s, const struct store_sink *sink)
{
	s->sink_gen++;
	s->sink_attached = sink != NULL;
	if (sink)
		s->sink = *sink;
}

void store_detach_sink(struct store *s, const void *arg)
{
	if (s->sink_attached && s->sink.arg == arg)
		store_attach_sink(s, NULL);
}

void store_get_stats(const struct store *s, struct store_stats *out)
{
	*out = s->stats;
	out->state = s->state;
	out->ops_queued = store_op_list_len(&s->queued) + store_op_list_len(&s->reads);
	out->errors_queued = s->runs.errors_queued;
	out->errors_dropped = s->runs.errors_dropped;
	s->backend->ops->get_stats(s->backend, out);
	out->last_error = s->last_error[0] ? s->last_error : NULL;
}

/* --- reading state ------------------------------------------------------ */

/* A read's answer: to the sink attached when it was asked, if still (a
 * callback may detach it: checked before each answer). */
static void inputs_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	char msg[ERR_MAX];
	struct store_input_state **st = calloc(op->n_inputs ? op->n_inputs : 1, sizeof *st);
	if (!err && !st)
		err = "store: out of memory reading the state of inputs";
	if (!err && store_pages_parse_inputs(res, op->n_inputs, st, msg) != 0)
		err = msg;
	for (size_t i = 0; i < op->n_inputs; i++) {
		struct store_input_state *one = st && !err ? st[i] : NULL;
		if (s->sink_attached && op->sink_gen == s->sink_gen && s->sink.input_read)
			s->sink.input_read(s->sink.arg, op->table, op->tags[i], one, err);
		else
			store_input_state_free(one);
	}
	free(st);
}

static void items_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	char msg[ERR_MAX];
	struct store_items *it = NULL;
	if (!err && store_pages_parse_items(res, &it, msg) != 0)
		err = msg;
	if (s->sink_attached && op->sink_gen == s->sink_gen && s->sink.items_read)
		s->sink.items_read(s->sink.arg, op->table, op->tag, it, err);
	else
		store_items_free(it);
}

/* A read op of table, answered to the sink attached now. */
static struct store_op *read_op(struct store *s, enum store_op_kind kind, size_t table,
                                uint64_t tag, store_op_done_fn done)
{
	struct store_op *op = store_op_new(kind, 1);
	if (!op)
		return NULL;
	op->done = done;
	op->ctx = s;
	op->table = table;
	op->tag = tag;
	op->sink_gen = s->sink_gen;
	return op;
}

/* Give a read of inputs its statement, once, as the backend takes it: the
 * inputs asked until then are one statement.  -1: out of memory. */
static int inputs_seal(struct store *s, struct store_op *op)
{
	static const int formats[2] = { 0, 1 };
	struct store_stmt *st = &op->stmts[0];
	op->sealed = true;
	if (!(st->params = calloc(2, sizeof *st->params)) ||
	    !(st->lengths = calloc(2, sizeof *st->lengths)))
		return -1;
	st->n_params = 2;
	st->name = STORE_INPUTS_READ;
	st->formats = formats;
	if (!(st->params[0] = strdup(s->sql[op->table].name)))
		return -1;
	return store_pages_encode_keys((const char *const *)op->inputs, op->n_inputs,
	                               &st->params[1], &st->lengths[1]);
}

/* Seal the reads the backend takes; one that cannot be is answered with
 * the error (its inputs are then fetched as if new) and skipped. */
static struct store_op *take_sealed(struct store *s)
{
	struct store_op *op;
	while ((op = store_op_pop(&s->queued))) {
		/* formed before its table fell back: its new rows by the fill,
		 * its fresh links by the insert that tolerates a stored pair */
		if (op->kind == STORE_OP_BATCH && op->n_plain > 0 && !op->fill &&
		    s->tables[op->table].plain_import != op->import_id) {
			op->fill = true;
			op->stmts[0].name = s->sql[op->table].fill_name;
		}
		if (op->kind == STORE_OP_BATCH && op->links_plain &&
		    (op->fill || s->tables[op->table].link_plain_import != op->import_id))
			links_unplain(s, op);
		if (op->kind != STORE_OP_GET_INPUT || op->sealed || inputs_seal(s, op) == 0)
			return op;
		store_op_completed(s, op, NULL, "store: out of memory reading the state of inputs");
	}
	return NULL;
}

/* Give op room for one more input.  -1: out of memory. */
static int inputs_grow(struct store_op *op)
{
	if (op->n_inputs < op->cap_inputs)
		return 0;
	size_t cap = op->cap_inputs ? 2 * op->cap_inputs : 8;
	char **in = realloc(op->inputs, cap * sizeof *in);
	if (!in)
		return -1;
	op->inputs = in;
	uint64_t *tags = realloc(op->tags, cap * sizeof *tags);
	if (!tags)
		return -1;
	op->tags = tags;
	op->cap_inputs = cap;
	return 0;
}

int store_get_inputs(struct store *s, size_t table, const char *const *inputs,
                     const uint64_t *tags, size_t n, size_t *asked, char *err)
{
	if (asked)
		*asked = 0;
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	for (size_t i = 0; i < n; i++)
		if (!inputs[i])
			return err_set(err, "store: reading the state of table %s without an input",
			               s->sql[table].name);
	size_t i = 0;
	while (i < n) {
		/* Joins the queue's last op when it is a read of the same table
		 * and sink not yet taken: it still comes after every batch queued
		 * before this call, and one statement reads many inputs. */
		struct store_op *op = s->queued.tail;
		bool join = op && op->kind == STORE_OP_GET_INPUT && !op->sealed &&
		            op->table == table && op->sink_gen == s->sink_gen &&
		            op->n_inputs < STORE_READ_INPUTS_MAX;
		if (!join)
			op = read_op(s, STORE_OP_GET_INPUT, table, 0, inputs_done);
		/* The inputs that fit go into op before the backend may take it. */
		size_t took = 0;
		while (op && i < n && op->n_inputs < STORE_READ_INPUTS_MAX) {
			char *copy = inputs_grow(op) == 0 ? strdup(inputs[i]) : NULL;
			if (!copy)
				break;
			op->inputs[op->n_inputs] = copy;
			op->tags[op->n_inputs++] = tags[i];
			i++;
			took++;
		}
		if (asked)
			*asked = i;
		if (!op || took == 0) {
			if (op && !join)
				store_op_free(op);
			return err_set(err, "store: out of memory reading the state of %s (%zu inputs "
			               "not asked)", inputs[i], n - i);
		}
		if (!join && enqueue(s, op) != 0)
			return err_set(err, "store: out of memory reading the state of inputs");
	}
	return 0;
}

int store_get_input(struct store *s, size_t table, const char *input, uint64_t tag, char *err)
{
	const char *const in[1] = { input };
	const uint64_t t[1] = { tag };
	return store_get_inputs(s, table, in, t, 1, NULL, err);
}

/* A narrow read's answer (store_read_committed_fields). */
static void narrow_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	char msg[ERR_MAX];
	struct store_items *it = NULL;
	if (!err && store_pages_parse_narrow(res, s->sql[op->table].n_fields, &it, msg) != 0)
		err = msg;
	if (s->sink_attached && op->sink_gen == s->sink_gen && s->sink.items_read)
		s->sink.items_read(s->sink.arg, op->table, op->tag, it, err);
	else
		store_items_free(it);
}

static int read_keys(struct store *s, size_t table, const char *const *keys, size_t n,
                     uint64_t tag, bool unordered, bool narrow, uint64_t sink_gen, char *err);

/* A copy of the n keys in one block (pointers, then the strings). */
static char **keys_block(const char *const *keys, size_t n)
{
	size_t bytes = n * sizeof(char *);
	for (size_t i = 0; i < n; i++)
		bytes += strlen(keys[i]) + 1;
	char **block = malloc(bytes ? bytes : 1);
	char *at = block ? (char *)(block + n) : NULL;
	for (size_t i = 0; block && i < n; i++) {
		size_t len = strlen(keys[i]) + 1;
		memcpy(at, keys[i], len);
		block[i] = at;
		at += len;
	}
	return block;
}

/* A read-back by parent's answer: the rows of the keys asked, in their
 * order; if some key's row was not among them, read by key instead. */
static void parent_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	char msg[ERR_MAX];
	struct store_items *rows = NULL, *it = NULL;
	bool ours = s->sink_attached && op->sink_gen == s->sink_gen && s->sink.items_read;
	if (!err && store_pages_parse_narrow(res, s->sql[op->table].n_fields, &rows, msg) != 0)
		err = msg;
	int rc = err ? 0 : store_pages_rows_in_order(rows, (const char *const *)op->keys, op->n_keys,
	                                             &it);
	store_items_free(rows);
	if (rc == 1 && ours) {
		s->stats.read_parent_missed++;
		if (read_keys(s, op->table, (const char *const *)op->keys, op->n_keys, op->tag, true,
		              true, op->sink_gen, msg) == 0)
			return;
		err = msg;
	} else if (rc != 0) {
		err = err ? err : "store: out of memory reading stored rows";
	}
	if (ours)
		s->sink.items_read(s->sink.arg, op->table, op->tag, it, err);
	else
		store_items_free(it);
}

static int read_items(struct store *s, size_t table, const char *const *keys, size_t n,
                      uint64_t tag, bool unordered, bool narrow, char *err)
{
	return read_keys(s, table, keys, n, tag, unordered, narrow, s->sink_gen, err);
}

static int read_keys(struct store *s, size_t table, const char *const *keys, size_t n,
                     uint64_t tag, bool unordered, bool narrow, uint64_t sink_gen, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	static const int binary[1] = { 1 };
	if (narrow && !s->sql[table].read_fields_name)
		return err_set(err, "store: the rows of %s cannot be read narrow", s->sql[table].name);
	struct store_op *op = read_op(s, STORE_OP_READ_ITEMS, table, tag,
	                              narrow ? narrow_done : items_done);
	if (op)
		op->sink_gen = sink_gen;
	struct store_stmt *st = op ? &op->stmts[0] : NULL;
	if (!op || !(st->params = calloc(1, sizeof *st->params)) ||
	    !(st->lengths = calloc(1, sizeof *st->lengths)) ||
	    store_pages_encode_keys(keys, n, &st->params[0], &st->lengths[0]) != 0) {
		store_op_free(op);
		return err_set(err, "store: out of memory reading %zu rows of %s", n,
		               s->sql[table].name);
	}
	st->name = narrow ? s->sql[table].read_fields_name : s->sql[table].read_name;
	st->n_params = 1;
	st->formats = binary;
	op->unordered = unordered;
	return enqueue(s, op);
}

/* A stage's read in one pass: to the sink attached when it was asked. */
static void stage_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	char msg[ERR_MAX];
	struct store_stage_chunk *c = NULL;
	if (!err && store_preload_parse(res, op->limit, &c, msg) != 0)
		err = msg;
	if (s->sink_attached && op->sink_gen == s->sink_gen && s->sink.stage_read)
		s->sink.stage_read(s->sink.arg, op->table, op->tag, c, err);
	else
		store_stage_chunk_free(c);
}

int store_read_stage(struct store *s, size_t table, const struct store_stage_at *at,
                     uint64_t tag, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	bool scan = at->blocks > 0;
	if (!scan && (at->limit == 0 || !at->input))
		return err_set(err, "store: reading the state of %s without a limit or start",
		               s->sql[table].name);
	char a[24], b[24];
	const char *params[4] = { s->sql[table].name, a, b, at->want_share ? "true" : "false" };
	if (scan) {
		snprintf(a, sizeof a, "%" PRIu64, at->block);
		snprintf(b, sizeof b, "%" PRIu64, at->block + at->blocks);
	} else {
		params[1] = at->input;
		snprintf(b, sizeof b, "%" PRIu32, at->limit);
	}
	struct store_op *op = read_op(s, STORE_OP_READ_STAGE, table, tag, stage_done);
	if (!op || store_op_stmt(op, 0, NULL, scan ? 4 : 3, params) != 0) {
		store_op_free(op);
		return err_set(err, "store: out of memory reading the state of %s", s->sql[table].name);
	}
	op->stmts[0].name = scan ? STORE_STAGE_SCAN : STORE_STAGE_READ;
	op->stmts[0].binary_result = true; /* keys, hashes, numbers as stored: no text to parse */
	op->limit = scan ? 0 : at->limit; /* the parse tells a cut input by it, a scan by 0 */
	return enqueue(s, op);
}

/* autovacuum's default analyze threshold, applied now rather than at
 * its next round (reltuples is -1 before the first ANALYZE) */
#define STATE_ANALYZE_SQL                                                              \
	"DO $raced$ BEGIN"                                                             \
	" IF EXISTS (SELECT 1 FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid" \
	"  WHERE s.relid = 'raced_pages'::regclass"                                     \
	"  AND s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)) THEN"       \
	"  ANALYZE (SKIP_LOCKED) raced_pages;"                                          \
	" END IF;"                                                                      \
	" END $raced$"

static void state_analyzed(struct store_op *op, const PGresult *res, const char *err)
{
	(void)op;
	(void)res;
	if (err) /* its first line: the CONTEXT after it quotes the DO block */
		log_warn("database: raced_pages could not be analyzed before the import read its"
		         " state: %.*s; with stale statistics its reads may scan more than they"
		         " need until autovacuum analyzes the table", (int)strcspn(err, "\n"), err);
}

int store_analyze_state(struct store *s)
{
	if (!s->rows_needed)
		return 0; /* discard: no state */
	struct store_op *op = store_op_new(STORE_OP_ANALYZE_STATE, 1);
	if (!op)
		return -1;
	store_op_sql(op, 0, STATE_ANALYZE_SQL);
	op->done = state_analyzed;
	op->ctx = s;
	return enqueue(s, op);
}

int store_read_items(struct store *s, size_t table, const char *const *keys, size_t n,
                     uint64_t tag, char *err)
{
	return read_items(s, table, keys, n, tag, false, false, err);
}

int store_read_committed(struct store *s, size_t table, const char *const *keys, size_t n,
                         uint64_t tag, char *err)
{
	return read_items(s, table, keys, n, tag, true, false, err);
}

int store_read_committed_fields(struct store *s, size_t table, const char *const *keys,
                                const char *const *parents, size_t n, uint64_t tag, char *err)
{
	if (table >= s->n_tables)
		return err_set(err, "store: table %zu out of range (%zu tables)", table, s->n_tables);
	bool by_parent = parents && n > 0 && s->sql[table].read_parent_name &&
	                 s->tables[table].parent_indexed;
	for (size_t i = 0; by_parent && i < n; i++)
		by_parent = parents[i] != NULL;
	if (!by_parent)
		return read_items(s, table, keys, n, tag, true, true, err);
	/* each parent once; an input's keys come together, so most repeats
	 * are the one before */
	const char **distinct = malloc(n * sizeof *distinct);
	size_t nd = 0;
	for (size_t i = 0; distinct && i < n; i++) {
		bool seen = nd > 0 && strcmp(distinct[nd - 1], parents[i]) == 0;
		for (size_t d = 0; !seen && d < nd; d++)
			seen = strcmp(distinct[d], parents[i]) == 0;
		if (!seen)
			distinct[nd++] = parents[i];
	}
	static const int binary[1] = { 1 };
	struct store_op *op = distinct ? read_op(s, STORE_OP_READ_ITEMS, table, tag, parent_done)
	                               : NULL;
	struct store_stmt *st = op ? &op->stmts[0] : NULL;
	if (!op || !(op->keys = keys_block(keys, n)) ||
	    !(st->params = calloc(1, sizeof *st->params)) ||
	    !(st->lengths = calloc(1, sizeof *st->lengths)) ||
	    store_pages_encode_keys(distinct, nd, &st->params[0], &st->lengths[0]) != 0) {
		store_op_free(op);
		free(distinct);
		return err_set(err, "store: out of memory reading %zu rows of %s", n,
		               s->sql[table].name);
	}
	free(distinct);
	op->n_keys = n;
	st->name = s->sql[table].read_parent_name;
	st->n_params = 1;
	st->formats = binary;
	op->unordered = true;
	s->stats.read_parent++;
	return enqueue(s, op);
}

bool store_read_fields_of(const struct store *s, size_t table, const char *const **fields,
                          size_t *n)
{
	if (table >= s->n_tables || !s->sql[table].read_fields_name)
		return false;
	*fields = (const char *const *)s->sql[table].fields;
	*n = s->sql[table].n_fields;
	return true;
}

/* --- import runs -------------------------------------------------------- */

/* How long the probe of empty tables waits for a table's lock (a
 * PostgreSQL interval), in its own transaction only. */
#define STORE_PROBE_LOCK_TIMEOUT "100ms"

/* The probe's answer: which tables, link tables and stages' page records
 * have no row now. */
static void probe_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	const char *v = !err && res && PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	bool ok = strlen(v) == 4 * s->n_tables;
	for (size_t i = 0; i < s->n_tables; i++) {
		s->tables[i].probed_empty = ok && v[i] == 't';
		/* not known: taken as empty, so that no link is trusted */
		s->tables[i].probed_links_empty = !ok || v[s->n_tables + i] == 't';
		s->tables[i].link_probed_empty = ok && s->sql[i].link_name && v[s->n_tables + i] == 't';
		s->tables[i].probed_state_empty = ok && v[2 * s->n_tables + i] == 't';
		s->tables[i].parent_indexed = ok && v[3 * s->n_tables + i] == 't';
	}
	json_t *del = ok && PQnfields(res) > 1 && !PQgetisnull(res, 0, 1)
	              ? json_loads(PQgetvalue(res, 0, 1), 0, NULL) : NULL;
	for (size_t i = 0; i < s->n_tables; i++) {
		struct table *t = &s->tables[i];
		const json_t *a = json_object_get(del, s->sql[i].name);
		const json_t *oid = json_array_get(a, 0), *n = json_array_get(a, 1);
		const json_t *trig = json_array_get(a, 2);   /* null: no trigger counts */
		t->probed_deletes_ok = json_is_integer(oid) && json_is_integer(n) &&
		                       json_is_integer(trig);
		t->probed_oid = t->probed_deletes_ok ? json_integer_value(oid) : -1;
		t->probed_deletes = t->probed_deletes_ok ? json_integer_value(n) : -1;
		t->probed_trigger = t->probed_deletes_ok ? json_integer_value(trig) : -1;
	}
	json_decref(del);
}

/* Whether a table's stored fields may feed a 304's children without a
 * read-back (docs/architecture.md, "Children of a 304 without a
 * read-back"): no statement deleted from it or truncated it since the run
 * before this one began (its counts' deletes_seen, of the same table by
 * oid, counted by the same trigger: one dropped and put back may have
 * missed a delete meanwhile), and that run succeeded (prior), so each
 * page row it left lists rows it had in the table or wrote. */
static bool fields_trusted(const struct store *s, size_t i, const json_t *prior)
{
	const struct table *t = &s->tables[i];
	const json_t *c = json_object_get(prior, s->sql[i].name);
	const json_t *oid = json_object_get(c, "table_oid"), *n = json_object_get(c, "deletes_seen");
	const json_t *trig = json_object_get(c, "trigger_oid");
	return t->probed_deletes_ok && json_is_integer(oid) && json_is_integer(n) &&
	       json_is_integer(trig) && json_integer_value(oid) == t->probed_oid &&
	       json_integer_value(n) == t->probed_deletes &&
	       json_integer_value(trig) == t->probed_trigger;
}

/* Whether a dedupe stage's links, as the run before this one left them,
 * are exact for every parent that run saw (docs/architecture.md,
 * "Edges"): prior is that run's counts when it succeeded, not under a
 * cursor and with this pipeline (store_runs.c), and it dropped no link
 * record of the stage; and the link table is not empty (made empty by a
 * schema upgrade, or emptied by someone); and the parent stage's table is
 * not empty either: then no parent can be unchanged, and trust would only
 * cost the import its set of changed inputs (a hash an input). */
static bool links_trusted(const struct store *s, size_t i, const json_t *prior)
{
	const struct table *t = &s->tables[i];
	const json_t *dropped = json_object_get(json_object_get(prior, s->sql[i].name),
	                                        "links_dropped");
	if (!s->sql[i].link_name || !json_is_integer(dropped) || json_integer_value(dropped) != 0)
		return false;
	return !t->probed_links_empty &&
	       !(t->parent < s->n_tables && s->tables[t->parent].probed_empty);
}

/* The run's id: the tables the probe before it found empty take the plain
 * INSERT for its rows. */
static void begun(struct store_op *op, const PGresult *res, const char *err)
{
	struct store *s = op->ctx;
	int64_t id = !err && res && PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	/* out of memory or not valid: nothing is trusted */
	json_t *prior = id > 0 && PQnfields(res) > 1 && !PQgetisnull(res, 0, 1)
	                ? json_loads(PQgetvalue(res, 0, 1), 0, NULL) : NULL;
	for (size_t i = 0; i < s->n_tables; i++) {
		struct table *t = &s->tables[i];
		t->links_trusted = prior && links_trusted(s, i, prior);
		t->fields_trusted = prior && fields_trusted(s, i, prior);
		t->deletes_oid = id > 0 && t->probed_deletes_ok ? t->probed_oid : -1;
		t->deletes_seen = id > 0 && t->probed_deletes_ok ? t->probed_deletes : -1;
		t->deletes_trigger = id > 0 && t->probed_deletes_ok ? t->probed_trigger : -1;
		t->probed_deletes_ok = false;
	}
	json_decref(prior);
	for (size_t i = 0; i < s->n_tables; i++) {
		struct table *t = &s->tables[i];
		free(t->seen);
		t->seen = NULL;
		/* out of memory for the filter: the upsert, as for any table */
		if (id > 0 && t->probed_empty && (t->seen = calloc(STORE_PLAIN_FILTER_BITS / 8, 1)))
			t->plain_import = id;
		else
			t->plain_import = 0;
		t->probed_empty = false;
		free(t->link_seen);
		t->link_seen = NULL;
		if (id > 0 && t->link_probed_empty &&
		    (t->link_seen = calloc(STORE_PLAIN_FILTER_BITS / 8, 1)))
			t->link_fresh_import = id;
		else
			t->link_fresh_import = 0;
		t->link_plain_import = t->link_fresh_import;
		t->link_probed_empty = false;
		t->state_empty = id > 0 && t->probed_state_empty;
		t->probed_state_empty = false;
	}
	store_runs_begin_done(op, res, err);
}

int store_begin_import(struct store *s, const struct store_run_begin *b, store_id_fn cb,
                       void *arg)
{
	struct store_op *op = store_runs_begin(b, cb, arg);
	if (!op)
		return -1;
	for (size_t i = 0; i < s->n_tables; i++) {
		s->tables[i].links_trusted = false;   /* until begun() says otherwise */
		s->tables[i].state_empty = false;
		s->tables[i].fields_trusted = false;
		s->tables[i].deletes_oid = s->tables[i].deletes_seen = s->tables[i].deletes_trigger = -1;
	}
	/* One probe of every table, just before the run's row: it sees every
	 * batch queued before (a barrier), and nothing of this run is added
	 * before the id comes back.  Without it (out of memory, or it fails:
	 * a table dropped) every row goes by the upsert. */
	struct store_op *probe = s->rows_needed && s->empty_sql ?
	                         store_op_new(STORE_OP_PROBE_EMPTY, 2) : NULL;
	if (probe) {
		/* A table someone holds locked does not hold up the run: the
		 * probe gives up after STORE_PROBE_LOCK_TIMEOUT (55P03 is its
		 * own error, store_conn.c) and the run writes by the upsert. */
		store_op_sql(probe, 0, "SELECT set_config('lock_timeout', '" STORE_PROBE_LOCK_TIMEOUT "', true)");
		store_op_sql(probe, 1, s->empty_sql);
		probe->done = probe_done;
		probe->ctx = s;
		(void)enqueue(s, probe);
		op->done = begun;
		op->ctx = s;
	}
	return enqueue(s, op);
}

bool store_links_trusted(const struct store *s, size_t table)
{
	return table < s->n_tables && s->tables[table].links_trusted;
}

bool store_state_empty(const struct store *s, size_t table)
{
	return table < s->n_tables && s->tables[table].state_empty;
}

bool store_fields_trusted(const struct store *s, size_t table)
{
	return table < s->n_tables && s->tables[table].fields_trusted;
}

bool store_deletes_seen(const struct store *s, size_t table, int64_t *oid, int64_t *deletes,
                        int64_t *trigger)
{
	if (table >= s->n_tables || s->tables[table].deletes_seen < 0)
		return false;
	*oid = s->tables[table].deletes_oid;
	*deletes = s->tables[table].deletes_seen;
	*trigger = s->tables[table].deletes_trigger;
	return true;
}

int store_get_run(struct store *s, int64_t id, store_json_fn cb, void *arg)
{
	return enqueue(s, store_runs_get_run(id, cb, arg));
}

int store_resume_import(struct store *s, int64_t id, store_done_fn cb, void *arg)
{
	/* A resumed run trusts no link: its earlier run may have committed a
	 * parent's page state and not its link record. */
	for (size_t i = 0; i < s->n_tables; i++) {
		s->tables[i].links_trusted = false;
		s->tables[i].state_empty = false;   /* its checkpoints are there to read */
		/* nor a stored field: its earlier run's deletes are not known */
		s->tables[i].fields_trusted = false;
		s->tables[i].deletes_oid = s->tables[i].deletes_seen = s->tables[i].deletes_trigger = -1;
	}
	return enqueue(s, store_runs_resume(id, cb, arg));
}

int store_get_cursor(struct store *s, size_t table, const char *pointer, store_json_fn cb,
                     void *arg)
{
	if (table >= s->n_tables)
		return -1;
	return enqueue(s, store_runs_cursor(&s->sql[table], pointer, cb, arg));
}

int store_clear_orphan_state(struct store *s, store_json_fn cb, void *arg)
{
	if (!s->orphan_sql) {
		const char **names = calloc(s->n_tables ? s->n_tables : 1, sizeof *names);
		if (!names)
			return -1;
		for (size_t i = 0; i < s->n_tables; i++)
			names[i] = s->sql[i].name;
		s->orphan_sql = store_pages_orphan_sql(names, s->n_tables);
		free(names);
		if (!s->orphan_sql)
			return -1;
	}
	return enqueue(s, store_runs_list(STORE_OP_CLEAR_ORPHANS, s->orphan_sql, cb, arg));
}

uint64_t store_down_ms(const struct store *s)
{
	if (s->state == STORE_READY)
		return 0;
	uint64_t now = now_ms();
	return now > s->down_since_ms ? now - s->down_since_ms : 0;
}

int store_add_error(struct store *s, int64_t import_id, const char *stage, const char *url,
                    long http_status, uint32_t attempts, const char *message)
{
	struct store_op *op;
	if (store_runs_error(&s->runs, import_id, stage, url, http_status, attempts, message,
	                     &op) != 0)
		return -1;
	return op ? enqueue(s, op) : 0;
}

/* One build: its DO block (borrowed) and the rows it sorts, roughly. */
struct index_build {
	const char *sql;
	uint64_t rows;
	const char *table;   /* named if it fails */
};

static int cmp_build_rows(const void *a, const void *b)
{
	const struct index_build *x = a, *y = b;
	return x->rows < y->rows ? 1 : x->rows > y->rows ? -1 : 0;
}

/* The finish's index builds, one op each, the largest first.  With
 * several connections they run at once, each on the connection with the
 * fewest rows to sort so far (a table's rows stored so far stand for its
 * size, its parent's twice for its link table's, a third of all of them
 * for raced_pages'; connection 0 also carries the counts, so ties go
 * elsewhere): they are the end of a first import, and raced only waits
 * for them.  Side ops (store_op.side): they wait for the finish, not for
 * the counts nor for each other (no lock of theirs conflicts: the counts
 * read, each build locks its own table); what comes after them (the
 * run's read, the next run) waits for them. */
static void enqueue_index_builds(struct store *s)
{
	size_t n = 1;
	for (size_t i = 0; i < s->n_tables; i++)
		n += 1 + (s->sql[i].link_index_finish_sql != NULL);
	struct index_build *b = calloc(n, sizeof *b);
	if (!b)
		return;   /* the next finish or connect makes them */
	size_t k = 1;
	uint64_t all = 0;
	for (size_t i = 0; i < s->n_tables; i++) {
		const struct table *t = &s->tables[i];
		b[k++] = (struct index_build){ s->sql[i].index_finish_sql, t->rows_committed, s->sql[i].name };
		/* a link a parent row, and two columns: about twice the sort */
		if (s->sql[i].link_index_finish_sql && t->parent < s->n_tables)
			b[k++] = (struct index_build){ s->sql[i].link_index_finish_sql,
			                               2 * s->tables[t->parent].rows_committed,
			                               s->sql[i].link_name };
		else if (s->sql[i].link_index_finish_sql)
			b[k++] = (struct index_build){ s->sql[i].link_index_finish_sql, 0, s->sql[i].link_name };
		all += t->rows_committed;
	}
	b[0] = (struct index_build){ store_pages_index_finish_sql, all / 3, "raced_pages" };
	qsort(b, n, sizeof *b, cmp_build_rows);
	uint64_t load[STORE_CONNECTIONS_MAX] = { 1 };
	unsigned n_conns = s->n_conns && s->n_conns <= STORE_CONNECTIONS_MAX ? s->n_conns : 1;
	for (size_t j = 0; j < n; j++) {
		struct store_op *op = store_runs_index(b[j].sql, b[j].table);
		if (!op)
			break;
		unsigned c = 0;
		for (unsigned i = 1; i < n_conns; i++)
			if (load[i] < load[c])
				c = i;
		load[c] += b[j].rows + 1;
		op->conn = c;
		op->side = true;
		(void)enqueue(s, op);
	}
	free(b);
}

int store_finish_import(struct store *s, int64_t import_id, const char *status,
                        json_t *counts, unsigned flags, store_done_fn cb, void *arg)
{
	/* After every row and page record queued before it: partial batches
	 * go first. */
	for (size_t i = 0; i < s->n_tables; i++)
		if (make_batch(s, i, NULL) != 0)
			return -1;
	/* Every batch of the run is formed: its key filters are done with
	 * (a later batch of it would go by the upsert). */
	for (size_t i = 0; i < s->n_tables; i++) {
		free(s->tables[i].seen);
		s->tables[i].seen = NULL;
		free(s->tables[i].link_seen);
		s->tables[i].link_seen = NULL;
	}
	/* What this run's records say of each table (struct table's marks);
	 * the statements check the rest (store_runs.c). */
	bool *kept = calloc(s->n_tables + 1, sizeof *kept);
	bool *reached = calloc(s->n_tables + 1, sizeof *reached);
	bool *no_rows = calloc(s->n_tables + 1, sizeof *no_rows);
	struct store_fresh *fresh = calloc(s->n_tables + 1, sizeof *fresh);
	for (size_t i = 0; kept && reached && no_rows && fresh && i < s->n_tables; i++) {
		struct table *t = &s->tables[i];
		bool mine = t->marks_import == import_id;
		kept[i] = mine && t->keys_kept;
		reached[i] = kept[i] && t->all_reached && !t->refused;
		no_rows[i] = !mine || !t->rows_sent;
		/* Empty at the start (and no key found stored after all), every
		 * record a first one, no row refused: what the store can tell of
		 * a first import (store_runs.c checks the rest). */
		fresh[i].records = mine && t->plain_import == import_id && t->all_first && !t->refused &&
		                   (t->n_records > 0 || !t->rows_sent) ? t->n_records : -1;
		fresh[i].keys = fresh[i].records >= 0 ? t->n_keys : -1;
		t->marks_import = 0;
	}
	int rc = kept && reached && no_rows && fresh
		? enqueue(s, store_runs_finish(&s->runs, s->sql, s->n_tables, import_id, status,
		                               counts, flags, kept, reached, fresh, cb, arg))
		: -1;
	/* Queued with it, so before anything its callback queues; a table
	 * the counts cannot be made for keeps the import's own. */
	for (size_t i = 0; rc == 0 && s->rows_needed && i < s->n_tables; i++) {
		struct store_op *op = store_runs_counts(&s->sql[i], import_id, no_rows[i], fresh[i].keys);
		if (op)
			op->side = true;   /* beside the index builds */
		if (enqueue(s, op) < 0)
			break;
	}
	free(kept);
	free(reached);
	free(no_rows);
	free(fresh);
	if (rc < 0)
		return -1;
	/* The indexes a first import's rows went without (store_schema.c,
	 * "Secondary indexes after a first import"): after its rows, each in
	 * a transaction of its own.  Not for an interrupted run: the daemon
	 * is stopping (a build could outlast systemd's stop timeout), and the
	 * next connect makes them for the tables that have rows. */
	if (s->rows_needed && s->n_tables > 0 && strcmp(status, "interrupted") != 0)
		enqueue_index_builds(s);
	/* The counts read the run's reach: it goes after them. */
	if (s->rows_needed && (flags & (STORE_FINISH_REMOVALS | STORE_FINISH_PRUNE_ROOT)))
		(void)enqueue(s, store_runs_forget_reach(import_id));
	return 0;
}

int store_get_runs(struct store *s, int64_t id, uint32_t limit, store_json_fn cb, void *arg)
{
	return enqueue(s, store_runs_get(id, limit, cb, arg));
}

int store_get_errors(struct store *s, int64_t id, uint32_t urls, store_json_fn cb, void *arg)
{
	return enqueue(s, store_runs_errors(id, urls, cb, arg));
}

int store_mark_stale_runs(struct store *s, store_json_fn cb, void *arg)
{
	return enqueue(s, store_runs_mark_stale(&s->runs, s->sql, s->n_tables, cb, arg));
}

/* --- life cycle --------------------------------------------------------- */

static int tables_init(struct store *s, const struct store_conf *conf, char *err)
{
	s->sql = calloc(conf->n_tables ? conf->n_tables : 1, sizeof *s->sql);
	s->tables = calloc(conf->n_tables ? conf->n_tables : 1, sizeof *s->tables);
	if (!s->sql || !s->tables)
		return err_set(err, "store: out of memory");
	s->n_tables = conf->n_tables;
	for (size_t i = 0; i < conf->n_tables; i++) {
		int p = conf->parents ? conf->parents[i] : -1;
		if (p >= (int)i)
			return err_set(err, "store: stage %s: its parent must come before it",
			               conf->tables[i]);
		s->tables[i].parent = p >= 0 ? (size_t)p : SIZE_MAX;
		if (store_table_sql_init(&s->sql[i], conf->tables[i], p >= 0 ? conf->tables[p] : NULL,
		                         conf->dedupe && conf->dedupe[i] && p >= 0, err) != 0 ||
		    (conf->columns && store_columns_init(&s->sql[i], &conf->columns[i], err) != 0) ||
		    (conf->read_fields &&
		     store_read_fields_init(&s->sql[i], conf->read_fields[i], err) != 0))
			return -1;
		for (size_t k = 0; k < i; k++)
			if (strcmp(conf->tables[k], conf->tables[i]) == 0)
				return err_set(err, "store: stage name '%s' appears twice", conf->tables[i]);
	}
	return 0;
}

struct store *store_new(struct event_base *base, const struct store_conf *conf,
                        const struct store_callbacks *cb, char *err)
{
	if (conf->batch_size == 0 || conf->batch_size > STORE_BATCH_SIZE_MAX)
		return err_set(err, "store: [database] batch_size %u is out of range: use 1 to %u",
		               conf->batch_size, STORE_BATCH_SIZE_MAX), NULL;
	struct store *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(err, "store: out of memory"), NULL;
	if (cb)
		s->cb = *cb;
	s->batch_size = conf->batch_size;
	s->state = STORE_CONNECTING;
	s->down_since_ms = now_ms();
	if (tables_init(s, conf, err) != 0)
		goto fail;
	/* The one place that knows which backend carries the ops. */
	s->rows_needed = !conf->discard;
	if (s->rows_needed && !(s->empty_sql = store_schema_empty_sql(s->sql, s->n_tables))) {
		err_set(err, "store: out of memory");
		goto fail;
	}
	s->n_conns = conf->discard || conf->connections == 0 ? 1 : conf->connections;
	s->backend = conf->discard ? store_null_new(s, base, err)
	                           : store_pool_new(s, base, conf->conninfo, conf->synchronous_commit,
	                                            conf->schema, s->sql, s->n_tables, s->n_conns,
	                                            err);
	if (!s->backend)
		goto fail;
	return s;
fail:
	store_free(s);
	return NULL;
}

int store_set_batch_size(struct store *s, uint32_t n, char *err)
{
	if (n == 0 || n > STORE_BATCH_SIZE_MAX)
		return err_set(err, "store: [database] batch_size %u is out of range: use 1 to %u", n,
		               STORE_BATCH_SIZE_MAX);
	s->batch_size = n;
	return 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	if (s->backend)
		s->backend->ops->free(s->backend);
	store_op_list_free(&s->queued);
	store_op_list_free(&s->reads);
	store_runs_free(&s->runs);
	for (size_t i = 0; i < s->n_tables; i++) {
		store_table_sql_free(&s->sql[i]);
		store_rows_free(s->tables[i].pending, s->tables[i].n_pending);
		store_page_recs_free(s->tables[i].pages, s->tables[i].n_pages);
		store_link_recs_free(s->tables[i].links, s->tables[i].n_links);
		free(s->tables[i].seen);
		free(s->tables[i].link_seen);
	}
	free(s->orphan_sql);
	free(s->empty_sql);
	free(s->sql);
	free(s->tables);
	free(s);
}
