/* urltemplate — a stage's `url` setting: literal text with placeholders
 * filled from the parent item, "{name}" for a top-level field and
 * "{/a/b}" for a JSON pointer into the item; "{stage.name}" and
 * "{stage./a/b}" name the field of an ancestor stage's item (the caller
 * resolves those: urltemplate_expand_args); or, for the root stage, which
 * has no parent, from named values the caller gives
 * (urltemplate_expand_named: "{last_success}", "{cursor}").  A number is
 * written as PostgreSQL's numeric prints it (1e3 as 1000: jsonnum.h), so
 * that an item fetched and the same item read back from its jsonb row
 * give the same URL.  Values (strings, numbers, booleans) are
 * percent-encoded, so "Zoë/2" becomes "Zo%C3%AB%2F2"
 * and can never change the URL's structure: in the path "." and ".." are
 * written %2E and %2E%2E (URL resolution would remove them as segments),
 * and an empty value is refused.
 *
 * Ownership: urltemplate_parse() copies the text into a template the caller
 * frees with urltemplate_free(); urltemplate_expand() returns a malloc'd
 * string the caller frees.
 */
#ifndef RACED_URLTEMPLATE_H
#define RACED_URLTEMPLATE_H

#include "error.h"
#include "jsondoc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest URL an expansion may produce. */
#define URLTEMPLATE_MAX_URL 8192

struct urltemplate;

/* NULL with err for an unclosed '{', an empty "{}" or a bad pointer.  A '}'
 * outside a placeholder is literal text. */
RACED_MUST_CHECK
struct urltemplate *urltemplate_parse(const char *text, char *err);

/* Why urltemplate_parse_fault() refused a text, for a caller that words its
 * own message (config names the file, line and key). */
enum urltemplate_fault {
	URLTEMPLATE_OK,
	URLTEMPLATE_UNCLOSED,    /* a '{' with no '}' before the next '{' or the end */
	URLTEMPLATE_EMPTY,       /* "{}" */
	URLTEMPLATE_BAD_POINTER, /* "{/a~2}" */
	URLTEMPLATE_BAD_SCOPE,   /* "{.id}", "{races.}": a stage or field missing around the dot */
	URLTEMPLATE_NO_MEMORY,
};

/* As urltemplate_parse(), and *fault says why it failed. */
RACED_MUST_CHECK
struct urltemplate *urltemplate_parse_fault(const char *text, enum urltemplate_fault *fault,
                                            char *err);
void urltemplate_free(struct urltemplate *t);

/* How many placeholders the template has (a root stage may have none). */
size_t urltemplate_placeholders(const struct urltemplate *t);
/* The i-th placeholder as written, without braces ("id", "/a/b",
 * "races.id"). */
const char *urltemplate_placeholder(const struct urltemplate *t, size_t i);
/* The stage the i-th placeholder names ("races" of "{races.id}"): its
 * length, *stage pointing at it (not NUL-terminated); 0 and NULL when it
 * names a field of the parent item ("{id}", "{/a.b}"). */
size_t urltemplate_scope(const struct urltemplate *t, size_t i, const char **stage);
/* The i-th placeholder's field: "id" of "{races.id}" and of "{id}", "/a/b"
 * of "{entries./a/b}". */
const char *urltemplate_field(const struct urltemplate *t, size_t i);

/* The value a placeholder's field (a name or a JSON pointer) names in
 * item of d, as expansion reads it; JSONDOC_ABSENT when d is NULL or there
 * is none. */
uint32_t urltemplate_lookup(const struct jsondoc *d, uint32_t item, const char *field);
/* Whether v is a value a URL takes: a string, number or boolean. */
bool urltemplate_is_value(const struct jsondoc *d, uint32_t v);
/* The text a URL takes of value v (urltemplate_is_value): a string
 * unescaped, a number as PostgreSQL prints it, true and false as words.
 * 0 with *out malloc'd (the caller frees it) and *len its length;
 * URLTEMPLATE_VALUE_TOO_LONG (*out NULL) when it would be
 * URLTEMPLATE_MAX_URL bytes or longer, which no URL can hold; -1 when out
 * of memory or v is no value. */
#define URLTEMPLATE_VALUE_TOO_LONG 1
RACED_MUST_CHECK
int urltemplate_value(const struct jsondoc *d, uint32_t v, char **out, size_t *len);
/* The member name nearest (edit distance) to what field names, for "did
 * you mean": the item's top-level names for a name, the names beside the
 * pointer's last token for a pointer.  0 with the name in out (n bytes),
 * or -1 when there is none (the object is missing or empty). */
int urltemplate_nearest(const struct jsondoc *d, uint32_t item, const char *field, char *out,
                        size_t n);

/* Fill the placeholders from the value item of d (d may be NULL when there
 * are none), each value as urltemplate_value() writes it.  Fails, naming
 * the template and the placeholder, when the item lacks the field, it is
 * not a scalar or its value alone is too long for a URL; naming the
 * template when the result exceeds URLTEMPLATE_MAX_URL. */
RACED_MUST_CHECK
int urltemplate_expand(const struct urltemplate *t, const struct jsondoc *d, uint32_t item,
                       char **out, char *err);

/* Where urltemplate_expand_args() takes a placeholder's value from. */
enum urltemplate_arg_kind {
	URLTEMPLATE_FROM_ITEM, /* its field of the parent item d */
	URLTEMPLATE_VALUE,     /* value[0..len), a scalar's text (an ancestor's field) */
	URLTEMPLATE_MISSING,   /* the ancestor's item has no scalar there: an error */
	URLTEMPLATE_TOO_LONG,  /* its value is longer than a URL may be: an error */
};
struct urltemplate_arg {
	enum urltemplate_arg_kind kind;
	const char *value;
	size_t len;
};

/* As urltemplate_expand(), but args (one per placeholder, or NULL: all
 * from the item) say where each value comes from.  On failure *missing
 * (optional) is the placeholder whose field the item lacks (absent, or
 * URLTEMPLATE_MISSING), SIZE_MAX for other failures. */
RACED_MUST_CHECK
int urltemplate_expand_args(const struct urltemplate *t, const struct jsondoc *d, uint32_t item,
                            const struct urltemplate_arg *args, char **out, size_t *missing,
                            char *err);

/* A named value for urltemplate_expand_named(); value NULL = none. */
struct urltemplate_value {
	const char *name;   /* as written between the braces: "last_success" */
	const char *value;  /* the text, percent-encoded as a field's would be */
};

/* Fill the placeholders from values (n of them; NULL when n is 0) instead
 * of a parent item, encoded as urltemplate_expand() encodes a field.
 * Fails, naming the template and the placeholder, when a placeholder has
 * no value (or a NULL one), a value is empty in the path, or the result
 * exceeds URLTEMPLATE_MAX_URL. */
RACED_MUST_CHECK
int urltemplate_expand_named(const struct urltemplate *t, const struct urltemplate_value *values, size_t n,
                             char **out, char *err);

#endif
