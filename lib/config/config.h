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
 * tokenfile (token files), config_diff (config_describe_changes) and
 * config_pipeline (the pipeline an import began with, compared on resume).
 */
#ifndef RACED_CONFIG_H
#define RACED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_columns.h"
#include "error.h"

#define CONFIG_DEFAULT_PATH "/etc/raced/raced.conf"
#define CONFIG_EXIT_INVALID 78 /* EX_CONFIG */
#define CONFIG_LINE_MAX 4096   /* longest line of raced.conf, comments excluded */
#define CONFIG_NAME_MAX 48     /* longest provider or stage name (stage names are table names) */

struct provider_conf {
	char *name;
	char *base_url;
	char *token_file;          /* as configured, or NULL */
	char *token;               /* read from token_file or $CREDENTIALS_DIRECTORY/<name>.token, or NULL */
	uint32_t max_connections;  /* default 16 */
	double rate_limit;         /* requests/s, default 0 = unlimited */
	uint32_t timeout_ms;       /* default 30s */
	uint32_t max_retries;      /* default 5 */
	size_t max_body;           /* default 16 MiB */
	uint32_t max_redirects;    /* default 5 */
	unsigned line;
};

enum next_kind { NEXT_POINTER, NEXT_LINK, NEXT_NONE };

struct stage_conf {
	char *name;
	char *parent;              /* NULL for the root stage */
	char *provider;
	char *url;                 /* template: {field}, {/json/pointer} */
	char *items;               /* JSON pointer; "" = the document is one item */
	enum next_kind next;
	char *next_pointer;        /* when next == NEXT_POINTER */
	char *key;                 /* JSON pointer to the item's key */
	bool dedupe;
	uint32_t max_demand;       /* what this stage's subscribers ask of it; default 500 */
	uint32_t min_demand;       /* default max_demand / 2 */
	uint32_t buffer_size;      /* default max_demand */
	uint32_t concurrency;      /* default 1 for the root, 8 otherwise */
	uint32_t max_pages;        /* pages one input may span; default 10000 */
	uint32_t refresh_ms;       /* an input fetched within this is not fetched again; 0 = always revalidate */
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
	/* [database] */
	char *conninfo;            /* default dbname=races */
	uint32_t batch_size;       /* default 500 */
	bool discard;              /* default no: benchmarking, rows are dropped */
	enum config_sync synchronous_commit; /* default on */
	uint32_t max_outage_ms;    /* the database may be away this long during an import; 0 = forever; default 5m */
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

#endif
