/* urltemplate — see urltemplate.h.  A template is parsed once per import
 * into segments (literal text or a placeholder), so expanding it for each
 * of a million parent items does no parsing. */
#include "urltemplate.h"

#include "error.h"
#include "jsonptr.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct segment {
	char *text;        /* literal text, or the placeholder without braces */
	bool placeholder;
};

struct urltemplate {
	char *source;
	struct segment *segs;
	size_t n_segs;
	size_t n_placeholders;
};

void urltemplate_free(struct urltemplate *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_segs; i++)
		free(t->segs[i].text);
	free(t->segs);
	free(t->source);
	free(t);
}

static int add_segment(struct urltemplate *t, const char *s, size_t len, bool placeholder)
{
	if (len == 0)
		return 0;
	char *text = strndup(s, len);
	if (!text)
		return -1;
	t->segs[t->n_segs].text = text;
	t->segs[t->n_segs].placeholder = placeholder;
	t->n_segs++;
	if (placeholder)
		t->n_placeholders++;
	return 0;
}

struct urltemplate *urltemplate_parse(const char *text, char *err)
{
	enum urltemplate_fault fault;
	return urltemplate_parse_fault(text, &fault, err);
}

struct urltemplate *urltemplate_parse_fault(const char *text, enum urltemplate_fault *fault,
                                            char *err)
{
	*fault = URLTEMPLATE_NO_MEMORY;
	struct urltemplate *t = calloc(1, sizeof *t);
	size_t len = strlen(text);
	if (!t || !(t->source = strdup(text)) ||
	    /* at most one segment per character, plus one */
	    !(t->segs = calloc(len + 1, sizeof *t->segs))) {
		urltemplate_free(t);
		err_set(err, "out of memory");
		return NULL;
	}
	const char *p = text;
	while (*p) {
		const char *open = strchr(p, '{');
		if (!open) {
			if (add_segment(t, p, strlen(p), false) < 0)
				goto oom;
			break;
		}
		if (add_segment(t, p, (size_t)(open - p), false) < 0)
			goto oom;
		const char *close = strchr(open + 1, '}');
		if (!close) {
			*fault = URLTEMPLATE_UNCLOSED;
			err_set(err, "url '%s': '{' at column %zu is never closed", text,
			        (size_t)(open - text) + 1);
			goto fail;
		}
		size_t n = (size_t)(close - open - 1);
		if (n == 0) {
			*fault = URLTEMPLATE_EMPTY;
			err_set(err, "url '%s': empty placeholder '{}' at column %zu", text,
			        (size_t)(open - text) + 1);
			goto fail;
		}
		if (memchr(open + 1, '{', n)) {
			*fault = URLTEMPLATE_UNCLOSED;
			err_set(err, "url '%s': '{' inside a placeholder at column %zu", text,
			        (size_t)(open - text) + 1);
			goto fail;
		}
		if (add_segment(t, open + 1, n, true) < 0)
			goto oom;
		const char *ph = t->segs[t->n_segs - 1].text;
		if (ph[0] == '/' && !jsonptr_valid(ph)) {
			*fault = URLTEMPLATE_BAD_POINTER;
			err_set(err, "url '%s': '{%s}' is not a valid JSON pointer ('~' must be "
			        "followed by 0 or 1)", text, ph);
			goto fail;
		}
		p = close + 1;
	}
	*fault = URLTEMPLATE_OK;
	return t;
oom:
	err_set(err, "out of memory");
fail:
	urltemplate_free(t);
	return NULL;
}

size_t urltemplate_placeholders(const struct urltemplate *t)
{
	return t->n_placeholders;
}

const char *urltemplate_placeholder(const struct urltemplate *t, size_t i)
{
	for (size_t s = 0; s < t->n_segs; s++)
		if (t->segs[s].placeholder && i-- == 0)
			return t->segs[s].text;
	return NULL;
}

/* Append v[0..n) percent-encoded (all but RFC 3986's unreserved
 * characters, as curl_easy_escape does) at url+*used; -1 if it does not fit. */
static int put_escaped(char *url, size_t *used, const char *v, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t u = *used;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		            c == '-' || c == '.' || c == '_' || c == '~';
		if (u + (keep ? 1 : 3) >= URLTEMPLATE_MAX_URL)
			return -1;
		if (keep) {
			url[u++] = (char)c;
		} else {
			url[u++] = '%';
			url[u++] = hex[c >> 4];
			url[u++] = hex[c & 15];
		}
	}
	*used = u;
	return 0;
}

static int put_literal(char *url, size_t *used, const char *text)
{
	size_t n = strlen(text);
	if (*used + n >= URLTEMPLATE_MAX_URL)
		return -1;
	memcpy(url + *used, text, n);
	*used += n;
	return 0;
}

/* Where placeholders get their values: the parent item, or named values. */
struct source {
	const struct jsondoc *d;
	uint32_t item;
	const struct urltemplate_value *named;  /* NULL: from d */
	size_t n_named;
};

/* The placeholder's value, malloc'd, its length in *vlen; -1 with err. */
static int lookup(const struct urltemplate *t, const struct source *src, const char *name, char **raw,
                  size_t *vlen, char *err)
{
	if (src->named) {
		for (size_t i = 0; i < src->n_named; i++) {
			if (strcmp(src->named[i].name, name) != 0)
				continue;
			if (!src->named[i].value)
				break;
			*vlen = strlen(src->named[i].value);
			if (!(*raw = strdup(src->named[i].value)))
				return err_set(err, "out of memory");
			return 0;
		}
		return err_set(err, "url '%s': no value for '{%s}'", t->source, name);
	}
	uint32_t v = JSONDOC_ABSENT;
	if (src->d)
		v = name[0] == '/' ? jsondoc_get(src->d, src->item, name)
		                   : jsondoc_member(src->d, src->item, name, strlen(name));
	enum jsondoc_type type = jsondoc_type(src->d, v);
	if (type != JSONDOC_STRING && type != JSONDOC_NUMBER && type != JSONDOC_TRUE && type != JSONDOC_FALSE)
		return err_set(err, "url '%s': the parent item has %s at '{%s}'", t->source,
		               type ? "no string or number" : "no field", name);
	if (!(*raw = jsondoc_scalar(src->d, v, vlen)))
		return err_set(err, "out of memory");
	return 0;
}

static int expand(const struct urltemplate *t, const struct source *src, char **out, char *err)
{
	/* Built on the stack: an 8 KiB malloc per URL is a large-bin
	 * allocation, which makes malloc consolidate its fast bins each time. */
	char url[URLTEMPLATE_MAX_URL];
	size_t used = 0;
	bool in_path = true; /* until a literal '?' (values are escaped) */
	for (size_t i = 0; i < t->n_segs; i++) {
		const struct segment *s = &t->segs[i];
		if (!s->placeholder) {
			if (put_literal(url, &used, s->text) < 0)
				goto too_long;
			in_path = in_path && !strchr(s->text, '?');
			continue;
		}
		size_t vlen;
		char *raw;
		if (lookup(t, src, s->text, &raw, &vlen, err) < 0)
			return -1;
		if (vlen == 0 && in_path) {
			free(raw);
			return err_set(err, "url '%s': %s '{%s}' is empty, and an empty "
			               "path segment would ask for another resource", t->source,
			               src->named ? "the value of" : "the parent item's", s->text);
		}
		int rc;
		if (in_path && vlen <= 2 && strspn(raw, ".") == vlen)
			/* Escaped: as a segment of its own, "." or ".." would be
			 * removed by URL resolution and climb out of the template. */
			rc = put_literal(url, &used, vlen == 1 ? "%2E" : "%2E%2E");
		else
			rc = put_escaped(url, &used, raw, vlen);
		free(raw);
		if (rc < 0)
			goto too_long;
	}
	*out = strndup(url, used);
	if (!*out)
		return err_set(err, "out of memory");
	return 0;
too_long:
	return err_set(err, "url '%s': the expanded URL is longer than %d bytes", t->source,
	               URLTEMPLATE_MAX_URL);
}

int urltemplate_expand(const struct urltemplate *t, const struct jsondoc *d, uint32_t item,
                       char **out, char *err)
{
	struct source src = {.d = d, .item = item};
	return expand(t, &src, out, err);
}

int urltemplate_expand_named(const struct urltemplate *t, const struct urltemplate_value *values, size_t n,
                             char **out, char *err)
{
	static const struct urltemplate_value none[1];
	struct source src = {.named = values ? values : none, .n_named = values ? n : 0};
	return expand(t, &src, out, err);
}
