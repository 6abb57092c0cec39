/* ctlserver — the daemon side of the control socket, on libevent.
 *
 * Listens on a Unix stream socket (created at a path, or adopted from
 * systemd), reads newline-delimited JSON requests (control.h) from each
 * client, checks them against the command table (ctlcommands.h), and hands
 * each valid one to the daemon's handler.  The server itself answers every
 * malformed line, over-long lines (then closes that client), admin commands
 * from unprivileged peers (permission_denied) and clients over max_clients
 * (busy, then close).  ctlserver_help() is the handler of `help`, built from
 * the table, for the daemon to bind like any other.
 *
 * Limits that keep the daemon alive whatever clients do: lines over
 * CONTROL_LINE_MAX, at most CTLSERVER_INPUT_MAX bytes of queued (pipelined)
 * input per client, max_output bytes of unsent replies per client (a client
 * that never reads is dropped), an idle timeout for silent clients, and
 * when all max_clients places are taken a newcomer gets the place of the
 * longest-connected client that has sent nothing for the handshake timeout
 * (a real client sends its request at once), so a burst of idle
 * connections cannot lock racectl out for the idle timeout.
 * One request per client is in the handler at a time; later lines wait.
 *
 * Requests: the handler receives a struct control_request and must answer it
 * exactly once, now or later, with control_reply_ok() or
 * control_reply_error(); that call frees the request.  A request stays valid
 * until then even if its client has gone (the reply is then dropped).  The
 * handler owns the request until it replies, so a daemon that shuts down
 * answers (or errors) its pending requests before freeing the server.
 *
 * The process must ignore SIGPIPE: libevent writes with writev(), and a
 * client that vanishes mid-reply must cost nothing but its connection.
 */
#ifndef RACED_CTLSERVER_H
#define RACED_CTLSERVER_H

#include "control.h"
#include "error.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Pipelined input queued per client before reading pauses. */
#define CTLSERVER_INPUT_MAX (4 * (CONTROL_LINE_MAX + 1))
#define CTLSERVER_DEFAULT_MAX_CLIENTS 64
#define CTLSERVER_DEFAULT_MAX_OUTPUT (1024 * 1024)
#define CTLSERVER_DEFAULT_IDLE_TIMEOUT_MS 60000
/* A client silent this long loses its place to a newcomer when full. */
#define CTLSERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS 3000
#define CTLSERVER_DEFAULT_MODE 0660

struct ctlserver_options {
	uint32_t max_clients;      /* 0 = CTLSERVER_DEFAULT_MAX_CLIENTS */
	size_t max_output;         /* 0 = CTLSERVER_DEFAULT_MAX_OUTPUT */
	uint32_t idle_timeout_ms;  /* 0 = CTLSERVER_DEFAULT_IDLE_TIMEOUT_MS */
	uint32_t handshake_timeout_ms; /* 0 = CTLSERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS */
	const char *admin_group;   /* NULL or a group that does not exist: no group grants */
	unsigned mode;             /* socket file mode; 0 = CTLSERVER_DEFAULT_MODE */
};

struct control_request;
struct ctlserver;

typedef void (*ctlserver_handler)(void *ctx, struct control_request *req);

/* Create the socket at path and listen.  A stale socket file (nobody
 * listening: connect() is refused) is replaced; a live one is not: returns
 * NULL with err saying another daemon listens there.  A path that exists and
 * is not a socket is refused too.  The file gets opts->mode and, when
 * admin_group names a group, that group (NULL with err when raced may not
 * give it: not root and not a member).  A changed admin_group on reload
 * applies to who is privileged at once, to the file's group at the next
 * start. */
RACED_MUST_CHECK struct ctlserver *ctlserver_listen(struct event_base *base, const char *path,
                                                    const struct ctlserver_options *opts,
                                                    ctlserver_handler handle, void *ctx, char *err);

/* Take over an already listening socket (systemd socket activation). */
RACED_MUST_CHECK struct ctlserver *ctlserver_adopt(struct event_base *base, int fd,
                                                   const struct ctlserver_options *opts,
                                                   ctlserver_handler handle, void *ctx, char *err);

/* Apply new limits and admin_group (on reload).  Existing clients keep their
 * privilege; the new admin_group applies to new connections. */
void ctlserver_configure(struct ctlserver *srv, const struct ctlserver_options *opts);

/* Clients connected now. */
unsigned ctlserver_client_count(const struct ctlserver *srv);

/* Close the listener and every client, and unlink the socket file when
 * ctlserver_listen() created it.  Requests still with the handler become
 * orphans: their replies are dropped when they come. */
void ctlserver_free(struct ctlserver *srv);

/* The `help` command's handler: the command list, or one command's entry
 * (not_found when there is no such command). */
void ctlserver_help(void *ctx, struct control_request *req);

/* Request accessors, valid until the reply. */
const struct control_command *control_request_command(const struct control_request *req);
const char *control_request_name(const struct control_request *req);
json_t *control_request_args(const struct control_request *req);   /* borrowed */
uid_t control_request_uid(const struct control_request *req);
pid_t control_request_pid(const struct control_request *req);
bool control_request_privileged(const struct control_request *req);
/* True while the client that sent it is still connected. */
bool control_request_connected(const struct control_request *req);

/* Answer and free req.  control_reply_ok() steals result (NULL = {}). */
void control_reply_ok(struct control_request *req, json_t *result);
void control_reply_error(struct control_request *req, enum control_code code,
                         const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
