/* jsonptr — see jsonptr.h. */
#include "jsonptr.h"

#include <stdlib.h>
#include <string.h>

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

int jsonptr_token(const char **pp, char *tok)
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

bool jsonptr_index(const char *tok, size_t len, size_t *out)
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
