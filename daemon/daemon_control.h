/* daemon_control — the control socket's commands, answered by the service.
 *
 * Opens the control server (on the socket systemd passed, or on
 * control_socket), maps each command to a service call and shapes its
 * result as docs/control-protocol.md describes.  Owns the server; borrows
 * the service.
 */
#ifndef RACED_DAEMON_CONTROL_H
#define RACED_DAEMON_CONTROL_H

struct daemon_control;
struct event_base;
struct service;

struct daemon_control *daemon_control_open(struct event_base *base, struct service *svc,
                                           char *err);
void daemon_control_close(struct daemon_control *dc);

/* Load the configuration at path and hand it to the service (and the
 * control server's limits); -1 with err when it is invalid.  dc may be NULL. */
int daemon_reload(struct daemon_control *dc, struct service *svc, const char *path, char *err);

#endif
