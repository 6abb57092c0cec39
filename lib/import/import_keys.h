/* import_keys — what a dedupe stage's inputs that ended in this import
 * with their checkpoint leave for the parents that meet them later: the
 * keys those parents' link records carry (store_add_link_keys), or that
 * the records go by URL, the store reading the keys from raced_pages
 * (docs/architecture.md, "Edges").
 *
 * Most inputs cost nothing here.  An input whose only key is written in
 * its own URL (athletes: /athletes/{athlete_id}, key /id) is implied: its
 * key is the URL's path segment (percent-decoded) at a place counted
 * from the end, the same place for every input of the stage (the first
 * input whose key is found there fixes it).  The cache keeps only the
 * others: an input with other keys, by its URL (the string, compared
 * exactly) with its keys packed (each NUL-terminated, back to back); an
 * input whose records go by URL (keys not known, or past the bound), as a
 * 64-bit hash of its URL (dedupe.h).  A URL not found in either is an
 * implied one.  So the caller asks only about inputs that ended with
 * their checkpoint (an input that ended without one, or never began, is
 * the caller's to know: import_undone).
 *
 * A hash collision in the by-URL set sends an implied input's records by
 * URL: slower, never wrong (the store reads what the input's pages list).
 * A collision of the dedupe set itself (its odds in dedupe.h) skips a
 * fetch; the parent of the URL skipped then gets the key its own URL
 * implies, never another input's keys.
 *
 * Bounded in bytes, charged to membudget as it grows: the entries and
 * their table within the bound given, the by-URL set within a quarter of
 * it more (IMPORT_KEYS_BY_URL_SHARE).  An input with other keys past the
 * bound goes into the by-URL set; past the set's bound (lost) every input
 * not kept goes by URL: from then on no input is taken as implied.
 * Entries are never removed: the cache lives as long as the import.
 *
 * Ownership: the caller owns the cache; added strings are copied; keys
 * that import_keys_find returns point into the cache or into the
 * caller's buffer.
 */
#ifndef RACED_IMPORT_KEYS_H
#define RACED_IMPORT_KEYS_H

#include <stdbool.h>
#include <stddef.h>

/* The bound on one stage's cache, in bytes, unless memory_limit / 16 is
 * smaller (about 100 bytes an input with keys not implied by its URL:
 * some 80,000 such inputs; an implied input costs nothing). */
#define IMPORT_KEYS_CACHE_MAX (8u << 20)

/* The by-URL set's bound: the cache's bound in bytes divided by this. */
#define IMPORT_KEYS_BY_URL_SHARE 4u

/* Where an implied key may be: one of the URL path's last this many
 * segments. */
#define IMPORT_KEYS_SEGMENTS 4u
/* The longest key taken as implied, in bytes with its NUL (the buffer
 * import_keys_find writes it into). */
#define IMPORT_KEYS_IMPLIED_MAX 256u

struct import_keys;

/* An empty cache of at most max_bytes (nothing allocated until the first
 * entry); NULL when out of memory. */
struct import_keys *import_keys_new(size_t max_bytes);
void import_keys_free(struct import_keys *c);

/* The input named url (masked) ended with its checkpoint.  keys_known:
 * its records listed these n keys (packed in keys, len bytes); else its
 * parents' records go by URL.  Added once per URL (a second call for it
 * changes nothing). */
void import_keys_ended(struct import_keys *c, const char *url, bool keys_known,
                       const char *keys, size_t len, size_t n);

/* What a parent meeting url (an input of the stage that ended with its
 * checkpoint) links to: true with its n keys (*keys, *len bytes packed)
 * pointing into the cache, or for an implied key into buf (at least
 * IMPORT_KEYS_IMPLIED_MAX bytes); false: by URL. */
bool import_keys_find(const struct import_keys *c, const char *url, char *buf,
                      const char **keys, size_t *len, size_t *n);

/* Inputs: kept with their keys; implied; by URL (in the set or lost);
 * bytes charged; inputs with keys refused for the bound. */
size_t import_keys_count(const struct import_keys *c);
size_t import_keys_implied(const struct import_keys *c);
size_t import_keys_by_url(const struct import_keys *c);
size_t import_keys_bytes(const struct import_keys *c);
size_t import_keys_refused(const struct import_keys *c);

#endif
