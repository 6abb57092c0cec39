/* service — the daemon's runtime: the configuration in force, the fetcher
 * and its providers, the store, and the import that runs (at most one).
 * It starts, pauses, cancels and drains imports, applies reloads (live
 * keys at once, the others between imports), and answers the control
 * commands.  daemon/main.c only parses arguments, sets up the loop and
 * signals, and calls into it.
 *
 * Ownership: the service owns everything it creates, including the
 * configuration handed to service_new() and to service_reload() (on
 * success).  It borrows the event base.
 */
#ifndef RACED_SERVICE_H
#define RACED_SERVICE_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct config;
struct control_request;
struct event_base;
struct service;

struct service_callbacks {
	/* An import ended with its final status committed. */
	void (*import_ended)(void *arg, int64_t id, const char *status);
	/* Draining finished after service_stop(): the loop may exit. */
	void (*stopped)(void *arg);
	void *arg;
};

struct service *service_new(struct event_base *base, struct config *cfg,
                            const struct service_callbacks *cb, char *err);
void service_free(struct service *s);

/* How a start-import uses the state earlier runs kept. */
struct service_start {
	bool full;          /* --full: no state read, no skip, no cursor */
	bool resume;        /* --resume: continue an interrupted import */
	int64_t resume_id;  /* which one; 0 = latest */
};

/* Start an import (async: cb gets the id once the run's row exists, or 0
 * and why not).  opt may be NULL (a plain incremental import).  Refused
 * at once, with err and a class (lib/base/error.h), while raced stops
 * (-ESHUTDOWN), an import runs or ends or another start is pending (at
 * most one is) (-EBUSY), or the database is down (-ENOTCONN); full and
 * resume together (-EINVAL); a resume that cannot be made (-ENOSYS for
 * now: resuming is not built yet); -ENOMEM.  While raced still makes its
 * first connection the request waits for it, and cb is told if that
 * connection is refused.  The states and their transitions are
 * lifecycle.h's. */
typedef void (*service_started_fn)(void *arg, int64_t id, const char *err);
RACED_MUST_CHECK int service_start_import(struct service *s, const char *requested_by,
                                          const struct service_start *opt, service_started_fn cb, void *arg,
                                          char *err);

/* As above with nobody to answer: waits for the database however long it
 * is down (raced --once); the import_ended callback tells how it went.
 * The same classes. */
RACED_MUST_CHECK int service_start_import_when_ready(struct service *s, const char *requested_by,
                                                     const struct service_start *opt, char *err);

/* Pause/resume or cancel the running import: its id, or a class with
 * err: -ESRCH when no import runs, -EBUSY (cancel) when it is already
 * ending. */
RACED_MUST_CHECK int64_t service_pause(struct service *s, bool paused, char *err);
RACED_MUST_CHECK int64_t service_cancel(struct service *s, char *err);

/* Adopt a new configuration (takes ownership on success).  Each change
 * applies as the key table says (config.h, enum config_when): live keys at
 * once, even while an import runs (a provider's rate_limit,
 * max_connections, timeout and max_retries, a stage's concurrency,
 * [database] batch_size and max_outage, [daemon] stop_timeout ...); the
 * others at once when idle, else when the
 * running import ends; control_socket, metrics and resume at the next
 * start.  Idle, with [database] and the stages unchanged, the store and
 * its connection are kept.  *report gets {"applied": [texts], "waiting":
 * [texts], "restart": [texts], "waits_for_import": id|null}
 * (config_each_change's texts; NULL only when out of memory).  Fails with
 * err: -ESHUTDOWN while raced stops, -1 when the new backends cannot be
 * built or the live limits not applied. */
RACED_MUST_CHECK int service_reload(struct service *s, struct config *next, json_t **report, char *err);

/* SIGTERM: drain the running import (ends 'interrupted') within the
 * configured stop_timeout, then call stopped(). */
void service_stop(struct service *s);

json_t *service_stats(const struct service *s);
/* {"status": "ok"|"warning"|"critical", "message": "..."} */
json_t *service_health(const struct service *s);
/* One line for STATUS=: "idle", "import 42: ...", "waiting for the database". */
void service_status_line(const struct service *s, char *buf, size_t len);

typedef void (*service_json_fn)(void *arg, json_t *result, const char *err);
/* Import run id (id > 0), or the `limit` most recent (id == 0; limit 0 =
 * 10), read from the database; cb gets them later.  Refused at once
 * (-ENOTCONN, err says why) while the database is not connected: the
 * question would otherwise wait for it, and the asker would see no
 * answer; -ENOMEM. */
RACED_MUST_CHECK int service_runs(struct service *s, int64_t id, uint32_t limit,
                                  service_json_fn cb, void *arg, char *err);
/* URLs per group service_errors gives when asked for 0. */
#define SERVICE_ERROR_URLS 3
/* The import_errors of run id (id == 0: the latest), grouped by stage and
 * cause, `urls` URLs a group (0 = SERVICE_ERROR_URLS): store_get_errors'
 * object, {} when there is no such run.  Refused as service_runs is. */
RACED_MUST_CHECK int service_errors(struct service *s, int64_t id, uint32_t urls,
                                    service_json_fn cb, void *arg, char *err);

/* [daemon] resume = auto applies: once the first connection has marked
 * the runs a crash left running, the latest resumable run is resumed
 * (raced, not raced --once, which does what it is told). */
void service_set_auto_resume(struct service *s, bool on);

const struct config *service_config(const struct service *s);

#endif
