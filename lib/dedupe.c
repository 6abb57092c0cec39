/* dedupe — see dedupe.h.
 *
 * Design notes
 *
 * The set is DEDUPE_SHARDS independent open-addressing tables (shards),
 * chosen by the hash's top bits.  Each shard uses linear probing on the
 * hash's low 32 bits (mapped onto its capacity by a multiply, so the
 * capacity need not be a power of two), keeps its load at or below
 * 7/8, and grows by a quarter when it would pass it (load then stays
 * between 0.7 and 0.875).  Growth
 * allocates the shard's new array before freeing the old one, so the peak
 * is the set plus one shard's worth, not twice the set: with 256 shards the
 * spike is about 1/256th of the set.  With well-mixed 64-bit hashes linear
 * probing at 7/8 load costs a few cache lines per miss.
 *
 * Hash 0 marks an empty slot, so a key hashing to 0 is stored as 1.
 */
#include "dedupe.h"

#include <stdint.h>
#include <stdlib.h>

#define DEDUPE_SHARD_BITS 8
#define DEDUPE_SHARDS (1u << DEDUPE_SHARD_BITS)
#define DEDUPE_SHARD_MIN 16           /* slots of a shard's first array */
#define DEDUPE_LOAD_NUM 7             /* load <= 7/8 */
#define DEDUPE_LOAD_DEN 8

struct dedupe_shard {
	uint64_t *slots; /* NULL until the shard's first key */
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

/* The slot holding h, or the empty slot where it would go.  The shard
 * always has an empty slot (load < 1), so the probe ends. */
static uint64_t *find_slot(uint64_t *slots, uint32_t cap, uint64_t h)
{
	size_t i = (size_t)(((uint64_t)(uint32_t)h * cap) >> 32);
	while (slots[i] && slots[i] != h)
		if (++i == cap)
			i = 0;
	return &slots[i];
}

static int shard_grow(struct dedupe *d, struct dedupe_shard *s)
{
	uint32_t ncap = s->cap ? s->cap + s->cap / 4 : DEDUPE_SHARD_MIN;
	if (ncap < s->cap) /* cannot happen below max_keys, but never wrap */
		return -1;
	uint64_t *ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return -1;
	for (uint32_t i = 0; i < s->cap; i++)
		if (s->slots[i])
			*find_slot(ns, ncap, s->slots[i]) = s->slots[i];
	free(s->slots);
	d->bytes += ((size_t)ncap - s->cap) * sizeof *ns;
	s->slots = ns;
	s->cap = ncap;
	return 0;
}

bool dedupe_add(struct dedupe *d, const char *key, size_t len)
{
	uint64_t h = dedupe_hash(key, len);
	struct dedupe_shard *s = &d->shards[h >> (64 - DEDUPE_SHARD_BITS)];
	uint64_t *slot = s->slots ? find_slot(s->slots, s->cap, h) : NULL;
	if (slot && *slot)
		return false;
	if (d->count >= d->max_keys)
		return true;
	if ((uint64_t)(s->count + 1) * DEDUPE_LOAD_DEN > (uint64_t)s->cap * DEDUPE_LOAD_NUM) {
		if (shard_grow(d, s) < 0)
			return true; /* out of memory: fetch again rather than fail */
		slot = find_slot(s->slots, s->cap, h);
	}
	*slot = h;
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
