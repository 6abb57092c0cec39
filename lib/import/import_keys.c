/* import_keys — see import_keys.h. */
#include "import_keys.h"

#include "dedupe.h"
#include "membudget.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One input: its URL then its keys, in one allocation. */
struct entry {
	uint64_t hash;
	size_t url_len;
	size_t len;           /* of the keys */
	size_t n;
	char data[];          /* url, NUL, keys */
};

/* Open addressing, load at most one half. */
struct import_keys {
	struct entry **slots;
	size_t cap;           /* a power of two, or 0 */
	size_t count;
	size_t bytes;         /* charged */
	size_t max_bytes;
	size_t refused;
};

/* What malloc costs beyond what is asked, about. */
#define MALLOC_OVERHEAD 16u

struct import_keys *import_keys_new(size_t max_bytes)
{
	struct import_keys *c = calloc(1, sizeof *c);
	if (c)
		c->max_bytes = max_bytes;
	return c;
}

void import_keys_free(struct import_keys *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->cap; i++)
		free(c->slots[i]);
	free(c->slots);
	membudget_release(c->bytes);
	free(c);
}

static size_t slot_of(const struct import_keys *c, const char *url, size_t url_len, uint64_t h)
{
	size_t mask = c->cap - 1, i = (size_t)h & mask;
	for (; c->slots[i]; i = (i + 1) & mask) {
		const struct entry *e = c->slots[i];
		if (e->hash == h && e->url_len == url_len && memcmp(e->data, url, url_len) == 0)
			break;
	}
	return i;
}

/* Double the table (charging it); false when it would pass the bound or
 * out of memory. */
static bool grow(struct import_keys *c)
{
	size_t cap = c->cap ? c->cap * 2 : 64;
	size_t more = (cap - c->cap) * sizeof *c->slots;
	if (c->bytes + more > c->max_bytes)
		return false;
	struct entry **slots = calloc(cap, sizeof *slots);
	if (!slots)
		return false;
	struct import_keys next = *c;
	next.slots = slots;
	next.cap = cap;
	for (size_t i = 0; i < c->cap; i++) {
		struct entry *e = c->slots[i];
		if (e)
			slots[slot_of(&next, e->data, e->url_len, e->hash)] = e;
	}
	free(c->slots);
	c->slots = slots;
	c->cap = cap;
	c->bytes += more;
	membudget_charge(more);
	return true;
}

bool import_keys_add(struct import_keys *c, const char *url, const char *keys, size_t len,
                     size_t n)
{
	size_t url_len = strlen(url);
	size_t cost = sizeof(struct entry) + url_len + 1 + len + MALLOC_OVERHEAD;
	if (c->bytes + cost > c->max_bytes ||
	    ((c->count + 1) * 2 > c->cap && !grow(c)) || c->bytes + cost > c->max_bytes) {
		c->refused++;
		return false;
	}
	uint64_t h = dedupe_hash(url, url_len);
	size_t i = slot_of(c, url, url_len, h);
	if (c->slots[i])
		return false;
	struct entry *e = malloc(sizeof *e + url_len + 1 + len);
	if (!e)
		return false;
	e->hash = h;
	e->url_len = url_len;
	e->len = len;
	e->n = n;
	memcpy(e->data, url, url_len + 1);
	if (len > 0)
		memcpy(e->data + url_len + 1, keys, len);
	c->slots[i] = e;
	c->count++;
	c->bytes += cost;
	membudget_charge(cost);
	return true;
}

bool import_keys_find(const struct import_keys *c, const char *url, const char **keys,
                      size_t *len, size_t *n)
{
	if (!c || c->count == 0)
		return false;
	size_t url_len = strlen(url);
	const struct entry *e = c->slots[slot_of(c, url, url_len, dedupe_hash(url, url_len))];
	if (!e)
		return false;
	*keys = e->data + e->url_len + 1;
	*len = e->len;
	*n = e->n;
	return true;
}

size_t import_keys_count(const struct import_keys *c)
{
	return c ? c->count : 0;
}

size_t import_keys_bytes(const struct import_keys *c)
{
	return c ? c->bytes : 0;
}

size_t import_keys_refused(const struct import_keys *c)
{
	return c ? c->refused : 0;
}
