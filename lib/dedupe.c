/* dedupe — see dedupe.h.
 *
 * Design notes
 *
 * The set is DEDUPE_SHARDS independent open-addressing tables (shards),
 * chosen by the hash's top 8 bits, so a slot keeps only the other 56: 7
 * bytes, and nothing of the hash is lost.  Each shard uses linear probing on
 * the hash's low 32 bits (mapped onto its capacity by a multiply, so the
 * capacity need not be a power of two), keeps its load at or below 15/16,
 * and grows by an eighth when it would pass it (load then stays between
 * 0.83 and 0.94): about 8 bytes a key in all.  This set is the one thing in
 * an import that grows with the data, so its bytes matter more than the
 * longer probes of a full table (tens of bytes scanned on a miss).  Growth
 * allocates the shard's new array before freeing the old one, so the peak
 * is the set plus one shard's worth, not twice the set: with 256 shards the
 * spike is about 1/256th of the set.  With well-mixed 64-bit hashes linear
 * probing at 7/8 load costs a few cache lines per miss.
 *
 * All-zero bytes mark an empty slot, so a hash whose low 56 bits are 0 is
 * stored as 1 (dedupe_hash() already never returns 0).
 */
#include "dedupe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEDUPE_SHARD_BITS 8
#define DEDUPE_SHARDS (1u << DEDUPE_SHARD_BITS)
#define DEDUPE_SHARD_MIN 16           /* slots of a shard's first array */
#define DEDUPE_LOAD_NUM 15            /* load <= 15/16 */
#define DEDUPE_LOAD_DEN 16
#define SLOT 7                        /* bytes: the hash's low 56 bits */

struct dedupe_shard {
	unsigned char *slots; /* cap * SLOT bytes; NULL until the shard's first key */
	uint32_t cap;
	uint32_t count;
};

struct dedupe {
	size_t count;
	size_t max_keys;
	size_t bytes;    /* slot arrays allocated now */
	struct dedupe_shard shards[DEDUPE_SHARDS];
};

uint64_t dedupe_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, then a murmur finaliser */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3u;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h ? h : 1;
}

struct dedupe *dedupe_new(size_t max_keys)
{
	struct dedupe *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->max_keys = max_keys;
	return d;
}

void dedupe_free(struct dedupe *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < DEDUPE_SHARDS; i++)
		free(d->shards[i].slots);
	free(d);
}

/* A hash's low 56 bits as slot bytes (least significant first). */
static void slot_bytes(uint64_t h, unsigned char b[SLOT])
{
	if ((h & 0x00ffffffffffffffu) == 0)
		h = 1;
	for (int i = 0; i < SLOT; i++)
		b[i] = (unsigned char)(h >> (8 * i));
}

static bool slot_empty(const unsigned char *p)
{
	static const unsigned char zero[SLOT];
	return memcmp(p, zero, SLOT) == 0;
}

/* The slot holding b (whose hash's low 32 bits are lo), or the empty slot
 * where it would go.  The shard always has an empty slot (load < 1), so
 * the probe ends. */
static unsigned char *find_slot(unsigned char *slots, uint32_t cap, uint32_t lo,
                                const unsigned char b[SLOT])
{
	size_t i = (size_t)(((uint64_t)lo * cap) >> 32);
	for (;;) {
		unsigned char *p = slots + i * SLOT;
		if (slot_empty(p) || memcmp(p, b, SLOT) == 0)
			return p;
		if (++i == cap)
			i = 0;
	}
}

static uint32_t slot_lo(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int shard_grow(struct dedupe *d, struct dedupe_shard *s)
{
	uint32_t ncap = s->cap ? s->cap + s->cap / 8 : DEDUPE_SHARD_MIN;
	if (ncap < s->cap) /* cannot happen below max_keys, but never wrap */
		return -1;
	unsigned char *ns = calloc(ncap, SLOT);
	if (!ns)
		return -1;
	for (uint32_t i = 0; i < s->cap; i++) {
		const unsigned char *p = s->slots + (size_t)i * SLOT;
		if (!slot_empty(p))
			memcpy(find_slot(ns, ncap, slot_lo(p), p), p, SLOT);
	}
	free(s->slots);
	d->bytes += ((size_t)ncap - s->cap) * SLOT;
	s->slots = ns;
	s->cap = ncap;
	return 0;
}

bool dedupe_add(struct dedupe *d, const char *key, size_t len)
{
	uint64_t h = dedupe_hash(key, len);
	struct dedupe_shard *s = &d->shards[h >> (64 - DEDUPE_SHARD_BITS)];
	unsigned char b[SLOT];
	slot_bytes(h, b);
	uint32_t lo = slot_lo(b);
	unsigned char *slot = s->slots ? find_slot(s->slots, s->cap, lo, b) : NULL;
	if (slot && !slot_empty(slot))
		return false;
	if (d->count >= d->max_keys)
		return true;
	if ((uint64_t)(s->count + 1) * DEDUPE_LOAD_DEN > (uint64_t)s->cap * DEDUPE_LOAD_NUM) {
		if (shard_grow(d, s) < 0)
			return true; /* out of memory: fetch again rather than fail */
		slot = find_slot(s->slots, s->cap, lo, b);
	}
	memcpy(slot, b, SLOT);
	s->count++;
	d->count++;
	return true;
}

size_t dedupe_count(const struct dedupe *d)
{
	return d->count;
}

bool dedupe_full(const struct dedupe *d)
{
	return d->count >= d->max_keys;
}

size_t dedupe_bytes(const struct dedupe *d)
{
	return d->bytes;
}
