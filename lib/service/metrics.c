/* metrics — see metrics.h.
 *
 * Design note: the families are tables (name, JSON key, help), written
 * family by family (OpenMetrics wants a family's samples together), each
 * sample once per stage, provider or state.  The writer is sticky: the
 * first failure (memory, METRICS_MAX_BYTES) stops every later write and is
 * reported once, at the end.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { W_OK, W_NOMEM, W_TOO_BIG };

struct writer {
	struct metrics_text *t;
	int status;
};

struct label {
	const char *name, *value;
};

/* The outcomes of a stage's requests, as import_stats() counts them. */
static const char *const outcomes[] = {"2xx", "304", "3xx", "4xx", "5xx", "transport"};
static const char *const import_states[] = {
	"idle", "running", "succeeded", "partial", "failed", "cancelled", "interrupted",
};
#define N_FINAL_STATES 5 /* import_states from "succeeded" on */
static const char *const store_states[] = {"connecting", "migrating", "ready", "backoff"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- text ---- */

static void grow(struct writer *w, size_t need)
{
	struct metrics_text *t = w->t;
	if (need > METRICS_MAX_BYTES) {
		w->status = W_TOO_BIG;
		return;
	}
	size_t cap = t->cap ? t->cap : 4096;
	while (cap < need)
		cap *= 2;
	char *b = realloc(t->buf, cap);
	if (!b) {
		w->status = W_NOMEM;
		return;
	}
	t->buf = b;
	t->cap = cap;
}

__attribute__((format(printf, 2, 3)))
static void put(struct writer *w, const char *fmt, ...)
{
	while (w->status == W_OK) {
		struct metrics_text *t = w->t;
		size_t room = t->cap - t->len;
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			w->status = W_NOMEM;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		grow(w, t->len + (size_t)n + 1);
	}
}

/* A label value: backslash, double quote and newline escaped. */
static void put_value(struct writer *w, const char *s)
{
	for (; *s && w->status == W_OK; s++) {
		if (*s == '\\')
			put(w, "\\\\");
		else if (*s == '"')
			put(w, "\\\"");
		else if (*s == '\n')
			put(w, "\\n");
		else
			put(w, "%c", *s);
	}
}

static void family(struct writer *w, const char *name, const char *type, const char *help)
{
	put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "name{a="x",b="y"} " (labels with a NULL name are left out). */
static void series(struct writer *w, const char *name, const struct label *l, size_t n)
{
	put(w, "%s", name);
	const char *sep = "{";
	for (size_t i = 0; i < n; i++) {
		if (!l[i].name)
			continue;
		put(w, "%s%s=\"", sep, l[i].name);
		put_value(w, l[i].value ? l[i].value : "");
		put(w, "\"");
		sep = ",";
	}
	put(w, "%s ", sep[0] == ',' ? "}" : "");
}

static void sample_u(struct writer *w, const char *name, const struct label *l, size_t n,
                     uint64_t v)
{
	series(w, name, l, n);
	put(w, "%" PRIu64 "\n", v);
}

static void sample_f(struct writer *w, const char *name, const struct label *l, size_t n,
                     double v)
{
	series(w, name, l, n);
	/* Whole numbers (times, limits) in full; others to 15 digits, which
	 * a double holds exactly. */
	if (v > -9.0e15 && v < 9.0e15 && v == (double)(int64_t)v)
		put(w, "%" PRId64 "\n", (int64_t)v);
	else
		put(w, "%.15g\n", v);
}

/* ---- JSON ---- */

static uint64_t get_u(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static const char *get_s(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

/* "2024-05-01T10:00:00Z" as seconds since the epoch; 0 for null. */
static double get_time(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return 0;
	return (double)timegm(&tm);
}

/* The running import's figures are not in the totals yet. */
static bool import_live(const json_t *stats, const json_t *totals)
{
	const json_t *id = json_object_get(json_object_get(stats, "import"), "id");
	return json_is_integer(id) &&
	       json_integer_value(id) != json_integer_value(json_object_get(totals, "last_id"));
}

/* ---- totals ---- */

/* Per stage, the counters the totals keep (and stage_counters shows). */
static const char *const stage_keys[] = {"done", "stored", "failed", "retried", "skipped", "pages"};

json_t *metrics_totals_new(void)
{
	return json_pack("{s:I,s:{},s:{}}", "last_id", (json_int_t)0, "stages", "imports");
}

static int add_u(json_t *o, const char *key, uint64_t n)
{
	return json_object_set_new(o, key, json_integer((json_int_t)(get_u(o, key) + n)));
}

/* The object o[key], made if missing; NULL when out of memory. */
static json_t *child(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	if (c)
		return c;
	return json_object_set_new(o, key, json_object()) == 0 ? json_object_get(o, key) : NULL;
}

static int fold_stage(json_t *tstages, const json_t *st)
{
	json_t *t = child(tstages, get_s(st, "name", ""));
	json_t *req = t ? child(t, "requests") : NULL;
	if (!req)
		return -1;
	for (size_t k = 0; k < COUNT(stage_keys); k++)
		if (add_u(t, stage_keys[k], get_u(st, stage_keys[k])) < 0)
			return -1;
	const json_t *sreq = json_object_get(st, "requests");
	for (size_t k = 0; k < COUNT(outcomes); k++)
		if (add_u(req, outcomes[k], get_u(sreq, outcomes[k])) < 0)
			return -1;
	return 0;
}

int metrics_fold(json_t *totals, const json_t *stats)
{
	if (!import_live(stats, totals))
		return 0;
	const json_t *imp = json_object_get(stats, "import");
	json_t *tstages = child(totals, "stages");
	json_t *imports = child(totals, "imports");
	if (!tstages || !imports)
		return -1;
	size_t i;
	const json_t *st;
	json_array_foreach(json_object_get(stats, "stages"), i, st)
		if (fold_stage(tstages, st) < 0)
			return -1;
	if (add_u(imports, get_s(imp, "state", "unknown"), 1) < 0)
		return -1;
	return json_object_set(totals, "last_id", json_object_get(imp, "id"));
}

/* ---- families ---- */

struct counter_family {
	const char *name, *key, *help;
};

#define N_PROVIDER_COUNTERS 9
#define N_STORE_COUNTERS 8

static const struct counter_family stage_counters[] = {
	{"raced_stage_items_total", "done", "Items taken from the stage's pages and passed on (per daemon)."},
	{"raced_stage_rows_stored_total", "stored", "Rows of the stage committed to its table (per daemon)."},
	{"raced_stage_failures_total", "failed", "Requests and items that failed for good (per daemon)."},
	{"raced_stage_retries_total", "retried", "Attempts retried after a transient failure (per daemon)."},
	{"raced_stage_skipped_total", "skipped", "Inputs skipped as already fetched in the import (per daemon)."},
	{"raced_stage_pages_total", "pages", "Pages fetched and read (per daemon)."},
};

static const struct counter_family stage_gauges[] = {
	{"raced_stage_buffered", "buffered", "Events waiting in the stage's buffer (now)."},
	{"raced_stage_buffer_size", "buffer_size", "The stage's buffer bound (buffer_size)."},
	{"raced_stage_in_flight", "in_flight", "Units of work running (now)."},
	{"raced_stage_concurrency", "concurrency", "The stage's concurrency limit in force."},
};

static const struct counter_family provider_counters[N_PROVIDER_COUNTERS] = {
	{"raced_provider_requests_total", "requests", "Attempts handed to libcurl (per daemon)."},
	{"raced_provider_retries_total", "retries", "Attempts retried (per daemon)."},
	{"raced_provider_received_bytes_total", "bytes", "Body bytes received on the wire (per daemon)."},
	{"raced_provider_throttled_total", "throttled", "Answers 429 Too Many Requests (per daemon)."},
	{"raced_provider_unavailable_total", "unavailable", "Answers 503 Service Unavailable (per daemon)."},
	{"raced_provider_timeouts_total", "timeouts", "Attempts that timed out (per daemon)."},
	{"raced_provider_connections_total", "connections", "Connections opened; over https, TLS handshakes (per daemon)."},
	{"raced_provider_http2_total", "http2", "Attempts answered over HTTP/2 (per daemon)."},
	{"raced_provider_quota_holds_total", "quota_holds", "Times admission waited for the provider's quota to reset (per daemon)."},
};

static const struct counter_family provider_gauges[] = {
	{"raced_provider_concurrency_limit", "limit", "Requests on the wire at once the provider allows now (max_connections, or the adaptive limit)."},
	{"raced_provider_concurrency_ceiling", "max_connections", "The static limit, or the adaptive limit's ceiling (max_connections, max_connections_ceiling)."},
	{"raced_provider_quota_held_until_seconds", "held_until_s", "While the provider's quota is spent, the Unix time its reset lets requests start again; else 0."},
	{"raced_provider_in_flight_requests", "in_flight", "Requests on the wire (now)."},
	{"raced_provider_waiting_requests", "waiting", "Requests waiting for a connection, a rate-limit token or a retry's backoff (now)."},
};

static const struct counter_family store_counters[N_STORE_COUNTERS] = {
	{"raced_store_batches_total", "batches", "Batches committed (per daemon)."},
	{"raced_store_rows_total", "rows_committed", "Rows committed in batches (per daemon)."},
	{"raced_store_rows_failed_total", "rows_failed", "Rows PostgreSQL refused (per daemon)."},
	{"raced_store_reconnects_total", "reconnects", "Database connections lost or refused (per daemon)."},
	{"raced_store_rows_plain_total", "rows_plain", "Rows written by a plain INSERT, known new (per daemon)."},
	{"raced_store_read_backs_by_parent_total", "read_backs_by_parent", "Read-backs of a 304 page's rows by a range of the parent_key index (per daemon)."},
	{"raced_store_read_backs_by_parent_missed_total", "read_backs_by_parent_missed", "Of those, read again by key: a row under another parent, or gone (per daemon)."},
	{"raced_store_warmups_total", "warmups", "Backends given the malloc warm-up before their first batch of rows (per daemon)."},
};

/* ---- counters across a reload ---- */

/* One counter in a stats object: obj[key], or obj[index] for an array. */
struct slot {
	json_t *obj;
	const char *key;
	size_t index;
};

static json_t *slot_get(const struct slot *sl)
{
	return sl->key ? json_object_get(sl->obj, sl->key) : json_array_get(sl->obj, sl->index);
}

static int slot_set(const struct slot *sl, double v, bool integer)
{
	json_t *j = integer ? json_integer((json_int_t)v) : json_real(v);
	return sl->key ? json_object_set_new(sl->obj, sl->key, j) : json_array_set_new(sl->obj, sl->index, j);
}

/* The group's counters restart from 0 when any of them went down since the
 * last scrape: each then carries its last value from then on. */
static int carry_group(json_t *totals, const char *group, const struct slot *sl, size_t n)
{
	json_t *g = child(child(totals, "carry") ? json_object_get(totals, "carry") : totals, group);
	json_t *seen = g ? child(g, "seen") : NULL, *carry = g ? child(g, "carry") : NULL;
	if (!seen || !carry)
		return -1;
	char key[16];
	bool reset = false;
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%zu", i);
		reset |= json_number_value(slot_get(&sl[i])) < json_number_value(json_object_get(seen, key));
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof key, "%zu", i);
		const json_t *raw = slot_get(&sl[i]);
		double v = json_number_value(raw), c = json_number_value(json_object_get(carry, key));
		if (reset)
			c += json_number_value(json_object_get(seen, key));
		if (json_object_set_new(seen, key, json_real(v)) < 0 ||
		    json_object_set_new(carry, key, json_real(c)) < 0 ||
		    slot_set(&sl[i], v + c, json_is_integer(raw)) < 0)
			return -1;
	}
	return 0;
}

#define N_STORE_SLOTS (N_STORE_COUNTERS + 2 + 64) /* + sum, count, buckets */

int metrics_carry(json_t *totals, json_t *stats)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(stats, "providers"), i, p) {
		struct slot sl[N_PROVIDER_COUNTERS];
		for (size_t k = 0; k < N_PROVIDER_COUNTERS; k++)
			sl[k] = (struct slot){p, provider_counters[k].key, 0};
		char group[96];
		snprintf(group, sizeof group, "provider %s", get_s(p, "name", ""));
		if (carry_group(totals, group, sl, N_PROVIDER_COUNTERS) < 0)
			return -1;
	}
	json_t *store = json_object_get(stats, "store");
	json_t *h = json_object_get(store, "commit_seconds");
	json_t *buckets = json_object_get(h, "buckets");
	struct slot sl[N_STORE_SLOTS];
	size_t n = 0;
	for (size_t k = 0; k < N_STORE_COUNTERS; k++)
		sl[n++] = (struct slot){store, store_counters[k].key, 0};
	sl[n++] = (struct slot){h, "sum", 0};
	sl[n++] = (struct slot){h, "count", 0};
	for (size_t k = 0; k < json_array_size(buckets) && n < N_STORE_SLOTS; k++)
		sl[n++] = (struct slot){buckets, NULL, k};
	return store && h ? carry_group(totals, "store", sl, n) : 0;
}

static uint64_t stage_total(const json_t *totals, const json_t *st, bool live, const char *key,
                            const char *outcome)
{
	const json_t *t = json_object_get(json_object_get(totals, "stages"), get_s(st, "name", ""));
	if (outcome)
		return get_u(json_object_get(t, "requests"), outcome) +
		       (live ? get_u(json_object_get(st, "requests"), outcome) : 0);
	return get_u(t, key) + (live ? get_u(st, key) : 0);
}

static void stage_families(struct writer *w, const json_t *stats, const json_t *totals)
{
	const json_t *stages = json_object_get(stats, "stages");
	bool live = import_live(stats, totals);
	size_t i;
	const json_t *st;
	for (size_t f = 0; f < COUNT(stage_counters); f++) {
		family(w, stage_counters[f].name, "counter", stage_counters[f].help);
		json_array_foreach(stages, i, st) {
			struct label l[] = {{"stage", get_s(st, "name", "")}};
			sample_u(w, stage_counters[f].name, l, 1,
			         stage_total(totals, st, live, stage_counters[f].key, NULL));
		}
	}
	family(w, "raced_stage_requests_total", "counter",
	       "Requests by the class of their final response: 2xx, 304, 3xx, 4xx, 5xx, or transport (none) (per daemon).");
	json_array_foreach(stages, i, st) {
		for (size_t k = 0; k < COUNT(outcomes); k++) {
			struct label l[] = {{"stage", get_s(st, "name", "")}, {"outcome", outcomes[k]}};
			sample_u(w, "raced_stage_requests_total", l, 2,
			         stage_total(totals, st, live, NULL, outcomes[k]));
		}
	}
	for (size_t f = 0; f < COUNT(stage_gauges); f++) {
		family(w, stage_gauges[f].name, "gauge", stage_gauges[f].help);
		json_array_foreach(stages, i, st) {
			struct label l[] = {{"stage", get_s(st, "name", "")}};
			sample_u(w, stage_gauges[f].name, l, 1, get_u(st, stage_gauges[f].key));
		}
	}
	family(w, "raced_stage_demand", "gauge",
	       "Demand a consumer has outstanding on the stage (now).");
	json_array_foreach(stages, i, st) {
		size_t j;
		const json_t *sub;
		json_array_foreach(json_object_get(st, "subscriptions"), j, sub) {
			struct label l[] = {{"stage", get_s(st, "name", "")},
			                    {"consumer", get_s(sub, "consumer", "")}};
			sample_u(w, "raced_stage_demand", l, 2, get_u(sub, "demand"));
		}
	}
}

static void table_families(struct writer *w, const json_t *rows, const char *label,
                           const struct counter_family *fam, size_t n, const char *type)
{
	for (size_t f = 0; f < n; f++) {
		family(w, fam[f].name, type, fam[f].help);
		size_t i;
		const json_t *row;
		json_array_foreach(rows, i, row) {
			struct label l[] = {{label, get_s(row, "name", "")}};
			sample_u(w, fam[f].name, l, 1, get_u(row, fam[f].key));
		}
	}
}

static void provider_families(struct writer *w, const json_t *stats)
{
	const json_t *providers = json_object_get(stats, "providers");
	table_families(w, providers, "provider", provider_counters, COUNT(provider_counters), "counter");
	table_families(w, providers, "provider", provider_gauges, COUNT(provider_gauges), "gauge");
	family(w, "raced_provider_rate_limit_per_second", "gauge",
	       "Requests per second the provider allows (rate_limit; 0 = unlimited).");
	size_t i;
	const json_t *p;
	json_array_foreach(providers, i, p) {
		struct label l[] = {{"provider", get_s(p, "name", "")}};
		sample_f(w, "raced_provider_rate_limit_per_second", l, 1,
		         json_number_value(json_object_get(p, "rate_limit")));
	}
}

/* A one-hot gauge: 1 for the state in force, 0 for the others. */
static void state_family(struct writer *w, const char *name, const char *help,
                         const char *const *states, size_t n, const char *current)
{
	family(w, name, "gauge", help);
	bool known = false;
	for (size_t i = 0; i < n; i++) {
		struct label l[] = {{"state", states[i]}};
		known |= strcmp(states[i], current) == 0;
		sample_u(w, name, l, 1, strcmp(states[i], current) == 0);
	}
	if (!known) {
		struct label l[] = {{"state", current}};
		sample_u(w, name, l, 1, 1);
	}
}

static void histogram(struct writer *w, const char *name, const char *help, const json_t *h)
{
	char key[128];
	family(w, name, "histogram", help);
	snprintf(key, sizeof key, "%s_bucket", name);
	const json_t *le = json_object_get(h, "le"), *buckets = json_object_get(h, "buckets");
	for (size_t i = 0; i < json_array_size(le); i++) {
		char bound[32];
		snprintf(bound, sizeof bound, "%g", json_number_value(json_array_get(le, i)));
		struct label l[] = {{"le", bound}};
		const json_t *c = json_array_get(buckets, i);
		sample_u(w, key, l, 1, json_is_integer(c) ? (uint64_t)json_integer_value(c) : 0);
	}
	struct label inf[] = {{"le", "+Inf"}};
	sample_u(w, key, inf, 1, get_u(h, "count"));
	snprintf(key, sizeof key, "%s_sum", name);
	sample_f(w, key, NULL, 0, json_number_value(json_object_get(h, "sum")));
	snprintf(key, sizeof key, "%s_count", name);
	sample_u(w, key, NULL, 0, get_u(h, "count"));
}

static void store_families(struct writer *w, const json_t *stats)
{
	const json_t *store = json_object_get(stats, "store");
	for (size_t f = 0; f < COUNT(store_counters); f++) {
		family(w, store_counters[f].name, "counter", store_counters[f].help);
		sample_u(w, store_counters[f].name, NULL, 0, get_u(store, store_counters[f].key));
	}
	histogram(w, "raced_store_commit_duration_seconds",
	          "From a batch sent to its commit (per daemon).",
	          json_object_get(store, "commit_seconds"));
	family(w, "raced_store_up", "gauge", "1 when the database is connected and set up.");
	sample_u(w, "raced_store_up", NULL, 0, strcmp(get_s(store, "state", ""), "connected") == 0);
	state_family(w, "raced_store_state", "The database connection's state (1 for the one in force).",
	             store_states, COUNT(store_states), get_s(store, "phase", "connecting"));
	family(w, "raced_store_pending_rows", "gauge", "Rows added and not yet committed (now).");
	sample_u(w, "raced_store_pending_rows", NULL, 0, get_u(store, "pending_rows"));
}

static void import_families(struct writer *w, const json_t *stats, const json_t *totals)
{
	const json_t *imp = json_object_get(stats, "import");
	family(w, "raced_import_id", "gauge", "The running or last import's id (0: none yet).");
	sample_u(w, "raced_import_id", NULL, 0, get_u(imp, "id"));
	state_family(w, "raced_import_state", "The running or last import's state (1 for the one in force).",
	             import_states, COUNT(import_states), get_s(imp, "state", "idle"));
	family(w, "raced_import_paused", "gauge", "1 while the running import is paused.");
	sample_u(w, "raced_import_paused", NULL, 0, json_is_true(json_object_get(imp, "paused")));
	family(w, "raced_import_start_time_seconds", "gauge",
	       "When the running or last import started, in seconds since the epoch (0: none).");
	sample_f(w, "raced_import_start_time_seconds", NULL, 0, get_time(imp, "started_at"));
	family(w, "raced_import_end_time_seconds", "gauge",
	       "When the last import ended, in seconds since the epoch (0: none, or one runs).");
	sample_f(w, "raced_import_end_time_seconds", NULL, 0, get_time(imp, "finished_at"));
	family(w, "raced_imports_total", "counter", "Imports ended, by final status (per daemon).");
	const json_t *ended = json_object_get(totals, "imports");
	for (size_t i = COUNT(import_states) - N_FINAL_STATES; i < COUNT(import_states); i++) {
		struct label l[] = {{"status", import_states[i]}};
		sample_u(w, "raced_imports_total", l, 1, get_u(ended, import_states[i]));
	}
}

int metrics_format(const json_t *stats, const json_t *totals, struct metrics_text *out, char *err)
{
	struct writer w = {.t = out, .status = W_OK};
	import_families(&w, stats, totals);
	stage_families(&w, stats, totals);
	provider_families(&w, stats);
	store_families(&w, stats);
	put(&w, "# EOF\n");
	if (w.status == W_NOMEM)
		return err_set(err, "metrics: out of memory");
	if (w.status == W_TOO_BIG)
		return err_set(err, "metrics: the text is over %u bytes (METRICS_MAX_BYTES)",
		               METRICS_MAX_BYTES);
	return 0;
}

void metrics_text_free(struct metrics_text *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}
