/* dedupe — the set of keys an import has already fetched, so that a
 * dedupe stage (athletes) fetches each referenced item once per import.
 *
 * It stores 64-bit hashes, not the keys (7 bytes each: the top byte picks
 * the table the other seven go in), far below the items themselves (a
 * collision, odds about n²/2⁶⁵, would skip one fetch).  The set is bounded by max_keys; once full,
 * dedupe_add() answers "new" for unseen keys without remembering them, so
 * the cost of a huge catalogue is extra requests, never unbounded memory.
 *
 * Memory: the hashes live in many small tables that grow one at a time,
 * about 7.5–8.5 bytes per key in all (load between 0.83 and 0.94), and growing
 * never holds two copies of the set, so the peak stays close to the size.
 *
 * Ownership: the caller owns the set; keys are only read.
 */
#ifndef RACED_DEDUPE_H
#define RACED_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dedupe;

struct dedupe *dedupe_new(size_t max_keys);
void dedupe_free(struct dedupe *d);

/* true when key was not seen before (and is now remembered, room allowing). */
bool dedupe_add(struct dedupe *d, const char *key, size_t len);
size_t dedupe_count(const struct dedupe *d);
bool dedupe_full(const struct dedupe *d);
/* The 64-bit hash the set keeps of a key (also for callers that need to
 * recognise a key again without a set, e.g. cycle detection). */
uint64_t dedupe_hash(const char *key, size_t len);
/* Bytes of hash tables allocated now (not counting the fixed header). */
size_t dedupe_bytes(const struct dedupe *d);

#endif
