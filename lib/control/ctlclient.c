#include "ctlclient.h"

#include "control.h"
#include "error.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A reply line may be as long as a request line, and stats grows with the
 * number of stages: allow more, but bounded. */
#define CTLCLIENT_REPLY_MAX (16 * CONTROL_LINE_MAX)

struct ctlclient {
	int fd;
	char *path;
	char *buf;     /* bytes read past the last reply line */
	size_t len, cap;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining(int64_t deadline)
{
	int64_t left = deadline - now_ms();
	return left > 0 ? (int)left : 0;
}

static void fmt_seconds(char *out, size_t size, int ms)
{
	if (ms % 1000 == 0)
		snprintf(out, size, "%d s", ms / 1000);
	else
		snprintf(out, size, "%.1f s", ms / 1000.0);
}

/* Connect a new socket to path within timeout_ms; the fd, or a class
 * (ctlclient.h) with err filled. */
static int connect_to(const char *path, int timeout_ms, char *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path)
		return err_set_class(err, ENAMETOOLONG, "socket path %s is too long (at most %zu bytes)",
		                     path, sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set_class(err, errno, "cannot create a socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		return fd;
	int e = errno;
	if (e == EAGAIN || e == EINPROGRESS) {
		/* The daemon's accept queue is full: wait for room. */
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n = poll(&p, 1, timeout_ms);
		socklen_t len = sizeof e;
		if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
			return fd;
		if (n == 0) {
			char secs[32];
			fmt_seconds(secs, sizeof secs, timeout_ms);
			close(fd);
			return err_set_class(err, ETIMEDOUT, "cannot connect to %s: raced did not accept "
			                     "within %s — is it overloaded or stuck?", path, secs);
		}
	}
	close(fd);
	if (e == ECONNREFUSED || e == ENOENT)
		return err_set_class(err, e, "cannot connect to %s: %s — is raced running?", path,
		                     strerror(e));
	if (e == EACCES)
		return err_set_class(err, e, "cannot connect to %s: %s — the socket is for root, "
		                     "raced's user and the admin_group", path, strerror(e));
	return err_set_class(err, e ? e : EIO, "cannot connect to %s: %s", path, strerror(e));
}

int ctlclient_open(const char *path, int timeout_ms, struct ctlclient **out, char *err)
{
	*out = NULL;
	int fd = connect_to(path, timeout_ms, err);
	if (fd < 0)
		return fd;
	struct ctlclient *cl = calloc(1, sizeof *cl);
	if (!cl || !(cl->path = strdup(path))) {
		free(cl);
		close(fd);
		return err_set_class(err, ENOMEM, "out of memory");
	}
	cl->fd = fd;
	*out = cl;
	return 0;
}

static int send_all(struct ctlclient *cl, const char *data, size_t len, int64_t deadline,
                    int timeout_ms, char *err)
{
	while (len > 0) {
		ssize_t n = send(cl->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		int e = n < 0 ? errno : EIO;
		if (e == EINTR)
			continue;
		if (e == EAGAIN) {
			struct pollfd p = { .fd = cl->fd, .events = POLLOUT };
			int r = poll(&p, 1, remaining(deadline));
			if (r == 0) {
				char secs[32];
				fmt_seconds(secs, sizeof secs, timeout_ms);
				return err_set_class(err, ETIMEDOUT, "raced did not take the request within %s",
				                     secs);
			}
			continue;
		}
		if (e == EPIPE || e == ECONNRESET)
			/* Closed on us: a refusal (busy) may wait in the input. */
			return err_set_class(err, ECONNRESET, "raced closed the connection on %s: %s",
			                     cl->path, strerror(e));
		return err_set_class(err, e, "cannot send to raced on %s: %s", cl->path, strerror(e));
	}
	return 0;
}

/* Take one line out of the read buffer; 1 with *line set, 0 if there is
 * no whole line yet, or a class. */
static int take_line(struct ctlclient *cl, char **line, char *err)
{
	char *nl = cl->len ? memchr(cl->buf, '\n', cl->len) : NULL;
	if (!nl)
		return 0;
	size_t n = (size_t)(nl - cl->buf);
	char *l = malloc(n + 1);
	if (!l)
		return err_set_class(err, ENOMEM, "out of memory");
	memcpy(l, cl->buf, n);
	l[n] = '\0';
	memmove(cl->buf, nl + 1, cl->len - n - 1);
	cl->len -= n + 1;
	*line = l;
	return 1;
}

/* Read until one reply line is in; 0 with *reply_line, or a class.
 * closed_early: the request could not be sent whole, so a closed
 * connection with nothing to read keeps that failure (already in err). */
static int read_reply(struct ctlclient *cl, int64_t deadline, int timeout_ms, bool closed_early,
                      char **reply_line, char *err)
{
	for (;;) {
		int got = take_line(cl, reply_line, err);
		if (got != 0)
			return got < 0 ? got : 0;
		if (cl->len >= CTLCLIENT_REPLY_MAX)
			return err_set_class(err, EPROTO, "raced sent a reply line over %d bytes",
			                     CTLCLIENT_REPLY_MAX);
		if (cl->cap - cl->len < 4096) {
			size_t cap = cl->cap ? cl->cap * 2 : 8192;
			char *b = realloc(cl->buf, cap);
			if (!b)
				return err_set_class(err, ENOMEM, "out of memory");
			cl->buf = b;
			cl->cap = cap;
		}
		struct pollfd p = { .fd = cl->fd, .events = POLLIN };
		int r = poll(&p, 1, remaining(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			char secs[32];
			fmt_seconds(secs, sizeof secs, timeout_ms);
			return err_set_class(err, ETIMEDOUT, "raced did not answer within %s", secs);
		}
		ssize_t n = recv(cl->fd, cl->buf + cl->len, cl->cap - cl->len, 0);
		if (n == 0 || (n < 0 && closed_early))
			return closed_early ? -ECONNRESET :
			       err_set_class(err, ECONNRESET, "raced closed the connection on %s without "
			                     "answering", cl->path);
		if (n < 0) {
			int e = errno;
			if (e == EINTR || e == EAGAIN)
				continue;
			return err_set_class(err, e, "cannot read from raced on %s: %s", cl->path,
			                     strerror(e));
		}
		cl->len += (size_t)n;
	}
}

/* The daemon refused the connection as busy (too many clients): nothing
 * was done, so the request may be sent again on a new connection. */
static bool refused_busy(const char *line)
{
	json_t *result = NULL;
	char code[CONTROL_CODE_MAX], msg[ERR_MAX];
	int rc = control_reply_parse(line, &result, code, msg);
	json_decref(result);
	return rc == 0 && strcmp(code, control_code_name(CONTROL_BUSY)) == 0;
}

static int reconnect(struct ctlclient *cl, int timeout_ms, char *err)
{
	int fd = connect_to(cl->path, timeout_ms, err);
	if (fd < 0)
		return fd;
	close(cl->fd);
	cl->fd = fd;
	cl->len = 0;
	return 0;
}

int ctlclient_call(struct ctlclient *cl, const char *cmd, json_t *args, int timeout_ms,
                   char **reply_line, char *err)
{
	int64_t deadline = now_ms() + timeout_ms;
	*reply_line = NULL;
	char *req = control_request_line(cmd, args);
	if (!req)
		return err_set_class(err, ENOMEM, "out of memory");
	int rc;
	for (;;) {
		rc = send_all(cl, req, strlen(req), deadline, timeout_ms, err);
		if (rc == 0 || rc == -ECONNRESET)
			rc = read_reply(cl, deadline, timeout_ms, rc != 0, reply_line, err);
		if (rc != 0 || !refused_busy(*reply_line) ||
		    remaining(deadline) <= 2 * CTLCLIENT_BUSY_RETRY_MS)
			break;
		free(*reply_line);
		*reply_line = NULL;
		poll(NULL, 0, CTLCLIENT_BUSY_RETRY_MS);
		if ((rc = reconnect(cl, remaining(deadline), err)) != 0)
			break;
	}
	free(req);
	return rc;
}

void ctlclient_close(struct ctlclient *cl)
{
	if (!cl)
		return;
	close(cl->fd);
	free(cl->buf);
	free(cl->path);
	free(cl);
}
