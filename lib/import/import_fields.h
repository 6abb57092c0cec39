/* import_fields — the fields of a stage's items its descendants' URLs
 * read: "{athlete_id}" in the athletes' url reads the entries' items'
 * athlete_id, "{races.id}" in a grandchild's the races' id.  An import
 * takes them from the items it makes (import_item.h, carried values); a
 * page answered 304 makes its items from the rows read back from the
 * stage table, and those rows need give back only these fields
 * (store_read_committed_fields), not the whole payload
 * (docs/architecture.md, "Reading state").  The daemon hands them to the
 * store when it makes it (store_conf.read_fields); the import reads the
 * narrow rows only when the store's fields hold every one it carries.
 *
 * Ownership: import_read_fields() allocates the whole set (the fields'
 * names copied); import_read_fields_free() frees it.
 */
#ifndef RACED_IMPORT_FIELDS_H
#define RACED_IMPORT_FIELDS_H

#include "config.h"
#include "error.h"
#include "store.h"

#include <stddef.h>

struct import_read_fields {
	/* per stage (n), NULL for a stage no other stage's URL reads from
	 * (it has no children): what store_conf.read_fields takes */
	const struct store_read_fields **per;
	size_t n;
};

/* The fields of each of the n stages (in order, parents first) that the
 * others' url templates read from its items; a stage with children and
 * none read has an entry of no field.  A template that does not parse,
 * or names no stage, is left out (the import refuses it).  NULL with err
 * when out of memory. */
RACED_MUST_CHECK
struct import_read_fields *import_read_fields(const struct stage_conf *stages, size_t n,
                                              char *err);
/* NULL is allowed. */
void import_read_fields_free(struct import_read_fields *rf);

#endif
