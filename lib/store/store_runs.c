/* store_runs — see store_runs.h. */
#include "store_runs.h"

#include "store_schema.h"
#include "log.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_runs_dropped {
	struct store_runs_dropped *next;
	int64_t import_id;
	uint64_t n;
};

void store_runs_free(struct store_runs *r)
{
	free(r->stale_sql);
	r->stale_sql = NULL;
	while (r->dropped) {
		struct store_runs_dropped *d = r->dropped;
		r->dropped = d->next;
		free(d);
	}
}

/* An op of one statement with n text params, answered by done. */
static struct store_op *one_statement(enum store_op_kind kind, const char *sql, int n,
                                      const char *const *params, store_op_done_fn done)
{
	struct store_op *op = store_op_new(kind, 1);
	if (!op || store_op_stmt(op, 0, sql, n, params) != 0) {
		store_op_free(op);
		return NULL;
	}
	op->done = done;
	return op;
}

/* --- begin -------------------------------------------------------------- */

/* The begin's second column (store.c reads it; docs/architecture.md,
 * "Edges"): the counts of the run before this one when the links it left
 * may be trusted: it succeeded, not under a cursor (no root_url: so every
 * page row it did not reach is gone) and with this pipeline; else NULL.
 * Whether it dropped a link record is in its counts, per stage.  The
 * statement does not see its own row. */
#define STORE_RUNS_PRIOR_SQL \
	" (SELECT CASE WHEN p.status = 'succeeded' AND p.root_url IS NULL" \
	"   AND p.pipeline = $4::jsonb THEN p.counts::text END" \
	"  FROM import_runs p WHERE p.id < import_runs.id ORDER BY p.id DESC LIMIT 1)"

void store_runs_answer_id(struct store_op *op, int64_t id, const char *err)
{
	if (op->reply.id)
		op->reply.id(op->reply_arg, id, err);
}

void store_runs_begin_done(struct store_op *op, const PGresult *res, const char *err)
{
	int64_t id = 0;
	if (!err && res && PQntuples(res) == 1)
		id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	store_runs_answer_id(op, id, err ? err : (id ? NULL : "import_runs insert returned no id"));
}

struct store_op *store_runs_begin(const struct store_run_begin *b, store_id_fn cb, void *arg)
{
	char *pipeline = b->pipeline ? json_dumps(b->pipeline, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	if (b->pipeline && !pipeline)
		return NULL;
	const char *p[] = { b->requested_by, b->full ? "true" : "false", b->root_url, pipeline };
	struct store_op *op = one_statement(STORE_OP_BEGIN_IMPORT,
		"INSERT INTO import_runs (status, requested_by, full_import, root_url, pipeline)"
		" VALUES ('running', $1, $2, $3, $4::jsonb) RETURNING id," STORE_RUNS_PRIOR_SQL,
		4, p, store_runs_begin_done);
	free(pipeline);
	if (op) {
		op->reply.id = cb;
		op->reply_arg = arg;
	}
	return op;
}

/* --- errors ------------------------------------------------------------- */

static struct store_runs_dropped *dropped_find(struct store_runs *r, int64_t import_id,
                                               bool unlink)
{
	for (struct store_runs_dropped **pp = &r->dropped; *pp; pp = &(*pp)->next) {
		if ((*pp)->import_id == import_id) {
			struct store_runs_dropped *d = *pp;
			if (unlink)
				*pp = d->next;
			return d;
		}
	}
	return NULL;
}

static int count_dropped(struct store_runs *r, int64_t import_id)
{
	struct store_runs_dropped *d = dropped_find(r, import_id, false);
	if (!d) {
		d = calloc(1, sizeof *d);
		if (!d)
			return -1;
		d->import_id = import_id;
		d->next = r->dropped;
		r->dropped = d;
	}
	d->n++;
	r->errors_dropped++;
	return 0;
}

static void error_done(struct store_op *op, const PGresult *res, const char *err)
{
	struct store_runs *r = op->ctx;
	(void)res;
	(void)err;
	r->errors_queued--;
}

int store_runs_error(struct store_runs *r, int64_t import_id, const char *stage, const char *url,
                     long http_status, uint32_t attempts, const char *message,
                     struct store_op **op)
{
	*op = NULL;
	if (r->errors_queued >= STORE_MAX_PENDING_ERRORS)
		return count_dropped(r, import_id);
	char id[24], status[24], att[16];
	snprintf(id, sizeof id, "%lld", (long long)import_id);
	snprintf(status, sizeof status, "%ld", http_status);
	snprintf(att, sizeof att, "%u", attempts);
	const char *p[] = { id, stage ? stage : "", url, http_status > 0 ? status : NULL, att, message };
	*op = one_statement(STORE_OP_ADD_ERROR,
		"INSERT INTO import_errors (import_id, stage, url, http_status, attempts, message)"
		" VALUES ($1, $2, $3, $4, $5, $6)", 6, p, error_done);
	if (!*op)
		return -1;
	(*op)->ctx = r;
	r->errors_queued++;
	return 0;
}

/* --- finish and mark stale ---------------------------------------------- */

static void status_done(struct store_op *op, const PGresult *res, const char *err)
{
	(void)res;
	if (op->reply.done)
		op->reply.done(op->reply_arg, err);
}

/* counts (or {}) as JSON text, with the errors only counted for import_id. */
static char *final_counts(struct store_runs *r, int64_t import_id, json_t *counts)
{
	json_t *c = counts ? json_deep_copy(counts) : json_object();
	if (!c || !json_is_object(c)) {
		json_decref(c);
		return NULL;
	}
	struct store_runs_dropped *d = dropped_find(r, import_id, true);
	if (d) {
		json_object_set_new(c, "errors_not_recorded", json_integer((json_int_t)d->n));
		free(d);
	}
	char *text = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	return text;
}

/* Page rows import $1 did not reach in stage $2 (pages gone, and
 * placeholders): an anti-join against its reach, read once.  The test of
 * a placeholder is inside the NOT EXISTS, not OR-ed with it: under an OR
 * PostgreSQL cannot make the NOT EXISTS a join, and keeps it a subplan,
 * hashed only while the reach's estimate fits work_mem; past it the
 * subplan reads the whole reach once per page row (quadratic: 31 s for
 * 20,000 pages; test edges-plan).  As a join it is a hash anti-join,
 * which spills to disk rather than rescans. */
#define UNREACHED_SQL \
	"p.stage = $2 AND NOT EXISTS (" \
	" SELECT 1 FROM raced_reached r, unnest(r.urls || r.done) AS u(u)" \
	" WHERE r.import_id = $1::bigint AND r.stage = $2 AND u.u = p.url AND p.seen_import >= 0)"
#define DELETE_PAGES_SQL "DELETE FROM raced_pages p WHERE " UNREACHED_SQL
/* Whether the removals of a stage ($2) in the finish of import $1 are
 * already decided, so that its marking, unmarking, unlinking and counts
 * read no keys (STORE_KEEP_SETTING).  They are when the keys seen are
 * exactly those of the last finish that decided removals with this
 * pipeline, which left every item current that is on a page row and no
 * other: every page record of the run kept its page's keys ($3, from the
 * store: a page first reached, rewritten with other keys or without its
 * keys, or a full import's, did not), the run reached every page row (it
 * deletes none; a placeholder deleted counts too), it is its import's
 * only run (a resumed one's earlier runs wrote pages the store did not
 * see), and the run before it succeeded with the same pipeline (so it
 * decided removals for the same stages, as it was not under a cursor
 * since this one is not, and nothing ran between them). */
#define PREV_DECIDED_SQL \
	"EXISTS (SELECT 1 FROM import_runs n WHERE n.id = $1::bigint AND n.resumes = 0" \
	"  AND NOT n.full_import AND NOT EXISTS (SELECT 1 FROM import_runs x WHERE x.id > n.id)" \
	" AND (SELECT l.status = 'succeeded' AND l.pipeline = n.pipeline FROM import_runs l" \
	"  WHERE l.id < n.id ORDER BY l.id DESC LIMIT 1))"
/* Or they are decided because the table was empty at the run's start:
 * then it holds only rows this run wrote, each from an item on a page it
 * recorded; every record was a first one with content, so all its items
 * were sent; and none was refused ($4 the number of those records, from
 * the store, else NULL).  A row the keys seen do not list would be one
 * of a page recorded twice with other keys the second time: the page
 * rows this run wrote number exactly its records, so no page was.  Only
 * for a run that is its import's only one (a resumed one's earlier runs
 * wrote pages the store did not see). */
#define FIRST_DECIDED_SQL \
	"$4::bigint IS NOT NULL" \
	" AND EXISTS (SELECT 1 FROM import_runs n WHERE n.id = $1::bigint AND n.resumes = 0" \
	"  AND NOT EXISTS (SELECT 1 FROM import_runs x WHERE x.id > n.id))" \
	" AND (SELECT count(*) FROM raced_pages f WHERE f.stage = $2" \
	"  AND f.seen_import = $1::bigint) = $4::bigint"
/* No page row can be unreached when the run reached every one its stage
 * had at its start ($5, from the store: the import read them all in its
 * pass and counted the records that reached each), and the previous
 * finish deleted every placeholder: it decided removals ($3 and
 * PREV_DECIDED_SQL), and this run wrote none (a placeholder's record
 * does not keep keys).  Then the anti-join is not run: a pseudo-constant
 * filter of the DELETE, evaluated once (an unchanged re-import's
 * athletes: 35,761 page rows against the reach's URLs, about 20 ms of
 * the backend's CPU; docs/performance.md). */
#define ALL_REACHED_SQL "($5::boolean AND $3::boolean AND " PREV_DECIDED_SQL ")"
#define DECIDE_SQL \
	"WITH gone AS (DELETE FROM raced_pages p WHERE NOT " ALL_REACHED_SQL " AND " UNREACHED_SQL \
	" RETURNING 1)" \
	" SELECT set_config('" STORE_KEEP_SETTING "' || $2, CASE WHEN ($3::boolean" \
	"  AND NOT EXISTS (SELECT 1 FROM gone) AND " PREV_DECIDED_SQL ") OR (" FIRST_DECIDED_SQL ")" \
	"  THEN $1::bigint::text ELSE '' END, false)"
/* The reach of import $1 and of the earlier ones (failed, partial) is
 * read no more, but for a run that can still be resumed: its resume sets
 * its page rows from it and its removals read it. */
#define DELETE_REACHED_SQL \
	"DELETE FROM raced_reached r WHERE r.import_id <= $1::bigint AND NOT EXISTS (" \
	" SELECT 1 FROM import_runs i WHERE i.id = r.import_id AND i.resumable)"

/* The finish's joins against the run's reach (the clean-up of page rows;
 * the marking, unmarking and counts, against the keys seen) are planned
 * with nested loops off.  A nested loop runs its inner side once per
 * outer row: planned from statistics that say the stage has almost no
 * page rows (raced_pages analyzed just after the stage's state was
 * dropped, then a first import of 370,000 pages), the clean-up read the
 * whole reach once per page row, and ran for more than 12 minutes
 * (docs/performance.md, "The finish under stale statistics").  Without
 * them it is a hash or merge join whatever the estimates: linear.  The
 * setting is the transaction's, put back as it was before the
 * statements that follow (the unlinking probes an index per removed
 * parent, which a hash join would not).
 *
 * Not a resume's join of its reach with the page rows: it names no
 * stage, so stale statistics of the stage column do not make its
 * estimates small, and by index probes it costs a few ms where a hash
 * join would read every page row (0.1-0.2 s a statement at 370,000).
 *
 * PostgreSQL costs a disabled nested loop 1e10 more, and the reach's
 * unnest can only be joined by one: these plans would pass the JIT
 * thresholds, which matters not, as every connection of raced sets
 * jit = off (store_schema.c). */
#define NESTLOOP_OFF_SQL \
	"SELECT set_config('raced.enable_nestloop', current_setting('enable_nestloop'), true)," \
	" set_config('enable_nestloop', 'off', true)"
#define NESTLOOP_BACK_SQL \
	"SELECT set_config('enable_nestloop', current_setting('raced.enable_nestloop'), true)"

/* Statement i of op: sql with the import id (and the stage, if not NULL). */
static int id_stmt(struct store_op *op, size_t i, const char *sql, const char *id,
                   const char *stage)
{
	const char *p[] = { id, stage };
	return store_op_stmt(op, i, sql, stage ? 2 : 1, p);
}

struct store_op *store_runs_finish(struct store_runs *r, const struct store_table_sql *tables,
                                   size_t n_tables, int64_t import_id, const char *status,
                                   json_t *counts, unsigned flags, const bool *keys_kept,
                                   const bool *all_reached, const struct store_fresh *fresh,
                                   store_done_fn cb, void *arg)
{
	bool removals = flags & STORE_FINISH_REMOVALS;
	bool prune_root = (flags & STORE_FINISH_PRUNE_ROOT) && !removals && n_tables > 0;
	size_t n_links = 0;
	for (size_t t = 0; removals && t < n_tables; t++)
		n_links += tables[t].unlink_sql != NULL;
	size_t n = 1 + (removals ? 5 * n_tables + n_links : 0) + (prune_root ? 3 : 0);
	char *ctext = final_counts(r, import_id, counts);
	struct store_op *op = ctext ? store_op_new(STORE_OP_FINISH_IMPORT, n) : NULL;
	if (!op) {
		free(ctext);
		return NULL;
	}
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)import_id);
	int rc = 0;
	size_t i = 0;
	/* One transaction (one sync): the removals and clean-up are decided
	 * exactly when the run is recorded as finished. */
	for (size_t t = 0; removals && t < n_tables; t++) {
		/* First: the marking reads the pages reached, not the ones it
		 * deletes, and the others read what it decides. */
		char records[24];
		bool first = fresh && fresh[t].records >= 0;
		if (first)
			snprintf(records, sizeof records, "%lld", (long long)fresh[t].records);
		const char *p5[] = { id, tables[t].name, keys_kept && keys_kept[t] ? "true" : "false",
		                     first ? records : NULL,
		                     all_reached && all_reached[t] ? "true" : "false" };
		store_op_sql(op, i++, NESTLOOP_OFF_SQL);
		rc |= store_op_stmt(op, i++, DECIDE_SQL, 5, p5);
		rc |= id_stmt(op, i++, tables[t].mark_sql, id, NULL);
		rc |= id_stmt(op, i++, tables[t].unmark_sql, id, NULL);
		store_op_sql(op, i++, NESTLOOP_BACK_SQL);
		/* After its parent's removals: stages come after their parents. */
		if (tables[t].unlink_sql)
			rc |= id_stmt(op, i++, tables[t].unlink_sql, id, NULL);
	}
	if (prune_root) {
		store_op_sql(op, i++, NESTLOOP_OFF_SQL);
		rc |= id_stmt(op, i++, DELETE_PAGES_SQL, id, tables[0].name);
		store_op_sql(op, i++, NESTLOOP_BACK_SQL);
	}
	const char *p[] = { id, status, ctext, flags & STORE_FINISH_RESUMABLE ? "true" : "false" };
	rc |= store_op_stmt(op, i, "UPDATE import_runs SET status = $2, finished_at = now(),"
	                           " counts = $3::jsonb, resumable = $4 WHERE id = $1", 4, p);
	free(ctext);
	if (rc) {
		store_op_free(op);
		return NULL;
	}
	op->done = status_done;
	op->reply.done = cb;
	op->reply_arg = arg;
	return op;
}

static void counts_done(struct store_op *op, const PGresult *res, const char *err)
{
	(void)op;
	(void)res;
	(void)err; /* noted as the store's last error; the import's own counts stay */
}

struct store_op *store_runs_counts(const struct store_table_sql *t, int64_t import_id,
                                   bool no_rows, int64_t fresh_keys)
{
	char id[24], keys[24];
	snprintf(id, sizeof id, "%lld", (long long)import_id);
	snprintf(keys, sizeof keys, "%lld", (long long)fresh_keys);
	const char *p[] = { id, no_rows ? "true" : "false", fresh_keys >= 0 ? keys : NULL };
	/* its count of shared keys joins the keys seen as the marking does;
	 * the setting ends with the op's transaction (one sync) */
	struct store_op *op = store_op_new(STORE_OP_FINISH_IMPORT, 2);
	if (!op)
		return NULL;
	store_op_sql(op, 0, NESTLOOP_OFF_SQL);
	if (store_op_stmt(op, 1, t->counts_sql, 3, p) != 0) {
		store_op_free(op);
		return NULL;
	}
	op->done = counts_done;
	return op;
}

struct store_op *store_runs_forget_reach(int64_t import_id)
{
	char id[24];
	snprintf(id, sizeof id, "%lld", (long long)import_id);
	const char *p[] = { id };
	return one_statement(STORE_OP_FINISH_IMPORT, DELETE_REACHED_SQL, 1, p, counts_done);
}

static void index_done(struct store_op *op, const PGresult *res, const char *err)
{
	(void)res;
	if (err) /* its first line: the CONTEXT after it quotes the DO block */
		log_warn("database: an index of table %s was not made at the import's finish: %.*s; readers"
		         " of the table scan it until the next import's finish or raced's next connection"
		         " makes it (a lock held on the table past lock_timeout, or a full disk, are the"
		         " usual causes)", (const char *)op->reply_arg, (int)strcspn(err, "\n"), err);
}

struct store_op *store_runs_index(const char *sql, const char *table)
{
	struct store_op *op = store_op_new(STORE_OP_BUILD_INDEX, 3);
	if (!op)
		return NULL;
	op->reply_arg = (void *)(uintptr_t)table;
	/* A sorted build over a whole table may take longer than a role's
	 * statement_timeout allows the batches; its error would drop the
	 * connection (a timeout is transient) and the next connect build it
	 * again, with no timeout.  So none here, as for that connect. */
	store_op_sql(op, 0, "SELECT set_config('statement_timeout', '0', true)");
	/* PostgreSQL gives a build workers (max_parallel_maintenance_workers)
	 * only over tables past min_parallel_table_scan_size (8 MB by
	 * default): a first import's tables of a few MB got none, and their
	 * builds ran on one CPU while raced waited (docs/performance.md,
	 * "Index builds at the finish, overlapped").  set_config(..., true),
	 * not SET LOCAL: the op's statements are the pipeline's implicit
	 * transaction, where SET LOCAL works but logs a WARNING each time. */
	store_op_sql(op, 1, "SELECT set_config('min_parallel_table_scan_size', '" STORE_INDEX_PARALLEL_MIN "', true)");
	store_op_sql(op, 2, sql);
	op->done = index_done;
	return op;
}

/* --- resume ------------------------------------------------------------- */

static void resume_done(struct store_op *op, const PGresult *res, const char *err)
{
	char msg[ERR_MAX];
	if (!err && !res)
		err = "no import runs are recorded ([database] discard = yes): nothing to resume";
	else if (!err && (PQntuples(res) != 1 || atoi(PQgetvalue(res, 0, 0)) != 1)) {
		const char *id = op->stmts[0].params[0];
		if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1))
			snprintf(msg, sizeof msg, "there is no import %s", id);
		else
			snprintf(msg, sizeof msg, "import %s cannot be resumed: its status is '%s' and it "
			         "is not resumable (only an interrupted import, or one failed for "
			         "the database, is)", id, PQgetvalue(res, 0, 1));
		err = msg;
	}
	if (op->reply.done)
		op->reply.done(op->reply_arg, err);
}

#define RESUMABLE "EXISTS (SELECT 1 FROM import_runs WHERE id = $1::bigint AND resumable)"
#define RESUME_SEEN_SQL \
	"UPDATE raced_pages p SET seen_import = $1::bigint FROM (SELECT DISTINCT r.stage, u.u" \
	"  FROM raced_reached r, unnest(r.urls || r.done) AS u(u) WHERE r.import_id = $1::bigint) s" \
	" WHERE " RESUMABLE " AND p.stage = s.stage AND p.url = s.u" \
	"  AND p.seen_import >= 0 AND p.seen_import <> $1::bigint"
#define RESUME_DONE_SQL \
	"UPDATE raced_pages p SET done_import = $1::bigint FROM (SELECT DISTINCT r.stage, u.u" \
	"  FROM raced_reached r, unnest(r.done) AS u(u) WHERE r.import_id = $1::bigint) s" \
	" WHERE " RESUMABLE " AND p.stage = s.stage AND p.url = s.u" \
	"  AND p.done_import IS DISTINCT FROM $1::bigint"

struct store_op *store_runs_resume(int64_t id, store_done_fn cb, void *arg)
{
	char ids[24];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	const char *p[] = { ids };
	/* One transaction.  First, if the run can be resumed, what it reached
	 * and completed before it stopped (raced_reached) is set on its page
	 * rows (seen_import, page 0's done_import), which the import reads
	 * with each input's state: the one write per page a resume costs,
	 * once.  Then the WHERE decides: of two resumes of one run, one wins.
	 * The status read beside it is the one before this statement (its
	 * snapshot). */
	struct store_op *op = store_op_new(STORE_OP_RESUME_IMPORT, 3);
	if (!op)
		return NULL;
	int rc = store_op_stmt(op, 0, RESUME_SEEN_SQL, 1, p);
	rc |= store_op_stmt(op, 1, RESUME_DONE_SQL, 1, p);
	rc |= store_op_stmt(op, 2,
		"WITH r AS (UPDATE import_runs SET status = 'running', finished_at = NULL,"
		"  resumable = false, resumes = resumes + 1, resumed_at = now()"
		"  WHERE id = $1::bigint AND resumable RETURNING id)"
		" SELECT (SELECT count(*) FROM r), (SELECT status FROM import_runs WHERE id = $1::bigint)",
		1, p);
	if (rc) {
		store_op_free(op);
		return NULL;
	}
	op->done = resume_done;
	op->reply.done = cb;
	op->reply_arg = arg;
	return op;
}

/* --- get ---------------------------------------------------------------- */

void store_runs_answer_runs(struct store_op *op, json_t *runs, const char *err)
{
	if (op->reply.json)
		op->reply.json(op->reply_arg, runs, err);
}

/* Answer the caller with the JSON array the statement returned as text;
 * no result at all (the null backend ran nothing) answers none_text. */
static void answer_json_text(struct store_op *op, const PGresult *res, const char *err,
                             const char *none_text)
{
	json_t *j = NULL;
	char jerr[ERR_MAX] = "";
	const char *text = none_text;
	if (!err && res && PQntuples(res) == 1)
		text = PQgetvalue(res, 0, 0);
	if (!err && text) {
		json_error_t je;
		j = json_loads(text, JSON_DECODE_ANY, &je);
		if (!j)
			snprintf(jerr, sizeof jerr, "import_runs as JSON unreadable: %s", je.text);
	} else if (!err) {
		snprintf(jerr, sizeof jerr, "import_runs query returned no row");
	}
	store_runs_answer_runs(op, j, err ? err : (j ? NULL : jerr));
	json_decref(j);
}

static void get_done(struct store_op *op, const PGresult *res, const char *err)
{
	answer_json_text(op, res, err, NULL);
}

/* The null backend's answers: what an empty database would say. */
static void run_done(struct store_op *op, const PGresult *res, const char *err)
{
	answer_json_text(op, res, err, "null");
}

static void cursor_done(struct store_op *op, const PGresult *res, const char *err)
{
	answer_json_text(op, res, err, "{\"last_success\": null, \"max\": null}");
}

static void list_done(struct store_op *op, const PGresult *res, const char *err)
{
	answer_json_text(op, res, err, "[]");
}

/* An op of one statement (n text params) answering cb with its JSON. */
static struct store_op *json_op(enum store_op_kind kind, const char *sql, int n,
                                const char *const *params, store_op_done_fn done,
                                store_json_fn cb, void *arg)
{
	struct store_op *op = one_statement(kind, sql, n, params, done);
	if (op) {
		op->reply.json = cb;
		op->reply_arg = arg;
	}
	return op;
}

/* An op of one statement with the parameters id and limit whose result,
 * one row of JSON text, answers cb. */
static struct store_op *json_query(enum store_op_kind kind, const char *sql, int64_t id,
                                   uint32_t limit, store_json_fn cb, void *arg)
{
	char ids[24], lim[16];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(lim, sizeof lim, "%u", limit ? limit : 1);
	const char *p[] = { ids, lim };
	return json_op(kind, sql, 2, p, get_done, cb, arg);
}

struct store_op *store_runs_get_run(int64_t id, store_json_fn cb, void *arg)
{
	char ids[24];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	const char *p[] = { ids };
	return json_op(STORE_OP_GET_RUN,
		"SELECT coalesce((SELECT json_build_object('id', i.id, 'status', i.status,"
		"  'resumable', i.resumable, 'resumes', i.resumes, 'full_import', i.full_import,"
		"  'root_url', i.root_url, 'pipeline', i.pipeline, 'started_at', i.started_at,"
		"  'finished_at', i.finished_at, 'newer_success', EXISTS (SELECT 1 FROM import_runs n"
		"   WHERE n.id > i.id AND n.status = 'succeeded'))"
		" FROM import_runs i WHERE CASE WHEN $1::bigint = 0 THEN i.resumable"
		"  ELSE i.id = $1::bigint END ORDER BY i.id DESC LIMIT 1)::text, 'null')",
		1, p, run_done, cb, arg);
}

struct store_op *store_runs_cursor(const struct store_table_sql *table, const char *pointer,
                                   store_json_fn cb, void *arg)
{
	const char *p[] = { pointer };
	return json_op(STORE_OP_GET_CURSOR, table->cursor_sql, 1, p, cursor_done, cb, arg);
}

struct store_op *store_runs_list(enum store_op_kind kind, const char *sql, store_json_fn cb,
                                 void *arg)
{
	return json_op(kind, sql, 0, NULL, list_done, cb, arg);
}

/* An error's cause (store.h): an HTTP status other than 2xx (a 200 whose
 * body is unusable is told by its message), else the message with
 * URLs (but a final . , ; or :), quoted values and numbers replaced,
 * spaces collapsed. */
#define ERROR_CAUSE_SQL \
	"CASE WHEN e.http_status NOT BETWEEN 200 AND 299 THEN 'HTTP ' || e.http_status ELSE" \
	" btrim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(" \
	"  coalesce(e.message, ''), '[a-z][a-z0-9+.-]*://[^[:space:]'']*[^[:space:]''.,;:]', 'URL', 'gi')," \
	"  '''[^'']*''', '''?''', 'g'), '[0-9]+', 'N', 'g'), '[[:space:]]+', ' ', 'g')) END"

/* The error groups of run `run` as a JSON array, `lim` URLs each: an SQL
 * expression (both arguments are SQL text). */
#define ERROR_GROUPS_SQL(run, lim) \
	"(SELECT coalesce(json_agg(json_build_object('stage', g.stage, 'cause', g.cause," \
	"  'count', g.n, 'urls', g.urls) ORDER BY g.n DESC, g.stage COLLATE \"C\" NULLS FIRST," \
	"  g.cause COLLATE \"C\"), '[]') FROM (" \
	" SELECT nullif(c.stage, '') AS stage, c.cause, count(*) AS n," \
	"  coalesce((array_agg(c.url ORDER BY c.id) FILTER (WHERE c.url <> ''))[1:" lim "]," \
	"   '{}') AS urls" \
	" FROM (SELECT e.id, e.stage, e.url, " ERROR_CAUSE_SQL " AS cause" \
	"  FROM import_errors e WHERE e.import_id = " run ") c GROUP BY 1, 2) g)"

struct store_op *store_runs_get(int64_t id, uint32_t limit, store_json_fn cb, void *arg)
{
	return json_query(STORE_OP_GET_RUNS,
		"SELECT coalesce(json_agg(r ORDER BY r.id DESC), '[]')::text FROM ("
		" SELECT i.id, i.started_at, i.finished_at, i.status, i.requested_by, i.counts,"
		"  (SELECT count(*) FROM import_errors e WHERE e.import_id = i.id) AS errors,"
		"  i.resumes, i.resumed_at, i.full_import,"
		"  CASE WHEN $1::bigint <> 0 THEN "
		ERROR_GROUPS_SQL("i.id", STORE_RUN_ERROR_URLS_SQL) " END AS error_groups"
		" FROM import_runs i WHERE ($1::bigint = 0 OR i.id = $1::bigint)"
		" ORDER BY i.id DESC LIMIT $2::integer) r", id, limit, cb, arg);
}

struct store_op *store_runs_errors(int64_t id, uint32_t urls, store_json_fn cb, void *arg)
{
	return json_query(STORE_OP_GET_ERRORS,
		"SELECT coalesce((SELECT json_build_object('import_id', r.id, 'status', r.status,"
		"  'errors', (SELECT count(*) FROM import_errors e WHERE e.import_id = r.id),"
		"  'groups', " ERROR_GROUPS_SQL("r.id", "$2::integer") ")"
		" FROM (SELECT i.id, i.status FROM import_runs i"
		"  WHERE ($1::bigint = 0 OR i.id = $1::bigint) ORDER BY i.id DESC LIMIT 1) r)::text,"
		" '{}')", id, urls, cb, arg);
}

/* --- mark stale --------------------------------------------------------- */

/* A stale run's counts: per stage table, the rows whose last_import is the
 * run (i.id) -- the rows its committed batches wrote.  One scan of each
 * table per run marked; nothing at all when no run was left running. */
#define STALE_COUNT_FMT "SELECT '%s' AS stage, count(*) AS n FROM \"%s\" t WHERE t.last_import = i.id"

#define STALE_FMT \
	"WITH marked AS (" \
	" UPDATE import_runs i SET status = 'interrupted', resumable = true," \
	"  finished_at = coalesce(i.heartbeat_at, i.started_at)," \
	"  counts = %s" \
	" WHERE i.status = 'running'" \
	" RETURNING i.id, i.started_at, i.finished_at, i.counts)" \
	" SELECT coalesce(json_agg(m ORDER BY m.id), '[]')::text FROM marked m"

/* The counts expression over the tables: malloc'd, or NULL. */
static char *stale_counts_sql(const struct store_table_sql *tables, size_t n)
{
	char *union_sql = strdup("");
	for (size_t k = 0; union_sql && k < n; k++) {
		char *next = NULL;
		if (asprintf(&next, "%s%s" STALE_COUNT_FMT, union_sql, k ? " UNION ALL " : "",
		             tables[k].name, tables[k].name) < 0)
			next = NULL;
		free(union_sql);
		union_sql = next;
	}
	if (!union_sql)
		return NULL;
	char *expr = NULL;
	if (n == 0)
		expr = strdup("'{}'::jsonb");
	else if (asprintf(&expr, "(SELECT jsonb_object_agg(c.stage, jsonb_build_object('stored', c.n))"
	                         " FROM (%s) c)", union_sql) < 0)
		expr = NULL;
	free(union_sql);
	return expr;
}

static void stale_done(struct store_op *op, const PGresult *res, const char *err)
{
	answer_json_text(op, res, err, "[]");
}

struct store_op *store_runs_mark_stale(struct store_runs *r, const struct store_table_sql *tables,
                                       size_t n_tables, store_json_fn cb, void *arg)
{
	if (!r->stale_sql) {
		char *counts = stale_counts_sql(tables, n_tables);
		if (!counts || asprintf(&r->stale_sql, STALE_FMT, counts) < 0)
			r->stale_sql = NULL;
		free(counts);
		if (!r->stale_sql)
			return NULL;
	}
	struct store_op *op = one_statement(STORE_OP_MARK_STALE, r->stale_sql, 0, NULL, stale_done);
	if (op) {
		op->reply.json = cb;
		op->reply_arg = arg;
	}
	return op;
}
