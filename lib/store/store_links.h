/* store_links — the edges of a dedupe stage (docs/architecture.md,
 * "Edges"): its link table `<stage>_parents (parent_key, key)`, one row
 * per parent item and child key, and the link records that keep it.
 * Internal to the store: store_schema builds a stage's statements with
 * the table's others, store.c adds link records to a batch after its page
 * records.
 *
 * A stage without dedupe needs none of this: its rows' parent_key is the
 * edge.  A dedupe stage fetches a URL once per import, so its rows keep no
 * parent; instead the import sends, for every parent item, a link record
 * (the parent's key, the URL of the input it maps to), after that input's
 * last page record, and only for an input it completed in this import (a
 * failed or refused input changes no link: the import holds no record for
 * it).  A record carries either the input's keys (the import knew them:
 * it made the input's page records) or only its URL.  Per batch, one
 * statement per kind (each prepared per connection): records by keys
 * give the pairs (parent, key) as they are (those store.c marks fresh,
 * whose parent has no link yet, by an insert alone), records by URL take the keys
 * from the input's page rows in raced_pages (page 0, then each stored
 * next_url: the pages this import walked).  Both delete the parent's
 * links to keys not among its pairs and insert the missing ones (ON
 * CONFLICT DO NOTHING): unchanged links are not written.
 *
 * Ownership: a struct store_link_rec owns its strings;
 * store_link_recs_free() frees them and the array.  Encoded parameters
 * are the caller's (freed with the op that carries them).
 */
#ifndef RACED_STORE_LINKS_H
#define RACED_STORE_LINKS_H

#include "error.h"
struct store_table_sql;

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_link_rec {
	char *parent;   /* the parent item's key */
	char *input;    /* the URL of the input it maps to, as in raced_pages;
	                   NULL: the record carries the keys */
	char *keys;     /* n_keys keys, each NUL-terminated, back to back (NULL
	                   when none or by URL) */
	size_t n_keys;
	bool fresh;     /* by keys, and its parent known to have no link yet
	                   (store.c decides) */
};

/* The link table's statements of t (a dedupe stage; t->name set): its
 * name, create, index, prepared write and the finishing removal.  Returns
 * 0, or -1 when out of memory. */
RACED_MUST_CHECK
int store_links_sql_init(struct store_table_sql *t);

/* Copy (parent, input) into r.  -1 when out of memory (r holds nothing). */
RACED_MUST_CHECK
int store_link_rec_set(struct store_link_rec *r, const char *parent, const char *input);
/* Copy parent and the n keys packed in keys (len bytes: each key
 * NUL-terminated, back to back) into r.  -1 when out of memory (r holds
 * nothing). */
RACED_MUST_CHECK
int store_link_rec_set_keys(struct store_link_rec *r, const char *parent, const char *keys,
                            size_t len, size_t n);
void store_link_recs_free(struct store_link_rec *recs, size_t n);

/* How many of recs go by URL (*by_url), by keys (*by_keys) and by keys
 * of a parent known to have no link (*fresh). */
void store_links_count(const struct store_link_rec *recs, size_t n, size_t *by_url,
                       size_t *by_keys, size_t *fresh);

#define STORE_LINKS_PARAMS 2
/* The write by URL's parameters for recs' records by URL (some): two
 * binary text[] (parents, inputs).  values (owned by the caller) and
 * lengths have STORE_LINKS_PARAMS entries; *formats is static.  Returns 0,
 * or -1 when out of memory (nothing left in values). */
RACED_MUST_CHECK
int store_links_encode(const struct store_link_rec *recs, size_t n, char **values, int *lengths,
                       const int **formats);

#define STORE_LINK_KEYS_PARAMS 3
#define STORE_LINK_FRESH_PARAMS 2
/* The write by keys' parameters for recs' records by keys whose fresh is
 * as given (some): three binary text[], their parents, then the pairs'
 * parents and keys; fresh: only the pairs (STORE_LINK_FRESH_PARAMS).
 * values and lengths have room for STORE_LINK_KEYS_PARAMS entries;
 * otherwise as store_links_encode. */
RACED_MUST_CHECK
int store_links_encode_keys(const struct store_link_rec *recs, size_t n, bool fresh,
                            char **values, int *lengths, const int **formats);

#endif
