/* test_store_conns — the store over several PostgreSQL connections
 * ([database] connections, store_pool.h) against a real PostgreSQL (run
 * under with-pg.sh): an import over 2 and 4 connections stored exactly,
 * credit only after commit and in order, reads and the run's finish after
 * every row before them, one connection killed mid-import.
 *
 * The test checks the database through separate, blocking libpq
 * connections (the test is not the loop). */
#include "pgtest.h"
#include "check.h"
#include "error.h"
#include "store.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

static struct event_base *base;

/* --- harness ------------------------------------------------------------ */

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

/* What the store reported. */
struct seen {
	struct store *store;
	const char *app;             /* application_name of its connections */
	const char *table0;          /* table 0's name, for the in-order check */
	size_t committed[2];
	size_t order_errors;         /* committed() before its rows were durable */
	enum store_state last_state;
	char backoff_why[ERR_MAX];   /* the first BACKOFF's message */
	bool finished;
	size_t committed_at_finish[2];
	long long rows_at_finish;
	struct store_items *items;
	bool items_answered;
	char err[ERR_MAX];
	/* the answers of reads tagged 101 to 115, by tag - 100 (the reader's test) */
	struct store_items *tagged[16];
	bool answered[16];
	/* the killed-connection test feeds rows as credit comes back */
	size_t total, added, window;
};

static void cb_state(void *arg, enum store_state st, const char *why)
{
	struct seen *w = arg;
	w->last_state = st;
	if (st == STORE_BACKOFF && !w->backoff_why[0])
		snprintf(w->backoff_why, sizeof w->backoff_why, "%s", why ? why : "");
}

static void feed(struct seen *w);

/* Table 0's first 3000 rows are keys k0000..k2999 in order, then k0000..
 * k0499 again with "v": 2, in batches of 100.  When committed() says k
 * rows are done, every batch before the k-th row's is in the database,
 * and at least k rows up to the end of that batch are (a batch is
 * acknowledged in shares, one per connection, each after its commit). */
static bool durable_in_order(const char *table, size_t k)
{
	bool again = k > 3000;
	size_t m = again ? k - 3000 : k, end = again ? 500 : 3000;
	size_t whole = m / 100 * 100, upto = whole + 100 < end ? whole + 100 : end;
	const char *v2 = again ? " AND payload->>'v' = '2'" : "";
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM %s WHERE key < 'k%04zu'%s", table, whole, v2);
	long long before = sql_int(q);
	snprintf(q, sizeof q, "SELECT count(*) FROM %s WHERE key < 'k%04zu'%s", table, upto, v2);
	long long through = sql_int(q);
	return before == (long long)whole && through >= (long long)m;
}

static void cb_committed(void *arg, size_t table, size_t n)
{
	struct seen *w = arg;
	w->committed[table] += n;
	if (w->table0 && table == 0 && !durable_in_order(w->table0, w->committed[0]))
		w->order_errors++;
	if (w->total)
		feed(w);
}

static void cb_items(void *arg, size_t table, uint64_t tag, struct store_items *items,
                     const char *err)
{
	struct seen *w = arg;
	(void)table;
	if (tag > 100 && tag < 116) {
		w->tagged[tag - 100] = items;
		w->answered[tag - 100] = true;
		return;
	}
	w->items = items;
	w->items_answered = true;
	if (err)
		snprintf(w->err, sizeof w->err, "%s", err);
}

static bool is_ready(void *arg)
{
	return store_state(((struct seen *)arg)->store) == STORE_READY;
}

static struct store *open_store(struct seen *w, const char *app, const char *const *tables,
                                size_t n_tables, unsigned connections, uint32_t batch)
{
	char ci[1024];
	snprintf(ci, sizeof ci, "%s application_name=%s", conninfo, app);
	struct store_conf conf = { .conninfo = ci, .batch_size = batch, .tables = tables,
	                           .n_tables = n_tables, .connections = connections };
	struct store_callbacks cb = { cb_state, w };
	char err[ERR_MAX] = "";
	struct store *s = store_new(base, &conf, &cb, err);
	if (!s) {
		fprintf(stderr, "store_new: %s\n", err);
		return NULL;
	}
	struct store_sink sink = { .committed = cb_committed, .arg = w, .items_read = cb_items };
	store_attach_sink(s, &sink);
	w->store = s;
	w->app = app;
	if (!run_until(is_ready, w, 30))
		fprintf(stderr, "store not ready\n");
	return s;
}

static long long backends(const char *app)
{
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'",
	         app);
	return sql_int(q);
}

/* The count once it is want, or as it is after BACKENDS_SETTLE_MS: a
 * backend leaves pg_stat_activity some time after its client closed the
 * connection (or it was terminated), so a count right after that can
 * still include it. */
#define BACKENDS_SETTLE_MS 10000
static long long backends_settle(const char *app, long long want)
{
	struct timespec t0, now, pause = { 0, 10 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long long n = backends(app);
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (n == want || ms >= BACKENDS_SETTLE_MS)
			return n;
		nanosleep(&pause, NULL);
	}
}

static void add(struct store *s, size_t table, int64_t import_id, const char *key,
                const char *payload)
{
	char err[ERR_MAX] = "";
	int rc = store_add(s, table, import_id, key, NULL, payload, strlen(payload), err);
	if (rc != 0)
		fprintf(stderr, "store_add: %s\n", err);
	CHECK_EQ(rc, 0);
}

struct run {
	int64_t id;
	bool got_id;
	struct seen *w;
};

static void on_id(void *arg, int64_t id, const char *err)
{
	struct run *r = arg;
	r->id = id;
	r->got_id = true;
	if (err)
		fprintf(stderr, "begin: %s\n", err);
}

static bool run_begun(void *arg)
{
	return ((struct run *)arg)->got_id;
}

static bool run_finished(void *arg)
{
	return ((struct seen *)arg)->finished;
}

/* The finish runs after every batch of its run on every connection. */
static void on_finished(void *arg, const char *err)
{
	struct seen *w = arg;
	char q[128];
	w->finished = true;
	w->committed_at_finish[0] = w->committed[0];
	w->committed_at_finish[1] = w->committed[1];
	snprintf(q, sizeof q, "SELECT count(*) FROM %s", w->table0);
	w->rows_at_finish = sql_int(q);
	if (err)
		snprintf(w->err, sizeof w->err, "%s", err);
}

/* Tuples written to table (inserted, updated) once the statistics show at
 * least `want` of them (they reach pg_stat_user_tables a little later). */
static long long tuples_written(const char *table, long long want, long long *upd)
{
	char q[256];
	long long n = -1;
	double end = now_s() + 10;
	snprintf(q, sizeof q, "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = '%s'",
	         table);
	while ((n = sql_int(q)) < want && now_s() < end) {
		struct timespec ts = { 0, 50000000 };
		nanosleep(&ts, NULL);   /* polling the statistics collector with a deadline */
	}
	snprintf(q, sizeof q, "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = '%s'", table);
	*upd = sql_int(q);
	return n;
}

/* --- an import over N connections --------------------------------------- */

static void import_over(unsigned n_conns)
{
	char ta[32], tb[32], app[32];
	snprintf(ta, sizeof ta, "cn%u_a", n_conns);
	snprintf(tb, sizeof tb, "cn%u_b", n_conns);
	snprintf(app, sizeof app, "conns%u", n_conns);
	const char *tables[] = { ta, tb };
	struct seen w = { 0 };
	w.table0 = ta;
	struct store *s = open_store(&w, app, tables, 2, n_conns, 100);
	if (!s)
		return;
	CHECK_EQ(backends(app), n_conns);
	struct run r = { 0 };
	CHECK_EQ(store_begin_import(s, &(struct store_run_begin){ .requested_by = "test" }, on_id, &r),
	         0);
	CHECK(run_until(run_begun, &r, 10));

	/* table a: k0000..k2999, a page record every 50 rows; table b: 2000
	 * rows; then k0000..k0499 again, changed */
	char key[32], url[64], payload[64];
	const char *page_keys[50];
	char page_key_buf[50][32];
	uint64_t hashes[50] = { 0 };
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof key, "k%04d", i);
		snprintf(payload, sizeof payload, "{\"i\": %d, \"v\": 1}", i);
		add(s, 0, r.id, key, payload);
		snprintf(page_key_buf[i % 50], sizeof page_key_buf[0], "%s", key);
		page_keys[i % 50] = page_key_buf[i % 50];
		if (i % 50 == 49) {
			snprintf(url, sizeof url, "http://h/a?p=%d", i / 50);
			struct store_page pg = { .url = url, .input = "http://h/a?p=0", .page_no = (uint32_t)(i / 50),
			                         .fetched = true, .content = true, .keys = page_keys,
			                         .hashes = hashes, .n_keys = 50, .input_done = i == 2999 };
			char err[ERR_MAX];
			CHECK_EQ(store_add_page(s, 0, r.id, &pg, err), 0);
		}
		if (i < 2000) {
			snprintf(key, sizeof key, "b%04d", i);
			add(s, 1, r.id, key, "{}");
		}
	}
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof key, "k%04d", i);
		snprintf(payload, sizeof payload, "{\"i\": %d, \"v\": 2}", i);
		add(s, 0, r.id, key, payload);
	}
	char err[ERR_MAX];
	CHECK_EQ(store_flush(s, 0, err), 0);
	/* asked before any of it committed: sees all of it */
	const char *ask[] = { "k0000", "k0499", "k0500", "k1234", "k2999" };
	CHECK_EQ(store_read_items(s, 0, ask, 5, 1, err), 0);
	CHECK_EQ(store_finish_import(s, r.id, "succeeded", NULL, 0, on_finished, &w), 0);
	CHECK(run_until(run_finished, &w, 60));
	CHECK(w.items_answered);
	CHECK_STR(w.err, "");
	CHECK(w.items && w.items->n == 5);
	if (w.items && w.items->n == 5) {
		CHECK(strstr(w.items->items[0].payload, "\"v\": 2") != NULL);
		CHECK(strstr(w.items->items[1].payload, "\"v\": 2") != NULL);
		CHECK(strstr(w.items->items[2].payload, "\"v\": 1") != NULL);
		CHECK_STR(w.items->items[4].key, "k2999");
	}
	store_items_free(w.items);

	/* every row acknowledged before the finish, in order, after commit */
	CHECK_EQ(w.committed_at_finish[0], 3500);
	CHECK_EQ(w.committed_at_finish[1], 2000);
	CHECK_EQ(w.rows_at_finish, 3000);
	CHECK_EQ(w.order_errors, 0);
	CHECK_EQ(store_table_committed(s, 0), 3500);
	CHECK_EQ(store_pending(s, 0), 0);

	/* exact: each key once, the later payload, every page record */
	char q[256];
	snprintf(q, sizeof q, "SELECT count(DISTINCT key) FROM %s", ta);
	CHECK_EQ(sql_int(q), 3000);
	snprintf(q, sizeof q, "SELECT count(*) FROM %s WHERE payload->>'v' = '2' AND key < 'k0500'"
	         " AND last_import = %lld", ta, (long long)r.id);
	CHECK_EQ(sql_int(q), 500);
	snprintf(q, sizeof q, "SELECT count(*) FROM %s", tb);
	CHECK_EQ(sql_int(q), 2000);
	snprintf(q, sizeof q, "SELECT count(*) FROM raced_pages WHERE stage = '%s' AND seen_import = %lld",
	         ta, (long long)r.id);
	CHECK_EQ(sql_int(q), 60);
	snprintf(q, sizeof q, "SELECT count(*) FROM raced_reached r, unnest(r.done) d"
	         " WHERE r.stage = '%s' AND r.import_id = %lld", ta, (long long)r.id);
	CHECK_EQ(sql_int(q), 1);
	snprintf(q, sizeof q, "SELECT status FROM import_runs WHERE id = %lld", (long long)r.id);
	char *status = sql1(q);
	CHECK_STR(status, "succeeded");
	free(status);
	/* nothing written twice: 3000 inserts and 500 updates */
	long long upd = -1;
	CHECK_EQ(tuples_written(ta, 3500, &upd), 3500);
	CHECK_EQ(upd, 500);
	/* the batches went over every connection */
	snprintf(q, sizeof q, "SELECT count(DISTINCT xmin::text) FROM %s", ta);
	CHECK(sql_int(q) >= (long long)n_conns);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK_EQ(st.rows_failed, 0);
	CHECK_EQ(st.reconnects, 0);
	store_free(s);
	CHECK_EQ(backends_settle(app, 0), 0);
}

static void test_an_import_over_2_connections_is_exact_and_in_order(void)
{
	import_over(2);
}

static void test_an_import_over_4_connections_is_exact_and_in_order(void)
{
	import_over(4);
}

/* --- R6: no credit before commit ------------------------------------------ */

static bool waiting_on_lock(void *arg)
{
	struct seen *w = arg;
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
	         " AND wait_event_type = 'Lock'", w->app);
	return sql_int(q) >= 2;
}

static bool all_of_400(void *arg)
{
	struct seen *w = arg;
	return w->committed[0] == 400 && w->items_answered;
}

static void test_no_credit_and_no_read_before_every_connection_committed(void)
{
	const char *tables[] = { "cl_rows" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, "conns_lock", tables, 1, 2, 100);
	if (!s)
		return;
	PGconn *lock = PQconnectdb(conninfo);
	CHECK(PQstatus(lock) == CONNECTION_OK);
	PQclear(PQexec(lock, "BEGIN"));
	PGresult *res = PQexec(lock, "LOCK TABLE cl_rows IN SHARE ROW EXCLUSIVE MODE");
	CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
	PQclear(res);
	char key[32], err[ERR_MAX];
	for (int i = 0; i < 400; i++) {
		snprintf(key, sizeof key, "r%03d", i);
		add(s, 0, 1, key, "{}");
	}
	const char *ask[] = { "r000", "r399" };
	CHECK_EQ(store_read_items(s, 0, ask, 2, 7, err), 0);
	/* both connections hold a batch blocked on the lock */
	CHECK(run_until(waiting_on_lock, &w, 20));
	CHECK_EQ(w.committed[0], 0);
	CHECK(!w.items_answered);
	PQclear(PQexec(lock, "COMMIT"));
	PQfinish(lock);
	CHECK(run_until(all_of_400, &w, 20));
	CHECK_EQ(w.committed[0], 400);
	CHECK(w.items && w.items->n == 2);
	store_items_free(w.items);
	CHECK_EQ(sql_int("SELECT count(*) FROM cl_rows"), 400);
	store_free(s);
}

/* --- reads of committed rows ------------------------------------------------ */

struct tag_wait {
	struct seen *w;
	int tag;
};

static bool tag_answered(void *arg)
{
	const struct tag_wait *t = arg;
	return t->w->answered[t->tag];
}

static bool one_waiting_on_lock(void *arg)
{
	struct seen *w = arg;
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
	         " AND wait_event_type = 'Lock'", w->app);
	return sql_int(q) >= 1;
}

static bool reached_100(void *arg)
{
	return ((struct seen *)arg)->committed[0] == 100;
}

static bool all_of_200(void *arg)
{
	return ((struct seen *)arg)->committed[0] == 200;
}

/* The payload's "v" of row i of items, or -1. */
static int v_of(const struct store_items *it, size_t i)
{
	const char *p = it && i < it->n ? strstr(it->items[i].payload, "\"v\": ") : NULL;
	return p ? atoi(p + 5) : -1;
}

/* store_read_committed is answered while batches queued before it wait on
 * a lock (a read in the queue is not), with the rows committed before it:
 * on its own connection, one backend more; after that connection is
 * killed, again, on the first one while it comes back. */
static void reads_of_committed_rows_wait_for_no_batch(unsigned connections, const char *app,
                                                      const char *table)
{
	const char *tables[] = { table };
	struct seen w = { 0 };
	struct store *s = open_store(&w, app, tables, 1, connections, 100);
	if (!s)
		return;
	char key[32], err[ERR_MAX], q[256];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "c%03d", i);
		add(s, 0, 1, key, "{\"v\": 1}");
	}
	CHECK_EQ(store_flush(s, 0, err), 0);
	CHECK(run_until(reached_100, &w, 20));
	/* no reader before the first read of committed rows */
	CHECK_EQ(backends_settle(app, (long long)connections), (long long)connections);

	PGconn *lock = PQconnectdb(conninfo);
	CHECK(PQstatus(lock) == CONNECTION_OK);
	PQclear(PQexec(lock, "BEGIN"));
	snprintf(q, sizeof q, "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", table);
	PGresult *res = PQexec(lock, q);
	CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
	PQclear(res);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, i < 50 ? "c%03d" : "n%03d", i);
		add(s, 0, 1, key, "{\"v\": 2}");
	}
	CHECK_EQ(store_flush(s, 0, err), 0);
	CHECK(run_until(one_waiting_on_lock, &w, 20));
	const char *ask[] = { "c000", "n050", "c099" };
	CHECK_EQ(store_read_items(s, 0, ask, 3, 101, err), 0);
	CHECK_EQ(store_read_committed(s, 0, ask, 3, 102, err), 0);
	struct tag_wait t2 = { &w, 2 }, t1 = { &w, 1 };
	CHECK(run_until(tag_answered, &t2, 20));
	/* what was committed, not what waits on the lock */
	CHECK(w.tagged[2] && w.tagged[2]->n == 2);
	CHECK_EQ(v_of(w.tagged[2], 0), 1);
	CHECK_EQ(v_of(w.tagged[2], 1), 1);
	CHECK_EQ(w.committed[0], 100);
	CHECK(!w.answered[1]);
	CHECK_EQ(backends(app), (long long)connections + 1);
	PQclear(PQexec(lock, "COMMIT"));
	PQfinish(lock);
	CHECK(run_until(all_of_200, &w, 20));
	CHECK(run_until(tag_answered, &t1, 20));
	/* the read in the queue saw the batches before it */
	CHECK(w.tagged[1] && w.tagged[1]->n == 3);
	CHECK_EQ(v_of(w.tagged[1], 0), 2);
	CHECK_EQ(v_of(w.tagged[1], 1), 2);
	CHECK_EQ(v_of(w.tagged[1], 2), 1);

	/* every backend killed: the read is answered all the same */
	snprintf(q, sizeof q, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	         " WHERE application_name = '%s'", app);
	CHECK_EQ(sql_int(q), (long long)connections + 1);
	const char *again[] = { "n050" };
	CHECK_EQ(store_read_committed(s, 0, again, 1, 103, err), 0);
	struct tag_wait t3 = { &w, 3 };
	CHECK(run_until(tag_answered, &t3, 30));
	CHECK(w.tagged[3] && w.tagged[3]->n == 1);
	for (int i = 1; i < 4; i++)
		store_items_free(w.tagged[i]);
	store_free(s);
}

static void test_reads_of_committed_rows_wait_for_no_batch_on_1_connection(void)
{
	reads_of_committed_rows_wait_for_no_batch(1, "conns_reader1", "cr1_rows");
}

static void test_reads_of_committed_rows_wait_for_no_batch_on_2_connections(void)
{
	reads_of_committed_rows_wait_for_no_batch(2, "conns_reader2", "cr2_rows");
}

/* --- the reader: no backend while idle, none taken from connection 0 ------ */

static bool all_fed_one(void *arg)
{
	return ((struct seen *)arg)->committed[0] == 1;
}

static bool backoff_seen(void *arg);

static bool never(void *arg)
{
	(void)arg;
	return false;
}

static bool reader_is(struct seen *w, const char *state)
{
	struct store_stats st;
	store_get_stats(w->store, &st);
	return st.reader_state && strcmp(st.reader_state, state) == 0;
}

static bool reader_idle(void *arg)
{
	return reader_is(arg, "idle");
}

static uint64_t reconnects_of(struct store *s)
{
	struct store_stats st;
	store_get_stats(s, &st);
	return st.reconnects;
}

/* Kill every backend of app; true once the store is READY again. */
static bool kill_and_reconnect(struct seen *w)
{
	char q[256];
	snprintf(q, sizeof q, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	         " WHERE application_name = '%s'", w->app);
	w->backoff_why[0] = '\0';
	if (sql_int(q) < 1)
		return false;
	return run_until(backoff_seen, w, 20) && run_until(is_ready, w, 30);
}

/* Read k000 committed under tag; true once answered with that one row. */
static bool read_one(struct seen *w, int tag)
{
	char err[ERR_MAX];
	const char *ask[] = { "k000" };
	if (store_read_committed(w->store, 0, ask, 1, (uint64_t)tag, err) != 0)
		return false;
	struct tag_wait t = { w, tag - 100 };
	bool ok = run_until(tag_answered, &t, 30) && w->tagged[tag - 100] &&
	          w->tagged[tag - 100]->n == 1;
	store_items_free(w->tagged[tag - 100]);
	w->tagged[tag - 100] = NULL;
	return ok;
}

/* The reader opens for reads and closes once idle
 * (STORE_POOL_READER_IDLE_MS); lost, it is not made again on its own,
 * only by the next read. */
static void test_the_reader_holds_no_backend_while_idle(void)
{
	const char *tables[] = { "ci_rows" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, "conns_idle", tables, 1, 1, 100);
	if (!s)
		return;
	char err[ERR_MAX];
	add(s, 0, 1, "k000", "{\"v\": 1}");
	CHECK_EQ(store_flush(s, 0, err), 0);
	CHECK(run_until(all_fed_one, &w, 20));
	CHECK(reader_is(&w, "idle"));
	CHECK(read_one(&w, 101));
	CHECK(reader_is(&w, "ready"));
	CHECK_EQ(backends("conns_idle"), 2);
	/* idle: closed, its backend given back */
	CHECK(run_until(reader_idle, &w, 10));
	CHECK_EQ(backends_settle("conns_idle", 1), 1);
	/* open again, then lost with connection 0 (a restart): connection 0
	 * comes back alone and the reader stays closed until a read */
	CHECK(read_one(&w, 102));
	CHECK_EQ(backends("conns_idle"), 2);
	CHECK(kill_and_reconnect(&w));
	run_until(never, NULL, 1.5);
	/* closed by connection 0's loss, or lost itself first */
	CHECK(reader_is(&w, "idle") || reader_is(&w, "failed"));
	CHECK_EQ(backends_settle("conns_idle", 1), 1);
	CHECK(read_one(&w, 103));
	CHECK_EQ(backends("conns_idle"), 2);
	store_free(s);
}

/* A role's CONNECTION LIMIT leaves room for connection 0 alone: the
 * reader is refused (53300), its reads go on connection 0, it is not
 * retried while no read waits, and after every restart connection 0 gets
 * the one backend (the reader never takes it). */
static void test_a_connection_limit_with_no_room_for_the_reader(void)
{
	sql_exec("CREATE ROLE conns_lim LOGIN CONNECTION LIMIT 1");
	sql_exec("CREATE SCHEMA cl_lim AUTHORIZATION conns_lim");
	sql_exec("DO $$BEGIN EXECUTE format('GRANT ALL ON DATABASE %I TO conns_lim',"
	         " current_database()); END$$");
	const char *tables[] = { "cl_rows" };
	struct seen w = { 0 };
	char ci[1024];
	snprintf(ci, sizeof ci, "%s application_name=conns_lim user=conns_lim", conninfo);
	struct store_conf conf = { .conninfo = ci, .batch_size = 100, .tables = tables, .n_tables = 1,
	                           .connections = 1, .schema = "cl_lim" };
	struct store_callbacks cb = { cb_state, &w };
	char err[ERR_MAX] = "";
	struct store *s = store_new(base, &conf, &cb, err);
	CHECK(s != NULL);
	if (!s)
		return;
	struct store_sink sink = { .committed = cb_committed, .arg = &w, .items_read = cb_items };
	store_attach_sink(s, &sink);
	w.store = s;
	w.app = "conns_lim";
	CHECK(run_until(is_ready, &w, 30));
	if (w.backoff_why[0])
		fprintf(stderr, "  %s\n", w.backoff_why);
	add(s, 0, 1, "k000", "{\"v\": 1}");
	CHECK_EQ(store_flush(s, 0, err), 0);
	CHECK(run_until(all_fed_one, &w, 20));
	/* refused, the read answered on connection 0 */
	CHECK(read_one(&w, 101));
	CHECK(reader_is(&w, "failed"));
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.last_error && strstr(st.last_error, "too many connections") != NULL);
	CHECK_EQ(st.state, STORE_READY);
	/* no retry of its own while no read waits */
	uint64_t rec = reconnects_of(s);
	CHECK(rec >= 1);
	run_until(never, NULL, 2.0);
	CHECK_EQ(reconnects_of(s), rec);
	/* restarts: connection 0 gets its backend back every time */
	for (int i = 0; i < 3; i++) {
		CHECK(kill_and_reconnect(&w));
		run_until(never, NULL, 0.5);
		CHECK_EQ(store_state(s), STORE_READY);
		CHECK(read_one(&w, 102 + i));
		CHECK_EQ(store_state(s), STORE_READY);
	}
	CHECK_EQ(backends_settle("conns_lim", 1), 1);
	store_free(s);
}

/* --- one connection killed mid-import ------------------------------------- */

static void feed(struct seen *w)
{
	char key[32], payload[400];
	while (w->added < w->total && w->added - w->committed[0] < w->window) {
		snprintf(key, sizeof key, "row%06zu", w->added);
		int n = snprintf(payload, sizeof payload, "{\"seq\": %zu, \"pad\": \"%0200zu\"}", w->added,
		                 w->added);
		char err[ERR_MAX];
		if (store_add(w->store, 0, 1, key, NULL, payload, (size_t)n, err) != 0) {
			fprintf(stderr, "store_add: %s\n", err);
			break;
		}
		w->added++;
	}
	char err[ERR_MAX];
	if (w->added == w->total && store_flush(w->store, 0, err) != 0)
		fprintf(stderr, "store_flush: %s\n", err);
}

static bool reached(void *arg)
{
	struct seen *w = arg;
	return w->committed[0] >= w->window;
}

static bool all_fed_committed(void *arg)
{
	struct seen *w = arg;
	return w->committed[0] == w->total && store_state(w->store) == STORE_READY;
}

static bool backoff_seen(void *arg)
{
	return ((struct seen *)arg)->backoff_why[0] != '\0';
}

static void test_a_connection_killed_mid_import_stores_every_row_once(void)
{
	const char *tables[] = { "ck_rows" };
	struct seen w = { 0 };
	struct store *s = open_store(&w, "conns_kill", tables, 1, 3, 200);
	if (!s)
		return;
	w.total = 20000;
	w.window = 2000;
	feed(&w);
	CHECK(run_until(reached, &w, 30));
	CHECK(w.committed[0] < w.total);
	/* the connection that connected last (not the first) */
	CHECK_EQ(sql_int("SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity"
	                 " WHERE application_name = 'conns_kill' ORDER BY backend_start DESC LIMIT 1) p"), 1);
	CHECK(run_until(backoff_seen, &w, 20));
	fprintf(stderr, "  killed after %zu rows: %s\n", w.committed[0], w.backoff_why);
	CHECK(strncmp(w.backoff_why, "connection ", 11) == 0 && strstr(w.backoff_why, " of 3: ") != NULL);
	CHECK(run_until(all_fed_committed, &w, 60));
	CHECK_EQ(w.committed[0], 20000);
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.reconnects >= 1);
	CHECK_EQ(st.rows_failed, 0);
	CHECK_EQ(backends_settle("conns_kill", 3), 3);
	CHECK_EQ(sql_int("SELECT count(*) FROM ck_rows"), 20000);
	CHECK_EQ(sql_int("SELECT count(*) FROM ck_rows WHERE key = 'row' || lpad(payload->>'seq', 6, '0')"),
	         20000);
	/* nothing written twice: no row updated (a batch retried after its
	 * commit writes no tuple), and the inserts that committed are the
	 * rows.  n_tup_ins also counts the inserts of the share the kill
	 * aborted (about 66 rows, written again on another connection);
	 * those are its dead tuples, as no row was updated. */
	long long upd = -1, ins = tuples_written("ck_rows", 20000, &upd);
	fprintf(stderr, "  tuples inserted %lld (aborted ones included), updated %lld\n", ins, upd);
	CHECK(ins >= 20000);
	CHECK_EQ(upd, 0);
	CHECK_EQ(sql_int("SELECT n_tup_ins - n_dead_tup FROM pg_stat_user_tables"
	                 " WHERE relname = 'ck_rows'"), 20000);
	store_free(s);
}

/* --- migrations on the first connection, before the others ---------------- */

static void test_the_others_connect_after_the_first_applied_the_migrations(void)
{
	const char *tables[] = { "cm_rows" };
	struct seen w = { 0 };
	char ci[1024];
	snprintf(ci, sizeof ci, "%s application_name=conns_mig", conninfo);
	struct store_conf conf = { .conninfo = ci, .batch_size = 10, .tables = tables, .n_tables = 1,
	                           .connections = 4, .schema = "cm_fresh" };
	struct store_callbacks cb = { cb_state, &w };
	char err[ERR_MAX] = "";
	struct store *s = store_new(base, &conf, &cb, err);
	CHECK(s != NULL);
	if (!s)
		return;
	w.store = s;
	CHECK(run_until(is_ready, &w, 30));
	struct store_stats st;
	store_get_stats(s, &st);
	CHECK(st.migrations_applied > 0);   /* a fresh schema: the first connection migrated it */
	CHECK_EQ(sql_int("SELECT count(*) FROM cm_fresh.raced_schema_version"), st.migrations_applied);
	/* the other three connected after the last migration committed */
	CHECK_EQ(sql_int("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'conns_mig'"
	                 " AND backend_start > (SELECT max(applied_at) FROM cm_fresh.raced_schema_version)"),
	         3);
	CHECK_EQ(backends("conns_mig"), 4);
	store_free(s);
	/* out of range */
	conf.connections = STORE_CONNECTIONS_MAX + 1;
	CHECK(store_new(base, &conf, &cb, err) == NULL);
	CHECK(strstr(err, "connections 17 is out of range: use 1 to 16") != NULL);
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
	sql_exec("SELECT 1");
	RUN(test_an_import_over_2_connections_is_exact_and_in_order);
	RUN(test_an_import_over_4_connections_is_exact_and_in_order);
	RUN(test_no_credit_and_no_read_before_every_connection_committed);
	RUN(test_a_connection_killed_mid_import_stores_every_row_once);
	RUN(test_reads_of_committed_rows_wait_for_no_batch_on_1_connection);
	RUN(test_reads_of_committed_rows_wait_for_no_batch_on_2_connections);
	RUN(test_the_reader_holds_no_backend_while_idle);
	RUN(test_a_connection_limit_with_no_room_for_the_reader);
	RUN(test_the_others_connect_after_the_first_applied_the_migrations);
	event_base_free(base);
	return CHECK_DONE();
}
