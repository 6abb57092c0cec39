/* import_item — see import_item.h. */
#include "import_item.h"

#include "import_input.h"
#include "membudget.h"

#include <stdlib.h>
#include <string.h>

/* Lay out the rest of item it, whose key (klen bytes with its NUL) is
 * already at it->data: the parent key and the text after it; copies is
 * how many copies of its bytes it is charged (import_item.h). */
static struct import_item *finish(struct import_item *it, size_t klen, const char *parent_key,
                                  size_t pklen, const char *text, size_t len, unsigned copies)
{
	char *p = it->data;
	it->input = NULL;
	it->hash = 0;
	it->unchanged = false;
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
	it->nul = false;
	it->charge = sizeof *it + IMPORT_ITEM_OVERHEAD + copies * (klen + pklen + len + 1);
	membudget_charge(it->charge);
	return it;
}

struct import_item *import_item_new(const struct jsondoc *doc, uint32_t v, uint32_t k,
                                    const char *parent_key)
{
	size_t len, klen, kmax = jsondoc_scalar_max(doc, k);
	size_t pklen = parent_key ? strlen(parent_key) + 1 : 0;
	const char *text = jsondoc_text(doc, v, &len);
	struct import_item *it = malloc(sizeof *it + kmax + pklen + len + 1);
	if (!it)
		return NULL;
	if (jsondoc_scalar_to(doc, k, it->data, kmax, &klen) < 0) {
		free(it);
		return NULL;
	}
	/* its own copy and the store's copy of its row */
	finish(it, klen + 1, parent_key, pklen, text, len, 2);
	it->nul = jsondoc_has_nul(doc, v);
	return it;
}

struct import_item *import_item_copy(const char *key, const char *parent_key, const char *text,
                                     size_t len)
{
	size_t klen = strlen(key) + 1;
	size_t pklen = parent_key ? strlen(parent_key) + 1 : 0;
	struct import_item *it = malloc(sizeof *it + klen + pklen + len + 1);
	if (!it)
		return NULL;
	memcpy(it->data, key, klen);
	/* unchanged: no row, so only its own copy; from jsonb, so no \u0000 */
	finish(it, klen, parent_key, pklen, text, len, 1);
	it->unchanged = true;
	return it;
}

void import_item_free(struct import_item *it)
{
	if (!it)
		return;
	membudget_release(it->charge);
	import_input_unref(it->input);
	free(it);
}
