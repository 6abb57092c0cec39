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

struct ctlclient *ctlclient_open(const char *path, int timeout_ms, char *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		err_set(err, "socket path %s is too long (at most %zu bytes)", path, sizeof sa.sun_path - 1);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err_set(err, "cannot create a socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		if (e == EAGAIN || e == EINPROGRESS) {
			/* The daemon's accept queue is full: wait for room. */
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int n = poll(&p, 1, timeout_ms);
			socklen_t len = sizeof e;
			if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
				goto connected;
			if (n == 0) {
				char secs[32];
				fmt_seconds(secs, sizeof secs, timeout_ms);
				err_set(err, "cannot connect to %s: raced did not accept within %s — is it overloaded or stuck?",
				        path, secs);
				close(fd);
				return NULL;
			}
		}
		if (e == ECONNREFUSED || e == ENOENT)
			err_set(err, "cannot connect to %s: %s — is raced running?", path, strerror(e));
		else if (e == EACCES)
			err_set(err, "cannot connect to %s: %s — the socket is for root, raced's user "
			        "and the admin_group", path, strerror(e));
		else
			err_set(err, "cannot connect to %s: %s", path, strerror(e));
		close(fd);
		return NULL;
	}
connected:;
	struct ctlclient *cl = calloc(1, sizeof *cl);
	if (!cl || !(cl->path = strdup(path))) {
		free(cl);
		close(fd);
		err_set(err, "out of memory");
		return NULL;
	}
	cl->fd = fd;
	return cl;
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
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = cl->fd, .events = POLLOUT };
			int r = poll(&p, 1, remaining(deadline));
			if (r == 0) {
				char secs[32];
				fmt_seconds(secs, sizeof secs, timeout_ms);
				return err_set(err, "raced did not take the request within %s", secs);
			}
			continue;
		}
		if (errno == EPIPE || errno == ECONNRESET) {
			/* Closed on us: a refusal (busy) may wait in the input. */
			err_set(err, "raced closed the connection on %s: %s", cl->path, strerror(errno));
			return -2;
		}
		return err_set(err, "cannot send to raced on %s: %s", cl->path, strerror(errno));
	}
	return 0;
}

int ctlclient_call(struct ctlclient *cl, const char *cmd, json_t *args, int timeout_ms,
                   char **reply_line, char *err)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *req = control_request_line(cmd, args);
	if (!req)
		return err_set(err, "out of memory");
	int rc = send_all(cl, req, strlen(req), deadline, timeout_ms, err);
	free(req);
	if (rc == -1)
		return -1;
	bool send_failed = rc == -2;
	for (;;) {
		char *nl = cl->len ? memchr(cl->buf, '\n', cl->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - cl->buf);
			char *line = malloc(n + 1);
			if (!line)
				return err_set(err, "out of memory");
			memcpy(line, cl->buf, n);
			line[n] = '\0';
			memmove(cl->buf, nl + 1, cl->len - n - 1);
			cl->len -= n + 1;
			*reply_line = line;
			return 0;
		}
		if (cl->len >= CTLCLIENT_REPLY_MAX)
			return err_set(err, "raced sent a reply line over %d bytes", CTLCLIENT_REPLY_MAX);
		if (cl->cap - cl->len < 4096) {
			size_t cap = cl->cap ? cl->cap * 2 : 8192;
			char *b = realloc(cl->buf, cap);
			if (!b)
				return err_set(err, "out of memory");
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
			return err_set(err, "raced did not answer within %s", secs);
		}
		ssize_t n = recv(cl->fd, cl->buf + cl->len, cl->cap - cl->len, 0);
		if (n == 0 || (n < 0 && send_failed))
			return send_failed ? -1 :
			       err_set(err, "raced closed the connection on %s without answering", cl->path);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return err_set(err, "cannot read from raced on %s: %s", cl->path, strerror(errno));
		}
		cl->len += (size_t)n;
	}
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
