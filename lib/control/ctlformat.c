#include "ctlformat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Tables are small (a handful of stages or runs); cells are bounded. */
#define TABLE_COLS_MAX 16
#define TABLE_ROWS_MAX 256
#define CELL_MAX 64

struct table {
	size_t ncols, nrows;
	const char *align; /* 'l' or 'r' per column */
	char cells[TABLE_ROWS_MAX + 1][TABLE_COLS_MAX][CELL_MAX];
};

static struct table *table_new(const char *align, const char *const *headers)
{
	struct table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->align = align;
	t->ncols = strlen(align) < TABLE_COLS_MAX ? strlen(align) : TABLE_COLS_MAX;
	for (size_t i = 0; i < t->ncols; i++)
		snprintf(t->cells[0][i], CELL_MAX, "%s", headers[i]);
	t->nrows = 1;
	return t;
}

/* Returns the next row's cells, or NULL when the table is full. */
static char (*table_row(struct table *t))[CELL_MAX]
{
	if (!t || t->nrows > TABLE_ROWS_MAX)
		return NULL;
	return t->cells[t->nrows++];
}

static void table_print(FILE *out, struct table *t)
{
	if (!t)
		return;
	size_t width[TABLE_COLS_MAX] = { 0 };
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++)
			if (strlen(t->cells[r][c]) > width[c])
				width[c] = strlen(t->cells[r][c]);
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			bool last = c + 1 == t->ncols;
			if (t->align[c] == 'r')
				fprintf(out, "%*s", (int)width[c], t->cells[r][c]);
			else
				fprintf(out, "%-*s", last ? 0 : (int)width[c], t->cells[r][c]);
			if (!last)
				fputs("  ", out);
		}
		fputc('\n', out);
	}
	free(t);
}

/* A JSON scalar as text: integers as is, reals with one decimal, strings
 * as is, null and missing as "-". */
static void cell(char *out, const json_t *v)
{
	if (json_is_integer(v))
		snprintf(out, CELL_MAX, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, CELL_MAX, "%.1f", json_real_value(v));
	else if (json_is_string(v))
		snprintf(out, CELL_MAX, "%s", json_string_value(v));
	else if (json_is_boolean(v))
		snprintf(out, CELL_MAX, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(out, CELL_MAX, "-");
}

static void field(char *out, const json_t *obj, const char *key)
{
	cell(out, json_object_get(obj, key));
}

/* The limit in force: "16", "auto 14", or "held until 12:00:05Z" when a
 * quota is spent. */
static void limit_cell(char *out, const json_t *pv)
{
	char n[CELL_MAX];
	const char *until = json_string_value(json_object_get(pv, "held_until"));
	field(n, pv, "limit");
	if (until)
		snprintf(out, CELL_MAX, "held until %.20s", strchr(until, 'T') ? strchr(until, 'T') + 1 : until);
	else if (json_is_true(json_object_get(pv, "adaptive")))
		snprintf(out, CELL_MAX, "auto %.30s", n);
	else
		snprintf(out, CELL_MAX, "%.30s", n);
}

/* "used/size" */
static void pair(char *out, const json_t *obj, const char *a, const char *b)
{
	char x[CELL_MAX], y[CELL_MAX];
	field(x, obj, a);
	field(y, obj, b);
	snprintf(out, CELL_MAX, "%.30s/%.30s", x, y);
}

static double number(const json_t *v)
{
	return json_is_number(v) ? json_number_value(v) : 0.0;
}

int ctlformat_health(const json_t *result, char *line, size_t size)
{
	const char *status = json_string_value(json_object_get(result, "status"));
	const char *message = json_string_value(json_object_get(result, "message"));
	static const struct { const char *status, *label; int code; } map[] = {
		{ "ok", "OK", HEALTH_OK },
		{ "warning", "WARNING", HEALTH_WARNING },
		{ "critical", "CRITICAL", HEALTH_CRITICAL },
	};
	for (size_t i = 0; status && i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(status, map[i].status) == 0) {
			snprintf(line, size, "RACED %s - %s", map[i].label, message ? message : status);
			return map[i].code;
		}
	}
	snprintf(line, size, "RACED UNKNOWN - raced reported health status '%s'",
	         status ? status : "(none)");
	return HEALTH_UNKNOWN;
}

int ctlformat_health_failure(int class, const char *err, char *line, size_t size)
{
	/* The daemon is not there, or there and not answering: the service is
	 * down, as check_tcp says of a refused connection or a timeout. */
	bool down = class == -ENOENT || class == -ECONNREFUSED || class == -ETIMEDOUT ||
	            class == -ECONNRESET;
	snprintf(line, size, "RACED %s - %s", down ? "CRITICAL" : "UNKNOWN", err);
	return down ? HEALTH_CRITICAL : HEALTH_UNKNOWN;
}

/* Seconds as "42s", "3m05s" or "2h07m". */
static void duration(char *out, size_t size, long long secs)
{
	if (secs < 60)
		snprintf(out, size, "%llds", secs);
	else if (secs < 3600)
		snprintf(out, size, "%lldm%02llds", secs / 60, secs % 60);
	else
		snprintf(out, size, "%lldh%02lldm", secs / 3600, secs / 60 % 60);
}

static void import_line(FILE *out, const json_t *imp)
{
	if (!json_is_object(imp)) {
		fprintf(out, "import: none\n");
		return;
	}
	char id[CELL_MAX], state[CELL_MAX], started[CELL_MAX];
	field(id, imp, "id");
	field(state, imp, "state");
	field(started, imp, "started_at");
	if (strcmp(state, "idle") == 0 && strcmp(id, "-") == 0) {
		fprintf(out, "import: none yet (idle)\n");
		return;
	}
	fprintf(out, "import %s: %s%s, started %s", id, state,
	        json_is_true(json_object_get(imp, "paused")) ? " (paused)" : "", started);
	const json_t *fin = json_object_get(imp, "finished_at");
	if (json_is_string(fin))
		fprintf(out, ", finished %s", json_string_value(fin));
	const json_t *elapsed = json_object_get(imp, "elapsed_s");
	char d[CELL_MAX];
	if (json_is_integer(elapsed)) {
		duration(d, sizeof d, json_integer_value(elapsed));
		fprintf(out, json_is_string(fin) ? ", took %s" : ", %s so far", d);
	}
	const json_t *eta = json_object_get(imp, "eta_s");
	if (strcmp(state, "running") == 0 && json_is_integer(eta)) {
		duration(d, sizeof d, json_integer_value(eta));
		fprintf(out, ", about %s left (at this import's average rate, to import %lld's counts)", d,
		        (long long)json_integer_value(json_object_get(imp, "expected_from")));
	}
	fputc('\n', out);
}

/* What import state saved, a row a stage: requests answered with a body
 * and with 304, bytes received, rows written, items unchanged, inputs
 * skipped as fresh (`refresh`) and as done (a resumed run).  stages is an
 * array of objects with "name" (stats), or, with names NULL, an object
 * of them by stage name (a run's counts). */
static void state_table(FILE *out, const json_t *stages, const json_t *by_name)
{
	static const char *const h[] = { "STAGE", "REQUESTS", "304", "BYTES", "WRITTEN",
	                                  "UNCHANGED", "FRESH", "DONE-BEFORE" };
	static const char *const keys[] = { "requests_body", "requests_304", "bytes", "stored",
	                                    "unchanged", "skipped_fresh", "skipped_done" };
	struct table *t = table_new("lrrrrrrr", h);
	size_t i;
	const char *name;
	const json_t *st;
	if (by_name) {
		json_object_foreach((json_t *)by_name, name, st) {
			char (*row)[CELL_MAX] = table_row(t);
			if (!row)
				break;
			snprintf(row[0], CELL_MAX, "%s", name);
			for (size_t k = 0; k < 7; k++)
				field(row[1 + k], st, keys[k]);
		}
	} else {
		json_array_foreach(stages, i, st) {
			char (*row)[CELL_MAX] = table_row(t);
			if (!row)
				break;
			field(row[0], st, "name");
			for (size_t k = 0; k < 7; k++)
				field(row[1 + k], st, keys[k]);
		}
	}
	table_print(out, t);
}

void ctlformat_stats(FILE *out, const json_t *result)
{
	import_line(out, json_object_get(result, "import"));

	const json_t *stages = json_object_get(result, "stages");
	static const char *const sh[] = { "STAGE", "DEMAND", "BUFFER", "IN-FLIGHT", "QUEUED",
	                                  "DONE", "FAILED", "RETRIED", "EMITTED", "RATE/S", "AVG/S" };
	struct table *t = table_new("lrrrrrrrrrr", sh);
	const json_t *imp = json_object_get(result, "import");
	bool running = json_is_string(json_object_get(imp, "state")) &&
	               strcmp(json_string_value(json_object_get(imp, "state")), "running") == 0;
	bool paused = running && json_is_true(json_object_get(imp, "paused"));
	static const char *const subh[] = { "SUBSCRIPTION", "DEMAND", "MAX", "MIN", "PENDING" };
	struct table *subs = table_new("lrrrr", subh);
	size_t nsubs = 0;
	size_t i;
	const json_t *st;
	json_array_foreach(stages, i, st) {
		char (*row)[CELL_MAX] = table_row(t);
		if (!row)
			break;
		const json_t *sl = json_object_get(st, "subscriptions");
		long long demand = 0;
		size_t j;
		const json_t *sub;
		json_array_foreach(sl, j, sub) {
			demand += json_integer_value(json_object_get(sub, "demand"));
			char (*sr)[CELL_MAX] = table_row(subs);
			if (!sr)
				continue;
			nsubs++;
			char prod[CELL_MAX], cons[CELL_MAX];
			field(prod, st, "name");
			field(cons, sub, "consumer");
			snprintf(sr[0], CELL_MAX, "%.28s -> %.28s", prod, cons);
			field(sr[1], sub, "demand");
			field(sr[2], sub, "max_demand");
			field(sr[3], sub, "min_demand");
			field(sr[4], sub, "pending");
		}
		field(row[0], st, "name");
		if (json_is_array(sl))
			snprintf(row[1], CELL_MAX, "%lld", demand);
		else
			snprintf(row[1], CELL_MAX, "-");
		pair(row[2], st, "buffered", "buffer_size");
		pair(row[3], st, "in_flight", "concurrency");
		field(row[4], st, "queued");
		field(row[5], st, "done");
		const json_t *expected = json_object_get(st, "expected");
		if (running && json_is_integer(expected)) {
			char done[CELL_MAX];
			snprintf(done, sizeof done, "%s", row[5]);
			snprintf(row[5], CELL_MAX, "%.30s/~%lld", done, (long long)json_integer_value(expected));
		}
		field(row[6], st, "failed");
		field(row[7], st, "retried");
		field(row[8], st, "emitted");
		/* RATE/S is the last 5 s: while paused it only winds down, and
		 * after the import it is 0; AVG/S is over the whole import. */
		if (paused)
			snprintf(row[9], CELL_MAX, "paused");
		else if (running)
			field(row[9], st, "rate_per_s");
		else
			snprintf(row[9], CELL_MAX, "-");
		field(row[10], st, "rate_avg_per_s");
	}
	fprintf(out, "\nper stage, this import:\n");
	table_print(out, t);
	fputc('\n', out);
	state_table(out, stages, NULL);
	if (nsubs) {
		fputc('\n', out);
		table_print(out, subs);
	} else {
		free(subs);
	}

	const json_t *store = json_object_get(result, "store");
	fprintf(out, "\nsince raced started (all imports):");
	if (json_is_object(store)) {
		char state[CELL_MAX], rows[CELL_MAX], batches[CELL_MAX], rec[CELL_MAX], rd[CELL_MAX];
		field(state, store, "state");
		field(rows, store, "pending_rows");
		field(batches, store, "batches");
		field(rec, store, "reconnects");
		field(rd, store, "reader");
		fprintf(out, "\nstore: database %s, %s rows pending, %s batches committed, %s reconnects,"
		        " read-back connection %s\n", state, rows, batches, rec, rd);
	}

	const json_t *providers = json_object_get(result, "providers");
	if (json_array_size(providers) > 0) {
		static const char *const ph[] = { "PROVIDER", "REQUESTS", "RETRIES", "FAILED",
		                                  "IN-FLIGHT", "WAITING", "BYTES", "LIMIT", "429S",
		                                  "CONNECTIONS", "HTTP/2" };
		struct table *p = table_new("lrrrrrrlrrr", ph);
		const json_t *pv;
		json_array_foreach(providers, i, pv) {
			char (*row)[CELL_MAX] = table_row(p);
			if (!row)
				break;
			static const char *const keys[] = { "name", "requests", "retries", "failed",
			                                    "in_flight", "waiting", "bytes" };
			for (size_t k = 0; k < 7; k++)
				field(row[k], pv, keys[k]);
			limit_cell(row[7], pv);
			field(row[8], pv, "throttled");
			field(row[9], pv, "connections");
			field(row[10], pv, "http2");
		}
		fputc('\n', out);
		table_print(out, p);
		json_array_foreach(providers, i, pv) {
			const char *why = json_string_value(json_object_get(pv, "limit_reason"));
			char name[CELL_MAX], lim[CELL_MAX], ceiling[CELL_MAX];
			if (!why || !*why)
				continue;
			field(name, pv, "name");
			field(lim, pv, "limit");
			field(ceiling, pv, "max_connections");
			fprintf(out, "%s: adaptive limit %s (ceiling %s), last change: %s\n", name, lim, ceiling, why);
		}
	}
}

/* Counts of a run that kept import state (requests_body per stage). */
static bool has_state_counts(const json_t *counts)
{
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)counts, k, v)
		if (json_object_get(v, "requests_body"))
			return true;
	return false;
}

void ctlformat_status(FILE *out, const json_t *result)
{
	const json_t *runs = json_object_get(result, "runs");
	if (json_array_size(runs) == 0) {
		fprintf(out, "no import runs yet\n");
		return;
	}
	/* Count columns: the union of the runs' count keys, first seen first. */
	const char *keys[TABLE_COLS_MAX];
	size_t nkeys = 0;
	size_t i;
	const json_t *run;
	/* "errors" goes last whatever the order the database gave (jsonb
	 * orders keys by length): a run without counts, or with only some,
	 * must not move the columns. */
	bool errors = false;
	json_array_foreach(runs, i, run) {
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)json_object_get(run, "counts"), k, v) {
			bool seen = strcmp(k, "errors") == 0;
			errors = errors || seen;
			for (size_t j = 0; j < nkeys; j++)
				seen = seen || strcmp(keys[j], k) == 0;
			if (!seen && nkeys < TABLE_COLS_MAX - 6)
				keys[nkeys++] = k;
		}
	}
	if (errors)
		keys[nkeys++] = "errors";
	const char *headers[TABLE_COLS_MAX] = { "ID", "STATUS", "STARTED", "FINISHED", "BY" };
	char upper[TABLE_COLS_MAX][CELL_MAX];
	char align[TABLE_COLS_MAX + 1] = "rllll";
	for (size_t j = 0; j < nkeys; j++) {
		size_t n = 0;
		for (; keys[j][n] && n < CELL_MAX - 1; n++)
			upper[j][n] = (char)(keys[j][n] >= 'a' && keys[j][n] <= 'z' ? keys[j][n] - 32 : keys[j][n]);
		upper[j][n] = '\0';
		headers[5 + j] = upper[j];
		align[5 + j] = 'r';
	}
	align[5 + nkeys] = '\0';
	struct table *t = table_new(align, headers);
	json_array_foreach(runs, i, run) {
		char (*row)[CELL_MAX] = table_row(t);
		if (!row)
			break;
		field(row[0], run, "id");
		field(row[1], run, "status");
		field(row[2], run, "started_at");
		field(row[3], run, "finished_at");
		field(row[4], run, "requested_by");
		const json_t *counts = json_object_get(run, "counts");
		for (size_t j = 0; j < nkeys; j++) {
			/* Counts kept per stage as an object (a stale run): its rows stored. */
			const json_t *v = json_object_get(counts, keys[j]);
			cell(row[5 + j], json_is_object(v) ? json_object_get(v, "stored") : v);
		}
	}
	table_print(out, t);
	const json_t *one = json_array_get(runs, 0);
	/* The daemon flattens "counts" to stored rows a stage and keeps the
	 * per-stage objects as "details" (daemon_control.c). */
	const json_t *details = json_object_get(one, "details");
	if (json_array_size(runs) == 1 && has_state_counts(details)) {
		long long resumes = json_integer_value(json_object_get(one, "resumes"));
		if (resumes > 0) {
			char at[CELL_MAX];
			field(at, one, "resumed_at");
			fprintf(out, "\nresumed %lld time%s, last at %s; DONE-BEFORE counts the inputs "
			        "it found already done\n", resumes, resumes == 1 ? "" : "s", at);
		}
		fputc('\n', out);
		state_table(out, NULL, details);
	}
	const json_t *groups = json_object_get(one, "error_groups");
	if (json_array_size(runs) == 1 && json_array_size(groups) > 0) {
		fputc('\n', out);
		ctlformat_error_groups(out, groups);
	}
}

/* Appends to line, bounded by size; *used may pass size (then nothing more
 * is written). */
static void append(char *line, size_t size, size_t *used, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void append(char *line, size_t size, size_t *used, const char *fmt, ...)
{
	if (*used >= size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line + *used, size - *used, fmt, ap);
	va_end(ap);
	*used += n > 0 ? (size_t)n : 0;
}

void ctlformat_progress(const json_t *stats, char *line, size_t size)
{
	const json_t *imp = json_object_get(stats, "import");
	char id[CELL_MAX], state[CELL_MAX];
	field(id, imp, "id");
	field(state, imp, "state");
	bool paused = json_is_true(json_object_get(imp, "paused"));
	bool running = strcmp(state, "running") == 0;
	size_t used = 0;
	if (size)
		line[0] = '\0';
	append(line, size, &used, "import %s %s%s:", id, state, paused ? " (paused)" : "");
	long long failed = 0;
	double rate = 0, avg = 0;
	bool have_avg = false;
	size_t i;
	const json_t *st;
	json_array_foreach(json_object_get(stats, "stages"), i, st) {
		char name[CELL_MAX], done[CELL_MAX];
		field(name, st, "name");
		field(done, st, "done");
		failed += json_integer_value(json_object_get(st, "failed"));
		rate += number(json_object_get(st, "rate_per_s"));
		const json_t *a = json_object_get(st, "rate_avg_per_s");
		have_avg = have_avg || json_is_number(a);
		avg += number(a);
		append(line, size, &used, "%s %s %s", i ? "," : "", name, done);
		const json_t *expected = json_object_get(st, "expected");
		if (running && json_is_integer(expected))
			append(line, size, &used, " of ~%lld", (long long)json_integer_value(expected));
	}
	append(line, size, &used, "; %lld failed", failed);
	const json_t *elapsed = json_object_get(imp, "elapsed_s");
	char took[CELL_MAX] = "";
	if (json_is_integer(elapsed))
		duration(took, sizeof took, json_integer_value(elapsed));
	if (running && paused) {
		/* The rate of the last seconds falls to nothing while paused:
		 * the state says it better than a number going stale. */
		append(line, size, &used, "; paused");
	} else if (running) {
		append(line, size, &used, "; %.1f/s", rate);
		if (have_avg)
			append(line, size, &used, " (last 5 s), %.1f/s on average", avg);
		const json_t *eta = json_object_get(imp, "eta_s");
		char left[CELL_MAX];
		if (json_is_integer(eta)) {
			duration(left, sizeof left, json_integer_value(eta));
			append(line, size, &used, "; about %s left (import %lld's counts)", left,
			       (long long)json_integer_value(json_object_get(imp, "expected_from")));
		}
	} else if (have_avg) {
		/* Ended: the rate of the last seconds is 0; the whole import's
		 * average is the figure that means something. */
		append(line, size, &used, "; %.1f/s on average%s%s", avg, took[0] ? " over " : "", took);
	}
}

static const char *text(const json_t *obj, const char *key);

/* Each text of list, a line each after head. */
static void change_lines(FILE *out, const char *head, const json_t *list)
{
	size_t i;
	const json_t *t;
	json_array_foreach(list, i, t)
		if (json_is_string(t))
			fprintf(out, "  %s%s\n", head, json_string_value(t));
}

void ctlformat_reload(FILE *out, const json_t *result)
{
	const char *path = json_string_value(json_object_get(result, "config"));
	const json_t *applied = json_object_get(result, "applied"), *waiting = json_object_get(result, "waiting"),
	             *restart = json_object_get(result, "restart");
	char waits[64];
	snprintf(waits, sizeof waits, "when import %lld ends: ",
	         (long long)json_integer_value(json_object_get(result, "waits_for_import")));
	fprintf(out, "configuration reloaded%s%s\n", path ? " from " : "", path ? path : "");
	change_lines(out, "applied now: ", applied);
	change_lines(out, waits, waiting);
	change_lines(out, "at the next restart: ", restart);
	if (json_is_array(applied) && !json_array_size(applied) && !json_array_size(waiting) &&
	    !json_array_size(restart))
		fprintf(out, "  nothing changed\n");
}

void ctlformat_config(FILE *out, const json_t *result)
{
	const char *path = json_string_value(json_object_get(result, "config"));
	const char *base = path && strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const json_t *keys = json_object_get(result, "keys"), *k;
	size_t i, w[4] = {strlen("SECTION"), strlen("KEY"), strlen("VALUE"), strlen("SOURCE")};
	char section[CELL_MAX], source[CELL_MAX];
	fprintf(out, "configuration in force: %s\n", path ? path : "-");
	/* two passes: the widths, then the rows */
	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], "SECTION", (int)w[1], "KEY", (int)w[2],
			        "VALUE", (int)w[3], "SOURCE", "RELOAD");
		json_array_foreach(keys, i, k) {
			const char *name = json_string_value(json_object_get(k, "name"));
			const json_t *line = json_object_get(k, "line");
			const json_t *value = json_object_get(k, "value");
			snprintf(section, sizeof section, "[%s%s%s]", text(k, "section"), name ? " " : "", name ? name : "");
			if (json_is_integer(line))
				snprintf(source, sizeof source, "%s:%lld", base ? base : "-", (long long)json_integer_value(line));
			else
				snprintf(source, sizeof source, "%s", text(k, "source"));
			const char *v = json_is_string(value) ? json_string_value(value) : "(not set)";
			const char *cells[4] = {section, text(k, "key"), v, source};
			for (size_t c = 0; c < 4 && !pass; c++)
				w[c] = strlen(cells[c]) > w[c] ? strlen(cells[c]) : w[c];
			if (pass)
				fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", (int)w[0], cells[0], (int)w[1], cells[1],
				        (int)w[2], cells[2], (int)w[3], cells[3], text(k, "reload"));
		}
	}
}

void ctlformat_result(FILE *out, const char *cmd, const json_t *result)
{
	const json_t *id = json_object_get(result, "import_id");
	if (strcmp(cmd, "start-import") == 0 && json_is_integer(id)) {
		fprintf(out, "import %lld started\n", (long long)json_integer_value(id));
	} else if (strcmp(cmd, "cancel") == 0 && json_is_integer(id)) {
		fprintf(out, "import %lld cancelled\n", (long long)json_integer_value(id));
	} else if (strcmp(cmd, "pause") == 0 && json_is_integer(id)) {
		fprintf(out, "import %lld paused: no new requests; in-flight ones finish\n",
		        (long long)json_integer_value(id));
	} else if (strcmp(cmd, "resume") == 0 && json_is_integer(id)) {
		fprintf(out, "import %lld resumed\n", (long long)json_integer_value(id));
	} else if (strcmp(cmd, "reload") == 0) {
		ctlformat_reload(out, result);
	} else if (strcmp(cmd, "version") == 0 && json_is_string(json_object_get(result, "version"))) {
		fprintf(out, "raced %s\n", json_string_value(json_object_get(result, "version")));
	} else if (strcmp(cmd, "help") == 0 && json_is_array(json_object_get(result, "commands"))) {
		size_t i;
		const json_t *c;
		json_array_foreach(json_object_get(result, "commands"), i, c)
			fprintf(out, "%-40s %s\n", json_string_value(json_object_get(c, "usage")),
			        json_string_value(json_object_get(c, "summary")));
	} else if (json_is_string(json_object_get(result, "message"))) {
		fprintf(out, "%s\n", json_string_value(json_object_get(result, "message")));
	} else {
		char *s = json_dumps(result, JSON_COMPACT);
		fprintf(out, "%s\n", s ? s : "{}");
		free(s);
	}
}

/* The string `key` of obj, whole (a cause may outgrow a cell), or "-". */
static const char *text(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "-";
}

void ctlformat_error_groups(FILE *out, const json_t *groups)
{
	size_t ws = strlen("STAGE"), wc = strlen("CAUSE"), wn = strlen("COUNT"), i, j;
	const json_t *g, *url;
	char count[CELL_MAX];
	json_array_foreach(groups, i, g) {
		field(count, g, "count");
		ws = strlen(text(g, "stage")) > ws ? strlen(text(g, "stage")) : ws;
		wc = strlen(text(g, "cause")) > wc ? strlen(text(g, "cause")) : wc;
		wn = strlen(count) > wn ? strlen(count) : wn;
	}
	fprintf(out, "%-*s  %-*s  %*s\n", (int)ws, "STAGE", (int)wc, "CAUSE", (int)wn, "COUNT");
	json_array_foreach(groups, i, g) {
		field(count, g, "count");
		fprintf(out, "%-*s  %-*s  %*s\n", (int)ws, text(g, "stage"), (int)wc, text(g, "cause"),
		        (int)wn, count);
		json_array_foreach(json_object_get(g, "urls"), j, url)
			if (json_is_string(url))
				fprintf(out, "    %s\n", json_string_value(url));
	}
}

void ctlformat_errors(FILE *out, const json_t *result)
{
	char id[CELL_MAX], status[CELL_MAX];
	field(id, result, "import_id");
	field(status, result, "status");
	long long n = json_integer_value(json_object_get(result, "errors"));
	const json_t *groups = json_object_get(result, "groups");
	if (n == 0 && json_array_size(groups) == 0) {
		fprintf(out, "import %s %s: no errors\n", id, status);
		return;
	}
	size_t ng = json_array_size(groups);
	fprintf(out, "import %s %s: %lld error%s in %zu group%s\n", id, status, n,
	        n == 1 ? "" : "s", ng, ng == 1 ? "" : "s");
	ctlformat_error_groups(out, groups);
}
