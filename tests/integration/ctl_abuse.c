/* ctl_abuse — a misbehaving control client, for tests/integration/control_abuse.sh.
 *
 *   ctl_abuse SOCKET SCENARIO [N [MIN]]
 *
 * Each scenario does one kind of harm to raced's control socket and checks
 * what the daemon answers; it prints "ok ..." lines and exits 0, or a
 * "FAIL ..." line and exits 1.  Nothing here waits without a deadline.
 *
 *   garbage      a line that is not JSON: bad_request, and the connection
 *                still answers the next request
 *   utf8         invalid UTF-8: bad_request saying so
 *   wrongtype    {"cmd":42}: bad_request
 *   unknown      an unknown command: unknown_command with a suggestion
 *   badargs      a mistyped argument, an undeclared one, a duplicate key
 *   longline     a 1 MiB line: line_too_long, then the daemon closes
 *   halfline     half a request, then hang up
 *   vanish       N stats requests, then hang up without reading
 *   pipeline     N requests in one write, then shutdown(SHUT_WR): N replies
 *                in order, then the daemon closes
 *   many         N clients at once: each gets an answer (served or busy) or
 *                a clean close in time; at least MIN are served
 *   noread       send stats requests and never read the replies, until the
 *                daemon drops this client; meanwhile fresh clients must be
 *                answered promptly
 *   noread-hold  the same with status requests (answered after a database
 *                query): once the daemon stops taking input, hold on for
 *                3 s; fresh clients must still be answered promptly
 *
 * Only libc: it must build on a bare Debian 12.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Every wait is bounded by this. */
#define DEADLINE_MS 20000
/* A reply line we accept (stats grows with stages; it is a few KiB). */
#define LINE_MAX_BYTES (1024 * 1024)
/* What "promptly" means for a probe while another client misbehaves. */
#define PROBE_MAX_MS 1000

static const char *sock_path;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	exit(1);
}

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ok   ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	int64_t l = deadline - now_ms();
	return l > 0 ? (int)l : 0;
}

/* ---- one connection ----------------------------------------------------- */

struct conn {
	int fd;
	char *buf;
	size_t len;
	bool eof;  /* the daemon closed (EOF or reset) */
	int err;   /* errno of the reset, 0 for a plain EOF */
};

static int connect_nb(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
		int e = errno;
		if (e == EAGAIN) {
			/* The accept queue is full: wait for room. */
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, DEADLINE_MS) == 1)
				return fd;
		}
		die("connect %s: %s", sock_path, strerror(e));
	}
	return fd;
}

static void conn_open(struct conn *c)
{
	memset(c, 0, sizeof *c);
	c->fd = connect_nb();
	c->buf = malloc(LINE_MAX_BYTES);
	if (!c->buf)
		die("out of memory");
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

/* Send everything; returns 0, or the errno that stopped it (EPIPE ...). */
static int conn_send(struct conn *c, const char *data, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = c->fd, .events = POLLOUT };
			if (poll(&p, 1, left_ms(deadline)) == 0)
				die("the daemon took no more input for %d ms", DEADLINE_MS);
			continue;
		}
		return errno;
	}
	return 0;
}

/* Read what is there (nonblocking); sets eof on EOF or reset. */
static void conn_read_some(struct conn *c)
{
	for (;;) {
		if (c->len >= LINE_MAX_BYTES)
			die("a reply line over %d bytes", LINE_MAX_BYTES);
		ssize_t n = recv(c->fd, c->buf + c->len, LINE_MAX_BYTES - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = true;
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return;
		c->eof = true;
		c->err = errno;
		return;
	}
}

/* The next reply line (malloc'd, no newline), or NULL if the daemon closed
 * first.  Dies at the deadline. */
static char *conn_line(struct conn *c, int64_t deadline)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			char *line = malloc(n + 1);
			if (!line)
				die("out of memory");
			memcpy(line, c->buf, n);
			line[n] = '\0';
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return line;
		}
		if (c->eof)
			return NULL;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		if (poll(&p, 1, left_ms(deadline)) == 0)
			die("no reply within %d ms", DEADLINE_MS);
		conn_read_some(c);
	}
}

/* Wait until the daemon closes; dies at the deadline or if more comes. */
static void conn_expect_close(struct conn *c, int64_t deadline, const char *why)
{
	char *line = conn_line(c, deadline);
	if (line)
		die("%s: expected the daemon to close, got %s", why, line);
}

/* Send a request, read one reply, require it to contain want. */
static char *ask(struct conn *c, const char *req, size_t len, const char *want)
{
	int64_t deadline = now_ms() + DEADLINE_MS;
	int e = conn_send(c, req, len, deadline);
	if (e)
		die("sending %.40s: %s", req, strerror(e));
	char *line = conn_line(c, deadline);
	if (!line)
		die("the daemon closed instead of answering %.40s", req);
	if (!strstr(line, want))
		die("the reply to %.60s lacks %s: %s", req, want, line);
	return line;
}

static void ask_ok(struct conn *c, const char *req, const char *want, const char *desc)
{
	char *line = ask(c, req, strlen(req), want);
	ok("%s: %s", desc, line);
	free(line);
}

/* The same connection still works after what it was put through. */
static void still_answers(struct conn *c)
{
	free(ask(c, "{\"cmd\":\"version\"}\n", 18, "\"ok\":true"));
	ok("the same connection still answers");
}

/* A fresh client: version, and how long it took. */
static int64_t probe(void)
{
	int64_t t0 = now_ms();
	struct conn c;
	conn_open(&c);
	free(ask(&c, "{\"cmd\":\"version\"}\n", 18, "\"ok\":true"));
	conn_close(&c);
	return now_ms() - t0;
}

/* ---- scenarios ---------------------------------------------------------- */

static void scenario_simple(const char *name)
{
	struct conn c;
	conn_open(&c);
	if (strcmp(name, "garbage") == 0) {
		ask_ok(&c, "this is not json\n", "\"code\":\"bad_request\"", "not JSON");
		ask_ok(&c, "[1,2,3]\n", "\"code\":\"bad_request\"", "an array");
		ask_ok(&c, "{}\n", "\"code\":\"bad_request\"", "no cmd");
		ask_ok(&c, "\x01\x02\x03\n", "\"code\":\"bad_request\"", "binary bytes");
	} else if (strcmp(name, "utf8") == 0) {
		static const char bad[] = "{\"cmd\":\"st\xff\xfe" "ats\"}\n";
		char *line = ask(&c, bad, sizeof bad - 1, "\"code\":\"bad_request\"");
		if (!strstr(line, "UTF-8"))
			die("the invalid UTF-8 reply does not say UTF-8: %s", line);
		ok("invalid UTF-8: %s", line);
		free(line);
		static const char nul[] = "{\"cmd\":\"stats\0\"}\n";
		line = ask(&c, nul, sizeof nul - 1, "\"code\":\"bad_request\"");
		ok("a NUL byte: %s", line);
		free(line);
	} else if (strcmp(name, "wrongtype") == 0) {
		ask_ok(&c, "{\"cmd\":42}\n", "\"code\":\"bad_request\"", "cmd an integer");
		ask_ok(&c, "{\"cmd\":null}\n", "\"code\":\"bad_request\"", "cmd null");
		ask_ok(&c, "{\"cmd\":[\"stats\"]}\n", "\"code\":\"bad_request\"", "cmd an array");
	} else if (strcmp(name, "unknown") == 0) {
		ask_ok(&c, "{\"cmd\":\"stast\"}\n", "did you mean 'stats'?", "a typo");
		ask_ok(&c, "{\"cmd\":\"format-disk\"}\n", "\"code\":\"unknown_command\"", "no such command");
	} else if (strcmp(name, "badargs") == 0) {
		ask_ok(&c, "{\"cmd\":\"status\",\"id\":\"7\"}\n", "\"code\":\"bad_request\"", "id a string");
		ask_ok(&c, "{\"cmd\":\"status\",\"id\":0}\n", "\"code\":\"bad_request\"", "id 0");
		ask_ok(&c, "{\"cmd\":\"version\",\"verbose\":true}\n", "\"code\":\"bad_request\"", "an undeclared argument");
		ask_ok(&c, "{\"cmd\":\"stats\",\"cmd\":\"cancel\"}\n", "\"code\":\"bad_request\"", "a duplicate key");
		ask_ok(&c, "{\"cmd\":\"status\",\"limit\":1}\n", "\"runs\":[", "status with limit 1");
		ask_ok(&c, "{\"cmd\":\"help\",\"command\":\"stats\"}\n", "\"name\":\"stats\"", "help of one command");
	} else {
		die("unknown scenario '%s'", name);
	}
	still_answers(&c);
	conn_close(&c);
}

static void scenario_longline(void)
{
	size_t len = 1024 * 1024;
	char *big = malloc(len + 1);
	if (!big)
		die("out of memory");
	big[0] = '{';
	memset(big + 1, 'x', len - 1);
	big[len] = '\n';
	struct conn c;
	conn_open(&c);
	int64_t deadline = now_ms() + DEADLINE_MS;
	size_t sent = 0;
	bool send_stopped = false;
	char *line = NULL;
	/* Send and read at once: the daemon answers (and closes) long before
	 * the whole line is in. */
	while (!line && !c.eof) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN | (send_stopped ? 0 : POLLOUT) };
		if (poll(&p, 1, left_ms(deadline)) == 0)
			die("no line_too_long reply within %d ms (%zu bytes sent)", DEADLINE_MS, sent);
		if (!send_stopped && (p.revents & POLLOUT)) {
			ssize_t n = send(c.fd, big + sent, len + 1 - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				send_stopped = true; /* closed on us: fine */
			if (sent == len + 1)
				send_stopped = true;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			conn_read_some(&c);
			char *nl = memchr(c.buf, '\n', c.len);
			if (nl) {
				*nl = '\0';
				line = strdup(c.buf);
				memmove(c.buf, nl + 1, c.len - (size_t)(nl - c.buf) - 1);
				c.len -= (size_t)(nl - c.buf) + 1;
			}
		}
	}
	if (!line)
		die("the daemon closed without a line_too_long reply (%zu bytes sent)", sent);
	if (!strstr(line, "\"code\":\"line_too_long\""))
		die("the reply to a 1 MiB line is not line_too_long: %s", line);
	ok("a 1 MiB line (%zu bytes sent before the answer): %s", sent, line);
	free(line);
	conn_expect_close(&c, deadline, "after line_too_long");
	ok("then the daemon closed the connection%s%s", c.err ? ": " : "", c.err ? strerror(c.err) : "");
	conn_close(&c);
	free(big);
}

static void scenario_halfline(void)
{
	struct conn c;
	conn_open(&c);
	int e = conn_send(&c, "{\"cmd\":\"sta", 11, now_ms() + DEADLINE_MS);
	if (e)
		die("sending half a line: %s", strerror(e));
	conn_close(&c);
	ok("sent half a line and hung up");
}

static void scenario_vanish(unsigned n)
{
	struct conn c;
	conn_open(&c);
	int64_t deadline = now_ms() + DEADLINE_MS;
	for (unsigned i = 0; i < n; i++) {
		int e = conn_send(&c, "{\"cmd\":\"stats\"}\n", 16, deadline);
		if (e)
			die("sending: %s", strerror(e));
	}
	conn_close(&c);
	ok("sent %u stats requests and hung up without reading", n);
}

static void scenario_pipeline(unsigned n)
{
	static const char *const reqs[] = {
		"{\"cmd\":\"version\"}\n", "{\"cmd\":\"health\"}\n", "not json\n", "\r\n",
		"{\"cmd\":\"stats\"}\r\n", "{\"cmd\":\"nope\"}\n",
	};
	static const char *const wants[] = {
		"\"version\":", "\"status\":", "\"bad_request\"", NULL,
		"\"stages\":", "\"unknown_command\"",
	};
	size_t cap = (size_t)n * 32 + 1, used = 0;
	char *all = malloc(cap);
	if (!all)
		die("out of memory");
	for (unsigned i = 0; i < n; i++)
		used += (size_t)snprintf(all + used, cap - used, "%s", reqs[i % 6]);
	struct conn c;
	conn_open(&c);
	int64_t deadline = now_ms() + DEADLINE_MS;
	int e = conn_send(&c, all, used, deadline);
	if (e)
		die("sending %u pipelined requests: %s", n, strerror(e));
	shutdown(c.fd, SHUT_WR);
	unsigned replies = 0;
	for (unsigned i = 0; i < n; i++) {
		const char *want = wants[i % 6];
		if (!want)
			continue; /* a blank line gets no reply */
		char *line = conn_line(&c, deadline);
		if (!line)
			die("the daemon closed after %u of the pipelined replies", replies);
		if (!strstr(line, want))
			die("pipelined reply %u lacks %s (out of order?): %.200s", replies, want, line);
		free(line);
		replies++;
	}
	ok("%u pipelined requests (blank lines included), write side shut: %u replies in order", n, replies);
	conn_expect_close(&c, deadline, "after the last pipelined reply");
	ok("then the daemon closed the connection");
	conn_close(&c);
	free(all);
}

static void raise_fd_limit(unsigned need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < need + 32) {
		rl.rlim_cur = rl.rlim_max < need + 32 ? rl.rlim_max : need + 32;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void scenario_many(unsigned n, unsigned min_served)
{
	raise_fd_limit(n);
	struct conn *cs = calloc(n, sizeof *cs);
	struct pollfd *ps = calloc(n, sizeof *ps);
	if (!cs || !ps)
		die("out of memory");
	int64_t t0 = now_ms(), deadline = t0 + DEADLINE_MS;
	for (unsigned i = 0; i < n; i++)
		conn_open(&cs[i]);
	/* Each sends its request at once, before the daemon accepted it. */
	for (unsigned i = 0; i < n; i++) {
		ssize_t r = send(cs[i].fd, "{\"cmd\":\"version\"}\n", 18, MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
			die("client %u: send: %s", i, strerror(errno));
	}
	unsigned served = 0, busy = 0, closed = 0, pending = n;
	bool *done = calloc(n, sizeof *done);
	if (!done)
		die("out of memory");
	while (pending > 0) {
		nfds_t np = 0;
		for (unsigned i = 0; i < n; i++)
			if (!done[i])
				ps[np++] = (struct pollfd){ .fd = cs[i].fd, .events = POLLIN };
		if (poll(ps, np, left_ms(deadline)) == 0)
			die("%u of %u clients got neither an answer nor a close within %d ms "
			    "(%u served, %u busy, %u closed)", pending, n, DEADLINE_MS, served, busy, closed);
		for (unsigned i = 0; i < n; i++) {
			if (done[i])
				continue;
			conn_read_some(&cs[i]);
			char *nl = memchr(cs[i].buf, '\n', cs[i].len);
			if (nl) {
				*nl = '\0';
				if (strstr(cs[i].buf, "\"ok\":true"))
					served++;
				else if (strstr(cs[i].buf, "\"code\":\"busy\""))
					busy++;
				else
					die("client %u got an odd answer: %s", i, cs[i].buf);
			} else if (cs[i].eof) {
				closed++;
			} else {
				continue;
			}
			done[i] = true;
			pending--;
		}
	}
	int64_t took = now_ms() - t0;
	/* Only now hang up: the served ones held their places meanwhile. */
	for (unsigned i = 0; i < n; i++)
		conn_close(&cs[i]);
	ok("%u clients at once, all settled in %lld ms: %u served, %u refused busy, %u closed",
	   n, (long long)took, served, busy, closed);
	if (served < min_served)
		die("only %u of %u clients were served, expected at least %u", served, n, min_served);
	free(cs);
	free(ps);
	free(done);
}

/* Send cmd over and over and never read a reply.  With "stats" (answered
 * at once) the unsent replies pass max_output fast and the daemon must drop
 * the client.  With "status" (answered after a database query) the daemon
 * stops reading this client when its queued input is full; the client
 * then holds on for hold_ms.  Throughout, fresh clients must be answered
 * within PROBE_MAX_MS. */
static void scenario_noread(const char *cmd, bool must_drop, int hold_ms)
{
	struct conn c;
	conn_open(&c);
	char req[64];
	int rlen = snprintf(req, sizeof req, "{\"cmd\":\"%s\"}\n", cmd);
	int64_t t0 = now_ms(), deadline = t0 + DEADLINE_MS, next_probe = t0;
	int64_t blocked_since = 0;
	unsigned long sent = 0, probes = 0;
	int64_t worst = 0;
	int why = 0;
	for (;;) {
		int64_t now = now_ms();
		if (now >= deadline)
			die("the daemon did not drop a client that never reads (%lu '%s' requests in %d ms)",
			    sent, cmd, DEADLINE_MS);
		if (!must_drop && blocked_since && now - blocked_since >= hold_ms)
			break;
		if (now >= next_probe) {
			int64_t ms = probe();
			probes++;
			if (ms > worst)
				worst = ms;
			if (ms > PROBE_MAX_MS)
				die("a fresh client waited %lld ms for an answer while one did not read",
				    (long long)ms);
			next_probe = now_ms() + 50;
		}
		ssize_t n = send(c.fd, req, (size_t)rlen, MSG_NOSIGNAL);
		if (n == rlen) {
			sent++;
			blocked_since = 0;
			continue;
		}
		if (n >= 0)
			die("a partial send of %zd bytes: the test cannot go on", n);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			if (!blocked_since)
				blocked_since = now_ms();
			struct pollfd p = { .fd = c.fd, .events = POLLOUT };
			poll(&p, 1, 50);
			if (p.revents & (POLLERR | POLLHUP)) {
				why = ECONNRESET;
				break;
			}
			continue;
		}
		why = errno;
		break;
	}
	if (why)
		ok("a client that never read its '%s' replies was dropped after %lu requests, %lld ms (%s)",
		   cmd, sent, (long long)(now_ms() - t0), strerror(why));
	else
		ok("a client that never read its '%s' replies: the daemon stopped taking its input "
		   "after %lu requests; held %d ms", cmd, sent, hold_ms);
	ok("%lu fresh clients meanwhile, the slowest answered in %lld ms", probes, (long long)worst);
	conn_close(&c);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SOCKET SCENARIO [N [MIN]]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sock_path = argv[1];
	const char *s = argv[2];
	unsigned n = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 100;
	unsigned min = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 1;
	if (strcmp(s, "longline") == 0)
		scenario_longline();
	else if (strcmp(s, "halfline") == 0)
		scenario_halfline();
	else if (strcmp(s, "vanish") == 0)
		scenario_vanish(n);
	else if (strcmp(s, "pipeline") == 0)
		scenario_pipeline(n);
	else if (strcmp(s, "many") == 0)
		scenario_many(n, min);
	else if (strcmp(s, "noread") == 0)
		scenario_noread("stats", true, 0);
	else if (strcmp(s, "noread-hold") == 0)
		scenario_noread("status", false, 3000);
	else
		scenario_simple(s);
	return 0;
}
