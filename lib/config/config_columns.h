/* config_columns — a stage's typed columns: `columns = NAME TYPE /POINTER,
 * ...` and `index = NAME, ...` parsed and checked (pure).
 *
 * A column is a PostgreSQL column of the stage's table that raced fills
 * from the item's JSON at POINTER (docs/data-model.md).  TYPE is
 * one of the list below (config_column_types), written as in raced.conf
 * (int, timestamptz, "double precision") and kept in the spelling
 * PostgreSQL's format_type() gives it (integer, timestamp with time zone),
 * so that the store compares it with the catalog as text.  NAME is
 * [a-z_][a-z0-9_]* (no quoting needed, never one of raced's own columns),
 * at most CONFIG_COLUMN_NAME_MAX bytes.
 *
 * Ownership: config_columns_parse() allocates the array and its strings;
 * config_columns_free() releases them.
 */
#ifndef RACED_CONFIG_COLUMNS_H
#define RACED_CONFIG_COLUMNS_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_COLUMNS_MAX 32       /* typed columns a stage may have */
#define CONFIG_COLUMN_NAME_MAX 48   /* bytes of a column's name */

/* How the import checks a value before it is cast (import_columns.c). */
enum config_column_kind {
	COLKIND_TEXT,
	COLKIND_INT4,
	COLKIND_INT8,
	COLKIND_NUMERIC,
	COLKIND_FLOAT8,
	COLKIND_BOOL,
	COLKIND_DATE,
	COLKIND_TIMESTAMPTZ,
	COLKIND_TIMESTAMP,
	COLKIND_JSONB,
};

struct config_column {
	char *name;
	const char *type;          /* static: PostgreSQL's spelling (format_type) */
	enum config_column_kind kind;
	char *pointer;             /* a JSON pointer, "/..." */
	bool indexed;              /* named by `index` */
};

/* The types `columns` accepts, as a human list for messages and docs. */
extern const char config_column_types[];

/* Parse spec into *out (n of them; none for an empty spec).  Returns 0, or
 * -1 with msg (len bytes) saying which entry is wrong and how to write it. */
int config_columns_parse(const char *spec, struct config_column **out, size_t *n, char *msg,
                         size_t len);
/* Mark the columns `index` names.  -1 with msg: a name that is no column
 * of cols, or named twice. */
int config_columns_index(const char *spec, struct config_column *cols, size_t n, char *msg,
                         size_t len);
void config_columns_free(struct config_column *cols, size_t n);

#endif
