/* Unit tests for fetch: every rule of SPEC.md §3 the fetcher owns, checked
 * against the real fixture provider on loopback ($FIXTURE), started afresh
 * with the options each test needs.  The fixture's own counters (/_attempts,
 * /_stats, /_log) are the witnesses; every loop run has a deadline that
 * fails the test instead of hanging it. */
#include "baseurl.h"
#include "check.h"
#include "error.h"
#include "fetch.h"
#include "membudget.h"
#include "raced_version.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the fixture provider ---- */

struct fixture {
	pid_t pid;
	int port;
	char dir[64];
	char url[64];  /* http://127.0.0.1:PORT */
};

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Start the fixture with extra arguments (NULL-terminated); 0 on success. */
static int fixture_start(struct fixture *fx, const char *const *extra)
{
	const char *exe = getenv("FIXTURE");
	char port_file[128];
	const char *argv[64];
	size_t n = 0;

	memset(fx, 0, sizeof *fx);
	if (!exe) {
		fprintf(stderr, "FIXTURE is not set\n");
		return -1;
	}
	snprintf(fx->dir, sizeof fx->dir, "/tmp/test_fetch.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(port_file, sizeof port_file, "%s/port", fx->dir);
	argv[n++] = exe;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--port-file";
	argv[n++] = port_file;
	for (size_t i = 0; extra && extra[i] && n < 62; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	fx->pid = fork();
	if (fx->pid < 0)
		return -1;
	if (fx->pid == 0) {
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	double deadline = mono_ms() + 10000;
	while (mono_ms() < deadline) {
		FILE *f = fopen(port_file, "r");
		if (f) {
			int ok = fscanf(f, "%d", &fx->port);
			fclose(f);
			if (ok == 1 && fx->port > 0) {
				snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%d", fx->port);
				return 0;
			}
		}
		int status;
		if (waitpid(fx->pid, &status, WNOHANG) == fx->pid) {
			fprintf(stderr, "fixture exited before listening\n");
			fx->pid = 0;
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "fixture did not write its port within 10 s\n");
	return -1;
}

static void fixture_stop(struct fixture *fx)
{
	char path[128];
	if (fx->pid > 0) {
		kill(fx->pid, SIGTERM);
		waitpid(fx->pid, NULL, 0);
	}
	snprintf(path, sizeof path, "%s/port", fx->dir);
	unlink(path);
	rmdir(fx->dir);
	fx->pid = 0;
}

struct buf {
	char *p;
	size_t n;
};

static size_t buf_write(char *d, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *p = realloc(b->p, b->n + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, d, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* A blocking GET of the fixture's introspection endpoints (test side only). */
static json_t *fixture_get(const struct fixture *fx, const char *path)
{
	char url[512];
	struct buf b = {0};
	CURL *e = curl_easy_init();
	json_t *doc = NULL;

	snprintf(url, sizeof url, "%s%s", fx->url, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
	if (curl_easy_perform(e) == CURLE_OK && b.p)
		doc = json_loadb(b.p, b.n, 0, NULL);
	curl_easy_cleanup(e);
	free(b.p);
	if (!doc)
		fprintf(stderr, "fixture GET %s failed\n", path);
	return doc;
}

static long long fixture_attempts(const struct fixture *fx, const char *path)
{
	char q[256];
	CURL *e = curl_easy_init();
	char *esc = curl_easy_escape(e, path, 0);
	snprintf(q, sizeof q, "/_attempts?url=%s", esc);
	curl_free(esc);
	curl_easy_cleanup(e);
	json_t *a = fixture_get(fx, q);
	long long v = a ? (long long)json_integer_value(json_object_get(a, "attempts")) : -1;
	json_decref(a);
	return v;
}

/* Timestamps (ms) of the fixture's log entries for path, in order. */
static size_t fixture_log_times(const struct fixture *fx, const char *prefix, long long *t, size_t max)
{
	json_t *log = fixture_get(fx, "/_log");
	json_t *reqs = json_object_get(log, "requests");
	size_t n = 0, i;
	json_t *rec;
	json_array_foreach(reqs, i, rec) {
		const char *u = json_string_value(json_array_get(rec, 1));
		if (u && strncmp(u, prefix, strlen(prefix)) == 0 && n < max)
			t[n++] = (long long)json_integer_value(json_array_get(rec, 0));
	}
	json_decref(log);
	return n;
}

/* ---- driving the loop ---- */

#define MAX_GOT 1100

struct got {
	int calls;
	enum fetch_outcome outcome;
	long status;
	uint32_t attempts;
	char url[256], effective_url[256], link_next[256], error[ERR_MAX];
	char header[256]; /* fetch_want_header()'s value, "" for NULL */
	bool has_header;
	json_t *doc;
	bool not_modified, conditional, has_body;
	char etag[FETCH_VALIDATOR_MAX + 1], last_modified[FETCH_VALIDATOR_MAX + 1]; /* "" for NULL */
	bool has_etag, has_last_modified;
	uint64_t bytes;
	size_t body_len;
	double t_ms;
};

struct run {
	struct event_base *base;
	struct fetcher *f;
	struct fetch_provider *p;
	struct got got[MAX_GOT];
	struct fetch *req[MAX_GOT];
	int outstanding;
	bool timed_out;
	/* what a callback does besides recording (re-entrancy tests) */
	int cancel_on_done;          /* index of the request to cancel, or -1 */
	const char *start_on_done;   /* URL to start from the callback */
	const char *const *start_all_on_done; /* URLs to start from it, NULL-ended, into the
	                                         slots below stats_via_provider's */
	bool free_on_done;
	uint32_t max_in_flight_seen;
	/* probe_on_done: the done callback activates probe, which runs later
	 * in the same turn of the loop and keeps the provider's stats then */
	bool probe_on_done;
	struct event *probe;
	bool probed;
	struct fetch_provider_stats at_probe;
	double work_ms;              /* the done callback works this long after the probe's activation */
};

static struct run R;

static void copy_str(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static void on_done(void *arg, const struct fetch_result *res)
{
	size_t i = (size_t)(uintptr_t)arg;
	struct got *g = &R.got[i];
	g->calls++;
	g->outcome = res->outcome;
	g->status = res->http_status;
	g->attempts = res->attempts;
	copy_str(g->url, sizeof g->url, res->url);
	copy_str(g->effective_url, sizeof g->effective_url, res->effective_url);
	copy_str(g->link_next, sizeof g->link_next, res->link_next);
	g->has_header = res->header != NULL;
	copy_str(g->header, sizeof g->header, res->header);
	copy_str(g->error, sizeof g->error, res->error);
	g->not_modified = res->not_modified;
	g->conditional = res->conditional;
	g->has_body = res->body != NULL;
	g->body_len = res->body_len;
	g->bytes = res->bytes;
	g->has_etag = res->etag != NULL;
	g->has_last_modified = res->last_modified != NULL;
	copy_str(g->etag, sizeof g->etag, res->etag);
	copy_str(g->last_modified, sizeof g->last_modified, res->last_modified);
	/* Kept as jansson sees the document's text: the document itself
	 * is valid only during the callback. */
	g->doc = NULL;
	if (res->doc) {
		size_t len;
		const char *text = jsondoc_text(res->doc, 0, &len);
		g->doc = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
		CHECK(g->doc != NULL);
	}
	g->t_ms = mono_ms();
	R.req[i] = NULL;
	R.outstanding--;
	if (R.cancel_on_done >= 0 && R.req[R.cancel_on_done]) {
		fetch_cancel(R.req[R.cancel_on_done]);
		R.req[R.cancel_on_done] = NULL;
		R.outstanding--;
		R.cancel_on_done = -1;
	}
	if (R.start_on_done) {
		const char *u = R.start_on_done;
		R.start_on_done = NULL;
		char err[ERR_MAX];
		size_t j = MAX_GOT - 1;
		R.req[j] = fetch_start(R.p, u, on_done, (void *)(uintptr_t)j, err);
		if (R.req[j])
			R.outstanding++;
	}
	if (R.start_all_on_done) {
		const char *const *l = R.start_all_on_done;
		R.start_all_on_done = NULL;
		char err[ERR_MAX];
		for (size_t k = 0; l[k]; k++) {
			size_t j = MAX_GOT - 3 - k;
			R.req[j] = fetch_start(R.p, l[k], on_done, (void *)(uintptr_t)j, err);
			CHECK(R.req[j] != NULL);
			if (R.req[j])
				R.outstanding++;
		}
	}
	if (R.probe_on_done) {
		R.probe_on_done = false;
		event_active(R.probe, EV_TIMEOUT, 0);
		/* the rest of a long turn: the work a page's items make */
		for (double t0 = mono_ms(); mono_ms() - t0 < R.work_ms;)
			;
	}
	if (R.free_on_done) {
		R.free_on_done = false;
		fetcher_free(R.f);
		R.f = NULL;
		R.outstanding = 0;
	}
	if (R.outstanding <= 0)
		event_base_loopbreak(R.base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	R.timed_out = true;
	event_base_loopbreak(R.base);
}

static const struct fetch_provider_conf default_conf = {
	.name = "main", .token = "s3cret", .max_connections = 4, .rate_limit = 0,
	.timeout_ms = 5000, .max_retries = 3, .max_body = 16u << 20, .max_redirects = 5,
};

/* A fresh loop, fetcher and one provider for base_url. */
static void run_setup(const char *base_url, struct fetch_provider_conf c)
{
	char err[ERR_MAX];
	memset(&R, 0, sizeof R);
	R.cancel_on_done = -1;
	R.base = event_base_new();
	R.f = fetcher_new(R.base, err);
	CHECK(R.f != NULL);
	c.base_url = base_url;
	R.p = fetcher_add_provider(R.f, &c, err);
	if (!R.p)
		fprintf(stderr, "fetcher_add_provider: %s\n", err);
	CHECK(R.p != NULL);
}

static struct fetch *start(size_t i, const char *url)
{
	char err[ERR_MAX];
	R.req[i] = fetch_start(R.p, url, on_done, (void *)(uintptr_t)i, err);
	if (!R.req[i])
		fprintf(stderr, "fetch_start %s: %s\n", url, err);
	else
		R.outstanding++;
	return R.req[i];
}

static struct fetch *start_if(size_t i, const char *url, const char *etag, const char *lm)
{
	char err[ERR_MAX];
	struct fetch_validators v = {.etag = etag, .last_modified = lm};
	R.req[i] = fetch_start_if(R.p, url, &v, on_done, (void *)(uintptr_t)i, err);
	if (!R.req[i])
		fprintf(stderr, "fetch_start_if %s: %s\n", url, err);
	else
		R.outstanding++;
	return R.req[i];
}

/* Run until every request has called back, or fail after timeout_ms. */
static bool run_loop(unsigned timeout_ms)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	struct event *deadline = evtimer_new(R.base, on_deadline, NULL);
	R.timed_out = false;
	evtimer_add(deadline, &tv);
	if (R.outstanding > 0)
		event_base_dispatch(R.base);
	event_free(deadline);
	if (R.timed_out)
		fprintf(stderr, "deadline of %u ms passed with %d requests outstanding\n", timeout_ms,
		        R.outstanding);
	return !R.timed_out;
}

/* The fixture's /_stats fetched through the provider under test, so it
 * rides one of that provider's cached connections and adds none. */
static json_t *stats_via_provider(void)
{
	size_t i = MAX_GOT - 2;
	R.got[i].calls = 0;
	json_decref(R.got[i].doc);
	R.got[i].doc = NULL;
	start(i, "/_stats");
	CHECK(run_loop(10000));
	return R.got[i].doc ? json_incref(R.got[i].doc) : NULL;
}

/* Run the loop for a fixed time (used after cancels: nothing may call back). */
static void run_for(unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	event_base_loopexit(R.base, &tv);
	event_base_dispatch(R.base);
}

static void run_teardown(void)
{
	fetcher_free(R.f);
	for (size_t i = 0; i < MAX_GOT; i++)
		json_decref(R.got[i].doc);
	event_base_free(R.base);
}

static bool contains(const char *hay, const char *needle)
{
	bool ok = strstr(hay, needle) != NULL;
	if (!ok)
		fprintf(stderr, "  \"%s\" does not contain \"%s\"\n", hay, needle);
	return ok;
}

/* ---- retries ---- */

static void test_503_is_retried_and_succeeds_on_a_later_attempt(void)
{
	struct fixture fx;
	const char *args[] = {"--rate-503", "1", "--fault-attempts", "2", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/athletes/a7");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].calls, 1);
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].status, 200);
	CHECK_EQ(R.got[0].attempts, 3);
	CHECK_STR(json_string_value(json_object_get(R.got[0].doc, "id")), "a7");
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a7"), 3);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.requests, 3);
	CHECK_EQ(st.retries, 2);
	CHECK_EQ(st.succeeded, 1);
	CHECK_EQ(st.in_flight, 0);
	CHECK_EQ(st.waiting, 0);
	CHECK(st.bytes > 0);
	run_teardown();
	fixture_stop(&fx);
}

static void test_transient_failures_exhaust_max_retries_and_say_so(void)
{
	struct fixture fx;
	const char *args[] = {"--rate-500", "1", "--fault-attempts", "10", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.max_retries = 2;
	run_setup(fx.url, c);
	start(0, "/athletes/a3");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_TRANSIENT);
	CHECK_EQ(R.got[0].status, 500);
	CHECK_EQ(R.got[0].attempts, 3);
	CHECK(contains(R.got[0].error, "/athletes/a3: HTTP 500 Internal Server Error; gave up after 3 attempts"));
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a3"), 3);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.failed_transient, 1);
	run_teardown();
	fixture_stop(&fx);
}

static void test_429_retry_after_is_obeyed_before_the_next_attempt(void)
{
	struct fixture fx;
	const char *args[] = {"--rate-429", "1", "--retry-after", "1", "--fault-attempts", "1", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	double t0 = mono_ms();
	start(0, "/athletes/a5");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].attempts, 2);
	CHECK(R.got[0].t_ms - t0 >= 1000);
	long long t[4];
	size_t n = fixture_log_times(&fx, "/athletes/a5", t, 4);
	CHECK_EQ(n, 2);
	if (n == 2) {
		/* the jittered backoff alone would be at most 200 ms */
		if (t[1] - t[0] < 1000)
			fprintf(stderr, "  second attempt %lld ms after the 429\n", t[1] - t[0]);
		CHECK(t[1] - t[0] >= 1000);
	}
	run_teardown();
	fixture_stop(&fx);
}

static void test_cut_body_is_retried(void)
{
	struct fixture fx;
	const char *args[] = {"--rate-cut", "1", "--fault-attempts", "1", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/races?page=1");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].attempts, 2);
	CHECK(json_is_array(json_object_get(R.got[0].doc, "data")));
	CHECK_EQ(fixture_attempts(&fx, "/races?page=1"), 2);
	run_teardown();
	fixture_stop(&fx);
}

/* A port on loopback nobody listens on. */
static int closed_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
	close(s);
	return ntohs(a.sin_port);
}

static void test_connection_refused_is_transient_and_retried(void)
{
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", closed_port());

	struct fetch_provider_conf c = default_conf;
	c.max_retries = 2;
	run_setup(base, c);
	start(0, "/races");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_TRANSIENT);
	CHECK_EQ(R.got[0].status, 0);
	CHECK_EQ(R.got[0].attempts, 3);
	CHECK(contains(R.got[0].error, "cannot connect"));
	CHECK(contains(R.got[0].error, "gave up after 3 attempts"));
	run_teardown();
}

/* ---- permanent failures ---- */

static void test_404_is_tried_exactly_once(void)
{
	struct fixture fx;
	const char *args[] = {"--broken", "/athletes/a7=404", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/athletes/a7");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_HTTP);
	CHECK_EQ(R.got[0].status, 404);
	CHECK_EQ(R.got[0].attempts, 1);
	char want[256];
	snprintf(want, sizeof want, "GET %s/athletes/a7: HTTP 404 Not Found (not retried)", fx.url);
	CHECK_STR(R.got[0].error, want);
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a7"), 1);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.failed_http, 1);
	CHECK_EQ(st.retries, 0);
	run_teardown();
	fixture_stop(&fx);
}

static void test_malformed_body_is_a_body_error_not_retried(void)
{
	struct fixture fx;
	const char *args[] = {"--broken", "/athletes/a8=malformed", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/athletes/a8");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_BODY);
	CHECK_EQ(R.got[0].status, 200);
	CHECK_EQ(R.got[0].attempts, 1);
	CHECK(contains(R.got[0].error, "/athletes/a8: body is not JSON: '[' or '{' expected near '<' at line 1 column 1"));
	CHECK(contains(R.got[0].error, "not retried"));
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a8"), 1);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.failed_body, 1);
	run_teardown();
	fixture_stop(&fx);
}

/* The fixture with path broken as kind, and that path fetched once. */
static bool fetch_one_broken(struct fixture *fx, const char *path, const char *kind)
{
	char arg[128];
	snprintf(arg, sizeof arg, "%s=%s", path, kind);
	const char *args[] = {"--broken", arg, NULL};
	if (fixture_start(fx, args) < 0) {
		CHECK(!"fixture");
		return false;
	}
	run_setup(fx->url, default_conf);
	start(0, path);
	CHECK(run_loop(10000));
	return true;
}

/* /athletes/a9 broken as kind fails once, for good, with the error
 * "GET <url>/athletes/a9: HTTP 200 with <what>; not retried". */
static void check_header_limit(const char *kind, const char *what)
{
	struct fixture fx;
	if (!fetch_one_broken(&fx, "/athletes/a9", kind))
		return;
	CHECK_EQ(R.got[0].outcome, FETCH_HTTP);
	CHECK_EQ(R.got[0].attempts, 1);
	char want[256];
	snprintf(want, sizeof want, "GET %s/athletes/a9: HTTP 200 with %s; not retried", fx.url, what);
	CHECK_STR(R.got[0].error, want);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.retries + st.failed_transient, 0);
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a9"), 1);
	run_teardown();
	fixture_stop(&fx);
}

/* A 400 KiB header line, over libcurl's CURL_MAX_HTTP_HEADER (100 KiB):
 * the same server sends it again, so it is a permanent error naming the
 * limit, tried once (libcurl itself calls it "Out of memory"). */
static void test_header_over_libcurls_limit_is_permanent_and_named(void)
{
	check_header_limit("hugeheader", "a header line longer than 100 KiB, libcurl's limit "
	                   "(CURL_MAX_HTTP_HEADER)");
}

/* Four header lines of 90 KiB: each under libcurl's line limit, together
 * over its 300 KiB for all headers (libcurl says "Too large response
 * headers", a receive error): permanent too, naming the limit. */
static void test_headers_over_libcurls_total_are_permanent_and_named(void)
{
	check_header_limit("hugeheaders", "headers larger in all than 300 KiB, libcurl's limit");
}

static void check_big_refused(const char *const *args, const char *path, uint64_t max_bytes_read)
{
	struct fixture fx;
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.max_body = 1u << 20;
	run_setup(fx.url, c);
	start(0, path);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_BODY);
	CHECK_EQ(R.got[0].attempts, 1);
	CHECK(contains(R.got[0].error, "body larger than max_body (1048576 bytes; setting 'max_body' of [provider main])"));
	CHECK_EQ(fixture_attempts(&fx, path), 1);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	if (st.bytes > max_bytes_read)
		fprintf(stderr, "  read %" PRIu64 " body bytes before refusing\n", st.bytes);
	CHECK(st.bytes <= max_bytes_read);
	run_teardown();
	fixture_stop(&fx);
}

static void test_body_over_max_body_is_refused_by_its_content_length(void)
{
	const char *args[] = {"--broken", "/athletes/a10=big", NULL};
	check_big_refused(args, "/athletes/a10", 65536); /* refused on its headers */
}

static void test_gzip_body_over_max_body_is_refused_while_streaming(void)
{
	const char *args[] = {"--gzip", "--broken", "/athletes/a11=big", NULL};
	check_big_refused(args, "/athletes/a11", 1u << 20); /* stopped early, not 20 MiB */
}

/* ---- memory_limit (membudget.h) ---- */

/* The fixture serves /races/1/entries as 64 KiB of tiny items: about
 * 1.4 MB to read by fetch.h's reckoning. */
static const char *const tiny_args[] = {"--races", "1", "--tiny-items-page", "65536", NULL};
#define TINY_HELD (3u << 20)

/* The fixture, a limit and what others hold charged: the request for the
 * tiny page is started. */
static bool tiny_start(struct fixture *fx, size_t limit, size_t held)
{
	if (fixture_start(fx, tiny_args) < 0) {
		CHECK(!"fixture");
		return false;
	}
	membudget_set_limit(limit);
	membudget_charge(held);
	run_setup(fx->url, default_conf);
	start(0, "/races/1/entries");
	return true;
}

/* Every byte the fetcher charged is released once it is gone. */
static void tiny_stop(struct fixture *fx, size_t held)
{
	run_teardown();
	CHECK_EQ(membudget_charged(), held);
	membudget_release(held);
	membudget_set_limit(MEMBUDGET_UNLIMITED);
	fixture_stop(fx);
}

static void test_a_body_that_could_never_be_read_within_memory_limit_fails_naming_it(void)
{
	struct fixture fx;
	if (!tiny_start(&fx, 1u << 20, 0))
		return;
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_BODY);
	CHECK_EQ(R.got[0].attempts, 1);
	CHECK(contains(R.got[0].error, "/races/1/entries: reading this body of 655"));
	CHECK(contains(R.got[0].error, "over memory_limit (1048576 bytes; setting 'memory_limit' of [daemon]); not retried"));
	CHECK_EQ(fixture_attempts(&fx, "/races/1/entries"), 1);
	tiny_stop(&fx, 0);
}

static void test_a_body_waits_for_memory_and_is_read_once_it_is_released(void)
{
	struct fixture fx;
	if (!tiny_start(&fx, 4u << 20, TINY_HELD)) /* 1 MiB left */
		return;
	run_for(300);                /* received, waiting: within FETCH_PARK_STALL_MS */
	CHECK_EQ(R.got[0].calls, 0);
	CHECK_EQ(fixture_attempts(&fx, "/races/1/entries"), 1);
	membudget_release(TINY_HELD);
	CHECK(run_loop(5000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].attempts, 1);
	tiny_stop(&fx, 0);
}

static void test_a_waiting_body_is_read_anyway_once_nothing_is_released(void)
{
	struct fixture fx;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* held for good: raced would wait on itself */
	if (!tiny_start(&fx, 4u << 20, TINY_HELD))
		return;
	CHECK(run_loop(5000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	double waited_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	CHECK(waited_ms >= FETCH_PARK_STALL_MS);
	tiny_stop(&fx, TINY_HELD);
}

static void test_slow_response_hits_the_timeout(void)
{
	struct fixture fx;
	const char *args[] = {"--broken", "/athletes/a9=slow", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.timeout_ms = 300;
	c.max_retries = 1;
	run_setup(fx.url, c);
	double t0 = mono_ms();
	start(0, "/athletes/a9");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_TRANSIENT);
	CHECK_EQ(R.got[0].attempts, 2);
	CHECK(contains(R.got[0].error, "timed out after 300 ms (setting 'timeout' of [provider main]); gave up after 2 attempts"));
	CHECK(R.got[0].t_ms - t0 >= 600);
	CHECK(R.got[0].t_ms - t0 < 3000);
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a9"), 2);
	run_teardown();
	fixture_stop(&fx);
}

/* ---- admission ---- */

static void test_max_connections_is_never_exceeded(void)
{
	struct fixture fx;
	const char *args[] = {"--latency-ms", "20", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf); /* max_connections 4 */
	char url[64];
	for (size_t i = 0; i < 200; i++) {
		snprintf(url, sizeof url, "/athletes/a%zu", i % 40 + 1);
		start(i, url);
	}
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.waiting, 200);
	CHECK(run_loop(30000));
	size_t ok = 0;
	for (size_t i = 0; i < 200; i++)
		ok += R.got[i].calls == 1 && R.got[i].outcome == FETCH_OK;
	CHECK_EQ(ok, 200);
	json_t *fs = stats_via_provider();
	long long peak_conn = (long long)json_integer_value(json_object_get(fs, "peak_connections"));
	long long peak_flight = (long long)json_integer_value(json_object_get(fs, "peak_in_flight"));
	json_decref(fs);
	if (peak_conn > 4 || peak_flight > 4)
		fprintf(stderr, "  fixture saw %lld connections, %lld requests at once\n", peak_conn,
		        peak_flight);
	CHECK(peak_conn >= 1 && peak_conn <= 4);
	CHECK(peak_flight >= 2 && peak_flight <= 4);
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.requests, 201);
	CHECK_EQ(st.succeeded, 201);
	run_teardown();
	fixture_stop(&fx);
}

static void test_rate_limit_spaces_request_starts(void)
{
	struct fixture fx;
	if (fixture_start(&fx, NULL) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.rate_limit = 20;
	c.max_connections = 8;
	run_setup(fx.url, c);
	char url[64];
	for (size_t i = 0; i < 30; i++) {
		snprintf(url, sizeof url, "/athletes/a%zu", i + 1);
		start(i, url);
	}
	double t0 = mono_ms();
	CHECK(run_loop(20000));
	CHECK(mono_ms() - t0 >= 1400);
	long long t[64];
	size_t n = fixture_log_times(&fx, "/athletes/", t, 64);
	CHECK_EQ(n, 30);
	if (n == 30) {
		CHECK(t[29] - t[0] >= 1400);
		/* a bucket one token deep: any k+1 consecutive starts span at
		 * least k * 50 ms (less 25 ms for scheduling jitter) */
		bool ok = true;
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				if (t[j] - t[i] < (long long)(j - i) * 50 - 25) {
					if (ok)
						fprintf(stderr, "  starts %zu and %zu only %lld ms apart\n", i, j,
						        t[j] - t[i]);
					ok = false;
				}
		CHECK(ok);
	}
	run_teardown();
	fixture_stop(&fx);
}

/* ---- URLs and pagination ---- */

static void check_resolve(const char *base, const char *ref, const char *want)
{
	char *out = NULL;
	char err[ERR_MAX] = "";
	int rc = fetch_resolve_url(base, ref, &out, err);
	if (rc < 0)
		fprintf(stderr, "  resolve '%s' against '%s': %s\n", ref, base, err);
	CHECK_EQ(rc, 0);
	CHECK_STR(out, want);
	free(out);
}

static void test_resolve_url_follows_rfc3986(void)
{
	check_resolve("http://h/v1/races?page=1", "races?page=2", "http://h/v1/races?page=2");
	check_resolve("http://h/races/7/entries?page=1", "entries?page=2", "http://h/races/7/entries?page=2");
	check_resolve("http://h/a/b/c", "../d", "http://h/a/d");
	check_resolve("http://h/a/b/", "./c/../d", "http://h/a/b/d");
	check_resolve("http://h/a/b/c", "/x", "http://h/x");
	check_resolve("http://h/a/b?q=1", "?page=2", "http://h/a/b?page=2");
	check_resolve("http://h/a/", "caf%C3%A9/%2F?x=%20&y=%26", "http://h/a/caf%C3%A9/%2F?x=%20&y=%26");
	check_resolve("http://h/a", "https://other.example/x?y=1", "https://other.example/x?y=1");
	check_resolve("https://h/a/b", "//other/y", "https://other/y");
	/* never sent, so not part of the URL: next links differing only there
	 * are one page to the cycle check */
	check_resolve("http://h/a/b#top", "c?page=2#n1", "http://h/a/c?page=2");
	check_resolve("http://h/a/b?page=2", "#n2", "http://h/a/b?page=2");

	char *out = (char *)1;
	char err[ERR_MAX] = "";
	CHECK_EQ(fetch_resolve_url("not a url", "x", &out, err), -1);
	CHECK(out == NULL);
	CHECK(contains(err, "not a url"));
}

/* ---- fetch_start's URLs: the concatenation fast path against curl_url ---- */

/* The reference: what curl_url alone makes of url under dir (the base_url
 * in directory form), by fetch_start's rule; NULL when it refuses it. */
static char *curl_provider_url(const char *dir, const char *url)
{
	char *out = NULL, err[ERR_MAX];
	if (url[0] == '/' && url[1] != '/') {
		size_t n = strlen(dir) + strlen(url);
		char *joined = malloc(n);
		snprintf(joined, n, "%s%s", dir, url + 1);
		if (fetch_resolve_url(joined, joined, &out, err) < 0)
			out = NULL;
		free(joined);
	} else if (fetch_resolve_url(dir, url, &out, err) < 0) {
		out = NULL;
	}
	return out;
}

static unsigned long plain_urls; /* URLs the fast path may take */

/* p's URL for url is curl_url's, and when its tail is plain, it is the
 * concatenation the fast path makes. */
static void check_provider_url(const struct fetch_provider *p, const char *dir, const char *url)
{
	char *want = curl_provider_url(dir, url);
	char *got = NULL, err[ERR_MAX] = "";
	int rc = fetch_provider_url(p, url, &got, err);
	if (want ? rc != 0 || strcmp(got, want) != 0 : rc == 0) {
		fprintf(stderr, "  '%s' under '%s': got '%s' (%s), curl_url '%s'\n", url, dir,
		        got ? got : "(none)", err, want ? want : "(refused)");
		check_failures++;
	}
	const char *slash = strchr(strstr(dir, "://") + 3, '/');
	size_t origin_len = (size_t)(slash + 1 - dir), prefix_len = 0;
	const char *tail = NULL;
	if (url[0] == '/' && url[1] != '/') {
		tail = url + 1;
		prefix_len = strlen(dir);
	} else if (strncmp(url, dir, origin_len) == 0) {
		tail = url + origin_len;
		prefix_len = origin_len;
	}
	if (tail && baseurl_tail_is_plain(tail)) {
		plain_urls++;
		bool concat = want && strlen(want) == prefix_len + strlen(tail) &&
		              memcmp(want, dir, prefix_len) == 0 &&
		              strcmp(want + prefix_len, tail) == 0;
		if (!concat)
			fprintf(stderr, "  plain tail '%s' of '%s' under '%s': curl_url makes '%s'\n",
			        tail, url, dir, want ? want : "(refused)");
		CHECK(concat);
	}
	free(want);
	free(got);
}

static uint64_t test_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void test_request_urls_are_exactly_what_curl_url_makes(void)
{
	static const char *const bases[][2] = { /* base_url, its directory form */
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/"},
		{"https://api.example.com/v1", "https://api.example.com/v1/"},
		{"http://h/a/b/", "http://h/a/b/"},
		{"http://u:p@H:81/x%41", "http://u:p@H:81/x%41/"},
		{"http://127.1/v1", "http://127.0.0.1/v1/"},    /* normalised by curl_url */
		{"http://[::1]:8080/a", "http://[::1]:8080/a/"},
		{"http://h/.well/", "http://h/.well/"},        /* not plain: curl_url only */
		{"http://h/a/../b", "http://h/b/"},
	};
	static const char *const refs[] = {
		"/athletes/a425", "/races/1/entries?page=2", "/", "/?", "/a?", "/a??", "/a?b?",
		"/.", "/..", "/./", "/../x", "/a/./b", "/a/../b", "/a/..", "/.hidden", "/a/.b",
		"/a/b.", "/a.b/c..", "/a?x=/../y", "/a?x=.", "/a?.", "/%2e%2e/x", "/%2E/x",
		"/a%2eb", "/%41", "/%4", "/%zz", "/a%", "/a%%41", "/a#f", "/a#", "/a?b#c", "/a b",
		"/a?b c", "/caf\xc3\xa9", "/a//b", "//", "/a:b@c", "/~u/(x)!$&'*+,;=",
		"/[x]", "/a\\b", "/a|b", "/a{b}", "/a\"b", "/a<b>", "/a^b`c", "/a\tb",
		"//other/x", "races", "races?page=2", "?page=2", "#f", "", "../x", "a:b",
		"http://other/x", "HTTP://other/x", "http://other", "http://127.0.0.1:8080/races?page=2",
		"http://127.0.0.1:8080races", "http://127.0.0.1:80800/x", "http://127.0.0.1:8080/../x",
		"https://api.example.com/v1/races", "https://api.example.com/v2/x?",
		"https://api.example.com/v1/./x", "http://h/a/b/c", "http://h/a/b/?",
	};
	static const char alphabet[] = "/.%?# :@abeE2f";
	char err[ERR_MAX];
	struct event_base *base = event_base_new();
	struct fetcher *f = fetcher_new(base, err);
	uint64_t seed = 0x9E3779B97F4A7C15ULL;

	plain_urls = 0;
	for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
		struct fetch_provider_conf c = default_conf;
		c.base_url = bases[b][0];
		struct fetch_provider *p = fetcher_add_provider(f, &c, err);
		if (!p) {
			fprintf(stderr, "  %s: %s\n", bases[b][0], err);
			CHECK(p != NULL);
			continue;
		}
		const char *dir = bases[b][1];
		char *got = NULL;
		CHECK_EQ(fetch_provider_url(p, "/", &got, err), 0);
		CHECK_STR(got, dir);
		free(got);
		size_t origin_len = (size_t)(strchr(strstr(dir, "://") + 3, '/') + 1 - dir);
		char url[256];
		for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
			check_provider_url(p, dir, refs[i]);
			snprintf(url, sizeof url, "%s%s", dir, refs[i]);
			check_provider_url(p, dir, url);
		}
		for (int i = 0; i < 3000; i++) {
			char r[16];
			size_t len = test_rand(&seed) % sizeof r;
			for (size_t j = 0; j < len; j++)
				r[j] = alphabet[test_rand(&seed) % (sizeof alphabet - 1)];
			r[len] = '\0';
			snprintf(url, sizeof url, "/%s", r);
			check_provider_url(p, dir, url);
			check_provider_url(p, dir, r);
			snprintf(url, sizeof url, "%s%s", dir, r);
			check_provider_url(p, dir, url);
			snprintf(url, sizeof url, "%.*s%s", (int)origin_len, dir, r);
			check_provider_url(p, dir, url);
		}
	}
	/* the random URLs take the fast path often enough to test it */
	if (plain_urls < 10000)
		fprintf(stderr, "  only %lu plain URLs\n", plain_urls);
	CHECK(plain_urls >= 10000);

	CHECK(!baseurl_tail_is_plain("."));
	CHECK(!baseurl_tail_is_plain("a/./b"));
	CHECK(!baseurl_tail_is_plain("a?"));
	CHECK(!baseurl_tail_is_plain("%2E"));
	CHECK(!baseurl_tail_is_plain("a#b"));
	CHECK(!baseurl_tail_is_plain("a b"));
	CHECK(!baseurl_tail_is_plain("caf\xc3\xa9"));
	CHECK(baseurl_tail_is_plain(""));
	CHECK(baseurl_tail_is_plain("athletes/a425"));
	CHECK(baseurl_tail_is_plain("races/%2F7/entries?page=2&x=a.b"));
	fetcher_free(f);
	event_base_free(base);
}

/* ---- the request on the wire ---- */

/* A small HTTP server on the test's loop: it keeps the request heads it
 * reads, in order, answers GET /v1/old with a redirect to /v1/new?x=1 and
 * anything else with "{}", and closes every connection after one answer. */
#define WIRE_MAX 64

struct wire_conn {
	struct wire *w;
	int fd;
	struct event *ev;
	char head[1024];
	size_t len;
};

struct wire {
	int lfd, port;
	struct event *accept_ev;
	struct wire_conn conns[WIRE_MAX];
	size_t n_conns;
	char heads[WIRE_MAX][1024];
	size_t n_heads;
	char base[64];             /* http://127.0.0.1:PORT/v1 */
};

static void wire_read(evutil_socket_t fd, short what, void *arg)
{
	struct wire_conn *c = arg;
	struct wire *w = c->w;
	(void)what;
	ssize_t n = read(fd, c->head + c->len, sizeof c->head - 1 - c->len);
	if (n > 0) {
		c->len += (size_t)n;
		c->head[c->len] = '\0';
	}
	if (n > 0 && !strstr(c->head, "\r\n\r\n") && c->len < sizeof c->head - 1)
		return;
	static const char moved[] = "HTTP/1.1 301 Moved Permanently\r\nLocation: /v1/new?x=1\r\n"
	                            "Content-Length: 0\r\nConnection: close\r\n\r\n";
	static const char ok[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
	char away[256];
	snprintf(away, sizeof away, "HTTP/1.1 302 Found\r\nLocation: http://localhost:%d/v1/new?y=1\r\n"
	         "Content-Length: 0\r\nConnection: close\r\n\r\n", w->port);
	static const char loop[] = "HTTP/1.1 302 Found\r\nLocation: /v1/loop\r\n"
	                           "Content-Length: 0\r\nConnection: close\r\n\r\n";
	const char *reply = strncmp(c->head, "GET /v1/old", 11) == 0    ? moved
	                    : strncmp(c->head, "GET /v1/away", 12) == 0 ? away
	                    : strncmp(c->head, "GET /v1/loop", 12) == 0 ? loop
	                                                                 : ok;
	if (n > 0 && w->n_heads < WIRE_MAX)
		memcpy(w->heads[w->n_heads++], c->head, c->len + 1);
	CHECK_EQ(write(fd, reply, strlen(reply)), (ssize_t)strlen(reply));
	event_free(c->ev);
	c->ev = NULL;
	close(fd);
}

static void wire_accept(evutil_socket_t fd, short what, void *arg)
{
	struct wire *w = arg;
	(void)what;
	int s = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (s < 0)
		return;
	if (w->n_conns == WIRE_MAX) {
		close(s);
		return;
	}
	struct wire_conn *c = &w->conns[w->n_conns++];
	c->w = w;
	c->fd = s;
	c->ev = event_new(R.base, s, EV_READ | EV_PERSIST, wire_read, c);
	event_add(c->ev, NULL);
}

/* run_setup() with a provider whose base_url is http://127.0.0.1:PORT/v1 on w. */
static void wire_setup_conf(struct wire *w, struct fetch_provider_conf conf)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof a;
	memset(w, 0, sizeof *w);
	w->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	CHECK(bind(w->lfd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(listen(w->lfd, WIRE_MAX) == 0);
	CHECK(getsockname(w->lfd, (struct sockaddr *)&a, &alen) == 0);
	w->port = ntohs(a.sin_port);
	snprintf(w->base, sizeof w->base, "http://127.0.0.1:%d/v1", w->port);
	run_setup(w->base, conf);
	w->accept_ev = event_new(R.base, w->lfd, EV_READ | EV_PERSIST, wire_accept, w);
	event_add(w->accept_ev, NULL);
}

static void wire_setup(struct wire *w)
{
	wire_setup_conf(w, default_conf);
}

static void wire_teardown(struct wire *w)
{
	for (size_t i = 0; i < w->n_conns; i++)
		if (w->conns[i].ev) {
			event_free(w->conns[i].ev);
			close(w->conns[i].fd);
		}
	event_free(w->accept_ev);
	close(w->lfd);
	run_teardown();
}

/* The header lines of a request head, each once, are exactly `want` (in
 * any order: no rule of raced's is about the order). */
static void check_head_lines(const char *head, const char *const *want, size_t n)
{
	size_t found = 0, lines = 0;
	const char *s = strstr(head, "\r\n");
	while (s && strncmp(s, "\r\n\r\n", 4) != 0) {
		s += 2;
		const char *e = strstr(s, "\r\n");
		if (!e)
			break;
		lines++;
		bool known = false;
		for (size_t i = 0; i < n; i++) {
			size_t len = strlen(want[i]);
			bool prefix = want[i][len - 1] == '*'; /* "Name: *": any value */
			if (prefix ? strncmp(s, want[i], len - 1) == 0
			           : (size_t)(e - s) == len && strncmp(s, want[i], len) == 0) {
				known = true;
				found++;
			}
		}
		if (!known)
			fprintf(stderr, "  unexpected header line '%.*s'\n", (int)(e - s), s);
		CHECK(known);
		s = e;
	}
	CHECK_EQ(lines, n);
	CHECK_EQ(found, n);
}

/* libcurl's own request head for url, given raced's headers the way it
 * would be (CURLOPT_USERAGENT, CURLOPT_ACCEPT_ENCODING "", CURLOPT_HTTPHEADER
 * with the rest), read from the listening socket lfd (the wire's, so that
 * Host is the same) while a multi handle of its own runs the transfer. */
static size_t discard(char *d, size_t size, size_t nmemb, void *arg)
{
	(void)d;
	(void)arg;
	return size * nmemb;
}

static void libcurl_own_head(int lfd, const char *url, char *head, size_t n)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	CURLM *m = curl_multi_init();
	CURL *e = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	h = curl_slist_append(h, "Authorization: Bearer s3cret");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "raced/" RACED_VERSION);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_multi_add_handle(m, e);

	int c = -1, running = 1;
	size_t len = 0;
	bool answered = false;
	double until = mono_ms() + 10000;
	head[0] = '\0';
	while (running && mono_ms() < until) {
		curl_multi_perform(m, &running);
		if (c < 0)
			c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c >= 0 && !answered) {
			ssize_t got = read(c, head + len, n - 1 - len);
			if (got > 0) {
				len += (size_t)got;
				head[len] = '\0';
			}
			if (strstr(head, "\r\n\r\n") || len == n - 1) {
				CHECK_EQ(write(c, reply, sizeof reply - 1), (ssize_t)(sizeof reply - 1));
				answered = true;
			}
		}
		curl_multi_poll(m, NULL, 0, 10, NULL);
	}
	int left;
	CURLMsg *msg = curl_multi_info_read(m, &left);
	CHECK(msg && msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK);
	curl_multi_remove_handle(m, e);
	curl_easy_cleanup(e);
	curl_multi_cleanup(m);
	curl_slist_free_all(h);
	if (c >= 0)
		close(c);
}

static void test_request_head_names_raced_and_asks_for_json(void)
{
	static struct wire w;
	char host[64];
	wire_setup(&w);
	snprintf(host, sizeof host, "Host: 127.0.0.1:%d", w.port);
	start(0, "/races?page=2");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(w.n_heads, 1);
	CHECK(strncmp(w.heads[0], "GET /v1/races?page=2 HTTP/1.1\r\n", 31) == 0);
	const char *want[] = {
		host,
		"User-Agent: raced/" RACED_VERSION,
		"Accept: application/json",
		"Accept-Encoding: *", /* every encoding this libcurl decodes */
		"Authorization: Bearer s3cret",
	};
	check_head_lines(w.heads[0], want, sizeof want / sizeof want[0]);
	CHECK(contains(w.heads[0], "\r\nAccept-Encoding: ") && contains(w.heads[0], "gzip"));

	/* byte for byte what libcurl writes when it is given these headers as
	 * options (raced writes User-Agent and Accept-Encoding itself) */
	char url[128], own[1024];
	snprintf(url, sizeof url, "%s/races?page=2", w.base);
	libcurl_own_head(w.lfd, url, own, sizeof own);
	CHECK_STR(w.heads[0], own);
	wire_teardown(&w);
}

/* A provider's token goes only to its own origin: a next link (or a
 * relative link on a page a redirect moved to another host) naming another
 * origin is refused before any connection; the same origin spelled in
 * capitals or with its default port is not another one.  Without a token
 * there is nothing to leak, and other origins are fetched. */
static void test_token_goes_only_to_the_providers_origin(void)
{
	static struct wire w;
	char err[ERR_MAX] = "", url[160], want[400];
	wire_setup(&w);
	snprintf(url, sizeof url, "http://127.0.0.2:%d/v1/races?page=2", w.port);
	CHECK(fetch_start(R.p, url, on_done, NULL, err) == NULL);
	snprintf(want, sizeof want, "GET %s: refused: it is not on [provider main]'s origin "
	         "http://127.0.0.1:%d, and raced sends that provider's token (token_file) only there",
	         url, w.port);
	CHECK_STR(err, want);
	CHECK(fetch_start(R.p, "https://127.0.0.1/v1/races", on_done, NULL, err) == NULL);
	CHECK(contains(err, "refused: it is not on [provider main]'s origin"));

	snprintf(url, sizeof url, "HTTP://127.0.0.1:%d/v1/races?page=3", w.port);
	CHECK(start(0, url) != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(w.n_heads, 1);
	CHECK(strncmp(w.heads[0], "GET /v1/races?page=3 HTTP/1.1\r\n", 31) == 0);
	CHECK(contains(w.heads[0], "\r\nAuthorization: Bearer s3cret\r\n"));

	struct fetch_provider_conf c = default_conf;
	c.name = "public";
	c.token = NULL;
	c.base_url = "http://example.com/";
	struct fetch_provider *open = fetcher_add_provider(R.f, &c, err);
	CHECK(open != NULL);
	struct fetch *r = fetch_start(open, url, on_done, NULL, err);
	CHECK(r != NULL);
	fetch_cancel(r);
	c.name = "default-port";
	c.token = "s3cret";
	struct fetch_provider *dp = fetcher_add_provider(R.f, &c, err);
	CHECK(dp != NULL);
	r = fetch_start(dp, "http://EXAMPLE.com:80/x", on_done, NULL, err);
	CHECK(r != NULL);
	fetch_cancel(r);
	wire_teardown(&w);
}

/* Replace the run's fetcher with a new one (which reads the environment
 * afresh) and GET path from a provider with conf c; returns the request's
 * slot i after it called back. */
static struct got *fetch_with_new_fetcher(size_t i, const struct fetch_provider_conf *c,
                                          const char *path)
{
	char err[ERR_MAX];
	fetcher_free(R.f);
	R.f = fetcher_new(R.base, err);
	CHECK(R.f != NULL);
	R.p = fetcher_add_provider(R.f, c, err);
	CHECK(R.p != NULL);
	start(i, path);
	CHECK(run_loop(10000));
	return &R.got[i];
}

/* A proxy named in the environment when the fetcher starts is used, as
 * libcurl would; with none, requests go straight to the provider (the
 * fetcher tells libcurl "no proxy" rather than have it look every time). */
static void test_proxy_in_the_environment_is_used(void)
{
	static struct wire w; /* the proxy */
	char provider[64], proxy[64], want[128];
	wire_setup(&w);
	snprintf(provider, sizeof provider, "http://127.0.0.1:%d/v1", closed_port());
	snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", w.port);
	struct fetch_provider_conf c = default_conf;
	c.max_retries = 0;
	c.base_url = provider;

	CHECK(setenv("http_proxy", proxy, 1) == 0);
	struct got *g = fetch_with_new_fetcher(0, &c, "/races");
	CHECK(unsetenv("http_proxy") == 0);
	CHECK_EQ(g->outcome, FETCH_OK);
	CHECK_EQ(w.n_heads, 1);
	snprintf(want, sizeof want, "GET %s/races HTTP/1.1\r\n", provider);
	CHECK(strncmp(w.heads[0], want, strlen(want)) == 0);

	g = fetch_with_new_fetcher(1, &c, "/races");
	CHECK_EQ(g->outcome, FETCH_TRANSIENT);
	CHECK(contains(g->error, "cannot connect"));
	CHECK_EQ(w.n_heads, 1);

	/* all_proxy counts too (it covers every scheme). */
	CHECK(setenv("all_proxy", proxy, 1) == 0);
	g = fetch_with_new_fetcher(2, &c, "/races");
	CHECK(unsetenv("all_proxy") == 0);
	CHECK_EQ(g->outcome, FETCH_OK);
	CHECK_EQ(w.n_heads, 2);
	CHECK(strncmp(w.heads[1], want, strlen(want)) == 0);
	wire_teardown(&w);
}

/* One request after another (the same pooled easy handle), through a
 * redirect: each asks for its own URL, percent-encoding kept as it is. */
static void test_each_request_asks_for_its_own_url(void)
{
	static struct wire w;
	char other[96], want[128];
	wire_setup(&w);
	snprintf(other, sizeof other, "http://127.0.0.1:%d/other?a=1", w.port);
	const char *urls[] = {"/old", "/races?page=2", "/a%2Fb%7e", other, "/athletes/a425"};
	const char *lines[] = {"GET /v1/old ", "GET /v1/new?x=1 ", "GET /v1/races?page=2 ",
	                       "GET /v1/a%2Fb%7e ", "GET /other?a=1 ", "GET /v1/athletes/a425 "};
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		start(i, urls[i]);
		CHECK(run_loop(10000));
		CHECK_EQ(R.got[i].outcome, FETCH_OK);
	}
	CHECK_EQ(w.n_heads, sizeof lines / sizeof lines[0]);
	for (size_t i = 0; i < w.n_heads && i < sizeof lines / sizeof lines[0]; i++) {
		if (strncmp(w.heads[i], lines[i], strlen(lines[i])) != 0)
			fprintf(stderr, "  request %zu: '%.40s', expected '%s'\n", i, w.heads[i], lines[i]);
		CHECK(strncmp(w.heads[i], lines[i], strlen(lines[i])) == 0);
	}
	snprintf(want, sizeof want, "%s/old", w.base);
	CHECK_STR(R.got[0].url, want);
	snprintf(want, sizeof want, "%s/new?x=1", w.base);
	CHECK_STR(R.got[0].effective_url, want);
	snprintf(want, sizeof want, "%s/races?page=2", w.base);
	CHECK_STR(R.got[1].effective_url, want);
	snprintf(want, sizeof want, "%s/a%%2Fb%%7e", w.base);
	CHECK_STR(R.got[2].effective_url, want);
	CHECK_STR(R.got[3].effective_url, other);
	wire_teardown(&w);
}

/* A pooled easy handle keeps its provider's options from one request to
 * the next (fetch_pool.h) but nothing of the request before: not its
 * validators, its URL or its callbacks' request; and a handle that served
 * another provider carries none of that provider's lines (its token). */
static void test_a_reused_handle_carries_nothing_of_the_request_before(void)
{
	static struct wire w;
	char err[ERR_MAX], host[64];
	wire_setup(&w);
	snprintf(host, sizeof host, "Host: 127.0.0.1:%d", w.port);
	CHECK(start_if(0, "/races?page=1", "\"e1\"", "Sun, 06 Nov 1994 08:49:37 GMT") != NULL);
	CHECK(run_loop(10000));
	CHECK(start(1, "/races?page=2") != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(w.n_heads, 2);
	CHECK(contains(w.heads[0], "\r\nIf-None-Match: \"e1\"\r\n"));
	CHECK(strncmp(w.heads[1], "GET /v1/races?page=2 HTTP/1.1\r\n", 31) == 0);
	CHECK(!contains(w.heads[1], "If-None-Match"));
	CHECK(!contains(w.heads[1], "If-Modified-Since"));
	CHECK(contains(w.heads[1], "\r\nAuthorization: Bearer s3cret\r\n"));
	CHECK_EQ(R.got[1].outcome, FETCH_OK);
	CHECK(!R.got[1].conditional);
	CHECK_STR(R.got[1].effective_url, R.got[1].url);

	/* Two more providers on the same server, one with basic auth (set on
	 * the handle, not in its header list), one with none: each request
	 * takes the one idle handle, which served the other provider last. */
	struct fetch_provider_conf c = default_conf;
	c.name = "basic";
	c.token = NULL;
	c.base_url = w.base;
	c.auth = (struct auth_conf){.kind = AUTH_BASIC, .username = "u", .secret = "p"};
	struct fetch_provider *basic = fetcher_add_provider(R.f, &c, err);
	CHECK(basic != NULL);
	c.name = "public";
	c.auth = (struct auth_conf){.kind = AUTH_NONE};
	struct fetch_provider *pub = fetcher_add_provider(R.f, &c, err);
	CHECK(pub != NULL);
	struct fetch_provider *order[] = {basic, pub};
	for (size_t i = 0; i < 2; i++) {
		R.req[2 + i] = fetch_start(order[i], "/athletes/a1", on_done, (void *)(uintptr_t)(2 + i), err);
		CHECK(R.req[2 + i] != NULL);
		R.outstanding++;
		CHECK(run_loop(10000));
		CHECK_EQ(R.got[2 + i].outcome, FETCH_OK);
		CHECK_EQ(R.got[2 + i].calls, 1);
	}
	CHECK_EQ(R.got[1].calls, 1); /* main's last request is not called again */
	CHECK_EQ(w.n_heads, 4);
	CHECK(contains(w.heads[2], "\r\nAuthorization: Basic dTpw\r\n"));
	CHECK(strncmp(w.heads[3], "GET /v1/athletes/a1 HTTP/1.1\r\n", 30) == 0);
	CHECK(!contains(w.heads[3], "Authorization"));
	const char *want[] = {host, "User-Agent: raced/" RACED_VERSION, "Accept: application/json",
	                      "Accept-Encoding: *"};
	check_head_lines(w.heads[3], want, sizeof want / sizeof want[0]);

	/* And back to main: its token again, no validators. */
	CHECK(start(4, "/races?page=3") != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(w.n_heads, 5);
	CHECK(contains(w.heads[4], "\r\nAuthorization: Bearer s3cret\r\n"));
	CHECK(!contains(w.heads[4], "If-None-Match"));
	CHECK_EQ(R.got[4].outcome, FETCH_OK);
	wire_teardown(&w);
}

/* Random URLs, one after another: the request line carries the path and
 * query of the URL fetch_start resolved, byte for byte, and so does the
 * effective URL (libcurl is handed a CURLU built from parts for most). */
static void test_random_urls_go_out_as_resolved(void)
{
	static struct wire w;
	static const char *const pieces[] = {"a", "b", "/", ".", "?", "%2F", "%7e", "%", ":",
	                                     "@", "!$&'()*+,;=", "-_~"};
	uint64_t seed = 0x2545F4914F6CDD1DULL;
	size_t n = 40;
	wire_setup(&w);
	size_t origin_len = strlen(w.base) - strlen("v1");
	for (size_t i = 0; i < n; i++) {
		char url[96] = "/r";
		for (size_t j = test_rand(&seed) % 8; j > 0; j--)
			strcat(url, pieces[test_rand(&seed) % (sizeof pieces / sizeof pieces[0])]);
		if (i % 4 == 3) { /* the same as an absolute URL of the origin */
			char abs[128];
			snprintf(abs, sizeof abs, "%.*s%s", (int)origin_len, w.base, url + 1);
			start(i, abs);
		} else {
			start(i, url);
		}
		CHECK(run_loop(10000));
	}
	CHECK_EQ(w.n_heads, n);
	for (size_t i = 0; i < n && i < w.n_heads; i++) {
		char line[160];
		CHECK_EQ(R.got[i].outcome, FETCH_OK);
		CHECK_STR(R.got[i].effective_url, R.got[i].url);
		snprintf(line, sizeof line, "GET %s HTTP/1.1\r\n", R.got[i].url + origin_len - 1);
		if (strncmp(w.heads[i], line, strlen(line)) != 0) {
			fprintf(stderr, "  %s: sent '%.*s'\n", R.got[i].url,
			        (int)strcspn(w.heads[i], "\r"), w.heads[i]);
			CHECK(!"the request line");
		}
	}
	wire_teardown(&w);
}

static void test_retry_after_reads_seconds_and_http_dates(void)
{
	time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
	CHECK_EQ(fetch_retry_after_ms("1", now), 1000);
	CHECK_EQ(fetch_retry_after_ms("120", now), 120000);
	CHECK_EQ(fetch_retry_after_ms("0", now), 0);
	CHECK_EQ(fetch_retry_after_ms("86400", now), FETCH_RETRY_AFTER_MAX_MS);
	CHECK_EQ(fetch_retry_after_ms("Tue, 14 Nov 2023 22:13:50 GMT", now), 30000);
	CHECK_EQ(fetch_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
	CHECK_EQ(fetch_retry_after_ms("Wed, 15 Nov 2023 22:13:20 GMT", now), FETCH_RETRY_AFTER_MAX_MS);
	CHECK_EQ(fetch_retry_after_ms("soon", now), -1);
	CHECK_EQ(fetch_retry_after_ms("5 s", now), -1);
	CHECK_EQ(fetch_retry_after_ms("", now), -1);
}

/* fetch_start's rule: "/x" goes under the base path; "x" too; absolute stays. */
static void test_base_url_path_prefix_holds_request_paths(void)
{
	struct fixture fx;
	if (fixture_start(&fx, NULL) < 0) {
		CHECK(!"fixture");
		return;
	}
	char base[128], want[256];
	snprintf(base, sizeof base, "%s/v1", fx.url);
	run_setup(base, default_conf);
	start(0, "/races");
	start(1, "races?page=2");
	start(2, "/a/../races/%2F7");
	snprintf(want, sizeof want, "%s/races?page=1", fx.url);
	start(3, want);
	CHECK(run_loop(10000));
	snprintf(want, sizeof want, "%s/v1/races", fx.url);
	CHECK_STR(R.got[0].url, want);
	CHECK_EQ(R.got[0].status, 404); /* the fixture has no /v1: proves the prefix was kept */
	snprintf(want, sizeof want, "%s/v1/races?page=2", fx.url);
	CHECK_STR(R.got[1].url, want);
	snprintf(want, sizeof want, "%s/v1/races/%%2F7", fx.url);
	CHECK_STR(R.got[2].url, want);
	CHECK_EQ(R.got[3].outcome, FETCH_OK);
	run_teardown();

	/* a base with a trailing slash is the same directory */
	snprintf(base, sizeof base, "%s/v1/", fx.url);
	run_setup(base, default_conf);
	start(0, "/races");
	CHECK(run_loop(10000));
	snprintf(want, sizeof want, "%s/v1/races", fx.url);
	CHECK_STR(R.got[0].url, want);
	run_teardown();
	fixture_stop(&fx);
}

static void test_relative_next_link_resolves_against_the_page(void)
{
	struct fixture fx;
	const char *args[] = {"--races", "5", "--page-size", "2", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/races?page=1");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	const char *next = json_string_value(json_object_get(R.got[0].doc, "next"));
	CHECK_STR(next, "races?page=2");
	char *abs = NULL, err[ERR_MAX], want[256];
	CHECK_EQ(fetch_resolve_url(R.got[0].effective_url, next ? next : "", &abs, err), 0);
	snprintf(want, sizeof want, "%s/races?page=2", fx.url);
	CHECK_STR(abs, want);
	start(1, abs ? abs : "");
	free(abs);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[1].outcome, FETCH_OK);
	json_t *data = json_object_get(R.got[1].doc, "data");
	CHECK_EQ(json_array_size(data), 2);
	CHECK_EQ(json_integer_value(json_object_get(json_array_get(data, 0), "id")), 3);
	run_teardown();
	fixture_stop(&fx);
}

static void test_link_header_next_is_absolute(void)
{
	struct fixture fx;
	const char *args[] = {"--link-header", "--races", "50", "--page-size", "10", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/races");
	start(1, "/races/3/entries");
	start(2, "/races?page=5");
	CHECK(run_loop(10000));
	char want[256];
	snprintf(want, sizeof want, "%s/races?page=2", fx.url);
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_STR(R.got[0].link_next, want);
	snprintf(want, sizeof want, "%s/races/3/entries?page=2", fx.url);
	CHECK_STR(R.got[1].link_next, want);
	CHECK_STR(R.got[2].link_next, ""); /* the last page has none */
	run_teardown();
	fixture_stop(&fx);
}

/* A header the caller asked for arrives with the result (the final 2xx
 * response's, none when absent); a request that asked for none gets none. */
static void test_wanted_header_comes_with_the_result(void)
{
	struct fixture fx;
	const char *args[] = {"--paging", "header_cursor", "--races", "50", "--page-size", "10", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	char err[ERR_MAX];
	CHECK_EQ(fetch_want_header(start(0, "/races"), "x-next-cursor", err), 0);
	start(1, "/races");
	CHECK_EQ(fetch_want_header(start(2, "/races"), "X-Absent", err), 0);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK(R.got[0].has_header);
	CHECK(strncmp(R.got[0].header, "k+", 2) == 0);
	CHECK(!R.got[1].has_header);
	CHECK(!R.got[2].has_header);
	run_teardown();
	fixture_stop(&fx);
}

static void test_gzip_body_arrives_decoded(void)
{
	struct fixture fx;
	const char *args[] = {"--gzip", "--races", "100", "--page-size", "100", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/races");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(json_array_size(json_object_get(R.got[0].doc, "data")), 100);
	char *text = json_dumps(R.got[0].doc, JSON_COMPACT);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK(text && st.bytes > 0 && st.bytes < strlen(text) / 2);
	free(text);
	run_teardown();
	fixture_stop(&fx);
}

/* ---- the loop keeps turning ---- */

struct ticker {
	double last, max_gap;
	unsigned ticks;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ticker *t = arg;
	double now = mono_ms();
	(void)fd;
	(void)what;
	if (t->ticks && now - t->last > t->max_gap)
		t->max_gap = now - t->last;
	t->last = now;
	t->ticks++;
}

static void test_thousand_concurrent_fetches_never_block_the_loop(void)
{
	struct fixture fx;
	const char *args[] = {"--athletes", "1000", "--latency-ms", "10", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.max_connections = 32;
	run_setup(fx.url, c);
	struct ticker t = {.last = mono_ms()};
	struct event *tick = event_new(R.base, -1, EV_PERSIST, on_tick, &t);
	struct timeval ten = {0, 10000};
	event_add(tick, &ten);
	char url[64];
	for (size_t i = 0; i < 1000; i++) {
		snprintf(url, sizeof url, "/athletes/a%zu", i + 1);
		start(i, url);
	}
	double t0 = mono_ms();
	CHECK(run_loop(60000));
	double took = mono_ms() - t0;
	event_free(tick);
	size_t ok = 0;
	for (size_t i = 0; i < 1000; i++)
		ok += R.got[i].calls == 1 && R.got[i].outcome == FETCH_OK;
	CHECK_EQ(ok, 1000);
	CHECK(took >= 250); /* 1000 x 10 ms over 32 connections: long enough to watch */
	CHECK(t.ticks >= (unsigned)(took / 20));
	CHECK(t.max_gap < 100);
	json_t *fs = stats_via_provider();
	long long peak_conn = (long long)json_integer_value(json_object_get(fs, "peak_connections"));
	json_decref(fs);
	CHECK(peak_conn >= 1 && peak_conn <= 32);
	fprintf(stderr, "  1000 fetches in %.0f ms, %u ticks, longest gap %.1f ms\n", took, t.ticks,
	        t.max_gap);
	run_teardown();
	fixture_stop(&fx);
}

/* ---- cancellation and teardown ---- */

static void test_cancel_queued_request_never_calls_back(void)
{
	struct fixture fx;
	const char *args[] = {"--latency-ms", "50", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.max_connections = 1;
	run_setup(fx.url, c);
	start(0, "/athletes/a1");
	start(1, "/athletes/a2");
	fetch_cancel(R.req[1]);
	R.req[1] = NULL;
	R.outstanding--;
	CHECK(run_loop(10000));
	run_for(100);
	CHECK_EQ(R.got[0].calls, 1);
	CHECK_EQ(R.got[1].calls, 0);
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a2"), 0);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.waiting, 0);
	CHECK_EQ(st.in_flight, 0);
	CHECK_EQ(st.requests, 1);
	run_teardown();
	fixture_stop(&fx);
}

struct poll_cancel {
	int idx;
	bool want_backoff; /* else: want on the wire */
	bool done;
	double at;
};

static void on_poll_cancel(evutil_socket_t fd, short what, void *arg)
{
	struct poll_cancel *pc = arg;
	struct fetch_provider_stats st;
	(void)fd;
	(void)what;
	if (pc->done)
		return;
	fetch_provider_get_stats(R.p, &st);
	bool ready = pc->want_backoff ? (st.retries >= 1 && st.waiting == 1 && st.in_flight == 0)
	                              : (st.in_flight == 1);
	if (!ready)
		return;
	if (!pc->want_backoff && pc->at == 0) {
		pc->at = mono_ms(); /* let it reach the server first */
		return;
	}
	if (!pc->want_backoff && mono_ms() - pc->at < 50)
		return;
	fetch_cancel(R.req[pc->idx]);
	R.req[pc->idx] = NULL;
	pc->done = true;
}

static void check_cancel(const char *const *args, const char *path, bool backoff)
{
	struct fixture fx;
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.max_retries = 10;
	run_setup(fx.url, c);
	start(0, path);
	struct poll_cancel pc = {.idx = 0, .want_backoff = backoff};
	struct event *poll = event_new(R.base, -1, EV_PERSIST, on_poll_cancel, &pc);
	struct timeval five = {0, 2000};
	event_add(poll, &five);
	run_for(600);
	event_free(poll);
	CHECK(pc.done);
	CHECK_EQ(R.got[0].calls, 0);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.waiting, 0);
	CHECK_EQ(st.in_flight, 0);
	long long attempts = fixture_attempts(&fx, path);
	CHECK(attempts >= 1);
	if (backoff) {
		/* no attempt after the cancel, though a backoff would have ended */
		run_for(700);
		CHECK_EQ(fixture_attempts(&fx, path), attempts);
		run_teardown();
		fixture_stop(&fx);
		return;
	}
	/* the provider is still usable */
	R.outstanding = 0;
	start(1, "/races");
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[1].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].calls, 0);
	CHECK_EQ(fixture_attempts(&fx, path), attempts);
	run_teardown();
	fixture_stop(&fx);
}

static void test_cancel_in_backoff_never_calls_back(void)
{
	const char *args[] = {"--rate-503", "1", "--fault-attempts", "100", NULL};
	check_cancel(args, "/athletes/a4", true);
}

static void test_cancel_on_the_wire_never_calls_back(void)
{
	const char *args[] = {"--broken", "/athletes/a4=slow", NULL};
	check_cancel(args, "/athletes/a4", false);
}

static void test_done_callback_may_cancel_and_start_requests(void)
{
	struct fixture fx;
	const char *args[] = {"--latency-ms", "30", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.max_connections = 1;
	run_setup(fx.url, c);
	start(0, "/athletes/a1");
	start(1, "/athletes/a2"); /* queued behind a1 when a1's callback cancels it */
	R.cancel_on_done = 1;
	R.start_on_done = "/athletes/a3";
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].calls, 1);
	CHECK_EQ(R.got[1].calls, 0);
	CHECK_EQ(R.got[MAX_GOT - 1].calls, 1);
	CHECK_EQ(R.got[MAX_GOT - 1].outcome, FETCH_OK);
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a2"), 0);
	run_teardown();
	fixture_stop(&fx);
}

static void on_probe(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fetch_provider_get_stats(R.p, &R.at_probe);
	R.probed = true;
}

/* The inline admission's tests: a fixture answering in 20 ms, fetchers
 * of conf c, the probe that a done callback schedules, done callbacks
 * working 2 ms.  False when the fixture did not start. */
static bool inline_begin(struct fixture *fx, struct fetch_provider_conf c)
{
	const char *args[] = {"--latency-ms", "20", NULL};
	if (fixture_start(fx, args) < 0) {
		CHECK(!"fixture");
		return false;
	}
	run_setup(fx->url, c);
	R.probe = event_new(R.base, -1, 0, on_probe, NULL);
	CHECK(R.probe != NULL);
	R.probe_on_done = true;
	R.work_ms = 2;
	return true;
}

static void inline_end(struct fixture *fx)
{
	event_free(R.probe);
	R.probe = NULL;
	run_teardown();
	fixture_stop(fx);
}

/* A request a done callback starts, with a connection free, is handed to
 * libcurl before the loop goes on to its other ready events once it has
 * waited FETCH_ADMIT_INLINE_AFTER_US (here the callback works 2 ms after
 * starting it): otherwise the provider waits while raced handles a whole
 * turn of responses, and the two alternate rather than overlap
 * (docs/performance.md, "The refresh re-import's wall"). */
static void test_a_request_started_by_a_done_callback_goes_out_in_the_same_turn(void)
{
	struct fixture fx;
	struct fetch_provider_conf c = default_conf;
	c.max_connections = 1;
	if (!inline_begin(&fx, c))
		return;
	start(0, "/athletes/a1");
	R.start_on_done = "/athletes/a2";
	CHECK(run_loop(10000));
	CHECK(R.probed);
	CHECK_EQ(R.at_probe.waiting, 0);
	CHECK_EQ(R.at_probe.in_flight, 1);
	CHECK_EQ(R.at_probe.requests, 2);
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[MAX_GOT - 1].calls, 1);
	CHECK_EQ(R.got[MAX_GOT - 1].outcome, FETCH_OK);
	CHECK_EQ(fixture_attempts(&fx, "/athletes/a2"), 1);
	inline_end(&fx);
}

/* The inline admission (fetch_admit_now) passes the same gates as the
 * admit timer's: of three requests a done callback starts with two
 * connection slots free, two go out in that turn and the third waits for
 * a slot. */
static void test_inline_admission_keeps_the_connection_limit(void)
{
	struct fixture fx;
	static const char *const more[] = {"/athletes/a2", "/athletes/a3", "/athletes/a4", NULL};
	struct fetch_provider_conf c = default_conf;
	c.max_connections = 2;
	if (!inline_begin(&fx, c))
		return;
	start(0, "/athletes/a1");
	R.start_all_on_done = more;
	CHECK(run_loop(10000));
	CHECK(R.probed);
	CHECK_EQ(R.at_probe.in_flight, 2);
	CHECK_EQ(R.at_probe.waiting, 1);
	CHECK_EQ(R.at_probe.requests, 3);
	for (size_t k = 0; k < 3; k++) {
		CHECK_EQ(R.got[MAX_GOT - 3 - k].calls, 1);
		CHECK_EQ(R.got[MAX_GOT - 3 - k].outcome, FETCH_OK);
	}
	inline_end(&fx);
}

/* Nor does it spend a rate_limit token the bucket has not got: a request
 * a done callback starts just after its predecessor took the only one
 * waits for the next, inline admission or not. */
static void test_inline_admission_keeps_the_rate_limit(void)
{
	struct fixture fx;
	struct fetch_provider_conf c = default_conf;
	c.rate_limit = 5; /* a token every 200 ms, one deep */
	if (!inline_begin(&fx, c))
		return;
	double t0 = mono_ms();
	start(0, "/athletes/a1");
	R.start_on_done = "/athletes/a2";
	CHECK(run_loop(10000));
	CHECK(R.probed);
	CHECK_EQ(R.at_probe.in_flight, 0);
	CHECK_EQ(R.at_probe.waiting, 1);
	CHECK_EQ(R.at_probe.requests, 1);
	CHECK_EQ(R.got[MAX_GOT - 1].outcome, FETCH_OK);
	/* its token came 200 ms after the first, then 20 ms of latency */
	CHECK(R.got[MAX_GOT - 1].t_ms - t0 >= 200);
	inline_end(&fx);
}

static void test_fetcher_free_with_requests_outstanding(void)
{
	struct fixture fx;
	const char *args[] = {"--broken", "/athletes/a1=slow", "--rate-503", "1", "--fault-attempts", "100",
	                      NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	struct fetch_provider_conf c = default_conf;
	c.max_connections = 2;
	c.max_retries = 10;
	run_setup(fx.url, c);
	start(0, "/athletes/a1"); /* on the wire, never answered */
	start(1, "/athletes/a2"); /* 503s: in and out of backoff */
	start(2, "/athletes/a3"); /* queued */
	start(3, "/athletes/a4");
	run_for(300);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK(st.in_flight + st.waiting == 4);
	CHECK(st.retries >= 1);
	fetcher_free(R.f);
	R.f = NULL;
	run_for(50);
	for (size_t i = 0; i < 4; i++)
		CHECK_EQ(R.got[i].calls, 0);
	run_teardown();
	fixture_stop(&fx);
}

static void test_fetcher_free_from_a_done_callback(void)
{
	struct fixture fx;
	const char *args[] = {"--broken", "/athletes/a1=slow", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	start(0, "/athletes/a1"); /* never answered */
	start(1, "/athletes/a2");
	R.free_on_done = true;
	CHECK(run_loop(10000));
	CHECK(R.f == NULL);
	CHECK_EQ(R.got[1].calls, 1);
	CHECK_EQ(R.got[0].calls, 0);
	run_for(50);
	CHECK_EQ(R.got[0].calls, 0);
	run_teardown();
	fixture_stop(&fx);
}

static void test_bad_provider_settings_are_refused(void)
{
	char err[ERR_MAX] = "";
	struct event_base *base = event_base_new();
	struct fetcher *f = fetcher_new(base, err);
	struct fetch_provider_conf c = default_conf;
	c.base_url = "ftp://example.com/";
	CHECK(fetcher_add_provider(f, &c, err) == NULL);
	CHECK(contains(err, "[provider main] is not an http or https URL"));
	c.base_url = "http://example.com/v1?key=1";
	CHECK(fetcher_add_provider(f, &c, err) == NULL);
	CHECK(contains(err, "query or fragment"));
	c.base_url = "http://example.com";
	c.max_connections = 0;
	CHECK(fetcher_add_provider(f, &c, err) == NULL);
	CHECK(contains(err, "max_connections of [provider main]"));
	c.max_connections = 1;
	c.token = "a\r\nX-Evil: 1";
	CHECK(fetcher_add_provider(f, &c, err) == NULL);
	CHECK(contains(err, "line break"));
	c.token = NULL;
	struct fetch_provider *p = fetcher_add_provider(f, &c, err);
	CHECK(p != NULL);
	CHECK_STR(fetch_provider_name(p), "main");
	CHECK(fetch_start(p, "http://exa mple.com/ x", on_done, NULL, err) == NULL);
	fetcher_free(f);
	event_base_free(base);
}

/* ---- conditional requests ---- */

/* One GET of url with validators (NULL: fetch_start) on a fresh loop
 * against fx; the result in R.got[i]. */
static void get_if(const struct fixture *fx, size_t i, const char *url, const char *etag,
                   const char *lm)
{
	(void)fx;
	R.got[i].calls = 0;
	json_decref(R.got[i].doc);
	R.got[i].doc = NULL;
	if (etag || lm)
		CHECK(start_if(i, url, etag, lm) != NULL);
	else
		CHECK(start(i, url) != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[i].calls, 1);
}

static void test_304_to_if_none_match_has_no_body_and_is_not_retried(void)
{
	struct fixture fx;
	const char *args[] = {"--validators", "etag", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	get_if(&fx, 0, "/athletes/a7", NULL, NULL);
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK(!R.got[0].not_modified);
	CHECK(!R.got[0].conditional);
	CHECK(R.got[0].has_etag && R.got[0].etag[0] == '"');
	CHECK(!R.got[0].has_last_modified); /* --validators etag sends none */

	get_if(&fx, 1, "/athletes/a7", R.got[0].etag, NULL);
	CHECK_EQ(R.got[1].outcome, FETCH_OK);
	CHECK_EQ(R.got[1].status, 304);
	CHECK_EQ(R.got[1].attempts, 1);
	CHECK(R.got[1].not_modified);
	CHECK(R.got[1].conditional);
	CHECK(R.got[1].doc == NULL && !R.got[1].has_body && R.got[1].body_len == 0);
	CHECK_EQ(R.got[1].bytes, 0);
	CHECK_STR(R.got[1].etag, R.got[0].etag); /* a 304 carries the validators */
	CHECK(R.got[1].error[0] == '\0');

	/* another ETag: the body comes */
	get_if(&fx, 2, "/athletes/a7", "\"not-it\"", NULL);
	CHECK_EQ(R.got[2].status, 200);
	CHECK(!R.got[2].not_modified && R.got[2].conditional && R.got[2].doc != NULL);

	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.not_modified, 1);
	CHECK_EQ(st.succeeded, 3);
	CHECK_EQ(st.retries, 0);
	json_t *a = fixture_get(&fx, "/_attempts?url=/athletes/a7");
	CHECK_EQ(json_integer_value(json_object_get(a, "attempts")), 3);
	CHECK_EQ(json_integer_value(json_object_get(a, "not_modified")), 1);
	json_decref(a);
	run_teardown();
	fixture_stop(&fx);
}

static void test_304_to_if_modified_since(void)
{
	struct fixture fx;
	const char *args[] = {"--validators", "lm", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	get_if(&fx, 0, "/races", NULL, NULL);
	CHECK_EQ(R.got[0].status, 200);
	CHECK(!R.got[0].has_etag);
	CHECK(R.got[0].has_last_modified);
	CHECK(curl_getdate(R.got[0].last_modified, NULL) > 0);

	get_if(&fx, 1, "/races", NULL, R.got[0].last_modified);
	CHECK_EQ(R.got[1].status, 304);
	CHECK(R.got[1].not_modified && R.got[1].conditional);
	CHECK_STR(R.got[1].last_modified, R.got[0].last_modified);

	/* a date before the resource's: the body comes */
	get_if(&fx, 2, "/races", NULL, "Mon, 01 Jan 2001 00:00:00 GMT");
	CHECK_EQ(R.got[2].status, 200);
	CHECK(R.got[2].doc != NULL);
	run_teardown();
	fixture_stop(&fx);
}

/* If-None-Match decides when both are sent (RFC 9110 13.2.2): a date
 * that would match does not make a 304 when the ETag does not. */
static void test_if_none_match_wins_over_if_modified_since(void)
{
	struct fixture fx;
	const char *args[] = {"--validators", "both", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	get_if(&fx, 0, "/races/1/entries", NULL, NULL);
	CHECK(R.got[0].has_etag && R.got[0].has_last_modified);
	get_if(&fx, 1, "/races/1/entries", "\"other\"", R.got[0].last_modified);
	CHECK_EQ(R.got[1].status, 200);
	get_if(&fx, 2, "/races/1/entries", R.got[0].etag, R.got[0].last_modified);
	CHECK_EQ(R.got[2].status, 304);
	run_teardown();
	fixture_stop(&fx);
}

static void test_weak_etag_is_sent_back_verbatim(void)
{
	struct fixture fx;
	const char *args[] = {"--validators", "weak", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	get_if(&fx, 0, "/athletes/a3", NULL, NULL);
	CHECK(strncmp(R.got[0].etag, "W/\"", 3) == 0);
	get_if(&fx, 1, "/athletes/a3", R.got[0].etag, NULL);
	CHECK_EQ(R.got[1].status, 304);
	CHECK_STR(R.got[1].etag, R.got[0].etag);
	run_teardown();
	fixture_stop(&fx);

	/* on the wire: each validator once, exactly as given, besides the
	 * provider's lines */
	static struct wire w;
	char host[64];
	wire_setup(&w);
	snprintf(host, sizeof host, "Host: 127.0.0.1:%d", w.port);
	CHECK(start_if(0, "/races", "W/\"a b\", \"c\"", "Sun, 06 Nov 1994 08:49:37 GMT") != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(w.n_heads, 1);
	const char *want[] = {
		host,
		"User-Agent: raced/" RACED_VERSION,
		"Accept: application/json",
		"Accept-Encoding: *",
		"Authorization: Bearer s3cret",
		"If-None-Match: W/\"a b\", \"c\"",
		"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
	};
	check_head_lines(w.heads[0], want, sizeof want / sizeof want[0]);
	wire_teardown(&w);
}

/* libcurl sends custom headers to every URL of a redirect chain: the
 * validators reach the URL redirected to (whose own answer they were read
 * from), and the redirecting one too. */
static void test_validators_follow_a_redirect(void)
{
	static struct wire w;
	wire_setup(&w);
	CHECK(start_if(0, "/old", "\"e1\"", NULL) != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(w.n_heads, 2);
	CHECK(strncmp(w.heads[1], "GET /v1/new?x=1 ", 16) == 0);
	CHECK(contains(w.heads[0], "\r\nIf-None-Match: \"e1\"\r\n"));
	CHECK(contains(w.heads[1], "\r\nIf-None-Match: \"e1\"\r\n"));
	wire_teardown(&w);
}

/* Header auth: the key goes with every hop on the provider's origin and
 * with none elsewhere (libcurl would send a custom header to any host, so
 * raced follows these redirects itself); static headers go everywhere. */
static void test_header_auth_follows_redirects_only_on_the_origin(void)
{
	static struct wire w;
	static const char *const statics[] = {"Accept: application/vnd.x+json"};
	struct fetch_provider_conf c = default_conf;
	c.token = NULL;
	c.auth = (struct auth_conf){.kind = AUTH_HEADER, .name = "X-Api-Key", .secret = "k3y",
	                            .headers = statics, .n_headers = 1};
	wire_setup_conf(&w, c);
	CHECK(start(0, "/old") != NULL);
	CHECK(start(1, "/away") != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].attempts, 1);
	CHECK_EQ(R.got[1].outcome, FETCH_OK);
	CHECK(contains(R.got[1].effective_url, "http://localhost:"));
	CHECK_EQ(w.n_heads, 4);
	for (size_t i = 0; i < w.n_heads; i++) {
		bool away = strncmp(w.heads[i], "GET /v1/new?y=1 ", 16) == 0;
		CHECK(contains(w.heads[i], "\r\nAccept: application/vnd.x+json\r\n"));
		CHECK(!contains(w.heads[i], "Accept: application/json"));
		CHECK_EQ(contains(w.heads[i], "\r\nX-Api-Key: k3y\r\n"), !away);
		if (away)
			CHECK(contains(w.heads[i], "\r\nHost: localhost:"));
	}
	wire_teardown(&w);
}

/* Query auth: the parameter is put on every request to the origin (a
 * value already in the URL replaced), never shown in a result's URLs, and
 * not sent on a hop to another origin. */
static void test_query_auth_is_on_the_wire_not_in_urls(void)
{
	static struct wire w;
	struct fetch_provider_conf c = default_conf;
	c.token = NULL;
	c.auth = (struct auth_conf){.kind = AUTH_QUERY, .name = "api_key", .secret = "k3y"};
	wire_setup_conf(&w, c);
	CHECK(start(0, "/races?api_key=echoed&page=2") != NULL);
	CHECK(run_loop(10000));
	CHECK(start(1, "/old") != NULL);
	CHECK(run_loop(10000));
	CHECK(start(2, "/away") != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(w.n_heads, 5);
	CHECK(strncmp(w.heads[0], "GET /v1/races?page=2&api_key=k3y ", 33) == 0);
	CHECK(strncmp(w.heads[1], "GET /v1/old?api_key=k3y ", 24) == 0);
	CHECK(strncmp(w.heads[2], "GET /v1/new?x=1&api_key=k3y ", 28) == 0);
	CHECK(strncmp(w.heads[3], "GET /v1/away?api_key=k3y ", 25) == 0);
	CHECK(strncmp(w.heads[4], "GET /v1/new?y=1 ", 16) == 0);
	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ(R.got[i].outcome, FETCH_OK);
		CHECK(!contains(R.got[i].url, "k3y") && !contains(R.got[i].url, "echoed"));
		CHECK(!contains(R.got[i].effective_url, "k3y"));
	}
	CHECK(contains(R.got[1].effective_url, "/v1/new?x=1"));
	wire_teardown(&w);
}

/* Redirects raced follows itself still stop at max_redirects. */
static void test_own_redirects_stop_at_max_redirects(void)
{
	static struct wire w;
	struct fetch_provider_conf c = default_conf;
	c.token = NULL;
	c.max_redirects = 3;
	c.auth = (struct auth_conf){.kind = AUTH_HEADER, .name = "X-Api-Key", .secret = "k3y"};
	wire_setup_conf(&w, c);
	CHECK(start(0, "/loop") != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(R.got[0].outcome, FETCH_HTTP);
	CHECK_EQ(w.n_heads, 4);
	CHECK(contains(R.got[0].error, "more than 3 redirects (setting 'max_redirects' of [provider main]); not retried"));
	wire_teardown(&w);
}

/* Basic auth: libcurl's user and password, on the first host only. */
static void test_basic_auth_sends_user_and_password(void)
{
	static struct wire w;
	struct fetch_provider_conf c = default_conf;
	c.token = NULL;
	c.auth = (struct auth_conf){.kind = AUTH_BASIC, .username = "u", .secret = "p"};
	wire_setup_conf(&w, c);
	CHECK(start(0, "/away") != NULL);
	CHECK(run_loop(10000));
	CHECK_EQ(w.n_heads, 2);
	CHECK(contains(w.heads[0], "\r\nAuthorization: Basic dTpw\r\n"));
	CHECK(!contains(w.heads[1], "Authorization"));
	wire_teardown(&w);
}

static void test_a_last_modified_that_is_no_date_is_dropped(void)
{
	struct fixture fx;
	const char *args[] = {"--broken", "/athletes/a5=baddate", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	get_if(&fx, 0, "/athletes/a5", NULL, NULL);
	CHECK_EQ(R.got[0].status, 200);
	CHECK(!R.got[0].has_last_modified);
	CHECK_STR(R.got[0].etag, "\"bd1\"");
	run_teardown();
	fixture_stop(&fx);
}

/* A 304 nobody asked for is still a 304: the caller sees conditional
 * false and decides (the import refetches). */
static void test_304_to_an_unconditional_request_is_reported_as_such(void)
{
	struct fixture fx;
	const char *args[] = {"--broken", "/athletes/a4=notmodified", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	get_if(&fx, 0, "/athletes/a4", NULL, NULL);
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].status, 304);
	CHECK(R.got[0].not_modified);
	CHECK(!R.got[0].conditional);
	CHECK(R.got[0].doc == NULL && !R.got[0].has_etag && !R.got[0].has_last_modified);
	CHECK_EQ(R.got[0].attempts, 1);
	run_teardown();
	fixture_stop(&fx);
}

/* bytes: the body bytes of every attempt of this request (a cut first
 * attempt included), as the provider's stats count them. */
static void test_bytes_count_every_attempts_body(void)
{
	struct fixture fx;
	const char *args[] = {"--rate-cut", "1", "--fault-attempts", "1", NULL};
	if (fixture_start(&fx, args) < 0) {
		CHECK(!"fixture");
		return;
	}
	run_setup(fx.url, default_conf);
	get_if(&fx, 0, "/races/1/entries", NULL, NULL);
	CHECK_EQ(R.got[0].outcome, FETCH_OK);
	CHECK_EQ(R.got[0].attempts, 2);
	CHECK(R.got[0].body_len > 0);
	/* the cut attempt sent half the body */
	CHECK_EQ(R.got[0].bytes, R.got[0].body_len + R.got[0].body_len / 2);
	struct fetch_provider_stats st;
	fetch_provider_get_stats(R.p, &st);
	CHECK_EQ(st.bytes, R.got[0].bytes);
	get_if(&fx, 1, "/races/1/entries", NULL, NULL); /* attempt 2 of the URL: not cut */
	CHECK_EQ(R.got[1].bytes, R.got[1].body_len);
	run_teardown();
	fixture_stop(&fx);
}

static void test_a_validator_with_a_line_break_is_refused(void)
{
	char err[ERR_MAX] = "", big[FETCH_VALIDATOR_MAX + 2];
	run_setup("http://127.0.0.1:9/", default_conf);
	struct fetch_validators v = {.etag = "\"a\"\r\nX-Evil: 1"};
	CHECK(fetch_start_if(R.p, "/races", &v, on_done, NULL, err) == NULL);
	CHECK(contains(err, "GET http://127.0.0.1:9/races: the If-None-Match to send"));
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	v = (struct fetch_validators){.last_modified = big};
	CHECK(fetch_start_if(R.p, "/races", &v, on_done, NULL, err) == NULL);
	CHECK(contains(err, "If-Modified-Since"));
	/* empty strings are no validators */
	v = (struct fetch_validators){.etag = "", .last_modified = ""};
	struct fetch *r = fetch_start_if(R.p, "/races", &v, on_done, NULL, err);
	CHECK(r != NULL);
	fetch_cancel(r);
	run_teardown();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	/* Every test talks to a loopback server directly: a proxy the machine's
	 * environment names (as CI machines often do) must not come between. */
	static const char *const proxy_vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
	                                         "ALL_PROXY", "no_proxy", "NO_PROXY"};
	for (size_t i = 0; i < sizeof proxy_vars / sizeof *proxy_vars; i++)
		unsetenv(proxy_vars[i]);
	/* Once for the program, as fetch.h asks. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "cannot initialise libcurl\n");
		return EXIT_FAILURE;
	}
	RUN(test_503_is_retried_and_succeeds_on_a_later_attempt);
	RUN(test_transient_failures_exhaust_max_retries_and_say_so);
	RUN(test_429_retry_after_is_obeyed_before_the_next_attempt);
	RUN(test_cut_body_is_retried);
	RUN(test_connection_refused_is_transient_and_retried);
	RUN(test_404_is_tried_exactly_once);
	RUN(test_malformed_body_is_a_body_error_not_retried);
	RUN(test_header_over_libcurls_limit_is_permanent_and_named);
	RUN(test_headers_over_libcurls_total_are_permanent_and_named);
	RUN(test_body_over_max_body_is_refused_by_its_content_length);
	RUN(test_gzip_body_over_max_body_is_refused_while_streaming);
	RUN(test_a_body_that_could_never_be_read_within_memory_limit_fails_naming_it);
	RUN(test_a_body_waits_for_memory_and_is_read_once_it_is_released);
	RUN(test_a_waiting_body_is_read_anyway_once_nothing_is_released);
	RUN(test_slow_response_hits_the_timeout);
	RUN(test_max_connections_is_never_exceeded);
	RUN(test_rate_limit_spaces_request_starts);
	RUN(test_resolve_url_follows_rfc3986);
	RUN(test_base_url_path_prefix_holds_request_paths);
	RUN(test_request_urls_are_exactly_what_curl_url_makes);
	RUN(test_request_head_names_raced_and_asks_for_json);
	RUN(test_proxy_in_the_environment_is_used);
	RUN(test_token_goes_only_to_the_providers_origin);
	RUN(test_each_request_asks_for_its_own_url);
	RUN(test_a_reused_handle_carries_nothing_of_the_request_before);
	RUN(test_random_urls_go_out_as_resolved);
	RUN(test_relative_next_link_resolves_against_the_page);
	RUN(test_link_header_next_is_absolute);
	RUN(test_wanted_header_comes_with_the_result);
	/* test_link_header_finds_rel_next_among_several_links: test_linkheader.c */
	RUN(test_retry_after_reads_seconds_and_http_dates);
	RUN(test_gzip_body_arrives_decoded);
	RUN(test_thousand_concurrent_fetches_never_block_the_loop);
	RUN(test_cancel_queued_request_never_calls_back);
	RUN(test_cancel_in_backoff_never_calls_back);
	RUN(test_cancel_on_the_wire_never_calls_back);
	RUN(test_done_callback_may_cancel_and_start_requests);
	RUN(test_a_request_started_by_a_done_callback_goes_out_in_the_same_turn);
	RUN(test_inline_admission_keeps_the_connection_limit);
	RUN(test_inline_admission_keeps_the_rate_limit);
	RUN(test_fetcher_free_with_requests_outstanding);
	RUN(test_fetcher_free_from_a_done_callback);
	RUN(test_bad_provider_settings_are_refused);
	RUN(test_304_to_if_none_match_has_no_body_and_is_not_retried);
	RUN(test_304_to_if_modified_since);
	RUN(test_if_none_match_wins_over_if_modified_since);
	RUN(test_weak_etag_is_sent_back_verbatim);
	RUN(test_validators_follow_a_redirect);
	RUN(test_header_auth_follows_redirects_only_on_the_origin);
	RUN(test_query_auth_is_on_the_wire_not_in_urls);
	RUN(test_own_redirects_stop_at_max_redirects);
	RUN(test_basic_auth_sends_user_and_password);
	RUN(test_a_last_modified_that_is_no_date_is_dropped);
	RUN(test_304_to_an_unconditional_request_is_reported_as_such);
	RUN(test_bytes_count_every_attempts_body);
	RUN(test_a_validator_with_a_line_break_is_refused);
	curl_global_cleanup();
	return CHECK_DONE();
}
