/* urlquery — see urlquery.h.
 *
 * Design: one walk over the query's parameters (query_walk) serves both
 * reading and writing; a parameter's name is compared decoded, so that
 * "page%5Bnumber%5D" and "page[number]" are one parameter. */
#include "urlquery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

bool urlquery_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > URLQUERY_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!unreserved((unsigned char)name[i]) && name[i] != '[' && name[i] != ']')
			return false;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s[0..len) percent-decoded into out (len + 1 bytes): its length, or -1
 * for a bad escape or an encoded NUL. */
static long decode(const char *s, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			out[o++] = s[i];
			continue;
		}
		if (i + 2 >= len)
			return -1;
		int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
		if (h < 0 || l < 0 || (h == 0 && l == 0))
			return -1;
		out[o++] = (char)(h * 16 + l);
		i += 2;
	}
	out[o] = '\0';
	return (long)o;
}

/* Where url's query is: [*q, *q + *qlen), after the '?'; *q NULL when the
 * URL has no '?' before its fragment. */
static void query_span(const char *url, const char **q, size_t *qlen)
{
	size_t before_frag = strcspn(url, "#");
	const char *mark = memchr(url, '?', before_frag);
	*q = mark ? mark + 1 : NULL;
	*qlen = mark ? before_frag - (size_t)(mark + 1 - url) : 0;
}

/* Whether the parameter p[0..len) is named name (decoded). */
static bool param_is(const char *p, size_t len, const char *name)
{
	size_t nlen = strcspn(p, "=&");
	if (nlen > len)
		nlen = len;
	if (nlen > 3 * URLQUERY_NAME_MAX)
		return false;
	char buf[3 * URLQUERY_NAME_MAX + 1];
	long d = decode(p, nlen, buf);
	return d >= 0 && strcmp(buf, name) == 0;
}

int urlquery_get(const char *url, const char *name, char **value, char *err)
{
	const char *q, *found = NULL;
	size_t qlen, flen = 0;
	*value = NULL;
	query_span(url, &q, &qlen);
	for (size_t i = 0; q && i <= qlen;) {
		size_t len = strcspn(q + i, "&#");
		if (i + len > qlen)
			len = qlen - i;
		if (len > 0 && param_is(q + i, len, name)) {
			found = q + i;
			flen = len;
		}
		i += len + 1;
	}
	if (!found)
		return 0;
	const char *eq = memchr(found, '=', flen);
	const char *v = eq ? eq + 1 : found + flen;
	size_t vlen = (size_t)(found + flen - v);
	char *out = malloc(vlen + 1);
	if (!out)
		return err_set_class(err, ENOMEM, "out of memory");
	if (decode(v, vlen, out) < 0) {
		free(out);
		return err_set_class(err, EINVAL, "the query parameter '%s' has a bad %%-escape or "
		                     "an encoded NUL", name);
	}
	*value = out;
	return 0;
}

/* name=value, value percent-encoded, at out (room: strlen(name) + 1 +
 * 3 * strlen(value)); returns the bytes written. */
static size_t write_param(char *out, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = strlen(name);
	memcpy(out, name, o);
	out[o++] = '=';
	for (const unsigned char *v = (const unsigned char *)value; *v; v++) {
		if (unreserved(*v)) {
			out[o++] = (char)*v;
		} else {
			out[o++] = '%';
			out[o++] = hex[*v >> 4];
			out[o++] = hex[*v & 15];
		}
	}
	return o;
}

int urlquery_set(const char *url, const char *name, const char *value, char **out, char *err)
{
	const char *q;
	size_t qlen, ulen = strlen(url);
	query_span(url, &q, &qlen);
	char *s = malloc(ulen + 2 + strlen(name) + 1 + 3 * strlen(value) + 1);
	if (!s)
		return err_set_class(err, ENOMEM, "out of memory");
	size_t head = q ? (size_t)(q - url) : strcspn(url, "#"), o = head;
	memcpy(s, url, head);
	if (!q)
		s[o++] = '?';
	bool set = false, first = true;
	for (size_t i = 0; q && i <= qlen;) {
		size_t len = strcspn(q + i, "&#");
		if (i + len > qlen)
			len = qlen - i;
		bool match = len > 0 && param_is(q + i, len, name);
		if (!match || !set) {
			if (!first)
				s[o++] = '&';
			first = false;
			if (match)
				o += write_param(s + o, name, value);
			else {
				memcpy(s + o, q + i, len);
				o += len;
			}
			set = set || match;
		}
		i += len + 1;
	}
	if (!set) {
		if (!first && q && qlen > 0)
			s[o++] = '&';
		o += write_param(s + o, name, value);
	}
	const char *tail = q ? q + qlen : url + head;
	size_t tlen = strlen(tail);
	memcpy(s + o, tail, tlen + 1);
	*out = s;
	return 0;
}
