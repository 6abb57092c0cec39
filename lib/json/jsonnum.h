/* jsonnum — a JSON number's text as PostgreSQL's numeric type prints it,
 * which is how jsonb gives a number back (`->>`, `::text`): the exact
 * value, no exponent, no leading zeros, no sign on a zero, and as many
 * digits after the point as the text had less its exponent (none when
 * that is negative): 1e3 is 1000, 0.10e1 is 1.0, 1.5e-3 is 0.0015, -0.0
 * is 0.0, 1.50 stays 1.50.  A child's URL is made from its parent's
 * fields, after a 200 from the provider's text and after a 304 from
 * jsonb's; writing numbers this way makes both the same URL
 * (docs/architecture.md, "Fields of ancestors").
 *
 * Ownership: nothing is allocated; the caller gives the buffer.
 */
#ifndef RACED_JSONNUM_H
#define RACED_JSONNUM_H

#include <stddef.h>

/* What jsonnum_canon() returns for text that is not a JSON number. */
#define JSONNUM_INVALID ((size_t)-1)

/* The length of the form of the number text[0..n) (RFC 8259's grammar,
 * nothing around it), written NUL-terminated into out when it is shorter
 * than cap (out may be NULL when cap is 0), as snprintf() does.  An
 * exponent's magnitude counts as at most 10^9, so a length that big or
 * bigger means "huge" (none fits a URL).  JSONNUM_INVALID, out untouched,
 * when the text is not a number. */
size_t jsonnum_canon(const char *text, size_t n, char *out, size_t cap);

#endif
