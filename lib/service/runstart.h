/* runstart — what a run begins with, decided from what the database
 * says: the root's URL under a cursor (a new run), and whether a run may
 * be resumed (docs/architecture.md, "Import state across runs").
 *
 * Pure: no I/O, no clock; the service asks the store and passes the
 * answers in.  Failures are a class (a negated errno, lib/base/error.h)
 * and a sentence in err (ERR_MAX bytes) that names the run or the value
 * and the fix.
 *
 * Ownership: inputs are borrowed; *out strings are malloc'd and the
 * caller's.
 */
#ifndef RACED_RUNSTART_H
#define RACED_RUNSTART_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The text a cursor placeholder stands for: v (a JSON string holding an
 * ISO 8601 time, or a JSON number; NULL or null: none yet) less lag_ms
 * (a time moved back and written as ISO 8601 UTC to the second,
 * rounded down; a number less lag_ms / 1000), or `initial` as it is when
 * there is no value yet.  -EINVAL when v is neither (or its time cannot
 * be read), or when there is no value and no initial; -ENOMEM. */
RACED_MUST_CHECK
int runstart_cursor_text(const json_t *v, uint32_t lag_ms, const char *initial, char **out,
                         char *err);

struct stage_conf;

/* Whether the root's url names {last_success} or {cursor}. */
bool runstart_has_cursor(const struct stage_conf *root);

/* The root's first URL: its url with {last_success} and {cursor} filled
 * from values (the store's store_get_cursor answer {last_success, max};
 * NULL, as for --full: `initial` for both), less the root's lag.  *out
 * malloc'd.  A class and err as runstart_cursor_text, or the template's
 * own refusal. */
RACED_MUST_CHECK
int runstart_root_url(const struct stage_conf *root, const json_t *values, char **out,
                      char *err);

/* May run (the store's store_get_run answer, or null) be resumed?  asked
 * is the id asked for (0: the latest resumable one).  0 when it may;
 * -ENOENT when there is nothing to resume; -EINVAL when the run is not
 * resumable (its status named: succeeded, partial, cancelled, running,
 * or failed for a reason resuming does not mend); -ESTALE when a later
 * import succeeded since (resuming would bring older data back). */
RACED_MUST_CHECK
int runstart_check_resume(const json_t *run, int64_t asked, char *err);

#endif
