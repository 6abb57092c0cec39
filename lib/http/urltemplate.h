/* urltemplate — a stage's `url` setting: literal text with placeholders
 * filled from the parent item, "{name}" for a top-level field and
 * "{/a/b}" for a JSON pointer into the item; or, for the root stage, which
 * has no parent, from named values the caller gives
 * (urltemplate_expand_named: "{last_success}", "{cursor}").  Values (strings, integers,
 * reals, booleans) are percent-encoded, so "Zoë/2" becomes "Zo%C3%AB%2F2"
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
	URLTEMPLATE_NO_MEMORY,
};

/* As urltemplate_parse(), and *fault says why it failed. */
RACED_MUST_CHECK
struct urltemplate *urltemplate_parse_fault(const char *text, enum urltemplate_fault *fault,
                                            char *err);
void urltemplate_free(struct urltemplate *t);

/* How many placeholders the template has (a root stage may have none). */
size_t urltemplate_placeholders(const struct urltemplate *t);
/* The i-th placeholder as written, without braces ("id", "/a/b"). */
const char *urltemplate_placeholder(const struct urltemplate *t, size_t i);

/* Fill the placeholders from the value item of d (d may be NULL when there
 * are none).  Strings are unescaped, numbers used as written.  Fails,
 * naming the template and the placeholder, when the item lacks the field or
 * it is not a scalar, or the result exceeds URLTEMPLATE_MAX_URL. */
RACED_MUST_CHECK
int urltemplate_expand(const struct urltemplate *t, const struct jsondoc *d, uint32_t item,
                       char **out, char *err);

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
