/* linkheader — the "next" link of an HTTP Link header (RFC 8288).
 *
 * A Link header value holds comma-separated link-values:
 *   <uri>; rel="next last"; title="a, b", <uri2>; rel=next
 * linkheader_next() finds the target of the first link-value whose rel
 * parameter lists the relation type "next" (case-insensitive; rel quoted or
 * not, several space-separated types).  A link-value it cannot read is
 * skipped up to the next comma; a value that does not start with '<', or a
 * target without its '>', ends the search.  The target is returned as sent:
 * resolving it against the page's URL is the caller's business.
 *
 * Pure: no allocation, no I/O.  Ownership: the target points into the value
 * the caller passed and lives as long as it.
 */
#ifndef RACED_LINKHEADER_H
#define RACED_LINKHEADER_H

#include <stdbool.h>
#include <stddef.h>

/* value: len bytes, not necessarily NUL-terminated.  true with *target and
 * *target_len when a next link is there; false (outputs untouched) if not. */
bool linkheader_next(const char *value, size_t len, const char **target, size_t *target_len);

#endif
