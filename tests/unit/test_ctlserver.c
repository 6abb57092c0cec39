/* ctlserver over real Unix sockets: the server runs its own event loop in a
 * thread; the test is its clients, with blocking sockets and poll deadlines. */
#include "check.h"
#include "ctlserver.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 5000

static char sock_path[108];
static char dir_path[64];
static struct event_base *base;
static struct ctlserver *srv;
static pthread_t loop_thread;
static int stop_pipe[2];
static atomic_int replies_dropped;   /* async replies made after the client left */
static atomic_int async_replies;

/* ---- the handler: sync and async (timer) replies ---------------------- */

static void reply_later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct control_request *req = arg;
	if (!control_request_connected(req))
		atomic_fetch_add(&replies_dropped, 1);
	atomic_fetch_add(&async_replies, 1);
	json_t *id = json_object_get(control_request_args(req), "id");
	control_reply_ok(req, json_pack("{s:I}", "id", id ? json_integer_value(id) : 0));
}

static void reply_later(struct control_request *req, int ms)
{
	struct timeval tv = { 0, ms * 1000 };
	event_base_once(base, -1, EV_TIMEOUT, reply_later_cb, req, &tv);
}

static void handle(void *ctx, struct control_request *req)
{
	(void)ctx;
	const char *cmd = control_request_name(req);
	if (strcmp(cmd, "version") == 0) {
		control_reply_ok(req, json_pack("{s:s}", "version", "test"));
	} else if (strcmp(cmd, "stats") == 0) {
		control_reply_ok(req, json_pack("{s:i,s:b,s:i}", "clients", ctlserver_client_count(srv),
		                                 "privileged", control_request_privileged(req),
		                                 "uid", (int)control_request_uid(req)));
	} else if (strcmp(cmd, "status") == 0) {
		/* odd ids answer after 50 ms, even ids at once: order must hold */
		json_t *id = json_object_get(control_request_args(req), "id");
		if (!id || json_integer_value(id) % 2)
			reply_later(req, 50);
		else
			control_reply_ok(req, json_pack("{s:I}", "id", json_integer_value(id)));
	} else if (strcmp(cmd, "health") == 0) {
		reply_later(req, 200);
	} else if (strcmp(cmd, "help") == 0) {
		ctlserver_help(ctx, req);
	} else {
		control_reply_error(req, CONTROL_FAILED, "'%s' is not in this test", cmd);
	}
}

/* ---- the server thread ------------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void *loop_main(void *arg)
{
	(void)arg;
	event_base_dispatch(base);
	return NULL;
}

static struct event *stop_ev;

static int adopt_fd = -1; /* >= 0: the next server adopts it, as from systemd */
static uint32_t handshake_ms; /* the next server's handshake timeout; 0 = default */

static void server_start(uint32_t max_clients, uint32_t idle_ms)
{
	base = event_base_new();
	struct ctlserver_options opts = { .max_clients = max_clients, .idle_timeout_ms = idle_ms,
	                                  .handshake_timeout_ms = handshake_ms };
	handshake_ms = 0;
	char err[ERR_MAX];
	if (adopt_fd >= 0)
		srv = ctlserver_adopt(base, adopt_fd, &opts, handle, NULL, err);
	else
		srv = ctlserver_listen(base, sock_path, &opts, handle, NULL, err);
	adopt_fd = -1;
	if (!srv) {
		fprintf(stderr, "server_start: %s\n", err);
		exit(1);
	}
	if (pipe2(stop_pipe, O_CLOEXEC) != 0)
		exit(1);
	stop_ev = event_new(base, stop_pipe[0], EV_READ, stop_cb, base);
	event_add(stop_ev, NULL);
	pthread_create(&loop_thread, NULL, loop_main, NULL);
}

static void server_stop(void)
{
	if (write(stop_pipe[1], "x", 1) != 1)
		exit(1);
	pthread_join(loop_thread, NULL);
	/* let pending async replies run (they are dropped: clients gone) */
	ctlserver_free(srv);
	event_base_loop(base, EVLOOP_NONBLOCK);
	struct timeval tv = { 0, 300 * 1000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	event_free(stop_ev);
	event_base_free(base);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
}

/* ---- client helpers ---------------------------------------------------- */

static int client_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("client_connect");
		exit(1);
	}
	return fd;
}

static void send_str(int fd, const char *s)
{
	ssize_t n = send(fd, s, strlen(s), MSG_NOSIGNAL);
	(void)n;
}

/* Read one line (without '\n') within DEADLINE_MS; "" on EOF, "TIMEOUT". */
static char *read_line(int fd)
{
	static char buf[8192];
	size_t len = 0;
	while (len < sizeof buf - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, DEADLINE_MS) != 1)
			return strcpy(buf, "TIMEOUT");
		ssize_t n = recv(fd, buf + len, 1, 0);
		if (n <= 0)
			break;
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	return buf;
}

/* True when the server closed fd (EOF or reset) within DEADLINE_MS, after
 * discarding whatever it still sent. */
static bool closed_by_server(int fd)
{
	char buf[65536];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, DEADLINE_MS) != 1)
			return false;
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n <= 0)
			return true;
	}
}

static const char *error_code(const char *line)
{
	static char code[64];
	const char *p = strstr(line, "\"code\":\"");
	if (!p)
		return "none";
	p += 8;
	size_t n = strcspn(p, "\"");
	snprintf(code, sizeof code, "%.*s", (int)n, p);
	return code;
}

/* The number of connected clients, as the server counts them, once it
 * settles at want (deadline), via a fresh client (which counts itself). */
static long clients_settle(long want)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	long got = -1;
	for (;;) {
		int fd = client_connect();
		send_str(fd, "{\"cmd\":\"stats\"}\n");
		json_t *r = json_loads(read_line(fd), 0, NULL);
		got = (long)json_integer_value(json_object_get(json_object_get(r, "result"), "clients")) - 1;
		json_decref(r);
		close(fd);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (got == want || (now.tv_sec - start.tv_sec) * 1000 > DEADLINE_MS)
			return got;
		poll(NULL, 0, 10);
	}
}

/* ---- tests ------------------------------------------------------------- */

static void test_good_request_gets_ok_result_line(void)
{
	server_start(0, 0);
	int fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	send_str(fd, "{\"cmd\":\"stats\"}\r\n");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"clients\":1,\"privileged\":true,\"uid\":0}}");
	close(fd);
	server_stop();
}

static void test_each_bad_line_is_answered_to_that_client_only(void)
{
	server_start(0, 0);
	int good = client_connect();
	int bad = client_connect();
	static const struct { const char *line, *code; } cases[] = {
		{ "garbage\n", "bad_request" },
		{ "{\"cmd\":\"st\xc3\x28\"}\n", "bad_request" },
		{ "[\"stats\"]\n", "bad_request" },
		{ "{\"cmd\":42}\n", "bad_request" },
		{ "{\"cmd\":\"status\",\"id\":\"forty-two\"}\n", "bad_request" },
		{ "{\"cmd\":\"bogus\"}\n", "unknown_command" },
		{ "{\"cmd\":\"frobnicate\",\"x\":1}\n", "unknown_command" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		send_str(bad, cases[i].line);
		CHECK_STR(error_code(read_line(bad)), cases[i].code);
		send_str(good, "{\"cmd\":\"version\"}\n");
		CHECK_STR(read_line(good), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	}
	send_str(bad, "{\"cmd\":\"bogus\"}\n");
	CHECK_STR(read_line(bad), "{\"ok\":false,\"error\":{\"code\":\"unknown_command\",\"message\":\"unknown command 'bogus'\"}}");
	/* and the bad client itself is still served */
	send_str(bad, "{\"cmd\":\"version\"}\n");
	CHECK_STR(read_line(bad), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	close(good);
	close(bad);
	server_stop();
}

static void test_one_mib_line_gets_line_too_long_then_close(void)
{
	server_start(0, 0);
	int other = client_connect();
	int fd = client_connect();
	size_t size = 1024 * 1024;
	char *big = malloc(size + 2);
	memset(big, 'a', size);
	big[size] = '\n';
	big[size + 1] = '\0';
	/* The server stops reading after its reply: send what it takes. */
	size_t sent = 0;
	while (sent < size + 1) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 200) != 1)
			break;
		ssize_t n = send(fd, big + sent, size + 1 - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	free(big);
	char *line = read_line(fd);
	CHECK_STR(error_code(line), "line_too_long");
	CHECK(strstr(line, "longer than 65536 bytes") != NULL);
	CHECK(closed_by_server(fd));
	close(fd);
	send_str(other, "{\"cmd\":\"version\"}\n");
	CHECK_STR(read_line(other), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	close(other);
	CHECK_EQ(clients_settle(0), 0);
	server_stop();
}

static void test_line_of_exactly_64_kib_is_parsed_not_refused(void)
{
	server_start(0, 0);
	int fd = client_connect();
	size_t size = CONTROL_LINE_MAX;
	char *line = malloc(size + 2);
	memset(line, ' ', size);
	memcpy(line, "{\"cmd\":\"version\"}", 17);
	line[size] = '\n';
	line[size + 1] = '\0';
	send_str(fd, line);
	free(line);
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	close(fd);
	server_stop();
}

static void test_half_line_then_disconnect_costs_nothing(void)
{
	server_start(0, 0);
	for (int i = 0; i < 20; i++) {
		int fd = client_connect();
		send_str(fd, "{\"cmd\":\"sta");
		close(fd);
	}
	CHECK_EQ(clients_settle(0), 0);
	server_stop();
}

static void test_request_then_shutdown_still_gets_its_reply(void)
{
	server_start(0, 0);
	int fd = client_connect();
	send_str(fd, "{\"cmd\":\"status\",\"id\":3}\n{\"cmd\":\"version\"}\n");
	shutdown(fd, SHUT_WR);
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"id\":3}}");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	CHECK(closed_by_server(fd));
	close(fd);
	server_stop();
}

static void test_pipelined_requests_are_answered_in_order(void)
{
	server_start(0, 0);
	int fd = client_connect();
	send_str(fd, "{\"cmd\":\"status\",\"id\":1}\n{\"cmd\":\"status\",\"id\":2}\n"
	             "{\"cmd\":\"status\",\"id\":3}\n{\"cmd\":\"status\",\"id\":4}\n");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"id\":1}}");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"id\":2}}");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"id\":3}}");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"id\":4}}");
	close(fd);
	server_stop();
}

static void test_reply_after_client_left_is_dropped(void)
{
	server_start(0, 0);
	atomic_store(&replies_dropped, 0);
	atomic_store(&async_replies, 0);
	int fd = client_connect();
	send_str(fd, "{\"cmd\":\"health\"}\n"); /* answered after 200 ms */
	close(fd);
	/* wait for the handler's late reply, then check the server still serves */
	for (int i = 0; i < DEADLINE_MS / 10 && atomic_load(&async_replies) == 0; i++)
		poll(NULL, 0, 10);
	CHECK_EQ(atomic_load(&replies_dropped), 1);
	CHECK_EQ(clients_settle(0), 0);
	server_stop();
}

static void test_500_clients_at_once_over_max_64_get_busy_and_server_survives(void)
{
	server_start(64, 0);
	enum { N = 500 };
	static int fds[N];
	for (int i = 0; i < N; i++)
		fds[i] = client_connect();
	int ok = 0, busy = 0, other = 0;
	for (int i = 0; i < N; i++) {
		send_str(fds[i], "{\"cmd\":\"version\"}\n");
		const char *line = read_line(fds[i]);
		if (strcmp(line, "{\"ok\":true,\"result\":{\"version\":\"test\"}}") == 0)
			ok++;
		else if (strcmp(error_code(line), "busy") == 0)
			busy++;
		else
			other++;
	}
	CHECK_EQ(ok, 64);
	CHECK_EQ(busy, N - 64);
	CHECK_EQ(other, 0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	CHECK_EQ(clients_settle(0), 0);
	int fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n");
	CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	close(fd);
	server_stop();
}

static void test_client_that_never_reads_is_dropped_and_stalls_nobody(void)
{
	server_start(0, 0);
	int sink = client_connect();
	int fd = client_connect();
	/* ~2 KiB of help per request: 2000 requests = ~4 MiB of replies */
	const char *req = "{\"cmd\":\"help\"}\n";
	int sent = 0;
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = { .fd = sink, .events = POLLOUT };
		if (poll(&p, 1, 1000) != 1)
			break;
		if (send(sink, req, strlen(req), MSG_NOSIGNAL | MSG_DONTWAIT) <= 0)
			break;
		sent++;
		if (i % 100 == 0) {
			send_str(fd, "{\"cmd\":\"version\"}\n");
			CHECK_STR(read_line(fd), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
		}
	}
	CHECK(sent > 100);
	/* the sink was dropped: the server counts only fd (and the probe) */
	CHECK_EQ(clients_settle(1), 1);
	CHECK(closed_by_server(sink));
	close(sink);
	close(fd);
	server_stop();
}

static void test_silent_client_is_closed_after_idle_timeout(void)
{
	server_start(0, 200);
	int fd = client_connect();
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK(closed_by_server(fd));
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	CHECK(ms >= 150 && ms < 2000);
	close(fd);
	server_stop();
}

static long ms_since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

/* Connect and ask for the version every 20 ms until served (the reply
 * line) or DEADLINE_MS passes ("busy" lines meanwhile); *fd_out is the
 * served connection. */
static const char *version_when_served(int *fd_out)
{
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int fd = client_connect();
		send_str(fd, "{\"cmd\":\"version\"}\n");
		const char *line = read_line(fd);
		if (strcmp(error_code(line), "busy") != 0 || ms_since(&start) > DEADLINE_MS) {
			*fd_out = fd;
			return line;
		}
		close(fd);
		poll(NULL, 0, 20);
	}
}

static void test_when_full_a_client_silent_past_the_handshake_loses_its_place(void)
{
	handshake_ms = 300;
	server_start(4, 0);
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	int silent[3];
	for (int i = 0; i < 3; i++)
		silent[i] = client_connect();
	int talker = client_connect();
	send_str(talker, "{\"cmd\":\"version\"}\n");
	CHECK_STR(read_line(talker), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	/* full, and nobody silent for 300 ms yet: busy, as before */
	int fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n");
	CHECK_STR(error_code(read_line(fd)), "busy");
	close(fd);
	/* from 300 ms on, each newcomer takes a silent client's place */
	int fresh[3];
	for (int i = 0; i < 3; i++)
		CHECK_STR(version_when_served(&fresh[i]), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	CHECK(ms_since(&start) >= 300);
	for (int i = 0; i < 3; i++)
		CHECK(closed_by_server(silent[i]));
	/* the clients that spoke keep their places: full again, busy */
	fd = client_connect();
	send_str(fd, "{\"cmd\":\"version\"}\n");
	CHECK_STR(error_code(read_line(fd)), "busy");
	close(fd);
	send_str(talker, "{\"cmd\":\"version\"}\n");
	CHECK_STR(read_line(talker), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	for (int i = 0; i < 3; i++) {
		close(silent[i]);
		close(fresh[i]);
	}
	close(talker);
	CHECK_EQ(clients_settle(0), 0);
	server_stop();
}

static void test_self_bound_socket_gets_the_admin_groups_gid(void)
{
	struct event_base *b = event_base_new();
	char err[ERR_MAX] = "";
	/* "daemon" is gid 1 on Debian; any group raced may give will do */
	struct group *gr = getgrnam("daemon");
	CHECK(gr != NULL);
	if (!gr)
		return;
	gid_t gid = gr->gr_gid;
	struct ctlserver_options o = { .admin_group = "daemon" };
	struct ctlserver *s1 = ctlserver_listen(b, sock_path, &o, handle, NULL, err);
	CHECK(s1 != NULL);
	struct stat st;
	CHECK_EQ(stat(sock_path, &st), 0);
	CHECK_EQ(st.st_gid, gid);
	CHECK_EQ(st.st_mode & 0777, 0660);
	ctlserver_free(s1);
	/* a group that does not exist grants nothing and changes nothing */
	o.admin_group = "raced-no-such-group";
	s1 = ctlserver_listen(b, sock_path, &o, handle, NULL, err);
	CHECK(s1 != NULL);
	CHECK_EQ(stat(sock_path, &st), 0);
	CHECK_EQ(st.st_gid, getegid());
	ctlserver_free(s1);
	event_base_free(b);
}

static void test_stale_socket_is_replaced_and_live_one_refused(void)
{
	/* a socket file nobody listens on, as a crashed daemon leaves it */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
	struct event_base *b = event_base_new();
	char err[ERR_MAX] = "";
	struct ctlserver *s1 = ctlserver_listen(b, sock_path, NULL, handle, NULL, err);
	CHECK(s1 != NULL);
	struct stat st;
	CHECK_EQ(stat(sock_path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0660);
	struct ctlserver *s2 = ctlserver_listen(b, sock_path, NULL, handle, NULL, err);
	CHECK(s2 == NULL);
	char want[ERR_MAX];
	snprintf(want, sizeof want, "another raced is already listening on %s; stop it first, "
	         "or set control_socket to another path", sock_path);
	CHECK_STR(err, want);
	ctlserver_free(s1);
	CHECK(access(sock_path, F_OK) != 0);
	/* a regular file is not ours to remove */
	FILE *f = fopen(sock_path, "w");
	fclose(f);
	CHECK(ctlserver_listen(b, sock_path, NULL, handle, NULL, err) == NULL);
	CHECK(strstr(err, "exists and is not a socket") != NULL);
	unlink(sock_path);
	event_base_free(b);
}

static void test_adopted_listening_socket_is_served(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* blocking, inheritable: as systemd passes it */
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	CHECK_EQ(listen(fd, 16), 0);
	adopt_fd = fd;
	server_start(0, 0);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	int c = client_connect();
	send_str(c, "{\"cmd\":\"version\"}\n");
	CHECK_STR(read_line(c), "{\"ok\":true,\"result\":{\"version\":\"test\"}}");
	close(c);
	server_stop();
	CHECK(access(sock_path, F_OK) == 0); /* systemd's file: not ours to remove */
	unlink(sock_path);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir_path, sizeof dir_path, "/tmp/ctlserver-test.XXXXXX");
	if (!mkdtemp(dir_path))
		return 1;
	snprintf(sock_path, sizeof sock_path, "%s/raced.sock", dir_path);
	RUN(test_good_request_gets_ok_result_line);
	RUN(test_each_bad_line_is_answered_to_that_client_only);
	RUN(test_one_mib_line_gets_line_too_long_then_close);
	RUN(test_line_of_exactly_64_kib_is_parsed_not_refused);
	RUN(test_half_line_then_disconnect_costs_nothing);
	RUN(test_request_then_shutdown_still_gets_its_reply);
	RUN(test_pipelined_requests_are_answered_in_order);
	RUN(test_reply_after_client_left_is_dropped);
	RUN(test_500_clients_at_once_over_max_64_get_busy_and_server_survives);
	RUN(test_client_that_never_reads_is_dropped_and_stalls_nobody);
	RUN(test_silent_client_is_closed_after_idle_timeout);
	RUN(test_when_full_a_client_silent_past_the_handshake_loses_its_place);
	RUN(test_stale_socket_is_replaced_and_live_one_refused);
	RUN(test_self_bound_socket_gets_the_admin_groups_gid);
	RUN(test_adopted_listening_socket_is_served);
	rmdir(dir_path);
	return CHECK_DONE();
}
