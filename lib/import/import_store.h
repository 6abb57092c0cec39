/* import_store — an import's store-facing consumer: the engine stage that
 * writes every fetching stage's items as rows and acknowledges them only
 * as their rows commit (R6).
 *
 * It subscribes (through the import's wiring) to every fetching stage;
 * stage i's rows go to table i.  It hands rows to the store, flushes a
 * partial batch when it can receive nothing more on that subscription (its
 * demand is used up) and after a short linger, so that the tail of a run is
 * not held back.  An item the store cannot take (a \u0000 in a string,
 * store_add failing) counts as failed; its credit returns with the table's
 * next commit, or at once when nothing of the table is waiting.  The
 * consumer is the store's sink from import_store_new() to
 * import_store_free(): the store reports this import's commits and refused
 * rows to it directly (import_store_committed(), import_store_rows_refused()),
 * and the consumer tells the import through its hooks.
 *
 * Ownership: the import owns the consumer and frees it after its pipeline.
 * The consumer borrows the event base, the store, the table names and the
 * subscriptions; it forgets the subscriptions at import_store_detach(),
 * before the pipeline goes.
 */
#ifndef RACED_IMPORT_STORE_H
#define RACED_IMPORT_STORE_H

#include "error.h"
#include "stage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_column;
struct event_base;
struct import_store;
struct store;
struct store_input_state;
struct store_items;
struct store_stage_chunk;

/* How long rows may wait in a partial batch before the store writes it. */
#define IMPORT_STORE_LINGER_MS 20

/* What the consumer tells its import. */
struct import_store_hooks {
	/* n rows of table failed for one reason (message): not stored. */
	void (*failed)(void *arg, size_t table, const char *message, uint64_t n);
	/* n rows of table committed and acknowledged: the import may be
	 * drained, or done once nothing is pending (import_store_idle). */
	void (*committed)(void *arg, size_t table, size_t n);
	/* A partial batch of table could not be sent (message says why: out
	 * of memory); its rows stay pending and the linger timer tries
	 * again, so the run does not stall. */
	void (*held)(void *arg, size_t table, const char *message);
	/* The table itself refused n rows (dropped or altered: message says
	 * what and the fix); first is true the first time for this table,
	 * when the import should record it and fail; later batches of the
	 * table are only counted. */
	void (*table_failed)(void *arg, size_t table, const char *message, uint64_t n, bool first);
	/* The answers of store_get_input and store_read_items (store.h's
	 * sink), passed on: st and items are the receiver's. */
	void (*input_read)(void *arg, size_t table, uint64_t tag, struct store_input_state *st,
	                   const char *err);
	void (*items_read)(void *arg, size_t table, uint64_t tag, struct store_items *items,
	                   const char *err);
	void *arg;
	/* Optional: an item of table has a value that does not fit its typed
	 * column (message names key, column and value); the row is stored
	 * with that column NULL. */
	void (*bad_value)(void *arg, size_t table, const char *message);
	/* Optional: the answer of store_read_stage, passed on (chunk the
	 * receiver's); without it the chunk is freed. */
	void (*stage_read)(void *arg, size_t table, uint64_t tag, struct store_stage_chunk *chunk,
	                   const char *err);
};

/* NULL when out of memory. */
RACED_MUST_CHECK
struct import_store *import_store_new(struct event_base *base, struct store *store,
                                      int64_t import_id, size_t n_tables,
                                      const struct import_store_hooks *hooks);
void import_store_free(struct import_store *is);

/* The handler of the store stage; its ctx is the consumer. */
extern const struct stage_handler import_store_handler;

/* Table `table` (named `name`, borrowed) receives the events of sub. */
void import_store_attach(struct import_store *is, size_t table, const char *name,
                         struct stage_sub *sub);
/* Table `table` has typed columns (borrowed; n of them): each row
 * written carries their values (import_columns.h).  0, or -1 when out of
 * memory. */
RACED_MUST_CHECK
int import_store_columns(struct import_store *is, size_t table, const struct config_column *cols,
                         size_t n);
/* The subscription table `table` reads from; NULL once detached. */
struct stage_sub *import_store_sub(const struct import_store *is, size_t table);
/* The pipeline goes: forget the subscriptions (nothing is acknowledged any
 * more), stop lingering and send every partial batch to the store. */
void import_store_detach(struct import_store *is);

/* Nothing the consumer gave the store is waiting to commit. */
bool import_store_idle(const struct import_store *is);
/* Rows of table committed, less those PostgreSQL refused. */
uint64_t import_store_stored(const struct import_store *is, size_t table);
/* Items of table acknowledged without a row (unchanged). */
uint64_t import_store_unchanged(const struct import_store *is, size_t table);

/* The store committed n more rows of table. */
void import_store_committed(struct import_store *is, size_t table, size_t n);
/* n rows of table were refused by PostgreSQL (key: the row's, when n is 1);
 * they count as failed, not stored.  Comes just before the
 * import_store_committed() that acknowledges them. */
void import_store_rows_refused(struct import_store *is, size_t table, size_t n,
                               const char *key, const char *err);
/* The table itself refused n rows (err: what and the fix); they count as
 * failed, and the first time the import hears table_failed.  Comes just
 * before the import_store_committed() that acknowledges them. */
void import_store_table_refused(struct import_store *is, size_t table, size_t n,
                                const char *err);

#endif
