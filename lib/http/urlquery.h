/* urlquery — one query parameter of a URL read or set, for the paging
 * styles that compute the next page's URL (offset, page number, cursor):
 * the page's own URL with one parameter set, every other one kept as it
 * was, in its place.
 *
 * A URL is split as RFC 3986 says: the query runs from the first '?' to
 * the first '#' after it; parameters are separated by '&' (empty ones are
 * kept as they are).  A parameter matches when its name, percent-decoded,
 * equals the name asked for.  Values are percent-encoded on the way in
 * (everything but RFC 3986's unreserved characters) and decoded on the way
 * out ('+' is a plus: it is what raced itself writes for none).
 *
 * Pure: no I/O, no libcurl.  Ownership: the strings returned are
 * malloc'd and the caller's; the inputs are only read.
 */
#ifndef RACED_URLQUERY_H
#define RACED_URLQUERY_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether name may name a query parameter in raced.conf: 1 to
 * URLQUERY_NAME_MAX characters of RFC 3986's unreserved set or '[', ']'
 * (page[number]): written into URLs as they are. */
#define URLQUERY_NAME_MAX 64
bool urlquery_name_valid(const char *name);

/* The decoded value of the last parameter `name` of url's query, malloc'd
 * in *value; *value NULL when there is none.  -ENOMEM, or -EINVAL when
 * its value decodes to a NUL byte or holds a bad '%' escape (err says
 * which parameter). */
RACED_MUST_CHECK
int urlquery_get(const char *url, const char *name, char **value, char *err);

/* url with parameter name set to value (percent-encoded) in *out,
 * malloc'd: the first parameter of that name replaced, any later ones
 * dropped, a new one appended when there is none; the rest of the URL as
 * it was.  -ENOMEM with err. */
RACED_MUST_CHECK
int urlquery_set(const char *url, const char *name, const char *value, char **out, char *err);

#endif
