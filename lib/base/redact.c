/* redact — secrets masked in conninfos and free text; see redact.h. */
#include "redact.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MASK_LEN (sizeof REDACT_MASK - 1)

/* Always secret, whatever libpq's table says (or when it cannot be read). */
static const char *const always_secret[] = {"password", "sslpassword"};

static char secret_words[REDACT_KEYWORDS_MAX][REDACT_KEYWORD_LEN];
static size_t n_secret_words;
static bool secret_words_read;

/* Query parameters named secret by the configuration (redact_add_param). */
static char secret_params[REDACT_PARAMS_MAX][REDACT_KEYWORD_LEN];
static size_t n_secret_params;

/* The bytes a secret option's or parameter's name can start with, either
 * case: redact_buf() looks for a name only where one of them is, so that
 * a text with none (most URLs) costs a table look-up a byte, not a name
 * copied and compared with every secret word (a URL a page and an input
 * went through it: about 1,000 instructions each). */
static bool name_start[256];

static void name_start_add(const char *name)
{
	unsigned char c = (unsigned char)name[0];
	name_start[c] = true;
	if (c >= 'a' && c <= 'z')
		name_start[c - 'a' + 'A'] = true;
	else if (c >= 'A' && c <= 'Z')
		name_start[c - 'A' + 'a'] = true;
}

static void secret_word_add(const char *kw)
{
	if (n_secret_words >= REDACT_KEYWORDS_MAX || strlen(kw) >= REDACT_KEYWORD_LEN)
		return;
	for (size_t i = 0; i < n_secret_words; i++)
		if (strcasecmp(secret_words[i], kw) == 0)
			return;
	memcpy(secret_words[n_secret_words++], kw, strlen(kw) + 1);
	name_start_add(kw);
}

/* libpq's option table, once; on failure (out of memory) the fixed list
 * serves and the table is read again next time. */
static void secret_words_load(void)
{
	if (secret_words_read)
		return;
	for (size_t i = 0; i < sizeof always_secret / sizeof always_secret[0]; i++)
		secret_word_add(always_secret[i]);
	PQconninfoOption *opts = PQconninfoParse("", NULL);
	if (!opts)
		return;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->dispchar && o->dispchar[0] == '*')
			secret_word_add(o->keyword);
	PQconninfoFree(opts);
	secret_words_read = true;
}

bool redact_is_secret_option(const char *keyword)
{
	secret_words_load();
	for (size_t i = 0; i < n_secret_words; i++)
		if (strcasecmp(secret_words[i], keyword) == 0)
			return true;
	return false;
}

static bool is_param_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '.';
}

int redact_add_param(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len >= REDACT_KEYWORD_LEN)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!is_param_char(name[i]))
			return -1;
	for (size_t i = 0; i < n_secret_params; i++)
		if (strcasecmp(secret_params[i], name) == 0)
			return 0;
	if (n_secret_params >= REDACT_PARAMS_MAX)
		return -1;
	memcpy(secret_params[n_secret_params++], name, len + 1);
	name_start_add(name);
	return 0;
}

static bool is_secret_param(const char *name)
{
	for (size_t i = 0; i < n_secret_params; i++)
		if (strcasecmp(secret_params[i], name) == 0)
			return true;
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A secret span [*a, *b) of a URL's password when text + i is "://".  In
 * a text that fills its buffer (cut, maybe) an authority that runs to the
 * end may have lost its "@": all after its ":" goes. */
static bool url_password_at(const char *t, size_t i, bool full, size_t *a, size_t *b)
{
	if (i == 0 || !is_word(t[i - 1]) || strncmp(t + i, "://", 3) != 0)
		return false;
	size_t start = i + 3, end = start, at = 0;
	bool have_at = false;
	for (; t[end] && !is_space(t[end]) && !strchr("/?#\"<>", t[end]); end++)
		if (t[end] == '@') {
			at = end;
			have_at = true;
		}
	if (!have_at && full && !t[end])
		at = end;
	else if (!have_at)
		return false;
	const char *colon = memchr(t + start, ':', at - start);
	if (!colon || (size_t)(colon - t) + 1 == at)
		return false; /* a user without a password (or an empty one) */
	*a = (size_t)(colon - t) + 1;
	*b = at;
	return true;
}

/* The end of a value starting at t + j: '...' quoted (the quotes stay), or
 * up to white space (and "&" or "#" in a URI query) less trailing
 * punctuation; a backslash escapes the next character.  A '"' is part of
 * the value, as libpq reads it: text is masked before it is encoded
 * (control replies mask each string), never as JSON. */
static void value_span(const char *t, size_t j, bool in_query, size_t *a, size_t *b)
{
	bool quoted = t[j] == '\'';
	size_t k = quoted ? j + 1 : j;
	*a = k;
	for (; t[k]; k++) {
		if (t[k] == '\\' && t[k + 1]) {
			k++;
			continue;
		}
		if (quoted ? t[k] == '\'' : is_space(t[k]) || (in_query && (t[k] == '&' || t[k] == '#')))
			break;
	}
	/* "password=***, schema ...": the sentence's punctuation stays */
	while (!quoted && k > *a + 1 && strchr(",;.)", t[k - 1]))
		k--;
	*b = k;
}

/* The name of chars accepted by is_name starting at t + i (a name of its
 * own: no such char before it) into kw; its end, or 0 when there is none
 * or it is too long. */
static size_t name_at(const char *t, size_t i, bool (*is_name)(char), char kw[REDACT_KEYWORD_LEN])
{
	if ((i > 0 && is_name(t[i - 1])) || !is_name(t[i]))
		return 0;
	size_t w = i;
	while (is_name(t[w]))
		w++;
	if (w - i >= REDACT_KEYWORD_LEN)
		return 0;
	memcpy(kw, t + i, w - i);
	kw[w - i] = '\0';
	return w;
}

/* Where a secret name starting at t + i ends: a libpq secret option (a
 * word) or a configured secret parameter (whose names may hold '-' and
 * '.'); 0 when none starts there. */
static size_t secret_name_at(const char *t, size_t i)
{
	char kw[REDACT_KEYWORD_LEN];
	size_t w = name_at(t, i, is_word, kw);
	if (w && redact_is_secret_option(kw))
		return w;
	w = n_secret_params ? name_at(t, i, is_param_char, kw) : 0;
	return w && is_secret_param(kw) ? w : 0;
}

/* A secret value [*a, *b) when a secret keyword starts at t + i. */
static bool keyword_value_at(const char *t, size_t i, size_t *a, size_t *b)
{
	size_t w = secret_name_at(t, i);
	if (!w)
		return false;
	size_t j = w;
	while (is_space(t[j]))
		j++;
	if (t[j] != '=')
		return false;
	j++;
	while (is_space(t[j]))
		j++;
	value_span(t, j, i > 0 && (t[i - 1] == '?' || t[i - 1] == '&'), a, b);
	return *b > *a;
}

/* Replaces [a, b) of buf (len bytes of a string in size) with the mask,
 * cutting the tail if it no longer fits; returns the new length. */
static size_t splice_mask(char *buf, size_t size, size_t len, size_t a, size_t b)
{
	if (a + MASK_LEN + 1 > size) {
		buf[a] = '\0';
		return a;
	}
	size_t tail = len - b;
	if (a + MASK_LEN + tail + 1 > size)
		tail = size - 1 - a - MASK_LEN;
	memmove(buf + a + MASK_LEN, buf + b, tail);
	memcpy(buf + a, REDACT_MASK, MASK_LEN);
	buf[a + MASK_LEN + tail] = '\0';
	return a + MASK_LEN + tail;
}

size_t redact_buf(char *buf, size_t size)
{
	if (!buf || size == 0)
		return 0;
	size_t len = strnlen(buf, size - 1), masked = 0;
	buf[len] = '\0';
	secret_words_load(); /* name_start holds the words' first bytes */
	for (size_t i = 0; i < len;) {
		size_t a, b;
		bool full = len == size - 1; /* cut, maybe: by the caller or a mask */
		/* A URL's password starts at "://", a secret's value after its
		 * name: neither can start elsewhere. */
		if ((buf[i] != ':' && !name_start[(unsigned char)buf[i]]) ||
		    (!url_password_at(buf, i, full, &a, &b) && !keyword_value_at(buf, i, &a, &b))) {
			i++;
			continue;
		}
		if (b - a != MASK_LEN || memcmp(buf + a, REDACT_MASK, MASK_LEN) != 0) {
			len = splice_mask(buf, size, len, a, b);
			masked++;
		}
		i = a + MASK_LEN;
	}
	return masked;
}

size_t redact_literal(char *buf, size_t size, const char *secret)
{
	if (!buf || size == 0 || !secret || !*secret)
		return 0;
	size_t len = strnlen(buf, size - 1), n = strlen(secret), masked = 0;
	buf[len] = '\0';
	for (char *at = strstr(buf, secret); at; at = strstr(at, secret)) {
		size_t a = (size_t)(at - buf);
		len = splice_mask(buf, size, len, a, a + n);
		masked++;
		at = buf + (a + MASK_LEN <= len ? a + MASK_LEN : len);
	}
	/* A text that fills its buffer may end in the start of one, cut. */
	for (size_t k = n - 1; len == size - 1 && k > 0; k--)
		if (k <= len && memcmp(buf + len - k, secret, k) == 0) {
			buf[len - k] = '\0';
			break;
		}
	return masked;
}

char *redact_dup(const char *text)
{
	/* Each masked span is at least one byte: the text at most triples. */
	size_t len = strlen(text), size = 3 * len + 1;
	char *out = malloc(size);
	if (!out)
		return NULL;
	memcpy(out, text, len + 1);
	redact_buf(out, size);
	return out;
}

char *redact_take(char *text)
{
	if (!text)
		return NULL;
	char *out = redact_dup(text);
	free(text);
	return out;
}

/* value as libpq reads it back: quoted when empty or holding white space,
 * a quote or a backslash. */
static void put_value(FILE *f, const char *v)
{
	bool plain = *v != '\0';
	for (const char *p = v; plain && *p; p++)
		plain = !is_space(*p) && *p != '\'' && *p != '\\';
	if (plain) {
		fputs(v, f);
		return;
	}
	fputc('\'', f);
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			fputc('\\', f);
		fputc(*p, f);
	}
	fputc('\'', f);
}

char *redact_conninfo(const char *conninfo)
{
	PQconninfoOption *opts = conninfo ? PQconninfoParse(conninfo, NULL) : NULL;
	if (!opts)
		return strdup("(unparsable conninfo)");
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	for (PQconninfoOption *o = opts; f && o->keyword; o++) {
		if (!o->val)
			continue;
		fprintf(f, "%s%s=", ftell(f) > 0 ? " " : "", o->keyword);
		if ((o->dispchar && o->dispchar[0] == '*') || redact_is_secret_option(o->keyword))
			fputs(REDACT_MASK, f);
		else
			put_value(f, o->val);
	}
	PQconninfoFree(opts);
	if (!f || fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
