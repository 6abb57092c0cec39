/* urltemplate — see urltemplate.h.  A template is parsed once per import
 * into segments (literal text or a placeholder), so expanding it for each
 * of a million parent items does no parsing. */
#include "urltemplate.h"

#include "error.h"
#include "jsonnum.h"
#include "jsonptr.h"
#include "suggest.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct segment {
	char *text;        /* literal text, or the placeholder without braces */
	bool placeholder;
	size_t scope_len;  /* "races" of "races.id": its length; 0 = the parent item */
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
		struct segment *seg = &t->segs[t->n_segs - 1];
		const char *ph = seg->text;
		/* "{stage.field}": a field of an ancestor's item; a pointer
		 * starts with '/', so "{/a.b}" is always the parent's. */
		const char *dot = ph[0] == '/' ? NULL : strchr(ph, '.');
		if (dot) {
			seg->scope_len = (size_t)(dot - ph);
			if (seg->scope_len == 0 || !dot[1]) {
				*fault = URLTEMPLATE_BAD_SCOPE;
				err_set(err, "url '%s': '{%s}' names %s (expected {stage.field} or "
				        "{stage./json/pointer})", text, ph, seg->scope_len ? "no field" : "no stage");
				goto fail;
			}
			ph = dot + 1;
		}
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

static const struct segment *placeholder_seg(const struct urltemplate *t, size_t i)
{
	for (size_t s = 0; s < t->n_segs; s++)
		if (t->segs[s].placeholder && i-- == 0)
			return &t->segs[s];
	return NULL;
}

size_t urltemplate_scope(const struct urltemplate *t, size_t i, const char **stage)
{
	const struct segment *s = placeholder_seg(t, i);
	*stage = s && s->scope_len ? s->text : NULL;
	return s ? s->scope_len : 0;
}

/* The field of segment s: after "stage." when it names one. */
static const char *seg_field(const struct segment *s)
{
	return s->scope_len ? s->text + s->scope_len + 1 : s->text;
}

const char *urltemplate_field(const struct urltemplate *t, size_t i)
{
	const struct segment *s = placeholder_seg(t, i);
	return s ? seg_field(s) : NULL;
}

uint32_t urltemplate_lookup(const struct jsondoc *d, uint32_t item, const char *field)
{
	if (!d)
		return JSONDOC_ABSENT;
	return field[0] == '/' ? jsondoc_get(d, item, field) : jsondoc_member(d, item, field, strlen(field));
}

bool urltemplate_is_value(const struct jsondoc *d, uint32_t v)
{
	enum jsondoc_type type = jsondoc_type(d, v);
	return type == JSONDOC_STRING || type == JSONDOC_NUMBER || type == JSONDOC_TRUE ||
	       type == JSONDOC_FALSE;
}

int urltemplate_value(const struct jsondoc *d, uint32_t v, char **out, size_t *len)
{
	*out = NULL;
	if (jsondoc_type(d, v) != JSONDOC_NUMBER) {
		size_t n;
		if (!urltemplate_is_value(d, v) || !(*out = jsondoc_scalar(d, v, &n)))
			return -1;
		if (n >= URLTEMPLATE_MAX_URL) {
			free(*out);
			*out = NULL;
			return URLTEMPLATE_VALUE_TOO_LONG;
		}
		*len = n;
		return 0;
	}
	/* As jsonb gives it back after a 304: what the provider wrote (1e3)
	 * would make another URL than the stored row (1000). */
	size_t n;
	const char *text = jsondoc_text(d, v, &n);
	size_t want = jsonnum_canon(text, n, NULL, 0);
	if (want == JSONNUM_INVALID)
		return -1; /* jsondoc checked the grammar */
	if (want >= URLTEMPLATE_MAX_URL)
		return URLTEMPLATE_VALUE_TOO_LONG;
	if (!(*out = malloc(want + 1)))
		return -1;
	*len = jsonnum_canon(text, n, *out, want + 1);
	return 0;
}

int urltemplate_nearest(const struct jsondoc *d, uint32_t item, const char *field, char *out,
                        size_t n)
{
	char want[JSONPTR_TOKEN_MAX];
	uint32_t obj = item;
	if (!d || n == 0)
		return -1;
	if (field[0] == '/') {
		/* The pointer's siblings: the members of the object its last
		 * token would be in. */
		const char *last = strrchr(field, '/');
		char parent[URLTEMPLATE_MAX_URL];
		size_t plen = (size_t)(last - field);
		if (plen >= sizeof parent)
			return -1;
		memcpy(parent, field, plen);
		parent[plen] = '\0';
		obj = jsondoc_get(d, item, parent);
		const char *p = last + 1;
		int tl = jsonptr_token(&p, want);
		if (tl < 0)
			return -1;
		want[tl] = '\0';
	} else if (snprintf(want, sizeof want, "%s", field) >= (int)sizeof want) {
		return -1;
	}
	if (jsondoc_type(d, obj) != JSONDOC_OBJECT)
		return -1;
	size_t best = SIZE_MAX;
	for (uint32_t v = jsondoc_first(d, obj); v != JSONDOC_ABSENT; v = jsondoc_next(d, obj, v)) {
		size_t klen;
		char *key = jsondoc_scalar(d, jsondoc_member_name(d, v), &klen);
		if (!key)
			continue;
		size_t dist = suggest_distance(want, key);
		if (dist < best && klen < n) {
			best = dist;
			memcpy(out, key, klen + 1);
		}
		free(key);
	}
	return best == SIZE_MAX ? -1 : 0;
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

/* Where placeholders get their values: the parent item and the caller's
 * values for some, or named values. */
struct source {
	const struct jsondoc *d;
	uint32_t item;
	const struct urltemplate_arg *args; /* one per placeholder, or NULL */
	const struct urltemplate_value *named;  /* NULL: from d */
	size_t n_named;
	size_t *missing;                    /* the placeholder with no field, or NULL */
};

/* The placeholder's (i-th, segment s) value in *val, its length in *vlen:
 * the caller's own (an argument's value: borrowed, *raw NULL), or
 * malloc'd into *raw; -1 with err. */
static int lookup(const struct urltemplate *t, const struct source *src, size_t i,
                  const struct segment *s, const char **val, char **raw, size_t *vlen, char *err)
{
	*raw = NULL;
	const char *name = s->text;
	if (src->named) {
		for (size_t k = 0; k < src->n_named; k++) {
			if (strcmp(src->named[k].name, name) != 0)
				continue;
			if (!src->named[k].value)
				break;
			*vlen = strlen(src->named[k].value);
			if (!(*raw = strdup(src->named[k].value)))
				return err_set(err, "out of memory");
			*val = *raw;
			return 0;
		}
		return err_set(err, "url '%s': no value for '{%s}'", t->source, name);
	}
	const struct urltemplate_arg *a = src->args ? &src->args[i] : NULL;
	if (a && a->kind != URLTEMPLATE_FROM_ITEM) {
		if (a->kind == URLTEMPLATE_VALUE) {
			/* not copied: it outlives the expansion */
			*vlen = a->len;
			*val = a->value;
			return 0;
		}
		if (a->kind == URLTEMPLATE_MISSING && src->missing)
			*src->missing = i;
		return err_set(err, "url '%s': the %.*s item %s at '{%s}'", t->source, (int)s->scope_len,
		               s->text, a->kind == URLTEMPLATE_MISSING ? "has no string or number"
		                                                       : "has a value too long for a URL",
		               name);
	}
	uint32_t v = urltemplate_lookup(src->d, src->item, seg_field(s));
	enum jsondoc_type type = jsondoc_type(src->d, v);
	if (!urltemplate_is_value(src->d, v)) {
		if (!type && src->missing)
			*src->missing = i;
		return err_set(err, "url '%s': the parent item has %s at '{%s}'", t->source,
		               type ? "no string or number" : "no field", name);
	}
	int rc = urltemplate_value(src->d, v, raw, vlen);
	if (rc == URLTEMPLATE_VALUE_TOO_LONG)
		return err_set(err, "url '%s': the parent item's value at '{%s}' is %d bytes or longer, "
		               "which no URL can hold", t->source, name, URLTEMPLATE_MAX_URL);
	if (rc < 0)
		return err_set(err, "out of memory");
	*val = *raw;
	return 0;
}

static int expand(const struct urltemplate *t, const struct source *src, char **out, char *err)
{
	/* Built on the stack: an 8 KiB malloc per URL is a large-bin
	 * allocation, which makes malloc consolidate its fast bins each time. */
	char url[URLTEMPLATE_MAX_URL];
	size_t used = 0;
	bool in_path = true; /* until a literal '?' (values are escaped) */
	size_t ph = 0;
	if (src->missing)
		*src->missing = SIZE_MAX;
	for (size_t i = 0; i < t->n_segs; i++) {
		const struct segment *s = &t->segs[i];
		if (!s->placeholder) {
			if (put_literal(url, &used, s->text) < 0)
				goto too_long;
			in_path = in_path && !strchr(s->text, '?');
			continue;
		}
		size_t vlen;
		const char *val = NULL;
		char *raw;
		if (lookup(t, src, ph++, s, &val, &raw, &vlen, err) < 0)
			return -1;
		if (vlen == 0 && in_path) {
			free(raw);
			return err_set(err, "url '%s': %s '{%s}' is empty, and an empty "
			               "path segment would ask for another resource", t->source,
			               src->named ? "the value of" : "the parent item's", s->text);
		}
		int rc;
		if (in_path && vlen <= 2 && val[0] == '.' && val[vlen - 1] == '.')
			/* Escaped: as a segment of its own, "." or ".." would be
			 * removed by URL resolution and climb out of the template. */
			rc = put_literal(url, &used, vlen == 1 ? "%2E" : "%2E%2E");
		else
			rc = put_escaped(url, &used, val, vlen);
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

int urltemplate_expand_args(const struct urltemplate *t, const struct jsondoc *d, uint32_t item,
                            const struct urltemplate_arg *args, char **out, size_t *missing,
                            char *err)
{
	struct source src = {.d = d, .item = item, .args = args, .missing = missing};
	return expand(t, &src, out, err);
}

int urltemplate_expand_named(const struct urltemplate *t, const struct urltemplate_value *values, size_t n,
                             char **out, char *err)
{
	static const struct urltemplate_value none[1];
	struct source src = {.named = values ? values : none, .n_named = values ? n : 0};
	return expand(t, &src, out, err);
}
