/* import — one import run: the stage pipeline the configuration declares,
 * with HTTP fetches as the stages' work and the store as the consumer.
 *
 * Each configured stage becomes an engine stage (the root a producer that
 * pages through its list, the others producer-consumers that fetch, for
 * every parent item, all pages of its children); the store subscribes to
 * every stage and acknowledges events only as their rows commit (R6).  An
 * import ends in one of the statuses of SPEC §4 once the store has written
 * its final import_runs row; the end callback then tells the daemon.
 *
 * Ownership: the daemon owns the import and frees it after the end
 * callback (never from inside it).  The import borrows the configuration,
 * the fetch providers and the store, which must outlive it; it owns its
 * pipeline, its items and their payloads, and its copy of the options.
 */
#ifndef RACED_IMPORT_H
#define RACED_IMPORT_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct fetch_provider;
struct import;
struct store;

struct import_callbacks {
	/* A request or an item failed for good (it is recorded in
	 * import_errors too); for the daemon's log. */
	void (*error)(void *arg, struct import *imp, const char *stage, const char *url,
	              long http_status, uint32_t attempts, const char *message);
	/* A page arrived (for raced --verbose); may be NULL. */
	void (*page)(void *arg, struct import *imp, const char *stage, const char *url,
	             long http_status, uint32_t attempts, size_t items);
	/* Something worth a log line that is not an error (a 304 that could
	 * not be used, and what was done instead); may be NULL. */
	void (*notice)(void *arg, struct import *imp, const char *stage, const char *url,
	               const char *message);
	/* n rows of `stage` committed (for raced --verbose); may be NULL. */
	void (*stored)(void *arg, struct import *imp, const char *stage, size_t n);
	/* The run's final status is committed.  Do not free imp from here. */
	void (*end)(void *arg, struct import *imp);
	void *arg;
};

struct import_env {
	struct event_base *base;
	const struct config *cfg;
	struct fetch_provider *const *providers; /* indexed like cfg->providers */
	struct store *store;
};

/* How this run uses the state earlier runs kept (docs/architecture.md,
 * "Import state across runs"). */
struct import_options {
	bool full;            /* --full: no state read, no skip, no cursor */
	bool resumed;         /* a resumed run: its checkpoints count */
	const char *root_url; /* the root's first URL (cursor expanded), NULL: the stage's url */
	const json_t *prior_counts; /* a resumed run's counts so far, added to its own (or NULL) */
};

/* opt may be NULL (all false, no root_url); the import keeps a copy,
 * root_url included. */
struct import *import_new(const struct import_env *env, int64_t id, const struct import_options *opt,
                          const struct import_callbacks *cb, char *err);
void import_free(struct import *imp);

RACED_MUST_CHECK
int import_start(struct import *imp, char *err);

/* Pause: no new fetch starts; running ones finish.  Resume continues. */
void import_pause(struct import *imp, bool paused);
/* The configuration the import holds had live keys changed by a reload
 * (config_apply_live): each stage's concurrency goes into the engine now. */
void import_config_changed(struct import *imp);
bool import_paused(const struct import *imp);

/* End the run 'cancelled': running fetches are aborted, rows the store
 * already holds are committed. */
void import_cancel(struct import *imp);

/* Drain for shutdown: no new fetch starts, running ones finish, the store
 * commits what it holds, the run ends 'interrupted'.  Calling it again
 * stops waiting for running fetches. */
void import_interrupt(struct import *imp);

int64_t import_id(const struct import *imp);
/* The options it was made with (its own copy). */
const struct import_options *import_options(const struct import *imp);
/* "running" until the run ended, then its final status. */
const char *import_status(const struct import *imp);
bool import_ended(const struct import *imp);
/* Its end is decided (cancelled, drained, finished) but the run has not
 * ended: its final status is not committed yet, or what follows it is
 * still running (the finish's index builds, the final counts' read). */
bool import_ending(const struct import *imp);
/* Its final status (import_runs) has committed; the run may still be
 * ending (import_ending). */
bool import_status_committed(const struct import *imp);

/* Once a second: advance the rate window. */
void import_tick(struct import *imp);

/* Per stage: demand per subscription, buffer, in-flight, counters, rate. */
json_t *import_stats(const struct import *imp);
/* Per stage {fetched, stored, failed, retried, skipped, pages,
 * requests_body, requests_304, bytes, unchanged, skipped_fresh,
 * skipped_done, read_back, refetched}. */
json_t *import_counts(const struct import *imp);
/* One line for STATUS= and logs: "import 42: 12 races, 1200/1300 entries, 3 errors". */
void import_progress(const struct import *imp, char *buf, size_t len);

#endif
