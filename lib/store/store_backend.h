/* store_backend — what carries the store's ops, chosen once in store_new():
 * the PostgreSQL connection (store_conn) or, for [database] discard = yes,
 * the null backend (store_null).  Internal to the store.
 *
 * The store (store.c) owns the queue of user ops (batches and import_runs
 * statements), in order; a backend takes ops from its head, carries them,
 * and hands each back through store_op_completed(), in the order taken.
 * An op it could not carry to the end (the connection was lost) it puts
 * back at the head of the queue, in order, to be taken again.  A backend
 * reports its life cycle through store_set_state().
 *
 * Ownership: the store owns its backend (ops->free); a backend borrows the
 * store, which outlives it.  An op taken from the queue is the backend's
 * until it completes it or puts it back.
 */
#ifndef RACED_STORE_BACKEND_H
#define RACED_STORE_BACKEND_H

#include "store.h"
#include "store_op.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct store_backend;

struct store_backend_ops {
	/* Ops were queued: carry them now or on a later loop turn (never
	 * complete one from inside this call). */
	void (*kick)(struct store_backend *b);
	/* Its share of the figures: ops_in_flight, reconnects, warmups,
	 * migrations_applied. */
	void (*get_stats)(const struct store_backend *b, struct store_stats *out);
	void (*free)(struct store_backend *b);
};

/* Embedded first in each backend's own struct. */
struct store_backend {
	const struct store_backend_ops *ops;
};

/* --- what the store offers its backend ---------------------------------- */

/* The head of the queue, unlinked, or NULL. */
struct store_op *store_queue_take(struct store *s);
/* The head of the queue, left there, or NULL (store_queue_take may still
 * answer NULL: a read waiting for company). */
const struct store_op *store_queue_peek(const struct store *s);
/* Put ops back at the head of the queue, in their order; ops ends empty. */
void store_queue_return(struct store *s, struct store_op_list *ops);
/* The whole queue, unlinked (the queue ends empty), the reads of
 * committed rows first. */
void store_queue_take_all(struct store *s, struct store_op_list *out);
bool store_queue_empty(const struct store *s);
/* The oldest read of committed rows not yet taken (store_read_committed:
 * they are kept apart from the queue and may go ahead of it), unlinked,
 * or NULL.  Its completion may come before those of ops taken earlier. */
struct store_op *store_reads_take(struct store *s);
bool store_reads_waiting(const struct store *s);

/* op (taken from the queue) is done: its completion runs, then it is freed. */
void store_op_completed(struct store *s, struct store_op *op, const PGresult *res,
                        const char *err);
void store_set_state(struct store *s, enum store_state st, const char *why);
/* Remember err as the last error (store_stats.last_error). */
void store_note_error(struct store *s, const char *err);

/* --- the backends -------------------------------------------------------- */

struct store_table_sql;

/* The PostgreSQL connections (store_pool.c, store_conn.c): `connections`
 * of them (1 to STORE_CONNECTIONS_MAX); tables borrowed,
 * synchronous_commit (NULL: "on") and schema (NULL: none) copied. */
struct store_backend *store_pool_new(struct store *s, struct event_base *base,
                                     const char *conninfo, const char *synchronous_commit,
                                     const char *schema, const struct store_table_sql *tables,
                                     size_t n_tables, unsigned connections, char *err);
/* Discarding (store_null.c). */
struct store_backend *store_null_new(struct store *s, struct event_base *base, char *err);

#endif
