/* import_pagefields — the values a page's items give their descendants'
 * URLs, kept with the page's record (raced_pages.fields), so that when
 * the page is answered 304 its children are fed from the page's state
 * without reading its rows back (docs/architecture.md, "Children of a 304
 * without a read-back").  Pure: no I/O.
 *
 * A packing is an 8-byte signature of the fields' names (big-endian;
 * import_pagefields_sig), then, for each item of the page in page order,
 * for each field in order, the value's length (4 bytes, big-endian) and
 * its bytes.  Only values are kept: a page one of whose items has a field
 * absent or too long (import_item.h) keeps none, so that the child's
 * error comes from the row read back, as before.  A packing whose
 * signature is not the stage's (its children's URLs changed) is not used.
 *
 * Ownership: a writer owns its buffer until import_pagefields_free; the
 * packing it returns is its own (borrowed).  A reader borrows the
 * packing it reads, and the values it gives point into it.
 */
#ifndef RACED_IMPORT_PAGEFIELDS_H
#define RACED_IMPORT_PAGEFIELDS_H

#include "import_item.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes a page's packing may take: past it the page keeps none
 * (its children's values are read back), so a page of long values does
 * not make every state read and the pass that much larger. */
#define IMPORT_PAGEFIELDS_MAX_BYTES (256u * 1024u)

/* The signature of fields names[0 .. n) in that order. */
uint64_t import_pagefields_sig(const char *const *names, size_t n);

struct import_pagefields_writer {
	unsigned char *p;
	size_t len, cap;
	size_t n_fields;
	bool unusable;          /* a value not a value, too many bytes, or out of memory */
};

/* Start a page's packing of n_fields values an item. */
void import_pagefields_begin(struct import_pagefields_writer *w, uint64_t sig, size_t n_fields);
/* An item's values (n_fields of them), in the fields' order. */
void import_pagefields_add(struct import_pagefields_writer *w, const struct import_carry *vals);
/* The packing (w's), or NULL when the page keeps none. */
const unsigned char *import_pagefields_get(const struct import_pagefields_writer *w, size_t *len);
void import_pagefields_free(struct import_pagefields_writer *w);

struct import_pagefields_reader {
	const unsigned char *at, *end;
	size_t n_fields;
};

/* Whether p (len bytes) is a packing of signature sig holding exactly
 * n_items items of n_fields values each; then r reads them. */
bool import_pagefields_open(struct import_pagefields_reader *r, const unsigned char *p, size_t len,
                            uint64_t sig, size_t n_fields, size_t n_items);
/* The next item's values into vals[0 .. n_fields) (IMPORT_CARRY_VALUE,
 * pointing into the packing).  false: none left. */
bool import_pagefields_next(struct import_pagefields_reader *r, struct import_carry *vals);

#endif
