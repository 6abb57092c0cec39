/* dedupe — the set of keys an import has already fetched, so that a
 * dedupe stage (athletes) fetches each referenced item once per import.
 *
 * It stores hashes, not the keys: 6 bytes a key (plus about 1/16 slack),
 * in sorted arrays chosen by the hash's top bits, so 60 bits of a 64-bit
 * hash tell keys apart (a collision, odds about n²/2⁶¹, would skip one
 * fetch: about 1 in 18 million imports of 360,000 keys).  The set is
 * bounded by max_keys; once full, dedupe_add() answers "new" for unseen
 * keys without remembering them, so the cost of a huge catalogue is extra
 * requests, never unbounded memory.  Likewise, keys whose hashes pile into
 * one part of the set far beyond its share (a hostile provider's) are
 * fetched again rather than remembered: see dedupe.c.
 *
 * Memory: the arrays grow one at a time (by an eighth), so growing never
 * holds two copies of the set and the peak stays close to its size.
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
/* Whether key was remembered (no change to the set). */
bool dedupe_has(const struct dedupe *d, const char *key, size_t len);
size_t dedupe_count(const struct dedupe *d);
bool dedupe_full(const struct dedupe *d);
/* The 64-bit hash the set keeps of a key (also for callers that need to
 * recognise a key again without a set, e.g. cycle detection). */
uint64_t dedupe_hash(const char *key, size_t len);
/* Bytes of hash tables allocated now (not counting the fixed header). */
size_t dedupe_bytes(const struct dedupe *d);

#endif
