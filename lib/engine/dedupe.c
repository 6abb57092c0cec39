/* dedupe — see dedupe.h.
 *
 * Design notes
 *
 * The set is DEDUPE_SHARDS sorted arrays (shards), chosen by the hash's top
 * 12 bits.  A shard keeps the hash's low 48 bits of each key, 6 bytes,
 * ascending, so a lookup is a binary search and an insert a memmove of the
 * entries after it (about 90 entries a shard at 360,000 keys: a few hundred
 * bytes).  Bits 48-51 are not kept: the set tells 60-bit hashes apart.
 *
 * This set is the one thing in an import that grows with the data, so its
 * bytes matter more than the cycles of a search: a sorted array has no empty
 * slots (an open-addressing table at load 0.88 with 7-byte slots took about
 * 8 bytes a key, and the freed arrays of its growth about 1 more in the
 * heap).  A shard grows by an eighth of itself with realloc(), so the slack
 * is about 1/16 on average, and the arrays, all small and of like sizes,
 * reuse each other's freed chunks: about 6.5 bytes a key in all.  Growth
 * copies one shard, never the set.
 *
 * A provider could send keys whose hashes all share their top bits (the
 * hash is not keyed), piling them into one shard, where every insert would
 * move the whole array.  So a shard stops remembering new keys once it
 * holds DEDUPE_SHARD_SKEW times its share plus DEDUPE_SHARD_SLACK: as when
 * the set is full, such keys are fetched again, and an insert never moves
 * more than the limit's bytes (about 100 KiB at the import's 4 Mi keys,
 * 15 KiB at 360,000).  Honest keys never come near it (at 360,000 keys
 * the fullest of 4096 shards holds about 130, the limit is 2,400).
 */
#include "dedupe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEDUPE_SHARD_BITS 12
#define DEDUPE_SHARDS (1u << DEDUPE_SHARD_BITS)
#define DEDUPE_SHARD_MIN 4            /* entries of a shard's first array */
#define DEDUPE_SHARD_SKEW 16          /* a shard's limit: SKEW x (its share + SLACK) */
#define DEDUPE_SHARD_SLACK 64
#define ENTRY 6                       /* bytes: the hash's low 48 bits */
#define ENTRY_MASK ((UINT64_C(1) << (8 * ENTRY)) - 1)

struct dedupe_shard {
	unsigned char *e; /* n entries of ENTRY bytes, ascending; NULL until the first */
	uint32_t n;
	uint32_t cap;
};

struct dedupe {
	size_t count;
	size_t max_keys;
	size_t bytes;    /* shard arrays allocated now */
	struct dedupe_shard shards[DEDUPE_SHARDS];
};

/* 8 bytes a step, each step a bijection of the state for a given word
 * (xor, multiply by an odd constant, xor-shift), so keys of one length
 * differ before the murmur finaliser; the length is mixed in first.  It
 * replaced FNV-1a, a byte a step, and is never stored (the sets are in
 * memory), so the change altered no data: an input's URL is hashed about
 * four times on its way (docs/performance.md, "CPU per request", fourth
 * round). */
uint64_t dedupe_hash(const char *key, size_t len)
{
	const uint64_t k1 = 0xff51afd7ed558ccdu, k2 = 0xc4ceb9fe1a85ec53u;
	uint64_t h = 0xcbf29ce484222325u ^ (len * k2), w;
	size_t i = 0;
	for (; len - i >= sizeof w; i += sizeof w) {
		memcpy(&w, key + i, sizeof w);
		h = (h ^ w) * k1;
		h ^= h >> 31;
	}
	w = 0;
	for (unsigned sh = 0; i < len; i++, sh += 8)
		w |= (uint64_t)(unsigned char)key[i] << sh;
	h = (h ^ w) * k2;
	h ^= h >> 33;
	h *= k1;
	h ^= h >> 33;
	h *= k2;
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
		free(d->shards[i].e);
	free(d);
}

static uint64_t entry_get(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = ENTRY - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void entry_put(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < ENTRY; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* The index of the first entry >= v (n when there is none). */
static uint32_t lower_bound(const struct dedupe_shard *s, uint64_t v)
{
	uint32_t lo = 0, hi = s->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (entry_get(s->e + (size_t)mid * ENTRY) < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int shard_grow(struct dedupe *d, struct dedupe_shard *s)
{
	uint32_t ncap = s->cap < DEDUPE_SHARD_MIN * 8 ? s->cap + DEDUPE_SHARD_MIN : s->cap + s->cap / 8;
	if (ncap < s->cap) /* cannot happen below max_keys, but never wrap */
		return -1;
	unsigned char *ne = realloc(s->e, (size_t)ncap * ENTRY);
	if (!ne)
		return -1;
	d->bytes += ((size_t)ncap - s->cap) * ENTRY;
	s->e = ne;
	s->cap = ncap;
	return 0;
}

bool dedupe_add(struct dedupe *d, const char *key, size_t len)
{
	uint64_t h = dedupe_hash(key, len);
	struct dedupe_shard *s = &d->shards[h >> (64 - DEDUPE_SHARD_BITS)];
	uint64_t v = h & ENTRY_MASK;
	uint32_t i = lower_bound(s, v);
	if (i < s->n && entry_get(s->e + (size_t)i * ENTRY) == v)
		return false;
	if (d->count >= d->max_keys ||
	    s->n >= DEDUPE_SHARD_SKEW * (d->count / DEDUPE_SHARDS + DEDUPE_SHARD_SLACK))
		return true;
	if (s->n == s->cap && shard_grow(d, s) < 0)
		return true; /* out of memory: fetch again rather than fail */
	unsigned char *p = s->e + (size_t)i * ENTRY;
	memmove(p + ENTRY, p, (size_t)(s->n - i) * ENTRY);
	entry_put(p, v);
	s->n++;
	d->count++;
	return true;
}

bool dedupe_has(const struct dedupe *d, const char *key, size_t len)
{
	uint64_t h = dedupe_hash(key, len);
	const struct dedupe_shard *s = &d->shards[h >> (64 - DEDUPE_SHARD_BITS)];
	uint64_t v = h & ENTRY_MASK;
	uint32_t i = lower_bound(s, v);
	return i < s->n && entry_get(s->e + (size_t)i * ENTRY) == v;
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
