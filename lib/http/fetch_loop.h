/* fetch_loop — libcurl's multi handle driven by libevent, as in curl's
 * hiperfifo example: CURLMOPT_SOCKETFUNCTION keeps one event per socket
 * libcurl watches (struct fetch_sock, attached with curl_multi_assign),
 * CURLMOPT_TIMERFUNCTION one evtimer; their callbacks call
 * curl_multi_socket_action() and then read the completed transfers
 * (curl_multi_info_read, the one place: fetch_attempt_done).  After a
 * socket event's completions, the admissions that have waited
 * FETCH_ADMIT_INLINE_AFTER_US run at once and libcurl is driven once more
 * (fetch_admit_now).  libcurl is never driven from inside one of its own
 * callbacks.  A failure of
 * curl_multi_socket_action() other than an unknown socket ends the
 * attempts on the wire as transient failures.  Every fd libcurl opens is
 * made close-on-exec.
 *
 * A socket libcurl lets go of (CURL_POLL_REMOVE) is, most of the time, a
 * connection going back to its cache, to be taken again by the next
 * transfer a moment later.  For the sockets raced opens itself (and so
 * sees closed: CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION), the
 * record and its event stay: the next transfer's announcement of the
 * same events costs no epoll_ctl, no allocation, no fcntl.  An idle
 * socket's event (the server closing it) only stops the watch; libcurl
 * finds the connection dead itself when it next looks at it.  The record
 * goes when libcurl closes the socket.  Any other socket (the threaded
 * resolver's) is let go of at once, as raced cannot see it closed.
 *
 * Ownership: the fetcher owns the multi handle, the timer and the sockets'
 * records (f->socks); fetch_loop_init makes them, fetch_loop_free frees
 * them.  A socket record lives from the socket's opening (ours) or
 * libcurl's first word on it (any other) to its close (ours) or its
 * CURL_POLL_REMOVE (any other), or fetch_loop_free.
 */
#ifndef RACED_FETCH_LOOP_H
#define RACED_FETCH_LOOP_H

#include "fetch_int.h"

/* f->multi and f->timer, set up; -1 with err. */
int fetch_loop_init(struct fetcher *f, char *err);
/* Frees what fetch_loop_init made (any part may be missing). */
void fetch_loop_free(struct fetcher *f);
/* CURLOPT_OPENSOCKETFUNCTION and CLOSESOCKETFUNCTION, their data the
 * fetcher: libcurl's sockets, close-on-exec, their records kept while
 * they are open. */
curl_socket_t fetch_loop_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a);
int fetch_loop_close_socket(void *arg, curl_socket_t fd);

#endif
