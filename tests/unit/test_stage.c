/* Unit tests for the stage engine: one test per rule of SPEC.md §1 (R1-R6)
 * plus completion, pause, cancellation and teardown.  Each drives a small
 * pipeline by hand: the handler records the work units it is asked to start
 * and the test completes them, asserting exact figures after each step. */
#include "check.h"
#include "stage.h"

#include <stdbool.h>

#define MAX_REC 256

/* What the handlers saw, for one test. */
struct rec {
	struct stage_work *started[MAX_REC];   /* in start order */
	const struct stage *started_by[MAX_REC];
	size_t nstarted;
	const struct stage_event *got[MAX_REC]; /* delivered, in order */
	uint64_t got_seq[MAX_REC];
	const struct stage_sub *got_on[MAX_REC];
	size_t ngot;
	size_t delivers;                        /* deliver() calls */
	size_t payloads, freed, users_freed, aborted, finished;
	int sync_emit;                          /* >= 0: start() emits that many and ends */
};

static struct rec R;

static void rec_reset(void)
{
	memset(&R, 0, sizeof(R));
	R.sync_emit = -1;
}

static void *payload_new(void)
{
	R.payloads++;
	return malloc(16);
}

static void free_payload(void *ctx, void *payload)
{
	(void)ctx;
	R.freed++;
	free(payload);
}

static void on_finished(void *ctx)
{
	(void)ctx;
	R.finished++;
}

static void user_free(void *user)
{
	R.users_freed++;
	free(user);
}

static int emit_n(struct stage_work *w, int n)
{
	for (int i = 0; i < n; i++) {
		void *pl = payload_new();
		if (stage_emit(w, pl) < 0) {
			free(pl);
			return -1;
		}
	}
	return 0;
}

static void on_start(void *ctx, struct stage *st, struct stage_work *w)
{
	(void)ctx;
	if (R.nstarted < MAX_REC) {
		R.started_by[R.nstarted] = st;
		R.started[R.nstarted++] = w;
	}
	if (R.sync_emit >= 0) {
		emit_n(w, R.sync_emit);
		stage_work_done(w);
	}
}

static void on_abort(void *ctx, struct stage *st, struct stage_work *w)
{
	(void)ctx, (void)st, (void)w;
	R.aborted++;
}

static void on_deliver(void *ctx, struct stage *st, struct stage_sub *sub,
                       struct stage_event *const *events, size_t n)
{
	(void)ctx, (void)st;
	R.delivers++;
	for (size_t i = 0; i < n && R.ngot < MAX_REC; i++) {
		R.got_on[R.ngot] = sub;
		R.got_seq[R.ngot] = stage_event_seq(events[i]);
		R.got[R.ngot++] = events[i];
	}
}

static const struct stage_handler handler = {
	.start = on_start, .abort = on_abort, .deliver = on_deliver,
};

static struct pipeline *new_pipeline(void)
{
	struct pipeline_callbacks cb = {
		.free_payload = free_payload, .finished = on_finished,
	};
	rec_reset();
	return pipeline_new(&cb);
}

static struct stage *add(struct pipeline *p, const char *name, enum stage_kind kind,
                         uint32_t buffer_size, uint32_t concurrency)
{
	struct stage_params sp = {
		.name = name, .kind = kind, .handler = &handler,
		.buffer_size = buffer_size, .concurrency = concurrency,
	};
	return pipeline_add_stage(p, &sp);
}

static struct sub_stats sstats(const struct stage_sub *sub)
{
	struct sub_stats s;
	stage_sub_get_stats(sub, &s);
	return s;
}

static struct stage_stats ststats(const struct stage *st)
{
	struct stage_stats s;
	stage_get_stats(st, &s);
	return s;
}

static size_t got_on(const struct stage_sub *sub)
{
	size_t n = 0;
	for (size_t i = 0; i < R.ngot; i++)
		n += R.got_on[i] == sub;
	return n;
}

/* R2, with the lead's example: max 10 / min 7 asks 10, and 3 after 3 acks. */
static void test_consumer_reasks_at_min_demand(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	struct stage_sub *sub = pipeline_subscribe(p, races, store, 10, 7);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(sstats(sub).asked, 10);
	CHECK_EQ(sstats(sub).min_demand, 7);
	CHECK_EQ(R.nstarted, 1);
	CHECK_EQ(emit_n(R.started[0], 10), 0);
	stage_work_yield(R.started[0]);
	CHECK_EQ(R.ngot, 10);
	CHECK_EQ(sstats(sub).sent, 10);
	CHECK_EQ(sstats(sub).demand, 0);
	CHECK_EQ(sstats(sub).pending, 10);
	CHECK_EQ(R.nstarted, 1);            /* no credit: the producer waits */

	stage_ack(sub, 2);                  /* pending 8 > 7: no new ask */
	CHECK_EQ(sstats(sub).asked, 10);
	CHECK_EQ(sstats(sub).pending, 8);
	CHECK_EQ(R.nstarted, 1);

	stage_ack(sub, 1);                  /* pending 7 <= 7: ask 3, back to 10 */
	CHECK_EQ(sstats(sub).asked, 13);
	CHECK_EQ(sstats(sub).pending, 10);
	CHECK_EQ(sstats(sub).demand, 3);
	CHECK_EQ(R.nstarted, 2);            /* the yielded unit runs again */
	CHECK(R.started[1] == R.started[0]);
	CHECK_EQ(ststats(races).in_flight, 1);

	/* min_demand defaults to half of max_demand */
	struct pipeline *q = new_pipeline();
	struct stage *a = add(q, "a", STAGE_PRODUCER, 1, 1);
	struct stage *b = add(q, "b", STAGE_CONSUMER, 1, 1);
	struct stage_sub *s2 = pipeline_subscribe(q, a, b, 9, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(sstats(s2).min_demand, 4);
	pipeline_free(q);
	pipeline_free(p);
}

/* R1: a producer emitting a page larger than the demand sends only the
 * demand; the rest waits, and is sent only as credit comes back. */
static void test_producer_never_sends_beyond_demand(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	struct stage_sub *sub = pipeline_subscribe(p, races, store, 4, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 10), 0);
	stage_work_yield(R.started[0]);
	CHECK_EQ(sstats(sub).sent, 4);
	CHECK_EQ(R.ngot, 4);
	CHECK_EQ(ststats(races).buffered, 6);
	CHECK_EQ(ststats(races).in_flight, 0);
	CHECK_EQ(ststats(races).queued, 1);

	stage_ack(sub, 1);                  /* pending 3 > 2 */
	CHECK_EQ(sstats(sub).sent, 4);
	CHECK_EQ(ststats(races).buffered, 6);
	stage_ack(sub, 1);                  /* pending 2: asks 2 */
	CHECK_EQ(sstats(sub).asked, 6);
	CHECK_EQ(sstats(sub).sent, 6);
	CHECK_EQ(ststats(races).buffered, 4);
	CHECK_EQ(R.nstarted, 1);            /* demand 0 again: the page waits */
	stage_ack(sub, 10);                 /* clamped to the 4 held */
	CHECK_EQ(sstats(sub).acked, 6);
	CHECK_EQ(sstats(sub).sent, 10);
	CHECK_EQ(ststats(races).buffered, 0);
	CHECK(sstats(sub).sent <= sstats(sub).asked);
	CHECK_EQ(R.ngot, 10);
	for (size_t i = 0; i < R.ngot; i++)
		CHECK_EQ(R.got_seq[i], i);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* R3: with two subscribers an event goes to both, only as far as the
 * smaller demand allows. */
static void test_broadcast_waits_for_smallest_demand(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *big = add(p, "big", STAGE_CONSUMER, 1, 1);
	struct stage *small = add(p, "small", STAGE_CONSUMER, 1, 1);
	struct stage_sub *sb = pipeline_subscribe(p, races, big, 5, STAGE_MIN_DEMAND_DEFAULT);
	struct stage_sub *ss = pipeline_subscribe(p, races, small, 2, 1);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 6), 0);
	stage_work_done(R.started[0]);
	CHECK_EQ(sstats(sb).sent, 2);
	CHECK_EQ(sstats(ss).sent, 2);
	CHECK_EQ(sstats(sb).demand, 3);
	CHECK_EQ(sstats(ss).demand, 0);
	CHECK_EQ(ststats(races).buffered, 4);
	/* each emit is broadcast at once: big and small get the same event */
	CHECK(R.got_on[0] == sb && R.got_on[1] == ss && R.got[0] == R.got[1]);
	CHECK_EQ(R.payloads - R.freed, 6);

	stage_ack(ss, 1);                   /* small asks 1: one more to both */
	CHECK_EQ(sstats(ss).asked, 3);
	CHECK_EQ(sstats(sb).sent, 3);
	CHECK_EQ(sstats(ss).sent, 3);
	CHECK_EQ(ststats(races).buffered, 3);
	CHECK_EQ(R.freed, 0);               /* big still holds what small acked */
	stage_ack(sb, 3);
	CHECK_EQ(R.freed, 1);               /* event 0: released by both */
	CHECK_EQ(pipeline_live_events(p), 5);
	size_t nb = 0, ns = 0;
	for (size_t i = 0; i < R.ngot; i++) {
		if (R.got_on[i] == sb)
			CHECK_EQ(R.got_seq[i], nb++);
		else
			CHECK_EQ(R.got_seq[i], ns++);
	}
	CHECK_EQ(nb, 3);
	CHECK_EQ(ns, 3);
	CHECK_EQ(got_on(sb), 3);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* R4: a fetching stage starts a unit only while credit exceeds its running
 * units, the buffer has room and it is below concurrency. */
static void test_fetching_stage_starts_only_with_credit_buffer_room_and_below_concurrency(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 2, 3);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	struct stage_sub *in = pipeline_subscribe(p, races, entries, 10, STAGE_MIN_DEMAND_DEFAULT);
	struct stage_sub *out = pipeline_subscribe(p, entries, store, 2, 1);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 10), 0);
	stage_work_yield(R.started[0]);
	CHECK_EQ(sstats(in).sent, 10);
	/* credit 2: two of the ten inputs start, though concurrency is 3 */
	CHECK_EQ(ststats(entries).in_flight, 2);
	CHECK_EQ(ststats(entries).queued, 8);
	CHECK_EQ(R.nstarted, 3);
	CHECK(R.started_by[1] == entries && R.started_by[2] == entries);
	CHECK_EQ(stage_event_seq(stage_work_input(R.started[1])), 0);
	CHECK_EQ(stage_event_seq(stage_work_input(R.started[2])), 1);

	/* one unit emits its one entry and ends: credit 1, one running: no start */
	CHECK_EQ(emit_n(R.started[1], 1), 0);
	stage_work_done(R.started[1]);
	CHECK_EQ(sstats(out).demand, 1);
	CHECK_EQ(ststats(entries).in_flight, 1);
	CHECK_EQ(ststats(entries).queued, 8);
	CHECK_EQ(sstats(in).acked, 1);      /* its input's credit went back */

	/* the store acks: pending 1 <= 1, asks 1: credit 2 > 1 running */
	stage_ack(out, 1);
	CHECK_EQ(sstats(out).demand, 2);
	CHECK_EQ(ststats(entries).in_flight, 2);
	CHECK_EQ(ststats(entries).queued, 7);

	/* a 1:n page fills the buffer: nothing starts while it is full */
	CHECK_EQ(emit_n(R.started[2], 4), 0);
	stage_work_done(R.started[2]);
	CHECK_EQ(sstats(out).demand, 0);
	CHECK_EQ(ststats(entries).buffered, 2);
	CHECK_EQ(ststats(entries).in_flight, 1);
	CHECK_EQ(R.nstarted, 4);
	stage_ack(out, 2);                  /* asks 2: the buffer drains to 0 */
	CHECK_EQ(ststats(entries).buffered, 0);
	CHECK_EQ(sstats(out).demand, 0);
	CHECK_EQ(ststats(entries).in_flight, 1);
	stage_ack(out, 2);                  /* credit 2 > 1 running: one starts */
	CHECK_EQ(ststats(entries).in_flight, 2);
	pipeline_free(p);
	CHECK_EQ(R.aborted, 2);
	CHECK_EQ(R.freed, R.payloads);

	/* concurrency: with credit 10, exactly 3 run */
	p = new_pipeline();
	races = add(p, "races", STAGE_PRODUCER, 100, 1);
	entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 2, 3);
	store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, entries, 10, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK(pipeline_subscribe(p, entries, store, 10, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 10), 0);
	stage_work_yield(R.started[0]);
	CHECK_EQ(ststats(entries).in_flight, 3);
	CHECK_EQ(ststats(entries).queued, 7);
	CHECK_EQ(pipeline_in_flight(p), 3);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* A reload's concurrency: raised, more start at once; lowered, the
 * running finish and none starts until fewer run. */
static void test_concurrency_changed_while_running(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 2, 3);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, entries, 10, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK(pipeline_subscribe(p, entries, store, 10, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 10), 0);
	stage_work_yield(R.started[0]);
	CHECK_EQ(ststats(entries).in_flight, 3);
	CHECK_EQ(stage_set_concurrency(entries, 5), 0);
	CHECK_EQ(ststats(entries).in_flight, 5);
	CHECK_EQ(ststats(entries).concurrency, 5);
	CHECK_EQ(stage_set_concurrency(entries, 2), 0);
	CHECK_EQ(ststats(entries).in_flight, 5);     /* the running go on */
	stage_work_done(R.started[1]);
	stage_work_done(R.started[2]);
	stage_work_done(R.started[3]);
	CHECK_EQ(ststats(entries).in_flight, 2);     /* none started meanwhile */
	CHECK_EQ(stage_set_concurrency(entries, 0), -1);
	CHECK_EQ(stage_set_concurrency(entries, STAGE_MAX_CONCURRENCY + 1), -1);
	CHECK_EQ(ststats(entries).concurrency, 2);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* R5: a 1:n unit may emit past its credit; the surplus waits in the
 * buffer (above buffer_size) and nothing new starts until it drains. */
static void test_one_to_n_overshoot_waits_in_buffer(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 3, 2);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, entries, 10, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	struct stage_sub *out = pipeline_subscribe(p, entries, store, 4, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 5), 0);
	stage_work_done(R.started[0]);
	CHECK_EQ(ststats(entries).in_flight, 2);
	struct stage_work *w1 = R.started[1], *w2 = R.started[2];
	int *marker = malloc(sizeof(*marker));
	stage_work_set_user(w1, marker, user_free);

	CHECK_EQ(emit_n(w1, 5), 0);         /* page 1 of input 0 */
	stage_work_yield(w1);
	CHECK_EQ(sstats(out).sent, 4);
	CHECK_EQ(ststats(entries).buffered, 1);
	CHECK_EQ(emit_n(w2, 5), 0);         /* input 1, one page */
	stage_work_done(w2);
	CHECK_EQ(ststats(entries).buffered, 6); /* > buffer_size 3 */
	CHECK(ststats(entries).buffered <= 3 + 2 * 5);
	CHECK_EQ(ststats(entries).in_flight, 0);
	CHECK_EQ(ststats(entries).queued, 4); /* w1 yielded + 3 new inputs */
	CHECK_EQ(R.nstarted, 3);

	stage_ack(out, 4);                  /* 4 more sent: 2 left, demand 0 */
	CHECK_EQ(ststats(entries).buffered, 2);
	CHECK_EQ(sstats(out).demand, 0);
	CHECK_EQ(R.nstarted, 3);
	stage_ack(out, 4);                  /* 2 sent: buffer empty, credit 2 */
	CHECK_EQ(ststats(entries).buffered, 0);
	CHECK_EQ(sstats(out).demand, 2);
	CHECK_EQ(ststats(entries).in_flight, 2);
	CHECK(R.started[3] == w1);          /* the yielded unit first */
	CHECK(stage_work_user(w1) == marker);
	CHECK_EQ(stage_event_seq(stage_work_input(w1)), 0);
	CHECK_EQ(stage_event_seq(stage_work_input(R.started[4])), 2);
	stage_work_done(w1);
	CHECK_EQ(R.users_freed, 1);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* R5: while its buffer holds a surplus at or above buffer_size, a
 * producer-consumer asks upstream for nothing more; it asks once it drains. */
static void test_full_buffer_asks_upstream_for_nothing_until_it_drains(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 3, 2);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	struct stage_sub *in = pipeline_subscribe(p, races, entries, 4, 2);
	struct stage_sub *out = pipeline_subscribe(p, entries, store, 2, 1);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(sstats(in).asked, 4);
	CHECK_EQ(emit_n(R.started[0], 4), 0);
	stage_work_yield(R.started[0]);
	CHECK_EQ(ststats(entries).in_flight, 2);    /* store's credit 2 */
	struct stage_work *w0 = R.started[1], *w1 = R.started[2];

	CHECK_EQ(emit_n(w0, 6), 0);                 /* 2 to the store, 4 wait */
	CHECK_EQ(ststats(entries).buffered, 4);
	stage_work_done(w0);
	stage_work_done(w1);                        /* pending 2 == min_demand */
	CHECK_EQ(sstats(in).acked, 2);
	CHECK_EQ(sstats(in).asked, 4);              /* held back: buffer 4 >= 3 */

	stage_ack(out, 2);                          /* 2 more leave the buffer */
	CHECK_EQ(ststats(entries).buffered, 2);
	CHECK_EQ(sstats(in).asked, 6);              /* drained below 3: asks again */
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* R6: a consumer's credit comes back when it acks, not when events arrive;
 * a producer-consumer's when the input's work is done. */
static void test_consumer_credit_returns_only_on_ack(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 10, 4);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	struct stage_sub *in = pipeline_subscribe(p, races, entries, 2, STAGE_MIN_DEMAND_DEFAULT);
	struct stage_sub *out = pipeline_subscribe(p, entries, store, 3, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 5), 0);
	stage_work_yield(R.started[0]);
	CHECK_EQ(sstats(in).sent, 2);
	CHECK_EQ(sstats(in).demand, 0);
	CHECK_EQ(ststats(entries).in_flight, 2);
	/* dispatching the inputs earned nothing back: still 3 buffered */
	CHECK_EQ(ststats(races).buffered, 3);
	CHECK_EQ(emit_n(R.started[1], 3), 0);
	CHECK_EQ(sstats(in).demand, 0);     /* the work is not done yet */
	stage_work_done(R.started[1]);      /* pending 1 <= 1: asks 1 */
	CHECK_EQ(sstats(in).acked, 1);
	CHECK_EQ(sstats(in).sent, 3);
	CHECK_EQ(ststats(races).buffered, 2);

	CHECK_EQ(sstats(out).sent, 3);
	CHECK_EQ(sstats(out).demand, 0);
	pipeline_pause(p, true);
	pipeline_pause(p, false);
	CHECK_EQ(sstats(out).asked, 3);     /* delivered, not acked: no credit */
	CHECK_EQ(ststats(entries).in_flight, 1);
	stage_ack(out, 2);                  /* pending 1 <= 1: asks 2 */
	CHECK_EQ(sstats(out).asked, 5);
	CHECK_EQ(sstats(out).demand, 2);
	CHECK_EQ(ststats(entries).in_flight, 2);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* Completion: finished is called once, when the producer is exhausted and
 * every event has been delivered and acknowledged. */
static void test_pipeline_finishes_once_when_exhausted_and_acked(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 10, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 10, 2);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, entries, 5, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	struct stage_sub *sr = pipeline_subscribe(p, races, store, 5, STAGE_MIN_DEMAND_DEFAULT);
	struct stage_sub *se = pipeline_subscribe(p, entries, store, 5, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 2), 0);
	stage_work_done(R.started[0]);      /* the race list is exhausted */
	CHECK(ststats(races).finished);
	CHECK_EQ(ststats(races).done, 1);
	CHECK(!ststats(entries).finished);
	CHECK_EQ(emit_n(R.started[1], 1), 0);
	stage_work_done(R.started[1]);
	CHECK_EQ(emit_n(R.started[2], 2), 0);
	stage_work_done(R.started[2]);
	CHECK(ststats(entries).finished);
	CHECK_EQ(ststats(entries).done, 2);
	CHECK(!ststats(store).finished);
	stage_ack(sr, 2);
	stage_ack(se, 2);
	CHECK(!pipeline_finished(p));
	CHECK_EQ(R.finished, 0);
	stage_ack(se, 1);
	CHECK(pipeline_finished(p));
	CHECK_EQ(R.finished, 1);
	CHECK_EQ(pipeline_live_events(p), 0);
	CHECK_EQ(R.freed, 5);
	stage_ack(se, 1);                   /* nothing held: no effect */
	CHECK_EQ(R.finished, 1);
	pipeline_free(p);
}

/* Synchronous completion inside start() (a dedupe hit) keeps R4 exact. */
static void test_synchronous_completion_keeps_credit_exact(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *athletes = add(p, "athletes", STAGE_PRODUCER_CONSUMER, 1, 8);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, athletes, 20, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	struct stage_sub *out = pipeline_subscribe(p, athletes, store, 3, 1);
	CHECK_EQ(pipeline_start(p), 0);
	struct stage_work *pw = R.started[0];
	R.sync_emit = 1;                    /* athletes: emit one, done, in start() */
	CHECK_EQ(emit_n(pw, 10), 0);
	CHECK_EQ(sstats(out).sent, 3);
	CHECK_EQ(ststats(athletes).done, 3);
	CHECK_EQ(ststats(athletes).in_flight, 0);
	CHECK_EQ(ststats(athletes).buffered, 0);
	CHECK_EQ(ststats(athletes).queued, 7);
	stage_ack(out, 3);
	CHECK_EQ(sstats(out).sent, 6);
	CHECK_EQ(ststats(athletes).done, 6);
	R.sync_emit = -1;
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* Pause: no unit starts; running units finish and events still flow. */
static void test_pause_stops_starts_but_not_events(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 10, 2);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, entries, 10, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	struct stage_sub *out = pipeline_subscribe(p, entries, store, 10, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 4), 0);
	CHECK_EQ(ststats(entries).in_flight, 2);
	pipeline_pause(p, true);
	CHECK(pipeline_paused(p));
	stage_work_yield(R.started[0]);
	CHECK_EQ(emit_n(R.started[1], 2), 0);
	stage_work_done(R.started[1]);
	CHECK_EQ(sstats(out).sent, 2);      /* events flow */
	CHECK_EQ(R.ngot, 2);
	CHECK_EQ(ststats(entries).in_flight, 1);
	CHECK_EQ(ststats(entries).queued, 2);
	CHECK_EQ(ststats(races).queued, 1);
	CHECK_EQ(R.nstarted, 3);            /* nothing started while paused */
	pipeline_pause(p, false);
	CHECK(!pipeline_paused(p));
	CHECK_EQ(R.nstarted, 5);            /* races resumes, one more entry */
	CHECK_EQ(ststats(entries).in_flight, 2);
	CHECK_EQ(ststats(races).in_flight, 1);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
	CHECK_EQ(R.aborted, 3);
}

/* Cancel: the cancelled subscriber's events are released, it no longer
 * holds the broadcast back; cancelling a stage's last subscriber drops its
 * work and cancels upstream, and the pipeline still finishes. */
static void test_cancel_releases_events_and_unblocks_broadcast(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *slow = add(p, "slow", STAGE_CONSUMER, 1, 1);
	struct stage *fast = add(p, "fast", STAGE_CONSUMER, 1, 1);
	struct stage_sub *ss = pipeline_subscribe(p, races, slow, 2, 1);
	struct stage_sub *sf = pipeline_subscribe(p, races, fast, 10, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 5), 0);
	stage_work_done(R.started[0]);
	CHECK_EQ(sstats(sf).sent, 2);
	CHECK_EQ(ststats(races).buffered, 3);
	stage_sub_cancel(ss);
	CHECK(sstats(ss).cancelled);
	CHECK_EQ(sstats(sf).sent, 5);
	CHECK_EQ(sstats(ss).sent, 2);
	CHECK_EQ(ststats(races).buffered, 0);
	CHECK_EQ(R.freed, 0);               /* fast still holds all five */
	CHECK(ststats(slow).finished);
	stage_ack(sf, 5);
	CHECK_EQ(R.freed, 5);
	CHECK_EQ(R.finished, 1);
	pipeline_free(p);

	/* the last subscriber goes: the stage drops its work, upstream too */
	p = new_pipeline();
	races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 10, 1);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	struct stage_sub *in = pipeline_subscribe(p, races, entries, 10, STAGE_MIN_DEMAND_DEFAULT);
	struct stage_sub *out = pipeline_subscribe(p, entries, store, 10, STAGE_MIN_DEMAND_DEFAULT);
	CHECK_EQ(pipeline_start(p), 0);
	struct stage_work *pw = R.started[0];
	CHECK_EQ(emit_n(pw, 3), 0);         /* the race unit keeps running */
	struct stage_work *ew = R.started[1];
	CHECK_EQ(emit_n(ew, 2), 0);
	CHECK_EQ(ststats(entries).queued, 2);
	stage_sub_cancel(out);
	CHECK(sstats(in).cancelled);
	CHECK_EQ(ststats(entries).queued, 0);
	CHECK_EQ(pipeline_live_events(p), 1); /* the running unit's input */
	CHECK_EQ(emit_n(ew, 1), 0);         /* discarded */
	CHECK_EQ(pipeline_live_events(p), 1);
	stage_work_done(ew);
	CHECK(!pipeline_finished(p));
	CHECK_EQ(emit_n(pw, 1), 0);
	stage_work_yield(pw);               /* dropped: nobody listens */
	CHECK(pipeline_finished(p));
	CHECK_EQ(R.finished, 1);
	CHECK_EQ(pipeline_live_events(p), 0);
	CHECK_EQ(R.freed, R.payloads);
	pipeline_free(p);
}

/* Teardown mid-work: abort for every running unit, user state and every
 * payload freed exactly once. */
static void test_free_mid_work_aborts_running_and_leaks_nothing(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 4, 3);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, entries, 8, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK(pipeline_subscribe(p, races, store, 8, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK(pipeline_subscribe(p, entries, store, 5, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(emit_n(R.started[0], 12), 0);
	for (size_t i = 1; i <= 3; i++)
		stage_work_set_user(R.started[i], malloc(8), user_free);
	CHECK_EQ(emit_n(R.started[1], 9), 0);  /* overshoot into the buffer */
	stage_work_yield(R.started[1]);
	CHECK_EQ(ststats(entries).in_flight, 2);
	CHECK_EQ(pipeline_in_flight(p), 3);
	CHECK_EQ(ststats(races).buffered, 4);
	CHECK_EQ(ststats(entries).buffered, 4);
	CHECK_EQ(pipeline_live_events(p), 21);
	pipeline_free(p);
	CHECK_EQ(R.aborted, 3);
	CHECK_EQ(R.users_freed, 3);
	CHECK_EQ(R.freed, 21);
	CHECK_EQ(R.payloads, 21);
}

/* The optional queued() hook: told of every input handed to a
 * producer-consumer, before it starts, with the unit it will start as;
 * a user state set then is the one start() sees, and is freed with the
 * unit whether it ran or was dropped unstarted. */
static struct stage_work *queued_units[MAX_REC];
static size_t nqueued;

static void on_queued(void *ctx, struct stage *st, struct stage_work *w)
{
	(void)ctx, (void)st;
	CHECK(stage_work_input(w) != NULL);
	if (nqueued < MAX_REC)
		queued_units[nqueued++] = w;
	stage_work_set_user(w, malloc(8), user_free);
}

static void test_queued_hook_sees_inputs_before_they_start(void)
{
	static const struct stage_handler with_queued = {
		.start = on_start, .abort = on_abort, .deliver = on_deliver, .queued = on_queued,
	};
	struct pipeline *p = new_pipeline();
	nqueued = 0;
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage_params sp = {
		.name = "entries", .kind = STAGE_PRODUCER_CONSUMER, .handler = &with_queued,
		.buffer_size = 4, .concurrency = 2,
	};
	struct stage *entries = pipeline_add_stage(p, &sp);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(pipeline_subscribe(p, races, entries, 8, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK(pipeline_subscribe(p, races, store, 8, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK(pipeline_subscribe(p, entries, store, 8, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(nqueued, 0);
	pipeline_batch_begin(p);
	CHECK_EQ(emit_n(R.started[0], 6), 0);
	pipeline_batch_end(p);
	/* all six queued (and told), two of them started */
	CHECK_EQ(nqueued, 6);
	CHECK_EQ(ststats(entries).in_flight, 2);
	CHECK_EQ(ststats(entries).queued, 4);
	CHECK(R.started[1] == queued_units[0]);
	CHECK(R.started[2] == queued_units[1]);
	CHECK(stage_work_user(R.started[1]) != NULL);
	/* one ends: its user state is freed, the next queued one starts */
	stage_work_done(R.started[1]);
	CHECK_EQ(R.users_freed, 1);
	CHECK(R.started[3] == queued_units[2]);
	/* freed with three still queued: their states are freed unstarted */
	pipeline_free(p);
	CHECK_EQ(R.users_freed, 6);
	CHECK_EQ(R.freed, R.payloads);
}

static struct pipeline *free_on_finish;

static void finished_then_free(void *ctx)
{
	(void)ctx;
	R.finished++;
	pipeline_free(free_on_finish);
}

static struct stage_sub *cancel_in_deliver;

static void deliver_then_cancel(void *ctx, struct stage *st, struct stage_sub *sub,
                                struct stage_event *const *events, size_t n)
{
	on_deliver(ctx, st, sub, events, n);
	stage_ack(sub, 1);                  /* reentrant: settles afterwards */
	if (sub == cancel_in_deliver)
		stage_sub_cancel(sub);
}

/* Reentrancy: a consumer acks and cancels from inside deliver(), and the
 * finished callback frees the pipeline. */
static void test_handlers_may_call_back_and_finished_may_free(void)
{
	static const struct stage_handler cancelling = {
		.start = on_start, .abort = on_abort, .deliver = deliver_then_cancel,
	};
	struct pipeline_callbacks cb = {.free_payload = free_payload, .finished = finished_then_free};
	rec_reset();
	struct pipeline *p = pipeline_new(&cb);
	free_on_finish = p;
	struct stage *races = add(p, "races", STAGE_PRODUCER, 10, 1);
	struct stage_params sp = {
		.name = "store", .kind = STAGE_CONSUMER, .handler = &cancelling,
		.buffer_size = 1, .concurrency = 1,
	};
	struct stage *store = pipeline_add_stage(p, &sp);
	sp.name = "audit";
	struct stage *audit = pipeline_add_stage(p, &sp);
	struct stage_sub *ss = pipeline_subscribe(p, races, store, 4, STAGE_MIN_DEMAND_DEFAULT);
	struct stage_sub *sa = pipeline_subscribe(p, races, audit, 4, STAGE_MIN_DEMAND_DEFAULT);
	cancel_in_deliver = sa;
	CHECK_EQ(pipeline_start(p), 0);
	struct stage_work *w = R.started[0];
	CHECK_EQ(emit_n(w, 1), 0);          /* both get it; audit acks and cancels */
	CHECK(sstats(sa).cancelled);
	CHECK_EQ(sstats(ss).acked, 1);
	CHECK_EQ(R.freed, 1);
	CHECK_EQ(emit_n(w, 3), 0);          /* store alone, acking each */
	CHECK_EQ(sstats(ss).acked, 4);
	CHECK_EQ(sstats(ss).asked, 8);
	CHECK_EQ(R.finished, 0);
	stage_work_done(w);                 /* finishes, and the pipeline is freed */
	CHECK_EQ(R.finished, 1);
	CHECK_EQ(R.freed, R.payloads);
	(void)store, (void)audit;
}

static void test_bad_wiring_is_refused(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 10, 1);
	struct stage *a = add(p, "a", STAGE_PRODUCER_CONSUMER, 10, 1);
	struct stage *b = add(p, "b", STAGE_PRODUCER_CONSUMER, 10, 1);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	CHECK(add(p, "a", STAGE_CONSUMER, 1, 1) == NULL);   /* duplicate name */
	CHECK(add(p, "z", STAGE_CONSUMER, 0, 1) == NULL);   /* buffer_size 0 */
	CHECK(add(p, "z", STAGE_CONSUMER, 1, 0) == NULL);   /* concurrency 0 */
	CHECK(pipeline_subscribe(p, races, store, 0, STAGE_MIN_DEMAND_DEFAULT) == NULL);
	CHECK(pipeline_subscribe(p, races, store, 4, 4) == NULL);   /* min >= max */
	CHECK(pipeline_subscribe(p, races, store, STAGE_MAX_DEMAND + 1, 1) == NULL);
	CHECK(pipeline_subscribe(p, store, a, 4, 1) == NULL);      /* consumer produces */
	CHECK(pipeline_subscribe(p, a, races, 4, 1) == NULL);      /* producer consumes */
	CHECK(pipeline_subscribe(p, a, b, 4, 1) != NULL);
	CHECK(pipeline_subscribe(p, b, a, 4, 1) == NULL);          /* a cycle */
	CHECK(pipeline_subscribe(p, races, b, 4, 1) == NULL);      /* b has its input */
	CHECK_EQ(pipeline_start(p), -1);                           /* a has no input */
	CHECK(pipeline_subscribe(p, races, a, 4, 1) != NULL);
	CHECK_EQ(pipeline_start(p), -1);                           /* b has no subscriber */
	CHECK(pipeline_subscribe(p, b, store, 4, 1) != NULL);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(pipeline_start(p), -1);
	CHECK(pipeline_subscribe(p, races, store, 4, 1) == NULL);  /* after start */
	CHECK_EQ(pipeline_stage_count(p), 4);
	CHECK(pipeline_stage_by_name(p, "b") == b);
	CHECK_STR(stage_name(pipeline_stage(p, 0)), "races");
	CHECK_EQ(stage_sub_count(races), 1);
	CHECK_STR(sstats(stage_sub(a, 0)).consumer, "b");
	pipeline_free(p);
}

/* A page is atomic: a caller outside the handlers (a fetch completion)
 * emits a page of 6 inside a batch; no handler runs until the batch ends,
 * then the page is dispatched at once, as far as the smallest demand (R3)
 * allows, and the child starts what its credit and concurrency allow. */
static void test_batch_emits_a_page_then_dispatches_it(void)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *entries = add(p, "entries", STAGE_PRODUCER_CONSUMER, 10, 2);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	struct stage_sub *to_store = pipeline_subscribe(p, races, store, 10, 5);
	struct stage_sub *to_child = pipeline_subscribe(p, races, entries, 4, 2);
	CHECK(pipeline_subscribe(p, entries, store, 10, 5) != NULL);
	CHECK_EQ(pipeline_start(p), 0);
	CHECK_EQ(R.nstarted, 1);
	struct stage_work *w = R.started[0];

	pipeline_batch_begin(p);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(emit_n(w, 1), 0);
		CHECK_EQ(R.delivers, 0);        /* nothing reaches the store ... */
		CHECK_EQ(R.nstarted, 1);        /* ... nor starts the child */
		CHECK_EQ(stage_buffered(races), (size_t)i + 1);
	}
	stage_work_yield(w);
	CHECK_EQ(R.delivers, 0);
	CHECK_EQ(sstats(to_store).sent, 0);
	CHECK_EQ(ststats(races).in_flight, 0); /* state changes at once ... */
	CHECK_EQ(ststats(races).queued, 1);    /* ... only the handlers wait */

	pipeline_batch_end(p);
	CHECK_EQ(R.delivers, 1);                /* the 4 sent arrive in one call */
	CHECK_EQ(R.ngot, 4);
	for (size_t i = 0; i < R.ngot; i++)
		CHECK_EQ(R.got_seq[i], i);
	CHECK_EQ(sstats(to_store).sent, 4);
	CHECK_EQ(sstats(to_child).sent, 4);
	CHECK_EQ(stage_sub_demand(to_store), 6);
	CHECK_EQ(stage_sub_demand(to_child), 0);
	CHECK_EQ(stage_sub_unacked(to_store), 4);
	CHECK_EQ(stage_buffered(races), 2);
	CHECK_EQ(R.nstarted, 3);                /* the yielded root waits (no credit), 2 children run */
	CHECK(R.started_by[1] == entries && R.started_by[2] == entries);
	CHECK_EQ(ststats(entries).in_flight, 2);
	CHECK_EQ(ststats(entries).queued, 2);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* races (a producer, buffer 100) -> store (max 10, min 5), started: the
 * root's unit is R.started[0]. */
static struct pipeline *start_races_to_store(struct stage_sub **sub)
{
	struct pipeline *p = new_pipeline();
	struct stage *races = add(p, "races", STAGE_PRODUCER, 100, 1);
	struct stage *store = add(p, "store", STAGE_CONSUMER, 1, 1);
	*sub = pipeline_subscribe(p, races, store, 10, 5);
	CHECK_EQ(pipeline_start(p), 0);
	return p;
}

/* Without a batch each emit settles at once: the store sees the first item
 * before the second is emitted.  (The behaviour a batch exists to avoid.) */
static void test_emit_outside_a_batch_settles_at_once(void)
{
	struct stage_sub *sub;
	struct pipeline *p = start_races_to_store(&sub);
	CHECK_EQ(emit_n(R.started[0], 1), 0);
	CHECK_EQ(R.delivers, 1);
	CHECK_EQ(emit_n(R.started[0], 1), 0);
	CHECK_EQ(R.delivers, 2);
	CHECK_EQ(stage_sub_unacked(sub), 2);
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

/* Batches nest: only the outermost end settles; an end without a begin
 * does nothing.  The finished callback comes from the end that settles. */
static void test_batches_nest_and_only_the_outermost_end_settles(void)
{
	struct stage_sub *sub;
	struct pipeline *p = start_races_to_store(&sub);
	struct stage *races = pipeline_stage_by_name(p, "races");
	pipeline_batch_begin(p);
	pipeline_batch_begin(p);
	CHECK_EQ(emit_n(R.started[0], 3), 0);
	stage_work_done(R.started[0]);
	pipeline_batch_end(p);
	CHECK_EQ(R.delivers, 0);
	CHECK_EQ(stage_buffered(races), 3);
	pipeline_batch_end(p);
	CHECK_EQ(R.delivers, 1);
	CHECK_EQ(R.ngot, 3);
	CHECK_EQ(stage_buffered(races), 0);
	CHECK_EQ(R.finished, 0);

	pipeline_batch_end(p);                  /* unmatched: ignored */
	pipeline_batch_begin(p);
	stage_ack(sub, 3);
	CHECK_EQ(stage_sub_unacked(sub), 0);    /* the ack counts at once ... */
	CHECK_EQ(R.freed, 3);
	CHECK_EQ(R.finished, 0);                /* ... the settle waits */
	pipeline_batch_end(p);
	CHECK_EQ(R.finished, 1);
	CHECK(pipeline_finished(p));
	pipeline_free(p);
	CHECK_EQ(R.freed, R.payloads);
}

int main(void)
{
	RUN(test_consumer_reasks_at_min_demand);
	RUN(test_producer_never_sends_beyond_demand);
	RUN(test_broadcast_waits_for_smallest_demand);
	RUN(test_fetching_stage_starts_only_with_credit_buffer_room_and_below_concurrency);
	RUN(test_concurrency_changed_while_running);
	RUN(test_one_to_n_overshoot_waits_in_buffer);
	RUN(test_full_buffer_asks_upstream_for_nothing_until_it_drains);
	RUN(test_consumer_credit_returns_only_on_ack);
	RUN(test_pipeline_finishes_once_when_exhausted_and_acked);
	RUN(test_synchronous_completion_keeps_credit_exact);
	RUN(test_pause_stops_starts_but_not_events);
	RUN(test_cancel_releases_events_and_unblocks_broadcast);
	RUN(test_free_mid_work_aborts_running_and_leaks_nothing);
	RUN(test_queued_hook_sees_inputs_before_they_start);
	RUN(test_handlers_may_call_back_and_finished_may_free);
	RUN(test_bad_wiring_is_refused);
	RUN(test_batch_emits_a_page_then_dispatches_it);
	RUN(test_emit_outside_a_batch_settles_at_once);
	RUN(test_batches_nest_and_only_the_outermost_end_settles);
	return CHECK_DONE();
}
