/* control — the control protocol shared by raced (ctlserver) and racectl
 * (ctlclient): one JSON object per line each way, UTF-8, each line at most
 * CONTROL_LINE_MAX bytes before its '\n'.
 *
 *   -> {"cmd":"status","id":42}
 *   <- {"ok":true,"result":{...}}
 *   <- {"ok":false,"error":{"code":"not_found","message":"..."}}
 *
 * A request's arguments are the members of the request object other than
 * "cmd"; each command declares them in the one command table
 * (ctlcommands.h), which drives the validation done here.
 *
 * Ownership: parsed arguments (json_t) belong to the caller of
 * control_request_parse(); reply lines built here are malloc'd strings the
 * caller frees.  docs/control-protocol.md describes the wire protocol and
 * every result shape.
 */
#ifndef RACED_CONTROL_H
#define RACED_CONTROL_H

#include "ctlcommands.h"
#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Longest request or reply line, '\n' excluded. */
#define CONTROL_LINE_MAX (64 * 1024)
/* Longest error code name, NUL included. */
#define CONTROL_CODE_MAX 32

enum control_code {
	CONTROL_BAD_REQUEST,       /* not JSON, not UTF-8, not an object, bad arguments */
	CONTROL_LINE_TOO_LONG,     /* a line over CONTROL_LINE_MAX; the connection is closed */
	CONTROL_UNKNOWN_COMMAND,
	CONTROL_PERMISSION_DENIED, /* a mutating command from a peer that is not an admin */
	CONTROL_BUSY,              /* too many clients, or the daemon cannot take it now */
	CONTROL_CONFLICT,          /* refused in the current state: an import already runs, none runs */
	CONTROL_NOT_FOUND,         /* e.g. status of an import id that does not exist */
	CONTROL_FAILED,            /* the command ran and failed (reload with an invalid config) */
	CONTROL_UNAVAILABLE,       /* a dependency is down (the database) */
	CONTROL_INTERNAL,          /* a bug or an allocation failure in the daemon */
};

/* "bad_request", ... */
const char *control_code_name(enum control_code code);

/* The reply code for a failure a service call classed (rc: a negated errno,
 * lib/base/error.h), by the class table in control.c: -ENOTCONN unavailable,
 * -EBUSY and -ESRCH conflict, -ENOENT not_found, -EINVAL failed.  A class
 * the table does not name, and -1 (no class), get `fallback`: what the
 * command's failures mean when nothing finer is known. */
enum control_code control_code_for_class(int rc, enum control_code fallback);

/* Parse and validate one request line (without its '\n'; len bytes, which
 * may contain NULs).  On success returns 0, sets *cmd and *args (a new
 * object holding only the declared arguments; the caller owns it).  On
 * failure returns -1, sets *code and writes the message for the client into
 * err (ERR_MAX bytes). */
RACED_MUST_CHECK int control_request_parse(const char *line, size_t len,
                                           const struct control_command **cmd, json_t **args,
                                           enum control_code *code, char *err);

/* Reply lines, '\n' included, malloc'd, secrets masked (redact.h: a value the
 * daemon shows never carries one).  control_reply_ok_line() steals the
 * reference to result (NULL means an empty object).  An error message that
 * is not UTF-8 is sent with its non-ASCII bytes as '?'.  NULL only when out
 * of memory. */
RACED_MUST_CHECK char *control_reply_ok_line(json_t *result);
RACED_MUST_CHECK char *control_reply_error_line(enum control_code code, const char *message);

/* Build one request line ('\n' included, malloc'd) for cmd with args (an
 * object or NULL; borrowed). */
RACED_MUST_CHECK char *control_request_line(const char *cmd, json_t *args);

/* Parse a reply line.  Returns 1 for {"ok":true} with *result set (new
 * reference, owned by the caller), 0 for {"ok":false} with code
 * (CONTROL_CODE_MAX bytes) and message (ERR_MAX bytes) filled, -1 when the
 * line is not a well-formed reply (message says why). */
RACED_MUST_CHECK int control_reply_parse(const char *line, json_t **result, char *code, char *message);

#endif
