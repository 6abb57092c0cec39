/* import_item — see import_item.h. */
#include "import_item.h"

#include "import_input.h"
#include "membudget.h"

#include <stdlib.h>
#include <string.h>

/* Bytes the n values of carry take in an item. */
static size_t carry_bytes(const struct import_carry *carry, size_t n)
{
	size_t b = 0;
	for (size_t i = 0; i < n; i++)
		b += 1 + sizeof(uint32_t) + (carry[i].state == IMPORT_CARRY_VALUE ? carry[i].len : 0);
	return b;
}

/* Lay out the rest of item it, whose key (klen bytes with its NUL) is
 * already at it->data: the parent key, the text and the carried values
 * (cbytes of them) after it; copies is how many copies of its row's bytes
 * it is charged (import_item.h). */
static struct import_item *finish(struct import_item *it, size_t klen, const char *parent_key,
                                  size_t pklen, const char *text, size_t len, unsigned copies,
                                  const struct import_carry *carry, size_t n, size_t cbytes)
{
	char *p = it->data;
	it->input = NULL;
	it->hash = 0;
	it->unchanged = false;
	it->rewrite = false;
	it->key = p;
	p += klen;
	it->parent_key = NULL;
	if (parent_key) {
		memcpy(p, parent_key, pklen);
		it->parent_key = p;
		p += pklen;
	}
	memcpy(p, text, len);
	p[len] = '\0';
	it->text = p;
	it->text_len = len;
	p += len + 1;
	it->carried = p;
	it->n_carried = n;
	for (size_t i = 0; i < n; i++) {
		/* a state byte, the length, the bytes (a string may hold NUL) */
		uint32_t vlen = carry[i].state == IMPORT_CARRY_VALUE ? (uint32_t)carry[i].len : 0;
		*p++ = (char)carry[i].state;
		memcpy(p, &vlen, sizeof vlen);
		p += sizeof vlen;
		if (vlen) /* an absent value has no bytes (and may have no pointer) */
			memcpy(p, carry[i].value, vlen);
		p += vlen;
	}
	it->nul = false;
	it->charge = sizeof *it + IMPORT_ITEM_OVERHEAD + copies * (klen + pklen + len + 1) + cbytes;
	membudget_charge(it->charge);
	return it;
}

struct import_item *import_item_new(const struct jsondoc *doc, uint32_t v, uint32_t k,
                                    const char *parent_key, const struct import_carry *carry,
                                    size_t n)
{
	size_t len, klen, kmax = jsondoc_scalar_max(doc, k);
	size_t pklen = parent_key ? strlen(parent_key) + 1 : 0;
	size_t cbytes = carry_bytes(carry, n);
	const char *text = jsondoc_text(doc, v, &len);
	/* The carried values go after the text, which follows the key: the
	 * key's room is its bound, kmax, not its length. */
	struct import_item *it = malloc(sizeof *it + kmax + pklen + len + 1 + cbytes);
	if (!it)
		return NULL;
	if (jsondoc_scalar_to(doc, k, it->data, kmax, &klen) < 0) {
		free(it);
		return NULL;
	}
	/* its own copy and the store's copy of its row */
	finish(it, klen + 1, parent_key, pklen, text, len, 2, carry, n, cbytes);
	it->nul = jsondoc_has_nul(doc, v);
	return it;
}

struct import_item *import_item_copy(const char *key, const char *parent_key, const char *text,
                                     size_t len, const struct import_carry *carry, size_t n)
{
	size_t klen = strlen(key) + 1;
	size_t pklen = parent_key ? strlen(parent_key) + 1 : 0;
	size_t cbytes = carry_bytes(carry, n);
	struct import_item *it = malloc(sizeof *it + klen + pklen + len + 1 + cbytes);
	if (!it)
		return NULL;
	memcpy(it->data, key, klen);
	/* unchanged: no row, so only its own copy; from jsonb, so no \u0000 */
	finish(it, klen, parent_key, pklen, text, len, 1, carry, n, cbytes);
	it->unchanged = true;
	return it;
}

void import_item_carried(const struct import_item *it, size_t i, struct import_carry *out)
{
	const char *p = it->carried;
	uint32_t vlen;
	for (;;) {
		memcpy(&vlen, p + 1, sizeof vlen);
		if (i-- == 0)
			break;
		p += 1 + sizeof vlen + vlen;
	}
	out->state = (enum import_carry_state)(unsigned char)p[0];
	out->value = p + 1 + sizeof vlen;
	out->len = vlen;
}

void import_item_free(struct import_item *it)
{
	if (!it)
		return;
	membudget_release(it->charge);
	import_input_unref(it->input);
	free(it);
}
