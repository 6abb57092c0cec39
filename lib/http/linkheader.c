/* linkheader — see linkheader.h.
 *
 * One pass over the value with a cursor; every loop advances it, so any
 * input ends.  Quoted parameter values may hold commas and semicolons and
 * backslash escapes. */
#include "linkheader.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const char *skip_ws(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static bool is_token_char(char c)
{
	return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether the space-separated relation types in [v, end) include "next". */
static bool rel_lists_next(const char *v, const char *end)
{
	while (v < end) {
		while (v < end && isspace((unsigned char)*v))
			v++;
		const char *w = v;
		while (v < end && !isspace((unsigned char)*v))
			v++;
		if (v - w == 4 && strncasecmp(w, "next", 4) == 0)
			return true;
	}
	return false;
}

/* A parameter's value after '=': quoted (up to the closing quote, escapes
 * skipped) or a bare token.  Sets [*v0, *v1) and returns the cursor. */
static const char *param_value(const char *s, const char *end, const char **v0, const char **v1)
{
	if (s < end && *s == '"') {
		*v0 = ++s;
		while (s < end && *s != '"')
			s += (*s == '\\' && s + 1 < end) ? 2 : 1;
		*v1 = s < end ? s : end;
		return s < end ? s + 1 : s;
	}
	*v0 = s;
	while (s < end && *s != ';' && *s != ',' && !isspace((unsigned char)*s))
		s++;
	*v1 = s;
	return s;
}

/* The parameters after a link's target, up to the ',' ending the
 * link-value (or end): sets *next when one is rel listing "next". */
static const char *link_params(const char *s, const char *end, bool *next)
{
	for (;;) {
		s = skip_ws(s, end);
		if (s >= end || *s == ',')
			return s;
		if (*s != ';') { /* junk: skip this link-value */
			while (s < end && *s != ',')
				s++;
			return s;
		}
		s = skip_ws(s + 1, end);
		const char *n0 = s;
		while (s < end && is_token_char(*s))
			s++;
		const char *n1 = s;
		const char *v0 = NULL, *v1 = NULL;
		s = skip_ws(s, end);
		if (s < end && *s == '=')
			s = param_value(skip_ws(s + 1, end), end, &v0, &v1);
		if (n1 - n0 == 3 && strncasecmp(n0, "rel", 3) == 0 && v0 && rel_lists_next(v0, v1))
			*next = true;
		if (n0 == n1 && !v0 && s < end && *s != ';' && *s != ',')
			s++; /* stray character: make progress */
	}
}

bool linkheader_next(const char *value, size_t len, const char **target, size_t *target_len)
{
	const char *s = value, *end = value + len;

	while (s < end) {
		while (s < end && (*s == ',' || isspace((unsigned char)*s)))
			s++;
		if (s >= end || *s != '<')
			return false;
		const char *u0 = s + 1;
		const char *u1 = memchr(u0, '>', (size_t)(end - u0));
		if (!u1)
			return false;
		bool next = false;
		s = link_params(u1 + 1, end, &next);
		if (next) {
			*target = u0;
			*target_len = (size_t)(u1 - u0);
			return true;
		}
	}
	return false;
}
