/* Unit tests for the metrics text: each rule of metrics.h on a hand-built
 * service_stats() document, asserting exact lines. */
#include "check.h"
#include "metrics.h"

#include <stdbool.h>

/* A service_stats() document: one stage, one provider, a store with a
 * three-bucket commit histogram. */
static json_t *stats_new(json_int_t id, const char *state, const char *stage, json_int_t done)
{
	json_t *imp = id ? json_pack("{s:I,s:s,s:b,s:s,s:n}", "id", id, "state", state, "paused", 0,
	                             "started_at", "2026-01-01T00:00:00Z", "finished_at")
	                 : json_pack("{s:n,s:s,s:b,s:n,s:n}", "id", "state", "idle", "paused", 0,
	                             "started_at", "finished_at");
	return json_pack(
	        "{s:o,s:[{s:s,s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:{s:I,s:i,s:i,s:i,s:i,s:i},"
	        "s:[{s:s,s:i}]}],"
	        "s:{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:{s:[f,f,f],s:[i,i,i],s:f,s:i}},"
	        "s:[{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:i}]}",
	        "import", imp,
	        "stages", "name", stage, "done", done, "stored", 4, "failed", 1, "retried", 2,
	        "skipped", 0, "pages", 3, "buffered", 7, "buffer_size", 500, "in_flight", 2,
	        "concurrency", 8, "requests", "2xx", done, "304", 0, "3xx", 0, "4xx", 1, "5xx", 0,
	        "transport", 0, "subscriptions", "consumer", "store", "demand", 42,
	        "store", "state", "connected", "phase", "ready", "batches", 5, "rows_committed", 40,
	        "rows_failed", 0, "reconnects", 1, "pending_rows", 3, "commit_seconds", "le", 0.001,
	        0.01, 0.1, "buckets", 1, 4, 4, "sum", 0.25, "count", 5,
	        "providers", "name", "main", "requests", 100, "retries", 2, "bytes", 4096,
	        "max_connections", 16, "in_flight", 2, "waiting", 1, "rate_limit", 2.5,
	        "limit", 16, "throttled", 3);
}

/* The text for stats with totals; NULL-safe for CHECK_STR. */
static char *format(const json_t *stats, const json_t *totals)
{
	struct metrics_text t = {0};
	char err[ERR_MAX];
	if (metrics_format(stats, totals, &t, err) < 0) {
		fprintf(stderr, "metrics_format: %s\n", err);
		return NULL;
	}
	return t.buf;
}

/* Whether the text holds this exact line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; p && (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void test_label_values_escape_backslash_quote_and_newline(void)
{
	json_t *totals = metrics_totals_new();
	json_t *s = stats_new(1, "running", "a\"b\\c\nd", 5);
	char *text = format(s, totals);
	CHECK(has_line(text, "raced_stage_items_total{stage=\"a\\\"b\\\\c\\nd\"} 5"));
	free(text);
	json_decref(s);
	json_decref(totals);
}

static void test_every_sample_follows_its_familys_help_and_type_and_the_text_ends_with_eof(void)
{
	json_t *totals = metrics_totals_new();
	json_t *s = stats_new(1, "running", "races", 5);
	char *text = format(s, totals);
	char family[128] = "", help[128] = "";
	size_t samples = 0, families = 0;
	for (char *line = text, *end; line && *line; line = end + 1) {
		end = strchr(line, '\n');
		CHECK(end != NULL);
		if (!end)
			break;
		*end = '\0';
		char name[128];
		if (sscanf(line, "# HELP %127s", help) == 1)
			continue;
		if (sscanf(line, "# TYPE %127s", family) == 1) {
			CHECK_STR(family, help);   /* HELP first, same name */
			families++;
			continue;
		}
		if (strcmp(line, "# EOF") == 0) {
			CHECK(end[1] == '\0');     /* the last line */
			break;
		}
		CHECK(sscanf(line, "%127[^{ ]", name) == 1);
		CHECK(strncmp(name, family, strlen(family)) == 0); /* family or family_bucket/_sum/_count */
		CHECK(strncmp(name, "raced_", 6) == 0);
		samples++;
	}
	CHECK_EQ(families, 45); /* import 6, stage 12, provider 9, store 12 */
	CHECK(samples > families);
	free(text);
	json_decref(s);
	json_decref(totals);
}

static void test_histogram_buckets_are_cumulative_and_end_with_inf_sum_and_count(void)
{
	json_t *totals = metrics_totals_new();
	json_t *s = stats_new(0, "idle", "races", 0);
	char *text = format(s, totals);
	const char *want =
	        "# HELP raced_store_commit_duration_seconds From a batch sent to its commit (per daemon).\n"
	        "# TYPE raced_store_commit_duration_seconds histogram\n"
	        "raced_store_commit_duration_seconds_bucket{le=\"0.001\"} 1\n"
	        "raced_store_commit_duration_seconds_bucket{le=\"0.01\"} 4\n"
	        "raced_store_commit_duration_seconds_bucket{le=\"0.1\"} 4\n"
	        "raced_store_commit_duration_seconds_bucket{le=\"+Inf\"} 5\n"
	        "raced_store_commit_duration_seconds_sum 0.25\n"
	        "raced_store_commit_duration_seconds_count 5\n";
	CHECK(text && strstr(text, want));
	free(text);
	json_decref(s);
	json_decref(totals);
}

static void test_counters_are_ended_imports_plus_the_running_one_and_fold_once(void)
{
	json_t *totals = metrics_totals_new();
	json_t *s1 = stats_new(1, "succeeded", "races", 10);
	CHECK_EQ(metrics_fold(totals, s1), 0);
	CHECK_EQ(metrics_fold(totals, s1), 0);   /* told twice: counted once */
	json_t *s2 = stats_new(2, "running", "races", 3);
	char *text = format(s2, totals);
	CHECK(has_line(text, "raced_stage_items_total{stage=\"races\"} 13"));
	CHECK(has_line(text, "raced_stage_requests_total{stage=\"races\",outcome=\"2xx\"} 13"));
	CHECK(has_line(text, "raced_stage_requests_total{stage=\"races\",outcome=\"4xx\"} 2"));
	CHECK(has_line(text, "raced_imports_total{status=\"succeeded\"} 1"));
	free(text);
	/* Import 2 ended: the same figures, now from the totals alone. */
	json_t *s3 = stats_new(2, "partial", "races", 3);
	CHECK_EQ(metrics_fold(totals, s3), 0);
	text = format(s3, totals);
	CHECK(has_line(text, "raced_stage_items_total{stage=\"races\"} 13"));
	CHECK(has_line(text, "raced_imports_total{status=\"partial\"} 1"));
	free(text);
	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
	json_decref(totals);
}

static void test_a_group_reset_by_a_reload_carries_its_last_values(void)
{
	json_t *totals = metrics_totals_new();
	json_t *s = stats_new(0, "idle", "races", 0);
	CHECK_EQ(metrics_carry(totals, s), 0);
	char *text = format(s, totals);
	CHECK(has_line(text, "raced_provider_requests_total{provider=\"main\"} 100"));
	free(text);
	json_decref(s);
	/* A new fetcher and store: 30 requests, 1 batch since. */
	s = stats_new(0, "idle", "races", 0);
	json_t *p = json_array_get(json_object_get(s, "providers"), 0);
	json_object_set_new(p, "requests", json_integer(30));
	json_t *st = json_object_get(s, "store");
	json_object_set_new(st, "batches", json_integer(1));
	json_t *h = json_object_get(st, "commit_seconds");
	json_object_set_new(h, "count", json_integer(1));
	json_object_set_new(h, "sum", json_real(0.5));
	CHECK_EQ(metrics_carry(totals, s), 0);
	text = format(s, totals);
	CHECK(has_line(text, "raced_provider_requests_total{provider=\"main\"} 130"));
	CHECK(has_line(text, "raced_provider_retries_total{provider=\"main\"} 4"));
	CHECK(has_line(text, "raced_store_batches_total 6"));
	CHECK(has_line(text, "raced_store_commit_duration_seconds_count 6"));
	CHECK(has_line(text, "raced_store_commit_duration_seconds_sum 0.75"));
	CHECK(has_line(text, "raced_store_commit_duration_seconds_bucket{le=\"+Inf\"} 6"));
	free(text);
	json_decref(s);
	json_decref(totals);
}

static void test_import_state_is_one_hot_with_id_and_start_time_in_seconds(void)
{
	json_t *totals = metrics_totals_new();
	json_t *s = stats_new(42, "running", "races", 1);
	char *text = format(s, totals);
	CHECK(has_line(text, "raced_import_id 42"));
	CHECK(has_line(text, "raced_import_state{state=\"running\"} 1"));
	CHECK(has_line(text, "raced_import_state{state=\"idle\"} 0"));
	CHECK(has_line(text, "raced_import_start_time_seconds 1767225600"));
	CHECK(has_line(text, "raced_import_end_time_seconds 0"));
	CHECK(has_line(text, "raced_store_up 1"));
	CHECK(has_line(text, "raced_store_state{state=\"ready\"} 1"));
	CHECK(has_line(text, "raced_store_warmups_total 0"));   /* absent from the stats */
	json_object_set_new(json_object_get(s, "store"), "read_backs_by_parent", json_integer(7));
	free(text);
	text = format(s, totals);
	CHECK(has_line(text, "raced_store_read_backs_by_parent_total 7"));
	CHECK(has_line(text, "raced_stage_demand{stage=\"races\",consumer=\"store\"} 42"));
	CHECK(has_line(text, "raced_provider_rate_limit_per_second{provider=\"main\"} 2.5"));
	CHECK(has_line(text, "raced_provider_concurrency_limit{provider=\"main\"} 16"));
	CHECK(has_line(text, "raced_provider_concurrency_ceiling{provider=\"main\"} 16"));
	CHECK(has_line(text, "raced_provider_throttled_total{provider=\"main\"} 3"));
	CHECK(has_line(text, "raced_provider_quota_held_until_seconds{provider=\"main\"} 0"));
	free(text);
	json_decref(s);
	json_decref(totals);
}

static void test_a_text_over_the_bound_is_refused_naming_it(void)
{
	json_t *totals = metrics_totals_new();
	json_t *s = stats_new(0, "idle", "races", 0);
	json_t *providers = json_object_get(s, "providers");
	json_t *one = json_array_get(providers, 0);
	for (int i = 0; i < 20000; i++)
		json_array_append_new(providers, json_deep_copy(one));
	struct metrics_text t = {0};
	char err[ERR_MAX] = "";
	CHECK_EQ(metrics_format(s, totals, &t, err), -1);
	CHECK_STR(err, "metrics: the text is over 1048576 bytes (METRICS_MAX_BYTES)");
	CHECK(t.cap <= METRICS_MAX_BYTES);
	metrics_text_free(&t);
	json_decref(s);
	json_decref(totals);
}

int main(void)
{
	RUN(test_label_values_escape_backslash_quote_and_newline);
	RUN(test_every_sample_follows_its_familys_help_and_type_and_the_text_ends_with_eof);
	RUN(test_histogram_buckets_are_cumulative_and_end_with_inf_sum_and_count);
	RUN(test_counters_are_ended_imports_plus_the_running_one_and_fold_once);
	RUN(test_a_group_reset_by_a_reload_carries_its_last_values);
	RUN(test_import_state_is_one_hot_with_id_and_start_time_in_seconds);
	RUN(test_a_text_over_the_bound_is_refused_naming_it);
	return CHECK_DONE();
}
