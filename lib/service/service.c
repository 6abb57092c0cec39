/* service — see service.h.
 *
 * This is the one place, besides daemon/main.c, that logs: it is where the
 * asynchronous failures of the modules below (a fetch that failed for
 * good, the database going away) are finally handled.
 */
#include "service.h"

#include "config.h"
#include "config_pipeline.h"
#include "config_value.h"
#include "error.h"
#include "fetch.h"
#include "import.h"
#include "import_fields.h"
#include "lifecycle.h"
#include "log.h"
#include "membudget.h"
#include "runstart.h"
#include "store.h"

#include <event2/event.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A status query waiting for the database: answered exactly once, by the
 * store, or with an error when that store goes away (reload, shutdown). */
struct runs_query {
	struct service *s;
	service_json_fn cb;
	void *arg;
	struct runs_query *next;
};

/* The drain after service_stop(), one way: the running import is
 * interrupted, then abandoned after stop_timeout, then raced stops. */
enum service_phase {
	SERVICE_SERVING,
	SERVICE_DRAINING,              /* waiting up to stop_timeout */
	SERVICE_ABANDONING,            /* fetches abandoned; waiting for the final status */
	SERVICE_STOPPED,               /* stopped() was called */
};

enum drain_event {
	DRAIN_ASKED,                   /* service_stop(), once or again */
	DRAIN_DEADLINE,                /* stop_timeout, or the grace after it, passed */
	DRAIN_REAPED,                  /* the import ended and was freed */
};

struct service {
	struct event_base *base;
	struct runs_query *queries;    /* waiting for the store */
	struct service_callbacks cb;
	struct config *cfg;
	struct config *next_cfg;       /* a reload waiting for the import to end */
	struct fetcher *fetcher;
	struct fetch_provider **providers;
	struct store *store;
	enum store_state store_state;
	char store_why[ERR_MAX];
	const char **tables;
	struct import *imp;
	struct event *tick_ev;
	struct event *reap_ev;         /* frees an ended import on a fresh turn */
	struct event *stop_ev;         /* the drain deadline */
	struct lifecycle life;         /* idle, waiting for the db, creating the run, running */
	struct service_start pending;  /* the options of the pending start (lifecycle: at most one) */
	char *pending_root_url;        /* its root URL, once known (a cursor, or a resumed run's) */
	json_t *pending_run;           /* a resume: the run it continues (store_get_run) */
	bool auto_resume;              /* [daemon] resume = auto applies (not raced --once) */
	enum service_phase phase;
	int64_t last_id;
	const char *last_status;
	json_t *last_stats;            /* the last import's final figures, for stats when idle */
	time_t started_at;             /* of the running import, or the last one */
	time_t finished_at;            /* of the last import; 0 while one runs */
};

static void store_columns_of_free(struct store_columns *sc, size_t n)
{
	for (size_t i = 0; sc && i < n; i++)
		free((void *)sc[i].cols);
	free(sc);
}

/* The stages' typed columns as the store takes them (borrowing the
 * config's strings; the store copies them).  NULL when out of memory. */
static struct store_columns *store_columns_of(const struct config *cfg)
{
	struct store_columns *sc = calloc(cfg->n_stages ? cfg->n_stages : 1, sizeof *sc);
	for (size_t i = 0; sc && i < cfg->n_stages; i++) {
		const struct stage_conf *st = &cfg->stages[i];
		if (st->n_columns == 0)
			continue;
		struct store_column *cols = calloc(st->n_columns, sizeof *cols);
		if (!cols) {
			store_columns_of_free(sc, cfg->n_stages);
			return NULL;
		}
		for (size_t c = 0; c < st->n_columns; c++)
			cols[c] = (struct store_column){ st->columns[c].name, st->columns[c].type,
			                                 st->columns[c].pointer, st->columns[c].indexed };
		sc[i].cols = cols;
		sc[i].n = st->n_columns;
	}
	return sc;
}

static int build_backends(struct service *s, char *err);
static int build_fetcher(struct service *s, char *err);
static int build_tables(struct service *s, char *err);
static int build_store(struct service *s, char *err);
static void fail_queries(struct service *s, const char *why);
static void free_backends(struct service *s);
static void start_on_db(struct service *s, enum lifecycle_event ev);
static void drain_on(struct service *s, enum drain_event ev);

static bool stopping(const struct service *s)
{
	return s->phase != SERVICE_SERVING;
}

/* ---- the store ---- */

static void store_state_changed(void *arg, enum store_state st, const char *why)
{
	struct service *s = arg;
	enum store_state old = s->store_state;
	s->store_state = st;
	snprintf(s->store_why, sizeof s->store_why, "%s", why ? why : "");
	if (st == STORE_READY && s->cfg->discard)
		log_warn("database: %s", why);
	else if (st == STORE_READY)
		log_notice("database: connected%s", old == STORE_BACKOFF ? " again" : "");
	else if (st == STORE_BACKOFF)
		log_warn("database: %s", why && *why ? why : "connection lost; retrying");
	if (st == STORE_READY || st == STORE_BACKOFF)
		start_on_db(s, st == STORE_READY ? LIFECYCLE_EV_DB_READY : LIFECYCLE_EV_DB_LOST);
}

/* One line per run a dead daemon left 'running', as it was marked: when it
 * was last alive and the rows its committed batches stored, per stage in
 * the stages' order. */
/* [daemon] resume = auto: the latest resumable run, if it may be resumed
 * with this configuration, is resumed now. */
static void auto_resume_found(void *arg, json_t *run, const char *err)
{
	struct service *s = arg;
	char e[ERR_MAX];
	if (err || !json_is_object(run))
		return;
	json_int_t id = json_integer_value(json_object_get(run, "id"));
	if (runstart_check_resume(run, id, e) < 0 ||
	    config_pipeline_diff(json_object_get(run, "pipeline"), s->cfg, id, e, sizeof e) < 0) {
		log_warn("resume = auto: import %" JSON_INTEGER_FORMAT " is not resumed: %s", id, e);
		return;
	}
	struct service_start opt = {.resume = true, .resume_id = id};
	if (service_start_import_when_ready(s, "raced (resume = auto)", &opt, e) < 0)
		log_warn("resume = auto: import %" JSON_INTEGER_FORMAT " is not resumed: %s", id, e);
}

static void maybe_auto_resume(struct service *s)
{
	if (!s->auto_resume || s->cfg->resume != CONFIG_RESUME_AUTO || s->imp)
		return;
	s->auto_resume = false; /* once, at start */
	if (store_get_run(s->store, 0, auto_resume_found, s) < 0)
		log_err("resume = auto: out of memory looking for an import to resume");
}

static void stale_marked(void *arg, json_t *runs, const char *err)
{
	struct service *s = arg;
	if (err) {
		log_err("database: cannot mark the imports left running as interrupted: %s", err);
		return;
	}
	maybe_auto_resume(s);
	size_t i;
	json_t *run;
	json_array_foreach(runs, i, run) {
		const json_t *counts = json_object_get(run, "counts");
		char per_stage[LOG_LINE_MAX / 2] = "";
		size_t used = 0;
		json_int_t total = 0;
		for (size_t k = 0; k < s->cfg->n_stages && used < sizeof per_stage; k++) {
			const char *name = s->cfg->stages[k].name;
			json_int_t n = json_integer_value(json_object_get(json_object_get(counts, name), "stored"));
			total += n;
			int w = snprintf(per_stage + used, sizeof per_stage - used, "%s%s %" JSON_INTEGER_FORMAT,
			                 k ? ", " : "", name, n);
			used += w > 0 ? (size_t)w : 0;
		}
		log_warn("import %" JSON_INTEGER_FORMAT " was running when raced stopped (last alive %s): "
		         "marked interrupted, %" JSON_INTEGER_FORMAT " rows stored (%s)",
		         json_integer_value(json_object_get(run, "id")),
		         json_string_value(json_object_get(run, "finished_at")), total, per_stage);
	}
}

/* ---- imports ---- */

static void import_error(void *arg, struct import *imp, const char *stage, const char *url,
                         long http_status, uint32_t attempts, const char *message)
{
	(void)arg;
	(void)imp;
	(void)http_status;
	(void)attempts;
	log_warn("[stage %s] %s%s%s", stage, message, url && *url && !strstr(message, url) ? " — " : "",
	         url && *url && !strstr(message, url) ? url : "");
}

static void import_notice(void *arg, struct import *imp, const char *stage, const char *url,
                          const char *message)
{
	(void)arg;
	(void)imp;
	log_notice("[stage %s] %s%s%s", stage, message, url ? " — " : "", url ? url : "");
}

static void import_page(void *arg, struct import *imp, const char *stage, const char *url,
                        long http_status, uint32_t attempts, size_t items)
{
	(void)arg;
	(void)imp;
	log_debug("[stage %s] GET %s: HTTP %ld, %zu item%s, attempt %u", stage, url, http_status,
	          items, items == 1 ? "" : "s", attempts);
}

static void import_stored(void *arg, struct import *imp, const char *stage, size_t n)
{
	(void)arg;
	(void)imp;
	log_debug("database: committed %zu row%s of %s", n, n == 1 ? "" : "s", stage);
}

/* Put next in force: a new fetcher (its providers), and a new store
 * unless next's is the same as the one in force (config_store_same: then
 * the connection, its prepared statements and the queries waiting on it
 * stay).  On failure the previous ones stay, untouched, and next is still
 * the caller's. */
static int adopt_config(struct service *s, struct config *next, char *err)
{
	struct config *old = s->cfg;
	/* the backends in force, freed once next's are built */
	struct service was = {.fetcher = s->fetcher, .providers = s->providers, .store = s->store,
	                      .tables = s->tables, .store_state = s->store_state};
	bool keep_store = s->store && config_store_same(old, next);
	if (config_keep_restart(next, old) < 0)
		return err_set(err, "out of memory");

	s->cfg = next;
	s->fetcher = NULL;
	s->providers = NULL;
	s->tables = NULL;
	if (!keep_store)
		s->store = NULL;
	if (build_fetcher(s, err) < 0 || build_tables(s, err) < 0 || (!keep_store && build_store(s, err) < 0) ||
	    (keep_store && store_set_batch_size(s->store, next->batch_size, err) < 0)) {
		if (keep_store)
			s->store = NULL; /* not ours to free here */
		free_backends(s);
		s->cfg = old;
		s->fetcher = was.fetcher;
		s->providers = was.providers;
		s->store = was.store;
		s->tables = was.tables;
		s->store_state = was.store_state;
		return -1;
	}
	struct service tmp = {.fetcher = was.fetcher, .providers = was.providers, .tables = was.tables};
	if (!keep_store) {
		fail_queries(s, "the configuration was reloaded meanwhile; ask again");
		tmp.store = was.store;
	}
	free_backends(&tmp);
	config_free(old);
	log_set_configured_level(LOG_ERR + (int)s->cfg->log_level);
	log_notice("reload: configuration %s in force%s", s->cfg->path,
	           keep_store ? "; [database] unchanged: the database connection is kept" : "");
	return 0;
}

/* A reload that waited for the import to end. */
static void apply_pending_reload(struct service *s)
{
	struct config *next = s->next_cfg;
	char err[ERR_MAX];
	if (!next || stopping(s))
		return;
	s->next_cfg = NULL;
	if (adopt_config(s, next, err) < 0) {
		log_err("reload: %s; keeping the previous configuration", err);
		config_free(next);
	}
}

static void reap_import(evutil_socket_t fd, short what, void *arg)
{
	struct service *s = arg;
	(void)fd;
	(void)what;
	if (!s->imp || !import_ended(s->imp))
		return;
	s->last_id = import_id(s->imp);
	s->last_status = import_status(s->imp);
	json_decref(s->last_stats);
	s->last_stats = import_stats(s->imp);
	s->finished_at = time(NULL);
	import_free(s->imp);
	s->imp = NULL;
	/* Idle: what the run held (its pages, key sets, items) goes back to
	 * the system, now that it is all freed. */
	membudget_give_back();
	(void)lifecycle_on(&s->life, LIFECYCLE_EV_REAPED, NULL);
	log_set_import(0);
	apply_pending_reload(s);
	if (s->cb.import_ended)
		s->cb.import_ended(s->cb.arg, s->last_id, s->last_status);
	drain_on(s, DRAIN_REAPED);
}

static void import_end(void *arg, struct import *imp)
{
	struct service *s = arg;
	char line[512];
	import_progress(imp, line, sizeof line);
	int prio = strcmp(import_status(imp), "succeeded") == 0 ? LOG_NOTICE : LOG_WARNING;
	log_write(prio, "%s — %s", import_status(imp), line);
	event_active(s->reap_ev, EV_TIMEOUT, 0);
}

/* ---- starting an import (the transitions are lifecycle_on()'s) ---- */

static enum lifecycle_db db_now(const struct service *s)
{
	return s->store_state == STORE_READY     ? LIFECYCLE_DB_READY
	       : s->store_state == STORE_BACKOFF ? LIFECYCLE_DB_DOWN
	                                         : LIFECYCLE_DB_CONNECTING;
}

/* The sentence for why a start-import is refused or a pending one failed;
 * returns -1. */
static int start_refused(const struct service *s, enum lifecycle_why why, char *err)
{
	int64_t id = s->imp ? import_id(s->imp) : 0;
	switch (why) {
	case LIFECYCLE_WHY_STOPPING:
		return err_set_class(err, ESHUTDOWN, "raced is shutting down");
	case LIFECYCLE_WHY_ENDING:
		return err_set_class(err, EBUSY, "import %" PRId64 " is ending (its final status is being written); "
		                     "try again in a moment", id);
	case LIFECYCLE_WHY_RUNNING:
		return err_set_class(err, EBUSY, "import %" PRId64 " is running; wait for it to end or cancel it (racectl cancel)",
		                     id);
	case LIFECYCLE_WHY_STARTING:
		return err_set_class(err, EBUSY, "an import is being started");
	case LIFECYCLE_WHY_DB_DOWN:
		return err_set_class(err, ENOTCONN, "the database is not connected (%s); the import would wait — try again once 'racectl health' is OK",
		                     s->store_why[0] ? s->store_why : store_state_name(s->store_state));
	case LIFECYCLE_WHY_DB_LOST:
		return err_set_class(err, ENOTCONN, "the database is not connected (%.400s); try again once "
		                     "'racectl health' is OK", s->store_why);
	case LIFECYCLE_WHY_NO_MEMORY:
		return err_set_class(err, ENOMEM, "out of memory");
	case LIFECYCLE_WHY_RUN_FAILED: /* only create_run() asks: run_created() has its own */
	case LIFECYCLE_WHY_NONE:
		break;
	}
	return err_set_class(err, ENOMEM, "the store refused to record a new import");
}

/* Answer (and free) a request a step ended: with the run's id, or 0 and err. */
static void start_answer(struct lifecycle_request *req, int64_t id, const char *err)
{
	if (req->cb)
		req->cb(req->arg, id, err);
	lifecycle_request_clear(req);
}

/* ... with the error the step gave as the reason it ended, if it ended one. */
static void start_answer_why(const struct service *s, struct lifecycle_step *st)
{
	char err[ERR_MAX];
	if (!st->ended.who)
		return;
	start_refused(s, st->why, err);
	start_answer(&st->ended, 0, err);
}

static void run_created(void *arg, int64_t id, const char *err);

static void run_failed(struct service *s, int64_t id, const char *e);

/* Forget what the pending start gathered on its way. */
static void pending_clear(struct service *s)
{
	s->pending = (struct service_start){0};
	free(s->pending_root_url);
	s->pending_root_url = NULL;
	json_decref(s->pending_run);
	s->pending_run = NULL;
}

/* The resumed run is open again: it continues as any started run. */
static void run_reopened(void *arg, const char *err)
{
	struct service *s = arg;
	char e[ERR_MAX];
	if (err) {
		snprintf(e, sizeof e, "cannot resume the import: %s", err);
		run_failed(s, 0, e);
		return;
	}
	const json_t *run = s->pending_run;
	json_int_t id = json_integer_value(json_object_get(run, "id"));
	log_notice("resuming import %" JSON_INTEGER_FORMAT " (%s since %s, resumed %" JSON_INTEGER_FORMAT
	           " time%s before): the inputs it finished are not fetched again",
	           id, json_string_value(json_object_get(run, "status")),
	           json_string_value(json_object_get(run, "finished_at")) ?
	           json_string_value(json_object_get(run, "finished_at")) : "?",
	           json_integer_value(json_object_get(run, "resumes")),
	           json_integer_value(json_object_get(run, "resumes")) == 1 ? "" : "s");
	run_created(s, id, NULL);
}

/* The run a resume asked for: may it be resumed, with this
 * configuration?  Then it is reopened. */
static void run_found(void *arg, json_t *run, const char *err)
{
	struct service *s = arg;
	char e[ERR_MAX];
	if (err) {
		snprintf(e, sizeof e, "cannot read the import to resume: %s", err);
		run_failed(s, 0, e);
		return;
	}
	if (runstart_check_resume(run, s->pending.resume_id, e) < 0) {
		run_failed(s, 0, e);
		return;
	}
	json_int_t id = json_integer_value(json_object_get(run, "id"));
	if (config_pipeline_diff(json_object_get(run, "pipeline"), s->cfg, id, e, sizeof e) < 0) {
		run_failed(s, 0, e);
		return;
	}
	s->pending_run = json_incref(run);
	const char *root_url = json_string_value(json_object_get(run, "root_url"));
	if (root_url && !(s->pending_root_url = strdup(root_url))) {
		run_failed(s, 0, "out of memory");
		return;
	}
	if (store_resume_import(s->store, id, run_reopened, s) < 0)
		run_failed(s, 0, "out of memory resuming the import");
}

/* A new run's row, with what it began with. */
static void begin_run(struct service *s)
{
	json_t *pipeline = config_pipeline_json(s->cfg);
	struct store_run_begin b = {
		.requested_by = lifecycle_requester(&s->life), .full = s->pending.full,
		.root_url = s->pending_root_url, .pipeline = pipeline};
	int rc = pipeline ? store_begin_import(s->store, &b, run_created, s) : -1;
	json_decref(pipeline);
	if (rc < 0)
		run_failed(s, 0, "out of memory recording the import");
}

/* The root's URL under a cursor: filled from what the database says
 * (with --full, from `initial`). */
static void cursor_read(void *arg, json_t *values, const char *err)
{
	struct service *s = arg;
	char e[ERR_MAX + 64], msg[ERR_MAX];
	if (err) {
		snprintf(e, sizeof e, "cannot read the cursor of the root stage: %s", err);
		run_failed(s, 0, e);
		return;
	}
	if (runstart_root_url(&s->cfg->stages[0], values, &s->pending_root_url, msg) < 0) {
		snprintf(e, sizeof e, "[stage %.48s] url: %s", s->cfg->stages[0].name, msg);
		run_failed(s, 0, e);
		return;
	}
	begin_run(s);
}

/* Stage tables found empty have lost their state too (someone truncated
 * them): what raced_pages said of them is gone, and the import fetches
 * and writes them whole.  (Queued before the import's first read of its
 * state; not before the run is answered, so that a table locked by
 * someone else holds up the import, never the start-import reply.) */
static void orphans_cleared(void *arg, json_t *stages, const char *err)
{
	size_t i;
	json_t *st;
	(void)arg;
	if (err)
		log_warn("database: cannot check the stage tables for lost rows: %s", err);
	json_array_foreach(stages, i, st)
		log_warn("table %s is empty but raced kept the state of its pages: that state is "
		         "dropped, and this import fetches and writes the stage whole",
		         json_string_value(st));
}

/* A resumed run is reopened, or a new one inserted (with its root URL
 * under a cursor). */
static int find_or_begin_run(struct service *s)
{
	const struct stage_conf *root = s->cfg->n_stages ? &s->cfg->stages[0] : NULL;
	if (s->pending.resume)
		return store_get_run(s->store, s->pending.resume_id, run_found, s);
	if (runstart_has_cursor(root) && !s->pending.full)
		return store_get_cursor(s->store, 0, root->cursor, cursor_read, s);
	if (runstart_has_cursor(root))
		cursor_read(s, NULL, NULL);
	else
		begin_run(s);
	return 0;
}

/* Set out to create the pending request's run: a resumed run reopened
 * or a new one inserted (run_created() follows, or run_failed()).  If the store refuses at
 * once, the request ends here and is handed to *ended. */
static int create_run(struct service *s, struct lifecycle_request *ended, char *err)
{
	if (find_or_begin_run(s) >= 0)
		return 0;
	pending_clear(s);
	struct lifecycle_step st = lifecycle_on(&s->life, LIFECYCLE_EV_RUN_FAILED, NULL);
	*ended = st.ended;
	return start_refused(s, st.why, err);
}

/* The database came or went: a start-import waiting for it starts now,
 * or is answered rather than kept waiting through an outage. */
static void start_on_db(struct service *s, enum lifecycle_event ev)
{
	char err[ERR_MAX];
	struct lifecycle_step st = lifecycle_on(&s->life, ev, NULL);
	if (st.ended.who) {
		start_answer_why(s, &st);
		return;
	}
	if (st.action != LIFECYCLE_DO_CREATE_RUN || create_run(s, &st.ended, err) == 0)
		return;
	log_err("cannot start the import: %s", err);
	if (!st.ended.cb && s->cb.import_ended) /* --once: nobody else to tell */
		s->cb.import_ended(s->cb.arg, 0, "failed");
	start_answer(&st.ended, 0, err);
}

/* The run's row exists and its import was made: start it. */
static void run_started(struct service *s, int64_t id)
{
	char e[ERR_MAX];
	struct lifecycle_step st = lifecycle_on(&s->life, LIFECYCLE_EV_RUN_CREATED, NULL);
	log_set_import(id);
	s->started_at = time(NULL);
	s->finished_at = 0;
	log_notice("started (requested by %s)%s", st.ended.who ? st.ended.who : "unknown",
	           import_options(s->imp)->full ? ", full: no state read" : "");
	if (import_start(s->imp, e) < 0) {
		/* The import ends (cancelled) and is reaped as any other. */
		import_cancel(s->imp);
		log_err("%s", e);
		start_answer(&st.ended, 0, e);
		return;
	}
	if (stopping(s))
		import_interrupt(s->imp);
	start_answer(&st.ended, id, NULL);
}

/* No import came of the request: the asker and import_ended are told. */
/* A failed run's final status is written: a drain waiting for it is over
 * (as when an import is reaped). */
static void failed_run_recorded(void *arg, const char *err)
{
	(void)err;
	drain_on(arg, DRAIN_REAPED);
}

static void run_failed(struct service *s, int64_t id, const char *e)
{
	pending_clear(s);
	struct lifecycle_step st = lifecycle_on(&s->life, LIFECYCLE_EV_RUN_FAILED, NULL);
	bool recording = false;
	log_err("%s", e);
	if (id > 0) {
		/* The run's row exists: it must not stay 'running'. */
		if (store_add_error(s->store, id, "", "", 0, 0, e) < 0)
			log_err("import %" PRId64 ": out of memory: the error is not recorded", id);
		recording = store_finish_import(s->store, id, "failed", NULL, 0, failed_run_recorded, s) == 0;
		if (!recording)
			log_err("import %" PRId64 ": out of memory: it stays 'running' until the "
			        "next start marks it interrupted", id);
	}
	if (!recording)
		drain_on(s, DRAIN_REAPED);
	start_answer(&st.ended, 0, e);
	if (s->cb.import_ended)
		s->cb.import_ended(s->cb.arg, id, "failed");
}

static void run_created(void *arg, int64_t id, const char *err)
{
	struct service *s = arg;
	char e[ERR_MAX];

	if (err || id <= 0) {
		snprintf(e, sizeof e, "cannot record the import in the database: %s",
		         err ? err : "no id");
		run_failed(s, id, e);
		return;
	}
	struct import_env env = {.base = s->base, .cfg = s->cfg,
	                         .providers = s->providers, .store = s->store};
	struct import_callbacks icb = {.error = import_error, .end = import_end, .arg = s};
	if (log_enabled(LOG_DEBUG)) {
		icb.page = import_page;
		icb.stored = import_stored;
	}
	const json_t *run = s->pending_run;
	struct import_options io = {
		.full = s->pending.full || json_is_true(json_object_get(run, "full_import")),
		.resumed = run != NULL,
		.root_url = s->pending_root_url,
		.prior_counts = json_object_get(run, "counts"),
	};
	icb.notice = import_notice;
	if (store_clear_orphan_state(s->store, orphans_cleared, s) < 0)
		log_warn("out of memory: the stage tables are not checked for lost rows");
	s->imp = import_new(&env, id, &io, &icb, e);
	pending_clear(s);
	if (!s->imp)
		run_failed(s, id, e);
	else
		run_started(s, id);
}

/* A start-import: refused, or its run row being inserted, or waiting for
 * the first connection (raced may have been started by this very request,
 * through socket activation): then it starts once connected and is
 * answered then. */
static int start_asked(struct service *s, const char *who, const struct service_start *opt,
                       service_started_fn cb, void *arg, bool patient, char *err)
{
	static const struct service_start plain;
	if (!opt)
		opt = &plain;
	if (opt->full && opt->resume)
		return err_set_class(err, EINVAL, "full and resume exclude each other: a full import reads no state, "
		                     "a resumed one continues from it");
	struct lifecycle_ask ask = {
		.who = who, .cb = cb, .arg = arg, .patient = patient,
		.db = db_now(s), .stopping = stopping(s),
		.import_ending = s->imp && (import_ending(s->imp) || import_ended(s->imp)),
	};
	struct lifecycle_step st = lifecycle_on(&s->life, LIFECYCLE_EV_ASK, &ask);
	if (st.action == LIFECYCLE_DO_REFUSE)
		return start_refused(s, st.why, err);
	s->pending = *opt; /* accepted: it is now the one pending request */
	if (st.action != LIFECYCLE_DO_CREATE_RUN)
		return 0;
	int rc = create_run(s, &st.ended, err);
	if (rc < 0)
		lifecycle_request_clear(&st.ended); /* answered by the return */
	return rc;
}

int service_start_import(struct service *s, const char *requested_by, const struct service_start *opt,
                         service_started_fn cb, void *arg, char *err)
{
	return start_asked(s, requested_by, opt, cb, arg, false, err);
}

int service_start_import_when_ready(struct service *s, const char *requested_by,
                                    const struct service_start *opt, char *err)
{
	return start_asked(s, requested_by, opt, NULL, NULL, true, err);
}

int64_t service_pause(struct service *s, bool paused, char *err)
{
	if (!s->imp || import_ended(s->imp))
		return err_set_class(err, ESRCH, "no import is running");
	import_pause(s->imp, paused);
	log_notice("import %" PRId64 " %s", import_id(s->imp), paused ? "paused" : "resumed");
	return import_id(s->imp);
}

int64_t service_cancel(struct service *s, char *err)
{
	if (!s->imp || import_ended(s->imp))
		return err_set_class(err, ESRCH, "no import is running");
	int64_t id = import_id(s->imp);
	if (import_ending(s->imp))
		return err_set_class(err, EBUSY, "import %" PRId64 " is already ending", id);
	log_notice("cancelled by request");
	import_cancel(s->imp);
	return id;
}

/* ---- reload ---- */

/* config_each_change's callback: the change's text in the list of its
 * class (lists[enum config_when]). */
static void reload_collect(void *arg, enum config_when when, const char *text)
{
	json_t **lists = arg;
	json_array_append_new(lists[when], json_string(text));
}

/* While an import runs: the KF_LIVE keys of next go into force now, in the
 * providers and the store the import uses and in the configuration it
 * holds. */
static int apply_live(struct service *s, const struct config *next, char *err)
{
	for (size_t i = 0; i < s->cfg->n_providers; i++) {
		const struct provider_conf *p = config_provider(next, s->cfg->providers[i].name);
		if (!p)
			continue;
		struct fetch_provider_limits l = {
			.max_connections = p->max_connections_auto ? p->max_connections_ceiling : p->max_connections,
			.adaptive = p->max_connections_auto, .rate_limit = p->rate_limit,
			.timeout_ms = p->timeout_ms, .max_retries = p->max_retries};
		if (fetch_provider_set_limits(s->providers[i], &l, err) < 0)
			return -1; /* the providers before it have their new limits */
	}
	if (store_set_batch_size(s->store, next->batch_size, err) < 0)
		return -1;
	if (config_apply_live(s->cfg, next) < 0)
		return err_set(err, "out of memory applying the new values");
	if (s->imp)
		import_config_changed(s->imp); /* stages' concurrency */
	/* (an import's per-request debug lines follow from its next start:
	 * whether to call for them is decided as it starts) */
	log_set_configured_level(LOG_ERR + (int)s->cfg->log_level);
	return 0;
}

int service_reload(struct service *s, struct config *next, json_t **report, char *err)
{
	*report = NULL;
	if (stopping(s))
		return err_set_class(err, ESHUTDOWN, "raced is shutting down");
	json_t *lists[3] = {json_array(), json_array(), json_array()};
	json_t *waiting = json_array();
	if (!lists[0] || !lists[1] || !lists[2] || !waiting) {
		for (size_t i = 0; i < 3; i++)
			json_decref(lists[i]);
		json_decref(waiting);
		return err_set_class(err, ENOMEM, "out of memory");
	}
	config_each_change(s->cfg, next, reload_collect, lists);
	json_t *applied = lists[CONFIG_WHEN_LIVE];
	int64_t waits_for = 0;
	int rc;
	if (!lifecycle_has_run(&s->life)) {
		/* Idle: all of it now, but what only a restart applies
		 * (control_socket, metrics, resume). */
		rc = adopt_config(s, next, err);
		json_array_extend(applied, lists[CONFIG_WHEN_BETWEEN]);
	} else {
		/* The running import keeps the configuration it started with but
		 * for the live keys; the rest takes effect when it ends.  A
		 * reload waiting from before is replaced: this file says what
		 * the configuration is now. */
		rc = apply_live(s, next, err);
		waits_for = s->imp ? import_id(s->imp) : 0;
		json_array_extend(waiting, lists[CONFIG_WHEN_BETWEEN]);
		if (rc == 0) {
			config_free(s->next_cfg);
			s->next_cfg = NULL;
			if (json_array_size(waiting) || json_array_size(lists[CONFIG_WHEN_RESTART]))
				s->next_cfg = next;
			else
				config_free(next);
		}
	}
	if (rc == 0)
		*report = json_pack("{s:O,s:O,s:O,s:o}", "applied", applied, "waiting", waiting,
		                    "restart", lists[CONFIG_WHEN_RESTART],
		                    "waits_for_import", waits_for ? json_integer((json_int_t)waits_for) : json_null());
	for (size_t i = 0; i < 3; i++)
		json_decref(lists[i]);
	json_decref(waiting);
	if (rc == 0 && !*report)
		log_err("reload: out of memory describing the changes (they are applied)");
	return rc;
}

/* ---- stop ---- */

/* After stop_timeout the running fetches are abandoned; if even the final
 * status cannot be written within SERVICE_STOP_GRACE_MS more (the database
 * is down), raced stops anyway and the next start marks the run
 * 'interrupted' (store_mark_stale_runs). */
#define SERVICE_STOP_GRACE_MS 5000

static void drain_stopped(struct service *s)
{
	s->phase = SERVICE_STOPPED;
	evtimer_del(s->stop_ev);
	if (s->cb.stopped)
		s->cb.stopped(s->cb.arg);
}

/* Interrupt what runs; raced stops now when nothing does. */
static void drain_begin(struct service *s)
{
	s->phase = SERVICE_DRAINING;
	struct lifecycle_step st = lifecycle_on(&s->life, LIFECYCLE_EV_STOP, NULL);
	start_answer_why(s, &st); /* a start-import waiting for the database */
	if (st.action == LIFECYCLE_DO_STOP_NOW) {
		drain_stopped(s);
		return;
	}
	if (s->imp)
		import_interrupt(s->imp);
	struct timeval tv = {s->cfg->stop_timeout_ms / 1000, (s->cfg->stop_timeout_ms % 1000) * 1000};
	evtimer_add(s->stop_ev, &tv);
}

/* The drain's transitions.  Asked again (a second SIGTERM), it does not
 * wait for stop_timeout: the running fetches are abandoned now, and a
 * third time raced stops without waiting for the final status. */
static void drain_on(struct service *s, enum drain_event ev)
{
	if (s->phase == SERVICE_STOPPED || (s->phase == SERVICE_SERVING && ev != DRAIN_ASKED))
		return;
	if (s->phase == SERVICE_SERVING) {
		drain_begin(s);
		return;
	}
	if (ev == DRAIN_REAPED) {
		drain_stopped(s);
		return;
	}
	if (ev == DRAIN_ASKED) {
		log_notice("stop asked again: not waiting for stop_timeout");
		evtimer_del(s->stop_ev);
	}
	if (s->phase == SERVICE_DRAINING && s->imp) {
		s->phase = SERVICE_ABANDONING;
		log_warn("stop: still draining after stop_timeout; abandoning running fetches");
		import_interrupt(s->imp); /* second call: stop waiting */
		struct timeval tv = {SERVICE_STOP_GRACE_MS / 1000, 0};
		evtimer_add(s->stop_ev, &tv);
		return;
	}
	if (s->imp && import_status_committed(s->imp))
		/* Only what follows the status was cut short: the index builds
		 * of a first import's finish, which wait for nothing else. */
		log_warn("stop: import %" PRId64 "'s final status is written; stopping before the rest"
		         " of its finish (an index it was still making is made by the next import's"
		         " finish or raced's next connection)", import_id(s->imp));
	else
		log_err("stop: the final status of import %" PRId64 " could not be written (%s); "
		        "it will be marked interrupted at the next start",
		        s->imp ? import_id(s->imp) : 0, store_state_name(s->store_state));
	drain_stopped(s);
}

static void stop_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	drain_on(arg, DRAIN_DEADLINE);
}

void service_stop(struct service *s)
{
	drain_on(s, DRAIN_ASKED);
}

/* ---- figures ---- */

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct service *s = arg;
	(void)fd;
	(void)what;
	if (s->imp)
		import_tick(s->imp);
}

/* "2024-05-01T10:00:00Z", or null for 0. */
static json_t *time_json(time_t t)
{
	struct tm tm;
	char buf[32];
	if (t == 0 || !gmtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

/* The store's commit latency: {"le": [bounds], "buckets": [cumulative
 * counts], "sum": seconds, "count": batches}. */
static json_t *commit_histogram(const struct store_stats *sst)
{
	json_t *le = json_array(), *buckets = json_array();
	uint64_t cum = 0;
	for (size_t i = 0; i < STORE_COMMIT_BUCKETS; i++) {
		cum += sst->commit_buckets[i];
		json_array_append_new(le, json_real(store_commit_bucket_le(i)));
		json_array_append_new(buckets, json_integer((json_int_t)cum));
	}
	return json_pack("{s:o,s:o,s:f,s:I}", "le", le, "buckets", buckets,
	                 "sum", sst->commit_seconds, "count", (json_int_t)sst->batches_committed);
}

/* The figures a progress line needs that the last seconds cannot give:
 * the import's elapsed time, each stage's average rate over the whole
 * import (at the end, the rate of the last seconds is 0) and, while one
 * runs after an import that succeeded, each stage's count then as what to
 * expect now and an ETA from the average rates.  Adds to imp ("elapsed_s",
 * "eta_s", "expected_from") and to each stage ("rate_avg_per_s",
 * "expected"); unknowns are null. */
static void add_progress(const struct service *s, json_t *imp, json_t *stages, bool running)
{
	time_t end = running || s->finished_at == 0 ? time(NULL) : s->finished_at;
	json_int_t elapsed = s->started_at && end >= s->started_at ? (json_int_t)(end - s->started_at) : -1;
	const json_t *prev = running && s->last_stats && s->last_status &&
	                     strcmp(s->last_status, "succeeded") == 0
	                             ? json_object_get(s->last_stats, "stages")
	                             : NULL;
	double eta = -1;
	bool unknown = false;
	size_t i;
	json_t *st;
	json_array_foreach(stages, i, st) {
		json_int_t done = json_integer_value(json_object_get(st, "done"));
		/* Under a second counts as one: a rate, not a division by 0. */
		double avg = elapsed < 0 ? -1 : (double)done / (double)(elapsed > 0 ? elapsed : 1);
		json_object_set_new(st, "rate_avg_per_s", avg < 0 ? json_null() : json_real(avg));
		const char *name = json_string_value(json_object_get(st, "name"));
		json_int_t expected = -1;
		size_t j;
		const json_t *pst;
		json_array_foreach(prev, j, pst)
			if (name && json_is_string(json_object_get(pst, "name")) &&
			    strcmp(name, json_string_value(json_object_get(pst, "name"))) == 0)
				expected = json_integer_value(json_object_get(pst, "done"));
		json_object_set_new(st, "expected", expected < 0 ? json_null() : json_integer(expected));
		if (expected > done && avg > 0) {
			double left = (double)(expected - done) / avg;
			eta = left > eta ? left : eta;
		} else if (expected > done) {
			unknown = true; /* a stage not started yet: no estimate */
		}
	}
	if (unknown)
		eta = -1;
	json_object_set_new(imp, "elapsed_s", elapsed < 0 ? json_null() : json_integer(elapsed));
	json_object_set_new(imp, "eta_s", eta < 0 ? json_null() : json_integer((json_int_t)(eta + 0.5)));
	json_object_set_new(imp, "expected_from", prev ? json_integer((json_int_t)s->last_id) : json_null());
}

/* The limit in force and why (fetch.h: admission), into a provider's stats. */
static void provider_admission_json(json_t *pj, const struct fetch_provider_stats *ps)
{
	char until[32] = "";
	if (ps->held_until) {
		struct tm tm;
		gmtime_r(&ps->held_until, &tm);
		strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	json_object_set_new(pj, "limit", json_integer((json_int_t)ps->limit));
	json_object_set_new(pj, "limit_kind", json_string(ps->held_until ? "quota" : ps->adaptive ? "adaptive" : "static"));
	json_object_set_new(pj, "adaptive", json_boolean(ps->adaptive));
	json_object_set_new(pj, "held_until", ps->held_until ? json_string(until) : json_null());
	json_object_set_new(pj, "held_until_s", json_integer((json_int_t)ps->held_until));
	json_object_set_new(pj, "limit_reason", ps->adaptive ? json_string(ps->limit_reason) : json_null());
	json_object_set_new(pj, "limit_increases", json_integer((json_int_t)ps->limit_increases));
	json_object_set_new(pj, "limit_decreases", json_integer((json_int_t)ps->limit_decreases));
	json_object_set_new(pj, "quota_remaining",
	                    ps->quota_remaining < 0 ? json_null() : json_integer((json_int_t)ps->quota_remaining));
	json_object_set_new(pj, "quota_holds", json_integer((json_int_t)ps->quota_holds));
	json_object_set_new(pj, "throttled", json_integer((json_int_t)ps->throttled));
	json_object_set_new(pj, "unavailable", json_integer((json_int_t)ps->unavailable));
	json_object_set_new(pj, "timeouts", json_integer((json_int_t)ps->timeouts));
	json_object_set_new(pj, "connections", json_integer((json_int_t)ps->connections));
	json_object_set_new(pj, "http2", json_integer((json_int_t)ps->http2));
}

json_t *service_stats(const struct service *s)
{
	json_t *providers = json_array();
	for (size_t i = 0; i < s->cfg->n_providers; i++) {
		struct fetch_provider_stats ps;
		fetch_provider_get_stats(s->providers[i], &ps);
		json_array_append_new(providers,
		                      json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		                                "name", s->cfg->providers[i].name,
		                                "requests", (json_int_t)ps.requests,
		                                "retries", (json_int_t)ps.retries,
		                                "succeeded", (json_int_t)ps.succeeded,
		                                "failed", (json_int_t)(ps.failed_transient + ps.failed_http + ps.failed_body),
		                                "failed_transient", (json_int_t)ps.failed_transient,
		                                "failed_http", (json_int_t)ps.failed_http,
		                                "in_flight", (json_int_t)ps.in_flight,
		                                "waiting", (json_int_t)ps.waiting,
		                                "bytes", (json_int_t)ps.bytes));
		json_object_set_new(json_array_get(providers, i), "not_modified",
		                    json_integer((json_int_t)ps.not_modified));
		json_t *pj = json_array_get(providers, i);
		const struct provider_conf *pc = &s->cfg->providers[i];
		json_object_set_new(pj, "max_connections",
		                    json_integer((json_int_t)(pc->max_connections_auto ? pc->max_connections_ceiling
		                                                                      : pc->max_connections)));
		json_object_set_new(pj, "rate_limit", json_real(pc->rate_limit));
		provider_admission_json(pj, &ps);
	}
	size_t pending = 0;
	for (size_t i = 0; i < s->cfg->n_stages; i++)
		pending += store_pending(s->store, i);
	const char *state = s->store_state == STORE_READY     ? "connected"
	                    : s->store_state == STORE_BACKOFF ? "disconnected"
	                                                      : "connecting";
	struct store_stats sst;
	store_get_stats(s->store, &sst);
	json_t *store = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I}",
	                          "state", state,
	                          "phase", store_state_name(s->store_state),
	                          "message", s->store_why,
	                          "pending_rows", (json_int_t)pending,
	                          "batches", (json_int_t)sst.batches_committed,
	                          "reconnects", (json_int_t)sst.reconnects,
	                          "rows_failed", (json_int_t)sst.rows_failed);
	/* the read-back connection: its failures are not the store's state */
	json_object_set_new(store, "reader", json_string(sst.reader_state ? sst.reader_state : "idle"));
	json_object_set_new(store, "rows_committed", json_integer((json_int_t)sst.rows_committed));
	json_object_set_new(store, "rows_plain", json_integer((json_int_t)sst.rows_plain));
	json_object_set_new(store, "read_backs_by_parent", json_integer((json_int_t)sst.read_parent));
	json_object_set_new(store, "read_backs_by_parent_missed",
	                    json_integer((json_int_t)sst.read_parent_missed));
	json_object_set_new(store, "warmups", json_integer((json_int_t)sst.warmups));
	json_object_set_new(store, "commit_seconds", commit_histogram(&sst));
	json_t *imp, *stages;
	const json_t *shown = s->imp ? NULL : s->last_stats;
	json_t *live = s->imp ? import_stats(s->imp) : NULL;
	if (live || shown) {
		/* Running, or idle after an import: its (final) figures. */
		imp = live ? live : json_deep_copy(shown);
		stages = json_incref(json_object_get(imp, "stages"));
		json_object_del(imp, "stages");
	} else {
		imp = json_pack("{s:n,s:s,s:b}", "id", "state", "idle", "paused", 0);
		stages = json_array();
		for (size_t i = 0; i < s->cfg->n_stages; i++) {
			const struct stage_conf *c = &s->cfg->stages[i];
			json_array_append_new(stages,
			        json_pack("{s:s,s:s,s:i,s:I,s:i,s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:f,s:[]}",
			                  "name", c->name, "kind", c->parent ? "child" : "root",
			                  "buffered", 0, "buffer_size", (json_int_t)c->buffer_size,
			                  "in_flight", 0, "concurrency", (json_int_t)c->concurrency,
			                  "queued", 0, "done", 0, "stored", 0, "failed", 0,
			                  "retried", 0, "emitted", 0, "rate_per_s", 0.0, "subscriptions"));
		}
	}
	json_object_set_new(imp, "started_at", time_json(s->started_at));
	json_object_set_new(imp, "finished_at", time_json(s->finished_at));
	add_progress(s, imp, stages, live != NULL);
	return json_pack("{s:o,s:o,s:o,s:o,s:b}", "import", imp, "stages", stages,
	                 "store", store, "providers", providers, "stopping", stopping(s));
}

json_t *service_health(const struct service *s)
{
	char msg[600];
	const char *status = "ok";
	const char *db = s->store_state == STORE_READY ? "db connected" : "db not connected";

	if (s->store_state != STORE_READY) {
		status = "critical";
		snprintf(msg, sizeof msg, "database %s: %s", store_state_name(s->store_state),
		         s->store_why[0] ? s->store_why : "not connected");
	} else if (s->imp && import_paused(s->imp)) {
		status = "warning";
		snprintf(msg, sizeof msg, "import %" PRId64 " paused, %s", import_id(s->imp), db);
	} else if (s->imp) {
		snprintf(msg, sizeof msg, "import %" PRId64 " running, %s", import_id(s->imp), db);
	} else if (s->last_status && strcmp(s->last_status, "failed") == 0) {
		status = "critical";
		snprintf(msg, sizeof msg, "last import %" PRId64 " failed, %s", s->last_id, db);
	} else if (s->last_status && strcmp(s->last_status, "succeeded") != 0) {
		status = "warning";
		snprintf(msg, sizeof msg, "idle, last import %" PRId64 " %s, %s", s->last_id,
		         s->last_status, db);
	} else {
		snprintf(msg, sizeof msg, "idle, %s", db);
	}
	return json_pack("{s:s,s:s}", "status", status, "message", msg);
}

void service_status_line(const struct service *s, char *buf, size_t len)
{
	if (s->store_state != STORE_READY &&
	    (s->imp || lifecycle_state(&s->life) == LIFECYCLE_WAITING_FOR_DATABASE))
		snprintf(buf, len, "waiting for the database (%s)", store_state_name(s->store_state));
	else if (s->imp)
		import_progress(s->imp, buf, len);
	else if (stopping(s))
		snprintf(buf, len, "stopping");
	else
		snprintf(buf, len, "idle");
}

static void runs_done(void *arg, json_t *result, const char *err)
{
	struct runs_query *q = arg;
	for (struct runs_query **pp = &q->s->queries; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	service_json_fn cb = q->cb;
	void *cb_arg = q->arg;
	free(q);
	cb(cb_arg, result, err);
}

/* Before a store is freed (it then calls nothing back): answer what waits. */
static void fail_queries(struct service *s, const char *why)
{
	while (s->queries) {
		struct runs_query *q = s->queries;
		s->queries = q->next;
		q->cb(q->arg, NULL, why);
		free(q);
	}
}

typedef int (*store_query_fn)(struct store *st, int64_t id, uint32_t n, store_json_fn cb,
                              void *arg);

/* Ask the store (query is store_get_runs or store_get_errors), answering
 * cb; refused at once while the database is not connected. */
static int ask_store(struct service *s, store_query_fn query, int64_t id, uint32_t n,
                     service_json_fn cb, void *arg, char *err)
{
	if (s->store_state != STORE_READY)
		return err_set_class(err, ENOTCONN, "the database is not connected (%s)",
		                     s->store_why[0] ? s->store_why : store_state_name(s->store_state));
	struct runs_query *q = calloc(1, sizeof *q);
	if (!q)
		return err_set_class(err, ENOMEM, "out of memory");
	*q = (struct runs_query){.s = s, .cb = cb, .arg = arg, .next = s->queries};
	if (query(s->store, id, n, runs_done, q) < 0) {
		free(q);
		return err_set_class(err, ENOMEM, "out of memory");
	}
	s->queries = q;
	return 0;
}

int service_runs(struct service *s, int64_t id, uint32_t limit, service_json_fn cb, void *arg,
                 char *err)
{
	return ask_store(s, store_get_runs, id, limit ? limit : 10, cb, arg, err);
}

int service_errors(struct service *s, int64_t id, uint32_t urls, service_json_fn cb, void *arg,
                   char *err)
{
	return ask_store(s, store_get_errors, id, urls ? urls : SERVICE_ERROR_URLS, cb, arg, err);
}

void service_set_auto_resume(struct service *s, bool on)
{
	s->auto_resume = on;
}

const struct config *service_config(const struct service *s)
{
	return s->cfg;
}

/* ---- setup ---- */

/* The fetcher and a provider for each [provider]. */
static int build_fetcher(struct service *s, char *err)
{
	const struct config *cfg = s->cfg;
	s->fetcher = fetcher_new(s->base, err);
	if (!s->fetcher)
		return -1;
	s->providers = calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof *s->providers);
	if (!s->providers)
		return err_set(err, "out of memory");
	for (size_t i = 0; i < cfg->n_providers; i++) {
		const struct provider_conf *p = &cfg->providers[i];
		struct fetch_provider_conf fc = {
			.name = p->name, .base_url = p->base_url,
			.auth = {.kind = p->auth, .secret = p->auth == AUTH_BASIC ? p->password : p->token,
			         .username = p->username,
			         .name = p->auth == AUTH_HEADER ? p->auth_header : p->auth_param,
			         .headers = (const char *const *)p->headers, .n_headers = p->n_headers},
			.max_connections = p->max_connections_auto ? p->max_connections_ceiling : p->max_connections,
			.adaptive = p->max_connections_auto, .rate_limit = p->rate_limit,
			.timeout_ms = p->timeout_ms, .max_retries = p->max_retries,
			.max_body = p->max_body, .max_redirects = p->max_redirects,
			.tls = {.ca_file = p->ca_path, .http_version = p->http_version},
		};
		s->providers[i] = fetcher_add_provider(s->fetcher, &fc, err);
		if (!s->providers[i])
			return -1;
	}
	return 0;
}

/* The stage tables' names, borrowed from the configuration in force. */
static int build_tables(struct service *s, char *err)
{
	const struct config *cfg = s->cfg;
	s->tables = calloc(cfg->n_stages ? cfg->n_stages : 1, sizeof *s->tables);
	if (!s->tables)
		return err_set(err, "out of memory");
	for (size_t i = 0; i < cfg->n_stages; i++)
		s->tables[i] = cfg->stages[i].name;
	return 0;
}

static int build_store(struct service *s, char *err)
{
	const struct config *cfg = s->cfg;
	/* application_name = raced, unless the conninfo names one. */
	char *conninfo = config_value_conninfo_named(cfg->conninfo, "raced");
	if (!conninfo)
		return err_set(err, "out of memory");
	struct store_columns *columns = store_columns_of(cfg);
	/* what the children's URLs read of their parents' rows read back */
	struct import_read_fields *rf = columns ? import_read_fields(cfg->stages, cfg->n_stages, err)
	                                        : NULL;
	if (!columns || !rf) {
		if (columns)
			store_columns_of_free(columns, cfg->n_stages);
		free(conninfo);
		return err_set(err, "out of memory");
	}
	/* The edges, by stage index (the stages come in order, parents first). */
	int *parents = calloc(cfg->n_stages ? cfg->n_stages : 1, sizeof *parents);
	bool *dedupe = calloc(cfg->n_stages ? cfg->n_stages : 1, sizeof *dedupe);
	if (!parents || !dedupe) {
		free(parents);
		free(dedupe);
		free(conninfo);
		store_columns_of_free(columns, cfg->n_stages);
		import_read_fields_free(rf);
		return err_set(err, "out of memory");
	}
	for (size_t i = 0; i < cfg->n_stages; i++) {
		parents[i] = -1;
		dedupe[i] = cfg->stages[i].dedupe;
		for (size_t k = 0; cfg->stages[i].parent && k < cfg->n_stages; k++)
			if (strcmp(cfg->stages[k].name, cfg->stages[i].parent) == 0)
				parents[i] = (int)k;
	}
	struct store_conf sc = {.conninfo = conninfo, .batch_size = cfg->batch_size,
	                        .discard = cfg->discard,
	                        .synchronous_commit = config_synchronous_commit_values[cfg->synchronous_commit],
	                        .tables = s->tables, .n_tables = cfg->n_stages,
	                        .columns = columns, .schema = cfg->schema,
	                        .connections = cfg->connections,
	                        .parents = parents, .dedupe = dedupe, .read_fields = rf->per};
	struct store_callbacks scb = {.state_changed = store_state_changed, .arg = s};
	s->store_state = STORE_CONNECTING;
	s->store = store_new(s->base, &sc, &scb, err);
	free(conninfo); /* the store keeps its own copy, */
	store_columns_of_free(columns, cfg->n_stages); /* and of the columns */
	free(parents);
	free(dedupe);
	import_read_fields_free(rf); /* and of the read fields */
	if (!s->store)
		return -1;
	if (store_mark_stale_runs(s->store, stale_marked, s) < 0)
		return err_set(err, "out of memory queueing the marking of interrupted runs");
	return 0;
}

static int build_backends(struct service *s, char *err)
{
	if (build_fetcher(s, err) < 0 || build_tables(s, err) < 0)
		return -1;
	return build_store(s, err);
}

static void free_backends(struct service *s)
{
	store_free(s->store);
	fetcher_free(s->fetcher);
	free(s->providers);
	free(s->tables);
	s->store = NULL;
	s->fetcher = NULL;
	s->providers = NULL;
	s->tables = NULL;
}

struct service *service_new(struct event_base *base, struct config *cfg,
                            const struct service_callbacks *cb, char *err)
{
	struct service *s = calloc(1, sizeof *s);
	if (!s) {
		err_set(err, "out of memory");
		return NULL;
	}
	s->base = base;
	s->cfg = cfg;
	if (cb)
		s->cb = *cb;
	s->tick_ev = event_new(base, -1, EV_PERSIST, tick, s);
	s->reap_ev = event_new(base, -1, 0, reap_import, s);
	s->stop_ev = evtimer_new(base, stop_deadline, s);
	if (!s->tick_ev || !s->reap_ev || !s->stop_ev) {
		err_set(err, "out of memory");
		service_free(s);
		return NULL;
	}
	struct timeval one = {1, 0};
	event_add(s->tick_ev, &one);
	log_set_configured_level(LOG_ERR + (int)cfg->log_level);
	if (build_backends(s, err) < 0) {
		service_free(s);
		return NULL;
	}
	return s;
}

void service_free(struct service *s)
{
	if (!s)
		return;
	fail_queries(s, "raced is shutting down");
	/* a start-import waiting for the database or for its run row */
	struct lifecycle_step st = lifecycle_on(&s->life, LIFECYCLE_EV_SHUTDOWN, NULL);
	start_answer_why(s, &st);
	import_free(s->imp);
	free_backends(s);
	config_free(s->cfg);
	config_free(s->next_cfg);
	json_decref(s->last_stats);
	pending_clear(s);
	if (s->tick_ev)
		event_free(s->tick_ev);
	if (s->reap_ev)
		event_free(s->reap_ev);
	if (s->stop_ev)
		event_free(s->stop_ev);
	free(s);
}
