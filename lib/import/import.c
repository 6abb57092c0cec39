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
 *    freed heap is given back to the system (membudget_give_back).
 *  - Import state is read ahead (import_ahead.h): the engine's queued
 *    hook makes a unit's state (its URL, an entry of the stage's
 *    import_ahead) when the input is queued; its start takes the state
 *    read meanwhile, or waits for it (AWAIT_AHEAD), or reads it then.
 */
#include "import.h"

#include "config.h"
#include "dedupe.h"
#include "error.h"
#include "fetch.h"
#include "import_ahead.h"
#include "import_preload.h"
#include "import_input.h"
#include "import_item.h"
#include "import_pagefields.h"
#include "import_keys.h"
#include "import_store.h"
#include "jsondoc.h"
#include "jsonptr.h"
#include "membudget.h"
#include "paginate.h"
#include "redact.h"
#include "stage.h"
#include "store.h"
#include "urltemplate.h"

#include <event2/event.h>
#include <inttypes.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A parent item read again for its children's URLs keeps at most this
 * much of its parse between starts. */
#define IMPORT_PARENT_DOC_KEEP (64u << 10)
/* Stages between a url and the ancestor whose field it names, at most
 * (a pipeline deeper than this is not one a provider's API has). */
#define IMPORT_MAX_DEPTH 64
/* A page of more items than this is recorded without its keys and
 * validators (docs/architecture.md, "Import state across runs"): it is
 * always fetched whole and PostgreSQL compares its items.  Its record
 * would otherwise be one statement as large as the page, and libpq keeps
 * its buffers at the largest message it has sent. */
#define IMPORT_PAGE_KEYS_MAX 10000u

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

/* A value a stage's items carry for their descendants' URLs
 * (import_item.h): a field of the item of `stage`, this stage's own or an
 * ancestor's. */
struct carry_ref {
	size_t stage;
	const char *field;        /* borrowed from the naming stage's template */
	size_t from;              /* an ancestor's: its index in the parent stage's list */
	bool seen_absent;         /* own: an item lacked it (nearest is from the first) */
	char *nearest;            /* own: the nearest name that item had, or NULL */
};

struct stage_ctx {
	struct import *imp;
	const struct stage_conf *conf;
	size_t index;             /* also the store's table number */
	struct stage *st;
	struct fetch_provider *provider;
	struct urltemplate *tpl;
	size_t parent;            /* the parent stage's index; SIZE_MAX for the root */
	struct carry_ref *carry;  /* what its items carry, in this order */
	size_t n_carry;
	bool carry_own;           /* some of it is from its own items */
	/* Its rows read back come narrow (store_read_committed_fields): the
	 * store returns every own field it carries; narrow_at[i] is own
	 * carry i's place among the store's fields (SIZE_MAX for the others). */
	bool narrow;
	size_t *narrow_at;
	struct import_carry *vals; /* n_carry: scratch for making an item */
	char **owned;             /* n_carry: the own values' copies, meanwhile */
	size_t *arg_from;         /* per placeholder: SIZE_MAX = the parent item's field,
	                           * else its index in the parent's carry list */
	size_t *arg_own;          /* per placeholder that is the parent item's field: its
	                           * index in the parent's carry list too (the value read
	                           * when the parent was made), else SIZE_MAX */
	struct urltemplate_arg *args; /* per placeholder, filled per input */
	/* A url field no parent item has (missing_field_limit): while every
	 * input so far lacked placeholder missing_ph, their errors are counted
	 * but not yet written. */
	bool missing_decided;     /* some input had it, or failed otherwise */
	bool stopped;             /* the first inputs all lacked it: the stage stopped */
	size_t missing_ph;
	uint64_t missing_n;       /* inputs held back */
	char missing_msg[ERR_MAX];
	char missing_near[JSONPTR_TOKEN_MAX];
	struct paginate_rule paging;
	struct dedupe *seen;      /* dedupe stages only */
	struct import_live live;   /* dedupe stages: inputs alive (import_input_live) */
	struct import_undone undone; /* dedupe stages: inputs ended without checkpoint */
	struct import_links links; /* dedupe stages: link records sent or not */
	struct import_keys *ended;   /* dedupe stages: keys of inputs ended with it */
	struct import_ahead *ahead;  /* child stages: inputs' state read ahead (stage_queued) */
	/* child stages of a re-import: the stage's state read in one pass
	 * at the start (import_preload.h); while it is read, the units
	 * queued or started meanwhile whose input it does not hold yet wait
	 * on preload_units, and move to preload_ready as a chunk brings it */
	struct import_preload *preload;
	uint64_t preload_tag;     /* of the chunk out */
	TAILQ_HEAD(, work_state) preload_units;
	TAILQ_HEAD(, work_state) preload_ready;
	uint64_t state_preloaded; /* inputs that started with their state from the pass */
	uint64_t preload_early;   /* of them, taken while the pass still read */
	uint64_t pass_reached;    /* the pass's page rows a record of this run reached
	                             (import_input_from_pass) */
	bool root;
	bool has_children;        /* a stage takes its items as inputs */
	/* Its pages keep the values their items' children take of them
	 * (import_pagefields.h): with children and a store; the signature of
	 * its own carried fields, how many, their values for one item (n_own),
	 * and the items fed to the children from a page's kept values. */
	bool keep_fields;
	uint64_t fields_sig;
	size_t n_own;
	struct import_carry *own_vals;
	uint64_t from_fields;
	bool first_page_done;
	uint64_t fetched, failed, retried, skipped, pages;
	uint64_t bad_values;      /* values that did not fit their typed column (stored NULL) */
	uint64_t bytes;           /* body bytes received */
	uint64_t skipped_done;    /* inputs a resumed run found done */
	uint64_t skipped_fresh;   /* inputs fetched within `refresh` */
	uint64_t read_back;       /* items read back from the table for the children */
	uint64_t state_ahead;     /* inputs that started with their state read ahead */
	uint64_t read_back_ahead; /* 304 pages whose rows were read back ahead */
	uint64_t refetched;       /* 304s that could not be used: requested again */
	uint64_t requests[IMPORT_OUTCOMES]; /* by the final response's class */
	uint64_t rate_samples[IMPORT_RATE_WINDOW];
	unsigned rate_pos;
};

/* What a unit waits for from the store. */
enum ws_await {
	AWAIT_NONE,
	AWAIT_STATE,              /* its input's state (store_get_input) */
	AWAIT_PAGE,               /* a page's items read back (store_read_items) */
	AWAIT_INPUT,              /* a skipped input's items read back */
	AWAIT_AHEAD,              /* its state read ahead (import_ahead_wait), not in awaiting */
	AWAIT_AHEAD_ITEMS,        /* its first page's rows read back ahead, likewise */
	AWAIT_PRELOAD,            /* the stage's pass (preload_units), likewise */
};

struct work_state {
	struct stage_ctx *sc;
	struct stage_work *w;
	struct fetch *fetch;
	struct import_input *input; /* a reference */
	char *url;                /* of the page to fetch next */
	char *shown;              /* the same, masked: its name in raced_pages */
	uint32_t page_no;         /* of that page in its input */
	struct paginate paging;   /* this input's walk through its pages */
	bool waiting;             /* in imp->waiting: started, no request yet */
	bool unconditional;       /* request the page without validators */
	bool failed;              /* a page of the input failed: no checkpoint */
	enum ws_await await;      /* in imp->awaiting with tag */
	uint64_t tag;
	bool skip_fresh;          /* the input is skipped: fetched within refresh */
	char *etag, *last_modified; /* a 304's new validators, while read back */
	bool stored_fetched;      /* the page read back was answered 304 (not skipped) */
	/* Its state read ahead: asked when the input was queued (the unit is
	 * made then, url and shown set, input still NULL), until taken. */
	struct import_ahead_entry *ahead;
	bool preload_listed;      /* on its stage's preload_units, or preload_ready */
	bool preload_ready;       /* (listed) on preload_ready */
	bool preloaded;           /* its entry was filled by the pass, not read */
	TAILQ_ENTRY(work_state) preload_link;
	/* The rows of later pages read back ahead with the first (by the
	 * page's URL in raced_pages, NULL once taken), charged to membudget. */
	char *later_page[IMPORT_AHEAD_READ_BACK_PAGES];
	struct store_items *later[IMPORT_AHEAD_READ_BACK_PAGES];
	size_t n_later, later_charge;
	size_t later_held;       /* their rows, counted in the stage's items_held */
	TAILQ_ENTRY(work_state) wait_link;
	TAILQ_ENTRY(work_state) await_link;
};

struct import {
	struct import_env env;
	struct import_callbacks cb;
	int64_t id;
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
	bool status_committed;    /* ... and committed (import_status_committed) */
	bool ended;
	bool draining;
	bool paused;
	bool db_failed;           /* the database stayed away past max_outage */
	uint64_t errors;
	struct jsondoc *parent_doc; /* a parent item read again for its children's URLs */
	TAILQ_HEAD(, work_state) waiting; /* units waiting for memory (membudget.h) */
	TAILQ_HEAD(, work_state) awaiting; /* units waiting for the store's answer */
	uint64_t next_tag;
	struct import_options opt;
	char *root_url;           /* opt.root_url, owned */
	json_t *prior;            /* opt.prior_counts, owned */
	json_t *final;            /* the counts as committed, once ended (or NULL) */
	struct event *ahead_ev;   /* sends the read-backs asked ahead (items_flush_all) */
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
static void write_failure(struct stage_ctx *sc, const char *url, long status, uint32_t attempts,
                          const char *message)
{
	struct import *imp = sc->imp;
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

static void record_failures(struct stage_ctx *sc, const char *url, long status,
                            uint32_t attempts, const char *message, uint64_t n)
{
	sc->failed += n;
	sc->imp->errors += n;
	write_failure(sc, url, status, attempts, message);
}

static void record_failure(struct stage_ctx *sc, const char *url, long status,
                           uint32_t attempts, const char *message)
{
	record_failures(sc, url, status, attempts, message, 1);
}

/* ---- ending ---- */

static void missing_flush(struct stage_ctx *sc);

static void schedule_end(struct import *imp, const char *status)
{
	if (imp->ending || imp->end_status)
		return;
	imp->end_status = status;
	event_active(imp->end_ev, EV_TIMEOUT, 0);
}

static void ended(struct import *imp)
{
	imp->ended = true;
	imp->status = imp->end_status;
	if (imp->cb.end)
		imp->cb.end(imp->cb.arg, imp);
}

/* The counts the finishing transaction made exact (store_runs.c: rows
 * stored, keys shared) replace the import's own; items that shared a key
 * are told, once a stage: a `key =` that is not unique hides rows. */
static void final_counts_read(void *arg, json_t *runs, const char *err)
{
	struct import *imp = arg;
	json_t *counts = err ? NULL : json_object_get(json_array_get(runs, 0), "counts");
	if (json_is_object(counts)) {
		imp->final = json_incref(counts);
		for (size_t i = 0; i < imp->n_stages; i++) {
			const char *name = imp->stages[i].conf->name;
			json_int_t n = json_integer_value(json_object_get(json_object_get(counts, name),
			                                                  "shared_keys"));
			char msg[ERR_MAX];
			snprintf(msg, sizeof msg, "%" JSON_INTEGER_FORMAT " item%s had a key another item of "
			         "this import had too: each key is one row, so those items are not all "
			         "stored (check the stage's key = setting)", n, n == 1 ? "" : "s");
			if (n > 0 && imp->cb.notice)
				imp->cb.notice(imp->cb.arg, imp, name, NULL, msg);
		}
	}
	ended(imp);
}

static void on_finish_committed(void *arg, const char *err)
{
	struct import *imp = arg;
	imp->status_committed = !err && !imp->db_failed;
	/* On an error the store logs through its state; the run is over
	 * either way. */
	if (err || imp->db_failed ||
	    store_get_runs(imp->env.store, imp->id, 1, final_counts_read, imp) < 0)
		ended(imp);
}

/* Whether the root's URL lists only what changed since a cursor. */
static bool under_cursor(const struct import *imp)
{
	const char *url = imp->n_stages ? imp->stages[0].conf->url : "";
	return !imp->opt.full && (strstr(url, "{last_success}") || strstr(url, "{cursor}"));
}

/* What the finishing transaction does besides the status (docs/architecture.md,
 * "Import state across runs"): an interrupted run, or one failed because
 * the database stayed away, can be resumed; only a succeeded run decides
 * what went away, and not under a cursor. */
static unsigned finish_flags(const struct import *imp)
{
	const char *st = imp->end_status;
	unsigned flags = 0;
	if (strcmp(st, "interrupted") == 0 || imp->db_failed)
		flags |= STORE_FINISH_RESUMABLE;
	if (strcmp(st, "succeeded") == 0)
		flags |= under_cursor(imp) ? STORE_FINISH_PRUNE_ROOT : STORE_FINISH_REMOVALS;
	return flags;
}

/* Whether this run's records reached every page row the stage's pass
 * read, the pass having read the stage to its end: then its finish need
 * not look for page rows to delete (store_pages_all_reached). */
static bool pass_all_reached(const struct stage_ctx *sc)
{
	if (!sc->preload || import_preload_phase(sc->preload) != IMPORT_PRELOAD_COMPLETE)
		return false;
	struct import_preload_stats ps;
	import_preload_get_stats(sc->preload, &ps);
	/* and it held every page row it found (a row not reachable from its
	 * input's first row, or read twice, is found but not held) */
	return sc->pass_reached == ps.rows && ps.listed == ps.rows;
}

/* The final status goes to the store once every row it holds has
 * committed, so the counts in import_runs are the rows really stored
 * (unless the database is away for good: then at once). */
static void maybe_finish(struct import *imp)
{
	if (!imp->ending || imp->finish_sent || (!import_store_idle(imp->rows) && !imp->db_failed))
		return;
	imp->finish_sent = true;
	for (size_t i = 0; imp->env.store && i < imp->n_stages; i++)
		if (pass_all_reached(&imp->stages[i]))
			store_pages_all_reached(imp->env.store, imp->stages[i].index, imp->id);
	json_t *counts = import_counts(imp);
	if (store_finish_import(imp->env.store, imp->id, imp->end_status, counts,
	                        finish_flags(imp), imp->db_failed ? NULL : on_finish_committed,
	                        imp) < 0 && !imp->db_failed)
		on_finish_committed(imp, "the store refused the final status");
	json_decref(counts);
	/* The database is away: the run ends now; its status is written
	 * when the database is back (or, if raced stops first, the run is
	 * found running at the next start and marked interrupted). */
	if (imp->db_failed)
		on_finish_committed(imp, NULL);
}

static void end_run(evutil_socket_t fd, short what, void *arg)
{
	struct import *imp = arg;
	(void)fd;
	(void)what;
	if (imp->ending)
		return;
	imp->ending = true;
	/* url errors held back while deciding whether a field is a typo
	 * (missing_field_limit) are written, one an input, before the final
	 * status. */
	for (size_t i = 0; i < imp->n_stages; i++)
		if (!imp->stages[i].stopped && imp->stages[i].missing_n > 0)
			missing_flush(&imp->stages[i]);
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
	if (ws->preload_listed) {
		if (ws->preload_ready)
			TAILQ_REMOVE(&ws->sc->preload_ready, ws, preload_link);
		else
			TAILQ_REMOVE(&ws->sc->preload_units, ws, preload_link);
		ws->preload_listed = ws->preload_ready = false;
	}
	if (ws->await == AWAIT_AHEAD)
		import_ahead_wait(ws->ahead, NULL);
	else if (ws->await == AWAIT_AHEAD_ITEMS)
		import_ahead_items_wait(ws->ahead, NULL);
	else if (ws->await != AWAIT_NONE && ws->await != AWAIT_PRELOAD)
		TAILQ_REMOVE(&imp->awaiting, ws, await_link);
	ws->await = AWAIT_NONE;
}

static void read_back_refill(struct stage_ctx *sc);

static void work_state_free(void *p)
{
	struct work_state *ws = p;
	struct stage_ctx *sc = ws->sc;
	char err[ERR_MAX];
	work_state_stop(ws);
	/* Its last page record is queued: the links held wait behind it.  A
	 * unit the import's end aborts has no checkpoint: no link to make. */
	if (ws->input && sc->seen && !sc->imp->ending &&
	    import_input_finish(ws->input, sc->imp->env.store, sc->index, sc->imp->id, err) < 0)
		record_failure(sc, ws->input->url, 0, 0, err);
	import_input_unref(ws->input);
	import_ahead_drop(sc->ahead, ws->ahead);
	for (size_t i = 0; i < ws->n_later; i++) {
		store_items_free(ws->later[i]);
		free(ws->later_page[i]);
	}
	membudget_release(ws->later_charge);
	if (ws->later_held) {
		/* later rows never taken (no 304 for them): room for more */
		import_ahead_items_unhold(sc->ahead, ws->later_held);
		read_back_refill(sc);
	}
	free(ws->url);
	free(ws->shown);
	free(ws->etag);
	free(ws->last_modified);
	free(ws);
}

/* Set the page to fetch next (url taken); its masked name too.  -1: out of
 * memory (url freed). */
static int set_page(struct work_state *ws, char *url, uint32_t page_no)
{
	char *shown = redact_dup(url);
	if (!shown) {
		free(url);
		return -1;
	}
	free(ws->url);
	free(ws->shown);
	ws->url = url;
	ws->shown = shown;
	ws->page_no = page_no;
	return 0;
}

/* Hand an item to the engine as one of the unit's input's; it holds a
 * reference to the input.  -1: not emitted (the caller frees it). */
static int emit_item(struct work_state *ws, struct import_item *it)
{
	it->input = ws->input;
	import_input_ref(ws->input);
	if (stage_emit(ws->w, it) < 0) {
		import_input_unref(ws->input);
		it->input = NULL;
		return -1;
	}
	import_input_emitted(ws->input);
	return 0;
}

/* The keys and hashes of a page's items, for its record, and the values
 * its children take of them when the stage keeps them. */
struct page_keys {
	const char **keys;        /* borrowed from the items */
	uint64_t *hashes;
	size_t n, cap;
	bool oom;
	bool fields;              /* fw is in use */
	struct import_pagefields_writer fw;
};

static void page_keys_add(struct page_keys *pk, const char *key, uint64_t hash)
{
	if (pk->oom)
		return;
	if (pk->n == pk->cap) {
		size_t cap = pk->cap ? 2 * pk->cap : 16;
		const char **k = realloc(pk->keys, cap * sizeof *k);
		if (k)
			pk->keys = k;
		uint64_t *h = k ? realloc(pk->hashes, cap * sizeof *h) : NULL;
		if (h)
			pk->hashes = h;
		if (!k || !h) {
			pk->oom = true;
			return;
		}
		pk->cap = cap;
	}
	pk->keys[pk->n] = key;
	pk->hashes[pk->n++] = hash;
}

static void page_keys_free(struct page_keys *pk)
{
	free(pk->keys);
	free(pk->hashes);
	if (pk->fields)
		import_pagefields_free(&pk->fw);
}

/* Start keeping the page's values for its children, if the stage does. */
static void page_fields_begin(const struct stage_ctx *sc, struct page_keys *pk)
{
	if (!sc->keep_fields)
		return;
	pk->fields = true;
	import_pagefields_begin(&pk->fw, sc->fields_sig, sc->n_own);
}

/* An emitted item's own values for its children, kept with its page. */
static void page_fields_add(struct stage_ctx *sc, struct page_keys *pk,
                            const struct import_item *it)
{
	if (!pk->fields)
		return;
	for (size_t i = 0, o = 0; i < sc->n_carry; i++)
		if (sc->carry[i].stage == sc->index)
			import_item_carried(it, i, &sc->own_vals[o++]);
	import_pagefields_add(&pk->fw, sc->own_vals);
}

/* ---- values carried for descendants' URLs (import_item.h) ---- */

/* The values an item of sc, value v of doc (NULL: unreadable), made from
 * parent, carries: its own fields, read from it, and the ones its
 * parent carries that it passes on.  Own values are malloc'd into owned
 * (one a value, NULL for the others): carry_release() frees them.  -1
 * when out of memory. */
static int carry_values(struct stage_ctx *sc, const struct jsondoc *doc, uint32_t v,
                        const struct import_item *parent, struct import_carry *vals, char **owned)
{
	for (size_t i = 0; i < sc->n_carry; i++) {
		struct carry_ref *r = &sc->carry[i];
		owned[i] = NULL;
		vals[i] = (struct import_carry){.state = IMPORT_CARRY_ABSENT};
		if (r->stage != sc->index) {
			if (parent && r->from < parent->n_carried)
				import_item_carried(parent, r->from, &vals[i]);
			continue;
		}
		uint32_t x = doc ? urltemplate_lookup(doc, v, r->field) : JSONDOC_ABSENT;
		if (!urltemplate_is_value(doc, x)) {
			if (doc && !r->seen_absent) {
				/* the first item without it names the nearest field
				 * it has, for the error that may follow */
				char near[JSONPTR_TOKEN_MAX];
				r->seen_absent = true;
				if (urltemplate_nearest(doc, v, r->field, near, sizeof near) == 0)
					r->nearest = strdup(near);
			}
			continue;
		}
		/* as the URL takes it: a number as jsonb prints it, so that
		 * an item fetched and one read back carry the same text */
		size_t len = 0;
		int rc = urltemplate_value(doc, x, &owned[i], &len);
		if (rc < 0) {
			for (size_t j = 0; j < i; j++)
				free(owned[j]);
			return -1;
		}
		if (rc == URLTEMPLATE_VALUE_TOO_LONG) {
			vals[i].state = IMPORT_CARRY_TOO_LONG;
			continue;
		}
		vals[i] = (struct import_carry){.state = IMPORT_CARRY_VALUE, .value = owned[i], .len = len};
	}
	return 0;
}

static void carry_release(const struct stage_ctx *sc, char **owned)
{
	for (size_t i = 0; i < sc->n_carry; i++)
		free(owned[i]);
}

/* An item of sc for value v of doc with key k, carrying what it must. */
static struct import_item *make_item(struct stage_ctx *sc, const struct jsondoc *doc, uint32_t v,
                                     uint32_t k, const struct import_item *parent,
                                     const char *parent_key)
{
	if (sc->n_carry == 0)
		return import_item_new(doc, v, k, parent_key, NULL, 0);
	struct import_item *it = NULL;
	if (carry_values(sc, doc, v, parent, sc->vals, sc->owned) == 0) {
		it = import_item_new(doc, v, k, parent_key, sc->vals, sc->n_carry);
		carry_release(sc, sc->owned);
	}
	return it;
}

/* An item read back narrow (store_item.narrow): its own values are the
 * store's, each a value shorter than URLTEMPLATE_MAX_URL (the store sends
 * any other row whole), the rest from the parent; no text, which only a
 * value that is not one would be read from (first_url). */
static struct import_item *copy_narrow(struct stage_ctx *sc, const struct store_item *si,
                                       const struct import_item *parent, const char *parent_key)
{
	const char *vals[STORE_READ_FIELDS_MAX];
	const char *p = si->payload, *end = si->payload + si->payload_len;
	for (size_t f = 0; f < STORE_READ_FIELDS_MAX; f++)
		vals[f] = "";
	for (size_t f = 0; f < STORE_READ_FIELDS_MAX && p < end; f++) {
		vals[f] = p;
		p += strlen(p) + 1;
	}
	for (size_t i = 0; i < sc->n_carry; i++) {
		const struct carry_ref *r = &sc->carry[i];
		sc->vals[i] = (struct import_carry){.state = IMPORT_CARRY_ABSENT};
		if (r->stage == sc->index)
			sc->vals[i] = (struct import_carry){.state = IMPORT_CARRY_VALUE,
			                                    .value = vals[sc->narrow_at[i]],
			                                    .len = strlen(vals[sc->narrow_at[i]])};
		else if (parent && r->from < parent->n_carried)
			import_item_carried(parent, r->from, &sc->vals[i]);
	}
	return import_item_copy(si->key, parent_key, "", 0, sc->vals, sc->n_carry);
}

/* An item read back from the table, carrying what it must: its own
 * fields from its payload (parsed again only then), the rest from the
 * parent, the unit's input, which is in memory (docs/architecture.md). */
static struct import_item *copy_item(struct stage_ctx *sc, const struct store_item *si,
                                     const struct import_item *parent, const char *parent_key)
{
	if (si->narrow)
		return copy_narrow(sc, si, parent, parent_key);
	if (sc->n_carry == 0)
		return import_item_copy(si->key, parent_key, si->payload, si->payload_len, NULL, 0);
	struct jsondoc *doc = NULL;
	char err[ERR_MAX];
	if (sc->carry_own &&
	    jsondoc_parse(sc->imp->parent_doc, si->payload, si->payload_len, JSONDOC_ANY, err) == 0)
		doc = sc->imp->parent_doc;
	struct import_item *it = NULL;
	if (carry_values(sc, doc, 0, parent, sc->vals, sc->owned) == 0) {
		it = import_item_copy(si->key, parent_key, si->payload, si->payload_len, sc->vals,
		                      sc->n_carry);
		carry_release(sc, sc->owned);
	}
	if (doc)
		jsondoc_trim(doc, IMPORT_PARENT_DOC_KEEP);
	return it;
}

/* Whether the stage's kept values are not trusted in this run and the
 * next run may trust them: the run records what it found of the table
 * (store_deletes_seen), and is neither resumed nor under a cursor
 * (STORE_RUNS_PRIOR_SQL trusts no such run). */
static bool next_may_trust(const struct stage_ctx *sc)
{
	const struct import *imp = sc->imp;
	int64_t oid, deletes, trigger;
	return imp->env.store && !store_fields_trusted(imp->env.store, sc->index) &&
	       !imp->root_url && !imp->opt.resumed &&
	       store_deletes_seen(imp->env.store, sc->index, &oid, &deletes, &trigger);
}

/* Emit the page's items, each marked unchanged when the page's stored
 * state (ix) has it with the same hash.  Returns how many were emitted,
 * or -1 when the page has no array of items at all (then it is not paged
 * further). */
static long emit_items(struct work_state *ws, const struct jsondoc *doc,
                       const struct fetch_result *r, const struct import_page_index *ix,
                       struct page_keys *pk)
{
	struct stage_ctx *sc = ws->sc;
	const struct stage_conf *c = sc->conf;
	const struct stage_event *in = stage_work_input(ws->w);
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
		struct import_item *it = make_item(sc, doc, v, k, parent, parent_key);
		if (!it) {
			record_failure(sc, r->url, r->http_status, r->attempts, "out of memory");
			continue;
		}
		it->hash = import_item_hash(it->parent_key, it->text, it->text_len);
		it->unchanged = import_page_index_unchanged(ix, it->key, it->hash);
		/* In a run that does not trust the stage's kept values, an item
		 * unchanged is written all the same: a row deleted behind
		 * raced's back (why the run does not) would not be written
		 * back, and the page's kept values, trusted by the next run,
		 * would feed its children without ever reading it back
		 * (docs/architecture.md, "Children of a 304 without a
		 * read-back").  The write leaves a stored row the same as it is;
		 * the item stays unchanged for its links.  Only where the next
		 * run may trust them: not under a cursor, nor in a resumed run,
		 * nor when this run's deletes are not known (every later run
		 * reads back then, and finds such a row gone). */
		it->rewrite = it->unchanged && sc->keep_fields && next_may_trust(sc);
		if (emit_item(ws, it) < 0) {
			import_item_free(it);
			record_failure(sc, r->url, r->http_status, r->attempts, "out of memory");
			continue;
		}
		page_keys_add(pk, it->key, it->hash);
		page_fields_add(sc, pk, it);
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
 * stops (why is recorded, and the input has failed). */
static char *next_page(struct work_state *ws, const struct fetch_result *r)
{
	struct stage_ctx *sc = ws->sc;
	struct paginate_page page = {
		.url = r->url, .base_url = r->effective_url ? r->effective_url : r->url,
		.doc = r->doc, .link_next = r->link_next, .header = r->header,
	};
	char *next, err[ERR_MAX];

	if (paginate_next(&ws->paging, &sc->paging, &page, &next, err) < 0 ||
	    (next && paginate_follow(&ws->paging, &sc->paging, r->url, next, err) < 0)) {
		record_failure(sc, r->url, r->http_status, r->attempts, err);
		ws->failed = true;
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

/* Write the page's record (after the items emitted before it). */
static void record_page(struct work_state *ws, const struct store_page *pg)
{
	struct stage_ctx *sc = ws->sc;
	char err[ERR_MAX];
	if (import_input_record(ws->input, pg, sc->imp->env.store, sc->index, sc->imp->id, err) < 0)
		record_failure(sc, ws->url, 0, 0, err);
}

static void start_page(struct work_state *ws);

/* Go on to next (taken; NULL: the input is done) or end the unit. */
static void continue_at(struct work_state *ws, char *next)
{
	if (!next) {
		stage_work_done(ws->w);
		return;
	}
	if (set_page(ws, next, ws->page_no + 1) < 0) {
		record_failure(ws->sc, NULL, 0, 0, "out of memory");
		stage_work_done(ws->w);
		return;
	}
	ws->unconditional = false;
	stage_work_yield(ws->w);
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether writing pg would leave the stored row was as it is: then the
 * record is reached_only (only raced_reached names the page).  A stage
 * with refresh reads fetched_at, which every fetch moves: its fetched
 * pages are always written. */
static bool page_same(const struct stage_ctx *sc, const struct store_page_state *was,
                      const struct store_page *pg)
{
	if (!was || (pg->fetched && sc->conf->refresh_ms > 0) || was->page_no != pg->page_no)
		return false;
	if (!pg->content)   /* a 304's validators replace the stored ones when given */
		return (!pg->etag || str_same(pg->etag, was->etag)) &&
		       (!pg->last_modified || str_same(pg->last_modified, was->last_modified));
	if (!str_same(pg->etag, was->etag) || !str_same(pg->last_modified, was->last_modified) ||
	    !str_same(pg->next_url, was->next_url) || pg->n_keys != was->n_keys)
		return false;
	for (size_t i = 0; i < pg->n_keys; i++)
		if (pg->hashes[i] != was->hashes[i] || !str_same(pg->keys[i], was->keys[i]))
			return false;
	/* the values kept for the children: written once where the row has
	 * none yet (stored before they were kept) or other ones (the
	 * children's URLs changed) */
	if (!pg->fields != !was->fields || pg->fields_len != was->fields_len ||
	    (pg->fields && memcmp(pg->fields, was->fields, pg->fields_len) != 0))
		return false;
	return true;
}

/* Whether pg's keys are those stored for its page (the finish reads no
 * keys for a stage whose pages all kept theirs). */
static bool keys_same(const struct store_page_state *was, const struct store_page *pg)
{
	if (!was || was->page_no != pg->page_no || pg->n_keys != was->n_keys)
		return false;
	for (size_t i = 0; i < pg->n_keys; i++)
		if (!str_same(pg->keys[i], was->keys[i]))
			return false;
	return true;
}

/* A page answered with a body: its items (unchanged ones marked), its
 * record, then the next page. */
static void take_body(struct work_state *ws, const struct fetch_result *r)
{
	struct stage_ctx *sc = ws->sc;
	struct import *imp = sc->imp;
	/* A page requested without validators because its stored state
	 * proved wrong (rows gone) is not compared with that state either:
	 * its items would be taken as unchanged and never written back. */
	const struct store_page_state *was = imp->opt.full || ws->unconditional
		? NULL : import_input_page(ws->input, ws->shown);
	struct import_page_index *ix = import_page_index_new(was);
	struct page_keys pk = {0};
	page_fields_begin(sc, &pk);

	sc->pages++;
	uint64_t failed_before = sc->failed;
	long emitted = emit_items(ws, r->doc, r, ix, &pk);
	import_page_index_free(ix);
	if (imp->cb.page)
		imp->cb.page(imp->cb.arg, imp, sc->conf->name, r->url, r->http_status, r->attempts,
		             emitted > 0 ? (size_t)emitted : 0);
	bool unusable = emitted < 0 || (emitted == 0 && sc->failed > failed_before);
	if (unusable && fail_if_root_first_page(sc)) {
		page_keys_free(&pk);
		stage_work_done(ws->w);
		return;
	}
	sc->first_page_done = true;
	if (emitted < 0 || pk.oom)
		ws->failed = true;
	char *next = emitted < 0 ? NULL : next_page(ws, r);
	char *next_shown = next ? redact_dup(next) : NULL;
	struct store_page pg = {
		.url = ws->shown, .input = ws->input->url, .page_no = ws->page_no,
		.fetched = true, .content = !pk.oom,
		.etag = r->etag, .last_modified = r->last_modified, .next_url = next_shown,
		.keys = (const char *const *)pk.keys, .hashes = pk.hashes,
		.n_keys = pk.oom ? 0 : pk.n,
		.input_done = !next && !ws->failed,
	};
	if (pk.fields && !pk.oom && emitted >= 0 && (size_t)emitted == pk.n)
		pg.fields = import_pagefields_get(&pk.fw, &pg.fields_len);
	if (next && !next_shown)
		pg.content = false; /* out of memory: keep what was known */
	bool keys_dropped = pg.n_keys > IMPORT_PAGE_KEYS_MAX;
	if (keys_dropped) {
		pg.keys = NULL;
		pg.hashes = NULL;
		pg.n_keys = 0;
		pg.fields = NULL;
		pg.etag = pg.last_modified = NULL;
	}
	pg.reached_only = pg.content && page_same(sc, was, &pg);
	pg.keys_same = pg.content && !keys_dropped && keys_same(was, &pg);
	/* No row was stored for it: its input's state was read and has none,
	 * or the stage had no page row at the run's start (no state read).
	 * So all its items were sent (none compared) and the record lists
	 * them all. */
	bool no_row = ws->input->state ? !import_input_page(ws->input, ws->shown)
	              : imp->env.store && store_state_empty(imp->env.store, sc->index);
	pg.first = pg.content && !keys_dropped && !ws->unconditional && no_row;
	if (pg.content && pg.keys == pk.keys)   /* the record lists the page's keys */
		import_input_keys(ws->input, (const char *const *)pk.keys, pg.n_keys);
	record_page(ws, &pg);
	free(next_shown);
	page_keys_free(&pk);
	continue_at(ws, next);
}

/* The page's stored next page, to go on after a 304 or a skipped page:
 * NULL at the end.  A stored link that held a secret is masked and cannot
 * be followed: *unusable is set, and the page must be fetched again. */
static char *stored_next(struct work_state *ws, const struct store_page_state *pg,
                         bool *unusable)
{
	char err[ERR_MAX];
	*unusable = false;
	if (!pg->next_url)
		return NULL;
	if (strstr(pg->next_url, REDACT_MASK)) {
		*unusable = true;
		return NULL;
	}
	char *next = strdup(pg->next_url);
	if (!next || paginate_follow(&ws->paging, &ws->sc->paging, ws->url, next, err) < 0) {
		record_failure(ws->sc, ws->url, 0, 0, next ? err : "out of memory");
		ws->failed = true;
		free(next);
		return NULL;
	}
	return next;
}

/* The page as stored is this import's page: record it (a 304's
 * validators, or only that this import reached it, and the values its
 * children took of its rows read back when fw has them: take_items) and
 * go on at its stored next page. */
static void take_stored_fields(struct work_state *ws, const struct store_page_state *was,
                               bool fetched, const struct import_pagefields_writer *fw)
{
	struct stage_ctx *sc = ws->sc;
	bool unusable;
	char *next = stored_next(ws, was, &unusable);
	if (unusable) {
		ws->unconditional = true;
		start_page(ws);
		return;
	}
	struct store_page pg = {
		.url = ws->shown, .input = ws->input->url, .page_no = ws->page_no,
		.fetched = fetched, .content = false,
		.etag = fetched ? ws->etag : NULL,
		.last_modified = fetched ? ws->last_modified : NULL,
		.input_done = !next && !ws->failed,
	};
	pg.reached_only = page_same(sc, was, &pg);
	pg.keys_same = was && was->page_no == pg.page_no; /* no content: the stored keys stay */
	if (fw && (pg.fields = import_pagefields_get(fw, &pg.fields_len)) != NULL)
		pg.reached_only = false;   /* the row is written: its fields */
	sc->first_page_done = true;
	/* the page row keeps its stored keys: this import's walk lists them */
	import_input_keys(ws->input, (const char *const *)was->keys, was->n_keys);
	record_page(ws, &pg);
	continue_at(ws, next);
}

static void take_stored(struct work_state *ws, const struct store_page_state *was, bool fetched)
{
	take_stored_fields(ws, was, fetched, NULL);
}

static void request_page(struct work_state *ws);

/* A 304 that cannot be used (no validator was sent, nothing is stored
 * for the page, or its rows are gone): the page is requested once more
 * without validators; a second such answer fails the page. */
static void refetch(struct work_state *ws, long http_status, uint32_t attempts, const char *why)
{
	struct stage_ctx *sc = ws->sc;
	struct import *imp = sc->imp;
	char msg[ERR_MAX];
	if (ws->unconditional) {
		snprintf(msg, sizeof msg, "%s, again when asked without validators: the page's "
		         "items are not known (run with --full if the provider keeps doing it)", why);
		record_failure(sc, ws->url, http_status, attempts, msg);
		ws->failed = true;
		fail_if_root_first_page(sc);
		stage_work_done(ws->w);
		return;
	}
	sc->refetched++;
	if (imp->cb.notice) {
		snprintf(msg, sizeof msg, "%s: requesting it again without validators", why);
		imp->cb.notice(imp->cb.arg, imp, sc->conf->name, ws->shown, msg);
	}
	ws->unconditional = true;
	request_page(ws);
}

/* The parent key ws's input's rows were written with (its parent item's,
 * in a stage without dedupe), or NULL. */
static const char *rows_parent(const struct work_state *ws)
{
	const struct stage_event *in = stage_work_input(ws->w);
	const struct import_item *parent = in ? stage_event_payload(in) : NULL;
	return parent && !ws->sc->conf->dedupe ? parent->key : NULL;
}

/* Whether n keys of st's input are worth reading by their parent: a
 * range reads every row of the parent (the input's rows), so only when
 * they are at least half of the keys its pages list. */
static bool by_parent_worth(const struct store_input_state *st, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; st && i < st->n_pages; i++)
		total += st->pages[i].n_keys;
	return st && 2 * n >= total;
}

/* Read back the rows of keys for sc's children: narrow when the store
 * returns every field they take (import_fields.h), by the parents' keys
 * when known (parents: NULL, or one a key). */
static int read_back(struct stage_ctx *sc, const char *const *keys, const char *const *parents,
                     size_t n, uint64_t tag, char *err)
{
	struct store *store = sc->imp->env.store;
	return sc->narrow ? store_read_committed_fields(store, sc->index, keys, parents, n, tag, err)
	                  : store_read_committed(store, sc->index, keys, n, tag, err);
}

/* Ask the store for the rows of keys (tag and state on ws). */
static bool await_items(struct work_state *ws, enum ws_await what, const char *const *keys,
                        size_t n)
{
	struct import *imp = ws->sc->imp;
	char err[ERR_MAX];
	ws->tag = ++imp->next_tag;
	const char *parent = by_parent_worth(ws->input->state, n) ? rows_parent(ws) : NULL;
	const char **parents = parent && n ? malloc(n * sizeof *parents) : NULL;
	for (size_t i = 0; parents && i < n; i++)
		parents[i] = parent;
	int rc = read_back(ws->sc, keys, parents, n, ws->tag, err);
	free(parents);
	if (rc < 0) {
		record_failure(ws->sc, ws->url, 0, 0, err);
		return false;
	}
	ws->await = what;
	TAILQ_INSERT_TAIL(&imp->awaiting, ws, await_link);
	return true;
}

/* The unit is done with its entry read ahead. */
static void ahead_done(struct work_state *ws)
{
	import_ahead_drop(ws->sc->ahead, ws->ahead);
	ws->ahead = NULL;
	read_back_refill(ws->sc);
}

static void take_items(struct work_state *ws, struct store_items *items, const char *err,
                       enum ws_await what);

/* Its state taken: the entry is kept only for a read-back asked ahead. */
static void ahead_state_taken(struct work_state *ws)
{
	enum import_ahead_status is = import_ahead_items_status(ws->ahead);
	if (is != IMPORT_AHEAD_UNSENT && is != IMPORT_AHEAD_SENT && is != IMPORT_AHEAD_ANSWERED)
		ahead_done(ws);
}

static void resume_items(void *arg, void *waiter);

/* Send the stage's read-backs held back, as one read. */
static void items_flush(struct stage_ctx *sc)
{
	struct import *imp = sc->imp;
	const char **keys = NULL;
	size_t n = 0;
	uint64_t tag = 0;
	char err[ERR_MAX];
	const char *const *parents = NULL;
	if (!import_ahead_items_send(sc->ahead, &keys, &parents, &n, &tag, &imp->next_tag))
		return;
	if (read_back(sc, keys, parents, n, tag, err) < 0)
		(void)import_ahead_items_answer(sc->ahead, tag, NULL, true, resume_items, imp);
	free(keys);
}

/* On the loop turn after states came in: the read-backs they asked for
 * go, those of one answer together. */
static void items_flush_all(evutil_socket_t fd, short what, void *arg)
{
	struct import *imp = arg;
	(void)fd;
	(void)what;
	/* Its units are gone: no read for nobody (its answer would go to
	 * whichever sink is attached then). */
	if (!imp->pipe || imp->ending)
		return;
	for (size_t i = 0; i < imp->n_stages; i++)
		if (imp->stages[i].ahead && import_ahead_items_unsent(imp->stages[i].ahead))
			items_flush(&imp->stages[i]);
}

static bool fields_usable(const struct stage_ctx *sc, const struct store_page_state *was,
                          struct import_pagefields_reader *r);

/* The pages of st read back ahead after its first one (read_back_ahead):
 * of the next IMPORT_AHEAD_READ_BACK_PAGES with validators and keys, by
 * page_no, those whose 304 would not feed the children from their kept
 * values (fields_usable: their rows, read ahead, would be held unused
 * until the input's end, within IMPORT_AHEAD_READ_BACK_HELD); returns how
 * many. */
static size_t later_pages(const struct stage_ctx *sc, const struct store_input_state *st,
                          const struct store_page_state **out)
{
	size_t n = 0, seen = 0;
	uint32_t after = 0;
	struct import_pagefields_reader fr;
	while (st && seen++ < IMPORT_AHEAD_READ_BACK_PAGES) {
		const struct store_page_state *next = NULL;
		for (size_t i = 0; i < st->n_pages; i++) {
			const struct store_page_state *p = &st->pages[i];
			if (p->page_no > after && p->n_keys > 0 && (p->etag || p->last_modified) &&
			    (!next || p->page_no < next->page_no))
				next = p;
		}
		if (!next)
			break;
		if (!fields_usable(sc, next, &fr))
			out[n++] = next;
		after = next->page_no;
	}
	return n;
}

/* What rows cost held (as import_ahead counts them). */
static size_t rows_bytes(const struct store_items *it)
{
	size_t n = it ? sizeof *it : 0;
	for (size_t i = 0; it && i < it->n; i++) {
		const struct store_item *x = &it->items[i];
		n += sizeof *x + strlen(x->key) + 1 + (x->parent_key ? strlen(x->parent_key) + 1 : 0) +
		     x->payload_len + 1;
	}
	return n;
}

/* Move the rows of items from *at that answer page's keys (rows come in
 * the order of the keys asked, a missing one left out) into a new set;
 * NULL when out of memory (the rows stay). */
static struct store_items *rows_of_page(struct store_items *items, size_t *at,
                                        const struct store_page_state *page)
{
	size_t from = *at, to = from;
	for (size_t k = 0; k < page->n_keys && to < items->n; k++)
		if (strcmp(items->items[to].key, page->keys[k]) == 0)
			to++;
	struct store_items *out = calloc(1, sizeof *out);
	if (!out || (to > from && !(out->items = malloc((to - from) * sizeof *out->items)))) {
		free(out);
		return NULL;
	}
	for (size_t r = from; r < to; r++)
		out->items[out->n++] = items->items[r];
	*at = to;
	return out;
}

/* The first page's rows read back ahead came with those of the later
 * pages (read_back_ahead): they are kept on the unit, a set a page, for
 * their 304s; items keeps the first page's.  Out of memory: the rest of
 * the later rows are dropped (those pages are read when their 304 comes). */
static void keep_later(struct work_state *ws, struct store_items *items)
{
	const struct store_page_state *was = import_input_page(ws->input, ws->shown);
	if (!was)
		return;
	size_t at = 0;
	for (size_t k = 0; k < was->n_keys && at < items->n; k++)
		if (strcmp(items->items[at].key, was->keys[k]) == 0)
			at++;
	size_t first_n = at;
	const struct store_page_state *pages[IMPORT_AHEAD_READ_BACK_PAGES];
	size_t n = at < items->n ? later_pages(ws->sc, ws->input->state, pages) : 0;
	for (size_t i = 0; i < n && at < items->n; i++) {
		char *url = strdup(pages[i]->url);
		struct store_items *rows = url ? rows_of_page(items, &at, pages[i]) : NULL;
		if (!rows) {
			free(url);
			break;
		}
		ws->later_page[ws->n_later] = url;
		ws->later[ws->n_later++] = rows;
		size_t bytes = rows_bytes(rows) + strlen(url) + 1; /* the URL's until the unit ends */
		ws->later_charge += bytes;
		membudget_charge(bytes);
		/* still rows read back ahead: within IMPORT_AHEAD_READ_BACK_HELD */
		ws->later_held += rows->n;
		import_ahead_items_hold(ws->sc->ahead, rows->n);
	}
	/* rows kept by no page (out of memory; not expected otherwise) */
	for (size_t r = at; r < items->n; r++) {
		free(items->items[r].key);
		free(items->items[r].parent_key);
		free(items->items[r].payload);
	}
	items->n = first_n;
}

/* A later page's rows read back ahead with the first, now the caller's,
 * or NULL.  They answer was's keys in order, or they are not used (the
 * page is read when its 304 comes). */
static struct store_items *take_later(struct work_state *ws, const struct store_page_state *was)
{
	for (size_t i = 0; i < ws->n_later; i++) {
		struct store_items *rows = ws->later[i];
		if (!rows || strcmp(ws->later_page[i], was->url) != 0)
			continue;
		ws->later[i] = NULL;
		size_t bytes = rows_bytes(rows);
		ws->later_charge -= bytes;
		membudget_release(bytes);
		ws->later_held -= rows->n;
		import_ahead_items_unhold(ws->sc->ahead, rows->n);
		read_back_refill(ws->sc);
		size_t at = 0;
		for (size_t k = 0; k < was->n_keys && at < rows->n; k++)
			if (strcmp(rows->items[at].key, was->keys[k]) == 0)
				at++;
		if (at == rows->n)
			return rows;
		store_items_free(rows);
		return NULL;
	}
	return NULL;
}

/* Emit an item made from stored state (it; NULL: out of memory) for the
 * children: whether it went (else the unit failed, recorded). */
static bool emit_stored(struct work_state *ws, struct import_item *it)
{
	if (!it || emit_item(ws, it) < 0) {
		import_item_free(it);
		record_failure(ws->sc, ws->url, 0, 0, "out of memory");
		ws->failed = true;
		return false;
	}
	ws->sc->fetched++;
	return true;
}

/* Whether was's values for the children are kept with it and may feed
 * them (docs/architecture.md, "Children of a 304 without a read-back"):
 * the stage keeps them, the store trusts the table's rows to be there
 * (store_fields_trusted), and was's are the stage's fields' for each of
 * its keys.  Then r reads them. */
static bool fields_usable(const struct stage_ctx *sc, const struct store_page_state *was,
                          struct import_pagefields_reader *r)
{
	return sc->keep_fields && was && was->fields && sc->imp->env.store &&
	       store_fields_trusted(sc->imp->env.store, sc->index) &&
	       import_pagefields_open(r, was->fields, was->fields_len, sc->fields_sig, sc->n_own,
	                              was->n_keys);
}

/* Emit was's items for the children from its kept values (r), as the
 * rows read back would give them: unchanged, its own values from r, the
 * ancestors' from the parent item. */
static void emit_from_fields(struct work_state *ws, const struct store_page_state *was,
                             struct import_pagefields_reader *r)
{
	struct stage_ctx *sc = ws->sc;
	const struct stage_event *in = stage_work_input(ws->w);
	const struct import_item *parent = in ? stage_event_payload(in) : NULL;
	const char *parent_key = parent && !sc->conf->dedupe ? parent->key : NULL;
	for (size_t k = 0; k < was->n_keys && import_pagefields_next(r, sc->own_vals); k++) {
		for (size_t i = 0, o = 0; i < sc->n_carry; i++) {
			const struct carry_ref *c = &sc->carry[i];
			sc->vals[i] = (struct import_carry){.state = IMPORT_CARRY_ABSENT};
			if (c->stage == sc->index)
				sc->vals[i] = sc->own_vals[o++];
			else if (parent && c->from < parent->n_carried)
				import_item_carried(parent, c->from, &sc->vals[i]);
		}
		if (emit_stored(ws, import_item_copy(was->keys[k], parent_key, "", 0, sc->vals,
		                                     sc->n_carry)))
			sc->from_fields++;
	}
}

/* The pages of st, whose input is skipped, fed to the children from
 * their kept values: true when every page's could be (then they are). */
static bool skipped_from_fields(struct work_state *ws, const struct store_input_state *st)
{
	struct import_pagefields_reader r;
	for (size_t i = 0; i < st->n_pages; i++)
		if (st->pages[i].n_keys > 0 && !fields_usable(ws->sc, &st->pages[i], &r))
			return false;
	for (size_t i = 0; i < st->n_pages; i++)
		if (st->pages[i].n_keys > 0 && fields_usable(ws->sc, &st->pages[i], &r))
			emit_from_fields(ws, &st->pages[i], &r);
	return true;
}

/* The first page's rows, read back ahead (read_back_ahead): taken, or
 * awaited (true); false when there are none (not asked, or failed): the
 * caller reads them now. */
static bool take_items_ahead(struct work_state *ws)
{
	struct import_ahead_entry *e = ws->ahead;
	enum import_ahead_status is = e ? import_ahead_items_status(e) : IMPORT_AHEAD_NONE;
	if (is == IMPORT_AHEAD_UNSENT) {
		items_flush(ws->sc); /* needed now */
		is = import_ahead_items_status(e);
	}
	if (is == IMPORT_AHEAD_SENT) {
		import_ahead_items_wait(e, ws);
		ws->await = AWAIT_AHEAD_ITEMS;
		return true;
	}
	struct store_items *items = is == IMPORT_AHEAD_ANSWERED ? import_ahead_items_take(ws->sc->ahead, e)
	                                                         : NULL;
	if (items)
		keep_later(ws, items);   /* counted held before the refill */
	if (e)
		ahead_done(ws);
	if (!items)
		return false;
	ws->sc->read_back_ahead++;
	take_items(ws, items, NULL, AWAIT_PAGE);
	store_items_free(items);
	return true;
}

/* A 304: the page is as stored.  Its items feed the children, read back
 * from the table; a leaf stage needs none of them. */
static void take_not_modified(struct work_state *ws, const struct fetch_result *r)
{
	struct stage_ctx *sc = ws->sc;
	const struct store_page_state *was = import_input_page(ws->input, ws->shown);
	if (!r->conditional || !was) {
		refetch(ws, r->http_status, r->attempts,
		        r->conditional ? "HTTP 304 for a page raced has no record of"
		                       : "HTTP 304 to a request without validators");
		return;
	}
	sc->pages++;
	free(ws->etag);
	free(ws->last_modified);
	ws->etag = r->etag ? strdup(r->etag) : NULL;
	ws->last_modified = r->last_modified ? strdup(r->last_modified) : NULL;
	ws->stored_fetched = true;
	struct import_pagefields_reader fr;
	if (sc->has_children && was->n_keys > 0 && fields_usable(sc, was, &fr)) {
		/* no read-back: a first page's read ahead is not asked for
		 * (read_back_ahead) */
		emit_from_fields(ws, was, &fr);
	} else if (sc->has_children && was->n_keys > 0) {
		if (ws->page_no == 0 && was->page_no == 0 && take_items_ahead(ws))
			return;
		struct store_items *later = ws->page_no > 0 ? take_later(ws, was) : NULL;
		if (later) {
			sc->read_back_ahead++;
			take_items(ws, later, NULL, AWAIT_PAGE);
			store_items_free(later);
			return;
		}
		if (!await_items(ws, AWAIT_PAGE, (const char *const *)was->keys, was->n_keys)) {
			ws->failed = true;
			stage_work_done(ws->w);
		}
		return;
	}
	take_stored(ws, was, true);
}

/* Take one answered request: count it, then its page. */
static void take_page(struct work_state *ws, const struct fetch_result *r)
{
	struct stage_ctx *sc = ws->sc;

	if (r->attempts > 1)
		sc->retried += r->attempts - 1;
	sc->requests[outcome_of(r->http_status)]++;
	sc->bytes += r->bytes;
	if (r->outcome != FETCH_OK) {
		record_failure(sc, r->url, r->http_status, r->attempts, r->error);
		ws->failed = true;
		fail_if_root_first_page(sc);
		stage_work_done(ws->w);
		return;
	}
	if (r->not_modified)
		take_not_modified(ws, r);
	else
		take_body(ws, r);
}

static void on_fetched(void *arg, const struct fetch_result *r);

/* The unit's request for ws->url, conditional on what is stored of the
 * page unless --full or asked otherwise; a failure is recorded and ends
 * the unit. */
static void request_page(struct work_state *ws)
{
	struct stage_ctx *sc = ws->sc;
	struct import *imp = sc->imp;
	const struct store_page_state *was =
		imp->opt.full || ws->unconditional ? NULL : import_input_page(ws->input, ws->shown);
	struct fetch_validators v = {was ? was->etag : NULL, was ? was->last_modified : NULL};
	char err[ERR_MAX];

	ws->fetch = fetch_start_if(sc->provider, ws->url, &v, on_fetched, ws, err);
	if (ws->fetch && sc->paging.next == NEXT_HEADER_CURSOR &&
	    fetch_want_header(ws->fetch, sc->paging.header, err) < 0) {
		fetch_cancel(ws->fetch);
		ws->fetch = NULL;
	}
	if (ws->fetch) {
		imp->fetching++;
		return;
	}
	record_failure(sc, ws->url, 0, 0, err);
	ws->failed = true;
	fail_if_root_first_page(sc);
	stage_work_done(ws->w);
}

/* Request the page now, or wait for memory (membudget.h): a unit waits
 * while the charge is over the admission share and the import has a
 * request of its own in flight. */
static void request_or_wait(struct work_state *ws)
{
	struct import *imp = ws->sc->imp;
	if (!membudget_admits_start() && imp->fetching > 0) {
		ws->waiting = true;
		TAILQ_INSERT_TAIL(&imp->waiting, ws, wait_link);
		return;
	}
	request_page(ws);
}

/* The unit's current page: in a resumed run, a page this run already
 * recorded is not fetched again (its rows are committed); otherwise it
 * is requested. */
static void start_page(struct work_state *ws)
{
	struct import *imp = ws->sc->imp;
	const struct store_page_state *was = import_input_page(ws->input, ws->shown);
	if (imp->opt.resumed && !ws->unconditional && was && was->seen_import == imp->id) {
		/* read back: a resumed run trusts no kept values */
		if (ws->sc->has_children && was->n_keys > 0) {
			ws->stored_fetched = false;
			if (!await_items(ws, AWAIT_PAGE, (const char *const *)was->keys, was->n_keys)) {
				ws->failed = true;
				stage_work_done(ws->w);
			}
			return;
		}
		take_stored(ws, was, false);
		return;
	}
	request_or_wait(ws);
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
		membudget_give_back();
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

/* ---- what the store answers ---- */

static struct work_state *awaiting_take(struct import *imp, uint64_t tag)
{
	struct work_state *ws;
	TAILQ_FOREACH(ws, &imp->awaiting, await_link)
		if (ws->tag == tag) {
			TAILQ_REMOVE(&imp->awaiting, ws, await_link);
			return ws;
		}
	return NULL;
}

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* An input's state read ahead is in: if its first page has validators
 * (a 304 likely) and the stage has children, read that page's rows back
 * now, so that a 304 finds them there.  Not under --full (unconditional
 * requests), nor when memory is short. */
enum ahead_want { AHEAD_NOT, AHEAD_WANTED, AHEAD_DEFERRED };

static enum ahead_want read_back_ahead(struct stage_ctx *sc, struct import_ahead_entry *e,
                                       bool queued)
{
	struct import *imp = sc->imp;
	const struct store_input_state *st = import_ahead_state(e);
	const struct store_page_state *first = NULL;
	for (size_t i = 0; st && i < st->n_pages && !first; i++)
		if (st->pages[i].page_no == 0)
			first = &st->pages[i];
	struct import_pagefields_reader fr;
	if (!sc->has_children || imp->opt.full || !first || first->n_keys == 0 ||
	    (!first->etag && !first->last_modified))
		return AHEAD_NOT;
	/* its 304 feeds the children from the page's kept values */
	if (fields_usable(sc, first, &fr))
		return AHEAD_NOT;
	/* a page skipped by refresh, done or recorded by this run before it
	 * was resumed is read back at its start, not answered 304 */
	if ((imp->opt.resumed && (first->done_import == imp->id || first->seen_import == imp->id)) ||
	    (sc->conf->refresh_ms > 0 &&
	     now_ms() - first->fetched_at_ms < (int64_t)sc->conf->refresh_ms))
		return AHEAD_NOT;
	/* A first page larger than the bound never fits: read when its 304
	 * comes, not put off (it would hold up every read-back behind it). */
	if (first->n_keys > IMPORT_AHEAD_READ_BACK_HELD)
		return AHEAD_NOT;
	/* Read-backs put off before this one go first (read_back_refill). */
	if (!queued && import_ahead_items_deferred(sc->ahead)) {
		import_ahead_items_defer(sc->ahead, e);
		read_back_refill(sc);
		return AHEAD_DEFERRED;
	}
	/* The first page over the bound (or memory short): put off until rows
	 * held ahead are taken (read_back_refill), in order. */
	size_t held = import_ahead_items_held(sc->ahead);
	if (!membudget_admits_start() || held + first->n_keys > IMPORT_AHEAD_READ_BACK_HELD) {
		import_ahead_items_defer(sc->ahead, e);
		return AHEAD_DEFERRED;
	}
	/* The later pages with validators come along while they fit the room
	 * left and one read (IMPORT_AHEAD_READ_BACK_KEYS): one read for the
	 * input, not one a 304 (keep_later splits the rows). */
	size_t room = IMPORT_AHEAD_READ_BACK_HELD - held;
	if (room > IMPORT_AHEAD_READ_BACK_KEYS)
		room = IMPORT_AHEAD_READ_BACK_KEYS;
	const struct store_page_state *later[IMPORT_AHEAD_READ_BACK_PAGES];
	size_t n_pages = later_pages(sc, st, later), n_later = 0, n = first->n_keys;
	while (n_later < n_pages && n + later[n_later]->n_keys <= room)
		n += later[n_later++]->n_keys;
	const char **keys = n_later ? malloc(n * sizeof *keys) : NULL;
	if (keys) {
		size_t k = 0;
		for (size_t i = 0; i < first->n_keys; i++)
			keys[k++] = first->keys[i];
		for (size_t p = 0; p < n_later; p++)
			for (size_t i = 0; i < later[p]->n_keys; i++)
				keys[k++] = later[p]->keys[i];
		import_ahead_items_want(sc->ahead, e, keys, n, by_parent_worth(st, n));
		free(keys);
	} else {
		/* none later, or out of memory: the first page alone */
		import_ahead_items_want(sc->ahead, e, (const char *const *)first->keys, first->n_keys,
		                        by_parent_worth(st, first->n_keys));
	}
	if (import_ahead_items_unsent(sc->ahead) >= IMPORT_AHEAD_BATCH ||
	    import_ahead_items_unsent_keys(sc->ahead) >= IMPORT_AHEAD_READ_BACK_KEYS)
		items_flush(sc);
	else if (import_ahead_items_unsent(sc->ahead))
		event_active(imp->ahead_ev, EV_TIMEOUT, 0);
	return AHEAD_WANTED;
}

/* Rows held ahead were taken: once there is room for a whole read
 * (IMPORT_AHEAD_READ_BACK_KEYS), the read-backs put off for the bound
 * are wanted, oldest first, up to it again.  So first pages are read back
 * ahead for the whole stage, a read of many pages at a time, not only
 * for the inputs whose states came in while there was room. */
static void read_back_refill(struct stage_ctx *sc)
{
	if (!sc->ahead || sc->imp->ending || sc->imp->draining ||
	    import_ahead_items_held(sc->ahead) + IMPORT_AHEAD_READ_BACK_KEYS > IMPORT_AHEAD_READ_BACK_HELD)
		return;
	struct import_ahead_entry *e;
	while ((e = import_ahead_items_deferred(sc->ahead))) {
		enum ahead_want w = read_back_ahead(sc, e, true);
		if (w == AHEAD_DEFERRED)
			return;
		if (w == AHEAD_NOT)
			import_ahead_items_undefer(sc->ahead, e);
	}
}

/* The keys of every page of the input, in page order, for reading back. */
static const char **input_keys(const struct store_input_state *st, size_t *n)
{
	size_t total = 0;
	for (size_t i = 0; i < st->n_pages; i++)
		total += st->pages[i].n_keys;
	const char **keys = malloc((total ? total : 1) * sizeof *keys);
	if (!keys)
		return NULL;
	*n = 0;
	for (size_t i = 0; i < st->n_pages; i++)
		for (size_t k = 0; k < st->pages[i].n_keys; k++)
			keys[(*n)++] = st->pages[i].keys[k];
	return keys;
}

/* A skipped input's stored pages at most that its link records carry
 * the keys of (finding the walk is quadratic in them); more, and they go
 * by URL. */
#define SKIP_WALK_PAGES_MAX 64u

/* Which of the skipped input's stored pages are on its walk (page 0,
 * then each stored next_url, as the store's write by URL takes them);
 * false when that is not worked out (too many pages: by URL). */
static bool skipped_walk(const struct work_state *ws, const struct store_input_state *st,
                         bool walk[SKIP_WALK_PAGES_MAX])
{
	const struct store_page_state *pg = import_input_first(ws->input);
	bool known = pg && st->n_pages <= SKIP_WALK_PAGES_MAX;
	while (known && pg && !walk[pg - st->pages]) {
		walk[pg - st->pages] = true;
		pg = pg->next_url ? import_input_page(ws->input, pg->next_url) : NULL;
	}
	return known;
}

/* Record the skipped input's stored pages as reached, each after
 * declaring its keys (import_input_keys): a page on its walk lists its
 * stored keys, one off it (a page of an older, longer walk that no
 * succeeded import pruned yet) none. */
static void record_skipped(struct work_state *ws, const struct store_input_state *st)
{
	bool walk[SKIP_WALK_PAGES_MAX] = { false };
	bool known = skipped_walk(ws, st, walk);
	for (size_t i = 0; i < st->n_pages; i++) {
		struct store_page rec = {
			.url = st->pages[i].url, .input = ws->input->url, .page_no = st->pages[i].page_no,
			.input_done = i + 1 == st->n_pages, .reached_only = true, .keys_same = true,
		};
		if (known)
			import_input_keys(ws->input, (const char *const *)st->pages[i].keys,
			                  walk[i] ? st->pages[i].n_keys : 0);
		record_page(ws, &rec);
	}
}

/* The input is skipped: fetched within `refresh`, or done by this very
 * run before it was interrupted.  Its pages are recorded as reached (a
 * refreshed input also gets its checkpoint: a resume of this run skips
 * it too); its items are read back for the children, if any. */
static void skip_input(struct work_state *ws, bool fresh)
{
	struct stage_ctx *sc = ws->sc;
	const struct store_input_state *st = ws->input->state;
	ws->skip_fresh = fresh;
	sc->first_page_done = true;
	/* Done by an earlier run of this import: its checkpoint committed
	 * then, so its parents' links may be written (no record goes now),
	 * with the keys of its walk's pages as read with its state: the keys
	 * the write by URL would find in those rows, without its probes of
	 * raced_pages (a resume's records by URL cost 7.6 ms a statement
	 * against 1.6 ms by keys: docs/performance.md, "Resume"). */
	if (!fresh) {
		bool walk[SKIP_WALK_PAGES_MAX] = { false };
		ws->input->done = true;
		if (skipped_walk(ws, st, walk))
			for (size_t i = 0; i < st->n_pages; i++)
				import_input_keys(ws->input, (const char *const *)st->pages[i].keys,
				                  walk[i] ? st->pages[i].n_keys : 0);
	}
	if (sc->has_children && skipped_from_fields(ws, st)) {
		/* fed from the pages' kept values: done as below */
	} else if (sc->has_children) {
		size_t n = 0;
		const char **keys = input_keys(st, &n);
		if (!keys) {
			record_failure(sc, ws->url, 0, 0, "out of memory");
			ws->failed = true;
			stage_work_done(ws->w);
			return;
		}
		if (n > 0) {
			bool ok = await_items(ws, AWAIT_INPUT, keys, n);
			free(keys);
			if (!ok) {
				ws->failed = true;
				stage_work_done(ws->w);
			}
			return;
		}
		free(keys);
	}
	if (fresh)
		sc->skipped_fresh++;
	else
		sc->skipped_done++;
	if (fresh)
		record_skipped(ws, st);
	stage_work_done(ws->w);
}

/* The input's state is in: skip it, or fetch its first page. */
static void take_state(struct work_state *ws, struct store_input_state *st)
{
	struct stage_ctx *sc = ws->sc;
	struct import *imp = sc->imp;
	import_input_set_state(ws->input, st);
	if (ws->preloaded)
		import_input_from_pass(ws->input, &sc->pass_reached);
	const struct store_page_state *first = import_input_first(ws->input);
	if (first && imp->opt.resumed && first->done_import == imp->id) {
		skip_input(ws, false);
		return;
	}
	if (first && !imp->opt.full && sc->conf->refresh_ms > 0 &&
	    now_ms() - first->fetched_at_ms < (int64_t)sc->conf->refresh_ms) {
		skip_input(ws, true);
		return;
	}
	start_page(ws);
}

/* Read-back items of ws's input (keys in order; found are the rows
 * still there): emitted unchanged, their own values for the children
 * added to fw when given.  Returns whether every key was found. */
static bool emit_read_back(struct work_state *ws, const struct store_items *items, size_t asked,
                           struct import_pagefields_writer *fw)
{
	struct stage_ctx *sc = ws->sc;
	const struct stage_event *in = stage_work_input(ws->w);
	const struct import_item *parent = in ? stage_event_payload(in) : NULL;
	const char *parent_key = parent && !sc->conf->dedupe ? parent->key : NULL;
	if (!items || items->n < asked)
		return false;
	for (size_t i = 0; i < items->n; i++) {
		const struct store_item *si = &items->items[i];
		struct import_item *it = copy_item(sc, si, parent, parent_key);
		if (fw && it) {
			for (size_t c = 0, o = 0; c < sc->n_carry; c++)
				if (sc->carry[c].stage == sc->index)
					import_item_carried(it, c, &sc->own_vals[o++]);
			import_pagefields_add(fw, sc->own_vals);
		} else if (fw) {
			fw->unusable = true;
		}
		if (emit_stored(ws, it))
			sc->read_back++;
	}
	return true;
}

/* Whether a page answered 304 and read back (items) keeps the values
 * its children take of it from now on: the stage keeps them and the
 * page's row has none of its signature (written before they were kept,
 * or for other URLs), and the rows are its keys in order, one each.
 * Else such a page, answered 304 import after import, would be read
 * back every time (docs/architecture.md, "Children of a 304 without a
 * read-back"). */
static bool fields_backfill(const struct work_state *ws, const struct store_page_state *was,
                            const struct store_items *items)
{
	const struct stage_ctx *sc = ws->sc;
	struct import_pagefields_reader r;
	if (!sc->keep_fields || !ws->stored_fetched || !was || !items || was->n_keys == 0 ||
	    was->page_no != ws->page_no || items->n != was->n_keys ||
	    import_pagefields_open(&r, was->fields, was->fields_len, sc->fields_sig, sc->n_own,
	                           was->n_keys))
		return false;
	for (size_t k = 0; k < was->n_keys; k++)
		if (!str_same(items->items[k].key, was->keys[k]))
			return false;
	return true;
}

static void take_items(struct work_state *ws, struct store_items *items, const char *err,
                       enum ws_await what)
{
	struct stage_ctx *sc = ws->sc;
	const struct store_input_state *st = ws->input->state;
	if (err) {
		record_failure(sc, ws->url, 0, 0, err);
		ws->failed = true;
		stage_work_done(ws->w);
		return;
	}
	if (what == AWAIT_PAGE) {
		const struct store_page_state *was = import_input_page(ws->input, ws->shown);
		struct import_pagefields_writer fw;
		bool keep = fields_backfill(ws, was, items);
		if (keep)
			import_pagefields_begin(&fw, sc->fields_sig, sc->n_own);
		if (!was || !emit_read_back(ws, items, was->n_keys, keep ? &fw : NULL)) {
			if (keep)
				import_pagefields_free(&fw);
			refetch(ws, 304, 0, "the rows of a page answered 304 are not all in the table "
			        "any more");
			return;
		}
		take_stored_fields(ws, was, ws->stored_fetched, keep ? &fw : NULL);
		if (keep)
			import_pagefields_free(&fw);
		return;
	}
	size_t asked = 0;
	for (size_t i = 0; i < st->n_pages; i++)
		asked += st->pages[i].n_keys;
	if (!emit_read_back(ws, items, asked, NULL)) {
		/* Rows gone since: the input is fetched as if new. */
		ws->unconditional = true;
		start_page(ws);
		return;
	}
	if (ws->skip_fresh)
		sc->skipped_fresh++;
	else
		sc->skipped_done++;
	if (ws->skip_fresh)
		record_skipped(ws, st);
	stage_work_done(ws->w);
}

static void input_read(void *arg, size_t table, uint64_t tag, struct store_input_state *st,
                       const char *err)
{
	struct import *imp = arg;
	struct work_state *ws = imp->pipe ? awaiting_take(imp, tag) : NULL;
	if (!ws && imp->pipe && table < imp->n_stages) {
		/* A read made ahead: kept for its input, or given to the input
		 * that started meanwhile and waits for it. */
		struct stage_ctx *sc = &imp->stages[table];
		void *waiter = NULL;
		struct import_ahead_entry *e = NULL;
		if (import_ahead_answer(sc->ahead, tag, st, err != NULL, &waiter, &e)) {
			if (e)
				read_back_ahead(sc, e, false);
			if (!(ws = waiter))
				return;
			st = import_ahead_take(sc->ahead, ws->ahead);
			if (st)
				sc->state_ahead++;
			ahead_state_taken(ws);
		}
	}
	if (!ws) {
		store_input_state_free(st);
		return;
	}
	ws->await = AWAIT_NONE;
	pipeline_batch_begin(imp->pipe);
	if (imp->draining) {
		/* No new request while draining: the input is left undone. */
		store_input_state_free(st);
		stage_work_done(ws->w);
	} else if (err) {
		/* Not known: fetched unconditionally, as if new. */
		store_input_state_free(st);
		start_page(ws);
	} else {
		take_state(ws, st);
	}
	resume_waiting(imp);
	pipeline_batch_end(imp->pipe);
	check_drained(imp);
}

/* A unit whose 304 waited for its first page's rows read back ahead:
 * they are in (or the read failed: read them now).  Inside an engine
 * batch. */
static void resume_items(void *arg, void *waiter)
{
	struct import *imp = arg;
	struct work_state *ws = waiter;
	ws->await = AWAIT_NONE;
	struct store_items *items = import_ahead_items_take(ws->sc->ahead, ws->ahead);
	if (items && !imp->draining)
		keep_later(ws, items);   /* counted held before the refill */
	ahead_done(ws);
	if (imp->draining) {
		store_items_free(items);
		stage_work_done(ws->w); /* the input is left undone */
		return;
	}
	if (items) {
		ws->sc->read_back_ahead++;
		take_items(ws, items, NULL, AWAIT_PAGE);
		store_items_free(items);
		return;
	}
	const struct store_page_state *was = import_input_page(ws->input, ws->shown);
	if (!was || !await_items(ws, AWAIT_PAGE, (const char *const *)was->keys, was->n_keys)) {
		ws->failed = true;
		stage_work_done(ws->w);
	}
}

static void items_read(void *arg, size_t table, uint64_t tag, struct store_items *items,
                       const char *err)
{
	struct import *imp = arg;
	struct work_state *ws = imp->pipe ? awaiting_take(imp, tag) : NULL;
	if (!ws && imp->pipe && table < imp->n_stages) {
		/* A first page's rows read back ahead: kept, or given to the
		 * input whose 304 waits for them. */
		struct stage_ctx *sc = &imp->stages[table];
		pipeline_batch_begin(imp->pipe);
		bool ours = import_ahead_items_answer(sc->ahead, tag, items, err != NULL, resume_items, imp);
		if (ours) {
			resume_waiting(imp);
			pipeline_batch_end(imp->pipe);
			check_drained(imp);
			return;
		}
		pipeline_batch_end(imp->pipe);
	}
	if (!ws) {
		store_items_free(items);
		return;
	}
	enum ws_await what = ws->await;
	ws->await = AWAIT_NONE;
	pipeline_batch_begin(imp->pipe);
	if (imp->draining)
		stage_work_done(ws->w); /* the input is left undone */
	else
		take_items(ws, items, err, what);
	store_items_free(items);
	resume_waiting(imp);
	pipeline_batch_end(imp->pipe);
	check_drained(imp);
}

/* ---- starting units ---- */

/* Where an ancestor's value the i-th placeholder of sc names was read:
 * the carry_ref of that ancestor's own stage. */
static const struct carry_ref *carry_origin(const struct stage_ctx *sc, size_t i)
{
	const struct import *imp = sc->imp;
	size_t t = sc->parent, idx = sc->arg_from[i];
	while (imp->stages[t].carry[idx].stage != t) {
		idx = imp->stages[t].carry[idx].from;
		t = imp->stages[t].parent;
	}
	return &imp->stages[t].carry[idx];
}

/* The URL of an input's first page: the stage's template expanded against
 * the parent item and the values it carries, or for the root the URL the
 * run was given.  -1 with err; then *missing is the placeholder whose
 * field the parent (or the ancestor) lacked, SIZE_MAX for another
 * failure, and while the stage still counts such inputs
 * (missing_field_limit) near is the nearest field that item had, or "". */
static int first_url(struct stage_ctx *sc, const struct import_item *parent, char **url,
                     size_t *missing, char near[JSONPTR_TOKEN_MAX], char *err)
{
	struct jsondoc *doc = sc->imp->parent_doc;
	const struct jsondoc *pd = NULL;
	size_t n = urltemplate_placeholders(sc->tpl);
	*missing = SIZE_MAX;
	near[0] = '\0';
	if (sc->root && sc->imp->root_url) {
		*url = strdup(sc->imp->root_url);
		return *url ? 0 : err_set(err, "out of memory");
	}
	/* The parent's own fields were read when it was made (plan_carry).
	 * Only when one of them is not a value is the parent read again, so
	 * that the error says what it has there (its text was checked with
	 * its page). */
	bool read_parent = false;
	for (size_t i = 0; i < n; i++) {
		struct import_carry c = {.state = IMPORT_CARRY_ABSENT};
		if (sc->arg_from[i] == SIZE_MAX) {
			if (parent && sc->arg_own[i] < parent->n_carried)
				import_item_carried(parent, sc->arg_own[i], &c);
			if (c.state == IMPORT_CARRY_VALUE) {
				sc->args[i] = (struct urltemplate_arg){
					.kind = URLTEMPLATE_VALUE, .value = c.value, .len = c.len};
			} else {
				sc->args[i] = (struct urltemplate_arg){.kind = URLTEMPLATE_FROM_ITEM};
				read_parent = true;
			}
			continue;
		}
		if (parent && sc->arg_from[i] < parent->n_carried)
			import_item_carried(parent, sc->arg_from[i], &c);
		sc->args[i] = (struct urltemplate_arg){
			.kind = c.state == IMPORT_CARRY_VALUE ? URLTEMPLATE_VALUE
			      : c.state == IMPORT_CARRY_TOO_LONG ? URLTEMPLATE_TOO_LONG
			                                         : URLTEMPLATE_MISSING,
			.value = c.value, .len = c.len};
	}
	if (parent && read_parent &&
	    jsondoc_parse(doc, parent->text, parent->text_len, JSONDOC_ANY, err) == 0)
		pd = doc;
	int rc = urltemplate_expand_args(sc->tpl, pd, 0, sc->args, url, missing, err);
	if (rc < 0 && *missing != SIZE_MAX && !sc->missing_decided) {
		if (sc->arg_from[*missing] == SIZE_MAX) {
			if (urltemplate_nearest(pd, 0, urltemplate_field(sc->tpl, *missing), near,
			                        JSONPTR_TOKEN_MAX) < 0)
				near[0] = '\0';
		} else {
			const struct carry_ref *r = carry_origin(sc, *missing);
			snprintf(near, JSONPTR_TOKEN_MAX, "%s", r->nearest ? r->nearest : "");
		}
	}
	/* One huge parent item must not pin its tokens for the import. */
	jsondoc_trim(doc, IMPORT_PARENT_DOC_KEEP);
	return rc;
}

/* Write the url errors held back (missing_field_limit), one an input as
 * without the limit: some input had the field after all, or the stage
 * ran out of inputs first.  They were counted when they happened. */
static void missing_flush(struct stage_ctx *sc)
{
	for (uint64_t i = 0; i < sc->missing_n; i++)
		write_failure(sc, NULL, 0, 0, sc->missing_msg);
	sc->missing_n = 0;
	sc->missing_decided = true;
}

/* An input's URL could not be made (err; missing and near as first_url()
 * gives them).  While every input so far lacked the same field, the error
 * is held back; when the first missing_field_limit inputs all lacked it,
 * the url names a field the items do not have (a typo): the stage stops
 * with one error and the import fails, rather than writing one error an
 * input.  Once an input had it, each failure is written as it comes. */
static void url_failed(struct stage_ctx *sc, size_t missing, const char *near, const char *err)
{
	struct import *imp = sc->imp;
	uint32_t limit = sc->conf->missing_field_limit;
	if (sc->missing_decided || limit == 0 || missing == SIZE_MAX ||
	    (sc->missing_n > 0 && missing != sc->missing_ph)) {
		if (!sc->missing_decided)
			missing_flush(sc);
		record_failure(sc, NULL, 0, 0, err);
		return;
	}
	sc->failed++;
	imp->errors++;
	if (sc->missing_n++ == 0) {
		sc->missing_ph = missing;
		snprintf(sc->missing_msg, sizeof sc->missing_msg, "%s", err);
	}
	if (near[0])
		snprintf(sc->missing_near, sizeof sc->missing_near, "%s", near);
	if (sc->missing_n < limit)
		return;
	sc->stopped = true;
	sc->missing_decided = true;
	const char *scope;
	size_t scope_len = urltemplate_scope(sc->tpl, missing, &scope);
	char whose[CONFIG_NAME_MAX + 16], msg[ERR_MAX];
	if (scope_len)
		snprintf(whose, sizeof whose, "[stage %.*s] items", (int)scope_len, scope);
	else
		snprintf(whose, sizeof whose, "parent items");
	/* (cut at ERR_MAX, as every error is) */
	if (snprintf(msg, sizeof msg,
	         "url '%s': none of the first %" PRIu64 " inputs' %s has a string or number at "
	         "'{%s}'%s%s%s: [stage %s] stops and the import fails (correct the placeholder in "
	         "its url, or raise missing_field_limit if the first items may lack it)",
	         sc->conf->url, sc->missing_n, whose, urltemplate_placeholder(sc->tpl, missing),
	         sc->missing_near[0] ? " (the nearest field they have is '" : "",
	         sc->missing_near, sc->missing_near[0] ? "')" : "", sc->conf->name) < 0)
		snprintf(msg, sizeof msg, "[stage %s] stops: its url names a field no input has",
		         sc->conf->name);
	sc->missing_n = 0;
	write_failure(sc, NULL, 0, 0, msg);
	schedule_end(imp, "failed");
}

/* An input's URL was made: the field is there, so failures from now on
 * are the items' own (written one an input). */
static void url_made(struct stage_ctx *sc)
{
	if (!sc->missing_decided)
		missing_flush(sc);
}

/* A dedupe stage's cache of ended inputs' keys: IMPORT_KEYS_CACHE_MAX, or
 * a sixteenth of memory_limit when that is less (so a small limit, as
 * the tests set, exercises the records by URL past it). */
static size_t ended_keys_bound(void)
{
	size_t share = membudget_limit() / 16;
	return share < IMPORT_KEYS_CACHE_MAX ? share : IMPORT_KEYS_CACHE_MAX;
}

/* A parent whose URL (url) the dedupe stage saw already in this import:
 * its link goes after that input's last page record, or now if the input
 * has sent them all and completed (docs/architecture.md, "Edges"). */
static void link_seen(struct stage_ctx *sc, const struct import_item *parent, const char *url)
{
	char err[ERR_MAX];
	if (!parent)
		return;
	char *shown = redact_dup(url);
	struct import_input *in = shown ? import_input_find(&sc->live, shown) : NULL;
	int rc = !shown ? (sc->links.dropped++, err_set(err, "out of memory"))
	         : in ? import_input_link(in, parent->key, parent->unchanged, sc->imp->env.store,
	                                  sc->index, sc->imp->id, err)
	              : import_links_ended(&sc->links, &sc->undone, sc->ended, shown, parent->key,
	                                   parent->unchanged, sc->imp->env.store, sc->index,
	                                   sc->imp->id, err);
	if (rc < 0)
		record_failure(sc, shown ? shown : url, 0, 0, err);
	free(shown);
}

/* A dedupe stage's input, its URL marked seen, that never began (out of
 * memory): no parent meeting that URL may link as to an input that ended
 * with its checkpoint (import_keys would take its key as implied), so
 * none of an ended input does (import_undone, lost). */
static void never_began(struct stage_ctx *sc)
{
	if (sc->seen)
		sc->undone.lost = true;
}

/* The state of a unit about to walk its input, or NULL when there is
 * nothing to fetch: a dedupe stage has seen the URL, or it failed
 * (recorded).  Then the unit is done. */
static struct work_state *work_begin(struct stage_ctx *sc, struct stage_work *w)
{
	const struct stage_event *in = stage_work_input(w);
	char *expanded = NULL, *url = NULL, err[ERR_MAX], near[JSONPTR_TOKEN_MAX];
	struct work_state *ws = NULL;
	/* made when the input was queued (stage_queued): its URL is known */
	struct work_state *pre = stage_work_user(w);
	size_t missing;

	/* The input's URL is its first page's, paging parameters set. */
	if (sc->stopped) {
		/* its url names a field no input has: the import is ending */
		sc->failed++;
		sc->imp->errors++;
	} else if (!pre &&
	           first_url(sc, in ? stage_event_payload(in) : NULL, &expanded, &missing, near, err) < 0) {
		url_failed(sc, missing, near, err);
		fail_if_root_first_page(sc);
	} else if (!pre && paginate_first(&sc->paging, expanded, &url, err) < 0) {
		url_made(sc);
		record_failure(sc, NULL, 0, 0, err);
		fail_if_root_first_page(sc);
	} else {
		url_made(sc);
		const char *u = pre ? pre->url : url;
		if (sc->seen && !dedupe_add(sc->seen, u, strlen(u))) {
			sc->skipped++;
			link_seen(sc, in ? stage_event_payload(in) : NULL, u);
		} else if (pre) {
			ws = pre;
		} else if (!(ws = calloc(1, sizeof *ws))) {
			record_failure(sc, NULL, 0, 0, "out of memory");
			never_began(sc);
		}
	}
	free(expanded);
	if (!ws) {
		free(url);
		stage_work_done(w); /* frees pre, its read ahead dropped */
		return NULL;
	}
	ws->sc = sc;
	ws->w = w;
	if (ws != pre)
		stage_work_set_user(w, ws, work_state_free);
	if ((ws != pre && set_page(ws, url, 0) < 0) || !(ws->input = import_input_new(ws->shown))) {
		record_failure(sc, NULL, 0, 0, "out of memory");
		never_began(sc);
		fail_if_root_first_page(sc);
		stage_work_done(w);
		return NULL;
	}
	const struct import_item *parent = in ? stage_event_payload(in) : NULL;
	if (sc->seen) {
		import_input_live(ws->input, &sc->live);
		ws->input->undone = &sc->undone;
		ws->input->links = &sc->links;
		ws->input->ended = sc->ended;
		if (parent && import_input_link(ws->input, parent->key, parent->unchanged,
		                                sc->imp->env.store, sc->index, sc->imp->id, err) < 0)
			record_failure(sc, ws->shown, 0, 0, err);
	}
	return ws;
}

/* Whether an input of the stage reads its state before its first page:
 * not with --full (a resumed --full run reads its checkpoints), nor in a
 * first import, where no earlier run kept any state of the stage
 * (store_state_empty): the read would answer nothing, and only after
 * every batch queued before it committed, which held the stage's
 * fetches up (docs/performance.md, "Waiting end to end").  Such a run
 * fetches every input as --full does. */
static bool reads_state(const struct stage_ctx *sc)
{
	const struct import *imp = sc->imp;
	if (imp->opt.resumed)
		return true;
	return !imp->opt.full && !(imp->env.store && store_state_empty(imp->env.store, sc->index));
}

/* Whether the stage's inputs the pass holds start while it still reads
 * (preload_release): when a 304 of theirs needs no read-back, having no
 * children or kept values the store trusts (fields_usable).  Otherwise
 * they wait for its end as before: released together, their read-backs
 * go out together, many inputs a statement (read_back_ahead). */
static bool starts_early(const struct stage_ctx *sc)
{
	return !sc->has_children ||
	       (sc->keep_fields && sc->imp->env.store &&
	        store_fields_trusted(sc->imp->env.store, sc->index));
}

/* Send the stage's asks held back, STORE_READ_INPUTS_MAX a statement.
 * Those the store cannot take (out of memory) stay unsent: their inputs
 * read when they start. */
static void ahead_flush(struct stage_ctx *sc)
{
	struct import *imp = sc->imp;
	const char *urls[STORE_READ_INPUTS_MAX];
	uint64_t tags[STORE_READ_INPUTS_MAX];
	char err[ERR_MAX];
	size_t n;
	while ((n = import_ahead_send(sc->ahead, urls, tags, STORE_READ_INPUTS_MAX, &imp->next_tag))) {
		size_t asked = 0;
		if (store_get_inputs(imp->env.store, sc->index, urls, tags, n, &asked, err) < 0) {
			for (size_t i = n; i-- > asked;)
				import_ahead_unsend(sc->ahead, tags[i]);
			return;
		}
	}
}

static const char *rows_parent(const struct work_state *ws);

/* A queued unit's entry was asked: filled from the stage's pass when it
 * knows the URL (no read of its own; its first page's rows may still be
 * read back ahead), else held to be read ahead with the others. */
static void ahead_asked(struct work_state *ws)
{
	import_ahead_set_parent(ws->ahead, rows_parent(ws));
	struct stage_ctx *sc = ws->sc;
	struct store_input_state *st = NULL;
	if (sc->preload && import_ahead_status(ws->ahead) == IMPORT_AHEAD_UNSENT &&
	    import_preload_take_known(sc->preload, ws->shown, &st) != IMPORT_PRELOAD_UNKNOWN) {
		if (import_ahead_fill(sc->ahead, ws->ahead, st)) {
			ws->preloaded = true;
			sc->state_preloaded++;
			sc->preload_early += import_preload_phase(sc->preload) == IMPORT_PRELOAD_READING;
			read_back_ahead(sc, ws->ahead, false);
			return;
		}
		store_input_state_free(st); /* not UNSENT: checked above */
	}
	if (import_ahead_unsent(sc->ahead) >= IMPORT_AHEAD_BATCH)
		ahead_flush(sc);
}

/* An input was queued for the stage: ask for its state now, with the
 * others queued, so that it is there when the input starts
 * (import_ahead.h).  Not when the stage reads no state (reads_state:
 * --full, a first import), nor when memory is short or the URL cannot be
 * made (its start says why), nor for a URL
 * a dedupe stage has fetched already in this import (skipped at start). */
static void stage_queued(void *ctx, struct stage *st, struct stage_work *w)
{
	struct stage_ctx *sc = ctx;
	struct import *imp = sc->imp;
	const struct stage_event *in = stage_work_input(w);
	char *expanded = NULL, *url = NULL, err[ERR_MAX], near[JSONPTR_TOKEN_MAX];
	size_t missing;
	(void)st;
	if (!reads_state(sc) || !sc->ahead || sc->stopped || imp->draining ||
	    !membudget_admits_start())
		return;
	int rc = first_url(sc, in ? stage_event_payload(in) : NULL, &expanded, &missing, near, err);
	if (rc == 0)
		rc = paginate_first(&sc->paging, expanded, &url, err);
	free(expanded);
	if (rc < 0)
		return;
	if (sc->seen && dedupe_has(sc->seen, url, strlen(url))) {
		free(url);
		return;
	}
	struct work_state *ws = calloc(1, sizeof *ws);
	if (!ws) {
		free(url);
		return;
	}
	if (set_page(ws, url, 0) < 0) {
		free(ws);
		return;
	}
	ws->sc = sc;
	ws->w = w;
	if (sc->preload && import_preload_phase(sc->preload) == IMPORT_PRELOAD_READING &&
	    (!starts_early(sc) || !import_preload_knows(sc->preload, ws->shown))) {
		/* a later chunk may hold it: asked when one does, or when the
		 * pass is done */
		TAILQ_INSERT_TAIL(&sc->preload_units, ws, preload_link);
		ws->preload_listed = true;
		stage_work_set_user(w, ws, work_state_free);
		return;
	}
	if (!(ws->ahead = import_ahead_ask(sc->ahead, ws->shown))) {
		free(ws->url);
		free(ws->shown);
		free(ws);
		return;
	}
	stage_work_set_user(w, ws, work_state_free);
	ahead_asked(ws);
}

/* The input's state as read ahead: taken (true), or awaited; false when
 * there is none to take (not asked ahead, or spent): it is read now. */
static bool take_ahead(struct work_state *ws)
{
	struct stage_ctx *sc = ws->sc;
	struct import_ahead_entry *e = ws->ahead;
	if (!e)
		return false;
	if (import_ahead_status(e) == IMPORT_AHEAD_UNSENT)
		ahead_flush(sc); /* it is needed now: the asks held back go */
	switch (import_ahead_status(e)) {
	case IMPORT_AHEAD_SENT:
		import_ahead_wait(e, ws);
		ws->await = AWAIT_AHEAD;
		return true;
	case IMPORT_AHEAD_ANSWERED: {
		struct store_input_state *st = import_ahead_take(sc->ahead, e);
		if (!ws->preloaded)
			sc->state_ahead++;
		ahead_state_taken(ws);
		take_state(ws, st);
		return true;
	}
	case IMPORT_AHEAD_FAILED:
		/* not known: fetched unconditionally, as if new */
		import_ahead_drop(sc->ahead, e);
		ws->ahead = NULL;
		start_page(ws);
		return true;
	case IMPORT_AHEAD_UNSENT:
	case IMPORT_AHEAD_TAKEN:
	case IMPORT_AHEAD_NONE:
		break;
	}
	import_ahead_drop(sc->ahead, e);
	ws->ahead = NULL;
	return false;
}

/* The input's state from the stage's pass, if it knows it (found, or
 * no row): taken (true); false: it is read. */
static bool take_preloaded(struct work_state *ws)
{
	struct stage_ctx *sc = ws->sc;
	struct store_input_state *st = NULL;
	if (!sc->preload ||
	    import_preload_take(sc->preload, ws->input->url, &st) == IMPORT_PRELOAD_UNKNOWN)
		return false;
	ws->preloaded = true;
	sc->state_preloaded++;
	sc->preload_early += import_preload_phase(sc->preload) == IMPORT_PRELOAD_READING;
	take_state(ws, st);
	return true;
}

/* A started unit's state from the stage's pass through an entry of its
 * own, filled as a queued unit's is (ahead_asked): its first page's rows
 * are then read back ahead too when its 304 will need them, with those
 * of the other units that start in the same turn (one statement).  An
 * entry the pass cannot fill is read ahead.  false: no entry to spare. */
static bool take_via_ahead(struct work_state *ws)
{
	struct stage_ctx *sc = ws->sc;
	if (ws->ahead || !sc->ahead || !sc->preload ||
	    !(ws->ahead = import_ahead_ask(sc->ahead, ws->shown)))
		return false;
	ahead_asked(ws);
	return take_ahead(ws);
}

/* Begin the input: read its state first (or take it, read ahead or from
 * the stage's pass), if it has any to read. */
static void begin_input(struct work_state *ws)
{
	struct stage_ctx *sc = ws->sc;
	struct import *imp = sc->imp;
	char err[ERR_MAX];
	if (!reads_state(sc)) {
		start_page(ws);
		return;
	}
	if (sc->preload && import_preload_phase(sc->preload) == IMPORT_PRELOAD_READING) {
		/* the chunks so far held it (its entry filled as it was queued,
		 * or the pass holds it now): it starts, the pass goes on */
		if (!ws->preload_listed && starts_early(sc) &&
		    ((ws->ahead && take_ahead(ws)) ||
		     (import_preload_knows(sc->preload, ws->input->url) &&
		      (take_via_ahead(ws) || take_preloaded(ws)))))
			return;
		/* begun when a chunk brings it (preload_release) or the pass is
		 * done (preload_settled) */
		if (!ws->preload_listed) {
			TAILQ_INSERT_TAIL(&sc->preload_units, ws, preload_link);
			ws->preload_listed = true;
		}
		ws->await = AWAIT_PRELOAD;
		return;
	}
	if (take_ahead(ws) || take_via_ahead(ws) || take_preloaded(ws))
		return;
	ws->tag = ++imp->next_tag;
	if (store_get_input(imp->env.store, ws->sc->index, ws->input->url, ws->tag, err) < 0) {
		start_page(ws); /* out of memory: fetched as if new */
		return;
	}
	ws->await = AWAIT_STATE;
	TAILQ_INSERT_TAIL(&imp->awaiting, ws, await_link);
}

/* ---- the stage's state in one pass (import_preload.h) ---- */

/* A unit that waited on the pass goes on: queued, it asks for its state
 * (filled from the pass, or read ahead); begun, it begins again (when
 * draining, it is left undone). */
static void preload_go_on(struct work_state *ws)
{
	struct stage_ctx *sc = ws->sc;
	struct import *imp = sc->imp;
	if (ws->await == AWAIT_PRELOAD) {
		ws->await = AWAIT_NONE;
		if (imp->draining)
			stage_work_done(ws->w); /* no new request: left undone */
		else
			begin_input(ws);
	} else if (!imp->draining && (ws->ahead = import_ahead_ask(sc->ahead, ws->shown))) {
		ahead_asked(ws);
	}
}

/* The pass is done (read to the end, or stopped): every unit that waited
 * on it goes on.  Inside an engine batch. */
static void preload_settled(struct stage_ctx *sc)
{
	struct work_state *ws;
	while ((ws = TAILQ_FIRST(&sc->preload_units))) {
		TAILQ_REMOVE(&sc->preload_units, ws, preload_link);
		ws->preload_listed = false;
		preload_go_on(ws);
	}
}

/* Go on with the units waiting on the pass whose input a chunk has now
 * brought, as preload_settled does for all of them at the end.  They move
 * to preload_ready first, so that a unit freed while another goes on
 * leaves both lists as they should be.  Inside an engine batch. */
static void preload_release(struct stage_ctx *sc)
{
	struct work_state *ws, *next;
	if (!starts_early(sc))
		return;
	for (ws = TAILQ_FIRST(&sc->preload_units); ws; ws = next) {
		next = TAILQ_NEXT(ws, preload_link);
		const char *url = ws->await == AWAIT_PRELOAD ? ws->input->url : ws->shown;
		if (!import_preload_knows(sc->preload, url))
			continue;
		TAILQ_REMOVE(&sc->preload_units, ws, preload_link);
		TAILQ_INSERT_TAIL(&sc->preload_ready, ws, preload_link);
		ws->preload_ready = true;
	}
	while ((ws = TAILQ_FIRST(&sc->preload_ready))) {
		TAILQ_REMOVE(&sc->preload_ready, ws, preload_link);
		ws->preload_listed = ws->preload_ready = false;
		preload_go_on(ws);
	}
}

/* Ask the pass's next chunk.  false: it could not be asked (the pass
 * stopped). */
static bool preload_next(struct stage_ctx *sc)
{
	struct import *imp = sc->imp;
	char err[ERR_MAX];
	struct store_stage_at at;
	sc->preload_tag = ++imp->next_tag;
	if (import_preload_next(sc->preload, &at) &&
	    store_read_stage(imp->env.store, sc->index, &at, sc->preload_tag, err) == 0)
		return true;
	import_preload_stop(sc->preload);
	return false;
}

static void stage_read(void *arg, size_t table, uint64_t tag, struct store_stage_chunk *chunk,
                       const char *err)
{
	struct import *imp = arg;
	struct stage_ctx *sc = table < imp->n_stages ? &imp->stages[table] : NULL;
	if (!sc || !sc->preload || tag != sc->preload_tag ||
	    import_preload_phase(sc->preload) != IMPORT_PRELOAD_READING) {
		store_stage_chunk_free(chunk);
		return;
	}
	/* a failed read stops the pass: what it holds still answers */
	if (import_preload_add(sc->preload, err ? NULL : chunk) == IMPORT_PRELOAD_READING) {
		if (!imp->draining && imp->pipe && preload_next(sc)) {
			pipeline_batch_begin(imp->pipe);
			preload_release(sc);
			resume_waiting(imp);
			pipeline_batch_end(imp->pipe);
			check_drained(imp);
			return;
		}
		import_preload_stop(sc->preload);
	}
	if (!imp->pipe)
		return;
	pipeline_batch_begin(imp->pipe);
	preload_settled(sc);
	resume_waiting(imp);
	pipeline_batch_end(imp->pipe);
	check_drained(imp);
}

/* A re-import's child stages read their state in one pass each (not the
 * root: one input, read as it begins), so that their inputs need no read
 * of their own.  Not where the stage reads no state (reads_state). */
static void preload_begin(struct import *imp)
{
	size_t share = membudget_limit() / IMPORT_PRELOAD_SHARE;
	size_t bound = share < IMPORT_PRELOAD_BYTES_MAX ? share : IMPORT_PRELOAD_BYTES_MAX;
	bool analyzed = false;
	for (size_t i = 0; i < imp->n_stages; i++) {
		struct stage_ctx *sc = &imp->stages[i];
		if (!sc->ahead || !imp->env.store || !reads_state(sc) || bound == 0 ||
		    !(sc->preload = import_preload_new(bound, true)))
			continue;
		/* statistics fresh before the passes' first statement: stale
		 * ones may plan each of them as a scan and sort of the stage
		 * (out of memory: the reads go as planned) */
		if (!analyzed)
			(void)store_analyze_state(imp->env.store);
		analyzed = true;
		if (!preload_next(sc)) {
			import_preload_free(sc->preload);
			sc->preload = NULL;
		}
	}
}

/* Walk the unit's input: its state first, then its pages (the next one
 * on a later start). */
static void stage_start(void *ctx, struct stage *st, struct stage_work *w)
{
	struct stage_ctx *sc = ctx;
	struct work_state *ws = stage_work_user(w);
	(void)st;

	/* not begun: none, or made when it was queued (no input yet) */
	if (!ws || !ws->input) {
		if ((ws = work_begin(sc, w)))
			begin_input(ws);
		return;
	}
	start_page(ws);
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

/* A value that does not fit its typed column: one import_errors row for
 * the item (its row is stored, that column NULL).  Counted as bad_values,
 * not as a failed item: the run can still succeed. */
static void value_bad(void *arg, size_t table, const char *message)
{
	struct import *imp = arg;
	struct stage_ctx *sc = &imp->stages[table];
	sc->bad_values++;
	if (store_add_error(imp->env.store, imp->id, sc->conf->name, "", 0, 0, message) != 0 &&
	    imp->cb.error)
		imp->cb.error(imp->cb.arg, imp, sc->conf->name, NULL, 0, 0,
		              "out of memory: the next error is not recorded in import_errors");
	if (imp->cb.error)
		imp->cb.error(imp->cb.arg, imp, sc->conf->name, NULL, 0, 0, message);
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
	.queued = stage_queued,
};

static int provider_index(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_providers; i++)
		if (strcmp(cfg->providers[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Index of stage name[0..len) in the import, or SIZE_MAX. */
static size_t stage_index(const struct import *imp, const char *name, size_t len)
{
	for (size_t i = 0; i < imp->n_stages; i++)
		if (strlen(imp->stages[i].conf->name) == len &&
		    memcmp(imp->stages[i].conf->name, name, len) == 0)
			return i;
	return SIZE_MAX;
}

/* Index of (stage, field) in sc's carry list, adding it (from: its index
 * in the parent's list); SIZE_MAX when out of memory. */
static size_t carry_add(struct stage_ctx *sc, size_t stage, const char *field, size_t from)
{
	for (size_t i = 0; i < sc->n_carry; i++)
		if (sc->carry[i].stage == stage && strcmp(sc->carry[i].field, field) == 0)
			return i;
	struct carry_ref *c = realloc(sc->carry, (sc->n_carry + 1) * sizeof *c);
	if (!c)
		return SIZE_MAX;
	sc->carry = c;
	c[sc->n_carry] = (struct carry_ref){.stage = stage, .field = field, .from = from};
	sc->carry_own = sc->carry_own || stage == sc->index;
	return sc->n_carry++;
}

/* Placeholder i of stage s names ancestor a's field (config_check refused
 * anything else; refused here again, as the import's own guard): each
 * stage from a down to s's parent carries it, a reading it from its own
 * items, and s takes it from the parent item. */
static int plan_ancestor(struct import *imp, size_t s, size_t i, size_t a, char *err)
{
	struct stage_ctx *sc = &imp->stages[s];
	const char *field = urltemplate_field(sc->tpl, i);
	size_t path[IMPORT_MAX_DEPTH], n = 0;
	for (size_t t = sc->parent; t != a; t = imp->stages[t].parent) {
		if (t == SIZE_MAX || imp->stages[t].conf->dedupe)
			return err_set(err, "[stage %s] url '%s': '{%s}' is not a field of an ancestor "
			               "whose items reach it one to one", sc->conf->name, sc->conf->url,
			               urltemplate_placeholder(sc->tpl, i));
		if (n == IMPORT_MAX_DEPTH)
			return err_set(err, "[stage %s] url '%s': '{%s}' is more than %d stages up",
			               sc->conf->name, sc->conf->url, urltemplate_placeholder(sc->tpl, i),
			               IMPORT_MAX_DEPTH);
		path[n++] = t;
	}
	size_t idx = carry_add(&imp->stages[a], a, field, SIZE_MAX);
	while (idx != SIZE_MAX && n > 0) {
		size_t t = path[--n];
		idx = carry_add(&imp->stages[t], a, field, idx);
	}
	if (idx == SIZE_MAX)
		return err_set(err, "out of memory");
	sc->arg_from[i] = idx;
	return 0;
}

/* What each stage's items carry for their descendants' URLs
 * (import_item.h), and where each placeholder's value comes from. */
static int plan_carry(struct import *imp, char *err)
{
	for (size_t s = 0; s < imp->n_stages; s++) {
		struct stage_ctx *sc = &imp->stages[s];
		size_t n = urltemplate_placeholders(sc->tpl);
		sc->arg_from = malloc((n ? n : 1) * sizeof *sc->arg_from);
		sc->arg_own = malloc((n ? n : 1) * sizeof *sc->arg_own);
		sc->args = calloc(n ? n : 1, sizeof *sc->args);
		if (!sc->arg_from || !sc->arg_own || !sc->args)
			return err_set(err, "out of memory");
		for (size_t i = 0; i < n; i++) {
			const char *scope;
			size_t len = urltemplate_scope(sc->tpl, i, &scope);
			size_t a = len ? stage_index(imp, scope, len) : SIZE_MAX;
			sc->arg_from[i] = sc->arg_own[i] = SIZE_MAX;
			if (len && a == SIZE_MAX)
				return err_set(err, "[stage %s] url '%s': '{%s}' names no stage",
				               sc->conf->name, sc->conf->url, urltemplate_placeholder(sc->tpl, i));
			if (len && a != sc->parent && plan_ancestor(imp, s, i, a, err) < 0)
				return -1;
			/* The parent item's own field: its stage reads it when it
			 * makes the item, from the page it has parsed anyway, so
			 * that the URL does not parse the item's text again
			 * (first_url). */
			if (sc->arg_from[i] == SIZE_MAX && sc->parent != SIZE_MAX &&
			    (sc->arg_own[i] = carry_add(&imp->stages[sc->parent], sc->parent,
			                                urltemplate_field(sc->tpl, i), SIZE_MAX)) == SIZE_MAX)
				return err_set(err, "out of memory");
		}
	}
	for (size_t s = 0; s < imp->n_stages; s++) {
		struct stage_ctx *sc = &imp->stages[s];
		if (sc->n_carry == 0)
			continue;
		sc->vals = calloc(sc->n_carry, sizeof *sc->vals);
		sc->owned = calloc(sc->n_carry, sizeof *sc->owned);
		if (!sc->vals || !sc->owned)
			return err_set(err, "out of memory");
	}
	return 0;
}

/* Which stages' read-backs come narrow: those whose table the store
 * reads narrow with every own field they carry among its fields
 * (import_fields.h; a store made for another pipeline may lack some). */
static int plan_narrow(struct import *imp, char *err)
{
	for (size_t s = 0; imp->env.store && s < imp->n_stages; s++) {
		struct stage_ctx *sc = &imp->stages[s];
		const char *const *fields;
		size_t n;
		if (!store_read_fields_of(imp->env.store, s, &fields, &n))
			continue;
		if (!(sc->narrow_at = malloc((sc->n_carry ? sc->n_carry : 1) * sizeof *sc->narrow_at)))
			return err_set(err, "out of memory");
		sc->narrow = true;
		for (size_t i = 0; i < sc->n_carry; i++) {
			sc->narrow_at[i] = SIZE_MAX;
			if (sc->carry[i].stage != s)
				continue;
			for (size_t f = 0; f < n && sc->narrow_at[i] == SIZE_MAX; f++)
				if (strcmp(fields[f], sc->carry[i].field) == 0)
					sc->narrow_at[i] = f;
			sc->narrow = sc->narrow && sc->narrow_at[i] != SIZE_MAX;
		}
	}
	return 0;
}

/* Which stages keep their children's values with each page
 * (import_pagefields.h): those with children, when there is a store;
 * the signature names their own carried fields in carry order. */
static int plan_fields(struct import *imp, char *err)
{
	for (size_t s = 0; imp->env.store && s < imp->n_stages; s++) {
		struct stage_ctx *sc = &imp->stages[s];
		if (!sc->has_children)
			continue;
		const char **names = malloc((sc->n_carry ? sc->n_carry : 1) * sizeof *names);
		sc->own_vals = calloc(sc->n_carry ? sc->n_carry : 1, sizeof *sc->own_vals);
		if (!names || !sc->own_vals) {
			free(names);
			return err_set(err, "out of memory");
		}
		sc->n_own = 0;
		for (size_t i = 0; i < sc->n_carry; i++)
			if (sc->carry[i].stage == s)
				names[sc->n_own++] = sc->carry[i].field;
		sc->fields_sig = import_pagefields_sig(names, sc->n_own);
		sc->keep_fields = true;
		free(names);
	}
	return 0;
}

/* Whether the stage may leave out the link records of unchanged parents
 * (struct import_links): not with --full, not in a resumed run (it cannot
 * tell what its earlier run committed), only when the store trusts the
 * links the run before left, and not when its url names an ancestor's
 * field: an unchanged parent may then map to another input. */
static bool links_trusted(const struct stage_ctx *sc)
{
	const struct import *imp = sc->imp;
	if (!sc->seen || imp->opt.full || imp->opt.resumed || !imp->env.store ||
	    !store_links_trusted(imp->env.store, sc->index))
		return false;
	for (size_t i = 0; i < urltemplate_placeholders(sc->tpl); i++)
		if (sc->arg_from[i] != SIZE_MAX)
			return false;
	return true;
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
		sc->parent = SIZE_MAX;
		for (size_t j = 0; j < i; j++)
			if (c->parent && strcmp(cfg->stages[j].name, c->parent) == 0)
				sc->parent = j;
		for (size_t j = 0; j < cfg->n_stages; j++)
			if (cfg->stages[j].parent && strcmp(cfg->stages[j].parent, c->name) == 0)
				sc->has_children = true;
		sc->paging = paginate_rule_of(c);
		if (pi < 0)
			return err_set(err, "[stage %s] names unknown provider '%s'", c->name, c->provider);
		sc->provider = imp->env.providers[pi];
		sc->tpl = urltemplate_parse(c->url, err);
		if (!sc->tpl)
			return -1;
		if (!sc->root && !(sc->ahead = import_ahead_new()))
			return err_set(err, "out of memory");
		if (c->dedupe && (!(sc->seen = dedupe_new(IMPORT_DEDUPE_MAX_KEYS)) ||
		                  !(sc->ended = import_keys_new(ended_keys_bound()))))
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
	if (plan_carry(imp, err) < 0 || plan_narrow(imp, err) < 0 || plan_fields(imp, err) < 0)
		return -1;
	for (size_t i = 0; i < imp->n_stages; i++)
		imp->stages[i].links.trusted = links_trusted(&imp->stages[i]);
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
		if (import_store_columns(imp->rows, i, c->columns, c->n_columns) != 0)
			return err_set(err, "out of memory");
	}
	return 0;
}

struct import *import_new(const struct import_env *env, int64_t id,
                          const struct import_options *opt,
                          const struct import_callbacks *cb, char *err)
{
	struct import *imp = calloc(1, sizeof *imp);
	if (!imp) {
		err_set(err, "out of memory");
		return NULL;
	}
	imp->env = *env;
	imp->cb = *cb;
	imp->id = id;
	imp->n_stages = env->cfg->n_stages;
	TAILQ_INIT(&imp->waiting);
	TAILQ_INIT(&imp->awaiting);
	if (opt)
		imp->opt = *opt;
	imp->opt.root_url = NULL; /* the caller's: imp->root_url is the copy */
	imp->opt.prior_counts = NULL; /* likewise: imp->prior is the copy */
	if (opt && opt->prior_counts && !(imp->prior = json_deep_copy(opt->prior_counts))) {
		err_set(err, "out of memory");
		free(imp);
		return NULL;
	}
	if (opt && opt->root_url && !(imp->root_url = strdup(opt->root_url))) {
		err_set(err, "out of memory");
		free(imp);
		return NULL;
	}
	/* The daemon runs one import at a time: the budget is its. */
	membudget_set_limit(env->cfg->memory_limit ? env->cfg->memory_limit : MEMBUDGET_UNLIMITED);
	imp->stages = calloc(imp->n_stages, sizeof *imp->stages);
	imp->end_ev = event_new(env->base, -1, 0, end_run, imp);
	imp->ahead_ev = event_new(env->base, -1, 0, items_flush_all, imp);
	struct import_store_hooks hooks = {
		.failed = rows_failed, .committed = rows_committed, .held = rows_held,
		.table_failed = table_failed, .input_read = input_read, .items_read = items_read,
		.bad_value = value_bad, .stage_read = stage_read,
		.arg = imp};
	imp->rows = import_store_new(env->base, env->store, id, imp->n_stages, &hooks);
	imp->parent_doc = jsondoc_new();
	if (!imp->stages || !imp->end_ev || !imp->ahead_ev || !imp->rows || !imp->parent_doc) {
		err_set(err, "out of memory");
		import_free(imp);
		return NULL;
	}
	for (size_t i = 0; i < imp->n_stages; i++) {
		TAILQ_INIT(&imp->stages[i].preload_units);
		TAILQ_INIT(&imp->stages[i].preload_ready);
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
		struct stage_ctx *sc = &imp->stages[i];
		urltemplate_free(sc->tpl);
		dedupe_free(sc->seen);
		import_undone_free(&sc->undone);
		import_undone_free(&sc->links.changed);
		for (size_t j = 0; j < sc->n_carry; j++)
			free(sc->carry[j].nearest);
		free(sc->carry);
		free(sc->arg_from);
		free(sc->arg_own);
		free(sc->narrow_at);
		free(sc->own_vals);
		free(sc->args);
		free(sc->vals);
		free(sc->owned);
		/* An input still referenced (by an item the store consumer
		 * holds) must not unlink itself from a freed list. */
		for (size_t b = 0; b < IMPORT_LIVE_BUCKETS; b++)
			while (sc->live.buckets[b]) {
				struct import_input *in = sc->live.buckets[b];
				sc->live.buckets[b] = in->live_next;
				in->live_prev = NULL;
				in->live_next = NULL;
				in->undone = NULL;
				in->links = NULL;
				in->ended = NULL;
			}
		import_keys_free(sc->ended);
		import_ahead_free(sc->ahead); /* after the pipeline: its units hold entries */
		import_preload_free(sc->preload);
	}
	free(imp->stages);
	free(imp->root_url);
	json_decref(imp->prior);
	json_decref(imp->final);
	jsondoc_free(imp->parent_doc);
	if (imp->end_ev)
		event_free(imp->end_ev);
	if (imp->ahead_ev)
		event_free(imp->ahead_ev);
	free(imp);
}

int import_start(struct import *imp, char *err)
{
	if (pipeline_start(imp->pipe) < 0)
		return err_set(err, "the pipeline could not start");
	preload_begin(imp);
	return 0;
}

void import_pause(struct import *imp, bool paused)
{
	imp->paused = paused;
	if (imp->pipe && !imp->draining)
		pipeline_pause(imp->pipe, paused);
}

void import_config_changed(struct import *imp)
{
	for (size_t i = 0; i < imp->n_stages && imp->pipe; i++)
		if (imp->stages[i].st)
			(void)stage_set_concurrency(imp->stages[i].st, imp->stages[i].conf->concurrency);
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

bool import_status_committed(const struct import *imp)
{
	return imp->status_committed;
}

/* ---- figures ---- */

void import_tick(struct import *imp)
{
	uint32_t outage = imp->env.cfg->max_outage_ms;
	if (outage > 0 && !imp->ending && !imp->end_status &&
	    store_down_ms(imp->env.store) > outage) {
		imp->db_failed = true;
		record_failure(&imp->stages[0], NULL, 0, 0,
		               "the database was away for longer than max_outage: the import stops "
		               "here; resume it with racectl start-import --resume once the "
		               "database is back (or raise [database] max_outage)");
		schedule_end(imp, "failed");
	}
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

/* What the import state saved (issue figures: requests with a body,
 * answered 304, bytes, rows written and unchanged, inputs skipped). */
static void state_counts(const struct stage_ctx *sc, json_t *o)
{
	const struct import *imp = sc->imp;
	json_object_set_new(o, "requests_body", json_integer((json_int_t)sc->requests[1]));
	json_object_set_new(o, "requests_304", json_integer((json_int_t)sc->requests[2]));
	json_object_set_new(o, "bytes", json_integer((json_int_t)sc->bytes));
	json_object_set_new(o, "unchanged",
	                    json_integer((json_int_t)import_store_unchanged(imp->rows, sc->index)));
	json_object_set_new(o, "skipped_fresh", json_integer((json_int_t)sc->skipped_fresh));
	json_object_set_new(o, "skipped_done", json_integer((json_int_t)sc->skipped_done));
	json_object_set_new(o, "read_back", json_integer((json_int_t)sc->read_back));
	json_object_set_new(o, "from_fields", json_integer((json_int_t)sc->from_fields));
	int64_t oid, deletes, trigger;
	if (imp->env.store &&
	    store_deletes_seen(imp->env.store, sc->index, &oid, &deletes, &trigger)) {
		/* for the next run's store_fields_trusted: not counts to add up */
		json_object_set_new(o, "table_oid", json_integer((json_int_t)oid));
		json_object_set_new(o, "deletes_seen", json_integer((json_int_t)deletes));
		json_object_set_new(o, "trigger_oid", json_integer((json_int_t)trigger));
	}
	json_object_set_new(o, "state_ahead", json_integer((json_int_t)sc->state_ahead));
	json_object_set_new(o, "state_preloaded", json_integer((json_int_t)sc->state_preloaded));
	if (sc->preload) {
		struct import_preload_stats ps;
		import_preload_get_stats(sc->preload, &ps);
		json_object_set_new(o, "preload_rows", json_integer((json_int_t)ps.rows));
		json_object_set_new(o, "preload_reads", json_integer((json_int_t)ps.chunks));
		json_object_set_new(o, "preload_bytes", json_integer((json_int_t)ps.peak_bytes));
		json_object_set_new(o, "preload_complete",
		                    json_integer(import_preload_phase(sc->preload) == IMPORT_PRELOAD_COMPLETE));
		json_object_set_new(o, "preload_rows_reached", json_integer((json_int_t)sc->pass_reached));
		json_object_set_new(o, "preload_early", json_integer((json_int_t)sc->preload_early));
		json_object_set_new(o, "preload_by_keyset", json_integer(ps.by_keyset));
		json_object_set_new(o, "preload_again", json_integer((json_int_t)ps.again));
	}
	json_object_set_new(o, "read_back_ahead", json_integer((json_int_t)sc->read_back_ahead));
	struct import_ahead_stats as = { 0 };
	if (sc->ahead)
		import_ahead_get_stats(sc->ahead, &as);
	json_object_set_new(o, "read_back_held_peak", json_integer((json_int_t)as.items_held_peak));
	json_object_set_new(o, "refetched", json_integer((json_int_t)sc->refetched));
	if (sc->seen) {
		json_object_set_new(o, "links_sent", json_integer((json_int_t)sc->links.sent));
		json_object_set_new(o, "links_by_url", json_integer((json_int_t)sc->links.by_url));
		json_object_set_new(o, "links_skipped", json_integer((json_int_t)sc->links.skipped));
		json_object_set_new(o, "links_dropped", json_integer((json_int_t)sc->links.dropped));
	}
}

/* A resumed run's counts go on from where they were. */
static void add_prior(json_t *c, const json_t *prior)
{
	const char *k;
	json_t *v;
	json_object_foreach(c, k, v) {
		const json_t *p = json_object_get(prior, k);
		size_t len = strlen(k);
		if (len > 5 && strcmp(k + len - 5, "_peak") == 0) {
			/* a peak, not a sum */
			if (json_is_integer(v) && json_is_integer(p) &&
			    json_integer_value(p) > json_integer_value(v))
				json_integer_set(v, json_integer_value(p));
			continue;
		}
		if (json_is_integer(v) && json_is_integer(p))
			json_integer_set(v, json_integer_value(v) + json_integer_value(p));
	}
}

json_t *import_counts(const struct import *imp)
{
	if (imp->final)
		return json_deep_copy(imp->final);
	json_t *o = json_object();
	for (size_t i = 0; i < imp->n_stages; i++) {
		const struct stage_ctx *sc = &imp->stages[i];
		json_t *c = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
		                      "fetched", (json_int_t)sc->fetched,
		                      "stored", (json_int_t)import_store_stored(imp->rows, i),
		                      "failed", (json_int_t)sc->failed,
		                      "retried", (json_int_t)sc->retried,
		                      "skipped", (json_int_t)sc->skipped,
		                      "pages", (json_int_t)sc->pages);
		state_counts(sc, c);
		if (sc->bad_values)
			json_object_set_new(c, "bad_values", json_integer((json_int_t)sc->bad_values));
		add_prior(c, json_object_get(imp->prior, sc->conf->name));
		json_object_set_new(o, sc->conf->name, c);
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
		state_counts(sc, o);
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
