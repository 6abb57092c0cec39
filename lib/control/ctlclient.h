/* ctlclient — racectl's side of the control socket: connect, send one
 * request line, read one reply line, each step bounded by a deadline.
 *
 * Every failure is a sentence for the user: "cannot connect to
 * /run/raced/raced.sock: No such file or directory — is raced running?",
 * "raced did not answer within 5 s".  Nothing here blocks past the timeout
 * given to ctlclient_open() for connecting or to ctlclient_call() per call.
 *
 * Ownership: a struct ctlclient owns its socket and read buffer;
 * ctlclient_close() releases both.  Reply lines returned by ctlclient_call()
 * belong to the caller.
 */
#ifndef RACED_CTLCLIENT_H
#define RACED_CTLCLIENT_H

#include "error.h"

#include <jansson.h>

#define CTLCLIENT_DEFAULT_SOCKET "/run/raced/raced.sock"
#define CTLCLIENT_DEFAULT_TIMEOUT_MS 5000

struct ctlclient;

/* Connect to path within timeout_ms.  NULL with err (ERR_MAX) on failure. */
RACED_MUST_CHECK struct ctlclient *ctlclient_open(const char *path, int timeout_ms, char *err);

/* Send cmd with args (object or NULL, borrowed) and wait at most timeout_ms
 * for the reply line.  Returns 0 with *reply_line (malloc'd, no '\n') set,
 * or -1 with err filled (the connection is then unusable). */
RACED_MUST_CHECK int ctlclient_call(struct ctlclient *cl, const char *cmd, json_t *args,
                                    int timeout_ms, char **reply_line, char *err);

void ctlclient_close(struct ctlclient *cl);

#endif
