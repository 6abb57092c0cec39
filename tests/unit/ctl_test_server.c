/* ctl_test_server — a stand-in daemon for racectl's tests: ctlserver with
 * canned replies and a simulated import, so racectl can be driven as a
 * subprocess over a real Unix socket without PostgreSQL or providers.
 *
 *   ctl_test_server --socket PATH [--mode 0666] [--max-clients N]
 *                   [--admin-group NAME] [--health ok|warning|critical|error]
 *                   [--import-result succeeded|failed] [--stats-polls N]
 *                   [--silent] [--reply LINE]
 *
 * Prints "READY" on stdout once listening; SIGTERM/SIGINT stop it.
 * --silent listens and accepts but never answers (a hung daemon).
 * --reply answers every request line with LINE, whatever it asked (a
 * daemon that talks nonsense).
 * The import: start-import -> id 42, running; each stats call advances it;
 * after --stats-polls (default 3) stats calls it ends with --import-result.
 * errors: 4 HTTP 404s on athletes, --limit URLs shown (default 3).
 */
#include "ctlserver.h"
#include "error.h"
#include "raced_version.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct state {
	struct ctlserver *srv;
	const char *health;
	const char *result;
	int polls_to_end;
	bool running, paused, ever;
	const char *final;
	int polls;
};

static json_t *stats_json(struct state *s)
{
	const char *state = s->running ? "running" : s->ever ? s->final : "idle";
	long long done = s->polls * 10;
	json_t *imp = s->ever
		? json_pack("{s:i,s:s,s:b,s:s,s:o}", "id", 42, "state", state, "paused", s->paused,
		            "started_at", "2024-05-01T10:00:00Z",
		            "finished_at", s->running ? json_null() : json_string("2024-05-01T10:01:00Z"))
		: json_pack("{s:n,s:s,s:b}", "id", "state", "idle", "paused", 0);
	return json_pack(
		"{s:o,s:[{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:I,s:i,s:i,s:I,s:f,s:[{s:s,s:i,s:i,s:i,s:i}]},"
		"{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:I,s:i,s:i,s:I,s:f,s:[]}],"
		"s:{s:s,s:i,s:i,s:i,s:s},s:[{s:s,s:i,s:i,s:i,s:i,s:i,s:I}]}",
		"import", imp,
		"stages",
		"name", "races", "kind", "root", "buffered", 3, "buffer_size", 500, "in_flight", 0,
		"concurrency", 1, "queued", 0, "done", (json_int_t)10, "failed", 0, "retried", 0,
		"emitted", (json_int_t)10, "rate_per_s", 0.0,
		"subscriptions", "consumer", "entries", "max_demand", 500, "min_demand", 250,
		"demand", s->running ? 120 : 0, "pending", 0,
		"name", "entries", "kind", "child", "buffered", 0, "buffer_size", 500,
		"in_flight", s->running ? 8 : 0, "concurrency", 8, "queued", 2,
		"done", (json_int_t)done, "failed", 1, "retried", 3, "emitted", (json_int_t)done,
		"rate_per_s", s->running ? 45.25 : 0.0, "subscriptions",
		"store", "state", "connected", "pending_rows", 120, "batches", 12, "reconnects", 0,
		"reader", "failed",
		"providers", "name", "fixture", "requests", 41, "retries", 3, "failed", 1,
		"in_flight", 8, "waiting", 0, "bytes", (json_int_t)123456);
}

static json_t *run_json(struct state *s)
{
	return json_pack("{s:i,s:s,s:s,s:o,s:s,s:{s:i,s:i,s:i}}", "id", 42,
	                 "status", s->running ? "running" : s->final,
	                 "started_at", "2024-05-01T10:00:00Z",
	                 "finished_at", s->running ? json_null() : json_string("2024-05-01T10:01:00Z"),
	                 "requested_by", "root", "counts", "races", 10, "entries", 200, "errors", 1);
}

/* Import 42's errors: 4 HTTP 404s on athletes, `limit` URLs shown (0: 3). */
static json_t *errors_json(struct state *s, json_int_t limit)
{
	static const char *const urls[] = { "http://p/athletes/1", "http://p/athletes/2",
	                                    "http://p/athletes/3", "http://p/athletes/4" };
	json_t *shown = json_array();
	for (json_int_t i = 0; i < (limit ? limit : 3) && i < 4; i++)
		json_array_append_new(shown, json_string(urls[i]));
	return json_pack("{s:i,s:s,s:i,s:[{s:s,s:s,s:i,s:o}]}", "import_id", 42, "status",
	                 s->running ? "running" : s->ever ? s->final : "succeeded", "errors", 4,
	                 "groups", "stage", "athletes", "cause", "HTTP 404", "count", 4, "urls", shown);
}

static void handle(void *ctx, struct control_request *req)
{
	struct state *s = ctx;
	const char *cmd = control_request_name(req);
	json_t *args = control_request_args(req);
	if (strcmp(cmd, "version") == 0) {
		control_reply_ok(req, json_pack("{s:s}", "version", RACED_VERSION));
	} else if (strcmp(cmd, "health") == 0) {
		if (strcmp(s->health, "error") == 0)
			control_reply_error(req, CONTROL_INTERNAL, "health check broke");
		else
			control_reply_ok(req, json_pack("{s:s,s:s}", "status", s->health, "message",
			                                 strcmp(s->health, "ok") == 0 ? "idle, db connected" :
			                                 strcmp(s->health, "warning") == 0 ? "import 42: 3 providers retrying" :
			                                 "database unreachable: connection refused"));
	} else if (strcmp(cmd, "start-import") == 0) {
		if (json_object_size(args)) {
			/* full/resume: show what arrived, for racectl's tests */
			char *text = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
			control_reply_error(req, CONTROL_FAILED, "start-import got %s", text ? text : "?");
			free(text);
			return;
		}
		if (s->running) {
			control_reply_error(req, CONTROL_CONFLICT, "import 42 is running; cancel it or wait");
			return;
		}
		s->running = s->ever = true;
		s->polls = 0;
		control_reply_ok(req, json_pack("{s:i}", "import_id", 42));
	} else if (strcmp(cmd, "cancel") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
		if (!s->running) {
			control_reply_error(req, CONTROL_CONFLICT, "no import is running");
			return;
		}
		if (strcmp(cmd, "cancel") == 0) {
			s->running = false;
			s->final = "cancelled";
		}
		s->paused = strcmp(cmd, "pause") == 0;
		control_reply_ok(req, json_pack("{s:i}", "import_id", 42));
	} else if (strcmp(cmd, "stats") == 0) {
		if (s->running && ++s->polls >= s->polls_to_end) {
			s->running = false;
			s->final = s->result;
		}
		control_reply_ok(req, stats_json(s));
	} else if (strcmp(cmd, "status") == 0) {
		json_t *id = json_object_get(args, "id");
		if (id && (json_integer_value(id) != 42 || !s->ever)) {
			control_reply_error(req, CONTROL_NOT_FOUND, "no import %lld",
			                    (long long)json_integer_value(id));
			return;
		}
		control_reply_ok(req, s->ever ? json_pack("{s:[o]}", "runs", run_json(s))
		                              : json_pack("{s:[]}", "runs"));
	} else if (strcmp(cmd, "errors") == 0) {
		control_reply_ok(req, errors_json(s, json_integer_value(json_object_get(args, "limit"))));
	} else if (strcmp(cmd, "reload") == 0) {
		control_reply_ok(req, json_pack("{s:s,s:[s],s:[s],s:[],s:i}", "config", "/etc/raced/raced.conf",
		                                "applied", "[provider main] rate_limit 0 -> 50",
		                                "waiting", "[database] batch_size 500 -> 200",
		                                "restart", "waits_for_import", 42));
	} else if (strcmp(cmd, "config") == 0) {
		control_reply_ok(req, json_pack("{s:s,s:[{s:s,s:n,s:s,s:s,s:s,s:s,s:i,s:s},"
		                                "{s:s,s:s,s:s,s:n,s:n,s:s,s:n,s:s}]}",
		                                "config", "/etc/raced/raced.conf", "keys",
		                                "section", "daemon", "name", "key", "max_clients", "value", "8",
		                                "default", "64", "source", "/etc/raced/raced.conf:3", "line", 3,
		                                "reload", "live",
		                                "section", "daemon", "name", "main", "key", "metrics", "value",
		                                "default", "source", "default", "line", "reload", "restart"));
	} else if (strcmp(cmd, "help") == 0) {
		ctlserver_help(ctx, req);
	} else {
		control_reply_error(req, CONTROL_FAILED, "not in the test server");
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

/* Listen at path without ctlserver (the raw modes); the fd or -1. */
static int listen_raw(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
		perror("ctl_test_server");
		return -1;
	}
	printf("READY\n");
	fflush(stdout);
	return fd;
}

static int run_silent(const char *path)
{
	int fd = listen_raw(path);
	if (fd < 0)
		return 1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig); /* accepted by the kernel's backlog, never answered */
	close(fd);
	unlink(path);
	return 0;
}

/* Each client: read up to its first newline, answer reply, close.  Ends
 * when a signal kills the process. */
static int run_reply(const char *path, const char *reply)
{
	int fd = listen_raw(path);
	if (fd < 0)
		return 1;
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		char buf[4096];
		ssize_t n;
		while ((n = read(c, buf, sizeof buf)) > 0 && !memchr(buf, '\n', (size_t)n))
			;
		if (write(c, reply, strlen(reply)) < 0 || write(c, "\n", 1) < 0)
			perror("ctl_test_server: reply");
		close(c);
	}
}

int main(int argc, char **argv)
{
	struct state s = { .health = "ok", .result = "succeeded", .polls_to_end = 3 };
	struct ctlserver_options opts = { 0 };
	const char *path = NULL;
	bool silent = false;
	const char *reply = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (strcmp(a, "--socket") == 0) path = v, i++;
		else if (strcmp(a, "--mode") == 0) opts.mode = (unsigned)strtoul(v, NULL, 8), i++;
		else if (strcmp(a, "--max-clients") == 0) opts.max_clients = (uint32_t)atoi(v), i++;
		else if (strcmp(a, "--admin-group") == 0) opts.admin_group = v, i++;
		else if (strcmp(a, "--health") == 0) s.health = v, i++;
		else if (strcmp(a, "--import-result") == 0) s.result = v, i++;
		else if (strcmp(a, "--stats-polls") == 0) s.polls_to_end = atoi(v), i++;
		else if (strcmp(a, "--silent") == 0) silent = true;
		else if (strcmp(a, "--reply") == 0) reply = v, i++;
		else {
			fprintf(stderr, "ctl_test_server: unknown option %s\n", a);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "ctl_test_server: --socket PATH is required\n");
		return 2;
	}
	if (silent)
		return run_silent(path);
	if (reply)
		return run_reply(path, reply);
	signal(SIGPIPE, SIG_IGN);
	struct event_base *base = event_base_new();
	char err[ERR_MAX];
	s.srv = ctlserver_listen(base, path, &opts, handle, &s, err);
	if (!s.srv) {
		fprintf(stderr, "ctl_test_server: %s\n", err);
		event_base_free(base);
		return 1;
	}
	struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
	struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
	event_add(term, NULL);
	event_add(intr, NULL);
	printf("READY\n");
	fflush(stdout);
	event_base_dispatch(base);
	ctlserver_free(s.srv);
	event_free(term);
	event_free(intr);
	event_base_free(base);
	return 0;
}
