/* urltemplate — see urltemplate.h.  A template is parsed once per import
 * into segments (literal text or a placeholder), so expanding it for each
 * of a million parent items does no parsing. */
#include "urltemplate.h"

#include "error.h"
#include "jsonptr.h"

#include <curl/curl.h>
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
			err_set(err, "url '%s': '{' at column %zu is never closed", text,
			        (size_t)(open - text) + 1);
			goto fail;
		}
		size_t n = (size_t)(close - open - 1);
		if (n == 0) {
			err_set(err, "url '%s': empty placeholder '{}' at column %zu", text,
			        (size_t)(open - text) + 1);
			goto fail;
		}
		if (memchr(open + 1, '{', n)) {
			err_set(err, "url '%s': '{' inside a placeholder at column %zu", text,
			        (size_t)(open - text) + 1);
			goto fail;
		}
		if (add_segment(t, open + 1, n, true) < 0)
			goto oom;
		const char *ph = t->segs[t->n_segs - 1].text;
		if (ph[0] == '/' && !jsonptr_valid(ph)) {
			err_set(err, "url '%s': '{%s}' is not a valid JSON pointer ('~' must be "
			        "followed by 0 or 1)", text, ph);
			goto fail;
		}
		p = close + 1;
	}
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

/* The value's text before encoding, in buf (scalars only). */
static const char *scalar_text(json_t *v, char *buf, size_t len, size_t *out_len)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		*out_len = json_string_length(v);
		return json_string_value(v);
	case JSON_INTEGER:
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(buf, len, "%.17g", json_real_value(v));
		break;
	case JSON_TRUE:
		snprintf(buf, len, "true");
		break;
	case JSON_FALSE:
		snprintf(buf, len, "false");
		break;
	default:
		return NULL;
	}
	*out_len = strlen(buf);
	return buf;
}

int urltemplate_expand(const struct urltemplate *t, json_t *item, char **out, char *err)
{
	/* Built on the stack: an 8 KiB malloc per URL is a large-bin
	 * allocation, which makes malloc consolidate its fast bins each time. */
	char url[URLTEMPLATE_MAX_URL];
	size_t used = 0;
	for (size_t i = 0; i < t->n_segs; i++) {
		const struct segment *s = &t->segs[i];
		const char *piece = s->text;
		char *escaped = NULL;
		if (s->placeholder) {
			json_t *v = s->text[0] == '/' ? jsonptr_get(item, s->text)
			                              : json_object_get(item, s->text);
			char num[64];
			size_t vlen = 0;
			const char *raw = v ? scalar_text(v, num, sizeof num, &vlen) : NULL;
			if (!raw) {
				return err_set(err, "url '%s': the parent item has %s at '{%s}'", t->source,
				               v ? "no string or number" : "no field", s->text);
			}
			if (vlen > URLTEMPLATE_MAX_URL ||
			    !(escaped = curl_easy_escape(NULL, raw, (int)vlen))) {
				return err_set(err, "url '%s': cannot encode the value of '{%s}'", t->source,
				               s->text);
			}
			piece = escaped;
		}
		size_t n = strlen(piece);
		if (used + n >= URLTEMPLATE_MAX_URL) {
			curl_free(escaped);
			return err_set(err, "url '%s': the expanded URL is longer than %d bytes",
			               t->source, URLTEMPLATE_MAX_URL);
		}
		memcpy(url + used, piece, n);
		used += n;
		curl_free(escaped);
	}
	*out = strndup(url, used);
	if (!*out)
		return err_set(err, "out of memory");
	return 0;
}
