/* tokenfile — a provider's bearer token, read from a file that holds just
 * the token: the configured token_file (relative to raced.conf's own
 * directory), or systemd's $CREDENTIALS_DIRECTORY/<provider>.token.
 *
 * Ownership: paths and tokens are malloc'd and the caller's; a token is
 * released with tokenfile_free(), which wipes it first.
 */
#ifndef RACED_TOKENFILE_H
#define RACED_TOKENFILE_H

#include <stddef.h>

#include "error.h"

#define TOKENFILE_MAX 65536 /* bytes a token file may hold, surrounding blanks included */

/* token_file as configured: itself when absolute, else next to the file at
 * config_path ("./" when config_path has no '/').  NULL when out of memory. */
RACED_MUST_CHECK char *tokenfile_path(const char *config_path, const char *token_file);

/* $CREDENTIALS_DIRECTORY/<name>.token into *path, or NULL there when the
 * variable is unset or empty.  0, or -ENOMEM. */
RACED_MUST_CHECK int tokenfile_credential_path(const char *name, char **path, char *err);

/* $CREDENTIALS_DIRECTORY/<name>.<ext> ("password": a basic-auth password)
 * likewise. */
RACED_MUST_CHECK int tokenfile_credential_path_ext(const char *name, const char *ext, char **path, char *err);

/* Reads the token at path into *token, blanks around it trimmed.  noun
 * names the file in messages: "" gives "cannot read '/x': ...", "credential "
 * gives "credential '/x' is empty".  0, or a class with err:
 *   -ENOENT   the file does not exist (a credential may be absent),
 *   -errno    it cannot be opened or read,
 *   -EFBIG    it holds more than TOKENFILE_MAX bytes,
 *   -EINVAL   it is empty, or holds more than one line or control characters,
 *   -ENOMEM. */
RACED_MUST_CHECK int tokenfile_read(const char *path, const char *noun, char **token, char *err);

/* Wipes and frees a token; NULL is fine. */
void tokenfile_free(char *token);

#endif
