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
	KT_CONNECTIONS, /* provider_conf.max_connections (uint32_t, in the bounds) or "auto"
	                   (provider_conf.max_connections_auto) */
};

#define KF_REQUIRED 1u  /* no default: the section must set it */
#define KF_DERIVED  2u  /* default computed from other keys (apply_derived in config.c) */
#define KF_RESTART  4u  /* a reload does not apply it; the daemon must restart */
#define KF_SECRET   8u  /* config_describe_changes() masks it (a conninfo) or only names it */
#define KF_EMPTY_OK 16u /* an empty value is valid */
#define KF_ROOT_ONLY 32u /* a stage key only the root stage (no parent) may set */

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

#endif
