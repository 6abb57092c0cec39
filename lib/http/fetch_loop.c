/* fetch_loop — see fetch_loop.h. */
#include "fetch_loop.h"
#include "fetch_admit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void sock_event_cb(evutil_socket_t fd, short what, void *arg);

/* The record of our open socket fd, or NULL. */
static struct fetch_sock *sock_ours(const struct fetcher *f, curl_socket_t fd)
{
	return fd >= 0 && (size_t)fd < f->n_by_fd ? f->by_fd[fd] : NULL;
}

/* f->by_fd long enough for fd; -1 when out of memory.  (Its length is
 * bounded by the highest fd, so by RLIMIT_NOFILE.) */
static int by_fd_fit(struct fetcher *f, curl_socket_t fd)
{
	if ((size_t)fd < f->n_by_fd)
		return 0;
	size_t n = f->n_by_fd ? f->n_by_fd : 64;
	while (n <= (size_t)fd)
		n *= 2;
	struct fetch_sock **t = realloc(f->by_fd, n * sizeof *t);
	if (!t)
		return -1;
	memset(t + f->n_by_fd, 0, (n - f->n_by_fd) * sizeof *t);
	f->by_fd = t;
	f->n_by_fd = n;
	return 0;
}

static struct fetch_sock *sock_new(struct fetcher *f, curl_socket_t fd)
{
	struct fetch_sock *fs = calloc(1, sizeof *fs);
	if (!fs)
		return NULL;
	fs->f = f;
	fs->fd = fd;
	LIST_INSERT_HEAD(&f->socks, fs, link);
	return fs;
}

static void sock_free(struct fetch_sock *fs)
{
	if (fs->armed)
		event_del(&fs->ev);
	if (fs->ours && sock_ours(fs->f, fs->fd) == fs)
		fs->f->by_fd[fs->fd] = NULL;
	LIST_REMOVE(fs, link);
	free(fs);
}

/* libcurl's sockets, close-on-exec like every fd of raced's (libcurl
 * itself does not ask for it), with a record from the start.  Without
 * memory for the record the socket is libcurl's as any other's. */
curl_socket_t fetch_loop_open_socket(void *arg, curlsocktype purpose,
                                     struct curl_sockaddr *a)
{
	struct fetcher *f = arg;
	(void)purpose;
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
	if (fd < 0 || !f || by_fd_fit(f, fd) < 0)
		return fd;
	struct fetch_sock *fs = sock_new(f, fd);
	if (fs) {
		fs->ours = true;
		f->by_fd[fd] = fs;
	}
	return fd;
}

/* The watch ends before the fd does (libevent must not be left with a
 * closed fd).  A record libcurl still has assigned waits for its
 * CURL_POLL_REMOVE; any other goes now (a socket whose connect failed was
 * never announced). */
int fetch_loop_close_socket(void *arg, curl_socket_t fd)
{
	struct fetcher *f = arg;
	struct fetch_sock *fs = f ? sock_ours(f, fd) : NULL;
	if (fs) {
		f->by_fd[fd] = NULL;
		if (!fs->assigned) {
			sock_free(fs);
		} else {
			if (fs->armed)
				event_del(&fs->ev);
			fs->armed = false;
			fs->closed = true;
		}
	}
	return close(fd);
}

/* Best effort: a closed fd (EBADF) is left alone. */
static void fd_make_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0 && !(fl & FD_CLOEXEC))
		(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* The one place completed transfers are read. */
static void fetch_loop_drain(struct fetcher *f)
{
	CURLMsg *m;
	int left;

	while (!f->free_pending && (m = curl_multi_info_read(f->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		struct fetch *r = NULL;
		char *priv = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		r = (struct fetch *)(void *)priv;
		if (r)
			fetch_attempt_done(r, rc);
	}
}

/* ---- libevent callbacks ---- */

/* libcurl's multi handle failed as a whole (out of memory, an internal
 * error): every transfer on it ends as a transient failure of its attempt,
 * retried by the usual rules.  A done callback may cancel or start
 * requests, so the search starts over after each. */
static void multi_failed(struct fetcher *f, CURLMcode mc)
{
	struct fetch *r;
	do {
		r = NULL;
		for (struct fetch_provider *p = f->providers; p && !r; p = p->next) {
			for (r = TAILQ_FIRST(&p->all); r && r->state != FS_ACTIVE;)
				r = TAILQ_NEXT(r, all_link);
		}
		if (r) {
			snprintf(r->curl_err, sizeof r->curl_err, "libcurl's multi handle failed: %s",
			         curl_multi_strerror(mc));
			/* Always a transient code: CURLE_OUT_OF_MEMORY would read as
			 * an oversized header (fetch_error_header_limit) and not be retried;
			 * the real cause is in curl_err. */
			fetch_attempt_done(r, CURLE_FAILED_INIT);
		}
	} while (r && !f->free_pending);
}

/* Drive libcurl on a socket event or its timeout, then read what ended. */
static void multi_act(struct fetcher *f, curl_socket_t s, int action)
{
	int running;
	CURLMcode mc = curl_multi_socket_action(f->multi, s, action, &running);

	fetch_loop_drain(f);
	/* The done callbacks may have queued requests (the next input's
	 * first page, as a slot came free).  Those that have waited a while
	 * (fetch_admit_now) are admitted and sent now, not when the admit
	 * timer and libcurl's own timer fire on later turns of the loop,
	 * after every other socket ready in this turn has been read and its
	 * items handled.  Otherwise the provider idles while raced works
	 * through a long turn, and raced waits while the provider answers the
	 * burst sent at its end: the two alternate instead of overlapping
	 * (docs/performance.md, "The refresh re-import's wall"). */
	if (mc == CURLM_OK && s != CURL_SOCKET_TIMEOUT && !f->free_pending && fetch_admit_now(f) &&
	    !f->free_pending) {
		mc = curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		fetch_loop_drain(f);
	}
	/* CURLM_BAD_SOCKET: an event for a socket libcurl has already let go
	 * of; nothing is lost. */
	if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET && !f->free_pending)
		multi_failed(f, mc);
	fetch_finish_dispatch(f);
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch_sock *fs = arg;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	             ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

	if (!fs->assigned) {
		/* A cached connection the server wrote to or closed: no
		 * transfer wants it now; libcurl checks it before reuse. */
		event_del(&fs->ev);
		fs->armed = false;
		return;
	}
	multi_act(fs->f, fd, action); /* fs may be gone after it */
}

static void curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	multi_act(arg, CURL_SOCKET_TIMEOUT, 0);
}

/* ---- libcurl callbacks: bookkeeping only, never call libcurl back ---- */

static int socket_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct fetcher *f = userp;
	struct fetch_sock *fs = socketp;
	(void)e;

	if (what == CURL_POLL_REMOVE) {
		/* Possibly for a socket already closed, or never announced.
		 * Ours stays watched while it is open (fetch_loop.h). */
		if (fs && fs->ours && !fs->closed)
			fs->assigned = false;
		else if (fs)
			sock_free(fs);
		return 0;
	}
	if (fs && fs->closed) /* an fd number libcurl has reused */
		fs = NULL;
	if (!fs) {
		fs = sock_ours(f, s);
		if (!fs) {
			if (!(fs = sock_new(f, s)))
				return -1;
			/* Not only our sockets (fetch_loop_open_socket) come
			 * here: the threaded resolver's socketpair, made without
			 * close-on-exec, is watched too. */
			fd_make_cloexec(s);
		}
		if (curl_multi_assign(f->multi, s, fs) != CURLM_OK) {
			sock_free(fs);
			return -1;
		}
		fs->assigned = true;
	}
	short events = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
	                       ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
	if (fs->armed && fs->events == events)
		return 0; /* watched already: a cached connection taken again */
	if (fs->armed) {
		event_del(&fs->ev);
		fs->armed = false;
	}
	if (!events)
		return 0;
	event_assign(&fs->ev, f->base, s, (short)(events | EV_PERSIST), sock_event_cb, fs);
	if (event_add(&fs->ev, NULL) < 0)
		return -1;
	fs->events = events;
	fs->armed = true;
	return 0;
}

static int timer_fn(CURLM *m, long timeout_ms, void *userp)
{
	struct fetcher *f = userp;
	(void)m;
	if (timeout_ms < 0) {
		evtimer_del(f->timer);
	} else {
		struct timeval tv = tv_ms((uint64_t)timeout_ms);
		evtimer_add(f->timer, &tv);
	}
	return 0;
}


/* libcurl's multi handle opens a socketpair (for curl_multi_wakeup)
 * without close-on-exec and offers no hook for it.  A new fd is the lowest
 * free one, so the fds curl_multi_init() opens are among the lowest free
 * ones before it: note those, then mark the ones it took.  (Its sockets
 * to servers are made close-on-exec by open_socket_cloexec.) */
#define FETCH_FDS_WATCHED 8

static size_t lowest_free_fds(int *fds)
{
	size_t n = 0;
	while (n < FETCH_FDS_WATCHED) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	return n;
}

static CURLM *multi_new_cloexec(void)
{
	int fds[FETCH_FDS_WATCHED];
	size_t n = lowest_free_fds(fds);
	CURLM *m = curl_multi_init();
	for (size_t i = 0; i < n; i++)
		fd_make_cloexec(fds[i]);
	return m;
}

int fetch_loop_init(struct fetcher *f, char *err)
{
	f->multi = multi_new_cloexec();
	f->timer = evtimer_new(f->base, curl_timer_cb, f);
	if (!f->multi || !f->timer)
		return err_set(err, "out of memory");
	CURLMcode mc = CURLM_OK;
#define MSET(opt, val) if (mc == CURLM_OK) mc = curl_multi_setopt(f->multi, opt, val)
	MSET(CURLMOPT_SOCKETFUNCTION, socket_fn);
	MSET(CURLMOPT_SOCKETDATA, f);
	MSET(CURLMOPT_TIMERFUNCTION, timer_fn);
	MSET(CURLMOPT_TIMERDATA, f);
	MSET(CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
#undef MSET
	if (mc != CURLM_OK)
		return err_set(err, "cannot set up libcurl's multi handle: %s", curl_multi_strerror(mc));
	return 0;
}

void fetch_loop_free(struct fetcher *f)
{
	if (f->multi)
		(void)curl_multi_cleanup(f->multi); /* may still announce CURL_POLL_REMOVE;
		                                       fails only for a bad handle */
	f->multi = NULL;
	while (!LIST_EMPTY(&f->socks))
		sock_free(LIST_FIRST(&f->socks));
	free(f->by_fd);
	f->by_fd = NULL;
	f->n_by_fd = 0;
	if (f->timer)
		event_free(f->timer);
	f->timer = NULL;
}
