/* jsonptr — RFC 6901 JSON pointers over jansson values ("/data",
 * "/a/0/b", "~0" for '~' and "~1" for '/').
 *
 * The configuration names where a page's items, its next link and an
 * item's key live with pointers; jansson has no pointer support of its own.
 *
 * Ownership: jsonptr_get() returns a borrowed reference into doc (or NULL);
 * nothing is allocated.
 */
#ifndef RACED_JSONPTR_H
#define RACED_JSONPTR_H

#include <jansson.h>
#include <stdbool.h>

/* The value at ptr, or NULL when it does not exist.  "" is doc itself. */
json_t *jsonptr_get(json_t *doc, const char *ptr);

/* true when ptr is "" or a syntactically valid pointer ('/' first, every
 * '~' followed by '0' or '1'). */
bool jsonptr_valid(const char *ptr);

#endif
