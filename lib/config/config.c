/* config — raced.conf parsed into a validated, immutable struct config.
 *
 * Design:
 *  - config_keys[] below (config_keys.h) is the single description of every
 *    key: its section kind, type, where it lands in the structs, its default
 *    (written in the file's own syntax and parsed by the same code as user
 *    values), its range and flags.  Parsing, defaults, required-key checks,
 *    range checks, the "did you mean" suggestion and the reload diff
 *    (config_diff.c) all walk it.
 *  - inih splits "key = value" lines; the lines reach it through our own
 *    reader (ini_parse_stream), which counts lines (inih's handler gets no
 *    line number), has each cleaned by config_lex (comments the way
 *    raced.conf(5) says, leading whitespace, so that an indented line is
 *    never a continuation of the previous value), records [section] headers
 *    with their lines (inih tells the handler nothing about sections
 *    without keys), and rejects syntax errors and over-long lines instead of
 *    letting inih cut them in two.
 *  - Debian's libinih keeps its options in globals; config_load() sets the
 *    line buffer to the heap and CONFIG_LINE_MAX for the duration of the
 *    parse and restores them.  Call it from one thread at a time.
 *  - Checks run in a fixed order and the first error wins: syntax and
 *    values in file order, then per section (required keys, demands), then
 *    the pipeline (config_check.c: references, cycles, the single root, URL
 *    templates), then tokens (tokenfile.c, I/O last), then stages are
 *    ordered parents first.  Every message gets its file, line and section
 *    here, in fail().
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_auth.h"
#include "config_check.h"
#include "config_columns.h"
#include "config_keys.h"
#include "config_lex.h"
#include "config_value.h"
#include "error.h"
#include "jsonptr.h"
#include "redact.h"
#include "stage.h"   /* the engine's bounds are the settings' bounds */
#include "store.h"   /* and the store's */
#include "suggest.h"
#include "tokenfile.h"
#include "urlquery.h"

_Static_assert(CONFIG_COLUMNS_MAX == STORE_COLUMNS_MAX, "config and store disagree on the columns bound");

const char *const config_section_names[SECT_KINDS] = {"daemon", "database", "provider", "stage"};

const char *const config_next_names[NEXT_KINDS] = {"pointer", "link", "none", "offset", "page_number", "cursor",
                                                   "header_cursor"};

const char *const config_resume_values[] = {"no", "auto", NULL};
const char *const config_log_level_values[] = {"error", "warning", "notice", "info", "debug", NULL};
const char *const config_synchronous_commit_values[] = {"on", "off", "local", "remote_write", "remote_apply",
                                                        NULL};

/* A KT_CHOICE lands in an enum through a uint32_t. */
_Static_assert(sizeof(enum config_resume) == sizeof(uint32_t), "enum config_resume is not 4 bytes");
_Static_assert(sizeof(enum config_sync) == sizeof(uint32_t), "enum config_sync is not 4 bytes");
_Static_assert(sizeof(enum config_log_level) == sizeof(uint32_t), "enum config_log_level is not 4 bytes");
_Static_assert(sizeof(enum auth_kind) == sizeof(uint32_t), "enum auth_kind is not 4 bytes");
_Static_assert(sizeof(enum tls_http_version) == sizeof(uint32_t), "enum tls_http_version is not 4 bytes");

#define D_(f) offsetof(struct config, f)
#define P_(f) offsetof(struct provider_conf, f)
#define S_(f) offsetof(struct stage_conf, f)

/* Keep docs/raced.conf.5 and etc/raced.conf in step with this table
 * (test_config checks that both mention every key). */
const struct key_def config_keys[] = {
	{"control_socket", SECT_DAEMON, KT_SOCKET_PATH, D_(control_socket), "/run/raced/raced.sock", 0, 0, KF_RESTART, NULL},
	{"admin_group", SECT_DAEMON, KT_STRING, D_(admin_group), "raced-admin", 0, 0, KF_LIVE, NULL},
	{"max_clients", SECT_DAEMON, KT_UINT, D_(max_clients), "64", 1, 65536, KF_LIVE, NULL},
	{"stop_timeout", SECT_DAEMON, KT_DURATION, D_(stop_timeout_ms), "20s", 0, 3600000, KF_LIVE, NULL},
	{"metrics", SECT_DAEMON, KT_LISTEN, D_(metrics), NULL, 0, 0, KF_RESTART | KF_EMPTY_OK, NULL},
	{"memory_limit", SECT_DAEMON, KT_SIZE, D_(memory_limit), "512MiB", 1ull << 20, 1ull << 40, 0, NULL},
	/* read when raced starts: a reload changes nothing until the next start */
	{"resume", SECT_DAEMON, KT_CHOICE, D_(resume), "auto", 0, 0, KF_RESTART, config_resume_values},
	{"log_level", SECT_DAEMON, KT_CHOICE, D_(log_level), "notice", 0, 0, KF_LIVE, config_log_level_values},

	{"conninfo", SECT_DATABASE, KT_CONNINFO, D_(conninfo), "dbname=races", 0, 0, KF_SECRET | KF_EMPTY_OK, NULL},
	{"batch_size", SECT_DATABASE, KT_UINT, D_(batch_size), "500", 1, STORE_BATCH_SIZE_MAX, KF_LIVE, NULL},
	{"discard", SECT_DATABASE, KT_BOOL, D_(discard), "no", 0, 0, 0, NULL},
	{"synchronous_commit", SECT_DATABASE, KT_CHOICE, D_(synchronous_commit), "on", 0, 0, 0,
	 config_synchronous_commit_values},
	{"connections", SECT_DATABASE, KT_UINT, D_(connections), "1", 1, STORE_CONNECTIONS_MAX, 0, NULL},
	{"max_outage", SECT_DATABASE, KT_DURATION, D_(max_outage_ms), "5m", 0, UINT32_MAX, KF_LIVE, NULL},
	/* checked as a whole in check_schema() */
	{"schema", SECT_DATABASE, KT_STRING, D_(schema), NULL, 0, 0, 0, NULL},

	{"base_url", SECT_PROVIDER, KT_URL, P_(base_url), NULL, 0, 0, KF_REQUIRED, NULL},
	{"token_file", SECT_PROVIDER, KT_STRING, P_(token_file), NULL, 0, 0, 0, NULL},
	/* auth and the keys that go with it: config_auth.c */
	{"auth", SECT_PROVIDER, KT_CHOICE, P_(auth), NULL, 0, 0, KF_DERIVED, auth_kind_names},
	{"username", SECT_PROVIDER, KT_STRING, P_(username), NULL, 0, 0, 0, NULL},
	{"password_file", SECT_PROVIDER, KT_STRING, P_(password_file), NULL, 0, 0, 0, NULL},
	{"auth_header", SECT_PROVIDER, KT_STRING, P_(auth_header), NULL, 0, 0, 0, NULL},
	{"auth_param", SECT_PROVIDER, KT_STRING, P_(auth_param), NULL, 0, 0, 0, NULL},
	{"header", SECT_PROVIDER, KT_HEADER_LINES, P_(headers), NULL, 0, 0, KF_REPEAT, NULL},
	{"max_connections", SECT_PROVIDER, KT_CONNECTIONS, P_(max_connections), "16", 1, 1024, KF_LIVE, NULL},
	{"max_connections_ceiling", SECT_PROVIDER, KT_UINT, P_(max_connections_ceiling), "128", 1, 1024, KF_LIVE, NULL},
	{"rate_limit", SECT_PROVIDER, KT_DOUBLE, P_(rate_limit), "0", 0, 1000000, KF_LIVE, NULL},
	{"timeout", SECT_PROVIDER, KT_DURATION, P_(timeout_ms), "30s", 100, 3600000, KF_LIVE, NULL},
	{"max_retries", SECT_PROVIDER, KT_UINT, P_(max_retries), "5", 0, 100, KF_LIVE, NULL},
	{"max_body", SECT_PROVIDER, KT_SIZE, P_(max_body), "16MiB", 1024, 1ull << 30, 0, NULL},
	{"max_redirects", SECT_PROVIDER, KT_UINT, P_(max_redirects), "5", 0, 50, 0, NULL},
	/* checked once the section is read (load_tls) */
	{"ca_file", SECT_PROVIDER, KT_STRING, P_(ca_file), NULL, 0, 0, 0, NULL},
	{"http_version", SECT_PROVIDER, KT_CHOICE, P_(http_version), "auto", 0, 0, 0, tls_http_version_names},

	{"parent", SECT_STAGE, KT_STRING, S_(parent), NULL, 0, 0, 0, NULL},
	{"provider", SECT_STAGE, KT_STRING, S_(provider), NULL, 0, 0, KF_REQUIRED, NULL},
	{"url", SECT_STAGE, KT_TEMPLATE, S_(url), NULL, 0, 0, KF_REQUIRED, NULL},
	{"items", SECT_STAGE, KT_POINTER, S_(items), "/data", 0, 0, KF_EMPTY_OK, NULL},
	{"next", SECT_STAGE, KT_NEXT, S_(next), "none", 0, 0, 0, NULL},
	/* next's companions: paging_keys[] below says which style takes which */
	{"offset_param", SECT_STAGE, KT_PARAM, S_(offset_param), "offset", 0, 0, 0, NULL},
	{"limit_param", SECT_STAGE, KT_PARAM, S_(limit_param), "limit", 0, 0, 0, NULL},
	{"limit", SECT_STAGE, KT_UINT, S_(limit), NULL, 1, 1000000, 0, NULL},
	{"total", SECT_STAGE, KT_POINTER, S_(total), NULL, 0, 0, 0, NULL},
	{"page_param", SECT_STAGE, KT_PARAM, S_(page_param), "page", 0, 0, 0, NULL},
	{"first_page", SECT_STAGE, KT_UINT, S_(first_page), "1", 0, 1, 0, NULL},
	{"total_pages", SECT_STAGE, KT_POINTER, S_(total_pages), NULL, 0, 0, 0, NULL},
	{"cursor_pointer", SECT_STAGE, KT_POINTER, S_(cursor_pointer), NULL, 0, 0, 0, NULL},
	{"cursor_header", SECT_STAGE, KT_HEADER, S_(cursor_header), NULL, 0, 0, 0, NULL},
	{"cursor_param", SECT_STAGE, KT_PARAM, S_(cursor_param), "cursor", 0, 0, 0, NULL},
	{"has_more", SECT_STAGE, KT_POINTER, S_(has_more), NULL, 0, 0, 0, NULL},
	{"key", SECT_STAGE, KT_POINTER, S_(key), NULL, 0, 0, KF_REQUIRED | KF_EMPTY_OK, NULL},
	{"dedupe", SECT_STAGE, KT_BOOL, S_(dedupe), "no", 0, 0, 0, NULL},
	{"max_demand", SECT_STAGE, KT_UINT, S_(max_demand), "500", 1, STAGE_MAX_DEMAND, 0, NULL},
	{"min_demand", SECT_STAGE, KT_UINT, S_(min_demand), NULL, 0, 1000000, KF_DERIVED, NULL},
	{"buffer_size", SECT_STAGE, KT_UINT, S_(buffer_size), NULL, 1, STAGE_MAX_BUFFER, KF_DERIVED, NULL},
	{"concurrency", SECT_STAGE, KT_UINT, S_(concurrency), NULL, 1, 1024, KF_DERIVED | KF_LIVE, NULL},
	{"max_pages", SECT_STAGE, KT_UINT, S_(max_pages), "10000", 1, 1000000, 0, NULL},
	{"refresh", SECT_STAGE, KT_DURATION, S_(refresh_ms), "0", 0, UINT32_MAX, 0, NULL},
	{"missing_field_limit", SECT_STAGE, KT_UINT, S_(missing_field_limit), "100", 0, 1000000, 0, NULL},
	{"cursor", SECT_STAGE, KT_POINTER, S_(cursor), NULL, 0, 0, KF_ROOT_ONLY, NULL},
	{"lag", SECT_STAGE, KT_DURATION, S_(lag_ms), "0", 0, UINT32_MAX, KF_ROOT_ONLY, NULL},
	{"initial", SECT_STAGE, KT_INITIAL, S_(initial), NULL, 0, 0, KF_ROOT_ONLY, NULL},
	/* parsed once the section is read (check_columns, config_columns.c) */
	{"columns", SECT_STAGE, KT_STRING, S_(columns_spec), NULL, 0, 0, KF_EMPTY_OK, NULL},
	{"index", SECT_STAGE, KT_STRING, S_(index_spec), NULL, 0, 0, KF_EMPTY_OK, NULL},
};

#define N_KEYS (sizeof config_keys / sizeof config_keys[0])
const size_t config_n_keys = N_KEYS;
_Static_assert(N_KEYS <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX: the key lines are kept by table row");

unsigned *config_key_lines(enum section_kind kind, void *obj)
{
	switch (kind) {
	case SECT_PROVIDER: return ((struct provider_conf *)obj)->key_line;
	case SECT_STAGE: return ((struct stage_conf *)obj)->key_line;
	default: return ((struct config *)obj)->key_line;
	}
}

const unsigned *config_key_lines_of(enum section_kind kind, const void *obj)
{
	return config_key_lines(kind, (void *)(uintptr_t)obj);
}

static void fmt_bound(const struct key_def *k, uint64_t v, char *out, size_t n)
{
	if (k->type == KT_DURATION)
		config_value_format_duration(v, out, n);
	else if (k->type == KT_SIZE)
		config_value_format_size(v, out, n);
	else
		snprintf(out, n, "%llu", (unsigned long long)v);
}

int config_parse_duration(const char *s, uint32_t *ms)
{
	uint64_t v;
	if (!s || config_value_duration(s, &v) < 0 || v > UINT32_MAX)
		return -1;
	*ms = (uint32_t)v;
	return 0;
}

/* ---- the loader ---- */

struct section {
	enum section_kind kind;
	size_t index;               /* into providers or stages */
	unsigned line;
	unsigned key_line[N_KEYS];  /* where each key was set; 0 = not set */
};

struct loader {
	struct config *c;
	const char *path;
	FILE *f;
	char *line;
	size_t cap;
	unsigned lineno;
	struct section *sections;
	size_t n_sections;
	size_t cur;                 /* current section + 1; 0 = before any */
	bool failed;
	char *err;
};

static void *section_obj(const struct loader *ld, const struct section *sec)
{
	switch (sec->kind) {
	case SECT_PROVIDER: return &ld->c->providers[sec->index];
	case SECT_STAGE: return &ld->c->stages[sec->index];
	default: return ld->c;
	}
}

static const char *section_name(const struct loader *ld, const struct section *sec)
{
	switch (sec->kind) {
	case SECT_PROVIDER: return ld->c->providers[sec->index].name;
	case SECT_STAGE: return ld->c->stages[sec->index].name;
	default: return NULL;
	}
}

/* "path:line: [kind name] message"; line 0 leaves the line out, sec NULL
 * the section.  Returns -1. */
__attribute__((format(printf, 4, 5)))
static int fail(struct loader *ld, unsigned line, const struct section *sec, const char *fmt, ...)
{
	char msg[ERR_MAX], where[32] = "", head[160] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	redact_buf(msg, sizeof msg); /* a value quoted back may hold a password */
	if (line)
		snprintf(where, sizeof where, ":%u", line);
	if (sec) {
		const char *name = section_name(ld, sec);
		snprintf(head, sizeof head, "[%s%s%s] ", config_section_names[sec->kind], name ? " " : "",
		         name ? name : "");
	}
	ld->failed = true;
	return err_set(ld->err, "%s%s: %s%s", ld->path, where, head, msg);
}

static const struct key_def *key_find(enum section_kind kind, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (config_keys[i].section == kind && strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static size_t key_index(const struct key_def *k)
{
	return (size_t)(k - config_keys);
}

/* An HTTP header's name (RFC 9110's token): what cursor_header takes. */
#define CONFIG_HEADER_NAME_MAX 64
static bool header_name_valid(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > CONFIG_HEADER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("!#$%&'*+-.^_`|~", v[i]))
			return false;
	return true;
}

/* A string value's form, by the key's type: 0, or -1 with msg saying what
 * is wrong. */
static int check_string(const struct key_def *k, const char *value, char *msg, size_t n)
{
	size_t fields;
	if (!*value && !(k->flags & KF_EMPTY_OK)) {
		snprintf(msg, n, "empty value (a value is required)");
		return -1;
	}
	switch (k->type) {
	case KT_SOCKET_PATH:
		return config_value_socket_path(value, msg, n);
	case KT_LISTEN: {
		struct config_listen l;
		return *value ? config_listen_parse(value, &l, msg, n) : 0;
	}
	case KT_URL:
		return config_value_http_url(value, msg, n);
	case KT_CONNINFO:
		return config_value_conninfo(value, msg, n);
	case KT_TEMPLATE:
		return config_check_template(value, &fields, msg, n);
	case KT_POINTER:
		if (value[0] == '\0' || (value[0] == '/' && jsonptr_valid(value)))
			return 0;
		if (value[0] == '/')
			snprintf(msg, n, "'%s' is not a valid JSON pointer ('~' must be followed by 0 or 1; write ~1 for '/' "
			         "and ~0 for '~' in a name)", value);
		else if (k->flags & KF_EMPTY_OK)
			snprintf(msg, n, "'%s' is not a JSON pointer (expected \"\" or a pointer starting with '/', e.g. /data)",
			         value);
		else
			snprintf(msg, n, "'%s' is not a JSON pointer (expected a pointer starting with '/', e.g. /updated_at)",
			         value);
		return -1;
	case KT_PARAM:
		if (urlquery_name_valid(value))
			return 0;
		snprintf(msg, n, "'%s' is not a query parameter name raced writes as it is (expected 1 to %d letters, "
		         "digits, '-', '.', '_', '~', '[' or ']', e.g. page or page[number])", value, URLQUERY_NAME_MAX);
		return -1;
	case KT_HEADER:
		if (header_name_valid(value))
			return 0;
		snprintf(msg, n, "'%s' is not an HTTP header name (expected 1 to %d letters, digits or !#$%%&'*+-.^_`|~, "
		         "without the colon, e.g. X-Next-Cursor)", value, CONFIG_HEADER_NAME_MAX);
		return -1;
	case KT_INITIAL:
		if (config_value_timestamp(value) == 0 || config_value_number(value) == 0)
			return 0;
		snprintf(msg, n, "'%s' is neither an ISO 8601 timestamp nor a number (expected e.g. "
		         "2024-01-01T00:00:00Z, 2024-01-01 or 0)", value);
		return -1;
	default:
		return 0;
	}
}

static int set_string(struct loader *ld, const struct section *sec, const struct key_def *k, const char *value,
                      unsigned line)
{
	char msg[ERR_MAX];
	if (check_string(k, value, msg, sizeof msg) < 0)
		return fail(ld, line, sec, "%s: %s", k->name, msg);
	char *copy = strdup(value);
	if (!copy)
		return fail(ld, line, sec, "%s: out of memory", k->name);
	memcpy((char *)section_obj(ld, sec) + k->offset, &copy, sizeof copy);
	return 0;
}

/* One more static header line (KF_REPEAT): its syntax now, what the
 * provider's auth allows once the section is read (config_auth.c). */
static int add_header(struct loader *ld, const struct section *sec, const struct key_def *k, const char *value,
                      unsigned line)
{
	struct provider_conf *p = section_obj(ld, sec);
	char msg[ERR_MAX];
	if (auth_header_check(value, AUTH_NONE, NULL, msg, sizeof msg) < 0)
		return fail(ld, line, sec, "%s: %s", k->name, msg);
	if (p->n_headers >= AUTH_HEADERS_MAX)
		return fail(ld, line, sec, "%s: more than %d header lines in one provider", k->name, AUTH_HEADERS_MAX);
	char **lines = realloc(p->headers, (p->n_headers + 1) * sizeof *lines);
	if (lines)
		p->headers = lines;
	unsigned *nos = lines ? realloc(p->header_lines, (p->n_headers + 1) * sizeof *nos) : NULL;
	if (nos)
		p->header_lines = nos;
	char *copy = nos ? strdup(value) : NULL;
	if (!copy)
		return fail(ld, line, sec, "%s: out of memory", k->name);
	p->headers[p->n_headers] = copy;
	p->header_lines[p->n_headers++] = line;
	return 0;
}

static int set_next(struct loader *ld, const struct section *sec, const struct key_def *k, const char *value,
                    unsigned line)
{
	struct stage_conf *st = section_obj(ld, sec);
	if (value[0] == '/') {
		if (!jsonptr_valid(value))
			return fail(ld, line, sec, "%s: '%s' is not a valid JSON pointer ('~' must be followed by 0 or 1; "
			            "write ~1 for '/' and ~0 for '~' in a name)", k->name, value);
		if (!(st->next_pointer = strdup(value)))
			return fail(ld, line, sec, "%s: out of memory", k->name);
		st->next = NEXT_POINTER;
		return 0;
	}
	for (int i = 0; i < NEXT_KINDS; i++)
		if (i != NEXT_POINTER && strcmp(value, config_next_names[i]) == 0) {
			st->next = (enum next_kind)i;
			return 0;
		}
	size_t best = SIZE_MAX;
	const char *sugg = NULL;
	for (int i = 0; i < NEXT_KINDS; i++)
		if (i != NEXT_POINTER && suggest_near(value, config_next_names[i], &best))
			sugg = config_next_names[i];
	return fail(ld, line, sec,
	            "%s: '%s' is not valid (%s%s%sexpected a JSON pointer starting with '/', link, offset, page_number, "
	            "cursor, header_cursor or none)", k->name, value, sugg ? "did you mean '" : "", sugg ? sugg : "",
	            sugg ? "'? " : "");
}

static int set_bool(struct loader *ld, const struct section *sec, const struct key_def *k, const char *value,
                    unsigned line)
{
	bool b;
	if (config_value_bool(value, &b) < 0)
		return fail(ld, line, sec, "%s: '%s' is not a boolean (expected yes/no, true/false, on/off or 1/0)",
		            k->name, value);
	memcpy((char *)section_obj(ld, sec) + k->offset, &b, sizeof b);
	return 0;
}

/* One of k->choices, stored as its index. */
static int set_choice(struct loader *ld, const struct section *sec, const struct key_def *k, const char *value,
                      unsigned line)
{
	char list[128] = "";
	size_t used = 0;
	for (uint32_t i = 0; k->choices[i]; i++) {
		if (strcmp(value, k->choices[i]) == 0) {
			memcpy((char *)section_obj(ld, sec) + k->offset, &i, sizeof i);
			return 0;
		}
		int w = snprintf(list + used, sizeof list - used, "%s%s", i == 0 ? "" : k->choices[i + 1] ? ", " : " or ",
		                 k->choices[i]);
		if (w > 0 && (size_t)w < sizeof list - used)
			used += (size_t)w;
	}
	return fail(ld, line, sec, "%s: '%s' is not valid (expected %s)", k->name, value, list);
}

/* A number in the key's unit and bounds: double, size_t or uint32_t. */
static int set_number(struct loader *ld, const struct section *sec, const struct key_def *k, const char *value,
                      unsigned line)
{
	char *field = (char *)section_obj(ld, sec) + k->offset;
	char lo[32], hi[32];
	uint64_t u = 0;
	double d = 0;
	int rc = k->type == KT_DOUBLE     ? config_value_decimal(value, &d)
	         : k->type == KT_DURATION ? config_value_duration(value, &u)
	         : k->type == KT_SIZE     ? config_value_size(value, &u)
	                                  : config_value_uint(value, &u);
	fmt_bound(k, k->min, lo, sizeof lo);
	fmt_bound(k, k->max, hi, sizeof hi);
	if (rc < 0 && k->type == KT_DURATION)
		return fail(ld, line, sec,
		            "%s: '%s' is not a duration (expected a whole number with ms, s, m, h or d, e.g. 250ms, 30s, 2m, 1h; "
		            "a bare number is seconds)", k->name, value);
	if (rc < 0 && k->type == KT_SIZE)
		return fail(ld, line, sec,
		            "%s: '%s' is not a size (expected a number of bytes, optionally with KiB, MiB or GiB, e.g. 16MiB)",
		            k->name, value);
	if (rc < 0)
		return fail(ld, line, sec, "%s: '%s' is not a %s (expected %s to %s)", k->name, value,
		            k->type == KT_DOUBLE ? "number" : "whole number", lo, hi);
	bool in_range = k->type == KT_DOUBLE ? d >= (double)k->min && d <= (double)k->max : u >= k->min && u <= k->max;
	if (!in_range)
		return fail(ld, line, sec, "%s: %s is out of range (%s to %s)", k->name, value, lo, hi);
	if (k->type == KT_DOUBLE) {
		memcpy(field, &d, sizeof d);
	} else if (k->type == KT_SIZE) {
		size_t s = (size_t)u;
		memcpy(field, &s, sizeof s);
	} else {
		uint32_t v32 = (uint32_t)u;
		memcpy(field, &v32, sizeof v32);
	}
	return 0;
}

/* A number in the bounds, or "auto" (adaptive, up to max_connections_ceiling). */
static int set_connections(struct loader *ld, const struct section *sec, const struct key_def *k,
                           const char *value, unsigned line)
{
	struct provider_conf *pc = section_obj(ld, sec);
	if (strcmp(value, "auto") == 0) {
		pc->max_connections_auto = true;
		return 0;
	}
	pc->max_connections_auto = false;
	uint64_t u;
	if (config_value_uint(value, &u) < 0 || u < k->min || u > k->max)
		return fail(ld, line, sec,
		            "%s: '%s' is not valid (expected a whole number from %llu to %llu, or 'auto' to adapt it "
		            "to the provider up to max_connections_ceiling)",
		            k->name, value, (unsigned long long)k->min, (unsigned long long)k->max);
	pc->max_connections = (uint32_t)u;
	return 0;
}

/* Parses value (from the file, or a default) into k's field of sec. */
static int set_value(struct loader *ld, const struct section *sec, const struct key_def *k,
                     const char *value, unsigned line)
{
	switch (k->type) {
	case KT_NEXT:
		return set_next(ld, sec, k, value, line);
	case KT_BOOL:
		return set_bool(ld, sec, k, value, line);
	case KT_CHOICE:
		return set_choice(ld, sec, k, value, line);
	case KT_HEADER_LINES:
		return add_header(ld, sec, k, value, line);
	case KT_CONNECTIONS:
		return set_connections(ld, sec, k, value, line);
	case KT_UINT:
	case KT_DURATION:
	case KT_SIZE:
	case KT_DOUBLE:
		return set_number(ld, sec, k, value, line);
	default:
		return set_string(ld, sec, k, value, line);
	}
}

static bool stage_name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > CONFIG_NAME_MAX || !(islower((unsigned char)n[0]) || n[0] == '_'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(islower((unsigned char)n[i]) || isdigit((unsigned char)n[i]) || n[i] == '_'))
			return false;
	return true;
}

static bool provider_name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > CONFIG_NAME_MAX || !isalnum((unsigned char)n[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)n[i]) || n[i] == '_' || n[i] == '-'))
			return false;
	return true;
}

/* The section kind a header names, or -1 having failed with a suggestion. */
static int section_kind(struct loader *ld, const char *kind, const char *name)
{
	for (int i = 0; i < SECT_KINDS; i++)
		if (strcmp(kind, config_section_names[i]) == 0)
			return i;
	size_t best = SIZE_MAX;
	const char *sugg = NULL;
	for (int i = 0; i < SECT_KINDS; i++)
		if (suggest_near(kind, config_section_names[i], &best))
			sugg = config_section_names[i];
	if (sugg)
		return fail(ld, ld->lineno, NULL, "unknown section [%s%s%s] (did you mean [%s%s%s]?)", kind,
		            *name ? " " : "", name, sugg, *name ? " " : "", name);
	return fail(ld, ld->lineno, NULL,
	            "unknown section [%s%s%s] (expected [daemon], [database], [provider NAME] or [stage NAME])",
	            kind, *name ? " " : "", name);
}

/* Whether a header of kind k may carry name (and has not come before). */
static int check_section_name(struct loader *ld, int k, const char *kind, const char *name)
{
	bool named = k == SECT_PROVIDER || k == SECT_STAGE;
	if (!named && *name)
		return fail(ld, ld->lineno, NULL, "section [%s] takes no name (found [%s %s])", kind, kind, name);
	if (named && !*name)
		return fail(ld, ld->lineno, NULL, "section [%s] needs a name: [%s NAME]", kind, kind);
	if (k == SECT_STAGE && !stage_name_valid(name))
		return fail(ld, ld->lineno, NULL,
		            "stage name '%s' is not valid: it names a PostgreSQL table, so lowercase letters, digits and '_', "
		            "starting with a letter or '_', at most %d characters", name, CONFIG_NAME_MAX);
	if (k == SECT_STAGE && (strcmp(name, "import_runs") == 0 || strcmp(name, "import_errors") == 0 ||
	                        strcmp(name, "raced_schema_version") == 0 || strcmp(name, "raced_pages") == 0 ||
	                        strcmp(name, "raced_columns") == 0 || strcmp(name, "raced_reached") == 0 ||
	                        strcmp(name, "raced_stage_deletes") == 0))
		return fail(ld, ld->lineno, NULL, "stage name '%s' is reserved for raced's own table", name);
	if (k == SECT_PROVIDER && !provider_name_valid(name))
		return fail(ld, ld->lineno, NULL,
		            "provider name '%s' is not valid: letters, digits, '_' and '-', starting with a letter or digit, "
		            "at most %d characters", name, CONFIG_NAME_MAX);
	for (size_t i = 0; i < ld->n_sections; i++) {
		const struct section *s = &ld->sections[i];
		if ((int)s->kind == k && (!named || strcmp(section_name(ld, s), name) == 0))
			return fail(ld, ld->lineno, NULL, "duplicate section [%s%s%s] (first on line %u)", kind,
			            named ? " " : "", named ? name : "", s->line);
	}
	return 0;
}

/* arr (n elements of size bytes) with one more, zeroed, at the end; NULL
 * when out of memory (arr is then unchanged). */
static void *grow(void *arr, size_t n, size_t size)
{
	char *a = realloc(arr, (n + 1) * size);
	if (a)
		memset(a + n * size, 0, size);
	return a;
}

/* A "[...]" line: register the section it opens. */
static int open_section(struct loader *ld, const char *kind, const char *name)
{
	int k = section_kind(ld, kind, name);
	if (k < 0 || check_section_name(ld, k, kind, name) < 0)
		return -1;
	struct section *sec = grow(ld->sections, ld->n_sections, sizeof *sec);
	if (!sec)
		return fail(ld, ld->lineno, NULL, "out of memory");
	ld->sections = sec;
	sec += ld->n_sections;
	sec->kind = (enum section_kind)k;
	sec->line = ld->lineno;
	if (k == SECT_PROVIDER) {
		struct provider_conf *p = grow(ld->c->providers, ld->c->n_providers, sizeof *p);
		if (p)
			ld->c->providers = p;
		if (!p || !(p[ld->c->n_providers].name = strdup(name)))
			return fail(ld, ld->lineno, NULL, "out of memory");
		p[ld->c->n_providers].line = ld->lineno;
		sec->index = ld->c->n_providers++;
	} else if (k == SECT_STAGE) {
		struct stage_conf *st = grow(ld->c->stages, ld->c->n_stages, sizeof *st);
		if (st)
			ld->c->stages = st;
		if (!st || !(st[ld->c->n_stages].name = strdup(name)))
			return fail(ld, ld->lineno, NULL, "out of memory");
		st[ld->c->n_stages].line = ld->lineno;
		sec->index = ld->c->n_stages++;
	}
	ld->n_sections++;
	ld->cur = ld->n_sections;
	return 0;
}

/* inih's reader: one physical line per call, cleaned (see the top). */
static char *read_line(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	if (ld->failed)
		return NULL;
	errno = 0;
	ssize_t n = getline(&ld->line, &ld->cap, ld->f);
	if (n < 0) {
		if (ferror(ld->f))
			fail(ld, 0, NULL, "cannot read: %s", strerror(errno ? errno : EIO));
		return NULL;
	}
	ld->lineno++;
	if (strlen(ld->line) != (size_t)n) {
		fail(ld, ld->lineno, NULL, "the line contains a NUL byte");
		return NULL;
	}
	struct config_line cl;
	char msg[ERR_MAX];
	if (config_lex_line(ld->line, ld->lineno == 1, &cl, msg, sizeof msg) < 0) {
		fail(ld, ld->lineno, NULL, "%s", msg);
		return NULL;
	}
	if (cl.kind == CONFIG_LINE_SECTION && open_section(ld, cl.section, cl.name) < 0)
		return NULL;
	size_t len = cl.len;
	if (num < 4 || len + 3 > (size_t)num) {
		fail(ld, ld->lineno, NULL, "line too long (at most %d characters)", num - 3);
		return NULL;
	}
	memcpy(str, cl.text, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/* An unknown key: the nearest in its section, or the section it belongs in. */
static int unknown_key(struct loader *ld, const struct section *sec, const char *name)
{
	size_t best = SIZE_MAX;
	const char *sugg = NULL, *elsewhere = NULL;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (config_keys[i].section == sec->kind && suggest_near(name, config_keys[i].name, &best))
			sugg = config_keys[i].name;
		if (config_keys[i].section != sec->kind && strcmp(config_keys[i].name, name) == 0)
			elsewhere = config_section_names[config_keys[i].section];
	}
	if (sugg)
		return fail(ld, ld->lineno, sec, "unknown key '%s' (did you mean '%s'?)", name, sugg);
	if (elsewhere)
		return fail(ld, ld->lineno, sec, "unknown key '%s' (it belongs in a [%s%s] section)", name, elsewhere,
		            strcmp(elsewhere, "provider") == 0 || strcmp(elsewhere, "stage") == 0 ? " NAME" : "");
	return fail(ld, ld->lineno, sec, "unknown key '%s'", name);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	(void)section; /* we track sections ourselves (read_line) */
	if (ld->failed)
		return 0;
	if (!ld->cur)
		return fail(ld, ld->lineno, NULL, "key '%s' is outside any section", name), 0;
	const struct section *sec = &ld->sections[ld->cur - 1];
	const struct key_def *k = key_find(sec->kind, name);
	if (!k)
		return unknown_key(ld, sec, name), 0;
	size_t ki = key_index(k);
	if (sec->key_line[ki] && !(k->flags & KF_REPEAT))
		return fail(ld, ld->lineno, sec, "duplicate key '%s' (first set on line %u)", name, sec->key_line[ki]), 0;
	/* set before parsing: a bad value fails the load anyway (a repeated
	 * key keeps its first line) */
	if (!sec->key_line[ki]) {
		ld->sections[ld->cur - 1].key_line[ki] = ld->lineno;
		config_key_lines(sec->kind, section_obj(ld, sec))[ki] = ld->lineno; /* racectl config's source */
	}
	return set_value(ld, sec, k, value, ld->lineno) == 0;
}

/* ---- after parsing ---- */

static unsigned key_line(const struct section *sec, const char *name)
{
	return sec->key_line[key_index(key_find(sec->kind, name))];
}

/* A stage's KF_DERIVED keys, from max_demand and whether it is the root. */
static int apply_derived(struct loader *ld, const struct section *sec)
{
	struct stage_conf *st = section_obj(ld, sec);
	unsigned min_line = key_line(sec, "min_demand");
	if (!min_line)
		st->min_demand = st->max_demand / 2;
	else if (st->min_demand >= st->max_demand)
		return fail(ld, min_line, sec, "min_demand (%u) must be less than max_demand (%u)", st->min_demand,
		            st->max_demand);
	if (!key_line(sec, "buffer_size"))
		st->buffer_size = st->max_demand;
	if (!key_line(sec, "concurrency"))
		st->concurrency = st->parent ? 8 : 1;
	return 0;
}

/* The paging styles' companion keys (bits of enum next_kind): the styles
 * that take each, and those that need it.  Known only once the whole
 * section is read. */
#define STYLE(k) (1u << (k))
static const struct paging_key {
	const char *key;
	unsigned styles, required;
	const char *example;   /* for "needs": what to write */
} paging_keys[] = {
	{"offset_param", STYLE(NEXT_OFFSET), 0, NULL},
	{"limit_param", STYLE(NEXT_OFFSET), 0, NULL},
	{"limit", STYLE(NEXT_OFFSET), STYLE(NEXT_OFFSET), "limit = 100, the page size to ask for"},
	{"total", STYLE(NEXT_OFFSET), 0, NULL},
	{"page_param", STYLE(NEXT_PAGE_NUMBER), 0, NULL},
	{"first_page", STYLE(NEXT_PAGE_NUMBER), 0, NULL},
	{"total_pages", STYLE(NEXT_PAGE_NUMBER), 0, NULL},
	{"cursor_pointer", STYLE(NEXT_CURSOR), STYLE(NEXT_CURSOR),
	 "cursor_pointer = /meta/next_cursor, where the body holds the next cursor"},
	{"cursor_header", STYLE(NEXT_HEADER_CURSOR), STYLE(NEXT_HEADER_CURSOR),
	 "cursor_header = X-Next-Cursor, the response header holding the next cursor"},
	{"cursor_param", STYLE(NEXT_CURSOR) | STYLE(NEXT_HEADER_CURSOR), 0, NULL},
	{"has_more", STYLE(NEXT_OFFSET) | STYLE(NEXT_PAGE_NUMBER) | STYLE(NEXT_CURSOR) | STYLE(NEXT_HEADER_CURSOR), 0,
	 NULL},
};

/* The styles of mask, "offset or page_number", into out. */
static void styles_named(unsigned mask, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (int i = 0, seen = 0; i < NEXT_KINDS; i++) {
		if (!(mask & STYLE(i)))
			continue;
		unsigned rest = mask & ~(STYLE(i + 1) - 1);
		int w = snprintf(out + used, n - used, "%s%s", seen++ == 0 ? "" : rest ? ", " : " or ",
		                 config_next_names[i]);
		if (w > 0 && (size_t)w < n - used)
			used += (size_t)w;
	}
}

static int check_paging(struct loader *ld, const struct section *sec)
{
	const struct stage_conf *st = section_obj(ld, sec);
	unsigned next_line = key_line(sec, "next");
	const char *style = st->next == NEXT_POINTER ? st->next_pointer : config_next_names[st->next];
	char names[96];
	const size_t n = sizeof paging_keys / sizeof paging_keys[0];
	/* a key of another style first: it may be the missing one misplaced */
	for (size_t i = 0; i < n; i++) {
		const struct paging_key *pk = &paging_keys[i];
		unsigned line = key_line(sec, pk->key);
		styles_named(pk->styles, names, sizeof names);
		if (line && !(pk->styles & STYLE(st->next)))
			return fail(ld, line, sec, "%s: only next = %s takes it, and this stage has next = %s: remove %s "
			            "or set next = %s", pk->key, names, style, pk->key, names);
	}
	for (size_t i = 0; i < n; i++) {
		const struct paging_key *pk = &paging_keys[i];
		if (!key_line(sec, pk->key) && (pk->required & STYLE(st->next)))
			return fail(ld, next_line ? next_line : sec->line, sec, "next = %s needs '%s' (e.g. %s)", style,
			            pk->key, pk->example);
	}
	if (st->next == NEXT_OFFSET && strcmp(st->offset_param, st->limit_param) == 0)
		return fail(ld, key_line(sec, "limit_param") ? key_line(sec, "limit_param") : key_line(sec, "offset_param"),
		            sec, "offset_param and limit_param are both '%s': name two parameters", st->offset_param);
	if ((st->next == NEXT_OFFSET || st->next == NEXT_PAGE_NUMBER) && st->items && !st->items[0])
		return fail(ld, next_line, sec, "next = %s counts a page's items, but items is empty (the document is "
		            "one item): set items = /pointer to the page's array", style);
	return 0;
}

/* A stage's `columns` and `index` (config_columns.c), each error at its
 * key's line. */
static int check_columns(struct loader *ld, const struct section *sec)
{
	struct stage_conf *st = section_obj(ld, sec);
	char msg[ERR_MAX];
	if (st->columns_spec &&
	    config_columns_parse(st->columns_spec, &st->columns, &st->n_columns, msg, sizeof msg) < 0)
		return fail(ld, key_line(sec, "columns"), sec, "columns: %s", msg);
	if (st->index_spec && st->n_columns == 0 && st->index_spec[strspn(st->index_spec, " \t")])
		return fail(ld, key_line(sec, "index"), sec,
		            "index: this stage has no columns to index: declare them first with "
		            "columns = NAME TYPE /POINTER, ...");
	if (st->index_spec &&
	    config_columns_index(st->index_spec, st->columns, st->n_columns, msg, sizeof msg) < 0)
		return fail(ld, key_line(sec, "index"), sec, "index: %s", msg);
	return 0;
}

/* KF_ROOT_ONLY keys set in a stage with a parent (known only once the
 * whole section is read), then the paging keys, then the columns, then the derived keys. */
static int check_root_only(struct loader *ld, const struct section *sec)
{
	const struct stage_conf *st = section_obj(ld, sec);
	for (size_t i = 0; st->parent && i < N_KEYS; i++) {
		const struct key_def *k = &config_keys[i];
		if (k->section == SECT_STAGE && (k->flags & KF_ROOT_ONLY) && sec->key_line[i])
			return fail(ld, sec->key_line[i], sec,
			            "%s: only the root stage (the one without a parent) may set it; this stage's parent is "
			            "'%s': move %s to the root stage or remove it", k->name, st->parent, k->name);
	}
	if (check_paging(ld, sec) < 0 || check_columns(ld, sec) < 0)
		return -1;
	return apply_derived(ld, sec);
}

static int apply_defaults(struct loader *ld, const struct section *sec, enum section_kind kind)
{
	struct section implicit = {.kind = kind};
	if (!sec)
		sec = &implicit; /* [daemon] or [database] absent from the file */
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &config_keys[i];
		if (k->section != kind || sec->key_line[i])
			continue;
		if (k->flags & KF_REQUIRED)
			return fail(ld, sec->line, sec, "missing required key '%s'", k->name);
		if (k->def && set_value(ld, sec, k, k->def, 0) < 0)
			return -1;
	}
	return kind == SECT_STAGE ? check_root_only(ld, sec) : 0;
}

static const struct section *find_section(const struct loader *ld, enum section_kind kind, size_t index)
{
	for (size_t i = 0; i < ld->n_sections; i++)
		if (ld->sections[i].kind == kind && (kind < SECT_PROVIDER || ld->sections[i].index == index))
			return &ld->sections[i];
	return NULL;
}

/* The pipeline checks' fault, with its file, line and section. */
static int check_pipeline(struct loader *ld)
{
	struct config_fault f;
	if (config_check_pipeline(ld->c, &f) == 0)
		return 0;
	if (f.stage == CONFIG_FAULT_NO_STAGE)
		return fail(ld, 0, NULL, "%s", f.msg);
	const struct section *sec = find_section(ld, SECT_STAGE, f.stage);
	return fail(ld, f.key ? key_line(sec, f.key) : sec->line, sec, "%s", f.msg);
}

/* p's token from its token_file, or from $CREDENTIALS_DIRECTORY when it
 * has none (where an absent file means no token). */
static int load_token(struct loader *ld, struct provider_conf *p, const struct section *sec)
{
	char msg[ERR_MAX], *path = NULL;
	int rc;
	if (p->token_file) {
		if (!(path = tokenfile_path(ld->path, p->token_file)))
			return fail(ld, 0, NULL, "out of memory");
		rc = tokenfile_read(path, "", &p->token, msg);
		free(path);
		if (rc < 0)
			return fail(ld, key_line(sec, "token_file"), sec, "%s%s", rc == -ENOMEM ? "" : "token_file: ", msg);
		return 0;
	}
	if (tokenfile_credential_path(p->name, &path, msg) < 0)
		return fail(ld, 0, NULL, "%s", msg);
	if (!path)
		return 0;
	rc = tokenfile_read(path, "credential ", &p->token, msg);
	free(path);
	if (rc < 0 && rc != -ENOENT)
		return fail(ld, p->line, sec, "%s", msg);
	return 0;
}

/* p's method and its secrets (config_auth.c), the fault at its line. */
static int settle_auth(struct loader *ld, struct provider_conf *p, const struct section *sec)
{
	struct config_auth_fault f;
	if (config_auth_settle(p, ld->path, key_line(sec, "auth") != 0, &f) == 0)
		return 0;
	unsigned line = !f.key                        ? sec->line
	                : strcmp(f.key, "header") == 0 ? p->header_lines[f.header < p->n_headers ? f.header : 0]
	                                               : key_line(sec, f.key);
	return fail(ld, line ? line : sec->line, sec, "%s", f.msg);
}

/* p's ca_file resolved (like token_file, against raced.conf's directory)
 * and checked: a readable file of PEM certificates; and its http_version
 * one this libcurl speaks to its base_url (tls.h). */
static int load_tls(struct loader *ld, struct provider_conf *p, const struct section *sec)
{
	char msg[ERR_MAX];
	if (tls_http_version_check(p->http_version, p->base_url, msg, sizeof msg) < 0)
		return fail(ld, key_line(sec, "http_version"), sec, "http_version: %s", msg);
	if (!p->ca_file)
		return 0;
	if (!(p->ca_path = tokenfile_path(ld->path, p->ca_file)))
		return fail(ld, 0, NULL, "out of memory");
	if (tls_ca_file_check(p->ca_path, msg, sizeof msg) < 0)
		return fail(ld, key_line(sec, "ca_file"), sec, "ca_file: %s", msg);
	return 0;
}

static int load_tokens(struct loader *ld)
{
	for (size_t i = 0; i < ld->c->n_providers; i++) {
		const struct section *sec = find_section(ld, SECT_PROVIDER, i);
		if (load_token(ld, &ld->c->providers[i], sec) < 0 || settle_auth(ld, &ld->c->providers[i], sec) < 0 ||
		    load_tls(ld, &ld->c->providers[i], sec) < 0)
			return -1;
	}
	return 0;
}

/* [database] schema: any name PostgreSQL takes for a new schema (raced
 * quotes it), so not pg_* (reserved by PostgreSQL). */
static int check_schema(struct loader *ld, const struct section *sec)
{
	const char *n = ld->c->schema;
	if (!n)
		return 0;
	unsigned line = sec ? key_line(sec, "schema") : 0;
	size_t len = strlen(n);
	bool ctl = false;
	for (size_t i = 0; i < len; i++)
		ctl |= (unsigned char)n[i] < 0x20 || n[i] == 0x7f;
	if (len == 0 || len > 63 || ctl)
		return fail(ld, line, sec, "schema: '%s' is not a schema name: 1 to 63 bytes, no control "
		            "characters (raced quotes it, so any other character is fine)", n);
	if (strncasecmp(n, "pg_", 3) == 0 || strcmp(n, "information_schema") == 0)
		return fail(ld, line, sec, "schema: '%s' is reserved by PostgreSQL (pg_* and "
		            "information_schema): choose another name, e.g. raced", n);
	return 0;
}

static int validate(struct loader *ld)
{
	const struct section *daemon = NULL, *database = NULL;
	for (size_t i = 0; i < ld->n_sections; i++) {
		if (ld->sections[i].kind == SECT_DAEMON)
			daemon = &ld->sections[i];
		if (ld->sections[i].kind == SECT_DATABASE)
			database = &ld->sections[i];
	}
	if (apply_defaults(ld, daemon, SECT_DAEMON) < 0 || apply_defaults(ld, database, SECT_DATABASE) < 0 ||
	    check_schema(ld, database) < 0)
		return -1;
	for (size_t i = 0; i < ld->n_sections; i++)
		if (ld->sections[i].kind >= SECT_PROVIDER &&
		    apply_defaults(ld, &ld->sections[i], ld->sections[i].kind) < 0)
			return -1;
	char msg[ERR_MAX];
	if (check_pipeline(ld) < 0 || load_tokens(ld) < 0)
		return -1;
	if (config_order_stages(ld->c, msg) < 0)
		return fail(ld, 0, NULL, "%s", msg);
	return 0;
}

struct config *config_load(const char *path, char *err)
{
	struct loader ld = {.path = path, .err = err};
	if (!path) {
		err_set(err, "no configuration file given");
		return NULL;
	}
	ld.c = calloc(1, sizeof *ld.c);
	if (!ld.c || !(ld.c->path = strdup(path))) {
		free(ld.c);
		err_set(err, "%s: out of memory", path);
		return NULL;
	}
	ld.f = fopen(path, "re");
	if (!ld.f) {
		err_set(err, "%s: cannot open: %s", path, strerror(errno));
		config_free(ld.c);
		return NULL;
	}

	bool saved_stack = ini_use_stack, saved_realloc = ini_allow_realloc;
	int saved_max = ini_max_line, saved_initial = ini_initial_alloc;
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_max_line = ini_initial_alloc = CONFIG_LINE_MAX + 3; /* + "\r\n\0" */
	int rc = ini_parse_stream(read_line, &ld, on_key, &ld);
	ini_use_stack = saved_stack;
	ini_allow_realloc = saved_realloc;
	ini_max_line = saved_max;
	ini_initial_alloc = saved_initial;

	fclose(ld.f);
	free(ld.line);
	if (!ld.failed && rc == -2)
		fail(&ld, 0, NULL, "out of memory");
	else if (!ld.failed && rc != 0)
		fail(&ld, (unsigned)rc, NULL, "syntax error");
	if (!ld.failed)
		validate(&ld);
	free(ld.sections);
	if (ld.failed) {
		config_free(ld.c);
		return NULL;
	}
	return ld.c;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_providers; i++) {
		struct provider_conf *p = &c->providers[i];
		free(p->name);
		free(p->base_url);
		free(p->token_file);
		tokenfile_free(p->token);
		free(p->ca_file);
		free(p->ca_path);
		free(p->username);
		free(p->password_file);
		tokenfile_free(p->password);
		free(p->auth_header);
		free(p->auth_param);
		for (size_t j = 0; j < p->n_headers; j++)
			free(p->headers[j]);
		free(p->headers);
		free(p->header_lines);
	}
	for (size_t i = 0; i < c->n_stages; i++) {
		struct stage_conf *s = &c->stages[i];
		free(s->name);
		free(s->parent);
		free(s->provider);
		free(s->url);
		free(s->items);
		free(s->next_pointer);
		free(s->offset_param);
		free(s->limit_param);
		free(s->total);
		free(s->page_param);
		free(s->total_pages);
		free(s->cursor_pointer);
		free(s->cursor_header);
		free(s->cursor_param);
		free(s->has_more);
		free(s->key);
		free(s->cursor);
		free(s->initial);
		free(s->columns_spec);
		free(s->index_spec);
		config_columns_free(s->columns, s->n_columns);
	}
	free(c->providers);
	free(c->stages);
	free(c->path);
	free(c->control_socket);
	free(c->admin_group);
	free(c->metrics);
	free(c->conninfo);
	free(c->schema);
	free(c);
}

/* The host of "host:port": 127.0.0.0/8 or ::1, nothing a resolver or a
 * network interface other than loopback would have to answer. */
static bool listen_host_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int config_listen_parse(const char *s, struct config_listen *out, char *msg, size_t n)
{
	static const char expect[] =
	        "expected a loopback address and port such as 127.0.0.1:9187 or [::1]:9187, "
	        "or an absolute Unix socket path; leave it unset for no metrics";
	memset(out, 0, sizeof *out);
	if (s[0] == '/') {
		out->path = s;
		return config_value_socket_path(s, msg, n);
	}
	const char *colon = strrchr(s, ':');
	const char *host = s;
	size_t hlen = colon ? (size_t)(colon - s) : 0;
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	uint64_t port;
	if (!colon || hlen == 0 || hlen >= sizeof out->host ||
	    config_value_uint(colon + 1, &port) < 0 || port < 1 || port > 65535) {
		snprintf(msg, n, "'%s' is not an address: %s", s, expect);
		return -1;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	out->port = (uint16_t)port;
	if (!listen_host_loopback(out->host)) {
		snprintf(msg, n, "'%s' is not a loopback address (the metrics are not authenticated): %s",
		         s, expect);
		return -1;
	}
	return 0;
}

const struct provider_conf *config_provider(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_providers; i++)
		if (strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	return NULL;
}

const struct stage_conf *config_stage(const struct config *c, const char *name)
{
	for (size_t i = 0; c && name && i < c->n_stages; i++)
		if (strcmp(c->stages[i].name, name) == 0)
			return &c->stages[i];
	return NULL;
}
