/* R7: the events alive in a pipeline are bounded by its demands, buffers
 * and in-flight pages, whatever the size of the data set.  A data set over
 * 100 times that bound goes through races -> entries -> athletes -> store
 * (store subscribed to all three), with a store that commits eagerly and
 * one that commits only when nothing else can move; live events are checked
 * against the bound after every step. */
#include "check.h"
#include "stage.h"

#include <stdbool.h>

#define RACES           300
#define PAGES_PER_RACE  5
#define PAGE            10     /* items per page, races and entries */
#define BATCH           16     /* the store's batch */
#define MAX_RUNNING     64

enum { RACES_ST, ENTRIES, ATHLETES, STORE, NSTAGES };

struct bound_run {
	struct pipeline *p;
	struct stage *st[NSTAGES];
	struct stage_sub *store_sub[3];
	struct stage_work *running[MAX_RUNNING]; /* FIFO: oldest completes first */
	size_t nrunning;
	size_t races_left;
	uint64_t held[3];                        /* delivered to the store, not acked */
	size_t payloads, freed, peak;
	size_t finished;
};

static void free_payload(void *ctx, void *payload)
{
	struct bound_run *r = ctx;
	r->freed++;
	free(payload);
}

static void on_finished(void *ctx)
{
	((struct bound_run *)ctx)->finished++;
}

static void free_pages(void *user) { free(user); }

static void on_start(void *ctx, struct stage *st, struct stage_work *w)
{
	struct bound_run *r = ctx;
	if (st == r->st[ENTRIES] && !stage_work_user(w)) {
		int *pages = malloc(sizeof(*pages));
		*pages = PAGES_PER_RACE;
		stage_work_set_user(w, pages, free_pages);
	}
	r->running[r->nrunning++] = w;
}

static void on_deliver(void *ctx, struct stage *st, struct stage_sub *sub,
                       struct stage_event *const *events, size_t n)
{
	struct bound_run *r = ctx;
	(void)st, (void)events;
	for (int i = 0; i < 3; i++)
		if (r->store_sub[i] == sub)
			r->held[i] += n;
}

static const struct stage_handler handler = {.start = on_start, .deliver = on_deliver};

static void emit(struct bound_run *r, struct stage_work *w, int n)
{
	for (int i = 0; i < n; i++) {
		void *pl = malloc(8);
		r->payloads++;
		CHECK_EQ(stage_emit(w, pl), 0);
	}
}

/* Build the pipeline and return its R7 bound. */
static size_t build(struct bound_run *r)
{
	struct pipeline_callbacks cb = {.free_payload = free_payload, .finished = on_finished, .ctx = r};
	static const struct { const char *name; enum stage_kind kind; uint32_t buf, conc, page; } sp[NSTAGES] = {
		{"races", STAGE_PRODUCER, 5, 1, PAGE},
		{"entries", STAGE_PRODUCER_CONSUMER, 5, 4, PAGE},
		{"athletes", STAGE_PRODUCER_CONSUMER, 5, 8, 1},
		{"store", STAGE_CONSUMER, 1, 1, 0},
	};
	size_t bound = 0;
	r->p = pipeline_new(&cb);
	for (int i = 0; i < NSTAGES; i++) {
		struct stage_params p = {
			.name = sp[i].name, .kind = sp[i].kind, .handler = &handler, .ctx = r,
			.buffer_size = sp[i].buf, .concurrency = sp[i].conc,
		};
		r->st[i] = pipeline_add_stage(r->p, &p);
		if (sp[i].kind != STAGE_CONSUMER)
			bound += sp[i].buf + (size_t)sp[i].conc * sp[i].page;
	}
	CHECK(pipeline_subscribe(r->p, r->st[RACES_ST], r->st[ENTRIES], 10, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	CHECK(pipeline_subscribe(r->p, r->st[ENTRIES], r->st[ATHLETES], 20, STAGE_MIN_DEMAND_DEFAULT) != NULL);
	bound += 10 + 20;
	for (int i = 0; i < 3; i++) {
		r->store_sub[i] = pipeline_subscribe(r->p, r->st[i], r->st[STORE], 50, STAGE_MIN_DEMAND_DEFAULT);
		bound += 50;
	}
	r->races_left = RACES;
	return bound;
}

/* Complete the oldest running unit's turn: one page. */
static void complete_oldest(struct bound_run *r)
{
	struct stage_work *w = r->running[0];
	memmove(r->running, r->running + 1, --r->nrunning * sizeof(*r->running));
	struct stage *st = stage_work_stage(w);
	if (st == r->st[RACES_ST]) {
		size_t n = r->races_left < PAGE ? r->races_left : PAGE;
		r->races_left -= n;
		emit(r, w, (int)n);
		if (r->races_left)
			stage_work_yield(w);
		else
			stage_work_done(w);
	} else if (st == r->st[ENTRIES]) {
		int *pages = stage_work_user(w);
		emit(r, w, PAGE);
		if (--*pages)
			stage_work_yield(w);
		else
			stage_work_done(w);
	} else {
		emit(r, w, 1);
		stage_work_done(w);
	}
}

/* The store commits one batch on each sub that holds anything. */
static bool store_commit(struct bound_run *r)
{
	bool any = false;
	for (int i = 0; i < 3; i++) {
		size_t n = r->held[i] < BATCH ? r->held[i] : BATCH;
		if (n) {
			r->held[i] -= n;
			stage_ack(r->store_sub[i], n);
			any = true;
		}
	}
	return any;
}

static void run(bool slow_store, const char *label)
{
	struct bound_run r = {0};
	size_t bound = build(&r);
	CHECK_EQ(pipeline_start(r.p), 0);
	size_t steps = 0;
	for (;;) {
		if (r.nrunning && (slow_store || steps % 2 == 0))
			complete_oldest(&r);
		else if (!store_commit(&r) && !r.nrunning)
			break;
		steps++;
		size_t live = pipeline_live_events(r.p);
		CHECK(live <= bound);
		if (live > r.peak)
			r.peak = live;
		if (live > bound)
			break;
	}
	CHECK(pipeline_finished(r.p));
	CHECK_EQ(r.finished, 1);
	size_t total = RACES + RACES * PAGES_PER_RACE * PAGE * 2;
	CHECK_EQ(r.payloads, total);
	CHECK(total >= 100 * bound);
	pipeline_free(r.p);
	CHECK_EQ(r.freed, r.payloads);
	fprintf(stderr, "%s store: %zu events through a pipeline bounded at %zu "
	        "(%zux); live events peaked at %zu\n",
	        label, total, bound, total / bound, r.peak);
}

static void test_live_events_stay_under_r7_bound_with_eager_store(void) { run(false, "eager"); }
static void test_live_events_stay_under_r7_bound_with_slow_store(void) { run(true, "slow"); }

int main(void)
{
	RUN(test_live_events_stay_under_r7_bound_with_eager_store);
	RUN(test_live_events_stay_under_r7_bound_with_slow_store);
	return CHECK_DONE();
}
