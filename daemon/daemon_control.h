/* daemon_control — the control socket's commands, answered by the service.
 *
 * Opens the control server (on the socket systemd passed, or on
 * control_socket) and binds each command of the table (ctlcommands.h) to
 * its handler, which calls the service and shapes its result as
 * docs/control-protocol.md describes.  A failure's reply code comes from
 * the class the service returns (control_code_for_class), never from its
 * text.  Owns the server; borrows the service.
 */
#ifndef RACED_DAEMON_CONTROL_H
#define RACED_DAEMON_CONTROL_H

#include "ctlserver.h"
#include "error.h"

#include <stddef.h>
#include <sys/types.h>

struct daemon_control;

/* The names requesters are recorded under (import_runs.requested_by).
 * getpwuid() may block for seconds under NSS/LDAP, so the loop never calls
 * it: the names of the users who may start an import (root, raced's own
 * user, admin_group's listed members) are looked up once, when the
 * control server opens, and a request is then named from this table, or
 * "uid N" for anyone else (a member added since, or by primary group
 * only).  Bounded by DAEMON_PEER_NAMES_MAX. */
#define DAEMON_PEER_NAMES_MAX 64
#define DAEMON_PEER_NAME_LEN  33  /* a user name of up to 32 bytes */

struct daemon_peer_names {
	size_t n;
	struct {
		uid_t uid;
		char name[DAEMON_PEER_NAME_LEN];
	} e[DAEMON_PEER_NAMES_MAX];
};

/* Fill pn from NSS (blocking: call it before serving requests). */
void daemon_peer_names_fill(struct daemon_peer_names *pn, const char *admin_group);
/* uid's name from pn, else "uid N"; no NSS call. */
void daemon_peer_name(const struct daemon_peer_names *pn, uid_t uid, char *buf, size_t len);
struct event_base;
struct service;

/* Each command's handler, indexed by enum control_command_id; ctx is the
 * struct daemon_control.  Every entry is set (tests/unit/test_daemon_control.c). */
extern const ctlserver_handler daemon_control_handlers[CONTROL_N_COMMANDS];

RACED_MUST_CHECK struct daemon_control *daemon_control_open(struct event_base *base,
                                                            struct service *svc, char *err);
void daemon_control_close(struct daemon_control *dc);

/* Load the configuration at path and hand it to the service (and the
 * control server's limits), and log what applies now, what waits for the
 * running import and what for a restart; a refusal is logged too.  Fails
 * with err and a class: -EINVAL when the file is invalid, else
 * service_reload()'s.  dc may be NULL; report, if not NULL, gets
 * service_reload()'s report (the caller's; NULL when out of memory). */
RACED_MUST_CHECK int daemon_reload(struct daemon_control *dc, struct service *svc,
                                   const char *path, json_t **report, char *err);

#endif
