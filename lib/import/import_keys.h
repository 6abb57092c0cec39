/* import_keys — the keys of a dedupe stage's inputs that ended in this
 * import with their checkpoint, so that a parent meeting such an input
 * later gets a link record that carries the keys (store_add_link_keys)
 * instead of one the store resolves through raced_pages
 * (docs/architecture.md, "Edges").
 *
 * An input is remembered by its URL (the string, compared exactly) with
 * its keys packed (each NUL-terminated, back to back).  The cache is
 * bounded in bytes (the bound given, charged to membudget as it grows);
 * past it an input is not remembered and its later parents' records go
 * by URL.  Entries are never removed: it lives as long as the import.
 *
 * Ownership: the caller owns the cache; added strings are copied; what
 * import_keys_find returns points into the cache (valid until it is
 * freed).
 */
#ifndef RACED_IMPORT_KEYS_H
#define RACED_IMPORT_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* The bound on one stage's cache, in bytes, unless memory_limit / 16 is
 * smaller (about 100 bytes an input of one key: some 80,000 inputs). */
#define IMPORT_KEYS_CACHE_MAX (8u << 20)

struct import_keys;

/* An empty cache of at most max_bytes (nothing allocated until the first
 * add); NULL when out of memory. */
struct import_keys *import_keys_new(size_t max_bytes);
void import_keys_free(struct import_keys *c);

/* Remember url's n keys (packed in keys, len bytes).  false: not
 * remembered (past the bound, out of memory, or url there already). */
bool import_keys_add(struct import_keys *c, const char *url, const char *keys, size_t len,
                     size_t n);
/* url's keys as added: true with *keys, *len, *n set; false: not there. */
bool import_keys_find(const struct import_keys *c, const char *url, const char **keys,
                      size_t *len, size_t *n);
/* Inputs remembered; bytes charged; inputs refused for the bound. */
size_t import_keys_count(const struct import_keys *c);
size_t import_keys_bytes(const struct import_keys *c);
size_t import_keys_refused(const struct import_keys *c);

#endif
