/* lifecycle — the import's life cycle as the service sees it: whether a
 * start-import is refused, waits for the database, or has its run row
 * created now, and when the one who asked is answered.  Pure: no I/O, no
 * clock, no logging.  The service reports what happened as events to
 * lifecycle_on(), the one function holding the transitions, and carries
 * out the action it returns (insert the run row, drain, stop).
 *
 *   IDLE --ask, database ready--> CREATING_RUN --run created--> RUNNING
 *   IDLE --ask, database connecting--> WAITING_FOR_DATABASE
 *   WAITING_FOR_DATABASE --database ready--> CREATING_RUN
 *   WAITING_FOR_DATABASE --database lost (a client waits), stop--> IDLE
 *   CREATING_RUN --run failed--> IDLE
 *   RUNNING --reaped (the import ended and was freed)--> IDLE
 *
 * At most one request is pending (WAITING_FOR_DATABASE, CREATING_RUN): a
 * second ask is refused.  A patient request (raced --once: nobody waits
 * for an answer) also waits while the database is down; a client's is
 * refused then, and answered if the database is lost while it waits.
 * Whether the running import is ending (writing its final status) is the
 * import's own state: it comes in as a fact of an ask.
 *
 * Ownership: a zeroed struct lifecycle is IDLE.  It owns its copy of the
 * pending request's `who`; a request a step hands out (`ended`) is the
 * caller's, to answer and then lifecycle_request_clear().  After
 * LIFECYCLE_EV_SHUTDOWN it owns nothing.
 */
#ifndef RACED_LIFECYCLE_H
#define RACED_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

enum lifecycle_state {
	LIFECYCLE_IDLE,
	LIFECYCLE_WAITING_FOR_DATABASE,  /* asked before the database was up */
	LIFECYCLE_CREATING_RUN,          /* the run's row is being inserted */
	LIFECYCLE_RUNNING,               /* its import runs, until it is reaped */
};

enum lifecycle_event {
	LIFECYCLE_EV_ASK,          /* a start-import: the `ask` argument */
	LIFECYCLE_EV_DB_READY,     /* the database connected (again) */
	LIFECYCLE_EV_DB_LOST,      /* the connection was lost or refused */
	LIFECYCLE_EV_RUN_CREATED,  /* the run's row exists and its import was made */
	LIFECYCLE_EV_RUN_FAILED,   /* no import came of the pending request */
	LIFECYCLE_EV_REAPED,       /* the import ended and was freed */
	LIFECYCLE_EV_STOP,         /* SIGTERM: drain */
	LIFECYCLE_EV_SHUTDOWN,     /* the service is being freed */
};

enum lifecycle_db {
	LIFECYCLE_DB_CONNECTING,   /* the first connection (or after a reload) */
	LIFECYCLE_DB_READY,
	LIFECYCLE_DB_DOWN,         /* lost or refused; retrying */
};

/* What the service does after a step. */
enum lifecycle_action {
	LIFECYCLE_DO_NOTHING,
	LIFECYCLE_DO_REFUSE,       /* the ask is refused (`why`); nothing changed */
	LIFECYCLE_DO_WAIT,         /* the ask waits for the database: answered later */
	LIFECYCLE_DO_CREATE_RUN,   /* insert the pending request's run row */
	LIFECYCLE_DO_DRAIN,        /* stop: wait for the run (and its import) to end */
	LIFECYCLE_DO_STOP_NOW,     /* stop: nothing to wait for */
};

/* Why an ask is refused, or why a request handed out failed. */
enum lifecycle_why {
	LIFECYCLE_WHY_NONE,        /* `ended` succeeded: its run was created */
	LIFECYCLE_WHY_STOPPING,    /* raced is shutting down */
	LIFECYCLE_WHY_ENDING,      /* the running import writes its final status */
	LIFECYCLE_WHY_RUNNING,     /* an import runs */
	LIFECYCLE_WHY_STARTING,    /* another request is pending */
	LIFECYCLE_WHY_DB_DOWN,     /* asked while the database is down */
	LIFECYCLE_WHY_DB_LOST,     /* the database was lost while waiting for it */
	LIFECYCLE_WHY_RUN_FAILED,  /* the run's row or its import could not be made */
	LIFECYCLE_WHY_NO_MEMORY,
};

typedef void (*lifecycle_answer_fn)(void *arg, int64_t id, const char *err);

/* A start-import and what the service knows as it arrives. */
struct lifecycle_ask {
	const char *who;           /* copied; NULL reads "unknown" */
	lifecycle_answer_fn cb;    /* may be NULL: nobody to answer */
	void *arg;
	bool patient;              /* wait while the database is down (--once) */
	enum lifecycle_db db;
	bool stopping;
	bool import_ending;        /* the running import is ending or ended */
};

struct lifecycle_request {
	char *who;                 /* owned; NULL: no request */
	lifecycle_answer_fn cb;
	void *arg;
	bool patient;
};

/* Read through the functions below; written only by lifecycle_on(). */
struct lifecycle {
	enum lifecycle_state state;
	struct lifecycle_request pending;
};

struct lifecycle_step {
	enum lifecycle_action action;
	enum lifecycle_why why;          /* of a refusal, or of `ended` */
	struct lifecycle_request ended;  /* the pending request, if this step ended it */
};

/* The one transition function.  `ask` is read for LIFECYCLE_EV_ASK only
 * (NULL otherwise).  An event that does not apply in the current state
 * changes nothing and returns LIFECYCLE_DO_NOTHING. */
struct lifecycle_step lifecycle_on(struct lifecycle *l, enum lifecycle_event ev,
                                   const struct lifecycle_ask *ask);

enum lifecycle_state lifecycle_state(const struct lifecycle *l);
/* Who asked for the pending request; NULL when none is pending. */
const char *lifecycle_requester(const struct lifecycle *l);
/* A run is being created or its import runs: a reload waits for it. */
bool lifecycle_has_run(const struct lifecycle *l);

/* Free a handed-out request's `who` and zero it. */
void lifecycle_request_clear(struct lifecycle_request *r);

#endif
