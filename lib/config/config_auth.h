/* config_auth — a [provider]'s authentication as a whole: which method
 * (`auth`, its default), the keys that go with it, its static headers, and
 * its secrets read from their files.  The loader (config.c) parses each key
 * on its own; this runs once the section is complete and the token is
 * read, since what is valid depends on the method.
 *
 * Rules (raced.conf(5)):
 *  - auth unset: bearer when a token is configured (token_file, or the
 *    credential NAME.token), else none;
 *  - bearer, header and query need a token; header needs auth_header,
 *    query auth_param; basic needs username and a password (password_file,
 *    or the credential NAME.password);
 *  - a key of another method (token_file with basic or none, username or
 *    password_file without basic, auth_header without header, auth_param
 *    without query) is refused, naming the key and the method in force;
 *  - a base_url with user:password is basic auth by itself: only with
 *    auth = none (or unset and no token);
 *  - each header line passes auth_header_check for the method; none twice.
 * A secret file that cannot be read or is empty is named with the setting
 * that points to it, never quoted.
 *
 * Ownership: the password read lands in p->password (the config's, freed
 * with it); the fault's key is static text.  Registers auth_param with
 * redact_add_param() so that every URL shown masks it.
 */
#ifndef RACED_CONFIG_AUTH_H
#define RACED_CONFIG_AUTH_H

#include <stddef.h>

#include "config.h"

struct config_auth_fault {
	const char *key;   /* the key at fault, or NULL: the section itself */
	size_t header;     /* key "header": which line */
	char msg[ERR_MAX];
};

/* p's method settled and checked, its password read (config_path: where
 * relative paths start).  token_line: whether token_file was set in the
 * file.  0, or -1 with *f. */
RACED_MUST_CHECK int config_auth_settle(struct provider_conf *p, const char *config_path, bool auth_set,
                                        struct config_auth_fault *f);

#endif
