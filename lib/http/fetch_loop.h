/* fetch_loop — libcurl's multi handle driven by libevent, as in curl's
 * hiperfifo example: CURLMOPT_SOCKETFUNCTION keeps one event per socket
 * libcurl watches (struct fetch_sock, attached with curl_multi_assign),
 * CURLMOPT_TIMERFUNCTION one evtimer; their callbacks call
 * curl_multi_socket_action() and then read the completed transfers
 * (curl_multi_info_read, the one place: fetch_attempt_done).  libcurl is
 * never driven from inside one of its own callbacks.  A failure of
 * curl_multi_socket_action() other than an unknown socket ends the
 * attempts on the wire as transient failures.  Every fd libcurl opens is
 * made close-on-exec.
 *
 * Ownership: the fetcher owns the multi handle, the timer and the sockets'
 * records (f->socks); fetch_loop_init makes them, fetch_loop_free frees
 * them.  A socket record lives from libcurl's first word on that socket
 * to its CURL_POLL_REMOVE (or fetch_loop_free).
 */
#ifndef RACED_FETCH_LOOP_H
#define RACED_FETCH_LOOP_H

#include "fetch_int.h"

/* f->multi and f->timer, set up; -1 with err. */
int fetch_loop_init(struct fetcher *f, char *err);
/* Frees what fetch_loop_init made (any part may be missing). */
void fetch_loop_free(struct fetcher *f);
/* CURLOPT_OPENSOCKETFUNCTION: libcurl's sockets, close-on-exec. */
curl_socket_t fetch_loop_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a);

#endif
