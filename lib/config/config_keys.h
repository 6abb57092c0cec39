/* config_keys — the table of raced.conf's keys, shared by the loader
 * (config.c, which defines it) and the reload diff (config_diff.c).
 *
 * One row per key: the section kind it belongs to, its type, where it lands
 * in struct config / provider_conf / stage_conf, its default written in the
 * file's own syntax (parsed by the same code as a user's value), its bounds
 * and flags.  The table is static data; nothing here allocates.
 */
#ifndef RACED_CONFIG_KEYS_H
#define RACED_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum section_kind { SECT_DAEMON, SECT_DATABASE, SECT_PROVIDER, SECT_STAGE, SECT_KINDS };

/* "daemon", "database", "provider", "stage" */
extern const char *const config_section_names[SECT_KINDS];

enum key_type {
	KT_STRING,      /* char *, non-empty unless KF_EMPTY_OK */
	KT_SOCKET_PATH, /* char *, absolute, fits sockaddr_un */
	KT_LISTEN,      /* char *, loopback host:port or a socket path (config_listen_parse) */
	KT_URL,         /* char *, absolute http(s) URL */
	KT_CONNINFO,    /* char *, a libpq conninfo or URI (PQconninfoParse) */
	KT_TEMPLATE,    /* char *, URL template with {field} / {/pointer} */
	KT_POINTER,     /* char *, "" or a JSON pointer */
	KT_NEXT,        /* enum next_kind + stage_conf.next_pointer */
	KT_UINT,        /* uint32_t */
	KT_DURATION,    /* uint32_t milliseconds */
	KT_SIZE,        /* size_t bytes */
	KT_DOUBLE,      /* double */
	KT_BOOL,        /* bool */
	KT_CHOICE,      /* an enum (4 bytes): the index of the value in key_def.choices */
	KT_INITIAL,     /* char *, an ISO 8601 timestamp or a number (config_value_timestamp/_number) */
	KT_PARAM,       /* char *, a query parameter's name (urlquery_name_valid) */
	KT_HEADER,      /* char *, an HTTP header's name (RFC 9110 token) */
	KT_HEADER_LINES, /* char **lines + size_t n + unsigned *line_nos (provider_conf.headers): a
	                   "Name: value" line (auth_header_check), one per occurrence (KF_REPEAT) */
	KT_CONNECTIONS, /* provider_conf.max_connections (uint32_t, in the bounds) or "auto"
	                   (provider_conf.max_connections_auto) */
};

#define KF_REQUIRED 1u  /* no default: the section must set it */
#define KF_DERIVED  2u  /* default computed from other keys (apply_derived in config.c) */
#define KF_RESTART  4u  /* a reload does not apply it; the daemon must restart */
#define KF_SECRET   8u  /* config_describe_changes() masks it (a conninfo) or only names it */
#define KF_EMPTY_OK 16u /* an empty value is valid */
#define KF_ROOT_ONLY 32u /* a stage key only the root stage (no parent) may set */
/* A reload applies it at once, even while an import runs: its consumer
 * reads it from the configuration in force each time, or is handed the
 * new value (the service: fetch_provider_set_limits, store_set_batch_size,
 * import_config_changed for a stage's concurrency; the control server's
 * options).  Numbers only: config_apply_live() copies the value's bytes
 * into the configuration an import holds.  Neither this nor KF_RESTART:
 * the key applies when no import runs, at once or when the running one
 * ends. */
#define KF_LIVE     64u
#define KF_REPEAT   128u /* may be set more than once in a section (KT_HEADER_LINES) */

struct key_def {
	const char *name;
	enum section_kind section;
	enum key_type type;
	size_t offset;   /* in struct config, provider_conf or stage_conf */
	const char *def; /* default in the file's syntax, or NULL */
	uint64_t min, max;
	unsigned flags;
	const char *const *choices; /* KT_CHOICE: the values, NULL-terminated */
};

extern const struct key_def config_keys[];
extern const size_t config_n_keys;

/* The key lines (by key table row) of obj, a struct config (for [daemon]
 * and [database]), provider_conf or stage_conf as kind says. */
unsigned *config_key_lines(enum section_kind kind, void *obj);
const unsigned *config_key_lines_of(enum section_kind kind, const void *obj);

/* k's value in obj in the file's own syntax ("30s", "16MiB", "yes"); a
 * text value as written, or with its secrets masked (redact.h: a conninfo
 * as libpq reads it, a URL's password) when masked is true.  Returns false,
 * with "" in out, for a text key that is not set.  Always NUL-terminates
 * out (n > 0); a value that does not fit is cut.  (config_show.c) */
bool config_key_format(const struct key_def *k, const void *obj, bool masked, char *out, size_t n);

#endif
