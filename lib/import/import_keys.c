/* import_keys — see import_keys.h. */
#include "import_keys.h"

#include "dedupe.h"
#include "membudget.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The hash the table and the by-URL set keep of a URL.  A test build
 * defines its own, to force collisions. */
#ifndef IMPORT_KEYS_HASH
#define IMPORT_KEYS_HASH(s, n) dedupe_hash(s, n)
#endif

/* One input kept with its keys: its URL then its keys, in one allocation. */
struct entry {
	uint64_t hash;
	uint32_t url_len;
	uint32_t n;
	size_t len;           /* of the keys */
	char data[];          /* url, NUL, keys */
};

/* No place for an implied key fixed yet. */
#define SEG_NONE UINT32_MAX

/* Open addressing, load at most one half. */
struct import_keys {
	struct entry **slots;
	size_t cap;           /* a power of two, or 0 */
	size_t count;
	struct dedupe *by_url; /* hashes (8 bytes of IMPORT_KEYS_HASH) of inputs by URL; NULL until the first */
	size_t by_url_bytes;   /* its arrays, charged */
	bool lost;             /* one by URL could not be remembered */
	uint32_t seg;          /* where an implied key is (from the end), or SEG_NONE */
	size_t implied;
	size_t bytes;          /* the entries and their table, charged */
	size_t max_bytes;
	size_t refused;
};

/* What malloc costs beyond what is asked, about. */
#define MALLOC_OVERHEAD 16u
/* The by-URL set's bytes a hash at most (dedupe.c: a shard's first array
 * holds 4 hashes of 6 bytes, and grows by at most a quarter of its hashes
 * after that), so that IMPORT_KEYS_BY_URL_SHARE of the bound in bytes
 * bounds it in hashes. */
#define BY_URL_BYTES 24u

struct import_keys *import_keys_new(size_t max_bytes)
{
	struct import_keys *c = calloc(1, sizeof *c);
	if (c) {
		c->max_bytes = max_bytes;
		c->seg = SEG_NONE;
	}
	return c;
}

void import_keys_free(struct import_keys *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->cap; i++)
		free(c->slots[i]);
	free(c->slots);
	dedupe_free(c->by_url);
	membudget_release(c->bytes + c->by_url_bytes);
	free(c);
}

/* The path segment of url `seg` places from its end (0: the last),
 * percent-decoded into out (size bytes, NUL-terminated): its length, or -1
 * when there is none, it is empty, it does not fit, or it decodes to a NUL
 * or holds a '%' not followed by two hex digits. */
static long segment_of(const char *url, uint32_t seg, char *out, size_t size)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");   /* the path, after the authority */
	if (*p != '/')
		return -1;
	const char *end = p + strcspn(p, "?#");
	/* [b, e) is the segment: walk back seg separators from the end */
	const char *e = end, *b = end;
	for (uint32_t k = 0;; k++) {
		b = e;
		while (b > p && b[-1] != '/')
			b--;
		if (k == seg)
			break;
		if (b == p + 1 || b <= p)
			return -1;   /* the path has no more segments */
		e = b - 1;
	}
	size_t n = 0;
	for (const char *q = b; q < e; q++) {
		unsigned char ch = (unsigned char)*q;
		if (ch == '%') {
			int v = 0;
			for (int i = 1; i <= 2; i++) {
				char h = q + i < e ? q[i] : '\0';
				int d = h >= '0' && h <= '9' ? h - '0'
				      : h >= 'a' && h <= 'f' ? h - 'a' + 10
				      : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
				if (d < 0)
					return -1;
				v = v * 16 + d;
			}
			ch = (unsigned char)v;
			q += 2;
		}
		if (ch == '\0' || n + 1 >= size)
			return -1;
		out[n++] = (char)ch;
	}
	if (n == 0)
		return -1;
	out[n] = '\0';
	return (long)n;
}

/* Whether the input's keys are the one its URL implies at c->seg,
 * fixing the place at the first such input. */
static bool implied(struct import_keys *c, const char *url, const char *keys, size_t len,
                    size_t n)
{
	char seg[IMPORT_KEYS_IMPLIED_MAX];
	if (n != 1 || len > sizeof seg || c->lost)
		return false;
	for (uint32_t k = 0; k < IMPORT_KEYS_SEGMENTS; k++) {
		if (c->seg != SEG_NONE && k != c->seg)
			continue;
		long l = segment_of(url, k, seg, sizeof seg);
		if (l >= 0 && (size_t)l + 1 == len && memcmp(seg, keys, len) == 0) {
			c->seg = k;
			return true;
		}
	}
	return false;
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

/* Keep the input's keys; false: not kept (past the bound, too long, out
 * of memory). */
static bool keep(struct import_keys *c, const char *url, size_t url_len, uint64_t h,
                 const char *keys, size_t len, size_t n)
{
	size_t cost = sizeof(struct entry) + url_len + 1 + len + MALLOC_OVERHEAD;
	if (url_len > UINT32_MAX || n > UINT32_MAX || c->bytes + cost > c->max_bytes ||
	    ((c->count + 1) * 2 > c->cap && !grow(c)) || c->bytes + cost > c->max_bytes)
		return false;
	size_t i = slot_of(c, url, url_len, h);
	if (c->slots[i])
		return true;   /* there already */
	struct entry *e = malloc(sizeof *e + url_len + 1 + len);
	if (!e)
		return false;
	e->hash = h;
	e->url_len = (uint32_t)url_len;
	e->len = len;
	e->n = (uint32_t)n;
	memcpy(e->data, url, url_len + 1);
	if (len > 0)
		memcpy(e->data + url_len + 1, keys, len);
	c->slots[i] = e;
	c->count++;
	c->bytes += cost;
	membudget_charge(cost);
	return true;
}

/* Remember the input goes by URL; past the bound, every one does. */
static void by_url_add(struct import_keys *c, uint64_t h)
{
	if (c->lost)
		return;
	if (!c->by_url) {
		size_t max = c->max_bytes / IMPORT_KEYS_BY_URL_SHARE / BY_URL_BYTES;
		if (!(c->by_url = dedupe_new(max))) {
			c->lost = true;
			return;
		}
	}
	size_t was = dedupe_count(c->by_url);
	if (dedupe_add(c->by_url, (const char *)&h, sizeof h) && dedupe_count(c->by_url) == was)
		c->lost = true;   /* new, and not remembered */
	size_t now = dedupe_bytes(c->by_url);
	if (now > c->by_url_bytes) {
		membudget_charge(now - c->by_url_bytes);
		c->by_url_bytes = now;
	}
}

void import_keys_ended(struct import_keys *c, const char *url, bool keys_known,
                       const char *keys, size_t len, size_t n)
{
	size_t url_len = strlen(url);
	uint64_t h = IMPORT_KEYS_HASH(url, url_len);
	if (keys_known && implied(c, url, keys, len, n)) {
		c->implied++;
		return;
	}
	if (keys_known && keep(c, url, url_len, h, keys, len, n))
		return;
	if (keys_known)
		c->refused++;
	by_url_add(c, h);
}

bool import_keys_find(const struct import_keys *c, const char *url, char *buf,
                      const char **keys, size_t *len, size_t *n)
{
	if (!c)
		return false;
	size_t url_len = strlen(url);
	uint64_t h = IMPORT_KEYS_HASH(url, url_len);
	if (c->count > 0) {
		const struct entry *e = c->slots[slot_of(c, url, url_len, h)];
		if (e) {
			*keys = e->data + e->url_len + 1;
			*len = e->len;
			*n = e->n;
			return true;
		}
	}
	if (c->lost || c->seg == SEG_NONE ||
	    (c->by_url && dedupe_has(c->by_url, (const char *)&h, sizeof h)))
		return false;
	long l = segment_of(url, c->seg, buf, IMPORT_KEYS_IMPLIED_MAX);
	if (l < 0)
		return false;
	*keys = buf;
	*len = (size_t)l + 1;
	*n = 1;
	return true;
}

size_t import_keys_count(const struct import_keys *c)
{
	return c ? c->count : 0;
}

size_t import_keys_implied(const struct import_keys *c)
{
	return c ? c->implied : 0;
}

size_t import_keys_by_url(const struct import_keys *c)
{
	return c && c->by_url ? dedupe_count(c->by_url) : 0;
}

size_t import_keys_bytes(const struct import_keys *c)
{
	return c ? c->bytes + c->by_url_bytes : 0;
}

size_t import_keys_refused(const struct import_keys *c)
{
	return c ? c->refused : 0;
}
