/* config_value — the syntax of raced.conf's values, read and written:
 * whole numbers, durations ("250ms", "30s", "2m", "1h", "7d", bare seconds), sizes
 * ("16MiB"), booleans, decimals, absolute http(s) URLs, socket paths and
 * libpq connection strings.
 *
 * Pure functions over caller-owned strings; nothing is allocated (but the
 * libcurl and libpq parsers' own, released before returning).
 * Readers return 0, or -1 for a value of the wrong form; a well-formed
 * number may exceed any range (it saturates at UINT64_MAX), the caller
 * checks the key's bounds.  Writers give the shortest exact form, so a
 * value reads back as itself.
 */
#ifndef RACED_CONFIG_VALUE_H
#define RACED_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

RACED_MUST_CHECK int config_value_uint(const char *s, uint64_t *v);
RACED_MUST_CHECK int config_value_duration(const char *s, uint64_t *ms);
RACED_MUST_CHECK int config_value_size(const char *s, uint64_t *bytes);
RACED_MUST_CHECK int config_value_bool(const char *s, bool *v);
/* Digits with at most one '.', no sign or exponent. */
RACED_MUST_CHECK int config_value_decimal(const char *s, double *v);

/* An absolute http(s) URL with a host, as libcurl parses it; on failure msg
 * (n bytes) says why, e.g. "'x' is not an absolute http:// or https:// URL
 * (it has no scheme)". */
RACED_MUST_CHECK int config_value_http_url(const char *s, char *msg, size_t n);

/* An absolute path that fits a Unix socket address. */
RACED_MUST_CHECK int config_value_socket_path(const char *s, char *msg, size_t n);

/* A libpq conninfo or URI (PQconninfoParse).  The value may hold a
 * password, so msg quotes libpq's complaint, never the value. */
RACED_MUST_CHECK int config_value_conninfo(const char *s, char *msg, size_t n);

/* conninfo (valid, as config_value_conninfo checks) with
 * fallback_application_name=app added, in its own form (a keyword first,
 * or a URI's query parameter), unless it names an application_name or a
 * fallback_application_name already: so a connection shows as app in
 * pg_stat_activity unless the operator chose otherwise (PGAPPNAME too
 * wins over a fallback).  Returns a string the caller frees, or NULL when
 * out of memory. */
char *config_value_conninfo_named(const char *conninfo, const char *app);

/* An ISO 8601 timestamp as a cursor's `initial` takes it: a date
 * ("2024-01-31", midnight UTC) or a date and time with seconds optional,
 * a fraction optional and a zone required ("2024-01-31T06:00:00Z",
 * "2024-01-31T08:00+02:00"); the date must exist.  0, or -1. */
RACED_MUST_CHECK int config_value_timestamp(const char *s);
/* A decimal number as JSON writes one without exponent: "-12", "0.5".
 * 0, or -1. */
RACED_MUST_CHECK int config_value_number(const char *s);

/* "7d", "1h", "2m", "30s", "250ms": the largest unit that divides ms. */
void config_value_format_duration(uint64_t ms, char *out, size_t n);
/* "1GiB", "16MiB", "4KiB" or bytes. */
void config_value_format_size(uint64_t bytes, char *out, size_t n);

#endif
