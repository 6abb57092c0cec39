#include "ctlserver.h"

#include "error.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Back-off after accept() fails for lack of fds. */
#define CTLSERVER_ACCEPT_RETRY_MS 200
/* Supplementary groups examined per peer. */
#define CTLSERVER_PEER_GROUPS_MAX 256

struct ctl_client {
	struct ctlserver *srv;
	struct bufferevent *bev;
	struct ctl_client *prev, *next;
	struct control_request *inflight;
	uid_t uid;
	pid_t pid;
	int64_t connected_ms; /* monotonic */
	bool spoke;      /* has sent at least one byte */
	bool privileged;
	bool processing; /* inside client_process(): replies must not recurse */
	bool dead;       /* free at the end of client_process() */
	bool closing;    /* close once the output is flushed */
	bool eof;        /* the peer shut its writing side */
};

struct control_request {
	struct ctl_client *client; /* NULL once the client is gone */
	const struct control_command *cmd;
	json_t *args;
	uid_t uid;
	pid_t pid;
	bool privileged;
};

struct ctlserver {
	struct event_base *base;
	struct evconnlistener *listener;
	struct event *accept_retry;
	ctlserver_handler handle;
	void *ctx;
	char *path;              /* the socket file we created, or NULL */
	uint32_t max_clients;
	size_t max_output;
	uint32_t idle_ms;
	uint32_t handshake_ms;
	bool have_admin_gid;
	gid_t admin_gid;
	struct ctl_client *clients;
	unsigned n_clients;
};

static void client_process(struct ctl_client *c);

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- clients ---------------------------------------------------------- */

static void client_free(struct ctl_client *c)
{
	struct ctlserver *srv = c->srv;
	if (c->inflight)
		c->inflight->client = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_clients--;
	bufferevent_free(c->bev);
	free(c);
}

/* Queue a reply line; a client whose unsent output passes max_output is
 * marked dead (it does not read). */
static void client_send(struct ctl_client *c, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (!line || evbuffer_add(out, line, strlen(line)) != 0 ||
	    evbuffer_get_length(out) > c->srv->max_output)
		c->dead = true;
}

static void client_send_error(struct ctl_client *c, enum control_code code, const char *msg)
{
	char *line = control_reply_error_line(code, msg);
	client_send(c, line);
	free(line);
}

/* Free now if nothing is left to do for this client; returns true if freed. */
static bool client_settle(struct ctl_client *c)
{
	if (c->dead) {
		client_free(c);
		return true;
	}
	if (c->eof && !c->inflight)
		c->closing = true;
	if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		client_free(c);
		return true;
	}
	return false;
}

static void client_dispatch(struct ctl_client *c, const char *line, size_t len)
{
	struct ctlserver *srv = c->srv;
	const struct control_command *cmd;
	json_t *args;
	enum control_code code;
	char err[ERR_MAX];

	if (control_request_parse(line, len, &cmd, &args, &code, err) != 0) {
		client_send_error(c, code, err);
		return;
	}
	if (cmd->privilege == CONTROL_ADMIN && !c->privileged) {
		snprintf(err, sizeof err,
		         "'%s' changes the daemon's state: it needs root, the daemon's user or "
		         "membership in the admin_group; uid %u is none of these",
		         cmd->name, (unsigned)c->uid);
		client_send_error(c, CONTROL_PERMISSION_DENIED, err);
		json_decref(args);
		return;
	}
	struct control_request *req = calloc(1, sizeof *req);
	if (!req) {
		client_send_error(c, CONTROL_INTERNAL, "out of memory");
		json_decref(args);
		return;
	}
	req->client = c;
	req->cmd = cmd;
	req->args = args;
	req->uid = c->uid;
	req->pid = c->pid;
	req->privileged = c->privileged;
	c->inflight = req;
	srv->handle(srv->ctx, req);
}

static void client_too_long(struct ctl_client *c)
{
	char err[ERR_MAX];
	snprintf(err, sizeof err,
	         "request line longer than %d bytes (the protocol's limit); closing the connection",
	         CONTROL_LINE_MAX);
	client_send_error(c, CONTROL_LINE_TOO_LONG, err);
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
	evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
}

/* Handle queued lines until one is with the handler.  May free c. */
static void client_process(struct ctl_client *c)
{
	if (c->processing)
		return;
	c->processing = true;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	while (!c->dead && !c->closing && !c->inflight) {
		size_t eol_len = 0;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
				client_too_long(c);
			break;
		}
		size_t len = (size_t)eol.pos;
		if (len > CONTROL_LINE_MAX) {
			client_too_long(c);
			break;
		}
		char *line = malloc(len + 1);
		if (!line) {
			c->dead = true;
			break;
		}
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		if (len > 0)
			client_dispatch(c, line, len);
		free(line);
	}
	c->processing = false;
	client_settle(c);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		c->spoke = true;
	client_process(c);
}

/* The table is full: make room by dropping the longest-connected client
 * that has sent nothing for handshake_ms (a real client sends its request
 * at once), so idle connections cannot lock racectl out.  Returns whether
 * a place was freed. */
static bool drop_silent_client(struct ctlserver *srv)
{
	int64_t cutoff = now_ms() - srv->handshake_ms;
	struct ctl_client *oldest = NULL;
	for (struct ctl_client *c = srv->clients; c; c = c->next)
		if (!c->spoke && !c->inflight && c->connected_ms <= cutoff &&
		    (!oldest || c->connected_ms <= oldest->connected_ms))
			oldest = c;
	if (!oldest)
		return false;
	client_free(oldest);
	return true;
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct ctl_client *c = arg;
	client_settle(c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client *c = arg;
	if (what & BEV_EVENT_ERROR) {
		client_free(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		/* Silent while its request is still with the handler: not idle. */
		if (c->inflight && (what & BEV_EVENT_READING)) {
			bufferevent_enable(bev, EV_READ);
			return;
		}
		client_free(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* POLLHUP: the peer closed both ways, so it cannot read a reply;
		 * without it, it only shut its writing side and waits for answers. */
		struct pollfd p = { .fd = bufferevent_getfd(bev), .events = POLLIN };
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)) {
			client_free(c);
			return;
		}
		c->eof = true;
		bufferevent_disable(bev, EV_READ);
		client_process(c); /* lines sent before the EOF still get answers */
	}
}

/* ---- peer credentials ------------------------------------------------- */

static bool peer_in_group(int fd, uid_t uid, gid_t gid, gid_t want)
{
	if (gid == want)
		return true;
	gid_t groups[CTLSERVER_PEER_GROUPS_MAX];
	socklen_t len = sizeof groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		for (size_t i = 0; i < len / sizeof groups[0]; i++)
			if (groups[i] == want)
				return true;
		return false;
	}
	if (errno == ERANGE)
		return false; /* more groups than we look at: not granted */
	/* Kernels without SO_PEERGROUPS: the user's configured groups. */
	struct passwd *pw = getpwuid(uid);
	if (!pw)
		return false;
	int n = CTLSERVER_PEER_GROUPS_MAX;
	if (getgrouplist(pw->pw_name, gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	(void)l;
	(void)sa;
	(void)salen;
	struct ctlserver *srv = arg;
	if (srv->n_clients >= srv->max_clients && !drop_silent_client(srv)) {
		char msg[ERR_MAX];
		snprintf(msg, sizeof msg,
		         "too many control clients (max_clients = %u); try again shortly",
		         (unsigned)srv->max_clients);
		char *line = control_reply_error_line(CONTROL_BUSY, msg);
		if (line) {
			ssize_t n = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)n; /* best effort: the client is refused either way */
		}
		free(line);
		close(fd);
		return;
	}
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		close(fd);
		return;
	}
	struct ctl_client *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->srv = srv;
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->connected_ms = now_ms();
	c->privileged = cred.uid == 0 || cred.uid == geteuid() ||
	                (srv->have_admin_gid && peer_in_group(fd, cred.uid, cred.gid, srv->admin_gid));
	c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CTLSERVER_INPUT_MAX);
	struct timeval tv = { .tv_sec = srv->idle_ms / 1000,
	                      .tv_usec = (suseconds_t)(srv->idle_ms % 1000) * 1000 };
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	srv->n_clients++;
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ctlserver *srv = arg;
	evconnlistener_enable(srv->listener);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct ctlserver *srv = arg;
	/* Out of fds (EMFILE/ENFILE) or memory: pause accepting briefly
	 * instead of spinning; connected clients are served meanwhile. */
	evconnlistener_disable(l);
	struct timeval tv = { 0, CTLSERVER_ACCEPT_RETRY_MS * 1000 };
	evtimer_add(srv->accept_retry, &tv);
}

/* ---- server ----------------------------------------------------------- */

/* The gid of opts->admin_group; false when it is unset or names no group.
 * getgrnam() may ask NSS (LDAP, ...): called at start and reload only,
 * never per connection. */
static bool admin_gid(const struct ctlserver_options *opts, gid_t *gid)
{
	if (!opts || !opts->admin_group || !opts->admin_group[0])
		return false;
	struct group *gr = getgrnam(opts->admin_group);
	if (!gr)
		return false;
	*gid = gr->gr_gid;
	return true;
}

void ctlserver_configure(struct ctlserver *srv, const struct ctlserver_options *opts)
{
	srv->max_clients = opts && opts->max_clients ? opts->max_clients : CTLSERVER_DEFAULT_MAX_CLIENTS;
	srv->max_output = opts && opts->max_output ? opts->max_output : CTLSERVER_DEFAULT_MAX_OUTPUT;
	srv->idle_ms = opts && opts->idle_timeout_ms ? opts->idle_timeout_ms : CTLSERVER_DEFAULT_IDLE_TIMEOUT_MS;
	srv->handshake_ms = opts && opts->handshake_timeout_ms ? opts->handshake_timeout_ms
	                                                       : CTLSERVER_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	srv->have_admin_gid = admin_gid(opts, &srv->admin_gid);
}

static struct ctlserver *server_new(struct event_base *base, int fd,
                                    const struct ctlserver_options *opts,
                                    ctlserver_handler handle, void *ctx, char *err)
{
	struct ctlserver *srv = calloc(1, sizeof *srv);
	if (!srv) {
		err_set(err, "out of memory creating the control server");
		return NULL;
	}
	srv->base = base;
	srv->handle = handle;
	srv->ctx = ctx;
	ctlserver_configure(srv, opts);
	srv->accept_retry = evtimer_new(base, accept_retry_cb, srv);
	srv->listener = evconnlistener_new(base, accept_cb, srv,
	                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	                                   -1, fd);
	if (!srv->accept_retry || !srv->listener) {
		if (srv->listener)
			evconnlistener_free(srv->listener);
		if (srv->accept_retry)
			event_free(srv->accept_retry);
		free(srv);
		err_set(err, "cannot set up the control socket's listener in libevent");
		return NULL;
	}
	evconnlistener_set_error_cb(srv->listener, accept_error_cb);
	return srv;
}

struct ctlserver *ctlserver_adopt(struct event_base *base, int fd,
                                  const struct ctlserver_options *opts,
                                  ctlserver_handler handle, void *ctx, char *err)
{
	int type = 0;
	socklen_t len = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
		err_set(err, "control socket fd %d from systemd is not a stream socket; "
		        "check ListenStream= in raced.socket", fd);
		close(fd);
		return NULL;
	}
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0 ||
	    evutil_make_socket_nonblocking(fd) != 0) {
		err_set(err, "cannot set up control socket fd %d: %s", fd, strerror(errno));
		close(fd);
		return NULL;
	}
	struct ctlserver *srv = server_new(base, fd, opts, handle, ctx, err);
	if (!srv)
		close(fd);
	return srv;
}

/* Give the socket file admin_group's gid, so that with mode 0660 its
 * members may connect (as raced.socket's SocketGroup= does). */
static int set_group(const char *path, const struct ctlserver_options *opts, char *err)
{
	gid_t gid;
	if (!admin_gid(opts, &gid) || chown(path, (uid_t)-1, gid) == 0)
		return 0;
	return err_set(err, "cannot give control socket %s the group %s (admin_group): %s; run "
	               "raced as root or as a member of %s, or set admin_group to a group raced's "
	               "user is in", path, opts->admin_group, strerror(errno), opts->admin_group);
}

/* A socket file is stale when connecting to it is refused. */
static int check_existing(const char *path, const struct sockaddr_un *sa, char *err)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return err_set(err, "cannot check control socket %s: %s", path, strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return err_set(err, "%s exists and is not a socket; remove it or set "
		               "control_socket to another path", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(err, "cannot create a socket: %s", strerror(errno));
	int rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
	int saved = errno;
	close(fd);
	if (rc == 0 || saved == EAGAIN)
		return err_set(err, "another raced is already listening on %s; stop it first, "
		               "or set control_socket to another path", path);
	if (saved == ECONNREFUSED || saved == ENOENT) {
		if (unlink(path) != 0 && errno != ENOENT)
			return err_set(err, "cannot remove stale control socket %s: %s",
			               path, strerror(errno));
		return 0;
	}
	return err_set(err, "cannot check control socket %s: %s", path, strerror(saved));
}

struct ctlserver *ctlserver_listen(struct event_base *base, const char *path,
                                   const struct ctlserver_options *opts,
                                   ctlserver_handler handle, void *ctx, char *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		err_set(err, "control socket path %s is too long (at most %zu bytes); set a "
		        "shorter control_socket", path, sizeof sa.sun_path - 1);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (check_existing(path, &sa, err) != 0)
		return NULL;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err_set(err, "cannot create the control socket: %s", strerror(errno));
		return NULL;
	}
	unsigned mode = opts && opts->mode ? opts->mode : CTLSERVER_DEFAULT_MODE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		err_set(err, "cannot bind control socket %s: %s", sa.sun_path, strerror(errno));
		close(fd);
		return NULL;
	}
	int rc = set_group(sa.sun_path, opts, err);
	if (rc == 0 && (chmod(sa.sun_path, (mode_t)mode) != 0 || listen(fd, SOMAXCONN) != 0))
		rc = err_set(err, "cannot set up control socket %s: %s", sa.sun_path, strerror(errno));
	if (rc != 0) {
		close(fd);
		unlink(sa.sun_path);
		return NULL;
	}
	struct ctlserver *srv = server_new(base, fd, opts, handle, ctx, err);
	if (!srv) {
		close(fd);
		unlink(sa.sun_path);
		return NULL;
	}
	srv->path = strdup(sa.sun_path);
	return srv;
}

unsigned ctlserver_client_count(const struct ctlserver *srv)
{
	return srv->n_clients;
}

void ctlserver_free(struct ctlserver *srv)
{
	if (!srv)
		return;
	while (srv->clients)
		client_free(srv->clients);
	evconnlistener_free(srv->listener);
	event_free(srv->accept_retry);
	if (srv->path) {
		unlink(srv->path);
		free(srv->path);
	}
	free(srv);
}

/* ---- requests --------------------------------------------------------- */

void ctlserver_help(void *ctx, struct control_request *req)
{
	(void)ctx;
	const char *which = json_string_value(json_object_get(req->args, "command"));
	json_t *help = control_help_json(which);
	if (help)
		control_reply_ok(req, help);
	else
		control_reply_error(req, CONTROL_NOT_FOUND, "no command '%.64s' to explain", which);
}

const struct control_command *control_request_command(const struct control_request *req)
{
	return req->cmd;
}

const char *control_request_name(const struct control_request *req)
{
	return req->cmd->name;
}

json_t *control_request_args(const struct control_request *req)
{
	return req->args;
}

uid_t control_request_uid(const struct control_request *req)
{
	return req->uid;
}

pid_t control_request_pid(const struct control_request *req)
{
	return req->pid;
}

bool control_request_privileged(const struct control_request *req)
{
	return req->privileged;
}

bool control_request_connected(const struct control_request *req)
{
	return req->client != NULL;
}

static void request_finish(struct control_request *req, char *line)
{
	struct ctl_client *c = req->client;
	json_decref(req->args);
	free(req);
	if (c) {
		c->inflight = NULL;
		client_send(c, line);
		free(line);
		client_process(c); /* next pipelined line; may free c */
		return;
	}
	free(line);
}

void control_reply_ok(struct control_request *req, json_t *result)
{
	if (!req->client) {
		json_decref(result);
		request_finish(req, NULL);
		return;
	}
	char *line = control_reply_ok_line(result);
	if (!line)
		line = control_reply_error_line(CONTROL_INTERNAL, "out of memory building the reply");
	request_finish(req, line);
}

void control_reply_error(struct control_request *req, enum control_code code, const char *fmt, ...)
{
	if (!req->client) {
		request_finish(req, NULL);
		return;
	}
	char msg[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	request_finish(req, control_reply_error_line(code, msg));
}
