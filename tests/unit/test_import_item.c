/* Unit tests for import_item: what an item carries for its descendants'
 * URLs (ancestors' values) is copied into its one allocation, read back
 * value by value, and charged to the memory budget once, on top of its
 * row's two copies. */
#include "check.h"
#include "import_item.h"
#include "jsondoc.h"
#include "membudget.h"

#include <string.h>

static void test_carried_values_are_copied_and_read_back(void)
{
	char err[ERR_MAX];
	struct jsondoc *d = jsondoc_new();
	const char *page = "{\"id\":\"e1\",\"bib\":7}";
	CHECK(d && jsondoc_parse(d, page, strlen(page), JSONDOC_ANY, err) == 0);
	char race[] = "42", nul[] = {'a', '\0', 'b'};
	struct import_carry in[] = {
		{.state = IMPORT_CARRY_VALUE, .value = race, .len = 2},
		{.state = IMPORT_CARRY_ABSENT},
		{.state = IMPORT_CARRY_VALUE, .value = nul, .len = 3},
		{.state = IMPORT_CARRY_TOO_LONG},
		{.state = IMPORT_CARRY_VALUE, .value = "", .len = 0},
	};
	size_t before = membudget_charged();
	struct import_item *it = import_item_new(d, 0, jsondoc_get(d, 0, "/id"), "r1", in, 5);
	CHECK(it != NULL);
	race[0] = 'X'; /* copied, not borrowed */
	CHECK_STR(it->key, "e1");
	CHECK_STR(it->parent_key, "r1");
	CHECK_EQ(it->n_carried, 5);
	struct import_carry c;
	import_item_carried(it, 0, &c);
	CHECK(c.state == IMPORT_CARRY_VALUE && c.len == 2 && memcmp(c.value, "42", 2) == 0);
	import_item_carried(it, 1, &c);
	CHECK(c.state == IMPORT_CARRY_ABSENT && c.len == 0);
	import_item_carried(it, 2, &c);
	CHECK(c.state == IMPORT_CARRY_VALUE && c.len == 3 && memcmp(c.value, nul, 3) == 0);
	import_item_carried(it, 3, &c);
	CHECK(c.state == IMPORT_CARRY_TOO_LONG);
	import_item_carried(it, 4, &c);
	CHECK(c.state == IMPORT_CARRY_VALUE && c.len == 0);
	/* text and keys twice (the store's row), the carried values once */
	size_t row = strlen("e1") + 1 + strlen("r1") + 1 + strlen(page) + 1;
	size_t carried = 5 * (1 + sizeof(uint32_t)) + 2 + 3;
	CHECK_EQ(it->charge, sizeof *it + IMPORT_ITEM_OVERHEAD + 2 * row + carried);
	CHECK_EQ(membudget_charged() - before, it->charge);

	/* Read back from the table: the same values, the row charged once. */
	struct import_item *cp = import_item_copy("e1", NULL, page, strlen(page), in, 2);
	CHECK(cp != NULL && cp->unchanged && cp->n_carried == 2);
	import_item_carried(cp, 0, &c);
	CHECK(c.state == IMPORT_CARRY_VALUE && c.len == 2 && memcmp(c.value, "X2", 2) == 0);
	CHECK_EQ(cp->charge, sizeof *cp + IMPORT_ITEM_OVERHEAD + 3 + strlen(page) + 1 +
	                     2 * (1 + sizeof(uint32_t)) + 2);
	CHECK_STR(cp->text, page);
	import_item_free(cp);
	import_item_free(it);
	CHECK_EQ(membudget_charged(), before);

	/* Nothing carried: as before. */
	it = import_item_new(d, 0, jsondoc_get(d, 0, "/bib"), NULL, NULL, 0);
	CHECK(it != NULL && it->n_carried == 0);
	CHECK_STR(it->key, "7");
	import_item_free(it);
	jsondoc_free(d);
}

int main(void)
{
	RUN(test_carried_values_are_copied_and_read_back);
	return CHECK_DONE();
}
