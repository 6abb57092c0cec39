/* Unit tests for config_pipeline: the pipeline an import began with, kept
 * as JSON, and the first difference a resume would be refused for, on
 * configurations built by hand. */
#include "check.h"
#include "config.h"
#include "config_pipeline.h"

#include <stdbool.h>

#define STAGE(n, p, u) {.name = n, .parent = p, .provider = "main", .url = u, .items = "/data", .key = "/id", \
                        .next = NEXT_NONE, .max_demand = 500, .concurrency = 1}

static struct stage_conf stages[3];

static struct config three(void)
{
	stages[0] = (struct stage_conf)STAGE("races", NULL, "/races");
	stages[1] = (struct stage_conf)STAGE("entries", "races", "/races/{id}/entries");
	stages[2] = (struct stage_conf)STAGE("athletes", "entries", "/athletes/{athlete_id}");
	return (struct config){.stages = stages, .n_stages = 3};
}

static const char *diff_msg(const json_t *was, const struct config *now, int64_t id)
{
	static char msg[ERR_MAX];
	msg[0] = '\0';
	int rc = config_pipeline_diff(was, now, id, msg, sizeof msg);
	return rc == 0 ? "" : rc == -1 ? msg : "(bad return)";
}

static void test_the_json_holds_per_stage_what_decides_requests_and_rows(void)
{
	struct config c = three();
	stages[0].next = NEXT_LINK;
	stages[2].dedupe = true;
	stages[1].next = NEXT_POINTER;
	stages[1].next_pointer = "/links/next";
	stages[1].concurrency = 99; /* not part of it */
	json_t *j = config_pipeline_json(&c);
	char *text = json_dumps(j, JSON_COMPACT);
	CHECK_STR(text,
	          "{\"races\":{\"parent\":null,\"provider\":\"main\",\"url\":\"/races\",\"items\":\"/data\","
	          "\"key\":\"/id\",\"next\":\"link\",\"dedupe\":false},"
	          "\"entries\":{\"parent\":\"races\",\"provider\":\"main\",\"url\":\"/races/{id}/entries\","
	          "\"items\":\"/data\",\"key\":\"/id\",\"next\":\"/links/next\",\"dedupe\":false},"
	          "\"athletes\":{\"parent\":\"entries\",\"provider\":\"main\",\"url\":\"/athletes/{athlete_id}\","
	          "\"items\":\"/data\",\"key\":\"/id\",\"next\":\"none\",\"dedupe\":true}}");
	free(text);
	json_decref(j);
}

static void test_urls_are_kept_with_their_secrets_masked(void)
{
	struct config c = three();
	stages[0].url = "https://user:s3cret@api.example.com/races";
	json_t *j = config_pipeline_json(&c);
	const char *url = json_string_value(json_object_get(json_object_get(j, "races"), "url"));
	CHECK(url && !strstr(url, "s3cret"));
	/* the same pipeline with another secret is no change */
	stages[0].url = "https://user:other@api.example.com/races";
	CHECK_STR(diff_msg(j, &c, 3), "");
	json_decref(j);
}

static void test_the_same_pipeline_is_no_difference_whatever_else_changed(void)
{
	struct config c = three();
	json_t *j = config_pipeline_json(&c);
	stages[1].concurrency = 64;
	stages[2].max_demand = 10;
	stages[2].refresh_ms = 3600000;
	CHECK_STR(diff_msg(j, &c, 12), "");
	/* and it reads back as it was written (the database keeps it as jsonb) */
	char *text = json_dumps(j, 0);
	json_t *back = json_loads(text, 0, NULL);
	CHECK_STR(diff_msg(back, &c, 12), "");
	free(text);
	json_decref(back);
	json_decref(j);
}

static void test_a_changed_url_is_named_with_both_values_and_the_fix(void)
{
	struct config c = three();
	json_t *j = config_pipeline_json(&c);
	stages[1].url = "/r/{id}/e";
	CHECK_STR(diff_msg(j, &c, 12),
	          "[stage entries] url changed from '/races/{id}/entries' to '/r/{id}/e' since import 12 began: resume it "
	          "with the configuration it began with, or start a new import (racectl start-import, or --full)");
	json_decref(j);
}

static void test_each_field_counts(void)
{
	struct config c = three();
	json_t *j = config_pipeline_json(&c);
	stages[2].parent = "races";
	CHECK(strstr(diff_msg(j, &c, 1), "[stage athletes] parent changed from 'entries' to 'races' since import 1"));
	stages[2].parent = "entries";
	stages[2].provider = "other";
	CHECK(strstr(diff_msg(j, &c, 1), "[stage athletes] provider changed from 'main' to 'other'"));
	stages[2].provider = "main";
	stages[2].items = "";
	CHECK(strstr(diff_msg(j, &c, 1), "[stage athletes] items changed from '/data' to ''"));
	stages[2].items = "/data";
	stages[2].key = "/uid";
	CHECK(strstr(diff_msg(j, &c, 1), "[stage athletes] key changed from '/id' to '/uid'"));
	stages[2].key = "/id";
	stages[2].next = NEXT_LINK;
	CHECK(strstr(diff_msg(j, &c, 1), "[stage athletes] next changed from 'none' to 'link'"));
	stages[2].next = NEXT_NONE;
	stages[2].dedupe = true;
	CHECK(strstr(diff_msg(j, &c, 1), "[stage athletes] dedupe changed from no to yes"));
	stages[2].dedupe = false;
	CHECK_STR(diff_msg(j, &c, 1), "");
	/* the first stage in the pipeline's order, its first field */
	stages[1].key = "/k";
	stages[2].url = "/a/{id}";
	stages[1].url = "/e/{id}";
	CHECK(strstr(diff_msg(j, &c, 1), "[stage entries] url changed from '/races/{id}/entries' to '/e/{id}'"));
	json_decref(j);
}

static void test_the_paging_companions_count_and_are_named(void)
{
	struct config c = three();
	stages[1].next = NEXT_OFFSET;
	stages[1].offset_param = "offset";
	stages[1].limit_param = "limit";
	stages[1].limit = 100;
	json_t *j = config_pipeline_json(&c);
	char *text = json_dumps(json_object_get(json_object_get(j, "entries"), "paging"), JSON_COMPACT);
	CHECK_STR(text, "{\"offset_param\":\"offset\",\"limit_param\":\"limit\",\"limit\":100,\"total\":null,"
	                "\"has_more\":null}");
	free(text);
	CHECK(!json_object_get(json_object_get(j, "races"), "paging")); /* next = none has none */
	CHECK_STR(diff_msg(j, &c, 3), "");
	stages[1].limit = 50;
	CHECK(strstr(diff_msg(j, &c, 3), "[stage entries] limit changed from 100 to 50 since import 3 began"));
	stages[1].limit = 100;
	stages[1].limit_param = "size";
	CHECK(strstr(diff_msg(j, &c, 3), "[stage entries] limit_param changed from 'limit' to 'size'"));
	stages[1].limit_param = "limit";
	stages[1].total = "/meta/total";
	CHECK(strstr(diff_msg(j, &c, 3), "[stage entries] total changed from (none) to '/meta/total'"));
	stages[1].total = NULL;
	json_decref(j);

	stages[1].next = NEXT_HEADER_CURSOR;
	stages[1].cursor_header = "X-Next";
	stages[1].cursor_param = "cursor";
	j = config_pipeline_json(&c);
	stages[1].cursor_param = "after";
	CHECK(strstr(diff_msg(j, &c, 4), "[stage entries] cursor_param changed from 'cursor' to 'after'"));
	stages[1].cursor_param = "cursor";
	CHECK_STR(diff_msg(j, &c, 4), "");
	/* a run kept before the companions were recorded is not checked on them */
	json_object_del(json_object_get(j, "entries"), "paging");
	stages[1].cursor_param = "after";
	CHECK_STR(diff_msg(j, &c, 4), "");
	json_decref(j);

	stages[1].next = NEXT_PAGE_NUMBER;
	stages[1].page_param = "page";
	stages[1].first_page = 1;
	j = config_pipeline_json(&c);
	stages[1].first_page = 0;
	CHECK(strstr(diff_msg(j, &c, 5), "[stage entries] first_page changed from 1 to 0"));
	json_decref(j);
}

static void test_added_and_removed_stages_are_named(void)
{
	struct config c = three();
	json_t *j = config_pipeline_json(&c);
	c.n_stages = 2;
	CHECK_STR(diff_msg(j, &c, 7),
	          "[stage athletes] removed since import 7 began: resume it with the configuration it began with, or "
	          "start a new import (racectl start-import, or --full)");
	json_decref(j);
	j = config_pipeline_json(&c);
	c.n_stages = 3;
	CHECK_STR(diff_msg(j, &c, 7),
	          "[stage athletes] added since import 7 began: resume it with the configuration it began with, or "
	          "start a new import (racectl start-import, or --full)");
	/* a renamed stage is one added (named first, in the pipeline's order) */
	stages[2].name = "people";
	CHECK(strstr(diff_msg(j, &c, 7), "[stage people] added since import 7 began"));
	json_decref(j);
}

static void test_a_run_without_a_kept_pipeline_cannot_be_resumed(void)
{
	struct config c = three();
	CHECK_STR(diff_msg(NULL, &c, 5),
	          "import 5 kept no record of its pipeline, so it cannot be checked against this configuration: start a "
	          "new import (racectl start-import, or --full)");
	json_t *arr = json_array();
	CHECK(config_pipeline_diff(arr, &c, 5, (char[ERR_MAX]){0}, ERR_MAX) == -1);
	json_decref(arr);
	/* a field missing from what was kept is a difference */
	json_t *j = config_pipeline_json(&c);
	json_object_del(json_object_get(j, "entries"), "dedupe");
	CHECK(strstr(diff_msg(j, &c, 5), "[stage entries] dedupe changed from (not recorded) to no"));
	json_decref(j);
}

int main(void)
{
	RUN(test_the_json_holds_per_stage_what_decides_requests_and_rows);
	RUN(test_urls_are_kept_with_their_secrets_masked);
	RUN(test_the_same_pipeline_is_no_difference_whatever_else_changed);
	RUN(test_a_changed_url_is_named_with_both_values_and_the_fix);
	RUN(test_each_field_counts);
	RUN(test_the_paging_companions_count_and_are_named);
	RUN(test_added_and_removed_stages_are_named);
	RUN(test_a_run_without_a_kept_pipeline_cannot_be_resumed);
	return CHECK_DONE();
}
