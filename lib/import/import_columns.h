/* import_columns — one item's values for its stage's typed columns
 * (config_columns.h): each column's pointer followed in the item's JSON and
 * the value checked to fit the column's type before the store casts it in
 * SQL, so that a value that does not fit is an error for that item (the
 * caller records it in import_errors) and a NULL in its column, never a
 * batch PostgreSQL refuses.
 *
 * What fits (a strict subset of what PostgreSQL's input functions take,
 * so that a value passed never fails its cast; docs/data-model.md):
 *   text      a string (unescaped), number (as written), true/false, or an
 *             object/array (its JSON text as sent)
 *   integer, bigint   a number or string of digits with an optional '-',
 *             in range
 *   numeric   a number, or a string written as a JSON number, exponent
 *             within +-1000
 *   double precision  likewise, not overflowing (nor underflowing to 0)
 *   boolean   true/false, or the strings "true"/"false"
 *   date      a string YYYY-MM-DD, a real day of years 1-9999
 *   timestamptz, timestamp   a string: the date, then optionally 'T' or ' ',
 *             HH:MM[:SS[.fraction]] and a zone Z, +HH, +HH:MM or +HHMM
 *             (hours 0-23, offsets up to 15:59); without a zone,
 *             timestamptz takes the connection's TimeZone
 *   jsonb     any value (its JSON text)
 * An absent field or JSON null is NULL and no error.
 *
 * Ownership: an import_columns borrows the columns (the config outlives
 * it) and owns its document and value buffers; the values of one
 * import_columns_extract() are valid until the next.
 */
#ifndef RACED_IMPORT_COLUMNS_H
#define RACED_IMPORT_COLUMNS_H

#include "config_columns.h"
#include "error.h"

#include <stdbool.h>
#include <stddef.h>

struct import_columns;

/* NULL when out of memory. */
RACED_MUST_CHECK
struct import_columns *import_columns_new(const struct config_column *cols, size_t n);
void import_columns_free(struct import_columns *ic);

/* A bad value: column index, and a message naming key, column, type,
 * pointer and value. */
typedef void (*import_columns_bad_fn)(void *arg, size_t column, const char *message);

/* values[i] (n of the columns) for the item key with JSON text[0..len):
 * a NUL-terminated string for the store, or NULL (absent, null, or a bad
 * value, reported through bad).  Returns 0, or -1 with err when out of
 * memory or the text is not JSON. */
RACED_MUST_CHECK
int import_columns_extract(struct import_columns *ic, const char *key, const char *text,
                           size_t len, const char **values, import_columns_bad_fn bad,
                           void *arg, char *err);

/* Whether s (a scalar's text: a string unescaped, a number as written)
 * fits kind; from_number: it was a JSON number.  why (n bytes) says why
 * not.  Exposed for tests. */
bool import_columns_fits(enum config_column_kind kind, const char *s, bool from_number, char *why,
                         size_t n);

#endif
