/* config_lex — see config_lex.h. */
#include "config_lex.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Strips a comment and the blanks around the text; the text. */
static char *clean(char *s, bool first)
{
	if (first && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s += strspn(s, " \t\r\n");
	for (char *p = s; *p; p++)
		if ((*p == ';' || *p == '#') && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	size_t len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* "[ kind  name ]" into out->section and out->name. */
static void split_header(struct config_line *out)
{
	char *inner = out->header;
	snprintf(inner, sizeof out->header, "%.*s", (int)(out->len - 2), out->text + 1);
	char *kind = inner + strspn(inner, " \t");
	char *name = kind + strcspn(kind, " \t");
	if (*name) {
		*name++ = '\0';
		name += strspn(name, " \t");
		char *e = name + strlen(name);
		while (e > name && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
	}
	out->section = kind;
	out->name = name;
}

int config_lex_line(char *line, bool first, struct config_line *out, char *msg, size_t n)
{
	char *s = clean(line, first);
	out->text = s;
	out->len = strlen(s);
	out->section = out->name = NULL;
	if (s[0] == '[') {
		if (s[out->len - 1] != ']') {
			snprintf(msg, n, "section header '%s' has no closing ']'", s);
			return -1;
		}
		out->kind = CONFIG_LINE_SECTION;
		split_header(out);
		return 0;
	}
	out->kind = out->len ? CONFIG_LINE_KEY : CONFIG_LINE_BLANK;
	size_t eq = strcspn(s, "=:");
	if (out->len && s[eq] != '=') {
		snprintf(msg, n, "expected 'key = value' or a [section] header, found '%s'", s);
		return -1;
	}
	if (out->len && eq == 0) {
		snprintf(msg, n, "missing key name before '='");
		return -1;
	}
	return 0;
}
