/* test_store — the store against a real PostgreSQL (run under with-pg.sh).
 *
 * The store runs on a libevent loop; the test checks the database through a
 * separate, blocking libpq connection (the test is not the loop). */
#include "check.h"
#include "error.h"
#include "store.h"
#include "store_schema.h"

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

static const char *conninfo;

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
	struct store_sink sink = { cb_committed, refused, w, NULL, NULL, NULL };
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

/* Blocking query on a separate connection; the first field of the first
 * row, malloc'd, or NULL. */
static char *sql1(const char *q)
{
	PGconn *c = PQconnectdb(conninfo);
	char *out = NULL;
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(c, q);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
			out = strdup(PQgetvalue(r, 0, 0));
		else if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
			fprintf(stderr, "sql1(%s): %s", q, PQresultErrorMessage(r));
		PQclear(r);
	} else {
		fprintf(stderr, "sql1: %s", PQerrorMessage(c));
	}
	PQfinish(c);
	return out;
}

static long long sql_int(const char *q)
{
	char *v = sql1(q);
	long long n = v ? atoll(v) : -1;
	free(v);
	return n;
}

static void sql_exec(const char *q)
{
	free(sql1(q));
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
	const char *payload = "{\"pad\": \"a payload longer than the fold's index\"}";
	struct seen w = { 0 };
	struct store *s = open_store(&w, tables, 1, 3);
	add(s, 0, 1, "a", NULL, payload);
	add(s, 0, 1, "b", NULL, payload);
	fail_malloc_size = 3 * sizeof(size_t);   /* the fold's index of 3 rows */
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

static size_t table_refused_calls, table_refused_rows;

static void cb_table_refused(void *arg, size_t table, size_t n, const char *err)
{
	(void)arg;
	(void)table;
	table_refused_calls++;
	table_refused_rows += n;
	snprintf(failed_err, sizeof failed_err, "%s", err);
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
	struct store_sink sink = { cb_committed, cb_failed, &w, cb_table_refused, NULL, NULL };
	store_attach_sink(s, &sink);
	CHECK(run_until(store_ready, s, 30));
	failed_rows = table_refused_calls = table_refused_rows = 0;
	sql_exec("DROP TABLE d_items");
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
	struct store_sink b = { cb_committed, NULL, &second, NULL, NULL, NULL };
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
	RUN(test_rows_of_two_imports_are_never_one_batch);
	RUN(test_committed_counts_rows_added_per_batch_in_order);
	RUN(test_refused_row_is_reported_and_the_rest_of_its_batch_stored);
	RUN(test_dropped_table_refuses_the_batch_whole_naming_the_fix);
	RUN(test_lock_held_past_lock_timeout_is_waited_out);
	RUN(test_statement_failing_after_each_reconnect_backs_off_further);
	RUN(test_import_runs_begin_finish_and_get_runs);
	RUN(test_errors_group_by_stage_and_normalized_cause);
	RUN(test_a_batch_carries_its_run_heartbeat_at_most_once_a_second);
	RUN(test_a_run_left_running_is_marked_at_its_last_heartbeat_with_its_rows);
	RUN(test_discard_acknowledges_batches_in_order_without_a_database);
	RUN(test_rows_are_reported_only_to_the_sink_attached_when_added);
	RUN(test_error_rows_beyond_the_bound_are_only_counted);
	RUN(test_loop_keeps_turning_during_a_large_write);
	RUN(test_postgres_restart_mid_stream_stores_every_row_once);
	event_base_free(base);
	return CHECK_DONE();
}
