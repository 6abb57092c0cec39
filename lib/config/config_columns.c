/* config_columns — see config_columns.h. */
#include "config_columns.h"

#include "jsonptr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct type_def {
	const char *spelling;      /* as raced.conf may write it */
	const char *pg;            /* as format_type() writes it */
	enum config_column_kind kind;
};

static const struct type_def types[] = {
	{ "text", "text", COLKIND_TEXT },
	{ "int", "integer", COLKIND_INT4 },
	{ "integer", "integer", COLKIND_INT4 },
	{ "int4", "integer", COLKIND_INT4 },
	{ "bigint", "bigint", COLKIND_INT8 },
	{ "int8", "bigint", COLKIND_INT8 },
	{ "numeric", "numeric", COLKIND_NUMERIC },
	{ "double precision", "double precision", COLKIND_FLOAT8 },
	{ "float8", "double precision", COLKIND_FLOAT8 },
	{ "boolean", "boolean", COLKIND_BOOL },
	{ "bool", "boolean", COLKIND_BOOL },
	{ "date", "date", COLKIND_DATE },
	{ "timestamptz", "timestamp with time zone", COLKIND_TIMESTAMPTZ },
	{ "timestamp with time zone", "timestamp with time zone", COLKIND_TIMESTAMPTZ },
	{ "timestamp", "timestamp without time zone", COLKIND_TIMESTAMP },
	{ "timestamp without time zone", "timestamp without time zone", COLKIND_TIMESTAMP },
	{ "jsonb", "jsonb", COLKIND_JSONB },
};

const char config_column_types[] =
	"text, int (integer, int4), bigint (int8), numeric, double precision (float8), "
	"boolean (bool), date, timestamptz (timestamp with time zone), timestamp, jsonb";

/* raced's own columns of every stage table. */
static const char *const reserved[] = {
	"key", "parent_key", "payload", "first_import", "last_import", "updated_at",
	"removed_import", NULL,
};

static const char example[] = "e.g. columns = bib int /bib, start_time timestamptz /start_time";

void config_columns_free(struct config_column *cols, size_t n)
{
	for (size_t i = 0; cols && i < n; i++) {
		free(cols[i].name);
		free(cols[i].pointer);
	}
	free(cols);
}

static bool name_valid(const char *s, size_t len)
{
	if (len == 0 || len > CONFIG_COLUMN_NAME_MAX || !(islower((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* [s, e) without surrounding blanks. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* The type [s, e) with its inner blanks squeezed to one; NULL if unknown. */
static const struct type_def *type_find(const char *s, const char *e)
{
	char buf[64];
	size_t n = 0;
	for (const char *p = s; p < e; p++) {
		char ch = (char)tolower((unsigned char)*p);
		if (isspace((unsigned char)ch)) {
			if (n && buf[n - 1] == ' ')
				continue;
			ch = ' ';
		}
		if (n + 1 >= sizeof buf)
			return NULL;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(buf, types[i].spelling) == 0)
			return &types[i];
	return NULL;
}

/* One "NAME TYPE /POINTER" entry [s, e) into c. */
static int parse_entry(const char *s, const char *e, size_t k, struct config_column *c,
                       char *msg, size_t len)
{
	trim(&s, &e);
	const char *name_end = s;
	while (name_end < e && !isspace((unsigned char)*name_end))
		name_end++;
	const char *ptr = e;
	while (ptr > name_end && !isspace((unsigned char)ptr[-1]))
		ptr--;
	if (s == e)
		return snprintf(msg, len, "entry %zu is empty (%s)", k + 1, example), -1;
	if (ptr == name_end || *ptr != '/')
		return snprintf(msg, len, "entry %zu '%.*s' is not NAME TYPE /POINTER (%s)", k + 1,
		                (int)(e - s), s, example), -1;
	size_t nlen = (size_t)(name_end - s);
	if (!name_valid(s, nlen))
		return snprintf(msg, len, "column name '%.*s' is not valid: lowercase letters, digits "
		                "and '_', starting with a letter or '_', at most %d characters",
		                (int)nlen, s, CONFIG_COLUMN_NAME_MAX), -1;
	for (size_t i = 0; reserved[i]; i++)
		if (strlen(reserved[i]) == nlen && memcmp(reserved[i], s, nlen) == 0)
			return snprintf(msg, len, "column name '%s' is one of raced's own columns (key, "
			                "parent_key, payload, first_import, last_import, updated_at, "
			                "removed_import): choose another name, e.g. %s_value", reserved[i],
			                reserved[i]), -1;
	const char *ts = name_end, *te = ptr;
	trim(&ts, &te);
	const struct type_def *t = type_find(ts, te);
	if (!t)
		return snprintf(msg, len, "column %.*s: type '%.*s' is not supported (use one of: %s)",
		                (int)nlen, s, (int)(te - ts), ts, config_column_types), -1;
	size_t plen = (size_t)(e - ptr);
	c->name = strndup(s, nlen);
	c->pointer = strndup(ptr, plen);
	if (!c->name || !c->pointer)
		return snprintf(msg, len, "out of memory"), -1;
	if (!jsonptr_valid(c->pointer) || plen < 2)
		return snprintf(msg, len, "column %s: '%s' is not a valid JSON pointer (a '/' and a "
		                "field name, e.g. /bib; '~' must be followed by 0 or 1)", c->name,
		                c->pointer), -1;
	c->type = t->pg;
	c->kind = t->kind;
	return 0;
}

int config_columns_parse(const char *spec, struct config_column **out, size_t *n, char *msg,
                         size_t len)
{
	*out = NULL;
	*n = 0;
	const char *s = spec, *e = spec + strlen(spec);
	trim(&s, &e);
	if (s == e)
		return 0;
	struct config_column *cols = calloc(CONFIG_COLUMNS_MAX, sizeof *cols);
	if (!cols)
		return snprintf(msg, len, "out of memory"), -1;
	size_t k = 0;
	for (const char *p = s; p <= e; k++) {
		const char *comma = memchr(p, ',', (size_t)(e - p));
		const char *end = comma ? comma : e;
		if (k == CONFIG_COLUMNS_MAX) {
			snprintf(msg, len, "more than %d columns", CONFIG_COLUMNS_MAX);
			goto fail;
		}
		if (parse_entry(p, end, k, &cols[k], msg, len) < 0) {
			k++;
			goto fail;
		}
		for (size_t i = 0; i < k; i++)
			if (strcmp(cols[i].name, cols[k].name) == 0) {
				snprintf(msg, len, "column %s is named twice (entries %zu and %zu)",
				         cols[k].name, i + 1, k + 1);
				k++;
				goto fail;
			}
		p = end + 1;
	}
	*out = cols;
	*n = k;
	return 0;
fail:
	config_columns_free(cols, k);
	return -1;
}

int config_columns_index(const char *spec, struct config_column *cols, size_t n, char *msg,
                         size_t len)
{
	const char *e = spec + strlen(spec);
	for (const char *p = spec; p <= e;) {
		const char *comma = memchr(p, ',', (size_t)(e - p));
		const char *s = p, *end = comma ? comma : e;
		p = end + 1;
		trim(&s, &end);
		if (s == end && !comma && s == spec + strspn(spec, " \t"))
			return 0;   /* an empty value: no index */
		size_t nlen = (size_t)(end - s);
		size_t i = 0;
		while (i < n && !(strlen(cols[i].name) == nlen && memcmp(cols[i].name, s, nlen) == 0))
			i++;
		if (i == n)
			return snprintf(msg, len, "'%.*s' is not a column of this stage (index names "
			                "columns of `columns`, e.g. index = %s)", (int)nlen, s,
			                n ? cols[0].name : "athlete_id"), -1;
		if (cols[i].indexed)
			return snprintf(msg, len, "column %s is named twice", cols[i].name), -1;
		cols[i].indexed = true;
	}
	return 0;
}
