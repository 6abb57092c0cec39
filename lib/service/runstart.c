/* runstart — see runstart.h. */
#include "runstart.h"

#include "config.h"
#include "urltemplate.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds since the epoch of an ISO 8601 time "YYYY-MM-DD[T ]hh:mm:ss",
 * optional fraction (dropped), then Z, +hh[:mm], -hh[:mm] or nothing
 * (UTC).  -1 when it is not one. */
static int parse_iso(const char *s, int64_t *out)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int n = 0;
	char sep;
	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &sep,
	           &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 7 || n != 19 ||
	    (sep != 'T' && sep != 't' && sep != ' '))
		return -1;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	const char *p = s + n;
	if (*p == '.' || *p == ',') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh = 0, mm = 0;
		p++;
		if (sscanf(p, "%2d", &hh) != 1 || p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
			return -1;
		p += 2;
		if (*p == ':')
			p++;
		if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9') {
			mm = (p[0] - '0') * 10 + (p[1] - '0');
			p += 2;
		}
		if (hh > 23 || mm > 59)
			return -1;
		off = sign * (hh * 3600L + mm * 60L);
	}
	if (*p)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t - off;
	return 0;
}

int runstart_cursor_text(const json_t *v, uint32_t lag_ms, const char *initial, char **out,
                         char *err)
{
	char buf[64];
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (!initial)
			return err_set_class(err, EINVAL, "no earlier import to take the cursor from, and no "
			                     "'initial' value in the root stage: set initial = (a time or "
			                     "number) in the root [stage]");
		*out = strdup(initial);
		return *out ? 0 : err_set_class(err, ENOMEM, "out of memory");
	}
	if (json_is_string(v)) {
		int64_t t;
		if (parse_iso(json_string_value(v), &t) < 0)
			return err_set_class(err, EINVAL, "the cursor value '%.64s' is not an ISO 8601 time "
			                     "(setting 'cursor' of the root stage names a field of times or "
			                     "numbers)", json_string_value(v));
		time_t back = (time_t)(t - lag_ms / 1000 - (lag_ms % 1000 ? 1 : 0));
		struct tm tm;
		if (!gmtime_r(&back, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			return err_set_class(err, EINVAL, "the cursor value '%.64s' is out of range",
			                     json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
		         json_integer_value(v) - (json_int_t)(lag_ms / 1000));
	} else if (json_is_real(v)) {
		snprintf(buf, sizeof buf, "%.17g", json_real_value(v) - lag_ms / 1000.0);
	} else {
		return err_set_class(err, EINVAL, "the cursor field holds neither a time nor a number "
		                     "(setting 'cursor' of the root stage)");
	}
	*out = strdup(buf);
	return *out ? 0 : err_set_class(err, ENOMEM, "out of memory");
}

int runstart_check_resume(const json_t *run, int64_t asked, char *err)
{
	if (!json_is_object(run)) {
		if (asked > 0)
			return err_set_class(err, ENOENT, "there is no import %" PRId64 " to resume "
			                     "(racectl status lists the imports)", asked);
		return err_set_class(err, ENOENT, "there is no interrupted import to resume: start a new "
		                     "one (racectl start-import)");
	}
	json_int_t id = json_integer_value(json_object_get(run, "id"));
	const char *status = json_string_value(json_object_get(run, "status"));
	if (!json_is_true(json_object_get(run, "resumable")))
		return err_set_class(err, EINVAL, "import %" JSON_INTEGER_FORMAT " ended '%s'%s: only an "
		                     "interrupted import, or one the database failed, can be resumed; "
		                     "start a new one (racectl start-import)",
		                     id, status ? status : "?",
		                     status && strcmp(status, "running") == 0 ? " (it is running now)" : "");
	if (json_is_true(json_object_get(run, "newer_success")))
		return err_set_class(err, ESTALE, "import %" JSON_INTEGER_FORMAT " is older than an import "
		                     "that succeeded since: resuming it would bring older data back; start "
		                     "a new one (racectl start-import)", id);
	return 0;
}

bool runstart_has_cursor(const struct stage_conf *root)
{
	return root && (strstr(root->url, "{" CONFIG_URL_LAST_SUCCESS "}") ||
	                strstr(root->url, "{" CONFIG_URL_CURSOR "}"));
}

int runstart_root_url(const struct stage_conf *root, const json_t *values, char **out,
                      char *err)
{
	char *last = NULL, *cur = NULL;
	int rc = 0;
	*out = NULL;
	if (strstr(root->url, "{" CONFIG_URL_LAST_SUCCESS "}"))
		rc = runstart_cursor_text(values ? json_object_get(values, "last_success") : NULL,
		                          values ? root->lag_ms : 0, root->initial, &last, err);
	if (rc == 0 && strstr(root->url, "{" CONFIG_URL_CURSOR "}"))
		rc = runstart_cursor_text(values ? json_object_get(values, "max") : NULL,
		                          values ? root->lag_ms : 0, root->initial, &cur, err);
	if (rc == 0) {
		struct urltemplate *t = urltemplate_parse(root->url, err);
		struct urltemplate_value v[] = {
			{CONFIG_URL_LAST_SUCCESS, last}, {CONFIG_URL_CURSOR, cur}};
		/* A name the url does not use is no harm; one it uses has a value. */
		size_t n = 0;
		struct urltemplate_value used[2];
		for (size_t i = 0; i < 2; i++)
			if (v[i].value)
				used[n++] = v[i];
		rc = t ? urltemplate_expand_named(t, used, n, out, err) : -EINVAL;
		urltemplate_free(t);
	}
	free(last);
	free(cur);
	return rc;
}
