/* fetch_body — a complete 2xx body read as JSON (jsondoc.h) within
 * memory_limit (membudget.h): read at once when its reckoned cost fits,
 * else parked until it does (or until memory has stopped moving for
 * FETCH_PARK_STALL_MS), refused when it could never fit; then the request
 * finishes (fetch_finish) with the document.
 *
 * Ownership: the fetcher's one reusable document (f->doc) is lent to the
 * done callback being run (doc_busy); a request finishing inside another's
 * callback gets one of its own, freed after.  A parked request is on
 * f->parked (FS_PARKED), off the wire; the charge for reading a body
 * (r->read_charge) is released with the request.
 */
#ifndef RACED_FETCH_BODY_H
#define RACED_FETCH_BODY_H

#include "fetch_int.h"

/* r's body is complete (a 2xx): read it now, park it, or refuse it. */
void fetch_body_ready(struct fetch *r);
/* The park evtimer's callback (arg: the fetcher). */
void fetch_body_park_timer_cb(evutil_socket_t fd, short what, void *arg);
/* A document given to a done callback is done with (NULL: none). */
void fetch_body_doc_put(struct fetcher *f, struct jsondoc *doc);

#endif
