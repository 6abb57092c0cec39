/* store — PostgreSQL persistence over asynchronous libpq connections
 * ([database] connections, 1 by default) driven by the event loop
 * (PQsocket watched by libevent, non-blocking, never a blocking call on
 * the loop).
 *
 * At connect the store sends [database] synchronous_commit, applies its
 * migrations (raced_schema_version, one transaction each) and creates one
 * table per stage.  Rows are added per table and written as batched
 * upserts that leave unchanged rows alone; the attached sink's `committed`
 * reports, per table and in order, how many added rows (and placeholders
 * for unchanged items, store_add_unchanged) are durable, which is when the
 * pipeline grants credit again (R6).
 * Import runs and import errors are written in order with the batches
 * (with several connections: on the first, after every batch queued
 * before them committed; store_pool.h).  If a connection drops the store
 * reconnects it with backoff and retries its batches in flight: nothing
 * is lost.
 *
 * Import state (docs/architecture.md, "Import state across runs"): a
 * page's record (store_add_page: validators, next page, its items' keys
 * and hashes, the input's checkpoint) joins the batch of its table and is
 * written in that batch's transaction, after the batch's rows, so the
 * state never runs ahead of the rows it describes.  Reads of that state
 * (store_get_input) and of stored rows (store_read_items) are queued in
 * order with the batches and answered through the sink; reads of rows
 * known committed (store_read_committed) do not wait for the batches.
 *
 * Ownership: the store copies everything passed to it; callers keep their
 * buffers.  Answers handed to a sink (store_input_state, store_items) are
 * the receiver's to free.  store_free() drops unwritten rows without
 * calling back; do not call it from inside a store callback.  Callbacks
 * may call every other store function.  The store borrows the sink's arg
 * while it is attached.
 *
 * Unchanged rows: a row is written only when it is new, its payload or
 * parent_key differ from the stored ones, or it was marked removed.  Then
 * last_import = the import that wrote it (so last_import means "the last
 * import that wrote the row", not "the last that saw it"), updated_at
 * moves only if the payload changed, and removed_import is cleared.  An
 * unchanged row is not touched at all: an import over unchanged data
 * writes no stage-table row.  A batch retried within the same import
 * changes nothing.  Rows of a run into a table that had no row when the
 * run began (store_begin_import), and whose key the run had not sent yet,
 * go by a plain INSERT, cheaper than the upsert, until a key is found
 * stored already: then the rest of the run goes by the upsert, and
 * nothing is lost or doubled.
 *
 * A batch holds the rows, placeholders and page records of one table, one
 * import and one sink: adding to a table whose pending batch belongs to
 * another import, or was formed before another sink was attached, first
 * sends the pending one.
 *
 * The store is in parts (store.c's design note lists them): the public API
 * and the batches here; the connection (or, for discard, the null backend)
 * chosen once in store_new().
 *
 * Table names are the stage names, checked against [a-z_][a-z0-9_]{0,47}
 * (and not import_runs, import_errors, raced_schema_version, raced_pages,
 * raced_columns)
 * by store_new() and written double-quoted in every statement.
 */
#ifndef RACED_STORE_H
#define RACED_STORE_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;

/* Bounds and timings (named settings; not configurable yet). */
#define STORE_BATCH_SIZE_MAX      10000  /* [database] batch_size upper bound */
#define STORE_MAX_IN_FLIGHT       8      /* ops sent and not yet acknowledged */
#define STORE_MAX_PENDING_ERRORS  10000  /* queued import_errors rows; more are only counted */
#define STORE_BACKOFF_MIN_MS      100    /* first reconnect delay, doubling ... */
#define STORE_BACKOFF_MAX_MS      5000   /* ... up to this, +-20 % jitter */
#define STORE_CONNECT_TIMEOUT_MS  10000  /* a connection attempt longer than this fails */
#define STORE_HEARTBEAT_MS        1000   /* a run's heartbeat rides a batch at most this often */
#define STORE_COMMIT_BUCKETS      12     /* commit latency histogram buckets (store_commit_bucket_le) */
#define STORE_READ_INPUTS_MAX     500    /* inputs whose state one statement reads (store_get_input) */
#define STORE_CONNECTIONS_MAX     16     /* [database] connections upper bound */
/* A run's keys per table written while the table was empty at its start
 * (store.c, "Rows known new"): a Bloom filter of this many bits (512 KiB
 * per such table, freed when the run finishes), 3 hashes.  With 100,000
 * keys in it, one new key in 3,000 is falsely taken as seen; with
 * 1,000,000, one in 8 (those go by the upsert, the slower write). */
#define STORE_PLAIN_FILTER_BITS   (1u << 22)
#define STORE_PLAIN_FILTER_HASHES 3

/* A typed column of a stage table (docs/data-model.md): raced
 * adds, retypes and drops it at connect (store_columns.c) and the upsert
 * fills it from the value the caller passes with the row (store_add_typed),
 * cast to type in SQL.  The caller checks each value fits type first. */
#define STORE_COLUMNS_MAX 32
struct store_column {
	const char *name;      /* [a-z_][a-z0-9_]*, none of raced's own columns */
	const char *type;      /* PostgreSQL's spelling, as format_type() writes it */
	const char *pointer;   /* the JSON pointer it comes from (existing rows
	                          are filled from their payload at it) */
	bool indexed;          /* raced keeps an index on it */
};
struct store_columns {
	const struct store_column *cols;
	size_t n;              /* <= STORE_COLUMNS_MAX */
};

enum store_state {
	STORE_CONNECTING,
	STORE_MIGRATING,
	STORE_READY,
	STORE_BACKOFF,   /* connection lost or refused; retrying */
};

struct store_conf {
	/* libpq conninfo.  Name the host by a Unix socket directory or an IP
	 * address (hostaddr=): libpq resolves host names synchronously. */
	const char *conninfo;
	uint32_t batch_size;
	const char *const *tables;  /* one per stage, in stage order */
	size_t n_tables;
	/* The edges (docs/architecture.md, "Edges"): parents[i] the index of
	 * stage i's parent (< i; -1: the root), dedupe[i] whether stage i
	 * fetches a URL once an import, its edges then in the link table
	 * "<stage>_parents" (store_add_link).  Both NULL: not known, every
	 * table a root.  They name the views (store_views.h). */
	const int *parents;
	const bool *dedupe;
	/* Benchmarking: connect to nothing and drop every row and statement,
	 * acknowledging each on the next loop turn as if it had committed
	 * (batches still form at batch_size, one import and sink each).
	 * Import ids count from 1; runs are not recorded (store_get_runs
	 * answers []).  conninfo is ignored. */
	bool discard;
	/* [database] synchronous_commit: sent as the connection's setting on
	 * every new connection before anything else, whatever the server's
	 * default; NULL means "on".  Config validates it (on, off, local,
	 * remote_write, remote_apply); a value the server refuses fails the
	 * connection (retried with backoff) with PostgreSQL's message. */
	const char *synchronous_commit;
	/* Per table (n_tables entries), or NULL: no typed columns anywhere.
	 * Copied. */
	const struct store_columns *columns;
	/* [database] schema: created if missing and made the connection's
	 * search_path (alone), so every table, view and bookkeeping row raced
	 * writes lands there; NULL: the server's search_path.  Copied. */
	const char *schema;
	/* [database] connections: batches spread over this many libpq
	 * connections (1 to STORE_CONNECTIONS_MAX; 0 means 1), each row by
	 * its table and key hash (store_pool.h).  Ignored with discard. */
	unsigned connections;
	/* Per table (n_tables entries, each NULL or copied), or NULL: the
	 * fields store_read_committed_fields returns of its rows. */
	const struct store_read_fields *const *read_fields;
};

/* Narrow read-backs (store_read_committed_fields): a parent stage's rows
 * read back for its children need only the fields their URLs take from
 * them (docs/architecture.md, "Reading state"), not the whole payload. */
#define STORE_READ_FIELDS_MAX 16  /* fields one table's narrow read returns */
struct store_read_fields {
	/* n (<= STORE_READ_FIELDS_MAX): each a member name of the item, or a
	 * JSON pointer into it ('/' first), as a URL template names it. */
	const char *const *fields;
	size_t n;
	/* A value of this many bytes or more (a URL could not take it) is not
	 * read narrow: its row comes whole. */
	size_t value_max;
};

struct store_callbacks {
	void (*state_changed)(void *arg, enum store_state state, const char *why);
	void *arg;
};

struct store_input_state;
struct store_items;
struct store_stage_chunk;

/* Where the store reports what became of the rows: the import that added
 * them attaches one (store_attach_sink), so results flow to their owner. */
struct store_sink {
	/* n more rows added to `table` are done (oldest first): committed, or
	 * reported by rows_refused just before.  Called after each batch's
	 * commit, in the order the rows were added; a row whose key was folded
	 * into a later one in the same batch counts with that batch.  (Rows of
	 * a batch PostgreSQL refused are retried one by one and acknowledged
	 * after the batches already sent behind it.)  With several connections
	 * a batch is acknowledged in shares, one per connection its rows went
	 * to, each once that share committed: batches still in order, the
	 * rows within one batch not (store_pool.h). */
	void (*committed)(void *arg, size_t table, size_t n);
	/* Optional: n rows of `table` were refused by PostgreSQL for a reason
	 * other than the connection (e.g. a key too long for the index); a
	 * batch refused as a whole is retried one row at a time first, so key
	 * names the refused row when n is 1 (else NULL). */
	void (*rows_refused)(void *arg, size_t table, size_t n, const char *key, const char *err);
	void *arg;
	/* Optional: PostgreSQL refused a batch of `table` for a reason that is
	 * the table's, not its rows' (SQLSTATE class 42: the table was dropped
	 * or altered during the import, a privilege revoked): its n rows are
	 * not retried one by one, as each would fail alike, and err says what
	 * happened and how to fix it.  Comes just before the committed() that
	 * acknowledges them; every later batch of the table meets the same.
	 * Without it such batches go to rows_refused.  (Last, so that
	 * initialisers naming the members above in order stay valid.) */
	void (*table_refused)(void *arg, size_t table, size_t n, const char *err);
	/* The answer to store_get_input(tag): st owned by the receiver (free it
	 * with store_input_state_free), or NULL with err. */
	void (*input_read)(void *arg, size_t table, uint64_t tag, struct store_input_state *st,
	                   const char *err);
	/* The answer to store_read_items(tag): items owned by the receiver
	 * (store_items_free), or NULL with err. */
	void (*items_read)(void *arg, size_t table, uint64_t tag, struct store_items *items,
	                   const char *err);
	/* The answer to store_read_stage(tag): chunk owned by the receiver
	 * (store_stage_chunk_free), or NULL with err. */
	void (*stage_read)(void *arg, size_t table, uint64_t tag, struct store_stage_chunk *chunk,
	                   const char *err);
};

struct store_stats {
	enum store_state state;
	uint64_t rows_added;
	uint64_t rows_folded;        /* duplicate keys folded within a batch */
	uint64_t rows_failed;
	uint64_t batches_committed;
	uint64_t rows_committed;     /* rows added that committed batches acknowledged */
	/* Commit latency of committed batches, from the backend taking the
	 * batch to its commit: bucket i counts those within
	 * store_commit_bucket_le(i) seconds and above bucket i-1's bound (not
	 * cumulative); a batch slower than the last bound is only in
	 * batches_committed and commit_seconds. */
	uint64_t commit_buckets[STORE_COMMIT_BUCKETS];
	double commit_seconds;       /* their sum */
	uint64_t batches_split;      /* refused batches retried row by row */
	uint64_t batches_plain;      /* committed with a plain INSERT (rows known new) */
	uint64_t rows_plain;         /* rows those plain INSERTs wrote */
	uint64_t plain_fallbacks;    /* plain batches refused for a key already stored
	                                (23505), sent again by the upsert */
	uint64_t links_fresh;        /* link records by keys sent by the fresh insert
	                                (their parent known to have no link) */
	uint64_t links_plain;        /* of those, committed by the plain INSERT (no
	                                batch of the run had met a stored key) */
	uint64_t read_parent;        /* read-backs by parent (store_read_committed_fields) */
	uint64_t read_parent_missed; /* of those, read by key after all: a key's row
	                                was not among its parent's rows */
	uint64_t reconnects;         /* connections lost or refused */
	uint64_t warmups;            /* backends given the malloc warm-up, each with
	                                its first batch that carries rows */
	uint64_t errors_dropped;     /* import_errors rows only counted (bound) */
	uint32_t migrations_applied; /* by the last connection */
	/* The connection for read-backs of committed rows (store_pool.h):
	 * "idle" (closed), "failed" (closed after a failure, not yet back),
	 * or the state name (store_state_name) while it is open; static. */
	const char *reader_state;
	size_t ops_queued;           /* batches and statements not yet sent */
	size_t ops_in_flight;
	size_t errors_queued;
	const char *last_error;      /* NULL or the last error; valid until the next store call */
};

RACED_MUST_CHECK
struct store *store_new(struct event_base *base, const struct store_conf *conf,
                        const struct store_callbacks *cb, char *err);
void store_free(struct store *s);

/* [database] batch_size changed by a reload, even while an import adds
 * rows: batches formed from now on hold at most n rows (a batch already
 * larger is sent as it is, before the next row joins it).  0, or -1 with
 * err when n is out of range (1 to STORE_BATCH_SIZE_MAX). */
RACED_MUST_CHECK int store_set_batch_size(struct store *s, uint32_t n, char *err);

enum store_state store_state(const struct store *s);
const char *store_state_name(enum store_state st);

/* Attach sink (copied), replacing the one attached: the rows added from now
 * on are reported to it.  Rows are reported only to the sink attached when
 * they were added, and only while it stays attached: the rows of an earlier
 * import still in flight when the next one attaches are acknowledged (or
 * refused) to nobody (store_pending, store_table_committed and
 * store_stats still count them), never to the newer import.  At most one import runs at a time: it attaches its
 * sink before adding rows and detaches it when freed. */
void store_attach_sink(struct store *s, const struct store_sink *sink);
/* Detach the sink attached with this arg, if it is still the one attached
 * (an import freed after the next one attached leaves that one alone). */
void store_detach_sink(struct store *s, const void *arg);

/* Queue one row for `table`.  payload is the item's JSON text.  -1 (err)
 * means the row was not taken; once taken, a batch it fills that cannot be
 * sent for want of memory stays pending for the next add or flush. */
RACED_MUST_CHECK
int store_add(struct store *s, size_t table, int64_t import_id, const char *key,
              const char *parent_key, const char *payload, size_t payload_len,
              char *err);

/* store_add with the values of the table's typed columns (store_conf
 * columns, in that order; values NULL, or an entry NULL: SQL NULL), each
 * already checked to fit its column's type: a value PostgreSQL cannot
 * cast fails the batch, which is then retried row by row and this row
 * refused. */
RACED_MUST_CHECK
int store_add_typed(struct store *s, size_t table, int64_t import_id, const char *key,
                    const char *parent_key, const char *payload, size_t payload_len,
                    const char *const *values, char *err);

/* n items of table need no row (unchanged): they join the pending batch
 * as placeholders, in order with the rows, and are acknowledged through
 * the sink's committed() with the batch they join (they count in its n).
 * They count towards batch_size, so an import of unchanged items still
 * forms batches (and its page records ride them); a batch of them is
 * cheap (its reach row and a commit, about 0.1 ms of backend CPU:
 * counting them for less was measured to save nothing; docs/architecture.md,
 * "What is written when").  -1 with err: table out of range. */
RACED_MUST_CHECK
int store_add_unchanged(struct store *s, size_t table, int64_t import_id, size_t n, char *err);

/* One page's state (a row of raced_pages: stage = the table's name, url). */
struct store_page {
	const char *url;           /* as requested, secrets masked */
	const char *input;         /* url of the input's first page */
	uint32_t page_no;          /* 0: the input's first page */
	bool fetched;              /* a 2xx or 304 now: fetched_at = now() */
	bool content;              /* a 2xx body: keys, hashes, next_url, etag,
	                              last_modified replaced by these (NULLs
	                              included); else kept as stored, except
	                              that a non-NULL etag/last_modified given
	                              replaces the stored one (a 304 may carry
	                              new validators) */
	const char *etag;          /* or NULL */
	const char *last_modified; /* or NULL */
	const char *next_url;      /* or NULL: the last page */
	const char *const *keys;   /* n_keys */
	const uint64_t *hashes;    /* n_keys; stored big-endian, 8 bytes each */
	size_t n_keys;
	/* With content: the values its items' descendants' URLs take of them,
	 * the import's packing (import_pagefields.h), kept in
	 * raced_pages.fields; NULL: none kept (the children's values are
	 * read back).  Without content: those of its stored keys, as read
	 * back, for a row that keeps none (written into a stored row of the
	 * same page_no only). */
	const unsigned char *fields;
	size_t fields_len;
	bool input_done;           /* checkpoint: the input (its page 0) is done
	                              in import_id; kept in raced_reached.done */
	bool reached_only;         /* the stored row already says all of this
	                              (the caller compared it): the page row is
	                              not written, only that import_id reached
	                              it (raced_reached.urls) */
	bool keys_same;            /* the page's stored row exists and keeps
	                              its key list: the caller compared them
	                              (false for a record whose keys were
	                              dropped, however it compares).  A finish
	                              can decide a stage's removals without
	                              reading keys when all its records had it
	                              (store_finish_import) */
	bool first;                /* the page had no stored row: the caller read
	                              its input's state and found none, and
	                              compared none of its items (all were
	                              sent).  A finish can decide the removals
	                              of a stage whose table was empty at the
	                              run's start without reading keys when all
	                              its records had it (store_finish_import) */
};

/* Add one page's state to table's pending batch (copied): it is written
 * after the rows added before it, in that batch's transaction.  Every
 * record's url (and input, if input_done) joins the batch's row of
 * raced_reached: what import_id reached and completed.  Unless
 * reached_only, the page row is also written, with seen_import =
 * import_id (the last import that wrote it); a batch whose records are
 * all reached_only writes its reach row alone (raced_pages untouched).  A record without content updates an
 * existing row only: one for a page that has no row yet leaves a
 * placeholder (seen_import < 0, no keys, no validators) that every read
 * takes as no row (store_get_input, the removals) and a finish deciding
 * removals deletes; a row without keys would lose the page's items.
 * Two records of one page in one batch: the later wins.  A record does not
 * count as a row (never in committed()'s n); a batch forms when it holds
 * batch_size rows and placeholders or batch_size page records, and a page
 * record alone still forms a batch at flush.  If PostgreSQL refuses a
 * batch and it is retried row by row, its page records follow its pieces
 * in an op of their own, still after its rows.  -1 with err: table out
 * of range, a record without url or input, or out of memory. */
RACED_MUST_CHECK
int store_add_page(struct store *s, size_t table, int64_t import_id,
                   const struct store_page *pg, char *err);

/* One edge of a dedupe stage's item: the parent item `parent_key` maps
 * to the input `input` (the URL of its first page, as in raced_pages) of
 * table, a dedupe stage.  Add it after the input's last page record
 * (store_add_page): it joins table's pending batch and is written in its
 * transaction after the page records, as the rows of the link table
 * "<stage>_parents" linking parent_key to the keys the input's pages list
 * (store_links.h: only if this import checkpointed the input; links to
 * other keys are deleted, unchanged ones not written).  Counts as a page
 * record towards the batch's bound, never as a row.  -1 with err: table
 * out of range or not a dedupe stage, or out of memory. */
RACED_MUST_CHECK
int store_add_link(struct store *s, size_t table, int64_t import_id, const char *parent_key,
                   const char *input, char *err);
/* The same link record carrying the input's keys, as this import's page
 * records of the input listed them: the n keys packed in keys (len
 * bytes, each key NUL-terminated, back to back; copied).  Written without
 * reading raced_pages.  Counts as max(n, 1) page records towards the
 * batch's bound.  Errors as store_add_link. */
RACED_MUST_CHECK
int store_add_link_keys(struct store *s, size_t table, int64_t import_id,
                        const char *parent_key, const char *keys, size_t len, size_t n,
                        char *err);

/* ---- reading state (answered through the sink attached when asked) ---- */

struct store_page_state {
	char *url;
	uint32_t page_no;
	char *etag, *last_modified, *next_url;   /* or NULL */
	char **keys;
	uint64_t *hashes;
	size_t n_keys;
	int64_t fetched_at_ms;   /* Unix ms */
	int64_t seen_import;     /* the last import that wrote the row; a resume
	                            sets it, and done_import, from raced_reached
	                            for what its run reached and completed */
	int64_t done_import;     /* 0 = NULL */
	unsigned char *fields;   /* raced_pages.fields, or NULL */
	size_t fields_len;
};

struct store_input_state {
	struct store_page_state *pages;  /* ordered by page_no; n_pages may be 0 */
	size_t n_pages;
};
/* Frees st and everything in it; NULL is allowed. */
void store_input_state_free(struct store_input_state *st);

/* Queue a read of every raced_pages row of (table's stage, input), in
 * order with the batches (it sees every batch queued before it, not rows
 * or pages still pending in a batch being formed).  Reads asked one after
 * the other while the backend is busy are one statement (up to
 * STORE_READ_INPUTS_MAX inputs), answered one call per input, in order.  The answer comes to
 * the sink attached now, as sink.input_read(arg, table, tag, state, err).
 * If that sink is detached before the answer, the answer is freed and
 * nobody is called.  Discard backend: an empty state on a later loop
 * turn.  -1 with err: table out of range, or out of memory. */
RACED_MUST_CHECK
int store_get_input(struct store *s, size_t table, const char *input, uint64_t tag, char *err);
/* The same for n inputs, tags[i] answering inputs[i]: queued together,
 * so they are one statement (or one per STORE_READ_INPUTS_MAX), joined
 * to a read of the table still queued.  *asked (if not NULL): how many,
 * from the first, were queued and will be answered.  -1 with err: table
 * out of range, an input NULL (none asked), or out of memory (those
 * after *asked not asked). */
RACED_MUST_CHECK
int store_get_inputs(struct store *s, size_t table, const char *const *inputs,
                     const uint64_t *tags, size_t n, size_t *asked, char *err);

/* ---- a stage's state in one pass (store_preload.c) ----
 * At a re-import's start the import reads every page row of a stage in a
 * few statements, a range of raced_pages's blocks each (the order stored,
 * about the order the inputs come in), or for a stage of few of its rows
 * in the order of their inputs (keyset pages: input >= the last one read,
 * up to `limit` rows each), instead of one index probe per input
 * (docs/architecture.md, "Reading state").  An answer holds
 * whole inputs only, each packed in one allocation with its URL and its
 * page rows as read (placeholders, seen_import < 0, left out, as every
 * read does), unpacked when the input starts. */
struct store_stage_input {
	struct store_stage_input *next;  /* the receiver's (a hash chain); NULL as answered */
	uint64_t hash;                   /* the receiver's; 0 as answered */
	size_t size;                     /* bytes of data[] */
	char data[];                     /* the input's URL, NUL, then its pages packed */
};
struct store_stage_chunk {
	struct store_stage_input **inputs;  /* n, in the order read; each the receiver's
	                                       once taken out (set the entry NULL) */
	size_t n;
	size_t rows;                        /* page rows they hold */
	/* By keyset: NULL, the stage is read to its end; else the input to
	 * read on from (its rows, cut by the limit, are not in this answer).
	 * By blocks: NULL. */
	char *from;
	/* By blocks: raced_pages's size in blocks as read, and the stage's
	 * share of its rows by the planner's statistics, in thousandths (-1:
	 * not known, or not asked). */
	uint64_t rel_blocks;
	int share;
	/* By blocks: the stage's page rows stored in those blocks (placeholders
	 * aside), whether or not the answer holds them; by keyset: 0. */
	uint64_t listed;
};
/* Frees c, its from and the inputs still in it; NULL is allowed. */
void store_stage_chunk_free(struct store_stage_chunk *c);
/* The input's URL (raced_pages.input). */
static inline const char *store_stage_input_url(const struct store_stage_input *in)
{
	return in->data;
}
/* Its state, as store_get_input would answer it (pages by page_no).
 * Returns 0, or -1 with err: out of memory, or a packed row unreadable. */
RACED_MUST_CHECK
int store_stage_input_unpack(const struct store_stage_input *in, struct store_input_state **out,
                             char *err);
/* Queue, in order with the batches, an ANALYZE of raced_pages if its
 * statistics are stale: more rows written since the last than
 * autovacuum's default threshold (50 + 10 % of the rows), as after a
 * first import autovacuum has not analyzed yet.  With such statistics
 * the passes' statement (store_read_stage) may be planned as a scan of
 * the whole stage and a sort, for each of its statements (docs/
 * performance.md, "The pass's plan and stale statistics").  Skipped if
 * someone holds the table (SKIP_LOCKED); a failure is logged, nothing
 * waits for it.  Discard backend: nothing.  -1: out of memory. */
int store_analyze_state(struct store *s);
/* Where the next statement of a stage's pass reads (store_read_stage). */
struct store_stage_at {
	/* By blocks (blocks > 0): the inputs whose page 0 lies in raced_pages's
	 * blocks [block, block + blocks), in the order stored, with their other
	 * pages; want_share: the answer says the stage's share of the rows. */
	uint64_t block;
	uint32_t blocks;
	bool want_share;
	/* By keyset (blocks 0): the inputs >= input (in raced_pages'
	 * collation; "" for the first), at most limit (> 0) rows. */
	const char *input;
	uint32_t limit;
};
/* Queue a read of page rows of table's stage, as at says, in order with
 * the batches.  The answer comes to the sink attached now, as
 * sink.stage_read(arg, table, tag, chunk, err) (chunk the receiver's, or
 * NULL with err); detached before it: freed, nobody called.  By keyset, a
 * chunk with no input and a non-NULL from means one input has more than
 * limit rows: the caller stops there.  Discard backend: no row, from NULL,
 * no block.  -1 with err: table out of range, neither blocks nor a limit
 * and start, or out of memory. */
RACED_MUST_CHECK
int store_read_stage(struct store *s, size_t table, const struct store_stage_at *at,
                     uint64_t tag, char *err);

struct store_item {
	char *key;
	char *parent_key;   /* or NULL */
	/* JSON text as PostgreSQL prints jsonb; when narrow, the values of the
	 * table's read fields instead (store_read_committed_fields): each as
	 * text (a string unescaped, a number as printed, true or false), NUL
	 * after each, in the fields' order (payload_len counts those NULs;
	 * one more follows, as after a payload's text). */
	char *payload;
	size_t payload_len;
	bool narrow;
};
struct store_items {
	struct store_item *items;
	size_t n;
};
/* Frees it and everything in it; NULL is allowed. */
void store_items_free(struct store_items *it);

/* Read the rows of table with these keys (n of them): answered as
 * sink.items_read(arg, table, tag, items, err) to the sink attached now
 * (as store_get_input), items->n found (<= n; a key with no row is left
 * out), in the order of keys.  Discard backend: none found.  -1 with err:
 * table out of range, or out of memory. */
RACED_MUST_CHECK
int store_read_items(struct store *s, size_t table, const char *const *keys, size_t n,
                     uint64_t tag, char *err);

/* As store_read_items, for rows known to be committed already: the
 * answer sees every row committed before the read is sent, but not
 * necessarily the batches queued before the call, which it does not
 * wait for.  With PostgreSQL it goes on a connection of its own (started
 * at the first such read; store_pool.h), or, while that one is not
 * ready, ahead of the batches queued on the first connection.  For the
 * import's read-backs: their keys come from a page record read from the
 * database, and a page record commits with its rows or after them
 * (docs/architecture.md, "Reading state"). */
RACED_MUST_CHECK
int store_read_committed(struct store *s, size_t table, const char *const *keys, size_t n,
                         uint64_t tag, char *err);

/* Whether table's read-backs can be narrow: store_conf.read_fields named
 * its fields and each is one the store reads as the import would (a
 * member name or pointer of tokens of [A-Za-z0-9_.-], an array index
 * only as RFC 6901 writes it; at most STORE_READ_FIELDS_MAX).  Then
 * *fields (the store's copies, n of them) are the fields in the order a
 * narrow item's values come. */
bool store_read_fields_of(const struct store *s, size_t table, const char *const **fields,
                          size_t *n);
/* As store_read_committed, for a table store_read_fields_of says can be
 * narrow: a row whose every field holds a string, number or boolean
 * shorter than value_max comes narrow (store_item.narrow: its fields'
 * values, no parent_key); any other comes whole (payload, no parent_key),
 * so that what is made of it is what the whole row makes.
 *
 * parents (NULL, or n, one for each key): the parent key its row is
 * expected to have (NULL: not known).  When every key has one, the table
 * has a parent stage and no dedupe, and the last probe found its
 * parent_key index, the rows are read by those parents (a range of the
 * index each, cheaper than a probe a key) and put in the order of the
 * keys; if a key's row is not among them (a key another parent wrote
 * last, a row gone), all are read by key instead.  Either way the answer
 * is what the read by key gives.  -1 with err also when the table cannot
 * be read narrow. */
RACED_MUST_CHECK
int store_read_committed_fields(struct store *s, size_t table, const char *const *keys,
                                const char *const *parents, size_t n, uint64_t tag, char *err);

/* Write the rows pending for table now, even if fewer than batch_size.
 * Returns 0, or -1 with err set (out of memory: the rows stay pending and
 * a later store_flush or store_add may send them). */
RACED_MUST_CHECK
int store_flush(struct store *s, size_t table, char *err);
/* Rows added to table and not yet acknowledged by `committed`. */
size_t store_pending(const struct store *s, size_t table);
/* Rows of table acknowledged by `committed` since store_new(). */
size_t store_table_committed(const struct store *s, size_t table);
void store_get_stats(const struct store *s, struct store_stats *out);
/* The upper bound, in seconds, of commit latency bucket i (i <
 * STORE_COMMIT_BUCKETS), increasing; 0 beyond. */
double store_commit_bucket_le(size_t i);

typedef void (*store_id_fn)(void *arg, int64_t id, const char *err);
typedef void (*store_done_fn)(void *arg, const char *err);
typedef void (*store_json_fn)(void *arg, json_t *result, const char *err);

/* The store_* calls below queue one statement in order with the batches
 * and return 0, or -1 when out of memory.  Callbacks run once the
 * statement committed; err is NULL on success. */

/* What an import_runs row records of its run at its start. */
struct store_run_begin {
	const char *requested_by;  /* or NULL */
	bool full;                 /* import_runs.full_import (--full) */
	const char *root_url;      /* or NULL: the root's first URL as requested */
	json_t *pipeline;          /* or NULL; copied (import_runs.pipeline) */
};
/* Insert an import_runs row with status 'running'; id via callback. */
RACED_MUST_CHECK
int store_begin_import(struct store *s, const struct store_run_begin *b, store_id_fn cb,
                       void *arg);
/* Once the id of a run store_begin_import() began has been answered
 * (and until the next begin or resume): whether the links of table's
 * link table, as the run before left them, are exact for every parent
 * that run saw, so that a parent whose item and input are both unchanged
 * needs no link record (docs/architecture.md, "Edges").  True only when
 * that run succeeded, not under a cursor, with the same pipeline, and
 * its counts say it dropped no link record of the stage ("links_dropped":
 * 0), and the link table was not found empty at the run's start while
 * its parent stage's table had rows.  False for a resumed run, a table
 * without links, and whenever it could not be told. */
bool store_links_trusted(const struct store *s, size_t table);
/* Once the id of a run store_begin_import() began has been answered
 * (and until the next begin or resume): whether raced_pages held no
 * record of table's stage when the run began (a first import), so that
 * no input of the stage has state an earlier run kept: reading it
 * (store_get_input) would answer nothing, or only what this run wrote
 * itself, after a wait behind every batch queued before the read.  The
 * import then reads none, as with --full.  False for a resumed run and
 * whenever it could not be told. */
bool store_state_empty(const struct store *s, size_t table);
/* Whether the run begun last may feed a 304's children from table's
 * stored page fields (store_page_state.fields) instead of reading the
 * rows back: nobody deleted from or truncated the table since the run
 * before it began, which succeeded with this pipeline and not under a
 * cursor (docs/architecture.md, "Children of a 304 without a
 * read-back").  False until the run's id is in, for a resumed run, and
 * whenever it cannot be known. */
bool store_fields_trusted(const struct store *s, size_t table);
/* What the probe before the run begun last found of table: its oid, how
 * many statements had deleted from or truncated it, and the oid of the
 * trigger that counts them.  The import keeps them in its counts
 * (table_oid, deletes_seen, trigger_oid), for the next run's
 * store_fields_trusted.  False when not known, or when the trigger is
 * missing or disabled (then nothing is kept). */
bool store_deletes_seen(const struct store *s, size_t table, int64_t *oid, int64_t *deletes,
                        int64_t *trigger);
/* Run import_id's page records (those store_add_page took; added
 * before the finish) reached every row raced_pages held of table's stage
 * when the run began: the import read them all in its pass and counted
 * the records that reached each (import_input.h).  Its finish then need
 * not look for page rows to delete in that stage, when every record also
 * kept its page's keys, no row of the table was refused and the run
 * before it decided removals with the same pipeline (store_runs.c,
 * DECIDE_SQL): no row can be unreached, and that finish deleted every
 * placeholder. */
void store_pages_all_reached(struct store *s, size_t table, int64_t import_id);
/* Queue one import_errors row.  Beyond STORE_MAX_PENDING_ERRORS queued rows
 * errors are only counted; store_finish_import() then adds
 * "errors_not_recorded": n to that import's counts.  http_status <= 0 is
 * stored as NULL (no HTTP response). */
RACED_MUST_CHECK
int store_add_error(struct store *s, int64_t import_id, const char *stage, const char *url,
                    long http_status, uint32_t attempts, const char *message);
/* Flags of store_finish_import, applied in its finishing transaction. */
#define STORE_FINISH_RESUMABLE  1u  /* resumable = true (store_resume_import) */
#define STORE_FINISH_REMOVALS   2u  /* decide removals for every stage table (an
                                       item in no page this import reached,
                                       raced_reached, gets removed_import = id;
                                       one marked removed that is in such a
                                       page again gets NULL), delete page rows
                                       it did not reach, and raced_reached rows
                                       of imports <= id */
#define STORE_FINISH_PRUNE_ROOT 4u  /* delete table 0's page rows id did not
                                       reach, and raced_reached rows of imports
                                       <= id (a cursor import) */
/* After every row queued before it (partial batches are flushed), in one
 * transaction: what flags ask, then status, finished_at, counts (copied;
 * NULL = {}) and resumable (set only by STORE_FINISH_RESUMABLE). */
RACED_MUST_CHECK
int store_finish_import(struct store *s, int64_t import_id, const char *status,
                        json_t *counts, unsigned flags, store_done_fn cb, void *arg);
/* What a resume must know of run id (id == 0: the newest run whose
 * `resumable` is set): a JSON object {id, status, resumable, resumes,
 * full_import, root_url, pipeline, started_at, finished_at, newer_success
 * (true when a succeeded run with a larger id exists)}, or JSON null when
 * there is no such run.  Borrowed for the callback.  Discard: null. */
RACED_MUST_CHECK
int store_get_run(struct store *s, int64_t id, store_json_fn cb, void *arg);
/* Reopen run id: status 'running', finished_at NULL, resumable false,
 * resumes + 1, resumed_at now().  cb gets an error naming the run's status
 * when it is not resumable (checked in the UPDATE's WHERE, so two resumes
 * cannot both win), or saying there is no such run.  Discard: an error
 * (no runs are recorded). */
RACED_MUST_CHECK
int store_resume_import(struct store *s, int64_t id, store_done_fn cb, void *arg);
/* The cursor values for the next import, as a JSON object borrowed for the
 * callback: {"last_success": the latest succeeded run's started_at as
 * ISO 8601 UTC text, whole seconds rounded down ("2026-01-02T03:04:05Z"),
 * or null; "max": the largest jsonb value at `pointer` (a JSON pointer;
 * NULL: not asked) among the rows of table written by succeeded imports
 * (last_import one of them), JSON null values left out, or null}.  One
 * scan of the table when a pointer is given.  Discard: both null. */
RACED_MUST_CHECK
int store_get_cursor(struct store *s, size_t table, const char *pointer, store_json_fn cb,
                     void *arg);
/* At the start of an import: for each stage table that has no row while
 * raced_pages has rows of its stage (someone emptied it), delete those
 * raced_pages rows, so the import fetches and writes everything.  cb gets
 * a JSON array of the stage names cleared, in stage order ([] none;
 * discard: []), borrowed for the call. */
RACED_MUST_CHECK
int store_clear_orphan_state(struct store *s, store_json_fn cb, void *arg);
/* How long the connection has been down (not READY since the last time
 * it was, or since store_new), in ms; 0 when READY.  The import fails a
 * run when it exceeds [database] max_outage. */
uint64_t store_down_ms(const struct store *s);
/* One run (id > 0) or the `limit` most recent (id == 0), as a JSON array of
 * objects {id, started_at, finished_at, status, requested_by, counts, errors,
 * resumes, resumed_at, full_import} (errors: the number of import_errors
 * rows; resumes: how many times it was resumed, resumed_at the last),
 * newest first.  The result is
 * borrowed for the callback (json_incref to keep it). */
RACED_MUST_CHECK
int store_get_runs(struct store *s, int64_t id, uint32_t limit, store_json_fn cb, void *arg);

/* URLs per error group in store_get_runs' error_groups. */
#define STORE_RUN_ERROR_URLS 3
#define STORE_RUN_ERROR_URLS_SQL "3"
/* The import_errors of run id (id == 0: the latest run) grouped by stage
 * and cause, as a JSON object {import_id, status, errors, groups}: errors
 * the number of rows, groups an array of {stage, cause, count, urls},
 * the most frequent first (then by stage and cause, bytewise), urls the
 * group's first `urls` non-empty URLs in the order they were recorded;
 * stage is null for an error of the import as a whole.  The cause is
 * "HTTP 404" when the error has an HTTP status outside 2xx, else its message with
 * every URL (scheme://...) replaced by URL, every '...' quoted value by
 * '?', every run of digits by N and runs of spaces by one.  {} when there
 * is no such run.  Also in store_get_runs: with id > 0 each run carries
 * error_groups (STORE_RUN_ERROR_URLS URLs each), null otherwise.
 * The result is borrowed for the callback. */
RACED_MUST_CHECK
int store_get_errors(struct store *s, int64_t id, uint32_t urls, store_json_fn cb, void *arg);

/* Runs left 'running' by a daemon that died become 'interrupted', with
 * finished_at their last heartbeat (the last batch they committed, within
 * STORE_HEARTBEAT_MS; started_at if none), resumable set (they may be
 * resumed: store_resume_import) and counts {stage: {"stored": n}} from the
 * rows whose last_import is the run (the rows its committed batches
 * wrote).  cb (may be NULL) gets the
 * runs marked as a JSON array of {id, started_at, finished_at, counts},
 * oldest first ([] when none; the discard backend always answers []),
 * borrowed for the call. */
RACED_MUST_CHECK
int store_mark_stale_runs(struct store *s, store_json_fn cb, void *arg);

#endif
