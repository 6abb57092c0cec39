/* store_preload — the read of a stage's page rows in one pass, a range
 * of raced_pages's blocks or a keyset page at a time (store.h,
 * store_read_stage; docs/architecture.md, "Reading state"): its SQL, its
 * answer packed an input an allocation, and the unpacking of one input
 * into the state store_get_input answers.
 * Internal to the store: store.c queues the read in order with the
 * batches.
 *
 * Ownership: a chunk parsed here is the caller's (store_stage_chunk_free),
 * and so is an input taken out of it.
 */
#ifndef RACED_STORE_PRELOAD_H
#define RACED_STORE_PRELOAD_H

#include "error.h"
#include "store.h"

#include <libpq-fe.h>
#include <stddef.h>

/* $1 the stage, $2 the first input (>=), $3 the rows at most.  Prepared on
 * each connection.  Its plan: an index scan of raced_pages_input (stage,
 * input) in order, no sort (docs/performance.md, "Reading a stage's state
 * in one pass"). */
#define STORE_STAGE_READ "raced_stage_read"
extern const char store_preload_sql[];
/* $1 the stage, $2 the first block, $3 the block past the last, $4
 * whether to answer the stage's share of the rows: its inputs whose page
 * 0 lies in those blocks, in the order stored, and their other pages.
 * Prepared on each connection.  Its plan: two TID range scans of the
 * blocks and an index probe of raced_pages_input for each input of more
 * than one page; at least one row (the sentinel: input NULL) carries the
 * table's size in blocks and the share. */
#define STORE_STAGE_SCAN "raced_stage_scan"
extern const char store_preload_scan_sql[];

/* The answer to a read: whole inputs.  Of raced_stage_read (limit > 0,
 * at most limit rows): when the limit was reached, the last input's rows
 * (maybe cut) are left out and it is the chunk's from.  Of
 * raced_stage_scan (limit 0): from NULL, the table's blocks and the
 * stage's share from its sentinel columns.  res NULL (the null backend):
 * an empty chunk, from NULL, no block.  Returns 0, or -1 with err
 * (ERR_MAX) and *out NULL. */
RACED_MUST_CHECK
int store_preload_parse(const PGresult *res, size_t limit, struct store_stage_chunk **out,
                        char *err);

#endif
