/* Unit tests for store_runs: the import_errors bound and what the
 * import_runs statements carry (no database: the ops are only built). */
#include "check.h"
#include "store_runs.h"
#include "store_schema.h"

#include <string.h>

/* Queue n errors of import id; returns how many became ops (freed). */
static size_t add_errors(struct store_runs *r, int64_t id, size_t n)
{
	size_t ops = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_op *op = NULL;
		CHECK_EQ(store_runs_error(r, id, "entries", "http://x/1", 500, 2, "boom", &op), 0);
		ops += op != NULL;
		store_op_free(op);
	}
	return ops;
}

static void test_errors_beyond_the_bound_are_only_counted_per_import(void)
{
	struct store_runs r = { 0 };
	CHECK_EQ(add_errors(&r, 7, STORE_MAX_PENDING_ERRORS), STORE_MAX_PENDING_ERRORS);
	CHECK_EQ(r.errors_queued, STORE_MAX_PENDING_ERRORS);
	CHECK_EQ(add_errors(&r, 7, 3), 0);
	CHECK_EQ(add_errors(&r, 8, 2), 0);
	CHECK_EQ(r.errors_dropped, 5);
	CHECK_EQ(r.errors_queued, STORE_MAX_PENDING_ERRORS);

	struct store_op *op = store_runs_finish(&r, NULL, 0, 7, "partial", NULL, 0, NULL, NULL, NULL,
	                                        NULL, NULL);
	CHECK(op != NULL);
	if (op)
		CHECK_STR(op->stmts[0].params[2], "{\"errors_not_recorded\":3}");
	store_op_free(op);
	/* counted once: the next finish of 7 says nothing more */
	op = store_runs_finish(&r, NULL, 0, 7, "partial", NULL, 0, NULL, NULL, NULL, NULL, NULL);
	if (op)
		CHECK_STR(op->stmts[0].params[2], "{}");
	store_op_free(op);
	store_runs_free(&r);
}

static void test_a_committed_error_row_frees_its_place(void)
{
	struct store_runs r = { 0 };
	struct store_op *op = NULL;
	CHECK_EQ(store_runs_error(&r, 1, "races", "http://x/", 503, 6, "HTTP 503", &op), 0);
	CHECK(op != NULL);
	if (!op)
		return;
	CHECK_EQ(r.errors_queued, 1);
	op->done(op, NULL, NULL);
	CHECK_EQ(r.errors_queued, 0);
	store_op_free(op);
}

static void test_an_error_without_http_response_has_a_null_status(void)
{
	struct store_runs r = { 0 };
	struct store_op *op = NULL;
	CHECK_EQ(store_runs_error(&r, 42, NULL, "http://x/", 0, 1, "refused", &op), 0);
	CHECK(op != NULL);
	if (!op)
		return;
	char **p = op->stmts[0].params;
	CHECK_STR(p[0], "42");
	CHECK_STR(p[1], "");          /* no stage: the empty name */
	CHECK(p[3] == NULL);
	CHECK_STR(p[4], "1");
	store_op_free(op);
	store_runs_free(&r);
}

static void test_final_counts_are_copied_with_the_dropped_errors_added(void)
{
	struct store_runs r = { 0 };
	json_t *counts = json_pack("{s:{s:i}}", "races", "stored", 5);
	struct store_op *op = store_runs_finish(&r, NULL, 0, 3, "succeeded", counts, 0, NULL, NULL,
	                                        NULL, NULL, NULL);
	CHECK(op != NULL);
	if (op) {
		CHECK_STR(op->stmts[0].params[0], "3");
		CHECK_STR(op->stmts[0].params[1], "succeeded");
		CHECK_STR(op->stmts[0].params[2], "{\"races\":{\"stored\":5}}");
	}
	CHECK_EQ(json_object_size(counts), 1);   /* the caller's, untouched */
	json_decref(counts);
	store_op_free(op);
	/* counts that are not an object are refused */
	json_t *bad = json_array();
	CHECK(store_runs_finish(&r, NULL, 0, 3, "succeeded", bad, 0, NULL, NULL, NULL, NULL, NULL) ==
	      NULL);
	json_decref(bad);
}

static int64_t got_id;
static const char *got_err;

static void on_id(void *arg, int64_t id, const char *err)
{
	(void)arg;
	got_id = id;
	got_err = err;
}

static void test_a_begin_without_a_row_answers_an_error(void)
{
	json_t *pipeline = json_pack("[{s:s}]", "name", "races");
	struct store_run_begin b = { "racectl", true, "http://h/races?since=x", pipeline };
	struct store_op *op = store_runs_begin(&b, on_id, NULL);
	json_decref(pipeline);
	CHECK(op != NULL);
	if (!op)
		return;
	CHECK_STR(op->stmts[0].params[0], "racectl");
	CHECK_STR(op->stmts[0].params[1], "true");
	CHECK_STR(op->stmts[0].params[2], "http://h/races?since=x");
	CHECK_STR(op->stmts[0].params[3], "[{\"name\":\"races\"}]");
	got_id = -1;
	op->done(op, NULL, NULL);
	CHECK_EQ(got_id, 0);
	CHECK_STR(got_err, "import_runs insert returned no id");
	store_runs_answer_id(op, 9, NULL);
	CHECK_EQ(got_id, 9);
	CHECK(got_err == NULL);
	store_op_free(op);
}

static json_t *got_runs;

static void on_runs(void *arg, json_t *runs, const char *err)
{
	(void)arg;
	got_runs = err ? NULL : json_incref(runs);
}

/* The marking is one statement: finished_at the heartbeat (else started_at),
 * one count of last_import per stage table, built once and kept in r; a
 * marking that ran nothing (the discard backend) answers no runs. */
static void test_the_marking_reads_the_heartbeat_and_counts_each_stage_table(void)
{
	struct store_table_sql t[2] = { { 0 } };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_table_sql_init(&t[0], "races", NULL, false, err), 0);
	CHECK_EQ(store_table_sql_init(&t[1], "user", NULL, false, err), 0);
	struct store_runs r = { 0 };
	struct store_op *op = store_runs_mark_stale(&r, t, 2, on_runs, NULL);
	CHECK(op != NULL);
	if (!op)
		return;
	const char *sql = op->stmts[0].sql;
	CHECK(sql == r.stale_sql);
	CHECK(strstr(sql, "finished_at = coalesce(i.heartbeat_at, i.started_at)") != NULL);
	CHECK(strstr(sql, "SELECT 'races' AS stage, count(*) AS n FROM \"races\" t"
	                  " WHERE t.last_import = i.id UNION ALL SELECT 'user' AS stage") != NULL);
	CHECK(strstr(sql, "WHERE i.status = 'running'") != NULL);
	got_runs = NULL;
	op->done(op, NULL, NULL);
	CHECK(json_is_array(got_runs) && json_array_size(got_runs) == 0);
	json_decref(got_runs);
	struct store_op *again = store_runs_mark_stale(&r, NULL, 0, on_runs, NULL);
	CHECK(again != NULL && again->stmts[0].sql == sql);   /* built once */
	store_op_free(again);
	store_op_free(op);
	store_runs_free(&r);
	store_table_sql_free(&t[0]);
	store_table_sql_free(&t[1]);
}

/* The finishing op is one transaction: with STORE_FINISH_REMOVALS, per
 * table its page clean-up (which decides whether the stage's removals
 * are kept: keys_kept is its third parameter, and whether the run
 * reached every page row its fifth), mark and unmark, planned with
 * nested loops off and the setting put back after them, then the
 * run's row; with STORE_FINISH_PRUNE_ROOT only the root's page clean-up;
 * resumable only with STORE_FINISH_RESUMABLE. */
static void test_finish_flags_put_removals_and_clean_up_before_the_run_row(void)
{
	struct store_table_sql t[2] = { { 0 } };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_table_sql_init(&t[0], "races", NULL, false, err), 0);
	CHECK_EQ(store_table_sql_init(&t[1], "entries", NULL, false, err), 0);
	struct store_runs r = { 0 };
	const bool kept[2] = { false, true }, reached[2] = { false, true };
	const struct store_fresh fresh[2] = { { 12, 40 }, { -1, -1 } };
	struct store_op *op = store_runs_finish(&r, t, 2, 5, "succeeded", NULL,
	                                        STORE_FINISH_REMOVALS, kept, reached, fresh, NULL,
	                                        NULL);
	CHECK(op != NULL);
	if (op) {
		CHECK_EQ(op->n_stmts, 11);
		/* each table's statements between nested loops off and back */
		CHECK(strstr(op->stmts[0].sql, "set_config('enable_nestloop', 'off', true)") != NULL);
		CHECK(strstr(op->stmts[4].sql, "current_setting('raced.enable_nestloop')") != NULL);
		CHECK(op->stmts[5].sql == op->stmts[0].sql);
		CHECK(op->stmts[9].sql == op->stmts[4].sql);
		CHECK(strstr(op->stmts[1].sql, "DELETE FROM raced_pages") != NULL);
		CHECK(strstr(op->stmts[1].sql, "set_config('" STORE_KEEP_SETTING "'") != NULL);
		CHECK_STR(op->stmts[1].params[1], "races");
		CHECK_STR(op->stmts[1].params[2], "false");
		CHECK_STR(op->stmts[1].params[3], "12");   /* races: a first import's records */
		CHECK(op->stmts[6].params[3] == NULL);     /* entries: not */
		CHECK(op->stmts[2].sql == t[0].mark_sql);
		CHECK(op->stmts[3].sql == t[0].unmark_sql);
		CHECK_STR(op->stmts[6].params[1], "entries");
		CHECK_STR(op->stmts[1].params[4], "false");
		CHECK_STR(op->stmts[6].params[2], "true");
		CHECK_STR(op->stmts[6].params[4], "true");   /* entries: every page row reached */
		CHECK(op->stmts[7].sql == t[1].mark_sql);
		CHECK(strstr(op->stmts[10].sql, "UPDATE import_runs") != NULL);
		CHECK_STR(op->stmts[10].params[3], "false");
	}
	store_op_free(op);
	op = store_runs_finish(&r, t, 2, 5, "interrupted", NULL,
	                       STORE_FINISH_PRUNE_ROOT | STORE_FINISH_RESUMABLE, NULL, NULL, NULL,
	                       NULL, NULL);
	CHECK(op != NULL);
	if (op) {
		CHECK_EQ(op->n_stmts, 4);
		CHECK(strstr(op->stmts[0].sql, "'enable_nestloop', 'off'") != NULL);
		CHECK_STR(op->stmts[1].params[1], "races");
		CHECK(strstr(op->stmts[2].sql, "raced.enable_nestloop") != NULL);
		CHECK_STR(op->stmts[3].params[3], "true");
	}
	store_op_free(op);
	store_runs_free(&r);
	store_table_sql_free(&t[0]);
	store_table_sql_free(&t[1]);
}

/* A stage's counts after the finish: planned with nested loops off too
 * (their shared keys join the keys seen); the op's transaction ends the
 * setting. */
static void test_counts_are_planned_without_nested_loops(void)
{
	struct store_table_sql t = { 0 };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_table_sql_init(&t, "athletes", NULL, false, err), 0);
	struct store_op *op = store_runs_counts(&t, 7, false, -1);
	CHECK(op != NULL);
	if (op) {
		CHECK_EQ(op->n_stmts, 2);
		CHECK(strstr(op->stmts[0].sql, "'enable_nestloop', 'off'") != NULL);
		CHECK(op->stmts[1].sql == t.counts_sql);
		CHECK_STR(op->stmts[1].params[0], "7");
		CHECK_STR(op->stmts[1].params[1], "false");
		CHECK(op->stmts[1].params[2] == NULL);
	}
	store_op_free(op);
	store_table_sql_free(&t);
}

int main(void)
{
	RUN(test_counts_are_planned_without_nested_loops);
	RUN(test_finish_flags_put_removals_and_clean_up_before_the_run_row);
	RUN(test_errors_beyond_the_bound_are_only_counted_per_import);
	RUN(test_a_committed_error_row_frees_its_place);
	RUN(test_an_error_without_http_response_has_a_null_status);
	RUN(test_final_counts_are_copied_with_the_dropped_errors_added);
	RUN(test_a_begin_without_a_row_answers_an_error);
	RUN(test_the_marking_reads_the_heartbeat_and_counts_each_stage_table);
	return CHECK_DONE();
}
