#include "dedupe.h"

#include <stdint.h>
#include <stdlib.h>

/* Open addressing, linear probing, load factor <= 1/2; hash 0 marks an
 * empty slot, so a key hashing to 0 is stored as 1. */
struct dedupe {
	uint64_t *slots;
	size_t cap;      /* power of two */
	size_t count;
	size_t max_keys;
};

static uint64_t hash_key(const char *key, size_t len)
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
	d->cap = 1024;
	d->slots = calloc(d->cap, sizeof *d->slots);
	if (!d->slots) {
		free(d);
		return NULL;
	}
	d->max_keys = max_keys;
	return d;
}

void dedupe_free(struct dedupe *d)
{
	if (!d)
		return;
	free(d->slots);
	free(d);
}

static uint64_t *find_slot(uint64_t *slots, size_t cap, uint64_t h)
{
	size_t i = (size_t)h & (cap - 1);
	while (slots[i] && slots[i] != h)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int grow(struct dedupe *d)
{
	size_t ncap = d->cap * 2;
	uint64_t *ns = calloc(ncap, sizeof *ns);
	if (!ns)
		return -1;
	for (size_t i = 0; i < d->cap; i++)
		if (d->slots[i])
			*find_slot(ns, ncap, d->slots[i]) = d->slots[i];
	free(d->slots);
	d->slots = ns;
	d->cap = ncap;
	return 0;
}

bool dedupe_add(struct dedupe *d, const char *key, size_t len)
{
	uint64_t h = hash_key(key, len);
	uint64_t *slot = find_slot(d->slots, d->cap, h);
	if (*slot)
		return false;
	if (d->count >= d->max_keys)
		return true;
	if ((d->count + 1) * 2 > d->cap) {
		if (grow(d) < 0)
			return true; /* out of memory: fetch again rather than fail */
		slot = find_slot(d->slots, d->cap, h);
	}
	*slot = h;
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
