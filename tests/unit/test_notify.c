#include "check.h"
#include "error.h"
#include "notify.h"

#include <event2/event.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A real AF_UNIX datagram socket stands in for systemd's NOTIFY_SOCKET. */
static char sock_dir[] = "/tmp/raced-notify-XXXXXX";
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static int sock_fd = -1;

static void notify_socket_open(void)
{
	if (!mkdtemp(sock_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(sock_path, sizeof sock_path, "%s/notify", sock_dir);
	sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
	if (sock_fd < 0 || bind(sock_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("notify socket");
		exit(1);
	}
	setenv("NOTIFY_SOCKET", sock_path, 1);
}

static void notify_socket_close(void)
{
	close(sock_fd);
	unlink(sock_path);
	rmdir(sock_dir);
}

/* Next datagram within timeout_ms, as a string; NULL on timeout. */
static const char *recv_msg(int timeout_ms)
{
	static char buf[4096];
	struct pollfd p = {.fd = sock_fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) != 1)
		return NULL;
	ssize_t n = recv(sock_fd, buf, sizeof buf - 1, 0);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void test_notify_messages_arrive_in_order(void)
{
	uint64_t before = now_usec();
	CHECK(notify_ready() > 0);
	CHECK(notify_status("idle") > 0);
	CHECK(notify_reloading() > 0);
	uint64_t after = now_usec();
	CHECK(notify_ready() > 0);
	CHECK(notify_status("import %d: %d/%d entries, %d errors", 42, 1200, 5000, 3) > 0);
	CHECK(notify_stopping() > 0);

	CHECK_STR(recv_msg(2000), "READY=1");
	CHECK_STR(recv_msg(2000), "STATUS=idle");
	const char *m = recv_msg(2000);
	unsigned long long usec = 0;
	CHECK(m && sscanf(m, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec) == 1);
	CHECK(usec >= before && usec <= after);
	CHECK_STR(recv_msg(2000), "READY=1");
	CHECK_STR(recv_msg(2000), "STATUS=import 42: 1200/5000 entries, 3 errors");
	CHECK_STR(recv_msg(2000), "STOPPING=1");
	CHECK(recv_msg(0) == NULL);
}

static void test_notify_status_is_sent_only_when_it_changes(void)
{
	CHECK(notify_status("idle") > 0);
	CHECK_EQ(notify_status("idle"), 0);
	CHECK_EQ(notify_status("%s", "idle"), 0);
	CHECK(notify_status("waiting for the database") > 0);
	CHECK_EQ(notify_status("waiting for the database"), 0);
	CHECK(notify_status("idle") > 0);
	CHECK_STR(recv_msg(2000), "STATUS=idle");
	CHECK_STR(recv_msg(2000), "STATUS=waiting for the database");
	CHECK_STR(recv_msg(2000), "STATUS=idle");
	CHECK(recv_msg(0) == NULL);
}

static void test_notify_status_newlines_do_not_start_new_assignments(void)
{
	CHECK(notify_status("a\nREADY=1") > 0);
	CHECK_STR(recv_msg(2000), "STATUS=a READY=1");
}

static void test_notify_status_masks_secrets(void)
{
	CHECK(notify_status("waiting for the database (host=db password=%s)", "hunter2") > 0);
	CHECK_STR(recv_msg(2000), "STATUS=waiting for the database (host=db password=***)");
	CHECK(notify_status("GET http://alice:%s@host/races", "s3cret") > 0);
	CHECK_STR(recv_msg(2000), "STATUS=GET http://alice:***@host/races");
}

static void test_notify_without_notify_socket_is_a_noop(void)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK_EQ(notify_ready(), 0);
	CHECK_EQ(notify_stopping(), 0);
	setenv("NOTIFY_SOCKET", sock_path, 1);
	CHECK(recv_msg(0) == NULL);
}

static void test_watchdog_not_armed_unless_systemd_asks(void)
{
	struct event_base *base = event_base_new();
	char err[ERR_MAX] = "";
	unsetenv("WATCHDOG_USEC");
	CHECK_EQ(notify_watchdog_setup(base, NULL, err), 0);
	setenv("WATCHDOG_USEC", "100000", 1);
	setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
	CHECK_EQ(notify_watchdog_setup(base, NULL, err), 0);
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	notify_watchdog_teardown();
	event_base_free(base);
}

/* The watchdog test's loop: record each WATCHDOG=1's arrival time. */
#define PINGS 4
struct ping_log {
	struct event_base *base;
	uint64_t at[PINGS];
	int n;
	int other; /* datagrams that were not WATCHDOG=1 */
};

static void on_datagram(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct ping_log *pl = arg;
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strcmp(buf, "WATCHDOG=1") != 0) {
		pl->other++;
		return;
	}
	if (pl->n < PINGS)
		pl->at[pl->n++] = now_usec();
	if (pl->n == PINGS)
		event_base_loopbreak(pl->base);
}

static void test_watchdog_pings_at_half_of_watchdog_usec(void)
{
	/* start is read before the base exists, so no clock libevent reads
	 * (its cache included) can be earlier than it on a loaded machine. */
	uint64_t start = now_usec();
	struct ping_log pl = {.base = event_base_new()};
	char err[ERR_MAX] = "";
	uint64_t interval = 0;
	setenv("WATCHDOG_USEC", "400000", 1);
	CHECK_EQ(notify_watchdog_setup(pl.base, &interval, err), 1);
	CHECK_EQ(interval, 200000);
	struct event *rd = event_new(pl.base, sock_fd, EV_READ | EV_PERSIST, on_datagram, &pl);
	event_add(rd, NULL);
	struct timeval deadline = {.tv_sec = 5};
	event_base_loopexit(pl.base, &deadline);
	event_base_dispatch(pl.base);

	CHECK_EQ(pl.n, PINGS);
	CHECK_EQ(pl.other, 0);
	/* The timer keeps its cadence from the scheduled times: ping i is not
	 * before (i+1) intervals (less 10 ms: libevent reads the coarse monotonic clock) ... */
	for (int i = 0; i < pl.n; i++) {
		if (getenv("TEST_VERBOSE"))
			fprintf(stderr, "ping %d at +%llu us\n", i, (unsigned long long)(pl.at[i] - start));
		CHECK(pl.at[i] - start >= (uint64_t)(i + 1) * 200000u - 10000u);
	}
	/* ... and not at the full WATCHDOG_USEC (that would be 1600 ms): the
	 * last within 1.5 times its due time, room for a loaded machine. */
	CHECK(pl.n == PINGS && pl.at[PINGS - 1] - start < 3u * PINGS * 200000u / 2u);

	/* After teardown the loop turns but nothing more is sent. */
	notify_watchdog_teardown();
	pl.n = 0;
	struct timeval quiet = {.tv_usec = 450000}; /* > 2 intervals */
	event_base_loopexit(pl.base, &quiet);
	event_base_dispatch(pl.base);
	CHECK_EQ(pl.n, 0);

	unsetenv("WATCHDOG_USEC");
	event_free(rd);
	event_base_free(pl.base);
}

int main(void)
{
	notify_socket_open();
	RUN(test_notify_messages_arrive_in_order);
	RUN(test_notify_status_is_sent_only_when_it_changes);
	RUN(test_notify_status_newlines_do_not_start_new_assignments);
	RUN(test_notify_status_masks_secrets);
	RUN(test_notify_without_notify_socket_is_a_noop);
	RUN(test_watchdog_not_armed_unless_systemd_asks);
	RUN(test_watchdog_pings_at_half_of_watchdog_usec);
	notify_socket_close();
	return CHECK_DONE();
}
