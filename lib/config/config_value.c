/* config_value — see config_value.h. */
#include "config_value.h"
#include "redact.h"

#include <ctype.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

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

int config_value_uint(const char *s, uint64_t *v)
{
	const char *end;
	return parse_digits(s, &end, v) == 0 && *end == '\0' ? 0 : -1;
}

struct unit {
	const char *name; /* "" for a bare number */
	uint64_t factor;
};

/* Digits, blanks, then one of units (any case).  A bare number may be
 * followed by blanks only if blanks_ok. */
static int parse_with_unit(const char *s, const struct unit *units, size_t n, bool blanks_ok, uint64_t *v)
{
	const char *end;
	if (parse_digits(s, &end, v) < 0)
		return -1;
	const char *u = end + strspn(end, " \t");
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(u, units[i].name) == 0 && (units[i].name[0] || u == end || blanks_ok)) {
			*v = mul_sat(*v, units[i].factor);
			return 0;
		}
	return -1;
}

int config_value_duration(const char *s, uint64_t *v)
{
	static const struct unit units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000},
	                                    {"h", 3600000}, {"d", 86400000}};
	return parse_with_unit(s, units, sizeof units / sizeof units[0], false, v);
}

int config_value_size(const char *s, uint64_t *v)
{
	static const struct unit units[] = {{"", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}};
	return parse_with_unit(s, units, sizeof units / sizeof units[0], true, v);
}

int config_value_bool(const char *s, bool *v)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *v = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *v = false, 0;
	}
	return -1;
}

int config_value_decimal(const char *s, double *v)
{
	if (!isdigit((unsigned char)*s) || strspn(s, "0123456789.") != strlen(s) ||
	    strchr(s, '.') != strrchr(s, '.'))
		return -1;
	*v = strtod(s, NULL);
	return 0;
}

int config_value_http_url(const char *s, char *msg, size_t n)
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

int config_value_socket_path(const char *s, char *msg, size_t n)
{
	size_t max = sizeof ((struct sockaddr_un *)0)->sun_path - 1;
	if (s[0] != '/') {
		snprintf(msg, n, "'%s' is not an absolute path", s);
		return -1;
	}
	if (strlen(s) > max) {
		snprintf(msg, n, "'%s' is longer than %zu bytes, the limit of a Unix socket address", s, max);
		return -1;
	}
	return 0;
}

int config_value_conninfo(const char *s, char *msg, size_t n)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(s, &perr);
	if (opts) {
		PQconninfoFree(opts);
		return 0;
	}
	char why[ERR_MAX];
	snprintf(why, sizeof why, "%s", perr ? perr : "out of memory");
	PQfreemem(perr);
	why[strcspn(why, "\n")] = '\0';
	snprintf(msg, n, "not a valid libpq connection string: %s", why);
	redact_buf(msg, n); /* libpq quotes a URI it cannot parse, password and all */
	return -1;
}

char *config_value_conninfo_named(const char *conninfo, const char *app)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	bool named = !opts; /* unparsable: leave it as it is, libpq will say why */
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if ((strcmp(o->keyword, "application_name") == 0 ||
		     strcmp(o->keyword, "fallback_application_name") == 0) && o->val && o->val[0])
			named = true;
	PQconninfoFree(opts);
	if (named)
		return strdup(conninfo);
	bool uri = strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0;
	size_t n = strlen(conninfo) + 2 + strlen("fallback_application_name=") + strlen(app);
	char *out = malloc(n);
	if (!out)
		return NULL;
	/* A keyword goes first, so the conninfo raced shows reads as the
	 * operator wrote it; a URI takes it as a query parameter. */
	if (uri)
		snprintf(out, n, "%s%cfallback_application_name=%s", conninfo,
		         strchr(conninfo, '?') ? '&' : '?', app);
	else
		snprintf(out, n, "fallback_application_name=%s%s%s", app, conninfo[0] ? " " : "", conninfo);
	return out;
}

void config_value_format_duration(uint64_t ms, char *out, size_t n)
{
	if (ms != 0 && ms % 86400000 == 0)
		snprintf(out, n, "%llud", (unsigned long long)(ms / 86400000));
	else if (ms != 0 && ms % 3600000 == 0)
		snprintf(out, n, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(out, n, "%llums", (unsigned long long)ms);
}

void config_value_format_size(uint64_t b, char *out, size_t n)
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

/* n digits at s, as a number in [lo, hi]; -1 otherwise. */
static int fixed_digits(const char *s, size_t n, unsigned lo, unsigned hi, unsigned *v)
{
	unsigned x = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	if (x < lo || x > hi)
		return -1;
	*v = x;
	return 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* "+01:00", "-0130" or "Z" at s, and nothing after it. */
static int parse_zone(const char *s)
{
	unsigned hh, mm;
	if (strcmp(s, "Z") == 0 || strcmp(s, "z") == 0)
		return 0;
	if ((s[0] != '+' && s[0] != '-') || fixed_digits(s + 1, 2, 0, 23, &hh) < 0)
		return -1;
	const char *m = s[3] == ':' ? s + 4 : s + 3;
	return fixed_digits(m, 2, 0, 59, &mm) == 0 && m[2] == '\0' ? 0 : -1;
}

int config_value_timestamp(const char *s)
{
	unsigned y, mo, d, h, mi, sec;
	if (fixed_digits(s, 4, 0, 9999, &y) < 0 || s[4] != '-' || fixed_digits(s + 5, 2, 1, 12, &mo) < 0 ||
	    s[7] != '-' || fixed_digits(s + 8, 2, 1, 31, &d) < 0 || d > days_in_month(y, mo))
		return -1;
	if (s[10] == '\0')
		return 0;
	if ((s[10] != 'T' && s[10] != 't') || fixed_digits(s + 11, 2, 0, 23, &h) < 0 || s[13] != ':' ||
	    fixed_digits(s + 14, 2, 0, 59, &mi) < 0)
		return -1;
	const char *p = s + 16;
	if (*p == ':') {
		if (fixed_digits(p + 1, 2, 0, 60, &sec) < 0)
			return -1;
		p += 3;
		if (*p == '.' || *p == ',') {
			size_t frac = strspn(p + 1, "0123456789");
			if (frac == 0)
				return -1;
			p += 1 + frac;
		}
	}
	return parse_zone(p);
}

int config_value_number(const char *s)
{
	const char *p = s + (*s == '-');
	size_t whole = strspn(p, "0123456789");
	if (whole == 0)
		return -1;
	p += whole;
	if (*p == '.') {
		size_t frac = strspn(p + 1, "0123456789");
		if (frac == 0)
			return -1;
		p += 1 + frac;
	}
	return *p == '\0' ? 0 : -1;
}
