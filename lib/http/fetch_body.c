/* fetch_body — see fetch_body.h. */
#include "fetch_body.h"
#include "jsondoc.h"
#include "membudget.h"

#include <stdio.h>

/* A JSON document for a body: the fetcher's own, unless a done callback
 * still reads that one (a request finishing inside another's callback). */
static struct jsondoc *doc_get(struct fetcher *f)
{
	return f->doc_busy ? jsondoc_new() : f->doc;
}

void fetch_body_doc_put(struct fetcher *f, struct jsondoc *doc)
{
	if (doc && doc == f->doc) {
		f->doc_busy = false;
		jsondoc_trim(doc, FETCH_DOC_KEEP_BYTES);
	} else {
		jsondoc_free(doc);
	}
}

/* ---- reading a 2xx body within memory_limit (membudget.h) ----
 *
 * A body is read (jsondoc) only when its reckoned cost (fetch.h: its
 * tokens, then the items the caller makes of it) fits under the limit
 * besides everything charged; until then it is parked, and
 * the parked bodies are tried again every FETCH_PARK_POLL_MS.  The estimate
 * is charged from the read until the done callback returns (the items
 * charge for themselves by then).  A body that could not be read even with
 * nothing else charged fails for good.  So that raced cannot wait on
 * itself (the memory held may be waiting for this very page), the oldest
 * parked body is read anyway once nothing has been released for
 * FETCH_PARK_STALL_MS. */

static void read_body(struct fetch *r)
{
	struct fetcher *f = r->p->f;
	char perr[ERR_MAX];

	r->read_charge = r->read_cost;
	membudget_charge(r->read_charge);
	/* NULs in strings are allowed here: the one item holding one is
	 * refused by the import, not the whole page.  The token array is
	 * sized once (a doubling one holds up to twice what it needs); if
	 * that fails the parse grows it as usual. */
	struct jsondoc *doc = doc_get(f);
	if (doc)
		(void)jsondoc_reserve(doc, r->read_tokens);
	if (doc && jsondoc_parse(doc, r->body ? r->body : "", r->body_len, 0, perr) == 0) {
		fetch_finish(r, FETCH_OK, doc);
		return;
	}
	snprintf(r->msg, sizeof r->msg, "GET %s: body is not JSON: %.200s; not retried", r->url,
	         doc ? perr : "out of memory");
	fetch_body_doc_put(f, doc);
	fetch_finish(r, FETCH_BODY, NULL);
}

static void park(struct fetch *r)
{
	struct fetcher *f = r->p->f;
	if (TAILQ_EMPTY(&f->parked)) {
		f->park_released = membudget_released_total();
		f->park_moved_at = now_s();
	}
	r->state = FS_PARKED;
	TAILQ_INSERT_TAIL(&f->parked, r, queue_link);
	struct timeval tv = tv_ms(FETCH_PARK_POLL_MS);
	evtimer_add(f->park_timer, &tv);
}

/* What reading r's body will cost (fetch.h).  A small body is charged
 * the most any body could cost a byte, when that fits now: no census. */
static void reckon(struct fetch *r)
{
	struct jsondoc_census c;

	r->read_tokens = 0;
	r->read_cost = r->body_len * FETCH_READ_COST_MAX;
	if (r->body_len <= FETCH_CENSUS_MIN && membudget_fits(r->read_cost) &&
	    TAILQ_EMPTY(&r->p->f->parked))
		return;
	jsondoc_census(r->body, r->body_len, &c);
	/* Bodies are at most max_body (at most 1 GiB): no overflow. */
	r->read_tokens = c.tokens;
	r->read_cost = c.tokens * JSONDOC_TOKEN_BYTES + c.containers * FETCH_READ_ITEM_COST +
	               FETCH_READ_COPIES * r->body_len;
}

void fetch_body_ready(struct fetch *r)
{
	size_t limit = membudget_limit();

	reckon(r);
	if (r->body_len > limit || r->read_cost > limit - r->body_len) {
		snprintf(r->msg, sizeof r->msg,
		         "GET %s: reading this body of %zu bytes takes about %zu bytes more, over "
		         "memory_limit (%zu bytes; setting 'memory_limit' of [daemon]); not retried",
		         r->url, r->body_len, r->read_cost, limit);
		fetch_finish(r, FETCH_BODY, NULL);
	} else if (membudget_fits(r->read_cost) && TAILQ_EMPTY(&r->p->f->parked)) {
		read_body(r);
	} else {
		park(r);
	}
}

/* Read every parked body that fits now, oldest first; the oldest anyway
 * once memory has stopped moving. */
void fetch_body_park_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetcher *f = arg;
	(void)fd;
	(void)what;

	double now = now_s();
	if (membudget_released_total() != f->park_released) {
		f->park_released = membudget_released_total();
		f->park_moved_at = now;
	}
	bool stalled = now - f->park_moved_at >= FETCH_PARK_STALL_MS / 1000.0;
	struct fetch *r = TAILQ_FIRST(&f->parked);
	while (r && !f->free_pending) {
		if (!stalled && !membudget_fits(r->read_cost)) {
			r = TAILQ_NEXT(r, queue_link);
			continue;
		}
		stalled = false;
		f->park_moved_at = now;
		TAILQ_REMOVE(&f->parked, r, queue_link);
		r->state = FS_ACTIVE;
		read_body(r);
		r = TAILQ_FIRST(&f->parked); /* a callback may have cancelled any */
	}
	if (f->free_pending) {
		fetch_finish_dispatch(f);
		return;
	}
	if (!TAILQ_EMPTY(&f->parked)) {
		struct timeval tv = tv_ms(FETCH_PARK_POLL_MS);
		evtimer_add(f->park_timer, &tv);
	}
}

