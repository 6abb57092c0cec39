/* config_lex — one physical line of raced.conf, cleaned and classified
 * before inih sees it: a UTF-8 byte order mark on the first line, leading
 * and trailing blanks and comments (';' or '#' at the start of the line or
 * after a blank, as raced.conf(5) says) are removed; what is left is blank,
 * a [section] header split into its kind and name, or "key = value".
 *
 * Pure: no I/O.  The line is cleaned in place in the caller's buffer and
 * struct config_line points into it (text) or holds a copy (the header).
 */
#ifndef RACED_CONFIG_LEX_H
#define RACED_CONFIG_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define CONFIG_LEX_HEADER_MAX 256 /* a header's inside is cut to this, NUL included */

enum config_line_kind { CONFIG_LINE_BLANK, CONFIG_LINE_SECTION, CONFIG_LINE_KEY };

struct config_line {
	enum config_line_kind kind;
	char *text;            /* the cleaned line, in the caller's buffer */
	size_t len;            /* strlen(text) */
	const char *section;   /* SECTION: its kind, e.g. "stage" (in header) */
	const char *name;      /* SECTION: its name, e.g. "races", or "" (in header) */
	char header[CONFIG_LEX_HEADER_MAX];
};

/* Cleans line (NUL-terminated, modified) and classifies it into *out; first
 * says whether it is the file's first line.  0, or -1 with msg (n bytes)
 * for a header without ']' or a line that is neither "key = value" nor a
 * header, e.g. "expected 'key = value' or a [section] header, found 'x'". */
RACED_MUST_CHECK int config_lex_line(char *line, bool first, struct config_line *out, char *msg, size_t n);

#endif
