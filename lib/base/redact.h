/* redact — secrets out of every text raced writes.
 *
 * A secret is
 *   - the value of a libpq connection option that libpq marks secret (its
 *     dispchar is "*": password, sslpassword, and whatever else this libpq
 *     adds), in a keyword=value conninfo, in a postgresql:// URI's query
 *     (?sslpassword=...) and wherever such an option is quoted in a
 *     message;
 *   - the password of a URL's userinfo (scheme://user:password@host);
 *   - the value of a query parameter named secret by the configuration
 *     (a provider's `auth = query` parameter, redact_add_param()), in a
 *     URL's query or as name=value in a message, like a secret option.
 * A redacted value stays recognisable: "sslpassword=***",
 * "http://user:***@host/path".  The user name is kept: in a URL it is not a
 * secret (a token belongs in token_file, not in a user name).
 *
 * Three tools:
 *   redact_conninfo()  a conninfo libpq parses, written back as
 *                      keyword=value with each secret option's value
 *                      "***" (exact: libpq's own parse).
 *   redact_buf() / redact_dup() / redact_take()
 *                      free text (messages, URLs, log lines, replies)
 *                      scanned for the two forms above.  A URL's
 *                      authority runs from "://" to the first "/", "?",
 *                      "#", '"', "<", ">" or white space, and its password
 *                      from the first ":" to the last "@" (or to the end,
 *                      in a text that fills its buffer: it may have been
 *                      cut before the "@").  A secret keyword (any case, a
 *                      word of its own, "=" with optional spaces around
 *                      it) is followed by its value: '...' quoted
 *                      (backslash escapes), or up to white space, a '"'
 *                      included as libpq reads it: text is masked before
 *                      it is encoded, never as JSON (a backslash escapes
 *                      the next character; after "?"
 *                      or "&", also up to "&" or "#"), less a trailing
 *                      ",;.)" (a sentence's: "password=***, next").
 *                      Texts are built masked with the other two tools;
 *                      this one, at every exit (log, reply, import_errors,
 *                      STATUS=), catches what a message echoes (libpq's
 *                      and libcurl's own texts).
 *   redact_literal()   a value known to be secret (a provider's token),
 *                      wherever it appears in a text.
 *
 * The set of secret keywords comes from libpq's option table
 * (PQconninfoParse of "", which lists every option with its dispchar but,
 * unlike PQconndefaults, looks up no defaults: no getpwuid, no files),
 * read once, plus password and sslpassword always.  Process-wide and
 * single-threaded, like the rest of raced; nothing here logs.
 */
#ifndef RACED_REDACT_H
#define RACED_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define REDACT_MASK "***"
#define REDACT_KEYWORDS_MAX 32   /* secret options remembered */
#define REDACT_KEYWORD_LEN 64    /* longest secret option name kept */
#define REDACT_PARAMS_MAX 32     /* secret query parameter names remembered */

/* Is keyword (exact, case-insensitive) an option libpq marks secret? */
bool redact_is_secret_option(const char *keyword);

/* Names a query parameter (case-insensitive, at most REDACT_KEYWORD_LEN - 1
 * bytes of letters, digits, '_', '-' and '.') whose value is a secret from
 * now on, in every text masked.  Names are only ever added (a reload that
 * drops one keeps masking it: harmless); a name already known is not added
 * twice.  -1 when the name is too long, malformed or the table is full
 * (REDACT_PARAMS_MAX). */
RACED_MUST_CHECK int redact_add_param(const char *name);

/* Masks every secret in buf (a string in size bytes) in place; a text that
 * grows past size is cut (never in a way that uncovers a secret).
 * Returns how many secrets were masked. */
size_t redact_buf(char *buf, size_t size);

/* Masks every occurrence of secret, a value known to be one (a provider's
 * token a server may echo), in buf as redact_buf does; an empty or NULL
 * secret masks nothing.  Returns how many were masked. */
size_t redact_literal(char *buf, size_t size, const char *secret);

/* A masked copy of text (caller frees); NULL when out of memory. */
RACED_MUST_CHECK char *redact_dup(const char *text);

/* Masks text, which the call takes over: returns text itself or its masked
 * replacement (caller frees), or NULL when out of memory (text freed). */
RACED_MUST_CHECK char *redact_take(char *text);

/* conninfo (keyword=value or URI) as keyword=value with every secret
 * option's value "***", values quoted where libpq needs it; a conninfo
 * libpq cannot parse reads "(unparsable conninfo)".  Caller frees; NULL
 * when out of memory. */
RACED_MUST_CHECK char *redact_conninfo(const char *conninfo);

#endif
