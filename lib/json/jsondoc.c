/* jsondoc — see jsondoc.h.  The parser is a loop over an explicit stack of
 * open containers, so a deeply nested document cannot exhaust the C stack;
 * its cost is one pass over the bytes plus one 20-byte token a value. */
#include "jsondoc.h"

#include "error.h"
#include "jsonptr.h"

#include <stdlib.h>
#include <string.h>

#define F_ESC 1 /* a string with backslash escapes */
#define F_NUL 2 /* \u0000 in this string, or in a string inside this value */

#define INITIAL_TOKENS 256

struct tok {
	uint32_t start; /* offset of the value's first byte */
	uint32_t len;   /* bytes of its text */
	uint32_t end;   /* index of the first token after its subtree */
	uint32_t count; /* elements or members */
	uint8_t type;
	uint8_t flags;
};

struct jsondoc {
	const char *text;
	size_t len;
	struct tok *tok;
	uint32_t n;
	size_t cap;
	uint32_t stack[JSONDOC_MAX_DEPTH]; /* open containers */
};

struct jsondoc *jsondoc_new(void)
{
	return calloc(1, sizeof(struct jsondoc));
}

void jsondoc_free(struct jsondoc *d)
{
	if (!d)
		return;
	free(d->tok);
	free(d);
}

_Static_assert(sizeof(struct tok) == JSONDOC_TOKEN_BYTES, "JSONDOC_TOKEN_BYTES is a token's size");

/* Every value starts the text or follows '[', ',' or ':' and every member
 * name follows '{' or ',', so these four outside strings bound the tokens. */
void jsondoc_census(const char *text, size_t len, struct jsondoc_census *c)
{
	size_t tokens = 1, containers = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (in_string) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_string = false;
			continue;
		}
		switch (ch) {
		case '"': in_string = true; break;
		case '{': case '[': containers++; tokens++; break;
		case ',': case ':': tokens++; break;
		default: break;
		}
	}
	c->tokens = tokens;
	c->containers = containers;
}

int jsondoc_reserve(struct jsondoc *d, size_t n)
{
	if (n <= d->cap)
		return 0;
	if (n > UINT32_MAX - 1)
		return -1;
	struct tok *t = realloc(d->tok, n * sizeof *t);
	if (!t)
		return -1;
	d->tok = t;
	d->cap = n;
	return 0;
}

void jsondoc_trim(struct jsondoc *d, size_t keep_bytes)
{
	if (d && d->cap * sizeof *d->tok > keep_bytes) {
		free(d->tok);
		d->tok = NULL;
		d->cap = 0;
		d->n = 0;
	}
}

/* ---- parsing ---- */

/* Bytes a string holds as they are: printable ASCII but '"' and '\\'. */
static const uint8_t plain[256] = {
	['\x20'] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2f, '"' */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,            /* 0x30-0x3f */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,            /* 0x40-0x4f */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,            /* 0x50-0x5f, '\\' */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,            /* 0x60-0x6f */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,            /* 0x70-0x7f */
};

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static size_t skip_ws(const unsigned char *s, size_t len, size_t pos)
{
	while (pos < len && is_ws(s[pos]))
		pos++;
	return pos;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static int hex4(const unsigned char *s, size_t avail, uint32_t *out)
{
	uint32_t v = 0;
	if (avail < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];
		uint32_t x;
		if (c >= '0' && c <= '9')
			x = (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			x = (uint32_t)(c - 'A' + 10);
		else
			return -1;
		v = v << 4 | x;
	}
	*out = v;
	return 0;
}

/* The escape at s (its backslash first): the code point it stands for and
 * how many bytes it takes (12 for a surrogate pair); -1 when malformed. */
static int escape_at(const unsigned char *s, size_t avail, uint32_t *cp, size_t *used)
{
	if (avail < 2)
		return -1;
	switch (s[1]) {
	case '"': *cp = '"'; break;
	case '\\': *cp = '\\'; break;
	case '/': *cp = '/'; break;
	case 'b': *cp = '\b'; break;
	case 'f': *cp = '\f'; break;
	case 'n': *cp = '\n'; break;
	case 'r': *cp = '\r'; break;
	case 't': *cp = '\t'; break;
	case 'u': {
		uint32_t u, lo;
		if (hex4(s + 2, avail - 2, &u) < 0)
			return -1;
		if (u >= 0xdc00 && u <= 0xdfff)
			return -1; /* a low surrogate first */
		if (u >= 0xd800 && u <= 0xdbff) {
			if (avail < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, avail - 8, &lo) < 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return -1;
			*cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			*used = 12;
			return 0;
		}
		*cp = u;
		*used = 6;
		return 0;
	}
	default:
		return -1;
	}
	*used = 2;
	return 0;
}

static size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Scan the string whose opening quote is at pos.  Returns the offset after
 * its closing quote, or 0 with *what and *at describing the fault. */
static size_t scan_string(const unsigned char *s, size_t len, size_t pos, uint8_t *flags,
                          const char **what, size_t *at)
{
	size_t i = pos + 1;
	for (;;) {
		while (i < len && plain[s[i]])
			i++;
		if (i >= len) {
			*what = "unterminated string";
			*at = i;
			return 0;
		}
		unsigned char c = s[i];
		if (c == '"')
			return i + 1;
		if (c == '\\') {
			uint32_t cp;
			size_t used;
			if (escape_at(s + i, len - i, &cp, &used) < 0) {
				*what = "invalid escape in a string";
				*at = i;
				return 0;
			}
			*flags |= F_ESC;
			if (cp == 0)
				*flags |= F_NUL;
			i += used;
		} else if (c < 0x20) {
			*what = "control character in a string";
			*at = i;
			return 0;
		} else {
			size_t n = utf8_len(s + i, len - i);
			if (n == 0) {
				*what = "invalid UTF-8 in a string";
				*at = i;
				return 0;
			}
			i += n;
		}
	}
}

/* Scan the number at pos (RFC 8259's grammar); its end, or 0. */
static size_t scan_number(const unsigned char *s, size_t len, size_t pos)
{
	size_t i = pos;
	if (s[i] == '-')
		i++;
	if (i >= len)
		return 0;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (i < len && is_digit(s[i]))
			i++;
	else
		return 0;
	if (i < len && s[i] == '.') {
		if (++i >= len || !is_digit(s[i]))
			return 0;
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || !is_digit(s[i]))
			return 0;
		while (i < len && is_digit(s[i]))
			i++;
	}
	return i;
}

static int fail(const struct jsondoc *d, size_t at, const char *what, char *err)
{
	const unsigned char *s = (const unsigned char *)d->text;
	size_t line = 1, col = 1;
	for (size_t i = 0; i < at && i < d->len; i++) {
		if (s[i] == '\n')
			line++, col = 1;
		else if ((s[i] & 0xc0) != 0x80)
			col++;
	}
	if (at >= d->len)
		return err_set(err, "%s at the end of the text (line %zu column %zu)", what, line, col);
	if (s[at] >= 0x20 && s[at] < 0x7f)
		return err_set(err, "%s near '%c' at line %zu column %zu", what, s[at], line, col);
	return err_set(err, "%s near byte 0x%02x at line %zu column %zu", what, s[at], line, col);
}

static __attribute__((noinline)) int grow(struct jsondoc *d)
{
	return jsondoc_reserve(d, d->cap ? d->cap * 2 : INITIAL_TOKENS);
}

static inline int push(struct jsondoc *d, uint8_t type, size_t start, size_t len, uint8_t flags)
{
	if (d->n == d->cap && grow(d) < 0)
		return -1;
	struct tok *t = &d->tok[d->n];
	t->start = (uint32_t)start;
	t->len = (uint32_t)len;
	t->end = d->n + 1;
	t->count = 0;
	t->type = type;
	t->flags = flags;
	d->n++;
	return 0;
}

static int out_of_memory(struct jsondoc *d, char *err)
{
	d->n = 0;
	return err_set(err, "out of memory reading a JSON document of %zu bytes", d->len);
}

/* Scan and record the string (a value or a member name) at pos; *end gets
 * the offset after it.  Returns its flags, or -1 with err. */
static int string_token(struct jsondoc *d, size_t pos, size_t *end, char *err)
{
	const unsigned char *s = (const unsigned char *)d->text;
	uint8_t f = 0;
	const char *what;
	size_t at, e = scan_string(s, d->len, pos, &f, &what, &at);
	if (!e)
		return fail(d, at, what, err);
	if (push(d, JSONDOC_STRING, pos, e - pos, f) < 0)
		return out_of_memory(d, err);
	*end = e;
	return f;
}

int jsondoc_parse(struct jsondoc *d, const char *text, size_t len, unsigned flags, char *err)
{
	const unsigned char *s = (const unsigned char *)text;
	uint32_t depth = 0;
	size_t pos;

	d->text = text;
	d->len = len;
	d->n = 0;
	if (len > JSONDOC_MAX_TEXT)
		return err_set(err, "the document is longer than %zu bytes", JSONDOC_MAX_TEXT);
	pos = skip_ws(s, len, 0);
	if (!(flags & JSONDOC_ANY) && (pos >= len || (s[pos] != '{' && s[pos] != '[')))
		return fail(d, pos, "'[' or '{' expected", err);

value:
	if (pos >= len)
		return fail(d, pos, "a value expected", err);
	/* Every value is a level, a scalar too, as jansson counts them. */
	if (depth == JSONDOC_MAX_DEPTH)
		return fail(d, pos, "nested too deeply", err);
	switch (s[pos]) {
	case '{':
	case '[': {
		uint8_t type = s[pos] == '{' ? JSONDOC_OBJECT : JSONDOC_ARRAY;
		if (push(d, type, pos, 0, 0) < 0)
			goto oom;
		d->stack[depth++] = d->n - 1;
		pos = skip_ws(s, len, pos + 1);
		if (pos < len && s[pos] == (type == JSONDOC_OBJECT ? '}' : ']'))
			goto close;
		if (type == JSONDOC_OBJECT)
			goto member;
		d->tok[d->n - 1].count = 1;
		goto value;
	}
	case '"': {
		size_t end;
		int f = string_token(d, pos, &end, err);
		if (f < 0)
			return -1;
		if ((f & F_NUL) && depth)
			d->tok[d->stack[depth - 1]].flags |= F_NUL;
		pos = end;
		goto after;
	}
	case 't':
	case 'f':
	case 'n': {
		static const struct { const char *word; size_t len; uint8_t type; } lit[] = {
			{"true", 4, JSONDOC_TRUE}, {"false", 5, JSONDOC_FALSE}, {"null", 4, JSONDOC_NULL},
		};
		size_t k = s[pos] == 't' ? 0 : s[pos] == 'f' ? 1 : 2;
		if (len - pos < lit[k].len || memcmp(s + pos, lit[k].word, lit[k].len) != 0)
			return fail(d, pos, "invalid literal", err);
		if (push(d, lit[k].type, pos, lit[k].len, 0) < 0)
			goto oom;
		pos += lit[k].len;
		goto after;
	}
	default: {
		size_t end = (s[pos] == '-' || is_digit(s[pos])) ? scan_number(s, len, pos) : 0;
		if (!end)
			return fail(d, pos, s[pos] == '-' || is_digit(s[pos]) ? "invalid number"
			                                                    : "unexpected character",
			            err);
		if (push(d, JSONDOC_NUMBER, pos, end - pos, 0) < 0)
			goto oom;
		pos = end;
		goto after;
	}
	}

member: /* at pos: a member's name, ':', then its value */
	if (pos >= len || s[pos] != '"')
		return fail(d, pos, "a member name (a string) expected", err);
	{
		size_t end;
		int f = string_token(d, pos, &end, err);
		if (f < 0)
			return -1;
		struct tok *obj = &d->tok[d->stack[depth - 1]];
		obj->count++;
		if (f & F_NUL)
			obj->flags |= F_NUL;
		pos = skip_ws(s, len, end);
		if (pos >= len || s[pos] != ':')
			return fail(d, pos, "':' expected", err);
		pos = skip_ws(s, len, pos + 1);
		goto value;
	}

after: /* a value ended at pos */
	if (depth == 0) {
		pos = skip_ws(s, len, pos);
		if (pos != len)
			return fail(d, pos, "the end of the text expected", err);
		return 0;
	}
	pos = skip_ws(s, len, pos);
	{
		struct tok *c = &d->tok[d->stack[depth - 1]];
		bool obj = c->type == JSONDOC_OBJECT;
		if (pos < len && s[pos] == ',') {
			pos = skip_ws(s, len, pos + 1);
			if (obj)
				goto member;
			c->count++;
			goto value;
		}
		if (pos < len && s[pos] == (obj ? '}' : ']'))
			goto close;
		return fail(d, pos, obj ? "',' or '}' expected" : "',' or ']' expected", err);
	}

close: /* s[pos] closes the innermost container */
	{
		struct tok *c = &d->tok[d->stack[--depth]];
		c->len = (uint32_t)(pos + 1 - c->start);
		c->end = d->n;
		if ((c->flags & F_NUL) && depth)
			d->tok[d->stack[depth - 1]].flags |= F_NUL;
		pos++;
		goto after;
	}

oom:
	return out_of_memory(d, err);
}

/* ---- reading ---- */

static bool valid(const struct jsondoc *d, uint32_t v)
{
	return d && v < d->n;
}

enum jsondoc_type jsondoc_type(const struct jsondoc *d, uint32_t v)
{
	return valid(d, v) ? (enum jsondoc_type)d->tok[v].type : 0;
}

const char *jsondoc_text(const struct jsondoc *d, uint32_t v, size_t *len)
{
	if (!valid(d, v)) {
		*len = 0;
		return NULL;
	}
	*len = d->tok[v].len;
	return d->text + d->tok[v].start;
}

size_t jsondoc_size(const struct jsondoc *d, uint32_t v)
{
	return valid(d, v) ? d->tok[v].count : 0;
}

uint32_t jsondoc_first(const struct jsondoc *d, uint32_t v)
{
	if (!valid(d, v) || d->tok[v].count == 0)
		return JSONDOC_ABSENT;
	return d->tok[v].type == JSONDOC_OBJECT ? v + 2 : d->tok[v].type == JSONDOC_ARRAY ? v + 1
	                                                                                   : JSONDOC_ABSENT;
}

uint32_t jsondoc_next(const struct jsondoc *d, uint32_t parent, uint32_t v)
{
	if (!valid(d, parent) || !valid(d, v) || v <= parent)
		return JSONDOC_ABSENT;
	uint32_t next = d->tok[v].end;
	if (next >= d->tok[parent].end)
		return JSONDOC_ABSENT;
	return d->tok[parent].type == JSONDOC_OBJECT ? next + 1 : next;
}

uint32_t jsondoc_member_name(const struct jsondoc *d, uint32_t v)
{
	/* A member's name token is the one just before its value. */
	if (!valid(d, v) || v == 0 || d->tok[v - 1].type != JSONDOC_STRING)
		return JSONDOC_ABSENT;
	return v - 1;
}

/* Does the member name token k (a string) equal name[0..len)? */
static bool name_is(const struct jsondoc *d, uint32_t k, const char *name, size_t len)
{
	const struct tok *t = &d->tok[k];
	const unsigned char *s = (const unsigned char *)d->text + t->start + 1;
	size_t n = t->len - 2;
	if (!(t->flags & F_ESC))
		return n == len && memcmp(s, name, len) == 0;
	size_t i = 0, j = 0;
	while (i < n) {
		if (s[i] != '\\') {
			if (j >= len || (unsigned char)name[j] != s[i])
				return false;
			i++, j++;
			continue;
		}
		uint32_t cp;
		size_t used;
		char u[4];
		if (escape_at(s + i, n - i, &cp, &used) < 0)
			return false;
		size_t m = utf8_put(cp, u);
		if (j + m > len || memcmp(name + j, u, m) != 0)
			return false;
		i += used, j += m;
	}
	return j == len;
}

uint32_t jsondoc_member(const struct jsondoc *d, uint32_t v, const char *name, size_t len)
{
	if (!valid(d, v) || d->tok[v].type != JSONDOC_OBJECT)
		return JSONDOC_ABSENT;
	uint32_t found = JSONDOC_ABSENT, end = d->tok[v].end;
	for (uint32_t k = v + 1; k < end; k = d->tok[k + 1].end)
		if (name_is(d, k, name, len))
			found = k + 1; /* the last of duplicates wins */
	return found;
}

uint32_t jsondoc_get(const struct jsondoc *d, uint32_t v, const char *ptr)
{
	char tok[JSONPTR_TOKEN_MAX];
	if (!valid(d, v) || !ptr || (ptr[0] && ptr[0] != '/'))
		return JSONDOC_ABSENT;
	const char *p = ptr;
	while (*p == '/' && v != JSONDOC_ABSENT) {
		p++;
		int n = jsonptr_token(&p, tok);
		if (n < 0)
			return JSONDOC_ABSENT;
		const struct tok *t = &d->tok[v];
		if (t->type == JSONDOC_OBJECT) {
			v = jsondoc_member(d, v, tok, (size_t)n);
		} else if (t->type == JSONDOC_ARRAY) {
			size_t idx;
			if (!jsonptr_index(tok, (size_t)n, &idx) || idx >= t->count)
				return JSONDOC_ABSENT;
			uint32_t e = v + 1;
			while (idx--)
				e = d->tok[e].end;
			v = e;
		} else {
			return JSONDOC_ABSENT;
		}
	}
	return v;
}

bool jsondoc_has_nul(const struct jsondoc *d, uint32_t v)
{
	return valid(d, v) && (d->tok[v].flags & F_NUL);
}

int jsondoc_scalar_to(const struct jsondoc *d, uint32_t v, char *out, size_t cap, size_t *len)
{
	if (!valid(d, v))
		return -1;
	const struct tok *t = &d->tok[v];
	const char *s = d->text + t->start;
	size_t n = t->len, out_len = 0;
	switch (t->type) {
	case JSONDOC_NUMBER:
	case JSONDOC_TRUE:
	case JSONDOC_FALSE:
		break;
	case JSONDOC_STRING:
		s++, n -= 2; /* the quotes */
		break;
	default:
		return -1;
	}
	/* Unescaped text is never longer than its escaped form. */
	if (n >= cap)
		return -1;
	if (!(t->flags & F_ESC)) {
		memcpy(out, s, n);
		out_len = n;
	} else {
		for (size_t i = 0; i < n;) {
			uint32_t cp;
			size_t used;
			if (s[i] != '\\') {
				out[out_len++] = s[i++];
			} else if (escape_at((const unsigned char *)s + i, n - i, &cp, &used) == 0) {
				out_len += utf8_put(cp, out + out_len);
				i += used;
			} else {
				return -1; /* cannot happen: the parse checked it */
			}
		}
	}
	out[out_len] = '\0';
	if (len)
		*len = out_len;
	return 0;
}

char *jsondoc_scalar(const struct jsondoc *d, uint32_t v, size_t *len)
{
	size_t cap = jsondoc_scalar_max(d, v);
	char *out = cap ? malloc(cap) : NULL;
	if (out && jsondoc_scalar_to(d, v, out, cap, len) < 0) {
		free(out);
		out = NULL;
	}
	return out;
}

size_t jsondoc_scalar_max(const struct jsondoc *d, uint32_t v)
{
	enum jsondoc_type t = jsondoc_type(d, v);
	if (t != JSONDOC_STRING && t != JSONDOC_NUMBER && t != JSONDOC_TRUE && t != JSONDOC_FALSE)
		return 0;
	return d->tok[v].len + 1;
}
