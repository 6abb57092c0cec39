/* stage — the demand-driven stage engine.
 *
 * Design note
 * -----------
 * State.  Each subscription counts three numbers: `asked` (credit the
 * consumer has granted), `sent` (events the producer dispatched on it) and
 * `acked` (events the consumer is done with).  The producer may send while
 * asked - sent > 0 (R1).  The consumer's outstanding demand is pending =
 * asked - acked; whenever an ack leaves pending <= min_demand it asks
 * max_demand - pending more (R2), so pending never exceeds max_demand.
 *
 * Holders.  An event lives in exactly these places: its producer's output
 * buffer, a consumer's `held` ring (sent, not yet acked), or a
 * producer-consumer's work unit (queued, yielded or running).  Since a
 * subscription never has more than max_demand events sent and unacked, the
 * ring and the work-unit pool are allocated at max_demand when subscribing,
 * and moving events never allocates.  Only stage_emit() allocates (the
 * event, and the output buffer growing past its initial size during a 1:n
 * overshoot); it fails cleanly.  An event is refcounted: the buffer holds one
 * reference, dispatch hands one to every live subscriber (R3) and the last
 * release frees the payload.
 *
 * Settling.  Every public call changes state and then settles: it runs passes
 * of dispatch (buffers to subscribers, R3), delivery (consumers' new events
 * to their handler), starts (R4, yielded units before new inputs) and
 * completion, until a pass changes nothing.  Handlers are called only from
 * the settle loop; a call they make back into the engine finds the loop
 * running (depth > 0), changes state and returns, and the running loop picks
 * the change up on its next pass.  So there is no recursion through
 * handlers, and the finished callback is the very last thing the outermost
 * call does (it may free the pipeline).
 *
 * Batches.  A caller outside the handlers (a fetch completion emitting a
 * page) brackets its calls with pipeline_batch_begin/end: inside, calls
 * change state without settling, and the outermost end settles once.  So a
 * page's items are all emitted before any is dispatched, and the caller is
 * not called back (a deliver, a start) in the middle of its own loop.
 *
 * Cancellation.  A cancelled subscription holds nothing and constrains
 * nothing.  A stage left with subscribers but none live is dead: its buffer
 * and queued work are dropped, it cancels its own input subscriptions (the
 * cancellation travels upstream), its running units may finish but their
 * emits are discarded.
 */
#include "stage.h"

#include <stdlib.h>
#include <string.h>

enum work_state { WORK_FREE, WORK_QUEUED, WORK_YIELDED, WORK_RUNNING };

struct stage_event {
	void *payload;
	uint64_t seq;
	uint32_t refs;
};

/* A FIFO of events with a fixed capacity (grown only by stage_emit). */
struct event_ring {
	struct stage_event **v;
	size_t cap, head, len;
};

struct stage_work {
	struct stage *st;
	struct stage_event *input;      /* NULL for a producer's unit */
	void *user;
	void (*free_user)(void *);
	enum work_state state;
	struct stage_work *prev, *next; /* in exactly one work_list */
};

struct work_list {
	struct stage_work *head, *tail;
	size_t len;
};

struct stage_sub {
	struct pipeline *p;
	struct stage *producer, *consumer;
	uint32_t max_demand, min_demand;
	uint64_t asked, sent, acked;
	bool cancelled;
	struct event_ring held;         /* consumers: sent and not acked */
	size_t delivered;               /* of held, the oldest already delivered */
};

struct stage {
	struct pipeline *p;
	char *name;
	enum stage_kind kind;
	const struct stage_handler *handler;
	void *ctx;
	uint32_t buffer_size, concurrency;
	struct stage_sub *subs[STAGE_MAX_SUBS];   /* its subscribers (owned) */
	size_t nsubs;
	struct stage_sub *inputs[STAGE_MAX_SUBS]; /* its subscriptions */
	size_t ninputs;
	struct event_ring buffer;
	struct stage_work *units;       /* pool: 1 (producer) or max_demand */
	struct work_list free_units, fresh, yielded, running;
	uint64_t emitted, done;
	bool producer_done;             /* producer: its one unit has ended */
	bool dead;                      /* every subscriber cancelled */
	bool finished;
};

struct pipeline {
	struct pipeline_callbacks cb;
	struct stage *stages[STAGE_MAX_STAGES];
	size_t nstages;
	size_t live_events;
	unsigned depth;                 /* settle loop running */
	unsigned batch;                 /* open pipeline_batch_begin() calls */
	bool started, paused, finished, freeing;
};

/* ---- event rings ---- */

static int ring_init(struct event_ring *r, size_t cap)
{
	r->v = calloc(cap, sizeof(*r->v));
	r->cap = r->v ? cap : 0;
	r->head = r->len = 0;
	return r->v ? 0 : -1;
}

static struct stage_event **ring_slot(const struct event_ring *r, size_t i)
{
	return &r->v[(r->head + i) % r->cap];
}

static int ring_push(struct event_ring *r, struct stage_event *ev)
{
	if (r->len == r->cap)
		return -1;
	*ring_slot(r, r->len) = ev;
	r->len++;
	return 0;
}

static struct stage_event *ring_pop(struct event_ring *r)
{
	struct stage_event *ev = r->v[r->head];
	r->head = (r->head + 1) % r->cap;
	r->len--;
	return ev;
}

/* Double the capacity, keeping the order. */
static int ring_grow(struct event_ring *r)
{
	size_t cap = r->cap * 2;
	struct stage_event **v = calloc(cap, sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; i < r->len; i++)
		v[i] = *ring_slot(r, i);
	free(r->v);
	r->v = v;
	r->cap = cap;
	r->head = 0;
	return 0;
}

/* ---- events ---- */

static void event_release(struct pipeline *p, struct stage_event *ev)
{
	if (--ev->refs > 0)
		return;
	if (p->cb.free_payload)
		p->cb.free_payload(p->cb.ctx, ev->payload);
	free(ev);
	p->live_events--;
}

static void ring_release_all(struct pipeline *p, struct event_ring *r)
{
	while (r->len > 0)
		event_release(p, ring_pop(r));
}

/* ---- work lists ---- */

static void list_append(struct work_list *l, struct stage_work *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	l->len++;
}

static void list_remove(struct work_list *l, struct stage_work *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->prev = w->next = NULL;
	l->len--;
}

static struct work_list *work_list_of(struct stage_work *w)
{
	switch (w->state) {
	case WORK_QUEUED: return &w->st->fresh;
	case WORK_YIELDED: return &w->st->yielded;
	case WORK_RUNNING: return &w->st->running;
	case WORK_FREE: break;
	}
	return &w->st->free_units;
}

static void work_move(struct stage_work *w, enum work_state to)
{
	list_remove(work_list_of(w), w);
	w->state = to;
	list_append(work_list_of(w), w);
}

/* ---- credit ---- */

/* A producer-consumer whose output buffer is full asks for nothing more
 * until it drains (R5): its surplus must not pull in more input. */
static bool sub_consumer_full(const struct stage_sub *sub)
{
	const struct stage *c = sub->consumer;
	return c->kind == STAGE_PRODUCER_CONSUMER && c->buffer.len >= c->buffer_size;
}

/* R2: once pending has fallen to min_demand, ask back up to max_demand.
 * Returns whether it asked. */
static bool sub_reask(struct stage_sub *sub)
{
	if (sub->cancelled || !sub->p->started || sub_consumer_full(sub))
		return false;
	uint64_t pending = sub->asked - sub->acked;
	if (pending > sub->min_demand)
		return false;
	sub->asked += sub->max_demand - pending;
	return true;
}

/* After a full buffer drained: the asks R5 held back. */
static bool stage_reask_inputs(struct stage *st)
{
	bool asked = false;
	if (st->kind == STAGE_PRODUCER_CONSUMER)
		for (size_t i = 0; i < st->ninputs; i++)
			asked |= sub_reask(st->inputs[i]);
	return asked;
}

static void sub_ack(struct stage_sub *sub, size_t n)
{
	sub->acked += n;
	sub_reask(sub);
}

/* Producer's view of the credit on sub: asked - sent. */
static uint64_t sub_demand(const struct stage_sub *sub)
{
	return sub->asked - sub->sent;
}

/* Smallest demand among live subscribers; 0 if there are none. */
static uint64_t stage_min_demand(const struct stage *st)
{
	uint64_t min = UINT64_MAX;
	for (size_t i = 0; i < st->nsubs; i++)
		if (!st->subs[i]->cancelled && sub_demand(st->subs[i]) < min)
			min = sub_demand(st->subs[i]);
	return min == UINT64_MAX ? 0 : min;
}

/* ---- work units ---- */

/* Free the unit's user state and input, return it to the pool.  An input's
 * release is the producer-consumer's ack (R6). */
static void work_release(struct stage_work *w)
{
	struct stage *st = w->st;
	list_remove(work_list_of(w), w);
	if (w->free_user && w->user)
		w->free_user(w->user);
	w->user = NULL;
	w->free_user = NULL;
	if (w->input) {
		event_release(st->p, w->input);
		w->input = NULL;
		sub_ack(st->inputs[0], 1);
	}
	if (st->kind == STAGE_PRODUCER)
		st->producer_done = true;
	w->state = WORK_FREE;
	list_append(&st->free_units, w);
}

static void work_finish(struct stage_work *w)
{
	w->st->done++;
	work_release(w);
}

static void list_release_all(struct work_list *l)
{
	while (l->head)
		work_release(l->head);
}

/* ---- cancellation ---- */

static void sub_cancel(struct stage_sub *sub);

static bool stage_has_live_sub(const struct stage *st)
{
	for (size_t i = 0; i < st->nsubs; i++)
		if (!st->subs[i]->cancelled)
			return true;
	return false;
}

/* Every subscriber is gone: drop what waits, cancel upstream. */
static void stage_go_dead(struct stage *st)
{
	st->dead = true;
	ring_release_all(st->p, &st->buffer);
	list_release_all(&st->fresh);
	list_release_all(&st->yielded);
	for (size_t i = 0; i < st->ninputs; i++)
		sub_cancel(st->inputs[i]);
}

static void sub_cancel(struct stage_sub *sub)
{
	if (sub->cancelled)
		return;
	sub->cancelled = true;
	ring_release_all(sub->p, &sub->held);
	sub->delivered = 0;
	if (sub->consumer->kind == STAGE_PRODUCER_CONSUMER)
		list_release_all(&sub->consumer->fresh);
	if (!sub->producer->dead && !stage_has_live_sub(sub->producer))
		stage_go_dead(sub->producer);
}

/* ---- the settle passes ---- */

/* Hand one event to one subscriber; never fails while R1 holds (the ring
 * and the pool are sized at max_demand). */
static int sub_hand(struct stage_sub *sub, struct stage_event *ev)
{
	struct stage *c = sub->consumer;
	if (c->kind == STAGE_CONSUMER)
		return ring_push(&sub->held, ev);
	struct stage_work *w = c->free_units.head;
	if (!w)
		return -1;
	w->input = ev;
	work_move(w, WORK_QUEUED);
	if (c->handler->queued)
		c->handler->queued(c->ctx, c, w);
	return 0;
}

/* R3: broadcast buffered events while every live subscriber has demand. */
static bool stage_dispatch(struct stage *st)
{
	bool progress = false;
	while (st->buffer.len > 0 && stage_min_demand(st) > 0) {
		struct stage_event *ev = *ring_slot(&st->buffer, 0);
		uint32_t handed = 0;
		for (size_t i = 0; i < st->nsubs; i++) {
			struct stage_sub *sub = st->subs[i];
			if (sub->cancelled)
				continue;
			if (sub_hand(sub, ev) < 0)
				return progress; /* unreachable: pools sized at max_demand */
			sub->sent++;
			handed++;
		}
		ring_pop(&st->buffer);
		ev->refs = handed;
		progress = true;
	}
	return progress;
}

/* Give a consumer's handler the events it has not seen yet, in order. */
static bool consumer_deliver(struct stage *st)
{
	bool progress = false;
	for (size_t i = 0; i < st->ninputs; i++) {
		struct stage_sub *sub = st->inputs[i];
		while (!sub->cancelled && sub->delivered < sub->held.len) {
			struct stage_event **first = ring_slot(&sub->held, sub->delivered);
			size_t idx = (size_t)(first - sub->held.v);
			size_t n = sub->held.len - sub->delivered;
			if (n > sub->held.cap - idx)
				n = sub->held.cap - idx; /* up to the ring's wrap */
			sub->delivered += n;
			st->handler->deliver(st->ctx, st, sub, first, n);
			progress = true;
		}
	}
	return progress;
}

/* R4: not paused, below concurrency, buffer below buffer_size, and credit
 * left over once every running unit has reserved one. */
static bool stage_can_start(const struct stage *st)
{
	if (st->p->paused || st->dead || st->kind == STAGE_CONSUMER)
		return false;
	if (st->running.len >= st->concurrency || st->buffer.len >= st->buffer_size)
		return false;
	if (!st->yielded.head && !st->fresh.head)
		return false;
	return stage_min_demand(st) > st->running.len;
}

static bool stage_start_ready(struct stage *st)
{
	bool progress = false;
	for (;;) {
		progress |= stage_dispatch(st);
		if (!stage_can_start(st))
			return progress;
		struct stage_work *w = st->yielded.head ? st->yielded.head : st->fresh.head;
		work_move(w, WORK_RUNNING);
		st->handler->start(st->ctx, st, w); /* may end w right away */
		progress = true;
	}
}

static bool stage_upstream_done(const struct stage *st)
{
	if (st->kind == STAGE_PRODUCER)
		return st->producer_done;
	for (size_t i = 0; i < st->ninputs; i++)
		if (!st->inputs[i]->cancelled && !st->inputs[i]->producer->finished)
			return false;
	return true;
}

static bool stage_update_finished(struct stage *st)
{
	if (st->finished || !stage_upstream_done(st))
		return false;
	if (st->kind == STAGE_CONSUMER) {
		for (size_t i = 0; i < st->ninputs; i++)
			if (st->inputs[i]->held.len > 0)
				return false;
	} else if (st->fresh.len || st->yielded.len || st->running.len || st->buffer.len) {
		return false;
	}
	st->finished = true;
	return true;
}

static bool pipeline_all_finished(const struct pipeline *p)
{
	for (size_t i = 0; i < p->nstages; i++)
		if (!p->stages[i]->finished)
			return false;
	return true;
}

/* Run passes until nothing changes; only the outermost call does. */
static void pipeline_settle(struct pipeline *p)
{
	if (p->depth > 0 || p->batch > 0 || !p->started || p->finished || p->freeing)
		return;
	p->depth++;
	bool progress;
	do {
		progress = false;
		for (size_t i = 0; i < p->nstages; i++)
			progress |= stage_dispatch(p->stages[i]);
		for (size_t i = 0; i < p->nstages; i++)
			if (p->stages[i]->kind == STAGE_CONSUMER)
				progress |= consumer_deliver(p->stages[i]);
		for (size_t i = 0; i < p->nstages; i++)
			progress |= stage_reask_inputs(p->stages[i]);
		for (size_t i = 0; i < p->nstages; i++)
			progress |= stage_start_ready(p->stages[i]);
		for (size_t i = 0; i < p->nstages; i++)
			progress |= stage_update_finished(p->stages[i]);
	} while (progress);
	p->depth--;
	if (pipeline_all_finished(p)) {
		p->finished = true;
		if (p->cb.finished)
			p->cb.finished(p->cb.ctx); /* last: it may free p */
	}
}

/* ---- building ---- */

struct pipeline *pipeline_new(const struct pipeline_callbacks *cb)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	if (p && cb)
		p->cb = *cb;
	return p;
}

static void stage_free(struct stage *st)
{
	for (size_t i = 0; i < st->nsubs; i++) {
		free(st->subs[i]->held.v);
		free(st->subs[i]);
	}
	free(st->buffer.v);
	free(st->units);
	free(st->name);
	free(st);
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	p->freeing = true;
	for (size_t i = 0; i < p->nstages; i++) {
		struct stage *st = p->stages[i];
		for (struct stage_work *w = st->running.head; w; w = w->next)
			if (st->handler->abort)
				st->handler->abort(st->ctx, st, w);
	}
	for (size_t i = 0; i < p->nstages; i++) {
		struct stage *st = p->stages[i];
		list_release_all(&st->running);
		list_release_all(&st->yielded);
		list_release_all(&st->fresh);
		ring_release_all(p, &st->buffer);
		for (size_t j = 0; j < st->nsubs; j++)
			ring_release_all(p, &st->subs[j]->held);
	}
	for (size_t i = 0; i < p->nstages; i++)
		stage_free(p->stages[i]);
	free(p);
}

static bool stage_params_valid(const struct stage_params *sp)
{
	if (!sp->name || !sp->handler)
		return false;
	if (sp->buffer_size < 1 || sp->buffer_size > STAGE_MAX_BUFFER)
		return false;
	if (sp->concurrency < 1 || sp->concurrency > STAGE_MAX_CONCURRENCY)
		return false;
	switch (sp->kind) {
	case STAGE_PRODUCER:
	case STAGE_PRODUCER_CONSUMER:
		return sp->handler->start != NULL;
	case STAGE_CONSUMER:
		return sp->handler->deliver != NULL;
	}
	return false;
}

/* Give st n work units, all free. */
static int stage_alloc_units(struct stage *st, size_t n)
{
	st->units = calloc(n, sizeof(*st->units));
	if (!st->units)
		return -1;
	for (size_t i = 0; i < n; i++) {
		st->units[i].st = st;
		st->units[i].state = WORK_FREE;
		list_append(&st->free_units, &st->units[i]);
	}
	return 0;
}

struct stage *pipeline_add_stage(struct pipeline *p, const struct stage_params *sp)
{
	if (!p || !sp || p->started || p->nstages >= STAGE_MAX_STAGES ||
	    !stage_params_valid(sp) || pipeline_stage_by_name(p, sp->name))
		return NULL;
	struct stage *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->p = p;
	st->kind = sp->kind;
	st->handler = sp->handler;
	st->ctx = sp->ctx;
	st->buffer_size = sp->buffer_size;
	st->concurrency = sp->concurrency;
	st->name = strdup(sp->name);
	if (!st->name || ring_init(&st->buffer, sp->buffer_size) < 0 ||
	    (sp->kind == STAGE_PRODUCER && stage_alloc_units(st, 1) < 0)) {
		stage_free(st);
		return NULL;
	}
	p->stages[p->nstages++] = st;
	return st;
}

/* Would consumer subscribing to producer close a loop?  Only
 * producer-consumers have both sides, each with one input. */
static bool subscribe_makes_cycle(const struct stage *producer, const struct stage *consumer)
{
	for (const struct stage *s = producer; s; ) {
		if (s == consumer)
			return true;
		s = s->kind == STAGE_PRODUCER_CONSUMER && s->ninputs ? s->inputs[0]->producer : NULL;
	}
	return false;
}

static bool subscribe_valid(const struct pipeline *p, const struct stage *producer,
                            const struct stage *consumer, uint32_t max_demand,
                            uint32_t min_demand)
{
	if (p->started || producer->p != p || consumer->p != p)
		return false;
	if (producer->kind == STAGE_CONSUMER || consumer->kind == STAGE_PRODUCER)
		return false;
	if (consumer->kind == STAGE_PRODUCER_CONSUMER && consumer->ninputs > 0)
		return false;
	if (producer->nsubs >= STAGE_MAX_SUBS || consumer->ninputs >= STAGE_MAX_SUBS)
		return false;
	if (max_demand < 1 || max_demand > STAGE_MAX_DEMAND)
		return false;
	if (min_demand != STAGE_MIN_DEMAND_DEFAULT && min_demand >= max_demand)
		return false;
	return !subscribe_makes_cycle(producer, consumer);
}

struct stage_sub *pipeline_subscribe(struct pipeline *p, struct stage *producer,
                                     struct stage *consumer, uint32_t max_demand,
                                     uint32_t min_demand)
{
	if (!p || !producer || !consumer ||
	    !subscribe_valid(p, producer, consumer, max_demand, min_demand))
		return NULL;
	struct stage_sub *sub = calloc(1, sizeof(*sub));
	if (!sub)
		return NULL;
	sub->p = p;
	sub->producer = producer;
	sub->consumer = consumer;
	sub->max_demand = max_demand;
	sub->min_demand = min_demand == STAGE_MIN_DEMAND_DEFAULT ? max_demand / 2 : min_demand;
	int rc = consumer->kind == STAGE_CONSUMER ? ring_init(&sub->held, max_demand)
	                                          : stage_alloc_units(consumer, max_demand);
	if (rc < 0) {
		free(sub);
		return NULL;
	}
	producer->subs[producer->nsubs++] = sub;
	consumer->inputs[consumer->ninputs++] = sub;
	return sub;
}

static bool stage_wired(const struct stage *st)
{
	switch (st->kind) {
	case STAGE_PRODUCER: return st->ninputs == 0 && st->nsubs > 0;
	case STAGE_PRODUCER_CONSUMER: return st->ninputs == 1 && st->nsubs > 0;
	case STAGE_CONSUMER: return st->ninputs > 0 && st->nsubs == 0;
	}
	return false;
}

int pipeline_start(struct pipeline *p)
{
	if (!p || p->started || p->nstages == 0)
		return -1;
	for (size_t i = 0; i < p->nstages; i++)
		if (!stage_wired(p->stages[i]))
			return -1;
	p->started = true;
	for (size_t i = 0; i < p->nstages; i++) {
		struct stage *st = p->stages[i];
		for (size_t j = 0; j < st->nsubs; j++)
			sub_reask(st->subs[j]);
		if (st->kind == STAGE_PRODUCER)
			work_move(st->free_units.head, WORK_QUEUED);
	}
	pipeline_settle(p);
	return 0;
}

void pipeline_pause(struct pipeline *p, bool paused)
{
	if (!p || p->freeing)
		return;
	p->paused = paused;
	pipeline_settle(p);
}

int stage_set_concurrency(struct stage *st, uint32_t n)
{
	if (!st || n < 1 || n > STAGE_MAX_CONCURRENCY)
		return -1;
	st->concurrency = n;
	if (!st->p->freeing)
		pipeline_settle(st->p);
	return 0;
}

void pipeline_batch_begin(struct pipeline *p)
{
	if (p)
		p->batch++;
}

void pipeline_batch_end(struct pipeline *p)
{
	if (!p || p->batch == 0)
		return;
	p->batch--;
	pipeline_settle(p); /* returns at once unless this was the outermost end */
}

bool pipeline_paused(const struct pipeline *p) { return p->paused; }
bool pipeline_finished(const struct pipeline *p) { return p->finished; }
size_t pipeline_live_events(const struct pipeline *p) { return p->live_events; }

size_t pipeline_in_flight(const struct pipeline *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nstages; i++)
		n += p->stages[i]->running.len;
	return n;
}

/* ---- called by handlers ---- */

int stage_emit(struct stage_work *w, void *payload)
{
	if (!w || w->state != WORK_RUNNING || w->st->p->freeing)
		return -1;
	struct stage *st = w->st;
	struct pipeline *p = st->p;
	if (st->dead) { /* nobody listens any more */
		st->emitted++;
		if (p->cb.free_payload)
			p->cb.free_payload(p->cb.ctx, payload);
		return 0;
	}
	if (st->buffer.len == st->buffer.cap && ring_grow(&st->buffer) < 0)
		return -1;
	/* malloc, not calloc: glibc's calloc skips the thread cache, and an
	 * event is made for every item */
	struct stage_event *ev = malloc(sizeof(*ev));
	if (!ev)
		return -1;
	*ev = (struct stage_event){.payload = payload, .seq = st->emitted++, .refs = 1};
	ring_push(&st->buffer, ev);
	p->live_events++;
	pipeline_settle(p);
	return 0;
}

void stage_work_done(struct stage_work *w)
{
	if (!w || w->state == WORK_FREE || w->st->p->freeing)
		return;
	struct pipeline *p = w->st->p;
	work_finish(w);
	pipeline_settle(p);
}

void stage_work_yield(struct stage_work *w)
{
	if (!w || w->state != WORK_RUNNING || w->st->p->freeing)
		return;
	struct pipeline *p = w->st->p;
	if (w->st->dead)
		work_release(w); /* its output would go nowhere */
	else
		work_move(w, WORK_YIELDED);
	pipeline_settle(p);
}

const struct stage_event *stage_work_input(const struct stage_work *w) { return w->input; }
struct stage *stage_work_stage(const struct stage_work *w) { return w->st; }
void *stage_work_user(const struct stage_work *w) { return w->user; }

void stage_work_set_user(struct stage_work *w, void *user, void (*free_user)(void *))
{
	w->user = user;
	w->free_user = free_user;
}

void stage_ack(struct stage_sub *sub, size_t n)
{
	if (!sub || sub->cancelled || sub->p->freeing || sub->consumer->kind != STAGE_CONSUMER)
		return;
	if (n > sub->delivered)
		n = sub->delivered;
	for (size_t i = 0; i < n; i++)
		event_release(sub->p, ring_pop(&sub->held));
	sub->delivered -= n;
	sub_ack(sub, n);
	pipeline_settle(sub->p);
}

void stage_sub_cancel(struct stage_sub *sub)
{
	if (!sub || sub->p->freeing)
		return;
	sub_cancel(sub);
	pipeline_settle(sub->p);
}

void *stage_event_payload(const struct stage_event *ev) { return ev->payload; }
uint64_t stage_event_seq(const struct stage_event *ev) { return ev->seq; }

/* ---- read-only view ---- */

size_t pipeline_stage_count(const struct pipeline *p) { return p->nstages; }

struct stage *pipeline_stage(const struct pipeline *p, size_t i)
{
	return i < p->nstages ? p->stages[i] : NULL;
}

struct stage *pipeline_stage_by_name(const struct pipeline *p, const char *name)
{
	for (size_t i = 0; i < p->nstages; i++)
		if (strcmp(p->stages[i]->name, name) == 0)
			return p->stages[i];
	return NULL;
}

const char *stage_name(const struct stage *st) { return st->name; }
size_t stage_buffered(const struct stage *st) { return st->buffer.len; }

void stage_get_stats(const struct stage *st, struct stage_stats *out)
{
	*out = (struct stage_stats){
		.name = st->name,
		.kind = st->kind,
		.buffered = st->buffer.len,
		.buffer_size = st->buffer_size,
		.in_flight = st->running.len,
		.concurrency = st->concurrency,
		.queued = st->fresh.len + st->yielded.len,
		.emitted = st->emitted,
		.done = st->done,
		.finished = st->finished,
	};
}

size_t stage_sub_count(const struct stage *st) { return st->nsubs; }

struct stage_sub *stage_sub(const struct stage *st, size_t i)
{
	return i < st->nsubs ? st->subs[i] : NULL;
}

uint64_t stage_sub_demand(const struct stage_sub *sub) { return sub_demand(sub); }
uint64_t stage_sub_unacked(const struct stage_sub *sub) { return sub->sent - sub->acked; }

void stage_sub_get_stats(const struct stage_sub *sub, struct sub_stats *out)
{
	*out = (struct sub_stats){
		.producer = sub->producer->name,
		.consumer = sub->consumer->name,
		.max_demand = sub->max_demand,
		.min_demand = sub->min_demand,
		.demand = sub_demand(sub),
		.pending = sub->asked - sub->acked,
		.asked = sub->asked,
		.sent = sub->sent,
		.acked = sub->acked,
		.cancelled = sub->cancelled,
	};
}
