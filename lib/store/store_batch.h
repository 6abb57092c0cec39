/* store_batch — a batch's rows on their way to PostgreSQL: rows of the
 * same key folded into one, and the batch's columns encoded as the
 * parameters of a table's prepared upsert.  Internal to the store; pure (no
 * I/O, no libpq), tested as a specification in tests/unit/test_store_batch.c.
 *
 * The upsert takes keys, parent keys and payloads as three arrays in
 * PostgreSQL's binary format and the batch's import id as one bigint
 * (STORE_BATCH_PARAMS parameters, all binary): the server neither parses
 * and plans the statement per batch nor lexes and unescapes a text array
 * literal.
 *
 * Ownership: a row owns one block holding its key, parent key and payload
 * (key points at its start; one malloc a row, not three: the store's CPU
 * per row is what a second connection competes with on a small host) and
 * its typed columns' values; store_rows_free() frees them and the array.
 * store_batch_encode() leaves the rows alone and hands the parameters it
 * allocates to the caller (store_batch_params_free).
 */
#ifndef RACED_STORE_BATCH_H
#define RACED_STORE_BATCH_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_row {
	char *key;      /* the row's block (owned): key, parent and payload, each NUL-ended */
	char *parent;   /* in the block, or NULL */
	char *payload;  /* JSON text, in the block */
	size_t payload_len;
	uint32_t key_len, parent_len;  /* a key past 4 GiB is refused (store_row_set) */
	uint64_t hash;  /* store_key_hash(key): folding, routing, the plain filter */
	char **cols;    /* n_cols typed columns' values (entries may be NULL), or NULL */
	size_t n_cols;
};

/* FNV-1a (64 bits) of a key: computed once a row, as it is copied. */
uint64_t store_key_hash(const char *key, size_t len);

#define STORE_BATCH_PARAMS 4  /* keys, parent keys, payloads, import id */
/* ... then one text array per typed column */
#define STORE_BATCH_PARAMS_MAX (STORE_BATCH_PARAMS + 32)

#define PG_TYPE_BOOL     16u
#define PG_TYPE_BYTEA    17u
#define PG_TYPE_INT4     23u
#define PG_TYPE_TEXT     25u
#define PG_TYPE_JSONB    3802u
#define PG_JSONB_VERSION 1  /* jsonb_recv: a version byte, then the JSON text */

struct store_batch_params {
	size_t n;                               /* STORE_BATCH_PARAMS + columns */
	char *values[STORE_BATCH_PARAMS_MAX];   /* owned */
	int lengths[STORE_BATCH_PARAMS_MAX];
	const int *formats;                     /* static: all binary */
};

/* Copy a row's strings into r (payload: payload_len bytes, no NUL in it).
 * Returns 0, or -1 when out of memory or a key or parent key is 4 GiB or
 * longer (r then holds nothing). */
RACED_MUST_CHECK
int store_row_set(struct store_row *r, const char *key, const char *parent,
                  const char *payload, size_t payload_len);
/* Copy n typed columns' values (values or an entry NULL: SQL NULL) into
 * r.  0, or -1 when out of memory (r then has none). */
RACED_MUST_CHECK
int store_row_set_cols(struct store_row *r, const char *const *values, size_t n);
/* Free what r owns (its block and typed columns), not r itself. */
void store_row_clear(struct store_row *r);
void store_rows_free(struct store_row *rows, size_t n);

/* Fold rows with the same key: the last of them survives, the earlier are
 * freed; the survivors keep their order.  By a hash table of the keys'
 * hashes (linear in n; a key compared only on equal hashes).
 * Returns the new count, or -1 when out of memory (rows untouched). */
RACED_MUST_CHECK
long store_rows_fold(struct store_row *rows, size_t n);

/* The upsert's parameters for n > 0 rows of import import_id, with
 * n_cols (<= 32) text arrays of the typed columns' values after them (a
 * row with fewer values: NULLs).  Returns 0, or -1 when out of memory or
 * a column would pass 2 GiB (out untouched). */
RACED_MUST_CHECK
int store_batch_encode(const struct store_row *rows, size_t n, int64_t import_id,
                       size_t n_cols, struct store_batch_params *out);
void store_batch_params_free(struct store_batch_params *p);

/* A growing buffer of PostgreSQL binary format, shared with the page
 * records' encoder (store_pages): failed is set, and further additions
 * ignored, when out of memory or past INT32_MAX bytes (a parameter's
 * length is an int).  p is malloc'd: the caller frees it. */
struct store_buf {
	char *p;
	size_t len, cap;
	bool failed;
};
void store_buf_add(struct store_buf *b, const void *p, size_t n);
void store_buf_be32(struct store_buf *b, uint32_t v);
void store_buf_be64(struct store_buf *b, uint64_t v);
/* A one-dimensional array of n elements of type elem_oid, elements to follow. */
void store_buf_array_header(struct store_buf *b, uint32_t elem_oid, size_t n, bool has_nulls);
/* One array element of n bytes (v NULL: SQL NULL). */
void store_buf_array_bytes(struct store_buf *b, const void *v, size_t n);

#endif
