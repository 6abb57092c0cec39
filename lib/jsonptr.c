/* jsonptr — see jsonptr.h.  Tokens are unescaped into a bounded stack
 * buffer; a token longer than that cannot name anything a provider sends
 * us in practice, and is treated as absent rather than allocated. */
#include "jsonptr.h"

#include <stdlib.h>
#include <string.h>

#define JSONPTR_TOKEN_MAX 256

bool jsonptr_valid(const char *ptr)
{
	if (!ptr)
		return false;
	if (ptr[0] == '\0')
		return true;
	if (ptr[0] != '/')
		return false;
	for (const char *p = ptr; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return false;
	return true;
}

/* Unescape the token at *pp (up to the next '/' or the end) into tok;
 * advances *pp.  Returns the token's length, or -1 if it does not fit or
 * holds a bad escape. */
static int next_token(const char **pp, char *tok)
{
	const char *p = *pp;
	size_t n = 0;
	while (*p && *p != '/') {
		char c = *p++;
		if (c == '~') {
			if (*p == '0')
				c = '~';
			else if (*p == '1')
				c = '/';
			else
				return -1;
			p++;
		}
		if (n + 1 >= JSONPTR_TOKEN_MAX)
			return -1;
		tok[n++] = c;
	}
	tok[n] = '\0';
	*pp = p;
	return (int)n;
}

/* An array index per RFC 6901: "0" or digits without a leading zero. */
static bool array_index(const char *tok, size_t len, size_t *out)
{
	if (len == 0 || (len > 1 && tok[0] == '0'))
		return false;
	size_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return false;
		if (v > ((size_t)-1 - 9) / 10)
			return false;
		v = v * 10 + (size_t)(tok[i] - '0');
	}
	*out = v;
	return true;
}

json_t *jsonptr_get(json_t *doc, const char *ptr)
{
	char tok[JSONPTR_TOKEN_MAX];
	if (!doc || !ptr)
		return NULL;
	if (ptr[0] == '\0')
		return doc;
	if (ptr[0] != '/')
		return NULL;
	const char *p = ptr;
	json_t *cur = doc;
	while (*p == '/' && cur) {
		p++;
		int len = next_token(&p, tok);
		if (len < 0)
			return NULL;
		if (json_is_object(cur)) {
			cur = json_object_getn(cur, tok, (size_t)len);
		} else if (json_is_array(cur)) {
			size_t idx;
			cur = array_index(tok, (size_t)len, &idx) ? json_array_get(cur, idx) : NULL;
		} else {
			return NULL;
		}
	}
	return cur;
}
