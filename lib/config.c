/* config — raced.conf parsed into a validated, immutable struct config.
 *
 * Design:
 *  - keys[] below is the single description of every key: its section kind,
 *    type, where it lands in the structs, its default (written in the file's
 *    own syntax and parsed by the same code as user values), its range and
 *    flags.  Parsing, defaults, required-key checks, range checks, the "did
 *    you mean" suggestion and config_describe_changes() all walk it.
 *  - inih splits "key = value" lines; the lines reach it through our own
 *    reader (ini_parse_stream), which counts lines (inih's handler gets no
 *    line number), strips comments the way raced.conf(5) says (';' or '#' at
 *    the start of a line or after whitespace), strips leading whitespace (so
 *    an indented line is never a continuation of the previous value),
 *    records [section] headers with their lines (inih tells the handler
 *    nothing about sections without keys), and rejects syntax errors and
 *    over-long lines instead of letting inih cut them in two.
 *  - Debian's libinih keeps its options in globals; config_load() sets the
 *    line buffer to the heap and CONFIG_LINE_MAX for the duration of the
 *    parse and restores them.  Call it from one thread at a time.
 *  - Checks run in a fixed order and the first error wins: syntax and
 *    values in file order, then per section (required keys, demands), then
 *    the pipeline (references, cycles, the single root, URL templates), then
 *    tokens (I/O last), then stages are ordered parents first.
 */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "stage.h"   /* the engine's bounds are the settings' bounds */
#include "store.h"   /* and the store's */
#include "suggest.h"

enum section_kind { SECT_DAEMON, SECT_DATABASE, SECT_PROVIDER, SECT_STAGE, SECT_KINDS };

static const char *const section_kind_names[SECT_KINDS] = {"daemon", "database", "provider", "stage"};

enum key_type {
	KT_STRING,      /* char *, non-empty unless KF_EMPTY_OK */
	KT_SOCKET_PATH, /* char *, absolute, fits sockaddr_un */
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
};

#define KF_REQUIRED 1u  /* no default: the section must set it */
#define KF_DERIVED  2u  /* default computed from other keys (see apply_derived) */
#define KF_RESTART  4u  /* a reload does not apply it; the daemon must restart */
#define KF_SECRET   8u  /* never shown in config_describe_changes() */
#define KF_EMPTY_OK 16u /* an empty value is valid */

struct key_def {
	const char *name;
	enum section_kind section;
	enum key_type type;
	size_t offset;   /* in struct config, provider_conf or stage_conf */
	const char *def; /* default in the file's syntax, or NULL */
	uint64_t min, max;
	unsigned flags;
};

#define D_(f) offsetof(struct config, f)
#define P_(f) offsetof(struct provider_conf, f)
#define S_(f) offsetof(struct stage_conf, f)

/* Keep docs/raced.conf.5 and etc/raced.conf in step with this table
 * (test_config checks that both mention every key). */
static const struct key_def keys[] = {
	{"control_socket", SECT_DAEMON, KT_SOCKET_PATH, D_(control_socket), "/run/raced/raced.sock", 0, 0, KF_RESTART},
	{"admin_group", SECT_DAEMON, KT_STRING, D_(admin_group), "raced-admin", 0, 0, 0},
	{"max_clients", SECT_DAEMON, KT_UINT, D_(max_clients), "64", 1, 65536, 0},
	{"stop_timeout", SECT_DAEMON, KT_DURATION, D_(stop_timeout_ms), "20s", 0, 3600000, 0},

	{"conninfo", SECT_DATABASE, KT_CONNINFO, D_(conninfo), "dbname=races", 0, 0, KF_SECRET | KF_EMPTY_OK},
	{"batch_size", SECT_DATABASE, KT_UINT, D_(batch_size), "500", 1, STORE_BATCH_SIZE_MAX, 0},
	{"discard", SECT_DATABASE, KT_BOOL, D_(discard), "no", 0, 0, 0},

	{"base_url", SECT_PROVIDER, KT_URL, P_(base_url), NULL, 0, 0, KF_REQUIRED},
	{"token_file", SECT_PROVIDER, KT_STRING, P_(token_file), NULL, 0, 0, 0},
	{"max_connections", SECT_PROVIDER, KT_UINT, P_(max_connections), "16", 1, 1024, 0},
	{"rate_limit", SECT_PROVIDER, KT_DOUBLE, P_(rate_limit), "0", 0, 1000000, 0},
	{"timeout", SECT_PROVIDER, KT_DURATION, P_(timeout_ms), "30s", 100, 3600000, 0},
	{"max_retries", SECT_PROVIDER, KT_UINT, P_(max_retries), "5", 0, 100, 0},
	{"max_body", SECT_PROVIDER, KT_SIZE, P_(max_body), "16MiB", 1024, 1ull << 30, 0},
	{"max_redirects", SECT_PROVIDER, KT_UINT, P_(max_redirects), "5", 0, 50, 0},

	{"parent", SECT_STAGE, KT_STRING, S_(parent), NULL, 0, 0, 0},
	{"provider", SECT_STAGE, KT_STRING, S_(provider), NULL, 0, 0, KF_REQUIRED},
	{"url", SECT_STAGE, KT_TEMPLATE, S_(url), NULL, 0, 0, KF_REQUIRED},
	{"items", SECT_STAGE, KT_POINTER, S_(items), "/data", 0, 0, 0},
	{"next", SECT_STAGE, KT_NEXT, S_(next), "none", 0, 0, 0},
	{"key", SECT_STAGE, KT_POINTER, S_(key), NULL, 0, 0, KF_REQUIRED},
	{"dedupe", SECT_STAGE, KT_BOOL, S_(dedupe), "no", 0, 0, 0},
	{"max_demand", SECT_STAGE, KT_UINT, S_(max_demand), "500", 1, STAGE_MAX_DEMAND, 0},
	{"min_demand", SECT_STAGE, KT_UINT, S_(min_demand), NULL, 0, 1000000, KF_DERIVED},
	{"buffer_size", SECT_STAGE, KT_UINT, S_(buffer_size), NULL, 1, STAGE_MAX_BUFFER, KF_DERIVED},
	{"concurrency", SECT_STAGE, KT_UINT, S_(concurrency), NULL, 1, 1024, KF_DERIVED},
};

#define N_KEYS (sizeof keys / sizeof keys[0])
#define TOKEN_MAX 65536

/* ---- small helpers ---- */

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void fmt_duration(uint64_t ms, char *out, size_t n)
{
	if (ms != 0 && ms % 60000 == 0)
		snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(out, n, "%llums", (unsigned long long)ms);
}

static void fmt_size(uint64_t b, char *out, size_t n)
{
	if (b != 0 && b % (1ull << 30) == 0)
		snprintf(out, n, "%lluGiB", (unsigned long long)(b >> 30));
	else if (b != 0 && b % (1ull << 20) == 0)
		snprintf(out, n, "%lluMiB", (unsigned long long)(b >> 20));
	else if (b != 0 && b % (1ull << 10) == 0)
		snprintf(out, n, "%lluKiB", (unsigned long long)(b >> 10));
	else
		snprintf(out, n, "%llu", (unsigned long long)b);
}

static void fmt_bound(const struct key_def *k, uint64_t v, char *out, size_t n)
{
	if (k->type == KT_DURATION)
		fmt_duration(v, out, n);
	else if (k->type == KT_SIZE)
		fmt_size(v, out, n);
	else
		snprintf(out, n, "%llu", (unsigned long long)v);
}

/* ---- value parsers: 0 or -1 (bad form); *v may exceed any range ---- */

static int parse_digits(const char *s, const char **end, uint64_t *v)
{
	if (!isdigit((unsigned char)*s))
		return -1;
	uint64_t x = 0;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
	}
	*end = s;
	*v = x;
	return 0;
}

static uint64_t mul_sat(uint64_t v, uint64_t m)
{
	return v > UINT64_MAX / m ? UINT64_MAX : v * m;
}

static int parse_uint(const char *s, uint64_t *v)
{
	const char *end;
	return parse_digits(s, &end, v) == 0 && *end == '\0' ? 0 : -1;
}

static int parse_duration_ms(const char *s, uint64_t *v)
{
	const char *end;
	if (parse_digits(s, &end, v) < 0)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end == '\0' && end[-1] >= '0' && end[-1] <= '9')
		*v = mul_sat(*v, 1000);
	else if (strcasecmp(end, "ms") == 0)
		;
	else if (strcasecmp(end, "s") == 0)
		*v = mul_sat(*v, 1000);
	else if (strcasecmp(end, "m") == 0)
		*v = mul_sat(*v, 60000);
	else
		return -1;
	return 0;
}

int config_parse_duration(const char *s, uint32_t *ms)
{
	uint64_t v;
	if (!s || parse_duration_ms(s, &v) < 0 || v > UINT32_MAX)
		return -1;
	*ms = (uint32_t)v;
	return 0;
}

static int parse_size(const char *s, uint64_t *v)
{
	const char *end;
	if (parse_digits(s, &end, v) < 0)
		return -1;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end == '\0')
		;
	else if (strcasecmp(end, "KiB") == 0)
		*v = mul_sat(*v, 1ull << 10);
	else if (strcasecmp(end, "MiB") == 0)
		*v = mul_sat(*v, 1ull << 20);
	else if (strcasecmp(end, "GiB") == 0)
		*v = mul_sat(*v, 1ull << 30);
	else
		return -1;
	return 0;
}

static int parse_bool(const char *s, bool *v)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *v = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *v = false, 0;
	}
	return -1;
}

static int parse_decimal(const char *s, double *v)
{
	if (!isdigit((unsigned char)*s) || strspn(s, "0123456789.") != strlen(s) ||
	    strchr(s, '.') != strrchr(s, '.'))
		return -1;
	*v = strtod(s, NULL);
	return 0;
}

/* Checks a URL template's braces; *fields tells whether it uses any. */
static int check_template(const char *t, bool *fields, char *msg, size_t n)
{
	*fields = false;
	for (const char *p = t; *p; p++) {
		if (*p == '}') {
			snprintf(msg, n, "'}' without '{' in '%s'", t);
			return -1;
		}
		if (*p != '{')
			continue;
		const char *close = strchr(p + 1, '}');
		const char *open = strchr(p + 1, '{');
		if (!close || (open && open < close)) {
			snprintf(msg, n, "unclosed '{' in '%s'", t);
			return -1;
		}
		if (close == p + 1) {
			snprintf(msg, n, "empty '{}' in '%s' (expected {field} or {/json/pointer})", t);
			return -1;
		}
		*fields = true;
		p = close;
	}
	return 0;
}

static bool is_pointer(const char *s)
{
	return s[0] == '\0' || s[0] == '/';
}

/* An absolute http(s) URL with a host, as libcurl parses it. */
static int check_url(const char *s, char *msg, size_t n)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;
	if (!u) {
		snprintf(msg, n, "out of memory");
		return -1;
	}
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, s, CURLU_NON_SUPPORT_SCHEME);
	if (!strstr(s, "://")) {
		snprintf(msg, n, "'%s' is not an absolute http:// or https:// URL (it has no scheme)", s);
		goto out;
	}
	if (uc != CURLUE_OK) {
		snprintf(msg, n, "'%s' is not an absolute http:// or https:// URL (%s)", s, curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		snprintf(msg, n, "'%s' is not an absolute http:// or https:// URL (scheme '%s')", s,
		         scheme ? scheme : "");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
		snprintf(msg, n, "'%s' is not an absolute http:// or https:// URL (no host)", s);
		goto out;
	}
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
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
	if (line)
		snprintf(where, sizeof where, ":%u", line);
	if (sec) {
		const char *name = section_name(ld, sec);
		snprintf(head, sizeof head, "[%s%s%s] ", section_kind_names[sec->kind], name ? " " : "",
		         name ? name : "");
	}
	ld->failed = true;
	return err_set(ld->err, "%s%s: %s%s", ld->path, where, head, msg);
}

static const struct key_def *key_find(enum section_kind kind, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].section == kind && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static size_t key_index(const struct key_def *k)
{
	return (size_t)(k - keys);
}

static int set_value(struct loader *ld, const struct section *sec, const struct key_def *k,
                     const char *value, unsigned line)
{
	char *field = (char *)section_obj(ld, sec) + k->offset;
	char msg[ERR_MAX], lo[32], hi[32];
	uint64_t u = 0;
	double d;

	fmt_bound(k, k->min, lo, sizeof lo);
	fmt_bound(k, k->max, hi, sizeof hi);
	switch (k->type) {
	case KT_STRING:
	case KT_SOCKET_PATH:
	case KT_URL:
	case KT_CONNINFO:
	case KT_TEMPLATE:
	case KT_POINTER:
		if (!*value && !(k->flags & KF_EMPTY_OK) && k->type != KT_POINTER)
			return fail(ld, line, sec, "%s: empty value (a value is required)", k->name);
		if (k->type == KT_SOCKET_PATH) {
			if (value[0] != '/')
				return fail(ld, line, sec, "%s: '%s' is not an absolute path", k->name, value);
			if (strlen(value) >= sizeof ((struct sockaddr_un *)0)->sun_path)
				return fail(ld, line, sec, "%s: '%s' is longer than %zu bytes, the limit of a Unix socket address",
				            k->name, value, sizeof ((struct sockaddr_un *)0)->sun_path - 1);
		} else if (k->type == KT_URL) {
			if (check_url(value, msg, sizeof msg) < 0)
				return fail(ld, line, sec, "%s: %s", k->name, msg);
		} else if (k->type == KT_CONNINFO) {
			/* The value may hold a password: the message quotes libpq only. */
			char *perr = NULL;
			PQconninfoOption *opts = PQconninfoParse(value, &perr);
			if (!opts) {
				snprintf(msg, sizeof msg, "%s", perr ? perr : "out of memory");
				PQfreemem(perr);
				msg[strcspn(msg, "\n")] = '\0';
				return fail(ld, line, sec, "%s: not a valid libpq connection string: %s",
				            k->name, msg);
			}
			PQconninfoFree(opts);
		} else if (k->type == KT_TEMPLATE) {
			bool fields;
			if (check_template(value, &fields, msg, sizeof msg) < 0)
				return fail(ld, line, sec, "%s: %s", k->name, msg);
		} else if (k->type == KT_POINTER && !is_pointer(value)) {
			return fail(ld, line, sec,
			            "%s: '%s' is not a JSON pointer (expected \"\" or a pointer starting with '/', e.g. /data)",
			            k->name, value);
		}
		char *copy = strdup(value);
		if (!copy)
			return fail(ld, line, sec, "%s: out of memory", k->name);
		memcpy(field, &copy, sizeof copy);
		return 0;
	case KT_NEXT: {
		struct stage_conf *st = section_obj(ld, sec);
		if (strcmp(value, "none") == 0) {
			st->next = NEXT_NONE;
		} else if (strcmp(value, "link") == 0) {
			st->next = NEXT_LINK;
		} else if (value[0] == '/') {
			if (!(st->next_pointer = strdup(value)))
				return fail(ld, line, sec, "%s: out of memory", k->name);
			st->next = NEXT_POINTER;
		} else {
			return fail(ld, line, sec,
			            "%s: '%s' is not valid (expected a JSON pointer starting with '/', 'link' or 'none')",
			            k->name, value);
		}
		return 0;
	}
	case KT_BOOL: {
		bool b;
		if (parse_bool(value, &b) < 0)
			return fail(ld, line, sec, "%s: '%s' is not a boolean (expected yes/no, true/false, on/off or 1/0)",
			            k->name, value);
		memcpy(field, &b, sizeof b);
		return 0;
	}
	case KT_DOUBLE:
		if (parse_decimal(value, &d) < 0)
			return fail(ld, line, sec, "%s: '%s' is not a number (expected %s to %s)", k->name, value, lo, hi);
		if (d < (double)k->min || d > (double)k->max)
			return fail(ld, line, sec, "%s: %s is out of range (%s to %s)", k->name, value, lo, hi);
		memcpy(field, &d, sizeof d);
		return 0;
	case KT_UINT:
		if (parse_uint(value, &u) < 0)
			return fail(ld, line, sec, "%s: '%s' is not a whole number (expected %s to %s)", k->name, value, lo, hi);
		break;
	case KT_DURATION:
		if (parse_duration_ms(value, &u) < 0)
			return fail(ld, line, sec,
			            "%s: '%s' is not a duration (expected a whole number with ms, s or m, e.g. 250ms, 30s, 2m; "
			            "a bare number is seconds)", k->name, value);
		break;
	case KT_SIZE:
		if (parse_size(value, &u) < 0)
			return fail(ld, line, sec,
			            "%s: '%s' is not a size (expected a number of bytes, optionally with KiB, MiB or GiB, e.g. 16MiB)",
			            k->name, value);
		break;
	}
	if (u < k->min || u > k->max)
		return fail(ld, line, sec, "%s: %s is out of range (%s to %s)", k->name, value, lo, hi);
	if (k->type == KT_SIZE) {
		size_t s = (size_t)u;
		memcpy(field, &s, sizeof s);
	} else {
		uint32_t v32 = (uint32_t)u;
		memcpy(field, &v32, sizeof v32);
	}
	return 0;
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

/* A "[...]" line: register the section it opens.  inner is modified. */
static int open_section(struct loader *ld, char *inner)
{
	char *kind = inner + strspn(inner, " \t");
	char *name = kind + strcspn(kind, " \t");
	if (*name) {
		*name++ = '\0';
		name += strspn(name, " \t");
		char *e = name + strlen(name);
		while (e > name && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
	}
	int k = -1;
	for (int i = 0; i < SECT_KINDS; i++)
		if (strcmp(kind, section_kind_names[i]) == 0)
			k = i;
	if (k < 0) {
		size_t best = SIZE_MAX;
		const char *sugg = NULL;
		for (int i = 0; i < SECT_KINDS; i++)
			if (suggest_near(kind, section_kind_names[i], &best))
				sugg = section_kind_names[i];
		if (sugg)
			return fail(ld, ld->lineno, NULL, "unknown section [%s%s%s] (did you mean [%s%s%s]?)", kind,
			            *name ? " " : "", name, sugg, *name ? " " : "", name);
		return fail(ld, ld->lineno, NULL,
		            "unknown section [%s%s%s] (expected [daemon], [database], [provider NAME] or [stage NAME])",
		            kind, *name ? " " : "", name);
	}
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
	                        strcmp(name, "raced_schema_version") == 0))
		return fail(ld, ld->lineno, NULL, "stage name '%s' is reserved for raced's own table", name);
	if (k == SECT_PROVIDER && !provider_name_valid(name))
		return fail(ld, ld->lineno, NULL,
		            "provider name '%s' is not valid: letters, digits, '_' and '-', starting with a letter or digit, "
		            "at most %d characters", name, CONFIG_NAME_MAX);
	for (size_t i = 0; i < ld->n_sections; i++) {
		const struct section *s = &ld->sections[i];
		const char *sn = section_name(ld, s);
		if ((int)s->kind == k && (!named || strcmp(sn, name) == 0))
			return fail(ld, ld->lineno, NULL, "duplicate section [%s%s%s] (first on line %u)", kind,
			            named ? " " : "", named ? name : "", s->line);
	}

	struct section *ns = realloc(ld->sections, (ld->n_sections + 1) * sizeof *ns);
	if (!ns)
		return fail(ld, ld->lineno, NULL, "out of memory");
	ld->sections = ns;
	struct section *sec = &ns[ld->n_sections];
	memset(sec, 0, sizeof *sec);
	sec->kind = (enum section_kind)k;
	sec->line = ld->lineno;
	if (k == SECT_PROVIDER) {
		struct provider_conf *p = realloc(ld->c->providers, (ld->c->n_providers + 1) * sizeof *p);
		if (!p)
			return fail(ld, ld->lineno, NULL, "out of memory");
		ld->c->providers = p;
		p += ld->c->n_providers;
		memset(p, 0, sizeof *p);
		if (!(p->name = strdup(name)))
			return fail(ld, ld->lineno, NULL, "out of memory");
		p->line = ld->lineno;
		sec->index = ld->c->n_providers++;
	} else if (k == SECT_STAGE) {
		struct stage_conf *st = realloc(ld->c->stages, (ld->c->n_stages + 1) * sizeof *st);
		if (!st)
			return fail(ld, ld->lineno, NULL, "out of memory");
		ld->c->stages = st;
		st += ld->c->n_stages;
		memset(st, 0, sizeof *st);
		if (!(st->name = strdup(name)))
			return fail(ld, ld->lineno, NULL, "out of memory");
		st->line = ld->lineno;
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
	char *s = ld->line;
	if (strlen(s) != (size_t)n) {
		fail(ld, ld->lineno, NULL, "the line contains a NUL byte");
		return NULL;
	}
	if (ld->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s += strspn(s, " \t\r\n");
	for (char *p = s; *p; p++)
		if ((*p == ';' || *p == '#') && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	size_t len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';

	if (s[0] == '[') {
		if (s[len - 1] != ']') {
			fail(ld, ld->lineno, NULL, "section header '%s' has no closing ']'", s);
			return NULL;
		}
		char inner[256];
		snprintf(inner, sizeof inner, "%.*s", (int)(len - 2), s + 1);
		if (open_section(ld, inner) < 0)
			return NULL;
	} else if (len) {
		size_t eq = strcspn(s, "=:");
		if (s[eq] != '=') {
			fail(ld, ld->lineno, NULL, "expected 'key = value' or a [section] header, found '%s'", s);
			return NULL;
		}
		if (eq == 0) {
			fail(ld, ld->lineno, NULL, "missing key name before '='");
			return NULL;
		}
	}
	if (num < 4 || len + 3 > (size_t)num) {
		fail(ld, ld->lineno, NULL, "line too long (at most %d characters)", num - 3);
		return NULL;
	}
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
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
	if (!k) {
		size_t best = SIZE_MAX;
		const char *sugg = NULL, *elsewhere = NULL;
		for (size_t i = 0; i < N_KEYS; i++) {
			if (keys[i].section == sec->kind && suggest_near(name, keys[i].name, &best))
				sugg = keys[i].name;
			if (keys[i].section != sec->kind && strcmp(keys[i].name, name) == 0)
				elsewhere = section_kind_names[keys[i].section];
		}
		if (sugg)
			fail(ld, ld->lineno, sec, "unknown key '%s' (did you mean '%s'?)", name, sugg);
		else if (elsewhere)
			fail(ld, ld->lineno, sec, "unknown key '%s' (it belongs in a [%s%s] section)", name, elsewhere,
			     strcmp(elsewhere, "provider") == 0 || strcmp(elsewhere, "stage") == 0 ? " NAME" : "");
		else
			fail(ld, ld->lineno, sec, "unknown key '%s'", name);
		return 0;
	}
	size_t ki = key_index(k);
	if (sec->key_line[ki])
		return fail(ld, ld->lineno, sec, "duplicate key '%s' (first set on line %u)", name, sec->key_line[ki]), 0;
	/* set before parsing: a bad value fails the load anyway */
	ld->sections[ld->cur - 1].key_line[ki] = ld->lineno;
	return set_value(ld, sec, k, value, ld->lineno) == 0;
}

/* ---- after parsing ---- */

static int apply_defaults(struct loader *ld, const struct section *sec, enum section_kind kind)
{
	struct section implicit = {.kind = kind};
	if (!sec)
		sec = &implicit; /* [daemon] or [database] absent from the file */
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &keys[i];
		if (k->section != kind || sec->key_line[i])
			continue;
		if (k->flags & KF_REQUIRED)
			return fail(ld, sec->line, sec, "missing required key '%s'", k->name);
		if (k->def && set_value(ld, sec, k, k->def, 0) < 0)
			return -1;
	}
	if (kind == SECT_STAGE) {
		struct stage_conf *st = section_obj(ld, sec);
		unsigned min_line = sec->key_line[key_index(key_find(SECT_STAGE, "min_demand"))];
		if (!min_line)
			st->min_demand = st->max_demand / 2;
		else if (st->min_demand >= st->max_demand)
			return fail(ld, min_line, sec, "min_demand (%u) must be less than max_demand (%u)", st->min_demand,
			            st->max_demand);
		if (!sec->key_line[key_index(key_find(SECT_STAGE, "buffer_size"))])
			st->buffer_size = st->max_demand;
		if (!sec->key_line[key_index(key_find(SECT_STAGE, "concurrency"))])
			st->concurrency = st->parent ? 8 : 1;
	}
	return 0;
}

static const struct section *find_section(const struct loader *ld, enum section_kind kind, size_t index)
{
	for (size_t i = 0; i < ld->n_sections; i++)
		if (ld->sections[i].kind == kind && (kind < SECT_PROVIDER || ld->sections[i].index == index))
			return &ld->sections[i];
	return NULL;
}

static unsigned key_line(const struct section *sec, const char *name)
{
	return sec->key_line[key_index(key_find(sec->kind, name))];
}

static int stage_index(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_stages; i++)
		if (strcmp(c->stages[i].name, name) == 0)
			return (int)i;
	return -1;
}

static const char *nearest_stage(const struct config *c, const char *name)
{
	size_t best = SIZE_MAX;
	const char *sugg = NULL;
	for (size_t i = 0; i < c->n_stages; i++)
		if (suggest_near(name, c->stages[i].name, &best))
			sugg = c->stages[i].name;
	return sugg;
}

static int check_pipeline(struct loader *ld)
{
	struct config *c = ld->c;
	if (c->n_stages == 0)
		return fail(ld, 0, NULL, "no [stage NAME] section: a pipeline needs at least one stage");
	/* references */
	for (size_t i = 0; i < c->n_stages; i++) {
		const struct stage_conf *st = &c->stages[i];
		const struct section *sec = find_section(ld, SECT_STAGE, i);
		if (!config_provider(c, st->provider)) {
			size_t best = SIZE_MAX;
			const char *sugg = NULL;
			for (size_t p = 0; p < c->n_providers; p++)
				if (suggest_near(st->provider, c->providers[p].name, &best))
					sugg = c->providers[p].name;
			if (sugg)
				return fail(ld, key_line(sec, "provider"), sec,
				            "provider '%s' is not defined (did you mean '%s'?)", st->provider, sugg);
			return fail(ld, key_line(sec, "provider"), sec,
			            "provider '%s' is not defined (add a [provider %s] section)", st->provider, st->provider);
		}
		if (st->parent && stage_index(c, st->parent) < 0) {
			const char *sugg = nearest_stage(c, st->parent);
			if (sugg)
				return fail(ld, key_line(sec, "parent"), sec, "parent '%s' is not a stage (did you mean '%s'?)",
				            st->parent, sugg);
			return fail(ld, key_line(sec, "parent"), sec, "parent '%s' is not a stage", st->parent);
		}
	}
	/* cycles: walking up from any stage must end at a root within n steps */
	for (size_t i = 0; i < c->n_stages; i++) {
		size_t at = i, steps = 0;
		while (c->stages[at].parent && steps <= c->n_stages) {
			at = (size_t)stage_index(c, c->stages[at].parent);
			steps++;
		}
		if (steps <= c->n_stages)
			continue;
		/* i leads into a cycle; report it from a stage on the cycle, named in file order */
		for (size_t k = 0; k < c->n_stages; k++)
			at = (size_t)stage_index(c, c->stages[at].parent);
		size_t first = at;
		for (size_t s = (size_t)stage_index(c, c->stages[at].parent); s != at;
		     s = (size_t)stage_index(c, c->stages[s].parent))
			if (s < first)
				first = s;
		char chain[ERR_MAX] = "";
		size_t used = 0, s = first;
		do {
			int w = snprintf(chain + used, sizeof chain - used, "%s -> ", c->stages[s].name);
			used = min_size(sizeof chain - 1, used + (size_t)(w > 0 ? w : 0));
			s = (size_t)stage_index(c, c->stages[s].parent);
		} while (s != first);
		snprintf(chain + used, sizeof chain - used, "%s", c->stages[first].name);
		const struct section *sec = find_section(ld, SECT_STAGE, first);
		return fail(ld, key_line(sec, "parent"), sec, "parents form a cycle: %s (one stage must have no parent)",
		            chain);
	}
	/* exactly one root */
	size_t root = SIZE_MAX;
	for (size_t i = 0; i < c->n_stages; i++) {
		if (c->stages[i].parent)
			continue;
		if (root != SIZE_MAX)
			return fail(ld, c->stages[i].line, find_section(ld, SECT_STAGE, i),
			            "has no parent, but [stage %s] (line %u) is already the root; exactly one stage may have "
			            "no parent", c->stages[root].name, c->stages[root].line);
		root = i;
	}
	/* URL templates */
	for (size_t i = 0; i < c->n_stages; i++) {
		const struct stage_conf *st = &c->stages[i];
		const struct section *sec = find_section(ld, SECT_STAGE, i);
		bool fields;
		char msg[ERR_MAX];
		(void)check_template(st->url, &fields, msg, sizeof msg);
		if (fields && !st->parent)
			return fail(ld, key_line(sec, "url"), sec,
			            "url: '%s' uses a field of the parent item, but this is the root stage: it has no parent",
			            st->url);
		/* the template with its fields filled in must resolve against base_url */
		char filled[CONFIG_LINE_MAX + 1];
		size_t o = 0;
		for (const char *p = st->url; *p && o < sizeof filled - 2; p++) {
			if (*p == '{') {
				p = strchr(p, '}');
				filled[o++] = 'x';
			} else {
				filled[o++] = *p;
			}
		}
		filled[o] = '\0';
		CURLU *u = curl_url();
		if (!u)
			return fail(ld, 0, NULL, "out of memory");
		CURLUcode uc = curl_url_set(u, CURLUPART_URL, config_provider(c, st->provider)->base_url,
		                            CURLU_NON_SUPPORT_SCHEME);
		if (uc == CURLUE_OK)
			uc = curl_url_set(u, CURLUPART_URL, filled, CURLU_NON_SUPPORT_SCHEME);
		curl_url_cleanup(u);
		if (uc != CURLUE_OK)
			return fail(ld, key_line(sec, "url"), sec, "url: '%s' is not a valid URL (%s)", st->url,
			            curl_url_strerror(uc));
	}
	return 0;
}

/* Reads a token; missing_ok: ENOENT gives *out = NULL and success. */
static int read_token(struct loader *ld, const struct section *sec, unsigned line, const char *key,
                      const char *noun, const char *path, bool missing_ok, char **out)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (missing_ok && errno == ENOENT)
			return 0;
		return fail(ld, line, sec, "%scannot read %s'%s': %s", key, noun, path, strerror(errno));
	}
	char *buf = malloc(TOKEN_MAX + 1);
	size_t len = 0;
	if (!buf) {
		close(fd);
		return fail(ld, line, sec, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, TOKEN_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return fail(ld, line, sec, "%scannot read %s'%s': %s", key, noun, path, strerror(e));
		}
		len += (size_t)n;
		if (n == 0 || len > TOKEN_MAX)
			break;
	}
	close(fd);
	if (len > TOKEN_MAX) {
		free(buf);
		return fail(ld, line, sec, "%s%s'%s' is larger than %d bytes; it must hold just the token", key, noun, path,
		            TOKEN_MAX);
	}
	while (len && isspace((unsigned char)buf[len - 1]))
		len--;
	buf[len] = '\0';
	size_t start = strspn(buf, " \t\r\n");
	memmove(buf, buf + start, len - start + 1);
	len -= start;
	if (!len) {
		free(buf);
		return fail(ld, line, sec, "%s%s'%s' is empty", key, noun, path);
	}
	for (size_t i = 0; i < len; i++)
		if (iscntrl((unsigned char)buf[i])) {
			free(buf);
			return fail(ld, line, sec,
			            "%s%s'%s' holds more than one line or control characters; it must hold just the token",
			            key, noun, path);
		}
	*out = buf;
	return 0;
}

static int load_tokens(struct loader *ld)
{
	for (size_t i = 0; i < ld->c->n_providers; i++) {
		struct provider_conf *p = &ld->c->providers[i];
		const struct section *sec = find_section(ld, SECT_PROVIDER, i);
		char *path = NULL;
		int rc;
		if (p->token_file) {
			if (p->token_file[0] == '/') {
				path = strdup(p->token_file);
			} else {
				/* relative to the configuration file's directory */
				const char *slash = strrchr(ld->path, '/');
				int dl = slash ? (int)(slash - ld->path) : 1;
				if (asprintf(&path, "%.*s/%s", dl, slash ? ld->path : ".", p->token_file) < 0)
					path = NULL;
			}
			if (!path)
				return fail(ld, 0, NULL, "out of memory");
			rc = read_token(ld, sec, key_line(sec, "token_file"), "token_file: ", "", path, false, &p->token);
		} else {
			const char *dir = getenv("CREDENTIALS_DIRECTORY");
			if (!dir || !*dir)
				continue;
			if (asprintf(&path, "%s/%s.token", dir, p->name) < 0)
				return fail(ld, 0, NULL, "out of memory");
			rc = read_token(ld, sec, p->line, "", "credential ", path, true, &p->token);
		}
		free(path);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Stable topological order: parents before children, file order otherwise. */
static int order_stages(struct loader *ld)
{
	struct config *c = ld->c;
	struct stage_conf *sorted = calloc(c->n_stages, sizeof *sorted);
	bool *done = calloc(c->n_stages, sizeof *done);
	if (!sorted || !done) {
		free(sorted);
		free(done);
		return fail(ld, 0, NULL, "out of memory");
	}
	size_t n = 0;
	while (n < c->n_stages) {
		for (size_t i = 0; i < c->n_stages; i++) {
			if (done[i])
				continue;
			const char *par = c->stages[i].parent;
			bool ready = !par;
			for (size_t j = 0; par && j < n; j++)
				if (strcmp(sorted[j].name, par) == 0)
					ready = true;
			if (ready) {
				sorted[n++] = c->stages[i];
				done[i] = true;
			}
		}
	}
	free(done);
	free(c->stages);
	c->stages = sorted;
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
	if (apply_defaults(ld, daemon, SECT_DAEMON) < 0 || apply_defaults(ld, database, SECT_DATABASE) < 0)
		return -1;
	for (size_t i = 0; i < ld->n_sections; i++)
		if (ld->sections[i].kind >= SECT_PROVIDER &&
		    apply_defaults(ld, &ld->sections[i], ld->sections[i].kind) < 0)
			return -1;
	if (check_pipeline(ld) < 0 || load_tokens(ld) < 0)
		return -1;
	return order_stages(ld);
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
		if (p->token)
			explicit_bzero(p->token, strlen(p->token));
		free(p->token);
	}
	for (size_t i = 0; i < c->n_stages; i++) {
		struct stage_conf *s = &c->stages[i];
		free(s->name);
		free(s->parent);
		free(s->provider);
		free(s->url);
		free(s->items);
		free(s->next_pointer);
		free(s->key);
	}
	free(c->providers);
	free(c->stages);
	free(c->path);
	free(c->control_socket);
	free(c->admin_group);
	free(c->conninfo);
	free(c);
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

/* ---- describing a reload ---- */

struct appender {
	char *buf;
	size_t len, used;
	bool full;
	unsigned items;
};

__attribute__((format(printf, 2, 3)))
static void append(struct appender *a, const char *fmt, ...)
{
	if (a->full || !a->len)
		return;
	char piece[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(piece, sizeof piece, fmt, ap);
	va_end(ap);
	const char *sep = a->items++ ? "; " : "";
	int w = snprintf(a->buf + a->used, a->len - a->used, "%s%s", sep, piece);
	if (w >= 0 && (size_t)w < a->len - a->used) {
		a->used += (size_t)w;
		return;
	}
	a->full = true;
	if (a->len >= 4)
		memcpy(a->buf + a->len - 4, "...", 4);
	else
		a->buf[a->len - 1] = '\0';
}

static void format_value(const struct key_def *k, const void *obj, char *out, size_t n)
{
	const char *f = (const char *)obj + k->offset;
	switch (k->type) {
	case KT_STRING:
	case KT_SOCKET_PATH:
	case KT_URL:
	case KT_CONNINFO:
	case KT_TEMPLATE:
	case KT_POINTER: {
		const char *s;
		memcpy(&s, f, sizeof s);
		if (s)
			snprintf(out, n, "'%s'", s);
		else
			snprintf(out, n, "(none)");
		return;
	}
	case KT_NEXT: {
		const struct stage_conf *st = obj;
		snprintf(out, n, "%s", st->next == NEXT_POINTER ? st->next_pointer : st->next == NEXT_LINK ? "link" : "none");
		return;
	}
	case KT_BOOL: {
		bool b;
		memcpy(&b, f, sizeof b);
		snprintf(out, n, "%s", b ? "yes" : "no");
		return;
	}
	case KT_DOUBLE: {
		double d;
		memcpy(&d, f, sizeof d);
		snprintf(out, n, "%g", d);
		return;
	}
	case KT_SIZE: {
		size_t s;
		memcpy(&s, f, sizeof s);
		fmt_size(s, out, n);
		return;
	}
	case KT_UINT:
	case KT_DURATION: {
		uint32_t v;
		memcpy(&v, f, sizeof v);
		if (k->type == KT_DURATION)
			fmt_duration(v, out, n);
		else
			snprintf(out, n, "%u", v);
		return;
	}
	}
}

static void describe_section(struct appender *a, enum section_kind kind, const char *name, const void *old,
                             const void *next)
{
	char head[96];
	snprintf(head, sizeof head, "[%s%s%s]", section_kind_names[kind], name ? " " : "", name ? name : "");
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &keys[i];
		char was[160], now[160];
		if (k->section != kind)
			continue;
		format_value(k, old, was, sizeof was);
		format_value(k, next, now, sizeof now);
		if (strcmp(was, now) == 0)
			continue;
		const char *restart = k->flags & KF_RESTART ? " (at the next restart)" : "";
		if (k->flags & KF_SECRET)
			append(a, "%s %s changed%s", head, k->name, restart);
		else
			append(a, "%s %s %s -> %s%s", head, k->name, was, now, restart);
	}
	if (kind == SECT_PROVIDER) {
		const char *t0 = ((const struct provider_conf *)old)->token;
		const char *t1 = ((const struct provider_conf *)next)->token;
		if ((t0 == NULL) != (t1 == NULL) || (t0 && strcmp(t0, t1) != 0))
			append(a, "%s token %s", head, !t1 ? "removed" : !t0 ? "added" : "changed");
	}
}

void config_describe_changes(const struct config *old, const struct config *next, char *buf, size_t len)
{
	struct appender a = {.buf = buf, .len = len};
	if (!len)
		return;
	buf[0] = '\0';
	if (!old || !next) {
		append(&a, "no previous configuration");
		return;
	}
	describe_section(&a, SECT_DAEMON, NULL, old, next);
	describe_section(&a, SECT_DATABASE, NULL, old, next);
	for (size_t i = 0; i < next->n_providers; i++) {
		const struct provider_conf *p = config_provider(old, next->providers[i].name);
		if (p)
			describe_section(&a, SECT_PROVIDER, p->name, p, &next->providers[i]);
		else
			append(&a, "provider '%s' added", next->providers[i].name);
	}
	for (size_t i = 0; i < old->n_providers; i++)
		if (!config_provider(next, old->providers[i].name))
			append(&a, "provider '%s' removed", old->providers[i].name);
	for (size_t i = 0; i < next->n_stages; i++) {
		const struct stage_conf *s = config_stage(old, next->stages[i].name);
		if (s)
			describe_section(&a, SECT_STAGE, s->name, s, &next->stages[i]);
		else
			append(&a, "stage '%s' added", next->stages[i].name);
	}
	for (size_t i = 0; i < old->n_stages; i++)
		if (!config_stage(next, old->stages[i].name))
			append(&a, "stage '%s' removed", old->stages[i].name);
	if (!a.items)
		append(&a, "nothing changed");
}
