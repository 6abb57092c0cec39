/* import_store — see import_store.h.
 *
 * Design note: per table the consumer counts `refused` (rows of the next
 * commits that PostgreSQL refused: acknowledged, not stored) and
 * `unstored` (events the store never took: acknowledged with the next
 * commit).  Acknowledging is what lets the engine send more, so an item
 * that will never commit must still be acknowledged, or the stage stalls.
 */
#include "import_store.h"

#include "error.h"
#include "import_columns.h"
#include "import_input.h"
#include "import_item.h"
#include "stage.h"
#include "store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows and placeholders (unchanged items) given to the store, in order, as
 * runs of one kind: committed() acknowledges them in that order. */
struct run {
	size_t n;
	bool unchanged;
};

struct table {
	const char *name;
	struct stage_sub *sub;  /* NULL once detached */
	uint64_t stored;
	uint64_t unchanged;     /* placeholders acknowledged */
	struct run *runs;       /* a ring of cap runs from head, count of them used */
	size_t runs_head, runs_count, runs_cap;
	uint64_t refused;       /* of the rows acknowledged next: refused, not stored */
	size_t unstored;        /* events the store refused, acked with the next commit */
	bool table_failed;      /* the table refused a batch (dropped, altered) */
	struct import_columns *columns;  /* typed columns, or NULL */
	size_t n_columns;
};

struct import_store {
	struct store *store;
	int64_t import_id;
	struct event *linger_ev;
	struct import_store_hooks hooks;
	struct table *tables;
	size_t n;
};

static void linger(struct import_store *is)
{
	struct timeval tv = {0, IMPORT_STORE_LINGER_MS * 1000};
	evtimer_add(is->linger_ev, &tv);
}

/* Send table i's partial batch; if it cannot go (out of memory), its rows
 * stay pending and the linger timer tries again. */
static void flush(struct import_store *is, size_t i)
{
	char err[ERR_MAX];
	if (store_flush(is->store, i, err) == 0)
		return;
	is->hooks.held(is->hooks.arg, i, err);
	linger(is);
}

static void linger_expired(evutil_socket_t fd, short what, void *arg)
{
	struct import_store *is = arg;
	(void)fd;
	(void)what;
	for (size_t i = 0; i < is->n; i++)
		if (store_pending(is->store, i) > 0)
			flush(is, i);
}

static void sink_committed(void *arg, size_t table, size_t n)
{
	import_store_committed(arg, table, n);
}

static void sink_rows_refused(void *arg, size_t table, size_t n, const char *key,
                              const char *err)
{
	import_store_rows_refused(arg, table, n, key, err);
}

static void sink_table_refused(void *arg, size_t table, size_t n, const char *err)
{
	import_store_table_refused(arg, table, n, err);
}

static void sink_input_read(void *arg, size_t table, uint64_t tag, struct store_input_state *st,
                            const char *err)
{
	struct import_store *is = arg;
	is->hooks.input_read(is->hooks.arg, table, tag, st, err);
}

static void sink_items_read(void *arg, size_t table, uint64_t tag, struct store_items *items,
                            const char *err)
{
	struct import_store *is = arg;
	is->hooks.items_read(is->hooks.arg, table, tag, items, err);
}

static void sink_stage_read(void *arg, size_t table, uint64_t tag, struct store_stage_chunk *chunk,
                            const char *err)
{
	struct import_store *is = arg;
	if (is->hooks.stage_read)
		is->hooks.stage_read(is->hooks.arg, table, tag, chunk, err);
	else
		store_stage_chunk_free(chunk);
}

struct import_store *import_store_new(struct event_base *base, struct store *store,
                                      int64_t import_id, size_t n_tables,
                                      const struct import_store_hooks *hooks)
{
	struct import_store *is = calloc(1, sizeof *is);
	if (!is)
		return NULL;
	is->store = store;
	is->import_id = import_id;
	is->hooks = *hooks;
	is->n = n_tables;
	is->tables = calloc(n_tables ? n_tables : 1, sizeof *is->tables);
	is->linger_ev = evtimer_new(base, linger_expired, is);
	if (!is->tables || !is->linger_ev) {
		import_store_free(is);
		return NULL;
	}
	struct store_sink sink = {.committed = sink_committed, .rows_refused = sink_rows_refused,
	                          .table_refused = sink_table_refused,
	                          .input_read = sink_input_read, .items_read = sink_items_read,
	                          .stage_read = sink_stage_read, .arg = is};
	store_attach_sink(store, &sink);
	return is;
}

void import_store_free(struct import_store *is)
{
	if (!is)
		return;
	store_detach_sink(is->store, is);
	if (is->linger_ev)
		event_free(is->linger_ev);
	for (size_t i = 0; i < is->n; i++) {
		free(is->tables[i].runs);
		import_columns_free(is->tables[i].columns);
	}
	free(is->tables);
	free(is);
}

void import_store_attach(struct import_store *is, size_t table, const char *name,
                         struct stage_sub *sub)
{
	if (table < is->n) {
		is->tables[table].name = name;
		is->tables[table].sub = sub;
	}
}

int import_store_columns(struct import_store *is, size_t table, const struct config_column *cols,
                         size_t n)
{
	if (table >= is->n || n == 0)
		return 0;
	struct table *t = &is->tables[table];
	import_columns_free(t->columns);
	t->n_columns = 0;
	if (!(t->columns = import_columns_new(cols, n)))
		return -1;
	t->n_columns = n;
	return 0;
}

struct stage_sub *import_store_sub(const struct import_store *is, size_t table)
{
	return table < is->n ? is->tables[table].sub : NULL;
}

void import_store_detach(struct import_store *is)
{
	for (size_t i = 0; i < is->n; i++)
		is->tables[i].sub = NULL;
	evtimer_del(is->linger_ev);
	for (size_t i = 0; i < is->n; i++)
		flush(is, i);
}

bool import_store_idle(const struct import_store *is)
{
	for (size_t i = 0; i < is->n; i++)
		if (store_pending(is->store, i) > 0)
			return false;
	return true;
}

uint64_t import_store_stored(const struct import_store *is, size_t table)
{
	return table < is->n ? is->tables[table].stored : 0;
}

uint64_t import_store_unchanged(const struct import_store *is, size_t table)
{
	return table < is->n ? is->tables[table].unchanged : 0;
}

/* ---- the runs of rows and placeholders ---- */

/* One more row (or placeholder) given to the store.  -1: out of memory
 * (the caller then treats the item as refused). */
static int runs_push(struct table *t, bool unchanged)
{
	if (t->runs_count > 0) {
		struct run *last = &t->runs[(t->runs_head + t->runs_count - 1) % t->runs_cap];
		if (last->unchanged == unchanged) {
			last->n++;
			return 0;
		}
	}
	if (t->runs_count == t->runs_cap) {
		size_t cap = t->runs_cap ? 2 * t->runs_cap : 8;
		struct run *r = malloc(cap * sizeof *r);
		if (!r)
			return -1;
		for (size_t i = 0; i < t->runs_count; i++)
			r[i] = t->runs[(t->runs_head + i) % t->runs_cap];
		free(t->runs);
		t->runs = r;
		t->runs_cap = cap;
		t->runs_head = 0;
	}
	t->runs[(t->runs_head + t->runs_count) % t->runs_cap] = (struct run){1, unchanged};
	t->runs_count++;
	return 0;
}

/* Of the next n acknowledged, how many were placeholders. */
static size_t runs_take(struct table *t, size_t n)
{
	size_t unchanged = 0;
	while (n > 0 && t->runs_count > 0) {
		struct run *r = &t->runs[t->runs_head];
		size_t k = r->n < n ? r->n : n;
		if (r->unchanged)
			unchanged += k;
		r->n -= k;
		n -= k;
		if (r->n == 0) {
			t->runs_head = (t->runs_head + 1) % t->runs_cap;
			t->runs_count--;
		}
	}
	return unchanged;
}

/* ---- delivering ---- */

static struct table *table_of(struct import_store *is, const struct stage_sub *sub, size_t *index)
{
	for (size_t i = 0; i < is->n; i++)
		if (is->tables[i].sub == sub) {
			*index = i;
			return &is->tables[i];
		}
	return NULL;
}

/* The item cannot be written: counted as failed; its credit returns with
 * the next commit of this table (or now, if nothing of it is waiting), so
 * nothing stalls. */
static void refuse_item(struct import_store *is, size_t index, const char *err)
{
	struct table *t = &is->tables[index];
	is->hooks.failed(is->hooks.arg, index, err, 1);
	if (store_pending(is->store, index) == 0)
		stage_ack(t->sub, 1);
	else
		t->unstored++;
}

struct bad_ctx {
	struct import_store *is;
	size_t table;
};

static void bad_value(void *arg, size_t column, const char *message)
{
	struct bad_ctx *b = arg;
	(void)column;
	if (b->is->hooks.bad_value)
		b->is->hooks.bad_value(b->is->hooks.arg, b->table, message);
}

/* A written item of a table with typed columns: its values, then the row. */
static int add_typed(struct import_store *is, size_t index, const struct import_item *it,
                     char *err)
{
	struct table *t = &is->tables[index];
	const char *values[CONFIG_COLUMNS_MAX];
	struct bad_ctx b = { is, index };
	if (import_columns_extract(t->columns, it->key, it->text, it->text_len, values, bad_value,
	                           &b, err) != 0)
		return -1;
	return store_add_typed(is->store, index, is->import_id, it->key, it->parent_key, it->text,
	                       it->text_len, values, err);
}

/* Whether the store took it (as a row, or as a placeholder when
 * unchanged); if not, it is refused. */
static bool take_item(struct import_store *is, size_t index, const struct import_item *it)
{
	char err[ERR_MAX];
	struct table *t = &is->tables[index];
	if (it->nul) {
		snprintf(err, sizeof err, "item '%.64s' has a string with \\u0000 in it, "
		         "which PostgreSQL's jsonb cannot store", it->key);
	} else if (runs_push(t, it->unchanged && !it->rewrite) < 0) {
		snprintf(err, sizeof err, "out of memory");
	} else {
		int rc = it->unchanged && !it->rewrite
		         ? store_add_unchanged(is->store, index, is->import_id, 1, err)
		         : t->columns
		         ? add_typed(is, index, it, err)
		         : store_add(is->store, index, is->import_id, it->key, it->parent_key,
		                     it->text, it->text_len, err);
		if (rc == 0)
			return true;
		/* Not taken: the run it was counted in shrinks back. */
		struct run *last = &t->runs[(t->runs_head + t->runs_count - 1) % t->runs_cap];
		if (--last->n == 0)
			t->runs_count--;
	}
	refuse_item(is, index, err);
	return false;
}

static void write_item(struct import_store *is, size_t index, const struct import_item *it)
{
	bool taken = take_item(is, index, it);
	char err[ERR_MAX];
	if (it->input && import_input_delivered(it->input, !taken, is->store, index, is->import_id,
	                                        err) < 0)
		is->hooks.held(is->hooks.arg, index, err);
}

static void deliver(void *ctx, struct stage *st, struct stage_sub *sub,
                    struct stage_event *const *events, size_t n)
{
	struct import_store *is = ctx;
	size_t index;
	(void)st;

	if (!table_of(is, sub, &index))
		return;
	for (size_t i = 0; i < n; i++)
		write_item(is, index, stage_event_payload(events[i]));
	if (stage_sub_demand(sub) == 0)
		flush(is, index);
	else if (!evtimer_pending(is->linger_ev, NULL))
		linger(is);
}

const struct stage_handler import_store_handler = {
	.deliver = deliver,
};

/* ---- what the store reports ---- */

void import_store_committed(struct import_store *is, size_t table, size_t n)
{
	if (!is || table >= is->n)
		return;
	struct table *t = &is->tables[table];
	size_t unchanged = runs_take(t, n);
	size_t written = n - unchanged;
	uint64_t bad = t->refused < written ? t->refused : written;
	t->refused -= bad;
	t->stored += written - bad;
	t->unchanged += unchanged;
	if (t->sub) {
		stage_ack(t->sub, n + t->unstored);
		t->unstored = 0;
	}
	is->hooks.committed(is->hooks.arg, table, n);
}

void import_store_table_refused(struct import_store *is, size_t table, size_t n,
                                const char *err)
{
	if (!is || table >= is->n)
		return;
	struct table *t = &is->tables[table];
	bool first = !t->table_failed;
	t->table_failed = true;
	t->refused += n;
	is->hooks.table_failed(is->hooks.arg, table, err, n, first);
}

void import_store_rows_refused(struct import_store *is, size_t table, size_t n,
                               const char *key, const char *err)
{
	if (!is || table >= is->n)
		return;
	struct table *t = &is->tables[table];
	char msg[ERR_MAX];
	t->refused += n;
	if (key)
		snprintf(msg, sizeof msg, "PostgreSQL refused the row with key '%.64s%s' for table %s: %s",
		         key, strlen(key) > 64 ? "..." : "", t->name, err);
	else
		snprintf(msg, sizeof msg, "PostgreSQL refused %zu rows for table %s: %s", n, t->name,
		         err);
	is->hooks.failed(is->hooks.arg, table, msg, n);
}
