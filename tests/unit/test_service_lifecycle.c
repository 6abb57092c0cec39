/* Unit tests for the service's start-import life cycle (lib/service/lifecycle.c):
 * when a start-import is refused, waits for the database or creates its
 * run; who is answered, when, and why; what stop and shutdown do in each
 * state.  Each test drives a lifecycle by events, as the service does, and
 * asserts the exact state, action, reason and handed-out request. */
#include "check.h"
#include "lifecycle.h"

#include <stdbool.h>

#define N_STATES 4
#define N_EVENTS 8

/* Stands for the service's reply callback; only compared, never called. */
static void answer(void *arg, int64_t id, const char *err)
{
	(void)arg;
	(void)id;
	(void)err;
}

static int client; /* the callback's argument */

static struct lifecycle_ask client_ask(enum lifecycle_db db)
{
	return (struct lifecycle_ask){.who = "uid 1000", .cb = answer, .arg = &client, .db = db};
}

/* raced --once: nobody to answer, waits through outages. */
static struct lifecycle_ask once_ask(enum lifecycle_db db)
{
	return (struct lifecycle_ask){.who = "raced --once", .patient = true, .db = db};
}

static struct lifecycle_step ask(struct lifecycle *l, struct lifecycle_ask a)
{
	return lifecycle_on(l, LIFECYCLE_EV_ASK, &a);
}

static struct lifecycle_step on(struct lifecycle *l, enum lifecycle_event ev)
{
	return lifecycle_on(l, ev, NULL);
}

/* A lifecycle in state st, by the events that lead there, holding a
 * client's request where the state has one. */
static struct lifecycle reach(enum lifecycle_state st)
{
	struct lifecycle l = {0};
	if (st == LIFECYCLE_IDLE)
		return l;
	if (st == LIFECYCLE_WAITING_FOR_DATABASE) {
		(void)ask(&l, client_ask(LIFECYCLE_DB_CONNECTING));
		return l;
	}
	(void)ask(&l, client_ask(LIFECYCLE_DB_READY));
	if (st == LIFECYCLE_RUNNING) {
		struct lifecycle_step s = on(&l, LIFECYCLE_EV_RUN_CREATED);
		lifecycle_request_clear(&s.ended);
	}
	return l;
}

/* The step ended the client's request, for `why`, leaving l in `next`
 * with none pending; the request is then the caller's to free. */
static void check_client_handed_out(struct lifecycle *l, struct lifecycle_step *s,
                                    enum lifecycle_why why, enum lifecycle_state next)
{
	CHECK_EQ(s->why, why);
	CHECK_STR(s->ended.who, "uid 1000");
	CHECK(s->ended.cb == answer);
	CHECK(s->ended.arg == &client);
	CHECK_EQ(lifecycle_state(l), next);
	CHECK(lifecycle_requester(l) == NULL);
	lifecycle_request_clear(&s->ended);
	CHECK(s->ended.who == NULL);
}

/* Drop what a lifecycle still owns (the service does so by SHUTDOWN). */
static void drop(struct lifecycle *l)
{
	struct lifecycle_step s = on(l, LIFECYCLE_EV_SHUTDOWN);
	lifecycle_request_clear(&s.ended);
}

static void test_a_zeroed_lifecycle_is_idle_with_no_request(void)
{
	struct lifecycle l = {0};
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_IDLE);
	CHECK(lifecycle_requester(&l) == NULL);
	CHECK(!lifecycle_has_run(&l));
}

static void test_ask_with_the_database_ready_creates_the_run(void)
{
	struct lifecycle l = {0};
	struct lifecycle_step s = ask(&l, client_ask(LIFECYCLE_DB_READY));
	CHECK_EQ(s.action, LIFECYCLE_DO_CREATE_RUN);
	CHECK_EQ(s.why, LIFECYCLE_WHY_NONE);
	CHECK(s.ended.who == NULL);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_CREATING_RUN);
	CHECK_STR(lifecycle_requester(&l), "uid 1000");
	CHECK(lifecycle_has_run(&l));
	drop(&l);
}

static void test_ask_while_the_database_connects_waits_for_it(void)
{
	struct lifecycle l = {0};
	struct lifecycle_step s = ask(&l, client_ask(LIFECYCLE_DB_CONNECTING));
	CHECK_EQ(s.action, LIFECYCLE_DO_WAIT);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_WAITING_FOR_DATABASE);
	CHECK_STR(lifecycle_requester(&l), "uid 1000");
	CHECK(!lifecycle_has_run(&l)); /* a reload applies at once */
	drop(&l);
}

static void test_ask_while_the_database_is_down_is_refused_and_changes_nothing(void)
{
	struct lifecycle l = {0};
	struct lifecycle_step s = ask(&l, client_ask(LIFECYCLE_DB_DOWN));
	CHECK_EQ(s.action, LIFECYCLE_DO_REFUSE);
	CHECK_EQ(s.why, LIFECYCLE_WHY_DB_DOWN);
	CHECK(s.ended.who == NULL);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_IDLE);
	CHECK(lifecycle_requester(&l) == NULL);
}

static void test_a_patient_ask_waits_while_the_database_is_down(void)
{
	struct lifecycle l = {0};
	struct lifecycle_step s = ask(&l, once_ask(LIFECYCLE_DB_DOWN));
	CHECK_EQ(s.action, LIFECYCLE_DO_WAIT);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_WAITING_FOR_DATABASE);
	CHECK_STR(lifecycle_requester(&l), "raced --once");
	drop(&l);
}

/* An idle lifecycle's answer to each database state, client and patient. */
static void test_an_idle_ask_follows_the_database_state(void)
{
	static const struct {
		enum lifecycle_db db;
		bool patient;
		enum lifecycle_action action;
		enum lifecycle_state next;
	} rows[] = {
		{LIFECYCLE_DB_READY, false, LIFECYCLE_DO_CREATE_RUN, LIFECYCLE_CREATING_RUN},
		{LIFECYCLE_DB_READY, true, LIFECYCLE_DO_CREATE_RUN, LIFECYCLE_CREATING_RUN},
		{LIFECYCLE_DB_CONNECTING, false, LIFECYCLE_DO_WAIT, LIFECYCLE_WAITING_FOR_DATABASE},
		{LIFECYCLE_DB_CONNECTING, true, LIFECYCLE_DO_WAIT, LIFECYCLE_WAITING_FOR_DATABASE},
		{LIFECYCLE_DB_DOWN, false, LIFECYCLE_DO_REFUSE, LIFECYCLE_IDLE},
		{LIFECYCLE_DB_DOWN, true, LIFECYCLE_DO_WAIT, LIFECYCLE_WAITING_FOR_DATABASE},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct lifecycle l = {0};
		struct lifecycle_ask a = rows[i].patient ? once_ask(rows[i].db) : client_ask(rows[i].db);
		struct lifecycle_step s = ask(&l, a);
		CHECK_EQ(s.action, rows[i].action);
		CHECK_EQ(lifecycle_state(&l), rows[i].next);
		drop(&l);
	}
}

static void test_the_requester_is_copied_and_unknown_when_unnamed(void)
{
	char who[16] = "uid 42";
	struct lifecycle l = {0};
	struct lifecycle_ask a = client_ask(LIFECYCLE_DB_READY);
	a.who = who;
	(void)ask(&l, a);
	who[0] = 'X';
	CHECK_STR(lifecycle_requester(&l), "uid 42");
	drop(&l);

	a.who = NULL;
	(void)ask(&l, a);
	CHECK_STR(lifecycle_requester(&l), "unknown");
	drop(&l);
}

static void test_ask_while_stopping_is_refused_in_every_state(void)
{
	for (int st = 0; st < N_STATES; st++) {
		struct lifecycle l = reach((enum lifecycle_state)st);
		struct lifecycle_ask a = client_ask(LIFECYCLE_DB_READY);
		a.stopping = true;
		a.import_ending = true;
		struct lifecycle_step s = ask(&l, a);
		CHECK_EQ(s.action, LIFECYCLE_DO_REFUSE);
		CHECK_EQ(s.why, LIFECYCLE_WHY_STOPPING);
		CHECK_EQ(lifecycle_state(&l), st);
		drop(&l);
	}
}

static void test_a_second_ask_is_refused_while_one_is_pending(void)
{
	enum lifecycle_state pending[] = {LIFECYCLE_WAITING_FOR_DATABASE, LIFECYCLE_CREATING_RUN};
	for (size_t i = 0; i < 2; i++) {
		struct lifecycle l = reach(pending[i]);
		struct lifecycle_ask a = once_ask(LIFECYCLE_DB_READY);
		struct lifecycle_step s = ask(&l, a);
		CHECK_EQ(s.action, LIFECYCLE_DO_REFUSE);
		CHECK_EQ(s.why, LIFECYCLE_WHY_STARTING);
		CHECK(s.ended.who == NULL);
		CHECK_EQ(lifecycle_state(&l), pending[i]);
		CHECK_STR(lifecycle_requester(&l), "uid 1000"); /* the first one's */
		drop(&l);
	}
}

static void test_ask_while_an_import_runs_is_refused_as_running_or_ending(void)
{
	struct lifecycle l = reach(LIFECYCLE_RUNNING);
	struct lifecycle_ask a = client_ask(LIFECYCLE_DB_READY);
	struct lifecycle_step s = ask(&l, a);
	CHECK_EQ(s.action, LIFECYCLE_DO_REFUSE);
	CHECK_EQ(s.why, LIFECYCLE_WHY_RUNNING);
	a.import_ending = true;
	s = ask(&l, a);
	CHECK_EQ(s.why, LIFECYCLE_WHY_ENDING);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_RUNNING);
	CHECK(lifecycle_requester(&l) == NULL);
}

static void test_the_database_ready_creates_the_waiting_run(void)
{
	struct lifecycle l = reach(LIFECYCLE_WAITING_FOR_DATABASE);
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_DB_READY);
	CHECK_EQ(s.action, LIFECYCLE_DO_CREATE_RUN);
	CHECK(s.ended.who == NULL);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_CREATING_RUN);
	CHECK_STR(lifecycle_requester(&l), "uid 1000");
	drop(&l);
}

static void test_the_database_lost_answers_a_waiting_client(void)
{
	struct lifecycle l = reach(LIFECYCLE_WAITING_FOR_DATABASE);
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_DB_LOST);
	CHECK_EQ(s.action, LIFECYCLE_DO_NOTHING);
	check_client_handed_out(&l, &s, LIFECYCLE_WHY_DB_LOST, LIFECYCLE_IDLE);
}

static void test_once_waits_through_outages_until_the_database_is_ready(void)
{
	struct lifecycle l = {0};
	(void)ask(&l, once_ask(LIFECYCLE_DB_CONNECTING));
	for (int i = 0; i < 3; i++) {
		struct lifecycle_step s = on(&l, LIFECYCLE_EV_DB_LOST);
		CHECK_EQ(s.action, LIFECYCLE_DO_NOTHING);
		CHECK(s.ended.who == NULL);
		CHECK_EQ(lifecycle_state(&l), LIFECYCLE_WAITING_FOR_DATABASE);
	}
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_DB_READY);
	CHECK_EQ(s.action, LIFECYCLE_DO_CREATE_RUN);
	CHECK_STR(lifecycle_requester(&l), "raced --once");
	s = on(&l, LIFECYCLE_EV_RUN_CREATED);
	CHECK_STR(s.ended.who, "raced --once");
	CHECK(s.ended.cb == NULL); /* nobody to answer: import_ended tells */
	lifecycle_request_clear(&s.ended);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_RUNNING);
}

/* The database going away while the run row is inserted is the store's to
 * report: the request ends with the run's answer, not before. */
static void test_the_database_lost_while_creating_the_run_waits_for_the_run_answer(void)
{
	struct lifecycle l = reach(LIFECYCLE_CREATING_RUN);
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_DB_LOST);
	CHECK_EQ(s.action, LIFECYCLE_DO_NOTHING);
	CHECK(s.ended.who == NULL);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_CREATING_RUN);
	s = on(&l, LIFECYCLE_EV_DB_READY); /* reconnected: not a second run */
	CHECK_EQ(s.action, LIFECYCLE_DO_NOTHING);
	s = on(&l, LIFECYCLE_EV_RUN_FAILED);
	check_client_handed_out(&l, &s, LIFECYCLE_WHY_RUN_FAILED, LIFECYCLE_IDLE);
}

static void test_the_run_created_hands_the_request_out_once_and_runs(void)
{
	struct lifecycle l = reach(LIFECYCLE_CREATING_RUN);
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_RUN_CREATED);
	CHECK_EQ(s.action, LIFECYCLE_DO_NOTHING);
	check_client_handed_out(&l, &s, LIFECYCLE_WHY_NONE, LIFECYCLE_RUNNING);
	CHECK(lifecycle_has_run(&l));
	s = on(&l, LIFECYCLE_EV_RUN_CREATED);
	CHECK(s.ended.who == NULL);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_RUNNING);
}

static void test_a_reaped_import_returns_to_idle_and_the_next_ask_is_taken(void)
{
	struct lifecycle l = reach(LIFECYCLE_RUNNING);
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_REAPED);
	CHECK_EQ(s.action, LIFECYCLE_DO_NOTHING);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_IDLE);
	CHECK(!lifecycle_has_run(&l));
	s = ask(&l, client_ask(LIFECYCLE_DB_READY));
	CHECK_EQ(s.action, LIFECYCLE_DO_CREATE_RUN);
	drop(&l);
}

static void test_stop_while_waiting_answers_the_request_and_stops_now(void)
{
	struct lifecycle l = reach(LIFECYCLE_WAITING_FOR_DATABASE);
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_STOP);
	CHECK_EQ(s.action, LIFECYCLE_DO_STOP_NOW);
	check_client_handed_out(&l, &s, LIFECYCLE_WHY_STOPPING, LIFECYCLE_IDLE);

	l = (struct lifecycle){0};
	(void)ask(&l, once_ask(LIFECYCLE_DB_DOWN));
	s = on(&l, LIFECYCLE_EV_STOP);
	CHECK_EQ(s.action, LIFECYCLE_DO_STOP_NOW);
	CHECK(s.ended.cb == NULL);
	lifecycle_request_clear(&s.ended);
}

static void test_stop_while_idle_stops_now(void)
{
	struct lifecycle l = {0};
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_STOP);
	CHECK_EQ(s.action, LIFECYCLE_DO_STOP_NOW);
	CHECK(s.ended.who == NULL);
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_IDLE);
}

/* The run being created gets its import, which is then interrupted: the
 * request is answered by the run, not by the stop. */
static void test_stop_while_creating_the_run_or_running_drains(void)
{
	enum lifecycle_state busy[] = {LIFECYCLE_CREATING_RUN, LIFECYCLE_RUNNING};
	for (size_t i = 0; i < 2; i++) {
		struct lifecycle l = reach(busy[i]);
		struct lifecycle_step s = on(&l, LIFECYCLE_EV_STOP);
		CHECK_EQ(s.action, LIFECYCLE_DO_DRAIN);
		CHECK(s.ended.who == NULL);
		CHECK_EQ(lifecycle_state(&l), busy[i]);
		s = on(&l, LIFECYCLE_EV_STOP); /* asked again: still draining */
		CHECK_EQ(s.action, LIFECYCLE_DO_DRAIN);
		drop(&l);
	}
	struct lifecycle l = reach(LIFECYCLE_CREATING_RUN);
	(void)on(&l, LIFECYCLE_EV_STOP);
	struct lifecycle_step s = on(&l, LIFECYCLE_EV_RUN_CREATED);
	CHECK_STR(s.ended.who, "uid 1000");
	CHECK_EQ(lifecycle_state(&l), LIFECYCLE_RUNNING);
	lifecycle_request_clear(&s.ended);
}

static void test_shutdown_hands_out_the_pending_request_in_every_state(void)
{
	static const bool has_request[N_STATES] = {
		[LIFECYCLE_IDLE] = false, [LIFECYCLE_WAITING_FOR_DATABASE] = true,
		[LIFECYCLE_CREATING_RUN] = true, [LIFECYCLE_RUNNING] = false,
	};
	for (int st = 0; st < N_STATES; st++) {
		struct lifecycle l = reach((enum lifecycle_state)st);
		struct lifecycle_step s = on(&l, LIFECYCLE_EV_SHUTDOWN);
		CHECK_EQ(s.action, LIFECYCLE_DO_NOTHING);
		CHECK_EQ(s.why, LIFECYCLE_WHY_STOPPING);
		CHECK_EQ(s.ended.who != NULL, has_request[st]);
		CHECK_EQ(s.ended.cb == answer, has_request[st]);
		CHECK_EQ(lifecycle_state(&l), LIFECYCLE_IDLE);
		CHECK(lifecycle_requester(&l) == NULL);
		lifecycle_request_clear(&s.ended);
	}
}

/* Every (state, event) but ASK: the next state, the action, and whether the
 * request is handed out.  What does not apply changes nothing. */
static void test_every_event_in_every_state(void)
{
	enum { I = LIFECYCLE_IDLE, W = LIFECYCLE_WAITING_FOR_DATABASE,
	       C = LIFECYCLE_CREATING_RUN, R = LIFECYCLE_RUNNING };
	enum { N = LIFECYCLE_DO_NOTHING, CR = LIFECYCLE_DO_CREATE_RUN,
	       DR = LIFECYCLE_DO_DRAIN, SN = LIFECYCLE_DO_STOP_NOW };
	_Static_assert(LIFECYCLE_EV_ASK == 0 && LIFECYCLE_EV_DB_READY == 1 &&
	               LIFECYCLE_EV_SHUTDOWN == N_EVENTS - 1, "the columns below are the events in order");
	static const struct {
		int next, action;
		bool ended;
	} want[N_STATES][N_EVENTS] = {
		/* {next state, action, request handed out} for (ASK, tested
		 * above), DB_READY, DB_LOST, RUN_CREATED, RUN_FAILED, REAPED,
		 * STOP, SHUTDOWN */
		[I] = {{0}, {I, N, 0}, {I, N, 0}, {I, N, 0}, {I, N, 0}, {I, N, 0}, {I, SN, 0}, {I, N, 0}},
		[W] = {{0}, {C, CR, 0}, {I, N, 1}, {W, N, 0}, {W, N, 0}, {W, N, 0}, {I, SN, 1}, {I, N, 1}},
		[C] = {{0}, {C, N, 0}, {C, N, 0}, {R, N, 1}, {I, N, 1}, {C, N, 0}, {C, DR, 0}, {I, N, 1}},
		[R] = {{0}, {R, N, 0}, {R, N, 0}, {R, N, 0}, {R, N, 0}, {I, N, 0}, {R, DR, 0}, {I, N, 0}},
	};
	for (int st = 0; st < N_STATES; st++) {
		for (int ev = LIFECYCLE_EV_DB_READY; ev < N_EVENTS; ev++) {
			struct lifecycle l = reach((enum lifecycle_state)st);
			struct lifecycle_step s = on(&l, (enum lifecycle_event)ev);
			if ((int)lifecycle_state(&l) != want[st][ev].next || (int)s.action != want[st][ev].action ||
			    (s.ended.who != NULL) != want[st][ev].ended)
				fprintf(stderr, "  in state %d, event %d:\n", st, ev);
			CHECK_EQ(lifecycle_state(&l), want[st][ev].next);
			CHECK_EQ(s.action, want[st][ev].action);
			CHECK_EQ(s.ended.who != NULL, want[st][ev].ended);
			/* A request still pending is the one that was asked. */
			if (lifecycle_requester(&l))
				CHECK_STR(lifecycle_requester(&l), "uid 1000");
			lifecycle_request_clear(&s.ended);
			drop(&l);
		}
	}
}

int main(void)
{
	RUN(test_a_zeroed_lifecycle_is_idle_with_no_request);
	RUN(test_ask_with_the_database_ready_creates_the_run);
	RUN(test_ask_while_the_database_connects_waits_for_it);
	RUN(test_ask_while_the_database_is_down_is_refused_and_changes_nothing);
	RUN(test_a_patient_ask_waits_while_the_database_is_down);
	RUN(test_an_idle_ask_follows_the_database_state);
	RUN(test_the_requester_is_copied_and_unknown_when_unnamed);
	RUN(test_ask_while_stopping_is_refused_in_every_state);
	RUN(test_a_second_ask_is_refused_while_one_is_pending);
	RUN(test_ask_while_an_import_runs_is_refused_as_running_or_ending);
	RUN(test_the_database_ready_creates_the_waiting_run);
	RUN(test_the_database_lost_answers_a_waiting_client);
	RUN(test_once_waits_through_outages_until_the_database_is_ready);
	RUN(test_the_database_lost_while_creating_the_run_waits_for_the_run_answer);
	RUN(test_the_run_created_hands_the_request_out_once_and_runs);
	RUN(test_a_reaped_import_returns_to_idle_and_the_next_ask_is_taken);
	RUN(test_stop_while_idle_stops_now);
	RUN(test_stop_while_waiting_answers_the_request_and_stops_now);
	RUN(test_stop_while_creating_the_run_or_running_drains);
	RUN(test_shutdown_hands_out_the_pending_request_in_every_state);
	RUN(test_every_event_in_every_state);
	return CHECK_DONE();
}
