/* test_service — the service's start-import and stop paths against a real
 * PostgreSQL (run under with-pg.sh): what a start-import is answered, and
 * when, as the database connects, is refused, or holds the run's row; what
 * stop and free do to a request in flight.  The rules themselves are
 * lifecycle's (test_service_lifecycle.c); this checks the service keeps
 * them with a real store.  The provider is a socket that accepts and never
 * answers, so an import runs until it is stopped. */
#include "check.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "service.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 30 /* for anything the database does; the machine may be busy */

static struct event_base *base;
static const char *conninfo;
static char dir[] = "/tmp/raced-service.XXXXXX";
static int provider_port;

/* What the service told, for one test. */
struct told {
	int answers;
	int64_t id;
	char err[ERR_MAX];
	int ended;
	int64_t ended_id;
	char status[32];
	int stopped;
};

static struct told T;

static void on_started(void *arg, int64_t id, const char *err)
{
	(void)arg;
	T.answers++;
	T.id = id;
	snprintf(T.err, sizeof T.err, "%s", err ? err : "");
}

static void on_ended(void *arg, int64_t id, const char *status)
{
	(void)arg;
	T.ended++;
	T.ended_id = id;
	snprintf(T.status, sizeof T.status, "%s", status);
}

static void on_stopped(void *arg)
{
	(void)arg;
	T.stopped++;
}

/* A provider that accepts connections (the kernel does) and never answers. */
static int provider_open(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	provider_port = ntohs(sa.sin_port);
	return fd;
}

/* A service on `db` (a libpq conninfo) with the race pipeline's root. */
static struct service *service_on(const char *db)
{
	char path[sizeof dir + 16], err[ERR_MAX];
	snprintf(path, sizeof path, "%s/raced.conf", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return NULL;
	fprintf(f, "[daemon]\ncontrol_socket = %s/raced.sock\nstop_timeout = 2s\n\n"
	           "[database]\nconninfo = %s\n\n"
	           "[provider main]\nbase_url = http://127.0.0.1:%d\ntimeout = 30s\n\n"
	           "[stage races]\nprovider = main\nurl = /races\nitems = /data\nkey = /id\n",
	        dir, db, provider_port);
	fclose(f);
	struct config *cfg = config_load(path, err);
	if (!cfg) {
		fprintf(stderr, "config: %s\n", err);
		return NULL;
	}
	memset(&T, 0, sizeof T);
	struct service_callbacks cb = {.import_ended = on_ended, .stopped = on_stopped};
	struct service *s = service_new(base, cfg, &cb, err);
	if (!s)
		fprintf(stderr, "service: %s\n", err);
	return s;
}

/* Turn the loop until *count reaches want, or WAIT_S pass. */
static bool turn_until(const int *count, int want)
{
	time_t end = time(NULL) + WAIT_S;
	while (*count < want && time(NULL) < end) {
		struct timeval tick = {0, 20000};
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
	return *count >= want;
}

/* The database's phase as service_stats() shows it ("ready", "backoff"...). */
static bool db_phase_is(struct service *s, const char *phase)
{
	time_t end = time(NULL) + WAIT_S;
	for (;;) {
		json_t *st = service_stats(s);
		bool is = strcmp(json_string_value(json_object_get(json_object_get(st, "store"), "phase")),
		                 phase) == 0;
		json_decref(st);
		if (is || time(NULL) >= end)
			return is;
		struct timeval tick = {0, 20000};
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void nowhere(char *db, size_t len)
{
	snprintf(db, len, "host=%s/nopg dbname=races connect_timeout=2", dir);
}

/* A service on db with a start-import asked before its first connection:
 * it waits for it. */
static struct service *asked_while_connecting(const char *db)
{
	char err[ERR_MAX];
	struct service *s = service_on(db);
	CHECK_EQ(service_start_import(s, "uid 1", NULL, on_started, NULL, err), 0);
	CHECK_EQ(T.answers, 0);
	return s;
}

/* A service on the test's database, connected, with a start-import asked:
 * its run row is being inserted. */
static struct service *asked_while_connected(void)
{
	char err[ERR_MAX];
	struct service *s = service_on(conninfo);
	CHECK(db_phase_is(s, "ready"));
	CHECK_EQ(service_start_import(s, "uid 1", NULL, on_started, NULL, err), 0);
	CHECK_EQ(T.answers, 0);
	return s;
}

static void test_start_while_the_database_is_down_is_refused_at_once(void)
{
	char db[256], err[ERR_MAX];
	nowhere(db, sizeof db);
	struct service *s = service_on(db);
	CHECK(db_phase_is(s, "backoff"));
	CHECK(service_start_import(s, "uid 1", NULL, on_started, NULL, err) < 0);
	CHECK(starts_with(err, "the database is not connected ("));
	CHECK(strstr(err, "); the import would wait — try again once 'racectl health' is OK") != NULL);
	CHECK_EQ(T.answers, 0);
	service_free(s);
	CHECK_EQ(T.answers, 0);
}

static void test_start_while_first_connecting_waits_and_is_answered_when_refused(void)
{
	char db[256], err[ERR_MAX];
	nowhere(db, sizeof db);
	struct service *s = asked_while_connecting(db);
	CHECK(turn_until(&T.answers, 1));
	CHECK_EQ(T.id, 0);
	CHECK(starts_with(T.err, "the database is not connected ("));
	CHECK(strstr(T.err, "); try again once 'racectl health' is OK") != NULL);
	CHECK(strstr(T.err, "would wait") == NULL);
	/* Answered once, and nothing waits any more: a new ask is refused at once. */
	CHECK(service_start_import(s, "uid 1", NULL, on_started, NULL, err) < 0);
	CHECK_EQ(T.answers, 1);
	service_free(s);
	CHECK_EQ(T.answers, 1);
	CHECK_EQ(T.ended, 0);
}

static void test_once_waits_through_a_refused_connection_and_stops_at_once(void)
{
	char db[256], err[ERR_MAX], line[128];
	nowhere(db, sizeof db);
	struct service *s = service_on(db);
	CHECK_EQ(service_start_import_when_ready(s, "raced --once", NULL, err), 0);
	CHECK(db_phase_is(s, "backoff"));
	service_status_line(s, line, sizeof line);
	CHECK_STR(line, "waiting for the database (backoff)");
	CHECK_EQ(T.ended, 0);
	service_stop(s);
	CHECK_EQ(T.stopped, 1);
	CHECK_EQ(T.ended, 0);
	service_free(s);
}

static void test_start_while_first_connecting_starts_once_connected(void)
{
	char err[ERR_MAX];
	struct service *s = asked_while_connecting(conninfo);
	CHECK(service_start_import(s, "uid 2", NULL, on_started, NULL, err) < 0);
	CHECK_STR(err, "an import is being started");
	CHECK(turn_until(&T.answers, 1));
	CHECK(T.id > 0);
	CHECK_STR(T.err, "");
	service_stop(s);
	CHECK(turn_until(&T.stopped, 1));
	CHECK_EQ(T.ended_id, T.id);
	CHECK_STR(T.status, "interrupted");
	service_free(s);
}

/* One request at a time: while its row is inserted, while it runs, and
 * while it ends; once reaped, the next is taken. */
static void test_one_start_at_a_time_each_refusal_naming_why(void)
{
	char err[ERR_MAX], want[ERR_MAX];
	struct service *s = asked_while_connected();
	CHECK(service_start_import(s, "uid 2", NULL, on_started, NULL, err) < 0);
	CHECK_STR(err, "an import is being started");
	CHECK(turn_until(&T.answers, 1));
	int64_t id = T.id;
	CHECK(id > 0);
	CHECK(service_start_import(s, "uid 2", NULL, on_started, NULL, err) < 0);
	snprintf(want, sizeof want, "import %" PRId64 " is running; wait for it to end or cancel it "
	         "(racectl cancel)", id);
	CHECK_STR(err, want);
	CHECK_EQ(service_cancel(s, err), id);
	CHECK(service_start_import(s, "uid 2", NULL, on_started, NULL, err) < 0);
	snprintf(want, sizeof want, "import %" PRId64 " is ending (its final status is being written); "
	         "try again in a moment", id);
	CHECK_STR(err, want);
	CHECK(turn_until(&T.ended, 1));
	CHECK_EQ(T.ended_id, id);
	CHECK_STR(T.status, "cancelled");
	CHECK_EQ(service_start_import(s, "uid 2", NULL, on_started, NULL, err), 0);
	CHECK(turn_until(&T.answers, 2));
	CHECK_EQ(T.id, id + 1);
	service_stop(s);
	CHECK(service_start_import(s, "uid 3", NULL, on_started, NULL, err) < 0);
	CHECK_STR(err, "raced is shutting down");
	CHECK(turn_until(&T.stopped, 1));
	service_free(s);
}

/* The run being created gets its import, which is interrupted at once. */
static void test_stop_while_the_run_is_created_answers_with_it_then_drains(void)
{
	struct service *s = asked_while_connected();
	service_stop(s);
	CHECK_EQ(T.stopped, 0);
	CHECK_EQ(T.answers, 0);
	CHECK(turn_until(&T.stopped, 1));
	CHECK_EQ(T.answers, 1);
	CHECK(T.id > 0);
	CHECK_EQ(T.ended, 1);
	CHECK_EQ(T.ended_id, T.id);
	CHECK_STR(T.status, "interrupted");
	service_free(s);
}

static void test_stop_while_waiting_for_the_database_answers_and_stops_at_once(void)
{
	struct service *s = asked_while_connecting(conninfo);
	service_stop(s);
	CHECK_EQ(T.answers, 1);
	CHECK_STR(T.err, "raced is shutting down");
	CHECK_EQ(T.stopped, 1);
	service_free(s);
	CHECK_EQ(T.answers, 1);
	CHECK_EQ(T.ended, 0);
}

/* --full goes through as any start; --resume of a run that does not exist
 * is answered with why (nothing to resume); the two together are refused
 * whatever the state. */
static void test_full_starts_and_resume_of_nothing_is_answered(void)
{
	char err[ERR_MAX];
	struct service *s = service_on(conninfo);
	CHECK(db_phase_is(s, "ready"));
	const struct service_start both = {.full = true, .resume = true};
	CHECK_EQ(service_start_import(s, "uid 1", &both, on_started, NULL, err), -EINVAL);
	CHECK_STR(err, "full and resume exclude each other: a full import reads no state, a resumed one continues "
	               "from it");
	const struct service_start resume = {.resume = true, .resume_id = 999};
	CHECK_EQ(service_start_import(s, "uid 1", &resume, on_started, NULL, err), 0);
	CHECK(turn_until(&T.answers, 1));
	CHECK_EQ(T.id, 0);
	CHECK(starts_with(T.err, "there is no import 999 to resume"));
	const struct service_start full = {.full = true};
	CHECK_EQ(service_start_import(s, "uid 1", &full, on_started, NULL, err), 0);
	CHECK(turn_until(&T.answers, 2));
	CHECK(T.id > 0);
	CHECK_STR(T.err, "");
	service_stop(s);
	CHECK(turn_until(&T.stopped, 1));
	service_free(s);
}

static void test_free_answers_a_start_waiting_for_its_run_row(void)
{
	struct service *s = asked_while_connected();
	service_free(s);
	CHECK_EQ(T.answers, 1);
	CHECK_EQ(T.id, 0);
	CHECK_STR(T.err, "raced is shutting down");
}

int main(void)
{
	conninfo = getenv("PG_CONNINFO");
	int provider = conninfo ? provider_open() : -1;
	if (provider < 0 || !mkdtemp(dir)) {
		fprintf(stderr, "set-up: %s\n", conninfo ? strerror(errno) : "run under tests/lib/with-pg.sh");
		return conninfo ? EXIT_FAILURE : 77; /* 77: skipped */
	}
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_WARNING);
	base = event_base_new();
	RUN(test_start_while_the_database_is_down_is_refused_at_once);
	RUN(test_start_while_first_connecting_waits_and_is_answered_when_refused);
	RUN(test_once_waits_through_a_refused_connection_and_stops_at_once);
	RUN(test_start_while_first_connecting_starts_once_connected);
	RUN(test_one_start_at_a_time_each_refusal_naming_why);
	RUN(test_stop_while_the_run_is_created_answers_with_it_then_drains);
	RUN(test_stop_while_waiting_for_the_database_answers_and_stops_at_once);
	RUN(test_free_answers_a_start_waiting_for_its_run_row);
	RUN(test_full_starts_and_resume_of_nothing_is_answered);
	event_base_free(base);
	close(provider);
	char path[sizeof dir + 16];
	snprintf(path, sizeof path, "%s/raced.conf", dir);
	unlink(path);
	rmdir(dir);
	return CHECK_DONE();
}
