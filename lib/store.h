/* store — PostgreSQL persistence over one asynchronous libpq connection
 * driven by the event loop (PQsocket watched by libevent, non-blocking,
 * never a blocking call on the loop).
 *
 * At connect the store applies its migrations (raced_schema_version, one
 * transaction each) and creates one table per stage.  Rows are added per
 * table and written as batched upserts that leave unchanged payloads alone;
 * the `committed` callback reports, per table and in order, how many added
 * rows are durable, which is when the pipeline grants credit again (R6).
 * Import runs and import errors are written on the same connection, in
 * order with the batches.  If the connection drops the store reconnects
 * with backoff and retries the batch in flight: nothing is lost.
 *
 * Ownership: the store copies everything passed to it; callers keep their
 * buffers.  store_free() drops unwritten rows without calling back.
 */
#ifndef RACED_STORE_H
#define RACED_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;

enum store_state {
	STORE_CONNECTING,
	STORE_MIGRATING,
	STORE_READY,
	STORE_BACKOFF,   /* connection lost or refused; retrying */
};

struct store_conf {
	const char *conninfo;
	uint32_t batch_size;
	const char *const *tables;  /* one per stage, in stage order */
	size_t n_tables;
};

struct store_callbacks {
	void (*state_changed)(void *arg, enum store_state state, const char *why);
	/* n more rows added to `table` are committed (oldest first). */
	void (*committed)(void *arg, size_t table, size_t n);
	void *arg;
};

struct store *store_new(struct event_base *base, const struct store_conf *conf,
                        const struct store_callbacks *cb, char *err);
void store_free(struct store *s);

enum store_state store_state(const struct store *s);
const char *store_state_name(enum store_state st);

/* Queue one row for `table`.  payload is the item's JSON text. */
int store_add(struct store *s, size_t table, int64_t import_id, const char *key,
              const char *parent_key, const char *payload, size_t payload_len,
              char *err);

/* Write the rows pending for table now, even if fewer than batch_size. */
void store_flush(struct store *s, size_t table);
size_t store_pending(const struct store *s, size_t table);

typedef void (*store_id_fn)(void *arg, int64_t id, const char *err);
typedef void (*store_done_fn)(void *arg, const char *err);
typedef void (*store_json_fn)(void *arg, json_t *result, const char *err);

/* Insert an import_runs row with status 'running'; id via callback. */
int store_begin_import(struct store *s, const char *requested_by, store_id_fn cb, void *arg);
int store_add_error(struct store *s, int64_t import_id, const char *stage, const char *url,
                    long http_status, uint32_t attempts, const char *message);
/* After every row queued before it: set status, finished_at, counts. */
int store_finish_import(struct store *s, int64_t import_id, const char *status,
                        json_t *counts, store_done_fn cb, void *arg);
/* One run (id > 0) or the `limit` most recent (id == 0), as a JSON array of
 * objects {id, started_at, finished_at, status, requested_by, counts, errors}. */
int store_get_runs(struct store *s, int64_t id, uint32_t limit, store_json_fn cb, void *arg);

/* Runs left 'running' by a daemon that died become 'interrupted'. */
int store_mark_stale_runs(struct store *s);

#endif
