/* import_columns — see import_columns.h. */
#include "import_columns.h"

#include "jsondoc.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct import_columns {
	const struct config_column *cols;
	size_t n;
	struct jsondoc *doc;
	char **bufs;   /* n: this item's values */
};

struct import_columns *import_columns_new(const struct config_column *cols, size_t n)
{
	struct import_columns *ic = calloc(1, sizeof *ic);
	if (!ic)
		return NULL;
	ic->cols = cols;
	ic->n = n;
	ic->doc = jsondoc_new();
	ic->bufs = calloc(n ? n : 1, sizeof *ic->bufs);
	if (!ic->doc || !ic->bufs) {
		import_columns_free(ic);
		return NULL;
	}
	return ic;
}

static void bufs_clear(struct import_columns *ic)
{
	for (size_t i = 0; i < ic->n; i++) {
		free(ic->bufs[i]);
		ic->bufs[i] = NULL;
	}
}

void import_columns_free(struct import_columns *ic)
{
	if (!ic)
		return;
	if (ic->bufs)
		bufs_clear(ic);
	free(ic->bufs);
	jsondoc_free(ic->doc);
	free(ic);
}

/* ---- what fits ---- */

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

/* s is a JSON number; *exp gets its exponent (0 if none). */
static bool json_number(const char *s, long *exp)
{
	const char *p = s;
	*exp = 0;
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (digit(*p))
		while (digit(*p))
			p++;
	else
		return false;
	if (*p == '.') {
		p++;
		if (!digit(*p))
			return false;
		while (digit(*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		char *end;
		errno = 0;
		long e = strtol(p, &end, 10);
		if (end == p || !digit(*(*p == '+' || *p == '-' ? p + 1 : p)) || errno)
			return false;
		*exp = e;
		p = end;
	}
	return *p == '\0';
}

static bool integer(const char *s, int64_t lo, int64_t hi)
{
	const char *p = s + (*s == '-');
	if (!digit(*p))
		return false;
	for (const char *q = p; *q; q++)
		if (!digit(*q))
			return false;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0' && v >= lo && v <= hi;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* n digits at *p into *v, advancing. */
static bool digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!digit((*p)[i]))
			return false;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return true;
}

static bool date_at(const char **p)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, m, d;
	if (!digits(p, 4, &y) || *(*p)++ != '-' || !digits(p, 2, &m) || *(*p)++ != '-' ||
	    !digits(p, 2, &d))
		return false;
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && leap(y));
}

static bool timestamp(const char *s)
{
	const char *p = s;
	int h, mi, sec, zh, zm;
	if (!date_at(&p))
		return false;
	if (*p == '\0')
		return true;
	if (*p != 'T' && *p != ' ')
		return false;
	p++;
	if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || h > 23 || mi > 59)
		return false;
	if (*p == ':') {
		p++;
		if (!digits(&p, 2, &sec) || sec > 59)
			return false;
		if (*p == '.') {
			p++;
			if (!digit(*p))
				return false;
			while (digit(*p))
				p++;
		}
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if (*p == '+' || *p == '-') {
		p++;
		if (!digits(&p, 2, &zh) || zh > 15)
			return false;
		if (*p == ':')
			p++;
		if (*p == '\0')
			return true;
		return digits(&p, 2, &zm) && zm <= 59 && *p == '\0';
	}
	return *p == '\0';
}

bool import_columns_fits(enum config_column_kind kind, const char *s, bool from_number, char *why,
                         size_t n)
{
	long exp;
	(void)from_number;
	switch (kind) {
	case COLKIND_TEXT:
	case COLKIND_JSONB:
		return true;
	case COLKIND_INT4:
		if (integer(s, INT32_MIN, INT32_MAX))
			return true;
		snprintf(why, n, "not a whole number from -2147483648 to 2147483647");
		return false;
	case COLKIND_INT8:
		if (integer(s, INT64_MIN, INT64_MAX))
			return true;
		snprintf(why, n, "not a whole number within bigint's range");
		return false;
	case COLKIND_NUMERIC:
		if (json_number(s, &exp) && exp >= -1000 && exp <= 1000)
			return true;
		snprintf(why, n, "not a number (written as JSON writes one, exponent within +-1000)");
		return false;
	case COLKIND_FLOAT8: {
		if (json_number(s, &exp)) {
			errno = 0;
			double d = strtod(s, NULL);
			if (!(errno == ERANGE && (d == 0 || isinf(d))))
				return true;
		}
		snprintf(why, n, "not a number double precision holds");
		return false;
	}
	case COLKIND_BOOL:
		if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
			return true;
		snprintf(why, n, "not true or false");
		return false;
	case COLKIND_DATE: {
		const char *p = s;
		if (date_at(&p) && *p == '\0')
			return true;
		snprintf(why, n, "not a date YYYY-MM-DD");
		return false;
	}
	case COLKIND_TIMESTAMPTZ:
	case COLKIND_TIMESTAMP:
		if (timestamp(s))
			return true;
		snprintf(why, n, "not an ISO 8601 timestamp (YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM])");
		return false;
	}
	snprintf(why, n, "unknown type");
	return false;
}

/* ---- one item ---- */

/* A copy of [p, p + len) as a string; NULL when out of memory. */
static char *copy(const char *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

int import_columns_extract(struct import_columns *ic, const char *key, const char *text,
                           size_t len, const char **values, import_columns_bad_fn bad,
                           void *arg, char *err)
{
	bufs_clear(ic);
	for (size_t i = 0; i < ic->n; i++)
		values[i] = NULL;
	if (jsondoc_parse(ic->doc, text, len, JSONDOC_ANY, err) != 0)
		return -1;
	for (size_t i = 0; i < ic->n; i++) {
		const struct config_column *c = &ic->cols[i];
		uint32_t v = jsondoc_get(ic->doc, 0, c->pointer);
		enum jsondoc_type t = jsondoc_type(ic->doc, v);
		if (v == JSONDOC_ABSENT || t == JSONDOC_NULL)
			continue;
		bool container = t == JSONDOC_OBJECT || t == JSONDOC_ARRAY;
		char *s;
		if (c->kind == COLKIND_JSONB || (container && c->kind == COLKIND_TEXT)) {
			size_t tl;
			const char *tx = jsondoc_text(ic->doc, v, &tl);
			s = copy(tx, tl);
		} else if (container) {
			s = NULL;
		} else {
			s = jsondoc_scalar(ic->doc, v, NULL);
			if (!s)
				return err_set(err, "out of memory");
		}
		char why[128] = "an object or array";
		if (!s && !container)
			return err_set(err, "out of memory");
		if (!s || !import_columns_fits(c->kind, s, t == JSONDOC_NUMBER, why, sizeof why)) {
			size_t tl;
			const char *tx = jsondoc_text(ic->doc, v, &tl);
			char msg[ERR_MAX];
			snprintf(msg, sizeof msg, "key '%.64s%s': column %s (%s, %s): value %.*s%s does "
			         "not fit (%s); the row is stored with %s NULL", key,
			         strlen(key) > 64 ? "..." : "", c->name, c->type, c->pointer,
			         (int)(tl > 64 ? 64 : tl), tx, tl > 64 ? "..." : "", why, c->name);
			free(s);
			if (bad)
				bad(arg, i, msg);
			continue;
		}
		ic->bufs[i] = s;
		values[i] = s;
	}
	return 0;
}
