/* jsondoc — a JSON document read in place.  One validating pass over the
 * provider's bytes records every value as a token (its type, where its text
 * starts and ends, where its subtree ends) in one flat array; nothing is
 * allocated per value and nothing is copied.  Pages of items are split into
 * items by slicing the text, so an item is stored exactly as the provider
 * sent it, and a field is read by a JSON pointer (RFC 6901) over the tokens.
 *
 * Validation is strict RFC 8259, as jansson's was: UTF-8 checked, lone
 * surrogates refused, at most JSONDOC_MAX_DEPTH levels.  A string may hold
 * \u0000 (jsondoc_has_nul() says where), so one such item can be refused
 * without refusing its page.  For duplicate member names the last one wins,
 * as in PostgreSQL's jsonb.
 *
 * Ownership: a jsondoc owns its token array and reuses it from one parse to
 * the next.  The text belongs to the caller and must outlive every use of
 * the document; values (token indexes) are valid until the next parse.
 */
#ifndef RACED_JSONDOC_H
#define RACED_JSONDOC_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONDOC_MAX_DEPTH 2048
/* A document's text is at most this long (token offsets are 32-bit). */
#define JSONDOC_MAX_TEXT ((size_t)UINT32_MAX - 1)
/* "No such value": what lookups return when nothing is there. */
#define JSONDOC_ABSENT UINT32_MAX

enum jsondoc_type {
	JSONDOC_OBJECT = 1,
	JSONDOC_ARRAY,
	JSONDOC_STRING,
	JSONDOC_NUMBER,
	JSONDOC_TRUE,
	JSONDOC_FALSE,
	JSONDOC_NULL,
};

enum {
	/* Accept any value at the top, not only an object or an array. */
	JSONDOC_ANY = 1,
};

struct jsondoc;

struct jsondoc *jsondoc_new(void);
void jsondoc_free(struct jsondoc *d);

/* Parse text[0..len).  Returns 0, the root being value 0; or -1 with err
 * (ERR_MAX bytes) naming what is wrong and its line and column. */
RACED_MUST_CHECK
int jsondoc_parse(struct jsondoc *d, const char *text, size_t len, unsigned flags, char *err);

/* Bytes a token takes: a parse costs this much a value. */
#define JSONDOC_TOKEN_BYTES 20

/* Upper bounds, from one quick pass that does not validate, on what
 * parsing text costs: tokens (values and member names) and containers
 * (objects and arrays).  A caller with a memory budget asks before it
 * parses. */
struct jsondoc_census {
	size_t tokens, containers;
};
void jsondoc_census(const char *text, size_t len, struct jsondoc_census *c);

/* Make room for n tokens at once (the array otherwise doubles as it
 * grows, up to twice what a parse needs).  -1 when out of memory or n is
 * over what a document can hold. */
int jsondoc_reserve(struct jsondoc *d, size_t n);

/* Give back the token array if it grew beyond keep_bytes (after an unusually
 * large document), so one big page does not pin its memory. */
void jsondoc_trim(struct jsondoc *d, size_t keep_bytes);

/* The type of v; 0 for JSONDOC_ABSENT. */
enum jsondoc_type jsondoc_type(const struct jsondoc *d, uint32_t v);

/* The value v's text as it appears in the document (quotes included for a
 * string), and its length. */
const char *jsondoc_text(const struct jsondoc *d, uint32_t v, size_t *len);

/* Elements of an array, members of an object; 0 for other values. */
size_t jsondoc_size(const struct jsondoc *d, uint32_t v);

/* The first element of an array (the first member's value for an object),
 * and the one after v in parent; JSONDOC_ABSENT at the end. */
uint32_t jsondoc_first(const struct jsondoc *d, uint32_t v);
uint32_t jsondoc_next(const struct jsondoc *d, uint32_t parent, uint32_t v);

/* The name of the object member whose value is v (from jsondoc_first() and
 * jsondoc_next() over an object): a string value, for jsondoc_scalar(). */
uint32_t jsondoc_member_name(const struct jsondoc *d, uint32_t v);

/* The member of object v named name[0..len) (the last one of that name). */
uint32_t jsondoc_member(const struct jsondoc *d, uint32_t v, const char *name, size_t len);

/* The value at the JSON pointer ptr below v ("" is v itself). */
uint32_t jsondoc_get(const struct jsondoc *d, uint32_t v, const char *ptr);

/* Does the string v, or any string inside v, hold \u0000? */
bool jsondoc_has_nul(const struct jsondoc *d, uint32_t v);

/* A scalar's text as a malloc'd, NUL-terminated string: a string
 * unescaped, a number as written, true and false as words.  NULL for
 * null, objects, arrays and out of memory.  *len (optional) gets its length. */
RACED_MUST_CHECK
char *jsondoc_scalar(const struct jsondoc *d, uint32_t v, size_t *len);

/* The same into out (cap bytes); -1 when v is not such a scalar or it does
 * not fit.  jsondoc_scalar_max() is a cap that always fits (0 when v is
 * not such a scalar). */
RACED_MUST_CHECK
int jsondoc_scalar_to(const struct jsondoc *d, uint32_t v, char *out, size_t cap, size_t *len);
size_t jsondoc_scalar_max(const struct jsondoc *d, uint32_t v);

#endif
