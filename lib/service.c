/* service — see service.h.
 *
 * This is the one place, besides daemon/main.c, that logs: it is where the
 * asynchronous failures of the modules below (a fetch that failed for
 * good, the database going away) are finally handled.
 */
#include "service.h"

#include "config.h"
#include "error.h"
#include "fetch.h"
#include "import.h"
#include "log.h"
#include "store.h"

#include <event2/event.h>
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
	bool starting;                 /* a start-import waits for its run row */
	bool start_when_ready;         /* start as soon as the db is up (--once, or a start-import during the first connect) */
	char *pending_requester;
	service_started_fn start_cb;
	void *start_arg;
	service_started_fn wait_cb;    /* a start-import waiting for the first connection */
	void *wait_arg;
	bool stopping;
	bool stop_abandoned;           /* stop_timeout passed once */
	bool stopped;
	int64_t last_id;
	const char *last_status;
	json_t *last_stats;            /* the last import's final figures, for stats when idle */
	time_t started_at;             /* of the running import, or the last one */
	time_t finished_at;            /* of the last import; 0 while one runs */
};

static int build_backends(struct service *s, char *err);
static void fail_queries(struct service *s, const char *why);
static void free_backends(struct service *s);

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
	if (st == STORE_BACKOFF && s->start_when_ready && s->wait_cb) {
		/* A start-import that arrived while raced was first
		 * connecting: the database refused, so answer it now rather
		 * than keep the client waiting for an outage to end. */
		service_started_fn cb = s->wait_cb;
		char err[ERR_MAX];
		s->wait_cb = NULL;
		s->start_when_ready = false;
		snprintf(err, sizeof err, "the database is not connected (%.400s); try again once "
		         "'racectl health' is OK", s->store_why);
		cb(s->wait_arg, 0, err);
	}
	if (st == STORE_READY && s->start_when_ready && !s->imp && !s->starting) {
		char err[ERR_MAX];
		service_started_fn cb = s->wait_cb;
		void *cb_arg = s->wait_arg;
		s->start_when_ready = false;
		s->wait_cb = NULL;
		if (service_start_import(s, s->pending_requester, cb, cb_arg, err) < 0) {
			log_err("cannot start the import: %s", err);
			if (cb)
				cb(cb_arg, 0, err);
			else if (s->cb.import_ended)
				s->cb.import_ended(s->cb.arg, 0, "failed");
		}
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

/* Build the fetcher and store of next and put them in force; on failure
 * the previous ones stay, untouched, and next is still the caller's. */
static int adopt_config(struct service *s, struct config *next, char *err)
{
	struct config *old = s->cfg;
	struct fetcher *old_fetcher = s->fetcher;
	struct fetch_provider **old_providers = s->providers;
	struct store *old_store = s->store;
	const char **old_tables = s->tables;
	enum store_state old_state = s->store_state;

	s->cfg = next;
	s->fetcher = NULL;
	s->providers = NULL;
	s->store = NULL;
	s->tables = NULL;
	if (build_backends(s, err) < 0) {
		free_backends(s);
		s->cfg = old;
		s->fetcher = old_fetcher;
		s->providers = old_providers;
		s->store = old_store;
		s->tables = old_tables;
		s->store_state = old_state;
		return -1;
	}
	fail_queries(s, "the configuration was reloaded meanwhile; ask again");
	struct service tmp = {.fetcher = old_fetcher, .providers = old_providers,
	                      .store = old_store, .tables = old_tables};
	free_backends(&tmp);
	config_free(old);
	log_notice("reload: configuration %s in force", s->cfg->path);
	return 0;
}

/* A reload that waited for the import to end. */
static void apply_pending_reload(struct service *s)
{
	struct config *next = s->next_cfg;
	char err[ERR_MAX];
	if (!next || s->stopping)
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
	log_set_import(0);
	apply_pending_reload(s);
	if (s->cb.import_ended)
		s->cb.import_ended(s->cb.arg, s->last_id, s->last_status);
	if (s->stopping && !s->stopped) {
		s->stopped = true;
		evtimer_del(s->stop_ev);
		if (s->cb.stopped)
			s->cb.stopped(s->cb.arg);
	}
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

static void run_created(void *arg, int64_t id, const char *err)
{
	struct service *s = arg;
	char e[ERR_MAX];
	service_started_fn cb = s->start_cb;
	void *cb_arg = s->start_arg;

	s->starting = false;
	s->start_cb = NULL;
	if (err || id <= 0) {
		snprintf(e, sizeof e, "cannot record the import in the database: %s",
		         err ? err : "no id");
		goto fail;
	}
	struct import_env env = {.base = s->base, .cfg = s->cfg,
	                         .providers = s->providers, .store = s->store};
	struct import_callbacks icb = {.error = import_error, .end = import_end, .arg = s};
	if (log_enabled(LOG_DEBUG)) {
		icb.page = import_page;
		icb.stored = import_stored;
	}
	s->imp = import_new(&env, id, &icb, e);
	if (!s->imp)
		goto fail;
	log_set_import(id);
	s->started_at = time(NULL);
	s->finished_at = 0;
	log_notice("started (requested by %s)", s->pending_requester);
	if (import_start(s->imp, e) < 0) {
		import_cancel(s->imp);
		goto fail;
	}
	if (s->stopping)
		import_interrupt(s->imp);
	if (cb)
		cb(cb_arg, id, NULL);
	return;
fail:
	log_err("%s", e);
	if (id > 0 && !s->imp) {
		/* The run's row exists: it must not stay 'running'. */
		if (store_add_error(s->store, id, "", "", 0, 0, e) < 0)
			log_err("import %" PRId64 ": out of memory: the error is not recorded", id);
		if (store_finish_import(s->store, id, "failed", NULL, NULL, NULL) < 0)
			log_err("import %" PRId64 ": out of memory: it stays 'running' until the "
			        "next start marks it interrupted", id);
	}
	if (cb)
		cb(cb_arg, 0, e);
	if (!s->imp && s->cb.import_ended)
		s->cb.import_ended(s->cb.arg, id, "failed");
}

int service_start_import(struct service *s, const char *requested_by,
                         service_started_fn cb, void *arg, char *err)
{
	if (s->stopping)
		return err_set(err, "raced is shutting down");
	if (s->imp && (import_ending(s->imp) || import_ended(s->imp)))
		return err_set(err, "import %" PRId64 " is ending (its final status is being written); "
		               "try again in a moment", import_id(s->imp));
	if (s->imp)
		return err_set(err, "import %" PRId64 " is running; wait for it to end or cancel it (racectl cancel)",
		               import_id(s->imp));
	if (s->starting || (s->start_when_ready && s->wait_cb))
		return err_set(err, "an import is being started");
	if (s->store_state == STORE_BACKOFF)
		return err_set(err, "the database is not connected (%s); the import would wait — try again once 'racectl health' is OK",
		               s->store_why[0] ? s->store_why : store_state_name(s->store_state));
	char *who = strdup(requested_by ? requested_by : "unknown");
	if (!who)
		return err_set(err, "out of memory");
	free(s->pending_requester);
	s->pending_requester = who;
	if (s->store_state != STORE_READY) {
		/* Still making the first connection (raced was just started,
		 * perhaps by this very request through socket activation):
		 * start as soon as it is up; answered then. */
		s->start_when_ready = true;
		s->wait_cb = cb;
		s->wait_arg = arg;
		return 0;
	}
	s->start_cb = cb;
	s->start_arg = arg;
	s->starting = true;
	if (store_begin_import(s->store, who, run_created, s) < 0) {
		s->starting = false;
		s->start_cb = NULL;
		return err_set(err, "the store refused to record a new import");
	}
	return 0;
}

int service_start_import_when_ready(struct service *s, const char *requested_by, char *err)
{
	char *who = strdup(requested_by);
	if (!who)
		return err_set(err, "out of memory");
	free(s->pending_requester);
	s->pending_requester = who;
	if (s->store_state == STORE_READY)
		return service_start_import(s, who, NULL, NULL, err);
	s->start_when_ready = true;
	return 0;
}

int64_t service_pause(struct service *s, bool paused, char *err)
{
	if (!s->imp || import_ended(s->imp))
		return err_set(err, "no import is running");
	import_pause(s->imp, paused);
	log_notice("import %" PRId64 " %s", import_id(s->imp), paused ? "paused" : "resumed");
	return import_id(s->imp);
}

int64_t service_cancel(struct service *s, char *err)
{
	if (!s->imp || import_ended(s->imp))
		return err_set(err, "no import is running");
	int64_t id = import_id(s->imp);
	if (import_ending(s->imp))
		return err_set(err, "import %" PRId64 " is already ending", id);
	log_notice("cancelled by request");
	import_cancel(s->imp);
	return id;
}

/* ---- reload ---- */

int service_reload(struct service *s, struct config *next, char *changes, size_t len, char *err)
{
	if (s->stopping)
		return err_set(err, "raced is shutting down");
	/* config_describe_changes() notes what only a restart applies
	 * (control_socket: the socket may be systemd's). */
	config_describe_changes(s->cfg, next, changes, len);
	if (!s->imp && !s->starting) {
		if (adopt_config(s, next, err) < 0)
			return -1;
		return 0;
	}
	/* Not now: the running import keeps the configuration it started
	 * with; this one takes effect when it ends. */
	config_free(s->next_cfg);
	s->next_cfg = next;
	size_t used = strnlen(changes, len);
	if (used + 1 < len)
		snprintf(changes + used, len - used, " (takes effect when import %" PRId64 " ends)",
		         s->imp ? import_id(s->imp) : 0);
	return 0;
}

/* ---- stop ---- */

/* After stop_timeout the running fetches are abandoned; if even the final
 * status cannot be written within SERVICE_STOP_GRACE_MS more (the database
 * is down), raced stops anyway and the next start marks the run
 * 'interrupted' (store_mark_stale_runs). */
#define SERVICE_STOP_GRACE_MS 5000

static void stop_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct service *s = arg;
	(void)fd;
	(void)what;
	if (s->stopped)
		return;
	if (s->imp && !s->stop_abandoned) {
		s->stop_abandoned = true;
		log_warn("stop: still draining after stop_timeout; abandoning running fetches");
		import_interrupt(s->imp); /* second call: stop waiting */
		struct timeval tv = {SERVICE_STOP_GRACE_MS / 1000, 0};
		evtimer_add(s->stop_ev, &tv);
		return;
	}
	log_err("stop: the final status of import %" PRId64 " could not be written (%s); "
	        "it will be marked interrupted at the next start",
	        s->imp ? import_id(s->imp) : 0, store_state_name(s->store_state));
	s->stopped = true;
	if (s->cb.stopped)
		s->cb.stopped(s->cb.arg);
}

void service_stop(struct service *s)
{
	if (s->stopping) {
		/* Asked again (a second SIGTERM): do not wait for stop_timeout;
		 * abandon the running fetches now, and a third time stop
		 * without waiting for the final status. */
		if (!s->stopped) {
			log_notice("stop asked again: not waiting for stop_timeout");
			evtimer_del(s->stop_ev);
			stop_deadline(-1, 0, s);
		}
		return;
	}
	s->stopping = true;
	s->start_when_ready = false;
	if (s->wait_cb) {
		service_started_fn cb = s->wait_cb;
		s->wait_cb = NULL;
		cb(s->wait_arg, 0, "raced is shutting down");
	}
	if (!s->imp && !s->starting) {
		s->stopped = true;
		if (s->cb.stopped)
			s->cb.stopped(s->cb.arg);
		return;
	}
	if (s->imp)
		import_interrupt(s->imp);
	struct timeval tv = {s->cfg->stop_timeout_ms / 1000, (s->cfg->stop_timeout_ms % 1000) * 1000};
	evtimer_add(s->stop_ev, &tv);
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
	return json_pack("{s:o,s:o,s:o,s:o,s:b}", "import", imp, "stages", stages,
	                 "store", store, "providers", providers, "stopping", s->stopping);
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
	if (s->store_state != STORE_READY && (s->imp || s->start_when_ready))
		snprintf(buf, len, "waiting for the database (%s)", store_state_name(s->store_state));
	else if (s->imp)
		import_progress(s->imp, buf, len);
	else if (s->stopping)
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

int service_runs(struct service *s, int64_t id, uint32_t limit, service_json_fn cb, void *arg,
                 char *err)
{
	if (s->store_state != STORE_READY)
		return err_set(err, "the database is not connected (%s)",
		               s->store_why[0] ? s->store_why : store_state_name(s->store_state));
	struct runs_query *q = calloc(1, sizeof *q);
	if (!q)
		return err_set(err, "out of memory");
	*q = (struct runs_query){.s = s, .cb = cb, .arg = arg, .next = s->queries};
	if (store_get_runs(s->store, id, limit ? limit : 10, runs_done, q) < 0) {
		free(q);
		return err_set(err, "out of memory");
	}
	s->queries = q;
	return 0;
}

const struct config *service_config(const struct service *s)
{
	return s->cfg;
}

/* ---- setup ---- */

static int build_backends(struct service *s, char *err)
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
			.name = p->name, .base_url = p->base_url, .token = p->token,
			.max_connections = p->max_connections, .rate_limit = p->rate_limit,
			.timeout_ms = p->timeout_ms, .max_retries = p->max_retries,
			.max_body = p->max_body, .max_redirects = p->max_redirects,
		};
		s->providers[i] = fetcher_add_provider(s->fetcher, &fc, err);
		if (!s->providers[i])
			return -1;
	}
	s->tables = calloc(cfg->n_stages ? cfg->n_stages : 1, sizeof *s->tables);
	if (!s->tables)
		return err_set(err, "out of memory");
	for (size_t i = 0; i < cfg->n_stages; i++)
		s->tables[i] = cfg->stages[i].name;
	struct store_conf sc = {.conninfo = cfg->conninfo, .batch_size = cfg->batch_size,
	                        .discard = cfg->discard,
	                        .tables = s->tables, .n_tables = cfg->n_stages};
	struct store_callbacks scb = {.state_changed = store_state_changed, .arg = s};
	s->store_state = STORE_CONNECTING;
	s->store = store_new(s->base, &sc, &scb, err);
	if (!s->store)
		return -1;
	if (store_mark_stale_runs(s->store) < 0)
		return err_set(err, "out of memory queueing the marking of interrupted runs");
	return 0;
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
	if (s->start_cb) {
		/* a start-import waiting for its run row */
		service_started_fn cb = s->start_cb;
		s->start_cb = NULL;
		cb(s->start_arg, 0, "raced is shutting down");
	}
	if (s->wait_cb) {
		/* ... or for the database */
		service_started_fn cb = s->wait_cb;
		s->wait_cb = NULL;
		cb(s->wait_arg, 0, "raced is shutting down");
	}
	import_free(s->imp);
	free_backends(s);
	config_free(s->cfg);
	config_free(s->next_cfg);
	json_decref(s->last_stats);
	free(s->pending_requester);
	if (s->tick_ev)
		event_free(s->tick_ev);
	if (s->reap_ev)
		event_free(s->reap_ev);
	if (s->stop_ev)
		event_free(s->stop_ev);
	free(s);
}
