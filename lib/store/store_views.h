/* store_views — the comments on the stage and link tables, and the views
 * raced keeps over them (docs/data-model.md): one per stage of its current
 * items (`<stage>_current`) and one per path from the root to each leaf
 * joining the stages by their edges (`races_entries_athletes`).  Internal
 * to the store: the set-up chain runs the statement built here after the
 * stage tables are set up (store_schema.c).
 *
 * The statement is one DO block, so it is one step of the set-up op's
 * transaction and reads the catalog where the tables are: the views'
 * columns are the stage tables' columns as they are then (typed columns
 * included, stage-prefixed in a path view), whoever added them.  A view
 * is created, or dropped and created again, only when its definition
 * changed (its md5 is kept in its comment, which starts "raced: "); a
 * comment is written only when it differs.  An object of a view's name
 * that raced did not make refuses the set-up (nothing of the user's is
 * dropped); a raced view that others depend on is left as it is, with a
 * warning.  Views raced made for stages no longer configured are dropped.
 *
 * Ownership: the string returned is the caller's.
 */
#ifndef RACED_STORE_VIEWS_H
#define RACED_STORE_VIEWS_H

#include "store_schema.h"

#include <stddef.h>

/* The names of stage i's views: its current view always; its path view
 * (the root's path down to i) only when i is a leaf below the root.
 * STORE_VIEW_NAME_MAX bytes each, "" for none. */
#define STORE_VIEW_NAME_MAX 64
void store_views_names(const struct store_table_sql *tables, size_t n, size_t i,
                       char current[STORE_VIEW_NAME_MAX], char path[STORE_VIEW_NAME_MAX]);

/* The DO block for these tables, or NULL when out of memory. */
char *store_views_sql(const struct store_table_sql *tables, size_t n);

#endif
