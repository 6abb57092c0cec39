/* log — raced's log lines on stderr, for journald, a terminal or a file.
 *
 * Each event is one line, written with a single write(2) so lines from
 * one process never interleave, and carries the sd-daemon priority prefix
 * journald reads: <3> err, <4> warning, <5> notice, <6> info, <7> debug.
 * When stderr is not journald's stream (log_setup_stderr: JOURNAL_STREAM
 * unset, or naming another file than fd 2, the test systemd's own tools
 * make), the line opens with the local time in ISO 8601 to the
 * millisecond and a space, before the prefix:
 *   2026-12-05T22:00:50.123+01:00 <5>raced 1.0.0 started with ...
 * Under journald there is no timestamp: the journal records its own.
 * Newlines and other control characters inside a message are escaped (\n,
 * \r, \t, \xNN) so an event never spans lines, and secrets (libpq's secret
 * options, URL passwords) are masked (redact.h).  While an import
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
#include <stddef.h>
#include <stdint.h>
#include <syslog.h> /* LOG_ERR .. LOG_DEBUG: the priorities used here */

#define LOG_LINE_MAX 4096
#define LOG_LEVEL_DEFAULT LOG_NOTICE

/* Show priorities up to and including max_priority (LOG_ERR..LOG_DEBUG;
 * out-of-range values are clamped). */
void log_set_level(int max_priority);
int log_level(void);
/* raced -v: the level stays max_priority; log_set_configured_level() no
 * longer changes it. */
void log_pin_level(int max_priority);
/* The configuration's level ([daemon] log_level), unless pinned. */
void log_set_configured_level(int max_priority);
bool log_enabled(int priority);

/* Decide once, at start-up, whether lines carry timestamps: yes unless
 * stderr is journald's stream (log_stderr_is_journal).  Until called (and
 * in the unit tests), lines carry none. */
void log_setup_stderr(void);
void log_set_timestamps(bool on);

/* JOURNAL_STREAM is "DEV:INODE" and fd 2 is that very file. */
bool log_stderr_is_journal(void);

struct timespec;
/* ts as local time, "2026-12-05T22:00:50.123+01:00" (ISO 8601, milliseconds,
 * the UTC offset as +HH:MM); returns its length, 0 (and "") when it does not
 * fit in size bytes. */
size_t log_format_time(char *out, size_t size, const struct timespec *ts);

/* Lines carry "import ID: " while id > 0; 0 clears it. */
void log_set_import(int64_t id);

void log_write(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
