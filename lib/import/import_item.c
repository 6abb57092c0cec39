/* import_item — see import_item.h. */
#include "import_item.h"

#include "import_input.h"
#include "membudget.h"

#include <stdlib.h>
#include <string.h>

struct import_item *import_item_new(const struct jsondoc *doc, uint32_t v, uint32_t k,
                                    const char *parent_key)
{
	size_t len, klen, kmax = jsondoc_scalar_max(doc, k);
	size_t pklen = parent_key ? strlen(parent_key) + 1 : 0;
	const char *text = jsondoc_text(doc, v, &len);
	struct import_item *it = malloc(sizeof *it + kmax + pklen + len + 1);
	if (!it)
		return NULL;
	char *p = it->data;
	if (jsondoc_scalar_to(doc, k, p, kmax, &klen) < 0) {
		free(it);
		return NULL;
	}
	it->input = NULL;
	it->hash = 0;
	it->unchanged = false;
	it->key = p;
	p += klen + 1;
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
	it->nul = jsondoc_has_nul(doc, v);
	it->charge = sizeof *it + IMPORT_ITEM_OVERHEAD + 2 * (klen + 1 + pklen + len + 1);
	membudget_charge(it->charge);
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
	char *p = it->data;
	it->input = NULL;
	it->hash = 0;
	it->unchanged = true;
	memcpy(p, key, klen);
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
	it->nul = false; /* it came from jsonb */
	it->charge = sizeof *it + IMPORT_ITEM_OVERHEAD + klen + pklen + len + 1;
	membudget_charge(it->charge);
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
