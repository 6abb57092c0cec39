/* metrics — the daemon's figures as OpenMetrics text, for Prometheus
 * ([daemon] metrics; docs/operations.md lists every metric).
 *
 * Pure: the text is built from what service_stats() returns (a JSON
 * object; see service.h) and from the daemon's totals, with no I/O and no
 * clock.  The HTTP side is daemon/metrics_http.c.
 *
 * Counters never go backwards: a stage's counters in service_stats() are
 * the running (or last) import's, so the daemon keeps totals over the
 * imports that ended (metrics_fold, once per import when it ends) and a
 * counter is those totals plus the running import's figures.  The
 * providers' and the store's counters are the daemon's own, but a reload
 * builds a new fetcher and store that count from 0: metrics_carry() finds
 * a group (a provider, the store) whose counters went down since the last
 * scrape and carries their last values from then on.  Gauges (the
 * import's state, demand, buffers, in flight, limits) are the moment's.
 *
 * Names: the `raced_` prefix, base units (seconds, bytes), counters'
 * families and samples both end in `_total` (what `promtool check metrics`
 * and Prometheus' OpenMetrics parser both accept); label values escaped
 * (backslash, double quote, newline); the text ends with `# EOF`.
 *
 * Ownership: metrics_totals_new() returns a JSON object the caller owns
 * (json_decref); metrics_format() fills a text the caller frees with
 * metrics_text_free().  Nothing is kept between calls.
 */
#ifndef RACED_METRICS_H
#define RACED_METRICS_H

#include "error.h"

#include <jansson.h>
#include <stddef.h>

/* The largest text a scrape returns: a bound on what one scrape copies
 * (64 stages and as many providers take about 60 KiB). */
#define METRICS_MAX_BYTES (1u << 20)

#define METRICS_CONTENT_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"

struct metrics_text {
	char *buf;   /* NUL-terminated, malloc'd */
	size_t len;
	size_t cap;
};

/* Empty totals: nothing ended yet.  NULL when out of memory. */
json_t *metrics_totals_new(void);

/* An import ended: add its final figures (`stats`, what service_stats()
 * returns once it ended) to the totals, once per import id (an import
 * already folded, or none, changes nothing).  -1 when out of memory. */
RACED_MUST_CHECK int metrics_fold(json_t *totals, const json_t *stats);

/* Before formatting: add to the providers' and the store's counters in
 * `stats` (a copy the caller owns) what they counted before a reload reset
 * them, and remember this scrape's values in the totals.  -1 when out of
 * memory. */
RACED_MUST_CHECK int metrics_carry(json_t *totals, json_t *stats);

/* The whole text for one scrape into *out (initialise it to zeros).
 * -1 with err when out of memory or over METRICS_MAX_BYTES. */
RACED_MUST_CHECK int metrics_format(const json_t *stats, const json_t *totals,
                                    struct metrics_text *out, char *err);
void metrics_text_free(struct metrics_text *t);

#endif
