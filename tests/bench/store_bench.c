/* store_bench — what the store costs PostgreSQL per row, and rows/s of the
 * candidate write paths (run under tests/lib/with-pg.sh;
 * `meson test -C build --benchmark store_bench -v`; or run one part:
 * `store_bench rate`, `store_bench cpu [both|database|C [RUNS]]` or
 * `store_bench conns [RUNS]`).
 *
 *   conns:      rows/s of the store with [database] connections = 1, 2 and
 *               4, the same rows as `cpu` into fresh tables (first import),
 *               then again (unchanged re-import); the counts interleaved
 *               over RUNS rounds so a change of the machine's load lands on
 *               all of them (`store_bench conns [RUNS]`).  The rows are made
 *               once before any timing (the bench's snprintf is not the
 *               store's cost); the loop turns after each race's rows, as an
 *               import's pipeline turns it between pages, and at most
 *               CONNS_WINDOW_BATCHES batches a connection wait uncommitted,
 *               as raced's stages send rows only on demand.  Each pass also
 *               reports the CPU per row of this process, of the store's
 *               backends, of the rest of the cluster and of the whole
 *               machine (/proc/stat: what other processes took shows).  Environment:
 *               STORE_BENCH_CONNS="1 2" (only those counts),
 *               STORE_BENCH_BATCH (batch size), STORE_BENCH_WINDOW (rows
 *               uncommitted at most; 0: no bound), STORE_BENCH_NO_TURNS
 *               (the rows all added before the loop turns, as before
 *               2026-12-07).  The process runs with raced's heap settings
 *               (daemon/main.c).
 *
 *   cpu:        the store writing rows shaped like the benchmark's import
 *               (tests/bench/run.sh: 2000 races, 90000 entries, 36000
 *               athletes, payloads of 60-120 bytes) into fresh tables, then
 *               the same rows again as the next import (unchanged), each
 *               begun as a run (store_begin_import).  Reports
 *               the PostgreSQL backend's CPU time per row (from
 *               /proc/<pid>/schedstat, cross-checked with utime+stime of
 *               /proc/<pid>/stat) and this process's, for each of
 *               CPU_REPEATS runs: on a shared, noisy machine wall time says
 *               little, CPU time per row is what the import pays.  Runs once
 *               with the store's own tables and once with tables made
 *               beforehand with key and parent_key COLLATE "C".
 *
 *   store (a):  the store itself: libevent loop, pipeline mode, one
 *               prepared INSERT ... SELECT FROM unnest($1::text[], ...) ON
 *               CONFLICT per batch with binary array parameters, up to
 *               STORE_MAX_IN_FLIGHT batches in flight.
 *   unnest-sync: a like statement, unprepared, with text array literals
 *               (the store's former form), one batch at a time, blocking
 *               libpq.
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
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define N_ROWS 100000

#define CPU_RACES      2000
#define CPU_PER_RACE   45
#define CPU_ATHLETES   36000
#define CPU_REPEATS    3
#define CPU_BATCH      1000
#define CPU_APP_NAME   "store_bench_cpu"

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
	snprintf(q, sizeof q, "DROP TABLE IF EXISTS %s CASCADE", name);
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

/* A store on conf, connected and ready (or the bench exits). */
static void flush_or_exit(struct store *s, size_t table)
{
	char err[ERR_MAX];
	if (store_flush(s, table, err) != 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
}

static struct store *open_store(struct event_base *base, const struct store_conf *conf)
{
	char err[ERR_MAX];
	struct store *s = store_new(base, conf, NULL, err);
	if (!s) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	struct store_sink sink = { on_committed, NULL, NULL, NULL, NULL, NULL, NULL };
	store_attach_sink(s, &sink);
	while (store_state(s) != STORE_READY)
		event_base_loop(base, EVLOOP_ONCE);
	return s;
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
	flush_or_exit(s, 0);
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
	struct store *s = open_store(base, &conf);
	double ins = run_store(base, s, 1);
	double same = run_store(base, s, 2);
	printf("%-12s batch %5u: insert %8.0f rows/s, re-import %8.0f rows/s\n", "store (a)", batch, ins, same);
	store_free(s);
	event_base_free(base);
}

/* --- backend CPU per row ------------------------------------------------ */

struct cpu_sample {
	double backend_sched;  /* s on CPU, /proc/<pid>/schedstat */
	double backend_ticks;  /* s, utime + stime of /proc/<pid>/stat */
	double self;           /* s, this process (user + system) */
	double backend_faults; /* minor page faults of the backend */
};

static void cpu_read(long pid, struct cpu_sample *out)
{
	char path[64];
	unsigned long long ns = 0, ut = 0, st = 0, minflt = 0;
	snprintf(path, sizeof path, "/proc/%ld/schedstat", pid);
	FILE *f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", &ns) != 1) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	char line[1024];
	if (!f || !fgets(line, sizeof line, f)) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	/* Fields after the command's closing parenthesis: state is field 3,
	 * minflt is field 10, utime and stime are fields 14 and 15. */
	char *p = strrchr(line, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu",
	                 &minflt, &ut, &st) != 3) {
		fprintf(stderr, "cannot parse %s\n", path);
		exit(1);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	out->backend_sched = (double)ns / 1e9;
	out->backend_ticks = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	out->backend_faults = (double)minflt;
	out->self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One row of cpu_rows_each's: its table, key, parent key (or NULL) and
 * payload; last_of_race: the last row of a race (a page's worth). */
typedef void cpu_row_fn(void *arg, size_t table, const char *key, const char *parent,
                        const char *payload, size_t len, int last_of_race);

/* Rows in the order an import delivers them: per race, the race, its
 * entries and the athletes first seen there.  Returns how many. */
static size_t cpu_rows_each(cpu_row_fn *emit, void *arg)
{
	static const char *const cities[] = { "Zürich", "Berlin", "Lyon", "Oslo", "Graz" };
	static const char *const kinds[] = { "Marathon", "Half Marathon", "10K", "Trail Run" };
	static const char *const cats[] = { "M20", "W20", "M35", "W35", "M50", "W50" };
	static const char *const firsts[] = { "Anna", "Jonas", "Zoë", "Mateo", "Ingrid" };
	static const char *const lasts[] = { "Schmidt", "Łukasz-Müller", "Rossi", "Berg" };
	char key[32], parent[32], payload[256];
	size_t n_rows = 0, athlete = 0;
	for (size_t r = 1; r <= CPU_RACES; r++) {
		const char *city = cities[r % 5];
		size_t athletes_end = r * CPU_ATHLETES / CPU_RACES;
		snprintf(key, sizeof key, "%zu", r);
		int n = snprintf(payload, sizeof payload,
		                 "{\"id\":%zu,\"name\":\"%s %s\",\"date\":\"2026-%02zu-%02zu\",\"city\":\"%s\",\"version\":1}",
		                 r, city, kinds[r % 4], 1 + r % 12, 1 + r % 28, city);
		emit(arg, 0, key, NULL, payload, (size_t)n, 0);
		n_rows++;
		for (size_t e = 1; e <= CPU_PER_RACE; e++) {
			snprintf(key, sizeof key, "e%zu-%zu", r, e);
			snprintf(parent, sizeof parent, "%zu", r);
			size_t a = 1 + (r * 7919 + e * 104729) % CPU_ATHLETES;
			n = snprintf(payload, sizeof payload,
			             "{\"id\":\"%s\",\"race_id\":\"%zu\",\"athlete_id\":\"a%zu\",\"bib\":%zu,\"category\":\"%s\"}",
			             key, r, a, 100 + e, cats[(r + e) % 6]);
			emit(arg, 1, key, parent, payload, (size_t)n,
			     e == CPU_PER_RACE && athlete >= athletes_end);
			n_rows++;
		}
		for (; athlete < athletes_end; athlete++) {
			size_t a = 1 + (athlete * 7919) % CPU_ATHLETES;
			snprintf(key, sizeof key, "a%zu", a);
			n = snprintf(payload, sizeof payload,
			             "{\"id\":\"%s\",\"name\":\"%s %s\",\"country\":\"%s\",\"born\":%zu}",
			             key, firsts[a % 5], lasts[a % 4], a % 3 ? "CH" : "DE", 1950 + a % 60);
			emit(arg, 2, key, NULL, payload, (size_t)n, athlete + 1 == athletes_end);
			n_rows++;
		}
	}
	return n_rows;
}

struct add_ctx {
	struct store *s;
	int64_t import_id;
};

static void add_row(void *arg, size_t table, const char *key, const char *parent,
                    const char *payload, size_t len, int last_of_race)
{
	struct add_ctx *a = arg;
	char err[ERR_MAX];
	(void)last_of_race;
	if (store_add(a->s, table, a->import_id, key, parent, payload, len, err) != 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
}

/* cpu_rows_each's rows made once, before any timing: what the conns
 * part times is the store's work, not the bench's snprintf. */
#define NO_PARENT SIZE_MAX

struct row_set {
	struct {
		size_t table;
		size_t key, parent, payload;  /* offsets into text; parent NO_PARENT: none */
		size_t len;
		int last_of_race;
	} *rows;
	size_t n, cap;
	char *text;
	size_t text_len, text_cap;
};

static size_t text_put(struct row_set *rs, const char *v, size_t n)
{
	if (rs->text_len + n + 1 > rs->text_cap) {
		rs->text_cap = (rs->text_len + n + 1) * 2;
		if (!(rs->text = realloc(rs->text, rs->text_cap))) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	size_t at = rs->text_len;
	memcpy(rs->text + at, v, n);
	rs->text[at + n] = '\0';
	rs->text_len += n + 1;
	return at;
}

static void set_row(void *arg, size_t table, const char *key, const char *parent,
                    const char *payload, size_t len, int last_of_race)
{
	struct row_set *rs = arg;
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 1024;
		if (!(rs->rows = realloc(rs->rows, rs->cap * sizeof *rs->rows))) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	rs->rows[rs->n].table = table;
	rs->rows[rs->n].key = text_put(rs, key, strlen(key));
	rs->rows[rs->n].parent = parent ? text_put(rs, parent, strlen(parent)) : NO_PARENT;
	rs->rows[rs->n].payload = text_put(rs, payload, len);
	rs->rows[rs->n].len = len;
	rs->rows[rs->n].last_of_race = last_of_race;
	rs->n++;
}

static const struct row_set *row_set_make(void)
{
	static struct row_set rs;
	if (rs.n > 0)
		return &rs;
	cpu_rows_each(set_row, &rs);
	return &rs;
}

static void wait_committed(struct event_base *base, struct store *s, size_t target);

/* Rows added and not yet committed, at most, in batches a connection:
 * raced's stages send rows only on demand, as the store commits them, so
 * the store never holds a whole import; the bench holds back likewise,
 * well above what keeps every connection's pipeline full
 * (STORE_MAX_IN_FLIGHT batches). */
#define CONNS_WINDOW_BATCHES 16

/* rs's rows into the store; the loop turns (without waiting) after each
 * race's rows, as an import's pipeline turns it between pages, and waits
 * there while more than `window` rows are uncommitted (0: no bound).
 * STORE_BENCH_NO_TURNS: neither (the rows all queued before any result is
 * read: the bench before 2026-12-07). */
static size_t row_set_add(const struct row_set *rs, struct event_base *base, struct store *s,
                          int64_t import_id, size_t window)
{
	int turns = !getenv("STORE_BENCH_NO_TURNS");
	size_t start = committed;
	for (size_t i = 0; i < rs->n; i++) {
		char err[ERR_MAX];
		const char *t = rs->text;
		if (store_add(s, rs->rows[i].table, import_id, t + rs->rows[i].key,
		              rs->rows[i].parent == NO_PARENT ? NULL : t + rs->rows[i].parent,
		              t + rs->rows[i].payload, rs->rows[i].len, err) != 0) {
			fprintf(stderr, "%s\n", err);
			exit(1);
		}
		if (turns && rs->rows[i].last_of_race) {
			event_base_loop(base, EVLOOP_NONBLOCK);
			if (window > 0 && i + 1 - (committed - start) > window)
				wait_committed(base, s, start + i + 1 - window);
		}
	}
	return rs->n;
}

/* cpu_rows_each's rows into the store as they are made (the loop does not
 * turn meanwhile).  Returns how many. */
static size_t cpu_rows(struct store *s, int64_t import_id)
{
	struct add_ctx a = { s, import_id };
	return cpu_rows_each(add_row, &a);
}

static long backend_pid(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE application_name = '" CPU_APP_NAME "'");
	long pid = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : -1;
	PQclear(r);
	if (pid <= 0) {
		fprintf(stderr, "cannot find the store's backend\n");
		exit(1);
	}
	return pid;
}

static void on_run_id(void *arg, int64_t id, const char *err)
{
	if (err || id <= 0) {
		fprintf(stderr, "store_begin_import: %s\n", err ? err : "no id");
		exit(1);
	}
	*(int64_t *)arg = id;
}

/* One pass: every row as a run begun as an import begins it (the store
 * probes which tables are empty: rows known new go by a plain INSERT);
 * prints backend and own CPU. */
static void cpu_pass(struct event_base *base, struct store *s, long pid, const char *what)
{
	struct cpu_sample a, b;
	size_t target = committed;
	int64_t import_id = 0;
	if (store_begin_import(s, &(struct store_run_begin){ .requested_by = "store_bench" },
	                       on_run_id, &import_id) != 0)
		exit(1);
	while (import_id == 0)
		event_base_loop(base, EVLOOP_ONCE);
	struct store_stats st0, st1;
	store_get_stats(s, &st0);
	double t0 = now_s();
	cpu_read(pid, &a);
	target += cpu_rows(s, import_id);
	for (size_t t = 0; t < 3; t++)
		flush_or_exit(s, t);
	while (committed < target)
		event_base_loop(base, EVLOOP_ONCE);
	cpu_read(pid, &b);
	store_get_stats(s, &st1);
	if (getenv("STORE_BENCH_TIMES"))  /* for perf report --time (perf record -k CLOCK_MONOTONIC) */
		printf("  %s: backend %ld, CLOCK_MONOTONIC %.6f to %.6f\n", what, pid, t0, now_s());
	size_t n = CPU_RACES * (1 + CPU_PER_RACE) + CPU_ATHLETES;
	printf("  %-9s backend %5.2f us/row (ticks %5.2f, %5.2f page faults/row), store_bench %5.2f us/row,"
	       " %zu rows plain\n",
	       what, (b.backend_sched - a.backend_sched) * 1e6 / (double)n,
	       (b.backend_ticks - a.backend_ticks) * 1e6 / (double)n,
	       (b.backend_faults - a.backend_faults) / (double)n,
	       (b.self - a.self) * 1e6 / (double)n, (size_t)(st1.rows_plain - st0.rows_plain));
}

static void bench_cpu(int collate_c)
{
	static const char *const tables[] = { "cpu_races", "cpu_entries", "cpu_athletes" };
	PGconn *c = PQconnectdb(conninfo);
	for (size_t t = 0; t < 3; t++) {
		char q[512];
		snprintf(q, sizeof q, "DROP TABLE IF EXISTS %s CASCADE", tables[t]);
		exec_ok(c, q);
		if (collate_c) {
			snprintf(q, sizeof q, "CREATE TABLE %s (key text COLLATE \"C\" PRIMARY KEY,"
			         " parent_key text COLLATE \"C\", payload jsonb NOT NULL, first_import bigint,"
			         " last_import bigint, updated_at timestamptz NOT NULL DEFAULT now())", tables[t]);
			exec_ok(c, q);
		}
	}
	char ci[1024];
	snprintf(ci, sizeof ci, "%s application_name=" CPU_APP_NAME, conninfo);
	struct event_base *base = event_base_new();
	const char *bs = getenv("STORE_BENCH_BATCH");
	struct store_conf conf = { .conninfo = ci, .batch_size = bs ? (uint32_t)atoi(bs) : CPU_BATCH,
	                           .tables = tables, .n_tables = 3 };
	struct store *s = open_store(base, &conf);
	long pid = backend_pid(c);
	cpu_pass(base, s, pid, "insert");
	if (!getenv("STORE_BENCH_INSERT_ONLY"))
		cpu_pass(base, s, pid, "re-import");
	store_free(s);
	event_base_free(base);
	PQfinish(c);
}

/* --- [database] connections ------------------------------------------- */

static const char *const conns_tables[] = { "conns_races", "conns_entries", "conns_athletes" };

#define CONNS_APP_NAME "store_bench_conns"

/* This process's CPU seconds (user + system). */
static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The store's backends (its write connections: no read-back is made). */
static size_t conns_pids(PGconn *c, long *pids, size_t max)
{
	PGresult *r = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE application_name = '"
	                        CONNS_APP_NAME "' ORDER BY pid");
	size_t n = 0;
	for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && n < max; i++)
		pids[n++] = atol(PQgetvalue(r, i, 0));
	PQclear(r);
	return n;
}

/* Their CPU seconds on CPU, summed (/proc/<pid>/schedstat). */
static double backends_cpu(const long *pids, size_t n)
{
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		struct cpu_sample cs;
		cpu_read(pids[i], &cs);
		sum += cs.backend_sched;
	}
	return sum;
}

/* CPU seconds of every process of the cluster (the postmaster's
 * children: backends, WAL writer, checkpointer...), from utime + stime;
 * 0 when PG_DIR (tests/lib/with-pg.sh) does not say where it is. */
static double cluster_cpu(void)
{
	const char *dir = getenv("PG_DIR");
	char path[4096];
	long pm = 0;
	if (!dir)
		return 0;
	snprintf(path, sizeof path, "%s/data/postmaster.pid", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pm) != 1)
		pm = 0;
	fclose(f);
	if (pm <= 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", pm, pm);
	if (!(f = fopen(path, "r")))
		return 0;
	double sum = 0;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		char sp[64], line[1024];
		unsigned long long ut = 0, st = 0;
		snprintf(sp, sizeof sp, "/proc/%ld/stat", pid);
		FILE *g = fopen(sp, "r");
		if (!g)
			continue;   /* gone meanwhile */
		char *p = fgets(line, sizeof line, g) ? strrchr(line, ')') : NULL;
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		                &ut, &st) == 2)
			sum += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
		fclose(g);
	}
	fclose(f);
	return sum;
}

/* The same from utime + stime (ticks), to subtract from cluster_cpu. */
static double backends_ticks(const long *pids, size_t n)
{
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		struct cpu_sample cs;
		cpu_read(pids[i], &cs);
		sum += cs.backend_ticks;
	}
	return sum;
}

/* CPU seconds the whole machine was busy (all CPUs: /proc/stat's first
 * line, every field but idle and iowait), or 0 when unreadable. */
static double machine_busy(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return 0;
	int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	               &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return 0;
	/* user nice system idle iowait irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

struct conns_cpu {
	double self_us, backends_us;  /* CPU us per row, each pass */
	double others_us;             /* the cluster's other processes (ticks) */
	double machine_us;            /* the whole machine busy (ticks) */
};

/* The conns part's batch size: CPU_BATCH, or STORE_BENCH_BATCH. */
static uint32_t conns_batch(void)
{
	const char *bs = getenv("STORE_BENCH_BATCH");
	return bs && atoi(bs) > 0 ? (uint32_t)atoi(bs) : CPU_BATCH;
}

/* The conns part's bound on rows uncommitted (row_set_add):
 * CONNS_WINDOW_BATCHES batches a connection, or STORE_BENCH_WINDOW rows
 * (0: none). */
static size_t conns_window(unsigned n_conns)
{
	const char *w = getenv("STORE_BENCH_WINDOW");
	if (w)
		return (size_t)strtoul(w, NULL, 10);
	return (size_t)CONNS_WINDOW_BATCHES * conns_batch() * n_conns;
}

#define STALL_S 30

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct store_stats st = { 0 };
	(void)fd;
	(void)what;
	store_get_stats(arg, &st);
	fprintf(stderr, "store_bench: no commit for %d s: %zu rows committed; store: state %s, added %llu,"
	        " committed %llu, batches %llu, queued %zu, in flight %zu, last error %s\n",
	        STALL_S, committed, store_state_name(st.state), (unsigned long long)st.rows_added,
	        (unsigned long long)st.rows_committed, (unsigned long long)st.batches_committed,
	        st.ops_queued, st.ops_in_flight, st.last_error ? st.last_error : "none");
	exit(1);
}

/* Turn the loop until target rows committed; exit if none commits for
 * STALL_S seconds (a stalled store says so rather than hang the bench). */
static void wait_committed(struct event_base *base, struct store *s, size_t target)
{
	struct event *stall = evtimer_new(base, on_stall, s);
	struct timeval tv = { STALL_S, 0 };
	size_t seen = committed;
	evtimer_add(stall, &tv);
	while (committed < target) {
		event_base_loop(base, EVLOOP_ONCE);
		if (committed != seen) {
			seen = committed;
			evtimer_add(stall, &tv);
		}
	}
	event_free(stall);
}

/* Rows/s of one first import and one unchanged re-import over n_conns
 * connections, into fresh tables; cpu (or NULL) gets the CPU per row of
 * this process and of the store's backends, each pass. */
static void conns_pass(unsigned n_conns, double *insert_rate, double *same_rate,
                       struct conns_cpu cpu[2])
{
	PGconn *c = PQconnectdb(conninfo);
	exec_ok(c, "SET client_min_messages = warning");  /* not the views' drop NOTICEs */
	for (size_t t = 0; t < 3; t++) {
		char q[128];
		snprintf(q, sizeof q, "DROP TABLE IF EXISTS %s CASCADE", conns_tables[t]);
		exec_ok(c, q);
	}
	exec_ok(c, "CHECKPOINT");
	char ci[1024];
	snprintf(ci, sizeof ci, "%s application_name=" CONNS_APP_NAME, conninfo);
	struct event_base *base = event_base_new();
	struct store_conf conf = { .conninfo = ci, .batch_size = conns_batch(),
	                           .tables = conns_tables, .n_tables = 3, .connections = n_conns };
	struct store *s = open_store(base, &conf);
	const struct row_set *rs = row_set_make();
	long pids[STORE_CONNECTIONS_MAX + 1];
	size_t n_pids = conns_pids(c, pids, STORE_CONNECTIONS_MAX + 1);
	double rates[2];
	for (int pass = 0; pass < 2; pass++) {
		double c0 = self_cpu(), b0 = backends_cpu(pids, n_pids), k0 = cluster_cpu();
		double bt0 = backends_ticks(pids, n_pids), m0 = machine_busy();
		double t0 = now_s();
		size_t target = committed;   /* before: rows commit while they are added */
		target += row_set_add(rs, base, s, pass + 1, conns_window(n_conns));
		for (size_t t = 0; t < 3; t++)
			flush_or_exit(s, t);
		wait_committed(base, s, target);
		size_t n = CPU_RACES * (1 + CPU_PER_RACE) + CPU_ATHLETES;
		rates[pass] = (double)n / (now_s() - t0);
		if (cpu) {
			cpu[pass].self_us = (self_cpu() - c0) * 1e6 / (double)n;
			cpu[pass].backends_us = (backends_cpu(pids, n_pids) - b0) * 1e6 / (double)n;
			cpu[pass].others_us = (cluster_cpu() - k0 - (backends_ticks(pids, n_pids) - bt0)) *
			                      1e6 / (double)n;
			cpu[pass].machine_us = (machine_busy() - m0) * 1e6 / (double)n;
		}
	}
	PQfinish(c);
	store_free(s);
	event_base_free(base);
	*insert_rate = rates[0];
	*same_rate = rates[1];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bench_conns(int runs)
{
	enum { N_COUNTS_MAX = 3, RUNS_MAX = 16 };
	unsigned counts[N_COUNTS_MAX] = { 1, 2, 4 };
	size_t N_COUNTS = N_COUNTS_MAX;
	/* STORE_BENCH_CONNS="2" (or "1 2"): only those counts, for a profile */
	const char *only = getenv("STORE_BENCH_CONNS");
	if (only) {
		N_COUNTS = 0;
		for (char *end; N_COUNTS < N_COUNTS_MAX && *only; only = end) {
			unsigned long v = strtoul(only, &end, 10);
			if (end == only || v == 0 || v > STORE_CONNECTIONS_MAX) {
				fprintf(stderr, "STORE_BENCH_CONNS: counts of 1 to %d, space-separated\n",
				        STORE_CONNECTIONS_MAX);
				exit(2);
			}
			counts[N_COUNTS++] = (unsigned)v;
			while (*end == ' ')
				end++;
		}
	}
	double ins[N_COUNTS_MAX][RUNS_MAX], same[N_COUNTS_MAX][RUNS_MAX];
	if (runs > RUNS_MAX)
		runs = RUNS_MAX;
	printf("[database] connections, %d rows per pass, batch %u, %d rounds (interleaved):\n",
	       CPU_RACES * (1 + CPU_PER_RACE) + CPU_ATHLETES, conns_batch(), runs);
	for (int r = 0; r < runs; r++)
		for (size_t i = 0; i < N_COUNTS; i++) {
			struct conns_cpu cpu[2];
			conns_pass(counts[i], &ins[i][r], &same[i][r], cpu);
			printf("  round %d, connections %u: insert %8.0f rows/s, re-import %8.0f rows/s;"
			       " CPU us/row (store_bench / backends / rest of the cluster / whole machine):"
			       " insert %.2f / %.2f / %.2f / %.2f, re-import %.2f / %.2f / %.2f / %.2f\n",
			       r + 1, counts[i], ins[i][r], same[i][r], cpu[0].self_us, cpu[0].backends_us,
			       cpu[0].others_us, cpu[0].machine_us, cpu[1].self_us, cpu[1].backends_us,
			       cpu[1].others_us, cpu[1].machine_us);
			fflush(stdout);
		}
	double base_ins = 0, base_same = 0;
	for (size_t i = 0; i < N_COUNTS; i++) {
		qsort(ins[i], (size_t)runs, sizeof(double), cmp_double);
		qsort(same[i], (size_t)runs, sizeof(double), cmp_double);
		double mi = ins[i][runs / 2], ms = same[i][runs / 2];
		if (i == 0) {
			base_ins = mi;
			base_same = ms;
		}
		printf("median, connections %u: insert %8.0f rows/s (%.2f x 1), re-import %8.0f rows/s (%.2f x 1)\n",
		       counts[i], mi, mi / base_ins, ms, ms / base_same);
	}
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

/* raced's heap settings (daemon/main.c, heap_keep: keep up to 4 MiB of
 * freed heap rather than trim it and fault it in again for the next
 * batch), so that the store's CPU here is what it is in raced; the bench
 * process without them faulted about 4 times as often. */
static void heap_as_raced(void)
{
#if defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD) && defined(M_MMAP_THRESHOLD)
	(void)mallopt(M_TRIM_THRESHOLD, 4 << 20);
	(void)mallopt(M_TOP_PAD, 512 << 10);
	(void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

int main(int argc, char **argv)
{
	heap_as_raced();
	conninfo = getenv("PG_CONNINFO");
	if (!conninfo) {
		fprintf(stderr, "PG_CONNINFO is not set: run under tests/lib/with-pg.sh\n");
		return 77;
	}
	const char *part = argc > 1 ? argv[1] : "all";
	const char *collation = argc > 2 ? argv[2] : "both";
	int runs = argc > 3 ? atoi(argv[3]) : CPU_REPEATS;
	if (strcmp(part, "conns") == 0) {
		int rounds = argc > 2 ? atoi(argv[2]) : CPU_REPEATS;
		if (rounds < 1) {
			fprintf(stderr, "usage: store_bench conns [RUNS]\n");
			return 2;
		}
		bench_conns(rounds);
		return 0;
	}
	if ((strcmp(part, "all") != 0 && strcmp(part, "cpu") != 0 && strcmp(part, "rate") != 0) ||
	    (strcmp(collation, "both") != 0 && strcmp(collation, "database") != 0 &&
	     strcmp(collation, "C") != 0) || runs < 1) {
		fprintf(stderr, "usage: store_bench [rate | cpu [both|database|C [RUNS]] | conns [RUNS]]\n");
		return 2;
	}
	if (strcmp(part, "rate") != 0) {
		printf("CPU per row, %d rows per pass, batch %d (%d runs each):\n",
		       CPU_RACES * (1 + CPU_PER_RACE) + CPU_ATHLETES, CPU_BATCH, runs);
		for (int collate_c = 0; collate_c < 2; collate_c++) {
			if (strcmp(collation, collate_c ? "database" : "C") == 0)
				continue;
			printf("key and parent_key %s:\n", collate_c ? "COLLATE \"C\"" : "in the database's collation");
			for (int i = 0; i < runs; i++)
				bench_cpu(collate_c);
		}
	}
	if (strcmp(part, "cpu") == 0)
		return 0;
	printf("%d rows of ~300-byte JSON payloads per pass\n", N_ROWS);
	uint32_t batches[] = { 100, 500, 2000 };
	for (size_t b = 0; b < 3; b++) {
		bench_store(batches[b]);
		bench_unnest(batches[b]);
		bench_copy(batches[b]);
	}
	return 0;
}
