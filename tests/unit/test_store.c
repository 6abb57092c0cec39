/* test_store — the store against a real PostgreSQL (run under with-pg.sh).
 *
 * The store runs on a libevent loop; the test checks the database through a
 * separate, blocking libpq connection (the test is not the loop). */
#include "pgtest.h"
#include "check.h"
#include "error.h"
#include "store.h"
#include "store_schema.h"
#include "store_views.h"

#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static struct event_base *base;
/* Out of memory on demand: the next malloc of exactly fail_malloc_size
 * bytes from libraced fails (the executable is linked with
 * -Wl,--wrap=malloc). */
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
static size_t fail_malloc_size;

void *__wrap_malloc(size_t n)
{
	if (fail_malloc_size && n == fail_malloc_size) {
		fail_malloc_size = 0;
		return NULL;
	}
	return __real_malloc(n);
}


/* --- harness ------------------------------------------------------------ */

struct seen {
	size_t committed[4];          /* rows acknowledged per table */
	size_t calls[4][64];          /* n of each committed call, per table */
	size_t n_calls[4];
	enum store_state states[64];
	size_t n_states;
	char last_why[ERR_MAX];
	void (*on_committed)(struct seen *, size_t table, size_t n);
	struct store *store;
	void *user;
};

static void cb_state(void *arg, enum store_state st, const char *why)
{
	struct seen *w = arg;
	if (w->n_states < 64)
		w->states[w->n_states++] = st;
	snprintf(w->last_why, sizeof w->last_why, "%s", why ? why : "");
}

static void cb_committed(void *arg, size_t table, size_t n)
{
	struct seen *w = arg;
	w->committed[table] += n;
	if (w->n_calls[table] < 64)
		w->calls[table][w->n_calls[table]++] = n;
	if (w->on_committed)
		w->on_committed(w, table, n);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until pred(arg) holds or timeout_s passes; returns pred. */
static bool run_until(bool (*pred)(void *), void *arg, double timeout_s)
{
	struct event *tick = event_new(base, -1, EV_PERSIST, wake, NULL);
	struct timeval tv = { 0, 20000 };
	event_add(tick, &tv);
	double end = now_s() + timeout_s;
	bool ok;
	while (!(ok = pred(arg)) && now_s() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	return ok;
}

static bool store_ready(void *arg)
{
	return store_state(arg) == STORE_READY;
}

struct want {
	struct seen *w;
	size_t table;
	size_t n;
};

static bool committed_reached(void *arg)
{
	struct want *x = arg;
	return x->w->committed[x->table] >= x->n;
}

/* A store reporting to w (refused rows to `refused`, if not NULL). */
static struct store *start_store(struct seen *w, const struct store_conf *conf,
                                 void (*refused)(void *, size_t, size_t, const char *, const char *))
{
	struct store_callbacks cb = { cb_state, w };
	char err[ERR_MAX] = "";
	struct store *s = store_new(base, conf, &cb, err);
	if (!s) {
		fprintf(stderr, "store_new: %s\n", err);
		return NULL;
	}
	struct store_sink sink = { cb_committed, refused, w, NULL, NULL, NULL, NULL };
	store_attach_sink(s, &sink);
	w->store = s;
	return s;
}

static struct store *open_store(struct seen *w, const char *const *tables, size_t n_tables,
                                uint32_t batch)
{
	struct store_conf conf = { .conninfo = conninfo, .batch_size = batch, .tables = tables, .n_tables = n_tables };
	struct store *s = start_store(w, &conf, NULL);
	if (s && !run_until(store_ready, s, 30))
		fprintf(stderr, "store not ready: %s\n", w->last_why);
	return s;
}

static bool json_text_equal(const char *a, const char *b)
{
	json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
	bool eq = ja && jb && json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return eq;
}

static void flush(struct store *s, size_t table)
{
	char err[ERR_MAX] = "";
	int rc = store_flush(s, table, err);
	if (rc != 0)
		fprintf(stderr, "store_flush: %s\n", err);
	CHECK_EQ(rc, 0);
}

static void add(struct store *s, size_t table, int64_t import_id, const char *key,
                const char *parent, const char *payload)
{
	char err[ERR_MAX] = "";
	int rc = store_add(s, table, import_id, key, parent, payload, strlen(payload), err);
	if (rc != 0)
		fprintf(stderr, "store_add: %s\n", err);
	CHECK_EQ(rc, 0);
}

/* --- tests -------------------------------------------------------------- */

static void test_migrations_applied_once_and_recorded(void)
{
	const char *tables[] = { "races" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 10);
	CHECK_EQ(store_state(s), STORE_READY);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.migrations_applied, (uint32_t)store_schema_version());
	CHECK_EQ(w.n_states, 3);
	CHECK_EQ(w.states[0], STORE_CONNECTING);
	CHECK_EQ(w.states[1], STORE_MIGRATING);
	CHECK_EQ(w.states[2], STORE_READY);
	store_free(s);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_schema_version"), store_schema_version());
	CHECK_EQ(sql_int("SELECT max(version) FROM raced_schema_version"), store_schema_version());
	char *applied = sql1("SELECT applied_at::text FROM raced_schema_version");

	struct seen w2 = { 0 };
	s = open_store(&w2, tables, 1, 10);
	CHECK_EQ(store_state(s), STORE_READY);
	store_get_stats(s, &st);
	CHECK_EQ(st.migrations_applied, 0);
	store_free(s);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_schema_version"), store_schema_version());
	char *applied2 = sql1("SELECT applied_at::text FROM raced_schema_version");
	CHECK_STR(applied2, applied);
	free(applied);
	free(applied2);
	CHECK_EQ(sql_int("SELECT count(*) FROM information_schema.tables WHERE table_name IN"
	                 " ('races', 'import_runs', 'import_errors')"), 3);
}

static void test_invalid_table_name_is_refused(void)
{
	const char *tables[] = { "Races; drop" };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 10, .tables = tables, .n_tables = 1 };
	char err[ERR_MAX] = "";
	CHECK(store_new(base, &conf, NULL, err) == NULL);
	CHECK(strstr(err, "'Races; drop'") != NULL);
	const char *t2[] = { "import_runs" };
	conf.tables = t2;
	CHECK(store_new(base, &conf, NULL, err) == NULL);
	conf.tables = tables;
	conf.n_tables = 0;
	conf.batch_size = 0;
	CHECK(store_new(base, &conf, NULL, err) == NULL);
	CHECK(strstr(err, "batch_size") != NULL);
}

static void test_rows_stored_with_exact_payload_and_parent_key(void)
{
	const char *tables[] = { "p_races", "p_entries" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 2, 3);
	const char *race = "{\"id\": 7, \"name\": \"Berlin \\\"Marathon\\\"\", \"path\": \"C:\\\\x\", "
	                   "\"city\": \"K\\u00f6ln \xe2\x82\xac\", \"tags\": [1, 2.5, null, true], \"o\": {}}";
	add(s, 0, 1, "7", NULL, race);
	add(s, 1, 1, "e1", "7", "{\"id\": \"e1\", \"bib\": 1}");
	add(s, 1, 1, "e2", "7", "{\"id\": \"e2\", \"bib\": 2}");
	add(s, 1, 1, "e3", "7", "{\"id\": \"e3\", \"bib\": 3}");  /* a full batch */
	add(s, 1, 1, "e\"4\\", "7", "[\"odd key\"]");
	CHECK_EQ(store_pending(s, 1), 4);
	flush(s, 0);
	flush(s, 1);
	struct want x0 = { &w, 0, 1 }, x1 = { &w, 1, 4 };
	CHECK(run_until(committed_reached, &x0, 10));
	CHECK(run_until(committed_reached, &x1, 10));
	CHECK_EQ(store_pending(s, 1), 0);
	CHECK_EQ(w.committed[0], 1);
	CHECK_EQ(w.committed[1], 4);
	char *got = sql1("SELECT payload::text FROM p_races WHERE key = '7'");
	CHECK(got && json_text_equal(got, race));
	free(got);
	CHECK_EQ(sql_int("SELECT count(*) FROM p_races WHERE parent_key IS NULL"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM p_entries WHERE parent_key = '7'"), 4);
	got = sql1("SELECT payload::text FROM p_entries WHERE key = 'e\"4\\'");
	CHECK(got && json_text_equal(got, "[\"odd key\"]"));
	free(got);
	CHECK_EQ(sql_int("SELECT count(*) FROM p_entries WHERE first_import = 1 AND last_import = 1"), 4);
	store_free(s);
}

static void test_unchanged_rows_keep_updated_at_and_changed_rows_update(void)
{
	const char *tables[] = { "u_items" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 100);
	char key[16], payload[64];
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(payload, sizeof payload, "{\"i\": %d, \"v\": \"a\"}", i);
		add(s, 0, 1, key, "p", payload);
	}
	flush(s, 0);
	struct want x = { &w, 0, 10 };
	CHECK(run_until(committed_reached, &x, 10));
	char *before = sql1("SELECT string_agg(key || '=' || updated_at::text, ',' ORDER BY key) FROM u_items");
	char *xmin_before = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM u_items");

	/* Same data, same import (a retried batch): nothing is written at all. */
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(payload, sizeof payload, "{\"v\": \"a\", \"i\": %d}", i); /* same JSON */
		add(s, 0, 1, key, "p", payload);
	}
	flush(s, 0);
	x.n = 20;
	CHECK(run_until(committed_reached, &x, 10));
	char *xmin_same = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM u_items");
	CHECK_STR(xmin_same, xmin_before);

	/* Import 2: k3 changed, the rest unchanged. */
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(payload, sizeof payload, "{\"i\": %d, \"v\": \"%s\"}", i, i == 3 ? "b" : "a");
		add(s, 0, 2, key, "p", payload);
	}
	flush(s, 0);
	x.n = 30;
	CHECK(run_until(committed_reached, &x, 10));
	char *after = sql1("SELECT string_agg(key || '=' || updated_at::text, ',' ORDER BY key)"
	                   " FROM u_items WHERE key <> 'k3'");
	/* The nine unchanged rows keep the updated_at of their first write. */
	char *b9 = calloc(1, strlen(before) + 1);
	char *copy = strdup(before), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "k3=", 3) == 0)
			continue;
		if (b9[0])
			strcat(b9, ",");
		strcat(b9, tok);
	}
	free(copy);
	CHECK_STR(after, b9);
	CHECK_EQ(sql_int("SELECT count(*) FROM u_items WHERE key = 'k3' AND payload->>'v' = 'b'"
	                 " AND updated_at > (SELECT max(updated_at) FROM u_items WHERE key <> 'k3')"), 1);
	/* last_import is the import that wrote the row: k3 only; the other
	 * nine were not written at all. */
	CHECK_EQ(sql_int("SELECT count(*) FROM u_items WHERE first_import = 1 AND last_import = 2"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM u_items WHERE last_import = 2 AND key = 'k3'"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM u_items WHERE last_import = 1"), 9);
	free(before);
	free(after);
	free(b9);
	free(xmin_before);
	free(xmin_same);
	store_free(s);
}

static void test_rows_of_two_imports_are_never_one_batch(void)
{
	const char *tables[] = { "m_items" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 100);
	add(s, 0, 1, "k0", NULL, "{\"v\": 0}");
	add(s, 0, 1, "k1", "p", "{\"v\": 1}");
	add(s, 0, 1, "k2", NULL, "{\"v\": 2}");
	/* Import 2 starts before import 1's rows were flushed. */
	add(s, 0, 2, "k1", "p", "{\"v\": 10}");
	add(s, 0, 2, "k3", NULL, "{\"v\": 3}");
	CHECK_EQ(store_pending(s, 0), 5);
	flush(s, 0);
	struct want x = { &w, 0, 5 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.n_calls[0], 2);
	CHECK_EQ(w.calls[0][0], 3);
	CHECK_EQ(w.calls[0][1], 2);
	char *got = sql1("SELECT string_agg(key || ':' || coalesce(parent_key, '-') || ':' || first_import"
	                 " || ':' || last_import || ':' || (payload->>'v'), ',' ORDER BY key) FROM m_items");
	CHECK_STR(got, "k0:-:1:1:0,k1:p:1:2:10,k2:-:1:1:2,k3:-:2:2:3");
	free(got);
	store_free(s);
}

static void test_duplicate_key_in_one_batch_is_folded_later_wins(void)
{
	const char *tables[] = { "d_items" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 10);
	add(s, 0, 1, "a", NULL, "{\"v\": 1}");
	add(s, 0, 1, "b", NULL, "{\"v\": 1}");
	add(s, 0, 1, "a", NULL, "{\"v\": 2}");
	add(s, 0, 1, "c", NULL, "{\"v\": 1}");
	add(s, 0, 1, "a", NULL, "{\"v\": 3}");
	flush(s, 0);
	struct want x = { &w, 0, 5 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.committed[0], 5);
	CHECK_EQ(w.n_calls[0], 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM d_items"), 3);
	CHECK_EQ(sql_int("SELECT (payload->>'v')::int FROM d_items WHERE key = 'a'"), 3);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.rows_folded, 2);
	CHECK_EQ(st.batches_committed, 1);
	store_free(s);
}

/* The row that fills a batch is taken even when the batch cannot be built
 * for want of memory: the full batch stays pending, the next add sends it
 * first, and every row is acknowledged once (it overflowed the batch and
 * was acknowledged twice). */
static void test_a_full_batch_that_cannot_be_built_stays_pending(void)
{
	const char *tables[] = { "m_items" };
	const char *payload = "{\"pad\": \"a payload longer than the fold's table\"}";
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 3);
	add(s, 0, 1, "a", NULL, payload);
	add(s, 0, 1, "b", NULL, payload);
	fail_malloc_size = 8 * sizeof(size_t) + 3;  /* the fold's table for 3 rows (8 slots, 3 flags) */
	add(s, 0, 1, "c", NULL, payload);
	CHECK_EQ(fail_malloc_size, 0);            /* it did fail */
	CHECK_EQ(store_pending(s, 0), 3);
	add(s, 0, 1, "d", NULL, payload);
	flush(s, 0);
	struct want x = { &w, 0, 4 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.committed[0], 4);
	CHECK_EQ(sql_int("SELECT count(*) FROM m_items"), 4);
	store_free(s);
}

/* A row whose block (key, parent key and payload in one allocation) cannot
 * be allocated is refused whole: nothing of it pending or acknowledged,
 * the batch around it unharmed, the same row taken when tried again. */
static void test_a_row_whose_block_cannot_be_allocated_is_refused_whole(void)
{
	const char *tables[] = { "mb_items" };
	const char *payload = "{\"pad\": \"a payload of its own length\"}";
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 10);
	add(s, 0, 1, "a", "p", payload);
	add(s, 0, 1, "b", "p", payload);
	char err[ERR_MAX] = "";
	fail_malloc_size = strlen("cc") + strlen("pp") + strlen(payload) + 3;
	CHECK_EQ(store_add(s, 0, 1, "cc", "pp", payload, strlen(payload), err), -1);
	CHECK_EQ(fail_malloc_size, 0);            /* it did fail */
	CHECK(strstr(err, "out of memory") != NULL && strstr(err, "mb_items") != NULL);
	CHECK_EQ(store_pending(s, 0), 2);
	add(s, 0, 1, "cc", "pp", payload);
	flush(s, 0);
	struct want x = { &w, 0, 3 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.committed[0], 3);
	CHECK_EQ(sql_int("SELECT count(*) FROM mb_items WHERE parent_key IS NOT NULL"), 3);
	CHECK_EQ(sql_int("SELECT count(*) FROM mb_items WHERE key = 'cc' AND parent_key = 'pp'"), 1);
	store_free(s);
}

static size_t failed_rows;
static char failed_err[ERR_MAX];

static char failed_key[64];

static void cb_failed(void *arg, size_t table, size_t n, const char *key, const char *err)
{
	(void)arg;
	(void)table;
	failed_rows += n;
	snprintf(failed_key, sizeof failed_key, "%s", key ? key : "(none)");
	snprintf(failed_err, sizeof failed_err, "%s", err);
}

/* A store of batches of 10 into table that reports refused rows, ready. */
static struct store *open_reporting_store(struct seen *w, const char *const *table)
{
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 10, .tables = table, .n_tables = 1 };
	struct store *s = start_store(w, &conf, cb_failed);
	CHECK(s != NULL);
	if (!s)
		return NULL;
	failed_rows = 0;
	CHECK(run_until(store_ready, s, 30));
	return s;
}

/* Refusals cost no connection: the store's figures after them, then free it. */
static void check_refusals_and_free(struct store *s, uint64_t batches_split, uint64_t rows_failed)
{
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.batches_split, batches_split);
	CHECK_EQ(st.rows_failed, rows_failed);
	CHECK_EQ(st.reconnects, 0);
	CHECK_EQ(store_state(s), STORE_READY);
	store_free(s);
}

static void test_refused_row_is_reported_and_the_rest_of_its_batch_stored(void)
{
	const char *tables[] = { "f_items" };
	struct seen w = { 0 };
	struct store *s = open_reporting_store(&w, tables);
	if (!s)
		return;
	add(s, 0, 1, "good1", NULL, "{\"v\": 1}");
	add(s, 0, 1, "bad", NULL, "{not json");
	add(s, 0, 1, "good2", NULL, "{\"v\": 2}");
	flush(s, 0);
	struct want x = { &w, 0, 3 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.committed[0], 3);
	CHECK_EQ(failed_rows, 1);
	CHECK_STR(failed_key, "bad");
	CHECK(strstr(failed_err, "json") != NULL);
	CHECK_EQ(sql_int("SELECT count(*) FROM f_items"), 2);
	check_refusals_and_free(s, 1, 1);
}

static void add_n(struct store *s, const char *prefix, int from, int to, int v)
{
	char key[16], payload[32];
	for (int i = from; i < to; i++) {
		snprintf(key, sizeof key, "%s%d", prefix, i);
		snprintf(payload, sizeof payload, "{\"v\": %d}", v);
		add(s, 0, 1, key, NULL, payload);
	}
}

/* Over two connections a batch's rows are routed to their connections'
 * batches by key hash and the table's row array is kept for the next
 * batch: folding, a refused share retried row by row, a batch whose
 * routing ran out of memory (it stays pending, the next add sends it)
 * and rows pending when the store is freed each acknowledge every row
 * once, store each key's last row, and free each row once (ASan). */
static void test_routed_batches_fold_split_retry_and_free_pending_rows(void)
{
	const char *tables[] = { "rt_items" };
	struct seen w = { 0 };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 10, .tables = tables,
	                           .n_tables = 1, .connections = 2 };
	struct store *s = start_store(&w, &conf, cb_failed);
	CHECK(s != NULL);
	if (!s)
		return;
	failed_rows = 0;
	CHECK(run_until(store_ready, s, 30));
	/* batch 1: r0..r7, then r0 and r1 again: 10 added, 8 rows sent */
	add_n(s, "r", 0, 8, 1);
	add_n(s, "r", 0, 2, 2);
	struct want x = { &w, 0, 10 };
	CHECK(run_until(committed_reached, &x, 10));
	/* batch 2: s0..s9, s3 refused by PostgreSQL: its share is retried row by row */
	add_n(s, "s", 0, 3, 1);
	add(s, 0, 1, "s3", NULL, "{not json");
	add_n(s, "s", 4, 10, 1);
	x.n = 20;
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(failed_rows, 1);
	CHECK_STR(failed_key, "s3");
	/* batch 3: t0..t9, the routing's array of destinations (10 bytes) fails */
	add_n(s, "t", 0, 9, 1);
	fail_malloc_size = 10;
	add_n(s, "t", 9, 10, 1);
	CHECK_EQ(fail_malloc_size, 0);             /* it did fail */
	CHECK_EQ(store_pending(s, 0), 10);
	add_n(s, "t", 10, 11, 1);                  /* sends batch 3 first */
	x.n = 30;
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.committed[0], 30);
	CHECK_EQ(sql_int("SELECT count(*) FROM rt_items"), 8 + 9 + 10);
	CHECK_EQ(sql_int("SELECT count(*) FROM rt_items WHERE key IN ('r0', 'r1')"
	                 " AND payload->>'v' = '2'"), 2);
	CHECK_EQ(sql_int("SELECT count(*) FROM rt_items WHERE key = 's3'"), 0);
	CHECK_EQ(sql_int("SELECT count(DISTINCT xmin::text) FROM rt_items"
	                 " WHERE key LIKE 't%'"), 2);   /* batch 3 went over both */
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.rows_folded, 2);
	CHECK_EQ(st.rows_failed, 1);
	CHECK_EQ(st.reconnects, 0);
	/* t10 and two more pending (over the kept array) when the store is freed */
	add_n(s, "u", 0, 2, 1);
	CHECK_EQ(store_pending(s, 0), 3);
	store_free(s);
}

static size_t table_refused_calls, table_refused_rows;

static void cb_table_refused(void *arg, size_t table, size_t n, const char *err)
{
	(void)arg;
	(void)table;
	table_refused_calls++;
	table_refused_rows += n;
	snprintf(failed_err, sizeof failed_err, "%s", err);
}

/* Views: a stage's current view and the leaf's path view are made at
 * connect, and made again at the next connect when the table gained a
 * column, the column stage-prefixed in the path view.  (A retype or drop
 * that a view blocks: the typed columns' function drops raced's views
 * first, tests/integration/typed_columns.sh.) */
static void test_views_follow_the_tables_columns(void)
{
	const char *tables[] = { "vw_races", "vw_entries" };
	const int parents[] = { -1, 0 };
	struct seen w = { 0 };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 10, .tables = tables,
	                           .n_tables = 2, .parents = parents };
	struct store_callbacks cb = { cb_state, &w };
	char err[ERR_MAX] = "";
	struct store *s = store_new(base, &conf, &cb, err);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(run_until(store_ready, s, 30));
	store_free(s);
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_views WHERE viewname IN"
	                 " ('vw_races_current', 'vw_entries_current', 'vw_races_vw_entries')"), 3);
	sql_exec("ALTER TABLE vw_entries ADD COLUMN bib integer");
	s = store_new(base, &conf, &cb, err);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(run_until(store_ready, s, 30));
	store_free(s);
	CHECK_EQ(sql_int("SELECT count(*) FROM information_schema.columns WHERE"
	                 " table_name = 'vw_races_vw_entries' AND column_name = 'vw_entries_bib'"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM information_schema.columns WHERE"
	                 " table_name = 'vw_entries_current' AND column_name = 'bib'"), 1);
}

/* A stage table dropped mid-import (SQLSTATE 42P01) is the table's fault,
 * not the rows': the batch is not split into one-row batches (each would
 * fail alike), the sink hears it once per batch as table_refused, with the
 * fix, and the rows are acknowledged all the same. */
static void test_dropped_table_refuses_the_batch_whole_naming_the_fix(void)
{
	const char *tables[] = { "d_items" };
	struct seen w = { 0 };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 10, .tables = tables, .n_tables = 1 };
	struct store_callbacks cb = { cb_state, &w };
	char err[ERR_MAX] = "";
	struct store *s = store_new(base, &conf, &cb, err);
	CHECK(s != NULL);
	if (!s)
		return;
	w.store = s;
	struct store_sink sink = { cb_committed, cb_failed, &w, cb_table_refused, NULL, NULL, NULL };
	store_attach_sink(s, &sink);
	CHECK(run_until(store_ready, s, 30));
	failed_rows = table_refused_calls = table_refused_rows = 0;
	sql_exec("DROP TABLE d_items CASCADE"); /* and its view */
	for (int i = 0; i < 5; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%d", i);
		add(s, 0, 1, key, NULL, "{\"v\": 1}");
	}
	flush(s, 0);
	struct want x = { &w, 0, 5 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.committed[0], 5);
	CHECK_EQ(table_refused_calls, 1);
	CHECK_EQ(table_refused_rows, 5);
	CHECK_EQ(failed_rows, 0);
	CHECK_STR(failed_err, "table d_items does not exist: was it dropped during the import? "
	                      "raced creates its tables when it connects: restart raced to create it again");
	check_refusals_and_free(s, 0, 5);
}

/* The backoffs a test waits through: their delays, and how many named
 * the error expected. */
struct backoffs {
	struct seen *w;
	unsigned delays[3];
	const char *why;              /* what each backoff must name */
	size_t n, named;
};

static bool next_backoff(void *arg)
{
	struct backoffs *l = arg;
	const char *at = strstr(l->w->last_why, "retrying in ");
	if (store_state(l->w->store) != STORE_BACKOFF || !at)
		return false;
	l->delays[l->n++] = (unsigned)atoi(at + strlen("retrying in "));
	l->named += strstr(l->w->last_why, l->why) != NULL;
	return true;
}

static bool not_in_backoff(void *arg)
{
	return store_state(arg) != STORE_BACKOFF;
}

/* Run through three backoffs and the reconnects after them. */
static void wait_backoffs(struct backoffs *l)
{
	for (int i = 0; i < 3; i++) {
		CHECK(run_until(next_backoff, l, 10));
		CHECK(run_until(not_in_backoff, l->w->store, 10));
	}
}

/* A lock someone else holds on a stage table (a CREATE INDEX, say) past
 * the connection's lock_timeout is the moment's fault, not the rows': the
 * batch is tried again as it was until the lock is gone, and no row is
 * refused. */
static void test_lock_held_past_lock_timeout_is_waited_out(void)
{
	const char *tables[] = { "l_items" };
	struct seen w = { 0 };
	sql_exec("ALTER ROLE CURRENT_USER SET lock_timeout = '50ms'");
	struct store *s = open_reporting_store(&w, tables);
	if (!s)
		return;
	PGconn *holder = PQconnectdb(conninfo);
	PGresult *r = PQexec(holder, "BEGIN; LOCK TABLE l_items IN SHARE MODE");
	CHECK_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	for (int i = 0; i < 5; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%d", i);
		add(s, 0, 1, key, NULL, "{\"v\": 1}");
	}
	flush(s, 0);
	struct backoffs l = { &w, { 0 }, "lock timeout", 0, 0 };
	wait_backoffs(&l);
	CHECK_EQ(l.named, 3);
	CHECK_EQ(w.committed[0], 0);
	r = PQexec(holder, "COMMIT");
	PQclear(r);
	PQfinish(holder);
	struct want x = { &w, 0, 5 };
	CHECK(run_until(committed_reached, &x, 30));
	CHECK_EQ(failed_rows, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM l_items"), 5);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.batches_split, 0);
	CHECK_EQ(st.rows_failed, 0);
	sql_exec("ALTER ROLE CURRENT_USER RESET lock_timeout");
	store_free(s);
}

/* The index a finish builds on one connection and the same index a
 * reconnecting connection's set-up makes at once: the second waits for
 * the first (its build is invisible to it) and then must not fail on the
 * catalog's unique index; either way the index is there. */
static bool backend_waits_on_lock(void *arg)
{
	(void)arg;
	return sql_int("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
	               " AND query LIKE 'DO $raced$%'") == 1;
}

static void test_the_same_index_made_on_two_connections_at_once_is_no_error(void)
{
	struct store_table_sql t = { 0 };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_table_sql_init(&t, "twice", NULL, false, err), 0);
	sql_exec("DROP TABLE IF EXISTS twice CASCADE");
	sql_exec(t.create_sql);
	sql_exec("INSERT INTO twice (key, payload, last_import) VALUES ('a', '{}', 1)");
	const char *stmts[] = { t.index_finish_sql, t.index_sql, store_pages_index_finish_sql };
	const char *made[] = { "twice_parent_key", "twice_parent_key", "raced_pages_input" };
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		sql_exec("DROP INDEX IF EXISTS twice_parent_key");
		sql_exec("DROP INDEX IF EXISTS raced_pages_input");
		PGconn *first = PQconnectdb(conninfo), *second = PQconnectdb(conninfo);
		PGresult *r = PQexec(first, "BEGIN");
		PQclear(r);
		r = PQexec(first, stmts[i == 1 ? 0 : i]);
		CHECK_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
		PQclear(r);
		CHECK_EQ(PQsendQuery(second, stmts[i]), 1);
		CHECK(run_until(backend_waits_on_lock, NULL, 10));
		r = PQexec(first, "COMMIT");
		PQclear(r);
		r = PQgetResult(second);
		CHECK_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fprintf(stderr, "     %s", PQresultErrorMessage(r));
		PQclear(r);
		while ((r = PQgetResult(second)))
			PQclear(r);
		PQfinish(first);
		PQfinish(second);
		char q[128];
		snprintf(q, sizeof q, "SELECT count(*) FROM pg_indexes WHERE indexname = '%s'", made[i]);
		CHECK_EQ(sql_int(q), 1);
	}
	sql_exec("DROP TABLE twice CASCADE");
	store_table_sql_free(&t);
}

/* A batch that fails on every fresh connection (here it outlasts
 * statement_timeout) must not retry at the first delay forever: connecting
 * fine does not reset the delay, only a statement that succeeds does. */
static void test_statement_failing_after_each_reconnect_backs_off_further(void)
{
	const char *tables[] = { "t_items" };
	struct seen w = { 0 };
	sql_exec("ALTER ROLE CURRENT_USER SET statement_timeout = '100ms'");
	struct store *s = open_reporting_store(&w, tables);
	if (!s)
		return;
	sql_exec("CREATE FUNCTION t_slow() RETURNS trigger LANGUAGE plpgsql AS "
	         "$$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$");
	sql_exec("CREATE TRIGGER t_slow BEFORE INSERT ON t_items FOR EACH STATEMENT EXECUTE FUNCTION t_slow()");
	add(s, 0, 1, "k", NULL, "{\"v\": 1}");
	flush(s, 0);
	struct backoffs l = { &w, { 0 }, "statement timeout", 0, 0 };
	wait_backoffs(&l);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(l.named, 3);
	/* 100, 200, 400 ms, +-20 %; reset by each reconnect it stayed at 100 */
	CHECK(l.delays[2] > 2 * l.delays[0]);
	sql_exec("ALTER ROLE CURRENT_USER RESET statement_timeout");
	sql_exec("DROP TRIGGER t_slow ON t_items");
	struct want x = { &w, 0, 1 };
	CHECK(run_until(committed_reached, &x, 30));
	CHECK_EQ(failed_rows, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM t_items"), 1);
	store_free(s);
}

struct order_log {
	size_t table[32];
	size_t n[32];
	size_t count;
};

static void log_committed(struct seen *w, size_t table, size_t n)
{
	struct order_log *l = w->user;
	if (l->count < 32) {
		l->table[l->count] = table;
		l->n[l->count++] = n;
	}
}

static void test_committed_counts_rows_added_per_batch_in_order(void)
{
	const char *tables[] = { "o_a", "o_b" };
	struct seen w = { 0 };
	struct order_log log = { 0 };
	w.user = &log;
	w.on_committed = log_committed;
	struct store *s = open_store(&w, tables, 2, 100);
	char key[32];
	for (int i = 0; i < 250; i++) {
		snprintf(key, sizeof key, "a%d", i);
		add(s, 0, 1, key, NULL, "{}");
		if (i < 120) {
			snprintf(key, sizeof key, "b%d", i);
			add(s, 1, 1, key, NULL, "{}");
		}
	}
	flush(s, 1);
	flush(s, 0);
	struct want x0 = { &w, 0, 250 }, x1 = { &w, 1, 120 };
	CHECK(run_until(committed_reached, &x0, 10));
	CHECK(run_until(committed_reached, &x1, 10));
	/* Batches in the order they were formed: a100 b100 a100 b20 a50. */
	CHECK_EQ(log.count, 5);
	size_t et[] = { 0, 1, 0, 1, 0 }, en[] = { 100, 100, 100, 20, 50 };
	for (size_t i = 0; i < 5 && i < log.count; i++) {
		CHECK_EQ(log.table[i], et[i]);
		CHECK_EQ(log.n[i], en[i]);
	}
	CHECK_EQ(store_table_committed(s, 0), 250);
	CHECK_EQ(store_table_committed(s, 1), 120);
	CHECK_EQ(sql_int("SELECT count(*) FROM o_a"), 250);
	CHECK_EQ(sql_int("SELECT count(*) FROM o_b"), 120);
	store_free(s);
}

struct run_ctx {
	int64_t id;
	bool got_id, finished, got_runs, stale_done;
	char err[ERR_MAX];
	json_t *runs;
};

static void on_id(void *arg, int64_t id, const char *err)
{
	struct run_ctx *c = arg;
	c->id = id;
	c->got_id = true;
	if (err)
		snprintf(c->err, sizeof c->err, "%s", err);
}

static void on_finished(void *arg, const char *err)
{
	struct run_ctx *c = arg;
	c->finished = true;
	if (err)
		snprintf(c->err, sizeof c->err, "%s", err);
}

static void on_runs(void *arg, json_t *result, const char *err)
{
	struct run_ctx *c = arg;
	c->got_runs = true;
	c->runs = json_incref(result);
	if (err)
		snprintf(c->err, sizeof c->err, "%s", err);
}

static bool flag_set(void *arg)
{
	return *(bool *)arg;
}

/* A store of one table (batches of 100), ready, with a run begun (c->id). */
static struct store *open_store_with_run(struct seen *w, const char *const *table,
                                         struct run_ctx *c)
{
	struct store *s = open_store(w, table, 1, 100);
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "test" }, on_id, c), 0);
	CHECK(run_until(flag_set, &c->got_id, 10));
	return s;
}

static void test_import_runs_begin_finish_and_get_runs(void)
{
	sql_exec("DELETE FROM import_runs");
	sql_exec("INSERT INTO import_runs (status, requested_by) VALUES ('running', 'dead daemon')");
	const char *tables[] = { "r_items" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 100);
	CHECK_EQ(store_mark_stale_runs(s, NULL, NULL), 0);
	struct run_ctx c = { 0 };
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "racectl by alice" }, on_id, &c), 0);
	CHECK(run_until(flag_set, &c.got_id, 10));
	CHECK(c.id > 0);
	CHECK_STR(c.err, "");
	CHECK_EQ(sql_int("SELECT count(*) FROM import_runs WHERE status = 'interrupted'"
	                 " AND requested_by = 'dead daemon' AND finished_at IS NOT NULL"), 1);
	add(s, 0, c.id, "x", NULL, "{\"x\": 1}");
	CHECK_EQ(store_add_error(s, c.id, "entries", "http://127.0.0.1:1/races/9/entries", 503, 6,
	                         "HTTP 503 after 6 attempts"), 0);
	CHECK_EQ(store_add_error(s, c.id, "athletes", "http://127.0.0.1:1/athletes/3", 0, 1,
	                         "connection refused"), 0);
	json_t *counts = json_pack("{s:i, s:i}", "r_items", 1, "athletes", 0);
	CHECK_EQ(store_finish_import(s, c.id, "partial", counts, 0, on_finished, &c), 0);
	json_decref(counts);
	CHECK(run_until(flag_set, &c.finished, 10));
	/* finish_import comes after the row queued before it: flushed, committed. */
	CHECK_EQ(w.committed[0], 1);
	CHECK_STR(c.err, "");
	CHECK_EQ(store_get_runs(s, c.id, 0, on_runs, &c), 0);
	CHECK(run_until(flag_set, &c.got_runs, 10));
	CHECK_EQ(json_array_size(c.runs), 1);
	json_t *r = json_array_get(c.runs, 0);
	CHECK_EQ(json_integer_value(json_object_get(r, "id")), c.id);
	CHECK_STR(json_string_value(json_object_get(r, "status")), "partial");
	CHECK_STR(json_string_value(json_object_get(r, "requested_by")), "racectl by alice");
	CHECK_EQ(json_integer_value(json_object_get(json_object_get(r, "counts"), "r_items")), 1);
	CHECK_EQ(json_integer_value(json_object_get(r, "errors")), 2);
	CHECK(json_is_string(json_object_get(r, "started_at")));
	CHECK(json_is_string(json_object_get(r, "finished_at")));
	json_decref(c.runs);
	c.runs = NULL;
	c.got_runs = false;
	CHECK_EQ(store_get_runs(s, 0, 10, on_runs, &c), 0);
	CHECK(run_until(flag_set, &c.got_runs, 10));
	CHECK_EQ(json_array_size(c.runs), 2);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(c.runs, 0), "id")), c.id);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c.runs, 1), "status")), "interrupted");
	json_decref(c.runs);

	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM import_errors WHERE import_id = %lld AND stage = 'entries'"
	         " AND url = 'http://127.0.0.1:1/races/9/entries' AND http_status = 503 AND attempts = 6"
	         " AND message = 'HTTP 503 after 6 attempts'", (long long)c.id);
	CHECK_EQ(sql_int(q), 1);
	snprintf(q, sizeof q, "SELECT count(*) FROM import_errors WHERE import_id = %lld AND stage = 'athletes'"
	         " AND http_status IS NULL AND attempts = 1", (long long)c.id);
	CHECK_EQ(sql_int(q), 1);
	store_free(s);
}

/* Errors group by stage and cause: an HTTP status outside 2xx is the cause
 * "HTTP NNN"; otherwise the message with URLs (not their final ':'),
 * quoted values and digit runs replaced, spaces collapsed, so failures of
 * one kind on different URLs and keys are one group.  Largest group first,
 * then stage and cause bytewise; the first `urls` non-empty URLs in the
 * order recorded; an empty stage is null. */
static void test_errors_group_by_stage_and_normalized_cause(void)
{
	const char *tables[] = { "g_items" };
	struct seen w = { 0 };
	struct run_ctx c = { 0 };
	struct store *s = open_store_with_run(&w, tables, &c);
	static const struct { const char *stage, *url; long status; const char *message; } e[] = {
		{ "athletes", "http://h:1/athletes/7", 404, "HTTP 404 Not Found" },
		{ "entries", "http://h:1/races/5/entries", 200,
		  "GET http://h:1/races/5/entries: body is not JSON:  '<' at line 1" },
		{ "athletes", "http://h:1/athletes/8", 404, "HTTP 404 Not Found" },
		{ "entries", "http://h:1/races/6/entries", 0,
		  "GET http://h:1/races/6/entries: body is not JSON: 'x' at line 22" },
		{ "athletes", "http://h:1/athletes/9", 404, "HTTP 404 Not Found" },
		{ "", "", 0, "stage table \"entries\" was dropped" },
	};
	for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
		CHECK_EQ(store_add_error(s, c.id, e[i].stage, e[i].url, e[i].status, 1, e[i].message), 0);
	CHECK_EQ(store_finish_import(s, c.id, "partial", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_EQ(store_get_errors(s, 0, 2, on_runs, &c), 0);
	CHECK(run_until(flag_set, &c.got_runs, 10));
	CHECK_STR(c.err, "");
	char *text = json_dumps(c.runs, JSON_COMPACT | JSON_SORT_KEYS);
	char want[1024];
	snprintf(want, sizeof want,
	         "{\"errors\":6,\"groups\":["
	         "{\"cause\":\"HTTP 404\",\"count\":3,\"stage\":\"athletes\","
	         "\"urls\":[\"http://h:1/athletes/7\",\"http://h:1/athletes/8\"]},"
	         "{\"cause\":\"GET URL: body is not JSON: '?' at line N\",\"count\":2,"
	         "\"stage\":\"entries\","
	         "\"urls\":[\"http://h:1/races/5/entries\",\"http://h:1/races/6/entries\"]},"
	         "{\"cause\":\"stage table \\\"entries\\\" was dropped\",\"count\":1,\"stage\":null,"
	         "\"urls\":[]}],"
	         "\"import_id\":%lld,\"status\":\"partial\"}", (long long)c.id);
	CHECK_STR(text, want);
	free(text);
	json_decref(c.runs);
	c.runs = NULL;
	c.got_runs = false;
	CHECK_EQ(store_get_errors(s, c.id + 1000, 3, on_runs, &c), 0);
	CHECK(run_until(flag_set, &c.got_runs, 10));
	CHECK_EQ(json_object_size(c.runs), 0);
	json_decref(c.runs);
	store_free(s);
}

/* --- killed runs: the heartbeat and the marking ------------------------- */

static bool time_passed(void *arg)
{
	return now_s() >= *(double *)arg;
}

/* Add one row of import id to table 0, flush, wait for its commit. */
static void commit_one(struct seen *w, int64_t id, const char *key)
{
	size_t before = w->committed[0];
	add(w->store, 0, id, key, NULL, "{}");
	flush(w->store, 0);
	struct want x = { w, 0, before + 1 };
	CHECK(run_until(committed_reached, &x, 10));
}

static char *heartbeat_of(int64_t id)
{
	char q[128];
	snprintf(q, sizeof q, "SELECT heartbeat_at::text FROM import_runs WHERE id = %lld", (long long)id);
	return sql1(q);
}

/* A batch carries its run's heartbeat in its own transaction, at most once
 * per STORE_HEARTBEAT_MS: the first batch sets it, a batch within the
 * interval leaves it, the first batch after the interval moves it. */
static void test_a_batch_carries_its_run_heartbeat_at_most_once_a_second(void)
{
	const char *tables[] = { "h_items" };
	struct seen w = { 0 };
	struct run_ctx c = { 0 };
	struct store *s = open_store_with_run(&w, tables, &c);
	char *none = heartbeat_of(c.id);
	CHECK(none == NULL);                       /* no batch yet: no heartbeat */
	free(none);

	double t0 = now_s();
	commit_one(&w, c.id, "a");
	char *first = heartbeat_of(c.id);
	CHECK(first != NULL);
	commit_one(&w, c.id, "b");
	char *within = heartbeat_of(c.id);
	if (now_s() - t0 < STORE_HEARTBEAT_MS / 1000.0)   /* else the box was too slow to tell */
		CHECK_STR(within, first);
	double later = t0 + STORE_HEARTBEAT_MS / 1000.0 + 0.05;
	CHECK(run_until(time_passed, &later, 5));
	commit_one(&w, c.id, "c");
	char q[160];
	snprintf(q, sizeof q, "SELECT heartbeat_at > '%s'::timestamptz FROM import_runs WHERE id = %lld",
	         first ? first : "infinity", (long long)c.id);
	char *moved = sql1(q);
	CHECK_STR(moved, "t");
	free(first);
	free(within);
	free(moved);
	sql_exec("DELETE FROM import_runs");
	store_free(s);
}

/* At start every run left 'running' becomes 'interrupted' with finished_at
 * its last heartbeat (started_at when it never committed a batch) and
 * counts from the rows its batches wrote (last_import = the run); the
 * caller hears which runs, and a second marking finds none. */
static void test_a_run_left_running_is_marked_at_its_last_heartbeat_with_its_rows(void)
{
	sql_exec("DELETE FROM import_runs");
	sql_exec("INSERT INTO import_runs (id, status, started_at, heartbeat_at) VALUES"
	         " (101, 'running', '2026-01-02 03:00:00+00', '2026-01-02 03:04:05.5+00'),"
	         " (102, 'running', '2026-01-02 04:00:00+00', NULL),"
	         " (103, 'succeeded', '2026-01-02 02:00:00+00', NULL)");
	const char *tables[] = { "s_races", "s_entries" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 2, 100);
	sql_exec("INSERT INTO s_races (key, payload, first_import, last_import) VALUES"
	         " ('r1', '{}', 101, 101), ('r2', '{}', 103, 101), ('r3', '{}', 101, 101),"
	         " ('r4', '{}', 103, 103)");
	sql_exec("INSERT INTO s_entries (key, payload, first_import, last_import) VALUES"
	         " ('e1', '{}', 101, 101), ('e2', '{}', 101, 101)");
	struct run_ctx c = { 0 };
	CHECK_EQ(store_mark_stale_runs(s, on_runs, &c), 0);
	CHECK(run_until(flag_set, &c.got_runs, 10));
	CHECK_STR(c.err, "");
	CHECK_EQ(json_array_size(c.runs), 2);
	json_t *a = json_array_get(c.runs, 0), *b = json_array_get(c.runs, 1);
	CHECK_EQ(json_integer_value(json_object_get(a, "id")), 101);
	CHECK_EQ(json_integer_value(json_object_get(b, "id")), 102);
	json_t *want_a = json_pack("{s:{s:i},s:{s:i}}", "s_races", "stored", 3, "s_entries", "stored", 2);
	json_t *want_b = json_pack("{s:{s:i},s:{s:i}}", "s_races", "stored", 0, "s_entries", "stored", 0);
	CHECK(json_equal(json_object_get(a, "counts"), want_a));
	CHECK(json_equal(json_object_get(b, "counts"), want_b));
	json_decref(want_a);
	json_decref(want_b);
	CHECK(json_is_string(json_object_get(a, "finished_at")));
	json_decref(c.runs);

	CHECK_EQ(sql_int("SELECT count(*) FROM import_runs WHERE id = 101 AND status = 'interrupted'"
	                 " AND finished_at = '2026-01-02 03:04:05.5+00'"
	                 " AND counts = '{\"s_races\": {\"stored\": 3}, \"s_entries\": {\"stored\": 2}}'"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM import_runs WHERE id = 102 AND status = 'interrupted'"
	                 " AND finished_at = started_at"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM import_runs WHERE id = 103 AND status = 'succeeded'"
	                 " AND finished_at IS NULL AND counts IS NULL"), 1);

	struct run_ctx again = { 0 };
	CHECK_EQ(store_mark_stale_runs(s, on_runs, &again), 0);
	CHECK(run_until(flag_set, &again.got_runs, 10));
	CHECK_EQ(json_array_size(again.runs), 0);
	CHECK(json_is_array(again.runs));
	json_decref(again.runs);
	sql_exec("DELETE FROM import_runs");
	store_free(s);
}

/* [database] discard = yes: no connection at all (the conninfo names a
 * socket that does not exist), batches acknowledged whole and in order on a
 * later loop turn, never inside store_add, and nothing written. */
static void test_discard_acknowledges_batches_in_order_without_a_database(void)
{
	const char *tables[] = { "d_a", "d_b" };
	struct seen w = { 0 };
	struct order_log log = { 0 };
	w.user = &log;
	w.on_committed = log_committed;
	struct store_conf conf = { .conninfo = "host=/nonexistent dbname=none", .batch_size = 100,
	                           .tables = tables, .n_tables = 2, .discard = true };
	struct store *s = start_store(&w, &conf, NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(run_until(store_ready, s, 5));
	char key[32];
	for (int i = 0; i < 250; i++) {
		snprintf(key, sizeof key, "a%d", i);
		add(s, 0, 1, key, NULL, "{}");
		if (i < 120) {
			snprintf(key, sizeof key, "b%d", i);
			add(s, 1, 1, key, NULL, "{}");
		}
	}
	CHECK_EQ(log.count, 0);   /* nothing acknowledged inside store_add */
	flush(s, 1);
	flush(s, 0);
	struct run_ctx rc = { 0 };
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "test" }, on_id, &rc), 0);
	struct want x0 = { &w, 0, 250 }, x1 = { &w, 1, 120 };
	CHECK(run_until(committed_reached, &x0, 5));
	CHECK(run_until(committed_reached, &x1, 5));
	CHECK_EQ(log.count, 5);
	size_t et[] = { 0, 1, 0, 1, 0 }, en[] = { 100, 100, 100, 20, 50 };
	for (size_t i = 0; i < 5 && i < log.count; i++) {
		CHECK_EQ(log.table[i], et[i]);
		CHECK_EQ(log.n[i], en[i]);
	}
	CHECK(run_until(flag_set, &rc.got_id, 5));
	CHECK_EQ(rc.id, 1);
	CHECK_EQ(store_pending(s, 0), 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_tables WHERE tablename IN ('d_a', 'd_b')"), 0);
	store_free(s);
}

static bool nothing_pending(void *arg)
{
	return store_pending(arg, 0) == 0;
}

/* Rows are reported to the sink attached when they were added, only while
 * it stays attached: an earlier import's rows in flight never reach the
 * next import's sink, and a late detach by the earlier one leaves the
 * newer sink in place. */
static void test_rows_are_reported_only_to_the_sink_attached_when_added(void)
{
	const char *tables[] = { "k_items" };
	struct seen first = { 0 }, second = { 0 };
	struct store_conf conf = { .batch_size = 100, .tables = tables, .n_tables = 1, .discard = true };
	struct store *s = start_store(&first, &conf, NULL);   /* first's sink attached */
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(run_until(store_ready, s, 5));
	struct store_sink b = { cb_committed, NULL, &second, NULL, NULL, NULL, NULL };
	add(s, 0, 1, "k1", NULL, "{}");
	add(s, 0, 1, "k2", NULL, "{}");
	add(s, 0, 1, "k3", NULL, "{}");
	store_attach_sink(s, &b);
	add(s, 0, 2, "k4", NULL, "{}");
	add(s, 0, 2, "k5", NULL, "{}");
	flush(s, 0);
	CHECK(run_until(nothing_pending, s, 5));
	CHECK_EQ(first.committed[0], 0);
	CHECK_EQ(second.committed[0], 2);
	CHECK_EQ(second.n_calls[0], 1);
	CHECK_EQ(store_table_committed(s, 0), 5);
	store_detach_sink(s, &first);     /* not the one attached: no effect */
	add(s, 0, 2, "k6", NULL, "{}");
	flush(s, 0);
	CHECK(run_until(nothing_pending, s, 5));
	CHECK_EQ(second.committed[0], 3);
	store_detach_sink(s, &second);
	add(s, 0, 2, "k7", NULL, "{}");
	flush(s, 0);
	CHECK(run_until(nothing_pending, s, 5));
	CHECK_EQ(second.committed[0], 3);
	CHECK_EQ(store_table_committed(s, 0), 7);
	store_free(s);
}

static void test_error_rows_beyond_the_bound_are_only_counted(void)
{
	const char *tables[] = { "r_items" };
	struct seen w = { 0 };
	struct run_ctx c = { 0 };
	struct store *s = open_store_with_run(&w, tables, &c);
	/* Without turning the loop none of these is sent yet. */
	for (int i = 0; i < STORE_MAX_PENDING_ERRORS + 5; i++)
		CHECK_EQ(store_add_error(s, c.id, "entries", "http://127.0.0.1/x", 500, 1, "boom"), 0);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.errors_queued, STORE_MAX_PENDING_ERRORS);
	CHECK_EQ(st.errors_dropped, 5);
	CHECK_EQ(store_finish_import(s, c.id, "partial", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 60));
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM import_errors WHERE import_id = %lld", (long long)c.id);
	CHECK_EQ(sql_int(q), STORE_MAX_PENDING_ERRORS);
	snprintf(q, sizeof q, "SELECT (counts->>'errors_not_recorded')::int FROM import_runs WHERE id = %lld",
	         (long long)c.id);
	CHECK_EQ(sql_int(q), 5);
	store_free(s);
}

/* --- import state (raced_pages), runs, cursor ---------------------------- */

struct reads {
	struct store_input_state *st;
	struct store_items *items;
	size_t table;
	uint64_t tag;
	int answers;
	char err[ERR_MAX];
};

static void cb_input_read(void *arg, size_t table, uint64_t tag, struct store_input_state *st,
                          const char *err)
{
	struct seen *w = arg;
	struct reads *r = w->user;
	store_input_state_free(r->st);
	r->st = st;
	r->table = table;
	r->tag = tag;
	r->answers++;
	snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static void cb_items_read(void *arg, size_t table, uint64_t tag, struct store_items *items,
                          const char *err)
{
	struct seen *w = arg;
	struct reads *r = w->user;
	store_items_free(r->items);
	r->items = items;
	r->table = table;
	r->tag = tag;
	r->answers++;
	snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static void reads_clear(struct reads *r)
{
	store_input_state_free(r->st);
	store_items_free(r->items);
	memset(r, 0, sizeof *r);
}

/* A store whose sink also takes reads (into r), ready. */
static struct store *open_state_store(struct seen *w, struct reads *r, const struct store_conf *conf)
{
	struct store_callbacks cb = { cb_state, w };
	char err[ERR_MAX] = "";
	struct store *s = store_new(base, conf, &cb, err);
	if (!s) {
		fprintf(stderr, "store_new: %s\n", err);
		return NULL;
	}
	w->user = r;
	w->store = s;
	struct store_sink sink = { .committed = cb_committed, .arg = w,
	                           .input_read = cb_input_read, .items_read = cb_items_read };
	store_attach_sink(s, &sink);
	if (!run_until(store_ready, s, 30))
		fprintf(stderr, "store not ready: %s\n", w->last_why);
	return s;
}

static struct store *open_state(struct seen *w, struct reads *r, const char *const *tables,
                                size_t n, uint32_t batch)
{
	struct store_conf conf = { .conninfo = conninfo, .batch_size = batch, .tables = tables,
	                           .n_tables = n };
	return open_state_store(w, r, &conf);
}

static void add_page(struct store *s, size_t table, int64_t import_id, const struct store_page *pg)
{
	char err[ERR_MAX] = "";
	int rc = store_add_page(s, table, import_id, pg, err);
	if (rc != 0)
		fprintf(stderr, "store_add_page: %s\n", err);
	CHECK_EQ(rc, 0);
}

static void add_unchanged(struct store *s, size_t table, int64_t import_id, size_t n)
{
	char err[ERR_MAX] = "";
	int rc = store_add_unchanged(s, table, import_id, n, err);
	if (rc != 0)
		fprintf(stderr, "store_add_unchanged: %s\n", err);
	CHECK_EQ(rc, 0);
}

static bool answered(void *arg)
{
	return ((struct reads *)arg)->answers > 0;
}

/* Ask for input's state and wait for the answer (in r->st). */
static void read_input(struct store *s, struct reads *r, size_t table, const char *input,
                       uint64_t tag)
{
	char err[ERR_MAX] = "";
	r->answers = 0;
	CHECK_EQ(store_get_input(s, table, input, tag, err), 0);
	CHECK(run_until(answered, r, 10));
}

static const char *const odd_keys[] = {
	"plain", "with \"quotes\"", "a,b", "{braces}", "back\\slash", "K\xc3\xb6ln \xe2\x82\xac",
	"NULL", "", "sp ace",
};
#define N_ODD (sizeof odd_keys / sizeof odd_keys[0])

/* A page record is written in its batch's transaction, after the batch's
 * rows: the same xmin as the rows; an input's pages read back in page_no
 * order with keys (quotes, commas, braces, backslashes, non-ASCII, empty)
 * and hashes (all 64 bits) as written; 0 keys is an empty page. */
static void test_page_records_commit_with_their_rows_and_read_back_in_order(void)
{
	const char *tables[] = { "ps_races", "ps_entries" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 2, 100);
	if (!s)
		return;
	uint64_t hashes[N_ODD];
	for (size_t i = 0; i < N_ODD; i++)
		hashes[i] = 0xfedcba9876543210ull ^ ((uint64_t)i << 60) ^ i;
	hashes[0] = 0;
	hashes[1] = UINT64_MAX;
	for (size_t i = 0; i < N_ODD; i++)
		add(s, 1, 4, odd_keys[i], "r1", "{\"v\": 1}");
	/* pages added out of order: 2 (last, empty), 0, 1 */
	struct store_page p2 = { .url = "http://h/r1/e?p=2", .input = "http://h/r1/e", .page_no = 2,
	                         .fetched = true, .content = true, .n_keys = 0 };
	struct store_page p0 = { .url = "http://h/r1/e", .input = "http://h/r1/e", .page_no = 0,
	                         .fetched = true, .content = true, .etag = "W/\"e0\"",
	                         .last_modified = "Tue, 01 Dec 2026 10:00:00 GMT",
	                         .next_url = "http://h/r1/e?p=1", .keys = odd_keys,
	                         .hashes = hashes, .n_keys = 5 };
	struct store_page p1 = { .url = "http://h/r1/e?p=1", .input = "http://h/r1/e", .page_no = 1,
	                         .fetched = true, .content = true, .next_url = "http://h/r1/e?p=2",
	                         .keys = odd_keys + 5, .hashes = hashes + 5, .n_keys = N_ODD - 5,
	                         .input_done = false };
	add_page(s, 1, 4, &p2);
	add_page(s, 1, 4, &p0);
	add_page(s, 1, 4, &p1);
	CHECK_EQ(store_pending(s, 1), N_ODD);   /* page records are not rows */
	flush(s, 1);
	struct want x = { &w, 1, N_ODD };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(w.n_calls[1], 1);
	CHECK_EQ(w.calls[1][0], N_ODD);
	/* one transaction: the page rows' xmin is the rows' */
	CHECK_EQ(sql_int("SELECT count(DISTINCT x) FROM (SELECT xmin::text AS x FROM ps_entries"
	                 " UNION ALL SELECT xmin::text FROM raced_pages WHERE stage = 'ps_entries') u"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'ps_entries'"
	                 " AND seen_import = 4 AND done_import IS NULL"), 3);

	read_input(s, &r, 1, "http://h/r1/e", 77);
	CHECK_STR(r.err, "");
	CHECK_EQ(r.table, 1);
	CHECK_EQ(r.tag, 77);
	CHECK(r.st != NULL);
	if (r.st && r.st->n_pages == 3) {
		struct store_page_state *a = &r.st->pages[0], *b = &r.st->pages[1], *c = &r.st->pages[2];
		CHECK_EQ(a->page_no, 0);
		CHECK_EQ(b->page_no, 1);
		CHECK_EQ(c->page_no, 2);
		CHECK_STR(a->url, "http://h/r1/e");
		CHECK_STR(a->etag, "W/\"e0\"");
		CHECK_STR(a->last_modified, "Tue, 01 Dec 2026 10:00:00 GMT");
		CHECK_STR(a->next_url, "http://h/r1/e?p=1");
		CHECK(b->etag == NULL && b->last_modified == NULL);
		CHECK(c->next_url == NULL);
		CHECK_EQ(a->n_keys, 5);
		CHECK_EQ(b->n_keys, N_ODD - 5);
		CHECK_EQ(c->n_keys, 0);
		for (size_t i = 0; i < 5 && i < a->n_keys; i++) {
			CHECK_STR(a->keys[i], odd_keys[i]);
			CHECK(a->hashes[i] == hashes[i]);
		}
		for (size_t i = 0; i < N_ODD - 5 && i < b->n_keys; i++) {
			CHECK_STR(b->keys[i], odd_keys[5 + i]);
			CHECK(b->hashes[i] == hashes[5 + i]);
		}
		CHECK_EQ(a->seen_import, 4);
		CHECK_EQ(a->done_import, 0);
		long long now_ms = sql_int("SELECT (extract(epoch FROM now()) * 1000)::bigint");
		CHECK(a->fetched_at_ms > now_ms - 60000 && a->fetched_at_ms <= now_ms);
	} else {
		CHECK_EQ(r.st ? r.st->n_pages : 99, 3);
	}
	/* stored big-endian, 8 bytes each */
	char *hex = sql1("SELECT encode(hashes, 'hex') FROM raced_pages WHERE url = 'http://h/r1/e'");
	CHECK(hex && strncmp(hex, "0000000000000000ffffffffffffffff", 32) == 0);
	free(hex);

	/* an input nobody wrote: no pages; another stage's input: none either */
	read_input(s, &r, 1, "http://h/none", 1);
	CHECK(r.st && r.st->n_pages == 0);
	read_input(s, &r, 0, "http://h/r1/e", 2);
	CHECK(r.st && r.st->n_pages == 0);
	reads_clear(&r);
	store_free(s);
}

/* Whether import id's reach (raced_reached) records input as completed:
 * the checkpoint; done_import is set from it only by a resume. */
static bool done_in(const char *input, long long id)
{
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM raced_reached WHERE import_id = %lld"
	         " AND '%s' = ANY (done)", id, input);
	return sql_int(q) > 0;
}

/* A 304 keeps the stored keys and takes new validators; a page seen but
 * not fetched only moves seen_import; a record without content for a page
 * that has no row is dropped; a checkpoint lands in the batch's row of
 * raced_reached whether page 0 is in the batch or written earlier; the
 * later of two records of one page in a batch wins. */
static void test_page_records_without_content_keep_the_stored_state(void)
{
	const char *tables[] = { "pk_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	const char *keys[] = { "a", "b" };
	uint64_t h[] = { 1, 2 };
	struct store_page p0 = { .url = "u0", .input = "u0", .page_no = 0, .fetched = true,
	                         .content = true, .etag = "\"1\"", .next_url = "u1",
	                         .keys = keys, .hashes = h, .n_keys = 2 };
	struct store_page p1 = { .url = "u1", .input = "u0", .page_no = 1, .fetched = true,
	                         .content = true, .last_modified = "Mon, 30 Nov 2026 00:00:00 GMT",
	                         .keys = keys + 1, .hashes = h + 1, .n_keys = 1 };
	add_page(s, 0, 1, &p0);
	add_page(s, 0, 1, &p1);
	flush(s, 0);
	char *fetched0 = NULL;
	read_input(s, &r, 0, "u0", 0);
	CHECK(r.st && r.st->n_pages == 2);
	fetched0 = sql1("SELECT fetched_at::text FROM raced_pages WHERE url = 'u1'");

	/* import 2: page 0 answered 304 with a new etag; page 1 skipped (seen
	 * only) carrying the checkpoint; a page nobody stored, seen: dropped */
	struct store_page n0 = { .url = "u0", .input = "u0", .page_no = 0, .fetched = true,
	                         .etag = "\"2\"" };
	struct store_page n1 = { .url = "u1", .input = "u0", .page_no = 1, .input_done = true };
	struct store_page ghost = { .url = "u9", .input = "u9", .page_no = 0 };
	struct store_page ghost304 = { .url = "u8", .input = "u8", .page_no = 0, .fetched = true };
	add_page(s, 0, 2, &n0);
	add_page(s, 0, 2, &n1);
	add_page(s, 0, 2, &ghost);
	add_page(s, 0, 2, &ghost304);
	flush(s, 0);
	read_input(s, &r, 0, "u0", 0);
	CHECK(r.st && r.st->n_pages == 2);
	if (r.st && r.st->n_pages == 2) {
		struct store_page_state *a = &r.st->pages[0], *b = &r.st->pages[1];
		CHECK_STR(a->etag, "\"2\"");
		CHECK_STR(a->next_url, "u1");
		CHECK_EQ(a->n_keys, 2);
		CHECK_EQ(a->seen_import, 2);
		CHECK_EQ(a->done_import, 0);   /* a resume sets it: raced_reached */
		CHECK(done_in("u0", 2));
		CHECK_STR(b->last_modified, "Mon, 30 Nov 2026 00:00:00 GMT");
		CHECK_EQ(b->n_keys, 1);
		CHECK_EQ(b->seen_import, 2);
		CHECK_EQ(b->done_import, 0);
	}
	char *fetched1 = sql1("SELECT fetched_at::text FROM raced_pages WHERE url = 'u1'");
	CHECK_STR(fetched1, fetched0);   /* not fetched: fetched_at kept */
	free(fetched0);
	free(fetched1);
	/* pages nobody stored: placeholders, which every read takes as no row */
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url IN ('u8', 'u9')"
	                 " AND seen_import >= 0"), 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url IN ('u8', 'u9')"
	                 " AND keys = '{}' AND etag IS NULL AND seen_import < 0"), 2);
	read_input(s, &r, 0, "u8", 0);
	CHECK(r.st && r.st->n_pages == 0);

	/* import 3: a checkpoint alone, page 0 written by an earlier batch */
	struct store_page c1 = { .url = "u1", .input = "u0", .page_no = 1, .input_done = true };
	add_page(s, 0, 3, &c1);
	flush(s, 0);
	/* the later of two records of one page wins */
	const char *k2[] = { "z" };
	uint64_t h2[] = { 9 };
	struct store_page first = { .url = "u1", .input = "u0", .page_no = 1, .fetched = true,
	                            .content = true, .keys = keys, .hashes = h, .n_keys = 2 };
	struct store_page later = { .url = "u1", .input = "u0", .page_no = 1, .fetched = true,
	                            .content = true, .keys = k2, .hashes = h2, .n_keys = 1 };
	add_page(s, 0, 4, &first);
	add_page(s, 0, 4, &later);
	flush(s, 0);
	read_input(s, &r, 0, "u0", 0);
	if (r.st && r.st->n_pages == 2) {
		CHECK(done_in("u0", 3));
		CHECK_EQ(r.st->pages[0].seen_import, 2);
		CHECK_EQ(r.st->pages[1].n_keys, 1);
		if (r.st->pages[1].n_keys == 1)
			CHECK_STR(r.st->pages[1].keys[0], "z");
		CHECK_EQ(r.st->pages[1].seen_import, 4);
	} else {
		CHECK(false);
	}
	/* a placeholder meeting a record with content becomes that page; one
	 * meeting another record without content stays a placeholder */
	struct store_page u8 = { .url = "u8", .input = "u8", .page_no = 0, .fetched = true,
	                         .content = true, .etag = "\"8\"", .keys = k2, .hashes = h2,
	                         .n_keys = 1, .input_done = true };
	struct store_page u9 = { .url = "u9", .input = "u9", .page_no = 0, .fetched = true,
	                         .etag = "\"9\"", .input_done = true };
	add_page(s, 0, 5, &u8);
	add_page(s, 0, 5, &u9);
	flush(s, 0);
	read_input(s, &r, 0, "u8", 0);
	CHECK(r.st && r.st->n_pages == 1);
	if (r.st && r.st->n_pages == 1) {
		CHECK_STR(r.st->pages[0].etag, "\"8\"");
		CHECK_EQ(r.st->pages[0].n_keys, 1);
		CHECK_EQ(r.st->pages[0].seen_import, 5);
		CHECK(done_in("u8", 5));
	}
	read_input(s, &r, 0, "u9", 0);
	CHECK(r.st && r.st->n_pages == 0);
	reads_clear(&r);
	store_free(s);
}

/* Reads of inputs asked one after the other while one is out are one
 * statement, answered one call per input, in the order asked, each with
 * its own pages (none for an input nobody stored, none for a placeholder),
 * and they see the batches queued before them. */
struct many_reads {
	uint64_t tags[8];
	size_t pages[8];
	int n;
	char err[ERR_MAX];
};

static void cb_many_input(void *arg, size_t table, uint64_t tag, struct store_input_state *st,
                          const char *err)
{
	struct seen *w = arg;
	struct many_reads *m = w->user;
	(void)table;
	if (m->n < 8) {
		m->tags[m->n] = tag;
		m->pages[m->n] = st ? st->n_pages : 99;
		m->n++;
	}
	if (err)
		snprintf(m->err, sizeof m->err, "%s", err);
	store_input_state_free(st);
}

static bool five_answers(void *arg)
{
	return ((struct many_reads *)arg)->n >= 5;
}

static void test_input_reads_asked_together_are_one_statement(void)
{
	const char *tables[] = { "mr_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	struct many_reads m = { 0 };
	w.user = &m;
	struct store_sink sink = { .committed = cb_committed, .arg = &w,
	                           .input_read = cb_many_input, .items_read = cb_items_read };
	store_attach_sink(s, &sink);
	const char *keys[] = { "x" };
	uint64_t h[] = { 1 };
	struct store_page a0 = { .url = "mr/a", .input = "mr/a", .page_no = 0, .fetched = true,
	                         .content = true, .next_url = "mr/a1", .keys = keys, .hashes = h,
	                         .n_keys = 1 };
	struct store_page a1 = { .url = "mr/a1", .input = "mr/a", .page_no = 1, .fetched = true,
	                         .content = true, .keys = keys, .hashes = h, .n_keys = 1,
	                         .input_done = true };
	struct store_page c0 = { .url = "mr/c", .input = "mr/c", .page_no = 0, .fetched = true,
	                         .content = true, .input_done = true };
	struct store_page p0 = { .url = "mr/p", .input = "mr/p", .page_no = 0, .fetched = true };
	add_page(s, 0, 1, &a0);
	add_page(s, 0, 1, &a1);
	add_page(s, 0, 1, &c0);
	add_page(s, 0, 1, &p0);
	flush(s, 0);
	const char *ask[] = { "mr/a", "mr/b", "mr/c", "mr/a", "mr/p" };
	char err[ERR_MAX] = "";
	for (size_t i = 0; i < 5; i++)
		CHECK_EQ(store_get_input(s, 0, ask[i], 10 + i, err), 0);
	/* the batch and the first read went; the other four wait as one op */
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.ops_queued, 1);
	CHECK(run_until(five_answers, &m, 10));
	CHECK_STR(m.err, "");
	static const size_t want[] = { 2, 0, 1, 2, 0 };
	for (int i = 0; i < 5 && i < m.n; i++) {
		CHECK_EQ(m.tags[i], 10u + (uint64_t)i);
		CHECK_EQ(m.pages[i], want[i]);
	}
	w.user = &r;
	reads_clear(&r);
	store_free(s);
}

/* The answers of store_read_stage. */
struct stage_reads {
	struct store_stage_chunk *chunk;
	uint64_t tag;
	int answers;
	char err[ERR_MAX];
};

static void cb_stage_read(void *arg, size_t table, uint64_t tag, struct store_stage_chunk *c,
                          const char *err)
{
	struct seen *w = arg;
	struct stage_reads *r = w->user;
	(void)table;
	store_stage_chunk_free(r->chunk);
	r->chunk = c;
	r->tag = tag;
	r->answers++;
	snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static bool stage_answered(void *arg)
{
	return ((struct stage_reads *)arg)->answers > 0;
}

/* Read the stage as at says; the chunk in r->chunk. */
static void read_stage_at(struct store *s, struct stage_reads *r, const struct store_stage_at *at)
{
	char err[ERR_MAX] = "";
	r->answers = 0;
	CHECK_EQ(store_read_stage(s, 0, at, 5, err), 0);
	CHECK(run_until(stage_answered, r, 10));
	CHECK_STR(r->err, "");
}

/* Read the stage from `from`, limit rows; the chunk in r->chunk. */
static void read_stage(struct store *s, struct stage_reads *r, const char *from, uint32_t limit)
{
	struct store_stage_at at = { .input = from, .limit = limit };
	read_stage_at(s, r, &at);
}

/* A stage read in one pass, a keyset page at a time: whole inputs only
 * (the last one of a full answer left for the next, read from it again),
 * placeholders left out, an input's pages in page order with keys,
 * hashes and validators as store_get_input answers them; an input of
 * more rows than the limit is an answer with no input and a from. */
/* The page rows of sr_items, all 8 committed (a flush sends, the commit
 * comes later). */
static bool sr_pages_stored(void *arg)
{
	(void)arg;
	return sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'sr_items'") == 8;
}

static void test_a_stage_read_in_keyset_pages_holds_whole_inputs(void)
{
	const char *tables[] = { "sr_items" };
	struct seen w = { 0 };
	struct reads rd = { 0 };
	struct store *s = open_state(&w, &rd, tables, 1, 100);
	if (!s)
		return;
	struct stage_reads r = { 0 };
	w.user = &r;
	struct store_sink sink = { .committed = cb_committed, .arg = &w,
	                           .stage_read = cb_stage_read };
	store_attach_sink(s, &sink);
	const char *keys[] = { "k1", "k \"2\"", "k,3" };
	uint64_t h[] = { 1, UINT64_MAX, 0x0123456789abcdefull };
	/* sr/a: 3 pages added out of order; sr/b, sr/c one page; sr/d two;
	 * sr/p a placeholder (a record without content, no row) */
	struct store_page pages[] = {
		{ .url = "sr/a?p=2", .input = "sr/a", .page_no = 2, .fetched = true, .content = true,
		  .keys = keys + 2, .hashes = h + 2, .n_keys = 1, .input_done = true },
		{ .url = "sr/a", .input = "sr/a", .page_no = 0, .fetched = true, .content = true,
		  .etag = "W/\"a\"", .next_url = "sr/a?p=1", .keys = keys, .hashes = h, .n_keys = 2 },
		{ .url = "sr/a?p=1", .input = "sr/a", .page_no = 1, .fetched = true, .content = true,
		  .next_url = "sr/a?p=2" },
		{ .url = "sr/b", .input = "sr/b", .page_no = 0, .fetched = true, .content = true,
		  .keys = keys, .hashes = h, .n_keys = 1 },
		{ .url = "sr/c", .input = "sr/c", .page_no = 0, .fetched = true, .content = true,
		  .last_modified = "Tue, 01 Dec 2026 10:00:00 GMT", .keys = keys + 1, .hashes = h + 1,
		  .n_keys = 1 },
		{ .url = "sr/d", .input = "sr/d", .page_no = 0, .fetched = true, .content = true,
		  .next_url = "sr/d?p=1" },
		{ .url = "sr/d?p=1", .input = "sr/d", .page_no = 1, .fetched = true, .content = true },
		{ .url = "sr/p", .input = "sr/p", .page_no = 0, .fetched = true },
	};
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
		add_page(s, 0, 3, &pages[i]);
	flush(s, 0);
	CHECK(run_until(sr_pages_stored, NULL, 10));

	/* limit 4: [a] (b cut), then [b, c] (d cut), then [d] and the end */
	const char *want[] = { "sr/a", "sr/b", "sr/c", "sr/d" };
	size_t got = 0, answers = 0;
	char *from = strdup("");
	while (from && answers < 10) {
		read_stage(s, &r, from, 4);
		answers++;
		free(from);
		from = NULL;
		if (!r.chunk)
			break;
		CHECK_EQ(r.tag, 5);
		for (size_t i = 0; i < r.chunk->n; i++, got++) {
			struct store_stage_input *in = r.chunk->inputs[i];
			CHECK(got < 4);
			if (got < 4)
				CHECK_STR(store_stage_input_url(in), want[got]);
			struct store_input_state *st = NULL;
			char err[ERR_MAX] = "";
			CHECK_EQ(store_stage_input_unpack(in, &st, err), 0);
			if (got == 0 && st && st->n_pages == 3) {
				CHECK_EQ(st->pages[0].page_no, 0);
				CHECK_EQ(st->pages[2].page_no, 2);
				CHECK_STR(st->pages[0].url, "sr/a");
				CHECK_STR(st->pages[1].url, "sr/a?p=1");
				CHECK_STR(st->pages[0].etag, "W/\"a\"");
				CHECK(st->pages[0].last_modified == NULL);
				CHECK_STR(st->pages[0].next_url, "sr/a?p=1");
				CHECK_EQ(st->pages[0].n_keys, 2);
				CHECK_STR(st->pages[0].keys[1], "k \"2\"");
				CHECK(st->pages[0].hashes[1] == UINT64_MAX);
				CHECK_EQ(st->pages[1].n_keys, 0);
				CHECK_STR(st->pages[2].keys[0], "k,3");
				CHECK(st->pages[2].hashes[0] == 0x0123456789abcdefull);
				CHECK_EQ(st->pages[0].seen_import, 3);
				CHECK_EQ(st->pages[0].done_import, 0);
			} else if (got == 0) {
				CHECK_EQ(st ? st->n_pages : 99, 3);
			}
			if (got == 2 && st && st->n_pages == 1)
				CHECK_STR(st->pages[0].last_modified, "Tue, 01 Dec 2026 10:00:00 GMT");
			if (got == 3)
				CHECK_EQ(st ? st->n_pages : 99, 2);
			store_input_state_free(st);
		}
		if (r.chunk->from)
			from = strdup(r.chunk->from);
	}
	free(from);
	CHECK_EQ(got, 4);
	CHECK_EQ(answers, 3);

	/* limit 3: sr/a alone fills it: no input, from "sr/a" (no way on) */
	read_stage(s, &r, "", 3);
	CHECK(r.chunk && r.chunk->n == 0 && r.chunk->from && strcmp(r.chunk->from, "sr/a") == 0);
	/* from past every input: the end */
	read_stage(s, &r, "sr/z", 3);
	CHECK(r.chunk && r.chunk->n == 0 && r.chunk->from == NULL);
	/* By blocks: every input whose page 0 lies in them, whole (sr/a's
	 * three pages, found by its page 0, in page order), the placeholder
	 * left out; the table's size; the stage's share once analyzed. */
	struct store_stage_at scan = { .block = 0, .blocks = 1000, .want_share = true };
	read_stage_at(s, &r, &scan);
	CHECK(r.chunk && r.chunk->n == 4 && r.chunk->rows == 7 && r.chunk->from == NULL);
	CHECK(r.chunk && r.chunk->rel_blocks >= 1 && r.chunk->rel_blocks < 1000);
	CHECK(r.chunk && r.chunk->listed == 7); /* the stage's rows there, the placeholder aside */
	for (size_t i = 0; r.chunk && i < r.chunk->n; i++) {
		if (strcmp(store_stage_input_url(r.chunk->inputs[i]), "sr/a") != 0)
			continue;
		struct store_input_state *st = NULL;
		char uerr[ERR_MAX] = "";
		CHECK_EQ(store_stage_input_unpack(r.chunk->inputs[i], &st, uerr), 0);
		CHECK_EQ(st ? st->n_pages : 0, 3);
		if (st && st->n_pages == 3)
			CHECK_STR(st->pages[2].url, "sr/a?p=2");
		store_input_state_free(st);
	}
	uint64_t blocks = r.chunk ? r.chunk->rel_blocks : 0;
	sql_exec("ANALYZE raced_pages");
	scan.blocks = 1;
	read_stage_at(s, &r, &scan);
	CHECK(r.chunk && r.chunk->share > 0 && r.chunk->share <= 1000);
	/* past the end: the sentinel alone */
	scan = (struct store_stage_at){ .block = blocks, .blocks = 4 };
	read_stage_at(s, &r, &scan);
	CHECK(r.chunk && r.chunk->n == 0 && r.chunk->rel_blocks == blocks && r.chunk->share == -1);
	CHECK(r.chunk && r.chunk->listed == 0);
	char err[ERR_MAX] = "";
	struct store_stage_at bad = { .input = "", .limit = 0 };
	CHECK_EQ(store_read_stage(s, 0, &bad, 1, err), -1);
	bad = (struct store_stage_at){ .input = NULL, .limit = 1 };
	CHECK_EQ(store_read_stage(s, 0, &bad, 1, err), -1);
	bad = (struct store_stage_at){ .input = "", .limit = 1 };
	CHECK_EQ(store_read_stage(s, 3, &bad, 1, err), -1);
	store_stage_chunk_free(r.chunk);
	w.user = &rd;
	reads_clear(&rd);
	store_free(s);
}

/* A batch PostgreSQL refuses whole (its table dropped) leaves no page
 * record; a batch retried row by row writes its page records after its
 * pieces, whichever row fails. */
static void test_a_refused_batch_leaves_no_page_record_and_a_split_one_keeps_them(void)
{
	const char *tables[] = { "pr_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	const char *keys[] = { "good", "bad" };
	uint64_t h[] = { 1, 2 };
	struct store_page pg = { .url = "p", .input = "p", .fetched = true, .content = true,
	                         .keys = keys, .hashes = h, .n_keys = 2, .input_done = true };
	add(s, 0, 1, "good", NULL, "{\"v\": 1}");
	add(s, 0, 1, "bad", NULL, "{not json");
	add_page(s, 0, 1, &pg);
	flush(s, 0);
	struct want x = { &w, 0, 2 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(sql_int("SELECT count(*) FROM pr_items"), 1);
	CHECK(run_until(nothing_pending, s, 10));
	read_input(s, &r, 0, "p", 0);
	CHECK(r.st && r.st->n_pages == 1 && done_in("p", 1));
	/* the page row committed after both pieces */
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages p, pr_items t WHERE p.url = 'p'"
	                 " AND p.xmin::text::bigint > t.xmin::text::bigint"), 1);

	sql_exec("DROP TABLE pr_items CASCADE");
	struct store_page pg2 = { .url = "q", .input = "q", .fetched = true, .content = true,
	                          .keys = keys, .hashes = h, .n_keys = 1 };
	add(s, 0, 2, "good", NULL, "{\"v\": 2}");
	add(s, 0, 2, "other", NULL, "{\"v\": 2}");
	add_page(s, 0, 2, &pg2);
	flush(s, 0);
	x.n = 4;
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'q'"), 0);
	CHECK_EQ(sql_int("SELECT seen_import FROM raced_pages WHERE url = 'p'"), 1);
	reads_clear(&r);
	store_free(s);
}

static bool calls_reached(void *arg)
{
	struct want *x = arg;
	return x->w->n_calls[x->table] >= x->n;
}

/* Unchanged items are placeholders: acknowledged with the batch they join,
 * in order with the rows, counting towards batch_size (an all-unchanged
 * import still forms batches, and its page records ride them); they write
 * nothing. */
static void test_unchanged_placeholders_are_acknowledged_in_order_and_fill_batches(void)
{
	const char *tables[] = { "ph_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 3);
	if (!s)
		return;
	add(s, 0, 1, "a", NULL, "{}");
	add_unchanged(s, 0, 1, 5);          /* a + 2 | 3 full batches */
	add(s, 0, 1, "b", NULL, "{}");      /* b with nothing else: flushed */
	CHECK_EQ(store_pending(s, 0), 7);
	struct want x = { &w, 0, 2 };
	CHECK(run_until(calls_reached, &x, 10));
	flush(s, 0);
	x.n = 3;
	CHECK(run_until(calls_reached, &x, 10));
	CHECK_EQ(w.n_calls[0], 3);
	CHECK_EQ(w.calls[0][0], 3);
	CHECK_EQ(w.calls[0][1], 3);
	CHECK_EQ(w.calls[0][2], 1);
	CHECK_EQ(w.committed[0], 7);
	CHECK_EQ(sql_int("SELECT count(*) FROM ph_items"), 2);

	/* an import of only unchanged items and page records */
	const char *keys[] = { "a", "b" };
	uint64_t h[] = { 1, 2 };
	struct store_page pg = { .url = "ph", .input = "ph", .fetched = true, .content = true,
	                         .keys = keys, .hashes = h, .n_keys = 2 };
	char *xmin = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM ph_items");
	add_unchanged(s, 0, 2, 2);
	add_page(s, 0, 2, &pg);
	flush(s, 0);
	x.n = 4;
	CHECK(run_until(calls_reached, &x, 10));
	CHECK_EQ(w.calls[0][3], 2);
	CHECK(run_until(nothing_pending, s, 10));
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'ph' AND seen_import = 2"), 1);
	char *xmin2 = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM ph_items");
	CHECK_STR(xmin2, xmin);
	free(xmin);
	free(xmin2);
	/* a page record alone forms a batch at flush, acknowledging no row */
	struct store_page seen = { .url = "ph", .input = "ph" };
	add_page(s, 0, 3, &seen);
	flush(s, 0);
	double until = now_s() + 5;
	while (sql_int("SELECT seen_import FROM raced_pages WHERE url = 'ph'") != 3 && now_s() < until)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CHECK_EQ(sql_int("SELECT seen_import FROM raced_pages WHERE url = 'ph'"), 3);
	CHECK_EQ(w.n_calls[0], 4);
	reads_clear(&r);
	store_free(s);
}

/* Stored rows read back by key: in the order of the keys asked, a key
 * with no row left out, parent and payload as stored. */
static void test_rows_read_back_in_key_order_without_the_missing(void)
{
	const char *tables[] = { "rb_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	for (size_t i = 0; i < N_ODD; i++)
		add(s, 0, 1, odd_keys[i], i % 2 ? "par" : NULL, "{\"v\": [1, \"x\"]}");
	flush(s, 0);
	struct want x = { &w, 0, N_ODD };
	CHECK(run_until(committed_reached, &x, 10));
	const char *ask[] = { odd_keys[5], "missing", odd_keys[1], odd_keys[0], odd_keys[7] };
	char err[ERR_MAX] = "";
	r.answers = 0;
	CHECK_EQ(store_read_items(s, 0, ask, 5, 42, err), 0);
	CHECK(run_until(answered, &r, 10));
	CHECK_STR(r.err, "");
	CHECK_EQ(r.tag, 42);
	CHECK(r.items != NULL);
	if (r.items && r.items->n == 4) {
		CHECK_STR(r.items->items[0].key, odd_keys[5]);
		CHECK_STR(r.items->items[1].key, odd_keys[1]);
		CHECK_STR(r.items->items[2].key, odd_keys[0]);
		CHECK_STR(r.items->items[3].key, odd_keys[7]);
		CHECK_STR(r.items->items[0].parent_key, "par");
		CHECK(r.items->items[2].parent_key == NULL);
		CHECK(json_text_equal(r.items->items[1].payload, "{\"v\": [1, \"x\"]}"));
		CHECK_EQ(r.items->items[1].payload_len, strlen(r.items->items[1].payload));
	} else {
		CHECK_EQ(r.items ? r.items->n : 99, 4);
	}
	r.answers = 0;
	CHECK_EQ(store_read_items(s, 0, NULL, 0, 43, err), 0);
	CHECK(run_until(answered, &r, 10));
	CHECK(r.items && r.items->n == 0);
	reads_clear(&r);
	store_free(s);
}

/* Narrow read-backs (store_read_committed_fields): a row whose fields
 * all hold a string, number or boolean shorter than value_max comes as
 * their values (a string unescaped, a number as jsonb prints it), in the
 * fields' order, no parent key; any other row comes whole; a missing key
 * is left out, the keys' order kept.  A field jsonb's #> would read
 * otherwise than the import (a token that needs escaping, an index
 * written "01") leaves the table's reads whole. */
static void test_rows_read_back_narrow(void)
{
	const char *tables[] = { "nr_items", "nr_odd" };
	const char *fields[] = { "id", "/a/b", "/list/1", "flag" };
	const char *odd[] = { "id", "/a~1b" };
	const struct store_read_fields rf = { fields, 4, 16 }, rodd = { odd, 2, 16 };
	const struct store_read_fields *per[] = { &rf, &rodd };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 100, .tables = tables,
	                           .n_tables = 2, .read_fields = per };
	struct store *s = open_state_store(&w, &r, &conf);
	if (!s)
		return;
	const char *const *got;
	size_t n_got = 0;
	CHECK(store_read_fields_of(s, 0, &got, &n_got));
	CHECK_EQ(n_got, 4);
	if (n_got == 4)
		CHECK_STR(got[1], "/a/b");
	CHECK(!store_read_fields_of(s, 1, &got, &n_got));
	const char *const rows[][2] = {
		{ "k1", "{\"id\": \"x\\\"y\", \"a\": {\"b\": 1.50}, \"list\": [0, true], \"flag\": false, \"big\": [1, 2]}" },
		{ "k2", "{\"id\": 7, \"a\": {\"b\": \"z\"}, \"list\": [0, \"q\"]}" },   /* no flag */
		{ "k3", "{\"id\": {\"o\": 1}, \"a\": {\"b\": 2}, \"list\": [0, 1], \"flag\": true}" },
		{ "k4", "{\"id\": \"0123456789abcdef\", \"a\": {\"b\": 2}, \"list\": [0, 1], \"flag\": true}" },
		{ "k5", "{\"id\": \"\", \"a\": {\"b\": -2}, \"list\": [0, null, 1], \"flag\": true}" },
	};
	for (size_t i = 0; i < 5; i++)
		add(s, 0, 1, rows[i][0], "par", rows[i][1]);
	flush(s, 0);
	struct want x = { &w, 0, 5 };
	CHECK(run_until(committed_reached, &x, 10));
	const char *ask[] = { "k4", "k1", "missing", "k2", "k3", "k5" };
	char err[ERR_MAX] = "";
	r.answers = 0;
	CHECK_EQ(store_read_committed_fields(s, 0, ask, NULL, 6, 7, err), 0);
	CHECK(run_until(answered, &r, 10));
	CHECK_STR(r.err, "");
	CHECK_EQ(r.tag, 7);
	if (r.items && r.items->n == 5) {
		const struct store_item *it = r.items->items;
		CHECK_STR(it[0].key, "k4");  /* 16 bytes: not under value_max */
		CHECK(!it[0].narrow);
		CHECK(json_text_equal(it[0].payload, rows[3][1]));
		CHECK_STR(it[1].key, "k1");
		CHECK(it[1].narrow);
		CHECK(it[1].parent_key == NULL);
		static const char want1[] = "x\"y\0" "1.50\0" "true\0" "false";
		CHECK_EQ(it[1].payload_len, sizeof want1);
		CHECK(it[1].payload_len == sizeof want1 && memcmp(it[1].payload, want1, sizeof want1) == 0);
		CHECK_STR(it[2].key, "k2");  /* no flag */
		CHECK(!it[2].narrow);
		CHECK_STR(it[3].key, "k3");  /* an object at id */
		CHECK(!it[3].narrow);
		CHECK_STR(it[4].key, "k5");  /* null at /list/1 */
		CHECK(!it[4].narrow);
		CHECK(json_text_equal(it[4].payload, rows[4][1]));
	} else {
		CHECK_EQ(r.items ? r.items->n : 99, 5);
	}
	reads_clear(&r);
	/* whole rows, as before, for the table whose fields are not plain */
	CHECK_EQ(store_read_committed_fields(s, 1, ask, NULL, 1, 8, err), -1);
	store_free(s);
}

static bool no_other_backend(void *arg)
{
	(void)arg;
	return sql_int("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
	               " AND pid <> pg_backend_pid() AND datname = current_database()") == 0;
}

/* pg_stat_user_tables' n_tup_ins + n_tup_upd of table, once every other
 * backend of the database has gone (a backend flushes its figures as it
 * exits), read by a fresh backend. */
static long long tuples_written(const char *table)
{
	CHECK(run_until(no_other_backend, NULL, 10));
	char q[256];
	snprintf(q, sizeof q, "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables"
	         " WHERE relname = '%s'", table);
	return sql_int(q);
}

/* Import n of 20 rows into nw_items, k07 with payload p7, by a store of its
 * own (freed after, so that its backend's figures are flushed). */
static void import_nw(int64_t n, const char *p7)
{
	const char *tables[] = { "nw_items" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 100);
	char key[16];
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "k%02d", i);
		add(s, 0, n, key, "p", i == 7 ? p7 : i % 2 ? "{\"a\": 1}" : "{\"a\":1}");
	}
	flush(s, 0);
	struct want x = { &w, 0, 20 };
	CHECK(run_until(committed_reached, &x, 10));
	store_free(s);
}


/* --- link records that carry their keys --------------------------------- */

/* A ready store of tables <prefix>_entries and <prefix>_athletes, the
 * second a dedupe stage of the first (so with a link table), batches of
 * 100; NULL (a failed check) if it cannot be had. */
static struct store *start_link_store_n(struct seen *w, const char *prefix, unsigned conns);

static struct store *start_link_store(struct seen *w, const char *prefix)
{
	return start_link_store_n(w, prefix, 0);
}

/* The same over `conns` connections ([database] connections; 0: one). */
static struct store *start_link_store_n(struct seen *w, const char *prefix, unsigned conns)
{
	static char names[2][32];
	snprintf(names[0], sizeof names[0], "%s_entries", prefix);
	snprintf(names[1], sizeof names[1], "%s_athletes", prefix);
	static const char *tables[2] = { names[0], names[1] };
	static const int parents[] = { -1, 0 };
	static const bool dedupe[] = { false, true };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 100, .tables = tables,
	                           .n_tables = 2, .parents = parents, .dedupe = dedupe,
	                           .connections = conns };
	struct store *s = start_store(w, &conf, NULL);
	if (!s || !run_until(store_ready, s, 30)) {
		fprintf(stderr, "store not ready: %s\n", w->last_why);
		store_free(s);
		CHECK(false);
		return NULL;
	}
	return s;
}

static void add_link_keys(struct store *s, int64_t import_id, const char *parent,
                          const char *keys, size_t len, size_t n)
{
	char err[ERR_MAX] = "";
	int rc = store_add_link_keys(s, 1, import_id, parent, keys, len, n, err);
	if (rc != 0)
		fprintf(stderr, "store_add_link_keys: %s\n", err);
	CHECK_EQ(rc, 0);
}

/* Send table 1's batch with one row (k) and wait for it. */
static void link_batch(struct store *s, struct seen *w, int64_t import_id, const char *k)
{
	add(s, 1, import_id, k, NULL, "{}");
	flush(s, 1);
	struct want x = { w, 1, w->committed[1] + 1 };
	CHECK(run_until(committed_reached, &x, 10));
}

static char *links_now(void)
{
	return sql1("SELECT coalesce(string_agg(parent_key || '>' || key, ',' ORDER BY parent_key, key),"
	            " '') FROM lk_athletes_parents");
}

/* The write by keys: pairs inserted; a record twice and a key twice are
 * one link; a record with no keys leaves its parent none; a parent's
 * link to a key no longer among its keys is deleted, its unchanged links
 * are not written again; records by URL and by keys in one batch are
 * both written, each the right way. */
static void test_link_records_with_keys_insert_and_remove_exactly(void)
{
	struct seen w = { 0 };
	struct store *s = start_link_store(&w, "lk");
	if (!s)
		return;
	add_link_keys(s, 1, "e1", "a1", 3, 1);
	add_link_keys(s, 1, "e2", "a1\0a2", 6, 2);
	add_link_keys(s, 1, "e3", "a3", 3, 1);
	add_link_keys(s, 1, "e3", "a3", 3, 1);          /* a record twice */
	add_link_keys(s, 1, "e4", "a4\0a4", 6, 2);      /* a key twice */
	add_link_keys(s, 1, "e5", "a9", 3, 1);
	add_link_keys(s, 1, "e6", NULL, 0, 0);          /* an input without items */
	link_batch(s, &w, 1, "a1");
	char *l = links_now();
	CHECK_STR(l, "e1>a1,e2>a1,e2>a2,e3>a3,e4>a4,e5>a9");
	free(l);
	char *kept = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM lk_athletes_parents"
	                  " WHERE parent_key IN ('e1', 'e2') AND key IN ('a1', 'a2')");

	/* e2 loses a1 (a stale link), e5 loses every link, e1 and e2>a2 stay as written */
	add_link_keys(s, 2, "e1", "a1", 3, 1);
	add_link_keys(s, 2, "e2", "a2", 3, 1);
	add_link_keys(s, 2, "e5", NULL, 0, 0);
	link_batch(s, &w, 2, "a2");
	l = links_now();
	CHECK_STR(l, "e1>a1,e2>a2,e3>a3,e4>a4");
	free(l);
	char *kept2 = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM lk_athletes_parents"
	                   " WHERE parent_key IN ('e1', 'e2') AND key IN ('a1', 'a2')");
	char *gone = sql1("SELECT count(*) FROM lk_athletes_parents WHERE parent_key = 'e2' AND key = 'a1'");
	CHECK_STR(gone, "0");
	free(gone);
	/* e1>a1's row is the one written by import 1 */
	CHECK(kept && kept2 && strncmp(kept, kept2, strcspn(kept, ",")) == 0);
	free(kept);
	free(kept2);

	/* by URL and by keys in one batch: e7 by the input's page row, e8 by keys */
	const char *pk[] = { "a6", "a7" };
	uint64_t ph[] = { 1, 2 };
	struct store_page pg = { .url = "http://h/a6", .input = "http://h/a6", .page_no = 0,
	                         .fetched = true, .content = true, .keys = pk, .hashes = ph,
	                         .n_keys = 2, .input_done = true };
	char err[ERR_MAX] = "";
	CHECK_EQ(store_add_page(s, 1, 3, &pg, err), 0);
	CHECK_EQ(store_add_link(s, 1, 3, "e7", "http://h/a6", err), 0);
	add_link_keys(s, 3, "e8", "a8", 3, 1);
	add_link_keys(s, 3, "e3", "a6", 3, 1);
	link_batch(s, &w, 3, "a6");
	l = links_now();
	CHECK_STR(l, "e1>a1,e2>a2,e3>a6,e4>a4,e7>a6,e7>a7,e8>a8");
	free(l);
	store_free(s);
}

/* An unchanged row is not written at all, by a later import either (no
 * tuple inserted or updated, the same xmin); a changed one is; a removed
 * one that comes back unchanged is written (its mark cleared). */
static void test_an_unchanged_upsert_writes_no_tuple(void)
{
	import_nw(1, "{\"a\": 1}");
	sql_exec("UPDATE nw_items SET removed_import = 1 WHERE key = 'k05'");
	long long before = tuples_written("nw_items");
	CHECK_EQ(before, 21);
	char *xmin = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM nw_items"
	                  " WHERE key NOT IN ('k05', 'k07')");
	import_nw(2, "{\"a\": 2}");
	CHECK_EQ(tuples_written("nw_items"), before + 2);   /* k07 changed, k05 unmarked */
	char *xmin2 = sql1("SELECT string_agg(xmin::text, ',' ORDER BY key) FROM nw_items"
	                   " WHERE key NOT IN ('k05', 'k07')");
	CHECK_STR(xmin2, xmin);
	free(xmin);
	free(xmin2);
	CHECK_EQ(sql_int("SELECT count(*) FROM nw_items WHERE last_import = 2"), 2);
	CHECK_EQ(sql_int("SELECT count(*) FROM nw_items WHERE removed_import IS NOT NULL"), 0);
	import_nw(3, "{\"a\": 2}");
	CHECK_EQ(tuples_written("nw_items"), before + 2);
}

/* Removals at the end of a succeeded import: an item in no page the import
 * reached is marked removed by it, one marked that is seen again is
 * unmarked; page rows not reached are deleted; the root-only clean-up
 * leaves the other stages alone. */
static void test_removals_mark_unmark_and_prune_page_rows(void)
{
	const char *tables[] = { "rm_races", "rm_entries" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 2, 100);
	if (!s)
		return;
	sql_exec("DELETE FROM import_runs");
	sql_exec("INSERT INTO import_runs (id, status) VALUES (10, 'succeeded'), (11, 'running'),"
	         " (12, 'running'), (13, 'running')");
	sql_exec("INSERT INTO rm_entries (key, payload, first_import, last_import) VALUES"
	         " ('a', '{}', 10, 10), ('b', '{}', 10, 10), ('c', '{}', 10, 10)");
	sql_exec("INSERT INTO rm_races (key, payload, first_import, last_import) VALUES"
	         " ('r', '{}', 10, 10)");
	const char *keys[] = { "a", "c", "b" };
	uint64_t h[] = { 1, 2, 3 };
	struct store_page old = { .url = "gone", .input = "gone", .fetched = true, .content = true,
	                          .keys = keys + 2, .hashes = h, .n_keys = 1 };
	struct store_page root_old = { .url = "r-old", .input = "r-old", .fetched = true,
	                               .content = true, .keys = NULL, .n_keys = 0 };
	add_page(s, 1, 10, &old);
	add_page(s, 0, 10, &root_old);
	flush(s, 0);
	flush(s, 1);
	struct store_page pa = { .url = "e1", .input = "e1", .fetched = true, .content = true,
	                         .keys = keys, .hashes = h, .n_keys = 2 };
	struct store_page pr = { .url = "r1", .input = "r1", .fetched = true, .content = true,
	                         .keys = (const char *const[]){ "r" }, .hashes = h, .n_keys = 1 };
	add_page(s, 1, 11, &pa);
	add_page(s, 0, 11, &pr);
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, 11, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished,
	                             &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_STR(c.err, "");
	char *got = sql1("SELECT string_agg(key || ':' || coalesce(removed_import::text, '-'), ','"
	                 " ORDER BY key) FROM rm_entries");
	CHECK_STR(got, "a:-,b:11,c:-");
	free(got);
	CHECK_EQ(sql_int("SELECT count(*) FROM rm_races WHERE removed_import IS NULL"), 1);
	got = sql1("SELECT string_agg(url, ',' ORDER BY url) FROM raced_pages"
	           " WHERE stage IN ('rm_races', 'rm_entries')");
	CHECK_STR(got, "e1,r1");
	free(got);

	/* import 12 sees b again (on an unchanged page: a seen-only record) */
	struct store_page pb = { .url = "e2", .input = "e2", .fetched = true, .content = true,
	                         .keys = keys + 2, .hashes = h, .n_keys = 1 };
	struct store_page e1seen = { .url = "e1", .input = "e1" };
	add_page(s, 1, 12, &pb);
	add_page(s, 1, 12, &e1seen);
	struct store_page r1seen = { .url = "r1", .input = "r1" };
	add_page(s, 0, 12, &r1seen);
	/* a 304 with new validators for a page with no row: a placeholder,
	 * reached, and deleted by the finish all the same */
	struct store_page e3 = { .url = "e3", .input = "e3", .fetched = true, .etag = "\"3\"" };
	add_page(s, 1, 12, &e3);
	flush(s, 1);
	read_input(s, &r, 1, "e3", 0);   /* a read: after the batch committed */
	CHECK(r.st && r.st->n_pages == 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'e3' AND seen_import < 0"), 1);
	c.finished = false;
	CHECK_EQ(store_finish_import(s, 12, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished,
	                             &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	got = sql1("SELECT string_agg(key || ':' || coalesce(removed_import::text, '-'), ','"
	           " ORDER BY key) FROM rm_entries");
	CHECK_STR(got, "a:-,b:-,c:-");
	free(got);
	got = sql1("SELECT string_agg(url, ',' ORDER BY url) FROM raced_pages"
	           " WHERE stage IN ('rm_races', 'rm_entries')");
	CHECK_STR(got, "e1,e2,r1");
	free(got);
	CHECK_EQ(sql_int("SELECT resumable::int FROM import_runs WHERE id = 12"), 0);

	/* import 13, a cursor import: only the root's unreached pages go */
	struct store_page r2 = { .url = "r2", .input = "r2", .fetched = true, .content = true };
	add_page(s, 0, 13, &r2);
	c.finished = false;
	CHECK_EQ(store_finish_import(s, 13, "succeeded", NULL, STORE_FINISH_PRUNE_ROOT, on_finished,
	                             &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	got = sql1("SELECT string_agg(url, ',' ORDER BY url) FROM raced_pages"
	           " WHERE stage IN ('rm_races', 'rm_entries')");
	CHECK_STR(got, "e1,e2,r2");
	free(got);
	CHECK_EQ(sql_int("SELECT count(*) FROM rm_entries WHERE removed_import IS NOT NULL"), 0);
	sql_exec("DELETE FROM import_runs");
	reads_clear(&r);
	store_free(s);
}

static bool no_reach_upto_22(void *arg)
{
	(void)arg;
	return sql_int("SELECT count(*) FROM raced_reached WHERE import_id IN (21, 22)") == 0;
}

/* The reach across runs (raced_reached): a failed or interrupted finish
 * keeps it; a resume sets what its run reached before it stopped on the
 * page rows (seen_import, done_import) and its removals count that reach;
 * a succeeded finish forgets its reach and that of earlier runs, but not
 * of a run that can still be resumed. */
static void test_a_resumed_run_counts_its_reach_and_a_success_forgets_it(void)
{
	const char *tables[] = { "rr_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	sql_exec("DELETE FROM import_runs");
	sql_exec("INSERT INTO import_runs (id, status) VALUES (18, 'running'), (20, 'succeeded'),"
	         " (21, 'running'), (22, 'running')");
	sql_exec("INSERT INTO rr_items (key, payload, first_import, last_import) VALUES"
	         " ('a', '{}', 20, 20), ('b', '{}', 20, 20), ('c', '{}', 20, 20)");
	const char *ka[] = { "a" }, *kb[] = { "b" }, *kc[] = { "c" };
	uint64_t h[] = { 1 };
	struct store_page p1 = { .url = "p1", .input = "p1", .fetched = true, .content = true,
	                         .keys = ka, .hashes = h, .n_keys = 1 };
	struct store_page p3 = { .url = "p3", .input = "p3", .fetched = true, .content = true,
	                         .keys = kc, .hashes = h, .n_keys = 1 };
	add_page(s, 0, 20, &p1);
	add_page(s, 0, 20, &p3);
	flush(s, 0);
	/* 18: interrupted long ago, still resumable; 21: failed */
	struct store_page p9 = { .url = "p9", .input = "p9", .reached_only = true };
	add_page(s, 0, 18, &p9);
	flush(s, 0);
	add_page(s, 0, 21, &p9);
	flush(s, 0);
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, 18, "interrupted", NULL, STORE_FINISH_RESUMABLE,
	                             on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	c.finished = false;
	CHECK_EQ(store_finish_import(s, 21, "failed", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_reached WHERE import_id IN (18, 21)"), 2);

	/* 22, first run: p1 reached unchanged and completed (no page row
	 * written), then interrupted */
	struct store_page p1same = { .url = "p1", .input = "p1", .reached_only = true,
	                             .input_done = true };
	add_page(s, 0, 22, &p1same);
	flush(s, 0);
	c.finished = false;
	CHECK_EQ(store_finish_import(s, 22, "interrupted", NULL, STORE_FINISH_RESUMABLE,
	                             on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_EQ(sql_int("SELECT seen_import FROM raced_pages WHERE stage = 'rr_items' AND url = 'p1'"), 20);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_reached WHERE import_id = 22"), 1);
	c.finished = false;
	CHECK_EQ(store_resume_import(s, 22, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_STR(c.err, "");
	CHECK_EQ(sql_int("SELECT seen_import FROM raced_pages WHERE stage = 'rr_items' AND url = 'p1'"), 22);
	CHECK_EQ(sql_int("SELECT done_import FROM raced_pages WHERE stage = 'rr_items' AND url = 'p1'"), 22);
	read_input(s, &r, 0, "p1", 0);
	CHECK(r.st && r.st->n_pages == 1 && r.st->pages[0].done_import == 22);

	/* 22, resumed: p2 (b) new; p3 (c) never reached: c is removed, a
	 * (reached before the interruption) and b are not */
	struct store_page p2 = { .url = "p2", .input = "p2", .fetched = true, .content = true,
	                         .keys = kb, .hashes = h, .n_keys = 1, .input_done = true };
	add_page(s, 0, 22, &p2);
	c.finished = false;
	CHECK_EQ(store_finish_import(s, 22, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished,
	                             &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_STR(c.err, "");
	char *got = sql1("SELECT string_agg(key || ':' || coalesce(removed_import::text, '-'), ','"
	                 " ORDER BY key) FROM rr_items");
	CHECK_STR(got, "a:-,b:-,c:22");
	free(got);
	got = sql1("SELECT string_agg(url, ',' ORDER BY url) FROM raced_pages WHERE stage = 'rr_items'");
	CHECK_STR(got, "p1,p2");
	free(got);
	/* forgotten after the counts: 22's and 21's reach; 18 can still be
	 * resumed and keeps its own */
	CHECK(run_until(no_reach_upto_22, NULL, 10));
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_reached WHERE import_id = 18"), 1);
	sql_exec("DELETE FROM import_runs");
	sql_exec("DELETE FROM raced_reached");
	reads_clear(&r);
	store_free(s);
}

static uint64_t warmups_of(const struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st.warmups;
}

static bool reach_of_31_in(void *arg)
{
	(void)arg;
	return sql_int("SELECT count(*) FROM raced_reached WHERE import_id = 31") > 0;
}

/* A batch whose page records are all reached-only sends its reach row
 * alone (the statement without the page rows' upsert, so it commits while
 * raced_pages is locked): the urls and the inputs completed are there, no
 * page row is touched (same xmin), and a batch with one record that
 * changes a page writes that page as before.  Batches without rows never
 * carry the backend's malloc warm-up; the first with rows does. */
static void test_a_batch_of_reached_only_records_writes_its_reach_alone(void)
{
	const char *tables[] = { "ro_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	sql_exec("DELETE FROM raced_reached");
	const char *ka[] = { "a" }, *kb[] = { "b" };
	uint64_t h[] = { 1 };
	struct store_page p1 = { .url = "r1", .input = "r1", .fetched = true, .content = true,
	                         .keys = ka, .hashes = h, .n_keys = 1, .input_done = true };
	struct store_page p2 = { .url = "r2", .input = "r2", .fetched = true, .content = true,
	                         .keys = kb, .hashes = h, .n_keys = 1, .input_done = true };
	add_page(s, 0, 30, &p1);
	add_page(s, 0, 30, &p2);
	flush(s, 0);
	read_input(s, &r, 0, "r2", 0);   /* in order after the batch: it committed */
	char *xmin0 = sql1("SELECT string_agg(xmin::text, ',' ORDER BY url) FROM raced_pages"
	                   " WHERE stage = 'ro_items'");
	struct store_page r1 = { .url = "r1", .input = "r1", .reached_only = true,
	                         .input_done = true };
	struct store_page r2 = { .url = "r2", .input = "r2", .reached_only = true };
	/* raced_pages locked: the reach alone does not wait for it */
	PGconn *locker = PQconnectdb(conninfo);
	PGresult *res = PQexec(locker, "BEGIN; LOCK TABLE raced_pages IN ACCESS EXCLUSIVE MODE");
	CHECK_EQ(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	add_page(s, 0, 31, &r1);
	add_page(s, 0, 31, &r2);
	flush(s, 0);
	CHECK(run_until(reach_of_31_in, NULL, 10));
	res = PQexec(locker, "COMMIT");
	PQclear(res);
	PQfinish(locker);
	char *got = sql1("SELECT urls::text || ' ' || done::text FROM raced_reached"
	                 " WHERE import_id = 31 AND stage = 'ro_items'");
	/* r1 completes its input at its first page: done lists it, urls
	 * does not (every reader takes urls || done) */
	CHECK_STR(got, "{r2} {r1}");
	free(got);
	char *xmin1 = sql1("SELECT string_agg(xmin::text, ',' ORDER BY url) FROM raced_pages"
	                   " WHERE stage = 'ro_items'");
	CHECK_STR(xmin1, xmin0);
	free(xmin1);
	/* mixed: r2 changes its page (new keys), r1 is reached only */
	struct store_page r2b = { .url = "r2", .input = "r2", .fetched = true, .content = true,
	                          .keys = ka, .hashes = h, .n_keys = 1, .input_done = true };
	add_page(s, 0, 32, &r1);
	add_page(s, 0, 32, &r2b);
	flush(s, 0);
	read_input(s, &r, 0, "r2", 0);
	CHECK(r.st && r.st->n_pages == 1 && r.st->pages[0].n_keys == 1 &&
	      strcmp(r.st->pages[0].keys[0], "a") == 0 && r.st->pages[0].seen_import == 32);
	got = sql1("SELECT seen_import::text FROM raced_pages WHERE stage = 'ro_items' AND url = 'r1'");
	CHECK_STR(got, "30");
	free(got);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_reached WHERE import_id = 32"), 1);
	free(xmin0);
	/* the backend's malloc warm-up goes with the first batch of rows,
	 * not before: none yet, one for the first batch of rows, no more */
	CHECK_EQ(warmups_of(s), 0);
	add(s, 0, 32, "a", NULL, "{}");
	flush(s, 0);
	CHECK(run_until(nothing_pending, s, 10));
	CHECK_EQ(warmups_of(s), 1);
	add(s, 0, 32, "b", NULL, "{}");
	flush(s, 0);
	CHECK(run_until(nothing_pending, s, 10));
	CHECK_EQ(warmups_of(s), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM ro_items"), 2);
	sql_exec("DELETE FROM raced_reached");
	reads_clear(&r);
	store_free(s);
}

/* A backend lost during its warm-up (here the warm-up ends it; in life
 * the OOM killer under a container's memory limit): the next backend goes
 * without one, rather than reconnect into the same end at the shortest
 * delay, and the batch commits.  The connection's search_path finds a
 * repeat() of this test's before PostgreSQL's. */
static void test_a_backend_lost_in_its_warm_up_is_not_warmed_again(void)
{
	sql_exec("CREATE OR REPLACE FUNCTION public.repeat(text, integer) RETURNS text"
	         " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid());"
	         " RETURN ''; END $$");
	char ci[1024];
	snprintf(ci, sizeof ci, "%s options='-csearch_path=public,pg_catalog'", conninfo);
	const char *tables[] = { "wk_items" };
	struct seen w = { 0 };
	struct store_conf conf = { .conninfo = ci, .batch_size = 10, .tables = tables, .n_tables = 1 };
	struct store *s = start_store(&w, &conf, NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(run_until(store_ready, s, 30));
	add(s, 0, 1, "a", NULL, "{}");
	flush(s, 0);
	struct want x = { &w, 0, 1 };
	CHECK(run_until(committed_reached, &x, 30));
	add(s, 0, 1, "b", NULL, "{}");
	flush(s, 0);
	x.n = 2;
	CHECK(run_until(committed_reached, &x, 30));
	CHECK_EQ(sql_int("SELECT count(*) FROM wk_items"), 2);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.warmups, 1);
	CHECK_EQ(st.reconnects, 1);
	store_free(s);
	sql_exec("DROP FUNCTION public.repeat(text, integer)");
	sql_exec("DROP TABLE wk_items CASCADE");
}

static int64_t kept_run;
static const char *kept_table = "kp_items";

static bool kept_counted(void *arg)
{
	char q[200];
	snprintf(q, sizeof q, "SELECT count(*) FROM import_runs WHERE id = %lld AND"
	         " counts->'%s' ? 'shared_keys'", (long long)kept_run, kept_table);
	(void)arg;
	return sql_int(q) == 1;
}

/* A running run id after the others (the same pipeline). */
static void kp_run(int64_t id)
{
	char q[200];
	snprintf(q, sizeof q, "INSERT INTO import_runs (id, status, pipeline)"
	         " VALUES (%lld, 'running', '{\"p\": 1}')", (long long)id);
	sql_exec(q);
}

/* Finish run id as succeeded, deciding removals, and wait for its counts. */
static void finish_kept(struct store *s, int64_t id)
{
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, id, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished,
	                             &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_STR(c.err, "");
	kept_run = id;
	CHECK(run_until(kept_counted, NULL, 10));
}

static char *kp_state(void)
{
	return sql1("SELECT string_agg(key || ':' || coalesce(removed_import::text, '-'), ','"
	            " ORDER BY key) FROM kp_items");
}

/* A finish reads no keys for a stage whose removals are already decided:
 * every page record of the run kept its page's keys, it reached every
 * page row, it is its import's only run and the run before it succeeded
 * with the same pipeline.  Otherwise it decides them from the keys, as
 * before.  The probe: a row that no page lists, put in behind raced's
 * back; the keys-reading marking marks it removed, the kept one never
 * reads it.  The counts come out the same either way. */
static void test_removals_are_kept_only_when_nothing_can_have_gone(void)
{
	const char *tables[] = { "kp_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	sql_exec("DELETE FROM import_runs");
	sql_exec("INSERT INTO import_runs (id, status, pipeline) VALUES (30, 'running', '{\"p\": 1}')");
	const char *kab[] = { "a", "b", "a" }, *kc[] = { "c" };
	uint64_t h[] = { 1, 2, 3 };
	struct store_page p1 = { .url = "p1", .input = "p1", .fetched = true, .content = true,
	                         .keys = kab, .hashes = h, .n_keys = 3 };
	struct store_page p2 = { .url = "p2", .input = "p2", .fetched = true, .content = true,
	                         .keys = kc, .hashes = h, .n_keys = 1 };
	struct store_page p1same = { .url = "p1", .input = "p1", .reached_only = true,
	                             .keys_same = true };
	struct store_page p2same = { .url = "p2", .input = "p2", .reached_only = true,
	                             .keys_same = true };
	/* 30: the first pages (no stored keys to keep): decided from the keys */
	add(s, 0, 30, "a", NULL, "{}");
	add(s, 0, 30, "b", NULL, "{}");
	add(s, 0, 30, "c", NULL, "{}");
	add_page(s, 0, 30, &p1);
	add_page(s, 0, 30, &p2);
	finish_kept(s, 30);
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'shared_keys')::int FROM import_runs"
	                 " WHERE id = 30"), 1);
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'stored')::int FROM import_runs"
	                 " WHERE id = 30"), 3);

	/* 31: every page reached, keys kept: nothing read, x stays */
	sql_exec("INSERT INTO kp_items (key, payload, first_import, last_import)"
	         " VALUES ('x', '{}', 1, 1)");
	kp_run(31);
	add_page(s, 0, 31, &p1same);
	add_page(s, 0, 31, &p2same);
	finish_kept(s, 31);
	char *got = kp_state();
	CHECK_STR(got, "a:-,b:-,c:-,x:-");
	free(got);
	/* the previous run's shared_keys, and no row written */
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'shared_keys')::int FROM import_runs"
	                 " WHERE id = 31"), 1);
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'stored')::int FROM import_runs"
	                 " WHERE id = 31"), 0);

	/* 32: p2 not reached (its row goes): decided from the keys */
	kp_run(32);
	add_page(s, 0, 32, &p1same);
	finish_kept(s, 32);
	got = kp_state();
	CHECK_STR(got, "a:-,b:-,c:32,x:32");
	free(got);
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'shared_keys')::int FROM import_runs"
	                 " WHERE id = 32"), 1);

	/* 33: p2 back, a page with no row (its keys are new): c unmarked */
	kp_run(33);
	add_page(s, 0, 33, &p1same);
	add_page(s, 0, 33, &p2);
	finish_kept(s, 33);
	got = kp_state();
	CHECK_STR(got, "a:-,b:-,c:-,x:32");
	free(got);

	/* 34 fails after rewriting p1 without b; 35 keeps every key as 34
	 * left them, but the run before it did not succeed: b goes */
	const char *ka[] = { "a" };
	struct store_page p1a = { .url = "p1", .input = "p1", .fetched = true, .content = true,
	                          .keys = ka, .hashes = h, .n_keys = 1 };
	kp_run(34);
	add_page(s, 0, 34, &p1a);
	flush(s, 0);
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, 34, "failed", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	kp_run(35);
	add_page(s, 0, 35, &p1same);
	add_page(s, 0, 35, &p2same);
	finish_kept(s, 35);
	got = kp_state();
	CHECK_STR(got, "a:-,b:35,c:-,x:32");
	free(got);
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'shared_keys')::int FROM import_runs"
	                 " WHERE id = 35"), 0);

	/* 36: kept again, with a changed row sent: stored counts it */
	sql_exec("UPDATE kp_items SET removed_import = NULL WHERE key = 'x'");
	kp_run(36);
	add(s, 0, 36, "a", NULL, "{\"v\": 2}");
	add_page(s, 0, 36, &p1same);
	add_page(s, 0, 36, &p2same);
	finish_kept(s, 36);
	got = kp_state();
	CHECK_STR(got, "a:-,b:35,c:-,x:-");
	free(got);
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'stored')::int FROM import_runs"
	                 " WHERE id = 36"), 1);
	CHECK_EQ(sql_int("SELECT (counts->'kp_items'->>'shared_keys')::int FROM import_runs"
	                 " WHERE id = 36"), 0);

	/* 37, a resumed run: its earlier runs are not known to the store */
	sql_exec("INSERT INTO import_runs (id, status, pipeline, resumes)"
	         " VALUES (37, 'running', '{\"p\": 1}', 1)");
	add_page(s, 0, 37, &p1same);
	add_page(s, 0, 37, &p2same);
	finish_kept(s, 37);
	got = kp_state();
	CHECK_STR(got, "a:-,b:35,c:-,x:37");
	free(got);
	sql_exec("DELETE FROM import_runs");
	reads_clear(&r);
	store_free(s);
}

static int64_t ar_pages(void)
{
	return sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'ar_items'");
}

/* Run id reaching pages a and b, said to have reached every page row or
 * not, finished deciding removals: then want page rows are left. */
static void ar_run(struct store *s, int64_t id, const struct store_page *a,
                   const struct store_page *b, bool said, int64_t want)
{
	kp_run(id);
	add_page(s, 0, id, a);
	add_page(s, 0, id, b);
	if (said)
		store_pages_all_reached(s, 0, id);
	finish_kept(s, id);
	CHECK_EQ(ar_pages(), want);
}

/* A run that reached every page row its stage had (the import says so:
 * store_pages_all_reached), whose records all kept their keys, after a
 * run that decided removals, looks for no page row to delete.  The
 * probe: a page row put in behind raced's back, which no record
 * reaches: the anti-join deletes it, the skipped one leaves it.  Without
 * any one of the conditions the anti-join runs. */
static void test_a_run_that_reached_every_page_row_looks_for_none_to_delete(void)
{
	const char *tables[] = { "ar_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	kept_table = "ar_items";
	sql_exec("DELETE FROM import_runs");
	const char *ka[] = { "a" }, *kb[] = { "b" };
	uint64_t h[] = { 1 };
	struct store_page p1 = { .url = "q1", .input = "q1", .fetched = true, .content = true,
	                         .keys = ka, .hashes = h, .n_keys = 1 };
	struct store_page p2 = { .url = "q2", .input = "q2", .fetched = true, .content = true,
	                         .keys = kb, .hashes = h, .n_keys = 1 };
	struct store_page p1same = { .url = "q1", .input = "q1", .reached_only = true,
	                             .keys_same = true };
	struct store_page p2same = { .url = "q2", .input = "q2", .reached_only = true,
	                             .keys_same = true };
	const char *stray = "INSERT INTO raced_pages (stage, url, input, page_no, keys, hashes,"
	                    " fetched_at, seen_import) VALUES ('ar_items', 'q9', 'q9', 0, '{}', '',"
	                    " now(), 40)";
	kp_run(40);
	add(s, 0, 40, "a", NULL, "{}");
	add(s, 0, 40, "b", NULL, "{}");
	add_page(s, 0, 40, &p1);
	add_page(s, 0, 40, &p2);
	finish_kept(s, 40);
	CHECK_EQ(ar_pages(), 2);

	/* 41: all reached, keys kept, 40 decided: the stray row stays */
	sql_exec(stray);
	ar_run(s, 41, &p1same, &p2same, true, 3);
	/* 42: not said to have reached them all: the anti-join deletes it */
	ar_run(s, 42, &p1same, &p2same, false, 2);
	/* 43: said so, but a record did not keep its keys: deleted */
	sql_exec(stray);
	ar_run(s, 43, &p1, &p2same, true, 2);

	/* 44 fails; 45 says so and keeps every key, but the run before it
	 * decided nothing: deleted */
	kp_run(44);
	add_page(s, 0, 44, &p1same);
	flush(s, 0);
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, 44, "failed", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	sql_exec(stray);
	ar_run(s, 45, &p1same, &p2same, true, 2);
	/* 46: the mark is the run's own: said for 45, not for 46 */
	sql_exec(stray);
	ar_run(s, 46, &p1same, &p2same, false, 2);
	char *got = sql1("SELECT string_agg(key || ':' || coalesce(removed_import::text, '-'), ','"
	                 " ORDER BY key) FROM ar_items");
	CHECK_STR(got, "a:-,b:-");
	free(got);
	kept_table = "kp_items";
	sql_exec("DELETE FROM import_runs");
	reads_clear(&r);
	store_free(s);
}

/* Removals are set-based: 50,000 rows, 1,000 pages of 50 keys, decided
 * in one finishing transaction in well under the test's patience. */
static void test_removals_over_50k_rows_are_set_based(void)
{
	const char *tables[] = { "rb_big" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	sql_exec("INSERT INTO rb_big (key, payload, first_import, last_import)"
	         " SELECT 'k' || i, '{}', 1, 1 FROM generate_series(1, 50000) i");
	/* pages of import 2 list every key but the multiples of 100 */
	sql_exec("INSERT INTO raced_pages (stage, url, input, page_no, keys, hashes, fetched_at,"
	         " seen_import) SELECT 'rb_big', 'p' || g, 'p' || g, 0,"
	         " ARRAY(SELECT 'k' || i FROM generate_series(g * 50 + 1, g * 50 + 50) i"
	         "  WHERE i % 100 <> 0), '\\x', now(), 2 FROM generate_series(0, 999) g");
	/* what import 2 reached: every page, in 20 batches of 50 */
	sql_exec("INSERT INTO raced_reached (import_id, stage, urls, done)"
	         " SELECT 2, 'rb_big', ARRAY(SELECT 'p' || g FROM generate_series(b * 50, b * 50 + 49) g),"
	         " '{}' FROM generate_series(0, 19) b");
	sql_exec("ANALYZE rb_big");
	sql_exec("ANALYZE raced_pages");
	struct run_ctx c = { 0 };
	double t0 = now_s();
	CHECK_EQ(store_finish_import(s, 2, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished,
	                             &c), 0);
	CHECK(run_until(flag_set, &c.finished, 60));
	double secs = now_s() - t0;
	fprintf(stderr, "  removals over 50000 rows, 1000 pages: %.0f ms\n", secs * 1000);
	CHECK_STR(c.err, "");
	CHECK_EQ(sql_int("SELECT count(*) FROM rb_big WHERE removed_import = 2"), 500);
	CHECK(secs < 5);
	reads_clear(&r);
	store_free(s);
}

/* get_run: the newest resumable run (or the one named) with what a resume
 * needs; resume reopens it once, and refuses a run that is not resumable
 * naming its status, or one that does not exist. */
static void test_get_run_and_resume(void)
{
	sql_exec("DELETE FROM import_runs");
	const char *tables[] = { "gr_items" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 100);
	json_t *pipeline = json_pack("[{s:s, s:s}]", "name", "gr_items", "url", "http://h/x");
	struct store_run_begin b = { "racectl by bob", true, "http://h/x?since=1", pipeline };
	struct run_ctx c = { 0 };
	CHECK_EQ(store_begin_import(s, &b, on_id, &c), 0);
	json_decref(pipeline);
	CHECK(run_until(flag_set, &c.got_id, 10));
	int64_t id = c.id;
	struct run_ctx g = { 0 };
	CHECK_EQ(store_get_run(s, 0, on_runs, &g), 0);   /* none resumable yet */
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK(json_is_null(g.runs));
	json_decref(g.runs);
	CHECK_EQ(store_finish_import(s, id, "interrupted", NULL, STORE_FINISH_RESUMABLE,
	                             on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_get_run(s, 0, on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK_STR(g.err, "");
	CHECK(json_is_object(g.runs));
	CHECK_EQ(json_integer_value(json_object_get(g.runs, "id")), id);
	CHECK_STR(json_string_value(json_object_get(g.runs, "status")), "interrupted");
	CHECK(json_is_true(json_object_get(g.runs, "resumable")));
	CHECK(json_is_true(json_object_get(g.runs, "full_import")));
	CHECK(json_is_false(json_object_get(g.runs, "newer_success")));
	CHECK_EQ(json_integer_value(json_object_get(g.runs, "resumes")), 0);
	CHECK_STR(json_string_value(json_object_get(g.runs, "root_url")), "http://h/x?since=1");
	CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(g.runs,
	          "pipeline"), 0), "url")), "http://h/x");
	CHECK(json_is_string(json_object_get(g.runs, "started_at")));
	CHECK(json_is_string(json_object_get(g.runs, "finished_at")));
	json_decref(g.runs);

	struct run_ctx rs = { 0 };
	CHECK_EQ(store_resume_import(s, id, on_finished, &rs), 0);
	CHECK(run_until(flag_set, &rs.finished, 10));
	CHECK_STR(rs.err, "");
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM import_runs WHERE id = %lld AND status = 'running'"
	         " AND finished_at IS NULL AND NOT resumable AND resumes = 1 AND resumed_at IS NOT NULL",
	         (long long)id);
	CHECK_EQ(sql_int(q), 1);
	memset(&rs, 0, sizeof rs);
	CHECK_EQ(store_resume_import(s, id, on_finished, &rs), 0);   /* not twice */
	CHECK(run_until(flag_set, &rs.finished, 10));
	char want[256];
	snprintf(want, sizeof want, "import %lld cannot be resumed: its status is 'running' and it is"
	         " not resumable (only an interrupted import, or one failed for the database, is)",
	         (long long)id);
	CHECK_STR(rs.err, want);
	memset(&rs, 0, sizeof rs);
	CHECK_EQ(store_resume_import(s, id + 100, on_finished, &rs), 0);
	CHECK(run_until(flag_set, &rs.finished, 10));
	snprintf(want, sizeof want, "there is no import %lld", (long long)(id + 100));
	CHECK_STR(rs.err, want);

	/* a newer success shows; a run named by id need not be resumable */
	sql_exec("INSERT INTO import_runs (status) VALUES ('succeeded')");
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_get_run(s, id, on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK(json_is_true(json_object_get(g.runs, "newer_success")));
	CHECK(json_is_false(json_object_get(g.runs, "resumable")));
	json_decref(g.runs);
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_get_run(s, id + 100, on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK(json_is_null(g.runs));
	json_decref(g.runs);

	/* runs marked stale become resumable */
	sql_exec("INSERT INTO import_runs (id, status) VALUES (999, 'running')");
	CHECK_EQ(store_mark_stale_runs(s, NULL, NULL), 0);
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_get_run(s, 0, on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK_EQ(json_integer_value(json_object_get(g.runs, "id")), 999);
	json_decref(g.runs);
	sql_exec("DELETE FROM import_runs");
	store_free(s);
}

/* The cursor: the latest succeeded run's start (whole seconds, UTC) and
 * the largest value at a pointer among rows succeeded runs wrote. */
static void test_cursor_reads_the_last_success_and_the_largest_value(void)
{
	sql_exec("DELETE FROM import_runs");
	const char *tables[] = { "cu_races" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 100);
	struct run_ctx g = { 0 };
	CHECK_EQ(store_get_cursor(s, 0, "/meta/updated~1at", on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	char *text = json_dumps(g.runs, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"last_success\":null,\"max\":null}");
	free(text);
	json_decref(g.runs);
	sql_exec("INSERT INTO import_runs (id, status, started_at) VALUES"
	         " (1, 'succeeded', '2026-01-02 03:04:05.9+00'),"
	         " (2, 'failed', '2026-01-03 00:00:00+00'), (3, 'succeeded', '2026-01-02 05:06:07+02')");
	sql_exec("INSERT INTO cu_races (key, payload, first_import, last_import) VALUES"
	         " ('a', '{\"meta\": {\"updated/at\": \"2026-01-01T10:00:00Z\"}}', 1, 1),"
	         " ('b', '{\"meta\": {\"updated/at\": \"2026-01-01T12:00:00Z\"}}', 1, 3),"
	         " ('c', '{\"meta\": {\"updated/at\": \"2026-01-09T00:00:00Z\"}}', 2, 2),"
	         " ('d', '{\"meta\": {\"updated/at\": null}}', 1, 1), ('e', '{}', 1, 1)");
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_get_cursor(s, 0, "/meta/updated~1at", on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK_STR(g.err, "");
	text = json_dumps(g.runs, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"last_success\":\"2026-01-02T03:06:07Z\",\"max\":\"2026-01-01T12:00:00Z\"}");
	free(text);
	json_decref(g.runs);
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_get_cursor(s, 0, NULL, on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK(json_is_null(json_object_get(g.runs, "max")));
	json_decref(g.runs);
	sql_exec("DELETE FROM import_runs");
	store_free(s);
}

/* A stage table emptied while raced_pages has its rows: those rows are
 * deleted at the start of an import, and the stage named. */
static void test_state_of_an_emptied_table_is_cleared(void)
{
	const char *tables[] = { "or_a", "or_b", "or_c" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 3, 100);
	sql_exec("INSERT INTO or_b (key, payload) VALUES ('x', '{}')");
	sql_exec("INSERT INTO raced_pages (stage, url, input, page_no, keys, hashes, fetched_at,"
	         " seen_import) VALUES ('or_a', 'u1', 'u1', 0, '{x}', '\\x', now(), 1),"
	         " ('or_a', 'u2', 'u1', 1, '{}', '\\x', now(), 1),"
	         " ('or_b', 'u1', 'u1', 0, '{x}', '\\x', now(), 1)");
	struct run_ctx g = { 0 };
	CHECK_EQ(store_clear_orphan_state(s, on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK_STR(g.err, "");
	char *text = json_dumps(g.runs, JSON_COMPACT);
	CHECK_STR(text, "[\"or_a\"]");
	free(text);
	json_decref(g.runs);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'or_a'"), 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'or_b'"), 1);
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_clear_orphan_state(s, on_runs, &g), 0);
	CHECK(run_until(flag_set, &g.got_runs, 10));
	CHECK(json_is_array(g.runs) && json_array_size(g.runs) == 0);
	json_decref(g.runs);
	store_free(s);
}

/* raced's connection runs with synchronous_commit = on whatever the
 * server's default (off in these clusters), or the setting's value. */
static void test_synchronous_commit_is_set_on_raced_connection(void)
{
	char *server = sql1("SHOW synchronous_commit");
	CHECK_STR(server, "off");
	free(server);
	sql_exec("CREATE TABLE IF NOT EXISTS sc_seen (v text)");
	sql_exec("CREATE OR REPLACE FUNCTION sc_note() RETURNS trigger LANGUAGE plpgsql AS"
	         " $$ BEGIN INSERT INTO sc_seen VALUES (current_setting('synchronous_commit'));"
	         " RETURN NULL; END $$");
	const char *values[] = { NULL, "local" };
	const char *want[] = { "on", "local" };
	for (size_t i = 0; i < 2; i++) {
		const char *tables[] = { "sc_items" };
		struct seen w = { 0 };
		struct store_conf conf = { .conninfo = conninfo, .batch_size = 10, .tables = tables,
		                           .n_tables = 1, .synchronous_commit = values[i] };
		struct store *s = start_store(&w, &conf, NULL);
		CHECK(s && run_until(store_ready, s, 30));
		if (!s)
			return;
		sql_exec("DROP TRIGGER IF EXISTS sc_note ON sc_items");
		sql_exec("CREATE TRIGGER sc_note AFTER INSERT ON sc_items FOR EACH STATEMENT"
		         " EXECUTE FUNCTION sc_note()");
		sql_exec("DELETE FROM sc_seen");
		add(s, 0, 1, i ? "b" : "a", NULL, "{}");
		flush(s, 0);
		struct want x = { &w, 0, 1 };
		CHECK(run_until(committed_reached, &x, 10));
		char *got = sql1("SELECT string_agg(v, ',') FROM sc_seen");
		CHECK_STR(got, want[i]);
		free(got);
		store_free(s);
	}
}

static bool in_backoff_state(void *arg)
{
	return store_state(arg) == STORE_BACKOFF;
}

/* store_down_ms: 0 while READY; counts from the last time it was READY,
 * or from store_new when never. */
static void test_down_ms_counts_from_the_last_ready(void)
{
	const char *tables[] = { "dm_items" };
	struct seen w = { 0 };
	struct store_conf conf = { .conninfo = "host=/nonexistent dbname=none", .batch_size = 10,
	                           .tables = tables, .n_tables = 1 };
	struct store *s = start_store(&w, &conf, NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	double later = now_s() + 0.2;
	CHECK(run_until(time_passed, &later, 5));
	CHECK(store_down_ms(s) >= 200);
	CHECK(run_until(in_backoff_state, s, 5));
	store_free(s);

	struct seen w2 = { 0 };
	s = open_store(&w2, tables, 1, 10);
	CHECK_EQ(store_down_ms(s), 0);
	/* drop raced's connection from the server side */
	sql_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	         " WHERE pid <> pg_backend_pid() AND datname = current_database()"
	         " AND backend_type = 'client backend'");
	add(s, 0, 1, "k", NULL, "{}");
	flush(s, 0);
	CHECK(run_until(in_backoff_state, s, 10));
	uint64_t d1 = store_down_ms(s);
	later = now_s() + 0.1;
	CHECK(run_until(time_passed, &later, 5));
	CHECK(store_down_ms(s) >= d1 + 100 || store_state(s) == STORE_READY);
	struct want x = { &w2, 0, 1 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(store_down_ms(s), 0);
	store_free(s);
}

static bool got_json(void *arg)
{
	return ((struct run_ctx *)arg)->got_runs;
}

/* The discard backend answers every state call as an empty database. */
static void test_discard_answers_every_state_call(void)
{
	const char *tables[] = { "dc_a" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store_conf conf = { .batch_size = 2, .tables = tables, .n_tables = 1, .discard = true };
	struct store *s = open_state_store(&w, &r, &conf);
	if (!s)
		return;
	char err[ERR_MAX] = "";
	const char *keys[] = { "a" };
	uint64_t h[] = { 1 };
	struct store_page pg = { .url = "u", .input = "u", .fetched = true, .content = true,
	                         .keys = keys, .hashes = h, .n_keys = 1, .input_done = true };
	add(s, 0, 1, "a", NULL, "{}");
	add_unchanged(s, 0, 1, 2);
	add_page(s, 0, 1, &pg);
	flush(s, 0);
	struct want x = { &w, 0, 3 };
	CHECK(run_until(committed_reached, &x, 5));
	CHECK_EQ(w.n_calls[0], 2);

	read_input(s, &r, 0, "u", 5);
	CHECK(r.st && r.st->n_pages == 0);
	CHECK_EQ(r.tag, 5);
	r.answers = 0;
	CHECK_EQ(store_read_items(s, 0, keys, 1, 6, err), 0);
	CHECK(run_until(answered, &r, 5));
	CHECK(r.items && r.items->n == 0);

	struct run_ctx g = { 0 };
	CHECK_EQ(store_get_run(s, 0, on_runs, &g), 0);
	CHECK(run_until(got_json, &g, 5));
	CHECK(json_is_null(g.runs));
	json_decref(g.runs);
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_get_cursor(s, 0, "/x", on_runs, &g), 0);
	CHECK(run_until(got_json, &g, 5));
	char *text = json_dumps(g.runs, JSON_COMPACT | JSON_SORT_KEYS);
	CHECK_STR(text, "{\"last_success\":null,\"max\":null}");
	free(text);
	json_decref(g.runs);
	memset(&g, 0, sizeof g);
	CHECK_EQ(store_clear_orphan_state(s, on_runs, &g), 0);
	CHECK(run_until(got_json, &g, 5));
	CHECK(json_is_array(g.runs) && json_array_size(g.runs) == 0);
	json_decref(g.runs);
	struct run_ctx rs = { 0 };
	CHECK_EQ(store_resume_import(s, 1, on_finished, &rs), 0);
	CHECK(run_until(flag_set, &rs.finished, 5));
	CHECK(strstr(rs.err, "discard") != NULL);
	rs.finished = false;
	CHECK_EQ(store_finish_import(s, 1, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished,
	                             &rs), 0);
	CHECK(run_until(flag_set, &rs.finished, 5));
	CHECK_EQ(store_down_ms(s), 0);

	/* an answer whose sink was detached meanwhile goes to nobody */
	r.answers = 0;
	CHECK_EQ(store_get_input(s, 0, "u", 7, err), 0);
	store_detach_sink(s, &w);
	double later = now_s() + 0.1;
	CHECK(run_until(time_passed, &later, 5));
	CHECK_EQ(r.answers, 0);
	reads_clear(&r);
	store_free(s);
}

/* --- upgrades: a database of an older raced --------------------------- */

/* Run statements on database db (blocking); false on the first failure. */
static bool exec_on(const char *db, const char *const *stmts)
{
	char ci[1024];
	snprintf(ci, sizeof ci, "%s dbname=%s", conninfo, db);
	PGconn *c = PQconnectdb(ci);
	bool ok = PQstatus(c) == CONNECTION_OK;
	for (size_t i = 0; ok && stmts[i]; i++) {
		PGresult *r = PQexec(c, stmts[i]);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
		if (!ok)
			fprintf(stderr, "exec_on(%s): %s", stmts[i], PQresultErrorMessage(r));
		PQclear(r);
	}
	PQfinish(c);
	return ok;
}

/* The schema of raced at version 1 (its statements as they were), with a
 * stage table of that time holding a row. */
static const char *const schema_v1[] = {
	"CREATE TABLE raced_schema_version (version integer PRIMARY KEY,"
	" description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
	"CREATE TABLE import_runs (id bigserial PRIMARY KEY,"
	" started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz,"
	" status text NOT NULL DEFAULT 'running' CHECK (status IN"
	"  ('running', 'succeeded', 'partial', 'failed', 'cancelled', 'interrupted')),"
	" requested_by text, counts jsonb)",
	"CREATE TABLE import_errors (id bigserial PRIMARY KEY, import_id bigint NOT NULL,"
	" stage text NOT NULL, url text, http_status integer, attempts integer NOT NULL DEFAULT 0,"
	" message text, at timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX import_errors_import_id ON import_errors (import_id)",
	"INSERT INTO raced_schema_version (version, description) VALUES"
	" (1, 'import_runs and import_errors')",
	"CREATE TABLE up_items (key text PRIMARY KEY, parent_key text, payload jsonb NOT NULL,"
	" first_import bigint, last_import bigint, updated_at timestamptz NOT NULL DEFAULT now())",
	"CREATE INDEX up_items_parent_key ON up_items (parent_key)",
	"INSERT INTO import_runs (status, requested_by) VALUES ('succeeded', 'old raced')",
	"INSERT INTO up_items (key, payload, first_import, last_import) VALUES"
	" ('old', '{\"v\": 1}', 1, 1)",
	NULL,
};
static const char *const schema_v2[] = {
	"ALTER TABLE import_runs ADD COLUMN heartbeat_at timestamptz",
	"INSERT INTO raced_schema_version (version, description) VALUES"
	" (2, 'import_runs.heartbeat_at')",
	NULL,
};

/* Connect to a database at version `from`: the missing migrations are
 * applied, the data kept, the stage table gains removed_import, and the
 * store works on it (rows, page records). */
static void upgrade_from(int from)
{
	char db[32], ci[1024], q[160];
	snprintf(db, sizeof db, "races_v%d", from);
	snprintf(q, sizeof q, "CREATE DATABASE %s", db);
	sql_exec(q);
	CHECK(exec_on(db, schema_v1));
	if (from >= 2)
		CHECK(exec_on(db, schema_v2));
	snprintf(ci, sizeof ci, "%s dbname=%s", conninfo, db);
	const char *saved = conninfo;
	conninfo = ci;
	const char *tables[] = { "up_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 10);
	CHECK_EQ(store_state(s), STORE_READY);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.migrations_applied, (uint32_t)(store_schema_version() - from));
	CHECK_EQ(sql_int("SELECT max(version) FROM raced_schema_version"), store_schema_version());
	CHECK_EQ(sql_int("SELECT count(*) FROM import_runs WHERE requested_by = 'old raced'"
	                 " AND NOT resumable AND resumes = 0 AND NOT full_import"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM up_items WHERE key = 'old' AND removed_import IS NULL"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM information_schema.columns"
	                 " WHERE table_name = 'import_runs' AND column_name = 'heartbeat_at'"), 1);
	add(s, 0, 2, "old", NULL, "{\"v\": 2}");
	const char *keys[] = { "old" };
	uint64_t h[] = { 7 };
	struct store_page pg = { .url = "u", .input = "u", .fetched = true, .content = true,
	                         .keys = keys, .hashes = h, .n_keys = 1, .input_done = true };
	add_page(s, 0, 2, &pg);
	flush(s, 0);
	struct want x = { &w, 0, 1 };
	CHECK(run_until(committed_reached, &x, 10));
	CHECK_EQ(sql_int("SELECT last_import FROM up_items WHERE key = 'old'"), 2);
	CHECK(done_in("u", 2));
	reads_clear(&r);
	store_free(s);
	/* the next connection applies nothing */
	struct seen w2 = { 0 };
	s = open_store(&w2, tables, 1, 10);
	store_get_stats(s, &st);
	CHECK_EQ(st.migrations_applied, 0);
	store_free(s);
	conninfo = saved;
}

static void test_a_version_2_database_gets_migration_3(void)
{
	upgrade_from(2);
}

static void test_a_version_1_database_is_upgraded_to_the_current_version(void)
{
	upgrade_from(1);
}

/* --- PostgreSQL stopped mid-stream ------------------------------------- */

static pid_t spawn_pg(const char *fn)
{
	const char *root = getenv("RACED_SOURCE_ROOT");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, ". '%s/tests/lib/pgcluster.sh' && %s", root ? root : ".", fn);
	char *argv[] = { "bash", "-c", cmd, NULL };
	pid_t pid;
	if (posix_spawnp(&pid, "bash", NULL, NULL, argv, environ) != 0)
		return -1;
	return pid;
}

struct outage {
	struct seen *w;
	size_t total, added, window;
	bool stop_sent;
	pid_t child;
	int child_status;
	bool child_done;
};

static void feed(struct outage *o)
{
	char key[32], payload[400];
	while (o->added < o->total && o->added - o->w->committed[0] < o->window) {
		snprintf(key, sizeof key, "row%06zu", o->added);
		int n = snprintf(payload, sizeof payload, "{\"seq\": %zu, \"pad\": \"%0250zu\"}", o->added, o->added);
		char err[ERR_MAX];
		if (store_add(o->w->store, 0, 1, key, NULL, payload, (size_t)n, err) != 0) {
			fprintf(stderr, "store_add: %s\n", err);
			break;
		}
		o->added++;
	}
	if (o->added == o->total)
		flush(o->w->store, 0);
}

static void outage_committed(struct seen *w, size_t table, size_t n)
{
	(void)table;
	(void)n;
	feed(w->user);
}

static bool child_exited(void *arg)
{
	struct outage *o = arg;
	if (!o->child_done && waitpid(o->child, &o->child_status, WNOHANG) == o->child)
		o->child_done = true;
	return o->child_done;
}

static bool in_backoff(void *arg)
{
	return store_state(arg) == STORE_BACKOFF;
}

static bool all_committed(void *arg)
{
	struct outage *o = arg;
	return o->w->committed[0] == o->total;
}

static void test_postgres_restart_mid_stream_stores_every_row_once(void)
{
	const char *tables[] = { "o_rows" };
	struct seen w = { 0 };
	struct outage o = { &w, 20000, 0, 2000, false, 0, 0, false };
	w.user = &o;
	w.on_committed = outage_committed;
	struct store *s = open_store(&w, tables, 1, 200);
	feed(&o);
	struct want x = { &w, 0, 2000 };
	CHECK(run_until(committed_reached, &x, 30));
	CHECK(w.committed[0] < o.total);
	size_t states_before = w.n_states;

	o.child = spawn_pg("pg_cluster_stop");
	CHECK(o.child > 0);
	CHECK(run_until(in_backoff, s, 30));
	CHECK(run_until(child_exited, &o, 60));
	CHECK(WIFEXITED(o.child_status) && WEXITSTATUS(o.child_status) == 0);
	size_t at_stop = w.committed[0];
	CHECK(at_stop < o.total);
	fprintf(stderr, "  stopped after %zu rows committed: %s\n", at_stop, w.last_why);

	/* Down for 2 s while the store retries. */
	double until = now_s() + 2.0;
	while (now_s() < until)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(10000);
	CHECK_EQ(w.committed[0], at_stop);
	CHECK(store_state(s) != STORE_READY);

	o.child_done = false;
	o.child = spawn_pg("pg_cluster_start");
	CHECK(run_until(child_exited, &o, 60));
	CHECK(WIFEXITED(o.child_status) && WEXITSTATUS(o.child_status) == 0);
	CHECK(run_until(all_committed, &o, 60));
	CHECK_EQ(w.committed[0], o.total);
	CHECK_EQ(store_state(s), STORE_READY);

	/* Transitions after the stop: BACKOFF, (CONNECTING, BACKOFF)*, CONNECTING, MIGRATING, READY. */
	CHECK(w.n_states >= states_before + 4);
	CHECK_EQ(w.states[states_before], STORE_BACKOFF);
	CHECK_EQ(w.states[w.n_states - 1], STORE_READY);
	CHECK_EQ(w.states[w.n_states - 2], STORE_MIGRATING);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.reconnects >= 1);
	CHECK_EQ(st.rows_failed, 0);

	CHECK_EQ(sql_int("SELECT count(*) FROM o_rows"), 20000);
	CHECK_EQ(sql_int("SELECT count(*) FROM o_rows WHERE key = 'row' || lpad((payload->>'seq'), 6, '0')"), 20000);
	CHECK_EQ(sql_int("SELECT count(DISTINCT (payload->>'seq')::int) FROM o_rows"), 20000);
	store_free(s);
}

/* --- rows known new (issue 17) ------------------------------------------ */

/* A run begun on s (batches of `batch`); its id. */
static int64_t begin_run(struct store *s)
{
	struct run_ctx c = { 0 };
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "test" }, on_id, &c),
	         0);
	CHECK(run_until(flag_set, &c.got_id, 10));
	CHECK_STR(c.err, "");
	return c.id;
}

/* Read-backs by parent (store_read_committed_fields with parents): with
 * the table's parent_key index found by the run's probe, one range a
 * parent, the rows put in the order of the keys asked (a key asked twice
 * answered twice); a key whose row has another parent, or none, sends the
 * read again by key, whose answer is the same.  Without the index: by
 * key from the start. */
static void bp_read(struct store *s, struct reads *r, const char *const *keys,
                    const char *const *parents, size_t n, uint64_t tag)
{
	char err[ERR_MAX] = "";
	reads_clear(r);
	CHECK_EQ(store_read_committed_fields(s, 1, keys, parents, n, tag, err), 0);
	CHECK(run_until(answered, r, 10));
	CHECK_STR(r->err, "");
	CHECK_EQ(r->tag, tag);
}

static void test_rows_read_back_by_parent(void)
{
	const char *tables[] = { "bp_races", "bp_entries" };
	const int parents[] = { -1, 0 };
	const bool dedupe[] = { false, false };
	const char *fields[] = { "athlete_id" };
	const struct store_read_fields rf = { fields, 1, 64 };
	const struct store_read_fields *per[] = { NULL, &rf };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 100, .tables = tables,
	                           .n_tables = 2, .parents = parents, .dedupe = dedupe,
	                           .read_fields = per };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state_store(&w, &r, &conf);
	if (!s)
		return;
	char key[8], pk[8], payload[64];
	for (int i = 1; i <= 6; i++) {
		snprintf(key, sizeof key, "e%d", i);
		snprintf(pk, sizeof pk, "r%d", i <= 3 ? 1 : 2);
		snprintf(payload, sizeof payload, "{\"athlete_id\": \"a%d\", \"x\": %d}", i, i);
		add(s, 1, 1, key, pk, payload);
	}
	flush(s, 1);
	struct want x = { &w, 1, 6 };
	CHECK(run_until(committed_reached, &x, 10));
	store_free(s);
	/* connected again: the index is made (the table has rows), the probe finds it */
	memset(&w, 0, sizeof w);
	if (!(s = open_state_store(&w, &r, &conf)))
		return;
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_indexes WHERE indexname = 'bp_entries_parent_key'"), 1);
	begin_run(s);
	const char *k1[] = { "e3", "e1", "e4", "e3" }, *p1[] = { "r1", "r1", "r2", "r1" };
	bp_read(s, &r, k1, p1, 4, 11);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.read_parent, 1);
	CHECK_EQ(st.read_parent_missed, 0);
	if (r.items && r.items->n == 4) {
		static const char *const want[] = { "a3", "a1", "a4", "a3" };
		for (size_t i = 0; i < 4; i++) {
			CHECK_STR(r.items->items[i].key, k1[i]);
			CHECK(r.items->items[i].narrow);
			CHECK_STR(r.items->items[i].payload, want[i]);
		}
	} else {
		CHECK_EQ(r.items ? r.items->n : 99, 4);
	}
	/* e5's row has parent r2: read again by key, the same answer */
	const char *k2[] = { "e1", "e5" }, *p2[] = { "r1", "r1" };
	bp_read(s, &r, k2, p2, 2, 12);
	store_get_stats(s, &st);
	CHECK_EQ(st.read_parent, 2);
	CHECK_EQ(st.read_parent_missed, 1);
	CHECK(r.items && r.items->n == 2 && strcmp(r.items->items[1].key, "e5") == 0 &&
	      strcmp(r.items->items[1].payload, "a5") == 0);
	/* a key with no row: left out, as by key */
	const char *k3[] = { "e2", "gone" }, *p3[] = { "r1", "r1" };
	bp_read(s, &r, k3, p3, 2, 13);
	store_get_stats(s, &st);
	CHECK_EQ(st.read_parent_missed, 2);
	CHECK(r.items && r.items->n == 1 && strcmp(r.items->items[0].key, "e2") == 0);
	/* a parent not known for some key: by key */
	const char *p4[] = { "r1", NULL, "r2", "r1" };
	bp_read(s, &r, k1, p4, 4, 14);
	store_get_stats(s, &st);
	CHECK_EQ(st.read_parent, 3);
	CHECK(r.items && r.items->n == 4);
	/* the index gone: the next run's probe says so, the reads go by key */
	sql_exec("DROP INDEX bp_entries_parent_key");
	begin_run(s);
	bp_read(s, &r, k1, p1, 4, 15);
	store_get_stats(s, &st);
	CHECK_EQ(st.read_parent, 3);
	CHECK(r.items && r.items->n == 4 && strcmp(r.items->items[3].payload, "a3") == 0);
	reads_clear(&r);
	store_free(s);
}

/* n rows key<prefix><i> (i from `from`) with payload {"i": i, "v": v}. */
static void add_rows(struct store *s, size_t table, int64_t id, const char *prefix, int from,
                     int n, int v)
{
	char key[32], payload[64];
	for (int i = from; i < from + n; i++) {
		snprintf(key, sizeof key, "%s%05d", prefix, i);
		snprintf(payload, sizeof payload, "{\"i\": %d, \"v\": %d}", i, v);
		add(s, table, id, key, NULL, payload);
	}
}

static struct store_stats stats_of(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st;
}

static bool fr_counted(void *arg)
{
	char q[200];
	snprintf(q, sizeof q, "SELECT count(*) FROM import_runs WHERE id = %lld AND"
	         " counts->'fr_items' ? 'shared_keys'", (long long)*(const int64_t *)arg);
	return sql_int(q) == 1;
}

static char *fr_state(void)
{
	return sql1("SELECT string_agg(key || ':' || CASE WHEN removed_import IS NULL THEN '-'"
	            " ELSE 'removed' END, ',' ORDER BY key) FROM fr_items");
}

/* A first import into the empty fr_items: rows a, b, c; page p1 listing
 * a, b, a and p2 listing c (both first records unless p1_first is
 * false); then p1 again listing a only, if twice.  Then the row x put
 * in behind raced's back (a finish that reads keys marks it removed, a
 * kept one never reads it), and the run finished as succeeded; resumes
 * set on its row first if resumed.  Returns the run's id. */
static int64_t fr_run(struct store *s, struct seen *w, bool p1_first, bool twice, bool resumed)
{
	sql_exec("DELETE FROM fr_items");
	sql_exec("DELETE FROM raced_pages WHERE stage = 'fr_items'");
	int64_t id = begin_run(s);
	const char *kab[] = { "a", "b", "a" }, *kc[] = { "c" }, *ka[] = { "a" };
	uint64_t h[] = { 1, 2, 3 };
	struct store_page p1 = { .url = "p1", .input = "p1", .fetched = true, .content = true,
	                         .keys = kab, .hashes = h, .n_keys = 3, .input_done = true,
	                         .first = p1_first };
	struct store_page p2 = { .url = "p2", .input = "p2", .fetched = true, .content = true,
	                         .keys = kc, .hashes = h, .n_keys = 1, .input_done = true,
	                         .first = true };
	struct store_page p1a = { .url = "p1", .input = "p1", .fetched = true, .content = true,
	                          .keys = ka, .hashes = h, .n_keys = 1, .input_done = true,
	                          .first = true };
	add(s, 0, id, "a", NULL, "{}");
	add(s, 0, id, "b", NULL, "{}");
	add_page(s, 0, id, &p1);
	add(s, 0, id, "c", NULL, "{}");
	add_page(s, 0, id, &p2);
	if (twice) {
		flush(s, 0);
		add(s, 0, id, "a", NULL, "{\"v\": 2}");
		add_page(s, 0, id, &p1a);
	}
	flush(s, 0);
	struct want x = { w, 0, twice ? 4 : 3 };
	CHECK(run_until(committed_reached, &x, 20));
	w->committed[0] = 0;
	sql_exec("INSERT INTO fr_items (key, payload, first_import, last_import)"
	         " VALUES ('x', '{}', 1, 1)");
	if (resumed) {
		char q[100];
		snprintf(q, sizeof q, "UPDATE import_runs SET resumes = 1 WHERE id = %lld", (long long)id);
		sql_exec(q);
	}
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, id, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished,
	                             &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_STR(c.err, "");
	CHECK(run_until(fr_counted, &id, 10));
	return id;
}

static long long fr_count(int64_t id, const char *name)
{
	char q[200];
	snprintf(q, sizeof q, "SELECT (counts->'fr_items'->>'%s')::bigint FROM import_runs"
	         " WHERE id = %lld", name, (long long)id);
	return sql_int(q);
}

/* Run id left fr_items as state (key:- or key:removed, by key) with its
 * counts stored and shared_keys. */
static void fr_check(int64_t id, const char *state, long long stored, long long shared)
{
	char *got = fr_state();
	CHECK_STR(got, state);
	free(got);
	CHECK_EQ(fr_count(id, "stored"), stored);
	CHECK_EQ(fr_count(id, "shared_keys"), shared);
}

/* A first import into a table empty at its start reads no keys to decide
 * its removals when every page record was a first one, each page was
 * recorded once, no row was refused and the run is its import's only
 * one; its counts are the same as when they are read from the keys. */
static void test_a_first_import_decides_its_removals_without_reading_keys(void)
{
	const char *tables[] = { "fr_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	sql_exec("DELETE FROM import_runs");
	/* kept: x is never read; a, b, a, c listed: 1 shared key, 3 stored */
	fr_check(fr_run(s, &w, true, false, false), "a:-,b:-,c:-,x:-", 3, 1);
	/* a record that was not a first one: decided from the keys */
	fr_check(fr_run(s, &w, false, false, false), "a:-,b:-,c:-,x:removed", 3, 1);
	/* p1 recorded twice, the second time without b: b goes */
	fr_check(fr_run(s, &w, true, true, false), "a:-,b:removed,c:-,x:removed", 3, 0);
	/* a resumed run: decided from the keys */
	fr_check(fr_run(s, &w, true, false, true), "a:-,b:-,c:-,x:removed", 3, 1);
	sql_exec("DELETE FROM import_runs");
	reads_clear(&r);
	store_free(s);
}

/* A first import into empty tables writes every row by the plain INSERT
 * (counted by the store, and seen as raced_insert_* in pg_stat_statements
 * when it is there); the next import, the tables no longer empty, goes by
 * the upsert, and a table empty at its start again by the plain INSERT. */
static void test_a_first_import_into_empty_tables_goes_by_plain_inserts(void)
{
	const char *tables[] = { "pl_a", "pl_b" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 2, 100);
	int64_t id = begin_run(s);
	add_rows(s, 0, id, "a", 0, 250, 1);
	add_rows(s, 1, id, "b", 0, 120, 1);
	flush(s, 0);
	flush(s, 1);
	struct want x = { &w, 0, 250 }, y = { &w, 1, 120 };
	CHECK(run_until(committed_reached, &x, 20) && run_until(committed_reached, &y, 20));
	struct store_stats st = stats_of(s);
	CHECK_EQ(st.rows_plain, 370);
	CHECK_EQ(st.batches_plain, 5);
	CHECK_EQ(st.plain_fallbacks, 0);
	CHECK_EQ(st.rows_failed, 0);
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM pl_a WHERE first_import = %lld AND last_import = %lld"
	         " AND (payload->>'v')::int = 1 AND removed_import IS NULL", (long long)id, (long long)id);
	CHECK_EQ(sql_int(q), 250);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_b"), 120);

	/* next run: pl_a has rows (the upsert: 50 changed, 50 new), pl_b
	 * emptied meanwhile (the plain INSERT again) */
	sql_exec("DELETE FROM pl_b");
	int64_t id2 = begin_run(s);
	add_rows(s, 0, id2, "a", 200, 100, 2);
	add_rows(s, 1, id2, "b", 0, 30, 2);
	flush(s, 0);
	flush(s, 1);
	x.n = 350;
	y.n = 150;
	CHECK(run_until(committed_reached, &x, 20) && run_until(committed_reached, &y, 20));
	st = stats_of(s);
	CHECK_EQ(st.rows_plain, 370 + 30);
	CHECK_EQ(st.plain_fallbacks, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_a"), 300);
	snprintf(q, sizeof q, "SELECT count(*) FROM pl_a WHERE last_import = %lld AND (payload->>'v')::int = 2",
	         (long long)id2);
	CHECK_EQ(sql_int(q), 100);
	snprintf(q, sizeof q, "SELECT count(*) FROM pl_a WHERE first_import = %lld", (long long)id);
	CHECK_EQ(sql_int(q), 250);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_b WHERE (payload->>'v')::int = 2"), 30);
	store_free(s);
}

/* A run whose stage has no page record in raced_pages at its start has
 * no state to read (store_state_empty): false until the run's id is
 * answered, true per stage then; false for a stage with a record, for
 * the next run of a stage the run gave one, and for a resumed run. */
static void test_state_is_known_empty_per_stage_at_a_runs_start(void)
{
	const char *tables[] = { "se_a", "se_b" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 2, 100);
	sql_exec("DELETE FROM raced_pages WHERE stage IN ('se_a', 'se_b')");
	CHECK(!store_state_empty(s, 0));
	int64_t id = begin_run(s);
	CHECK(store_state_empty(s, 0));
	CHECK(store_state_empty(s, 1));
	CHECK(!store_state_empty(s, 2));   /* out of range */

	/* the run gives se_a a page record: the next run reads se_a's state */
	const char *keys[] = { "a00000" };
	uint64_t h[] = { 1 };
	struct store_page pg = { .url = "se/p1", .input = "se/p1", .fetched = true, .content = true,
	                         .keys = keys, .hashes = h, .n_keys = 1, .input_done = true };
	add_rows(s, 0, id, "a", 0, 1, 1);
	add_page(s, 0, id, &pg);
	flush(s, 0);
	struct want x = { &w, 0, 1 };
	CHECK(run_until(committed_reached, &x, 20));
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'se_a'"), 1);
	struct run_ctx c = { 0 };
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "test" }, on_id, &c),
	         0);
	CHECK(!store_state_empty(s, 1));   /* not known until the id comes back */
	CHECK(run_until(flag_set, &c.got_id, 10));
	CHECK(c.id > id);
	CHECK(!store_state_empty(s, 0));
	CHECK(store_state_empty(s, 1));

	/* a resumed run reads its checkpoints, whatever the probe found */
	c.finished = false;
	CHECK_EQ(store_finish_import(s, c.id, "interrupted", NULL, STORE_FINISH_RESUMABLE,
	                             on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	c.finished = false;
	CHECK_EQ(store_resume_import(s, c.id, on_finished, &c), 0);
	CHECK(!store_state_empty(s, 1));
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK(!store_state_empty(s, 0));
	CHECK(!store_state_empty(s, 1));
	store_free(s);
}

/* Kept fields (raced_pages.fields): written with content, kept by a
 * record without content that brings none, and written by one that
 * brings them (a 304 whose rows were read back: import.c,
 * fields_backfill) into the stored row of its page_no only; a page that
 * has no stored row stays a placeholder, read as no row. */
static void test_page_fields_are_written_with_content_or_by_a_304_read_back(void)
{
	const char *tables[] = { "pf_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 100);
	if (!s)
		return;
	const char *keys[] = { "a" };
	uint64_t h[] = { 1 };
	const unsigned char f1[] = "one", f2[] = "two", f3[] = "three";
	struct store_page p0 = { .url = "pf0", .input = "pf0", .page_no = 0, .fetched = true,
	                         .content = true, .etag = "\"1\"", .keys = keys, .hashes = h,
	                         .n_keys = 1, .fields = f1, .fields_len = 3 };
	add_page(s, 0, 1, &p0);
	flush(s, 0);
	read_input(s, &r, 0, "pf0", 0);
	CHECK(r.st && r.st->n_pages == 1 && r.st->pages[0].fields_len == 3 &&
	      memcmp(r.st->pages[0].fields, "one", 3) == 0);

	/* a 304 without fields keeps them; one with them, of another page_no,
	 * does not write them; of its page_no, it does */
	struct store_page n0 = { .url = "pf0", .input = "pf0", .page_no = 0, .fetched = true,
	                         .etag = "\"2\"" };
	add_page(s, 0, 2, &n0);
	flush(s, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'pf0' AND fields = 'one'"), 1);
	struct store_page moved = { .url = "pf0", .input = "pf0", .page_no = 1, .fetched = true,
	                            .fields = f3, .fields_len = 5 };
	add_page(s, 0, 3, &moved);
	flush(s, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'pf0' AND fields = 'one'"), 1);
	struct store_page back = { .url = "pf0", .input = "pf0", .page_no = 0, .fetched = true,
	                           .fields = f2, .fields_len = 3 };
	add_page(s, 0, 4, &back);
	flush(s, 0);
	read_input(s, &r, 0, "pf0", 0);
	CHECK(r.st && r.st->n_pages == 1 && r.st->pages[0].fields_len == 3 &&
	      memcmp(r.st->pages[0].fields, "two", 3) == 0 && r.st->pages[0].n_keys == 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'pf0' AND etag = '\"2\"'"), 1);

	/* no stored row: a placeholder, read as none */
	struct store_page ghost = { .url = "pf9", .input = "pf9", .page_no = 0, .fetched = true,
	                            .fields = f2, .fields_len = 3 };
	add_page(s, 0, 4, &ghost);
	flush(s, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'pf9' AND seen_import < 0"), 1);
	read_input(s, &r, 0, "pf9", 0);
	CHECK(r.st && r.st->n_pages == 0);
	reads_clear(&r);
	store_free(s);
}

/* --- kept fields' trust (store_fields_trusted) ----------------------- */

#define KF_TABLES 60   /* more than json_build_object's 50 pairs */

/* A run of the kept-fields pipeline begun on s; its id. */
static int64_t kf_begin(struct store *s, json_t *pipeline)
{
	struct run_ctx c = { 0 };
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "test",
	                                                          .pipeline = pipeline },
	                            on_id, &c), 0);
	CHECK(run_until(flag_set, &c.got_id, 20));
	CHECK_STR(c.err, "");
	return c.id;
}

/* Finish run id as status, its counts what the import keeps of the probe
 * (table_oid, deletes_seen, trigger_oid: import.c state_counts). */
static void kf_finish(struct store *s, const char *const *tables, int64_t id, const char *status)
{
	json_t *counts = json_object();
	for (size_t i = 0; i < KF_TABLES; i++) {
		json_t *c = json_object();
		int64_t oid, deletes, trigger;
		if (store_deletes_seen(s, i, &oid, &deletes, &trigger)) {
			json_object_set_new(c, "table_oid", json_integer(oid));
			json_object_set_new(c, "deletes_seen", json_integer(deletes));
			json_object_set_new(c, "trigger_oid", json_integer(trigger));
		}
		json_object_set_new(counts, tables[i], c);
	}
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, id, status, counts, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 20));
	CHECK_STR(c.err, "");
	json_decref(counts);
}

/* A stage's kept fields are trusted only in a run whose previous one
 * succeeded with the same pipeline and found, at its start, the same
 * table (oid), the same trigger on it and the same count of deleting
 * statements; and the probe reads that of every table, however many
 * (the pipeline's limit, not a function call's 100 arguments). */
static void test_kept_fields_are_trusted_only_while_nothing_could_delete_unseen(void)
{
	char names[KF_TABLES][8];
	const char *tables[KF_TABLES];
	for (size_t i = 0; i < KF_TABLES; i++) {
		snprintf(names[i], sizeof names[i], "kf%02zu", i);
		tables[i] = names[i];
	}
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, KF_TABLES, 100);
	CHECK_EQ(store_state(s), STORE_READY);
	json_t *pipeline = json_pack("{s:s}", "kf", "v1");

	/* the first run: nothing to trust, but the probe read every table */
	int64_t id = kf_begin(s, pipeline);
	int64_t oid = 0, deletes = -1, trigger = 0;
	CHECK(!store_fields_trusted(s, 0));
	CHECK(store_deletes_seen(s, 0, &oid, &deletes, &trigger));
	CHECK(oid > 0 && deletes == 0 && trigger > 0);
	CHECK(store_deletes_seen(s, KF_TABLES - 1, &oid, &deletes, &trigger));
	CHECK_EQ(oid, sql_int("SELECT 'kf59'::regclass::oid::bigint"));
	kf_finish(s, tables, id, "succeeded");

	/* nothing deleted since: trusted, every table */
	id = kf_begin(s, pipeline);
	CHECK(store_fields_trusted(s, 0));
	CHECK(store_fields_trusted(s, KF_TABLES - 1));
	CHECK(!store_fields_trusted(s, KF_TABLES));   /* out of range */
	kf_finish(s, tables, id, "succeeded");

	/* a DELETE, even of no row, and a TRUNCATE: those two tables not */
	sql_exec("DELETE FROM kf00 WHERE false");
	sql_exec("TRUNCATE kf01");
	CHECK_EQ(sql_int("SELECT deletes FROM raced_stage_deletes WHERE stage = 'kf00'"), 1);
	id = kf_begin(s, pipeline);
	CHECK(!store_fields_trusted(s, 0));
	CHECK(!store_fields_trusted(s, 1));
	CHECK(store_fields_trusted(s, 2));
	kf_finish(s, tables, id, "partial");

	/* after a partial run: none */
	id = kf_begin(s, pipeline);
	CHECK(!store_fields_trusted(s, 2));
	kf_finish(s, tables, id, "succeeded");
	id = kf_begin(s, pipeline);
	CHECK(store_fields_trusted(s, 0));
	CHECK(store_fields_trusted(s, 1));
	kf_finish(s, tables, id, "succeeded");

	/* the trigger disabled: not known, so not trusted and not kept */
	sql_exec("ALTER TABLE kf02 DISABLE TRIGGER raced_deleted");
	id = kf_begin(s, pipeline);
	CHECK(!store_fields_trusted(s, 2));
	CHECK(!store_deletes_seen(s, 2, &oid, &deletes, &trigger));
	CHECK(store_fields_trusted(s, 3));
	kf_finish(s, tables, id, "succeeded");
	sql_exec("ALTER TABLE kf02 ENABLE TRIGGER raced_deleted");
	id = kf_begin(s, pipeline);
	CHECK(!store_fields_trusted(s, 2));   /* its run before did not know */
	kf_finish(s, tables, id, "succeeded");

	/* the trigger dropped, a delete it did not see, the trigger put back
	 * as the set-up would: another trigger, so not trusted */
	sql_exec("DROP TRIGGER raced_deleted ON kf03");
	sql_exec("DELETE FROM kf03");
	sql_exec("CREATE TRIGGER raced_deleted AFTER DELETE OR TRUNCATE OR UPDATE OF key ON kf03"
	         " FOR EACH STATEMENT EXECUTE FUNCTION raced_stage_deleted('kf03')");
	id = kf_begin(s, pipeline);
	CHECK(store_fields_trusted(s, 2));
	CHECK(!store_fields_trusted(s, 3));
	kf_finish(s, tables, id, "succeeded");

	/* the table dropped and made again (with its trigger): another oid */
	sql_exec("DROP TABLE kf04 CASCADE");
	sql_exec("CREATE TABLE kf04 (LIKE kf05 INCLUDING ALL)");
	sql_exec("CREATE TRIGGER raced_deleted AFTER DELETE OR TRUNCATE OR UPDATE OF key ON kf04"
	         " FOR EACH STATEMENT EXECUTE FUNCTION raced_stage_deleted('kf04')");
	id = kf_begin(s, pipeline);
	CHECK(store_fields_trusted(s, 3));
	CHECK(!store_fields_trusted(s, 4));
	kf_finish(s, tables, id, "succeeded");

	/* a key changed is a row gone under the key its page lists: counted;
	 * an UPDATE of anything else (raced's own writes) is not */
	sql_exec("INSERT INTO kf05 (key, payload, first_import, last_import)"
	         " VALUES ('k', '{}', 1, 1), ('j', '{}', 1, 1)");
	sql_exec("UPDATE kf05 SET payload = '{\"v\": 1}', parent_key = 'p', removed_import = 1");
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_stage_deletes WHERE stage = 'kf05'"), 0);
	sql_exec("UPDATE kf06 SET key = key || 'x' WHERE false");
	CHECK_EQ(sql_int("SELECT deletes FROM raced_stage_deletes WHERE stage = 'kf06'"), 1);
	id = kf_begin(s, pipeline);
	CHECK(store_fields_trusted(s, 5));
	CHECK(!store_fields_trusted(s, 6));
	kf_finish(s, tables, id, "succeeded");

	/* a trigger made before UPDATE OF key was counted is made again by
	 * the set-up, at the next connect */
	sql_exec("DROP TRIGGER raced_deleted ON kf07");
	sql_exec("CREATE TRIGGER raced_deleted AFTER DELETE OR TRUNCATE ON kf07"
	         " FOR EACH STATEMENT EXECUTE FUNCTION raced_stage_deleted('kf07')");
	store_free(s);
	struct seen w2 = { 0 };
	s = open_store(&w2, tables, KF_TABLES, 100);
	CHECK_EQ(store_state(s), STORE_READY);
	sql_exec("UPDATE kf07 SET key = key WHERE false");
	CHECK_EQ(sql_int("SELECT deletes FROM raced_stage_deletes WHERE stage = 'kf07'"), 1);

	/* a role that may delete from a stage table cannot make the trigger
	 * write into a temporary raced_stage_deletes of its own (pg_temp is
	 * searched last by the function: migration 9), nor run its trigger
	 * on that table as raced's role */
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_proc WHERE proname = 'raced_stage_deleted'"
	                 " AND array_to_string(proconfig, ';') LIKE 'search_path=%, pg_temp'"), 1);
	/* (kf_other may not create in public: a kf_ran_as there would be
	 * raced's role's doing) */
	sql_exec("CREATE ROLE kf_other; GRANT DELETE ON kf08 TO kf_other;"
	         " REVOKE CREATE ON SCHEMA public FROM PUBLIC");
	CHECK_EQ(sql_int("SET ROLE kf_other;"
	                 " CREATE TEMP TABLE raced_stage_deletes (stage text PRIMARY KEY, deletes bigint);"
	                 " GRANT ALL ON pg_temp.raced_stage_deletes TO PUBLIC;"
	                 " CREATE FUNCTION pg_temp.kf_as() RETURNS trigger LANGUAGE plpgsql AS"
	                 " $$ BEGIN CREATE TABLE public.kf_ran_as AS SELECT current_user AS u; RETURN NULL; END $$;"
	                 " CREATE TRIGGER kf_as AFTER INSERT ON pg_temp.raced_stage_deletes"
	                 " FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.kf_as();"
	                 " DELETE FROM kf08 WHERE false;"
	                 " SELECT count(*) FROM pg_temp.raced_stage_deletes"), 0);
	CHECK_EQ(sql_int("SELECT deletes FROM raced_stage_deletes WHERE stage = 'kf08'"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_class WHERE relname = 'kf_ran_as'"), 0);
	sql_exec("REVOKE ALL ON kf08 FROM kf_other; DROP ROLE kf_other");

	/* another pipeline: none */
	json_t *other = json_pack("{s:s}", "kf", "v2");
	id = kf_begin(s, other);
	CHECK(!store_fields_trusted(s, 5));
	kf_finish(s, tables, id, "succeeded");
	json_decref(other);
	json_decref(pipeline);
	store_free(s);
}

/* A first import into an empty link table: a parent's first record by
 * keys goes by the fresh insert (no lookup of stale links); a later
 * record of the same parent in the run by the write by keys, which
 * deletes the stale link; the next run, the table no longer empty, none
 * is fresh. */
static void test_link_records_of_a_first_import_go_by_the_fresh_insert(void)
{
	struct seen w = { 0 };
	struct store *s = start_link_store(&w, "lf");
	if (!s)
		return;
	int64_t id = begin_run(s);
	uint64_t fresh0 = stats_of(s).links_fresh, plain0 = stats_of(s).links_plain;
	add_link_keys(s, id, "e1", "a1", 3, 1);
	add_link_keys(s, id, "e2", "a1\0a2", 6, 2);
	add_link_keys(s, id, "e3", "a3", 3, 1);
	add_link_keys(s, id, "e3", "a3", 3, 1);          /* seen: by keys */
	link_batch(s, &w, id, "a1");
	CHECK_EQ(stats_of(s).links_fresh - fresh0, 3);
	CHECK_EQ(stats_of(s).links_plain - plain0, 3);   /* by the plain INSERT */
	add_link_keys(s, id, "e2", "a2", 3, 1);          /* seen: a1 goes */
	add_link_keys(s, id, "e4", NULL, 0, 0);          /* fresh, no pair */
	link_batch(s, &w, id, "a2");
	CHECK_EQ(stats_of(s).links_fresh - fresh0, 4);
	char *l = sql1("SELECT string_agg(parent_key || '>' || key, ',' ORDER BY parent_key, key)"
	               " FROM lf_athletes_parents");
	CHECK_STR(l, "e1>a1,e2>a2,e3>a3");
	free(l);
	int64_t id2 = begin_run(s);
	add_link_keys(s, id2, "e1", "a9", 3, 1);
	add_link_keys(s, id2, "e5", "a5", 3, 1);
	link_batch(s, &w, id2, "a9");
	CHECK_EQ(stats_of(s).links_fresh - fresh0, 4);
	l = sql1("SELECT string_agg(parent_key || '>' || key, ',' ORDER BY parent_key, key)"
	         " FROM lf_athletes_parents");
	CHECK_STR(l, "e1>a9,e2>a2,e3>a3,e5>a5");
	free(l);
	store_free(s);
}

/* Whether the index named arg exists. */
static bool index_there(void *arg)
{
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM pg_class WHERE relkind = 'i' AND relname = '%s'",
	         (const char *)arg);
	return sql_int(q) == 1;
}

/* A first import's rows go without the secondary indexes (the stage's
 * parent_key, the link table's (key, parent_key)): tables empty at
 * connect get none, and the import's finish makes them, as they were
 * defined; a table with rows but without its index (an import stopped
 * before its finish) gets it at the next connect. */
static void test_a_first_imports_secondary_indexes_are_made_by_its_finish(void)
{
	char parent_idx[] = "ix_entries_parent_key", link_idx[] = "ix_athletes_parents_key",
	     pages_idx[] = "raced_pages_input";
	/* no page row from earlier tests: the connect leaves the input index
	 * to the finish */
	sql_exec("DO $$ BEGIN IF to_regclass('raced_pages') IS NOT NULL THEN"
	         " DELETE FROM raced_pages; DROP INDEX IF EXISTS raced_pages_input; END IF; END $$");
	struct seen w = { 0 };
	struct store *s = start_link_store(&w, "ix");
	if (!s)
		return;
	CHECK(!index_there(parent_idx));
	CHECK(!index_there(link_idx));
	CHECK(!index_there(pages_idx));
	int64_t id = begin_run(s);
	for (int i = 0; i < 150; i++) {
		char key[32], payload[64];
		snprintf(key, sizeof key, "e%05d", i);
		snprintf(payload, sizeof payload, "{\"i\": %d}", i);
		add(s, 0, id, key, i % 2 ? "r1" : "r2", payload);
	}
	flush(s, 0);
	struct want x = { &w, 0, 150 };
	CHECK(run_until(committed_reached, &x, 20));
	add_link_keys(s, id, "e00001", "a1\0a2", 6, 2);
	link_batch(s, &w, id, "a1");
	CHECK(!index_there(parent_idx));   /* the rows went without it */
	CHECK(!index_there(link_idx));
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, id, "succeeded", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK(run_until(index_there, parent_idx, 10));
	CHECK(run_until(index_there, link_idx, 10));
	CHECK(run_until(index_there, pages_idx, 10));
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_entries_parent_key'"
	                 " AND indexdef LIKE '%(parent_key)'"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_athletes_parents_key'"
	                 " AND indexdef LIKE '%(key, parent_key)'"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM ix_entries WHERE parent_key = 'r1'"), 75);
	CHECK_EQ(sql_int("SELECT count(*) FROM ix_athletes_parents WHERE parent_key = 'e00001'"), 2);
	/* the next finish finds them there and changes nothing */
	long long oid = sql_int("SELECT oid FROM pg_class WHERE relname = 'ix_entries_parent_key'");
	int64_t id2 = begin_run(s);
	c.finished = false;
	CHECK_EQ(store_finish_import(s, id2, "failed", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_EQ(sql_int("SELECT oid FROM pg_class WHERE relname = 'ix_entries_parent_key'"), oid);
	store_free(s);

	/* an import stopped before its finish left rows without the index */
	sql_exec("DROP INDEX ix_entries_parent_key");
	sql_exec("DROP INDEX ix_athletes_parents_key");
	struct seen w2 = { 0 };
	s = start_link_store(&w2, "ix");
	CHECK(index_there(parent_idx));
	CHECK(index_there(link_idx));
	store_free(s);
	sql_exec("DROP TABLE ix_athletes_parents, ix_athletes, ix_entries CASCADE");
}

/* A first import of 150 entries under 2 races, and one athlete linked
 * from an entry, all committed (prefix's tables, empty before). */
static void first_import_rows(struct store *s, struct seen *w, int64_t id)
{
	for (int i = 0; i < 150; i++) {
		char key[32], payload[64];
		snprintf(key, sizeof key, "e%05d", i);
		snprintf(payload, sizeof payload, "{\"i\": %d}", i);
		add(s, 0, id, key, i % 2 ? "r1" : "r2", payload);
	}
	flush(s, 0);
	struct want x = { w, 0, 150 };
	CHECK(run_until(committed_reached, &x, 20));
	add_link_keys(s, id, "e00001", "a1\0a2", 6, 2);
	link_batch(s, w, id, "a1");
}

/* Whether a backend other than this one is running a CREATE INDEX. */
static bool no_build_running(void *arg)
{
	(void)arg;
	return sql_int("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
	               " AND state <> 'idle' AND query LIKE '%CREATE INDEX%'") == 0;
}

/* Hold `mode` on table in a transaction of a connection of the test's own
 * (NULL if that failed). */
static PGconn *hold_lock(const char *table, const char *mode)
{
	char q[256];
	snprintf(q, sizeof q, "BEGIN; LOCK TABLE %s IN %s MODE", table, mode);
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexec(c, q);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	CHECK(ok);
	PQclear(r);
	if (!ok) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static void release_lock(PGconn *c)
{
	if (!c)
		return;
	PGresult *r = PQexec(c, "COMMIT");
	CHECK_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

/* A finish's index build meeting a lock held past the role's
 * lock_timeout is not tried again on the spot (it would be for as long
 * as the lock is held, and everything queued after it, the run's read
 * included, would wait): the run's read is answered while the lock is
 * still held, the connection was never dropped, the other indexes are
 * made, and the next connect makes the one left. */
static void test_an_index_build_held_past_lock_timeout_is_left_to_the_next_connect(void)
{
	char parent_idx[] = "il_entries_parent_key", link_idx[] = "il_athletes_parents_key";
	sql_exec("ALTER ROLE CURRENT_USER SET lock_timeout = '50ms'");
	struct seen w = { 0 };
	struct store *s = start_link_store(&w, "il");
	if (!s) {
		sql_exec("ALTER ROLE CURRENT_USER RESET lock_timeout");
		return;
	}
	int64_t id = begin_run(s);
	first_import_rows(s, &w, id);
	PGconn *locker = hold_lock("il_athletes_parents", "ROW EXCLUSIVE");
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, id, "succeeded", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_EQ(store_get_runs(s, id, 1, on_runs, &c), 0);   /* after the builds */
	CHECK(run_until(flag_set, &c.got_runs, 10));
	json_decref(c.runs);
	CHECK(index_there(parent_idx));
	CHECK(!index_there(link_idx));
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.reconnects, 0);
	CHECK(st.last_error && strstr(st.last_error, "lock timeout") != NULL);
	store_free(s);
	release_lock(locker);
	sql_exec("ALTER ROLE CURRENT_USER RESET lock_timeout");
	struct seen w2 = { 0 };
	s = start_link_store(&w2, "il");
	CHECK(index_there(link_idx));
	store_free(s);
	sql_exec("DROP TABLE il_athletes_parents, il_athletes, il_entries CASCADE");
}

/* The finish's index builds (docs/architecture.md, "Secondary indexes
 * after a first import"): a transaction each, the largest first, so a
 * build held up by a lock on its table holds up none committed before
 * it; with two connections they run at once (the link table's, the
 * largest, alone on the second connection, the others on the first
 * after the finish's counts), so one held up leaves the other
 * connection's built; raced
 * stopping while one waits (or before any: an interrupted finish makes
 * none) leaves tables the next connect gives every index. */
static void test_a_first_imports_index_builds_are_a_transaction_each_and_run_at_once(void)
{
	char parent_idx[] = "ib_entries_parent_key", link_idx[] = "ib_athletes_parents_key",
	     athletes_idx[] = "ib_athletes_parent_key", pages_idx[] = "raced_pages_input";
	sql_exec("DO $$ BEGIN IF to_regclass('raced_pages') IS NOT NULL THEN"
	         " DELETE FROM raced_pages; DROP INDEX IF EXISTS raced_pages_input; END IF; END $$");

	/* one connection: raced_pages' build (the third) waits for a lock;
	 * the two before it are committed meanwhile */
	struct seen w = { 0 };
	struct store *s = start_link_store(&w, "ib");
	if (!s)
		return;
	int64_t id = begin_run(s);
	first_import_rows(s, &w, id);
	CHECK(!index_there(parent_idx));
	CHECK(!index_there(link_idx));
	PGconn *locker = hold_lock("raced_pages", "ROW EXCLUSIVE");
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, id, "succeeded", NULL, 0, on_finished, &c), 0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_STR(c.err, "");
	CHECK(run_until(index_there, link_idx, 10));
	CHECK(run_until(index_there, parent_idx, 10));
	CHECK(!index_there(pages_idx));
	CHECK(!index_there(athletes_idx));   /* behind it on the one connection */
	release_lock(locker);
	CHECK(run_until(index_there, pages_idx, 10));
	CHECK(run_until(index_there, athletes_idx, 10));
	CHECK_EQ(sql_int("SELECT count(*) FROM ib_entries WHERE parent_key = 'r1'"), 75);
	store_free(s);

	/* two connections: the link table's build (the first, alone on the
	 * second connection) waits for a lock, the others are made on the
	 * first meanwhile; raced stops while it waits */
	sql_exec("DROP INDEX ib_entries_parent_key, ib_athletes_parents_key, ib_athletes_parent_key");
	sql_exec("TRUNCATE ib_entries, ib_athletes, ib_athletes_parents");
	struct seen w2 = { 0 };
	s = start_link_store_n(&w2, "ib", 2);
	if (!s)
		return;
	id = begin_run(s);
	first_import_rows(s, &w2, id);
	locker = hold_lock("ib_athletes_parents", "ROW EXCLUSIVE");
	struct run_ctx c2 = { 0 };
	CHECK_EQ(store_finish_import(s, id, "succeeded", NULL, 0, on_finished, &c2), 0);
	CHECK(run_until(flag_set, &c2.finished, 10));
	CHECK(run_until(index_there, parent_idx, 10));
	CHECK(run_until(index_there, athletes_idx, 10));
	CHECK(!index_there(link_idx));
	store_free(s);
	release_lock(locker);
	CHECK(run_until(no_build_running, NULL, 10));
	struct seen w3 = { 0 };
	s = start_link_store(&w3, "ib");
	CHECK(index_there(parent_idx));
	CHECK(index_there(link_idx));
	CHECK(index_there(athletes_idx));
	store_free(s);

	/* an interrupted finish makes none; the next connect makes them */
	sql_exec("DROP INDEX ib_entries_parent_key, ib_athletes_parents_key");
	sql_exec("TRUNCATE ib_entries, ib_athletes, ib_athletes_parents");
	struct seen w4 = { 0 };
	s = start_link_store(&w4, "ib");
	if (!s)
		return;
	id = begin_run(s);
	first_import_rows(s, &w4, id);
	struct run_ctx c4 = { 0 };
	CHECK_EQ(store_finish_import(s, id, "interrupted", NULL, STORE_FINISH_RESUMABLE, on_finished,
	                             &c4), 0);
	CHECK(run_until(flag_set, &c4.finished, 10));
	CHECK_EQ(store_get_runs(s, id, 1, on_runs, &c4), 0);   /* after anything the finish queued */
	CHECK(run_until(flag_set, &c4.got_runs, 10));
	json_decref(c4.runs);
	CHECK(!index_there(parent_idx));
	CHECK(!index_there(link_idx));
	store_free(s);
	struct seen w5 = { 0 };
	s = start_link_store(&w5, "ib");
	CHECK(index_there(parent_idx));
	CHECK(index_there(link_idx));
	store_free(s);
	sql_exec("DROP TABLE ib_athletes_parents, ib_athletes, ib_entries CASCADE");
}

/* Migration 7 on a database at 6 holding import state: the state's URLs,
 * inputs and stages take COLLATE "C", every row stays, the input index
 * is made again (raced_pages holds rows), and the store reads and writes
 * the state as before. */
static void test_a_version_6_database_gets_bytewise_urls_keeping_its_state(void)
{
	char ci[1024];
	sql_exec("CREATE DATABASE races_v6");
	snprintf(ci, sizeof ci, "%s dbname=races_v6", conninfo);
	const char *saved = conninfo;
	conninfo = ci;
	const char *tables[] = { "m7_items" };
	struct seen w = { 0 };
	struct reads r = { 0 };
	struct store *s = open_state(&w, &r, tables, 1, 10);
	int64_t id = begin_run(s);
	add_rows(s, 0, id, "k", 0, 3, 1);
	const char *k1[] = { "k00000", "k00001" }, *k2[] = { "k00002" };
	uint64_t h1[] = { 1, 2 }, h2[] = { 3 };
	struct store_page p1 = { .url = "m7/p?n=1", .input = "m7/p?n=1", .fetched = true,
	                         .content = true, .keys = k1, .hashes = h1, .n_keys = 2 };
	struct store_page p2 = { .url = "m7/p?n=2", .input = "m7/p?n=1", .page_no = 1,
	                         .fetched = true, .content = true, .keys = k2, .hashes = h2,
	                         .n_keys = 1, .input_done = true };
	add_page(s, 0, id, &p1);
	add_page(s, 0, id, &p2);
	flush(s, 0);
	struct want x = { &w, 0, 3 };
	CHECK(run_until(committed_reached, &x, 10));
	reads_clear(&r);
	store_free(s);
	/* what migration 6 left: the database's collation, version 6 */
	static const char *const back_to_6[] = {
		"ALTER TABLE raced_pages ALTER COLUMN stage TYPE text COLLATE \"default\","
		" ALTER COLUMN url TYPE text COLLATE \"default\", ALTER COLUMN input TYPE text COLLATE \"default\"",
		"ALTER TABLE raced_reached ALTER COLUMN stage TYPE text COLLATE \"default\","
		" ALTER COLUMN urls TYPE text[] COLLATE \"default\", ALTER COLUMN done TYPE text[] COLLATE \"default\"",
		"CREATE INDEX IF NOT EXISTS raced_pages_input ON raced_pages (stage, input)",
		/* and before migration 8 */
		"DROP TRIGGER IF EXISTS raced_deleted ON m7_items",
		"DROP FUNCTION IF EXISTS raced_stage_deleted()",
		"DROP TABLE IF EXISTS raced_stage_deletes",
		"ALTER TABLE raced_pages DROP COLUMN IF EXISTS fields",
		"DELETE FROM raced_schema_version WHERE version >= 7",
		NULL,
	};
	CHECK(exec_on("races_v6", back_to_6));
	const char *collated = "SELECT count(*) FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation"
	                       " WHERE c.collname = 'C' AND a.attrelid IN ('raced_pages'::regclass,"
	                       " 'raced_reached'::regclass) AND a.attname IN ('stage', 'url', 'input', 'urls', 'done')";
	CHECK_EQ(sql_int(collated), 0);
	long long pages = sql_int("SELECT count(*) FROM raced_pages");
	CHECK_EQ(pages, 2);

	struct seen w2 = { 0 };
	struct reads r2 = { 0 };
	s = open_state(&w2, &r2, tables, 1, 10);
	CHECK_EQ(store_state(s), STORE_READY);
	CHECK_EQ(stats_of(s).migrations_applied, 3);   /* 7 to 9 */
	CHECK_EQ(sql_int("SELECT max(version) FROM raced_schema_version"), 9);
	CHECK_EQ(sql_int(collated), 6);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages"), pages);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE url = 'm7/p?n=1' AND input = 'm7/p?n=1'"
	                 " AND keys = '{k00000,k00001}'"), 1);
	CHECK_EQ(sql_int("SELECT count(*) FROM m7_items"), 3);
	char pages_idx[] = "raced_pages_input";
	CHECK(index_there(pages_idx));
	/* the joins of the reach with the pages work across the change */
	CHECK(done_in("m7/p?n=1", id));
	int64_t id2 = begin_run(s);
	add_rows(s, 0, id2, "k", 0, 1, 2);
	struct store_page p3 = { .url = "m7/p?n=1", .input = "m7/p?n=1", .fetched = true,
	                         .content = true, .keys = k1, .hashes = h1, .n_keys = 1,
	                         .input_done = true };
	add_page(s, 0, id2, &p3);
	flush(s, 0);
	struct want x2 = { &w2, 0, 1 };
	CHECK(run_until(committed_reached, &x2, 10));
	struct run_ctx c = { 0 };
	CHECK_EQ(store_finish_import(s, id2, "succeeded", NULL, STORE_FINISH_REMOVALS, on_finished, &c),
	         0);
	CHECK(run_until(flag_set, &c.finished, 10));
	CHECK_STR(c.err, "");
	CHECK_EQ(sql_int("SELECT count(*) FROM m7_items WHERE removed_import IS NULL"), 1);
	reads_clear(&r2);
	store_free(s);

	/* a user's view over raced_pages: the migration keeps the collation
	 * rather than fail (the ALTER would), and raced gets ready */
	CHECK(exec_on("races_v6", back_to_6));
	sql_exec("CREATE VIEW my_pages AS SELECT stage, url FROM raced_pages");
	struct seen w3 = { 0 };
	struct reads r3 = { 0 };
	s = open_state(&w3, &r3, tables, 1, 10);
	CHECK_EQ(store_state(s), STORE_READY);
	CHECK_EQ(stats_of(s).migrations_applied, 3);   /* 7 to 9 */
	CHECK_EQ(sql_int("SELECT max(version) FROM raced_schema_version"), 9);
	CHECK_EQ(sql_int(collated), 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM my_pages"), 1);   /* p2 went with import id2 */
	CHECK(index_there(pages_idx));
	reads_clear(&r3);
	store_free(s);
	conninfo = saved;
}

/* Begin a run with a pipeline (so that the run before it may be
 * trusted); finish it succeeded, its link stage having dropped no link
 * record, when finish. */
static int64_t trusted_run(struct store *s, const char *link_table, bool finish)
{
	struct run_ctx c = { 0 };
	json_t *pipeline = json_pack("{s:i}", "p", 1);
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "test",
	                                                          .pipeline = pipeline },
	                            on_id, &c), 0);
	json_decref(pipeline);
	CHECK(run_until(flag_set, &c.got_id, 10));
	CHECK_STR(c.err, "");
	if (finish) {
		json_t *counts = json_pack("{s:{s:i}}", link_table, "links_dropped", 0);
		CHECK_EQ(store_finish_import(s, c.id, "succeeded", counts, 0, on_finished, &c), 0);
		json_decref(counts);
		CHECK(run_until(flag_set, &c.finished, 10));
		CHECK_STR(c.err, "");
	}
	return c.id;
}

/* The links the run before left are trusted only when neither the link
 * table nor its parent stage's table was empty at the run's start: with
 * the parent table empty no parent can be unchanged, and trust would only
 * make the import keep its set of changed inputs (a hash an input). */
static void test_links_are_trusted_only_over_tables_with_rows(void)
{
	const char *tables[] = { "lt_entries", "lt_athletes" };
	const int parents[] = { -1, 0 };
	const bool dedupe[] = { false, true };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = 100, .tables = tables,
	                           .n_tables = 2, .parents = parents, .dedupe = dedupe };
	struct seen w = { 0 };
	struct store *s = start_store(&w, &conf, NULL);
	if (!s || !run_until(store_ready, s, 30)) {
		store_free(s);
		CHECK(false);
		return;
	}
	int64_t id = trusted_run(s, "lt_athletes", false);
	CHECK(!store_links_trusted(s, 1));   /* no run before it */
	add(s, 0, id, "e1", NULL, "{}");
	flush(s, 0);
	add_link_keys(s, id, "e1", "a1", 3, 1);
	link_batch(s, &w, id, "a1");
	struct run_ctx c = { 0 };
	json_t *counts = json_pack("{s:{s:i}}", "lt_athletes", "links_dropped", 0);
	CHECK_EQ(store_finish_import(s, id, "succeeded", counts, 0, on_finished, &c), 0);
	json_decref(counts);
	CHECK(run_until(flag_set, &c.finished, 10));
	(void)trusted_run(s, "lt_athletes", true);
	CHECK(store_links_trusted(s, 1));
	CHECK(!store_links_trusted(s, 0));   /* no link table */
	/* the parent table emptied, the links kept: not trusted */
	sql_exec("DELETE FROM lt_entries");
	id = trusted_run(s, "lt_athletes", false);
	CHECK(!store_links_trusted(s, 1));
	add(s, 0, id, "e1", NULL, "{}");
	memset(&c, 0, sizeof c);
	counts = json_pack("{s:{s:i}}", "lt_athletes", "links_dropped", 0);
	CHECK_EQ(store_finish_import(s, id, "succeeded", counts, 0, on_finished, &c), 0);
	json_decref(counts);
	CHECK(run_until(flag_set, &c.finished, 10));
	(void)trusted_run(s, "lt_athletes", true);
	CHECK(store_links_trusted(s, 1));    /* both have rows again */
	/* the link table emptied, its parent table not: not trusted */
	sql_exec("DELETE FROM lt_athletes_parents");
	(void)trusted_run(s, "lt_athletes", true);
	CHECK(!store_links_trusted(s, 1));
	/* both emptied: not trusted either */
	sql_exec("DELETE FROM lt_entries");
	(void)trusted_run(s, "lt_athletes", true);
	CHECK(!store_links_trusted(s, 1));
	store_free(s);
}

/* A fresh link record whose pair is stored after all (here put in behind
 * raced's back; in life a batch sent again whose commit had landed, or a
 * record listing a key twice): its plain INSERT is refused, the batch
 * goes again by the insert that tolerates the pair, nothing is refused
 * or lost, and the run's later fresh records go that way too. */
static void test_a_fresh_link_stored_after_all_falls_back_and_is_kept(void)
{
	struct seen w = { 0 };
	struct store *s = start_link_store(&w, "lp");
	if (!s)
		return;
	int64_t id = begin_run(s);
	struct store_stats st0 = stats_of(s);
	add_link_keys(s, id, "e1", "a1", 3, 1);
	/* a parent's fresh record and a later one in the same batch: the
	 * later one's keys are its links */
	add_link_keys(s, id, "e0", "a5", 3, 1);
	add_link_keys(s, id, "e0", "a6", 3, 1);
	link_batch(s, &w, id, "a1");
	CHECK_EQ(stats_of(s).links_plain - st0.links_plain, 2);
	sql_exec("INSERT INTO lp_athletes_parents VALUES ('e2', 'a2')");
	add_link_keys(s, id, "e2", "a2\0a3", 6, 2);      /* fresh, e2>a2 stored */
	link_batch(s, &w, id, "a2");
	add_link_keys(s, id, "e4", "a4", 3, 1);          /* fresh, after the fall-back */
	link_batch(s, &w, id, "a4");
	struct store_stats st = stats_of(s);
	CHECK_EQ(st.plain_fallbacks - st0.plain_fallbacks, 1);
	CHECK_EQ(st.links_fresh - st0.links_fresh, 4);
	CHECK_EQ(st.links_plain - st0.links_plain, 2);
	CHECK_EQ(st.rows_failed, st0.rows_failed);
	char *l = sql1("SELECT string_agg(parent_key || '>' || key, ',' ORDER BY parent_key, key)"
	               " FROM lp_athletes_parents");
	CHECK_STR(l, "e0>a6,e1>a1,e2>a2,e2>a3,e4>a4");
	free(l);
	CHECK_EQ(sql_int("SELECT count(*) FROM lp_athletes"), 3);
	store_free(s);
}

/* A key twice in a run (in batches far apart and in neighbouring ones,
 * some in flight together): stored once, the later row wins, and no batch
 * is refused: the second one goes by the upsert. */
static void test_a_key_twice_in_a_run_is_stored_once_the_later_winning(void)
{
	const char *tables[] = { "pl_dup" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 10);
	int64_t id = begin_run(s);
	add_rows(s, 0, id, "k", 0, 100, 1);
	add_rows(s, 0, id, "k", 5, 3, 2);     /* far from the first */
	add_rows(s, 0, id, "k", 95, 10, 2);   /* the next batch: 95..99 again, 100..104 new */
	add_rows(s, 0, id, "k", 98, 1, 3);    /* a third time, the same batch (folded) */
	flush(s, 0);
	struct want x = { &w, 0, 114 };
	CHECK(run_until(committed_reached, &x, 20));
	CHECK_EQ(w.committed[0], 114);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_dup"), 105);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_dup WHERE (payload->>'v')::int = 2"), 3 + 4 + 5);
	CHECK_EQ(sql_int("SELECT (payload->>'v')::int FROM pl_dup WHERE key = 'k00098'"), 3);
	struct store_stats st = stats_of(s);
	CHECK_EQ(st.plain_fallbacks, 0);
	CHECK_EQ(st.rows_failed, 0);
	CHECK_EQ(st.rows_plain, 105);   /* every key once by the plain INSERT */
	store_free(s);
}

/* A key stored after the probe (as by a batch whose commit landed while
 * its connection went, or by someone else): PostgreSQL refuses the plain
 * batch (23505); it goes again, every row stored once and acknowledged,
 * the row found stored left as it was, and the rest of the run goes by
 * the upsert. */
static void test_a_key_stored_behind_the_probes_back_falls_back_for_the_run(void)
{
	const char *tables[] = { "pl_fb" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 10);
	int64_t id = begin_run(s);
	sql_exec("INSERT INTO pl_fb (key, payload, first_import, last_import)"
	         " VALUES ('k00003', '{\"there\": 1}', 0, 0)");
	add_rows(s, 0, id, "k", 0, 30, 1);
	flush(s, 0);
	struct want x = { &w, 0, 30 };
	CHECK(run_until(committed_reached, &x, 20));
	struct store_stats st = stats_of(s);
	CHECK_EQ(st.plain_fallbacks, 1);
	CHECK_EQ(st.rows_failed, 0);
	CHECK_EQ(st.batches_split, 0);
	CHECK_EQ(w.committed[0], 30);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_fb"), 30);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_fb WHERE (payload->>'v')::int = 1"), 29);
	CHECK_EQ(sql_int("SELECT (payload->>'there')::int FROM pl_fb WHERE key = 'k00003'"), 1);
	/* batches formed later go by the upsert: k00010 changes, nothing plain */
	uint64_t plain = st.rows_plain;
	CHECK(plain <= 20);
	add_rows(s, 0, id, "k", 10, 1, 5);
	add_rows(s, 0, id, "k", 30, 5, 5);
	flush(s, 0);
	x.n = 36;
	CHECK(run_until(committed_reached, &x, 20));
	st = stats_of(s);
	CHECK_EQ(st.rows_plain, plain);
	CHECK_EQ(st.plain_fallbacks, 1);
	CHECK_EQ(sql_int("SELECT (payload->>'v')::int FROM pl_fb WHERE key = 'k00010'"), 5);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_fb"), 35);
	store_free(s);
}

/* A stage table someone holds locked does not hold up a run's start: the
 * probe gives up after its lock_timeout and the run writes by the upsert
 * once the lock is gone. */
static void test_a_locked_table_does_not_hold_up_the_start_of_a_run(void)
{
	const char *tables[] = { "pl_locked" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 10);
	PGconn *locker = PQconnectdb(conninfo);
	PGresult *r = PQexec(locker, "BEGIN; LOCK TABLE pl_locked IN ACCESS EXCLUSIVE MODE");
	CHECK_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	double t0 = now_s();
	int64_t id = begin_run(s);
	CHECK(id > 0);
	CHECK(now_s() - t0 < 5);
	CHECK_EQ(store_state(s), STORE_READY);
	add_rows(s, 0, id, "k", 0, 15, 1);
	flush(s, 0);
	r = PQexec(locker, "COMMIT");
	PQclear(r);
	PQfinish(locker);
	struct want x = { &w, 0, 15 };
	CHECK(run_until(committed_reached, &x, 20));
	struct store_stats st = stats_of(s);
	CHECK_EQ(st.rows_plain, 0);
	CHECK_EQ(st.reconnects, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_locked"), 15);
	store_free(s);
}

struct killer {
	struct seen *w;
	int64_t id;
	size_t total, added, window;
};

static void kill_feed(struct killer *k)
{
	char key[32], payload[400];
	while (k->added < k->total && k->added - k->w->committed[0] < k->window) {
		snprintf(key, sizeof key, "row%06zu", k->added);
		int n = snprintf(payload, sizeof payload, "{\"seq\": %zu, \"pad\": \"%0200zu\"}", k->added,
		                 k->added);
		char err[ERR_MAX];
		if (store_add(k->w->store, 0, k->id, key, NULL, payload, (size_t)n, err) != 0) {
			fprintf(stderr, "store_add: %s\n", err);
			break;
		}
		/* a page record after every 100th row, listing it: the page
		 * rows go by the plain INSERT too (no page row at the start) */
		if (k->added % 100 == 99) {
			const char *keys[] = { key };
			uint64_t h[] = { k->added };
			char url[32];
			snprintf(url, sizeof url, "pk/%06zu", k->added);
			struct store_page pg = { .url = url, .input = url, .fetched = true, .content = true,
			                         .keys = keys, .hashes = h, .n_keys = 1, .input_done = true };
			if (store_add_page(k->w->store, 0, k->id, &pg, err) != 0) {
				fprintf(stderr, "store_add_page: %s\n", err);
				break;
			}
		}
		k->added++;
	}
	if (k->added == k->total)
		flush(k->w->store, 0);
}

static void kill_committed(struct seen *w, size_t table, size_t n)
{
	(void)table;
	(void)n;
	kill_feed(w->user);
}

static bool kill_all_committed(void *arg)
{
	struct killer *k = arg;
	return k->w->committed[0] == k->total;
}

/* The store's backend killed (pg_terminate_backend) with plain batches in
 * flight, three times: the batches sent again (some of which had
 * committed) store every row once, none refused. */
static void test_plain_batches_sent_again_after_a_kill_store_every_row_once(void)
{
	const char *tables[] = { "pl_kill" };
	struct seen w = { 0 };
	struct killer k = { &w, 0, 30000, 0, 3000 };
	w.user = &k;
	struct store *s = open_store(&w, tables, 1, 100);
	sql_exec("DELETE FROM raced_pages WHERE stage = 'pl_kill'");
	k.id = begin_run(s);
	w.on_committed = kill_committed;
	kill_feed(&k);
	for (size_t round = 1; round <= 3; round++) {
		struct want x = { &w, 0, round * 6000 };
		CHECK(run_until(committed_reached, &x, 30));
		CHECK(sql_int("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		              " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
		              " AND datname = current_database()) t") >= 1);
		CHECK(run_until(in_backoff, s, 10));
	}
	CHECK(run_until(kill_all_committed, &k, 60));
	CHECK_EQ(w.committed[0], k.total);
	struct store_stats st = stats_of(s);
	fprintf(stderr, "  %llu reconnects, %llu plain batches refused and sent again, %llu rows plain\n",
	        (unsigned long long)st.reconnects, (unsigned long long)st.plain_fallbacks,
	        (unsigned long long)st.rows_plain);
	CHECK(st.reconnects >= 3);
	CHECK(st.warmups >= 4);   /* each new backend, with its first batch of rows */
	CHECK(st.rows_plain > 0);
	CHECK_EQ(st.rows_failed, 0);
	CHECK_EQ(st.batches_split, 0);
	CHECK_EQ(sql_int("SELECT count(*) FROM pl_kill"), 30000);
	CHECK_EQ(sql_int("SELECT count(DISTINCT (payload->>'seq')::int) FROM pl_kill"
	                 " WHERE key = 'row' || lpad(payload->>'seq', 6, '0')"), 30000);
	/* every page row once, listing its row */
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'pl_kill'"), 300);
	CHECK_EQ(sql_int("SELECT count(*) FROM raced_pages WHERE stage = 'pl_kill'"
	                 " AND keys = ARRAY['row' || substr(url, 4)]"), 300);
	store_free(s);
}

/* --- the loop keeps turning -------------------------------------------- */

struct ticker {
	double last, max_gap;
	unsigned ticks;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ticker *t = arg;
	double now = now_s();
	if (t->last > 0 && now - t->last > t->max_gap)
		t->max_gap = now - t->last;
	t->last = now;
	t->ticks++;
}

static void test_loop_keeps_turning_during_a_large_write(void)
{
	const char *tables[] = { "big" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 500);
	char key[32], payload[400];
	for (size_t i = 0; i < 100000; i++) {
		snprintf(key, sizeof key, "b%zu", i);
		int n = snprintf(payload, sizeof payload, "{\"seq\": %zu, \"pad\": \"%0270zu\"}", i, i);
		char err[ERR_MAX];
		if (store_add(s, 0, 1, key, NULL, payload, (size_t)n, err) != 0)
			break;
	}
	struct ticker t = { 0 };
	struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &t);
	struct timeval tv = { 0, 10000 };
	event_add(tick, &tv);
	double t0 = now_s();
	t.last = t0;
	struct want x = { &w, 0, 100000 };
	CHECK(run_until(committed_reached, &x, 120));
	double secs = now_s() - t0;
	event_free(tick);
	fprintf(stderr, "  100000 rows in %.2f s (%.0f rows/s), %u ticks of 10 ms, longest gap %.1f ms\n",
	        secs, 100000 / secs, t.ticks, t.max_gap * 1000);
	CHECK(t.ticks >= (unsigned)(secs * 100 / 4));
	CHECK(t.max_gap < 0.25);
	CHECK_EQ(sql_int("SELECT count(*) FROM big"), 100000);
	store_free(s);
}

int main(void)
{
	conninfo = getenv("PG_CONNINFO");
	if (!conninfo) {
		fprintf(stderr, "PG_CONNINFO is not set: run under tests/lib/with-pg.sh\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	RUN(test_migrations_applied_once_and_recorded);
	RUN(test_invalid_table_name_is_refused);
	RUN(test_rows_stored_with_exact_payload_and_parent_key);
	RUN(test_unchanged_rows_keep_updated_at_and_changed_rows_update);
	RUN(test_duplicate_key_in_one_batch_is_folded_later_wins);
	RUN(test_a_full_batch_that_cannot_be_built_stays_pending);
	RUN(test_a_row_whose_block_cannot_be_allocated_is_refused_whole);
	RUN(test_rows_of_two_imports_are_never_one_batch);
	RUN(test_committed_counts_rows_added_per_batch_in_order);
	RUN(test_refused_row_is_reported_and_the_rest_of_its_batch_stored);
	RUN(test_routed_batches_fold_split_retry_and_free_pending_rows);
	RUN(test_dropped_table_refuses_the_batch_whole_naming_the_fix);
	RUN(test_views_follow_the_tables_columns);
	RUN(test_lock_held_past_lock_timeout_is_waited_out);
	RUN(test_the_same_index_made_on_two_connections_at_once_is_no_error);
	RUN(test_statement_failing_after_each_reconnect_backs_off_further);
	RUN(test_import_runs_begin_finish_and_get_runs);
	RUN(test_errors_group_by_stage_and_normalized_cause);
	RUN(test_a_batch_carries_its_run_heartbeat_at_most_once_a_second);
	RUN(test_a_run_left_running_is_marked_at_its_last_heartbeat_with_its_rows);
	RUN(test_discard_acknowledges_batches_in_order_without_a_database);
	RUN(test_rows_are_reported_only_to_the_sink_attached_when_added);
	RUN(test_error_rows_beyond_the_bound_are_only_counted);
	RUN(test_page_records_commit_with_their_rows_and_read_back_in_order);
	RUN(test_page_records_without_content_keep_the_stored_state);
	RUN(test_input_reads_asked_together_are_one_statement);
	RUN(test_a_stage_read_in_keyset_pages_holds_whole_inputs);
	RUN(test_a_refused_batch_leaves_no_page_record_and_a_split_one_keeps_them);
	RUN(test_unchanged_placeholders_are_acknowledged_in_order_and_fill_batches);
	RUN(test_rows_read_back_in_key_order_without_the_missing);
	RUN(test_rows_read_back_narrow);
	RUN(test_rows_read_back_by_parent);
	RUN(test_link_records_with_keys_insert_and_remove_exactly);
	RUN(test_an_unchanged_upsert_writes_no_tuple);
	RUN(test_removals_mark_unmark_and_prune_page_rows);
	RUN(test_a_run_that_reached_every_page_row_looks_for_none_to_delete);
	RUN(test_removals_over_50k_rows_are_set_based);
	RUN(test_removals_are_kept_only_when_nothing_can_have_gone);
	RUN(test_a_first_import_decides_its_removals_without_reading_keys);
	RUN(test_a_resumed_run_counts_its_reach_and_a_success_forgets_it);
	RUN(test_a_batch_of_reached_only_records_writes_its_reach_alone);
	RUN(test_a_backend_lost_in_its_warm_up_is_not_warmed_again);
	RUN(test_get_run_and_resume);
	RUN(test_cursor_reads_the_last_success_and_the_largest_value);
	RUN(test_state_of_an_emptied_table_is_cleared);
	RUN(test_synchronous_commit_is_set_on_raced_connection);
	RUN(test_discard_answers_every_state_call);
	RUN(test_a_version_2_database_gets_migration_3);
	RUN(test_a_version_1_database_is_upgraded_to_the_current_version);
	RUN(test_a_version_6_database_gets_bytewise_urls_keeping_its_state);
	RUN(test_down_ms_counts_from_the_last_ready);
	RUN(test_a_first_import_into_empty_tables_goes_by_plain_inserts);
	RUN(test_link_records_of_a_first_import_go_by_the_fresh_insert);
	RUN(test_a_first_imports_secondary_indexes_are_made_by_its_finish);
	RUN(test_a_first_imports_index_builds_are_a_transaction_each_and_run_at_once);
	RUN(test_an_index_build_held_past_lock_timeout_is_left_to_the_next_connect);
	RUN(test_links_are_trusted_only_over_tables_with_rows);
	RUN(test_a_fresh_link_stored_after_all_falls_back_and_is_kept);
	RUN(test_state_is_known_empty_per_stage_at_a_runs_start);
	RUN(test_kept_fields_are_trusted_only_while_nothing_could_delete_unseen);
	RUN(test_page_fields_are_written_with_content_or_by_a_304_read_back);
	RUN(test_a_key_twice_in_a_run_is_stored_once_the_later_winning);
	RUN(test_a_key_stored_behind_the_probes_back_falls_back_for_the_run);
	RUN(test_a_locked_table_does_not_hold_up_the_start_of_a_run);
	RUN(test_plain_batches_sent_again_after_a_kill_store_every_row_once);
	RUN(test_loop_keeps_turning_during_a_large_write);
	RUN(test_postgres_restart_mid_stream_stores_every_row_once);
	event_base_free(base);
	return CHECK_DONE();
}
