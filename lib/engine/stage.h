/* stage — the demand-driven stage engine (GenStage's model, pure).
 *
 * A pipeline is a DAG of stages joined by subscriptions.  Every subscription
 * carries credit: the consumer asks for events, the producer never sends more
 * than was asked (R1), the consumer asks again once its outstanding demand
 * falls to min_demand (R2), a producer with several subscribers broadcasts
 * each event to all of them as far as the smallest demand allows (R3), a stage
 * starts work only with unused downstream credit, a buffer below buffer_size
 * and fewer than `concurrency` units running (R4), and a 1:n stage's surplus
 * waits in its buffer (R5).  Consumers earn credit back only when they
 * acknowledge (R6): for a producer-consumer when the work an input started
 * is done; for a consumer when it calls stage_ack().
 *
 * The engine does no I/O and reads no clock.  The daemon drives it by calls
 * (a fetch completed, a batch committed) and it calls back into the stages'
 * handlers when work may start or events arrive.  Calls made from inside a
 * handler are safe: the engine queues the state change and settles it before
 * the outermost call returns.  A caller outside the handlers makes its calls
 * atomic the same way with pipeline_batch_begin/end.
 *
 * Ownership:
 *  - A pipeline owns its stages, subscriptions, work units and events;
 *    pipeline_free() releases all of it at any moment, calling the handler's
 *    abort() for every unit of work still running.
 *  - An event's payload is owned by the engine from stage_emit() on and is
 *    freed with the pipeline's free_payload callback once every subscriber
 *    has released it (a producer-consumer releases an input when its work is
 *    done; a consumer when it acks).
 *  - A work unit's user state is set by the handler and freed with the
 *    free function given to stage_work_set_user() when the work ends or the
 *    pipeline is freed.
 */
#ifndef RACED_STAGE_H
#define RACED_STAGE_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pipeline;
struct stage;
struct stage_sub;
struct stage_event;
struct stage_work;

enum stage_kind {
	STAGE_PRODUCER,          /* no input; one work unit that yields until done */
	STAGE_PRODUCER_CONSUMER, /* one input subscription; a work unit per input */
	STAGE_CONSUMER,          /* one or more input subscriptions; acks events */
};

/* min_demand given as this means "half of max_demand", as in GenStage. */
#define STAGE_MIN_DEMAND_DEFAULT UINT32_MAX

/* Bounds the engine enforces on its parameters (pipeline_add_stage() and
 * pipeline_subscribe() refuse larger values).  The engine preallocates a
 * subscription's inbox and a producer-consumer's work units at max_demand. */
#define STAGE_MAX_STAGES      64       /* stages in a pipeline */
#define STAGE_MAX_SUBS        64       /* subscriptions per stage, each side */
#define STAGE_MAX_DEMAND      100000u  /* a subscription's max_demand */
#define STAGE_MAX_BUFFER      1000000u /* a stage's buffer_size */
#define STAGE_MAX_CONCURRENCY 10000u   /* a stage's concurrency */

struct stage_handler {
	/* Producers and producer-consumers: a unit of work may run now (R4
	 * holds).  The handler starts it (typically an HTTP fetch) and later
	 * calls stage_emit() for each output, then either stage_work_yield()
	 * (more to do for this input, e.g. a next page) or stage_work_done().
	 * It may do so from inside start() itself. */
	void (*start)(void *ctx, struct stage *st, struct stage_work *w);

	/* Called instead of a completion when the pipeline is freed while the
	 * work runs: cancel the I/O; do not call back into the engine. */
	void (*abort)(void *ctx, struct stage *st, struct stage_work *w);

	/* Consumers: events arrived on `sub`, in order.  The consumer holds
	 * them until it calls stage_ack(sub, n), which releases the oldest n
	 * and earns their credit back (R2, R6). */
	void (*deliver)(void *ctx, struct stage *st, struct stage_sub *sub,
	                struct stage_event *const *events, size_t n);

	/* Producer-consumers, optional (NULL: not told): an input was handed
	 * to the stage and waits, as w, for R4 to let it start; so the
	 * handler can prepare it ahead (read what it will need).  It may read
	 * stage_work_input(w) and call stage_work_set_user(w, ...), whose
	 * free function then runs when w ends, started or not; no other
	 * engine call. */
	void (*queued)(void *ctx, struct stage *st, struct stage_work *w);
};

struct stage_params {
	const char *name;           /* copied */
	enum stage_kind kind;
	const struct stage_handler *handler;
	void *ctx;                  /* passed to every handler call */
	uint32_t buffer_size;       /* output buffer bound (R4, R5); >= 1 */
	uint32_t concurrency;       /* work units running at once (R4); >= 1 */
};

struct pipeline_callbacks {
	void (*free_payload)(void *ctx, void *payload);
	/* Every stage has finished: producers exhausted, every event delivered
	 * and acknowledged.  Called once, from inside an engine call. */
	void (*finished)(void *ctx);
	void *ctx;
};

struct pipeline *pipeline_new(const struct pipeline_callbacks *cb);
/* Frees everything: calls abort() for every running unit, frees user states
 * and every payload exactly once.  Allowed at any moment except from inside
 * a handler callback (start, abort, deliver); allowed from finished(). */
void pipeline_free(struct pipeline *p);

/* Returns NULL on bad parameters or out of memory. */
RACED_MUST_CHECK
struct stage *pipeline_add_stage(struct pipeline *p, const struct stage_params *sp);

/* `consumer` subscribes to `producer`.  max_demand >= 1; min_demand <
 * max_demand or STAGE_MIN_DEMAND_DEFAULT.  A producer-consumer takes exactly
 * one subscription; a producer none. */
RACED_MUST_CHECK
struct stage_sub *pipeline_subscribe(struct pipeline *p, struct stage *producer,
                                     struct stage *consumer, uint32_t max_demand,
                                     uint32_t min_demand);

/* Consumers ask max_demand on every subscription; producers may start.
 * Returns -1 if already started or a stage is not wired: a producer needs a
 * subscriber, a producer-consumer its input and a subscriber, a consumer an
 * input.  Stages and subscriptions cannot be added once started. */
RACED_MUST_CHECK
int pipeline_start(struct pipeline *p);

/* Calls made between begin and end (stage_emit, stage_work_done, ...)
 * change state but call no handler; the outermost end settles once.  For a
 * caller outside the handlers (a fetch completion emitting a page): its
 * items are all emitted, then dispatched, and it is not called back in the
 * middle of its loop.  Batches nest.  pipeline_free() is not allowed inside
 * one. */
void pipeline_batch_begin(struct pipeline *p);
void pipeline_batch_end(struct pipeline *p);

/* While paused no work unit starts; running ones finish, events still flow. */
void pipeline_pause(struct pipeline *p, bool paused);
/* A new bound on st's running work units (R4), from now on: raised, more
 * start at once as credit allows; lowered, those running finish and no new
 * one starts until fewer run.  0, or -1 when n is out of range (1 to
 * STAGE_MAX_CONCURRENCY; nothing changes). */
int stage_set_concurrency(struct stage *st, uint32_t n);
bool pipeline_paused(const struct pipeline *p);
bool pipeline_finished(const struct pipeline *p);

/* Work units running across all stages. */
size_t pipeline_in_flight(const struct pipeline *p);

/* Events alive in the pipeline (buffers, inboxes, held by consumers and by
 * running work): the quantity R7 bounds. */
size_t pipeline_live_events(const struct pipeline *p);

/* --- called by handlers --- */

/* Emit one output event from the work's stage.  On success the engine owns
 * payload; on failure (-1: out of memory, or w is not running) the caller
 * still does.  A stage whose subscribers have all cancelled frees what it
 * emits at once. */
RACED_MUST_CHECK
int stage_emit(struct stage_work *w, void *payload);

/* The work for this input is finished (successfully or not); its input's
 * credit returns upstream and the work unit is freed. */
void stage_work_done(struct stage_work *w);

/* This input needs another turn (another page): the unit stops counting as
 * running and waits, ahead of new inputs, until R4 lets it start again. */
void stage_work_yield(struct stage_work *w);

/* The input event the work is for (NULL for a producer's work). */
const struct stage_event *stage_work_input(const struct stage_work *w);
struct stage *stage_work_stage(const struct stage_work *w);
void *stage_work_user(const struct stage_work *w);
void stage_work_set_user(struct stage_work *w, void *user, void (*free_user)(void *));

/* A consumer handled the oldest n unacknowledged events of sub.  n is
 * clamped to the events delivered and not yet acknowledged. */
void stage_ack(struct stage_sub *sub, size_t n);

/* Stop the subscription: the producer sends nothing more to it, and the
 * events the consumer holds or was sent on it are released (for a
 * producer-consumer: its inputs not yet started; started ones run to the
 * end).  The subscription no longer holds back dispatch (R3) or starts
 * (R4).  A stage whose last live subscriber cancels drops its buffer and
 * queued work and cancels its own subscriptions in turn; its running units
 * may finish, and what they emit is discarded.  Events a consumer got in
 * deliver() must not be used after their subscription is cancelled. */
void stage_sub_cancel(struct stage_sub *sub);

void *stage_event_payload(const struct stage_event *ev);
/* Position of the event in its producer's output, from 0. */
uint64_t stage_event_seq(const struct stage_event *ev);

/* --- read-only view: what a caller decides on --- */

/* Events waiting in st's output buffer. */
size_t stage_buffered(const struct stage *st);
/* Credit the producer may still send on sub (asked - sent); 0 means the
 * consumer can receive nothing more until it acknowledges. */
uint64_t stage_sub_demand(const struct stage_sub *sub);
/* Events sent on sub and not acknowledged yet. */
uint64_t stage_sub_unacked(const struct stage_sub *sub);

/* --- read-only view, for stats --- */

struct stage_stats {
	const char *name;
	enum stage_kind kind;
	size_t buffered;        /* events waiting in the output buffer */
	uint32_t buffer_size;
	size_t in_flight;       /* work units running */
	uint32_t concurrency;
	size_t queued;          /* inputs (and yielded units) waiting to run */
	uint64_t emitted;       /* events emitted so far */
	uint64_t done;          /* work units finished so far */
	bool finished;
};

struct sub_stats {
	const char *producer;
	const char *consumer;
	uint32_t max_demand;
	uint32_t min_demand;
	uint64_t demand;        /* outstanding, producer's view: asked - sent */
	uint64_t pending;       /* consumer's view: asked - acknowledged */
	uint64_t asked;
	uint64_t sent;
	uint64_t acked;
	bool cancelled;
};

size_t pipeline_stage_count(const struct pipeline *p);
struct stage *pipeline_stage(const struct pipeline *p, size_t i);
struct stage *pipeline_stage_by_name(const struct pipeline *p, const char *name);
const char *stage_name(const struct stage *st);
void stage_get_stats(const struct stage *st, struct stage_stats *out);

/* Subscriptions in which st is the producer (its subscribers). */
size_t stage_sub_count(const struct stage *st);
struct stage_sub *stage_sub(const struct stage *st, size_t i);
void stage_sub_get_stats(const struct stage_sub *sub, struct sub_stats *out);

#endif
