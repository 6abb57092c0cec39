/* store — PostgreSQL persistence over one asynchronous libpq connection
 * driven by the event loop (PQsocket watched by libevent, non-blocking,
 * never a blocking call on the loop).
 *
 * At connect the store applies its migrations (raced_schema_version, one
 * transaction each) and creates one table per stage.  Rows are added per
 * table and written as batched upserts that leave unchanged payloads alone;
 * the attached sink's `committed` reports, per table and in order, how many
 * added rows are durable, which is when the pipeline grants credit again
 * (R6).
 * Import runs and import errors are written on the same connection, in
 * order with the batches.  If the connection drops the store reconnects
 * with backoff and retries the batch in flight: nothing is lost.
 *
 * Ownership: the store copies everything passed to it; callers keep their
 * buffers.  store_free() drops unwritten rows without calling back; do not
 * call it from inside a store callback.  Callbacks may call every other
 * store function.  The store borrows the sink's arg while it is attached.
 *
 * Unchanged rows: a row whose payload (and parent_key) did not change keeps
 * its payload and updated_at.  Its last_import still advances, once per
 * import: that one update rewrites the tuple (a HOT update, no index
 * touched, only when its page has room, which after a bulk load it has
 * not) but not the payload's meaning nor updated_at.  A batch retried
 * within the same import changes nothing.
 *
 * A batch holds the rows of one table, one import and one sink: store_add()
 * sends the pending rows of a table as a batch when a row of another import
 * arrives, or after another sink was attached.
 *
 * The store is in parts (store.c's design note lists them): the public API
 * and the batches here; the connection (or, for discard, the null backend)
 * chosen once in store_new().
 *
 * Table names are the stage names, checked against [a-z_][a-z0-9_]{0,47}
 * (and not import_runs, import_errors, raced_schema_version) by store_new()
 * and written double-quoted in every statement.
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
	/* Benchmarking: connect to nothing and drop every row and statement,
	 * acknowledging each on the next loop turn as if it had committed
	 * (batches still form at batch_size, one import and sink each).
	 * Import ids count from 1; runs are not recorded (store_get_runs
	 * answers []).  conninfo is ignored. */
	bool discard;
	/* PostgreSQL's synchronous_commit for raced's own connection
	 * ("on", "off", "local", "remote_write", "remote_apply"), whatever
	 * the server's default; NULL = "on".  Weaker settings may lose rows
	 * (and checkpoints) already acknowledged: "off" on a crash of the
	 * server, "local" and "remote_write" on a failover to a synchronous
	 * standby ([database] synchronous_commit in raced.conf(5)). */
	const char *synchronous_commit;
};

struct store_callbacks {
	void (*state_changed)(void *arg, enum store_state state, const char *why);
	void *arg;
};

/* Where the store reports what became of the rows: the import that added
 * them attaches one (store_attach_sink), so results flow to their owner. */
struct store_sink {
	/* n more rows added to `table` are done (oldest first): committed, or
	 * reported by rows_refused just before.  Called after each batch's
	 * commit, in the order the rows were added; a row whose key was folded
	 * into a later one in the same batch counts with that batch.  (Rows of
	 * a batch PostgreSQL refused are retried one by one and acknowledged
	 * after the batches already sent behind it.) */
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
	uint64_t reconnects;         /* connections lost or refused */
	uint64_t errors_dropped;     /* import_errors rows only counted (bound) */
	uint32_t migrations_applied; /* by the last connection */
	size_t ops_queued;           /* batches and statements not yet sent */
	size_t ops_in_flight;
	size_t errors_queued;
	const char *last_error;      /* NULL or the last error; valid until the next store call */
};

RACED_MUST_CHECK
struct store *store_new(struct event_base *base, const struct store_conf *conf,
                        const struct store_callbacks *cb, char *err);
void store_free(struct store *s);

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

/* Insert an import_runs row with status 'running'; id via callback. */
RACED_MUST_CHECK
int store_begin_import(struct store *s, const char *requested_by, store_id_fn cb, void *arg);
/* Queue one import_errors row.  Beyond STORE_MAX_PENDING_ERRORS queued rows
 * errors are only counted; store_finish_import() then adds
 * "errors_not_recorded": n to that import's counts.  http_status <= 0 is
 * stored as NULL (no HTTP response). */
RACED_MUST_CHECK
int store_add_error(struct store *s, int64_t import_id, const char *stage, const char *url,
                    long http_status, uint32_t attempts, const char *message);
/* After every row queued before it (partial batches are flushed): set
 * status, finished_at, counts (copied; NULL = {}). */
RACED_MUST_CHECK
int store_finish_import(struct store *s, int64_t import_id, const char *status,
                        json_t *counts, store_done_fn cb, void *arg);
/* One run (id > 0) or the `limit` most recent (id == 0), as a JSON array of
 * objects {id, started_at, finished_at, status, requested_by, counts, errors}
 * (errors: the number of import_errors rows), newest first.  The result is
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
 * STORE_HEARTBEAT_MS; started_at if none) and counts {stage: {"stored": n}}
 * from the rows whose last_import is the run.  cb (may be NULL) gets the
 * runs marked as a JSON array of {id, started_at, finished_at, counts},
 * oldest first ([] when none; the discard backend always answers []),
 * borrowed for the call. */
RACED_MUST_CHECK
int store_mark_stale_runs(struct store *s, store_json_fn cb, void *arg);

#endif
