/* metrics_http — see metrics_http.h.
 *
 * evhttp in libevent 2.1 has no bound on its connections, so the bound is
 * kept at the listener: the accept times of the last METRICS_MAX_CLIENTS
 * connections are a ring; when the oldest is younger than
 * METRICS_TIMEOUT_S the listener is disabled until it is that old.  A
 * connection that says nothing for METRICS_TIMEOUT_S is closed by evhttp,
 * so no more than METRICS_MAX_CLIENTS are open at once unless one drips
 * its request (headers are bounded by METRICS_MAX_HEADERS).
 */
#include "metrics_http.h"

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct metrics_http {
	struct event_base *base;
	struct service *svc;
	struct evhttp *http;
	struct evconnlistener *listener;
	struct event *reopen;
	json_t *totals;
	time_t accepted[METRICS_MAX_CLIENTS]; /* ring of accept times (monotonic s) */
	size_t next;
	char *path;                           /* a Unix socket it bound */
};

static time_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void reopen_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *m = arg;
	(void)fd;
	(void)what;
	evconnlistener_enable(m->listener);
}

/* A new connection (evhttp asks for its bufferevent): counted; the
 * listener pauses while the window is full. */
static struct bufferevent *on_connection(struct event_base *base, void *arg)
{
	struct metrics_http *m = arg;
	time_t now = now_s();
	m->accepted[m->next] = now;
	m->next = (m->next + 1) % METRICS_MAX_CLIENTS;
	time_t oldest = m->accepted[m->next];
	if (oldest != 0 && now - oldest < METRICS_TIMEOUT_S) {
		evconnlistener_disable(m->listener);
		struct timeval tv = {METRICS_TIMEOUT_S - (now - oldest), 0};
		evtimer_add(m->reopen, &tv);
	}
	return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct metrics_http *m = arg;
	char err[ERR_MAX] = "";
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (!path || strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "raced serves /metrics only");
		return;
	}
	json_t *stats = service_stats(m->svc);
	struct metrics_text text = {0};
	struct evbuffer *body = evbuffer_new();
	if (!stats || !body || metrics_carry(m->totals, stats) < 0 ||
	    metrics_format(stats, m->totals, &text, err) < 0 ||
	    evbuffer_add(body, text.buf, text.len) < 0) {
		log_warn("metrics: %s", err[0] ? err : "out of memory");
		evhttp_send_error(req, HTTP_INTERNAL, "raced: metrics not available");
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
		                  METRICS_CONTENT_TYPE);
		evhttp_send_reply(req, HTTP_OK, "OK", body);
	}
	if (body)
		evbuffer_free(body);
	metrics_text_free(&text);
	json_decref(stats);
}

/* A Unix socket: a stale socket file from an earlier run is replaced,
 * anything else at that path is left alone. */
static evutil_socket_t unix_listen(const char *path, char *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(err, "metrics: %s exists and is not a socket; "
			                    "remove it or choose another path for [daemon] metrics", path);
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(err, "metrics: socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, METRICS_MAX_CLIENTS) < 0) {
		err_set(err, "metrics: cannot listen on %s: %s (check [daemon] metrics)", path,
		        strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int bind_address(struct metrics_http *m, const char *address, char *err)
{
	struct config_listen l;
	char msg[ERR_MAX];
	if (config_listen_parse(address, &l, msg, sizeof msg) < 0)
		return err_set(err, "metrics: %s", msg);
	struct evhttp_bound_socket *bound;
	if (l.path) {
		evutil_socket_t fd = unix_listen(l.path, err);
		if (fd < 0)
			return -1;
		if (!(m->path = strdup(l.path))) {
			close(fd);
			return err_set(err, "metrics: out of memory");
		}
		bound = evhttp_accept_socket_with_handle(m->http, fd);
		if (!bound)
			close(fd);
	} else {
		bound = evhttp_bind_socket_with_handle(m->http, l.host, l.port);
	}
	if (!bound)
		return err_set(err, "metrics: cannot listen on %s: %s (check [daemon] metrics)",
		               address, strerror(errno));
	m->listener = evhttp_bound_socket_get_listener(bound);
	return 0;
}

struct metrics_http *metrics_http_open(struct event_base *base, struct service *svc,
                                       const char *address, char *err)
{
	struct metrics_http *m = calloc(1, sizeof *m);
	if (!m) {
		err_set(err, "metrics: out of memory");
		return NULL;
	}
	m->base = base;
	m->svc = svc;
	m->http = evhttp_new(base);
	m->totals = metrics_totals_new();
	m->reopen = evtimer_new(base, reopen_cb, m);
	if (!m->http || !m->totals || !m->reopen) {
		err_set(err, "metrics: out of memory");
		metrics_http_close(m);
		return NULL;
	}
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_bevcb(m->http, on_connection, m);
	evhttp_set_gencb(m->http, on_request, m);
	if (bind_address(m, address, err) < 0) {
		metrics_http_close(m);
		return NULL;
	}
	log_info("metrics: serving on %s", address);
	return m;
}

void metrics_http_close(struct metrics_http *m)
{
	if (!m)
		return;
	if (m->http)
		evhttp_free(m->http);
	if (m->reopen)
		event_free(m->reopen);
	if (m->path)
		unlink(m->path);
	free(m->path);
	json_decref(m->totals);
	free(m);
}

void metrics_http_import_ended(struct metrics_http *m)
{
	if (!m)
		return;
	json_t *stats = service_stats(m->svc);
	if (!stats || metrics_fold(m->totals, stats) < 0)
		log_warn("metrics: out of memory: the counters miss the last import's figures");
	json_decref(stats);
}
