/* import_item — the payload of an import's events: one item of a page.
 *
 * The fetching stages make an item for every keyed element of a page they
 * emit; the store consumer writes it as a row.  An item is a copy of the
 * element's JSON exactly as the provider sent it (the page is gone once the
 * fetch callback returns), its key and its parent's key.
 *
 * Ownership: one allocation an item (the strings live in it) and a
 * reference to its input (import_input.h), dropped when it is freed;
 * import_item_new() gives it to the caller, which hands it to the engine
 * with stage_emit() or frees it with import_item_free().
 *
 * An item also carries the values of ancestors' fields that its
 * descendants' URLs name ("{races.id}" in a grandchild's url), and of its
 * own fields its children's URLs name ("{id}"), read here from the page
 * rather than from the item's text again when the child's URL is made: the import
 * works out at configuration time which values each stage's items carry,
 * takes them from the parent item (or, for the item's own stage, from the
 * item) when the item is made, and so never keeps an ancestor's payload.
 * A value is a scalar's text, at most URLTEMPLATE_MAX_URL bytes (a longer
 * one is carried as "too long": it could not be in a URL anyway).
 *
 * Memory (membudget.h): from new to free an item is charged its bytes
 * twice (its own copy and the store's copy of its row, which never
 * outlives it: the store acknowledges a row only when it commits), its
 * carried values once, plus IMPORT_ITEM_OVERHEAD.
 */
#ifndef RACED_IMPORT_ITEM_H
#define RACED_IMPORT_ITEM_H

#include "error.h"
#include "jsondoc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes an item costs beyond its text and keys: its header and malloc's,
 * the engine's event and ring slot, the store's row and array entries. */
#define IMPORT_ITEM_OVERHEAD 160u

struct import_input;

/* One value an item carries for its descendants' URLs. */
enum import_carry_state {
	IMPORT_CARRY_ABSENT,   /* the ancestor's item has no string or number there */
	IMPORT_CARRY_VALUE,
	IMPORT_CARRY_TOO_LONG, /* longer than URLTEMPLATE_MAX_URL */
};
struct import_carry {
	enum import_carry_state state;
	const char *value;     /* IMPORT_CARRY_VALUE: value[0..len) (may hold NUL) */
	size_t len;
};

struct import_item {
	struct import_input *input; /* the input it came from (a reference), or NULL */
	uint64_t hash;    /* import_item_hash() of it */
	bool unchanged;   /* as stored last time: no row is written for it */
	bool rewrite;     /* unchanged, but its row is written all the same: the
	                     row may be gone (import.c, take_body) */
	char *key;
	char *parent_key; /* NULL for the root and for dedupe stages */
	char *text;       /* the item's JSON exactly as the provider sent it */
	size_t text_len;
	bool nul;         /* a string in it holds \u0000, which jsonb refuses */
	size_t charge;    /* bytes charged to membudget */
	size_t n_carried; /* values carried for descendants (import_item_carried) */
	char *carried;    /* in data: per value a state byte, a uint32_t length, its bytes */
	char data[];      /* key, parent key, text and carried values */
};

/* An item for value v of doc, whose key is the string (unescaped) or number
 * (as written) k; parent_key is copied (NULL: none), and the n values of
 * carry (NULL when n is 0).  NULL when out of memory. */
RACED_MUST_CHECK
struct import_item *import_item_new(const struct jsondoc *doc, uint32_t v, uint32_t k,
                                    const char *parent_key, const struct import_carry *carry,
                                    size_t n);
/* An item read back from the stage table (a page answered 304, an input
 * skipped): key, parent_key (NULL: none), text and the n values of carry
 * are copied; unchanged.  NULL when out of memory. */
RACED_MUST_CHECK
struct import_item *import_item_copy(const char *key, const char *parent_key, const char *text,
                                     size_t len, const struct import_carry *carry, size_t n);
/* The i-th value it carries (i < it->n_carried) into *out (pointing into
 * the item). */
void import_item_carried(const struct import_item *it, size_t i, struct import_carry *out);
/* Frees it and drops its reference to its input. */
void import_item_free(struct import_item *it);

#endif
