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

struct daemon_control;
struct event_base;
struct service;

/* Each command's handler, indexed by enum control_command_id; ctx is the
 * struct daemon_control.  Every entry is set (tests/unit/test_daemon_control.c). */
extern const ctlserver_handler daemon_control_handlers[CONTROL_N_COMMANDS];

RACED_MUST_CHECK struct daemon_control *daemon_control_open(struct event_base *base,
                                                            struct service *svc, char *err);
void daemon_control_close(struct daemon_control *dc);

/* Load the configuration at path and hand it to the service (and the
 * control server's limits).  Fails with err and a class: -EINVAL when the
 * file is invalid, else service_reload()'s.  dc may be NULL. */
RACED_MUST_CHECK int daemon_reload(struct daemon_control *dc, struct service *svc,
                                   const char *path, char *err);

#endif
