/* store_bench — rows/s of the two candidate write paths (run under
 * tests/lib/with-pg.sh; `meson test -C build --benchmark store_bench -v`).
 *
 *   store (a):  the store itself: libevent loop, pipeline mode, one
 *               INSERT ... SELECT FROM unnest($1::text[], ...) ON CONFLICT
 *               per batch, up to STORE_MAX_IN_FLIGHT batches in flight.
 *   unnest-sync: the same statement, one batch at a time, blocking libpq
 *               (what pipelining buys).
 *   copy (b):   per batch, in one transaction: COPY into a temporary table
 *               (ON COMMIT DELETE ROWS), then INSERT ... SELECT ... ON
 *               CONFLICT; blocking libpq (COPY cannot be pipelined).
 *
 * Each path writes N rows of ~300-byte payloads into a fresh table (insert),
 * then the same rows again as import 2 (payloads unchanged: only last_import
 * advances, updated_at is kept).
 */
#include "error.h"
#include "store.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ROWS 100000

static const char *conninfo;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_row(size_t i, char *key, size_t klen, char *payload, size_t plen, int *n)
{
	snprintf(key, klen, "k%07zu", i);
	*n = snprintf(payload, plen,
	              "{\"id\": %zu, \"name\": \"Runner %zu\", \"club\": \"Club \\\"%zu\\\"\","
	              " \"city\": \"K\\u00f6ln\", \"bib\": %zu, \"splits\": [%zu, %zu, %zu],"
	              " \"note\": \"%0180zu\"}",
	              i, i, i % 97, i, i % 3600, i % 7200, i % 10800, i);
}

static void exec_ok(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", q, PQresultErrorMessage(r));
		exit(1);
	}
	PQclear(r);
}

static const char *upsert_tail =
	" ON CONFLICT (key) DO UPDATE SET"
	"  payload = CASE WHEN t.payload IS DISTINCT FROM excluded.payload THEN excluded.payload ELSE t.payload END,"
	"  updated_at = CASE WHEN t.payload IS DISTINCT FROM excluded.payload THEN now() ELSE t.updated_at END,"
	"  parent_key = excluded.parent_key,"
	"  last_import = greatest(t.last_import, excluded.last_import)"
	" WHERE t.payload IS DISTINCT FROM excluded.payload"
	"  OR t.parent_key IS DISTINCT FROM excluded.parent_key"
	"  OR t.last_import IS NULL OR t.last_import < excluded.last_import";

static void fresh_table(PGconn *c, const char *name)
{
	char q[512];
	snprintf(q, sizeof q, "DROP TABLE IF EXISTS %s", name);
	exec_ok(c, q);
	snprintf(q, sizeof q, "CREATE TABLE %s (key text PRIMARY KEY, parent_key text, payload jsonb NOT NULL,"
	         " first_import bigint, last_import bigint, updated_at timestamptz NOT NULL DEFAULT now())", name);
	exec_ok(c, q);
}

/* --- (a) through the store ------------------------------------------- */

static size_t committed;

static void on_committed(void *arg, size_t table, size_t n)
{
	(void)arg;
	(void)table;
	committed += n;
}

static double run_store(struct event_base *base, struct store *s, int64_t import_id)
{
	char key[32], payload[512];
	int n;
	double t0 = now_s();
	size_t target = committed + N_ROWS;
	for (size_t i = 0; i < N_ROWS; i++) {
		make_row(i, key, sizeof key, payload, sizeof payload, &n);
		char err[ERR_MAX];
		if (store_add(s, 0, import_id, key, "p", payload, (size_t)n, err) != 0) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		/* Let the loop turn as the pipeline would, every batch. */
		if (i % 500 == 499)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	store_flush(s, 0);
	while (committed < target)
		event_base_loop(base, EVLOOP_ONCE);
	return N_ROWS / (now_s() - t0);
}

static void bench_store(uint32_t batch)
{
	PGconn *c = PQconnectdb(conninfo);
	fresh_table(c, "bench_store");
	PQfinish(c);
	struct event_base *base = event_base_new();
	const char *tables[] = { "bench_store" };
	struct store_conf conf = { .conninfo = conninfo, .batch_size = batch, .tables = tables, .n_tables = 1 };
	struct store_callbacks cb = { NULL, on_committed, NULL, NULL };
	char err[ERR_MAX];
	struct store *s = store_new(base, &conf, &cb, err);
	if (!s) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	while (store_state(s) != STORE_READY)
		event_base_loop(base, EVLOOP_ONCE);
	double ins = run_store(base, s, 1);
	double same = run_store(base, s, 2);
	printf("%-12s batch %5u: insert %8.0f rows/s, re-import %8.0f rows/s\n", "store (a)", batch, ins, same);
	store_free(s);
	event_base_free(base);
}

/* --- unnest, one batch at a time -------------------------------------- */

struct arr {
	char *p;
	size_t len, cap;
};

static void arr_add(struct arr *a, const char *s, size_t n)
{
	if (a->len + n + 1 > a->cap) {
		a->cap = (a->len + n + 1) * 2;
		a->p = realloc(a->p, a->cap);
	}
	memcpy(a->p + a->len, s, n);
	a->len += n;
	a->p[a->len] = '\0';
}

static void arr_elem(struct arr *a, const char *v)
{
	arr_add(a, a->len > 1 ? ",\"" : "\"", a->len > 1 ? 2 : 1);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			arr_add(a, "\\", 1);
		arr_add(a, p, 1);
	}
	arr_add(a, "\"", 1);
}

static double unnest_pass(PGconn *c, uint32_t batch, const char *import_id)
{
	char sql[2048];
	snprintf(sql, sizeof sql,
	         "INSERT INTO bench_unnest AS t (key, parent_key, payload, first_import, last_import, updated_at)"
	         " SELECT u.k, u.p, u.j, u.i, u.i, now()"
	         " FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::bigint[]) AS u(k, p, j, i)%s", upsert_tail);
	char key[32], payload[512];
	int n;
	double t0 = now_s();
	for (size_t start = 0; start < N_ROWS; start += batch) {
		struct arr k = { 0 }, p = { 0 }, j = { 0 }, ids = { 0 };
		arr_add(&k, "{", 1);
		arr_add(&p, "{", 1);
		arr_add(&j, "{", 1);
		arr_add(&ids, "{", 1);
		for (size_t i = start; i < start + batch && i < N_ROWS; i++) {
			make_row(i, key, sizeof key, payload, sizeof payload, &n);
			arr_elem(&k, key);
			arr_elem(&p, "p");
			arr_elem(&j, payload);
			if (ids.len > 1)
				arr_add(&ids, ",", 1);
			arr_add(&ids, import_id, strlen(import_id));
		}
		arr_add(&k, "}", 1);
		arr_add(&p, "}", 1);
		arr_add(&j, "}", 1);
		arr_add(&ids, "}", 1);
		const char *params[] = { k.p, p.p, j.p, ids.p };
		PGresult *r = PQexecParams(c, sql, 4, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "unnest: %s", PQresultErrorMessage(r));
			exit(1);
		}
		PQclear(r);
		free(k.p);
		free(p.p);
		free(j.p);
		free(ids.p);
	}
	return N_ROWS / (now_s() - t0);
}

static void bench_unnest(uint32_t batch)
{
	PGconn *c = PQconnectdb(conninfo);
	fresh_table(c, "bench_unnest");
	double ins = unnest_pass(c, batch, "1");
	double same = unnest_pass(c, batch, "2");
	printf("%-12s batch %5u: insert %8.0f rows/s, re-import %8.0f rows/s\n", "unnest-sync", batch, ins, same);
	PQfinish(c);
}

/* --- (b) COPY into a temporary table ---------------------------------- */

static void copy_escape(struct arr *a, const char *v)
{
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '\\': arr_add(a, "\\\\", 2); break;
		case '\t': arr_add(a, "\\t", 2); break;
		case '\n': arr_add(a, "\\n", 2); break;
		case '\r': arr_add(a, "\\r", 2); break;
		default: arr_add(a, p, 1);
		}
	}
}

static double copy_pass(PGconn *c, uint32_t batch, const char *import_id)
{
	char sql[2048];
	snprintf(sql, sizeof sql,
	         "INSERT INTO bench_copy AS t (key, parent_key, payload, first_import, last_import, updated_at)"
	         " SELECT k, p, j, i, i, now() FROM bench_in%s", upsert_tail);
	char key[32], payload[512];
	int n;
	double t0 = now_s();
	for (size_t start = 0; start < N_ROWS; start += batch) {
		exec_ok(c, "BEGIN");
		PGresult *r = PQexec(c, "COPY bench_in (k, p, j, i) FROM STDIN");
		if (PQresultStatus(r) != PGRES_COPY_IN) {
			fprintf(stderr, "copy: %s", PQresultErrorMessage(r));
			exit(1);
		}
		PQclear(r);
		struct arr buf = { 0 };
		for (size_t i = start; i < start + batch && i < N_ROWS; i++) {
			make_row(i, key, sizeof key, payload, sizeof payload, &n);
			copy_escape(&buf, key);
			arr_add(&buf, "\tp\t", 3);
			copy_escape(&buf, payload);
			arr_add(&buf, "\t", 1);
			arr_add(&buf, import_id, strlen(import_id));
			arr_add(&buf, "\n", 1);
		}
		if (PQputCopyData(c, buf.p, (int)buf.len) != 1 || PQputCopyEnd(c, NULL) != 1) {
			fprintf(stderr, "copy: %s", PQerrorMessage(c));
			exit(1);
		}
		free(buf.p);
		r = PQgetResult(c);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "copy: %s", PQresultErrorMessage(r));
			exit(1);
		}
		PQclear(r);
		while ((r = PQgetResult(c)))
			PQclear(r);
		exec_ok(c, sql);
		exec_ok(c, "COMMIT");
	}
	return N_ROWS / (now_s() - t0);
}

static void bench_copy(uint32_t batch)
{
	PGconn *c = PQconnectdb(conninfo);
	fresh_table(c, "bench_copy");
	exec_ok(c, "CREATE TEMP TABLE bench_in (k text, p text, j jsonb, i bigint) ON COMMIT DELETE ROWS");
	double ins = copy_pass(c, batch, "1");
	double same = copy_pass(c, batch, "2");
	printf("%-12s batch %5u: insert %8.0f rows/s, re-import %8.0f rows/s\n", "copy (b)", batch, ins, same);
	PQfinish(c);
}

int main(void)
{
	conninfo = getenv("PG_CONNINFO");
	if (!conninfo) {
		fprintf(stderr, "PG_CONNINFO is not set: run under tests/lib/with-pg.sh\n");
		return 77;
	}
	printf("%d rows of ~300-byte JSON payloads per pass\n", N_ROWS);
	uint32_t batches[] = { 100, 500, 2000 };
	for (size_t b = 0; b < 3; b++) {
		bench_store(batches[b]);
		bench_unnest(batches[b]);
		bench_copy(batches[b]);
	}
	return 0;
}
