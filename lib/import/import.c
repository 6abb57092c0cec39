/* import — see import.h.
 *
 * Design notes
 *  - import.c is the wiring: it builds the pipeline the configuration
 *    declares, runs the fetching stages, ends the run and reports figures.
 *    An event's payload is an import_item (import_item.h); where a page's
 *    next page is comes from paginate.h; the store consumer that writes and
 *    acknowledges rows is import_store.h.
 *  - A unit of stage work is one input item (or, for the root, the list);
 *    its state is the URL of the page to fetch next.  A fetched page is one
 *    engine batch: its items are emitted, then the unit yields for the next
 *    page or is done, and only then does the engine dispatch.  Credit for
 *    the input returns upstream only when its last page is in (the engine's
 *    rule), so a parent's children never outrun the demand.
 *  - Every way a run ends goes through end_run(), deferred to a fresh loop
 *    turn so that no engine or fetch callback frees what it is running in.
 *  - Memory in bytes (membudget.h): the fetcher charges bodies and pages
 *    being read, import_item the items.  A unit the engine starts while
 *    the charge is over the admission share (half of memory_limit) waits,
 *    without a request, in the import's `waiting` list until a page
 *    arrives or rows commit brings it back under; a unit starts anyway
 *    when the import has no request of its own in flight, so the import
 *    always has a page coming.  The engine stays pure: it sees the unit
 *    as running.  When the charge falls back after a large peak, the
 *    freed heap is given back to the system (malloc_trim).
 */
#include "import.h"

#include "config.h"
#include "dedupe.h"
#include "error.h"
#include "fetch.h"
#include "import_item.h"
#include "import_store.h"
#include "jsondoc.h"
#include "membudget.h"
#include "paginate.h"
#include "redact.h"
#include "stage.h"
#include "store.h"
#include "urltemplate.h"

#include <event2/event.h>
#include <inttypes.h>
#include <malloc.h>
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys a dedupe stage remembers per import (about 6.5 bytes each, see
 * dedupe.h: about 26 MiB when full). */
#define IMPORT_DEDUPE_MAX_KEYS (4u << 20)
/* A parent item read again for its children's URLs keeps at most this
 * much of its parse between starts. */
#define IMPORT_PARENT_DOC_KEEP (64u << 10)
#define IMPORT_RATE_WINDOW 6 /* one-second samples: the rate is over 5 s */
/* A request's outcome, by its final response: no response (transport), 2xx,
 * 304, another 3xx, 4xx, 5xx; in stats as "requests". */
#define IMPORT_OUTCOMES 6
static const char *const outcome_names[IMPORT_OUTCOMES] = {
	"transport", "2xx", "304", "3xx", "4xx", "5xx",
};

static size_t outcome_of(long http_status)
{
	if (http_status == 304)
		return 2;
	if (http_status >= 200 && http_status < 600)
		return http_status < 300 ? 1 : (size_t)(http_status / 100);
	return 0;
}

/* After the charge peaked at least this high and fell to a quarter of the
 * peak, the heap is trimmed. */
#define IMPORT_TRIM_PEAK_MIN (16u << 20)

struct stage_ctx {
	struct import *imp;
	const struct stage_conf *conf;
	size_t index;             /* also the store's table number */
	struct stage *st;
	struct fetch_provider *provider;
	struct urltemplate *tpl;
	struct paginate_rule paging;
	struct dedupe *seen;      /* dedupe stages only */
	bool root;
	bool first_page_done;
	uint64_t fetched, failed, retried, skipped, pages;
	uint64_t requests[IMPORT_OUTCOMES]; /* by the final response's class */
	uint64_t rate_samples[IMPORT_RATE_WINDOW];
	unsigned rate_pos;
};

struct work_state {
	struct stage_ctx *sc;
	struct stage_work *w;
	struct fetch *fetch;
	char *url;                /* of the page to fetch next */
	struct paginate paging;   /* this input's walk through its pages */
	bool waiting;             /* in imp->waiting: started, no request yet */
	TAILQ_ENTRY(work_state) wait_link;
};

struct import {
	struct import_env env;
	struct import_callbacks cb;
	int64_t id;
	struct import_options opt; /* its root_url is owned */
	struct pipeline *pipe;
	struct stage *store_stage;
	struct stage_ctx *stages;
	size_t n_stages;
	struct event *end_ev;
	struct import_store *rows; /* the store consumer */
	const char *status;       /* NULL while running */
	const char *end_status;   /* decided, not yet committed */
	bool ending;              /* the pipeline is gone or going */
	bool finish_sent;         /* the final import_runs row is on its way */
	bool ended;
	bool draining;
	bool paused;
	uint64_t errors;
	struct jsondoc *parent_doc; /* a parent item read again for its children's URLs */
	TAILQ_HEAD(, work_state) waiting; /* units waiting for memory (membudget.h) */
	size_t fetching;          /* its requests in flight */
};

/* ---- items ---- */

static void free_payload(void *ctx, void *payload)
{
	(void)ctx;
	import_item_free(payload);
}

/* ---- errors ---- */

/* n items failed for one reason: counted n times, recorded (and logged) once,
 * the URL and the message masked (a base_url's or a next link's password). */
static void record_failures(struct stage_ctx *sc, const char *url, long status,
                            uint32_t attempts, const char *message, uint64_t n)
{
	struct import *imp = sc->imp;
	sc->failed += n;
	imp->errors += n;
	char *url_shown = redact_dup(url ? url : "");
	char msg[ERR_MAX];
	snprintf(msg, sizeof msg, "%s", message);
	redact_buf(msg, sizeof msg);
	bool recorded = url_shown && store_add_error(imp->env.store, imp->id, sc->conf->name, url_shown,
	                                             status, attempts, msg) == 0;
	if (!recorded && imp->cb.error)
		imp->cb.error(imp->cb.arg, imp, sc->conf->name, url_shown, status, attempts,
		              "out of memory: the next error is not recorded in import_errors");
	if (imp->cb.error)
		imp->cb.error(imp->cb.arg, imp, sc->conf->name, url ? url_shown : NULL, status, attempts, msg);
	free(url_shown);
}

static void record_failure(struct stage_ctx *sc, const char *url, long status,
                           uint32_t attempts, const char *message)
{
	record_failures(sc, url, status, attempts, message, 1);
}

/* ---- ending ---- */

static void schedule_end(struct import *imp, const char *status)
{
	if (imp->ending || imp->end_status)
		return;
	imp->end_status = status;
	event_active(imp->end_ev, EV_TIMEOUT, 0);
}

static void on_finish_committed(void *arg, const char *err)
{
	struct import *imp = arg;
	(void)err; /* the store logs through its state; the run is over either way */
	imp->ended = true;
	imp->status = imp->end_status;
	if (imp->cb.end)
		imp->cb.end(imp->cb.arg, imp);
}

/* The final status goes to the store once every row it holds has
 * committed, so the counts in import_runs are the rows really stored. */
static void maybe_finish(struct import *imp)
{
	if (!imp->ending || imp->finish_sent || !import_store_idle(imp->rows))
		return;
	imp->finish_sent = true;
	json_t *counts = import_counts(imp);
	/* An interrupted run may be resumed (store_resume_import). */
	unsigned flags = strcmp(imp->end_status, "interrupted") == 0 ? STORE_FINISH_RESUMABLE : 0;
	if (store_finish_import(imp->env.store, imp->id, imp->end_status, counts, flags,
	                        on_finish_committed, imp) < 0)
		on_finish_committed(imp, "the store refused the final status");
	json_decref(counts);
}

static void end_run(evutil_socket_t fd, short what, void *arg)
{
	struct import *imp = arg;
	(void)fd;
	(void)what;
	if (imp->ending)
		return;
	imp->ending = true;
	/* Aborts running fetches; the events not yet delivered to the store
	 * are dropped, the rows it holds are still written. */
	pipeline_free(imp->pipe);
	imp->pipe = NULL;
	import_store_detach(imp->rows);
	maybe_finish(imp);
}

/* Drained: nothing running, every buffer empty, and everything the store
 * was sent committed; what was fetched is then all stored. */
static bool drained(const struct import *imp)
{
	if (pipeline_in_flight(imp->pipe) > 0)
		return false;
	for (size_t i = 0; i < imp->n_stages; i++)
		if (stage_buffered(imp->stages[i].st) > 0 ||
		    stage_sub_unacked(import_store_sub(imp->rows, i)) > 0)
			return false;
	return true;
}

static void check_drained(struct import *imp)
{
	if (imp->draining && imp->pipe && !imp->ending && drained(imp))
		schedule_end(imp, "interrupted");
}

/* ---- fetching stages ---- */

/* Its request, if any, is cancelled; it waits no more. */
static void work_state_stop(struct work_state *ws)
{
	struct import *imp = ws->sc->imp;
	if (ws->fetch) {
		fetch_cancel(ws->fetch);
		ws->fetch = NULL;
		imp->fetching--;
	}
	if (ws->waiting) {
		TAILQ_REMOVE(&imp->waiting, ws, wait_link);
		ws->waiting = false;
	}
}

static void work_state_free(void *p)
{
	struct work_state *ws = p;
	work_state_stop(ws);
	free(ws->url);
	free(ws);
}

/* Emit the page's items.  Returns how many were emitted, or -1 when the
 * page has no array of items at all (then it is not paged further). */
static long emit_items(struct stage_ctx *sc, struct stage_work *w, const struct jsondoc *doc,
                       const struct fetch_result *r)
{
	const struct stage_conf *c = sc->conf;
	const struct stage_event *in = stage_work_input(w);
	const struct import_item *parent = in ? stage_event_payload(in) : NULL;
	uint32_t items = c->items[0] ? jsondoc_get(doc, 0, c->items) : 0;
	size_t n = 1, unkeyed = 0, first_unkeyed = 0, emitted = 0;
	char msg[ERR_MAX];

	if (c->items[0]) {
		if (jsondoc_type(doc, items) != JSONDOC_ARRAY) {
			snprintf(msg, sizeof msg,
			         "page has no array of items at '%s' (setting 'items' of [stage %s])",
			         c->items, c->name);
			record_failure(sc, r->url, r->http_status, r->attempts, msg);
			return -1;
		}
		n = jsondoc_size(doc, items);
	}
	uint32_t v = c->items[0] ? jsondoc_first(doc, items) : 0;
	for (size_t i = 0; i < n; i++, v = c->items[0] ? jsondoc_next(doc, items, v) : JSONDOC_ABSENT) {
		uint32_t k = jsondoc_get(doc, v, c->key);
		enum jsondoc_type kt = jsondoc_type(doc, k);
		if (kt != JSONDOC_STRING && kt != JSONDOC_NUMBER) {
			if (unkeyed++ == 0)
				first_unkeyed = i;
			continue;
		}
		const char *parent_key = parent && !c->dedupe ? parent->key : NULL;
		struct import_item *it = import_item_new(doc, v, k, parent_key);
		if (!it) {
			record_failure(sc, r->url, r->http_status, r->attempts, "out of memory");
			continue;
		}
		if (stage_emit(w, it) < 0) {
			import_item_free(it);
			record_failure(sc, r->url, r->http_status, r->attempts, "out of memory");
			continue;
		}
		sc->fetched++;
		emitted++;
	}
	if (unkeyed) {
		/* One error a page, not one an item: a wrong `key` setting
		 * must not flood the log and import_errors. */
		snprintf(msg, sizeof msg,
		         "%zu of %zu items have no string or number key at '%s', the first is item %zu "
		         "(setting 'key' of [stage %s])",
		         unkeyed, n, c->key, first_unkeyed, c->name);
		record_failures(sc, r->url, r->http_status, r->attempts, msg, unkeyed);
	}
	return (long)emitted;
}

/* The next page's URL, or NULL at the end of the list or where following
 * stops (why is recorded). */
static char *next_page(struct work_state *ws, const struct fetch_result *r)
{
	struct stage_ctx *sc = ws->sc;
	const char *base = r->effective_url ? r->effective_url : r->url;
	char *next, err[ERR_MAX];

	if (paginate_next(&sc->paging, r->doc, base, r->link_next, &next, err) < 0 ||
	    (next && paginate_follow(&ws->paging, &sc->paging, r->url, next, err) < 0)) {
		record_failure(sc, r->url, r->http_status, r->attempts, err);
		free(next);
		return NULL;
	}
	return next;
}

/* The root's first page failed (its URL, its fetch or its content):
 * nothing below it can run, so the whole import fails (SPEC §3).  Returns
 * whether it was that page; any other page's failure is only counted. */
static bool fail_if_root_first_page(struct stage_ctx *sc)
{
	if (!sc->root || sc->first_page_done)
		return false;
	schedule_end(sc->imp, "failed");
	return true;
}

/* Take one fetched page: count it, emit its items, then yield the work for
 * the next page or end it. */
static void take_page(struct work_state *ws, const struct fetch_result *r)
{
	struct stage_ctx *sc = ws->sc;
	struct import *imp = sc->imp;
	struct stage_work *w = ws->w;

	if (r->attempts > 1)
		sc->retried += r->attempts - 1;
	sc->requests[outcome_of(r->http_status)]++;
	if (r->outcome != FETCH_OK) {
		record_failure(sc, r->url, r->http_status, r->attempts, r->error);
		fail_if_root_first_page(sc);
		stage_work_done(w);
		return;
	}
	sc->pages++;
	uint64_t failed_before = sc->failed;
	long emitted = emit_items(sc, w, r->doc, r);
	if (imp->cb.page)
		imp->cb.page(imp->cb.arg, imp, sc->conf->name, r->url, r->http_status, r->attempts,
		             emitted > 0 ? (size_t)emitted : 0);
	bool unusable = emitted < 0 || (emitted == 0 && sc->failed > failed_before);
	if (unusable && fail_if_root_first_page(sc)) {
		stage_work_done(w);
		return;
	}
	sc->first_page_done = true;
	char *next = emitted < 0 ? NULL : next_page(ws, r);
	if (next) {
		free(ws->url);
		ws->url = next;
		stage_work_yield(w);
	} else {
		stage_work_done(w);
	}
}

static void on_fetched(void *arg, const struct fetch_result *r);

/* The unit's request for ws->url; a failure is recorded and ends the unit. */
static void request_page(struct work_state *ws)
{
	struct stage_ctx *sc = ws->sc;
	char err[ERR_MAX];

	ws->fetch = fetch_start(sc->provider, ws->url, on_fetched, ws, err);
	if (ws->fetch) {
		sc->imp->fetching++;
		return;
	}
	record_failure(sc, ws->url, 0, 0, err);
	fail_if_root_first_page(sc);
	stage_work_done(ws->w);
}

/* Start the waiting units while the charge is within the admission
 * share, or one when the import has no request in flight.  Inside an
 * engine batch: a failed start ends its unit. */
static void resume_waiting(struct import *imp)
{
	struct work_state *ws;
	while ((ws = TAILQ_FIRST(&imp->waiting)) &&
	       (membudget_admits_start() || imp->fetching == 0)) {
		TAILQ_REMOVE(&imp->waiting, ws, wait_link);
		ws->waiting = false;
		request_page(ws);
	}
}

/* After a large peak, once the charge has fallen to a quarter of it, give
 * the freed heap back: glibc keeps it otherwise (many small items freed
 * between live ones leave the top of the heap pinned). */
static void trim_after_peak(void)
{
	size_t peak = membudget_peak();
	if (peak >= IMPORT_TRIM_PEAK_MIN && membudget_charged() <= peak / 4) {
		malloc_trim(0);
		membudget_peak_reset();
	}
}

/* A fetch completion is not an engine handler: the page is one batch, so
 * its items are all emitted before any is dispatched, and the store and
 * the children are not called in the middle of the loop. */
static void on_fetched(void *arg, const struct fetch_result *r)
{
	struct work_state *ws = arg;
	struct import *imp = ws->sc->imp;

	ws->fetch = NULL;
	imp->fetching--;
	pipeline_batch_begin(imp->pipe);
	take_page(ws, r); /* may free ws */
	resume_waiting(imp);
	pipeline_batch_end(imp->pipe);
	check_drained(imp);
}

/* The URL of an input's first page: the stage's template expanded against
 * the parent item (NULL for the root).  -1 with err. */
static int first_url(struct stage_ctx *sc, const struct import_item *parent, char **url,
                     char *err)
{
	struct jsondoc *doc = sc->imp->parent_doc;
	const struct jsondoc *pd = NULL;
	/* The parent is read again, only for what its children's URLs need;
	 * its text was checked with its page. */
	if (parent && urltemplate_placeholders(sc->tpl) > 0 &&
	    jsondoc_parse(doc, parent->text, parent->text_len, JSONDOC_ANY, err) == 0)
		pd = doc;
	int rc = urltemplate_expand(sc->tpl, pd, 0, url, err);
	/* One huge parent item must not pin its tokens for the import. */
	jsondoc_trim(doc, IMPORT_PARENT_DOC_KEEP);
	return rc;
}

/* The state of a unit about to fetch its input's first page, or NULL when
 * there is nothing to fetch: a dedupe stage has seen the URL, or it failed
 * (recorded).  Then the unit is done. */
static struct work_state *work_begin(struct stage_ctx *sc, struct stage_work *w)
{
	const struct stage_event *in = stage_work_input(w);
	char *url = NULL, err[ERR_MAX];
	struct work_state *ws = NULL;

	if (first_url(sc, in ? stage_event_payload(in) : NULL, &url, err) < 0) {
		record_failure(sc, NULL, 0, 0, err);
		fail_if_root_first_page(sc);
	} else if (sc->seen && !dedupe_add(sc->seen, url, strlen(url))) {
		sc->skipped++;
	} else if (!(ws = calloc(1, sizeof *ws))) {
		record_failure(sc, NULL, 0, 0, "out of memory");
	}
	if (!ws) {
		free(url);
		stage_work_done(w);
		return NULL;
	}
	ws->sc = sc;
	ws->w = w;
	ws->url = url;
	stage_work_set_user(w, ws, work_state_free);
	return ws;
}

/* Fetch the unit's next page (its first one on the first start). */
static void stage_start(void *ctx, struct stage *st, struct stage_work *w)
{
	struct stage_ctx *sc = ctx;
	struct work_state *ws = stage_work_user(w);
	struct import *imp = sc->imp;
	(void)st;

	if (!ws && !(ws = work_begin(sc, w)))
		return;
	if (!membudget_admits_start() && imp->fetching > 0) {
		ws->waiting = true;
		TAILQ_INSERT_TAIL(&imp->waiting, ws, wait_link);
		return;
	}
	request_page(ws);
}

static void stage_abort(void *ctx, struct stage *st, struct stage_work *w)
{
	struct work_state *ws = stage_work_user(w);
	(void)ctx;
	(void)st;
	if (ws)
		work_state_stop(ws);
}

/* ---- the store consumer ---- */

static void rows_failed(void *arg, size_t table, const char *message, uint64_t n)
{
	struct import *imp = arg;
	record_failures(&imp->stages[table], NULL, 0, 0, message, n);
}

static void rows_committed(void *arg, size_t table, size_t n)
{
	struct import *imp = arg;
	if (imp->cb.stored)
		imp->cb.stored(imp->cb.arg, imp, imp->stages[table].conf->name, n);
	trim_after_peak();
	if (imp->pipe && !TAILQ_EMPTY(&imp->waiting)) {
		pipeline_batch_begin(imp->pipe);
		resume_waiting(imp);
		pipeline_batch_end(imp->pipe);
	}
	maybe_finish(imp);   /* ending: the final status waits for the last commit */
	check_drained(imp);
}

/* The stage's table is gone or changed (dropped mid-import): nothing more
 * of it can be stored, so the import fails, with one error; the batches
 * already on their way are only counted. */
static void table_failed(void *arg, size_t table, const char *message, uint64_t n, bool first)
{
	struct import *imp = arg;
	struct stage_ctx *sc = &imp->stages[table];
	if (!first) {
		sc->failed += n;
		imp->errors += n;
		return;
	}
	record_failures(sc, NULL, 0, 0, message, n);
	schedule_end(imp, "failed");
}

static void rows_held(void *arg, size_t table, const char *message)
{
	struct import *imp = arg;
	if (imp->cb.error)
		imp->cb.error(imp->cb.arg, imp, imp->stages[table].conf->name, NULL, 0, 0, message);
}

static void pipeline_done(void *ctx)
{
	struct import *imp = ctx;
	schedule_end(imp, imp->draining ? "interrupted" : imp->errors ? "partial" : "succeeded");
}

/* ---- construction ---- */

static const struct stage_handler fetch_handler = {
	.start = stage_start,
	.abort = stage_abort,
};

static int provider_index(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int build_pipeline(struct import *imp, char *err)
{
	const struct config *cfg = imp->env.cfg;
	struct pipeline_callbacks pcb = {
		.free_payload = free_payload, .finished = pipeline_done, .ctx = imp};

	imp->pipe = pipeline_new(&pcb);
	if (!imp->pipe)
		return err_set(err, "out of memory building the pipeline");
	for (size_t i = 0; i < imp->n_stages; i++) {
		struct stage_ctx *sc = &imp->stages[i];
		const struct stage_conf *c = &cfg->stages[i];
		int pi = provider_index(cfg, c->provider);
		sc->imp = imp;
		sc->conf = c;
		sc->index = i;
		sc->root = c->parent == NULL;
		sc->paging = (struct paginate_rule){.next = c->next, .pointer = c->next_pointer,
		                                    .stage = c->name,
		                                    .max_pages = c->max_pages};
		if (pi < 0)
			return err_set(err, "[stage %s] names unknown provider '%s'", c->name, c->provider);
		sc->provider = imp->env.providers[pi];
		sc->tpl = urltemplate_parse(c->url, err);
		if (!sc->tpl)
			return -1;
		if (c->dedupe && !(sc->seen = dedupe_new(IMPORT_DEDUPE_MAX_KEYS)))
			return err_set(err, "out of memory");
		struct stage_params sp = {
			.name = c->name,
			.kind = sc->root ? STAGE_PRODUCER : STAGE_PRODUCER_CONSUMER,
			.handler = &fetch_handler,
			.ctx = sc,
			.buffer_size = c->buffer_size,
			.concurrency = c->concurrency,
		};
		sc->st = pipeline_add_stage(imp->pipe, &sp);
		if (!sc->st)
			return err_set(err, "cannot add [stage %s] to the pipeline", c->name);
		if (!sc->root) {
			struct stage *parent = pipeline_stage_by_name(imp->pipe, c->parent);
			const struct stage_conf *pc = config_stage(cfg, c->parent);
			if (!parent || !pc ||
			    !pipeline_subscribe(imp->pipe, parent, sc->st, pc->max_demand, pc->min_demand))
				return err_set(err, "cannot subscribe [stage %s] to '%s'", c->name, c->parent);
		}
	}
	struct stage_params store_sp = {
		.name = "store", .kind = STAGE_CONSUMER, .handler = &import_store_handler,
		.ctx = imp->rows, .buffer_size = 1, .concurrency = 1};
	imp->store_stage = pipeline_add_stage(imp->pipe, &store_sp);
	if (!imp->store_stage)
		return err_set(err, "cannot add the store to the pipeline");
	for (size_t i = 0; i < imp->n_stages; i++) {
		const struct stage_conf *c = &cfg->stages[i];
		struct stage_sub *sub = pipeline_subscribe(imp->pipe, imp->stages[i].st,
		                                           imp->store_stage, c->max_demand,
		                                           c->min_demand);
		if (!sub)
			return err_set(err, "cannot subscribe the store to [stage %s]", c->name);
		import_store_attach(imp->rows, i, c->name, sub);
	}
	return 0;
}

struct import *import_new(const struct import_env *env, int64_t id, const struct import_options *opt,
                          const struct import_callbacks *cb, char *err)
{
	struct import *imp = calloc(1, sizeof *imp);
	if (!imp) {
		err_set(err, "out of memory");
		return NULL;
	}
	if (opt) {
		imp->opt = *opt;
		imp->opt.root_url = NULL;
		if (opt->root_url && !(imp->opt.root_url = strdup(opt->root_url))) {
			free(imp);
			err_set(err, "out of memory");
			return NULL;
		}
	}
	imp->env = *env;
	imp->cb = *cb;
	imp->id = id;
	imp->n_stages = env->cfg->n_stages;
	TAILQ_INIT(&imp->waiting);
	/* The daemon runs one import at a time: the budget is its. */
	membudget_set_limit(env->cfg->memory_limit ? env->cfg->memory_limit : MEMBUDGET_UNLIMITED);
	imp->stages = calloc(imp->n_stages, sizeof *imp->stages);
	imp->end_ev = event_new(env->base, -1, 0, end_run, imp);
	struct import_store_hooks hooks = {
		.failed = rows_failed, .committed = rows_committed, .held = rows_held,
		.table_failed = table_failed, .arg = imp};
	imp->rows = import_store_new(env->base, env->store, id, imp->n_stages, &hooks);
	imp->parent_doc = jsondoc_new();
	if (!imp->stages || !imp->end_ev || !imp->rows || !imp->parent_doc) {
		err_set(err, "out of memory");
		import_free(imp);
		return NULL;
	}
	if (build_pipeline(imp, err) < 0) {
		import_free(imp);
		return NULL;
	}
	return imp;
}

void import_free(struct import *imp)
{
	if (!imp)
		return;
	pipeline_free(imp->pipe);
	import_store_free(imp->rows);
	for (size_t i = 0; i < imp->n_stages; i++) {
		urltemplate_free(imp->stages[i].tpl);
		dedupe_free(imp->stages[i].seen);
	}
	free(imp->stages);
	jsondoc_free(imp->parent_doc);
	if (imp->end_ev)
		event_free(imp->end_ev);
	free((char *)imp->opt.root_url);
	free(imp);
}

int import_start(struct import *imp, char *err)
{
	if (pipeline_start(imp->pipe) < 0)
		return err_set(err, "the pipeline could not start");
	return 0;
}

void import_pause(struct import *imp, bool paused)
{
	imp->paused = paused;
	if (imp->pipe && !imp->draining)
		pipeline_pause(imp->pipe, paused);
}

bool import_paused(const struct import *imp)
{
	return imp->paused;
}

void import_cancel(struct import *imp)
{
	schedule_end(imp, "cancelled");
}

void import_interrupt(struct import *imp)
{
	if (imp->draining) {
		schedule_end(imp, "interrupted");
		return;
	}
	imp->draining = true;
	if (imp->pipe) {
		/* No new work; and the children stop taking inputs, so that
		 * what is buffered flows to the store alone (R3 no longer waits
		 * for a child that will not run again). */
		pipeline_pause(imp->pipe, true);
		for (size_t i = 0; i < imp->n_stages; i++) {
			struct stage *st = imp->stages[i].st;
			for (size_t j = 0; j < stage_sub_count(st); j++) {
				struct stage_sub *sub = stage_sub(st, j);
				if (sub != import_store_sub(imp->rows, i))
					stage_sub_cancel(sub);
			}
		}
	}
	check_drained(imp);
}

const struct import_options *import_options(const struct import *imp)
{
	return &imp->opt;
}

int64_t import_id(const struct import *imp)
{
	return imp->id;
}

const char *import_status(const struct import *imp)
{
	return imp->status ? imp->status : "running";
}

bool import_ended(const struct import *imp)
{
	return imp->ended;
}

bool import_ending(const struct import *imp)
{
	return !imp->ended && (imp->ending || imp->end_status);
}

/* ---- figures ---- */

void import_tick(struct import *imp)
{
	for (size_t i = 0; i < imp->n_stages; i++) {
		struct stage_ctx *sc = &imp->stages[i];
		sc->rate_pos = (sc->rate_pos + 1) % IMPORT_RATE_WINDOW;
		sc->rate_samples[sc->rate_pos] = sc->fetched;
	}
}

static double stage_rate(const struct stage_ctx *sc)
{
	unsigned oldest = (sc->rate_pos + 1) % IMPORT_RATE_WINDOW;
	return (double)(sc->rate_samples[sc->rate_pos] - sc->rate_samples[oldest]) /
	       (IMPORT_RATE_WINDOW - 1);
}

json_t *import_counts(const struct import *imp)
{
	json_t *o = json_object();
	for (size_t i = 0; i < imp->n_stages; i++) {
		const struct stage_ctx *sc = &imp->stages[i];
		json_object_set_new(o, sc->conf->name,
		                    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
		                              "fetched", (json_int_t)sc->fetched,
		                              "stored", (json_int_t)import_store_stored(imp->rows, i),
		                              "failed", (json_int_t)sc->failed,
		                              "retried", (json_int_t)sc->retried,
		                              "skipped", (json_int_t)sc->skipped,
		                              "pages", (json_int_t)sc->pages));
	}
	return o;
}

static json_t *subs_json(const struct stage *st)
{
	json_t *a = json_array();
	for (size_t j = 0; j < stage_sub_count(st); j++) {
		struct sub_stats ss;
		stage_sub_get_stats(stage_sub(st, j), &ss);
		json_array_append_new(a, json_pack("{s:s,s:I,s:I,s:I,s:I}",
		                                   "consumer", ss.consumer,
		                                   "max_demand", (json_int_t)ss.max_demand,
		                                   "min_demand", (json_int_t)ss.min_demand,
		                                   "demand", (json_int_t)ss.demand,
		                                   "pending", (json_int_t)ss.pending));
	}
	return a;
}

json_t *import_stats(const struct import *imp)
{
	json_t *stages = json_array();
	for (size_t i = 0; i < imp->n_stages; i++) {
		const struct stage_ctx *sc = &imp->stages[i];
		struct stage_stats ss;
		memset(&ss, 0, sizeof ss);
		if (imp->pipe)
			stage_get_stats(sc->st, &ss);
		json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}",
		                      "name", sc->conf->name,
		                      "kind", sc->root ? "root" : "child",
		                      "buffered", (json_int_t)ss.buffered,
		                      "buffer_size", (json_int_t)sc->conf->buffer_size,
		                      "in_flight", (json_int_t)ss.in_flight,
		                      "concurrency", (json_int_t)sc->conf->concurrency,
		                      "queued", (json_int_t)ss.queued,
		                      "done", (json_int_t)sc->fetched,
		                      "stored", (json_int_t)import_store_stored(imp->rows, i),
		                      "failed", (json_int_t)sc->failed,
		                      "retried", (json_int_t)sc->retried,
		                      "skipped", (json_int_t)sc->skipped,
		                      "pages", (json_int_t)sc->pages,
		                      "rate_per_s", stage_rate(sc));
		json_object_set_new(o, "emitted", json_integer((json_int_t)(imp->pipe ? ss.emitted : sc->fetched)));
		json_object_set_new(o, "subscriptions", imp->pipe ? subs_json(sc->st) : json_array());
		json_t *req = json_object();
		for (size_t k = 0; k < IMPORT_OUTCOMES; k++)
			json_object_set_new(req, outcome_names[k], json_integer((json_int_t)sc->requests[k]));
		json_object_set_new(o, "requests", req);
		json_array_append_new(stages, o);
	}
	return json_pack("{s:I,s:s,s:b,s:b,s:I,s:I,s:o}",
	                 "id", (json_int_t)imp->id,
	                 "state", import_status(imp),
	                 "paused", imp->paused,
	                 "draining", imp->draining,
	                 "errors", (json_int_t)imp->errors,
	                 "live_events", (json_int_t)(imp->pipe ? pipeline_live_events(imp->pipe) : 0),
	                 "stages", stages);
}

void import_progress(const struct import *imp, char *buf, size_t len)
{
	size_t off = 0;
	int n = snprintf(buf, len, "import %" PRId64 ":", imp->id);
	if (n < 0)
		return;
	off = (size_t)n < len ? (size_t)n : len;
	for (size_t i = 0; i < imp->n_stages && off < len; i++) {
		const struct stage_ctx *sc = &imp->stages[i];
		n = snprintf(buf + off, len - off, "%s %" PRIu64 "/%" PRIu64 " %s",
		             i ? "," : "", import_store_stored(imp->rows, i), sc->fetched,
		             sc->conf->name);
		if (n < 0)
			return;
		off += (size_t)n;
	}
	if (off < len)
		snprintf(buf + off, len - off, ", %" PRIu64 " error%s%s", imp->errors,
		         imp->errors == 1 ? "" : "s", imp->paused ? " (paused)" : "");
}
