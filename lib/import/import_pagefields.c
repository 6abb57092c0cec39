/* import_pagefields — see import_pagefields.h. */
#include "import_pagefields.h"

#include <stdlib.h>
#include <string.h>

#define SIG_BYTES 8

uint64_t import_pagefields_sig(const char *const *names, size_t n)
{
	/* FNV-1a over the names, each ended by a NUL, and their count */
	uint64_t h = UINT64_C(14695981039346656037);
	for (size_t i = 0; i < n; i++)
		for (const unsigned char *c = (const unsigned char *)names[i];; c++) {
			h = (h ^ *c) * UINT64_C(1099511628211);
			if (!*c)
				break;
		}
	return (h ^ (uint64_t)n) * UINT64_C(1099511628211);
}

static void put(struct import_pagefields_writer *w, const void *v, size_t n)
{
	if (w->unusable)
		return;
	if (n > IMPORT_PAGEFIELDS_MAX_BYTES - w->len) {
		w->unusable = true;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		unsigned char *p = realloc(w->p, cap);
		if (!p) {
			w->unusable = true;
			return;
		}
		w->p = p;
		w->cap = cap;
	}
	memcpy(w->p + w->len, v, n);
	w->len += n;
}

static void put_be(struct import_pagefields_writer *w, uint64_t v, size_t bytes)
{
	unsigned char b[8];
	for (size_t i = 0; i < bytes; i++)
		b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	put(w, b, bytes);
}

void import_pagefields_begin(struct import_pagefields_writer *w, uint64_t sig, size_t n_fields)
{
	*w = (struct import_pagefields_writer){ .n_fields = n_fields };
	put_be(w, sig, SIG_BYTES);
}

void import_pagefields_add(struct import_pagefields_writer *w, const struct import_carry *vals)
{
	for (size_t i = 0; i < w->n_fields && !w->unusable; i++) {
		if (vals[i].state != IMPORT_CARRY_VALUE || vals[i].len > UINT32_MAX) {
			w->unusable = true;
			return;
		}
		put_be(w, vals[i].len, 4);
		put(w, vals[i].value, vals[i].len);
	}
}

const unsigned char *import_pagefields_get(const struct import_pagefields_writer *w, size_t *len)
{
	if (w->unusable || !w->p)
		return NULL;
	*len = w->len;
	return w->p;
}

void import_pagefields_free(struct import_pagefields_writer *w)
{
	free(w->p);
	*w = (struct import_pagefields_writer){ 0 };
}

static uint64_t get_be(const unsigned char *p, size_t bytes)
{
	uint64_t v = 0;
	for (size_t i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

bool import_pagefields_open(struct import_pagefields_reader *r, const unsigned char *p, size_t len,
                            uint64_t sig, size_t n_fields, size_t n_items)
{
	if (!p || len < SIG_BYTES || get_be(p, SIG_BYTES) != sig)
		return false;
	/* every value must be there, and nothing after them */
	const unsigned char *at = p + SIG_BYTES, *end = p + len;
	for (size_t i = 0; i < n_items; i++)
		for (size_t f = 0; f < n_fields; f++) {
			if (end - at < 4)
				return false;
			uint64_t l = get_be(at, 4);
			at += 4;
			if ((uint64_t)(end - at) < l)
				return false;
			at += l;
		}
	if (at != end)
		return false;
	*r = (struct import_pagefields_reader){ .at = p + SIG_BYTES, .end = end, .n_fields = n_fields };
	return true;
}

bool import_pagefields_next(struct import_pagefields_reader *r, struct import_carry *vals)
{
	if (r->at >= r->end && r->n_fields > 0)
		return false;
	for (size_t f = 0; f < r->n_fields; f++) {
		size_t l = (size_t)get_be(r->at, 4);
		vals[f] = (struct import_carry){ .state = IMPORT_CARRY_VALUE,
		                                 .value = (const char *)r->at + 4, .len = l };
		r->at += 4 + l;
	}
	return true;
}
