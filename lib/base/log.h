/* log — raced's log lines on stderr, for journald.
 *
 * Each event is one line, written with a single write(2) so lines from
 * one process never interleave, and opens with the sd-daemon priority
 * prefix journald reads: <3> err, <4> warning, <5> notice, <6> info,
 * <7> debug.  Newlines and other control characters inside a message are
 * escaped (\n, \r, \t, \xNN) so an event never spans lines, and secrets
 * (libpq's secret options, URL passwords) are masked (redact.h).  While an import
 * is current (log_set_import) every line carries "import ID: " after the
 * prefix.  Lines are bounded at LOG_LINE_MAX bytes; a longer message is cut
 * and ends in "...".
 *
 * Threshold: quiet by default — notice and above.  `raced --verbose` sets
 * LOG_DEBUG so per-request info/debug lines appear.
 *
 * This is the one module that logs; the rest of libraced returns errors
 * to the caller, which logs them here once.  Process-wide state
 * (threshold, current import id); single-threaded.
 */
#ifndef RACED_LOG_H
#define RACED_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h> /* LOG_ERR .. LOG_DEBUG: the priorities used here */

#define LOG_LINE_MAX 4096
#define LOG_LEVEL_DEFAULT LOG_NOTICE

/* Show priorities up to and including max_priority (LOG_ERR..LOG_DEBUG;
 * out-of-range values are clamped). */
void log_set_level(int max_priority);
int log_level(void);
bool log_enabled(int priority);

/* Lines carry "import ID: " while id > 0; 0 clears it. */
void log_set_import(int64_t id);

void log_write(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
