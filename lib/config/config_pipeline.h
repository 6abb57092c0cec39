/* config_pipeline — the pipeline an import began with, as JSON, and what
 * changed in it since.  A resumed import must walk the pipeline it began
 * with: the run keeps config_pipeline_json() (import_runs.pipeline) and a
 * resume compares it with the configuration in force by
 * config_pipeline_diff(), refusing on the first difference.
 *
 * What counts is what decides which URLs an import requests and which rows
 * it writes: per stage its parent, provider, url, items, key, next and
 * dedupe, and the companions of its paging style (offset_param,
 * limit_param, limit, total; page_param, first_page, total_pages;
 * cursor_pointer or cursor_header, cursor_param; has_more).  A run kept
 * before raced recorded the companions is not checked on them.  Demands, buffers, concurrency, refresh and the providers' limits
 * may change between the runs of one import.  URLs are kept with their
 * secrets masked (redact.h): the JSON goes to the database, and a changed
 * token is not a changed pipeline.
 *
 * Ownership: config_pipeline_json() returns a new reference the caller
 * owns; config_pipeline_diff() borrows both sides.  Pure: no I/O.
 */
#ifndef RACED_CONFIG_PIPELINE_H
#define RACED_CONFIG_PIPELINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

/* {"<stage>": {"parent": "<stage>"|null, "provider", "url", "items", "key",
 * "next": "none"|"link"|"/pointer"|"offset"|..., "dedupe": bool,
 * "paging": {companion: value, ...} (only for a style that has them)},
 * ...} in the stages' order; NULL when out of memory. */
RACED_MUST_CHECK json_t *config_pipeline_json(const struct config *c);

/* 0 when `now` has the pipeline `was` describes; -1 with msg (len bytes)
 * naming the first difference — a stage of `now` (in its order) added or
 * changed (its first changed field, in the order above), else a stage of
 * `was` removed — and the fix, e.g. "[stage entries] url changed from
 * '/races/{id}/entries' to '/r/{id}/e' since import 12 began: resume it
 * with the configuration it began with, or start a new import (racectl
 * start-import, or --full)".  import_id is the import `was` belongs to.
 * A `was` that is not such an object (NULL: the run kept none) is a
 * difference too. */
RACED_MUST_CHECK int config_pipeline_diff(const json_t *was, const struct config *now, int64_t import_id,
                                          char *msg, size_t len);

#endif
