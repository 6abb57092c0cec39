/* metrics_http — [daemon] metrics: the OpenMetrics text (lib/service/
 * metrics.h) served on the loop with libevent's evhttp, read-only (GET
 * and HEAD of /metrics).
 *
 * Never in an import's way: a scrape formats what service_stats() returns
 * (bounded by METRICS_MAX_BYTES) in one loop turn; at most
 * METRICS_MAX_CLIENTS connections are accepted per METRICS_TIMEOUT_S (the
 * listener pauses when more come), and a connection idle for
 * METRICS_TIMEOUT_S is closed.
 *
 * Ownership: the daemon owns it; it borrows the event base and the service,
 * which must outlive it.  It owns the per-daemon totals (metrics_fold).
 */
#ifndef RACED_METRICS_HTTP_H
#define RACED_METRICS_HTTP_H

#include "error.h"

#define METRICS_MAX_CLIENTS 8        /* connections accepted per METRICS_TIMEOUT_S */
#define METRICS_TIMEOUT_S 5          /* a connection idle this long is closed */
#define METRICS_MAX_HEADERS 8192     /* a request's headers, bytes */

struct event_base;
struct metrics_http;
struct service;

/* Listen on `address` (config_listen_parse()).  NULL with err when the
 * address cannot be bound. */
RACED_MUST_CHECK struct metrics_http *metrics_http_open(struct event_base *base,
                                                        struct service *svc,
                                                        const char *address, char *err);
/* NULL is allowed.  Removes a Unix socket it created. */
void metrics_http_close(struct metrics_http *m);

/* An import ended: its figures join the per-daemon counters. */
void metrics_http_import_ended(struct metrics_http *m);

#endif
