/* notify — telling systemd what raced is doing (sd_notify), with no #ifdef
 * at the call sites.
 *
 * Every function is a no-op when NOTIFY_SOCKET is unset, so the daemon
 * calls them unconditionally.  Sends are best-effort: they return what
 * sd_notify returned (>0 sent, 0 not under systemd, <0 -errno) and the
 * caller may log a failure once; nothing here logs.
 *
 *   notify_ready()      READY=1, once the configuration is loaded and the
 *                       control socket listens, and again after a reload.
 *   notify_status()     STATUS=..., only when the text changed since the
 *                       last one sent (so it may be called on every tick);
 *                       secrets in it are masked (redact.h).
 *   notify_reloading()  RELOADING=1 with MONOTONIC_USEC=now (SIGHUP).
 *   notify_stopping()   STOPPING=1 (SIGTERM/SIGINT, drain begins).
 *   notify_watchdog_setup()
 *                       when systemd asked for a watchdog (WATCHDOG_USEC,
 *                       and WATCHDOG_PID is ours or unset), arms a
 *                       persistent timer on the event loop at half the
 *                       interval that sends WATCHDOG=1.  Because the ping
 *                       comes from the loop itself, a stuck loop stops
 *                       pinging and systemd kills and restarts the service.
 *
 * Ownership: the module keeps process-wide state (the last STATUS text,
 * bounded at NOTIFY_STATUS_MAX bytes, and the watchdog timer event).
 * notify_watchdog_teardown() frees the timer; call it before freeing the
 * event_base.  Single-threaded, like the rest of raced.
 */
#ifndef RACED_NOTIFY_H
#define RACED_NOTIFY_H

#include "error.h"

#include <stdint.h>

struct event_base;

#define NOTIFY_STATUS_MAX 256 /* longer STATUS texts are truncated */

int notify_ready(void);
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int notify_reloading(void);
int notify_stopping(void);

/* Returns 1 and sets *interval_usec (the ping period, half of
 * WATCHDOG_USEC) when the watchdog is armed, 0 when systemd asked for no
 * watchdog, -1 with err filled (ERR_MAX bytes) when the timer could not be
 * created.  Calling it again re-reads the environment and re-arms. */
RACED_MUST_CHECK
int notify_watchdog_setup(struct event_base *base, uint64_t *interval_usec, char *err);
void notify_watchdog_teardown(void);

#endif
