/* store_pages — the import state in raced_pages (docs/architecture.md,
 * "Import state across runs"): page records on their way to PostgreSQL
 * (copied, encoded as the parameters of one prepared statement per batch),
 * the reads of an input's pages and of stored rows with their answers
 * parsed, and the clearing of state whose stage table was emptied.
 * Internal to the store: store.c adds page records to its batches and
 * queues the reads in order with them.
 *
 * Page records of a batch are written by one statement (STORE_PAGES_WRITE,
 * prepared on each connection) taking each column as a binary array, the
 * keys of every record flattened into one text[] with an offset and a
 * count per row.  It inserts one row into raced_reached: the urls of all
 * the batch's records and the inputs they completed (the checkpoints), so
 * that "reached in import N" costs no write of a page row.  (A batch
 * whose records are all reached_only sends only that insert,
 * STORE_REACH_WRITE.)  Records not
 * reached_only are also page rows: the encoder makes one row per url (the
 * later record wins), so the rest of the statement is one INSERT ... ON
 * CONFLICT: each row finds its stored one by the primary key, whatever
 * the planner thinks of the table.  Rows with content are upserted (keys
 * and hashes rewritten only when they differ, so an unchanged page's
 * TOASTed keys are not copied); rows without content change seen_import,
 * fetched_at and the validators given of a stored row, and where none is
 * stored leave a placeholder that every read takes as no row
 * (seen_import < 0; the statement's comment says how).
 *
 * Ownership: a struct store_page_rec owns its strings and arrays;
 * store_page_recs_free() frees them and the array.  Encoded parameters are
 * the caller's (store_pages_params_free).  Answers parsed here are the
 * caller's (store_input_state_free, store_items_free).
 */
#ifndef RACED_STORE_PAGES_H
#define RACED_STORE_PAGES_H

#include "error.h"
#include "store.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_page_rec {
	char *url, *input;
	char *etag, *last_modified, *next_url;   /* or NULL */
	char **keys;
	uint64_t *hashes;
	size_t n_keys;
	unsigned char *fields;   /* or NULL */
	size_t fields_len;
	uint32_t page_no;
	bool fetched, content, input_done, reached_only;
};

/* Copy pg into r: of a record reached only, its url, and its input when
 * it completes it (all the reach reads).  Returns 0, or -1 when out of
 * memory (r holds nothing). */
RACED_MUST_CHECK
int store_page_rec_set(struct store_page_rec *r, const struct store_page *pg);
void store_page_recs_free(struct store_page_rec *recs, size_t n);

#define STORE_PAGES_PARAMS 17
#define STORE_PAGES_WRITE  "raced_pages_write"
extern const char store_pages_write_sql[];

struct store_pages_params {
	char *values[STORE_PAGES_PARAMS];   /* owned */
	int lengths[STORE_PAGES_PARAMS];
	const int *formats;                 /* static: all binary */
};

/* The write's parameters for n > 0 records of stage, import import_id.
 * Returns 0, or -1 when out of memory or a column would pass 2 GiB (out
 * then holds nothing). */
RACED_MUST_CHECK
int store_pages_encode(const struct store_page_rec *recs, size_t n, const char *stage,
                       int64_t import_id, struct store_pages_params *out);
void store_pages_params_free(struct store_pages_params *p);

/* A batch whose n records are all reached_only writes only its reach
 * row: by STORE_REACH_WRITE (prepared on each connection), whose
 * STORE_REACH_PARAMS parameters store_reach_encode puts in out's first
 * entries (the others NULL; free with store_pages_params_free).  Same
 * returns as store_pages_encode. */
#define STORE_REACH_PARAMS 4
#define STORE_REACH_WRITE  "raced_reach_write"
extern const char store_reach_write_sql[];
bool store_pages_reach_only(const struct store_page_rec *recs, size_t n);
RACED_MUST_CHECK
int store_reach_encode(const struct store_page_rec *recs, size_t n, const char *stage,
                       int64_t import_id, struct store_pages_params *out);

/* The read of many inputs' pages: its SQL, with the stage as text $1 and
 * the inputs as a text[] $2 (store_pages_encode_keys); its answer, rows
 * of each input in the order of $2, led by the input's ordinal.  Prepared
 * on each connection as STORE_INPUTS_READ. */
#define STORE_INPUTS_READ "raced_inputs_read"
extern const char store_pages_inputs_sql[];
/* Its answer: out[i] (of n) the state of input i (n_pages 0 for every
 * input when res is NULL: the null backend ran nothing).  Returns 0, or
 * -1 with err (ERR_MAX) set and out[] all NULL. */
RACED_MUST_CHECK
int store_pages_parse_inputs(const PGresult *res, size_t n, struct store_input_state **out,
                             char *err);

/* Keys (a JSON array of strings, as array_to_json prints them) and hashes
 * (hex, 16 digits each) of one page row into p (p->url names it in
 * errors).  Returns 0, or -1 with err set. */
RACED_MUST_CHECK
int store_pages_keys_parse(struct store_page_state *p, const char *keys_json, const char *hex,
                           char *err);

/* The keys of a read of stored rows as a binary text[] (one parameter).
 * Returns 0, or -1 when out of memory or past 2 GiB. */
RACED_MUST_CHECK
int store_pages_encode_keys(const char *const *keys, size_t n, char **value, int *length);
/* Its answer (rows of key, parent_key, payload; none when res is NULL).
 * Returns 0, or -1 with err (ERR_MAX) set. */
RACED_MUST_CHECK
int store_pages_parse_items(const PGresult *res, struct store_items **out, char *err);
/* The rows of a read by parent (it: every current row of the parents,
 * in no order) put in the order of the n_keys keys asked, as a read by
 * key answers (a key asked twice answered twice): 0 with *out, 1 when
 * some key has no row among them (its row has another parent, or is
 * gone: the caller reads by key), -1 when out of memory.  it is emptied
 * either way (the caller still frees it). */
RACED_MUST_CHECK
int store_pages_rows_in_order(struct store_items *it, const char *const *keys, size_t n_keys,
                              struct store_items **out);
/* The answer of a narrow read of n_fields fields (store_schema.c,
 * READ_FIELDS_FMT: key, whether narrow, the payload when not, then the
 * fields' values) into *out; 0, or -1 with err (out of memory). */
RACED_MUST_CHECK
int store_pages_parse_narrow(const PGresult *res, size_t n_fields, struct store_items **out,
                             char *err);

/* The statement that clears the state of emptied stage tables and answers
 * the names cleared as a JSON array (store.h, store_clear_orphan_state):
 * malloc'd, or NULL when out of memory. */
char *store_pages_orphan_sql(const char *const *names, size_t n);

#endif
