/* store_pool — the store's PostgreSQL backend over [database] connections
 * = N libpq connections (store_conn) on the one event loop.  Internal to
 * the store.
 *
 * Routing: an op names its connection (store_op.conn, set when the store
 * forms it: a batch's rows by table and key hash, so a key is never in two
 * concurrent transactions; everything else connection 0).  The pool takes
 * ops from the store's queue, in order, into the FIFO of their connection
 * (at most STORE_MAX_IN_FLIGHT waiting or sent per connection, and only
 * while that connection is READY: the op at the head of the store's queue
 * waits for its connection, later ones wait behind it).
 *
 * Barriers: an op with store_op.barrier set (reads of stored rows, import
 * runs, a batch's page and link records) is sent only once every op taken
 * before it on the other connections is done, so it sees (or follows)
 * every row queued before it; a side op (store_op.side: a finish's
 * counts and index builds) waits only for the ops that are not, so the
 * side ops after a finish run at once on their connections.  Each
 * connection sends its FIFO in order.  The oldest op not done is never
 * waiting on a barrier, so the pool always makes progress while the
 * connections are up.
 *
 * Reads of committed rows (store_op.unordered, store_read_committed): kept
 * apart by the store and taken before its queue, they wait for no batch.
 * They go on one more connection, the reader (conns[N]; one more
 * backend), or, while it is closed, at the head of connection 0's FIFO (at
 * most STORE_POOL_READS_AHEAD there: they wait only for what connection 0
 * has sent); while it connects they wait for it.  The reader is started by
 * a read, only while every write connection is READY, and closed when one
 * of them leaves READY and after STORE_POOL_READER_IDLE_MS without a read:
 * it never holds a backend while idle, nor takes one a write connection
 * needs after a restart.  Refused or lost, it is not retried on its own: a
 * read after its backoff starts it again, and meanwhile reads go on
 * connection 0.  They are never barriers, and are handed back as soon as
 * they are done, outside the window below.  The reader's state is not the
 * store's: its failures are logged (once an outage) and its state is in
 * store_stats.reader_state.
 *
 * Completion: ops are handed back to the store (store_op_completed) in the
 * order the pool took them, whichever connection finished first: the
 * sink's `committed` stays in order per table, as with one connection.
 * At most STORE_POOL_WINDOW_PER_CONN x N ops are taken and not yet handed
 * back.
 *
 * Connections: connection 0 starts at once and applies the migrations;
 * the others start when it is READY the first time (their set-up chain
 * then finds the schema current).  Each (but the reader) reconnects on
 * its own with backoff; its ops sent and not committed go back to the head of its FIFO.
 * The store's state is READY when every connection is; else the state of
 * the first that is not (BACKOFF before the others).
 *
 * Ownership: the pool owns its connections and the ops it took until it
 * hands them back.
 */
#ifndef RACED_STORE_POOL_H
#define RACED_STORE_POOL_H

#include "store.h"
#include "store_op.h"

#include <stdint.h>

struct store_pool;

/* Ops taken and not yet handed back, per connection (a named bound). */
#define STORE_POOL_WINDOW_PER_CONN (4 * STORE_MAX_IN_FLIGHT)
/* Reads of committed rows put ahead of connection 0's FIFO at once while
 * the reader is not READY. */
#define STORE_POOL_READS_AHEAD 2
/* The reader is closed after this long without a read (it holds a
 * backend that a write connection may need after a restart). */
#define STORE_POOL_READER_IDLE_MS 3000

/* --- what a connection asks of its pool (store_conn.c) ------------------- */

/* The next op connection idx may send now, unlinked, or NULL. */
struct store_op *store_pool_take(struct store_pool *p, unsigned idx);
/* Ops idx sent and could not carry to the end: back to the head of its
 * FIFO, in their order; ops ends empty. */
void store_pool_return(struct store_pool *p, unsigned idx, struct store_op_list *ops);
/* idx is done with op (committed, or failed as a whole: op->failed). */
void store_pool_done(struct store_pool *p, unsigned idx, struct store_op *op);
/* idx's life cycle. */
void store_pool_state(struct store_pool *p, unsigned idx, enum store_state st, const char *why);
/* Something changed (a commit, READY): take and send what can go now. */
void store_pool_kick(struct store_pool *p);

/* --- one connection (store_conn.c) ---------------------------------------- */

struct store_conn;
struct store_table_sql;

struct store_conn_conf {
	const char *conninfo;
	const char *synchronous_commit;  /* NULL: "on" */
	const char *schema;              /* NULL: none */
	const struct store_table_sql *tables;  /* borrowed */
	size_t n_tables;
	bool reader;                     /* the pool's reader (its own set-up) */
};

/* Copies conf's strings; connects only once store_conn_start() is called. */
struct store_conn *store_conn_new(struct store_pool *p, unsigned idx, struct store *s,
                                  struct event_base *base, const struct store_conn_conf *conf,
                                  char *err);
/* Connect from the loop (never calls back inside this call). */
void store_conn_start(struct store_conn *c);
/* Close it now, with no call back to the pool but store_pool_return
 * (its sent ops); it connects again only at store_conn_start. */
void store_conn_stop(struct store_conn *c);
/* The reader's backoff after a failure has passed (always true for one
 * that has not failed). */
bool store_conn_may_start(const struct store_conn *c);
/* Send what the pool has for it, if READY. */
void store_conn_kick(struct store_conn *c);
size_t store_conn_in_flight(const struct store_conn *c);
uint64_t store_conn_reconnects(const struct store_conn *c);
uint32_t store_conn_migrations(const struct store_conn *c);
/* Times it sent the malloc warm-up (once a backend, with its first batch
 * of rows: store_schema_warm_sql). */
uint64_t store_conn_warmups(const struct store_conn *c);
void store_conn_free(struct store_conn *c);

#endif
