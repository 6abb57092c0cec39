/* Unit tests for config_check: the checks over the whole pipeline, run on
 * a struct config built by hand (no file, no loader), so each test states
 * one rule and asserts the exact fault: which stage, which key, what text.
 * The loader's side (file, line, section) is test_config's. */
#include "check.h"
#include "config_check.h"

#include <stdbool.h>

static struct provider_conf providers[] = {
	{.name = "main", .base_url = "https://api.example.com/v1"},
	{.name = "people", .base_url = "https://people.example.org"},
};

#define ROOT(n, u) {.name = n, .provider = "main", .url = u, .line = 1}
#define CHILD(n, p, u) {.name = n, .parent = p, .provider = "main", .url = u, .line = 1}

/* A configuration over stages[0..n) and both providers. */
static struct config pipeline(struct stage_conf *stages, size_t n)
{
	return (struct config){.providers = providers, .n_providers = 2, .stages = stages, .n_stages = n};
}

/* Checking c fails at stage `stage`, key `key`, with exactly msg. */
static bool faults(const struct config *c, size_t stage, const char *key, const char *msg)
{
	struct config_fault f = {.stage = 99, .key = "unset"};
	bool ok = config_check_pipeline(c, &f) == -1 && f.stage == stage &&
	          (f.key == key || (f.key && key && strcmp(f.key, key) == 0)) && strcmp(f.msg, msg) == 0;
	if (!ok)
		fprintf(stderr, "  got stage %zu key %s: %s\n  want stage %zu key %s: %s\n", f.stage,
		        f.key ? f.key : "(null)", f.msg, stage, key ? key : "(null)", msg);
	return ok;
}

static void test_a_pipeline_needs_a_stage(void)
{
	struct config c = pipeline(NULL, 0);
	CHECK(faults(&c, CONFIG_FAULT_NO_STAGE, NULL, "no [stage NAME] section: a pipeline needs at least one stage"));
}

static void test_a_valid_tree_passes(void)
{
	struct stage_conf st[] = {ROOT("races", "/races"), CHILD("entries", "races", "/races/{id}/entries"),
	                          CHILD("athletes", "entries", "https://people.example.org/a/{/athlete/id}")};
	struct config c = pipeline(st, 3);
	struct config_fault f;
	CHECK_EQ(config_check_pipeline(&c, &f), 0);
}

static void test_undefined_provider_is_named_on_the_provider_key(void)
{
	struct stage_conf st[] = {ROOT("races", "/races")};
	struct config c = pipeline(st, 1);
	st[0].provider = "mian";
	CHECK(faults(&c, 0, "provider", "provider 'mian' is not defined (did you mean 'main'?)"));
	st[0].provider = "zzz";
	CHECK(faults(&c, 0, "provider", "provider 'zzz' is not defined (add a [provider zzz] section)"));
}

static void test_undefined_parent_is_named_on_the_parent_key(void)
{
	struct stage_conf st[] = {ROOT("races", "/races"), CHILD("entries", "race", "/e/{id}")};
	struct config c = pipeline(st, 2);
	CHECK(faults(&c, 1, "parent", "parent 'race' is not a stage (did you mean 'races'?)"));
	st[1].parent = "zzz";
	CHECK(faults(&c, 1, "parent", "parent 'zzz' is not a stage"));
}

static void test_references_are_checked_in_file_order_before_cycles(void)
{
	struct stage_conf st[] = {CHILD("a", "b", "/a/{id}"), CHILD("b", "a", "/b/{id}"), ROOT("r", "/r"),
	                          CHILD("c", "nope", "/c/{id}")};
	struct config c = pipeline(st, 4);
	CHECK(faults(&c, 3, "parent", "parent 'nope' is not a stage"));
}

static void test_cycle_is_named_from_its_first_stage_in_file_order(void)
{
	/* x leads into the cycle c -> b -> a -> c without being on it */
	struct stage_conf st[] = {ROOT("r", "/r"), CHILD("x", "c", "/x/{id}"), CHILD("b", "a", "/b/{id}"),
	                          CHILD("c", "b", "/c/{id}"), CHILD("a", "c", "/a/{id}")};
	struct config c = pipeline(st, 5);
	CHECK(faults(&c, 2, "parent", "parents form a cycle: b -> a -> c -> b (one stage must have no parent)"));
}

static void test_a_stage_that_is_its_own_parent_is_a_cycle(void)
{
	struct stage_conf st[] = {CHILD("a", "a", "/a")};
	struct config c = pipeline(st, 1);
	CHECK(faults(&c, 0, "parent", "parents form a cycle: a -> a (one stage must have no parent)"));
}

static void test_a_second_root_is_named_on_its_section(void)
{
	struct stage_conf st[] = {ROOT("races", "/races"), CHILD("e", "races", "/e/{id}"), ROOT("other", "/other")};
	st[0].line = 3;
	struct config c = pipeline(st, 3);
	CHECK(faults(&c, 2, NULL,
	             "has no parent, but [stage races] (line 3) is already the root; exactly one stage may have no "
	             "parent"));
}

static void test_a_url_that_is_no_template_is_named_on_the_url_key(void)
{
	struct stage_conf st[] = {ROOT("races", "/races"), CHILD("e", "races", "/e/{id")};
	struct config c = pipeline(st, 2);
	CHECK(faults(&c, 1, "url", "url: unclosed '{' in '/e/{id'"));
}

static void test_the_root_url_takes_no_parent_field(void)
{
	struct stage_conf st[] = {ROOT("races", "/races/{id}")};
	struct config c = pipeline(st, 1);
	CHECK(faults(&c, 0, "url",
	             "url: '/races/{id}' uses a field of the parent item, but this is the root stage: it has no parent "
	             "(the root's url may name only {last_success} and {cursor})"));
}

static void test_a_url_must_resolve_against_its_base_url(void)
{
	struct stage_conf st[] = {ROOT("races", "/races"), CHILD("e", "races", "https://bad host/{id}")};
	struct config c = pipeline(st, 2);
	CHECK(faults(&c, 1, "url", "url: 'https://bad host/{id}' is not a valid URL (Bad hostname)"));
	/* a placeholder stands for one escaped value: its braces do not count */
	st[1].url = "/e/{a b}/{/x/y z}";
	struct config_fault f;
	CHECK_EQ(config_check_pipeline(&c, &f), 0);
}

static void test_templates_are_read_as_the_import_reads_them(void)
{
	char msg[ERR_MAX] = "";
	size_t n = 99;
	CHECK_EQ(config_check_template("/races", &n, msg, sizeof msg), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(config_check_template("/r/{id}/e?race={/race/id}", &n, msg, sizeof msg), 0);
	CHECK_EQ(n, 2);
	/* a '}' outside a placeholder is literal text */
	CHECK_EQ(config_check_template("/r/id}/{x}}", &n, msg, sizeof msg), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(config_check_template("/r/{id", &n, msg, sizeof msg), -1);
	CHECK_STR(msg, "unclosed '{' in '/r/{id'");
	CHECK_EQ(config_check_template("/r/{a{b}}", &n, msg, sizeof msg), -1);
	CHECK_STR(msg, "unclosed '{' in '/r/{a{b}}'");
	CHECK_EQ(config_check_template("/r/{}", &n, msg, sizeof msg), -1);
	CHECK_STR(msg, "empty '{}' in '/r/{}' (expected {field} or {/json/pointer})");
	CHECK_EQ(config_check_template("/r/{/a~2}", &n, msg, sizeof msg), -1);
	CHECK_STR(msg, "a placeholder in '/r/{/a~2}' is not a valid JSON pointer ('~' must be followed by 0 or 1)");
}

static void test_stages_are_ordered_in_passes_each_taking_in_file_order_those_whose_parent_is_placed(void)
{
	struct stage_conf init[] = {CHILD("d", "c", "/d/{id}"), CHILD("b", "a", "/b/{id}"), CHILD("c", "a", "/c/{id}"),
	                            ROOT("a", "/a"), CHILD("e", "b", "/e/{id}")};
	struct stage_conf *st = malloc(sizeof init);
	memcpy(st, init, sizeof init);
	struct config c = pipeline(st, 5);
	char err[ERR_MAX] = "";
	struct config_fault f;
	CHECK_EQ(config_check_pipeline(&c, &f), 0);
	CHECK_EQ(config_order_stages(&c, err), 0);
	/* pass 1: a; pass 2: b, c, e (b was just placed); pass 3: d */
	const char *want[] = {"a", "b", "c", "e", "d"};
	for (size_t i = 0; i < 5; i++)
		CHECK_STR(c.stages[i].name, want[i]);
	free(c.stages);
}

/* {stage.field} names an ancestor's field (the parent's too); a stage
 * that is not an ancestor, no stage, or an ancestor above a dedupe stage
 * (whose items have many parents) is refused with the ancestors named. */
static void test_ancestor_fields_must_name_an_ancestor(void)
{
	struct stage_conf st[] = {ROOT("races", "/races"), CHILD("entries", "races", "/races/{races.id}/e"),
	                          CHILD("athletes", "entries", "/a/{athlete_id}"),
	                          CHILD("results", "entries", "/r/{races.id}/e/{entries./id}/{id}"),
	                          CHILD("photos", "athletes", "/p/{athletes.id}")};
	struct config c = pipeline(st, 5);
	struct config_fault f;
	st[2].dedupe = true;
	CHECK_EQ(config_check_pipeline(&c, &f), 0);
	st[3].url = "/r/{athletes.id}";
	CHECK(faults(&c, 3, "url", "url: '{athletes.id}' names stage 'athletes', which is not an ancestor of "
	             "[stage results]; its ancestors are: entries, races (a field of the parent item whose "
	             "name has a dot is written as a pointer: {/athletes.id})"));
	st[3].url = "/r/{meta.id}";
	CHECK(faults(&c, 3, "url", "url: '{meta.id}' names no stage 'meta', which is not an ancestor of "
	             "[stage results]; its ancestors are: entries, races (a field of the parent item whose "
	             "name has a dot is written as a pointer: {/meta.id})"));
	st[3].url = "/r/{/meta.id}";
	CHECK_EQ(config_check_pipeline(&c, &f), 0);
	st[4].url = "/p/{entries.id}";
	CHECK(faults(&c, 4, "url", "url: '{entries.id}' names a field of [stage entries], but [stage athletes] "
	             "between them has dedupe = yes: its items have many parent items, so which entries "
	             "item's value to use is not defined; name a field of [stage athletes] or a stage below it"));
	st[4].url = "/p/{athletes.id}";
	st[0].url = "/races/{races.id}";
	CHECK(faults(&c, 0, "url", "url: '/races/{races.id}' uses a field of the parent item, but this is the "
	             "root stage: it has no parent (the root's url may name only {last_success} and {cursor})"));
}

/* A stage's table may not take the name of a view or link table raced
 * makes for another stage. */
static void test_a_stage_named_like_a_view_or_link_table_is_refused(void)
{
	struct stage_conf st[] = {ROOT("races", "/races"), CHILD("races_current", "races", "/c/{id}")};
	struct config c = pipeline(st, 2);
	CHECK(faults(&c, 1, NULL, "the stage's table would take the name of the view of its current "
	             "items of [stage races] (races_current): rename one of the stages"));
	struct stage_conf d[] = {ROOT("races", "/races"), CHILD("entries", "races", "/e/{id}"),
	                         CHILD("entries_parents", "races", "/p/{id}")};
	d[1].dedupe = true;
	c = pipeline(d, 3);
	CHECK(faults(&c, 2, NULL, "the stage's table would take the name of its link table of "
	             "[stage entries] (entries_parents): rename one of the stages"));
	d[1].dedupe = false;
	CHECK_EQ(config_check_pipeline(&c, &(struct config_fault){0}), 0);
	struct stage_conf p[] = {ROOT("races", "/races"), CHILD("entries", "races", "/e/{id}"),
	                         CHILD("races_entries", "races", "/p/{id}")};
	c = pipeline(p, 3);
	CHECK(faults(&c, 2, NULL, "the stage's table would take the name of the view of its path "
	             "from the root of [stage entries] (races_entries): rename one of the stages"));
}

int main(void)
{
	RUN(test_ancestor_fields_must_name_an_ancestor);
	RUN(test_a_pipeline_needs_a_stage);
	RUN(test_a_valid_tree_passes);
	RUN(test_undefined_provider_is_named_on_the_provider_key);
	RUN(test_undefined_parent_is_named_on_the_parent_key);
	RUN(test_references_are_checked_in_file_order_before_cycles);
	RUN(test_cycle_is_named_from_its_first_stage_in_file_order);
	RUN(test_a_stage_that_is_its_own_parent_is_a_cycle);
	RUN(test_a_second_root_is_named_on_its_section);
	RUN(test_a_url_that_is_no_template_is_named_on_the_url_key);
	RUN(test_the_root_url_takes_no_parent_field);
	RUN(test_a_url_must_resolve_against_its_base_url);
	RUN(test_templates_are_read_as_the_import_reads_them);
	RUN(test_a_stage_named_like_a_view_or_link_table_is_refused);
	RUN(test_stages_are_ordered_in_passes_each_taking_in_file_order_those_whose_parent_is_placed);
	return CHECK_DONE();
}
