/* config — raced.conf: INI (inih) parsed into a validated, immutable model.
 *
 * One declarative table of keys (name, section kind, type, default,
 * reloadable) drives parsing, validation, defaults and the "did you mean"
 * suggestion.  Every error names the file, the line, the section and the
 * key: "raced.conf:12: [stage entries] unknown key 'concurency' (did you
 * mean 'concurrency'?)".
 *
 * Ownership: config_load() returns a struct config that owns every string
 * and array in it; config_free() releases all of it.  Nothing else in the
 * daemon frees or modifies a config; a reload builds a new one.
 *
 * Inside: config.c (the key table, config_keys.h, and the inih loader),
 * config_lex (a line's syntax), config_value (a value's syntax), config_check (the pipeline as a whole),
 * tokenfile (token and password files), config_auth (a provider's
 * authentication and static headers, its secrets read), config_diff (config_describe_changes) and
 * config_pipeline (the pipeline an import began with, compared on resume).
 */
#ifndef RACED_CONFIG_H
#define RACED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "config_columns.h"
#include "error.h"
#include "tls.h"

#define CONFIG_DEFAULT_PATH "/etc/raced/raced.conf"
#define CONFIG_EXIT_INVALID 78 /* EX_CONFIG */
#define CONFIG_LINE_MAX 4096   /* longest line of raced.conf, comments excluded */
#define CONFIG_NAME_MAX 48     /* longest provider or stage name (stage names are table names) */
#define CONFIG_KEYS_MAX 64     /* rows the key table may have (config_keys.h; a static assert holds it) */

struct provider_conf {
	char *name;
	char *base_url;
	char *token_file;          /* as configured, or NULL */
	char *token;               /* read from token_file or $CREDENTIALS_DIRECTORY/<name>.token, or NULL */
	enum auth_kind auth;       /* default bearer when a token is configured, else none (config_auth.c) */
	char *username;            /* auth = basic */
	char *password_file;       /* auth = basic: as configured, or NULL */
	char *password;            /* read from password_file or $CREDENTIALS_DIRECTORY/<name>.password */
	char *auth_header;         /* auth = header: the header's name */
	char *auth_param;          /* auth = query: the parameter's name */
	char **headers;            /* static "Name: value" lines (auth.h), n_headers of them */
	size_t n_headers;
	unsigned *header_lines;    /* where each was set */
	uint32_t max_connections;  /* default 16; unused when max_connections_auto */
	bool max_connections_auto; /* max_connections = auto: adaptive (aimd.h) */
	uint32_t max_connections_ceiling; /* the adaptive limit's ceiling; default 128 */
	double rate_limit;         /* requests/s, default 0 = unlimited */
	uint32_t timeout_ms;       /* default 30s */
	uint32_t max_retries;      /* default 5 */
	size_t max_body;           /* default 16 MiB */
	uint32_t max_redirects;    /* default 5 */
	char *ca_file;             /* as configured, or NULL */
	char *ca_path;             /* ca_file resolved against raced.conf's directory, checked (tls.h) */
	enum tls_http_version http_version; /* default auto */
	unsigned line;
	unsigned key_line[CONFIG_KEYS_MAX]; /* by key table row: where the file set it; 0 = the default */
};

/* A stage's `next`: how its lists page (paginate.h).  config_next_names[]
 * spells each as raced.conf does ("pointer" stands for a JSON pointer). */
enum next_kind { NEXT_POINTER, NEXT_LINK, NEXT_NONE, NEXT_OFFSET, NEXT_PAGE_NUMBER, NEXT_CURSOR,
                 NEXT_HEADER_CURSOR, NEXT_KINDS };
extern const char *const config_next_names[NEXT_KINDS];

struct stage_conf {
	char *name;
	char *parent;              /* NULL for the root stage */
	char *provider;
	char *url;                 /* template: {field}, {/json/pointer} */
	char *items;               /* JSON pointer; "" = the document is one item */
	enum next_kind next;
	char *next_pointer;        /* when next == NEXT_POINTER */
	/* The paging styles' companions (config.c's paging table says which
	 * style takes which; the defaults are set whatever the style): */
	char *offset_param;        /* NEXT_OFFSET: default "offset" */
	char *limit_param;         /* NEXT_OFFSET: default "limit" */
	uint32_t limit;            /* NEXT_OFFSET: the page size asked for, required */
	char *total;               /* NEXT_OFFSET: JSON pointer to the number of items, or NULL */
	char *page_param;          /* NEXT_PAGE_NUMBER: default "page" */
	uint32_t first_page;       /* NEXT_PAGE_NUMBER: 0 or 1, default 1 */
	char *total_pages;         /* NEXT_PAGE_NUMBER: JSON pointer to the number of pages, or NULL */
	char *cursor_pointer;      /* NEXT_CURSOR: JSON pointer to the next cursor, required */
	char *cursor_header;       /* NEXT_HEADER_CURSOR: the header holding it, required */
	char *cursor_param;        /* the cursor styles: default "cursor" */
	char *has_more;            /* the four above: JSON pointer to a boolean, or NULL */
	char *key;                 /* JSON pointer to the item's key */
	bool dedupe;
	uint32_t max_demand;       /* what this stage's subscribers ask of it; default 500 */
	uint32_t min_demand;       /* default max_demand / 2 */
	uint32_t buffer_size;      /* default max_demand */
	uint32_t concurrency;      /* default 1 for the root, 8 otherwise */
	uint32_t max_pages;        /* pages one input may span; default 10000 */
	uint32_t refresh_ms;       /* an input fetched within this is not fetched again; 0 = always revalidate */
	uint32_t missing_field_limit; /* the first this many inputs all lack a url field: the stage stops; 0 = never; default 100 */
	/* The root only (config_check refuses them elsewhere): */
	char *cursor;              /* JSON pointer of the field {cursor} takes the largest stored value of, or NULL */
	uint32_t lag_ms;           /* subtracted from {last_success} / {cursor}; default 0 */
	char *initial;             /* what the first import uses for them: an ISO 8601 timestamp or a number, or NULL */
	/* Typed columns (config_columns.h): `columns` and `index` as written,
	 * and parsed. */
	char *columns_spec, *index_spec;   /* or NULL */
	struct config_column *columns;
	size_t n_columns;
	unsigned line;
	unsigned key_line[CONFIG_KEYS_MAX]; /* by key table row: where the file set it; 0 = the default */
};

/* The root's url may name these (config_check.c): the start time of the
 * latest succeeded import, ISO 8601 UTC, and the largest stored value of
 * the root's `cursor` field, each less `lag`; the first import uses
 * `initial`.  urltemplate_expand_named() fills them in. */
#define CONFIG_URL_LAST_SUCCESS "last_success"
#define CONFIG_URL_CURSOR "cursor"

/* [daemon] resume: whether raced, on start, resumes the import a crash
 * left running. */
enum config_resume { CONFIG_RESUME_NO, CONFIG_RESUME_AUTO };
extern const char *const config_resume_values[]; /* "no", "auto"; NULL-terminated */

/* [daemon] log_level: the least severe priority logged, syslog's names;
 * LOG_ERR + the enum's value is the syslog priority (log.h). */
enum config_log_level { CONFIG_LOG_ERROR, CONFIG_LOG_WARNING, CONFIG_LOG_NOTICE, CONFIG_LOG_INFO, CONFIG_LOG_DEBUG };
extern const char *const config_log_level_values[]; /* "error" ... "debug"; NULL-terminated */

/* [database] synchronous_commit: PostgreSQL's setting for raced's own
 * connection; config_synchronous_commit_values[] spells each as
 * PostgreSQL does (store_conf.synchronous_commit). */
enum config_sync { CONFIG_SYNC_ON, CONFIG_SYNC_OFF, CONFIG_SYNC_LOCAL, CONFIG_SYNC_REMOTE_WRITE,
                   CONFIG_SYNC_REMOTE_APPLY };
extern const char *const config_synchronous_commit_values[]; /* NULL-terminated */

struct config {
	char *path;
	/* [daemon] */
	char *control_socket;      /* default /run/raced/raced.sock */
	char *admin_group;         /* default raced-admin; may name no group */
	uint32_t max_clients;      /* control clients at once, default 64 */
	uint32_t stop_timeout_ms;  /* SIGTERM drain bound, default 20s */
	char *metrics;             /* OpenMetrics listener, config_listen_parse(); NULL = off */
	size_t memory_limit;       /* bytes pages, items and batches may hold, default 512 MiB */
	enum config_resume resume; /* default auto; read at start only */
	enum config_log_level log_level; /* default notice; raced -v logs debug whatever it says */
	/* [database] */
	char *conninfo;            /* default dbname=races */
	uint32_t batch_size;       /* default 500 */
	bool discard;              /* default no: benchmarking, rows are dropped */
	enum config_sync synchronous_commit; /* default on */
	uint32_t connections;      /* libpq connections the store's batches spread over, default 1 */
	uint32_t max_outage_ms;    /* the database may be away this long during an import; 0 = forever; default 5m */
	unsigned key_line[CONFIG_KEYS_MAX]; /* [daemon] and [database] keys' lines, by key table row; 0 = default */
	char *schema;              /* raced's tables go in this schema (created, quoted); NULL = the search_path's */
	/* [provider NAME] */
	struct provider_conf *providers;
	size_t n_providers;
	/* [stage NAME], parents before children */
	struct stage_conf *stages;
	size_t n_stages;
};

/* Returns NULL and fills err (ERR_MAX bytes) when the file cannot be read
 * or is invalid. */
RACED_MUST_CHECK struct config *config_load(const char *path, char *err);
void config_free(struct config *c);

/* A listening address ([daemon] metrics): a loopback "host:port" (an IPv4
 * address in 127.0.0.0/8, or [::1]) or an absolute Unix socket path.  The
 * host is kept without brackets; path is s itself (borrowed) or NULL. */
struct config_listen {
	char host[64];
	uint16_t port;
	const char *path;
};
/* 0, or -1 with msg saying what is wrong and what is expected. */
RACED_MUST_CHECK int config_listen_parse(const char *s, struct config_listen *out, char *msg,
                                         size_t n);

const struct provider_conf *config_provider(const struct config *c, const char *name);
const struct stage_conf *config_stage(const struct config *c, const char *name);

/* Durations: "250ms", "30s", "2m", "1h", "7d", or a bare number of seconds.
 * Returns 0, or -1 for anything else or more than UINT32_MAX ms. */
RACED_MUST_CHECK int config_parse_duration(const char *s, uint32_t *ms);

/* One line for the log saying what a reload changes, e.g.
 * "[provider main] rate_limit 0 -> 50; [stage entries] concurrency 8 -> 16;
 * stage 'x' added", or "nothing changed".  Tokens are named, never shown;
 * conninfo and URLs are shown with their secrets masked (redact.h).  Keys a reload cannot apply are marked "(at the next
 * restart)".  Always NUL-terminates buf (unless len is 0); a summary that
 * does not fit ends in "...". */
void config_describe_changes(const struct config *old, const struct config *next, char *buf, size_t len);

/* When a reload applies a key (the key table's flags): */
enum config_when {
	CONFIG_WHEN_LIVE,     /* at once, even while an import runs (KF_LIVE) */
	CONFIG_WHEN_BETWEEN,  /* at once when no import runs, else when it ends */
	CONFIG_WHEN_RESTART,  /* at the next start of raced (KF_RESTART) */
};
/* "live", "between_imports", "restart", by enum config_when. */
extern const char *const config_when_names[];

/* What a reload changes, one change at a time, in the order
 * config_describe_changes() lists them: fn gets when it applies and its
 * text ("[provider main] rate_limit 0 -> 50", secrets as there).  A
 * section added or removed, or a token changed, applies between imports. */
typedef void (*config_change_fn)(void *arg, enum config_when when, const char *text);
void config_each_change(const struct config *old, const struct config *next, config_change_fn fn, void *arg);

/* One key of the configuration as `racectl config` shows it.  Strings are
 * the caller's only for the duration of the callback. */
struct config_entry {
	const char *section;  /* "daemon", "database", "provider", "stage" */
	const char *name;     /* the provider's or stage's name, or NULL */
	const char *key;
	const char *value;    /* in the file's syntax, secrets masked (redact.h); NULL: not set */
	const char *def;      /* the default in the file's syntax; NULL: none, or derived */
	bool derived;         /* the default is computed from other keys (raced.conf(5)) */
	unsigned line;        /* where the file sets it; 0: the default is in force */
	enum config_when when;
};
typedef void (*config_entry_fn)(void *arg, const struct config_entry *e);
/* Every key of every section of c, defaults included, in the key table's
 * order within each section: [daemon], [database], then each provider and
 * each stage as c holds them.  Provider tokens are not keys and never
 * shown (token_file is, a path). */
void config_each_entry(const struct config *c, config_entry_fn fn, void *arg);

/* A reload while an import runs: copies into in_force (the configuration
 * the import holds) the values of next's KF_LIVE keys, and the line of
 * every key whose value is the same in both (the file may have moved it),
 * for [daemon], [database] and each provider and stage both have by name.
 * The one change ever made to a loaded configuration; only the service
 * calls it.  Returns how many values changed, or -1 when out of memory
 * (some may have been copied). */
RACED_MUST_CHECK int config_apply_live(struct config *in_force, const struct config *next);

/* A reload put in force: next takes the values (and lines) in_force has of
 * the keys only a restart applies (KF_RESTART: control_socket, metrics,
 * resume), so that it says what is in force; a later reload lists them
 * again as waiting for the restart.  0, or -1 when out of memory (some
 * may have been copied). */
RACED_MUST_CHECK int config_keep_restart(struct config *next, const struct config *in_force);

/* Whether the store two configurations build is the same: [database]
 * unchanged but for its live keys (batch_size, max_outage: a store kept
 * is given them) and the same stages (its tables) in the same order. */
bool config_store_same(const struct config *a, const struct config *b);

#endif
