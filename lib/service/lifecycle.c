/* lifecycle — see lifecycle.h.
 *
 * Design note: the service used to keep this in five fields (starting,
 * start_when_ready, start_cb, wait_cb, pending_requester) whose legal
 * combinations were four.  Here they are one state and one request, and
 * every transition is in lifecycle_on(): a step either refuses an ask
 * (nothing changes), or moves to the next state and says what the service
 * must do.  A request leaves the lifecycle in exactly one place, hand_out(),
 * so it is answered exactly once, by whoever received it.
 */
#include "lifecycle.h"

#include <stdlib.h>
#include <string.h>

/* Why an ask cannot be taken now, or LIFECYCLE_WHY_NONE. */
static enum lifecycle_why ask_refusal(const struct lifecycle *l, const struct lifecycle_ask *a)
{
	if (a->stopping)
		return LIFECYCLE_WHY_STOPPING;
	switch (l->state) {
	case LIFECYCLE_RUNNING:
		return a->import_ending ? LIFECYCLE_WHY_ENDING : LIFECYCLE_WHY_RUNNING;
	case LIFECYCLE_WAITING_FOR_DATABASE:
	case LIFECYCLE_CREATING_RUN:
		return LIFECYCLE_WHY_STARTING;
	case LIFECYCLE_IDLE:
		break;
	}
	if (a->db == LIFECYCLE_DB_DOWN && !a->patient)
		return LIFECYCLE_WHY_DB_DOWN;
	return LIFECYCLE_WHY_NONE;
}

/* End the pending request (if any): it becomes the caller's. */
static struct lifecycle_step hand_out(struct lifecycle *l, enum lifecycle_state next,
                                      enum lifecycle_action action, enum lifecycle_why why)
{
	struct lifecycle_step st = {.action = action, .why = why, .ended = l->pending};
	l->pending = (struct lifecycle_request){0};
	l->state = next;
	return st;
}

static struct lifecycle_step step(enum lifecycle_action action, enum lifecycle_why why)
{
	return (struct lifecycle_step){.action = action, .why = why};
}

struct lifecycle_step lifecycle_on(struct lifecycle *l, enum lifecycle_event ev,
                                   const struct lifecycle_ask *ask)
{
	switch (ev) {
	case LIFECYCLE_EV_ASK: {
		enum lifecycle_why why = ask_refusal(l, ask);
		if (why != LIFECYCLE_WHY_NONE)
			return step(LIFECYCLE_DO_REFUSE, why);
		char *who = strdup(ask->who ? ask->who : "unknown");
		if (!who)
			return step(LIFECYCLE_DO_REFUSE, LIFECYCLE_WHY_NO_MEMORY);
		l->pending = (struct lifecycle_request){.who = who, .cb = ask->cb, .arg = ask->arg,
		                                        .patient = ask->patient};
		if (ask->db != LIFECYCLE_DB_READY) {
			l->state = LIFECYCLE_WAITING_FOR_DATABASE;
			return step(LIFECYCLE_DO_WAIT, LIFECYCLE_WHY_NONE);
		}
		l->state = LIFECYCLE_CREATING_RUN;
		return step(LIFECYCLE_DO_CREATE_RUN, LIFECYCLE_WHY_NONE);
	}
	case LIFECYCLE_EV_DB_READY:
		if (l->state != LIFECYCLE_WAITING_FOR_DATABASE)
			break;
		l->state = LIFECYCLE_CREATING_RUN;
		return step(LIFECYCLE_DO_CREATE_RUN, LIFECYCLE_WHY_NONE);
	case LIFECYCLE_EV_DB_LOST:
		/* A client is answered rather than kept waiting through an
		 * outage; a patient request (--once) waits it out. */
		if (l->state != LIFECYCLE_WAITING_FOR_DATABASE || l->pending.patient)
			break;
		return hand_out(l, LIFECYCLE_IDLE, LIFECYCLE_DO_NOTHING, LIFECYCLE_WHY_DB_LOST);
	case LIFECYCLE_EV_RUN_CREATED:
		if (l->state != LIFECYCLE_CREATING_RUN)
			break;
		return hand_out(l, LIFECYCLE_RUNNING, LIFECYCLE_DO_NOTHING, LIFECYCLE_WHY_NONE);
	case LIFECYCLE_EV_RUN_FAILED:
		if (l->state != LIFECYCLE_CREATING_RUN)
			break;
		return hand_out(l, LIFECYCLE_IDLE, LIFECYCLE_DO_NOTHING, LIFECYCLE_WHY_RUN_FAILED);
	case LIFECYCLE_EV_REAPED:
		if (l->state == LIFECYCLE_RUNNING)
			l->state = LIFECYCLE_IDLE;
		break;
	case LIFECYCLE_EV_STOP:
		/* A run being created is drained like a running import: its
		 * import is interrupted as soon as it exists. */
		if (lifecycle_has_run(l))
			return step(LIFECYCLE_DO_DRAIN, LIFECYCLE_WHY_NONE);
		return hand_out(l, LIFECYCLE_IDLE, LIFECYCLE_DO_STOP_NOW, LIFECYCLE_WHY_STOPPING);
	case LIFECYCLE_EV_SHUTDOWN:
		return hand_out(l, LIFECYCLE_IDLE, LIFECYCLE_DO_NOTHING, LIFECYCLE_WHY_STOPPING);
	}
	return step(LIFECYCLE_DO_NOTHING, LIFECYCLE_WHY_NONE);
}

enum lifecycle_state lifecycle_state(const struct lifecycle *l)
{
	return l->state;
}

const char *lifecycle_requester(const struct lifecycle *l)
{
	return l->pending.who;
}

bool lifecycle_has_run(const struct lifecycle *l)
{
	return l->state == LIFECYCLE_CREATING_RUN || l->state == LIFECYCLE_RUNNING;
}

void lifecycle_request_clear(struct lifecycle_request *r)
{
	free(r->who);
	*r = (struct lifecycle_request){0};
}
