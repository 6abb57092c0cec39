/* import_columns: what fits each type (a strict subset of what
 * PostgreSQL's casts take), and one item's values with a bad one named. */
#include "check.h"

#include "import_columns.h"

#include <stdlib.h>
#include <string.h>

static bool fits(enum config_column_kind k, const char *s)
{
	char why[128];
	return import_columns_fits(k, s, false, why, sizeof why);
}

static void test_integers_in_range_only(void)
{
	CHECK(fits(COLKIND_INT4, "0"));
	CHECK(fits(COLKIND_INT4, "-2147483648"));
	CHECK(fits(COLKIND_INT4, "2147483647"));
	CHECK(!fits(COLKIND_INT4, "2147483648"));
	CHECK(!fits(COLKIND_INT4, "1.5"));
	CHECK(!fits(COLKIND_INT4, "1e3"));
	CHECK(!fits(COLKIND_INT4, ""));
	CHECK(!fits(COLKIND_INT4, "-"));
	CHECK(!fits(COLKIND_INT4, " 1"));
	CHECK(!fits(COLKIND_INT4, "not-a-number"));
	CHECK(fits(COLKIND_INT8, "9223372036854775807"));
	CHECK(!fits(COLKIND_INT8, "9223372036854775808"));
}

static void test_numbers_as_json_writes_them(void)
{
	CHECK(fits(COLKIND_NUMERIC, "-12.50e+3"));
	CHECK(fits(COLKIND_NUMERIC, "0.001"));
	CHECK(!fits(COLKIND_NUMERIC, "1e1001"));
	CHECK(!fits(COLKIND_NUMERIC, "NaN"));
	CHECK(!fits(COLKIND_NUMERIC, ".5"));
	CHECK(!fits(COLKIND_NUMERIC, "01"));
	CHECK(fits(COLKIND_FLOAT8, "1.7e308"));
	CHECK(fits(COLKIND_FLOAT8, "4e-320"));   /* subnormal: PostgreSQL takes it */
	CHECK(!fits(COLKIND_FLOAT8, "1e309"));
	CHECK(!fits(COLKIND_FLOAT8, "1e-400"));
	CHECK(!fits(COLKIND_FLOAT8, "Infinity"));
}

static void test_booleans_dates_and_timestamps(void)
{
	CHECK(fits(COLKIND_BOOL, "true") && fits(COLKIND_BOOL, "false"));
	CHECK(!fits(COLKIND_BOOL, "yes"));
	CHECK(fits(COLKIND_DATE, "2024-02-29"));
	CHECK(!fits(COLKIND_DATE, "2023-02-29"));
	CHECK(!fits(COLKIND_DATE, "2024-13-01"));
	CHECK(!fits(COLKIND_DATE, "0000-01-01"));
	CHECK(!fits(COLKIND_DATE, "2024-1-01"));
	CHECK(!fits(COLKIND_DATE, "2024-01-01T00:00:00Z"));
	CHECK(fits(COLKIND_TIMESTAMPTZ, "2024-01-01"));
	CHECK(fits(COLKIND_TIMESTAMPTZ, "2024-01-01T10:20Z"));
	CHECK(fits(COLKIND_TIMESTAMPTZ, "2024-01-01 10:20:30.123456+02:00"));
	CHECK(fits(COLKIND_TIMESTAMPTZ, "2024-01-01T10:20:30-0530"));
	CHECK(fits(COLKIND_TIMESTAMPTZ, "2024-01-01T23:59:59+15"));
	CHECK(!fits(COLKIND_TIMESTAMPTZ, "2024-01-01T24:00:00Z"));
	CHECK(!fits(COLKIND_TIMESTAMPTZ, "2024-01-01T10:60Z"));
	CHECK(!fits(COLKIND_TIMESTAMPTZ, "2024-01-01T10:20:30+16:00"));
	CHECK(!fits(COLKIND_TIMESTAMPTZ, "2024-01-01T10:20:30.Z"));
	CHECK(!fits(COLKIND_TIMESTAMPTZ, "1700000000"));
	CHECK(!fits(COLKIND_TIMESTAMPTZ, "yesterday"));
	CHECK(fits(COLKIND_TIMESTAMP, "2024-01-01T10:20:30"));
	CHECK(fits(COLKIND_TEXT, "") && fits(COLKIND_JSONB, "{}"));
}

static const char *last_bad;
static size_t n_bad;
static void on_bad(void *arg, size_t column, const char *message)
{
	(void)arg;
	(void)column;
	n_bad++;
	free((void *)last_bad);
	last_bad = strdup(message);
}

static void test_an_items_values_and_a_bad_one(void)
{
	struct config_column cols[] = {
		{ "bib", "integer", COLKIND_INT4, "/bib", false },
		{ "name", "text", COLKIND_TEXT, "/who/name", false },
		{ "start", "timestamp with time zone", COLKIND_TIMESTAMPTZ, "/start", false },
		{ "tags", "jsonb", COLKIND_JSONB, "/tags", false },
		{ "gone", "integer", COLKIND_INT4, "/absent", false },
		{ "nothing", "date", COLKIND_DATE, "/null", false },
		{ "obj", "text", COLKIND_TEXT, "/who", false },
	};
	struct import_columns *ic = import_columns_new(cols, 7);
	CHECK(ic != NULL);
	if (!ic)
		return;
	const char *values[7];
	char err[ERR_MAX];
	const char *item = "{\"bib\": 12, \"who\": {\"name\": \"Zo\\u00eb\"}, \"start\": \"2024-05-01T09:00:00Z\","
	                   " \"tags\": [1, \"a\"], \"null\": null}";
	CHECK_EQ(import_columns_extract(ic, "k1", item, strlen(item), values, on_bad, NULL, err), 0);
	CHECK_STR(values[0], "12");
	CHECK_STR(values[1], "Zo\xc3\xab");
	CHECK_STR(values[2], "2024-05-01T09:00:00Z");
	CHECK_STR(values[3], "[1, \"a\"]");
	CHECK(values[4] == NULL && values[5] == NULL);
	CHECK_STR(values[6], "{\"name\": \"Zo\\u00eb\"}");
	CHECK_EQ(n_bad, 0u);
	const char *bad = "{\"bib\": \"x12\", \"start\": \"tomorrow\"}";
	CHECK_EQ(import_columns_extract(ic, "k2", bad, strlen(bad), values, on_bad, NULL, err), 0);
	CHECK(values[0] == NULL && values[2] == NULL);
	CHECK_EQ(n_bad, 2u);
	CHECK_STR(last_bad, "key 'k2': column start (timestamp with time zone, /start): value "
	                    "\"tomorrow\" does not fit (not an ISO 8601 timestamp "
	                    "(YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM])); the row is stored with start NULL");
	CHECK_EQ(import_columns_extract(ic, "k3", "{", 1, values, on_bad, NULL, err), -1);
	free((void *)last_bad);
	import_columns_free(ic);
}

int main(void)
{
	RUN(test_integers_in_range_only);
	RUN(test_numbers_as_json_writes_them);
	RUN(test_booleans_dates_and_timestamps);
	RUN(test_an_items_values_and_a_bad_one);
	return CHECK_DONE();
}
