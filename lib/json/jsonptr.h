/* jsonptr — RFC 6901 JSON pointer syntax ("/data", "/a/0/b", "~0" for '~'
 * and "~1" for '/').
 *
 * The configuration names where a page's items, its next link and an
 * item's key live with pointers; config checks them with jsonptr_valid()
 * and jsondoc_get() follows them through a document with the token helpers.
 *
 * Ownership: nothing is allocated; tokens are unescaped into the caller's
 * buffer of JSONPTR_TOKEN_MAX bytes.
 */
#ifndef RACED_JSONPTR_H
#define RACED_JSONPTR_H

#include <stdbool.h>
#include <stddef.h>

/* A reference token longer than this cannot name anything a provider sends
 * in practice; it is treated as absent rather than allocated. */
#define JSONPTR_TOKEN_MAX 256

/* true when ptr is "" or a syntactically valid pointer ('/' first, every
 * '~' followed by '0' or '1'). */
bool jsonptr_valid(const char *ptr);

/* Unescape the reference token at *pp (up to the next '/' or the end) into
 * tok and advance *pp.  Returns its length, or -1 if it does not fit or
 * holds a bad escape. */
int jsonptr_token(const char **pp, char *tok);

/* An array index per RFC 6901: "0" or digits without a leading zero. */
bool jsonptr_index(const char *tok, size_t len, size_t *out);

#endif
