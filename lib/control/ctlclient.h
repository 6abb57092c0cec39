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
/* Pause before asking again after a busy refusal (ctlclient_call). */
#define CTLCLIENT_BUSY_RETRY_MS 200

struct ctlclient;

/* Failures are classed (lib/base/error.h) so that `racectl health` can
 * tell a daemon that is not there or not answering (CRITICAL) from a check
 * that cannot run (UNKNOWN):
 *   -ENOENT, -ECONNREFUSED  no socket file, or nobody listening on it
 *   -ETIMEDOUT              not accepted, not taken or not answered in time
 *   -ECONNRESET             the daemon closed the connection without answering
 *   -EPROTO                 a reply line over the client's bound
 *   -EACCES, -ENAMETOOLONG, -ENOMEM, other -errno: the client's own trouble
 */

/* Connect to path within timeout_ms.  0 with *out set, or a class with err
 * (ERR_MAX) filled. */
RACED_MUST_CHECK int ctlclient_open(const char *path, int timeout_ms, struct ctlclient **out,
                                    char *err);

/* Send cmd with args (object or NULL, borrowed) and wait at most timeout_ms
 * for the reply line.  Returns 0 with *reply_line (malloc'd, no '\n') set,
 * or a class with err filled (the connection is then unusable).  A `busy`
 * refusal (the daemon had no room for this client: nothing was done) is
 * retried on a new connection every CTLCLIENT_BUSY_RETRY_MS while the timeout allows; the
 * last refusal is the reply when it does not. */
RACED_MUST_CHECK int ctlclient_call(struct ctlclient *cl, const char *cmd, json_t *args,
                                    int timeout_ms, char **reply_line, char *err);

void ctlclient_close(struct ctlclient *cl);

#endif
