/* ctlformat — racectl's human output: control replies (control.h result
 * shapes, docs/control-protocol.md) rendered as aligned tables and lines.
 *
 * Everything here reads a borrowed json_t and writes to a FILE or a
 * caller's buffer; missing or mistyped fields print as "-", never crash,
 * so an older or newer daemon still renders.
 */
#ifndef RACED_CTLFORMAT_H
#define RACED_CTLFORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* Nagios plugin exit codes. */
enum ctlformat_health_exit { HEALTH_OK = 0, HEALTH_WARNING = 1, HEALTH_CRITICAL = 2, HEALTH_UNKNOWN = 3 };

/* Map a health result {"status","message"} to "RACED OK - message" and the
 * exit code.  A NULL result or an unknown status is UNKNOWN. */
int ctlformat_health(const json_t *result, char *line, size_t size);

/* The health line and exit code when no health result came: class is the
 * failure's class (ctlclient.h; -EPROTO for a reply that is not one).  A
 * daemon not there or not answering (-ENOENT, -ECONNREFUSED, -ETIMEDOUT,
 * -ECONNRESET) is CRITICAL, "RACED CRITICAL - err"; anything else means
 * the check could not run or got nonsense: UNKNOWN. */
int ctlformat_health_failure(int class, const char *err, char *line, size_t size);

/* The stats result: the import line, the stage table, the subscription
 * table, the store line and the provider table. */
void ctlformat_stats(FILE *out, const json_t *result);

/* The status result: one row per run; for one run with error_groups, a
 * blank line and those groups as ctlformat_error_groups() prints them. */
void ctlformat_status(FILE *out, const json_t *result);

/* An errors result {import_id, status, errors, groups}: the line
 * "import 7 partial: 5 errors in 2 groups" (or "import 7 succeeded: no
 * errors"), then the groups. */
void ctlformat_errors(FILE *out, const json_t *result);

/* Error groups [{stage, cause, count, urls}]: an aligned table with the
 * columns STAGE, CAUSE, COUNT (a null stage, the import's own, as "-"),
 * each row followed by its URLs, one a line, indented by four spaces. */
void ctlformat_error_groups(FILE *out, const json_t *groups);

/* One progress line for `start-import --wait` from a stats result:
 * "import 42 running: races 10, entries 140, athletes 120; 1 failed; 45.2/s". */
void ctlformat_progress(const json_t *stats, char *line, size_t size);

/* A reload result {config, applied, waiting, restart, waits_for_import}:
 * "configuration reloaded from PATH", then a line per change:
 * "  applied now: ...", "  when import 7 ends: ...", "  at the next
 * restart: ...", or "  nothing changed". */
void ctlformat_reload(FILE *out, const json_t *result);

/* A config result {config, keys: [{section, name, key, value, source,
 * line, reload}]}: "configuration in force: PATH", then an aligned table
 * SECTION KEY VALUE SOURCE RELOAD, the source as the file's name and line
 * ("raced.conf:12") or "default", an unset value as "(not set)". */
void ctlformat_config(FILE *out, const json_t *result);

/* Results of the simple commands (start-import, cancel, pause, resume,
 * reload, version, help): one readable line or list. */
void ctlformat_result(FILE *out, const char *cmd, const json_t *result);

#endif
