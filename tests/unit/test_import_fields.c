/* Unit tests for import_fields: the fields each stage's items give its
 * descendants' URLs — a child's own placeholders name its parent's, a
 * scoped one ({races.id}) its ancestor's, each field once a stage; a stage
 * with children and none read has an entry of no field, a leaf none. */
#include "import_fields.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

static bool has(const struct store_read_fields *rf, const char *field)
{
	for (size_t i = 0; rf && i < rf->n; i++)
		if (strcmp(rf->fields[i], field) == 0)
			return true;
	return false;
}

static void test_fields_by_stage(void)
{
	struct stage_conf st[5] = {
		{ .name = "races", .url = "/races" },
		{ .name = "entries", .parent = "races", .url = "/races/{id}/entries?y={/meta/year}" },
		{ .name = "athletes", .parent = "entries", .url = "/athletes/{athlete_id}?r={races.id}" },
		{ .name = "splits", .parent = "entries", .url = "/splits/{id}/{races./meta/year}" },
		{ .name = "static", .parent = "athletes", .url = "/fixed" },
	};
	char err[ERR_MAX] = "";
	struct import_read_fields *rf = import_read_fields(st, 5, err);
	CHECK(rf != NULL);
	if (!rf)
		return;
	CHECK_EQ(rf->n, 5);
	const struct store_read_fields *races = rf->per[0], *entries = rf->per[1];
	CHECK(races && races->n == 2 && has(races, "id") && has(races, "/meta/year"));
	CHECK(entries && entries->n == 2 && has(entries, "athlete_id") && has(entries, "id"));
	CHECK(entries && entries->value_max > 0);
	/* children, none of whose URLs reads a field */
	CHECK(rf->per[2] != NULL && rf->per[2]->n == 0);
	/* leaves */
	CHECK(rf->per[3] == NULL);
	CHECK(rf->per[4] == NULL);
	import_read_fields_free(rf);
	import_read_fields_free(NULL);
}

int main(void)
{
	RUN(test_fields_by_stage);
	return CHECK_DONE();
}
